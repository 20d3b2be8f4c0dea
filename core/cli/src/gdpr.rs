//! UK GDPR duties on the command line: a subject access export (JSON and a
//! readable page), erasure, the retention schedule and the record of
//! processing for the partnership's DPIA.

use anyhow::{Context, Result, bail};
use cascade_engine::project::Project;
use cascade_store::{
    EraseError, EraseRequest, ErasureRecord, FIELDS, FieldKind, Privacy, RetentionReport,
    SubjectAccess,
};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum PeopleAction {
    /// Write everything the store holds about a person (directory row and
    /// history, identities, deliveries, acknowledgements, answers and
    /// examples, confirmations) as JSON and a readable HTML page, for a
    /// subject access request.
    Export {
        /// Their person_id (as in directory/people.csv).
        person: String,
        /// The folder to write to (default: exports/ in the project,
        /// private to its owner).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Erase a person for good: their name, addresses, chat identities and
    /// free text go, their rows stay under a pseudonym so reports' totals
    /// stay true, and the erasure (who, when, why) is recorded. Cannot be
    /// undone.
    Erase {
        /// Their person_id (as in directory/people.csv).
        person: String,
        /// Why, in a few words that do not name them (e.g. a request
        /// reference); kept in the erasure record.
        #[arg(long)]
        reason: String,
        /// Erase even while a rollout is still sending to them: what is
        /// queued for them is cancelled.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
pub enum RetentionAction {
    /// Remove what is older than `[retention]` in cascade.toml allows (one
    /// transaction), listing it first.
    Apply {
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
pub enum PrivacyAction {
    /// Write the record of processing (Markdown): the personal data held,
    /// where it comes from, which channels and processors see it, and the
    /// retention in force, for the partnership's DPIA.
    Record {
        /// Write it to this file instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

async fn open_store(project: &Project) -> Result<crate::store_cmd::Opened> {
    let path = project.store_path();
    if project.config.store.url.is_none() && !path.exists() {
        bail!(
            "{}: no store yet\n  help: run `cascade import --project {}` first",
            path.display(),
            project.root.display()
        );
    }
    crate::store_cmd::open(project).await
}

/// Who is running this, as the erasure record keeps it.
fn operator() -> String {
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|n| !n.trim().is_empty());
    // Without a login name (a service), the user id: /proc/self belongs to
    // the process's user.
    #[cfg(unix)]
    let name = name.or_else(|| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self")
            .ok()
            .map(|m| format!("uid {}", m.uid()))
    });
    format!("os:{}", name.unwrap_or_else(|| "unknown".to_owned()))
}

fn when(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%-d %B %Y, %H:%M UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| ms.to_string())
}

pub async fn people(project: &Project, action: PeopleAction) -> Result<ExitCode> {
    crate::on_store!(open_store(project).await?, store => match action {
        PeopleAction::Export { person, out } => export(project, &store, &person, out).await,
        PeopleAction::Erase {
            person,
            reason,
            force,
        } => erase(project, &store, &person, &reason, force).await,
    })
}

fn erasure_json(record: &ErasureRecord) -> Value {
    json!({
        "pseudonym": record.pseudonym,
        "erased_by": record.erased_by,
        "reason": record.reason,
        "at": rfc3339(record.at),
        "forced": record.forced,
        "removed": serde_json::from_str::<Value>(&record.removed).unwrap_or(Value::Null),
    })
}

async fn export(
    project: &Project,
    store: &impl Privacy,
    person: &str,
    out: Option<PathBuf>,
) -> Result<ExitCode> {
    let Some(access) = store.subject_access(person).await? else {
        bail!(
            "no person \"{person}\" is held in the store, and none was erased under that id\n  help: give the person_id from directory/people.csv; `cascade import` first if they were added since"
        );
    };
    let now = Utc::now();
    let partnership = &project.config.partnership.name;
    let document = match &access {
        SubjectAccess::Held {
            person: row,
            records,
        } => json!({
            "format": "cascade-subject-access",
            "format_version": 1,
            "partnership": partnership,
            "generated_at": now.to_rfc3339(),
            "person_id": person,
            "status": "held",
            "person": row,
            "records": records.iter().map(|(t, rows)| (t.clone(), Value::Array(rows.clone()))).collect::<serde_json::Map<_, _>>(),
        }),
        SubjectAccess::Erased(record) => json!({
            "format": "cascade-subject-access",
            "format_version": 1,
            "partnership": partnership,
            "generated_at": now.to_rfc3339(),
            "person_id": person,
            "status": "erased",
            "erasure": erasure_json(record),
        }),
    };
    let dir = out.unwrap_or_else(|| project.root.join("exports"));
    cascade_model::private_file::create_dir(&dir)
        .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    let safe: String = person
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stem = format!("subject-access-{safe}-{}", now.format("%Y%m%d-%H%M%S"));
    let json_path = dir.join(format!("{stem}.json"));
    let html_path = dir.join(format!("{stem}.html"));
    for (path, text) in [
        (&json_path, serde_json::to_string_pretty(&document)? + "\n"),
        (&html_path, html(partnership, person, &access, now)),
    ] {
        cascade_model::private_file::write_new(path, text.as_bytes()).with_context(|| {
            format!(
                "cannot write {}\n  help: if it exists, move it away or choose another folder with --out",
                path.display()
            )
        })?;
    }
    match access {
        SubjectAccess::Held { records, .. } => println!(
            "wrote {} and {} ({} kinds of record); they hold personal data: send them to the person securely and delete your copy when done",
            json_path.display(),
            html_path.display(),
            records.len()
        ),
        SubjectAccess::Erased(record) => println!(
            "wrote {} and {}: \"{person}\" was erased on {} (as {}); only the erasure record is held",
            json_path.display(),
            html_path.display(),
            when(record.at),
            record.pseudonym
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A table's name in plain words.
fn title_of(table: &str) -> String {
    match table {
        "acknowledgements" => "Learning you acknowledged".to_owned(),
        "acknowledgement_log" => "Repeat acknowledgements".to_owned(),
        "cascade_confirmations" => "Briefings you recorded cascading to a team".to_owned(),
        "champion_teams" => "Teams you cover as a champion".to_owned(),
        "champions" => "Themes you are a champion for".to_owned(),
        "channel_identities" => "Your addresses and chat accounts".to_owned(),
        "console_users" => "Your web console account".to_owned(),
        "console_audit" => "Changes you made in the web console".to_owned(),
        "follow_up_answers" => "Your answers to follow-up questions".to_owned(),
        "link_codes" => "Codes issued to link your chat accounts".to_owned(),
        "outbox" => "Messages sent to you, or about you to your champion or manager".to_owned(),
        "rollout_members" => "Rollouts you were part of".to_owned(),
        other => other.replace('_', " "),
    }
}

fn cell(column: &str, value: &Value) -> String {
    match value {
        Value::Null => "(none)".to_owned(),
        Value::Number(n) if column == "at" || column == "since" || column.ends_with("_at") => {
            n.as_i64().map(when).unwrap_or_else(|| n.to_string())
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn table_html(caption: &str, rows: &[Value]) -> String {
    let columns: Vec<&String> = rows
        .first()
        .and_then(Value::as_object)
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    let mut s = format!("<table>\n<caption>{}</caption>\n<thead><tr>", esc(caption));
    for c in &columns {
        s.push_str(&format!(
            "<th scope=\"col\">{}</th>",
            esc(&c.replace('_', " "))
        ));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        s.push_str("<tr>");
        for c in &columns {
            s.push_str(&format!("<td>{}</td>", esc(&cell(c, &row[c.as_str()]))));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table>\n");
    s
}

const STYLE: &str = "body{font-family:Arial,Helvetica,sans-serif;color:#0b0c0c;background:#fff;line-height:1.5;margin:0 auto;padding:1rem;max-width:70rem}\
h1{font-size:2rem}h2{font-size:1.5rem;margin-top:2rem}\
.scroll{overflow-x:auto}.scroll:focus{outline:3px solid #0b0c0c;outline-offset:2px}table{border-collapse:collapse;margin:0.5rem 0 1.5rem}\
caption{text-align:left;font-weight:bold;padding:0.25rem 0}\
th,td{border:1px solid #505a5f;padding:0.25rem 0.5rem;text-align:left;vertical-align:top}\
th{background:#f3f2f1}dl{display:grid;grid-template-columns:max-content 1fr;gap:0.25rem 1rem}dt{font-weight:bold}dd{margin:0}";

/// The readable page: self-contained, no scripts, plain English.
fn html(partnership: &str, person: &str, access: &SubjectAccess, now: DateTime<Utc>) -> String {
    let title = format!("What {partnership} holds about {person} in cascade");
    let mut body = String::new();
    body.push_str(&format!(
        "<p>This is everything cascade, the partnership's safeguarding learning tool, held about person id <strong>{}</strong> on {}. A machine-readable copy is in the JSON file beside this page.</p>\n",
        esc(person),
        esc(&now.format("%-d %B %Y at %H:%M UTC").to_string())
    ));
    match access {
        SubjectAccess::Erased(record) => {
            body.push_str("<h2>You were erased</h2>\n<p>Your name, addresses, chat accounts and anything you typed were removed. Only this record of the erasure is held; your earlier activity is counted in reports under a code that does not identify you.</p>\n<dl>\n");
            for (k, v) in [
                ("Erased on", when(record.at)),
                ("Erased by", record.erased_by.clone()),
                ("Reason", record.reason.clone()),
                ("Code kept instead of your id", record.pseudonym.clone()),
            ] {
                body.push_str(&format!("<dt>{}</dt><dd>{}</dd>\n", esc(k), esc(&v)));
            }
            body.push_str("</dl>\n");
        }
        SubjectAccess::Held {
            person: row,
            records,
        } => {
            body.push_str(
                "<h2>Your details</h2>\n<p>From the partnership's staff directory.</p>\n<dl>\n",
            );
            if let Some(map) = row.as_object() {
                for (k, v) in map {
                    let v = match v {
                        Value::Array(items) => items
                            .iter()
                            .map(|i| cell(k, i))
                            .collect::<Vec<_>>()
                            .join(", "),
                        other => cell(k, other),
                    };
                    body.push_str(&format!(
                        "<dt>{}</dt><dd>{}</dd>\n",
                        esc(&k.replace('_', " ")),
                        esc(&v)
                    ));
                }
            }
            body.push_str("</dl>\n");
            if records.is_empty() {
                body.push_str("<p>Nothing else is held about you.</p>\n");
            }
            for (table, rows) in records {
                let heading = title_of(table);
                body.push_str(&format!("<h2>{}</h2>\n<div class=\"scroll\" role=\"region\" aria-label=\"{}\" tabindex=\"0\">\n", esc(&heading), esc(&heading)));
                body.push_str(&table_html(
                    &format!("{heading} ({} rows)", rows.len()),
                    rows,
                ));
                body.push_str("</div>\n");
            }
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{t}</h1>\n{body}</main>\n</body>\n</html>\n",
        t = esc(&title)
    )
}

/// Where a directory file lists `person`: (file, line) pairs.
fn listed_in(project: &Project, person: &str) -> Vec<(PathBuf, u64)> {
    let mut found = Vec::new();
    for name in ["people.csv", "champions.csv"] {
        let path = project.directory_dir().join(name);
        let Ok(mut reader) = csv::ReaderBuilder::new().flexible(true).from_path(&path) else {
            continue;
        };
        for record in reader.records().flatten() {
            if record.get(0).map(str::trim) == Some(person) {
                let line = record.position().map_or(0, |p| p.line());
                found.push((path.clone(), line));
            }
        }
    }
    // Rollout files naming them in an audience.
    let quoted = format!("\"{person}\"");
    if let Ok(entries) = std::fs::read_dir(project.root.join("rollouts")) {
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        for path in files {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            for (n, line) in text.lines().enumerate() {
                if line.contains(&quoted) {
                    found.push((path.clone(), n as u64 + 1));
                }
            }
        }
    }
    found
}

async fn erase(
    project: &Project,
    store: &impl Privacy,
    person: &str,
    reason: &str,
    force: bool,
) -> Result<ExitCode> {
    let request = EraseRequest {
        person_id: person.to_owned(),
        by: operator(),
        reason: reason.to_owned(),
        force,
        now: Utc::now().timestamp_millis(),
    };
    let erased = match store.erase_person(&request).await {
        Ok(erased) => erased,
        Err(EraseError::Store(e)) => return Err(e.into()),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let record = &erased.record;
    tracing::info!(pseudonym = %record.pseudonym, "a person was erased");
    println!(
        "erased \"{person}\": name, email address, mobile, chat accounts, link codes and free text removed; their records are kept as {} so reports stay true",
        record.pseudonym
    );
    println!(
        "recorded: by {}, {}, reason \"{}\"{}. This cannot be undone.",
        record.erased_by,
        when(record.at),
        record.reason,
        if force { " (--force)" } else { "" }
    );
    if erased.cancelled_deliveries > 0 {
        println!(
            "cancelled {} message(s) still queued for them",
            erased.cancelled_deliveries
        );
    }
    for user in &erased.console_users {
        println!(
            "note: they are also console user \"{user}\"; the account is kept (now for {}); if its name identifies them or they have left, stop the account being used",
            record.pseudonym
        );
    }
    for item in &erased.named_in_items {
        println!("note: content item \"{item}\" names them; edit it in content/ if it should not");
    }
    let listed = listed_in(project, person);
    for (path, line) in &listed {
        println!(
            "now delete them from {}:{line}: it still names them (`cascade import` refuses their directory rows until you do)",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_retention(report: &RetentionReport, dry_run: bool) {
    let verb = if dry_run { "would be" } else { "were" };
    for (n, what) in [
        (report.follow_up_examples, "follow-up examples emptied"),
        (report.confirmation_notes, "confirmation notes emptied"),
        (
            report.inactive_people.len() as u64,
            "people who left erased",
        ),
        (
            report.acknowledgement_log,
            "repeat-acknowledgement log rows deleted",
        ),
        (report.refusal_counts, "refused-attempt counts deleted"),
        (report.sign_in_failures, "failed sign-ins deleted"),
        (report.audit_log, "audit log rows deleted"),
    ] {
        println!("{n:>8} {what}");
    }
    if !report.inactive_people.is_empty() {
        println!(
            "people who {verb} erased: {}",
            report.inactive_people.join(", ")
        );
    }
}

pub async fn retention(project: &Project, action: RetentionAction) -> Result<ExitCode> {
    let RetentionAction::Apply { dry_run } = action;
    let config = project.config.retention;
    if !config.is_set() {
        println!(
            "nothing to do: [retention] in {} sets no period, so everything is kept until erased\n  help: see the commented [retention] example that `cascade init` writes",
            project.root.join("cascade.toml").display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    crate::on_store!(open_store(project).await?, store => apply_retention(&store, config, dry_run).await)
}

async fn apply_retention(
    store: &impl Privacy,
    config: cascade_engine::retention::RetentionConfig,
    dry_run: bool,
) -> Result<ExitCode> {
    let now = Utc::now();
    let cutoffs = config.cutoffs(now);
    let by = operator();
    let listed = store
        .apply_retention(&cutoffs, &by, now.timestamp_millis(), true)
        .await?;
    println!(
        "{}:",
        if dry_run {
            "would remove (nothing is changed)"
        } else {
            "to remove"
        }
    );
    print_retention(&listed, true);
    if dry_run || listed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let applied = store
        .apply_retention(&cutoffs, &by, now.timestamp_millis(), false)
        .await?;
    println!("removed:");
    print_retention(&applied, false);
    Ok(ExitCode::SUCCESS)
}

/// `serve`'s run of the retention schedule: once as it starts (before any
/// send), then every 24 hours; logs counts only.
pub async fn apply_retention_daily<S: Privacy + 'static>(
    config: cascade_engine::retention::RetentionConfig,
    store: std::sync::Arc<S>,
) {
    if !config.is_set() {
        return;
    }
    async fn once<S: Privacy>(config: cascade_engine::retention::RetentionConfig, store: &S) {
        let now = Utc::now();
        match store
            .apply_retention(&config.cutoffs(now), "serve", now.timestamp_millis(), false)
            .await
        {
            Ok(r) => tracing::info!(
                follow_up_examples = r.follow_up_examples,
                confirmation_notes = r.confirmation_notes,
                inactive_people = r.inactive_people.len(),
                acknowledgement_log = r.acknowledgement_log,
                refusal_counts = r.refusal_counts,
                sign_in_failures = r.sign_in_failures,
                audit_log = r.audit_log,
                "retention schedule applied"
            ),
            Err(e) => tracing::warn!("the retention schedule could not be applied: {e}"),
        }
    }
    once(config, &*store).await;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(24 * 60 * 60)).await;
            once(config, &*store).await;
        }
    });
}

/// Who a plugin's messages pass through, and what they see.
fn processor(plugin: &str, config: &Value) -> (String, &'static str) {
    let host = config.get("host").and_then(Value::as_str).unwrap_or("");
    match plugin {
        "email" if host.ends_with("office365.com") || host.ends_with("outlook.com") => (
            format!("Microsoft (Exchange Online, {host})"),
            "recipient's email address and name as the template writes it, the message text",
        ),
        "email" => (
            format!(
                "the SMTP relay {}",
                if host.is_empty() {
                    "(host not set)"
                } else {
                    host
                }
            ),
            "recipient's email address and name as the template writes it, the message text",
        ),
        "notify" => (
            "GOV.UK Notify (Government Digital Service)".to_owned(),
            "recipient's email address or mobile number, the message text, delivery receipts",
        ),
        "teams" => (
            "Microsoft (Teams, Bot Framework, the partnership's Microsoft 365 tenant)".to_owned(),
            "Teams account id, the message text, button presses and forms",
        ),
        "telegram" => (
            "Telegram (Telegram Messenger Inc., outside the UK)".to_owned(),
            "Telegram chat id, the message text, button presses and link codes typed",
        ),
        "discord" => (
            "Discord (Discord Inc., USA)".to_owned(),
            "Discord user id, the message text, button presses, commands and forms",
        ),
        "file" => (
            "nobody: messages are written to files in the project".to_owned(),
            "the message text, on this machine",
        ),
        _ => (
            "TO FILL: who runs this plugin's service".to_owned(),
            "TO FILL",
        ),
    }
}

fn erasure_effect(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::PersonId { .. } | FieldKind::CompositeKey => "replaced by a pseudonym",
        FieldKind::Identifier => "removed",
        FieldKind::FreeText => "emptied; their details cut out of others' text",
        FieldKind::Personal => "kept under the pseudonym (counts)",
        FieldKind::Secret => "removed with the row, or kept as a one-way hash",
        FieldKind::NotPersonal => "",
    }
}

pub fn record(project: &Project, out: Option<&Path>) -> Result<ExitCode> {
    let config = &project.config;
    let mut md = String::new();
    let push = |md: &mut String, s: &str| {
        md.push_str(s);
        md.push('\n');
    };
    push(
        &mut md,
        &format!(
            "# Record of processing: cascade for {}\n",
            config.partnership.name
        ),
    );
    push(
        &mut md,
        &format!(
            "Generated by `cascade privacy record` on {} from the store's schema and `cascade.toml`, for the partnership's data protection impact assessment (DPIA) and its record of processing activities (UK GDPR Article 30). Parts marked **TO FILL** are for the data protection officer.\n",
            Utc::now().format("%-d %B %Y")
        ),
    );
    push(&mut md, "## Controller, purpose and lawful basis\n");
    for line in [
        "- Controller: **TO FILL** (the partnership, or the lead agency acting for it), with its address.",
        "- Data protection officer: **TO FILL** (name and contact).",
        "- Purpose: spreading safeguarding learning to the partnership's practitioners and recording that it landed (acknowledgements, follow-up answers, champions' cascade confirmations) as evidence for the partnership's assurance and annual report.",
        "- Lawful basis (Article 6): **TO FILL** (for a public body usually 6(1)(e), a task in the public interest: the statutory safeguarding partnership duties).",
        "- Special category and criminal offence data: none is asked for; free text (follow-up examples, champions' notes) is checked by the privacy guard for children's details. **TO FILL**: confirm.",
        "- People concerned: staff and volunteers of the partnership's agencies listed in `directory/people.csv`, and console users.",
    ] {
        push(&mut md, line);
    }
    push(&mut md, "\n## Personal data held\n");
    push(
        &mut md,
        "Every column of the store that holds personal data (from `core/store/src/privacy.rs`, which a test keeps equal to the live schema).\n",
    );
    push(
        &mut md,
        "| table | field | what it is | where it comes from | on erasure |\n|---|---|---|---|---|",
    );
    for field in FIELDS
        .iter()
        .filter(|f| !matches!(f.kind, FieldKind::NotPersonal) && !f.what.is_empty())
    {
        push(
            &mut md,
            &format!(
                "| {} | {} | {} | {} | {} |",
                field.table,
                field.column,
                field.what,
                field.source,
                erasure_effect(field.kind)
            ),
        );
    }
    push(
        &mut md,
        "\nThe project folder also holds personal data: `directory/*.csv` (the staff directory), `exports/` (subject access exports), backups made with `cascade backup`, and the outbox folder of a `file` channel.\n",
    );
    push(&mut md, "## Channels and processors\n");
    if config.channels.is_empty() {
        push(&mut md, "No channels are configured in `cascade.toml`.\n");
    } else {
        push(
            &mut md,
            "| channel | plugin | processor | what they see |\n|---|---|---|---|",
        );
        for channel in &config.channels {
            let (who, sees) = processor(&channel.plugin, &channel.config);
            push(
                &mut md,
                &format!("| {} | {} | {who} | {sees} |", channel.name, channel.plugin),
            );
        }
        push(
            &mut md,
            "\n**TO FILL** for each processor: the contract or terms (Article 28), where the data is processed, and the safeguard for any transfer outside the UK.\n",
        );
    }
    push(&mut md, "## Retention in force\n");
    push(
        &mut md,
        "From `[retention]` in `cascade.toml`, applied daily by `cascade serve` and on demand by `cascade retention apply`.\n",
    );
    push(&mut md, "| key | what | kept for |\n|---|---|---|");
    for (key, what, period) in config.retention.entries() {
        push(
            &mut md,
            &format!(
                "| {key} | {what} | {} |",
                period.map_or("not set: kept until the person is erased".to_owned(), |p| p
                    .to_string())
            ),
        );
    }
    push(&mut md, "\n## People's rights\n");
    for line in [
        "- Access (Article 15): `cascade people export PERSON` writes everything held about them as JSON and a readable page.",
        "- Rectification (Article 16): correct `directory/people.csv` and run `cascade import`.",
        "- Erasure (Article 17): `cascade people erase PERSON --reason ...` (recorded; cannot be undone; the person's rows must then be deleted from `directory/*.csv`).",
        "- Security of processing (Article 32): see SECURITY.md.",
    ] {
        push(&mut md, line);
    }
    match out {
        Some(path) => {
            std::fs::write(path, &md)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("wrote {}", path.display());
        }
        None => print!("{md}"),
    }
    Ok(ExitCode::SUCCESS)
}
