//! The HTML every email carries, as core's renderer produces it from the
//! default templates for each kind of item: real headings in order, alt
//! text, contrast of at least 4.5:1 (WCAG AA) for every colour on its
//! background, inline styles only (so clients that strip CSS lose
//! decoration, not meaning), and an acknowledgement link that is a real
//! text link, not an image, in HTML and a plain URL on its own line in text.

use cascade_engine::project::{Project, scaffold};
use cascade_render::{Channel, RenderInput};
use regex::Regex;

const ACK: &str = "https://learning.northbridge.example/ack/v1.k1.AbC-123_xyz";

/// Every item of the demo project (one with an image added) rendered for
/// `channel` with an acknowledgement link.
fn renders(channel: Channel) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    scaffold(dir.path()).unwrap();
    let briefing = dir.path().join("content/7mb-neglect-seeing-the-child.md");
    let text = std::fs::read_to_string(&briefing).unwrap();
    std::fs::write(
        &briefing,
        text.replacen(
            "## 2. Why it matters",
            "![A child's drawing of an empty fridge](https://learning.northbridge.example/fridge.png)\n\n## 2. Why it matters",
            1,
        ),
    )
    .unwrap();
    let project = Project::open(dir.path()).unwrap();
    let report = project.check();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let renderer = report.renderer.expect("the default templates compile");
    let input = RenderInput {
        person_name: "Zoë Brontë".to_owned(),
        ack_url: Some(ACK.to_owned()),
        ack_token: Some("v1.k1.AbC-123_xyz".to_owned()),
        partnership_name: project.config.partnership.name.clone(),
        carries: cascade_model::content::Classification::Official,
        confirm: None,
    };
    report
        .items
        .iter()
        .map(|loaded| {
            let chunks = renderer
                .render(&loaded.item, &project.taxonomy, channel, &input)
                .unwrap();
            (loaded.item.id.clone(), chunks.concat())
        })
        .collect()
}

fn hex(color: &str) -> [f64; 3] {
    let value = u32::from_str_radix(color, 16).unwrap();
    [value >> 16, (value >> 8) & 0xff, value & 0xff].map(|c| {
        let c = f64::from(c) / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    })
}

/// WCAG 2 contrast ratio of two `rrggbb` colours.
fn contrast(a: &str, b: &str) -> f64 {
    let luminance = |c: &str| {
        let [r, g, b] = hex(c);
        0.2126 * r + 0.7152 * g + 0.0722 * b
    };
    let (x, y) = (luminance(a), luminance(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

#[test]
fn headings_are_real_and_in_order() {
    let heading = Regex::new(r"<h([1-6])[ >]").unwrap();
    for (id, html) in renders(Channel::EmailHtml) {
        let levels: Vec<u32> = heading
            .captures_iter(&html)
            .map(|c| c[1].parse().unwrap())
            .collect();
        assert_eq!(
            levels.first(),
            Some(&1),
            "{id} starts with its title as <h1>"
        );
        assert_eq!(
            levels.iter().filter(|&&l| l == 1).count(),
            1,
            "{id}: one <h1>"
        );
        for pair in levels.windows(2) {
            assert!(
                pair[1] <= pair[0] + 1,
                "{id} skips a heading level: {levels:?}"
            );
        }
        assert!(
            html.contains("<html lang=\"en\">"),
            "{id} names its language"
        );
        assert!(html.contains("<title>"), "{id} has a title");
    }
}

#[test]
fn styles_are_inline_only_so_stripping_css_loses_no_content() {
    let style = Regex::new(r#" style="[^"]*""#).unwrap();
    for (id, html) in renders(Channel::EmailHtml) {
        assert!(!html.contains("<style"), "{id} has a <style> block");
        assert!(!html.contains(" class="), "{id} relies on classes");
        assert!(!html.contains("<link"), "{id} links a stylesheet");
        let stripped = style.replace_all(&html, "");
        assert!(
            stripped.contains(&format!("<a href=\"{ACK}\">Acknowledge")),
            "{id}: without CSS the acknowledgement is still a link that says what it does"
        );
    }
}

#[test]
fn images_have_alt_text_and_nothing_needs_an_image_to_be_read() {
    let image = Regex::new(r"<img[^>]*>").unwrap();
    let alt = Regex::new(r#"alt="([^"]+)""#).unwrap();
    let mut images = 0;
    for (id, html) in renders(Channel::EmailHtml) {
        for tag in image.find_iter(&html) {
            images += 1;
            let text = alt
                .captures(tag.as_str())
                .unwrap_or_else(|| panic!("{id}: an image without alt text: {}", tag.as_str()));
            assert!(!text[1].trim().is_empty());
        }
        let link = &html[html.find(&format!("<a href=\"{ACK}\"")).unwrap()..];
        let link = &link[..link.find("</a>").unwrap()];
        assert!(
            !link.contains("<img"),
            "{id}: the acknowledgement link is text, not an image"
        );
    }
    assert_eq!(images, 1, "the image added to the briefing is rendered");
}

#[test]
fn every_colour_has_at_least_4_5_to_1_contrast_with_its_background() {
    let style = Regex::new(r#"style="([^"]*)""#).unwrap();
    let color = Regex::new(r"(?:^|;)\s*color:\s*#([0-9a-fA-F]{6})").unwrap();
    let background = Regex::new(r"background(?:-color)?:\s*#([0-9a-fA-F]{6})").unwrap();
    for (id, html) in renders(Channel::EmailHtml) {
        let styles: Vec<&str> = style
            .captures_iter(&html)
            .map(|c| c.get(1).unwrap().as_str())
            .collect();
        // Text without a background of its own may sit on any container's.
        let containers: Vec<String> = styles
            .iter()
            .filter(|s| color.captures(s).is_none())
            .filter_map(|s| background.captures(s).map(|c| c[1].to_owned()))
            .chain(["ffffff".to_owned()])
            .collect();
        for s in &styles {
            let Some(fg) = color.captures(s) else {
                continue;
            };
            let backgrounds: Vec<String> = match background.captures(s) {
                Some(own) => vec![own[1].to_owned()],
                None => containers.clone(),
            };
            for bg in backgrounds {
                let ratio = contrast(&fg[1], &bg);
                assert!(
                    ratio >= 4.5,
                    "{id}: #{} on #{bg} is {ratio:.2}:1 in {s}",
                    &fg[1]
                );
            }
        }
    }
}

#[test]
fn the_text_part_has_the_acknowledgement_url_on_a_line_of_its_own() {
    for (id, text) in renders(Channel::EmailText) {
        assert!(text.lines().any(|line| line.trim() == ACK), "{id}:\n{text}");
        assert!(!text.contains("<a "), "{id} has markup in plain text");
    }
}
