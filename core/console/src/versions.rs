//! One version of an item, as the store recorded it, and what changed
//! since the version before it: a line-by-line comparison of the two
//! files (front matter and Markdown), with unchanged lines around each
//! change. Added and removed lines are marked by a sign and by words a
//! screen reader reads out, not by colour alone.

use crate::Console;
use crate::auth::Role;
use crate::html::{self, esc, page};
use crate::session;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cascade_store::{Accounts, AllStores, StoredItem};
use similar::{ChangeTag, TextDiff};
use std::fmt::Write as _;
use std::sync::Arc;

/// Unchanged lines shown before and after each change.
const CONTEXT: usize = 3;

/// `/console/content/{id}/versions/{version}`: the version's text, or what
/// changed since the one before. `version` is the full version or any
/// unambiguous start of it (the item page shows the first 12 digits).
pub(crate) async fn version<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path((id, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let signed = match session::page_for(&console, &headers, Role::reads_everything).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let viewer = signed.viewer();
    let versions = match console.store.item_versions(&id).await {
        Ok(v) => v,
        Err(e) => return html::failed(Some(&viewer), "cannot read item versions", &e),
    };
    let found: Vec<usize> = if version.len() >= 6 && version.bytes().all(|b| b.is_ascii_hexdigit())
    {
        (0..versions.len())
            .filter(|&n| versions[n].version.0.starts_with(&version))
            .collect()
    } else {
        Vec::new()
    };
    let [at] = found[..] else {
        return html::not_found(
            Some(&viewer),
            "This item has no version with that number. The item's page lists every version.",
        );
    };
    let this = &versions[at];
    let mut body = format!(
        "<span class=\"caption\">{}</span>\n<h1>Version {} of this item</h1>\n<dl class=\"summary\"><dt>Id</dt><dd>{}</dd><dt>Status</dt><dd>{}</dd><dt>First seen</dt><dd>{}</dd><dt>Version</dt><dd><code>{}</code></dd></dl>\n",
        esc(&this.title),
        esc(this.version.short()),
        esc(&this.id),
        esc(&this.status),
        this.first_seen_at.format("%-d %B %Y %H:%M UTC"),
        esc(&this.version.0),
    );
    match at.checked_sub(1).map(|n| &versions[n]) {
        None => {
            let _ = writeln!(
                body,
                "<h2>What changed</h2>\n<p>This is the first version the store recorded, so there is nothing to compare it with. Its whole text is below.</p>\n<pre tabindex=\"0\">{}</pre>",
                esc(&this.source)
            );
        }
        Some(before) => body.push_str(&changes(before, this)),
    }
    let _ = writeln!(
        body,
        "<p><a href=\"/console/content/{}\">Back to the item</a></p>",
        esc(&this.id)
    );
    page(
        StatusCode::OK,
        &format!("Version {} of {}", this.version.short(), this.title),
        Some(&viewer),
        &body,
    )
}

/// The changes from `before` to `after`, as lists of lines with their
/// numbers in the newer file.
fn changes(before: &StoredItem, after: &StoredItem) -> String {
    let diff = TextDiff::from_lines(&before.source, &after.source);
    let groups = diff.grouped_ops(CONTEXT);
    let (mut added, mut removed) = (0usize, 0usize);
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Insert => added += 1,
            ChangeTag::Delete => removed += 1,
            ChangeTag::Equal => {}
        }
    }
    let mut body = format!(
        "<h2>What changed since version {}</h2>\n<p>Compared with version <a href=\"/console/content/{}/versions/{}\"><code>{}</code></a> (first seen {}): {} and {}.</p>\n",
        esc(before.version.short()),
        esc(&before.id),
        esc(before.version.short()),
        esc(before.version.short()),
        before.first_seen_at.format("%-d %B %Y %H:%M UTC"),
        lines(added, "added"),
        lines(removed, "removed"),
    );
    if groups.is_empty() {
        body.push_str("<p>The text is the same; only how the store recorded it differs.</p>\n");
        return body;
    }
    body.push_str("<p class=\"hint\">Removed lines are marked with a minus sign and added lines with a plus sign; the lines around them did not change.</p>\n");
    for (n, group) in groups.iter().enumerate() {
        let first = group
            .first()
            .map(|op| op.new_range().start + 1)
            .unwrap_or(1);
        let _ = writeln!(
            body,
            "<h3 class=\"diff-heading\">Change {} of {}, near line {first}</h3>\n<ol class=\"diff\">",
            n + 1,
            groups.len()
        );
        for op in group {
            for change in diff.iter_changes(op) {
                let text = esc(change.value().trim_end_matches(['\n', '\r']));
                let _ = match change.tag() {
                    ChangeTag::Equal => writeln!(
                        body,
                        "<li class=\"diff-same\"><span class=\"diff-sign\" aria-hidden=\"true\"> </span><span>{text}</span></li>"
                    ),
                    ChangeTag::Delete => writeln!(
                        body,
                        "<li class=\"diff-removed\"><span class=\"diff-sign\" aria-hidden=\"true\">-</span><del><span class=\"visually-hidden\">Removed: </span>{text}</del></li>"
                    ),
                    ChangeTag::Insert => writeln!(
                        body,
                        "<li class=\"diff-added\"><span class=\"diff-sign\" aria-hidden=\"true\">+</span><ins><span class=\"visually-hidden\">Added: </span>{text}</ins></li>"
                    ),
                };
            }
        }
        body.push_str("</ol>\n");
    }
    body
}

fn lines(n: usize, what: &str) -> String {
    match n {
        0 => format!("no line {what}"),
        1 => format!("1 line {what}"),
        n => format!("{n} lines {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_model::content::Version;
    use chrono::Utc;

    fn stored(version: &str, source: &str) -> StoredItem {
        StoredItem {
            id: "neglect-7mb".into(),
            version: Version(version.into()),
            kind: "seven-minute-briefing".into(),
            title: "Neglect".into(),
            status: "draft".into(),
            embargoed_until: None,
            source: source.into(),
            first_seen_at: Utc::now(),
        }
    }

    #[test]
    fn a_changed_line_shows_as_removed_then_added_with_its_context_and_escaped() {
        let before = stored(
            "aaaaaaaaaaaaaaaa",
            "one\ntwo\nthree\nfour <b>\nfive\nsix\nseven\neight\nnine\nten\n11\n12\n13\n14\n15\n",
        );
        let after = stored(
            "bbbbbbbbbbbbbbbb",
            "one\ntwo\nthree\nfour <i>\nfive\nsix\nseven\neight\nnine\nten\n11\n12\n13\n14\n15\nsixteen\n",
        );
        let html = changes(&before, &after);
        assert!(html.contains("2 lines added and 1 line removed"), "{html}");
        assert!(
            html.contains(
                "<del><span class=\"visually-hidden\">Removed: </span>four &lt;b&gt;</del>"
            ),
            "{html}"
        );
        assert!(
            html.contains(
                "<ins><span class=\"visually-hidden\">Added: </span>four &lt;i&gt;</ins>"
            ),
            "{html}"
        );
        assert!(html.contains("<ins><span class=\"visually-hidden\">Added: </span>sixteen</ins>"));
        // Three lines of context either side, not the whole file.
        assert!(html.contains("<span>one</span>"));
        assert!(html.contains("<span>seven</span>"));
        assert!(!html.contains("<span>ten</span>"), "{html}");
        assert!(html.contains("Change 1 of 2, near line 1"), "{html}");
        assert!(html.contains("Change 2 of 2, near line 13"), "{html}");
    }

    #[test]
    fn identical_texts_say_so() {
        let html = changes(&stored("aaaaaa", "same\n"), &stored("bbbbbb", "same\n"));
        assert!(html.contains("no line added and no line removed"));
        assert!(html.contains("The text is the same"));
    }
}
