//! PostgreSQL implementation of [`Inspect`]: plain reads, one statement
//! each, in the same orders as SQLite's.

use super::PgStore;
use crate::StoreError;
use crate::inspect::*;

const OUTBOX_COLUMNS: &str =
    "id, idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind,
     step_number, channel, channel_rank, state, attempts, due_at, lease_until, provider_id,
     last_error, sent_at";

/// A refresher answer as PostgreSQL holds it: BIGINT for the counts.
#[derive(sqlx::FromRow)]
struct RefresherAnswerRow {
    rollout_id: String,
    person_id: String,
    refresher: i64,
    delivery_id: i64,
    question: i64,
    question_digest: String,
    first_answer: i64,
    right_first_time: i64,
    attempts: i64,
    answered_at: Option<i64>,
    channel: String,
    at: i64,
}

impl TryFrom<RefresherAnswerRow> for crate::RefresherAnswer {
    type Error = StoreError;

    fn try_from(row: RefresherAnswerRow) -> Result<Self, StoreError> {
        let count = |name: &str, value: i64| {
            u32::try_from(value).map_err(|_| {
                StoreError::Database(sqlx::Error::Decode(
                    format!("refresher_answers.{name} is out of range: {value}").into(),
                ))
            })
        };
        Ok(crate::RefresherAnswer {
            refresher: count("refresher", row.refresher)?,
            question: count("question", row.question)?,
            first_answer: count("first_answer", row.first_answer)?,
            attempts: count("attempts", row.attempts)?,
            right_first_time: row.right_first_time != 0,
            rollout_id: row.rollout_id,
            person_id: row.person_id,
            delivery_id: row.delivery_id,
            question_digest: row.question_digest,
            answered_at: row.answered_at,
            channel: row.channel,
            at: row.at,
        })
    }
}

impl Inspect for PgStore {
    async fn outbox_rows(&self) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(
            sqlx::query_as(&format!("SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id"))
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn rollout_outbox(&self, rollout_id: &str) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE rollout_id = $1 ORDER BY id"
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
             FROM rollout_members WHERE rollout_id = $1 ORDER BY person_id",
        )
        .bind(rollout_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn refresher_answers(&self) -> Result<Vec<crate::RefresherAnswer>, StoreError> {
        let rows: Vec<RefresherAnswerRow> = sqlx::query_as(
            "SELECT rollout_id, person_id, refresher, delivery_id, question, question_digest,
                    first_answer, right_first_time, attempts, answered_at, channel, at
             FROM refresher_answers ORDER BY rollout_id, person_id, refresher",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryFrom::try_from).collect()
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
             WHERE channel = $1 AND address = $2",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AckMethod, DeliveryState};
    use cascade_model::rollout::StepKind;

    /// Rows written in SQL come back typed: counts as `u32`, states and
    /// kinds as their enums, flags as `bool`, secrets as bytes.
    #[tokio::test]
    async fn inspect_reads_every_table_typed() {
        let store = crate::pg::test_server::fresh_store().await;
        let pool = store.pool();
        let [item, rollout] = crate::pg::test_server::ITEM_AND_ROLLOUT;
        for sql in [
            item,
            rollout,
            "INSERT INTO rollout_members (rollout_id, person_id, wave, next_step, next_due_at,
                 shift_days, refresher_next)
             VALUES ('r', 'p2', 1, 2, 50, 3, 1), ('r', 'p1', 0, 0, NULL, 0, 2)",
            "INSERT INTO outbox (idempotency_key, rollout_id, person_id, recipient_id, wave,
                 step_kind, step_number, channel, channel_rank, state, attempts, due_at,
                 updated_at, sent_at)
             VALUES ('k1', 'r', 'p1', 'p1', 0, 'follow-up', 2, 'email', 1, 'sent', 3, 10, 10, 11)",
            "INSERT INTO refresher_answers (rollout_id, person_id, refresher, delivery_id, item_id,
                 item_version, question, question_digest, first_answer, right_first_time,
                 attempts, channel, at)
             VALUES ('r', 'p1', 1, 1, 'i', 'v1', 2, 'd', 3, 1, 1, 'web', 20)",
            "INSERT INTO acknowledgements (person_id, item_id, item_version, rollout_id, channel,
                 method, at)
             VALUES ('p1', 'i', 'v1', 'r', 'web', 'on-behalf', 30)",
            "INSERT INTO refusal_counts (minute, channel, method, reason, count, last_at)
             VALUES (60000, 'web', 'link', 'expired', 2, 60500),
                    (0, 'web', 'link', 'unknown', 1, 5), (0, 'web', 'link', 'expired', 1, 7)",
            "INSERT INTO follow_up_answers (rollout_id, person_id, follow_up, answer, channel, at)
             VALUES ('r', 'p1', 2, 'yes', 'web', 40)",
            "INSERT INTO engine_secrets (name, value) VALUES ('0b', '\\x0102'), ('0a', '\\x00')",
        ] {
            sqlx::query(sql).execute(pool).await.unwrap();
        }

        let outbox = store.outbox_rows().await.unwrap();
        assert_eq!(outbox.len(), 1);
        let row = &outbox[0];
        assert_eq!(
            (
                row.step_kind,
                row.step_number,
                row.channel_rank,
                row.state,
                row.attempts
            ),
            (StepKind::FollowUp, 2, 1, DeliveryState::Sent, 3)
        );
        assert_eq!(store.rollout_outbox("r").await.unwrap(), outbox);
        assert!(store.rollout_outbox("other").await.unwrap().is_empty());

        let members = store.members("r").await.unwrap();
        let people: Vec<_> = members.iter().map(|m| m.person_id.as_str()).collect();
        assert_eq!(people, ["p1", "p2"]);
        assert_eq!(
            (members[1].wave, members[1].next_step, members[1].shift_days),
            (1, 2, 3)
        );

        let refreshers = store.refresher_answers().await.unwrap();
        assert_eq!(refreshers.len(), 1);
        assert!(refreshers[0].right_first_time);
        assert_eq!((refreshers[0].question, refreshers[0].first_answer), (2, 3));

        let acks = store.acknowledgements().await.unwrap();
        assert_eq!(acks[0].method, AckMethod::OnBehalf);

        let refusals: Vec<_> = store
            .refusal_counts()
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.reason, r.minute, r.count))
            .collect();
        assert_eq!(
            refusals,
            [
                ("expired".to_owned(), 0, 1),
                ("expired".to_owned(), 60000, 2),
                ("unknown".to_owned(), 0, 1)
            ]
        );
        assert_eq!(store.answers().await.unwrap()[0].follow_up, 2);
        // By name: ours, then those the migration made.
        let secrets = store.engine_secret_values().await.unwrap();
        assert_eq!(secrets[..2], [vec![0u8], vec![1, 2]]);
    }
}
