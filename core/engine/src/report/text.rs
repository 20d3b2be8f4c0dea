//! The `table` format: aligned text for a terminal.

use super::{DisplayTable, Report, display_tables};
use std::fmt::Write;

pub(super) fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", report.title);
    let _ = writeln!(out, "Figures as at {}", report.generated);
    for table in display_tables(report) {
        let _ = writeln!(out, "\n{}", table.heading);
        write_table(&mut out, &table);
    }
    let _ = writeln!(out, "\nNotes");
    for note in &report.notes {
        let _ = writeln!(out, "- {note}");
    }
    out
}

fn width(text: &str) -> usize {
    text.chars().count()
}

fn write_table(out: &mut String, table: &DisplayTable) {
    if table.rows.is_empty() {
        let _ = writeln!(out, "  (none)");
        return;
    }
    let widths: Vec<usize> = (0..table.headers.len())
        .map(|i| {
            table
                .rows
                .iter()
                .map(|r| width(&r[i]))
                .chain([width(table.headers[i])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let pad = " ".repeat(widths[i] - width(cell));
                if table.numeric(i) {
                    format!("{pad}{cell}")
                } else {
                    format!("{cell}{pad}")
                }
            })
            .collect();
        format!("  {}", padded.join("  ").trim_end())
    };
    let _ = writeln!(out, "{}", line(table.headers.clone()));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let _ = writeln!(out, "{}", line(rule.iter().map(String::as_str).collect()));
    for row in &table.rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
}
