//! Acknowledgements committed in groups: whatever arrived while the
//! previous commit was syncing goes in the next transaction, so under load
//! one sync to disk serves many requests, and each request still hears only
//! after its own acknowledgement is committed. The writer task starts with
//! the first acknowledgement.

use super::Unavailable;
use cascade_store::{AckOutcome, Evidence, NewAcknowledgement};
use std::sync::{Arc, OnceLock};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Most acknowledgements committed in one transaction.
const GROUP_COMMIT_MAX: usize = 512;

/// An acknowledgement waiting to be committed, and where its outcome goes.
type PendingAck = (
    NewAcknowledgement,
    oneshot::Sender<Result<AckOutcome, String>>,
);

/// The queue to the writer task, started on first use.
#[derive(Default)]
pub(super) struct GroupCommit {
    queue: OnceLock<mpsc::Sender<PendingAck>>,
}

impl GroupCommit {
    /// Records an acknowledgement in the next group; returns once that
    /// group is committed.
    pub(super) async fn acknowledge<S: Evidence + 'static>(
        &self,
        store: &Arc<S>,
        writes: &Arc<Mutex<()>>,
        ack: NewAcknowledgement,
    ) -> Result<AckOutcome, Unavailable> {
        let queue = self.queue.get_or_init(|| {
            let (queue, waiting) = mpsc::channel(4 * GROUP_COMMIT_MAX);
            tokio::spawn(commit_acknowledgements(
                store.clone(),
                writes.clone(),
                waiting,
            ));
            queue
        });
        let stopped = || Unavailable::Writer("the acknowledgement writer has stopped".to_owned());
        let (answer, outcome) = oneshot::channel();
        queue.send((ack, answer)).await.map_err(|_| stopped())?;
        outcome
            .await
            .map_err(|_| stopped())?
            .map_err(Unavailable::Writer)
    }
}

/// The writer task: commits whatever is queued, one group a transaction,
/// through [`Evidence::acknowledge_items`], and answers each request with
/// its own outcome (or the group's failure).
async fn commit_acknowledgements<S: Evidence>(
    store: Arc<S>,
    writes: Arc<Mutex<()>>,
    mut queue: mpsc::Receiver<PendingAck>,
) {
    let mut group = Vec::with_capacity(GROUP_COMMIT_MAX);
    while queue.recv_many(&mut group, GROUP_COMMIT_MAX).await > 0 {
        let acks: Vec<NewAcknowledgement> = group.iter().map(|(ack, _)| ack.clone()).collect();
        let written = {
            let _writer = writes.lock().await;
            store.acknowledge_items(&acks).await
        };
        match written {
            Ok(outcomes) => {
                for ((_, answer), outcome) in group.drain(..).zip(outcomes) {
                    let _ = answer.send(Ok(outcome));
                }
            }
            Err(e) => {
                let reason = e.to_string();
                for (_, answer) in group.drain(..) {
                    let _ = answer.send(Err(reason.clone()));
                }
            }
        }
    }
}
