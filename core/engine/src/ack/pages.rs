//! The pages a person sees after opening an acknowledgement or confirmation
//! link: small, self-contained HTML (no scripts, no external resources),
//! with real headings and labelled controls. Pure: values in, HTML out;
//! every value is escaped here.

use super::ItemSummary;
use super::token::TokenError;
use cascade_render::{Channel, escape};

/// The ways a champion can have cascaded an item, as stored and as shown.
pub const CASCADE_METHODS: [(&str, &str); 4] = [
    ("team-meeting", "Team meeting"),
    ("supervision", "Supervision"),
    ("briefing-session", "Briefing session"),
    ("email", "Email"),
];

/// Why a link did not lead anywhere. Links that are not valid for any
/// reason that would reveal whether a delivery or person exists share one
/// page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Token(TokenError),
    /// The link checks out but is not for this delivery, or the delivery is
    /// gone: shown exactly as a forged link.
    NotValid,
    /// The link's person champions no team.
    NotAChampion,
}

fn esc(text: &str) -> String {
    escape(Channel::EmailHtml, text)
}

const STYLE: &str = "body{margin:0;background:#ffffff;color:#1a1a1a;\
font:1.125rem/1.5 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif}\
main{max-width:36rem;margin:0 auto;padding:2rem 1rem}\
h1{font-size:1.75rem;line-height:1.25;margin:0 0 1rem}\
h2{font-size:1.25rem;margin:1.5rem 0 .5rem}\
button{font:inherit;font-weight:600;color:#ffffff;background:#1d4f91;border:2px solid #1d4f91;\
border-radius:.25rem;padding:.75rem 1.5rem;margin-top:1rem;cursor:pointer}\
button:hover{background:#123a6e}\
button:focus,input:focus,select:focus,textarea:focus{outline:3px solid #ffbf47;outline-offset:2px}\
label{display:block;font-weight:600;margin-top:1rem}\
input,select,textarea{font:inherit;color:#1a1a1a;background:#ffffff;border:2px solid #1a1a1a;\
padding:.4rem;margin-top:.25rem;max-width:100%}\
.hint{color:#3d3d3d;font-size:1rem;margin:.25rem 0 0}\
.error{color:#a4000f;font-weight:600}\
.summary{border:3px solid #a4000f;padding:.5rem 1rem;margin-bottom:1rem}\
.marking{font-weight:700;letter-spacing:.05em;margin:0 0 1rem}\
.item{border-top:1px solid #505a5f;border-bottom:1px solid #505a5f;margin:1rem 0;padding:.5rem 0}\
fieldset{border:0;padding:0;margin:1.5rem 0 0}\
legend{font-weight:600;font-size:1.25rem;padding:0}\
.group-error{border-left:5px solid #a4000f;padding-left:1rem}\
.radio{display:flex;align-items:center;gap:.75rem;margin:.75rem 0}\
.radio input{width:1.75rem;height:1.75rem;margin:0;flex:none}\
.radio label{display:inline;font-weight:400;margin:0}\
.explain{background:#f3f2f1;padding:.5rem 1rem;margin:.75rem 0}\
.done{margin:1.5rem 0 0}";

fn page(title: &str, body: &str) -> String {
    marked_page(title, body, None)
}

/// A page with the marking of its item's classification at its top and
/// bottom, where the item has one.
fn marked_page(title: &str, body: &str, marking: Option<&str>) -> String {
    let body = match marking {
        Some(marking) => format!(
            "<p class=\"marking\">{marking}</p>\n{body}\n<p class=\"marking\">{marking}</p>"
        ),
        None => body.to_owned(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n",
        esc(title)
    )
}

/// The page a link opens: it records nothing; its button does. An item
/// sent as a notice (OFFICIAL-SENSITIVE) is read here in full, between its
/// markings, before the button.
pub fn confirm_page(item: &ItemSummary, person_name: Option<&str>) -> String {
    let ask = match person_name {
        Some(name) => format!("{}, please confirm", esc(name)),
        None => "Please confirm".to_owned(),
    };
    let marking = item.classification.marking();
    if item.sections.is_empty() {
        return marked_page(
            "Confirm you have read this",
            &format!(
                "<h1>Confirm you have read this</h1>\n\
                 <p>{ask} that you have read:</p>\n\
                 <p><strong>{}</strong></p>\n\
                 <form method=\"post\">\n<button type=\"submit\">Confirm I have read this</button>\n</form>\n\
                 <p class=\"hint\">Nothing is recorded until you press the button.</p>",
                esc(&item.title)
            ),
            marking,
        );
    }
    let mut body = format!("<h1>{}</h1>\n<div class=\"item\">\n", esc(&item.title));
    for (title, html) in &item.sections {
        if !title.is_empty() {
            body.push_str(&format!("<h2>{}</h2>\n", esc(title)));
        }
        body.push_str(html);
        body.push('\n');
    }
    body.push_str(&format!(
        "</div>\n<p>{ask} that you have read it.</p>\n\
         <form method=\"post\">\n<button type=\"submit\">Confirm I have read this</button>\n</form>\n\
         <p class=\"hint\">Nothing is recorded until you press the button.</p>"
    ));
    marked_page(&item.title, &body, marking)
}

/// A check question on the acknowledgement page: where the person is with
/// it, and what went wrong with the form's last answer to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckAsk {
    /// 1-based.
    pub number: u32,
    /// The right answer has been given: shown as done, not asked.
    pub answered: bool,
    /// Answers given so far (sent back with the form).
    pub tries: u32,
    pub problem: Option<CheckProblem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckProblem {
    /// No option was chosen.
    Missing,
    /// The option chosen was not the right one.
    Wrong,
}

/// The acknowledgement page of an item with check questions: the item
/// (where the page is where it is read), then each question not yet
/// answered right as a group of radio buttons, one form for all of them.
/// After a wrong answer, the question's explanation and the section it
/// points to are shown with it, and it is asked again. Works without
/// scripts; nothing is recorded until the button is pressed.
pub fn check_page(item: &ItemSummary, person_name: Option<&str>, asks: &[CheckAsk]) -> String {
    let total = item.check_questions.len();
    let problems: Vec<(u32, &'static str)> = asks
        .iter()
        .filter_map(|a| match a.problem {
            Some(CheckProblem::Missing) => Some((a.number, "Choose an answer to question")),
            Some(CheckProblem::Wrong) => Some((a.number, "Not quite: try again at question")),
            None => None,
        })
        .collect();
    let mut body = String::new();
    if !problems.is_empty() {
        body.push_str(
            "<div class=\"summary\" role=\"alert\">\n<h2>There is a problem</h2>\n<ul>\n",
        );
        for (number, message) in &problems {
            body.push_str(&format!(
                "<li><a href=\"#q{number}-1\">{message} {number}</a></li>\n"
            ));
        }
        body.push_str("</ul>\n</div>\n");
    }
    body.push_str(&format!("<h1>{}</h1>\n", esc(&item.title)));
    if !item.sections.is_empty() {
        body.push_str("<div class=\"item\">\n");
        for (title, html) in &item.sections {
            if !title.is_empty() {
                body.push_str(&format!("<h2>{}</h2>\n", esc(title)));
            }
            body.push_str(html);
            body.push('\n');
        }
        body.push_str("</div>\n");
    }
    let ask = match person_name {
        Some(name) => format!("{}, before", esc(name)),
        None => "Before".to_owned(),
    };
    body.push_str(&format!(
        "<p>{ask} you confirm you have read it, please answer {} to check the main {}.</p>\n\
         <form method=\"post\" novalidate>\n",
        if total == 1 {
            "one short question".to_owned()
        } else {
            format!("{total} short questions")
        },
        if total == 1 { "point" } else { "points" },
    ));
    for (question, ask) in item.check_questions.iter().zip(asks) {
        let n = ask.number;
        if ask.answered {
            body.push_str(&format!(
                "<div class=\"done\">\n<h2>Question {n} of {total}</h2>\n<p>{}</p>\n\
                 <p>Your answer: <strong>{}</strong>. That is right.</p>\n</div>\n",
                esc(&question.question),
                esc(&question.answer)
            ));
            continue;
        }
        let mut described = Vec::new();
        let mut group = String::new();
        match ask.problem {
            Some(CheckProblem::Missing) => {
                described.push(format!("q{n}-error"));
                group.push_str(&format!(
                    "<p class=\"error\" id=\"q{n}-error\">Choose an answer to question {n}.</p>\n"
                ));
            }
            Some(CheckProblem::Wrong) => {
                described.push(format!("q{n}-error"));
                described.push(format!("q{n}-explain"));
                group.push_str(&format!(
                    "<p class=\"error\" id=\"q{n}-error\">Not quite: that is not the right answer. Read this, then try again.</p>\n\
                     <div class=\"explain\" id=\"q{n}-explain\">\n<p>{}</p>\n",
                    esc(&question.explanation)
                ));
                if let Some((title, html)) = item
                    .check_sections
                    .iter()
                    .find(|(t, _)| question.points_to(t))
                {
                    group.push_str(&format!(
                        "<h3>From the section \u{201c}{}\u{201d}</h3>\n{html}\n",
                        esc(title)
                    ));
                }
                group.push_str("</div>\n");
            }
            None => {}
        }
        let aria = if described.is_empty() {
            String::new()
        } else {
            format!(" aria-describedby=\"{}\"", described.join(" "))
        };
        body.push_str(&format!(
            "<div class=\"{}\" id=\"q{n}\">\n<fieldset{aria}>\n\
             <legend>Question {n} of {total}: {}</legend>\n{group}",
            if ask.problem.is_some() {
                "group-error"
            } else {
                "group"
            },
            esc(&question.question)
        ));
        for (option, o) in question.options.iter().zip(1..) {
            body.push_str(&format!(
                "<div class=\"radio\"><input type=\"radio\" id=\"q{n}-{o}\" name=\"q{n}\" value=\"{o}\"><label for=\"q{n}-{o}\">{}</label></div>\n",
                esc(option)
            ));
        }
        body.push_str(&format!(
            "</fieldset>\n<input type=\"hidden\" name=\"seen{n}\" value=\"{}\">\n</div>\n",
            ask.tries
        ));
    }
    body.push_str(
        "<button type=\"submit\">Check my answers and confirm I have read this</button>\n</form>\n\
         <p class=\"hint\">Nothing is recorded until you press the button. Your acknowledgement is recorded once every answer is right.</p>",
    );
    let title = if problems.is_empty() {
        item.title.clone()
    } else {
        format!("Error: {}", item.title)
    };
    marked_page(&title, &body, item.classification.marking())
}

/// How a refresher's question stands on its page (issue 19).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefresherAsk {
    /// The question's number in the item version (1-based).
    pub question: u32,
    /// Answers given so far, sent back with the form.
    pub tries: u32,
    pub problem: Option<CheckProblem>,
}

/// A refresher's check question on cascade's page, from the signed link in
/// its email: one question, its options as radio buttons; after a wrong
/// answer, the explanation and the section it points to. Nothing is
/// recorded until the button is pressed (mail scanners follow links).
pub fn refresher_page(item: &ItemSummary, person_name: Option<&str>, ask: RefresherAsk) -> String {
    let Some(question) = (ask.question as usize)
        .checked_sub(1)
        .and_then(|i| item.check_questions.get(i))
    else {
        return refusal_page(Refusal::NotValid);
    };
    let mut body = String::new();
    let message = match ask.problem {
        Some(CheckProblem::Missing) => Some("Choose an answer"),
        Some(CheckProblem::Wrong) => Some("Not quite: try again"),
        None => None,
    };
    if let Some(message) = message {
        body.push_str(&format!(
            "<div class=\"summary\" role=\"alert\">\n<h2>There is a problem</h2>\n<ul>\n\
             <li><a href=\"#r-1\">{message}</a></li>\n</ul>\n</div>\n"
        ));
    }
    body.push_str(&format!(
        "<h1>Refresher: {}</h1>\n<p>{}you acknowledged this a while ago. One quick question keeps the main point fresh.</p>\n\
         <form method=\"post\" novalidate>\n",
        esc(&item.title),
        person_name.map_or_else(String::new, |n| format!("{}, ", esc(n))),
    ));
    let mut group = String::new();
    let mut described = Vec::new();
    match ask.problem {
        Some(CheckProblem::Missing) => {
            described.push("r-error");
            group.push_str("<p class=\"error\" id=\"r-error\">Choose an answer.</p>\n");
        }
        Some(CheckProblem::Wrong) => {
            described.extend(["r-error", "r-explain"]);
            group.push_str(&format!(
                "<p class=\"error\" id=\"r-error\">Not quite: that is not the right answer. Read this, then try again.</p>\n\
                 <div class=\"explain\" id=\"r-explain\">\n<p>{}</p>\n",
                esc(&question.explanation)
            ));
            if let Some((title, html)) = item
                .check_sections
                .iter()
                .find(|(t, _)| question.points_to(t))
            {
                group.push_str(&format!(
                    "<h3>From the section \u{201c}{}\u{201d}</h3>\n{html}\n",
                    esc(title)
                ));
            }
            group.push_str("</div>\n");
        }
        None => {}
    }
    let aria = if described.is_empty() {
        String::new()
    } else {
        format!(" aria-describedby=\"{}\"", described.join(" "))
    };
    body.push_str(&format!(
        "<div class=\"{}\">\n<fieldset{aria}>\n<legend>{}</legend>\n{group}",
        if ask.problem.is_some() {
            "group-error"
        } else {
            "group"
        },
        esc(&question.question)
    ));
    for (option, o) in question.options.iter().zip(1..) {
        body.push_str(&format!(
            "<div class=\"radio\"><input type=\"radio\" id=\"r-{o}\" name=\"answer\" value=\"{o}\"><label for=\"r-{o}\">{}</label></div>\n",
            esc(option)
        ));
    }
    body.push_str(&format!(
        "</fieldset>\n<input type=\"hidden\" name=\"seen\" value=\"{}\">\n</div>\n\
         <button type=\"submit\">Check my answer</button>\n</form>\n\
         <p class=\"hint\">Nothing is recorded until you press the button.</p>",
        ask.tries
    ));
    let title = if message.is_some() {
        format!("Error: Refresher: {}", item.title)
    } else {
        format!("Refresher: {}", item.title)
    };
    marked_page(&title, &body, item.classification.marking())
}

/// After a refresher's question is answered right: the explanation, and
/// thanks; `now`: false when it had been answered before.
pub fn refresher_done_page(item_title: &str, explanation: &str, now: bool) -> String {
    let said = if now {
        format!("<p>Right. {}</p>", esc(explanation))
    } else {
        "<p>You have answered this refresher already.</p>".to_owned()
    };
    page(
        "Thank you",
        &format!(
            "<h1>Thank you</h1>\n{said}\n<p>A minute like this keeps the learning from <strong>{}</strong> fresh. There is nothing more to do.</p>",
            esc(item_title)
        ),
    )
}

/// What an answer link records, before anything is recorded: a GET shows
/// this and only the button's POST records (mail scanners follow links).
pub fn answer_page(item_title: &str, question: &str, answer: &str) -> String {
    page(
        "Your answer",
        &format!(
            "<h1>Your answer</h1>\n\
             <p>About <strong>{}</strong>:</p>\n\
             <p>{}</p>\n\
             <p>Your answer: <strong>{}</strong></p>\n\
             <form method=\"post\">\n<button type=\"submit\">Record my answer</button>\n</form>\n\
             <p class=\"hint\">Nothing is recorded until you press the button.</p>",
            esc(item_title),
            esc(question),
            esc(answer)
        ),
    )
}

/// After an answer is recorded; `first` is false when one was already.
/// `reasons`: after a first answer that says the learning was not used,
/// the follow-up's reasons, each (label, where its form posts).
pub fn answered_page(answer: &str, first: bool, reasons: &[(String, String)]) -> String {
    let said = if first {
        format!(
            "We have recorded your answer: <strong>{}</strong>.",
            esc(answer)
        )
    } else {
        "You had already answered this question; your first answer stands.".to_owned()
    };
    let mut body = format!("<h1>Thank you</h1>\n<p>{said}</p>");
    if first && !reasons.is_empty() {
        body.push_str(
            "\n<h2>What is the main reason?</h2>\n<p>Your answer helps the partnership decide what to do next. Choose one, or close this page.</p>\n",
        );
        for (label, action) in reasons {
            body.push_str(&format!(
                "<form method=\"post\" action=\"{}\"><button type=\"submit\">{}</button></form>\n",
                esc(action),
                esc(label)
            ));
        }
    }
    page("Thank you", &body)
}

/// After a reason is recorded; `first` is false when one was already.
pub fn reason_page(reason: &str, first: bool) -> String {
    let said = if first {
        format!(
            "We have recorded your reason: <strong>{}</strong>.",
            esc(reason)
        )
    } else {
        "You had already given a reason; your first one stands.".to_owned()
    };
    page("Thank you", &format!("<h1>Thank you</h1>\n<p>{said}</p>"))
}

/// After an acknowledgement (the first or a repeat): thanks, and the item's
/// reflection questions to take into practice. A champion (`confirm`: the
/// link to their confirmation form and the names of the teams they cover)
/// is also asked to record their team briefings.
pub fn thanks_page(
    item_title: &str,
    reflection_questions: &[String],
    confirm: Option<(&str, &[(String, String)])>,
) -> String {
    let mut body = format!(
        "<h1>Thank you</h1>\n<p>We have recorded that you have read <strong>{}</strong>. \
         You will not get reminders about it.</p>",
        esc(item_title)
    );
    if !reflection_questions.is_empty() {
        body.push_str("\n<h2>Questions to reflect on</h2>\n<ul>\n");
        for question in reflection_questions {
            body.push_str(&format!("<li>{}</li>\n", esc(question)));
        }
        body.push_str("</ul>\n<p>Take them to your next supervision or team meeting.</p>");
    }
    if let Some((url, teams)) = confirm {
        body.push_str(&format!(
            "\n<h2>Your teams</h2>\n<p>You are a champion for {}. When you have shared this \
             learning with a team, record the team briefing.</p>\n\
             <p><a href=\"{}\">Record a team briefing</a></p>",
            esc(&team_list(teams)),
            esc(url)
        ));
    }
    page("Thank you", &body)
}

/// Why a link was refused, and what to do next.
pub fn refusal_page(refusal: Refusal) -> String {
    let ask = "If you still need it, use the link in the latest email you received about \
               this learning, or ask your safeguarding partnership's business unit.";
    let (title, explanation) = match refusal {
        Refusal::Token(TokenError::Expired) => (
            "This link has expired",
            "Links in our emails work for a limited time, and this one has run out. \
             Nothing was recorded.",
        ),
        Refusal::Token(TokenError::RetiredKey | TokenError::UnknownKey) => (
            "This link no longer works",
            "This link comes from an older email and has been replaced. Nothing was recorded.",
        ),
        Refusal::Token(TokenError::Malformed) => (
            "This link is incomplete",
            "The link may have been cut short or changed when it was copied. Open it \
             directly from the email instead. Nothing was recorded.",
        ),
        Refusal::Token(TokenError::Forged) | Refusal::NotValid => (
            "This link is not valid",
            "We could not accept this link. It may have been changed, or it was meant \
             for someone else. Nothing was recorded.",
        ),
        Refusal::NotAChampion => (
            "No teams to confirm for",
            "You are not listed as a champion for any team, so there is nothing to \
             confirm here. Nothing was recorded.",
        ),
    };
    page(
        title,
        &format!(
            "<h1>{}</h1>\n<p>{}</p>\n<p>{}</p>",
            esc(title),
            esc(explanation),
            esc(ask)
        ),
    )
}

/// When the server could not finish: nothing is claimed to be recorded.
pub fn unavailable_page() -> String {
    page(
        "Please try again",
        "<h1>Please try again</h1>\n<p>Something went wrong on our side and we could not \
         record this. Please try the link again in a few minutes.</p>",
    )
}

/// When a client sent too many requests.
pub fn too_many_requests_page() -> String {
    page(
        "Too many requests",
        "<h1>Too many requests</h1>\n<p>Please wait a moment, then try again.</p>",
    )
}

/// What a champion typed into the confirmation form, kept to show it again
/// with any problems.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct CascadeForm {
    pub team: String,
    pub session_date: String,
    pub present: String,
    pub method: String,
    pub note: String,
}

/// One problem with the form: the field's name and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: &'static str,
    pub message: String,
}

/// Team names as one phrase: "A", "A and B", "A, B and C".
pub fn team_list(teams: &[(String, String)]) -> String {
    let names: Vec<&str> = teams.iter().map(|(_, name)| name.as_str()).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The champion's form to record that they cascaded an item to a team.
/// `teams` are (team id, team name) of the teams they cover; `recorded`,
/// the ids of those with a briefing of the item recorded already.
pub fn cascade_form_page(
    item_title: &str,
    champion_name: &str,
    teams: &[(String, String)],
    recorded: &[String],
    form: &CascadeForm,
    problems: &[FieldProblem],
    today: &str,
) -> String {
    let mut body = String::from("<h1>Record a team briefing</h1>\n");
    if !problems.is_empty() {
        body.push_str(
            "<div class=\"summary\" role=\"alert\">\n<h2>Please check the form</h2>\n<ul>\n",
        );
        for p in problems {
            body.push_str(&format!(
                "<li><a href=\"#{}\">{}</a></li>\n",
                p.field,
                esc(&p.message)
            ));
        }
        body.push_str("</ul>\n</div>\n");
    }
    body.push_str(&format!(
        "<p>{}, tell us when you shared <strong>{}</strong> with a team you cover.</p>\n",
        esc(champion_name),
        esc(item_title)
    ));
    body.push_str(&format!(
        "<h2>The teams this form is for</h2>\n<p>You are a champion for {}. Record one briefing at a time.</p>\n<ul>\n",
        if teams.len() == 1 { "one team" } else { "these teams" }
    ));
    for (id, name) in teams {
        let state = if recorded.contains(id) {
            "a briefing is recorded"
        } else {
            "no briefing recorded yet"
        };
        body.push_str(&format!("<li>{}: {state}</li>\n", esc(name)));
    }
    body.push_str("</ul>\n<form method=\"post\">\n");
    let problem_of = |field: &str| {
        problems
            .iter()
            .find(|p| p.field == field)
            .map(|p| {
                format!(
                    "<p class=\"error\" id=\"{field}-error\">{}</p>\n",
                    esc(&p.message)
                )
            })
            .unwrap_or_default()
    };
    let described = |field: &str| {
        if problems.iter().any(|p| p.field == field) {
            format!(" aria-describedby=\"{field}-error\" aria-invalid=\"true\"")
        } else {
            String::new()
        }
    };
    let selected = |on: bool| if on { " selected" } else { "" };
    body.push_str(&format!(
        "<label for=\"team\">Team</label>\n{}<select id=\"team\" name=\"team\" required{}>\n",
        problem_of("team"),
        described("team")
    ));
    if teams.len() > 1 {
        body.push_str(&format!(
            "<option value=\"\"{}>Choose a team</option>\n",
            selected(form.team.is_empty())
        ));
    }
    for (id, name) in teams {
        body.push_str(&format!(
            "<option value=\"{}\"{}>{}</option>\n",
            esc(id),
            selected(*id == form.team),
            esc(name)
        ));
    }
    body.push_str("</select>\n");
    body.push_str(&format!(
        "<label for=\"session_date\">Date of the session</label>\n{}\
         <input type=\"date\" id=\"session_date\" name=\"session_date\" required max=\"{}\" value=\"{}\"{}>\n",
        problem_of("session_date"),
        esc(today),
        esc(&form.session_date),
        described("session_date")
    ));
    body.push_str(&format!(
        "<label for=\"present\">Number of people present</label>\n{}\
         <input type=\"number\" id=\"present\" name=\"present\" required min=\"0\" step=\"1\" inputmode=\"numeric\" value=\"{}\"{}>\n",
        problem_of("present"),
        esc(&form.present),
        described("present")
    ));
    body.push_str(&format!(
        "<label for=\"method\">How you shared it</label>\n{}<select id=\"method\" name=\"method\" required{}>\n\
         <option value=\"\"{}>Choose how</option>\n",
        problem_of("method"),
        described("method"),
        selected(form.method.is_empty())
    ));
    for (value, label) in CASCADE_METHODS {
        body.push_str(&format!(
            "<option value=\"{value}\"{}>{label}</option>\n",
            selected(form.method == value)
        ));
    }
    body.push_str("</select>\n");
    body.push_str(&format!(
        "<label for=\"note\">Note (optional)</label>\n<p class=\"hint\" id=\"note-hint\">For example, \
         what the team will do differently. Do not include anything that could identify a child \
         or family.</p>\n{}<textarea id=\"note\" name=\"note\" rows=\"4\" cols=\"40\" maxlength=\"2000\" \
         aria-describedby=\"note-hint\">{}</textarea>\n",
        problem_of("note"),
        esc(&form.note)
    ));
    body.push_str("<div><button type=\"submit\">Record this briefing</button></div>\n</form>");
    page("Record a team briefing", &body)
}

/// After a confirmation was stored (or had been stored before).
pub fn cascade_recorded_page(item_title: &str, team_name: &str, already: bool) -> String {
    let what = if already {
        "This briefing was already recorded"
    } else {
        "Thank you, this briefing is recorded"
    };
    page(
        what,
        &format!(
            "<h1>{}</h1>\n<p>You shared <strong>{}</strong> with <strong>{}</strong>.</p>\n\
             <p>To record another team or session, open the link in your email again.</p>",
            esc(what),
            esc(item_title),
            esc(team_name)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show_and_load_nothing_from_elsewhere() {
        let html = confirm_page(
            &ItemSummary::unknown("<script>alert(1)</script>".to_owned()),
            Some("Amy & \"Bo\""),
        );
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("Amy &amp; &quot;Bo&quot;"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("src=") && !html.contains("http"));
        assert!(html.contains("<form method=\"post\">"));
        assert!(html.contains("<h1>"));
    }

    #[test]
    fn a_sensitive_item_is_read_on_its_page_between_its_markings() {
        let text = "+++\nkind = \"newsletter-item\"\nid = \"n-1\"\ntitle = \"Missed appointments\"\nthemes = [\"neglect\"]\nstatus = \"published\"\nnewsletter = \"Partnership Matters\"\nissue = \"2026-12\"\nclassification = \"official-sensitive\"\nsummary = \"What we learned.\"\n+++\n\nThe family moved twice <b>in a year</b>.\n";
        let item = cascade_model::content::parse_item(
            std::path::Path::new("n.md"),
            text,
            &cascade_model::content::Taxonomy::default(),
        )
        .unwrap();
        let html = confirm_page(&ItemSummary::of(&item), Some("Sam"));
        let body = html.split("<main>").nth(1).unwrap().trim_start();
        assert!(
            body.starts_with("<p class=\"marking\">OFFICIAL-SENSITIVE</p>"),
            "{html}"
        );
        assert!(
            body.trim_end()
                .trim_end_matches("</html>")
                .trim_end()
                .trim_end_matches("</body>")
                .trim_end()
                .trim_end_matches("</main>")
                .trim_end()
                .ends_with("<p class=\"marking\">OFFICIAL-SENSITIVE</p>"),
            "{html}"
        );
        assert!(html.contains("The family moved twice"), "{html}");
        assert!(html.contains("<form method=\"post\">"));
        assert!(!html.contains("<b>in a year</b>") || html.contains("&lt;b&gt;"));
    }

    #[test]
    fn the_thanks_page_lists_the_reflection_questions() {
        let html = thanks_page("Neglect", &["What would you <do>?".to_owned()], None);
        assert!(html.contains("<li>What would you &lt;do&gt;?</li>"));
        assert!(!thanks_page("Neglect", &[], None).contains("<ul>"));
        assert!(!html.contains("confirm"));
        let teams = [
            ("t1".to_owned(), "MASH".to_owned()),
            ("t2".to_owned(), "Early Help & Co".to_owned()),
        ];
        let html = thanks_page("Neglect", &[], Some(("../confirm/tok", &teams[..])));
        assert!(
            html.contains("You are a champion for MASH and Early Help &amp; Co."),
            "{html}"
        );
        assert!(html.contains("<a href=\"../confirm/tok\">Record a team briefing</a>"));
    }

    #[test]
    fn every_refusal_says_nothing_was_recorded_and_what_to_do() {
        for refusal in [
            Refusal::Token(TokenError::Malformed),
            Refusal::Token(TokenError::Forged),
            Refusal::Token(TokenError::Expired),
            Refusal::Token(TokenError::RetiredKey),
            Refusal::Token(TokenError::UnknownKey),
            Refusal::NotValid,
            Refusal::NotAChampion,
        ] {
            let html = refusal_page(refusal);
            assert!(html.contains("Nothing was recorded"), "{refusal:?}");
            assert!(html.contains("business unit"), "{refusal:?}");
        }
        assert_eq!(
            refusal_page(Refusal::NotValid),
            refusal_page(Refusal::Token(TokenError::Forged))
        );
    }

    #[test]
    fn the_cascade_form_labels_every_field_and_keeps_what_was_typed() {
        let teams = vec![
            ("t1".to_owned(), "Early Help <North>".to_owned()),
            ("t2".to_owned(), "MASH".to_owned()),
        ];
        let form = CascadeForm {
            team: "t2".to_owned(),
            present: "-1".to_owned(),
            ..CascadeForm::default()
        };
        let problems = [FieldProblem {
            field: "present",
            message: "Enter a whole number, 0 or more".to_owned(),
        }];
        let html = cascade_form_page(
            "Neglect",
            "Sam",
            &teams,
            &["t1".to_owned()],
            &form,
            &problems,
            "2026-03-01",
        );
        for field in ["team", "session_date", "present", "method", "note"] {
            assert!(
                html.contains(&format!("<label for=\"{field}\">")),
                "{field}"
            );
            assert!(html.contains(&format!("id=\"{field}\"")), "{field}");
        }
        assert!(html.contains("<option value=\"t2\" selected>MASH</option>"));
        assert!(html.contains("Early Help &lt;North&gt;"));
        assert!(html.contains("value=\"-1\" aria-describedby=\"present-error\""));
        assert!(html.contains("role=\"alert\""));
        assert!(html.contains("<li>Early Help &lt;North&gt;: a briefing is recorded</li>"));
        assert!(html.contains("<li>MASH: no briefing recorded yet</li>"));
    }
}
