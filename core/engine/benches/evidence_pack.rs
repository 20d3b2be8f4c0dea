//! The evidence pack's export and check on a store already made (the one
//! `cascade`'s `evidence_export` bench makes and keeps with
//! `CASCADE_BENCH_STORE=FILE`), built without the `cascade` crate so it
//! rebuilds in a few minutes after a change to the store or the engine.
//!
//! `CASCADE_BENCH_EVIDENCE_DB=FILE cargo bench -p cascade-engine --bench
//! evidence_pack`: exports the year from April 2026 as
//! `evidence_export` does (signed), then checks the pack, each with its own
//! peak RSS (Linux's `VmHWM`, reset between the two).

use cascade_engine::evidence::{self, ExportRequest, PackKey};
use cascade_store::SqliteStore;
use chrono::{NaiveDate, TimeZone, Utc};
use std::time::Instant;

fn peak_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

fn main() {
    let Ok(db) = std::env::var("CASCADE_BENCH_EVIDENCE_DB") else {
        println!(
            "set CASCADE_BENCH_EVIDENCE_DB to a store made by cascade's evidence_export bench"
        );
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let out_parent = tempfile::tempdir().unwrap();
    let out = out_parent.path().join("pack");
    let pack = runtime.block_on(async {
        let store = SqliteStore::open(&db).await.unwrap();
        let key = PackKey::generate(&out_parent.path().join("pack.key")).unwrap();
        let request = ExportRequest {
            partnership: "Bench Partnership",
            from: NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2027, 3, 31).unwrap(),
            time_zone: "Europe/London",
            bounds: (
                Utc.with_ymd_and_hms(2026, 3, 31, 23, 0, 0)
                    .unwrap()
                    .timestamp_millis(),
                Utc.with_ymd_and_hms(2027, 4, 1, 0, 0, 0)
                    .unwrap()
                    .timestamp_millis(),
            ),
            now: Utc.with_ymd_and_hms(2027, 4, 15, 12, 0, 0).unwrap(),
            out: &out,
            key: Some(&key),
        };
        let pack = evidence::export(&store, &request).await.unwrap();
        store.close().await;
        pack
    });
    let seconds = started.elapsed().as_secs_f64();
    let bytes: u64 = pack.manifest.files.iter().map(|f| f.bytes).sum();
    println!(
        "RESULT export {seconds:.2} s, peak RSS {} MB, {} events, {} MB of files",
        peak_mb(),
        pack.manifest.chain.events,
        bytes / 1_000_000
    );
    // The check's own peak: Linux resets VmHWM to the RSS now on "5".
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let t = Instant::now();
    let report = evidence::verify_pack(&out, None).unwrap();
    assert!(
        report.passed(),
        "{:?} {:?}",
        report.files,
        report.events.first()
    );
    println!(
        "verify of the pack: {:.2} s, peak RSS {} MB, {} events",
        t.elapsed().as_secs_f64(),
        peak_mb(),
        report.checked_events
    );
}
