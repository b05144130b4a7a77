use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::sql::Dialect;
use super::{Rotated, Rotation, StoreError, StoreResult};
use writer::{WriteTurn, Writer};

/// Schema versions ([`super::sql::migrations`] in this dialect), applied in order at start-up;
/// `PRAGMA user_version` records how many ran.
static MIGRATIONS: LazyLock<Vec<String>> = LazyLock::new(|| super::sql::migrations(&SQLITE));

mod writer;

/// The embedded default [`TokenStore`](super::TokenStore): one SQLite file in WAL mode.
///
/// Rotations go to one writer, a connection on a thread of its own that commits all the rotations
/// waiting for it in one transaction (group commit) and answers each only after the commit; a
/// batch runs its rotations one after the other, so of concurrent rotations of one family exactly
/// one wins. Reads run on a pool of connections, which WAL lets read beside the writer; the other
/// writes run on the pool too, each after taking the writer's turn.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: Arc<Writer>,
    turn: WriteTurn,
}

/// When a commit is on the disk (`PRAGMA synchronous` in WAL mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// The WAL is synced at checkpoints only: a commit survives a crash or kill of the process,
    /// while an OS crash or power loss can lose the last commits.
    Normal,
    /// The WAL is synced at every commit (one sync per batch of rotations): a commit also
    /// survives power loss.
    #[default]
    Full,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }

    fn sqlx(self) -> SqliteSynchronous {
        match self {
            Self::Normal => SqliteSynchronous::Normal,
            Self::Full => SqliteSynchronous::Full,
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new().filename(path.as_ref()).create_if_missing(true);
        Self::connect(options, Synchronous::default()).await
    }

    /// Opens a `sqlite://path` URL (query parameters as sqlx understands them).
    pub async fn open_url(url: &str) -> StoreResult<Self> {
        Self::open_url_with(url, Synchronous::default()).await
    }

    /// [`Self::open_url`] with a chosen durability.
    pub async fn open_url_with(url: &str, synchronous: Synchronous) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url).map_err(StoreError::unavailable)?;
        Self::connect(options.create_if_missing(true), synchronous).await
    }

    async fn connect(options: SqliteConnectOptions, synchronous: Synchronous) -> StoreResult<Self> {
        let path = options.get_filename().to_owned();
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous.sqlx())
            .foreign_keys(true)
            // The writer's checkpointer copies the WAL; a commit here would otherwise do it.
            .pragma("wal_autocheckpoint", "0")
            // Writes take the writer's turn, so this wait is only ever for another process.
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(StoreError::unavailable)?;
        migrate(&pool).await?;
        let turn = WriteTurn::default();
        let writer = Arc::new(Writer::start(&path, synchronous, turn.clone())?);
        Ok(Self { pool, writer, turn })
    }

    /// Waits until no other write of this store runs (see [`writer`]).
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        Some(self.turn.lock().await)
    }

    async fn rotate(&self, rotation: &Rotation) -> StoreResult<Option<Rotated>> {
        self.writer.rotate(rotation).await
    }
}

async fn migrate(pool: &SqlitePool) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(StoreError::unavailable)?;
    let applied: i64 =
        sqlx::query_scalar("PRAGMA user_version").fetch_one(&mut *tx).await.map_err(StoreError::unavailable)?;
    for (version, migration) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        sqlx::raw_sql(migration).execute(&mut *tx).await.map_err(StoreError::unavailable)?;
        sqlx::raw_sql(&format!("PRAGMA user_version = {}", version + 1))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::unavailable)?;
    }
    tx.commit().await.map_err(StoreError::unavailable)
}

/// SQLite's departures from the shared statements.
const SQLITE: Dialect = Dialect {
    backend: "sqlite",
    parameter_prefix: "?",
    greatest: "MAX",
    // Nothing ties a token's end to its family's here, so both are checked.
    purge_families: "token_expires_at <= $1 OR expires_at <= $1",
    integer: "INTEGER",
    active_column: "INTEGER NOT NULL DEFAULT 1",
    // The rowid itself; AUTOINCREMENT never reuses the id of a purged newest event.
    event_id_column: "INTEGER PRIMARY KEY AUTOINCREMENT",
    token_expiry_check: "",
    families_by_user: "user_id",
    events_by_user: "user_id, id",
};

super::sql::impl_token_store!(SqliteStore, SQLITE);

#[cfg(test)]
crate::conformance_tests!(sqlite_store_tests, async {
    // A real file per test, in WAL mode; the directory lives as long as the process.
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("temp dir")));
    SqliteStore::open(dir.path().join("reauth.db")).await.expect("open sqlite")
});

/// The writer's own cases, beside the conformance suite: they hold its write turn, make SQLite
/// refuse a commit, or reopen the file, which no other backend has.
#[cfg(test)]
mod writer_tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::Poll;

    use super::*;
    use crate::store::conformance::{rotate_until_abandoned, rotation, settle, user};
    use crate::store::{AuditKind, NewFamily, StoreError, TokenStore};
    use crate::time::unix_now;

    fn family_of(owner: &str, now: i64) -> NewFamily {
        NewFamily {
            id: crate::store::family_id_for(owner),
            user_id: owner.into(),
            created_at: now,
            expires_at: now + 86_400,
            token_expires_at: now + 3600,
            user_agent: None,
            client_ip: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_that_does_not_commit_answers_every_rotation_unavailable_and_keeps_none_of_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path().join("reauth.db")).await.expect("open sqlite");
        let owner = user("batch");
        store.create_user(&owner).await.expect("user");
        let now = unix_now();
        let families: Vec<NewFamily> = (0..8).map(|_| family_of(&owner.id, now)).collect();
        for family in &families {
            store.create_family(family).await.expect("family");
        }
        // The last family's event cannot be written: its batch must fail as a whole.
        let doomed = &families[7].id;
        sqlx::raw_sql(&format!(
            "CREATE TRIGGER refuse_one_event BEFORE INSERT ON audit_events WHEN NEW.session_id = '{doomed}' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        ))
        .execute(&store.pool)
        .await
        .expect("trigger");

        // With the write turn held, every rotation is queued before the writer can take any: all
        // eight land in one batch.
        let held = store.turn.lock().await;
        let mut waiting: Vec<Pin<Box<dyn Future<Output = _> + Send>>> = families
            .iter()
            .map(|family| {
                let (store, rotation) = (store.clone(), rotation(&family.id, 0, now, now + 600));
                Box::pin(async move { store.rotate_family(&rotation).await }) as Pin<Box<dyn Future<Output = _> + Send>>
            })
            .collect();
        std::future::poll_fn(|context| {
            for rotation in &mut waiting {
                assert!(rotation.as_mut().poll(context).is_pending(), "answered before its commit");
            }
            Poll::Ready(())
        })
        .await;
        drop(held);
        for (answer, family) in futures_of(waiting).await.into_iter().zip(&families) {
            assert!(matches!(answer, Err(StoreError::Unavailable(_))), "{}: {answer:?}", family.id);
        }
        for family in &families {
            assert_eq!(store.family(&family.id).await.expect("read").expect("kept").generation, 0, "{}", family.id);
        }
        assert!(store.recent_events(&owner.id, 100).await.expect("events").is_empty(), "no event of the batch");

        // The writer goes on: the next batch commits.
        sqlx::raw_sql("DROP TRIGGER refuse_one_event").execute(&store.pool).await.expect("drop trigger");
        let rotated = store.rotate_family(&rotation(doomed, 0, now, now + 600)).await.expect("rotate");
        assert_eq!(rotated.map(|rotated| rotated.family.generation), Some(1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_a_rotation_load_that_never_pauses() {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        const SESSIONS: usize = 64;
        // A rotation writes about 0.7 pages here. Without restarts, the least load would make a WAL
        // of about 5.6 times the restart size, over the bound below; the load then goes on until
        // it has started over twice, whatever the machine's speed, or the most is reached.
        const LEAST_ROTATIONS: u64 = 8 * writer::WAL_RESTART_PAGES as u64;
        const MOST_ROTATIONS: u64 = 40 * writer::WAL_RESTART_PAGES as u64;
        const RESTARTS: u32 = 2;
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path().join("reauth.db")).await.expect("open sqlite");
        let wal_path = dir.path().join("reauth.db-wal");
        // The WAL header counts the times it started over.
        let restarts = move || {
            let header = std::fs::read(&wal_path).expect("WAL");
            (u32::from_be_bytes(header[12..16].try_into().expect("header")), header.len() as u64)
        };
        let now = unix_now();
        let (done, enough) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let mut loops = Vec::new();
        for session in 0..SESSIONS {
            let owner = user(&format!("load{session}"));
            store.create_user(&owner).await.expect("user");
            let family = family_of(&owner.id, now);
            store.create_family(&family).await.expect("family");
            let (store, done, enough, restarts) = (store.clone(), done.clone(), enough.clone(), restarts.clone());
            loops.push(tokio::spawn(async move {
                let mut generation = 0;
                while !enough.load(Ordering::Relaxed) {
                    let rotation = rotation(&family.id, generation, now, now + 600);
                    assert!(store.rotate_family(&rotation).await.expect("rotate").is_some());
                    generation += 1;
                    let so_far = done.fetch_add(1, Ordering::Relaxed) + 1;
                    let checked = so_far >= LEAST_ROTATIONS && so_far % 1024 == 0;
                    if so_far >= MOST_ROTATIONS || (checked && restarts().0 >= RESTARTS) {
                        enough.store(true, Ordering::Relaxed);
                    }
                }
            }));
        }
        for rotating in loops {
            rotating.await.expect("rotations");
        }
        let (restarted, wal_bytes) = restarts();
        assert!(restarted >= RESTARTS, "the WAL started over {restarted} times in {MOST_ROTATIONS} rotations");
        // SQLite reuses the file from its beginning, so its length is the most it ever held.
        let most_pages = wal_bytes / (4096 + 24);
        assert!(most_pages < 4 * writer::WAL_RESTART_PAGES as u64, "the WAL reached {most_pages} pages");
    }

    async fn futures_of<T>(waiting: Vec<Pin<Box<dyn Future<Output = T> + Send>>>) -> Vec<T> {
        let mut answers = Vec::new();
        for rotation in waiting {
            answers.push(rotation.await);
        }
        answers
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rotations_acknowledged_before_the_store_is_dropped_are_in_the_reopened_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("reauth.db");
        let owner = user("reopened");
        let families = {
            let store: Arc<dyn TokenStore> = Arc::new(SqliteStore::open(&path).await.expect("open sqlite"));
            store.create_user(&owner).await.expect("user");
            rotate_until_abandoned(&store, &owner).await
            // Dropped here with rotations still queued to its writer.
        };
        let reopened: Arc<dyn TokenStore> = Arc::new(SqliteStore::open(&path).await.expect("reopen"));
        for (family, acknowledged) in &families {
            let kept = reopened.family(family).await.expect("read").expect("the session is kept").generation;
            assert!(kept >= *acknowledged, "{family}: generation {kept}, acknowledged {acknowledged}");
            let generation = settle(&reopened, family).await;
            let events = reopened.recent_events(&owner.id, 10_000).await.expect("events");
            let mine = events
                .iter()
                .filter(|event| {
                    event.kind == AuditKind::Refresh && event.session_id.as_deref() == Some(family.as_str())
                })
                .count();
            assert_eq!(mine as u64, generation, "{family}: one event per rotation");
        }
    }
}

#[cfg(test)]
mod challenge_tests {
    use super::*;
    use crate::store::{Challenge, ChallengeStore};

    #[tokio::test]
    async fn expired_challenges_are_deleted_when_the_next_is_stored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path().join("reauth.db")).await.expect("open sqlite");
        let challenge = |nonce: &str, expires_at| Challenge {
            nonce: nonce.into(),
            account: "G".into(),
            message: String::new(),
            expires_at,
        };
        store.put_challenge(&challenge("old", 10), 0).await.expect("put");
        store.put_challenge(&challenge("new", 30), 20).await.expect("put");
        let nonces: Vec<String> =
            sqlx::query_scalar("SELECT nonce FROM wallet_challenges").fetch_all(&store.pool).await.expect("select");
        assert_eq!(nonces, ["new"]);
    }
}

#[cfg(test)]
mod upgrade_tests {
    use super::*;
    use crate::store::{Challenge, ChallengeStore, KeyStore, RevokeReason, TokenStore};

    /// Migrations released before the key set (1) and with it (2); later ones are appended.
    const RELEASED: usize = 2;

    #[tokio::test]
    async fn a_database_of_the_last_release_gets_only_the_new_migrations() {
        // Released migrations keep their index: the last release ended with the key set's table.
        assert_eq!(MIGRATIONS[RELEASED - 1], crate::store::sql::KEYS_TABLE);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("reauth.db");
        {
            let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
            let pool = SqlitePool::connect_with(options).await.expect("create");
            for migration in &MIGRATIONS[..RELEASED] {
                sqlx::raw_sql(migration).execute(&pool).await.expect("old schema");
            }
            sqlx::raw_sql(&format!(
                "PRAGMA user_version = {RELEASED};
                 INSERT INTO users (id, username, password_hash, active, created_at) VALUES ('u1', 'alice', 'h', 1, 1);
                 INSERT INTO reauth_keys (root, id, kind, created_at, active_at, sealed) VALUES ('r', 'k', 'signing', 1, 1, 'AA==');"
            ))
            .execute(&pool)
            .await
            .expect("old rows");
            pool.close().await;
        }
        let store = SqliteStore::open(&path).await.expect("upgrade");
        let version: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&store.pool).await.expect("version");
        assert_eq!(version as usize, MIGRATIONS.len());
        assert!(store.user_by_name("alice").await.expect("user").is_some(), "users survive");
        assert_eq!(store.keys_sealed_by("r").await.expect("keys").len(), 1, "the key set survives");
        // The tables and columns of the later migrations exist.
        store.end_user_sessions("u1", 5, RevokeReason::Revoked).await.expect("sessions_valid_after");
        assert!(store.revocations_since(0).await.expect("revocations").is_empty());
        let challenge = Challenge { nonce: "n".into(), account: "G".into(), message: String::new(), expires_at: 10 };
        store.put_challenge(&challenge, 0).await.expect("wallet_challenges");
    }
}
