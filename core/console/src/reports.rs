//! Reports: `cascade report` in the browser. The same engine calls
//! (`report::generate`, then `report::render` for the downloads and
//! `report::html_sections` for the page), so a download is byte for byte
//! what the CLI writes for the same choice. A period or one rollout, and
//! a grouping that narrows what the page shows (the downloads are whole).
//! Reports come through the console's `ReportCache`: equal to
//! `report::generate` at the moment asked, computed again only when a row
//! they read has changed or a wave's deadline has passed.

use crate::Console;
use crate::auth::Role;
use crate::html::{self, esc, page};
use crate::session::{self, Signed};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cascade_engine::project::Project;
use cascade_engine::report::{self, AnswerBy, Format, Report, ReportError, SectionKind, Selection};
use cascade_model::rollout::Calendar;
use cascade_store::{Accounts, AllStores};
use chrono::NaiveDate;
use serde::Deserialize;
use std::fmt::Write as _;
use std::sync::Arc;

/// What the chooser asks. Every field is text as typed, so a bad date is
/// shown back with its error rather than refused by the extractor.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Choice {
    #[serde(default)]
    rollout: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    group: String,
}

/// The groupings a reader may narrow the page to; `""` shows them all.
const GROUPS: [(&str, &str); 7] = [
    ("", "Every grouping"),
    ("agency", "Agency"),
    ("team", "Team"),
    ("role", "Role"),
    ("champion-theme", "Champion theme"),
    ("wave", "Wave"),
    ("rollout", "Rollout"),
];

/// The selection the choice makes, or what is wrong with it (by field).
/// Without a rollout or dates: every rollout created in the last year.
fn selection(choice: &Choice, today: NaiveDate) -> Result<Selection, Vec<(String, String)>> {
    if !choice.rollout.is_empty() {
        return Ok(Selection::Rollout(choice.rollout.clone()));
    }
    let mut errors = Vec::new();
    let mut date = |field: &str, text: &str, default: NaiveDate| {
        if text.trim().is_empty() {
            return Some(default);
        }
        let parsed = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok();
        if parsed.is_none() {
            errors.push((
                field.to_owned(),
                format!(
                    "Enter the {} date as year-month-day, for example 2027-03-31",
                    if field == "from" { "first" } else { "last" }
                ),
            ));
        }
        parsed
    };
    let from = date("from", &choice.from, today - chrono::Duration::days(365));
    let to = date("to", &choice.to, today);
    match (from, to) {
        (Some(from), Some(to)) if to < from => Err(vec![(
            "to".to_owned(),
            "Enter a last date on or after the first date".to_owned(),
        )]),
        (Some(from), Some(to)) => Ok(Selection::Partnership { from, to }),
        _ => Err(errors),
    }
}

/// The report for a choice, or the page that says why there is none.
async fn generate<S: AllStores + Accounts>(
    console: &Console<S>,
    signed: &Signed,
    choice: &Choice,
) -> Result<Result<Report, Vec<(String, String)>>, Response> {
    let viewer = signed.viewer();
    let project = Project::open(&console.root)
        .map_err(|e| html::failed(Some(&viewer), "cannot open the project", &e))?;
    let calendar = Calendar::new(
        &project.config.partnership.time_zone,
        project.config.partnership.quiet_hours,
    )
    .map_err(|e| html::failed(Some(&viewer), "cannot read the time zone", &e))?;
    let now = console.now();
    let today = now.with_timezone(&calendar.time_zone()).date_naive();
    let selection = match selection(choice, today) {
        Ok(s) => s,
        Err(errors) => return Ok(Err(errors)),
    };
    // Kept between requests until a row it is computed from changes (or
    // a wave's deadline passes): equal to `report::generate` at `now`.
    match console
        .reports
        .generate(
            &*console.store,
            &selection,
            &calendar,
            &project.taxonomy,
            now,
        )
        .await
    {
        Ok(report) => Ok(Ok(report)),
        Err(ReportError::UnknownRollout(_)) => Ok(Err(vec![(
            "rollout".to_owned(),
            "Choose a rollout from the list".to_owned(),
        )])),
        Err(e) => Err(html::failed(Some(&viewer), "cannot make a report", &e)),
    }
}

/// The report narrowed to one grouping (with the totals kept).
fn narrowed(mut report: Report, group: &str) -> Report {
    if group.is_empty() {
        return report;
    }
    report
        .sections
        .retain(|s| s.kind == SectionKind::Total || s.kind.id() == group);
    let answers = match group {
        "agency" => Some(AnswerBy::Agency),
        "champion-theme" => Some(AnswerBy::ChampionTheme),
        _ => None,
    };
    report
        .answers
        .retain(|a| a.by == AnswerBy::Total || Some(a.by) == answers);
    report
}

/// The query string that asks for the same report again.
fn query(choice: &Choice) -> String {
    let mut pairs = Vec::new();
    for (key, value) in [
        ("rollout", &choice.rollout),
        ("from", &choice.from),
        ("to", &choice.to),
    ] {
        if !value.is_empty() {
            pairs.push(format!("{key}={}", percent_encode(value)));
        }
    }
    pairs.join("&amp;")
}

/// Percent-encodes a query value (everything but unreserved characters).
fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn chooser(rollouts: &[String], choice: &Choice, errors: &[(String, String)]) -> String {
    let mut body = html::error_summary(errors);
    body.push_str(
        "<h1>Reports</h1>\n<p>The evidence <code>cascade report</code> gives: who received, acknowledged and acted on the learning. Choose one rollout, or a period for every rollout started in it.</p>\n\
         <form method=\"get\" action=\"/console/reports\" novalidate>\n",
    );
    let _ = write!(
        body,
        "<div class=\"field\"><label for=\"rollout\">Rollout</label>{}<select class=\"input\" id=\"rollout\" name=\"rollout\"><option value=\"\">Every rollout started in the period</option>",
        html::field_error(errors, "rollout")
    );
    for id in rollouts {
        let _ = write!(
            body,
            "<option value=\"{}\"{}>{}</option>",
            esc(id),
            if *id == choice.rollout {
                " selected"
            } else {
                ""
            },
            esc(id)
        );
    }
    body.push_str("</select></div>\n");
    for (field, label) in [("from", "First day"), ("to", "Last day")] {
        let value = if field == "from" {
            &choice.from
        } else {
            &choice.to
        };
        let _ = writeln!(
            body,
            "<div class=\"field\"><label for=\"{field}\">{label} of the period</label><p class=\"hint\" id=\"{field}-hint\">For example 2027-03-31. Leave both empty for the last year.</p>{}<input class=\"input{}\" id=\"{field}\" name=\"{field}\" type=\"date\" aria-describedby=\"{field}-hint\" value=\"{}\"></div>",
            html::field_error(errors, field),
            if errors.iter().any(|(f, _)| f == field) {
                " input-error"
            } else {
                ""
            },
            esc(value)
        );
    }
    body.push_str("<div class=\"field\"><label for=\"group\">Grouping to show</label><select class=\"input\" id=\"group\" name=\"group\">");
    for (value, label) in GROUPS {
        let _ = write!(
            body,
            "<option value=\"{value}\"{}>{label}</option>",
            if value == choice.group {
                " selected"
            } else {
                ""
            }
        );
    }
    body.push_str("</select></div>\n<button class=\"button\" type=\"submit\">Show the report</button>\n</form>\n");
    body
}

pub(crate) async fn reports<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
    Query(choice): Query<Choice>,
) -> Result<Response, Response> {
    let signed = session::page_for(&console, &headers, Role::reads_everything).await?;
    let viewer = signed.viewer();
    let rollouts: Vec<String> = console
        .store
        .rollouts()
        .await
        .map_err(|e| html::failed(Some(&viewer), "cannot read rollouts", &e))?
        .into_iter()
        .map(|r| r.id)
        .collect();
    let report = match generate(&console, &signed, &choice).await? {
        Ok(report) => report,
        Err(errors) => {
            return Ok(page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Reports",
                Some(&viewer),
                &chooser(&rollouts, &choice, &errors),
            ));
        }
    };
    let mut body = chooser(&rollouts, &choice, &[]);
    let query = query(&choice);
    let (title, generated) = (esc(&report.title), esc(&report.generated));
    let _ = write!(
        body,
        "<h2>{title}</h2>\n<p>Figures as at {generated}. Download the whole report <a href=\"/console/reports/report.csv?{query}\" download>as CSV</a> or <a href=\"/console/reports/report.html?{query}\" download>as an HTML page</a>, the same files <code>cascade report --format csv</code> and <code>--format html</code> write.</p>\n<div class=\"report\">\n{}</div>\n",
        report::html_sections(&narrowed(report, &choice.group))
    );
    Ok(page(StatusCode::OK, "Reports", Some(&viewer), &body))
}

/// `report.csv` or `report.html`: the whole report, as the CLI writes it.
pub(crate) async fn download<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    axum::extract::Path(file): axum::extract::Path<String>,
    headers: HeaderMap,
    Query(choice): Query<Choice>,
) -> Result<Response, Response> {
    let signed = session::page_for(&console, &headers, Role::reads_everything).await?;
    let viewer = signed.viewer();
    let (format, content_type) = match file.as_str() {
        "report.csv" => (Format::Csv, "text/csv; charset=utf-8"),
        "report.html" => (Format::Html, "text/html; charset=utf-8"),
        _ => return Err(html::not_found(Some(&viewer), "There is no such download.")),
    };
    let report = match generate(&console, &signed, &choice).await? {
        Ok(report) => report,
        Err(errors) => {
            return Err(html::message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "This report cannot be made",
                Some(&viewer),
                &errors
                    .into_iter()
                    .map(|(_, m)| m)
                    .collect::<Vec<_>>()
                    .join(". "),
            ));
        }
    };
    let disposition = format!("attachment; filename=\"cascade-{file}\"");
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        report::render(&report, format),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(rollout: &str, from: &str, to: &str) -> Choice {
        Choice {
            rollout: rollout.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
            group: String::new(),
        }
    }

    #[test]
    fn a_period_defaults_to_the_last_year_and_a_bad_date_names_its_field() {
        let today = NaiveDate::from_ymd_opt(2027, 3, 31).unwrap();
        assert_eq!(
            selection(&choice("", "", ""), today),
            Ok(Selection::Partnership {
                from: NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
                to: today
            })
        );
        let errors = selection(&choice("", "31/03/2027", ""), today).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, "from");
        let errors = selection(&choice("", "2027-03-02", "2027-03-01"), today).unwrap_err();
        assert_eq!(errors[0].0, "to");
        assert_eq!(
            selection(&choice("r-1", "bad", ""), today),
            Ok(Selection::Rollout("r-1".to_owned()))
        );
    }

    #[test]
    fn a_query_value_is_percent_encoded() {
        assert_eq!(
            query(&choice("a b&c", "", "2027-01-01")),
            "rollout=a%20b%26c&amp;to=2027-01-01"
        );
    }
}
