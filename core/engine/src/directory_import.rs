//! `cascade import` of directory files: the files and what they do to the
//! running rollouts, in one transaction. Each running rollout's audience
//! is worked out from its stored definition and pinned item, so the store
//! can tell who left the directory, who moved out of the audience and who
//! came back, and stop or resume chasing them in the same transaction as
//! the import. A dry run does all of it and rolls it back.
//!
//! A rollout open to joiners (`enrol = "joiners"`, until the end of its
//! `open_until` day) also takes in who came into its audience: each
//! joiner goes in the first wave whose rule takes them, on that wave's
//! timetable moved whole days later so that their first send is at or
//! after the import (see [`joiner_shift`]), never a step that fell due
//! before they joined.

use cascade_model::content::{Taxonomy, parse_item};
use cascade_model::directory::DirectoryFile;
use cascade_model::rollout::{
    Calendar, RolloutDefinition, audience_query, joiner_shift, open_until, shifted_wave_steps,
};
use cascade_store::{
    DirectoryImport, JoinerWave, MembershipChange, OpenEnrolment, Outbox, RolloutState,
    RunningAudience, Store, StoreError,
};
use chrono::{DateTime, Utc};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "rollout \"{rollout}\": {problem}, so who is still in its audience cannot be worked out; nothing was imported\n  help: {help}"
    )]
    Rollout {
        rollout: String,
        problem: String,
        help: String,
    },
}

/// Imports `files` (ordered agencies, teams, people, champions) and
/// brings every running rollout's members up to date, in one transaction;
/// with `dry_run`, rolls it all back and only says what it would do.
pub async fn import_directory<S: Store + Outbox>(
    store: &S,
    taxonomy: &Taxonomy,
    calendar: &Calendar,
    files: &[(PathBuf, DirectoryFile)],
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<DirectoryImport, ImportError> {
    let audiences = running_audiences(store, taxonomy, calendar, now).await?;
    let files: Vec<(&Path, &DirectoryFile)> = files.iter().map(|(p, f)| (p.as_path(), f)).collect();
    Ok(store
        .import_directory(
            &files,
            taxonomy,
            &audiences,
            now.timestamp_millis(),
            dry_run,
        )
        .await?)
}

/// Every running (active or paused) rollout's audience as it was defined,
/// and for one open to joiners at `now`, how they are timed.
async fn running_audiences<S: Store + Outbox>(
    store: &S,
    taxonomy: &Taxonomy,
    calendar: &Calendar,
    now: DateTime<Utc>,
) -> Result<Vec<RunningAudience>, ImportError> {
    let mut audiences = Vec::new();
    for stored in store.rollouts().await? {
        if stored.state == RolloutState::Cancelled {
            continue;
        }
        let problem = |problem: String, help: &str| ImportError::Rollout {
            rollout: stored.id.clone(),
            problem,
            help: help.to_owned(),
        };
        let definition: RolloutDefinition =
            serde_json::from_str(&stored.definition).map_err(|e| {
                problem(
                    format!("its stored definition cannot be read ({e})"),
                    "this store was written by a newer cascade: import with that version",
                )
            })?;
        let version = store
            .item_versions(&stored.item_id)
            .await?
            .into_iter()
            .find(|v| v.version.0 == stored.item_version)
            .ok_or_else(|| {
                problem(
                    format!("its item version {} is not in the store", stored.item_version),
                    "restore the store from a backup, or cancel the rollout with `cascade rollout cancel`",
                )
            })?;
        let item = parse_item(
            Path::new(&format!("{} (stored)", stored.item_id)),
            &version.source,
            taxonomy,
        )
        .map_err(|e| {
            problem(
                format!("its pinned item no longer parses ({})", e[0]),
                "put back the theme or setting the item relied on in cascade.toml",
            )
        })?;
        // A key item of the induction is open for as long as it runs, to
        // people new in the import only, each timed from their joining by
        // the scheduler: their first look is at once.
        let induction = definition.induction.map(|_| OpenEnrolment {
            item_version: stored.item_version.clone(),
            waves: vec![
                JoinerWave {
                    shift_days: 0,
                    first_due_at: now.timestamp_millis(),
                };
                definition.waves.len()
            ],
            new_people_only: true,
        });
        let open = open_until(&definition, calendar)
            .filter(|until| now < *until && induction.is_none())
            .map(|_| OpenEnrolment {
                item_version: stored.item_version.clone(),
                waves: (0..definition.waves.len())
                    .map(|wave| {
                        let shift_days = joiner_shift(&definition, calendar, wave, now);
                        let first = shifted_wave_steps(&definition, calendar, wave, shift_days);
                        JoinerWave {
                            shift_days,
                            first_due_at: first
                                .first()
                                .map_or(now.timestamp_millis(), |s| s.due_at.timestamp_millis()),
                        }
                    })
                    .collect(),
                new_people_only: false,
            })
            .or(induction);
        audiences.push(RunningAudience {
            rollout_id: stored.id.clone(),
            query: audience_query(
                &definition,
                &stored.item_id,
                &stored.item_version,
                &item.themes,
                &|_| 0,
            ),
            open,
        });
    }
    Ok(audiences)
}

/// What an import did (or would do) to the running rollouts: a row per
/// rollout it changes (joiners "–" while a rollout is not open to them),
/// a line for the induction, and what the columns mean.
pub fn describe_rollouts(import: &DirectoryImport, dry_run: bool) -> String {
    let mut out = String::new();
    let changed: Vec<&MembershipChange> =
        import.rollouts.iter().filter(|c| !c.is_empty()).collect();
    let unchanged = import.rollouts.len() - changed.len();
    let _ = writeln!(
        out,
        "{}",
        if dry_run {
            "running rollouts, as the import would leave them:"
        } else {
            "running rollouts:"
        }
    );
    if changed.is_empty() {
        let _ = writeln!(
            out,
            "  {} running, no joiners, leavers or movers",
            import.rollouts.len()
        );
    } else {
        let width = changed
            .iter()
            .map(|c| c.rollout_id.chars().count())
            .chain(["rollout".len()])
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "  {:<width$}  {:>7}  {:>6}  {:>9}  {:>4}",
            "rollout", "joiners", "left", "moved out", "back"
        );
        for c in &changed {
            let joiners = c.joiners.map_or_else(|| "–".to_owned(), |n| n.to_string());
            let _ = writeln!(
                out,
                "  {:<width$}  {:>7}  {:>6}  {:>9}  {:>4}",
                c.rollout_id, joiners, c.left, c.moved, c.back
            );
        }
        if unchanged > 0 {
            let _ = writeln!(
                out,
                "  and {unchanged} other running rollout{} unchanged",
                if unchanged == 1 { "" } else { "s" }
            );
        }
        let be = if dry_run { "would be" } else { "are" };
        let _ = writeln!(
            out,
            "  left: no longer in the directory; moved out: no longer in the rollout's audience;\n  \
             both {be} no longer chased, and keep what they acknowledged.\n  \
             back: in the audience again, chased from where they stopped.\n  \
             joiners: people new to a rollout's audience, {enrolled} on their own timetable;\n  \
             – where the rollout is not open to joiners (fixed at its start, or past its open_until day).",
            enrolled = if dry_run {
                "who would be enrolled"
            } else {
                "enrolled"
            }
        );
    }
    let _ = match &import.induction {
        None => writeln!(
            out,
            "induction: none set up, so no joiners {} enrolled in one",
            if dry_run { "would be" } else { "were" }
        ),
        Some(induction) => writeln!(
            out,
            "induction: {} joiner{} {} enrolled in its {} key item{} (people new in this import)",
            induction.joiners,
            if induction.joiners == 1 { "" } else { "s" },
            match (dry_run, induction.joiners == 1) {
                (true, _) => "would be",
                (false, true) => "was",
                (false, false) => "were",
            },
            induction.key_items,
            if induction.key_items == 1 { "" } else { "s" },
        ),
    };
    let _ = writeln!(
        out,
        "queued messages {}: {}",
        if dry_run {
            "that would be cancelled"
        } else {
            "cancelled"
        },
        import.cancelled_messages
    );
    out
}
