use super::*;
use proptest::prelude::*;

fn default_renderer() -> Renderer {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
    Renderer::load_dir(&dir).unwrap_or_else(|e| panic!("default templates: {e:?}"))
}

fn default_templates() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
    let mut templates = Vec::new();
    read_templates(&dir, &dir, &mut templates).unwrap();
    templates
}

fn input(ack_url: Option<&str>) -> RenderInput {
    RenderInput {
        person_name: "Sam Patel".to_owned(),
        ack_url: ack_url.map(str::to_owned),
        ack_token: ack_url.map(|_| "tok".to_owned()),
        partnership_name: "Northshire Safeguarding Partnership".to_owned(),
        carries: Classification::Official,
        confirm: None,
    }
}

fn briefing() -> LearningItem {
    sample_items().remove(0)
}

// ---------------------------------------------------------------------------
// Validators and decoders for the markup the splitter and escapers produce.

const TELEGRAM_TAGS: [&str; 8] = ["b", "i", "u", "s", "code", "pre", "a", "blockquote"];
const TELEGRAM_ENTITIES: [(&str, char); 4] = [
    ("&lt;", '<'),
    ("&gt;", '>'),
    ("&amp;", '&'),
    ("&quot;", '"'),
];

/// Checks a Telegram HTML message: allowed, balanced tags; only the four
/// entities, none cut; no raw `<`, `>` or `&`.
fn check_telegram(message: &str) -> Result<(), String> {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = message;
    while let Some(c) = rest.chars().next() {
        let advance = match c {
            '<' => {
                let end = rest.find('>').ok_or("a tag is cut")?;
                let tag = &rest[1..end];
                if let Some(name) = tag.strip_prefix('/') {
                    if open.pop() != Some(name) {
                        return Err(format!("unbalanced </{name}>"));
                    }
                } else {
                    let name = tag.split(' ').next().unwrap_or_default();
                    if !TELEGRAM_TAGS.contains(&name) {
                        return Err(format!("tag <{name}> not allowed"));
                    }
                    let well_formed = if name == "a" {
                        tag.strip_prefix("a href=\"")
                            .and_then(|t| t.strip_suffix('"'))
                            .is_some_and(|url| !url.contains(['"', '<', '>']))
                    } else {
                        tag == name
                    };
                    if !well_formed {
                        return Err(format!("malformed tag <{tag}>"));
                    }
                    open.push(name);
                }
                end + 1
            }
            '>' => return Err("raw >".to_owned()),
            '&' => TELEGRAM_ENTITIES
                .iter()
                .find(|(e, _)| rest.starts_with(e))
                .map(|(e, _)| e.len())
                .ok_or_else(|| {
                    format!(
                        "bad or cut entity at {:?}",
                        rest.chars().take(8).collect::<String>()
                    )
                })?,
            _ => c.len_utf8(),
        };
        rest = &rest[advance..];
    }
    if open.is_empty() {
        Ok(())
    } else {
        Err(format!("tags left open: {open:?}"))
    }
}

/// The text a Telegram message shows: tags stripped, entities decoded.
fn telegram_text(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            rest = &rest[rest.find('>').unwrap() + 1..];
        } else if let Some((e, d)) = TELEGRAM_ENTITIES.iter().find(|(e, _)| rest.starts_with(e)) {
            out.push(*d);
            rest = &rest[e.len()..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Walks a Discord message, checking escapes, balanced markers and
/// neutralised mentions, and returns the text it shows.
fn read_discord(message: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut open: Vec<&str> = Vec::new();
    let mut code: Option<&str> = None;
    let mut rest = message;
    while let Some(c) = rest.chars().next() {
        let ticks = &rest[..rest.len() - rest.trim_start_matches('`').len()];
        let advance = if let Some(fence) = code {
            if ticks == fence {
                code = None;
                ticks.len()
            } else {
                out.push(c);
                c.len_utf8()
            }
        } else if !ticks.is_empty() {
            code = Some(ticks);
            ticks.len()
        } else if c == '\\' {
            let escaped = rest[1..]
                .chars()
                .next()
                .ok_or("dangling escape backslash")?;
            if !escaped.is_ascii_punctuation() {
                return Err(format!("backslash before {escaped:?}"));
            }
            out.push(escaped);
            1 + escaped.len_utf8()
        } else if c == '[' {
            open.push("[");
            1
        } else if rest.starts_with("](") && open.last() == Some(&"[") {
            open.pop();
            rest.find(')').ok_or("a link is cut")? + 1
        } else if let Some(m) = split::DISCORD_MARKERS
            .iter()
            .find(|m| rest.starts_with(**m))
        {
            if open.last() == Some(m) {
                open.pop();
            } else if open.contains(m) {
                return Err(format!("{m} closed out of order"));
            } else {
                open.push(m);
            }
            m.len()
        } else if c == '<' {
            return Err("unescaped < could form a mention".to_owned());
        } else {
            if c == '@' && markup::pings(&rest[1..]) {
                return Err("unneutralised mass mention".to_owned());
            }
            if c == '\u{200B}' && out.ends_with('@') && markup::pings(&rest[3..]) {
                // The zero-width space is the neutraliser, not content.
            } else {
                out.push(c);
            }
            c.len_utf8()
        };
        rest = &rest[advance..];
    }
    match (open.is_empty(), code) {
        (true, None) => Ok(out),
        _ => Err(format!("formatting left open: {open:?} {code:?}")),
    }
}

/// Removes the `(i/n)` line from each chunk, checking it is there exactly
/// when there is more than one chunk.
fn without_markers(chunks: &[String]) -> String {
    let n = chunks.len();
    if n == 1 {
        return chunks[0].clone();
    }
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let marker = format!("({}/{n})\n", i + 1);
            chunk
                .strip_prefix(&marker)
                .unwrap_or_else(|| panic!("chunk {i} lacks {marker:?}"))
                .to_owned()
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Property tests: escapers and splitter.

fn awkward_text(max_pieces: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-zA-Z]{1,10}",
        2 => Just(" ".to_owned()),
        1 => Just("\n".to_owned()),
        1 => Just("\n\n".to_owned()),
        1 => prop::sample::select(vec![
            "<", ">", "&", "*", "_", "`", "~", "|", "\\", "\"", "#", "-", "[", "]", "(", ")",
            "**", "@everyone", "@here", "@Everyone", "<@123>", "<@&1>", "<#1>", "&amp;",
            "1. ", "🙂", "👩‍👩‍👧", "é", "日本",
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..max_pieces).prop_map(|p| p.concat())
}

/// Sections of (title, styled parts); the style picks formatting around a
/// part so cuts land inside open formatting.
type Sections = Vec<(String, Vec<(u8, String)>)>;

fn sections() -> impl Strategy<Value = Sections> {
    let part = (0u8..5, awkward_text(500));
    prop::collection::vec((awkward_text(6), prop::collection::vec(part, 1..5)), 1..6)
}

/// Builds a message from sections with the given escaping and formatting,
/// and the plain text it should show.
fn message(
    sections: &Sections,
    esc: fn(&str) -> String,
    style: fn(u8, &str) -> String,
) -> (String, String) {
    let mut markup = String::new();
    let mut plain = String::new();
    for (title, parts) in sections {
        markup.push(SECTION_BREAK);
        markup.push_str(&style(1, &esc(title)));
        markup.push('\n');
        plain.push_str(title);
        plain.push('\n');
        for (s, text) in parts {
            markup.push_str(&style(*s, &esc(text)));
            plain.push_str(text);
        }
        markup.push_str("\n\n");
        plain.push_str("\n\n");
    }
    (markup, plain)
}

fn telegram_style(style: u8, text: &str) -> String {
    match style {
        1 => format!("<b>{text}</b>"),
        2 => format!("<i><u>{text}</u></i>"),
        3 => format!("<a href=\"https://example.org/?a=1&amp;b=2\">{text}</a>"),
        4 => format!("<blockquote>{text}</blockquote>"),
        _ => text.to_owned(),
    }
}

fn discord_style(style: u8, text: &str) -> String {
    match style {
        1 => format!("**{text}**"),
        2 => format!("_~~{text}~~_"),
        3 => format!("[{text}](https://example.org/a%28b%29)"),
        4 => format!("||{text}||"),
        _ => text.to_owned(),
    }
}

fn limits() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(TELEGRAM_MESSAGE_LIMIT),
        Just(DISCORD_MESSAGE_LIMIT),
        120usize..1500
    ]
}

proptest! {
    // Failures are reported with their minimal input; no regression files
    // are written into the source tree.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(48)
    })]

    #[test]
    fn telegram_chunks_fit_stay_valid_and_keep_the_text(sections in sections(), limit in limits()) {
        let (markup, plain) = message(&sections, escape_telegram, telegram_style);
        let unsplit = markup.replace(SECTION_BREAK, "");
        prop_assert!(check_telegram(&unsplit).is_ok());
        prop_assert_eq!(telegram_text(&unsplit), plain.clone());

        let chunks = split(Markup::Telegram, &markup, limit);
        for chunk in &chunks {
            prop_assert!(utf16_len(chunk) <= limit, "chunk of {} > {limit}", utf16_len(chunk));
            if let Err(e) = check_telegram(chunk) {
                prop_assert!(false, "{e} in {chunk:?}");
            }
        }
        prop_assert_eq!(telegram_text(&without_markers(&chunks)), plain);
    }

    #[test]
    fn discord_chunks_fit_stay_valid_and_keep_the_text(sections in sections(), limit in limits()) {
        let (markup, plain) = message(&sections, escape_discord, discord_style);
        let unsplit = markup.replace(SECTION_BREAK, "");
        prop_assert_eq!(read_discord(&unsplit), Ok(plain.clone()));

        let chunks = split(Markup::Discord, &markup, limit);
        for chunk in &chunks {
            prop_assert!(utf16_len(chunk) <= limit, "chunk of {} > {limit}", utf16_len(chunk));
            if let Err(e) = read_discord(chunk) {
                prop_assert!(false, "{e} in {chunk:?}");
            }
        }
        prop_assert_eq!(read_discord(&without_markers(&chunks)), Ok(plain));
    }

    #[test]
    fn escaped_text_shows_exactly_the_original(text in awkward_text(200)) {
        prop_assert_eq!(telegram_text(&escape_telegram(&text)), text.clone());
        prop_assert_eq!(read_discord(&escape_discord(&text)), Ok(text));
    }

    #[test]
    fn converted_markdown_splits_into_valid_chunks(text in awkward_text(800), limit in 200usize..1200) {
        let telegram = markdown_to(Channel::Telegram, &text);
        prop_assert!(check_telegram(&telegram).is_ok(), "{telegram:?}");
        for chunk in split(Markup::Telegram, &telegram, limit) {
            prop_assert!(utf16_len(&chunk) <= limit);
            prop_assert!(check_telegram(&chunk).is_ok(), "{chunk:?}");
        }
        let discord = markdown_to(Channel::Discord, &text);
        prop_assert!(read_discord(&discord).is_ok(), "{discord:?}");
        for chunk in split(Markup::Discord, &discord, limit) {
            prop_assert!(utf16_len(&chunk) <= limit);
            prop_assert!(read_discord(&chunk).is_ok(), "{chunk:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// Escaping and Markdown conversion.

#[test]
fn escaping_makes_markup_and_mentions_literal() {
    let cases = [
        (
            "<script>",
            "&lt;script&gt;",
            "\\<script\\>",
            "&lt;script&gt;",
        ),
        ("a & b", "a &amp; b", "a & b", "a &amp; b"),
        ("@everyone", "@everyone", "@\u{200B}everyone", "@everyone"),
        ("@here now", "@here now", "@\u{200B}here now", "@here now"),
        ("<@123>", "&lt;@123&gt;", "\\<@123\\>", "&lt;@123&gt;"),
        (
            "<@&1> <#1>",
            "&lt;@&amp;1&gt; &lt;#1&gt;",
            "\\<@&1\\> \\<\\#1\\>",
            "&lt;@&amp;1&gt; &lt;#1&gt;",
        ),
        ("**bold**", "**bold**", "\\*\\*bold\\*\\*", "**bold**"),
        (
            "1. not a list",
            "1. not a list",
            "1\\. not a list",
            "1. not a list",
        ),
    ];
    for (text, telegram, discord, html) in cases {
        assert_eq!(escape(Channel::Telegram, text), telegram, "telegram {text}");
        assert_eq!(escape(Channel::Discord, text), discord, "discord {text}");
        assert_eq!(escape(Channel::EmailHtml, text), html, "html {text}");
        assert_eq!(escape(Channel::EmailText, text), text, "text {text}");
    }
}

#[test]
fn markdown_converts_to_each_channels_markup() {
    // (markdown, email-html, email-text, telegram, discord)
    let cases = [
        (
            "# Heading",
            "<h3>Heading</h3>",
            "Heading",
            "<b>Heading</b>",
            "**Heading**",
        ),
        (
            "- one\n- two",
            "<ul>\n<li>one</li>\n<li>two</li>\n</ul>",
            "- one\n- two",
            "• one\n• two",
            "- one\n- two",
        ),
        (
            "1. first\n2. second",
            "<ol>\n<li>first</li>\n<li>second</li>\n</ol>",
            "1. first\n2. second",
            "1. first\n2. second",
            "1. first\n2. second",
        ),
        (
            "[site](https://example.org)",
            "<p><a href=\"https://example.org\">site</a></p>",
            "site (https://example.org)",
            "<a href=\"https://example.org\">site</a>",
            "[site](https://example.org)",
        ),
        (
            "*em* and **strong**",
            "<p><em>em</em> and <strong>strong</strong></p>",
            "em and strong",
            "<i>em</i> and <b>strong</b>",
            "_em_ and **strong**",
        ),
        (
            "Use `a<b`",
            "<p>Use <code>a&lt;b</code></p>",
            "Use a<b",
            "Use <code>a&lt;b</code>",
            "Use `a<b`",
        ),
        (
            "[click](javascript:alert(1))",
            "<p>click</p>",
            "click",
            "click",
            "click",
        ),
    ];
    for (md, html, text, telegram, discord) in cases {
        assert_eq!(markdown_to(Channel::EmailHtml, md), html, "email-html {md}");
        assert_eq!(markdown_to(Channel::EmailText, md), text, "email-text {md}");
        assert_eq!(
            markdown_to(Channel::Telegram, md),
            telegram,
            "telegram {md}"
        );
        assert_eq!(markdown_to(Channel::Discord, md), discord, "discord {md}");
    }
}

#[test]
fn raw_html_in_markdown_is_shown_as_text() {
    let inline = "<b>raw</b> text";
    assert_eq!(
        markdown_to(Channel::EmailHtml, inline),
        "<p>&lt;b&gt;raw&lt;/b&gt; text</p>"
    );
    assert_eq!(
        markdown_to(Channel::Telegram, inline),
        "&lt;b&gt;raw&lt;/b&gt; text"
    );
    assert_eq!(
        markdown_to(Channel::Discord, inline),
        "\\<b\\>raw\\</b\\> text"
    );
    let block = "<script>alert(1)</script>";
    assert_eq!(
        markdown_to(Channel::EmailHtml, block),
        "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    );
    assert_eq!(
        markdown_to(Channel::Telegram, block),
        "&lt;script&gt;alert(1)&lt;/script&gt;"
    );
}

#[test]
fn a_nested_list_is_indented_under_its_item() {
    let md = "- outer\n  - inner\n- next";
    assert_eq!(
        markdown_to(Channel::Telegram, md),
        "• outer\n  • inner\n• next"
    );
}

// ---------------------------------------------------------------------------
// Splitting.

#[test]
fn a_short_message_is_one_chunk_without_a_marker() {
    let chunks = split(Markup::Telegram, "\u{1E}<b>short</b>", 4096);
    assert_eq!(chunks, vec!["<b>short</b>".to_owned()]);
}

#[test]
fn a_cut_inside_a_link_closes_and_reopens_it() {
    let text = format!("<a href=\"https://x.org\">{}</a>", "word ".repeat(40));
    let chunks = split(Markup::Telegram, &text, 100);
    assert!(chunks.len() > 2);
    for chunk in &chunks {
        check_telegram(chunk).unwrap();
        assert!(chunk.contains("<a href=\"https://x.org\">") && chunk.ends_with("</a>"));
    }
}

#[test]
fn a_section_too_long_for_one_message_falls_back_to_paragraphs() {
    let para = "word ".repeat(30);
    let text = format!("{SECTION_BREAK}<b>One</b>\n{para}\n\n{para}\n\n{para}");
    let chunks = split(Markup::Telegram, &text, 400);
    assert_eq!(chunks.len(), 2);
    assert!(chunks[0].ends_with("\n\n"), "{:?}", chunks[0]);
}

#[test]
fn a_discord_cut_never_separates_a_backslash_from_what_it_escapes() {
    let text = escape_discord(&"*_".repeat(300));
    for chunk in split(Markup::Discord, &text, 101) {
        read_discord(&chunk).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Rendering with the default templates.

#[test]
fn the_default_templates_pass_the_check() {
    assert_eq!(default_renderer().check(), Vec::new());
}

#[test]
fn a_long_briefing_splits_on_section_boundaries() {
    let mut item = briefing();
    let ItemKind::SevenMinuteBriefing(b) = &mut item.kind else {
        unreachable!()
    };
    for (i, section) in b.sections.iter_mut().enumerate() {
        section.title = format!("Section {i}");
        section.body = format!(
            "Practice point {i}: {}",
            "look, listen & record. ".repeat(45)
        );
    }
    let chunks = default_renderer()
        .render(
            &item,
            &Taxonomy::default(),
            Channel::Telegram,
            &input(Some("https://a.example/x")),
        )
        .unwrap();
    assert!(chunks.len() > 1, "expected a split, got one chunk");
    let n = chunks.len();
    for (i, chunk) in chunks.iter().enumerate() {
        assert!(utf16_len(chunk) <= TELEGRAM_MESSAGE_LIMIT);
        check_telegram(chunk).unwrap();
        let body = chunk
            .strip_prefix(&format!("({}/{n})\n", i + 1))
            .expect("marker");
        if i > 0 {
            assert!(
                body.starts_with("<b>Section "),
                "chunk {i} starts mid-section: {body:.60}"
            );
        }
    }
    for i in 0..7 {
        let title = format!("<b>Section {i}</b>");
        assert_eq!(chunks.iter().filter(|c| c.contains(&title)).count(), 1);
    }
}

#[test]
fn a_template_referencing_an_unknown_variable_fails_naming_the_file() {
    let mut templates = default_templates();
    for (path, source) in &mut templates {
        if path == "seven-minute-briefing/telegram.hbs" {
            *source = "Hello\n{{item.nonexistent}}".to_owned();
        }
    }
    let renderer = Renderer::new(templates).unwrap();
    let err = renderer
        .render(
            &briefing(),
            &Taxonomy::default(),
            Channel::Telegram,
            &input(None),
        )
        .unwrap_err();
    assert_eq!(
        err.file,
        Some(PathBuf::from("seven-minute-briefing/telegram.hbs"))
    );
    assert_eq!(err.line, Some(2));
    assert!(err.to_string().contains("item.nonexistent"), "{err}");
    assert_eq!(renderer.check().len(), 1);
}

#[test]
fn a_template_syntax_error_names_the_file_and_line() {
    let errors = Renderer::new([(
        "review-finding/discord.hbs".to_owned(),
        "ok\n{{#if item.title}}never closed".to_owned(),
    )])
    .err()
    .unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].file,
        Some(PathBuf::from("review-finding/discord.hbs"))
    );
    assert!(errors[0].line.is_some(), "{}", errors[0]);
}

#[test]
fn a_missing_template_is_reported_with_the_path_to_create() {
    let templates = default_templates()
        .into_iter()
        .filter(|(path, _)| path != "newsletter-item/discord.hbs");
    let errors = Renderer::new(templates).unwrap().check();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .help
            .contains("create newsletter-item/discord.hbs"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_template_in_an_unknown_folder_is_refused() {
    let errors = Renderer::new([("briefing/telegram.hbs".to_owned(), String::new())])
        .err()
        .unwrap();
    assert!(
        errors[0].help.contains("seven-minute-briefing"),
        "{}",
        errors[0]
    );
}

#[test]
fn the_call_to_action_appears_only_with_an_ack_link() {
    let renderer = default_renderer();
    let taxonomy = Taxonomy::default();
    let url = "https://ack.example/a?d=1&s=2";
    let with = |channel| {
        renderer
            .render(&briefing(), &taxonomy, channel, &input(Some(url)))
            .unwrap()
            .concat()
    };
    let without = |channel| {
        renderer
            .render(&briefing(), &taxonomy, channel, &input(None))
            .unwrap()
            .concat()
    };

    assert!(with(Channel::EmailHtml).contains("<a href=\"https://ack.example/a?d=1&amp;s=2\""));
    assert!(with(Channel::EmailText).contains(url));
    assert!(with(Channel::Telegram).contains("<b>Acknowledge</b> below"));
    assert!(with(Channel::Discord).contains("**Acknowledge** below"));
    for channel in Channel::ALL {
        assert!(!without(channel).contains("cknowledge"), "{channel}");
    }
}

#[test]
fn the_persons_name_is_escaped_for_each_channel() {
    let renderer = default_renderer();
    let mut person = input(None);
    person.person_name = "Sam <b> & @everyone".to_owned();
    let render = |channel| {
        renderer
            .render(&briefing(), &Taxonomy::default(), channel, &person)
            .unwrap()
            .concat()
    };
    assert!(render(Channel::EmailHtml).contains("Hello Sam &lt;b&gt; &amp; @everyone"));
    assert!(render(Channel::EmailText).contains("Hello Sam <b> & @everyone"));
    assert!(render(Channel::Telegram).contains("Hello Sam &lt;b&gt; &amp; @everyone"));
    assert!(render(Channel::Discord).contains("Hello Sam \\<b\\> & @\u{200B}everyone"));
}

#[test]
fn reflection_questions_come_from_the_reflection_section() {
    let ctx = context(
        &briefing(),
        &Taxonomy::default(),
        Channel::Telegram,
        &input(None),
    );
    assert_eq!(
        ctx["item"]["reflection_questions"],
        json!(["What is daily life like for the child?"])
    );
    let finding = &sample_items()[1];
    let ctx = context(
        finding,
        &Taxonomy::default(),
        Channel::Telegram,
        &input(None),
    );
    assert_eq!(ctx["item"]["reflection_questions"], json!([]));
    assert_eq!(
        ctx["item"]["review_type"],
        json!("Local Child Safeguarding Practice Review")
    );
    assert_eq!(ctx["item"]["source"], Value::Null);
}

#[test]
fn a_review_finding_names_its_review_type_and_pseudonym() {
    let finding = &sample_items()[1];
    let text = default_renderer()
        .render(
            finding,
            &Taxonomy::default(),
            Channel::EmailText,
            &input(None),
        )
        .unwrap()
        .concat();
    assert!(text.contains("Learning from a Local Child Safeguarding Practice Review"));
    assert!(text.contains("the review about Child B"));
}

#[test]
fn channel_names_round_trip_and_unknown_ones_list_the_choices() {
    for channel in Channel::ALL {
        assert_eq!(channel.to_string().parse::<Channel>(), Ok(channel));
    }
    let err = "sms".parse::<Channel>().unwrap_err();
    assert!(
        err.help
            .contains("email-html, email-text, telegram, discord")
    );
}

#[test]
fn compiling_templates_takes_time_in_proportion_to_their_length() {
    // The best of three runs, so a busy machine does not decide the test.
    let seconds = |uses: usize| {
        let source = "Dear {{person.name}}, ".repeat(uses);
        (0..3)
            .map(|_| {
                let templates = vec![(
                    "seven-minute-briefing/email-text.hbs".to_owned(),
                    source.clone(),
                )];
                let start = std::time::Instant::now();
                Renderer::new(templates).unwrap();
                start.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let (small, large) = (seconds(1000), seconds(8000));
    // Eight times the text; quadratic time would be 64 times as long.
    assert!(
        large < 20.0 * small,
        "1,000 uses: {small:.3} s; 8,000 uses: {large:.3} s"
    );
}

#[test]
fn a_template_file_over_its_limit_is_refused_naming_the_file_its_size_and_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("seven-minute-briefing");
    std::fs::create_dir(&folder).unwrap();
    let path = folder.join("email-text.hbs");
    std::fs::write(&path, "x".repeat(256 * 1024 + 1)).unwrap();
    let errors = Renderer::load_dir(dir.path())
        .err()
        .expect("the template is refused");
    let message = errors[0].to_string();
    assert!(
        message.starts_with(&format!(
            "{}: the template is 262145 bytes; a template may be at most 262144 bytes (256 KB)",
            path.display()
        )),
        "{message}"
    );
    std::fs::write(&path, "x".repeat(256 * 1024)).unwrap();
    assert!(Renderer::load_dir(dir.path()).is_ok());
}

// ---------------------------------------------------------------------------
// OFFICIAL-SENSITIVE items: marked everywhere, never rendered in full for a
// destination that may not carry them, and a notice without their text.

fn sensitive(mut item: LearningItem) -> LearningItem {
    item.classification = Classification::OfficialSensitive;
    item.summary = Some("What we learned about missed health appointments.".to_owned());
    item
}

#[test]
fn a_sensitive_item_is_never_rendered_for_a_destination_that_carries_only_official() {
    let renderer = default_renderer();
    for item in sample_items().into_iter().map(sensitive) {
        for channel in Channel::ALL {
            let error = renderer
                .render(
                    &item,
                    &Taxonomy::default(),
                    channel,
                    &input(Some("https://a.example/ack/t")),
                )
                .unwrap_err();
            assert!(
                error.message.contains("OFFICIAL-SENSITIVE") && error.help.contains("notice"),
                "{error}"
            );
        }
    }
}

#[test]
fn every_message_of_a_sensitive_item_is_marked_at_the_top_and_emails_at_the_bottom_too() {
    let renderer = default_renderer();
    let input = RenderInput {
        carries: Classification::OfficialSensitive,
        ..input(Some("https://a.example/ack/t"))
    };
    for item in sample_items().into_iter().map(sensitive) {
        // Long enough that chat channels split it.
        let mut item = item;
        if let ItemKind::NewsletterItem(n) = &mut item.kind {
            n.body = "A paragraph about the learning.\n\n".repeat(400);
        }
        for channel in Channel::ALL {
            let chunks = renderer
                .render(&item, &Taxonomy::default(), channel, &input)
                .unwrap();
            for chunk in &chunks {
                let top = match channel {
                    Channel::EmailHtml => chunk
                        .split("<body")
                        .nth(1)
                        .and_then(|b| b.split_once('>'))
                        .map(|(_, rest)| rest.trim_start().to_owned())
                        .unwrap(),
                    _ => chunk.clone(),
                };
                assert!(
                    top.starts_with(&marking_top(channel, Classification::OfficialSensitive)),
                    "{channel} {}: {}",
                    item.id,
                    &chunk[..chunk.len().min(300)]
                );
                if let Some(limit) = channel.limit() {
                    assert!(utf16_len(chunk) <= limit, "{channel} chunk over its limit");
                }
            }
            if matches!(channel, Channel::EmailHtml | Channel::EmailText) {
                let end = chunks[0].trim_end().trim_end_matches("</html>").trim_end();
                let end = end.trim_end_matches("</body>").trim_end();
                assert!(
                    end.ends_with("OFFICIAL-SENSITIVE</p>") || end.ends_with("OFFICIAL-SENSITIVE"),
                    "{channel}: {}",
                    &end[end.len().saturating_sub(200)..]
                );
            }
            if item.kind_name() == "newsletter-item" && channel.limit().is_some() {
                assert!(chunks.len() > 1, "{channel} was not split");
            }
        }
    }
}

#[test]
fn an_official_item_carries_no_marking() {
    let renderer = default_renderer();
    for channel in Channel::ALL {
        let chunks = renderer
            .render(&briefing(), &Taxonomy::default(), channel, &input(None))
            .unwrap();
        assert!(!chunks.concat().contains("OFFICIAL"), "{channel}");
    }
}

#[test]
fn a_notice_says_the_title_summary_and_link_and_nothing_of_the_body() {
    for item in sample_items().into_iter().map(sensitive) {
        let notice = Notice::of(&item);
        for reason in [NoticeReason::Channel, NoticeReason::Address] {
            let input = NoticeInput {
                person_name: "Sam Patel".to_owned(),
                read_url: "https://a.example/ack/v1.k1.42.x".to_owned(),
                partnership_name: "Northshire Safeguarding Partnership".to_owned(),
                reason,
            };
            for channel in Channel::ALL {
                let text = render_notice(&notice, channel, &input);
                let marking = marking_top(channel, Classification::OfficialSensitive);
                let top = match channel {
                    Channel::EmailHtml => text
                        .split("<body")
                        .nth(1)
                        .unwrap()
                        .split_once('>')
                        .unwrap()
                        .1
                        .trim_start()
                        .to_owned(),
                    _ => text.clone(),
                };
                assert!(top.starts_with(&marking), "{channel}: {text}");
                assert!(
                    text.contains("missed health appointments"),
                    "{channel}: {text}"
                );
                assert!(
                    text.contains("https://a.example/ack/v1.k1.42.x"),
                    "{channel}: {text}"
                );
                for section in item.sections() {
                    let body_line = section.body.lines().find(|l| l.trim().len() > 20);
                    if let Some(line) = body_line {
                        assert!(
                            !text.contains(line.trim()),
                            "{channel} holds the body: {line}"
                        );
                    }
                }
            }
        }
    }
}

fn champion(ack_url: &str) -> RenderInput {
    RenderInput {
        confirm: Some(ConfirmLink {
            url: "https://a.example/confirm/t?x=1&y=2".to_owned(),
            teams: vec!["MASH".to_owned(), "Early Help <North>".to_owned()],
        }),
        ..input(Some(ack_url))
    }
}

#[test]
fn a_champions_email_carries_the_confirmation_link_and_names_their_teams() {
    let renderer = default_renderer();
    for item in sample_items() {
        let html = renderer
            .render(
                &item,
                &Taxonomy::default(),
                Channel::EmailHtml,
                &champion("https://a.example/ack/t"),
            )
            .unwrap()
            .concat();
        assert!(
            html.contains("href=\"https://a.example/confirm/t?x=1&amp;y=2\""),
            "{html}"
        );
        assert!(
            html.contains("You are a champion for MASH and Early Help &lt;North&gt;."),
            "{html}"
        );
        let text = renderer
            .render(
                &item,
                &Taxonomy::default(),
                Channel::EmailText,
                &champion("https://a.example/ack/t"),
            )
            .unwrap()
            .concat();
        assert!(
            text.lines()
                .any(|l| l == "https://a.example/confirm/t?x=1&y=2"),
            "{text}"
        );
        // Everyone else's email has no trace of it.
        for format in [Channel::EmailHtml, Channel::EmailText] {
            let plain = renderer
                .render(
                    &item,
                    &Taxonomy::default(),
                    format,
                    &input(Some("https://a.example/ack/t")),
                )
                .unwrap()
                .concat();
            assert!(!plain.contains("/confirm/") && !plain.contains("You are a champion"));
        }
    }
}

#[test]
fn templates_that_predate_the_confirmation_link_still_carry_it_for_a_champion() {
    let templates: Vec<(String, String)> = default_templates()
        .into_iter()
        .map(|(path, source)| {
            let source = match source.find("{{#if confirm.url}}") {
                Some(start) => {
                    let end = source[start..].find("{{/if}}").unwrap() + start + "{{/if}}".len();
                    format!("{}{}", &source[..start], &source[end..])
                }
                None => source,
            };
            (path, source)
        })
        .collect();
    assert!(templates.iter().all(|(_, s)| !s.contains("confirm.")));
    let renderer = Renderer::new(templates).unwrap();
    let item = briefing();
    let html = renderer
        .render(
            &item,
            &Taxonomy::default(),
            Channel::EmailHtml,
            &champion("https://a.example/ack/t"),
        )
        .unwrap()
        .concat();
    let link = html
        .find("<a href=\"https://a.example/confirm/t?x=1&amp;y=2\">record the team briefing</a>")
        .unwrap_or_else(|| panic!("{html}"));
    assert!(
        link < html.rfind("</body>").unwrap(),
        "inside the body: {html}"
    );
    let text = renderer
        .render(
            &item,
            &Taxonomy::default(),
            Channel::EmailText,
            &champion("https://a.example/ack/t"),
        )
        .unwrap()
        .concat();
    assert!(
        text.trim_end()
            .ends_with("https://a.example/confirm/t?x=1&y=2"),
        "{text}"
    );
    assert!(
        text.contains("You are a champion for MASH and Early Help <North>."),
        "{text}"
    );
    // Chat formats carry a button instead.
    let telegram = renderer
        .render(
            &item,
            &Taxonomy::default(),
            Channel::Telegram,
            &champion("https://a.example/ack/t"),
        )
        .unwrap()
        .concat();
    assert!(!telegram.contains("/confirm/"), "{telegram}");
}
