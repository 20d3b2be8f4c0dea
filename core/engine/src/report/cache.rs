//! Computed reports kept between requests (the console's reports pages).
//!
//! A report of every rollout of a year reads over a million rows; the
//! figures change only when one of those rows does, or when the clock
//! passes a wave's deadline (a member not acknowledged becomes overdue).
//! So a report is kept with:
//!
//! - the stamps of its rollouts and of the directory
//!   ([`Reports::report_stamps`]), which SQLite triggers raise in the same
//!   transaction as every write to a row the report reads (migration
//!   20261104000000_report_stamps);
//! - the first deadline still ahead when it was computed (a joiner's own
//!   among them): the overdue counts hold until the clock passes it; and
//!   for an open rollout, the end of the week under way, when its reach
//!   by week gains a row.
//!
//! A kept report is given again only when its stamps are unchanged and the
//! clock is between its computation and that deadline; its `generated` time
//! and notes are then those of the moment asked, so it equals, field for
//! field, what [`generate`] computes afresh at that moment (held to that by
//! `cache_tests`, on random stores). Anything else computes it again.

use super::{
    Report, ReportError, Selection, compute, compute::joiner_changes, compute::notes, load,
    selected_ids,
};
use cascade_model::content::Taxonomy;
use cascade_model::rollout::{Calendar, deadline};
use cascade_store::Reports;
use chrono::{DateTime, Utc};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many reports are kept (the least recently used goes first).
const KEPT: usize = 8;

/// Computed reports, by what they cover and the stamps they were computed at.
#[derive(Default)]
pub struct ReportCache {
    entries: Mutex<Vec<Entry>>,
    /// Reports given from the cache, and computed; for tests and metrics.
    hits: AtomicU64,
    misses: AtomicU64,
    /// Orders entries by last use.
    clock: AtomicU64,
}

struct Entry {
    selection: Selection,
    calendar: Calendar,
    taxonomy: Taxonomy,
    ids: Vec<String>,
    stamps: Vec<(String, i64)>,
    /// Unix milliseconds the figures were computed at.
    computed_at: i64,
    /// The figures hold until this moment (Unix milliseconds) inclusive;
    /// `None`: no deadline is ahead, so until a write.
    until: Option<i64>,
    report: Report,
    used: u64,
}

impl Entry {
    fn covers(&self, selection: &Selection, calendar: &Calendar, taxonomy: &Taxonomy) -> bool {
        self.selection == *selection && self.calendar == *calendar && self.taxonomy == *taxonomy
    }

    fn holds(&self, ids: &[String], stamps: &[(String, i64)], now: i64) -> bool {
        self.ids == ids
            && self.stamps == stamps
            && self.computed_at <= now
            && self.until.is_none_or(|until| now <= until)
    }
}

impl ReportCache {
    pub fn new() -> ReportCache {
        ReportCache::default()
    }

    /// Reports given from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Reports computed so far.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// The report for `selection` at `now`: what [`generate`] gives, kept
    /// from an earlier call when none of its rows has changed since.
    pub async fn generate(
        &self,
        store: &impl Reports,
        selection: &Selection,
        calendar: &Calendar,
        taxonomy: &Taxonomy,
        now: DateTime<Utc>,
    ) -> Result<Report, ReportError> {
        let ids = selected_ids(store, selection, calendar).await?;
        // Read before the rows: a write after this raises a stamp, so a
        // report computed from rows newer than its stamps is only ever
        // computed again, never given stale.
        let stamps = store.report_stamps(&ids).await?;
        let at = now.timestamp_millis();
        if let Some(mut report) = self.kept(selection, calendar, taxonomy, &ids, &stamps, at) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            report.generated = calendar.format_local(now);
            report.notes = notes(
                now,
                calendar,
                matches!(selection, Selection::Partnership { .. }),
                report.rollouts.is_empty(),
            );
            return Ok(report);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let rows = load(store, &ids, now).await?;
        let report = compute(&rows, selection, calendar, taxonomy);
        let until = rows
            .rollouts
            .iter()
            .flat_map(|r| {
                (0..r.definition.waves.len())
                    .map(|w| deadline(&r.definition, calendar, w).timestamp_millis())
            })
            .chain(joiner_changes(&rows, calendar, at))
            .filter(|&d| d >= at)
            .min();
        let used = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|e| !e.covers(selection, calendar, taxonomy));
        if entries.len() >= KEPT
            && let Some(oldest) = (0..entries.len()).min_by_key(|&i| entries[i].used)
        {
            entries.swap_remove(oldest);
        }
        entries.push(Entry {
            selection: selection.clone(),
            calendar: calendar.clone(),
            taxonomy: taxonomy.clone(),
            ids,
            stamps,
            computed_at: at,
            until,
            report: report.clone(),
            used,
        });
        Ok(report)
    }

    fn kept(
        &self,
        selection: &Selection,
        calendar: &Calendar,
        taxonomy: &Taxonomy,
        ids: &[String],
        stamps: &[(String, i64)],
        at: i64,
    ) -> Option<Report> {
        let used = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries
            .iter_mut()
            .find(|e| e.covers(selection, calendar, taxonomy) && e.holds(ids, stamps, at))?;
        entry.used = used;
        Some(entry.report.clone())
    }
}
