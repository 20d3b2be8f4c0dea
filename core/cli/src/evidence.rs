//! `cascade evidence`: export the tamper-evident evidence chain as a pack a
//! third party can check, and verify a pack or the store.

use anyhow::{Result, anyhow, bail};
use cascade_engine::evidence::{self, PackKey};
use cascade_engine::project::Project;
use cascade_store::{ChainProblem, EvidenceChain};
use chrono::{NaiveDate, NaiveTime};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum EvidenceAction {
    /// Write an evidence pack: CSVs of every evidence event from --from to
    /// --to with the item versions they refer to, the item versions
    /// themselves, an HTML index, and a manifest with the SHA-256 of every
    /// file and the chain's head; signed when a key is given.
    Export {
        /// The first day, YYYY-MM-DD (in the partnership's time zone).
        #[arg(long)]
        from: NaiveDate,
        /// The last day, YYYY-MM-DD, included.
        #[arg(long)]
        to: NaiveDate,
        /// The folder to write; it must not exist yet.
        #[arg(long)]
        out: PathBuf,
        /// Sign the manifest with the Ed25519 key in this file (made by
        /// `cascade evidence keygen`).
        #[arg(long, value_name = "FILE", conflicts_with = "key_env")]
        key_file: Option<PathBuf>,
        /// Sign the manifest with the Ed25519 key in this environment
        /// variable (64 hex digits).
        #[arg(long, value_name = "NAME")]
        key_env: Option<String>,
    },
    /// Check an evidence pack (its files against the manifest, the
    /// signature, the chain and every event), or with --store the store's
    /// whole chain against every evidence row; name the first event that
    /// was edited, removed, inserted or put out of order, and fail if any.
    Verify {
        /// The pack's folder.
        #[arg(required_unless_present = "store", conflicts_with = "store")]
        dir: Option<PathBuf>,
        /// Check the project's store instead of a pack.
        #[arg(long)]
        store: bool,
        /// The Ed25519 public key (64 hex digits, or a file holding them)
        /// the pack must be signed with.
        #[arg(long, value_name = "KEY", requires = "dir")]
        public_key: Option<String>,
        /// With --store: also check the store's chain still holds the head
        /// recorded in this earlier pack's manifest (so a chain rewritten
        /// since, links recomputed and all, is caught).
        #[arg(long, value_name = "PACK", requires = "store")]
        against: Option<PathBuf>,
    },
    /// Make a new Ed25519 key for signing evidence packs, in a new file
    /// only its owner can read, and print its public key.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
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

fn print_problems(problems: &[ChainProblem]) {
    const SHOWN: usize = 20;
    for p in problems.iter().take(SHOWN) {
        println!("  {p}");
    }
    if problems.len() > SHOWN {
        println!("  ... and {} more", problems.len() - SHOWN);
    }
}

pub fn evidence(project_dir: &Path, action: EvidenceAction) -> Result<ExitCode> {
    match action {
        EvidenceAction::Keygen { out } => {
            let key = PackKey::generate(&out)?;
            println!(
                "Wrote a new evidence signing key to {} (only you can read it).",
                out.display()
            );
            println!("Its public key, to publish and to check packs with:");
            println!("{}", key.public_hex());
            Ok(ExitCode::SUCCESS)
        }
        EvidenceAction::Export {
            from,
            to,
            out,
            key_file,
            key_env,
        } => {
            if to < from {
                bail!(
                    "--to {to} is before --from {from}\n  help: give the first day, then the last"
                );
            }
            let key = match (key_file, key_env) {
                (Some(path), _) => Some(PackKey::from_file(&path)?),
                (None, Some(name)) => Some(PackKey::from_env(&name).map_err(|e| anyhow!(e))?),
                (None, None) => None,
            };
            let project = Project::open(project_dir)?;
            let calendar = cascade_model::rollout::Calendar::new(
                &project.config.partnership.time_zone,
                project.config.partnership.quiet_hours,
            )
            .map_err(|e| anyhow!(e))?;
            let start = calendar.at_local(from.and_time(NaiveTime::MIN));
            let end = calendar.local_days_after(to.and_time(NaiveTime::MIN), 1);
            runtime()?.block_on(async {
                crate::on_store!(open_store(&project).await?, store => {
                let request = evidence::ExportRequest {
                    partnership: &project.config.partnership.name,
                    from,
                    to,
                    time_zone: &project.config.partnership.time_zone,
                    bounds: (start.timestamp_millis(), end.timestamp_millis()),
                    now: chrono::Utc::now(),
                    out: &out,
                    key: key.as_ref(),
                };
                let pack = evidence::export(&store, &request).await?;
                store.close().await;
                let m = &pack.manifest;
                println!(
                    "Wrote the evidence pack {} : {} events from {from} to {to}, {} files.",
                    pack.dir.display(),
                    m.chain.events,
                    m.files.len() + 1
                );
                if let (Some(first), Some(last)) = (m.chain.first_seq, m.chain.last_seq) {
                    println!("Chain events {first} to {last}; head {}.", m.chain.head);
                }
                match &m.signing_key {
                    Some(k) => println!("Signed with the Ed25519 key {k}."),
                    None => println!(
                        "Not signed: give --key-file or --key-env so others can check who produced it."
                    ),
                }
                println!("Check it with: cascade evidence verify {}", pack.dir.display());
                Ok(ExitCode::SUCCESS)
                })
            })
        }
        EvidenceAction::Verify {
            dir: Some(dir),
            public_key,
            ..
        } => {
            let expected = public_key
                .as_deref()
                .map(evidence::parse_public_key)
                .transpose()
                .map_err(|e| anyhow!(e))?;
            let report = evidence::verify_pack(&dir, expected)?;
            let events = report.checked_events;
            if report.passed() {
                println!(
                    "The evidence pack {} verifies: every file matches the manifest, and its {events} events are as recorded, none removed, inserted or out of order.",
                    dir.display()
                );
                if let Some(m) = &report.manifest {
                    println!("Head of its chain: {}.", m.chain.head);
                }
                match &report.signed_by {
                    Some(k) if expected.is_some() => {
                        println!("Signed with the key you gave ({k}).")
                    }
                    Some(k) => println!(
                        "Signed with the Ed25519 key {k}: check it is the key the partnership published (or give it with --public-key)."
                    ),
                    None => println!("It is not signed, so it does not show who produced it."),
                }
                return Ok(ExitCode::SUCCESS);
            }
            println!("The evidence pack {} does NOT verify.", dir.display());
            if let Some(first) = report.events.first() {
                println!("The first event touched: {first}");
            }
            if !report.files.is_empty() {
                println!("Files:");
                for f in &report.files {
                    println!("  {f}");
                }
            }
            if !report.events.is_empty() {
                println!("Events:");
                print_problems(&report.events);
            }
            Ok(ExitCode::FAILURE)
        }
        EvidenceAction::Verify {
            dir: None, against, ..
        } => {
            let project = Project::open(project_dir)?;
            let anchor = against
                .map(|pack| -> Result<(PathBuf, i64, String)> {
                    let path = pack.join(evidence::MANIFEST);
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
                    let m: evidence::Manifest = serde_json::from_str(&text).map_err(|e| {
                        anyhow!("{}: not an evidence pack manifest: {e}", path.display())
                    })?;
                    match (m.chain.store_head_seq, m.chain.store_head) {
                        (Some(seq), Some(hash)) => Ok((pack, seq, hash)),
                        _ => bail!(
                            "{}: records no chain head (the store's chain was empty)",
                            path.display()
                        ),
                    }
                })
                .transpose()?;
            runtime()?.block_on(async {
                crate::on_store!(open_store(&project).await?, store => {
                let mut report = store.verify_chain().await?;
                if let Some((pack, seq, hash)) = &anchor {
                    let link = store.chain_link(*seq).await?;
                    if link.as_ref().map(|l| &l.hash) != Some(hash) {
                        report.problems.push(
                            ChainProblem {
                                seq: Some(*seq),
                                event: link
                                    .map(|l| l.event_name())
                                    .unwrap_or_else(|| "removed from the chain".to_owned()),
                                what: cascade_store::Tamper::Edited,
                                detail: format!(
                                    "the pack {} recorded the chain's head here as {hash}; the store's chain no longer has it, so the chain was rewritten since",
                                    pack.display()
                                ),
                            },
                        );
                        cascade_store::sort_problems(&mut report.problems);
                    }
                }
                store.close().await;
                if report.problems.is_empty() {
                    println!(
                        "The evidence chain in the store verifies: {} events, none edited, removed, inserted or out of order, and every evidence row is in it.",
                        report.events
                    );
                    if let Some((seq, hash)) = &report.head {
                        println!("Its head is event {seq}, hash {hash}.");
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                println!("The evidence chain in the store does NOT verify.");
                println!("The first event touched: {}", report.problems[0]);
                println!("Every problem found ({}):", report.problems.len());
                print_problems(&report.problems);
                Ok(ExitCode::FAILURE)
                })
            })
        }
    }
}
