//! The annual section as a Word document (.docx, written with `docx-rs`),
//! for business units that assemble their annual report in Word: the same
//! headings, sentences, published table, examples and appendix as the
//! HTML page. Charts are left out: their figures are the sentences and the
//! appendix, which Word users can chart from figures.csv.

use super::annual::{Annual, Part};
use docx_rs::{Docx, Paragraph, Run, Style, StyleType, Table, TableCell, TableRow, WidthType};

fn heading(text: &str, level: usize) -> Paragraph {
    Paragraph::new()
        .add_run(Run::new().add_text(text))
        .style(&format!("Heading{level}"))
}

fn text(text: &str) -> Paragraph {
    Paragraph::new().add_run(Run::new().add_text(text))
}

fn cell(content: &str, header: bool) -> TableCell {
    let run = Run::new().add_text(content);
    let run = if header { run.bold() } else { run };
    TableCell::new().add_paragraph(Paragraph::new().add_run(run))
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) -> Table {
    let mut out = vec![TableRow::new(
        headers.iter().map(|h| cell(h, true)).collect(),
    )];
    for row in rows {
        out.push(TableRow::new(row.iter().map(|c| cell(c, false)).collect()));
    }
    Table::new(out).width(5000, WidthType::Pct)
}

/// The Word document's bytes.
pub fn render(annual: &Annual) -> Vec<u8> {
    let mut doc = Docx::new()
        .add_style(
            Style::new("Heading1", StyleType::Paragraph)
                .name("Heading 1")
                .size(32)
                .bold()
                .outline_lvl(0),
        )
        .add_style(
            Style::new("Heading2", StyleType::Paragraph)
                .name("Heading 2")
                .size(28)
                .bold()
                .outline_lvl(1),
        )
        .add_paragraph(heading(&annual.title, 1))
        .add_paragraph(text(&format!(
            "Figures as at {}. Each figure is beside the previous period's ({}). The code in brackets after each sentence is the figure's id: the appendix says how each figure was worked out.",
            annual.generated, annual.previous_period
        )));
    for part in Part::ALL {
        doc = doc.add_paragraph(heading(part.heading(), 2));
        for f in annual.figures.iter().filter(|f| f.part == part) {
            doc = doc.add_paragraph(text(&format!("{} [{}]", f.sentence, f.id)));
        }
        if part == Part::Published && !annual.published.is_empty() {
            doc = doc.add_table(table(
                &["Title", "Kind", "Themes", "Source", "Status"],
                annual
                    .published
                    .iter()
                    .map(|p| {
                        vec![
                            p.title.clone(),
                            p.kind.clone(),
                            p.themes.join(", "),
                            p.source.clone(),
                            p.status.clone(),
                        ]
                    })
                    .collect(),
            ));
        }
    }
    doc = doc.add_paragraph(heading("Examples of practice", 2));
    if annual.examples.is_empty() {
        doc = doc.add_paragraph(text(
            "The business unit has not chosen examples for this period.",
        ));
    }
    for e in &annual.examples {
        doc = doc.add_paragraph(text(e));
    }
    doc = doc
        .add_paragraph(heading("Appendix: how each figure was worked out", 2))
        .add_table(table(
            &["Id", "What it counts", "This period", "Previous period"],
            annual
                .figures
                .iter()
                .map(|f| {
                    vec![
                        f.id.clone(),
                        f.definition.clone(),
                        f.this.shown(),
                        f.previous.map_or_else(|| "–".to_owned(), |v| v.shown()),
                    ]
                })
                .collect(),
        ));
    let mut bytes = std::io::Cursor::new(Vec::new());
    // Packing into memory cannot fail.
    let _ = doc.build().pack(&mut bytes);
    bytes.into_inner()
}
