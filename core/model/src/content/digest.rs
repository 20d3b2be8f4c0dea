//! A newsletter issue as one item, for digest rollouts: every article of the
//! issue in one message per person. The articles become `##` sections of one
//! newsletter item (their own `##` headings drop to `###`), after a short
//! "In this issue" list, each with its links; the item's themes and privacy
//! exceptions are the articles' together. Its source is written and parsed
//! back, so it is versioned, stored and rendered like any other item, and
//! one acknowledgement covers the issue.

use super::parse::{LoadedItem, parse_item};
use super::{
    CheckQuestion, Classification, ItemKind, LearningItem, MAX_CHECK_QUESTIONS, NewsletterItem,
    Status, Taxonomy, Version, slugify,
};
use chrono::NaiveDate;
use std::path::Path;

/// The id of an issue's digest item, e.g. `partnership-matters-2026-12`.
pub fn digest_id(newsletter: &str, issue: &str) -> String {
    format!("{}-{issue}", slugify(newsletter))
}

/// "December 2026" for `2026-12`; the issue as written if it is not a month.
fn issue_label(issue: &str) -> String {
    NaiveDate::parse_from_str(&format!("{issue}-01"), "%Y-%m-%d")
        .map(|d| d.format("%B %Y").to_string())
        .unwrap_or_else(|_| issue.to_owned())
}

/// Lowers each `#`-heading outside fenced code one level, so an article's
/// own sections sit below its title.
pub(super) fn demote_headings(body: &str) -> String {
    let mut fence: Option<&str> = None;
    let mut out = Vec::new();
    for line in body.lines() {
        let trimmed = line.trim_start();
        if let Some(f) = fence {
            if trimmed.starts_with(f) {
                fence = None;
            }
            out.push(line.to_owned());
        } else if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(&trimmed[..3]);
            out.push(line.to_owned());
        } else if line.starts_with('#') && line.trim_start_matches('#').starts_with(' ') {
            out.push(format!("#{line}"));
        } else {
            out.push(line.to_owned());
        }
    }
    out.join("\n")
}

/// The check questions of an issue built from `articles`: the articles'
/// own, in turn (each article's first, then each one's second, ...), at
/// most the [`MAX_CHECK_QUESTIONS`] an item carries, each pointing to its
/// article's `##` section of the issue (the article's own sections are
/// `###` there). A question asked word for word by two articles is asked
/// once.
pub(super) fn gathered_questions(articles: &[&LoadedItem]) -> Vec<CheckQuestion> {
    let mut out: Vec<CheckQuestion> = Vec::new();
    let most = articles
        .iter()
        .map(|a| a.item.check_questions.len())
        .max()
        .unwrap_or(0);
    for n in 0..most {
        for article in articles {
            let Some(q) = article.item.check_questions.get(n) else {
                continue;
            };
            if out.len() == MAX_CHECK_QUESTIONS {
                return out;
            }
            if out.iter().any(|o| o.digest() == q.digest()) {
                continue;
            }
            out.push(CheckQuestion {
                section: article.item.title.clone(),
                ..q.clone()
            });
        }
    }
    out
}

/// The issue `issue` of `newsletter` as one item built from `articles` (in
/// the order given), placed at `path` for messages about it.
pub fn newsletter_issue(
    newsletter: &str,
    issue: &str,
    articles: &[&LoadedItem],
    taxonomy: &Taxonomy,
    path: &Path,
) -> Result<LoadedItem, String> {
    let mut body = String::from("In this issue:\n\n");
    for article in articles {
        body.push_str(&format!("- {}\n", article.item.title));
    }
    let mut themes: Vec<String> = Vec::new();
    let mut privacy_allow = Vec::new();
    let mut status = Status::Published;
    for article in articles {
        let item = &article.item;
        let ItemKind::NewsletterItem(n) = &item.kind else {
            return Err(format!("{} is not a newsletter item", item.id));
        };
        body.push_str(&format!(
            "\n## {}\n\n{}\n",
            item.title,
            demote_headings(&n.body)
        ));
        if !item.links.is_empty() {
            body.push_str("\nRead more:\n\n");
            for link in &item.links {
                body.push_str(&format!("- [{}]({})\n", link.title, link.url));
            }
        }
        add_new(&mut themes, &item.themes);
        add_new(&mut privacy_allow, &item.privacy_allow);
        // The issue is no more public than its least public article.
        status = match (status, item.status) {
            (Status::Internal, _) | (_, Status::Internal) => Status::Internal,
            (Status::Published, Status::Published) => Status::Published,
            _ => Status::Approved,
        };
    }
    // The issue is as sensitive as its most sensitive article.
    let classification = articles
        .iter()
        .map(|a| a.item.classification)
        .max()
        .unwrap_or_default();
    let summary = (classification != Classification::Official).then(|| {
        format!(
            "{} articles of {newsletter}, {}",
            articles.len(),
            issue_label(issue)
        )
    });
    let item = LearningItem {
        id: digest_id(newsletter, issue),
        title: format!("{newsletter}: {}", issue_label(issue)),
        themes,
        status,
        links: Vec::new(),
        privacy_allow,
        what_changed: None,
        check_questions: gathered_questions(articles),
        refresher: Vec::new(),
        classification,
        summary,
        kind: ItemKind::NewsletterItem(NewsletterItem {
            newsletter: newsletter.to_owned(),
            issue: issue.to_owned(),
            body: body.trim_end().to_owned(),
        }),
        version: Version(String::new()),
    };
    written_and_read_back(&item, taxonomy, path)
}

/// A built item written as its source and parsed back, so it is versioned,
/// stored and rendered like any item from the content folder.
pub(super) fn written_and_read_back(
    item: &LearningItem,
    taxonomy: &Taxonomy,
    path: &Path,
) -> Result<LoadedItem, String> {
    let text = item.to_markdown();
    let item = parse_item(path, &text, taxonomy).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok(LoadedItem {
        item,
        path: path.to_owned(),
        text,
    })
}

/// Adds to `into` each of `values` it does not yet hold, in order.
pub(super) fn add_new<T: PartialEq + Clone>(into: &mut Vec<T>, values: &[T]) {
    for value in values {
        if !into.contains(value) {
            into.push(value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_article_s_own_headings_drop_one_level_outside_code() {
        let body = "Intro\n\n## Part one\n\ntext\n\n```\n## not a heading\n```\n#hashtag";
        assert_eq!(
            demote_headings(body),
            "Intro\n\n### Part one\n\ntext\n\n```\n## not a heading\n```\n#hashtag"
        );
    }

    #[test]
    fn an_issue_reads_as_its_month() {
        assert_eq!(issue_label("2026-12"), "December 2026");
        assert_eq!(issue_label("Winter"), "Winter");
        assert_eq!(
            digest_id("Partnership Matters", "2026-12"),
            "partnership-matters-2026-12"
        );
    }
}
