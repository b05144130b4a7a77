//! SQLite's one writer: a connection on a thread of its own that commits the rotations waiting
//! for it together (group commit).
//!
//! SQLite lets one transaction write at a time, and a commit costs the same for one row as for a
//! hundred. A refresh sends its [`Rotation`] here and waits; the writer takes every rotation that
//! is waiting (at most [`MAX_BATCH`]), runs them in one `BEGIN IMMEDIATE … COMMIT`, and only then
//! answers each. So an acknowledged rotation is committed with its audit event, and when a batch
//! does not commit, every rotation in it is answered [`StoreError::Unavailable`] and none happened.
//!
//! The other writes of the store run on its sqlx pool but take the same [`WriteTurn`] first, so
//! that no two writers ever meet at SQLite's write lock, where the loser sleeps in the busy
//! handler (1 ms, then 2, 5, 10 …).

use std::path::Path;
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

/// WAL pages beyond which the checkpointer also takes the write turn, so that it catches up and
/// the next commit starts the WAL over (4096 pages: 16 MiB).
pub(super) const WAL_RESTART_PAGES: i64 = 4096;

/// Passes without the turn, at most, before the one with it.
const CATCH_UP_PASSES: usize = 4;

/// New pages a pass may find for the next to be the one with the turn.
const CATCH_UP_PAGES: i64 = 128;

/// The handle of the writer and checkpointer threads; they end, after the rotations already sent,
/// when the last handle is dropped.
pub(super) struct Writer {
    jobs: mpsc::Sender<Waiting>,
    _checkpoints: mpsc::Sender<()>,
}

impl Writer {
    /// Opens the writer's connection to the (migrated) database at `path` and starts its thread.
    pub(super) fn start(path: &Path, synchronous: Synchronous, turn: WriteTurn) -> StoreResult<Self> {
        let connection = open(path, synchronous).map_err(StoreError::unavailable)?;
        let checkpointer = open(path, synchronous).map_err(StoreError::unavailable)?;
        let (jobs, queue) = mpsc::channel();
        let (checkpoints, stop) = mpsc::channel();
        let writer_turn = turn.clone();
        thread::Builder::new()
            .name("reauth-sqlite-writer".into())
            .spawn(move || run(connection, &queue, &writer_turn))
            .map_err(StoreError::unavailable)?;
        thread::Builder::new()
            .name("reauth-sqlite-checkpoint".into())
            .spawn(move || checkpoint_until_stopped(&checkpointer, &stop, &turn))
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

/// Copies the WAL into the database file every [`CHECKPOINT_INTERVAL`], beside the writer rather
/// than in its commits (SQLite's automatic checkpoint, off on every connection of the store, would
/// hold up a batch for the copy and its syncs). SQLite starts the WAL over only at a commit that
/// finds all of it copied, which beside a busy writer never happens, so the WAL would grow for as
/// long as the load lasts: past [`WAL_RESTART_PAGES`] the checkpointer passes again over what the
/// writer added during its last pass until few pages are left, takes the write turn for a last pass
/// over those, and the next commit starts over.
fn checkpoint_until_stopped(connection: &Connection, stop: &mpsc::Receiver<()>, turn: &WriteTurn) {
    let checkpoint = || -> rusqlite::Result<(i64, i64)> {
        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| Ok((row.get(1)?, row.get(2)?)))
    };
    // The WAL's length after the last pass with the turn: while it is the same, no commit has come
    // since to start the WAL over, and another pass with the turn would find nothing to copy.
    let mut copied_with_turn = None;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_INTERVAL) {
        let outcome = checkpoint().and_then(|(mut pages, copied)| {
            tracing::debug!(pages, copied, "SQLite checkpoint");
            if pages <= WAL_RESTART_PAGES || copied_with_turn == Some(pages) {
                return Ok(());
            }
            // Even when a pass copied every page it saw, the writer has added more since. Each
            // further pass copies what came during the one before, in less time, so the pass that
            // holds the turn (and with it every rotation) has only a few pages to copy and sync.
            for _ in 0..CATCH_UP_PASSES {
                let (now, copied) = checkpoint()?;
                tracing::debug!(pages = now, copied, "SQLite checkpoint catching up");
                if now < pages {
                    return Ok(()); // a commit found the WAL copied and started it over
                }
                let added = now - pages;
                pages = now;
                if added <= CATCH_UP_PAGES {
                    break;
                }
            }
            let _held = turn.blocking_lock();
            let (pages, copied) = checkpoint()?;
            tracing::debug!(pages, copied, "SQLite checkpoint with the write turn");
            copied_with_turn = Some(pages);
            Ok(())
        });
        if let Err(error) = outcome {
            tracing::warn!(%error, "SQLite checkpoint failed; the WAL grows until one succeeds");
        }
    }
}

fn run(mut connection: Connection, queue: &mpsc::Receiver<Waiting>, turn: &WriteTurn) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = queue.recv() {
        batch.push(first);
        let held = turn.blocking_lock();
        // Whatever arrived while the turn was taken joins this commit.
        batch.extend(queue.try_iter().take(MAX_BATCH - 1));
        let outcome = commit(&mut connection, &batch);
        drop(held);
        answer(SQLITE.backend, &mut batch, outcome);
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
