#!/usr/bin/env python3
"""Writes corpus.jsonl: labelled snippets for the privacy guard's corpus test.

Positives are a child's identifiers (made up: NHS numbers from the test
range with valid check digits, Ofcom drama numbers, fictional postcodes and
names) written the ways an attack review and ordinary pasting produce:
entities, escapes, look-alike letters, odd spaces and separators. Negatives
are sentences in the language of real briefings that must pass.

Run it to regenerate; the output is deterministic and committed.
"""
import json
import random

rng = random.Random(14)
NBSP, ZWSP, EN, SHY = "\u00a0", "\u200b", "\u2013", "\u00ad"


def nhs_valid(nine):
    total = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1)))
    check = 11 - total % 11
    if check == 10:
        return None
    return nine + str(0 if check == 11 else check)


def nhs_numbers(n, valid=True):
    out = []
    while len(out) < n:
        nine = "".join(rng.choice("0123456789") for _ in range(9))
        number = nhs_valid(nine)
        if number is None:
            continue
        if not valid:
            number = number[:9] + str((int(number[9]) + rng.randint(1, 9)) % 10)
            if nhs_valid(number[:9]) == number:
                continue
        out.append(number)
    return out


def groups(number, sizes):
    out, at = [], 0
    for size in sizes:
        out.append(number[at:at + size])
        at += size
    return out


def entity_digits(text):
    return "".join(f"&#{ord(c)};" if c.isdigit() and rng.random() < 0.5 else c for c in text)


def hex_entity(text):
    return "".join(f"&#x{ord(c):x};" if c.isalnum() and rng.random() < 0.4 else c for c in text)


def toml_escape(text):
    return "".join(f"\\u{ord(c):04X}" if (c == " " or rng.random() < 0.3) else c for c in text)


def fullwidth(text):
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


CYRILLIC = {"a": "а", "e": "е", "o": "о", "c": "с", "p": "р", "y": "у", "x": "х", "A": "А", "E": "Е",
            "O": "О", "C": "С", "P": "Р", "H": "Н", "K": "К", "M": "М", "T": "Т", "B": "В"}


def lookalike(text):
    return "".join(CYRILLIC.get(c, c) if rng.random() < 0.5 else c for c in text)


cases = []


def pos(kind, text, where="body", encoding="plain"):
    cases.append({"label": kind, "where": where, "encoding": encoding, "text": text})


def neg(text, where="body", encoding="plain"):
    cases.append({"label": "none", "where": where, "encoding": encoding, "text": text})


# NHS numbers: separators, escapes, entities, widths.
nhs_leads = ["NHS number {}", "NHS no. {} on the referral", "({})", "Her NHS number ({}) was shared",
             "ref {}", "The GP record {} was attached", "NHS: {}."]
separators = [" ", "-", ".", "", NBSP, EN, "  ", " - ", "/"]
for i, number in enumerate(nhs_numbers(40)):
    lead = nhs_leads[i % len(nhs_leads)]
    sep = separators[i % len(separators)]
    written = sep.join(groups(number, [3, 3, 4]))
    encoding = ["plain", "markdown-escape", "entity", "hex-entity", "fullwidth", "zero-width", "emphasis", "toml-escape", "regrouped"][i % 9]
    where = "body"
    if encoding == "markdown-escape":
        written = "\\-".join(groups(number, [3, 3, 4]))
    elif encoding == "entity":
        written = entity_digits(written)
    elif encoding == "hex-entity":
        written = hex_entity(written)
    elif encoding == "fullwidth":
        written = fullwidth(written)
    elif encoding == "zero-width":
        written = ZWSP.join(groups(number, [3, 3, 4]))
    elif encoding == "emphasis":
        written = "**" + "** **".join(groups(number, [3, 3, 4])) + "**"
    elif encoding == "regrouped":
        written = " ".join(groups(number, [2, 2, 2, 2, 2]))
    elif encoding == "toml-escape":
        written = toml_escape(" ".join(groups(number, [3, 3, 4])))
        where = "front"
    pos("nhs-number", lead.format(written) if where == "body" else written, where, encoding)

# Phone numbers (Ofcom's drama ranges).
mobiles = ["07700 900{:03d}".format(rng.randint(0, 999)) for _ in range(12)]
landlines = ["0113 496 0{:03d}".format(rng.randint(0, 999)) for _ in range(6)] + \
            ["020 7946 0{:03d}".format(rng.randint(0, 999)) for _ in range(6)]
phone_forms = [
    lambda n: n,
    lambda n: n.replace(" ", "."),
    lambda n: n.replace(" ", "-"),
    lambda n: n.replace(" ", ""),
    lambda n: "+44 " + n[1:],
    lambda n: "0044 " + n[1:],
    lambda n: "+44 (0)" + n[1:],
    lambda n: "+44" + n[1:].replace(" ", ""),
    lambda n: n.replace(" ", NBSP),
    lambda n: n.replace(" ", EN),
    lambda n: "(" + n.split(" ")[0] + ") " + " ".join(n.split(" ")[1:]),
    lambda n: n.replace(" ", "\\-"),
    lambda n: entity_digits(n),
    lambda n: n.replace(" ", "&nbsp;"),
]
phone_leads = ["mum's mobile is {}", "Call the family on {}", "home: {}", "Dad ({}) was not called back",
               "text {} for updates", "the carer's number {} was on the form"]
for i, number in enumerate(mobiles + landlines):
    form = phone_forms[i % len(phone_forms)]
    pos("phone-number", phone_leads[i % len(phone_leads)].format(form(number)), "body", f"phone-form-{i % len(phone_forms)}")
for i, number in enumerate(mobiles[:8]):
    pos("phone-number", toml_escape(number), "front", "toml-escape")

# Postcodes (fictional-looking, valid shapes).
postcodes = ["M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT", "LS1 4AP", "NE1 7RU", "SW1A 1AA", "EC1A 1BB",
             "W1A 0AX", "BS8 1TH", "L3 9PP", "S1 2HE", "CF10 3AT", "G2 3BZ", "NG7 2RD", "OX1 3BG"]
postcode_forms = [lambda p: p, lambda p: p.replace(" ", "-"), lambda p: p.replace(" ", ""),
                  lambda p: p.lower(), lambda p: p.replace(" ", NBSP), lambda p: p.replace(" ", "&nbsp;"),
                  lambda p: p.replace(" ", "  "), lambda p: lookalike(p), lambda p: hex_entity(p),
                  lambda p: p.replace(" ", ZWSP + " ")]
postcode_leads = ["lives at {} with her mother", "moved to {}.", "address: 4 Elm Road, {}", "the family's postcode ({})",
                  "staying at a hostel near {}"]
for i, code in enumerate(postcodes * 2):
    form = postcode_forms[i % len(postcode_forms)]
    pos("postcode", postcode_leads[i % len(postcode_leads)].format(form(code)), "body", f"postcode-form-{i % len(postcode_forms)}")
for code in postcodes[:6]:
    pos("postcode", toml_escape(code), "front", "toml-escape")

# Dates of birth.
dob = [
    "Child B was born on 3 March 2016.", "DOB: 03/03/2016", "D.O.B. 03-03-2016", "date of birth 2016-03-03",
    "DOB 3 Mar 12", "DOB 03032012", "DOB:\n03/03/2012", "Date of birth\n\n12.03.2015", "born in March 2012",
    "born March 12, 2015", "birthday is 12th of March 2015", "seen with mum (12 March 2015, DOB)",
    "d.o.b 12/3/15", "DoB – 12 March 2015", "born on 12\u00a0March\u00a02015", "born on 12&nbsp;March 2015",
    "date&#32;of&#32;birth 12/03/2015", "born 3rd March", "DOB 12.03.2015", "Born: 1st Jan 2014",
    "| DOB | 03/03/2016 |", "born in Leeds on 12.03.15", "DOB 2012-03-03", "date of birth: 03 03 2012",
    "born in Feb 2019", "birth date 7/11/2018", "DOB 07112018", "born 7-Nov-18", "dob 7 November '18",
    "born on the 7th of November 2018", "born **7 November 2018**", "DOB: 0&#51;/03/2012",
    "D O B 03/03/2012", "birthdate: 4 July 2017", "born 04/07/2017 at home", "born on\n4 July 2017",
    # A year of birth alone, of one child.
    "Child K (born 2016) lived with", "Child K was born in 2016.", "Year of birth: 2016", "YOB 2014",
    "DOB: 2015", "Child L, born in the summer of 2019, was",
]
for text in dob:
    pos("date-of-birth", text, "body", "dob")
for text in ["DOB 03\\u002F03\\u002F2016", "born\\u00A0on 3 March 2016", "date of birth 2016\\u002D03\\u002D03"]:
    pos("date-of-birth", text, "front", "toml-escape")

# Names on the deny list.
names = ["Jayden Northwood", "Amelia-Rose Whitfield", "Kacper Nowak", "Zoë Ellington", "Tyler O'Brien"]
name_forms = [
    ("plain", lambda f, l: f"{f} {l}"),
    ("nbsp", lambda f, l: f"{f}{NBSP}{l}"),
    ("entity-space", lambda f, l: f"{f}&nbsp;{l}"),
    ("numeric-ref", lambda f, l: f"{f[0]}&#{ord(f[1])};{f[2:]} {l}"),
    ("emphasis", lambda f, l: f"**{f}** **{l}**"),
    ("split-emphasis", lambda f, l: f"{f[:2]}**{f[2:]}** {l}"),
    ("reversed", lambda f, l: f"{l}, {f}"),
    ("slug", lambda f, l: f"/{f.lower()}-{l.lower()}".replace("'", "")),
    ("zero-width", lambda f, l: f"{f[:2]}{ZWSP}{f[2:]} {l}"),
    ("lookalike", lambda f, l: lookalike(f"{f} {l}")),
    ("upper", lambda f, l: f"{f} {l}".upper()),
    ("line-break", lambda f, l: f"{f}\n{l}"),
    ("soft-hyphen", lambda f, l: f"{f} {l[:3]}{SHY}{l[3:]}"),
    ("html", lambda f, l: f"<b>{f}</b> <i>{l}</i>"),
    ("link", lambda f, l: f"[the review](https://example.org/{f.lower()}-{l.lower()})".replace("'", "")),
    ("percent", lambda f, l: f"https://example.org/{f}%20{l}".replace("'", "%27")),
    ("initial", lambda f, l: f"{f[0]}. {l}"),
    ("middle-name", lambda f, l: f"{f} Lee {l}"),
    ("nickname", lambda f, l: f"{f} \"JJ\" {l}"),
    ("letter-spaced", lambda f, l: " ".join(f) + " " + l),
]
name_leads = ["{} was known to children's social care", "We met {} at school", "Notes about {} were shared",
              "The panel heard from {}'s teacher", "{}"]
for i, name in enumerate(names):
    first, last = name.rsplit(" ", 1)
    for j, (encoding, form) in enumerate(name_forms):
        pos("denied-name", name_leads[(i + j) % len(name_leads)].format(form(first, last)), "body", encoding)
    pos("denied-name", toml_escape(name), "front", "toml-escape")
    pos("denied-name", name.replace(" ", "\\u0020"), "front", "toml-escape")

# Personal email addresses.
emails = ["jo.bloggs88@gmail.com", "sam_carer@hotmail.co.uk", "mum.of.three@yahoo.co.uk", "family123@outlook.com"]
email_forms = [lambda e: e, lambda e: e.replace("@", "&#64;"), lambda e: e.replace("@", " (at) ").replace(".com", " (dot) com"),
               lambda e: e.replace("@", " [at] "), lambda e: e.upper(), lambda e: e.replace("@", "&commat;"),
               lambda e: e.replace("@", "\uff20")]
for i, email in enumerate(emails):
    for j, form in enumerate(email_forms):
        pos("personal-email", f"contact mum on {form(email)}", "body", f"email-form-{j}")

# Chat and form text: a champion's note, a follow-up example.
for label, text in [("denied-name", "We discussed Jayden Northwood's case"),
                    ("phone-number", "shared with the team, see 07700 900123"),
                    ("postcode", "the boy at M1 1AE"), ("date-of-birth", "DOB 03/03/2016 came up"),
                    ("nhs-number", "NHS 943 476 5919 was on the board"),
                    ("denied-name", "Worked with W&#97;lter? no: with Kacper&nbsp;Nowak"),
                    ("phone-number", "her number is 07700\u00a0900\u00a0456"),
                    ("date-of-birth", "born in March 2012, lives locally")]:
    pos(label, text, "text", "chat")

# Negatives: the language of real briefings.
negatives = [
    "Section 47 of the Children Act 1989 sets out the duty to make enquiries.",
    "Section 17 of the Children Act 1989: children in need.",
    "Working Together to Safeguard Children 2023 replaced the 2018 guidance.",
    "The review was published on 12 March 2024 and shared on 15/04/2024.",
    "The panel met on 3 March 2025 and again on 17 April 2025.",
    "Strategy meeting: March 12, 2024.",
    "Data for 2019/20 and 2020-21 show a rise in referrals.",
    "The 2023 rapid review took seven minutes to read.",
    "Child B was born prematurely. The panel met on 12 March 2024.",
    "Baby B is a newborn; the review started on 12 March 2024.",
    "Date of birth withheld\n12 March 2024: panel meeting",
    "Children born in 2012 are now in Year 9.",
    "Call the MASH on 0300 123 4567 if you are worried.",
    "NSPCC helpline 0808 800 5000, Childline 0800 1111.",
    "Front door: 0161 496 0000 (9am to 5pm).",
    "Out of hours: 020 7946 0123.",
    "Emergency Duty Team: 0161-496-0000.",
    "Police: 101, or 999 in an emergency.",
    "Samaritans 116 123, free at any time.",
    "NHS 111 for urgent medical advice.",
    "Case reference 1234567890 on the system.",
    "Referral number 943 476 5918 was closed.",
    "Incident log 4010232138 was reviewed.",
    "Y6 2nd term, the A1 3rd junction.",
    "Families across the M1 and B33 areas took part.",
    "Level 3 safeguarding training is required.",
    "Child B lived with Mother and Mr X.",
    "Sibling C and Child B were known to Children's Social Care.",
    "Annual review, Annabel and Kaydens.",
    "Jayden and Northwood are both common words in this corpus test only when apart.",
    "contact jo.bloggs@nhs.net for the slides",
    "pc.smith@merseyside.police.uk leads on CSE.",
    "mash@leeds.gov.uk takes referrals.",
    "someone@notgmail.com is not a personal address.",
    "The 7-minute briefing has 7 sections.",
    "Over 60% of practitioners said 'yes'.",
    "Ofsted's JTAI in 2024 looked at neglect.",
    "The ICB, the council and the police are the safeguarding partners.",
    "Use the Graded Care Profile 2 (GCP2) tool.",
    "See page 12, paragraph 4.3 of the report.",
    "Version 2.1, updated 2024-11-30.",
    "Serious incident notification sent within 5 working days.",
    "The LADO was consulted within 1 working day.",
    "Training on 4 and 11 December, 9.30 to 12.30.",
    "Room B12 at County Hall.",
    "Dial 0800 028 3550 for the domestic abuse helpline.",
    "Meeting ID 812 3456 7890 (Teams).",
    "Session code 2024-03-12-A.",
    "Between 2015 and 2022 the rate doubled.",
    "In March 2023 the partnership published its plan.",
    "Birth to five: the Healthy Child Programme.",
    "Pre-birth assessments start at 20 weeks.",
    "Unborn babies and the 'Born into care' research.",
    "Date of the next review: 3 March 2026.",
    "The DOB field in the form must never be copied into a briefing.",
    "Ask for the date of birth only when you need it.",
    "A 10-digit NHS number is on every record.",
    "The child's age (under 1) is a risk factor.",
    "Phone the duty social worker before 4pm.",
    "Escalation: team manager within 2 working days.",
    "CSPR reference NCSPR-2024-117.",
    "Learning review 23/24 number 4.",
    "The CSE champion for the north locality.",
    "Open the slides at https://example.org/briefings/neglect-2024.",
    "Download it at https://example.org/7mb/seeing-the-child.",
    "Read more: /learning/child-b-review.",
    "Contact: safeguarding.partnership@example.gov.uk",
    "Tel: 03000 123 456 (switchboard)",
    "Reception 0300 200 3300.",
    "Complaints 0345 600 7000.",
    "Text 07860 039967 for the school nursing ChatHealth service",
    "Police reference CR/012345/24.",
    "Court case number ZW24C00123.",
    "The family court hearing is on 5 June 2025.",
    "M62 corridor services.",
    "The A66 route between Penrith and Scotch Corner.",
    "Team B12, floor 2.",
    "Project W1 phase 2.",
    "Slide 3 of 7.",
    "1 in 5 children experience neglect.",
    "Aged 11 to 16.",
    "Years 7 to 11.",
    "Born to be wild is not a safeguarding framework.",
    "First-born children were more likely to be referred.",
    "Report 2024/25, section 3.2.",
    "Referral rate: 412.5 per 10,000 children.",
    "Between 9.00 and 17.00, Monday to Friday.",
    "Our 2025-2028 strategy.",
    "Issue 2025-03 of the newsletter.",
    "NICE guideline NG76 on child abuse and neglect.",
    "See paragraph 3.14 of Working Together.",
    "Key dates: 12/03, 19/03 and 26/03.",
    "the family moved house three times in 2021",
    "The mother's partner was not known to services.",
    "Dad was working nights.",
    "Grandparents provided care at weekends.",
]
for text in negatives:
    neg(text)
negative_fronts = [
    "Neglect: seeing the child", "Learning from Child B", "CSE: spotting the signs", "7-minute briefing 2024/25",
    "Review of 12 March 2024", "Call 0300 123 4567", "Jayden\\u0020and friends", "Working Together 2023",
]
for text in negative_fronts:
    neg(text, "front", "toml")
chat_negatives = ["Shared at team meeting on 3 March", "Used it with a family this week", "All 12 staff attended",
                  "We covered the 7 sections in 20 minutes", "Discussed the Child B review with duty team",
                  "Two new starters missed it; catching up next week"]
for text in chat_negatives:
    neg(text, "text", "chat")

# Negatives built from templates, so the count reflects everyday variety.
subjects = ["Practitioners", "Health visitors", "School staff", "Police officers", "GPs", "Social workers", "Youth workers"]
verbs = ["should record", "must share", "need to check", "are asked to review", "can escalate"]
objects = ["concerns about neglect", "missed health appointments", "the voice of the child", "home conditions",
           "professional curiosity", "the Graded Care Profile", "concerns within 24 hours", "the 2023 guidance"]
seen = set()
while len(seen) < 110:
    text = f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} by {rng.randint(1, 28)} {rng.choice(['January', 'March', 'June', 'September'])} {rng.choice([2024, 2025, 2026])}."
    if text not in seen:
        seen.add(text)
        neg(text, "body", "generated")
for number in nhs_numbers(20, valid=False):
    neg(f"Case reference {number[:3]} {number[3:6]} {number[6:]} was closed.", "body", "bad-check-digit")

with open(__file__.replace("generate.py", "corpus.jsonl"), "w", encoding="utf-8") as out:
    for case in cases:
        out.write(json.dumps(case, ensure_ascii=True) + "\n")
labels = {}
for case in cases:
    labels[case["label"]] = labels.get(case["label"], 0) + 1
print(len(cases), labels)
