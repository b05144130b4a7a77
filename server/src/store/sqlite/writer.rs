//! SQLite's one writer: a connection on a thread of its own that commits the rotations waiting
//! for it together (group commit).
//!
//! SQLite lets one transaction write at a time, and a commit costs the same for one row as for a
//! hundred. A refresh sends its [`Rotation`] here and waits; the writer takes every rotation that
//! is waiting (at most [`MAX_BATCH`]), runs them in one `BEGIN IMMEDIATE … COMMIT`, and only then
//! answers each. So an acknowledged rotation is committed with its audit event, and when a batch
//! does not commit, every rotation in it is answered [`StoreError::Unavailable`] and none happened.
//!
//! Under `synchronous = full` a commit is answered only once the WAL holding it is synced, but the
//! writer does not wait for that sync itself: its connection commits without one (`NORMAL`), and
//! a syncer thread syncs the WAL and then answers every batch committed before the sync began.
//! The writer meanwhile runs the next batch, so a sync overlaps the next batch instead of adding
//! to every batch's turn, and one sync can cover several batches.
//!
//! The other writes of the store run on its sqlx pool but take the same [`WriteTurn`] first, so
//! that no two writers ever meet at SQLite's write lock, where the loser sleeps in the busy
//! handler (1 ms, then 2, 5, 10 …).

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, LazyLock};
use std::thread;
use std::time::Duration;

use super::super::group_commit::{answer, rotate_in_batch, Waiting};
use super::super::sql::{family_from_row, user_from_row, RecordRow, INSERT_EVENT, USER_BY_ID};
use super::super::{Rotated, Rotation, StoreError, StoreResult};
use super::{Synchronous, SQLITE};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

/// The most rotations one commit takes: enough for every session of a busy server at once, few
/// enough that the first of them does not wait long for the last.
pub(super) const MAX_BATCH: usize = 128;

/// The compare-and-swap of one rotation, with the conditions of [`TokenStore::rotate_family`]
/// (super::super::TokenStore::rotate_family).
const ROTATE: &str = "UPDATE families SET generation = generation + 1, rotated_at = ?1, last_used_at = ?1, \
     token_expires_at = MIN(?2, expires_at) \
     WHERE id = ?3 AND generation = ?4 AND revoke_reason IS NULL AND token_expires_at > ?1 AND expires_at > ?1 \
     AND EXISTS (SELECT 1 FROM users u WHERE u.id = families.user_id AND u.active \
     AND families.created_at >= u.sessions_valid_after) \
     RETURNING *";

/// The turn every write of the store takes, the writer's batches included: whoever holds it is the
/// only writer of the file in this process.
pub(super) type WriteTurn = Arc<tokio::sync::Mutex<()>>;

/// How often the checkpointer copies the WAL into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// WAL pages beyond which the checkpointer sees to it that the next commit starts the WAL over
/// (4096 pages: 16 MiB).
pub(super) const WAL_RESTART_PAGES: i64 = 4096;

/// At most this many pages written during one of the checkpointer's passes, and it leaves the last
/// pass to the writer: few enough to copy in well under a millisecond.
const PAGES_LEFT_FOR_THE_WRITER: i64 = 64;

/// Passes the checkpointer makes to get there before it leaves the last one to the writer anyway.
const CATCH_UP_PASSES: usize = 8;

/// The handle of the writer and checkpointer threads; they end, after the rotations already sent,
/// when the last handle is dropped.
pub(super) struct Writer {
    jobs: mpsc::Sender<Waiting>,
    _checkpoints: mpsc::Sender<()>,
}

impl Writer {
    /// Opens the writer's connection to the (migrated) database at `path` and starts its thread.
    pub(super) fn start(path: &Path, synchronous: Synchronous, turn: WriteTurn) -> StoreResult<Self> {
        // The syncer makes a commit durable under `Full`; the commit itself never syncs.
        let connection = open(path, Synchronous::Normal).map_err(StoreError::unavailable)?;
        let checkpointer = open(path, synchronous).map_err(StoreError::unavailable)?;
        let syncer = match synchronous {
            Synchronous::Full => Some(Syncer::start(path).map_err(StoreError::unavailable)?),
            Synchronous::Normal => None,
        };
        let (jobs, queue) = mpsc::channel();
        let (checkpoints, stop) = mpsc::channel();
        let last_pass_due = Arc::new(AtomicBool::new(false));
        let (writer_turn, writer_pass_due) = (turn.clone(), last_pass_due.clone());
        thread::Builder::new()
            .name("reauth-sqlite-writer".into())
            .spawn(move || run(connection, &queue, syncer.as_ref(), &writer_turn, &writer_pass_due))
            .map_err(StoreError::unavailable)?;
        thread::Builder::new()
            .name("reauth-sqlite-checkpoint".into())
            .spawn(move || checkpoint_until_stopped(&checkpointer, &stop, &turn, &last_pass_due))
            .map_err(StoreError::unavailable)?;
        Ok(Self { jobs, _checkpoints: checkpoints })
    }

    /// Queues `rotation` and waits until the batch it lands in has committed or failed.
    pub(super) async fn rotate(&self, rotation: &Rotation) -> StoreResult<Option<Rotated>> {
        rotate_in_batch(SQLITE.backend, rotation, |waiting| self.jobs.send(waiting).is_ok()).await
    }
}

fn open(path: &Path, synchronous: Synchronous) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    // Another process on the file (the CLI's `user add`, `keys rotate`) is still met with a wait.
    connection.busy_timeout(Duration::from_secs(5))?;
    connection.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; \
         PRAGMA wal_autocheckpoint = 0;",
        synchronous.pragma()
    ))?;
    Ok(connection)
}

/// A passive checkpoint on `connection`: the WAL's size and how much of it is now copied, both in
/// pages.
fn checkpoint(connection: &Connection) -> rusqlite::Result<(i64, i64)> {
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| Ok((row.get(1)?, row.get(2)?)))
}

/// Copies the WAL into the database file every [`CHECKPOINT_INTERVAL`], beside the writer rather
/// than in its commits (SQLite's automatic checkpoint, off on every connection of the store, would
/// hold up a batch for the copy and its syncs).
///
/// SQLite starts the WAL over only at a commit that finds all of it copied, which beside a busy
/// writer never happens, so the WAL would grow for as long as the load lasts. Past
/// [`WAL_RESTART_PAGES`] the checkpointer catches up: it repeats its passes, each copying what the
/// writer added during the one before, until one finds at most [`PAGES_LEFT_FOR_THE_WRITER`], and
/// then leaves the last pass to the writer (`last_pass_due`), which makes it between two batches
/// with the turn held, so that its next commit starts over. The writer then waits for a few
/// hundred pages and a sync, on its own thread, rather than for another thread to be scheduled
/// with the turn. Writes that are not rotations never reach the writer: when the pass is still due
/// at the next interval, the checkpointer makes it under the turn itself.
fn checkpoint_until_stopped(
    connection: &Connection,
    stop: &mpsc::Receiver<()>,
    turn: &WriteTurn,
    last_pass_due: &AtomicBool,
) {
    let last_pages = std::cell::Cell::new(0);
    let catch_up = || -> rusqlite::Result<()> {
        if last_pass_due.swap(false, Ordering::AcqRel) {
            let _held = turn.blocking_lock();
            let (pages, copied) = checkpoint(connection)?;
            tracing::debug!(pages, copied, "SQLite checkpoint with the write turn");
            return Ok(());
        }
        let (pages, mut copied) = checkpoint(connection)?;
        let idle = pages == copied && pages == last_pages.replace(pages);
        if pages <= WAL_RESTART_PAGES || idle {
            // Small, or copied whole with no commit since the last look: the next commit starts over.
            return Ok(());
        }
        for _ in 0..CATCH_UP_PASSES {
            let copied_before = copied;
            let pages;
            (pages, copied) = checkpoint(connection)?;
            if pages - copied_before <= PAGES_LEFT_FOR_THE_WRITER {
                break;
            }
        }
        last_pass_due.store(true, Ordering::Release);
        Ok(())
    };
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_INTERVAL) {
        if let Err(error) = catch_up() {
            tracing::warn!(%error, "SQLite checkpoint failed; the WAL grows until one succeeds");
        }
    }
}

fn run(
    mut connection: Connection,
    queue: &mpsc::Receiver<Waiting>,
    syncer: Option<&Syncer>,
    turn: &WriteTurn,
    last_pass_due: &AtomicBool,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = queue.recv() {
        batch.push(first);
        let held = turn.blocking_lock();
        // Whatever arrived while the turn was taken joins this commit.
        batch.extend(queue.try_iter().take(MAX_BATCH - 1));
        match (commit(&mut connection, &batch), syncer) {
            (Ok(rotated), Some(syncer)) => syncer.answer_once_synced(std::mem::take(&mut batch), rotated),
            (outcome, _) => answer(SQLITE.backend, &mut batch, outcome),
        }
        // After the commit: this batch does not wait for it, only the next one does.
        if last_pass_due.swap(false, Ordering::AcqRel) {
            match checkpoint(&connection) {
                Ok((pages, copied)) => tracing::debug!(pages, copied, "SQLite checkpoint by the writer"),
                Err(error) => tracing::warn!(%error, "SQLite checkpoint by the writer failed"),
            }
        }
        drop(held);
    }
}

/// A batch committed but not yet answered: it waits for the sync of the WAL that holds it.
struct Committed {
    batch: Vec<Waiting>,
    rotated: Vec<Option<Rotated>>,
}

/// The handle of the syncer thread, which ends after the batches already sent when it is dropped.
struct Syncer {
    committed: mpsc::Sender<Committed>,
}

impl Syncer {
    fn start(database: &Path) -> io::Result<Self> {
        let mut wal = Wal::open(database)?;
        let (committed, waiting) = mpsc::channel::<Committed>();
        thread::Builder::new().name("reauth-sqlite-sync".into()).spawn(move || {
            while let Ok(first) = waiting.recv() {
                // Every batch here was committed before this sync begins, so it covers them all.
                let synced: Vec<Committed> = std::iter::once(first).chain(waiting.try_iter()).collect();
                let outcome = wal.sync();
                if let Err(error) = &outcome {
                    tracing::error!(%error, "syncing SQLite's WAL failed; the rotations waiting for it are answered unavailable");
                }
                for Committed { mut batch, rotated } in synced {
                    let outcome = match &outcome {
                        Ok(()) => Ok(rotated),
                        Err(error) => Err(io::Error::new(error.kind(), error.to_string())),
                    };
                    answer(SQLITE.backend, &mut batch, outcome);
                }
            }
        })?;
        Ok(Self { committed })
    }

    fn answer_once_synced(&self, batch: Vec<Waiting>, rotated: Vec<Option<Rotated>>) {
        if let Err(mpsc::SendError(Committed { mut batch, .. })) = self.committed.send(Committed { batch, rotated }) {
            // Only if the syncer thread died: its waiters must not wait forever.
            answer(SQLITE.backend, &mut batch, Err(io::Error::other("the SQLite syncer has stopped")));
        }
    }
}

/// The WAL file of a database, open for syncing.
struct Wal {
    path: PathBuf,
    file: File,
}

impl Wal {
    fn open(database: &Path) -> io::Result<Self> {
        let mut path = database.as_os_str().to_owned();
        path.push("-wal");
        let path = PathBuf::from(path);
        // The migrations have written through the pool, so SQLite has made the file; a WAL that
        // is not there is a fault, not something to create.
        let file = File::options().read(true).write(true).open(&path)?;
        Ok(Self { path, file })
    }

    /// Syncs the file SQLite writes now: SQLite deletes its WAL when the last connection to the
    /// database closes, and another process's connection could then make a new one.
    fn sync(&mut self) -> io::Result<()> {
        let (now, held) = (std::fs::metadata(&self.path)?, self.file.metadata()?);
        if (now.dev(), now.ino()) != (held.dev(), held.ino()) {
            *self = Self { file: File::options().read(true).write(true).open(&self.path)?, path: self.path.clone() };
        }
        self.file.sync_data()
    }
}

/// Runs `batch` in one transaction: every rotation and its event commit together, or none.
fn commit(connection: &mut Connection, batch: &[Waiting]) -> rusqlite::Result<Vec<Option<Rotated>>> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let rotated = batch.iter().map(|waiting| rotate(&transaction, &waiting.rotation)).collect::<Result<_, _>>()?;
    // On an error the transaction rolls back when dropped.
    transaction.commit()?;
    Ok(rotated)
}

fn rotate(connection: &Connection, rotation: &Rotation) -> rusqlite::Result<Option<Rotated>> {
    let family = connection
        .prepare_cached(ROTATE)?
        .query_row(
            rusqlite::params![
                rotation.now,
                rotation.token_expires_at,
                rotation.family_id,
                rotation.expected_generation as i64
            ],
            |row| family_from_row(&WriterRow(row)),
        )
        .optional()?;
    let Some(family) = family else { return Ok(None) };
    let user = connection.prepare_cached(&USER)?.query_row([&family.user_id], |row| user_from_row(&WriterRow(row)))?;
    let event = rotation.event(&family.user_id);
    connection.prepare_cached(&RECORD_EVENT)?.execute(rusqlite::params![
        event.user_id,
        event.session_id,
        event.kind.as_str(),
        event.at,
        event.client_ip,
        event.user_agent,
        event.detail
    ])?;
    Ok(Some(Rotated { family, user }))
}

/// Statements shared with the pool's code, in SQLite's numbered-parameter form.
static USER: LazyLock<String> = LazyLock::new(|| SQLITE.rewrite(USER_BY_ID));
static RECORD_EVENT: LazyLock<String> = LazyLock::new(|| SQLITE.rewrite(INSERT_EVENT));

/// A row of the writer's connection, read by the same mappings as sqlx's rows.
struct WriterRow<'a, 'row>(&'a rusqlite::Row<'row>);

impl RecordRow for WriterRow<'_, '_> {
    type Error = rusqlite::Error;

    fn text(&self, column: &str) -> rusqlite::Result<String> {
        self.0.get(column)
    }

    fn optional_text(&self, column: &str) -> rusqlite::Result<Option<String>> {
        self.0.get(column)
    }

    fn integer(&self, column: &str) -> rusqlite::Result<i64> {
        self.0.get(column)
    }

    fn flag(&self, column: &str) -> rusqlite::Result<bool> {
        self.0.get(column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wal_is_synced_through_the_file_sqlite_writes_now() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = dir.path().join("reauth.db");
        let wal_path = dir.path().join("reauth.db-wal");
        assert!(Wal::open(&database).is_err(), "a missing WAL is a fault, not made here");
        std::fs::write(&wal_path, b"first").expect("WAL");
        let mut wal = Wal::open(&database).expect("open");
        wal.sync().expect("sync");
        // What SQLite does when the last connection closes and another process opens the file.
        std::fs::remove_file(&wal_path).expect("delete");
        std::fs::write(&wal_path, b"second").expect("new WAL");
        wal.sync().expect("sync");
        let (now, held) = (std::fs::metadata(&wal_path).expect("stat"), wal.file.metadata().expect("fstat"));
        assert_eq!((held.dev(), held.ino()), (now.dev(), now.ino()), "the new file is the one synced");
    }
}
