use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::sql::Dialect;
use super::{Rotated, Rotation, StoreError, StoreResult};
use writer::{WriteTurn, Writer};

/// Schema versions, applied in order at start-up; `PRAGMA user_version` records how many ran.
/// Append only: an applied migration is never edited.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL
);
CREATE TABLE families (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    generation INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    token_expires_at INTEGER NOT NULL,
    rotated_at INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    user_agent TEXT,
    client_ip TEXT,
    revoke_reason TEXT
);
CREATE INDEX families_by_user ON families(user_id);
CREATE INDEX families_by_token_expiry ON families(token_expires_at);
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT,
    session_id TEXT,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    client_ip TEXT,
    user_agent TEXT,
    detail TEXT
);
CREATE INDEX audit_events_by_user ON audit_events(user_id, id);
CREATE INDEX audit_events_by_time ON audit_events(at);
"#,
    super::sql::KEYS_TABLE,
    // Logout everywhere as one fence (TokenStore::end_user_sessions).
    r#"ALTER TABLE users ADD COLUMN sessions_valid_after INTEGER NOT NULL DEFAULT 0;"#,
    // Revoked sessions and users, shared by every instance until their access tokens are dead.
    r#"CREATE TABLE revocations (kind TEXT NOT NULL, subject TEXT NOT NULL, issued_before INTEGER NOT NULL, at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
CREATE INDEX revocations_by_time ON revocations(at);"#,
    r#"
CREATE TABLE wallet_challenges (
    nonce TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    message TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX wallet_challenges_by_expiry ON wallet_challenges(expires_at);
"#,
];

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
};

super::sql::impl_token_store!(SqliteStore, SQLITE);

#[cfg(test)]
crate::conformance_tests!(sqlite_store_tests, async {
    // A real file per test, in WAL mode; the directory lives as long as the process.
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("temp dir")));
    SqliteStore::open(dir.path().join("reauth.db")).await.expect("open sqlite")
});

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
