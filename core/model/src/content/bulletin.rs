//! One issue of a recurring bulletin as one item: the items an occurrence
//! gathered, each a `##` section (their own sections one level below),
//! after an "In this issue" list. Built as a newsletter item of the
//! bulletin's name and written and parsed back, like a newsletter digest,
//! so every issue is versioned, stored and rendered like any other item
//! and acknowledged as one.

use super::digest::{add_new, demote_headings, gathered_questions, written_and_read_back};
use super::parse::LoadedItem;
use super::{
    Classification, ItemKind, LearningItem, NewsletterItem, Status, Taxonomy, Version, slugify,
};
use chrono::NaiveDate;
use std::path::Path;

/// The id of the issue of bulletin `bulletin` (a rollout id) on `date`,
/// e.g. `practice-bulletin-2027-01-05`; also its rollout's id.
pub fn bulletin_issue_id(bulletin: &str, date: NaiveDate) -> String {
    format!("{}-{}", slugify(bulletin), date.format("%Y-%m-%d"))
}

/// The issue of the bulletin `title` (rollout `bulletin`) on `date`,
/// built from `items` in the order given, placed at `path` for messages
/// about it. Its themes are the items', or `themes` when it has none (an
/// issue planned before anything new is published).
pub fn bulletin_issue(
    bulletin: &str,
    title: &str,
    date: NaiveDate,
    items: &[&LoadedItem],
    themes_if_empty: &[String],
    taxonomy: &Taxonomy,
    path: &Path,
) -> Result<LoadedItem, String> {
    let mut body = String::from("In this issue:\n\n");
    for loaded in items {
        body.push_str(&format!("- {}\n", loaded.item.title));
    }
    let mut themes: Vec<String> = Vec::new();
    let mut privacy_allow = Vec::new();
    let mut status = Status::Published;
    for loaded in items {
        let item = &loaded.item;
        body.push_str(&format!("\n## {}\n", item.title));
        for section in item.sections() {
            if section.title.is_empty() {
                body.push_str(&format!("\n{}\n", demote_headings(&section.body)));
            } else {
                body.push_str(&format!(
                    "\n### {}\n\n{}\n",
                    section.title,
                    demote_headings(&demote_headings(&section.body))
                ));
            }
        }
        if !item.links.is_empty() {
            body.push_str("\nRead more:\n\n");
            for link in &item.links {
                body.push_str(&format!("- [{}]({})\n", link.title, link.url));
            }
        }
        add_new(&mut themes, &item.themes);
        add_new(&mut privacy_allow, &item.privacy_allow);
        // The issue is no more public than its least public item.
        if item.status == Status::Internal {
            status = Status::Internal;
        }
    }
    if themes.is_empty() {
        themes = themes_if_empty.to_vec();
    }
    // The issue is as sensitive as its most sensitive item.
    let classification = items
        .iter()
        .map(|l| l.item.classification)
        .max()
        .unwrap_or_default();
    let day = date.format("%-d %B %Y");
    let summary = (classification != Classification::Official)
        .then(|| format!("{} items of {title}, {day}", items.len()));
    let item = LearningItem {
        id: bulletin_issue_id(bulletin, date),
        title: format!("{title}: {day}"),
        themes,
        status,
        links: Vec::new(),
        privacy_allow,
        what_changed: None,
        check_questions: gathered_questions(items),
        refresher: Vec::new(),
        classification,
        summary,
        kind: ItemKind::NewsletterItem(NewsletterItem {
            newsletter: title.to_owned(),
            issue: date.format("%Y-%m").to_string(),
            body: body.trim_end().to_owned(),
        }),
        version: Version(String::new()),
    };
    written_and_read_back(&item, taxonomy, path)
}
