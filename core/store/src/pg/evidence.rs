//! PostgreSQL implementation of [`Evidence`] (see `sqlite/evidence.rs`,
//! whose rules this follows).
//!
//! Several `cascade serve` processes may record evidence at once. A
//! transaction that appends to the evidence chain takes the chain's lock
//! ([`chain::lock`]) first. Otherwise the database's own keys decide: the
//! first acknowledgement of an item version is the one whose insert the
//! unique key on `acknowledgements` lets in, and counters move only while
//! they hold the value the caller saw (`UPDATE ... WHERE attempts = $n`).

use super::PgStore;
use super::chain;
use crate::StoreError;
use crate::evidence::*;
use cascade_model::rollout::StepKind;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use std::collections::{HashMap, HashSet};

/// A BIGINT column that holds a u32 (a count, a 1-based number).
fn u32_at(row: &PgRow, column: &str) -> Result<u32, StoreError> {
    let n: i64 = row.try_get(column)?;
    u32::try_from(n).map_err(|_| chain::decode(format!("{column} {n} is out of range")))
}

/// A BIGINT 0/1 flag.
fn flag_at(row: &PgRow, column: &str) -> Result<bool, StoreError> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

fn check_answer(row: &PgRow) -> Result<CheckAnswer, StoreError> {
    Ok(CheckAnswer {
        question: u32_at(row, "question")?,
        question_digest: row.try_get("question_digest")?,
        first_answer: u32_at(row, "first_answer")?,
        right_first_time: flag_at(row, "right_first_time")?,
        attempts: u32_at(row, "attempts")?,
        answered_at: row.try_get("answered_at")?,
        acknowledgement_id: row.try_get("acknowledgement_id")?,
    })
}

fn refresher_answer(row: &PgRow) -> Result<RefresherAnswer, StoreError> {
    Ok(RefresherAnswer {
        rollout_id: row.try_get("rollout_id")?,
        person_id: row.try_get("person_id")?,
        refresher: u32_at(row, "refresher")?,
        delivery_id: row.try_get("delivery_id")?,
        question: u32_at(row, "question")?,
        question_digest: row.try_get("question_digest")?,
        first_answer: u32_at(row, "first_answer")?,
        right_first_time: flag_at(row, "right_first_time")?,
        attempts: u32_at(row, "attempts")?,
        answered_at: row.try_get("answered_at")?,
        channel: row.try_get("channel")?,
        at: row.try_get("at")?,
    })
}

fn delivery_info(row: &PgRow) -> Result<DeliveryInfo, StoreError> {
    let step_kind: String = row.try_get("step_kind")?;
    Ok(DeliveryInfo {
        id: row.try_get("id")?,
        rollout_id: row.try_get("rollout_id")?,
        person_id: row.try_get("person_id")?,
        recipient_id: row.try_get("recipient_id")?,
        step_kind: StepKind::from_text(&step_kind)
            .ok_or_else(|| chain::decode(format!("unknown step kind {step_kind:?}")))?,
        step_number: u32_at(row, "step_number")?,
        channel: row.try_get("channel")?,
        item_id: row.try_get("item_id")?,
        item_version: row.try_get("item_version")?,
    })
}

fn pending_item(row: &PgRow) -> Result<PendingItem, StoreError> {
    Ok(PendingItem {
        delivery_id: row.try_get("delivery_id")?,
        rollout_id: row.try_get("rollout_id")?,
        item_id: row.try_get("item_id")?,
        item_version: row.try_get("item_version")?,
    })
}

impl Evidence for PgStore {
    async fn delivery(&self, id: i64) -> Result<Option<DeliveryInfo>, StoreError> {
        sqlx::query(
            "SELECT o.id, o.rollout_id, o.person_id, o.recipient_id, o.step_kind, o.step_number, o.channel,
                    r.item_id, r.item_version
             FROM outbox o JOIN rollouts r ON r.id = o.rollout_id WHERE o.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(delivery_info)
        .transpose()
    }

    async fn acknowledge_item(&self, ack: &NewAcknowledgement) -> Result<AckOutcome, StoreError> {
        Ok(self.acknowledge_items(std::slice::from_ref(ack)).await?[0])
    }

    async fn acknowledge_items(
        &self,
        acks: &[NewAcknowledgement],
    ) -> Result<Vec<AckOutcome>, StoreError> {
        type Key = (String, String, String);
        fn key(a: &NewAcknowledgement) -> Key {
            (
                a.person_id.clone(),
                a.item_id.clone(),
                a.item_version.clone(),
            )
        }
        if acks.is_empty() {
            return Ok(Vec::new());
        }
        // A few statements for the whole group: each is a round trip.
        let mut tx = self.pool.begin().await?;
        if self.chained {
            chain::lock(&mut tx).await?;
        }
        // The unique key decides which acknowledgement is the first: one
        // another process inserted meanwhile makes this insert wait for
        // its commit and then skip the row, so it is a repeat here.
        let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(
            "INSERT INTO acknowledgements
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
        insert.push(
            " ON CONFLICT (person_id, item_id, item_version) DO NOTHING
              RETURNING person_id, item_id, item_version, id",
        );
        let rows = insert.build().fetch_all(&mut *tx).await?;
        let ids: HashMap<Key, i64> = rows
            .iter()
            .map(|r| ((r.get(0), r.get(1), r.get(2)), r.get(3)))
            .collect();
        // Within the group, the first of several for one version is the one
        // inserted (VALUES rows go in order); the rest are repeats.
        let mut first_of: HashMap<Key, usize> = HashMap::new();
        for (i, ack) in acks.iter().enumerate() {
            first_of.entry(key(ack)).or_insert(i);
        }
        let recorded: Vec<bool> = acks
            .iter()
            .enumerate()
            .map(|(i, ack)| {
                let k = key(ack);
                first_of[&k] == i && ids.contains_key(&k)
            })
            .collect();
        let new: Vec<(i64, &NewAcknowledgement)> = {
            let mut new: Vec<(i64, &NewAcknowledgement)> = acks
                .iter()
                .zip(&recorded)
                .filter(|(_, r)| **r)
                .map(|(ack, _)| (ids[&key(ack)], ack))
                .collect();
            new.sort_by_key(|(id, _)| *id);
            new
        };
        let new_ids: Vec<i64> = new.iter().map(|(id, _)| *id).collect();
        if self.chained {
            let pending = new
                .iter()
                .map(|(id, ack)| crate::chain::Pending::acknowledgement(*id, ack))
                .collect();
            chain::append(&mut tx, pending).await?;
            let answers = link_check_answers(&mut tx, &new_ids).await?;
            chain::chain_ids(&mut tx, "check-answer", &answers).await?;
        } else {
            link_check_answers(&mut tx, &new_ids).await?;
        }
        // Every new acknowledgement's members, in one statement.
        if !new.is_empty() {
            let column = |f: fn(&NewAcknowledgement) -> &str| -> Vec<&str> {
                new.iter().map(|(_, a)| f(a)).collect()
            };
            let at: Vec<i64> = new.iter().map(|(_, a)| a.at).collect();
            sqlx::query(
                "UPDATE rollout_members m SET acknowledged_at = v.at
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
                          AS v (person_id, item_id, item_version, at),
                      rollouts r
                 WHERE r.item_id = v.item_id AND r.item_version = v.item_version
                   AND m.rollout_id = r.id AND m.person_id = v.person_id
                   AND m.acknowledged_at IS NULL",
            )
            .bind(column(|a| &a.person_id))
            .bind(column(|a| &a.item_id))
            .bind(column(|a| &a.item_version))
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        // When each repeated version was first acknowledged: committed
        // before the insert skipped it, so this statement sees it.
        let repeats: HashSet<Key> = acks
            .iter()
            .zip(&recorded)
            .filter(|(_, r)| !**r)
            .map(|(ack, _)| key(ack))
            .collect();
        let mut first_at: HashMap<Key, i64> = HashMap::new();
        if !repeats.is_empty() {
            let repeats: Vec<&Key> = repeats.iter().collect();
            let rows = sqlx::query(
                "SELECT a.person_id, a.item_id, a.item_version, a.at
                 FROM unnest($1::text[], $2::text[], $3::text[]) AS v (person_id, item_id, item_version)
                 JOIN acknowledgements a ON a.person_id = v.person_id
                  AND a.item_id = v.item_id AND a.item_version = v.item_version",
            )
            .bind(repeats.iter().map(|k| k.0.as_str()).collect::<Vec<_>>())
            .bind(repeats.iter().map(|k| k.1.as_str()).collect::<Vec<_>>())
            .bind(repeats.iter().map(|k| k.2.as_str()).collect::<Vec<_>>())
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                first_at.insert((r.get(0), r.get(1), r.get(2)), r.get(3));
            }
        }
        let mut log: QueryBuilder<Postgres> = QueryBuilder::new(
            "INSERT INTO acknowledgement_log (person_id, delivery_id, channel, method, outcome, at) ",
        );
        log.push_values(acks.iter().zip(&recorded), |mut row, (ack, recorded)| {
            row.push_bind(&ack.person_id)
                .push_bind(ack.delivery_id)
                .push_bind(&ack.channel)
                .push_bind(ack.method.as_str())
                .push_bind(if *recorded { "recorded" } else { "repeat" })
                .push_bind(ack.at);
        });
        log.build().execute(&mut *tx).await?;
        let outcomes = acks
            .iter()
            .zip(&recorded)
            .map(|(ack, recorded)| {
                if *recorded {
                    return Ok(AckOutcome::Recorded);
                }
                match first_at.get(&key(ack)) {
                    Some(&at) => Ok(AckOutcome::AlreadyAcknowledged { at }),
                    // Skipped by the insert, then gone (an erasure between
                    // the two statements).
                    None => Err(chain::decode(format!(
                        "the acknowledgement of {} {} by a person was removed while it was being repeated",
                        ack.item_id, ack.item_version
                    ))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn record_check_attempts(&self, attempts: &[CheckAttempt]) -> Result<usize, StoreError> {
        if attempts.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        let mut counted = 0;
        for a in attempts {
            // A first answer inserts (only when none was seen); a later one
            // counts a try, and the right one says when, while the store
            // holds what the person saw. Two processes counting the same
            // try: the second's UPDATE waits for the first's row, then no
            // longer finds `attempts = seen`.
            let done = if a.seen == 0 {
                sqlx::query(
                    "INSERT INTO check_answers
                         (person_id, item_id, item_version, question, question_digest,
                          first_answer, right_first_time, attempts, answered_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8)
                     ON CONFLICT DO NOTHING",
                )
                .bind(&a.person_id)
                .bind(&a.item_id)
                .bind(&a.item_version)
                .bind(i64::from(a.question))
                .bind(&a.question_digest)
                .bind(i64::from(a.chosen))
                .bind(i64::from(a.right))
                .bind(a.right.then_some(a.at))
                .execute(&mut *tx)
                .await?
                .rows_affected()
            } else {
                sqlx::query(
                    "UPDATE check_answers SET attempts = attempts + 1,
                         answered_at = CASE WHEN $1 THEN $2::bigint END
                     WHERE person_id = $3 AND item_id = $4 AND item_version = $5 AND question = $6
                       AND question_digest = $7 AND attempts = $8
                       AND answered_at IS NULL AND acknowledgement_id IS NULL",
                )
                .bind(a.right)
                .bind(a.at)
                .bind(&a.person_id)
                .bind(&a.item_id)
                .bind(&a.item_version)
                .bind(i64::from(a.question))
                .bind(&a.question_digest)
                .bind(i64::from(a.seen))
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
        let done = if a.seen == 0 {
            sqlx::query(
                "INSERT INTO refresher_answers
                     (rollout_id, person_id, refresher, delivery_id, item_id, item_version,
                      question, question_digest, first_answer, right_first_time, attempts,
                      answered_at, channel, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $12, $13)
                 ON CONFLICT DO NOTHING",
            )
            .bind(&a.rollout_id)
            .bind(&a.person_id)
            .bind(i64::from(a.refresher))
            .bind(a.delivery_id)
            .bind(&a.item_id)
            .bind(&a.item_version)
            .bind(i64::from(a.question))
            .bind(&a.question_digest)
            .bind(i64::from(a.chosen))
            .bind(i64::from(a.right))
            .bind(a.right.then_some(a.at))
            .bind(&a.channel)
            .bind(a.at)
            .execute(&self.pool)
            .await?
            .rows_affected()
        } else {
            sqlx::query(
                "UPDATE refresher_answers SET attempts = attempts + 1,
                     answered_at = CASE WHEN $1 THEN $2::bigint END
                 WHERE rollout_id = $3 AND person_id = $4 AND refresher = $5
                   AND question_digest = $6 AND attempts = $7 AND answered_at IS NULL",
            )
            .bind(a.right)
            .bind(a.at)
            .bind(&a.rollout_id)
            .bind(&a.person_id)
            .bind(i64::from(a.refresher))
            .bind(&a.question_digest)
            .bind(i64::from(a.seen))
            .execute(&self.pool)
            .await?
            .rows_affected()
        };
        Ok(done > 0)
    }

    async fn refresher_answer(
        &self,
        rollout_id: &str,
        person_id: &str,
        refresher: u32,
    ) -> Result<Option<RefresherAnswer>, StoreError> {
        sqlx::query(
            "SELECT rollout_id, person_id, refresher, delivery_id, question, question_digest,
                    first_answer, right_first_time, attempts, answered_at, channel, at
             FROM refresher_answers WHERE rollout_id = $1 AND person_id = $2 AND refresher = $3",
        )
        .bind(rollout_id)
        .bind(person_id)
        .bind(i64::from(refresher))
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(refresher_answer)
        .transpose()
    }

    async fn check_progress(
        &self,
        person_id: &str,
        item_id: &str,
        item_version: &str,
    ) -> Result<CheckProgress, StoreError> {
        // One statement: the acknowledgement and the answers as of one
        // moment.
        let rows = sqlx::query(
            "SELECT a.at AS acknowledged_at, c.question, c.question_digest, c.first_answer,
                    c.right_first_time, c.attempts, c.answered_at, c.acknowledgement_id
             FROM (SELECT 1) one
             LEFT JOIN acknowledgements a
               ON a.person_id = $1 AND a.item_id = $2 AND a.item_version = $3
             LEFT JOIN check_answers c
               ON c.person_id = $1 AND c.item_id = $2 AND c.item_version = $3
             ORDER BY c.question",
        )
        .bind(person_id)
        .bind(item_id)
        .bind(item_version)
        .fetch_all(&self.pool)
        .await?;
        let acknowledged_at = match rows.first() {
            Some(r) => r.try_get("acknowledged_at")?,
            None => None,
        };
        let answers = rows
            .iter()
            .filter(|r| matches!(r.try_get::<Option<i64>, _>("question"), Ok(Some(_))))
            .map(check_answer)
            .collect::<Result<Vec<_>, _>>()?;
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
        self.count_refusal_in(None, channel, method, reason, at)
            .await
            .map(|_| ())
    }

    async fn count_refusal_of_event(
        &self,
        channel: &str,
        event_id: &str,
        method: AckMethod,
        reason: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        self.count_refusal_in(Some(event_id), channel, method, reason, at)
            .await
    }

    async fn create_link_code(
        &self,
        person_id: &str,
        code_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO link_codes (code_hash, hash_kind, person_id, created_at, expires_at)
             VALUES ($1, 'hmac-sha256', $2, $3, $4)",
        )
        .bind(code_hash)
        .bind(person_id)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        // FOR UPDATE: the same code sent twice at once (two processes, or
        // two accounts) is used by one; the other then finds it used.
        let code = sqlx::query(
            "SELECT code_hash, person_id, expires_at, used_at FROM link_codes
             WHERE (code_hash = $1 AND hash_kind = 'hmac-sha256')
                OR (code_hash = $2 AND hash_kind = 'sha256')
             FOR UPDATE",
        )
        .bind(code_hash)
        .bind(legacy_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(code) = code else {
            return Ok(Err(CodeRefusal::Unknown));
        };
        let code_hash: String = code.try_get("code_hash")?;
        let person_id: String = code.try_get("person_id")?;
        let expires_at: i64 = code.try_get("expires_at")?;
        let used_at: Option<i64> = code.try_get("used_at")?;
        if used_at.is_some() {
            // The same account sending its code again (or the same message
            // handled again after a crash) is linked already: say so.
            let linked: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM channel_identities WHERE channel = $1 AND address = $2 AND person_id = $3",
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
        sqlx::query("UPDATE link_codes SET used_at = $1 WHERE code_hash = $2")
            .bind(now)
            .bind(&code_hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM channel_identities WHERE channel = $1 AND address = $2")
            .bind(channel)
            .bind(account)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM channel_identities WHERE channel = $1 AND person_id = $2")
            .bind(channel)
            .bind(&person_id)
            .execute(&mut *tx)
            .await?;
        // Another code linking the same account at the same moment: the
        // later commit moves the account to its person, as one after the
        // other would.
        sqlx::query(
            "INSERT INTO channel_identities (person_id, channel, address, linked_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (channel, address) DO UPDATE
             SET person_id = excluded.person_id, linked_at = excluded.linked_at,
                 unreachable_at = NULL",
        )
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
            "SELECT person_id FROM channel_identities WHERE channel = $1 AND address = $2",
        )
        .bind(channel)
        .bind(account)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn confirm_cascade(&self, c: &NewConfirmation) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.chained {
            chain::lock(&mut tx).await?;
        }
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO cascade_confirmations
                 (champion_id, item_id, team_id, session_date, present, method, note, channel, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(&c.champion_id)
        .bind(&c.item_id)
        .bind(&c.team_id)
        .bind(&c.session_date)
        .bind(i64::from(c.present))
        .bind(&c.method)
        .bind(&c.note)
        .bind(&c.channel)
        .bind(c.at)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = id
            && self.chained
        {
            chain::chain_ids(&mut tx, "confirmation", &[id]).await?;
        }
        tx.commit().await?;
        Ok(id.is_some())
    }

    async fn answer_follow_up(&self, a: &NewAnswer) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.chained {
            chain::lock(&mut tx).await?;
        }
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO follow_up_answers (rollout_id, person_id, follow_up, answer, example, channel, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(&a.rollout_id)
        .bind(&a.person_id)
        .bind(i64::from(a.follow_up))
        .bind(&a.answer)
        .bind(&a.example)
        .bind(&a.channel)
        .bind(a.at)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = id
            && self.chained
        {
            chain::chain_ids(&mut tx, "answer", &[id]).await?;
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
        let done = sqlx::query(
            "UPDATE follow_up_answers SET reason = $1
             WHERE rollout_id = $2 AND person_id = $3 AND follow_up = $4 AND reason IS NULL",
        )
        .bind(reason)
        .bind(rollout_id)
        .bind(person_id)
        .bind(i64::from(follow_up))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done > 0)
    }

    async fn add_follow_up_example(
        &self,
        rollout_id: &str,
        person_id: &str,
        follow_up: u32,
        example: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.chained {
            chain::lock(&mut tx).await?;
        }
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE follow_up_answers SET example = $1
             WHERE rollout_id = $2 AND person_id = $3 AND follow_up = $4 AND example IS NULL
             RETURNING id",
        )
        .bind(example)
        .bind(rollout_id)
        .bind(person_id)
        .bind(i64::from(follow_up))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = id
            && self.chained
        {
            let now = chrono::Utc::now().timestamp_millis();
            chain::amend(&mut tx, "answer", &[id.to_string()], "example-added", now).await?;
        }
        tx.commit().await?;
        Ok(id.is_some())
    }

    async fn pending_items(&self, person_id: &str) -> Result<Vec<PendingItem>, StoreError> {
        // The latest delivery of each item version, with its rollout (what
        // SQLite's bare columns beside MAX(o.id) give).
        sqlx::query(
            "SELECT delivery_id, rollout_id, item_id, item_version FROM (
                 SELECT DISTINCT ON (r.item_id, r.item_version)
                        o.id AS delivery_id, r.id AS rollout_id, r.item_id, r.item_version
                 FROM outbox o JOIN rollouts r ON r.id = o.rollout_id
                 WHERE o.recipient_id = $1 AND o.person_id = $1 AND o.state = 'sent'
                   AND o.step_kind IN ('initial', 'reminder') AND r.state <> 'cancelled'
                   AND NOT EXISTS (SELECT 1 FROM acknowledgements a WHERE a.person_id = $1
                                   AND a.item_id = r.item_id AND a.item_version = r.item_version)
                 ORDER BY r.item_id, r.item_version, o.id DESC
             ) latest
             ORDER BY delivery_id",
        )
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(pending_item)
        .collect()
    }

    async fn delivered_item(
        &self,
        person_id: &str,
        item_id: &str,
    ) -> Result<Option<PendingItem>, StoreError> {
        sqlx::query(
            "SELECT o.id AS delivery_id, r.id AS rollout_id, r.item_id, r.item_version
             FROM outbox o JOIN rollouts r ON r.id = o.rollout_id
             WHERE o.recipient_id = $1 AND o.person_id = $1 AND o.state = 'sent'
               AND o.step_kind IN ('initial', 'reminder') AND r.state <> 'cancelled'
               AND r.item_id = $2
             ORDER BY o.id DESC LIMIT 1",
        )
        .bind(person_id)
        .bind(item_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(pending_item)
        .transpose()
    }

    async fn mark_unreachable(
        &self,
        channel: &str,
        address: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE channel_identities SET unreachable_at = $1
             WHERE channel = $2 AND address = $3 AND unreachable_at IS NULL",
        )
        .bind(at)
        .bind(channel)
        .bind(address)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn engine_secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).expect("the operating system provides randomness");
        // Two processes making the same secret at once: one insert wins,
        // and both read the one kept.
        sqlx::query(
            "INSERT INTO engine_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(&fresh[..])
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM engine_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

impl PgStore {
    /// Counts a refusal (of the inbox event `event_id` of `channel`, marked
    /// handled at once, when given); false when that event was handled
    /// already.
    ///
    /// A refusal in a minute whose counts are open takes no chain lock:
    /// anyone can send forged attempts, and they must not queue behind
    /// acknowledgements. It holds a share lock on the chain state's row
    /// instead, so no seal can read its minute's count before it commits
    /// (a seal locks that row for update first). Only when minutes are
    /// over and not sealed yet is the count made in a second transaction
    /// that takes the chain's lock, seals, and counts. Both take the state
    /// row before an inbox or count row, so neither waits on the other in
    /// a circle.
    async fn count_refusal_in(
        &self,
        event_id: Option<&str>,
        channel: &str,
        method: AckMethod,
        reason: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        {
            let mut tx = self.pool.begin().await?;
            let sealed_to: i64 = sqlx::query_scalar(
                "SELECT refusals_sealed_to FROM evidence_chain_state WHERE id = 1 FOR SHARE",
            )
            .fetch_one(&mut *tx)
            .await?;
            if chain::minute_of(at) <= sealed_to {
                if let Some(event_id) = event_id
                    && !mark_handled(&mut tx, channel, event_id, at).await?
                {
                    return Ok(false);
                }
                count_refusal_query(channel, method, reason, at, sealed_to)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(true);
            }
        }
        if let Some(event_id) = event_id {
            let handled: Option<Option<i64>> = sqlx::query_scalar(
                "SELECT handled_at FROM inbox WHERE channel = $1 AND event_id = $2",
            )
            .bind(channel)
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?;
            if matches!(handled, Some(Some(_))) {
                return Ok(false);
            }
        }
        let mut tx = self.pool.begin().await?;
        chain::lock(&mut tx).await?;
        let open_from = chain::seal_refusals(&mut tx, at).await?;
        if let Some(event_id) = event_id
            && !mark_handled(&mut tx, channel, event_id, at).await?
        {
            // Handled meanwhile: nothing is counted (nor sealed).
            return Ok(false);
        }
        count_refusal_query(channel, method, reason, at, open_from)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// Marks an inbox event handled; false when it had been already. An event
/// that never went through the inbox (a version-2 plugin's plain emit) has
/// no row: it is counted, as before.
async fn mark_handled(
    conn: &mut PgConnection,
    channel: &str,
    event_id: &str,
    at: i64,
) -> Result<bool, StoreError> {
    let marked = sqlx::query(
        "UPDATE inbox SET handled_at = $3 WHERE channel = $1 AND event_id = $2 AND handled_at IS NULL",
    )
    .bind(channel)
    .bind(event_id)
    .bind(at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if marked > 0 {
        return Ok(true);
    }
    let exists: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM inbox WHERE channel = $1 AND event_id = $2")
            .bind(channel)
            .bind(event_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(exists.is_none())
}

fn count_refusal_query<'q>(
    channel: &'q str,
    method: AckMethod,
    reason: &'q str,
    at: i64,
    open_from: i64,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    // A minute already sealed into the evidence chain is not changed: a
    // refusal that arrives for it (a clock stepped back) counts in the
    // first open minute.
    sqlx::query(
        "INSERT INTO refusal_counts (minute, channel, method, reason, count, last_at)
         VALUES ($1, $2, $3, $4, 1, $5)
         ON CONFLICT (minute, channel, method, reason)
         DO UPDATE SET count = refusal_counts.count + 1,
                       last_at = GREATEST(refusal_counts.last_at, excluded.last_at)",
    )
    .bind(chain::minute_of(at).max(open_from))
    .bind(channel)
    .bind(method.as_str())
    .bind(reason)
    .bind(at)
}

/// Gives the answered check questions of the acknowledgements `ids`, just
/// inserted, their acknowledgement; returns the answers' ids in order.
async fn link_check_answers(conn: &mut PgConnection, ids: &[i64]) -> Result<Vec<i64>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut linked: Vec<i64> = sqlx::query_scalar(
        "UPDATE check_answers SET acknowledgement_id = a.id
         FROM acknowledgements a
         WHERE a.id = ANY($1)
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
