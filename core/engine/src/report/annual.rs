//! The annual report's learning section: what was published, reach,
//! time to acknowledge, understanding, champion cascade coverage and
//! practice use, each figure beside the previous period's, and each also a
//! plain-English sentence with an id that ties it to its definition.
//!
//! The store does the counting (SQL aggregates through
//! [`AnnualReports`]); [`compute`] turns those counts into [`Figure`]s;
//! the writers in this module give the HTML page, the CSVs, the editable
//! sentences file, and (in `docx`) the Word document.

use super::ReportError;
use super::html::{Bar, bar_chart, esc};
use cascade_model::content::{
    CheckQuestion, ItemKind, Taxonomy, parse_item, stored_check_questions,
};
use cascade_model::rollout::{Calendar, RolloutDefinition};
use cascade_store::{
    AnnualReports, AnnualRollout, ChampionTeam, ConfirmedTeam, DirectoryGroup, GroupFigures,
    RolloutAnswer, RolloutCheck, WaitBucket,
};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

/// Milliseconds in one wait bucket of the store (6 minutes, 0.1 hour).
const BUCKET_MS: i64 = 360_000;

/// What the annual section covers and how.
#[derive(Debug, Clone)]
pub struct AnnualOptions {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The acknowledgement window of the "within N days" figures.
    pub within_days: u32,
    /// Examples of practice the business unit chose, one paragraph each.
    pub examples: Vec<String>,
    /// Sentences the business unit edited, by figure id.
    pub edits: BTreeMap<String, String>,
}

/// A whole period's inputs, as counted by the store.
struct PeriodRows {
    rollouts: Vec<AnnualRollout>,
    groups: Vec<GroupFigures>,
    waits: Vec<WaitBucket>,
    confirmed: Vec<ConfirmedTeam>,
    answers: Vec<RolloutAnswer>,
    checks: Vec<RolloutCheck>,
}

/// A published item as the report may show it: detail that is not public
/// (the title of an item under embargo, the name of a review whose report
/// is internal or embargoed) is replaced by words saying so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub rollout: String,
    pub kind: String,
    pub title: String,
    pub themes: Vec<String>,
    pub source: String,
    pub status: String,
}

/// One figure of the section, with the previous period's beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Stable id, e.g. `reach-theme-neglect`: the sentence's id too.
    pub id: String,
    /// Which part of the section it belongs to.
    pub part: Part,
    /// What the figure counts, in words: the query behind it.
    pub definition: String,
    pub this: Value,
    pub previous: Option<Value>,
    /// The figure as a sentence; the business unit's wording if edited.
    pub sentence: String,
}

/// The numbers behind a figure.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Value {
    /// A count, or the numerator of a proportion.
    pub count: Option<u64>,
    /// The denominator of a proportion.
    pub of: Option<u64>,
    /// Hours, for times to acknowledge.
    pub hours: Option<f64>,
}

impl Value {
    fn count(n: u64) -> Value {
        Value {
            count: Some(n),
            ..Value::default()
        }
    }
    fn ratio(n: u64, of: u64) -> Value {
        Value {
            count: Some(n),
            of: Some(of),
            hours: None,
        }
    }
    /// The proportion as a percentage, if it has a denominator above 0.
    pub fn pct(&self) -> Option<f64> {
        match (self.count, self.of) {
            (Some(n), Some(of)) if of > 0 => Some(n as f64 * 100.0 / of as f64),
            _ => None,
        }
    }
    /// As shown in a table: "81% (1,006 of 1,240)", "1,006", "3.5 hours" or "–".
    pub fn shown(&self) -> String {
        if let Some(h) = self.hours {
            return format!("{h:.1} hours");
        }
        match (self.count, self.of) {
            (Some(n), Some(of)) => match self.pct() {
                Some(p) => format!("{} ({} of {})", pct(p), thousands(n), thousands(of)),
                None => format!("{} of {}", thousands(n), thousands(of)),
            },
            (Some(n), None) => thousands(n),
            _ => "–".to_owned(),
        }
    }
}

/// The parts of the section, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    Published,
    Reach,
    Time,
    Understanding,
    Coverage,
    Practice,
}

impl Part {
    pub const ALL: [Part; 6] = [
        Part::Published,
        Part::Reach,
        Part::Time,
        Part::Understanding,
        Part::Coverage,
        Part::Practice,
    ];
    pub fn id(self) -> &'static str {
        match self {
            Part::Published => "published",
            Part::Reach => "reach",
            Part::Time => "time",
            Part::Understanding => "understanding",
            Part::Coverage => "coverage",
            Part::Practice => "practice",
        }
    }
    pub fn heading(self) -> &'static str {
        match self {
            Part::Published => "What was published",
            Part::Reach => "Reach and acknowledgement",
            Part::Time => "Time to acknowledge",
            Part::Understanding => "Understanding",
            Part::Coverage => "Champions' cascade to teams",
            Part::Practice => "Use in practice",
        }
    }
}

/// A bar of a chart: label, this period's and the previous period's share.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub label: String,
    pub this: Value,
    pub previous: Option<Value>,
}

/// The computed section, ready to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Annual {
    pub title: String,
    /// "1 April 2026 to 31 March 2027".
    pub period: String,
    pub previous_period: String,
    /// When the figures were taken, local time.
    pub generated: String,
    pub published: Vec<Published>,
    pub figures: Vec<Figure>,
    pub reach_by_theme: Vec<Comparison>,
    pub reach_by_agency: Vec<Comparison>,
    pub examples: Vec<String>,
}

/// A number with thousands separators: 1,240.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A percentage, whole when it is 10 or more and not 99.5 to 100
/// exclusive ("81%", "7.5%", "99.6%").
fn pct(p: f64) -> String {
    if (10.0..99.5).contains(&p) || p == 100.0 || p == 0.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

fn long_date(d: NaiveDate) -> String {
    d.format("%-d %B %Y").to_string()
}

/// `[start, end)` of a period of whole local days, in Unix milliseconds.
fn bounds(calendar: &Calendar, from: NaiveDate, to: NaiveDate) -> (i64, i64) {
    let start = calendar.at_local(from.and_time(NaiveTime::MIN));
    let end = calendar.local_days_after(to.and_time(NaiveTime::MIN), 1);
    (start.timestamp_millis(), end.timestamp_millis())
}

/// The period of the same number of days just before `[from, to]`.
pub fn previous_period(from: NaiveDate, to: NaiveDate) -> (NaiveDate, NaiveDate) {
    let days = (to - from).num_days() + 1;
    let prev_to = from - chrono::Duration::days(1);
    (prev_to - chrono::Duration::days(days - 1), prev_to)
}

async fn period_rows(
    store: &impl AnnualReports,
    (from, to): (i64, i64),
    within: i64,
) -> Result<PeriodRows, ReportError> {
    let (waits, groups): (Vec<GroupFigures>, Vec<GroupFigures>) = store
        .group_figures(from, to, within)
        .await?
        .into_iter()
        .partition(|g| g.level == "wait");
    let waits = waits
        .into_iter()
        .map(|g| WaitBucket {
            bucket: g.key.parse().unwrap_or(0),
            rollout_id: g.rollout_id,
            count: g.audience,
        })
        .collect();
    Ok(PeriodRows {
        rollouts: store.annual_rollouts(from, to).await?,
        groups,
        waits,
        confirmed: store.confirmed_teams(from, to).await?,
        answers: store.rollout_answers(from, to).await?,
        checks: store.rollout_checks(from, to).await?,
    })
}

/// Loads and computes the annual section for `options` at `now`.
pub async fn generate(
    store: &impl AnnualReports,
    options: &AnnualOptions,
    calendar: &Calendar,
    taxonomy: &Taxonomy,
    now: DateTime<Utc>,
) -> Result<Annual, ReportError> {
    if options.to < options.from {
        return Err(ReportError::Period {
            from: options.from,
            to: options.to,
        });
    }
    let within = i64::from(options.within_days) * 86_400_000;
    let (pfrom, pto) = previous_period(options.from, options.to);
    let this = period_rows(store, bounds(calendar, options.from, options.to), within).await?;
    let previous = period_rows(store, bounds(calendar, pfrom, pto), within).await?;
    let directory = store.directory_groups().await?;
    let champion_teams = store.champion_teams().await?;
    let today = now.with_timezone(&calendar.time_zone()).date_naive();
    let inputs = Inputs {
        directory: &directory,
        champion_teams: &champion_teams,
        taxonomy,
        today,
        within_days: options.within_days,
    };
    Ok(compute(&inputs, &this, &previous, options, calendar, now))
}

/// What both periods share.
struct Inputs<'a> {
    directory: &'a [DirectoryGroup],
    champion_teams: &'a [ChampionTeam],
    taxonomy: &'a Taxonomy,
    today: NaiveDate,
    within_days: u32,
}

/// A rollout with what its item file says.
struct Rollout<'a> {
    row: &'a AnnualRollout,
    themes: Vec<String>,
    published: Published,
    /// How sentences name it: its title, or words that keep an embargo.
    name: String,
    definition: Option<RolloutDefinition>,
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "seven-minute-briefing" => "7-minute briefing",
        "review-finding" => "review finding",
        "newsletter-item" => "newsletter item",
        _ => "item",
    }
}

fn plural_kind(kind: &str, n: u64) -> String {
    let label = kind_label(kind);
    if n == 1 {
        format!("1 {label}")
    } else {
        format!("{} {label}s", thousands(n))
    }
}

fn rollout<'a>(row: &'a AnnualRollout, inputs: &Inputs<'_>) -> Rollout<'a> {
    let item = parse_item(Path::new(&row.item_id), &row.source, inputs.taxonomy).ok();
    let themes = item.as_ref().map(|i| i.themes.clone()).unwrap_or_default();
    let embargo = row
        .embargoed_until
        .as_deref()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .filter(|until| *until > inputs.today);
    let kind = kind_label(&row.kind);
    let (title, status) = match embargo {
        Some(until) => (
            format!(
                "A {kind} under embargo (title withheld until {})",
                long_date(until)
            ),
            format!("embargoed until {}", long_date(until)),
        ),
        None if row.status == "embargoed" => (
            row.title.clone(),
            row.embargoed_until
                .as_deref()
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .map_or_else(
                    || "embargo lifted".to_owned(),
                    |d| format!("embargo lifted on {}", long_date(d)),
                ),
        ),
        None => (row.title.clone(), row.status.clone()),
    };
    let not_public = embargo.is_some() || row.status == "internal";
    let source = match item.as_ref().map(|i| &i.kind) {
        Some(ItemKind::ReviewFinding(f)) => {
            let review = serde_json::to_value(f.review_type)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            if embargo.is_some() {
                format!("{review} review (embargoed: details withheld)")
            } else if not_public {
                format!("{review} review (report not published)")
            } else {
                format!("{review} review: {}", f.subject)
            }
        }
        Some(ItemKind::SevenMinuteBriefing(b)) => match &b.source {
            Some(_) if not_public => "a review whose report is not published".to_owned(),
            Some(source) => source.clone(),
            None => format!("issued by {}", b.issued_by),
        },
        Some(ItemKind::NewsletterItem(n)) => format!("{} {}", n.newsletter, n.issue),
        None => "–".to_owned(),
    };
    let name = if embargo.is_some() {
        format!("a {kind} under embargo")
    } else {
        format!("\u{201c}{}\u{201d}", row.title)
    };
    Rollout {
        row,
        themes: themes.clone(),
        published: Published {
            rollout: row.id.clone(),
            kind: kind.to_owned(),
            title,
            themes: themes
                .iter()
                .map(|t| inputs.taxonomy.label(t).to_owned())
                .collect(),
            source,
            status,
        },
        name,
        definition: serde_json::from_str(&row.definition).ok(),
    }
}

/// Figures of one period, without the other period or edits.
struct Draft {
    id: String,
    part: Part,
    definition: String,
    value: Value,
    sentence: String,
}

/// Sums of members over rollouts in a group.
#[derive(Default, Clone, Copy)]
struct Sums {
    audience: u64,
    reached: u64,
    acknowledged: u64,
    within: u64,
}

fn sums<'a>(groups: impl Iterator<Item = &'a GroupFigures>) -> Sums {
    let mut s = Sums::default();
    for g in groups {
        s.audience += g.audience.max(0) as u64;
        s.reached += g.reached.max(0) as u64;
        s.acknowledged += g.acknowledged.max(0) as u64;
        s.within += g.acknowledged_within.max(0) as u64;
    }
    s
}

/// The nearest-rank percentile `p` (0 to 1) of the buckets, as hours at
/// the bucket's start (rounded down to 6 minutes).
fn percentile(buckets: &BTreeMap<i64, u64>, p: f64) -> Option<f64> {
    let total: u64 = buckets.values().sum();
    if total == 0 {
        return None;
    }
    let rank = ((p * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (bucket, count) in buckets {
        seen += count;
        if seen >= rank {
            return Some(*bucket as f64 * BUCKET_MS as f64 / 3_600_000.0);
        }
    }
    None
}

fn period_figures(rows: &PeriodRows, inputs: &Inputs<'_>) -> (Vec<Draft>, Vec<Published>) {
    let rollouts: Vec<Rollout<'_>> = rows.rollouts.iter().map(|r| rollout(r, inputs)).collect();
    let mut out = Vec::new();
    let mut push = |id: String, part, definition: String, value, sentence: String| {
        out.push(Draft {
            id,
            part,
            definition,
            value,
            sentence,
        })
    };
    let label = |t: &str| inputs.taxonomy.label(t).to_owned();

    // What was published.
    let n = rollouts.len() as u64;
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    let mut themes: BTreeMap<&str, u64> = BTreeMap::new();
    let mut statuses: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &rollouts {
        *kinds.entry(r.row.kind.as_str()).or_default() += 1;
        for t in &r.themes {
            *themes.entry(t.as_str()).or_default() += 1;
        }
        let status = if r.published.status.starts_with("embargoed until") {
            "embargoed"
        } else {
            r.row.status.as_str()
        };
        *statuses.entry(status).or_default() += 1;
    }
    let by_kind = kinds
        .iter()
        .map(|(k, n)| plural_kind(k, *n))
        .collect::<Vec<_>>()
        .join(", ");
    push(
        "published-total".into(),
        Part::Published,
        "Rollouts created in the period (one a piece of learning sent out).".into(),
        Value::count(n),
        if n == 0 {
            "No learning was rolled out in this period.".into()
        } else {
            format!(
                "The partnership rolled out {} piece{} of learning: {by_kind}.",
                thousands(n),
                if n == 1 { "" } else { "s" }
            )
        },
    );
    for (kind, count) in &kinds {
        push(
            format!("published-kind-{kind}"),
            Part::Published,
            format!(
                "Rollouts created in the period whose item is a {}.",
                kind_label(kind)
            ),
            Value::count(*count),
            format!(
                "{} {} rolled out.",
                plural_kind(kind, *count),
                if *count == 1 { "was" } else { "were" }
            ),
        );
    }
    for (theme, count) in &themes {
        push(
            format!("published-theme-{theme}"),
            Part::Published,
            format!("Rollouts created in the period whose item has the theme {theme}."),
            Value::count(*count),
            format!(
                "{} piece{} of learning on {}.",
                thousands(*count),
                if *count == 1 { "" } else { "s" },
                label(theme)
            ),
        );
    }
    for (status, count) in &statuses {
        let words = match *status {
            "internal" => "came from reviews whose reports are not published (internal)",
            "embargoed" => "came from reviews still under embargo, so their details are withheld",
            "published" => "came from published reports or were published in full",
            _ => "had the status",
        };
        push(
            format!("published-status-{status}"),
            Part::Published,
            format!("Rollouts created in the period whose item's status is {status}."),
            Value::count(*count),
            if words == "had the status" {
                format!("{} {words} {status}.", thousands(*count))
            } else {
                format!("{} {words}.", thousands(*count))
            },
        );
    }

    // Reach and acknowledgement.
    let agency_rows = || rows.groups.iter().filter(|g| g.level == "agency");
    let all = sums(agency_rows());
    let reach_def = "People in the audience of the period's rollouts to whom an initial message was sent, over the people in those audiences (a person in two rollouts counts twice).";
    push(
        "reach-all".into(),
        Part::Reach,
        reach_def.into(),
        Value::ratio(all.reached, all.audience),
        if all.audience == 0 {
            "No one was in the audience of a rollout in this period.".into()
        } else {
            format!(
                "The learning reached {} of the {} people in its audiences ({}).",
                thousands(all.reached),
                thousands(all.audience),
                pct(all.reached as f64 * 100.0 / all.audience as f64)
            )
        },
    );
    let within = inputs.within_days;
    let ack_def = format!(
        "People reached who acknowledged the rollout's item version within {within} days of their first message, over the people reached."
    );
    let ack_sentence = |what: &str, s: Sums| {
        if s.reached == 0 {
            format!("{what} reached no one, so no one could acknowledge it.")
        } else {
            format!(
                "Of the {} people {what} reached, {} ({}) acknowledged it within {within} days.",
                thousands(s.reached),
                thousands(s.within),
                pct(s.within as f64 * 100.0 / s.reached as f64)
            )
        }
    };
    if all.audience > 0 {
        push(
            "ack-all".into(),
            Part::Reach,
            ack_def.clone(),
            Value::ratio(all.within, all.reached),
            ack_sentence("the learning", all),
        );
    }
    let mut theme_ids: BTreeSet<&str> = BTreeSet::new();
    for r in &rollouts {
        theme_ids.extend(r.themes.iter().map(String::as_str));
    }
    for theme in &theme_ids {
        let ids: BTreeSet<&str> = rollouts
            .iter()
            .filter(|r| r.themes.iter().any(|t| t == theme))
            .map(|r| r.row.id.as_str())
            .collect();
        let s = sums(agency_rows().filter(|g| ids.contains(g.rollout_id.as_str())));
        push(
            format!("reach-theme-{theme}"),
            Part::Reach,
            format!("{reach_def} Only rollouts whose item has the theme {theme}."),
            Value::ratio(s.reached, s.audience),
            format!(
                "Learning on {} reached {} of the {} people in its audiences{}.",
                label(theme),
                thousands(s.reached),
                thousands(s.audience),
                if s.audience > 0 {
                    format!(" ({})", pct(s.reached as f64 * 100.0 / s.audience as f64))
                } else {
                    String::new()
                }
            ),
        );
        push(
            format!("ack-theme-{theme}"),
            Part::Reach,
            format!("{ack_def} Only rollouts whose item has the theme {theme}."),
            Value::ratio(s.within, s.reached),
            ack_sentence(&format!("the {} learning", label(theme).to_lowercase()), s),
        );
    }
    let agency_names: BTreeMap<&str, &str> = inputs
        .directory
        .iter()
        .filter(|g| g.level == "agency")
        .map(|g| (g.key.as_str(), g.name.as_str()))
        .collect();
    let agencies: BTreeSet<&str> = agency_rows().map(|g| g.key.as_str()).collect();
    for agency in agencies {
        let s = sums(agency_rows().filter(|g| g.key == agency));
        let name = agency_names
            .get(agency)
            .copied()
            .unwrap_or("People not in the directory");
        push(
            format!("reach-agency-{agency}"),
            Part::Reach,
            format!("{reach_def} Only people of agency {agency}."),
            Value::ratio(s.reached, s.audience),
            format!(
                "{name}: the learning reached {} of its {} people in the audiences ({}).",
                thousands(s.reached),
                thousands(s.audience),
                pct(s.reached as f64 * 100.0 / s.audience.max(1) as f64)
            ),
        );
        push(
            format!("ack-agency-{agency}"),
            Part::Reach,
            format!("{ack_def} Only people of agency {agency}."),
            Value::ratio(s.within, s.reached),
            ack_sentence(&format!("the learning for {name}"), s),
        );
    }
    for r in &rollouts {
        let s = sums(agency_rows().filter(|g| g.rollout_id == r.row.id));
        push(
            format!("ack-rollout-{}", r.row.id),
            Part::Reach,
            format!("{ack_def} Only rollout {}.", r.row.id),
            Value::ratio(s.within, s.reached),
            ack_sentence(&r.name, s),
        );
    }

    // Time to acknowledge.
    let mut buckets: BTreeMap<i64, u64> = BTreeMap::new();
    for w in &rows.waits {
        *buckets.entry(w.bucket).or_default() += w.count.max(0) as u64;
    }
    let acknowledged: u64 = buckets.values().sum();
    let time_def = "Time from a person's first message to their acknowledgement, over everyone reached who acknowledged, rounded down to 6 minutes (nearest-rank percentile).";
    for (id, p, words) in [
        ("time-median", 0.5, "Half"),
        ("time-p90", 0.9, "Nine in ten"),
    ] {
        let hours = percentile(&buckets, p);
        push(
            id.into(),
            Part::Time,
            time_def.into(),
            Value {
                count: hours.map(|_| acknowledged),
                of: None,
                hours,
            },
            match hours {
                Some(h) => format!(
                    "{words} of the {} people who acknowledged did so within {} of their first message.",
                    thousands(acknowledged),
                    duration(h)
                ),
                None => "No one acknowledged learning sent in this period.".into(),
            },
        );
    }

    // Understanding: answers to check questions, given with acknowledgements.
    let understanding_def = "Answers to check questions given with acknowledgements that were right the first time, over the answers given.";
    let asked: Vec<(&Rollout<'_>, Vec<CheckQuestion>)> = rollouts
        .iter()
        .map(|r| (r, stored_check_questions(&r.row.source)))
        .filter(|(_, questions)| !questions.is_empty())
        .collect();
    let answered: u64 = rows.checks.iter().map(|c| c.answered.max(0) as u64).sum();
    let right: u64 = rows
        .checks
        .iter()
        .map(|c| c.right_first_time.max(0) as u64)
        .sum();
    push(
        "understanding".into(),
        Part::Understanding,
        understanding_def.into(),
        if asked.is_empty() {
            Value::default()
        } else {
            Value::ratio(right, answered)
        },
        if asked.is_empty() {
            "There were no check questions in this period, so there are no figures on understanding."
                .into()
        } else if answered == 0 {
            "No one has answered the check questions of this period's learning yet.".into()
        } else {
            format!(
                "Of the {} answers to check questions given when people acknowledged, {} ({}) were right the first time.",
                thousands(answered),
                thousands(right),
                pct(right as f64 * 100.0 / answered as f64)
            )
        },
    );
    let mut weakest: Option<(f64, String)> = None;
    for (r, questions) in &asked {
        for (question, n) in questions.iter().zip(1u32..) {
            let (answered, right) = rows
                .checks
                .iter()
                .find(|c| c.rollout_id == r.row.id && c.question == n)
                .map_or((0, 0), |c| {
                    (c.answered.max(0) as u64, c.right_first_time.max(0) as u64)
                });
            let sentence = if answered == 0 {
                format!(
                    "No one has answered the question \u{201c}{}\u{201d} of {} yet.",
                    question.question, r.name
                )
            } else {
                let share = right as f64 * 100.0 / answered as f64;
                if weakest.as_ref().is_none_or(|(w, _)| share < *w) {
                    weakest = Some((share, question.question.clone()));
                }
                format!(
                    "{} of the {} people who answered \u{201c}{}\u{201d} ({}) were right the first time ({}).",
                    thousands(right),
                    thousands(answered),
                    question.question,
                    r.name,
                    pct(share)
                )
            };
            push(
                format!("understanding-{}-q{n}", r.row.id),
                Part::Understanding,
                format!(
                    "{understanding_def} Only question {n} of rollout {}.",
                    r.row.id
                ),
                Value::ratio(right, answered),
                sentence,
            );
        }
    }
    if let Some((share, question)) = weakest
        && asked.iter().map(|(_, q)| q.len()).sum::<usize>() > 1
    {
        push(
            "understanding-weakest".into(),
            Part::Understanding,
            "The check question with the smallest share right the first time.".into(),
            Value::default(),
            format!(
                "The point landing least well was \u{201c}{question}\u{201d}: {} right the first time, so it may need saying again.",
                pct(share)
            ),
        );
    }

    // Champions' cascade coverage, by theme.
    let confirmed: BTreeSet<(&str, &str)> = rows
        .confirmed
        .iter()
        .map(|c| (c.item_id.as_str(), c.team_id.as_str()))
        .collect();
    for theme in &theme_ids {
        let covered: BTreeSet<&str> = inputs
            .champion_teams
            .iter()
            .filter(|c| c.theme == *theme)
            .map(|c| c.team_id.as_str())
            .collect();
        let items: BTreeSet<&str> = rollouts
            .iter()
            .filter(|r| r.themes.iter().any(|t| t == theme))
            .map(|r| r.row.item_id.as_str())
            .collect();
        let done = covered
            .iter()
            .filter(|team| {
                items
                    .iter()
                    .any(|item| confirmed.contains(&(*item, **team)))
            })
            .count() as u64;
        let of = covered.len() as u64;
        push(
            format!("coverage-theme-{theme}"),
            Part::Coverage,
            format!(
                "Teams that active champions of {theme} cover with a cascade confirmation of an item on {theme} rolled out in the period, over the teams they cover."
            ),
            Value::ratio(done, of),
            if of == 0 {
                format!("No champion covers teams for {}.", label(theme))
            } else {
                format!(
                    "Champions confirmed they had cascaded the {} learning to {} of the {} team{} they cover ({}).",
                    label(theme).to_lowercase(),
                    thousands(done),
                    thousands(of),
                    if of == 1 { "" } else { "s" },
                    pct(done as f64 * 100.0 / of as f64)
                )
            },
        );
    }

    // Use in practice: the first answer of each follow-up.
    let mut practice = Sums::default();
    let mut any_follow_up = false;
    for r in &rollouts {
        let Some(def) = &r.definition else { continue };
        for (i, f) in def.follow_ups.iter().enumerate() {
            any_follow_up = true;
            let n = i as u32 + 1;
            let answers = rows
                .answers
                .iter()
                .filter(|a| a.rollout_id == r.row.id && a.follow_up == n);
            let mut answered = 0u64;
            let mut used = 0u64;
            let first = f.answers.first().map(String::as_str).unwrap_or("");
            for a in answers {
                answered += a.count.max(0) as u64;
                if a.answer == first {
                    used += a.count.max(0) as u64;
                }
            }
            practice.audience += answered;
            practice.acknowledged += used;
            push(
                format!("practice-{}-{n}", r.row.id),
                Part::Practice,
                format!(
                    "People who gave the first listed answer (\u{201c}{first}\u{201d}) to follow-up {n} of rollout {}, over the people who answered it.",
                    r.row.id
                ),
                Value::ratio(used, answered),
                if answered == 0 {
                    format!(
                        "No one has yet answered the follow-up question about {}.",
                        r.name
                    )
                } else {
                    format!(
                        "Of the {} people who answered \u{201c}{}\u{201d} about {}, {} ({}) said \u{201c}{first}\u{201d}.",
                        thousands(answered),
                        f.question,
                        r.name,
                        thousands(used),
                        pct(used as f64 * 100.0 / answered as f64)
                    )
                },
            );
        }
    }
    push(
        "practice-all".into(),
        Part::Practice,
        "People who gave the first listed answer of a follow-up question (by convention the one saying the learning was used), over everyone who answered a follow-up of the period's rollouts.".into(),
        Value::ratio(practice.acknowledged, practice.audience),
        if !any_follow_up {
            "No rollout in this period asked a follow-up question about practice.".into()
        } else if practice.audience == 0 {
            "No one has yet answered a follow-up question about practice.".into()
        } else {
            format!(
                "Of the {} answers to follow-up questions, {} ({}) said the learning had been used in practice.",
                thousands(practice.audience),
                thousands(practice.acknowledged),
                pct(practice.acknowledged as f64 * 100.0 / practice.audience as f64)
            )
        },
    );
    (out, rollouts.into_iter().map(|r| r.published).collect())
}

/// Hours in words: "45 minutes", "3.5 hours", "2.0 days".
fn duration(hours: f64) -> String {
    if hours < 1.0 {
        format!("{:.0} minutes", hours * 60.0)
    } else if hours < 48.0 {
        format!("{hours:.1} hours")
    } else {
        format!("{:.1} days", hours / 24.0)
    }
}

fn compute(
    inputs: &Inputs<'_>,
    this: &PeriodRows,
    previous: &PeriodRows,
    options: &AnnualOptions,
    calendar: &Calendar,
    now: DateTime<Utc>,
) -> Annual {
    let (drafts, published) = period_figures(this, inputs);
    let (before, _) = period_figures(previous, inputs);
    let before: BTreeMap<String, Value> = before.into_iter().map(|d| (d.id, d.value)).collect();
    let figures: Vec<Figure> = drafts
        .into_iter()
        .map(|d| Figure {
            sentence: options.edits.get(&d.id).cloned().unwrap_or(d.sentence),
            previous: before.get(&d.id).copied(),
            id: d.id,
            part: d.part,
            definition: d.definition,
            this: d.value,
        })
        .collect();
    let comparisons = |prefix: &str, name: &dyn Fn(&str) -> String| -> Vec<Comparison> {
        figures
            .iter()
            .filter_map(|f| {
                let key = f.id.strip_prefix(prefix)?;
                Some(Comparison {
                    label: name(key),
                    this: f.this,
                    previous: f.previous,
                })
            })
            .collect()
    };
    let agency_names: BTreeMap<&str, &str> = inputs
        .directory
        .iter()
        .filter(|g| g.level == "agency")
        .map(|g| (g.key.as_str(), g.name.as_str()))
        .collect();
    let reach_by_theme = comparisons("reach-theme-", &|t| inputs.taxonomy.label(t).to_owned());
    let reach_by_agency = comparisons("reach-agency-", &|a| {
        agency_names.get(a).copied().unwrap_or(a).to_owned()
    });
    let (pfrom, pto) = previous_period(options.from, options.to);
    Annual {
        title: format!(
            "Learning and its reach, {} to {}",
            long_date(options.from),
            long_date(options.to)
        ),
        period: format!("{} to {}", long_date(options.from), long_date(options.to)),
        previous_period: format!("{} to {}", long_date(pfrom), long_date(pto)),
        generated: calendar.format_local(now),
        published,
        figures,
        reach_by_theme,
        reach_by_agency,
        examples: options.examples.clone(),
    }
}

/// The sentences as a file the business unit can edit: one line a figure,
/// `[id] sentence`. Give it back with `--sentences` and the edited wording
/// replaces the generated one (the figures themselves are never edited).
pub fn sentences_file(annual: &Annual) -> String {
    let mut out = format!(
        "# Sentences of \"{}\"\n#\n# Edit the wording after each [id] and give this file back with\n# `cascade report annual --sentences FILE`. Keep the [id]: it ties the\n# sentence to its figure in figures.csv. Lines starting with # are ignored.\n\n",
        annual.title
    );
    for part in Part::ALL {
        let _ = writeln!(out, "# {}", part.heading());
        for f in annual.figures.iter().filter(|f| f.part == part) {
            let _ = writeln!(out, "[{}] {}", f.id, f.sentence);
        }
        out.push('\n');
    }
    out
}

/// A bad line of an edited sentences file.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}\n  help: {help}")]
pub struct SentencesError {
    pub file: String,
    pub line: usize,
    pub message: String,
    pub help: String,
}

/// Reads an edited sentences file: `[id] sentence` lines, `#` comments and
/// blank lines. `known` checks the ids.
pub fn parse_sentences(
    file: &Path,
    text: &str,
) -> Result<BTreeMap<String, String>, SentencesError> {
    let mut edits = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let error = |message: String, help: &str| SentencesError {
            file: file.display().to_string(),
            line: i + 1,
            message,
            help: help.to_owned(),
        };
        let Some((id, sentence)) = line.strip_prefix('[').and_then(|rest| rest.split_once(']'))
        else {
            return Err(error(
                "a sentence line must start with its figure id in brackets".into(),
                "write `[reach-all] The learning reached ...`, as `cascade report annual` wrote it",
            ));
        };
        let sentence = sentence.trim();
        if sentence.is_empty() {
            return Err(error(
                format!("the sentence of [{id}] is empty"),
                "write the sentence after the id, or delete the line to keep the generated one",
            ));
        }
        if edits.insert(id.to_owned(), sentence.to_owned()).is_some() {
            return Err(error(
                format!("[{id}] is given twice"),
                "keep one line per figure id",
            ));
        }
    }
    Ok(edits)
}

/// Checks that every edited id is a figure of `annual`.
pub fn check_edits(file: &Path, text: &str, annual: &Annual) -> Result<(), SentencesError> {
    let ids: BTreeSet<&str> = annual.figures.iter().map(|f| f.id.as_str()).collect();
    for (i, line) in text.lines().enumerate() {
        let Some(id) = line
            .trim()
            .strip_prefix('[')
            .and_then(|rest| rest.split_once(']'))
            .map(|(id, _)| id)
        else {
            continue;
        };
        if !ids.contains(id) {
            return Err(SentencesError {
                file: file.display().to_string(),
                line: i + 1,
                message: format!("[{id}] is not a figure of this report"),
                help: "figures.csv lists the ids; delete the line, or fix the id".into(),
            });
        }
    }
    Ok(())
}

/// The CSV of every figure: id, part, definition, this period's and the
/// previous period's numbers, and the sentence.
pub fn figures_csv(annual: &Annual) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "id",
        "part",
        "definition",
        "count",
        "of",
        "percent",
        "hours",
        "previous_count",
        "previous_of",
        "previous_percent",
        "previous_hours",
        "sentence",
    ]);
    let cells = |v: Option<&Value>| -> [String; 4] {
        let Some(v) = v else {
            return Default::default();
        };
        [
            v.count.map(|n| n.to_string()).unwrap_or_default(),
            v.of.map(|n| n.to_string()).unwrap_or_default(),
            v.pct().map(|p| format!("{p:.1}")).unwrap_or_default(),
            v.hours.map(|h| format!("{h:.1}")).unwrap_or_default(),
        ]
    };
    for f in &annual.figures {
        let mut record = vec![f.id.clone(), f.part.id().to_owned(), f.definition.clone()];
        record.extend(cells(Some(&f.this)));
        record.extend(cells(f.previous.as_ref()));
        record.push(f.sentence.clone());
        let _ = w.write_record(record.iter().map(|c| super::csv_file::cell(c).into_owned()));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The CSV of what was published, detail that is not public withheld.
pub fn published_csv(annual: &Annual) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["rollout", "kind", "title", "themes", "source", "status"]);
    for p in &annual.published {
        let record = [
            p.rollout.clone(),
            p.kind.clone(),
            p.title.clone(),
            p.themes.join("; "),
            p.source.clone(),
            p.status.clone(),
        ];
        let _ = w.write_record(record.iter().map(|c| super::csv_file::cell(c).into_owned()));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Comparison bars for a chart: this period and the previous one.
fn comparison_bars(rows: &[Comparison]) -> Vec<Bar> {
    let mut bars = Vec::new();
    for c in rows {
        bars.push(Bar {
            label: format!("{}, this period", c.label),
            value: c.this.pct().unwrap_or(0.0),
            shown: c.this.shown(),
        });
        if let Some(p) = c.previous {
            bars.push(Bar {
                label: format!("{}, previous period", c.label),
                value: p.pct().unwrap_or(0.0),
                shown: p.shown(),
            });
        }
    }
    bars
}

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', Arial, sans-serif; color: #1a1a1a; background: #ffffff; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.3rem; margin-top: 2rem; border-bottom: 2px solid #1d4f91; padding-bottom: 0.2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
caption { text-align: left; font-weight: 600; padding: 0.3rem 0; }
th, td { border: 1px solid #6b6b6b; padding: 0.25rem 0.5rem; vertical-align: top; text-align: left; }
thead th { background: #e6ecf5; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.figure-id { font-size: 0.8rem; color: #4a4a4a; }
figure { margin: 0.5rem 0 1.5rem; } figcaption { font-size: 0.9rem; color: #333333; }
svg text { font-size: 13px; fill: #1a1a1a; }
@media print { body { margin: 0; max-width: none; } table, figure { break-inside: avoid; } }
";

/// The section as one self-contained HTML page: no scripts, nothing
/// fetched, charts as inline SVG with text alternatives.
pub fn html(annual: &Annual) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{t}</h1>\n<p>Figures as at {}. Each figure is beside the previous period's ({}). The small code after each sentence is the figure's id: the appendix says how each figure was worked out.</p>\n",
        esc(&annual.generated),
        esc(&annual.previous_period),
        t = esc(&annual.title),
    );
    for part in Part::ALL {
        let _ = writeln!(
            out,
            "<section aria-labelledby=\"h-{id}\">\n<h2 id=\"h-{id}\">{}</h2>",
            part.heading(),
            id = part.id()
        );
        for f in annual.figures.iter().filter(|f| f.part == part) {
            let _ = writeln!(
                out,
                "<p id=\"s-{id}\">{} <span class=\"figure-id\">[{id}]</span></p>",
                esc(&f.sentence),
                id = esc(&f.id)
            );
        }
        if part == Part::Published {
            published_table(&mut out, annual);
        }
        if part == Part::Reach {
            for (id, title, rows) in [
                (
                    "chart-reach-theme",
                    "People reached, by theme: this period and the previous one",
                    &annual.reach_by_theme,
                ),
                (
                    "chart-reach-agency",
                    "People reached, by agency: this period and the previous one",
                    &annual.reach_by_agency,
                ),
            ] {
                if !rows.is_empty() {
                    bar_chart(&mut out, id, title, &comparison_bars(rows), 100.0);
                }
            }
        }
        out.push_str("</section>\n");
    }
    out.push_str("<section aria-labelledby=\"h-examples\">\n<h2 id=\"h-examples\">Examples of practice</h2>\n");
    if annual.examples.is_empty() {
        out.push_str("<p>The business unit has not chosen examples for this period.</p>\n");
    }
    for e in &annual.examples {
        let _ = writeln!(out, "<blockquote><p>{}</p></blockquote>", esc(e));
    }
    out.push_str("</section>\n");
    appendix(&mut out, annual);
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn published_table(out: &mut String, annual: &Annual) {
    if annual.published.is_empty() {
        return;
    }
    out.push_str("<table>\n<caption>Learning rolled out in the period, by kind, theme and source (detail that is not public withheld)</caption>\n<thead><tr><th scope=\"col\">Title</th><th scope=\"col\">Kind</th><th scope=\"col\">Themes</th><th scope=\"col\">Source</th><th scope=\"col\">Status</th></tr></thead>\n<tbody>\n");
    for p in &annual.published {
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.title),
            esc(&p.kind),
            esc(&p.themes.join(", ")),
            esc(&p.source),
            esc(&p.status)
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn appendix(out: &mut String, annual: &Annual) {
    out.push_str("<section aria-labelledby=\"h-appendix\">\n<h2 id=\"h-appendix\">Appendix: how each figure was worked out</h2>\n<table>\n<caption>Every figure: its id, what it counts, and its numbers this period and the previous one</caption>\n<thead><tr><th scope=\"col\">Id</th><th scope=\"col\">What it counts</th><th scope=\"col\" class=\"num\">This period</th><th scope=\"col\" class=\"num\">Previous period</th></tr></thead>\n<tbody>\n");
    for f in &annual.figures {
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&f.id),
            esc(&f.definition),
            esc(&f.this.shown()),
            esc(&f.previous.map_or_else(|| "–".to_owned(), |v| v.shown()))
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}
