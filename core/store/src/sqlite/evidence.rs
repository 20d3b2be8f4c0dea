//! SQLite implementation of [`Evidence`].

use super::SqliteStore;
use crate::StoreError;
use crate::evidence::*;
use sqlx::{QueryBuilder, Row, Sqlite};
use std::collections::{HashMap, HashSet};

impl Evidence for SqliteStore {
    async fn delivery(&self, id: i64) -> Result<Option<DeliveryInfo>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT o.id, o.rollout_id, o.person_id, o.recipient_id, o.step_kind, o.step_number, o.channel,
                    r.item_id, r.item_version
             FROM outbox o JOIN rollouts r ON r.id = o.rollout_id WHERE o.id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn acknowledge_item(&self, ack: &NewAcknowledgement) -> Result<AckOutcome, StoreError> {
        Ok(self.acknowledge_items(std::slice::from_ref(ack)).await?[0])
    }

    async fn acknowledge_items(
        &self,
        acks: &[NewAcknowledgement],
    ) -> Result<Vec<AckOutcome>, StoreError> {
        fn key(a: &NewAcknowledgement) -> (&str, &str, &str) {
            (&a.person_id, &a.item_id, &a.item_version)
        }
        if acks.is_empty() {
            return Ok(Vec::new());
        }
        // Few statements for the whole group: each is a round trip to
        // SQLite's thread.
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT OR IGNORE INTO acknowledgements
                 (person_id, item_id, item_version, rollout_id, delivery_id, channel, method, at) ",
        );
        insert.push_values(acks, |mut row, ack| {
            row.push_bind(&ack.person_id)
                .push_bind(&ack.item_id)
                .push_bind(&ack.item_version)
                .push_bind(&ack.rollout_id)
                .push_bind(ack.delivery_id)
                .push_bind(&ack.channel)
                .push_bind(ack.method.as_str())
                .push_bind(ack.at);
        });
        insert.push(" RETURNING person_id, item_id, item_version, id");
        let rows = insert.build().fetch_all(&mut *tx).await?;
        let inserted: HashSet<(String, String, String)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        if self.chained {
            let ids: HashMap<(String, String, String), i64> = rows
                .iter()
                .map(|r| ((r.get(0), r.get(1), r.get(2)), r.get(3)))
                .collect();
            let mut links: Vec<(i64, &NewAcknowledgement)> = Vec::with_capacity(ids.len());
            for ack in acks {
                let key = (
                    ack.person_id.clone(),
                    ack.item_id.clone(),
                    ack.item_version.clone(),
                );
                if let Some(&id) = ids.get(&key)
                    && !links.iter().any(|(i, _)| *i == id)
                {
                    links.push((id, ack));
                }
            }
            links.sort_by_key(|(id, _)| *id);
            let new_ids: Vec<i64> = links.iter().map(|(id, _)| *id).collect();
            let pending = links
                .into_iter()
                .map(|(id, ack)| crate::chain::Pending::acknowledgement(id, ack))
                .collect();
            super::chain::append(&mut tx, pending).await?;
            let answers = link_check_answers(&mut tx, &new_ids).await?;
            super::chain::chain_ids(&mut tx, "check-answer", &answers).await?;
        } else {
            let new_ids: Vec<i64> = rows.iter().map(|r| r.get(3)).collect();
            link_check_answers(&mut tx, &new_ids).await?;
        }
        // Within the group, the first of several for one version is the one
        // inserted (VALUES rows go in order); the rest are repeats.
        let mut first_of: HashMap<(&str, &str, &str), usize> = HashMap::new();
        for (i, ack) in acks.iter().enumerate() {
            first_of.entry(key(ack)).or_insert(i);
        }
        let recorded = |i: usize, ack: &NewAcknowledgement| {
            first_of[&key(ack)] == i
                && inserted.contains(&(
                    ack.person_id.clone(),
                    ack.item_id.clone(),
                    ack.item_version.clone(),
                ))
        };
        let new: Vec<&NewAcknowledgement> = acks
            .iter()
            .enumerate()
            .filter(|(i, ack)| recorded(*i, ack))
            .map(|(_, ack)| ack)
            .collect();
        // One statement per new acknowledgement and per repeat, each a
        // primary-key or unique-index lookup: a multi-row UPDATE ... FROM
        // made SQLite scan every member for each group.
        for ack in &new {
            sqlx::query(
                "UPDATE rollout_members SET acknowledged_at = ?
                 WHERE person_id = ? AND acknowledged_at IS NULL
                   AND rollout_id IN (SELECT id FROM rollouts WHERE item_id = ? AND item_version = ?)",
            )
            .bind(ack.at)
            .bind(&ack.person_id)
            .bind(&ack.item_id)
            .bind(&ack.item_version)
            .execute(&mut *tx)
            .await?;
        }
        let mut first_at: HashMap<(&str, &str, &str), i64> = HashMap::new();
        for (i, ack) in acks.iter().enumerate() {
            if recorded(i, ack) || first_at.contains_key(&key(ack)) {
                continue;
            }
            let at: i64 = sqlx::query_scalar(
                "SELECT at FROM acknowledgements WHERE person_id = ? AND item_id = ? AND item_version = ?",
            )
            .bind(&ack.person_id)
            .bind(&ack.item_id)
            .bind(&ack.item_version)
            .fetch_one(&mut *tx)
            .await?;
            first_at.insert(key(ack), at);
        }
        let mut log: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO acknowledgement_log (person_id, delivery_id, channel, method, outcome, at) ",
        );
        log.push_values(acks.iter().enumerate(), |mut row, (i, ack)| {
            row.push_bind(&ack.person_id)
                .push_bind(ack.delivery_id)
                .push_bind(&ack.channel)
                .push_bind(ack.method.as_str())
                .push_bind(if recorded(i, ack) {
                    "recorded"
                } else {
                    "repeat"
                })
                .push_bind(ack.at);
        });
        log.build().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(acks
            .iter()
            .enumerate()
            .map(|(i, ack)| {
                if recorded(i, ack) {
                    AckOutcome::Recorded
                } else {
                    AckOutcome::AlreadyAcknowledged {
                        at: first_at[&key(ack)],
                    }
                }
            })
            .collect())
    }

    async fn record_check_attempts(&self, attempts: &[CheckAttempt]) -> Result<usize, StoreError> {
        if attempts.is_empty() {
            return Ok(0);
        }
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut counted = 0;
        for a in attempts {
            // A first answer inserts (only when none was seen); a later one
            // counts a try, and the right one says when, while the store
            // holds what the person saw.
            let done = if a.seen == 0 {
                sqlx::query(
                    "INSERT OR IGNORE INTO check_answers
                         (person_id, item_id, item_version, question, question_digest,
                          first_answer, right_first_time, attempts, answered_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)",
                )
                .bind(&a.person_id)
                .bind(&a.item_id)
                .bind(&a.item_version)
                .bind(a.question)
                .bind(&a.question_digest)
                .bind(a.chosen)
                .bind(a.right)
                .bind(a.right.then_some(a.at))
                .execute(&mut *tx)
                .await?
                .rows_affected()
            } else {
                sqlx::query(
                    "UPDATE check_answers SET attempts = attempts + 1,
                         answered_at = CASE WHEN ? THEN ? END
                     WHERE person_id = ? AND item_id = ? AND item_version = ? AND question = ?
                       AND question_digest = ? AND attempts = ?
                       AND answered_at IS NULL AND acknowledgement_id IS NULL",
                )
                .bind(a.right)
                .bind(a.at)
                .bind(&a.person_id)
                .bind(&a.item_id)
                .bind(&a.item_version)
                .bind(a.question)
                .bind(&a.question_digest)
                .bind(a.seen)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            };
            counted += done as usize;
        }
        tx.commit().await?;
        Ok(counted)
    }

    async fn record_refresher_attempt(&self, a: &RefresherAttempt) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let done = if a.seen == 0 {
            sqlx::query(
                "INSERT OR IGNORE INTO refresher_answers
                     (rollout_id, person_id, refresher, delivery_id, item_id, item_version,
                      question, question_digest, first_answer, right_first_time, attempts,
                      answered_at, channel, at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
            )
            .bind(&a.rollout_id)
            .bind(&a.person_id)
            .bind(a.refresher)
            .bind(a.delivery_id)
            .bind(&a.item_id)
            .bind(&a.item_version)
            .bind(a.question)
            .bind(&a.question_digest)
            .bind(a.chosen)
            .bind(a.right)
            .bind(a.right.then_some(a.at))
            .bind(&a.channel)
            .bind(a.at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        } else {
            sqlx::query(
                "UPDATE refresher_answers SET attempts = attempts + 1,
                     answered_at = CASE WHEN ? THEN ? END
                 WHERE rollout_id = ? AND person_id = ? AND refresher = ?
                   AND question_digest = ? AND attempts = ? AND answered_at IS NULL",
            )
            .bind(a.right)
            .bind(a.at)
            .bind(&a.rollout_id)
            .bind(&a.person_id)
            .bind(a.refresher)
            .bind(&a.question_digest)
            .bind(a.seen)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        };
        tx.commit().await?;
        Ok(done > 0)
    }

    async fn refresher_answer(
        &self,
        rollout_id: &str,
        person_id: &str,
        refresher: u32,
    ) -> Result<Option<RefresherAnswer>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT rollout_id, person_id, refresher, delivery_id, question, question_digest,
                    first_answer, right_first_time, attempts, answered_at, channel, at
             FROM refresher_answers WHERE rollout_id = ? AND person_id = ? AND refresher = ?",
        )
        .bind(rollout_id)
        .bind(person_id)
        .bind(refresher)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn check_progress(
        &self,
        person_id: &str,
        item_id: &str,
        item_version: &str,
    ) -> Result<CheckProgress, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let acknowledged_at: Option<i64> = sqlx::query_scalar(
            "SELECT at FROM acknowledgements WHERE person_id = ? AND item_id = ? AND item_version = ?",
        )
        .bind(person_id)
        .bind(item_id)
        .bind(item_version)
        .fetch_optional(&mut *conn)
        .await?;
        let answers = sqlx::query_as(
            "SELECT question, question_digest, first_answer, right_first_time, attempts,
                    answered_at, acknowledgement_id
             FROM check_answers WHERE person_id = ? AND item_id = ? AND item_version = ?
             ORDER BY question",
        )
        .bind(person_id)
        .bind(item_id)
        .bind(item_version)
        .fetch_all(&mut *conn)
        .await?;
        Ok(CheckProgress {
            acknowledged_at,
            answers,
        })
    }

    async fn count_refusal(
        &self,
        channel: &str,
        method: AckMethod,
        reason: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        // IMMEDIATE: the seal reads the chain's head, then writes.
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let open_from = super::chain::seal_refusals(&mut tx, at).await?;
        count_refusal_query(channel, method, reason, at, open_from)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn count_refusal_of_event(
        &self,
        channel: &str,
        event_id: &str,
        method: AckMethod,
        reason: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        // IMMEDIATE takes the write lock before the read: a deferred
        // transaction upgrading to write while another writer works fails
        // at once with "database is locked".
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // An event that never went through the inbox (a version-2 plugin's
        // plain emit) has no row: it is counted, as before.
        let handled: Option<Option<i64>> =
            sqlx::query_scalar("SELECT handled_at FROM inbox WHERE channel = ?1 AND event_id = ?2")
                .bind(channel)
                .bind(event_id)
                .fetch_optional(&mut *tx)
                .await?;
        if matches!(handled, Some(Some(_))) {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE inbox SET handled_at = ?3 WHERE channel = ?1 AND event_id = ?2 AND handled_at IS NULL",
        )
        .bind(channel)
        .bind(event_id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        let open_from = super::chain::seal_refusals(&mut tx, at).await?;
        count_refusal_query(channel, method, reason, at, open_from)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn create_link_code(
        &self,
        person_id: &str,
        code_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO link_codes (code_hash, hash_kind, person_id, created_at, expires_at) VALUES (?, 'hmac-sha256', ?, ?, ?)")
            .bind(code_hash)
            .bind(person_id)
            .bind(now)
            .bind(expires_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn redeem_link_code(
        &self,
        code_hash: &str,
        legacy_hash: &str,
        channel: &str,
        account: &str,
        now: i64,
    ) -> Result<Result<String, CodeRefusal>, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        #[derive(sqlx::FromRow)]
        struct Code {
            code_hash: String,
            person_id: String,
            expires_at: i64,
            used_at: Option<i64>,
        }
        let code: Option<Code> = sqlx::query_as(
            "SELECT code_hash, person_id, expires_at, used_at FROM link_codes
             WHERE (code_hash = ? AND hash_kind = 'hmac-sha256')
                OR (code_hash = ? AND hash_kind = 'sha256')",
        )
        .bind(code_hash)
        .bind(legacy_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(Code {
            code_hash,
            person_id,
            expires_at,
            used_at,
        }) = code
        else {
            return Ok(Err(CodeRefusal::Unknown));
        };
        if used_at.is_some() {
            // The same account sending its code again (or the same message
            // handled again after a crash) is linked already: say so.
            let linked: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM channel_identities WHERE channel = ? AND address = ? AND person_id = ?",
            )
            .bind(channel)
            .bind(account)
            .bind(&person_id)
            .fetch_optional(&mut *tx)
            .await?;
            return Ok(match linked {
                Some(_) => Ok(person_id),
                None => Err(CodeRefusal::AlreadyUsed),
            });
        }
        if now >= expires_at {
            return Ok(Err(CodeRefusal::Expired));
        }
        sqlx::query("UPDATE link_codes SET used_at = ? WHERE code_hash = ?")
            .bind(now)
            .bind(&code_hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM channel_identities WHERE channel = ? AND address = ?")
            .bind(channel)
            .bind(account)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM channel_identities WHERE channel = ? AND person_id = ?")
            .bind(channel)
            .bind(&person_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO channel_identities (person_id, channel, address, linked_at) VALUES (?, ?, ?, ?)")
            .bind(&person_id)
            .bind(channel)
            .bind(account)
            .bind(cascade_model::time::from_millis(now).to_rfc3339())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(person_id))
    }

    async fn person_for_account(
        &self,
        channel: &str,
        account: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT person_id FROM channel_identities WHERE channel = ? AND address = ?",
        )
        .bind(channel)
        .bind(account)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn confirm_cascade(&self, c: &NewConfirmation) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT OR IGNORE INTO cascade_confirmations
                 (champion_id, item_id, team_id, session_date, present, method, note, channel, at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&c.champion_id)
        .bind(&c.item_id)
        .bind(&c.team_id)
        .bind(&c.session_date)
        .bind(c.present)
        .bind(&c.method)
        .bind(&c.note)
        .bind(&c.channel)
        .bind(c.at)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = id
            && self.chained
        {
            super::chain::chain_ids(&mut tx, "confirmation", &[id]).await?;
        }
        tx.commit().await?;
        Ok(id.is_some())
    }

    async fn answer_follow_up(&self, a: &NewAnswer) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT OR IGNORE INTO follow_up_answers (rollout_id, person_id, follow_up, answer, example, channel, at)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&a.rollout_id)
        .bind(&a.person_id)
        .bind(a.follow_up)
        .bind(&a.answer)
        .bind(&a.example)
        .bind(&a.channel)
        .bind(a.at)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = id
            && self.chained
        {
            super::chain::chain_ids(&mut tx, "answer", &[id]).await?;
        }
        tx.commit().await?;
        Ok(id.is_some())
    }

    async fn add_follow_up_reason(
        &self,
        rollout_id: &str,
        person_id: &str,
        follow_up: u32,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "UPDATE follow_up_answers SET reason = ?
             WHERE rollout_id = ? AND person_id = ? AND follow_up = ? AND reason IS NULL",
        )
        .bind(reason)
        .bind(rollout_id)
        .bind(person_id)
        .bind(follow_up)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done > 0)
    }

    async fn add_follow_up_example(
        &self,
        rollout_id: &str,
        person_id: &str,
        follow_up: u32,
        example: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE follow_up_answers SET example = ?
             WHERE rollout_id = ? AND person_id = ? AND follow_up = ? AND example IS NULL
             RETURNING id",
        )
        .bind(example)
        .bind(rollout_id)
        .bind(person_id)
        .bind(follow_up)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = id
            && self.chained
        {
            let now = chrono::Utc::now().timestamp_millis();
            super::chain::amend(&mut tx, "answer", &[id.to_string()], "example-added", now).await?;
        }
        tx.commit().await?;
        Ok(id.is_some())
    }

    async fn pending_items(&self, person_id: &str) -> Result<Vec<PendingItem>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT MAX(o.id) AS delivery_id, r.id AS rollout_id, r.item_id, r.item_version
             FROM outbox o JOIN rollouts r ON r.id = o.rollout_id
             WHERE o.recipient_id = ?1 AND o.person_id = ?1 AND o.state = 'sent'
               AND o.step_kind IN ('initial', 'reminder') AND r.state <> 'cancelled'
               AND NOT EXISTS (SELECT 1 FROM acknowledgements a WHERE a.person_id = ?1
                               AND a.item_id = r.item_id AND a.item_version = r.item_version)
             GROUP BY r.item_id, r.item_version
             ORDER BY MAX(o.id)",
        )
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn delivered_item(
        &self,
        person_id: &str,
        item_id: &str,
    ) -> Result<Option<PendingItem>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT o.id AS delivery_id, r.id AS rollout_id, r.item_id, r.item_version
             FROM outbox o JOIN rollouts r ON r.id = o.rollout_id
             WHERE o.recipient_id = ?1 AND o.person_id = ?1 AND o.state = 'sent'
               AND o.step_kind IN ('initial', 'reminder') AND r.state <> 'cancelled'
               AND r.item_id = ?2
             ORDER BY o.id DESC LIMIT 1",
        )
        .bind(person_id)
        .bind(item_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn mark_unreachable(
        &self,
        channel: &str,
        address: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE channel_identities SET unreachable_at = ?
             WHERE channel = ? AND address = ? AND unreachable_at IS NULL",
        )
        .bind(at)
        .bind(channel)
        .bind(address)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn engine_secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).expect("the operating system provides randomness");
        sqlx::query("INSERT OR IGNORE INTO engine_secrets (name, value) VALUES (?, ?)")
            .bind(name)
            .bind(&fresh[..])
            .execute(&self.writer)
            .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM engine_secrets WHERE name = ?")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

fn count_refusal_query<'q>(
    channel: &'q str,
    method: AckMethod,
    reason: &'q str,
    at: i64,
    open_from: i64,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    // A minute already sealed into the evidence chain is not changed: a
    // refusal that arrives for it (a clock stepped back) counts in the
    // first open minute.
    sqlx::query(
        "INSERT INTO refusal_counts (minute, channel, method, reason, count, last_at)
         VALUES (?, ?, ?, ?, 1, ?)
         ON CONFLICT (minute, channel, method, reason)
         DO UPDATE SET count = count + 1, last_at = MAX(last_at, excluded.last_at)",
    )
    .bind((at - at.rem_euclid(60_000)).max(open_from))
    .bind(channel)
    .bind(method.as_str())
    .bind(reason)
    .bind(at)
}

/// Gives the answered check questions of the acknowledgements `ids`, just
/// inserted, their acknowledgement; returns the answers' ids in order.
async fn link_check_answers(
    conn: &mut sqlx::SqliteConnection,
    ids: &[i64],
) -> Result<Vec<i64>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = serde_json::to_string(ids).expect("numbers serialise");
    let mut linked: Vec<i64> = sqlx::query_scalar(
        "UPDATE check_answers SET acknowledgement_id = a.id
         FROM acknowledgements a
         WHERE a.id IN (SELECT value FROM json_each(?1))
           AND check_answers.person_id = a.person_id AND check_answers.item_id = a.item_id
           AND check_answers.item_version = a.item_version
           AND check_answers.acknowledgement_id IS NULL AND check_answers.answered_at IS NOT NULL
         RETURNING check_answers.id",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    linked.sort_unstable();
    Ok(linked)
}
