//! Induction completion (issue 23): for each key item of the induction,
//! the share of joiners who acknowledged it within the induction's
//! deadline (counted from the day each joined), by agency and team as
//! they were when they joined. Leavers are left out of every figure:
//! they no longer can. [`generate`] reads the key items' rollouts,
//! [`compute`] is pure, and the three writers render it.

use super::ReportError;
use super::annual::Value;
use super::html::esc;
use cascade_model::rollout::{Calendar, RolloutDefinition};
use cascade_model::time::from_millis;
use cascade_store::{DirectoryRows, ReportRollout, Reports, RolloutState, Store};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One key item, in the induction's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyItem {
    pub rollout_id: String,
    pub item_id: String,
    pub title: String,
}

/// One agency or team: per key item, joiners who acknowledged within the
/// deadline over joiners (leavers left out), and those whose deadline is
/// still to come without an acknowledgement yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// `partnership`, `agency` or `team`.
    pub level: &'static str,
    pub key: String,
    pub name: String,
    pub items: Vec<ItemCompletion>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ItemCompletion {
    /// Acknowledged within the deadline, of joiners who have not left.
    pub on_time: Value,
    /// Not acknowledged, the deadline still to come.
    pub in_time: u64,
    /// Not acknowledged within the deadline, which has passed.
    pub overdue: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InductionReport {
    pub title: String,
    pub deadline_days: u32,
    pub key_items: Vec<KeyItem>,
    /// The partnership first, then agencies, then teams, each by name.
    pub rows: Vec<Completion>,
}

/// Reads the key items' rollouts (not cancelled) and computes the report at `now`.
pub async fn generate(
    store: &(impl Reports + Store + cascade_store::Outbox),
    calendar: &Calendar,
    now: DateTime<Utc>,
) -> Result<InductionReport, ReportError> {
    let mut rollouts = Vec::new();
    for stored in store.rollouts().await? {
        if stored.state == RolloutState::Cancelled {
            continue;
        }
        let Some(rollout) = store.report_rollout(&stored.id).await? else {
            continue;
        };
        let definition: RolloutDefinition =
            serde_json::from_str(&rollout.definition).map_err(|source| {
                ReportError::Definition {
                    rollout: rollout.id.clone(),
                    source,
                }
            })?;
        if definition.induction.is_some() {
            rollouts.push((definition, rollout));
        }
    }
    let ids: Vec<String> = rollouts.iter().map(|(_, r)| r.id.clone()).collect();
    let directory = store.report_directory(&ids).await?;
    Ok(compute(&rollouts, &directory, calendar, now))
}

/// The figures, from the key items' rollouts as stored.
pub fn compute(
    rollouts: &[(RolloutDefinition, ReportRollout)],
    directory: &DirectoryRows,
    calendar: &Calendar,
    now: DateTime<Utc>,
) -> InductionReport {
    let mut ordered: Vec<&(RolloutDefinition, ReportRollout)> = rollouts.iter().collect();
    ordered.sort_by_key(|(d, _)| d.induction.map(|i| i.position));
    let key_items: Vec<KeyItem> = ordered
        .iter()
        .map(|(d, r)| KeyItem {
            rollout_id: r.id.clone(),
            item_id: d.item.clone(),
            title: r.item_title.clone(),
        })
        .collect();
    let deadline_days = ordered
        .first()
        .and_then(|(d, _)| d.induction)
        .map_or(0, |i| i.deadline_days);
    // (level, key) to per-item (on time, joiners, in time, overdue).
    let mut sums: BTreeMap<(&'static str, String), Vec<[u64; 4]>> = BTreeMap::new();
    for (i, (definition, rollout)) in ordered.iter().enumerate() {
        let days = definition.induction.map_or(0, |s| s.deadline_days);
        let acked: BTreeMap<&str, i64> = rollout
            .acknowledgements
            .iter()
            .map(|a| (a.person_id.as_str(), a.at))
            .collect();
        for m in &rollout.members {
            let Some(joined) = m.joined_at else {
                continue;
            };
            if m.out_reason.as_deref() == Some("left") {
                continue;
            }
            // The deadline: the end of the day `days` after the day they joined.
            let joined_day = from_millis(joined)
                .with_timezone(&calendar.time_zone())
                .date_naive();
            let deadline = calendar.local_days_after(
                joined_day.and_time(chrono::NaiveTime::MIN),
                days.saturating_add(1),
            );
            let ack = acked.get(m.person_id.as_str()).copied();
            let on_time = ack.is_some_and(|at| at < deadline.timestamp_millis());
            let in_time = ack.is_none() && now < deadline;
            let overdue = !on_time && !in_time;
            let groups = [
                ("partnership", String::new()),
                ("agency", m.agency_id.clone().unwrap_or_default()),
                ("team", m.team_id.clone().unwrap_or_default()),
            ];
            for group in groups {
                let row = sums
                    .entry(group)
                    .or_insert_with(|| vec![[0; 4]; ordered.len()]);
                row[i][0] += u64::from(on_time);
                row[i][1] += 1;
                row[i][2] += u64::from(in_time);
                row[i][3] += u64::from(overdue);
            }
        }
    }
    let name = |level: &str, key: &str| -> String {
        match level {
            "partnership" => "All joiners".to_owned(),
            "agency" => directory
                .agencies
                .iter()
                .find(|a| a.id == key)
                .map_or_else(|| key.to_owned(), |a| a.name.clone()),
            _ => directory
                .teams
                .iter()
                .find(|t| t.id == key)
                .map_or_else(|| key.to_owned(), |t| t.name.clone()),
        }
    };
    let mut rows: Vec<Completion> = sums
        .into_iter()
        .map(|((level, key), items)| Completion {
            level,
            name: name(level, &key),
            key,
            items: items
                .into_iter()
                .map(|[on_time, joiners, in_time, overdue]| ItemCompletion {
                    on_time: Value {
                        count: Some(on_time),
                        of: Some(joiners),
                        hours: None,
                    },
                    in_time,
                    overdue,
                })
                .collect(),
        })
        .collect();
    let rank = |level: &str| match level {
        "partnership" => 0,
        "agency" => 1,
        _ => 2,
    };
    rows.sort_by(|a, b| (rank(a.level), &a.name, &a.key).cmp(&(rank(b.level), &b.name, &b.key)));
    InductionReport {
        title: "Induction completion".to_owned(),
        deadline_days,
        key_items,
        rows,
    }
}

fn summary(report: &InductionReport) -> String {
    if report.key_items.is_empty() {
        return "The induction is not set up: run `cascade induction start`.".to_owned();
    }
    format!(
        "Joiners who acknowledged each key item within {} days of joining, by agency and team as they were when they joined. Leavers are left out.",
        report.deadline_days
    )
}

/// Aligned text for a terminal: a block per key item.
pub fn table(report: &InductionReport) -> String {
    let mut out = format!("{}\n{}\n", report.title, summary(report));
    let width = report
        .rows
        .iter()
        .map(|r| r.name.chars().count() + 2)
        .chain([10])
        .max()
        .unwrap_or(10);
    for (i, item) in report.key_items.iter().enumerate() {
        let _ = writeln!(out, "\n{}. {} ({})", i + 1, item.title, item.item_id);
        let _ = writeln!(
            out,
            "  {:<width$}  {:<20}  {:>7}  {:>7}",
            "", "Within the deadline", "Overdue", "In time"
        );
        for row in &report.rows {
            let c = &row.items[i];
            let indent = if row.level == "team" { "  " } else { "" };
            let _ = writeln!(
                out,
                "  {:<width$}  {:<20}  {:>7}  {:>7}",
                format!("{indent}{}", row.name),
                c.on_time.shown(),
                c.overdue,
                c.in_time
            );
        }
    }
    out
}

/// One CSV row per key item and group.
pub fn csv(report: &InductionReport) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "key_item",
        "position",
        "level",
        "key",
        "name",
        "joiners",
        "acknowledged_within_deadline",
        "acknowledged_within_deadline_percent",
        "overdue",
        "in_time",
    ]);
    for (i, item) in report.key_items.iter().enumerate() {
        for row in &report.rows {
            let c = &row.items[i];
            let record = [
                item.item_id.clone(),
                (i + 1).to_string(),
                row.level.to_owned(),
                row.key.clone(),
                row.name.clone(),
                c.on_time.of.unwrap_or(0).to_string(),
                c.on_time.count.unwrap_or(0).to_string(),
                c.on_time
                    .pct()
                    .map(|p| format!("{p:.1}"))
                    .unwrap_or_default(),
                c.overdue.to_string(),
                c.in_time.to_string(),
            ];
            let _ = w.write_record(record.iter().map(|c| super::csv_file::cell(c).into_owned()));
        }
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', Arial, sans-serif; color: #1a1a1a; background: #ffffff; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.3rem; margin-top: 2rem; border-bottom: 2px solid #1d4f91; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
caption { text-align: left; font-weight: 600; padding: 0.3rem 0; }
th, td { border: 1px solid #6b6b6b; padding: 0.25rem 0.5rem; vertical-align: top; text-align: left; color: #1a1a1a; }
thead th { background: #e6ecf5; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
";

/// One self-contained page: a table per key item.
pub fn html(report: &InductionReport) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{t}</h1>\n<p>{}</p>\n",
        esc(&summary(report)),
        t = esc(&report.title)
    );
    for (i, item) in report.key_items.iter().enumerate() {
        let _ = write!(
            out,
            "<section aria-labelledby=\"h-{n}\">\n<h2 id=\"h-{n}\">{n}. {}</h2>\n<table>\n<caption>Joiners who acknowledged \"{}\" within the deadline, by agency and team</caption>\n<thead><tr><th scope=\"col\">Agency or team</th><th scope=\"col\">Level</th><th scope=\"col\" class=\"num\">Within the deadline</th><th scope=\"col\" class=\"num\">Overdue</th><th scope=\"col\" class=\"num\">In time</th></tr></thead>\n<tbody>\n",
            esc(&item.title),
            esc(&item.title),
            n = i + 1
        );
        for row in &report.rows {
            let c = &row.items[i];
            let _ = writeln!(
                out,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&row.name),
                row.level,
                esc(&c.on_time.shown()),
                c.overdue,
                c.in_time
            );
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}
