//! SQLite implementation of [`Inspect`]: plain reads, one statement each.

use super::SqliteStore;
use crate::StoreError;
use crate::inspect::*;

const OUTBOX_COLUMNS: &str =
    "id, idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind,
     step_number, channel, channel_rank, state, attempts, due_at, lease_until, provider_id,
     last_error, sent_at";

impl Inspect for SqliteStore {
    async fn outbox_rows(&self) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(
            sqlx::query_as(&format!("SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id"))
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn rollout_outbox(&self, rollout_id: &str) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE rollout_id = ? ORDER BY id"
        ))
        .bind(rollout_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn members(&self, rollout_id: &str) -> Result<Vec<MemberRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT rollout_id, person_id, wave, next_step, next_due_at, acknowledged_at,
                    team_id, agency_id, out_reason, out_at, out_next_due_at, joined_at, shift_days,
                    refresher_next, refresher_due_at
             FROM rollout_members WHERE rollout_id = ? ORDER BY person_id",
        )
        .bind(rollout_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn refresher_answers(&self) -> Result<Vec<crate::RefresherAnswer>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT rollout_id, person_id, refresher, delivery_id, question, question_digest,
                    first_answer, right_first_time, attempts, answered_at, channel, at
             FROM refresher_answers ORDER BY rollout_id, person_id, refresher",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn acknowledgements(&self) -> Result<Vec<AcknowledgementRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT person_id, item_id, item_version, rollout_id, delivery_id, channel, method, at
             FROM acknowledgements ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn acknowledgement_log(&self) -> Result<Vec<AckLogRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT person_id, delivery_id, channel, method, outcome, at
             FROM acknowledgement_log ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn refusal_counts(&self) -> Result<Vec<RefusalCount>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT minute, channel, method, reason, count, last_at FROM refusal_counts
             ORDER BY reason, minute, channel, method",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn confirmations(&self) -> Result<Vec<ConfirmationRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT champion_id, item_id, team_id, session_date, present, method, note, channel, at
             FROM cascade_confirmations ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn answers(&self) -> Result<Vec<AnswerRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT rollout_id, person_id, follow_up, answer, example, reason, channel, at
             FROM follow_up_answers ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn identity(
        &self,
        channel: &str,
        address: &str,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT person_id, channel, address, unreachable_at FROM channel_identities
             WHERE channel = ? AND address = ?",
        )
        .bind(channel)
        .bind(address)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn link_codes(&self) -> Result<Vec<LinkCodeRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT code_hash, hash_kind, person_id, created_at, expires_at, used_at
             FROM link_codes ORDER BY code_hash",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn engine_secret_values(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM engine_secrets ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
