//! `cascade doctor`: every part a working deployment needs, checked in
//! turn (config, content and directory, keys and secrets, links, the store,
//! plugins and their pins, and each channel's provider), each said as "ok"
//! or as what is wrong and what to do. Nothing is sent and nothing in the
//! store is changed.

use cascade_engine::config::CONFIG_FILE;
use cascade_engine::project::Project;
use cascade_plugin_host::{self as plugins, LoadReport, PluginHost};
use std::path::Path;
use std::process::ExitCode;

/// What was found, printed as it goes.
#[derive(Default)]
struct Findings {
    failed: usize,
    warned: usize,
}

impl Findings {
    fn ok(&mut self, part: &str, detail: impl std::fmt::Display) {
        println!("ok       {part}: {detail}");
    }

    fn fail(&mut self, part: &str, problem: impl std::fmt::Display, fix: &str) {
        self.failed += 1;
        println!("PROBLEM  {part}: {problem}");
        if !fix.is_empty() {
            println!("         fix: {fix}");
        }
    }

    fn warn(&mut self, part: &str, problem: impl std::fmt::Display, fix: &str) {
        self.warned += 1;
        println!("warning  {part}: {problem}");
        if !fix.is_empty() {
            println!("         fix: {fix}");
        }
    }
}

pub fn doctor(project_dir: &Path) -> anyhow::Result<ExitCode> {
    let mut found = Findings::default();
    let config_file = project_dir.join(CONFIG_FILE);
    let project = match Project::open(project_dir) {
        Ok(project) => {
            found.ok("config", config_file.display());
            project
        }
        Err(e) => {
            found.fail(
                "config",
                e,
                &format!(
                    "correct {} (or give --project the folder that holds it; `cascade init DIR` makes a working one)",
                    config_file.display()
                ),
            );
            return Ok(summary(&found));
        }
    };
    // Paths in the config (store, plugin folders, channel folders, secret
    // files) are relative to the project, as under `serve`.
    std::env::set_current_dir(&project.root)?;
    let project = Project::open(Path::new("."))?;

    let report = project.check();
    if report.problems.is_empty() {
        found.ok(
            "content and directory",
            format_args!(
                "{} items, {} people, keys for signed links readable",
                report.items.len(),
                report.directory.people.len()
            ),
        );
    } else {
        for problem in &report.problems {
            found.fail("content and directory", problem, "");
        }
        println!("         fix: correct each as it says; `cascade check` lists the same");
    }

    match &project.config.ack {
        None => found.warn(
            "links",
            "no [ack] section: emails carry no acknowledgement link",
            "add [ack] with base_url and key (see the README's Acknowledgements section)",
        ),
        Some(ack) => {
            let url = ack.base_url.as_str();
            if url.starts_with("https://") {
                found.ok("links", url);
            } else if is_local(url) {
                found.warn(
                    "links",
                    format_args!("{url} is only reachable on this machine"),
                    "set [ack] base_url to the https address people reach cascade at",
                );
            } else {
                found.fail(
                    "links",
                    format_args!("{url} is not https: links and pages would travel unencrypted"),
                    "put cascade behind a TLS reverse proxy and set [ack] base_url to its https:// address",
                );
            }
        }
    }

    for channel in &project.config.channels {
        for (key, source) in &channel.secrets {
            match source.read(Path::new(".")) {
                Ok(_) => found.ok(
                    &format!("channel \"{}\" secret {key}", channel.name),
                    "readable",
                ),
                Err(reason) => found.fail(
                    &format!("channel \"{}\" secret {key}", channel.name),
                    reason,
                    "set it in the environment cascade runs in, or point the secret at a readable file ({ file = \"...\" })",
                ),
            }
        }
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(store(&project, &mut found));

    let plugins_config = &project.config.plugins;
    let dirs = plugins::default_search_dirs(&plugins_config.dirs, Path::new("."));
    let files = plugins::discover(&dirs);
    let (inbound, _events) = tokio::sync::mpsc::unbounded_channel();
    let LoadReport { host, problems } = PluginHost::load(&files, plugins_config, inbound);
    if files.is_empty() {
        found.fail(
            "plugins",
            format_args!(
                "no plugin files in {}",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "build them (`cargo build`) or set [plugins] dirs to where they are installed",
        );
    }
    for plugin in host.plugins() {
        found.ok(
            "plugins",
            format_args!(
                "{} {} ({})",
                plugin.manifest.name,
                plugin.manifest.version,
                plugin.path.display()
            ),
        );
    }
    for problem in &problems {
        found.fail("plugins", problem, "");
    }
    for path in host.unpinned() {
        found.warn(
            "plugins",
            format_args!("{} is not pinned, so it was not loaded", path.display()),
            "`cascade plugins` prints the line that pins it, if you trust it",
        );
    }
    for problem in plugins::writable_by_others(&dirs, &files) {
        found.fail("plugins", problem, "");
    }

    runtime.block_on(async {
        for channel in &project.config.channels {
            let part = format!("channel \"{}\" ({})", channel.name, channel.plugin);
            match host.start(channel, Path::new(".")).await {
                Ok(()) => found.ok(&part, "started; its provider answered"),
                Err(e) => found.fail(&part, e, ""),
            }
        }
        host.stop().await;
    });

    Ok(summary(&found))
}

/// The store opens, is whole, and has a directory in it. A missing store
/// is not created.
async fn store(project: &Project, found: &mut Findings) {
    if project.config.store.url.is_some() {
        return postgres_store(project, found).await;
    }
    let path = project.store_path();
    if !path.exists() {
        found.fail(
            "store",
            format_args!("{} does not exist yet", path.display()),
            "run `cascade import` to create it and import the directory",
        );
        return;
    }
    let store = match cascade_store::SqliteStore::open(&path.to_string_lossy()).await {
        Ok(store) => store,
        Err(e) => {
            found.fail(
                "store",
                format_args!("{}: {e}", path.display()),
                "restore the latest backup with `cascade restore FILE`",
            );
            return;
        }
    };
    match store.quick_check().await {
        Ok(problems) if problems.is_empty() => {
            match cascade_store::Audiences::has_people(&store).await {
                Ok(true) => found.ok("store", format_args!("{} (checked)", path.display())),
                Ok(false) => found.fail(
                    "store",
                    "no people have been imported",
                    "run `cascade import` with the directory's CSV files in directory/",
                ),
                Err(e) => found.fail("store", e, ""),
            }
        }
        Ok(problems) => found.fail(
            "store",
            format_args!("{} is damaged: {}", path.display(), problems.join("; ")),
            "stop cascade and restore the latest backup with `cascade restore FILE`",
        ),
        Err(e) => found.fail(
            "store",
            format_args!("{}: {e}", path.display()),
            "restore the latest backup with `cascade restore FILE`",
        ),
    }
    store.close().await;
}

/// The PostgreSQL store `[store] url` names answers, its schema is up to
/// date (opening migrates it) and it has a directory in it.
async fn postgres_store(project: &Project, found: &mut Findings) {
    let place = crate::store_cmd::describe(project);
    let store = match crate::store_cmd::open(project).await {
        Ok(crate::store_cmd::Opened::Postgres(store)) => store,
        Ok(crate::store_cmd::Opened::Sqlite(_)) => unreachable!("[store] url is set"),
        Err(e) => {
            found.fail(
                "store",
                format_args!("{e:#}"),
                "check that PostgreSQL runs and that [store] url and CASCADE_STORE_PASSWORD (or password_file) are right",
            );
            return;
        }
    };
    match cascade_store::Audiences::has_people(&store).await {
        Ok(true) => found.ok("store", format_args!("{place} (connected)")),
        Ok(false) => found.fail(
            "store",
            format_args!("{place}: no people have been imported"),
            "run `cascade import` with the directory's CSV files in directory/",
        ),
        Err(e) => found.fail("store", format_args!("{place}: {e}"), ""),
    }
    store.close().await;
}

fn is_local(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', ':']).next().unwrap_or("");
    host == "localhost" || host.starts_with("127.") || rest.starts_with("[::1]")
}

fn summary(found: &Findings) -> ExitCode {
    println!();
    if found.failed == 0 {
        println!(
            "cascade looks ready{}",
            match found.warned {
                0 => String::new(),
                1 => " (1 warning above)".to_owned(),
                n => format!(" ({n} warnings above)"),
            }
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "{} problem{} to fix{}",
            found.failed,
            if found.failed == 1 { "" } else { "s" },
            match found.warned {
                0 => String::new(),
                1 => ", and 1 warning".to_owned(),
                n => format!(", and {n} warnings"),
            }
        );
        ExitCode::FAILURE
    }
}
