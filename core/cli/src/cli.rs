//! The `cascade` command line: a thin layer that opens a project, calls the
//! library and prints what happened in words a business unit can act on.

use anyhow::{Context, Result, anyhow, bail};
use cascade_engine::delivery::DispatchSettings;
use cascade_engine::engine::{self, Engine};
use cascade_engine::project::{self, Project};
use cascade_model::content::{self, ItemKind, LearningItem};
use cascade_model::directory::{self, Directory};
use cascade_plugin_host::{self as plugins, LoadReport, PluginHost};
use cascade_privacy::PrivacyGuard;
use cascade_render::Channel;
use cascade_store::{Bulletins, ChannelStates, Outbox, RolloutState, SqliteStore};
use chrono::Timelike;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cascade",
    version,
    about = "Spread safeguarding learning through a partnership, and prove that it landed"
)]
struct Cli {
    /// The project folder (holding cascade.toml, content/, directory/, templates/).
    #[arg(long, global = true, default_value = ".")]
    project: PathBuf,
    /// How log lines on stderr are written: text, or json (one object a
    /// line, for log shippers). Also from CASCADE_LOG_FORMAT.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "CASCADE_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: crate::output::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a working example project: config, templates, a made-up
    /// partnership directory and example learning of all three kinds.
    Init { dir: PathBuf },
    /// Validate config, templates, directory and content, and run the privacy
    /// guard; report every problem with its file and line.
    Check,
    /// Import directory CSV files into the store. With no files, imports the
    /// project's directory/ folder and records the current content versions.
    /// Says what the import does to each running rollout: joiners enrolled,
    /// leavers and movers no longer chased.
    Import {
        files: Vec<PathBuf>,
        /// Say what the import would do, and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The induction back catalogue of `[induction]` in cascade.toml.
    Induction {
        #[command(subcommand)]
        action: InductionAction,
    },
    /// Print an item as it would be sent on a channel.
    Preview {
        /// The item's id (see `cascade check`).
        item: String,
        /// email-html, email-text, telegram or discord; all when omitted.
        #[arg(long)]
        channel: Option<Channel>,
        /// Render for this person id from the directory.
        #[arg(long)]
        person: Option<String>,
    },
    /// Plan, start, pause, resume or cancel a rollout.
    Rollout {
        #[command(subcommand)]
        action: RolloutAction,
    },
    /// Run the scheduler and dispatcher (and a health endpoint) until stopped
    /// with Ctrl-C or SIGTERM; sends in flight get --stop-within seconds to
    /// finish, and a second Ctrl-C or SIGTERM stops at once.
    Serve {
        /// Where the HTTP server listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Stop once nothing is left to send now (for scripts and tests):
        /// messages waiting to be retried later do not keep it running
        /// (`cascade status` shows them; a later `serve` sends them).
        #[arg(long)]
        until_idle: bool,
        /// With --until-idle, also wait for every retry to be sent or given up.
        #[arg(long, requires = "until_idle")]
        wait_for_retries: bool,
        /// How long a claimed message is reserved for this process; after a
        /// crash, its unfinished messages are sent again once it runs out.
        #[arg(long, default_value_t = 120)]
        lease_seconds: u64,
        /// On Ctrl-C or SIGTERM, how long to wait for the sends in flight;
        /// those still unanswered are sent again once their lease runs out.
        #[arg(long, default_value_t = 30)]
        stop_within: u64,
        /// How long this process holds a chat channel's long poll (Telegram
        /// getUpdates, which one process at a time may run) before it must
        /// renew it, every third of it; if this process dies, another serve
        /// on the same store takes the poll over within it.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(3..=3600))]
        poll_lease_seconds: u64,
    },
    /// Give people one-time codes (valid 24 hours, single use) that they send
    /// to a chat bot as `/link <code>` to link their chat account: printed,
    /// or with `--send` sent to each person through a channel such as email.
    LinkCodes {
        /// Everyone in this team.
        #[arg(long)]
        team: Option<String>,
        /// These people.
        #[arg(long = "person")]
        people: Vec<String>,
        /// Send each person their code through this channel (e.g. the email
        /// channel) instead of printing the codes.
        #[arg(long, value_name = "CHANNEL")]
        send: Option<String>,
    },
    /// Show rollouts; with an id, that rollout per wave and channel.
    Status { rollout: Option<String> },
    /// Evidence for the annual report: who received, acknowledged and acted
    /// on learning, by agency, team, role, champion theme and wave. `report
    /// annual` writes the annual report's learning section; `report gaps`
    /// ranks the coverage gaps on a theme.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Report {
        #[command(subcommand)]
        kind: Option<ReportKind>,
        /// The rollout to report on (see `cascade status`).
        #[arg(
            required_unless_present = "partnership",
            conflicts_with = "partnership"
        )]
        rollout: Option<String>,
        /// Every rollout created from --from to --to (whole days, inclusive,
        /// in the partnership's time zone), aggregated.
        #[arg(long, requires_all = ["from", "to"])]
        partnership: bool,
        /// The first day of the period, YYYY-MM-DD.
        #[arg(long, requires = "partnership")]
        from: Option<chrono::NaiveDate>,
        /// The last day of the period, YYYY-MM-DD.
        #[arg(long, requires = "partnership")]
        to: Option<chrono::NaiveDate>,
        /// table (for a terminal), csv (one file with a `section` column) or
        /// html (one self-contained page with charts).
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
        /// Write the report to this file instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The practice feedback loop ("you said, we did"): follow-up answers
    /// given from --from to --to, per item and theme: how many used the
    /// learning, the reasons for not using it and the examples. With
    /// --draft, also writes a draft newsletter item of it into content/.
    Feedback {
        /// The first day, YYYY-MM-DD (in the partnership's time zone).
        #[arg(long)]
        from: chrono::NaiveDate,
        /// The last day, YYYY-MM-DD, inclusive.
        #[arg(long)]
        to: chrono::NaiveDate,
        /// Write "You said, we did" as a draft newsletter item in content/
        /// (status draft: nothing sends it until it is approved).
        #[arg(long)]
        draft: bool,
    },
    /// Tamper-evident evidence: export a pack of every evidence event in a
    /// period (CSVs, item versions, an index, a signed manifest), and
    /// verify a pack or the store's hash chain.
    Evidence {
        #[command(subcommand)]
        action: crate::evidence::EvidenceAction,
    },
    /// List the channel plugins found (name, version, channels, capabilities,
    /// file hash, and files not loaded for want of a pin), or check them.
    Plugins {
        #[command(subcommand)]
        action: Option<PluginsAction>,
    },
    /// Check everything a working deployment needs (config, content and
    /// directory, keys and secrets, links, the store, plugins and pins, and
    /// that each channel's provider answers) and say what to fix. Sends
    /// nothing.
    Doctor,
    /// Write a consistent copy of the store (the SQLite database) to a new
    /// file, also while `cascade serve` runs; the copy is checked before
    /// it is called done.
    Backup {
        /// The backup file to write; it must not exist yet.
        #[arg(long)]
        out: PathBuf,
    },
    /// Put a backup from `cascade backup` in place of the store, after
    /// checking it. Stop `cascade serve` first; the database it replaces is
    /// kept beside it.
    Restore {
        /// The backup file.
        from: PathBuf,
    },
    /// The store itself: bring its schema up to date, or copy a SQLite
    /// store into PostgreSQL.
    Store {
        #[command(subcommand)]
        action: crate::store_cmd::StoreAction,
    },
    /// Accounts of the web console `cascade serve` runs under /console.
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// UK GDPR: a person's subject access export, or their erasure.
    People {
        #[command(subcommand)]
        action: crate::gdpr::PeopleAction,
    },
    /// UK GDPR: apply `[retention]` in cascade.toml now (`serve` also
    /// applies it daily).
    Retention {
        #[command(subcommand)]
        action: crate::gdpr::RetentionAction,
    },
    /// UK GDPR: the record of processing for the partnership's DPIA.
    Privacy {
        #[command(subcommand)]
        action: crate::gdpr::PrivacyAction,
    },
    /// Microsoft Teams: make the app manifest an administrator uploads.
    Teams {
        #[command(subcommand)]
        action: TeamsAction,
    },
    /// Create (or reuse) a demo project, check it, import it into SQLite,
    /// start a rollout of an example briefing through the file channel and
    /// serve it.
    Demo {
        #[arg(long, default_value = "cascade-demo")]
        dir: PathBuf,
        /// Where the HTTP server listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Stop once the demo rollout has nothing left to send now.
        #[arg(long)]
        until_idle: bool,
    },
}

#[derive(Subcommand)]
enum RolloutAction {
    /// Check a rollout file and print what would happen, per wave and channel. Writes nothing.
    Plan {
        file: PathBuf,
    },
    /// Check a rollout file and start it: pins the item version and records
    /// every member. Sending is done by `cascade serve`.
    Start {
        file: PathBuf,
    },
    /// Stop sending until resumed; takes effect before the next send.
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    /// Stop for good; queued messages are cancelled.
    Cancel {
        id: String,
    },
}

#[derive(Subcommand)]
enum UsersAction {
    /// Add a console user and print their one-time set-up link (valid 72
    /// hours), with which they choose their password.
    Add {
        name: String,
        /// admin (users, audit log), editor (content, rollouts), approver
        /// (approves items), viewer (read only) or champion (their teams).
        #[arg(long, value_parser = ["admin", "editor", "approver", "viewer", "champion"])]
        role: String,
        /// For a champion: their person_id in people.csv.
        #[arg(long)]
        person: Option<String>,
    },
    /// Give a console user a new one-time set-up link (to set a forgotten
    /// password); their current password works until they use it.
    Reset { name: String },
    /// List the console users and their roles.
    List,
}

#[derive(Subcommand)]
enum TeamsAction {
    /// Write the Teams app manifest.json for the project's Teams channel
    /// (bot id, personal and team scopes, commands). Zip it with two icons,
    /// color.png (192x192) and outline.png (32x32), and upload it in the
    /// Teams admin centre.
    Manifest {
        /// The Teams channel's name, when the project has several.
        #[arg(long)]
        channel: Option<String>,
        /// Where to write it (default: print it).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PluginsAction {
    /// Load every plugin found and start (then stop) every configured
    /// channel, and warn about plugin folders and files others can write
    /// to; report every problem, failing if there is any.
    Check,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.log_format;
    let log = crate::output::init(format);
    let code = match run(cli) {
        Ok(code) => code,
        // A log shipper reads only JSON lines.
        Err(e) if format == crate::output::LogFormat::Json => {
            tracing::error!("{}", said_once(&e));
            ExitCode::FAILURE
        }
        Err(e) => {
            // Not `eprintln!`: after `serve`, a closed stderr is an error
            // (SIGPIPE ignored), and the reason must not become a panic.
            let _ = writeln!(std::io::stderr(), "error: {}", said_once(&e));
            ExitCode::FAILURE
        }
    };
    log.flush(crate::output::FLUSH_WAIT);
    code
}

/// An error and its causes, each said once. The library's errors already
/// show their cause (so `to_string` alone is complete where they are
/// collected as problems), while a `context` added here does not; so a
/// cause is added only when the text so far does not already hold it.
fn said_once(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain().map(ToString::to_string) {
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

fn run(cli: Cli) -> Result<ExitCode> {
    // Commands that run on the SQLite file only so far.
    let sqlite_only = match &cli.command {
        Command::Backup { .. } => Some("backup"),
        Command::Restore { .. } => Some("restore"),
        _ => None,
    };
    if let Some(command) = sqlite_only
        && let Ok(project) = Project::open(&cli.project)
    {
        crate::store_cmd::refuse_postgres_for_now(&project, command)?;
    }
    match cli.command {
        Command::Init { dir } => {
            let n = project::scaffold(&dir)?;
            println!(
                "Created an example project in {} ({n} files).",
                dir.display()
            );
            println!("Next: cascade check --project {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let project = Project::open(&cli.project)?;
            Ok(check(&project))
        }
        Command::Import { files, dry_run } => {
            let project = Project::open(&cli.project)?;
            runtime()?.block_on(import(&project, files, dry_run))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Preview {
            item,
            channel,
            person,
        } => {
            let project = Project::open(&cli.project)?;
            let channels = channel.map(|c| vec![c]).unwrap_or(Channel::ALL.to_vec());
            preview(&project, &item, &channels, person.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rollout { action } => {
            let project = Project::open(&cli.project)?;
            runtime()?.block_on(rollout(project, action))
        }
        Command::Induction { action } => {
            let project = Project::open(&cli.project)?;
            runtime()?.block_on(induction(project, action))
        }
        Command::Serve {
            listen,
            until_idle,
            wait_for_retries,
            lease_seconds,
            stop_within,
            poll_lease_seconds,
        } => {
            let project = Project::open(&cli.project)?;
            let settings = DispatchSettings {
                lease: std::time::Duration::from_secs(lease_seconds.max(1)),
                stop_within: std::time::Duration::from_secs(stop_within),
                poll_lease: std::time::Duration::from_secs(poll_lease_seconds),
                ..DispatchSettings::default()
            };
            let until = match (until_idle, wait_for_retries) {
                (false, _) => engine::Until::Stopped,
                (true, false) => engine::Until::NothingDueNow,
                (true, true) => engine::Until::NothingLeft,
            };
            runtime()?.block_on(serve(project, Some(listen), until, settings))
        }
        Command::LinkCodes { team, people, send } => {
            let project = Project::open(&cli.project)?;
            runtime()?.block_on(link_codes(
                project,
                team.as_deref(),
                &people,
                send.as_deref(),
            ))
        }
        Command::Status { rollout } => {
            let project = Project::open(&cli.project)?;
            runtime()?.block_on(status(&project, rollout.as_deref()))
        }
        Command::Report {
            kind: Some(kind), ..
        } => {
            let project = Project::open(&cli.project)?;
            runtime()?.block_on(special_report(&project, kind))
        }
        Command::Report {
            kind: None,
            rollout,
            partnership: _,
            from,
            to,
            format,
            out,
        } => {
            let project = Project::open(&cli.project)?;
            let selection = match (rollout, from, to) {
                (Some(id), _, _) => cascade_engine::report::Selection::Rollout(id),
                (None, Some(from), Some(to)) => {
                    cascade_engine::report::Selection::Partnership { from, to }
                }
                _ => {
                    bail!("name a rollout, or give --partnership --from YYYY-MM-DD --to YYYY-MM-DD")
                }
            };
            runtime()?.block_on(report(&project, &selection, format.into(), out.as_deref()))
        }
        Command::Feedback { from, to, draft } => {
            let project = Project::open(&cli.project)?;
            runtime()?.block_on(feedback(&project, from, to, draft))
        }
        Command::Evidence { action } => crate::evidence::evidence(&cli.project, action),
        Command::Plugins { action } => plugins(&cli.project, action.is_some()),
        Command::Doctor => crate::doctor::doctor(&cli.project),
        Command::Backup { out } => {
            let project = Project::open(&cli.project)?;
            runtime()?.block_on(crate::backup::backup(&project, &out))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Store { action } => {
            let project = Project::open(&cli.project)?;
            runtime()?.block_on(crate::store_cmd::run(&project, action))
        }
        Command::Restore { from } => {
            let project = Project::open(&cli.project)?;
            runtime()?.block_on(crate::backup::restore(&project, &from))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Users { action } => {
            let project = Project::open(&cli.project)?;
            runtime()?.block_on(users(&project, action))
        }
        Command::People { action } => {
            let project = Project::open(&cli.project)?;
            runtime()?.block_on(crate::gdpr::people(&project, action))
        }
        Command::Retention { action } => {
            let project = Project::open(&cli.project)?;
            runtime()?.block_on(crate::gdpr::retention(&project, action))
        }
        Command::Privacy {
            action: crate::gdpr::PrivacyAction::Record { out },
        } => {
            let project = Project::open(&cli.project)?;
            crate::gdpr::record(&project, out.as_deref())
        }
        Command::Teams {
            action: TeamsAction::Manifest { channel, out },
        } => {
            let project = Project::open(&cli.project)?;
            let manifest = crate::teams_manifest::manifest(&project.config, channel.as_deref())?;
            let text = serde_json::to_string_pretty(&manifest)? + "\n";
            match out {
                Some(out) => {
                    std::fs::write(&out, text)
                        .with_context(|| format!("cannot write {}", out.display()))?;
                    println!("wrote {}", out.display());
                }
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            dir,
            listen,
            until_idle,
        } => demo(&dir, listen, until_idle),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn check(project: &Project) -> ExitCode {
    let report = project.check();
    for problem in &report.problems {
        eprintln!("{problem}\n");
    }
    if report.problems.is_empty() {
        println!(
            "ok: {} items, {} people in {} teams of {} agencies, {} champions; templates render on {} channels",
            report.items.len(),
            report.directory.people.len(),
            report.directory.teams.len(),
            report.directory.agencies.len(),
            report.directory.champions.len(),
            Channel::ALL.len(),
        );
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "{} problem{} found in {}",
            report.problems.len(),
            if report.problems.len() == 1 { "" } else { "s" },
            project.root.display()
        );
        ExitCode::FAILURE
    }
}

async fn import(project: &Project, files: Vec<PathBuf>, dry_run: bool) -> Result<()> {
    let whole_project = files.is_empty();
    let files = if whole_project {
        ["agencies", "teams", "people", "champions"]
            .iter()
            .map(|name| project.directory_dir().join(format!("{name}.csv")))
            .filter(|p| p.exists())
            .collect()
    } else {
        files
    };
    let mut parsed = Vec::new();
    for path in &files {
        let file = directory::read_csv(path).map_err(|errors| problems(&errors))?;
        parsed.push((path.clone(), file));
    }
    // Agencies before teams before people before champions, whatever the order given.
    parsed.sort_by_key(|(_, file)| file.kind());
    let items = if whole_project {
        let (items, errors) = content::load_dir(&project.content_dir(), &project.taxonomy);
        if !errors.is_empty() {
            bail!("{}", problems(&errors));
        }
        items
    } else {
        Vec::new()
    };
    // A dry run on a project never imported asks an empty store in memory.
    let opened = if dry_run && project.config.store.url.is_none() && !project.store_path().exists()
    {
        crate::store_cmd::Opened::Sqlite(SqliteStore::open_in_memory().await?)
    } else {
        crate::store_cmd::open(project).await?
    };
    crate::on_store!(opened, store => {
        import_into(project, &store, &parsed, &items, whole_project, dry_run).await
    })
}

/// Imports the parsed directory files (and, for the whole project, the
/// content) into `store`, or with `dry_run` says what that would do.
async fn import_into<S: crate::store_cmd::AnyStore>(
    project: &Project,
    store: &S,
    parsed: &[(PathBuf, directory::DirectoryFile)],
    items: &[content::LoadedItem],
    whole_project: bool,
    dry_run: bool,
) -> Result<()> {
    if dry_run {
        println!("dry run: nothing is written; this is what the import would do");
    }
    let calendar = cascade_model::rollout::Calendar::new(
        &project.config.partnership.time_zone,
        project.config.partnership.quiet_hours,
    )
    .map_err(|e| anyhow!("{e}"))?;
    let imported = cascade_engine::directory_import::import_directory(
        store,
        &project.taxonomy,
        &calendar,
        parsed,
        chrono::Utc::now(),
        dry_run,
    )
    .await
    .map_err(|e| anyhow!("{e}"))?;
    for ((path, _), summary) in parsed.iter().zip(&imported.files) {
        println!("{}: {summary}", path.display());
    }
    print!(
        "{}",
        cascade_engine::directory_import::describe_rollouts(&imported, dry_run)
    );
    if whole_project {
        let mut new_versions = 0;
        for loaded in items {
            let new = if dry_run {
                !store
                    .item_versions(&loaded.item.id)
                    .await?
                    .iter()
                    .any(|v| v.version == loaded.item.version)
            } else {
                store.save_item(&loaded.item, &loaded.text).await?
            };
            if new {
                new_versions += 1;
            }
        }
        println!(
            "content: {} items, {new_versions} new versions {}",
            items.len(),
            if dry_run {
                "would be recorded"
            } else {
                "recorded"
            }
        );
    }
    println!("store: {}", crate::store_cmd::describe(project));
    Ok(())
}

fn problems<E: std::fmt::Display>(errors: &[E]) -> anyhow::Error {
    anyhow!(
        "{}",
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    )
}

fn preview(project: &Project, id: &str, channels: &[Channel], person: Option<&str>) -> Result<()> {
    let (items, errors) = content::load_dir(&project.content_dir(), &project.taxonomy);
    let Some(loaded) = items.iter().find(|l| l.item.id == id) else {
        if !errors.is_empty() {
            eprintln!("{}\n", problems(&errors));
        }
        let known: Vec<&str> = items.iter().map(|l| l.item.id.as_str()).collect();
        bail!(
            "no item with id \"{id}\" in {}\n  help: known items: {}",
            project.content_dir().display(),
            known.join(", ")
        );
    };
    let name = person_name(project, person)?;
    let renderer = project
        .renderer()
        .map_err(|e| anyhow!("{}", e.join("\n")))?;
    let guard = PrivacyGuard::new(&project.config.privacy)?;
    for finding in guard.blocking_item(&loaded.text, &loaded.item.privacy_allow) {
        eprintln!(
            "warning: {}\n  this item will not be sent until that is fixed\n",
            finding.in_file(&loaded.path)
        );
    }
    print_item(project, &loaded.item, &renderer, channels, &name)
}

fn print_item(
    project: &Project,
    item: &LearningItem,
    renderer: &cascade_render::Renderer,
    channels: &[Channel],
    name: &str,
) -> Result<()> {
    let input = project.sample_input(name);
    for &channel in channels {
        let chunks = renderer.render(item, &project.taxonomy, channel, &input)?;
        for (i, chunk) in chunks.iter().enumerate() {
            let length = chunk.encode_utf16().count();
            let limit = channel
                .limit()
                .map(|l| format!(" of {l}"))
                .unwrap_or_default();
            println!(
                "──── {channel} · message {} of {} · {length}{limit} characters ────",
                i + 1,
                chunks.len()
            );
            println!("{chunk}\n");
        }
        if let Some(marking) = item.classification.marking() {
            // What people get where the channel or address may not carry it.
            let notice = cascade_render::NoticeInput {
                person_name: name.to_owned(),
                read_url: input.ack_url.clone().unwrap_or_default(),
                partnership_name: project.config.partnership.name.clone(),
                reason: cascade_render::NoticeReason::Channel,
            };
            println!(
                "──── {channel} · the notice sent instead where the channel does not carry {marking} ────"
            );
            println!(
                "{}\n",
                cascade_render::render_notice(&cascade_render::Notice::of(item), channel, &notice)
            );
        }
    }
    Ok(())
}

fn person_name(project: &Project, person: Option<&str>) -> Result<String> {
    let Some(id) = person else {
        return Ok("Sam Example".to_owned());
    };
    let (directory, errors) = Directory::load_dir(&project.directory_dir(), &project.taxonomy);
    match directory.people.iter().find(|p| p.id == id) {
        Some(p) => Ok(p.display_name.clone()),
        None if !errors.is_empty() => {
            Err(problems(&errors)).context(format!("cannot look up person \"{id}\""))
        }
        None => bail!(
            "no person \"{id}\" in {}\n  help: use a person_id from people.csv",
            project.directory_dir().display()
        ),
    }
}

fn demo(dir: &Path, listen: std::net::SocketAddr, until_idle: bool) -> Result<ExitCode> {
    if dir.join(cascade_engine::config::CONFIG_FILE).exists() {
        println!(
            "Using the demo project in {} (delete it to start afresh).",
            dir.display()
        );
    } else {
        let n = project::scaffold(dir)?;
        println!("Created the demo project in {} ({n} files).", dir.display());
    }
    let project = Project::open(dir)?;
    println!("\n== cascade check");
    if check(&project) != ExitCode::SUCCESS {
        return Ok(ExitCode::FAILURE);
    }
    println!("\n== cascade import (directory and content into SQLite)");
    let runtime = runtime()?;
    runtime.block_on(import(&project, Vec::new(), false))?;

    let example = project.root.join("rollouts/neglect-briefing.toml");
    let demo_file = project.root.join("rollouts/demo.toml");
    if !demo_file.exists() {
        let text = std::fs::read_to_string(&example)
            .with_context(|| format!("cannot read {}", example.display()))?;
        let mut definition =
            cascade_model::rollout::parse_definition(&example, &text).map_err(|e| problems(&e))?;
        let zone = cascade_model::rollout::Calendar::new(
            &project.config.partnership.time_zone,
            project.config.partnership.quiet_hours,
        )
        .map_err(|e| anyhow!(e))?
        .time_zone();
        definition.id = "demo-neglect-briefing".to_owned();
        definition.start = chrono::Utc::now()
            .with_timezone(&zone)
            .naive_local()
            .with_nanosecond(0)
            .unwrap_or_default();
        definition.urgent = true;
        for wave in &mut definition.waves {
            wave.after_days = 0;
        }
        let header = "# Written by `cascade demo` from neglect-briefing.toml: starts now, urgent\n# (so quiet hours do not hold it), every wave at once.\n";
        std::fs::write(
            &demo_file,
            format!("{header}{}", cascade_model::rollout::to_toml(&definition)),
        )?;
    }
    let already = runtime.block_on(async {
        let store = SqliteStore::open(&project.store_path().to_string_lossy()).await?;
        anyhow::Ok(store.rollout("demo-neglect-briefing").await?.is_some())
    })?;
    if already {
        println!("\n== the demo rollout is already started; serving it");
    } else {
        println!("\n== cascade rollout start {}", demo_file.display());
        let code = runtime.block_on(rollout(
            Project::open(dir)?,
            RolloutAction::Start {
                file: demo_file.clone(),
            },
        ))?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    // The example's monthly bulletin runs too: `serve` makes its issues.
    let bulletin = project.root.join("rollouts/practice-bulletin.toml");
    let bulletin_started = runtime.block_on(async {
        let store = SqliteStore::open(&project.store_path().to_string_lossy()).await?;
        anyhow::Ok(store.bulletin("practice-bulletin").await?.is_some())
    })?;
    if bulletin.exists() && !bulletin_started {
        println!("\n== cascade rollout start {}", bulletin.display());
        let code = runtime.block_on(rollout(
            Project::open(dir)?,
            RolloutAction::Start { file: bulletin },
        ))?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    let link = runtime.block_on(demo_admin_link(&project, listen))?;
    println!(
        "\n== the console\nOpen this one-time link to choose a password for the demo admin (\"{DEMO_ADMIN}\"), then sign in:\n  {}\nThe console is at {}/console",
        link.url,
        console_base_url(&project, Some(listen))
    );
    println!(
        "\n== cascade serve\nMessages are written to {}/ as the email channel would send them.\nFollow along with: cascade status --project {} demo-neglect-briefing",
        project.root.join("outbox").display(),
        dir.display()
    );
    let until = if until_idle {
        engine::Until::NothingDueNow
    } else {
        engine::Until::Stopped
    };
    let code = runtime.block_on(serve(
        Project::open(dir)?,
        Some(listen),
        until,
        DispatchSettings::default(),
    ))?;
    runtime.block_on(status(
        &Project::open(Path::new("."))?,
        Some("demo-neglect-briefing"),
    ))?;
    println!();
    runtime.block_on(status(
        &Project::open(Path::new("."))?,
        Some("practice-bulletin"),
    ))?;
    println!("\n== cascade report annual (this financial year, from the demo's own data)");
    // `serve` has made the project folder the working directory.
    let project = Project::open(Path::new("."))?;
    let zone = cascade_model::rollout::Calendar::new(
        &project.config.partnership.time_zone,
        project.config.partnership.quiet_hours,
    )
    .map_err(|e| anyhow!(e))?
    .time_zone();
    let (from, to) = financial_year(chrono::Utc::now().with_timezone(&zone).date_naive());
    let examples = project.root.join("reports/examples.md");
    runtime.block_on(special_report(
        &project,
        ReportKind::Annual {
            from,
            to,
            out: project.root.join("annual-report"),
            within_days: 14,
            examples: examples.exists().then_some(examples),
            sentences: None,
        },
    ))?;
    Ok(code)
}

/// The UK financial year (1 April to 31 March) that holds `day`.
fn financial_year(day: chrono::NaiveDate) -> (chrono::NaiveDate, chrono::NaiveDate) {
    use chrono::Datelike as _;
    let start = if day.month() >= 4 {
        day.year()
    } else {
        day.year() - 1
    };
    (
        chrono::NaiveDate::from_ymd_opt(start, 4, 1).unwrap_or(day),
        chrono::NaiveDate::from_ymd_opt(start + 1, 3, 31).unwrap_or(day),
    )
}

/// Lists (and with `check`, checks) the plugins a project would use.
/// Works outside a project too, with the default plugin folders. Files left
/// unloaded for want of a pin are listed with the line that would pin them;
/// plugin folders and files others can write to are warned about, and fail
/// a check.
fn plugins(project_dir: &Path, check: bool) -> Result<ExitCode> {
    let config = if project_dir
        .join(cascade_engine::config::CONFIG_FILE)
        .exists()
    {
        let project = Project::open(project_dir)?;
        Some(project.config)
    } else {
        None
    };
    let (plugins_config, channels) = config.map(|c| (c.plugins, c.channels)).unwrap_or_default();
    let dirs = plugins::default_search_dirs(&plugins_config.dirs, project_dir);
    let files = plugins::discover(&dirs);
    let (inbound, _inbound_events) = tokio::sync::mpsc::unbounded_channel();
    let LoadReport { host, mut problems } = PluginHost::load(&files, &plugins_config, inbound);
    if files.is_empty() {
        println!(
            "no plugin files found in: {}",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for plugin in host.plugins() {
        let m = &plugin.manifest;
        let capabilities: Vec<String> = m
            .capabilities
            .iter()
            .map(|c| {
                serde_json::to_value(c)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect();
        println!(
            "{} {}\n  channels: {}\n  capabilities: {}\n  file: {}\n  sha256: {}",
            m.name,
            m.version,
            m.channels.join(", "),
            if capabilities.is_empty() {
                "none".to_owned()
            } else {
                capabilities.join(", ")
            },
            plugin.path.display(),
            plugin.sha256,
        );
    }
    for path in host.unpinned() {
        print_unpinned(path);
    }
    let writable = plugins::writable_by_others(&dirs, &files);
    if !check {
        for warning in &writable {
            eprintln!("warning: {warning}\n");
        }
    }
    if check {
        // Paths in channel configuration (the file channel's folder) are
        // relative to the project, as under `serve`.
        let root = if channels.is_empty() {
            project_dir
        } else {
            std::env::set_current_dir(project_dir)
                .with_context(|| format!("cannot work in {}", project_dir.display()))?;
            Path::new(".")
        };
        runtime()?.block_on(async {
            for channel in &channels {
                match host.start(channel, root).await {
                    Ok(()) => println!(
                        "channel \"{}\" ({}) started and stopped cleanly",
                        channel.name, channel.plugin
                    ),
                    Err(e) => problems.push(e),
                }
            }
            host.stop().await;
        });
        problems.extend(writable);
    }
    for problem in &problems {
        eprintln!("{problem}\n");
    }
    if problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} plugin problem{}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
        Ok(ExitCode::FAILURE)
    }
}

/// A plugin file that was not loaded because pins are configured and it has
/// none, with its hash (read, never run) and how to pin it.
fn print_unpinned(path: &Path) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    println!("{name}: not pinned, not loaded\n  file: {}", path.display());
    match cascade_plugin_host::LoadedPlugin::hash_file(path) {
        Ok((_, sha256)) => println!(
            "  sha256: {sha256}\n  help: if you trust this file, pin it under [plugins.sha256] in cascade.toml: \"{name}\" = \"{sha256}\""
        ),
        Err(e) => println!("  sha256: unknown ({e})"),
    }
}

async fn rollout(project: Project, action: RolloutAction) -> Result<ExitCode> {
    crate::on_store!(crate::store_cmd::open(&project).await?, store => {
        rollout_on(project, std::sync::Arc::new(store), action).await
    })
}

async fn rollout_on<S: crate::store_cmd::AnyStore>(
    project: Project,
    store: std::sync::Arc<S>,
    action: RolloutAction,
) -> Result<ExitCode> {
    let now = chrono::Utc::now();
    let states = store.clone();
    let set_state = |id: String, state: RolloutState| async move {
        let store = states;
        if store
            .set_rollout_state(&id, state, now.timestamp_millis())
            .await?
        {
            println!("rollout \"{id}\" is now {}", state.as_str());
            Ok(ExitCode::SUCCESS)
        } else if store.set_bulletin_state(&id, state).await? {
            println!(
                "bulletin \"{id}\" is now {}: {}",
                state.as_str(),
                match state {
                    RolloutState::Active => "its occurrences are made again as they fall due",
                    _ =>
                        "no further occurrences are made; issues already made are rollouts of their own",
                }
            );
            Ok(ExitCode::SUCCESS)
        } else {
            bail!("no rollout \"{id}\"\n  help: `cascade status` lists the rollouts")
        }
    };
    match action {
        RolloutAction::Plan { file } => {
            let engine = Engine::with_store(project, store.clone(), false)
                .await
                .map_err(|p| anyhow!("{p}"))?;
            match engine.planner().plan_bulletin(&file, now).await {
                Ok(Some(planned)) => {
                    println!("{planned}");
                    println!(
                        "Nothing was written. Start it with: cascade rollout start {}",
                        file.display()
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                Ok(None) => {}
                Err(problems) => return report_problems(&problems, &file),
            }
            match engine.plan(&file, now).await {
                Ok(planned) => {
                    println!("{}", planned.summary);
                    print_team_posts(&planned, &engine.calendar);
                    print_quotas(&planned);
                    print_readings(&planned);
                    print_already_reached(&planned);
                    println!(
                        "Nothing was written. Start it with: cascade rollout start {}",
                        file.display()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(problems) => report_problems(&problems, &file),
            }
        }
        RolloutAction::Start { file } => {
            let engine = Engine::with_store(project, store.clone(), false)
                .await
                .map_err(|p| anyhow!("{p}"))?;
            match engine.planner().plan_bulletin(&file, now).await {
                Ok(Some(planned)) => {
                    if let Err(problems) = engine.planner().start_bulletin(&planned, now).await {
                        return report_problems(&problems, &file);
                    }
                    println!("{planned}");
                    println!(
                        "Started bulletin \"{}\". `cascade serve` makes each issue as it falls due; `cascade status` shows the next.",
                        planned.definition.id
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                Ok(None) => {}
                Err(problems) => return report_problems(&problems, &file),
            }
            let planned = match engine.plan(&file, now).await {
                Ok(planned) => planned,
                Err(problems) => return report_problems(&problems, &file),
            };
            let written = match engine.start(&planned, now).await {
                Ok(written) => written,
                Err(problems) => return report_problems(&problems, &file),
            };
            println!("{}", planned.summary);
            print_team_posts(&planned, &engine.calendar);
            print_quotas(&planned);
            print_readings(&planned);
            print_already_reached(&planned);
            println!(
                "Started rollout \"{}\" for {}. `cascade serve` sends it; `cascade status {}` follows it.",
                planned.definition.id,
                people(written),
                planned.definition.id
            );
            Ok(ExitCode::SUCCESS)
        }
        RolloutAction::Pause { id } => set_state(id, RolloutState::Paused).await,
        RolloutAction::Resume { id } => set_state(id, RolloutState::Active).await,
        RolloutAction::Cancel { id } => set_state(id, RolloutState::Cancelled).await,
    }
}

/// One line per team post: which team's channel, when, and the count it
/// starts from.
fn print_team_posts(planned: &engine::Planned, calendar: &cascade_model::rollout::Calendar) {
    if planned.definition.team_posts.is_empty() {
        return;
    }
    println!("Team posts (one post per team channel, with a live count of acknowledgements):");
    if planned.team_posts.is_empty() {
        println!("  none: no team of the audience has a channel in team_channels\n");
        return;
    }
    for post in &planned.team_posts {
        let when =
            cascade_model::time::from_millis(post.due_at).with_timezone(&calendar.time_zone());
        println!(
            "  {} ({}) on {}, channel {}: {}, showing \"{}\"",
            post.team_name,
            post.team_id,
            post.channel,
            post.address,
            when.format("%a %-d %b %Y %H:%M"),
            cascade_model::rollout::count_line(0, post.members as u32),
        );
    }
    println!();
}

/// How long each channel with a sending quota takes over the rollout.
fn print_quotas(planned: &engine::Planned) {
    if planned.quota_lines.is_empty() {
        return;
    }
    println!("Sending quotas (sends over a quota wait for the next window, none is refused):");
    for line in &planned.quota_lines {
        println!("  {line}");
    }
    println!();
}

/// Who gets a marked item in full and who a notice, and the fragments of
/// each person's text message.
fn print_readings(planned: &engine::Planned) {
    if let Some(marking) = planned.item.item.classification.marking() {
        println!(
            "{marking}: full text only where the channel (or the address's domain) may carry it; a notice with a link to read it elsewhere:"
        );
        for line in &planned.reading_lines {
            println!("  {line}");
        }
        println!();
    }
    if !planned.sms_lines.is_empty() {
        println!("Text messages (GOV.UK Notify bills each fragment):");
        for line in &planned.sms_lines {
            println!("  {line}");
        }
        println!();
    }
}

fn print_already_reached(planned: &engine::Planned) {
    if planned.already_reached > 0 {
        println!(
            "{} in this audience already {} \"{}\" through another rollout and {} left out, so nobody gets it twice.\n",
            people(planned.already_reached as u64),
            if planned.already_reached == 1 {
                "has"
            } else {
                "have"
            },
            planned.definition.item,
            if planned.already_reached == 1 {
                "is"
            } else {
                "are"
            },
        );
    }
}

fn report_problems(problems: &engine::Problems, file: &Path) -> Result<ExitCode> {
    for problem in &problems.0 {
        eprintln!("{problem}\n");
    }
    eprintln!(
        "{} problem{} with {}; nothing was started and nothing was sent",
        problems.0.len(),
        if problems.0.len() == 1 { "" } else { "s" },
        file.display()
    );
    Ok(ExitCode::FAILURE)
}

/// Moves into the project folder, since paths in channel configuration
/// (such as the file channel's folder) are relative to the project.
fn enter(project: Project) -> Result<Project> {
    std::env::set_current_dir(&project.root)
        .with_context(|| format!("cannot work in {}", project.root.display()))?;
    Ok(Project::open(Path::new("."))?)
}

async fn serve(
    project: Project,
    listen: Option<std::net::SocketAddr>,
    until: engine::Until,
    settings: DispatchSettings,
) -> Result<ExitCode> {
    crate::output::outlive_readers();
    let metrics = crate::metrics::recorder();
    let project = enter(project)?;
    // SQLite: one serve per store, held until this process ends (however
    // it ends), taken before any channel starts. PostgreSQL: serves share
    // the database, each alive by a lease (see `Runner::keep_alive`).
    let serving = if project.config.store.url.is_none() {
        Some(
            cascade_engine::serve_lock::ServeLock::take(&project.store_path())
                .map_err(|p| anyhow!("{p}"))?,
        )
    } else {
        None
    };
    crate::on_store!(crate::store_cmd::open(&project).await?, store => {
        serve_on(
            project,
            std::sync::Arc::new(store),
            serving,
            metrics,
            listen,
            until,
            settings,
        )
        .await
    })
}

/// How long a serve sharing a PostgreSQL store stays alive to the others
/// without renewing its lease (it renews every 5 s): a killed serve's rows
/// are sent again by the others within this and one renewal. Long enough
/// that a serve slowed by a loaded machine or database is not taken for
/// dead (its rows would then be sent twice).
const SERVE_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

async fn serve_on<S: crate::store_cmd::AnyStore>(
    project: Project,
    store: std::sync::Arc<S>,
    serving: Option<cascade_engine::serve_lock::ServeLock>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    listen: Option<std::net::SocketAddr>,
    until: engine::Until,
    settings: DispatchSettings,
) -> Result<ExitCode> {
    let engine = Engine::serving_with_store(project, store)
        .await
        .map_err(|p| anyhow!("{p}"))?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stop_within = settings.stop_within;
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(
            "shutting down: waiting up to {} s for the sends in flight (Ctrl-C again to stop now)",
            stop_within.as_secs()
        );
        let _ = stop.send(true);
        stop_by(stop_within + STOPPING_CHANNELS);
        shutdown_signal().await;
        tracing::warn!(
            "stopped at once: sends still in flight are sent again once their lease runs out"
        );
        std::process::exit(1);
    });
    let listener =
        match listen {
            Some(listen) => Some(tokio::net::TcpListener::bind(listen).await.with_context(
                || {
                    format!(
                        "cannot listen on {listen}\n  help: choose another address with --listen"
                    )
                },
            )?),
            None => None,
        };
    let limits = engine.project.config.server.clone();
    if listener.is_some() {
        open_files_for(limits.max_connections);
    }
    let pages = match engine.ack_links().map_err(|p| anyhow!("{p}"))? {
        Some((_, keys)) => cascade_server::ack_router(
            cascade_server::ServerState::new(
                engine.store.clone(),
                keys,
                engine.project.taxonomy.clone(),
                engine.calendar.time_zone(),
                std::sync::Arc::new(chrono::Utc::now),
            )
            .with_privacy_guard(PrivacyGuard::new(&engine.project.config.privacy)?)
            .with_trusted_proxies(engine.project.config.server.trusted_proxies.clone()),
        ),
        None => cascade_server::router(),
    };
    let engine_root = engine.project.root.clone();
    let retention = engine.project.config.retention;
    let mut console_settings = cascade_console::Settings::new(
        &console_base_url(&engine.project, listen),
        engine.project.config.console.allow_self_approval,
    );
    if let Some(sso) = &engine.project.config.console.sso {
        let secret = sso.client_secret.read(&engine.project.root).map_err(|e| {
            anyhow!("[console.sso] client_secret: {e}\n  help: set it in the environment or a file named in cascade.toml, never in cascade.toml itself")
        })?;
        let settings = cascade_console::sso::SsoSettings {
            issuer: sso.issuer.clone(),
            client_id: sso.client_id.clone(),
            client_secret: secret,
            scopes: sso.scopes.clone(),
            role_claim: sso.role_claim.clone(),
            name_claim: sso.name_claim.clone(),
            roles: sso.roles.clone(),
            label: sso.label.clone(),
        };
        let sso =
            cascade_console::sso::Sso::new(settings, &console_settings.base_url).map_err(|e| {
                anyhow!(
                    "{}: {e}",
                    engine.project.root.join("cascade.toml").display()
                )
            })?;
        console_settings.sso = Some(std::sync::Arc::new(sso));
    }
    // The channels start before the server, which hands their webhooks on.
    let mut runner = engine.runner(settings).await.map_err(|p| anyhow!("{p}"))?;
    match &serving {
        // No other serve is alive: what a killed one had leased is sent
        // now, not when its lease runs out.
        Some(serving) => {
            let taken_back = runner
                .take_back_leases(serving, chrono::Utc::now())
                .await
                .map_err(|p| anyhow!("{p}"))?;
            if taken_back > 0 {
                tracing::info!(
                    rows = taken_back,
                    "took back the messages an earlier serve had claimed but not recorded (it stopped mid-send); they are sent now"
                );
            }
        }
        // Other serves may be alive: the runner takes back only the rows
        // of those whose lease ran out, as it goes.
        None => runner = runner.shared_with_other_serves(SERVE_LEASE),
    }
    keep_channel_states(runner.store().clone(), runner.host().clone());
    crate::gdpr::apply_retention_daily(retention, runner.store().clone()).await;
    if let Some(listener) = listener {
        crate::output::say(format_args!(
            "cascade is serving; health at http://{addr}/health, the console at http://{addr}/console (Ctrl-C to stop)",
            addr = listener.local_addr()?
        ));
        let store = runner.store().clone();
        let health = cascade_server::Health {
            host: runner.host().clone(),
            store: Box::new(move || {
                let store = store.clone();
                Box::pin(async move { cascade_store::Audiences::has_people(&*store).await.is_ok() })
            }),
        };
        let app = pages
            .merge(cascade_server::webhook_router(runner.host().clone()))
            .merge(console_router(
                &engine_root,
                runner.store().clone(),
                &console_settings,
            ))
            .layer(axum::Extension(std::sync::Arc::new(health)))
            .layer(axum::Extension(std::sync::Arc::new(crate::metrics::page(
                metrics,
                runner.store().clone(),
                runner.host().clone(),
            ))));
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            cascade_server::serve(listener, app, &limits, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await;
        });
    }
    let report = runner
        .serve(stopped, until)
        .await
        .map_err(|p| anyhow!("{p}"))?;
    crate::output::say(format_args!(
        "stopped: {} messages queued, {} sends attempted",
        report.queued, report.dispatched
    ));
    Ok(ExitCode::SUCCESS)
}

/// Time for the channels to stop after the sends in flight were waited for.
const STOPPING_CHANNELS: std::time::Duration = std::time::Duration::from_secs(15);

/// Ends the process if it has not stopped by itself within `deadline`:
/// whatever holds it up (a plugin call that never returns, a stuck store),
/// a shutdown finishes. A thread of its own, so it runs even when every
/// worker of the runtime is blocked.
fn stop_by(deadline: std::time::Duration) {
    let _ = std::thread::Builder::new()
        .name("cascade-stop-by".to_owned())
        .spawn(move || {
            std::thread::sleep(deadline);
            tracing::error!(
                "did not stop within {} s; stopping now: sends still in flight are sent again once their lease runs out",
                deadline.as_secs()
            );
            crate::output::flush_log();
            std::process::exit(1);
        });
}

/// Files the server needs open besides its connections: the store, the
/// plugin libraries and their own sockets, logs.
const FILES_BESIDES_CONNECTIONS: u64 = 256;

/// Raises the open-file limit as far as allowed, and warns when it still
/// cannot hold `[server] max_connections` connections: past it, accepting
/// fails until some close.
fn open_files_for(max_connections: u64) {
    #[cfg(unix)]
    match cascade_server::raise_open_file_limit() {
        Ok(limit) if limit < max_connections + FILES_BESIDES_CONNECTIONS => tracing::warn!(
            limit,
            max_connections,
            "the open-file limit is too low for [server] max_connections; raise it (ulimit -n, or LimitNOFILE= in a systemd unit) or lower max_connections in cascade.toml"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot read the open-file limit: {e}"),
    }
    #[cfg(not(unix))]
    let _ = max_connections;
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("a SIGTERM handler can be installed");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// Each team post of a rollout: its state and the count it shows.
async fn print_team_post_states<S: crate::store_cmd::AnyStore>(store: &S, id: &str) -> Result<()> {
    let posts = store.team_posts(id).await?;
    if posts.is_empty() {
        return Ok(());
    }
    println!("\nteam posts:");
    for post in posts {
        let shown = post.shown.map_or_else(
            || "not posted yet".to_owned(),
            |c| {
                format!(
                    "shows \"{}\"",
                    cascade_model::rollout::count_line(c.acknowledged, c.total)
                )
            },
        );
        let error = post
            .last_error
            .map(|e| format!(" (last error: {e})"))
            .unwrap_or_default();
        println!(
            "  {:<28} {:<12} {:<8} {shown}{error}",
            post.team_id, post.channel, post.state
        );
    }
    Ok(())
}

async fn status(project: &Project, id: Option<&str>) -> Result<ExitCode> {
    crate::on_store!(crate::store_cmd::open(project).await?, store => status_on(&store, project, id).await)
}

async fn status_on<S: crate::store_cmd::AnyStore>(
    store: &S,
    project: &Project,
    id: Option<&str>,
) -> Result<ExitCode> {
    let rollouts = store.rollouts().await?;
    let calendar = cascade_model::rollout::Calendar::new(
        &project.config.partnership.time_zone,
        project.config.partnership.quiet_hours,
    )
    .map_err(|e| anyhow!(e))?;
    let bulletins = cascade_engine::bulletins::statuses(store, &calendar, chrono::Utc::now())
        .await
        .map_err(|p| anyhow!("{p}"))?;
    if let Some(b) = id.and_then(|id| bulletins.iter().find(|b| b.id == id)) {
        println!(
            "bulletin {} ({}): {}, {}",
            b.id,
            b.title,
            b.schedule,
            b.line(&calendar)
        );
        for o in &b.occurrences {
            let at = calendar.format_local(cascade_model::time::from_millis(o.occurrence_at));
            match &o.rollout_id {
                Some(rollout) => println!(
                    "  {at}: rollout {rollout}, {} item{} (see `cascade status {rollout}`)",
                    o.items,
                    if o.items == 1 { "" } else { "s" }
                ),
                None => println!("  {at}: skipped, nothing new was published"),
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(id) = id else {
        if rollouts.is_empty() && bulletins.is_empty() {
            println!("no rollouts yet; start one with `cascade rollout start <file>`");
        }
        for b in &bulletins {
            println!(
                "bulletin {:<19} {:<9} {}: {}",
                b.id,
                b.state.as_str(),
                b.schedule,
                b.line(&calendar)
            );
        }
        for r in &rollouts {
            let waves = store.wave_counts(&r.id).await?;
            let counts = store.delivery_counts(&r.id).await?;
            let members: u64 = waves.iter().map(|w| w.members).sum();
            let acknowledged: u64 = waves.iter().map(|w| w.acknowledged).sum();
            let sent: u64 = counts.iter().map(|c| c.sent).sum();
            println!(
                "{:<28} {:<9} {:<36} sent {} acknowledged {}",
                r.id,
                r.state.as_str(),
                r.item_id,
                progress(sent, members),
                progress(acknowledged, members)
            );
            print_last_errors(store, &r.id, "  ").await?;
        }
        print_channel_states(store, project).await?;
        return Ok(ExitCode::SUCCESS);
    };
    let Some(rollout) = rollouts.iter().find(|r| r.id == id) else {
        let known: Vec<&str> = rollouts.iter().map(|r| r.id.as_str()).collect();
        bail!(
            "no rollout \"{id}\"\n  help: known rollouts: {}",
            known.join(", ")
        );
    };
    let definition: cascade_model::rollout::RolloutDefinition =
        serde_json::from_str(&rollout.definition)?;
    let now = chrono::Utc::now();
    println!(
        "rollout {} ({}) of {} version {}",
        rollout.id,
        rollout.state.as_str(),
        rollout.item_id,
        &rollout.item_version[..12.min(rollout.item_version.len())]
    );
    let counts = store.delivery_counts(id).await?;
    for wave in store.wave_counts(id).await? {
        let index = wave.wave as usize;
        let name = definition
            .waves
            .get(index)
            .map(|w| w.name.as_str())
            .unwrap_or("?");
        let deadline = cascade_model::rollout::deadline(&definition, &calendar, index);
        // Only members still chased can be overdue: not leavers or movers.
        let overdue = if let Some(step) = definition.induction {
            // A key item of the induction: each joiner has their own
            // deadline, counted from the day they joined.
            println!(
                "\nkey item {} of the induction: {}, each sent {} working day{} after the one before and due within {} days of joining",
                step.position + 1,
                people(wave.members),
                step.pace_days,
                if step.pace_days == 1 { "" } else { "s" },
                step.deadline_days
            );
            let report = cascade_engine::report::generate(
                store,
                &cascade_engine::report::Selection::Rollout(id.to_owned()),
                &calendar,
                &project.taxonomy,
                now,
            )
            .await?;
            report
                .sections
                .iter()
                .filter(|s| s.kind == cascade_engine::report::SectionKind::Total)
                .flat_map(|s| &s.rows)
                .map(|r| r.figures.overdue)
                .sum()
        } else {
            println!(
                "\nwave {} \"{name}\": {}, first send {}, deadline {}",
                index + 1,
                people(wave.members),
                calendar.format_local(cascade_model::rollout::wave_send(
                    &definition,
                    &calendar,
                    index
                )),
                calendar.format_local(deadline)
            );
            if now > deadline { wave.waiting } else { 0 }
        };
        println!(
            "  planned {}  acknowledged {}  overdue {}  left {}  moved out {}",
            wave.planned,
            progress(wave.acknowledged, wave.members),
            overdue,
            wave.left,
            wave.moved
        );
        println!(
            "  {:<14} {:>8} {:>8} {:>8} {:>9} {:>8}  of the wave's people",
            "channel", "due", "sending", "sent", "retrying", "dead"
        );
        for c in counts.iter().filter(|c| c.wave == wave.wave) {
            println!(
                "  {:<14} {:>8} {:>8} {:>8} {:>9} {:>8}  {}",
                c.channel,
                c.due,
                c.leased,
                c.sent,
                c.retrying,
                c.dead,
                progress(c.sent, wave.members)
            );
        }
    }
    print_team_post_states(store, id).await?;
    if !store.last_errors(id).await?.is_empty() {
        println!("\nlast error per channel:");
        print_last_errors(store, id, "  ").await?;
    }
    let dead = store.dead_letters(id, 10).await?;
    if !dead.is_empty() {
        println!("\nlatest dead letters:");
        for d in dead {
            println!(
                "  {} on {} ({}): {}",
                d.person_id, d.channel, d.step_kind, d.reason
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Per channel of a rollout, its latest error and how many messages wait
/// to be retried, so "retrying 50" comes with its reason.
/// How often `serve` writes its channels' states for `cascade status`.
const CHANNEL_STATES_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Writes the channels' states to the store now and every few seconds,
/// for `cascade status` in another process.
fn keep_channel_states<S: ChannelStates + 'static>(
    store: std::sync::Arc<S>,
    host: std::sync::Arc<PluginHost>,
) {
    tokio::spawn(async move {
        loop {
            let states: Vec<(String, Option<String>)> = host
                .channel_states()
                .into_iter()
                .map(|(name, state)| match state {
                    cascade_plugin_host::ChannelState::Up => (name, None),
                    cascade_plugin_host::ChannelState::Down { reason } => (name, Some(reason)),
                })
                .collect();
            let now = chrono::Utc::now().timestamp_millis();
            if let Err(e) = store.save_channel_states(&states, now).await {
                tracing::debug!("cannot write the channels' states for status: {e}");
            }
            tokio::time::sleep(CHANNEL_STATES_EVERY).await;
        }
    });
}

/// Each channel's state as `serve` last wrote it, and how long ago.
async fn print_channel_states<S: crate::store_cmd::AnyStore>(
    store: &S,
    project: &Project,
) -> Result<()> {
    let states = store.channel_states().await?;
    if states.is_empty() {
        return Ok(());
    }
    let now = chrono::Utc::now().timestamp_millis();
    let seen = states.iter().map(|s| s.seen_at).max().unwrap_or(now);
    let zone: chrono_tz::Tz = project
        .config
        .partnership
        .time_zone
        .parse()
        .unwrap_or(chrono_tz::Europe::London);
    let local = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.with_timezone(&zone).format("%-d %b %H:%M").to_string())
            .unwrap_or_default()
    };
    if now - seen > 3 * CHANNEL_STATES_EVERY.as_millis() as i64 {
        println!(
            "channels (as `cascade serve` last saw them, at {}; it may not be running now):",
            local(seen)
        );
    } else {
        println!("channels:");
    }
    for s in &states {
        match &s.reason {
            None => println!("  {:<16} up since {}", s.channel, local(s.since)),
            Some(reason) => println!(
                "  {:<16} DOWN since {}: {reason} (cascade tries it again by itself)",
                s.channel,
                local(s.since)
            ),
        }
    }
    Ok(())
}

async fn print_last_errors<S: crate::store_cmd::AnyStore>(
    store: &S,
    rollout: &str,
    indent: &str,
) -> Result<()> {
    for e in store.last_errors(rollout).await? {
        let waiting = match e.retrying {
            0 => String::new(),
            1 => " (1 message waits to be retried)".to_owned(),
            n => format!(" ({n} messages wait to be retried)"),
        };
        println!("{indent}{}: {}{waiting}", e.channel, e.error);
    }
    Ok(())
}

/// "1 person", "2 people".
fn people(n: u64) -> String {
    if n == 1 {
        "1 person".to_owned()
    } else {
        format!("{n} people")
    }
}

/// `[#######-------]  50% (25/50)`
fn progress(done: u64, total: u64) -> String {
    let width = 20;
    let filled = (done.min(total) * width).checked_div(total).unwrap_or(0) as usize;
    let percent = (done * 100).checked_div(total).unwrap_or(0);
    format!(
        "[{}{}] {percent:>3}% ({done}/{total})",
        "#".repeat(filled),
        "-".repeat(width as usize - filled)
    )
}

async fn link_codes(
    project: Project,
    team: Option<&str>,
    people: &[String],
    send: Option<&str>,
) -> Result<ExitCode> {
    crate::on_store!(crate::store_cmd::open(&project).await?, store => link_codes_on(std::sync::Arc::new(store), project, team, people, send).await)
}

async fn link_codes_on<S: crate::store_cmd::AnyStore>(
    store: std::sync::Arc<S>,
    project: Project,
    team: Option<&str>,
    people: &[String],
    send: Option<&str>,
) -> Result<ExitCode> {
    if team.is_none() && people.is_empty() {
        bail!(
            "say whose codes to print\n  help: --team <team-id> for a whole team, or --person <person-id> (repeatable)"
        );
    }
    let key = project.link_code_key()?;
    let everyone = store.people(true).await?;
    let mut chosen: Vec<&cascade_store::StoredPerson> = everyone
        .iter()
        .filter(|p| team == Some(p.person.team_id.as_str()) || people.contains(&p.person.id))
        .collect();
    chosen.sort_by(|a, b| a.person.display_name.cmp(&b.person.display_name));
    for id in people {
        if !everyone.iter().any(|p| &p.person.id == id) {
            bail!(
                "no active person \"{id}\"\n  help: use a person_id from the imported people.csv"
            );
        }
    }
    if chosen.is_empty() {
        bail!(
            "team \"{}\" has no active people\n  help: use a team_id from the imported teams.csv",
            team.unwrap_or_default()
        );
    }
    let now = chrono::Utc::now();
    if let Some(channel) = send {
        let chosen: Vec<directory::Person> = chosen.into_iter().map(|p| p.person.clone()).collect();
        // Sends only: the serves keep the chat channels' long polls.
        let engine = Engine::for_sending(enter(project)?, store)
            .await
            .map_err(|p| anyhow!("{p}"))?;
        let mut failed = 0;
        for person in &chosen {
            match engine
                .send_link_code(&key, channel, person, now)
                .await
                .map_err(|p| anyhow!("{p}"))?
            {
                Ok(()) => println!("{:<32} sent", person.display_name),
                Err(reason) => {
                    failed += 1;
                    println!("{:<32} NOT SENT: {reason}", person.display_name);
                }
            }
        }
        engine.host.stop().await;
        println!(
            "\nSent {} of {} codes through \"{channel}\".",
            chosen.len() - failed,
            chosen.len()
        );
        return Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let until = now + chrono::Duration::milliseconds(cascade_engine::inbound::CODE_LIFETIME_MS);
    let bots = telegram_bots(&project);
    println!(
        "Send the bot /link followed by your code{}. Each code works once, until {} UTC.\n",
        if bots.is_empty() {
            ""
        } else {
            ", or open your link: it opens the bot with the code filled in"
        },
        until.format("%a %-d %b %H:%M")
    );
    for person in chosen {
        let code = cascade_engine::inbound::issue_code(
            &*store,
            &key,
            &person.person.id,
            now.timestamp_millis(),
        )
        .await?;
        let links: String = bots
            .iter()
            .map(|bot| format!("  https://t.me/{bot}?start={code}"))
            .collect();
        println!("{:<32} {code}{links}", person.person.display_name);
    }
    Ok(ExitCode::SUCCESS)
}

/// The usernames of the project's Telegram bots, where `cascade.toml`
/// gives them (`bot_username` of a telegram channel), for deep links.
fn telegram_bots(project: &Project) -> Vec<String> {
    project
        .config
        .channels
        .iter()
        .filter(|c| c.plugin == "telegram")
        .filter_map(|c| c.config.get("bot_username")?.as_str())
        .map(|name| name.trim_start_matches('@').to_owned())
        .collect()
}

/// The reports of `cascade report` that have their own subcommand.
#[derive(Subcommand)]
enum ReportKind {
    /// The annual report's learning section for a period, with the same
    /// figures for the period of equal length before it: annual.html,
    /// annual.docx (Word), figures.csv (every figure, its definition and
    /// sentence), published.csv, and sentences.md (the sentences, to edit).
    Annual {
        /// The first day of the period, YYYY-MM-DD (e.g. 2026-04-01).
        #[arg(long)]
        from: chrono::NaiveDate,
        /// The last day of the period, YYYY-MM-DD (e.g. 2027-03-31).
        #[arg(long)]
        to: chrono::NaiveDate,
        /// The folder to write the files into (created if missing).
        #[arg(long, default_value = "annual-report")]
        out: PathBuf,
        /// The acknowledgement window of the "acknowledged within" figures.
        #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=365))]
        within_days: u32,
        /// A text or Markdown file of examples of practice the business unit
        /// chose, one paragraph each (blank lines between; `#` lines ignored).
        #[arg(long)]
        examples: Option<PathBuf>,
        /// A sentences file (as written to sentences.md) with the business
        /// unit's wording: its sentences replace the generated ones.
        #[arg(long)]
        sentences: Option<PathBuf>,
    },
    /// Agencies, teams and roles that received nothing on a theme in the
    /// period, or whose reach or acknowledgement is far below the
    /// partnership's, worst first; as HTML with a heat map of agency by theme.
    /// Induction completion: the share of joiners who acknowledged each
    /// key item within the induction's deadline, by agency and team;
    /// leavers left out.
    Induction {
        /// table, csv or html.
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
        /// Write to this file instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    Gaps {
        /// The theme id (see content/taxonomy.toml), e.g. cse.
        #[arg(long)]
        theme: String,
        /// The first day of the period, YYYY-MM-DD.
        #[arg(long)]
        from: chrono::NaiveDate,
        /// The last day of the period, YYYY-MM-DD.
        #[arg(long)]
        to: chrono::NaiveDate,
        /// Far below: under this percentage of the partnership's rate.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100))]
        below: u32,
        /// table, csv or html (with the heat map).
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
        /// Write to this file instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum InductionAction {
    /// Check `[induction]` and start each key item's rollout not started
    /// yet. Nobody is enrolled now: people new in later imports are.
    Start,
}

async fn induction(project: Project, action: InductionAction) -> Result<ExitCode> {
    crate::on_store!(crate::store_cmd::open(&project).await?, store => {
        induction_on(project, std::sync::Arc::new(store), action).await
    })
}

async fn induction_on<S: crate::store_cmd::AnyStore>(
    project: Project,
    store: std::sync::Arc<S>,
    action: InductionAction,
) -> Result<ExitCode> {
    match action {
        InductionAction::Start => {
            let engine = Engine::with_store(project, store.clone(), false)
                .await
                .map_err(|p| anyhow!("{p}"))?;
            let done = engine
                .start_induction(chrono::Utc::now())
                .await
                .map_err(|p| anyhow!("{p}"))?;
            for id in &done.started {
                println!("started {id}");
            }
            for id in &done.running {
                println!("already running: {id}");
            }
            println!(
                "The induction is set up with {} key item{}: people new in later imports (`cascade import`) are enrolled, each from the day they join.",
                done.started.len() + done.running.len(),
                if done.started.len() + done.running.len() == 1 {
                    ""
                } else {
                    "s"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reads a file of examples: paragraphs separated by blank lines, `#`
/// lines left out.
fn read_examples(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the examples file {}", path.display()))?;
    let mut out = Vec::new();
    let mut paragraph = Vec::new();
    for line in text.lines().chain([""]) {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if line.is_empty() {
            if !paragraph.is_empty() {
                out.push(paragraph.join(" "));
                paragraph.clear();
            }
        } else {
            paragraph.push(line);
        }
    }
    Ok(out)
}

async fn special_report(project: &Project, kind: ReportKind) -> Result<ExitCode> {
    crate::on_store!(crate::store_cmd::open(project).await?, store => special_report_on(&store, project, kind).await)
}

async fn special_report_on<S: crate::store_cmd::AnyStore>(
    store: &S,
    project: &Project,
    kind: ReportKind,
) -> Result<ExitCode> {
    let calendar = cascade_model::rollout::Calendar::new(
        &project.config.partnership.time_zone,
        project.config.partnership.quiet_hours,
    )
    .map_err(|e| anyhow!(e))?;
    let now = chrono::Utc::now();
    match kind {
        ReportKind::Annual {
            from,
            to,
            out,
            within_days,
            examples,
            sentences,
        } => {
            use cascade_engine::report::{annual, docx};
            let examples = match &examples {
                Some(path) => read_examples(path)?,
                None => Vec::new(),
            };
            let edited = match &sentences {
                Some(path) => {
                    let text = std::fs::read_to_string(path).with_context(|| {
                        format!("cannot read the sentences file {}", path.display())
                    })?;
                    Some((path.clone(), annual::parse_sentences(path, &text)?, text))
                }
                None => None,
            };
            let options = annual::AnnualOptions {
                from,
                to,
                within_days,
                examples,
                edits: edited.as_ref().map(|e| e.1.clone()).unwrap_or_default(),
            };
            let section =
                annual::generate(store, &options, &calendar, &project.taxonomy, now).await?;
            if let Some((path, _, text)) = &edited {
                annual::check_edits(path, text, &section)?;
            }
            // Everything is made before anything is written.
            let files: [(&str, Vec<u8>); 5] = [
                ("annual.html", annual::html(&section).into_bytes()),
                ("annual.docx", docx::render(&section)),
                ("figures.csv", annual::figures_csv(&section).into_bytes()),
                (
                    "published.csv",
                    annual::published_csv(&section).into_bytes(),
                ),
                (
                    "sentences.md",
                    annual::sentences_file(&section).into_bytes(),
                ),
            ];
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            for (name, bytes) in &files {
                let path = out.join(name);
                let partial = out.join(format!(".{name}.partial"));
                std::fs::write(&partial, bytes)
                    .with_context(|| format!("cannot write {}", partial.display()))?;
                std::fs::rename(&partial, &path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            println!(
                "{}: {} figures and {} rollouts written to {} (annual.html, annual.docx, figures.csv, published.csv, sentences.md)",
                section.title,
                section.figures.len(),
                section.published.len(),
                out.display()
            );
        }
        ReportKind::Induction { format, out } => {
            use cascade_engine::report::induction;
            let report = induction::generate(store, &calendar, now).await?;
            let text = match format {
                ReportFormat::Table => induction::table(&report),
                ReportFormat::Csv => induction::csv(&report),
                ReportFormat::Html => induction::html(&report),
            };
            match out {
                Some(path) => {
                    std::fs::write(&path, &text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    println!(
                        "{}: {} key item{} written to {}",
                        report.title,
                        report.key_items.len(),
                        if report.key_items.len() == 1 { "" } else { "s" },
                        path.display()
                    );
                }
                None => print!("{text}"),
            }
        }
        ReportKind::Gaps {
            theme,
            from,
            to,
            below,
            format,
            out,
        } => {
            use cascade_engine::report::gaps;
            if let Err(unknown) = project.taxonomy.check(&theme) {
                let hint = unknown
                    .suggestion
                    .map(|s| format!("did you mean `--theme {s}`? "))
                    .unwrap_or_default();
                bail!(
                    "--theme {theme}: no such theme in the taxonomy\n  help: {hint}the theme ids are the `[[themes]]` of cascade.toml, or the built-in ones when it has none"
                );
            }
            let options = gaps::GapOptions {
                theme,
                from,
                to,
                below_pct: below,
            };
            let report = gaps::generate(store, &options, &calendar, &project.taxonomy, now).await?;
            let text = match format {
                ReportFormat::Table => gaps::table(&report),
                ReportFormat::Csv => gaps::csv(&report),
                ReportFormat::Html => gaps::html(&report),
            };
            match out {
                Some(path) => {
                    std::fs::write(&path, &text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    println!(
                        "{}: {} gap{} written to {}",
                        report.title,
                        report.gaps.len(),
                        if report.gaps.len() == 1 { "" } else { "s" },
                        path.display()
                    );
                }
                None => print!("{text}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--format` of `cascade report`; the engine's [`cascade_engine::report::Format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReportFormat {
    /// Aligned text for a terminal.
    Table,
    /// One CSV file with a `section` column.
    Csv,
    /// One self-contained HTML file with charts, for the annual report.
    Html,
}

impl From<ReportFormat> for cascade_engine::report::Format {
    fn from(format: ReportFormat) -> Self {
        match format {
            ReportFormat::Table => Self::Table,
            ReportFormat::Csv => Self::Csv,
            ReportFormat::Html => Self::Html,
        }
    }
}

async fn report(
    project: &Project,
    selection: &cascade_engine::report::Selection,
    format: cascade_engine::report::Format,
    out: Option<&Path>,
) -> Result<ExitCode> {
    crate::on_store!(crate::store_cmd::open(project).await?, store => report_on(&store, project, selection, format, out).await)
}

async fn report_on<S: crate::store_cmd::AnyStore>(
    store: &S,
    project: &Project,
    selection: &cascade_engine::report::Selection,
    format: cascade_engine::report::Format,
    out: Option<&Path>,
) -> Result<ExitCode> {
    let calendar = cascade_model::rollout::Calendar::new(
        &project.config.partnership.time_zone,
        project.config.partnership.quiet_hours,
    )
    .map_err(|e| anyhow!(e))?;
    let report = cascade_engine::report::generate(
        store,
        selection,
        &calendar,
        &project.taxonomy,
        chrono::Utc::now(),
    )
    .await?;
    let text = cascade_engine::report::render(&report, format);
    match out {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!(
                "{}: {} rollout{} written to {}",
                report.title,
                report.rollouts.len(),
                if report.rollouts.len() == 1 { "" } else { "s" },
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `cascade feedback`: the summary, and with `draft` the newsletter item,
/// checked as `cascade check` would before it is written (nothing is
/// written when it has a problem or the file exists).
async fn feedback(
    project: &Project,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    draft: bool,
) -> Result<ExitCode> {
    crate::on_store!(crate::store_cmd::open(project).await?, store => feedback_on(&store, project, from, to, draft).await)
}

async fn feedback_on<S: crate::store_cmd::AnyStore>(
    store: &S,
    project: &Project,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    draft: bool,
) -> Result<ExitCode> {
    use cascade_engine::report::feedback;
    use chrono::Datelike as _;
    let calendar = cascade_model::rollout::Calendar::new(
        &project.config.partnership.time_zone,
        project.config.partnership.quiet_hours,
    )
    .map_err(|e| anyhow!(e))?;
    let summary = feedback::feedback(store, &calendar, &project.taxonomy, from, to).await?;
    print!("{summary}");
    if !draft {
        return Ok(ExitCode::SUCCESS);
    }
    // The issue after the period, in the newsletter the content already has.
    let next = to
        .with_day(1)
        .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
        .unwrap_or(to);
    let issue = next.format("%Y-%m").to_string();
    let (items, _) = content::load_dir(&project.content_dir(), &project.taxonomy);
    let newsletter = items
        .iter()
        .filter_map(|l| match &l.item.kind {
            ItemKind::NewsletterItem(n) => Some((n.issue.clone(), n.newsletter.clone())),
            _ => None,
        })
        .max()
        .map_or_else(
            || format!("{} newsletter", project.config.partnership.name),
            |(_, name)| name,
        );
    let id = format!("nl-{issue}-you-said-we-did");
    let Some(text) = feedback::draft(&summary, &id, &newsletter, &issue) else {
        bail!(
            "no follow-up answers from {from} to {to}, so there is nothing to draft\n  help: choose a period in which follow-ups were answered"
        );
    };
    let path = project.content_dir().join(format!("{id}.md"));
    if path.exists() {
        bail!(
            "{} already exists; it was not changed\n  help: edit it, or move it aside to draft it again",
            path.display()
        );
    }
    if let Err(problems) = project.check_item(&path, &text) {
        bail!(
            "the draft was not written:\n{}\n  help: the examples people gave passed the privacy guard when they were given; check the privacy settings in cascade.toml",
            problems.join("\n")
        );
    }
    std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    println!();
    println!(
        "Draft written to {} (status draft: nothing sends it). Write the partnership's response under \"We did\", then set its status to approved.",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The demo's console account.
const DEMO_ADMIN: &str = "demo-admin";

/// Where the console is reached: `[console] base_url`, else `[ack]
/// base_url`, else the address served on.
fn console_base_url(project: &Project, listen: Option<std::net::SocketAddr>) -> String {
    let fallback = listen.map_or_else(
        || "http://127.0.0.1:8080".to_owned(),
        |a| format!("http://{a}"),
    );
    project.config.console_base_url(&fallback)
}

/// The console's routes over the running engine's store.
fn console_router<S: crate::store_cmd::AnyStore>(
    root: &Path,
    store: std::sync::Arc<S>,
    settings: &cascade_console::Settings,
) -> axum::Router {
    cascade_console::router(cascade_console::Console::new(
        store,
        std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned()),
        std::sync::Arc::new(chrono::Utc::now),
        settings.clone(),
    ))
}

/// A fresh one-time set-up link for the demo admin (added the first time).
async fn demo_admin_link(
    project: &Project,
    listen: std::net::SocketAddr,
) -> Result<cascade_console::SetupLink> {
    let store = SqliteStore::open(&project.store_path().to_string_lossy()).await?;
    let base = console_base_url(project, Some(listen));
    let now = chrono::Utc::now();
    let link = match cascade_console::issue_setup_link(&store, DEMO_ADMIN, None, &base, now).await {
        Err(cascade_console::SetupError::NoSuchUser(_)) => {
            cascade_console::issue_setup_link(
                &store,
                DEMO_ADMIN,
                Some((cascade_console::Role::Admin, None)),
                &base,
                now,
            )
            .await?
        }
        other => other?,
    };
    store.close().await;
    Ok(link)
}

async fn users(project: &Project, action: UsersAction) -> Result<ExitCode> {
    crate::on_store!(crate::store_cmd::open(project).await?, store => users_on(&store, project, action).await)
}

async fn users_on<S: crate::store_cmd::AnyStore>(
    store: &S,
    project: &Project,
    action: UsersAction,
) -> Result<ExitCode> {
    let base = console_base_url(project, None);
    let now = chrono::Utc::now();
    let link = match action {
        UsersAction::List => {
            for user in store.console_users().await? {
                println!(
                    "{:<24} {:<9} {}",
                    user.name,
                    user.role,
                    if user.password_hash.is_some() {
                        "set up"
                    } else {
                        "not set up yet"
                    }
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        UsersAction::Add { name, role, person } => {
            let role = cascade_console::Role::parse(&role)
                .ok_or_else(|| anyhow!("unknown role \"{role}\""))?;
            if let Some(person) = &person
                && store.person(person).await?.is_none()
            {
                bail!(
                    "no person \"{person}\" in the store\n  help: use a person_id from people.csv, imported with `cascade import`"
                );
            }
            let link = cascade_console::issue_setup_link(
                store,
                &name,
                Some((role, person.as_deref())),
                &base,
                now,
            )
            .await?;
            println!("Added console user \"{name}\" ({}).", role.as_str());
            link
        }
        UsersAction::Reset { name } => {
            cascade_console::issue_setup_link(store, &name, None, &base, now).await?
        }
    };
    println!(
        "Give them this one-time set-up link (valid until {} UTC); whoever opens it chooses the password:\n  {}",
        link.expires_at.format("%-d %B %Y %H:%M"),
        link.url
    );
    Ok(ExitCode::SUCCESS)
}
