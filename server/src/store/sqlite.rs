use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::sql_rows::{event_from_row, family_from_row, user_from_row};
use super::{AuditEvent, Family, NewFamily, RevokeReason, StoreError, StoreResult, TokenStore, UnixTime, User};

/// Schema versions, applied in order at start-up; `PRAGMA user_version` records how many ran.
/// Append only: an applied migration is never edited.
const MIGRATIONS: &[&str] = &[r#"
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
"#];

const FAMILY_COLUMNS: &str = "id, user_id, generation, created_at, expires_at, token_expires_at, \
     rotated_at, last_used_at, user_agent, client_ip, revoke_reason";

/// The embedded default [`TokenStore`]: one SQLite file in WAL mode.
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
        let applied: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::unavailable)?;
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

fn store_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::unavailable(error),
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn create_user(&self, user: &User) -> StoreResult<()> {
        sqlx::query("INSERT INTO users (id, username, password_hash, active, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&user.id)
            .bind(&user.username)
            .bind(&user.password_hash)
            .bind(user.active)
            .bind(user.created_at)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(user_from_row).transpose().map_err(store_error)
    }

    async fn user_by_id(&self, user_id: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = ?")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(user_from_row).transpose().map_err(store_error)
    }

    async fn set_user_active(&self, user_id: &str, active: bool) -> StoreResult<bool> {
        let result = sqlx::query("UPDATE users SET active = ? WHERE id = ?")
            .bind(active)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn delete_user(&self, user_id: &str) -> StoreResult<bool> {
        // Families go with the user through ON DELETE CASCADE.
        let result = sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn create_family(&self, family: &NewFamily) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO families (id, user_id, generation, created_at, expires_at, token_expires_at, \
             rotated_at, last_used_at, user_agent, client_ip) VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&family.id)
        .bind(&family.user_id)
        .bind(family.created_at)
        .bind(family.expires_at)
        .bind(family.token_expires_at.min(family.expires_at))
        .bind(family.created_at)
        .bind(family.created_at)
        .bind(&family.user_agent)
        .bind(&family.client_ip)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn family(&self, family_id: &str) -> StoreResult<Option<Family>> {
        let row = sqlx::query(&format!("SELECT {FAMILY_COLUMNS} FROM families WHERE id = ?"))
            .bind(family_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(family_from_row).transpose().map_err(store_error)
    }

    async fn advance_family(
        &self,
        family_id: &str,
        expected_generation: u64,
        now: UnixTime,
        token_expires_at: UnixTime,
    ) -> StoreResult<Option<Family>> {
        let row = sqlx::query(&format!(
            "UPDATE families SET generation = generation + 1, rotated_at = ?1, last_used_at = ?1, \
             token_expires_at = MIN(?2, expires_at) \
             WHERE id = ?3 AND generation = ?4 AND revoke_reason IS NULL \
             AND token_expires_at > ?1 AND expires_at > ?1 \
             RETURNING {FAMILY_COLUMNS}"
        ))
        .bind(now)
        .bind(token_expires_at)
        .bind(family_id)
        .bind(expected_generation as i64)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(family_from_row).transpose().map_err(store_error)
    }

    async fn revoke_family(&self, family_id: &str, reason: RevokeReason) -> StoreResult<bool> {
        let result = sqlx::query("UPDATE families SET revoke_reason = ? WHERE id = ? AND revoke_reason IS NULL")
            .bind(reason.as_str())
            .bind(family_id)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn revoke_user_families(&self, user_id: &str, reason: RevokeReason) -> StoreResult<u64> {
        let result = sqlx::query("UPDATE families SET revoke_reason = ? WHERE user_id = ? AND revoke_reason IS NULL")
            .bind(reason.as_str())
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected())
    }

    async fn live_families(&self, user_id: &str, now: UnixTime) -> StoreResult<Vec<Family>> {
        let rows = sqlx::query(&format!(
            "SELECT {FAMILY_COLUMNS} FROM families WHERE user_id = ?1 AND revoke_reason IS NULL \
             AND token_expires_at > ?2 AND expires_at > ?2 ORDER BY last_used_at DESC, id"
        ))
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(family_from_row).collect::<Result<_, _>>().map_err(store_error)
    }

    async fn record_event(&self, event: &AuditEvent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_events (user_id, session_id, kind, at, client_ip, user_agent, detail) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&event.user_id)
        .bind(&event.session_id)
        .bind(event.kind.as_str())
        .bind(event.at)
        .bind(&event.client_ip)
        .bind(&event.user_agent)
        .bind(&event.detail)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn recent_events(&self, user_id: &str, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query("SELECT * FROM audit_events WHERE user_id = ? ORDER BY id DESC LIMIT ?")
            .bind(user_id)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter().map(event_from_row).collect::<Result<_, _>>().map_err(store_error)
    }

    async fn purge_expired(&self, now: UnixTime, events_before: UnixTime) -> StoreResult<u64> {
        let families = sqlx::query("DELETE FROM families WHERE token_expires_at <= ?1 OR expires_at <= ?1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        let events = sqlx::query("DELETE FROM audit_events WHERE at < ?")
            .bind(events_before)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(families.rows_affected() + events.rows_affected())
    }
}

#[cfg(test)]
crate::conformance_tests!(sqlite_store_tests, async {
    // A real file per test, in WAL mode; the directory lives as long as the process.
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("temp dir")));
    SqliteStore::open(dir.path().join("reauth.db")).await.expect("open sqlite")
});
