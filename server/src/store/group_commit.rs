//! What the group commits of the SQL stores share (SQLite's writer thread, PostgreSQL's batcher
//! task): a rotation waits in a queue with the channel its answer comes back on, and after each
//! batch every waiter gets its own outcome, or all of them the batch's failure. So an acknowledged
//! rotation is committed with its audit event, and of a batch that did not commit none happened.

use std::error::Error as StdError;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::{Rotated, Rotation, StoreError, StoreResult};

/// A rotation waiting for its batch.
pub(super) struct Waiting {
    pub(super) rotation: Rotation,
    answer: oneshot::Sender<StoreResult<Option<Rotated>>>,
}

/// Why a rotation got no outcome of its own.
#[derive(Debug, thiserror::Error)]
enum GroupCommitError {
    /// The batch the rotation was in rolled back.
    #[error("the batch of {size} rotations did not commit")]
    BatchFailed {
        size: usize,
        #[source]
        source: Arc<dyn StdError + Send + Sync>,
    },
    #[error("the {0} group commit has stopped")]
    Stopped(&'static str),
}

/// Hands `rotation` to `enqueue` (which answers false when the batcher is gone) and waits until
/// the batch it lands in has committed or failed.
pub(super) async fn rotate_in_batch(
    backend: &'static str,
    rotation: &Rotation,
    enqueue: impl FnOnce(Waiting) -> bool,
) -> StoreResult<Option<Rotated>> {
    let (answer, answered) = oneshot::channel();
    let stopped = || StoreError::unavailable(GroupCommitError::Stopped(backend));
    if !enqueue(Waiting { rotation: rotation.clone(), answer }) {
        return Err(stopped());
    }
    answered.await.map_err(|_| stopped())?
}

/// Answers every rotation of `batch`, in order, with its outcome, or each with the batch's
/// failure; leaves `batch` empty for the next one.
pub(super) fn answer<E: StdError + Send + Sync + 'static>(
    backend: &'static str,
    batch: &mut Vec<Waiting>,
    outcome: Result<Vec<Option<Rotated>>, E>,
) {
    match outcome {
        Ok(rotated) => {
            for (waiting, rotated) in batch.drain(..).zip(rotated) {
                // A waiter that gave up (its request was cancelled) finds its rotation committed;
                // the client's retry gets the successor back (unused_successor).
                let _ = waiting.answer.send(Ok(rotated));
            }
        }
        Err(error) => {
            let size = batch.len();
            tracing::error!(%error, size, backend, "a batch of rotations did not commit");
            let source: Arc<dyn StdError + Send + Sync> = Arc::new(error);
            for waiting in batch.drain(..) {
                let failed = GroupCommitError::BatchFailed { size, source: source.clone() };
                let _ = waiting.answer.send(Err(StoreError::unavailable(failed)));
            }
        }
    }
}
