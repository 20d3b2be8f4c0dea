//! Bench-only writes on PostgreSQL (test-support): the raw baselines the
//! store's own paths are measured against (issue 18's benchmarks).

use super::PgStore;
use crate::{NewMember, StoreError};

impl PgStore {
    /// The raw baseline for planning: `members` written into
    /// `rollout_members` of `rollout_id` by one `COPY ... FROM STDIN` in
    /// one transaction, from memory: no reading, no checks.
    pub async fn copy_members(
        &self,
        rollout_id: &str,
        members: &[NewMember],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let mut copy = tx
            .copy_in_raw(
                "COPY rollout_members (rollout_id, person_id, wave, next_due_at) FROM STDIN",
            )
            .await?;
        let mut buffer = Vec::with_capacity(1 << 20);
        for m in members {
            buffer.extend_from_slice(
                format!(
                    "{rollout_id}\t{}\t{}\t{}\n",
                    m.person_id, m.wave, m.first_due_at
                )
                .as_bytes(),
            );
            if buffer.len() >= 1 << 20 {
                copy.send(std::mem::take(&mut buffer)).await?;
            }
        }
        if !buffer.is_empty() {
            copy.send(buffer).await?;
        }
        copy.finish().await?;
        tx.commit().await?;
        Ok(())
    }
}
