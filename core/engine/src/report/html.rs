//! The `html` format: one self-contained page to attach to an annual report.
//! Inline CSS, no scripts and nothing fetched; bar charts are inline SVG with
//! a text alternative, and every figure is also in a captioned table. All
//! text from the store is escaped.

use super::{AnswerBy, DisplayTable, Report, SectionKind, display_tables, percent};
use std::fmt::Write;

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', Arial, sans-serif; color: #1a1a1a; background: #ffffff; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: 0.25rem; }
h2 { font-size: 1.3rem; margin-top: 2rem; border-bottom: 2px solid #1d4f91; padding-bottom: 0.2rem; }
h3 { font-size: 1.1rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
caption { text-align: left; font-weight: 600; padding: 0.3rem 0; }
th, td { border: 1px solid #6b6b6b; padding: 0.25rem 0.5rem; vertical-align: top; }
thead th { background: #e6ecf5; text-align: left; }
td:first-child, tbody th:first-child { white-space: nowrap; }
tbody th { font-weight: normal; text-align: left; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 0.5rem 0 1.5rem; }
figcaption { font-size: 0.9rem; color: #333333; }
svg text { font-size: 13px; fill: #1a1a1a; }
.summary { font-size: 1.05rem; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } table, figure { break-inside: avoid; } }
";

/// Escapes text for HTML element content and attribute values.
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{}</h1>\n<p>Figures as at {}.</p>\n",
        esc(&report.title),
        esc(&report.title),
        esc(&report.generated)
    );
    out.push_str(&sections(report));
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

/// The report's figures, charts and notes as HTML to go inside a page's
/// `<main>` after its own heading (the console's reports page), with no
/// styles of its own: the same markup the `html` file carries.
pub(super) fn sections(report: &Report) -> String {
    let mut out = String::new();
    if let Some(total) = report
        .sections
        .iter()
        .find(|s| s.kind == SectionKind::Total)
        .and_then(|s| s.rows.first())
    {
        let f = &total.figures;
        let _ = writeln!(
            out,
            "<p class=\"summary\">{} rollout{}, {} members: {} sent the learning, {} ({}) acknowledged it, {} overdue, {} absent, {} left, {} moved.</p>",
            report.rollouts.len(),
            if report.rollouts.len() == 1 { "" } else { "s" },
            f.audience,
            f.sent,
            f.acknowledged,
            percent(f.acknowledged_pct()),
            f.overdue,
            f.absent,
            f.left,
            f.moved
        );
    }
    let tables = display_tables(report);
    let mut tables = tables.iter();
    if let Some(rollouts) = tables.next() {
        write_table(&mut out, rollouts);
    }
    out.push_str("<section aria-labelledby=\"h-charts\">\n<h2 id=\"h-charts\">Charts</h2>\n");
    acknowledged_chart(&mut out, report);
    answer_charts(&mut out, report);
    out.push_str("</section>\n");
    for table in tables {
        write_table(&mut out, table);
    }
    out.push_str("<section aria-labelledby=\"h-notes\">\n<h2 id=\"h-notes\">Notes</h2>\n<ul>\n");
    for note in &report.notes {
        let _ = writeln!(out, "<li>{}</li>", esc(note));
    }
    out.push_str("</ul>\n</section>\n");
    out
}

fn write_table(out: &mut String, table: &DisplayTable) {
    let _ = writeln!(
        out,
        "<section aria-labelledby=\"h-{id}\">\n<h2 id=\"h-{id}\">{}</h2>",
        esc(table.heading),
        id = table.id
    );
    if table.rows.is_empty() {
        out.push_str("<p>None.</p>\n</section>\n");
        return;
    }
    let header = table.headers.iter().position(|h| *h == "Name").unwrap_or(0);
    let _ = write!(
        out,
        "<table>\n<caption>{}</caption>\n<thead>\n<tr>",
        esc(&table.caption)
    );
    for (i, h) in table.headers.iter().enumerate() {
        let class = if table.numeric(i) {
            " class=\"num\""
        } else {
            ""
        };
        let _ = write!(out, "<th scope=\"col\"{class}>{}</th>", esc(h));
    }
    out.push_str("</tr>\n</thead>\n<tbody>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = if table.numeric(i) {
                " class=\"num\""
            } else {
                ""
            };
            if i == header {
                let _ = write!(out, "<th scope=\"row\"{class}>{}</th>", esc(cell));
            } else {
                let _ = write!(out, "<td{class}>{}</td>", esc(cell));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// One bar: its label, its length against the chart's maximum, and the
/// value written beside it.
pub(super) struct Bar {
    pub(super) label: String,
    pub(super) value: f64,
    pub(super) shown: String,
}

/// A horizontal bar chart as inline SVG, described in words for screen
/// readers (the same figures are in the tables).
pub(super) fn bar_chart(out: &mut String, id: &str, title: &str, bars: &[Bar], max: f64) {
    const ROW: usize = 28;
    const BAR: f64 = 320.0;
    let label_width = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(0)
        * 7
        + 16;
    let shown_width = bars
        .iter()
        .map(|b| b.shown.chars().count())
        .max()
        .unwrap_or(0)
        * 8
        + 16;
    let width = label_width + BAR as usize + shown_width;
    let height = bars.len() * ROW + 12;
    let description = bars
        .iter()
        .map(|b| format!("{}: {}", b.label, b.shown))
        .collect::<Vec<_>>()
        .join("; ");
    let _ = writeln!(
        out,
        "<figure>\n<svg role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">\n<title id=\"{id}-title\">{}</title>\n<desc id=\"{id}-desc\">{}</desc>",
        esc(title),
        esc(&description)
    );
    for (i, bar) in bars.iter().enumerate() {
        let y = 6 + i * ROW;
        let length = if max > 0.0 {
            (bar.value / max * BAR).clamp(0.0, BAR)
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n<rect x=\"{label_width}\" y=\"{y}\" width=\"{length:.1}\" height=\"20\" fill=\"#1d4f91\"></rect>\n<text x=\"{:.1}\" y=\"{}\">{}</text>",
            label_width - 8,
            y + 15,
            esc(&bar.label),
            label_width as f64 + length + 6.0,
            y + 15,
            esc(&bar.shown)
        );
    }
    let _ = writeln!(
        out,
        "</svg>\n<figcaption>{}</figcaption>\n</figure>",
        esc(title)
    );
}

fn acknowledged_chart(out: &mut String, report: &Report) {
    out.push_str("<h3>Acknowledged by agency</h3>\n");
    let bars: Vec<Bar> = report
        .sections
        .iter()
        .filter(|s| s.kind == SectionKind::Agency)
        .flat_map(|s| &s.rows)
        .filter_map(|r| {
            let pct = r.figures.acknowledged_pct()?;
            Some(Bar {
                label: r.name.clone(),
                value: pct,
                shown: format!(
                    "{} ({} of {})",
                    percent(Some(pct)),
                    r.figures.acknowledged,
                    r.figures.audience
                ),
            })
        })
        .collect();
    if bars.is_empty() {
        out.push_str("<p>No members.</p>\n");
        return;
    }
    bar_chart(
        out,
        "chart-ack",
        "Percentage of members who acknowledged, by agency",
        &bars,
        100.0,
    );
}

fn answer_charts(out: &mut String, report: &Report) {
    out.push_str("<h3>Follow-up answers</h3>\n");
    let Some(total) = report.answers.iter().find(|a| a.by == AnswerBy::Total) else {
        return;
    };
    let many = report.rollouts.len() > 1;
    let mut questions: Vec<(&str, u32, &str)> = Vec::new();
    for a in &total.rows {
        if !questions.contains(&(a.rollout.as_str(), a.follow_up, a.question.as_str())) {
            questions.push((a.rollout.as_str(), a.follow_up, a.question.as_str()));
        }
    }
    if questions.is_empty() {
        out.push_str("<p>No follow-up questions.</p>\n");
    }
    for (n, (rollout, follow_up, question)) in questions.into_iter().enumerate() {
        let bars: Vec<Bar> = total
            .rows
            .iter()
            .filter(|a| a.rollout == rollout && a.follow_up == follow_up)
            .map(|a| Bar {
                label: a.answer.clone(),
                value: a.count as f64,
                shown: format!(
                    "{} {}",
                    a.count,
                    if a.count == 1 { "person" } else { "people" }
                ),
            })
            .collect();
        let max = bars.iter().map(|b| b.value).fold(1.0, f64::max);
        let title = if many {
            format!("{rollout}, follow-up {follow_up}: {question}")
        } else {
            format!("Follow-up {follow_up}: {question}")
        };
        bar_chart(out, &format!("chart-answers-{}", n + 1), &title, &bars, max);
    }
}
