//! Coverage gaps: the agencies, teams and roles of the directory that
//! received nothing on a theme in a period, or whose reach or
//! acknowledgement is far below the partnership's, ranked worst first; and
//! a heat map of reach by agency and theme.

use super::ReportError;
use super::annual::{Value, thousands};
use super::html::esc;
use cascade_model::content::{Taxonomy, parse_item};
use cascade_model::rollout::Calendar;
use cascade_store::{AnnualReports, GroupFigures};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct GapOptions {
    pub theme: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// A group is far below when its rate is under this percentage of the
    /// partnership's (50: under half).
    pub below_pct: u32,
}

/// Why a group is a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// Nobody in the group was sent learning on the theme.
    Nothing,
    /// Reached, over the group's people in the audiences, far below.
    LowReach,
    /// Acknowledged, over those reached, far below.
    LowAcknowledgement,
}

impl Reason {
    pub fn words(self) -> &'static str {
        match self {
            Reason::Nothing => "received nothing",
            Reason::LowReach => "reach far below the partnership's",
            Reason::LowAcknowledgement => "acknowledgement far below the partnership's",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    /// `agency`, `team` or `role`.
    pub level: String,
    pub key: String,
    pub name: String,
    /// Active people of the group in the directory.
    pub people: u64,
    pub reach: Value,
    pub acknowledged: Value,
    pub reason: Reason,
    /// The group's rate over the partnership's (0 for received nothing).
    pub ratio: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gaps {
    pub title: String,
    pub theme: String,
    pub theme_label: String,
    pub below_pct: u32,
    pub rollouts: usize,
    pub partnership_reach: Value,
    pub partnership_acknowledged: Value,
    /// Worst first.
    pub gaps: Vec<Gap>,
    /// Theme ids and labels of the heat map's columns.
    pub heat_themes: Vec<(String, String)>,
    /// Agency name and reach per theme (none: nobody in the agency was in
    /// an audience on that theme).
    pub heat: Vec<(String, Vec<Option<Value>>)>,
}

#[derive(Default, Clone, Copy)]
struct Sums {
    audience: u64,
    reached: u64,
    acknowledged: u64,
}

impl Sums {
    fn add(&mut self, g: &GroupFigures) {
        self.audience += g.audience.max(0) as u64;
        self.reached += g.reached.max(0) as u64;
        self.acknowledged += g.acknowledged.max(0) as u64;
    }
    fn reach(&self) -> Value {
        Value {
            count: Some(self.reached),
            of: Some(self.audience),
            hours: None,
        }
    }
    fn acked(&self) -> Value {
        Value {
            count: Some(self.acknowledged),
            of: Some(self.reached),
            hours: None,
        }
    }
}

pub async fn generate(
    store: &impl AnnualReports,
    options: &GapOptions,
    calendar: &Calendar,
    taxonomy: &Taxonomy,
    _now: DateTime<Utc>,
) -> Result<Gaps, ReportError> {
    if options.to < options.from {
        return Err(ReportError::Period {
            from: options.from,
            to: options.to,
        });
    }
    let start = calendar.at_local(options.from.and_time(NaiveTime::MIN));
    let end = calendar.local_days_after(options.to.and_time(NaiveTime::MIN), 1);
    let (from, to) = (start.timestamp_millis(), end.timestamp_millis());
    let rollouts = store.annual_rollouts(from, to).await?;
    let groups = store.group_figures(from, to, 0).await?;
    let directory = store.directory_groups().await?;
    let themes_of: BTreeMap<&str, Vec<String>> = rollouts
        .iter()
        .map(|r| {
            let themes = parse_item(Path::new(&r.item_id), &r.source, taxonomy)
                .map(|i| i.themes)
                .unwrap_or_default();
            (r.id.as_str(), themes)
        })
        .collect();
    let on = |rollout: &str, theme: &str| {
        themes_of
            .get(rollout)
            .is_some_and(|t| t.iter().any(|x| x == theme))
    };

    // The theme's figures per group, and the partnership's.
    let mut by_group: BTreeMap<(&str, &str), Sums> = BTreeMap::new();
    let mut all = Sums::default();
    for g in groups.iter().filter(|g| on(&g.rollout_id, &options.theme)) {
        by_group
            .entry((g.level.as_str(), g.key.as_str()))
            .or_default()
            .add(g);
        if g.level == "agency" {
            all.add(g);
        }
    }
    let below = f64::from(options.below_pct) / 100.0;
    let reach_all = all.reach().pct();
    let ack_all = all.acked().pct();
    let mut gaps = Vec::new();
    for d in directory.iter().filter(|d| d.people > 0) {
        let s = by_group
            .get(&(d.level.as_str(), d.key.as_str()))
            .copied()
            .unwrap_or_default();
        let (reason, ratio) = if s.reached == 0 {
            (Some(Reason::Nothing), 0.0)
        } else {
            let reach = s
                .reach()
                .pct()
                .zip(reach_all)
                .map(|(g, p)| g / p.max(f64::MIN_POSITIVE));
            let ack = s
                .acked()
                .pct()
                .zip(ack_all)
                .map(|(g, p)| g / p.max(f64::MIN_POSITIVE));
            match (reach, ack) {
                (Some(r), a) if r < below && a.is_none_or(|a| r <= a) => {
                    (Some(Reason::LowReach), r)
                }
                (_, Some(a)) if a < below => (Some(Reason::LowAcknowledgement), a),
                _ => (None, 1.0),
            }
        };
        let Some(reason) = reason else { continue };
        gaps.push(Gap {
            level: d.level.clone(),
            key: d.key.clone(),
            name: d.name.clone(),
            people: d.people.max(0) as u64,
            reach: s.reach(),
            acknowledged: s.acked(),
            reason,
            ratio,
        });
    }
    gaps.sort_by(|a, b| {
        a.reason
            .eq(&Reason::Nothing)
            .cmp(&b.reason.eq(&Reason::Nothing))
            .reverse()
            .then(a.ratio.total_cmp(&b.ratio))
            .then(b.people.cmp(&a.people))
            .then(a.level.cmp(&b.level))
            .then(a.key.cmp(&b.key))
    });

    // The heat map: every theme with a rollout in the period, and the chosen one.
    let mut theme_ids: BTreeSet<String> = themes_of.values().flatten().cloned().collect();
    theme_ids.insert(options.theme.clone());
    let heat_themes: Vec<(String, String)> = theme_ids
        .iter()
        .map(|t| (t.clone(), taxonomy.label(t).to_owned()))
        .collect();
    let heat = directory
        .iter()
        .filter(|d| d.level == "agency")
        .map(|d| {
            let cells = heat_themes
                .iter()
                .map(|(t, _)| {
                    let mut s = Sums::default();
                    for g in groups
                        .iter()
                        .filter(|g| g.level == "agency" && g.key == d.key && on(&g.rollout_id, t))
                    {
                        s.add(g);
                    }
                    (s.audience > 0).then(|| s.reach())
                })
                .collect();
            (d.name.clone(), cells)
        })
        .collect();
    let label = taxonomy.label(&options.theme).to_owned();
    Ok(Gaps {
        title: format!(
            "Coverage gaps: {label}, {} to {}",
            options.from.format("%-d %B %Y"),
            options.to.format("%-d %B %Y")
        ),
        theme: options.theme.clone(),
        theme_label: label,
        below_pct: options.below_pct,
        rollouts: themes_of.keys().filter(|r| on(r, &options.theme)).count(),
        partnership_reach: all.reach(),
        partnership_acknowledged: all.acked(),
        gaps,
        heat_themes,
        heat,
    })
}

fn summary(gaps: &Gaps) -> String {
    format!(
        "{} rollout{} on {} in the period. Partnership: reached {}; acknowledged {} of those reached. A group is far below when its rate is under {}% of the partnership's.",
        gaps.rollouts,
        if gaps.rollouts == 1 { "" } else { "s" },
        gaps.theme_label,
        gaps.partnership_reach.shown(),
        gaps.partnership_acknowledged.shown(),
        gaps.below_pct
    )
}

/// Aligned text for a terminal.
pub fn table(gaps: &Gaps) -> String {
    let mut out = format!("{}\n{}\n\n", gaps.title, summary(gaps));
    if gaps.gaps.is_empty() {
        out.push_str("No gaps.\n");
        return out;
    }
    let _ = writeln!(
        out,
        "  {:>4}  {:<6}  {:<16}  {:<32}  {:>7}  {:<45}  {:<24}  {:<24}",
        "Rank", "Level", "Id", "Name", "People", "Why", "Reached", "Acknowledged"
    );
    for (i, g) in gaps.gaps.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {:>4}  {:<6}  {:<16}  {:<32}  {:>7}  {:<45}  {:<24}  {:<24}",
            i + 1,
            g.level,
            g.key,
            g.name,
            thousands(g.people),
            g.reason.words(),
            g.reach.shown(),
            g.acknowledged.shown()
        );
    }
    out
}

/// One CSV row a gap, ranked.
pub fn csv(gaps: &Gaps) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "rank",
        "theme",
        "level",
        "key",
        "name",
        "people",
        "reason",
        "audience",
        "reached",
        "acknowledged",
        "reach_percent",
        "acknowledged_percent",
        "partnership_reach_percent",
        "partnership_acknowledged_percent",
    ]);
    let p = |v: &Value| v.pct().map(|p| format!("{p:.1}")).unwrap_or_default();
    for (i, g) in gaps.gaps.iter().enumerate() {
        let record = [
            (i + 1).to_string(),
            gaps.theme.clone(),
            g.level.clone(),
            g.key.clone(),
            g.name.clone(),
            g.people.to_string(),
            g.reason.words().to_owned(),
            g.reach.of.unwrap_or(0).to_string(),
            g.reach.count.unwrap_or(0).to_string(),
            g.acknowledged.count.unwrap_or(0).to_string(),
            p(&g.reach),
            p(&g.acknowledged),
            p(&gaps.partnership_reach),
            p(&gaps.partnership_acknowledged),
        ];
        let _ = w.write_record(record.iter().map(|c| super::csv_file::cell(c).into_owned()));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The heat map's bands: background colour (dark text on each passes
/// WCAG AA) and words, so colour is never the only cue.
fn band(v: Option<&Value>) -> (&'static str, &'static str) {
    match v.and_then(Value::pct) {
        None => ("#f2f2f2", "not in an audience"),
        Some(0.0) => ("#f4c7c3", "none reached"),
        Some(p) if p < 50.0 => ("#fde0c5", "under half"),
        Some(p) if p < 80.0 => ("#fff2b3", "half to 80%"),
        Some(_) => ("#cfe8cc", "80% or more"),
    }
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

/// One self-contained page: the ranked gaps and the heat map.
pub fn html(gaps: &Gaps) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{t}</h1>\n<p>{}</p>\n<section aria-labelledby=\"h-gaps\">\n<h2 id=\"h-gaps\">Gaps, worst first</h2>\n",
        esc(&summary(gaps)),
        t = esc(&gaps.title)
    );
    if gaps.gaps.is_empty() {
        out.push_str("<p>No gaps: every agency, team and role was reached about as well as the partnership.</p>\n");
    } else {
        out.push_str("<table>\n<caption>Agencies, teams and roles that received nothing on the theme, or whose reach or acknowledgement is far below the partnership's</caption>\n<thead><tr><th scope=\"col\" class=\"num\">Rank</th><th scope=\"col\">Name</th><th scope=\"col\">Level</th><th scope=\"col\" class=\"num\">People</th><th scope=\"col\">Why</th><th scope=\"col\" class=\"num\">Reached</th><th scope=\"col\" class=\"num\">Acknowledged</th></tr></thead>\n<tbody>\n");
        for (i, g) in gaps.gaps.iter().enumerate() {
            let _ = writeln!(
                out,
                "<tr><td class=\"num\">{}</td><th scope=\"row\">{}</th><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                i + 1,
                esc(&g.name),
                esc(&g.level),
                thousands(g.people),
                g.reason.words(),
                esc(&g.reach.shown()),
                esc(&g.acknowledged.shown())
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</section>\n<section aria-labelledby=\"h-heat\">\n<h2 id=\"h-heat\">Reach by agency and theme</h2>\n<p>Each cell is the share of the agency's people in the theme's audiences who were sent the learning. The words in each cell say the same as its colour.</p>\n<table>\n<caption>Heat map: people reached, by agency (rows) and theme (columns)</caption>\n<thead><tr><th scope=\"col\">Agency</th>");
    for (_, label) in &gaps.heat_themes {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(label));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (agency, cells) in &gaps.heat {
        let _ = write!(out, "<tr><th scope=\"row\">{}</th>", esc(agency));
        for v in cells {
            let (colour, words) = band(v.as_ref());
            let shown = v.map_or_else(String::new, |v| format!("{}: ", v.shown()));
            let _ = write!(
                out,
                "<td style=\"background: {colour}\">{}{words}</td>",
                esc(&shown)
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n</main>\n</body>\n</html>\n");
    out
}
