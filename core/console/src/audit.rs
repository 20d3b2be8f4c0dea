//! The audit log: every change made through the console (and account
//! changes made by `cascade users`), with who, what, when and the SHA-256
//! of what changed before and after. Admins read it here and export it.

use crate::Console;
use crate::auth::Role;
use crate::html::{self, esc, page};
use crate::session::{self, Signed};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cascade_model::time::{from_millis, millis};
use cascade_store::{Accounts, AllStores, AuditEntry};
use chrono::{DateTime, Utc};
use std::fmt::Write as _;
use std::sync::Arc;

/// How many entries the page and the export show.
const SHOWN: u32 = 1000;

/// An audit entry.
pub(crate) fn entry(
    at: DateTime<Utc>,
    user_id: Option<i64>,
    user_name: &str,
    action: &str,
    target: &str,
    before_hash: Option<String>,
    after_hash: Option<String>,
) -> AuditEntry {
    AuditEntry {
        at: millis(at),
        user_id,
        user_name: user_name.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        before_hash,
        after_hash,
    }
}

/// Writes an audit entry of a change `signed` made now; the page to show
/// instead when the log cannot be written.
pub(crate) async fn record<S: AllStores + Accounts>(
    console: &Console<S>,
    signed: &Signed,
    action: &str,
    target: &str,
    before_hash: Option<String>,
    after_hash: Option<String>,
) -> Result<(), Response> {
    let entry = entry(
        console.now(),
        Some(signed.user.id),
        &signed.user.name,
        action,
        target,
        before_hash,
        after_hash,
    );
    console
        .store
        .audit(&entry)
        .await
        .map_err(|e| html::failed(Some(&signed.viewer()), "cannot write the audit log", &e))
}

fn short(hash: &Option<String>) -> String {
    hash.as_deref()
        .map_or("-".to_owned(), |h| h[..12.min(h.len())].to_owned())
}

pub(crate) async fn audit<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
) -> Response {
    let signed = match session::page_for(&console, &headers, Role::administers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let entries = match console.store.audit_log(SHOWN).await {
        Ok(e) => e,
        Err(e) => return html::failed(Some(&signed.viewer()), "cannot read the audit log", &e),
    };
    let mut body = String::from(
        "<h1>Audit log</h1>\n<p>Every change made through the console, newest first. <a href=\"/console/audit.csv\">Download the audit log as CSV</a>.</p>\n",
    );
    if entries.is_empty() {
        body.push_str("<p>Nothing has been changed yet.</p>");
    } else {
        body.push_str(
            "<div class=\"table-wrap\"><table>\n<caption class=\"visually-hidden\">Changes, newest first</caption>\n\
             <thead><tr><th scope=\"col\">When (UTC)</th><th scope=\"col\">Who</th><th scope=\"col\">What</th><th scope=\"col\">Of</th><th scope=\"col\">Before</th><th scope=\"col\">After</th></tr></thead>\n<tbody>\n",
        );
        for e in &entries {
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                from_millis(e.at).format("%Y-%m-%d %H:%M:%S"),
                esc(&e.user_name),
                esc(&e.action),
                esc(&e.target),
                esc(&short(&e.before_hash)),
                esc(&short(&e.after_hash)),
            );
        }
        body.push_str("</tbody></table></div>");
    }
    page(StatusCode::OK, "Audit log", Some(&signed.viewer()), &body)
}

/// A CSV cell; text a spreadsheet would run as a formula gets a leading `'`.
fn cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

pub(crate) async fn audit_csv<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
) -> Response {
    let signed = match session::page_for(&console, &headers, Role::administers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let entries = match console.store.audit_log(SHOWN).await {
        Ok(e) => e,
        Err(e) => return html::failed(Some(&signed.viewer()), "cannot read the audit log", &e),
    };
    let mut csv =
        String::from("at_utc,user_id,user_name,action,target,before_sha256,after_sha256\n");
    for e in &entries {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{}",
            from_millis(e.at).to_rfc3339(),
            e.user_id.map(|i| i.to_string()).unwrap_or_default(),
            cell(&e.user_name),
            cell(&e.action),
            cell(&e.target),
            e.before_hash.as_deref().unwrap_or_default(),
            e.after_hash.as_deref().unwrap_or_default(),
        );
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"cascade-audit.csv\"",
            ),
        ],
        csv,
    )
        .into_response()
}
