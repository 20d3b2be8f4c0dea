//! `cascade backup` and `cascade restore`: a consistent copy of the store
//! taken while `serve` runs, and putting one back.

use anyhow::Result;
use cascade_engine::project::Project;
use cascade_store::SqliteStore;
use cascade_store::backup::{self, BackupSummary};
use std::path::Path;

pub async fn backup(project: &Project, out: &Path) -> Result<()> {
    let store = SqliteStore::open(&project.store_path().to_string_lossy()).await?;
    let summary = store.backup_to(out).await;
    store.close().await;
    let summary = summary?;
    println!(
        "backed up {} to {}",
        project.store_path().display(),
        out.display()
    );
    print_summary(&summary);
    Ok(())
}

pub async fn restore(project: &Project, from: &Path) -> Result<()> {
    let database = project.store_path();
    let summary = backup::restore(&database, from).await?;
    println!("restored {} from {}", database.display(), from.display());
    print_summary(&summary.restored);
    if let Some(kept) = summary.replaced_kept_at {
        println!(
            "the database it replaced is kept as {} (delete it once you are sure)",
            kept.display()
        );
    }
    if summary.restored.older_schema {
        // Opening brings the schema up to date, as any command would.
        SqliteStore::open(&database.to_string_lossy())
            .await?
            .close()
            .await;
        println!("the backup's schema was brought up to date for this version of cascade");
    }
    println!(
        "messages sent after the backup was taken are in it as not yet sent; `cascade serve` sends them again"
    );
    Ok(())
}

fn print_summary(summary: &BackupSummary) {
    println!(
        "  {} people, {} rollouts, {} deliveries, {} acknowledgements; {:.1} MB; schema {}; integrity checked",
        summary.people,
        summary.rollouts,
        summary.deliveries,
        summary.acknowledgements,
        summary.bytes as f64 / 1_000_000.0,
        summary.schema_version
    );
}
