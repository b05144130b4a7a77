use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::sql::Dialect;
use super::{StoreError, StoreResult};

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
    // Logout everywhere as one fence (TokenStore::end_user_sessions).
    r#"ALTER TABLE users ADD COLUMN sessions_valid_after INTEGER NOT NULL DEFAULT 0;"#,
    // Revoked sessions and users, shared by every instance until their access tokens are dead.
    r#"CREATE TABLE revocations (kind TEXT NOT NULL, subject TEXT NOT NULL, issued_before INTEGER NOT NULL, at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
CREATE INDEX revocations_by_time ON revocations(at);"#,
];

/// The embedded default [`TokenStore`](super::TokenStore): one SQLite file in WAL mode.
///
/// Rotation is a single conditional `UPDATE … RETURNING`, which SQLite runs under its write lock, so
/// concurrent rotations of one family serialise and exactly one wins.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new().filename(path.as_ref()).create_if_missing(true);
        Self::connect(options).await
    }

    /// Opens a `sqlite://path` URL (query parameters as sqlx understands them).
    pub async fn open_url(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url).map_err(StoreError::unavailable)?;
        Self::connect(options.create_if_missing(true)).await
    }

    async fn connect(options: SqliteConnectOptions) -> StoreResult<Self> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a commit survives a process crash; only an OS crash can lose the last
            // transactions, which costs users at most a fresh login.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(StoreError::unavailable)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(StoreError::unavailable)?;
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
}

super::sql::impl_token_store!(
    SqliteStore,
    Dialect {
        backend: "sqlite",
        parameter_prefix: "?",
        least: "MIN",
        greatest: "MAX",
        // Nothing ties a token's end to its family's here, so both are checked.
        purge_families: "token_expires_at <= $1 OR expires_at <= $1",
    }
);

#[cfg(test)]
crate::conformance_tests!(sqlite_store_tests, async {
    // A real file per test, in WAL mode; the directory lives as long as the process.
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("temp dir")));
    SqliteStore::open(dir.path().join("reauth.db")).await.expect("open sqlite")
});
