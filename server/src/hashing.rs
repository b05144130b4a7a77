//! The bound on password hashing: a few dedicated threads, each with its own argon2 memory, and a
//! short queue in front of them.
//!
//! Each argon2id hash needs 19 MiB. Run on tokio's blocking pool, hundreds of parallel logins would
//! each allocate their own (and the allocator keeps pages per thread afterwards), which grew the
//! process past a gigabyte. Here there are at most [`HashPool::workers`] hashes in flight, one per
//! core, each reusing its worker's buffer, and at most [`HashPool::queue`] waiting; a request beyond
//! that gets [`Busy`] at once (503 with `Retry-After`), never a longer wait. Login, registration and
//! the token endpoint share the one pool of their service.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::password::{hash_password_with, verify_password_with, HashMemory};

/// Waiting jobs allowed per worker.
const QUEUE_PER_WORKER: usize = 4;
/// What a 503 for a full pool tells the client to wait, in seconds.
pub(crate) const BUSY_RETRY_AFTER_SECS: i64 = 1;

/// Every worker is busy and the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy;

enum Job {
    Hash { password: String, reply: oneshot::Sender<String> },
    Verify { password: String, phc: String, reply: oneshot::Sender<bool> },
}

/// Dedicated hashing threads with a bounded queue; the threads end when the pool is dropped.
pub(crate) struct HashPool {
    jobs: SyncSender<Job>,
    workers: usize,
    queue: usize,
}

impl HashPool {
    /// One worker per available core.
    pub(crate) fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cores, cores * QUEUE_PER_WORKER)
    }

    /// `workers` threads and room for `queue` waiting jobs.
    pub(crate) fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        let (jobs, receiver) = mpsc::sync_channel(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..workers {
            let receiver = Arc::clone(&receiver);
            let spawned =
                std::thread::Builder::new().name(format!("reauth-argon2-{index}")).spawn(move || work(&receiver));
            if let Err(error) = spawned {
                tracing::error!(%error, "could not start a password-hashing thread");
            }
        }
        Self { jobs, workers, queue }
    }

    /// Hashes a new password.
    pub(crate) async fn hash(&self, password: String) -> Result<String, Busy> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Hash { password, reply })?;
        answer.await.map_err(|_| Busy)
    }

    /// Verifies a password against a PHC string.
    pub(crate) async fn verify(&self, password: String, phc: String) -> Result<bool, Busy> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Verify { password, phc, reply })?;
        answer.await.map_err(|_| Busy)
    }

    fn submit(&self, job: Job) -> Result<(), Busy> {
        self.jobs.try_send(job).map_err(|error| {
            if let TrySendError::Full(_) = error {
                tracing::warn!(workers = self.workers, queue = self.queue, "password hashing saturated: answering 503");
            }
            Busy
        })
    }
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    let mut memory = HashMemory::default();
    loop {
        // The lock is held only while waiting for the next job, never while hashing.
        let job = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match job {
            // A caller that gave up (its request was dropped) simply gets no answer.
            Ok(Job::Hash { password, reply }) => {
                let _ = reply.send(hash_password_with(&mut memory, &password));
            }
            Ok(Job::Verify { password, phc, reply }) => {
                let _ = reply.send(verify_password_with(&mut memory, &password, &phc));
            }
            Err(_) => return, // the pool was dropped
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_a_full_pool_answers_busy_at_once() {
        let pool = HashPool::new(1, 1);
        let phc = pool.hash("correct horse battery".into()).await.unwrap();
        assert_eq!(pool.verify("correct horse battery".into(), phc.clone()).await, Ok(true));
        assert_eq!(pool.verify("wrong horse battery".into(), phc.clone()).await, Ok(false));
        // One running, one queued, the rest refused without waiting.
        let answers = futures_join((0..6).map(|_| {
            let pool = &pool;
            let phc = phc.clone();
            async move { pool.verify("correct horse battery".into(), phc).await }
        }))
        .await;
        assert!(answers.iter().filter(|answer| **answer == Err(Busy)).count() >= 4, "{answers:?}");
        assert!(answers.contains(&Ok(true)), "{answers:?}");
    }

    /// Polls the futures together on this task (all submit before any completes).
    async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
        let mut pinned: Vec<_> = futures.map(Box::pin).collect();
        let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
        std::future::poll_fn(|context| {
            let mut pending = false;
            for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
                if output.is_none() {
                    match future.as_mut().poll(context) {
                        std::task::Poll::Ready(value) => *output = Some(value),
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        outputs.into_iter().flatten().collect()
    }
}
