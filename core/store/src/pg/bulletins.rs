//! PostgreSQL implementation of [`Bulletins`]. Several serve processes may
//! make the same occurrence at once: its row is inserted first with
//! `ON CONFLICT DO NOTHING`, so the second writer waits on the key until
//! the first commits, then finds it taken and writes nothing.

use super::PgStore;
use super::outbox::write_rollout;
use super::store::insert_item;
use crate::bulletins::*;
use crate::{RolloutState, StoreError};
use sqlx::Row;

fn stored(r: &sqlx::postgres::PgRow) -> StoredBulletin {
    let state: String = r.get("state");
    StoredBulletin {
        id: r.get("id"),
        definition: r.get("definition"),
        state: RolloutState::parse(&state).unwrap_or(RolloutState::Active),
        started_at: r.get("started_at"),
        last_occurrence_at: r.get("last_occurrence_at"),
    }
}

const COLUMNS: &str = "id, definition, state, started_at, last_occurrence_at";

impl Bulletins for PgStore {
    async fn start_bulletin(
        &self,
        id: &str,
        definition: &str,
        published: &[(String, String)],
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // A rollout of that id stops it; a bulletin of that id started
        // meanwhile by another process takes the key first.
        let rollout: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM rollouts WHERE id = $1)")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        if rollout {
            return Ok(false);
        }
        let made = sqlx::query(
            "INSERT INTO bulletins (id, definition, started_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(definition)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if made == 0 {
            return Ok(false);
        }
        for (item, version) in published {
            sqlx::query(
                "INSERT INTO bulletin_items (bulletin_id, item_id, item_version) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(item)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn bulletins(&self) -> Result<Vec<StoredBulletin>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM bulletins ORDER BY started_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(stored).collect())
    }

    async fn bulletin(&self, id: &str) -> Result<Option<StoredBulletin>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM bulletins WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(stored))
    }

    async fn bulletin_items(&self, id: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT item_id FROM bulletin_items WHERE bulletin_id = $1 ORDER BY item_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn occurrences(&self, id: &str) -> Result<Vec<BulletinOccurrence>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT bulletin_id, occurrence_at, rollout_id, items, made_at
             FROM bulletin_occurrences WHERE bulletin_id = $1 ORDER BY occurrence_at",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn record_occurrence(&self, o: NewOccurrence<'_>) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Inserted first, without its rollout (written below), so the key
        // is taken before anything else is written: another process making
        // the same occurrence waits here, then writes nothing.
        let made = sqlx::query(
            "INSERT INTO bulletin_occurrences (bulletin_id, occurrence_at, rollout_id, items, made_at)
             VALUES ($1, $2, NULL, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(o.bulletin_id)
        .bind(o.occurrence_at)
        .bind(o.items.len() as i64)
        .bind(o.now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if made == 0 {
            return Ok(false);
        }
        // The key refuses an item a bulletin has gathered before: the
        // whole occurrence then fails, rather than send it twice.
        for (item, version) in o.items {
            sqlx::query(
                "INSERT INTO bulletin_items (bulletin_id, item_id, item_version, occurrence_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(o.bulletin_id)
            .bind(item)
            .bind(version)
            .bind(o.occurrence_at)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(issue) = &o.issue {
            let seen_at = chrono::DateTime::from_timestamp_millis(o.now).unwrap_or_default();
            insert_item(&mut tx, issue.item, issue.source, seen_at).await?;
            write_rollout(&mut tx, &issue.rollout).await?;
            sqlx::query(
                "UPDATE bulletin_occurrences SET rollout_id = $1 WHERE bulletin_id = $2 AND occurrence_at = $3",
            )
            .bind(issue.rollout.id)
            .bind(o.bulletin_id)
            .bind(o.occurrence_at)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE bulletins SET last_occurrence_at = GREATEST(last_occurrence_at, $1) WHERE id = $2",
        )
        .bind(o.occurrence_at)
        .bind(o.bulletin_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn set_bulletin_state(&self, id: &str, state: RolloutState) -> Result<bool, StoreError> {
        let changed =
            sqlx::query("UPDATE bulletins SET state = $1 WHERE id = $2 AND state <> 'cancelled'")
                .bind(state.as_str())
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(changed > 0)
    }
}
