use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::sql_rows::{event_from_row, family_from_row, user_from_row};
use super::{AuditEvent, Family, NewFamily, RevokeReason, StoreError, StoreResult, TokenStore, UnixTime, User};

/// Schema versions, applied in order at start-up and recorded in `reauth_schema`. Append only: an
/// applied migration is never edited.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE families (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    token_expires_at BIGINT NOT NULL CHECK (token_expires_at <= expires_at),
    rotated_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    user_agent TEXT,
    client_ip TEXT,
    revoke_reason TEXT
);
CREATE INDEX families_by_user ON families(user_id, last_used_at DESC);
CREATE INDEX families_by_token_expiry ON families(token_expires_at);
CREATE TABLE audit_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id TEXT,
    session_id TEXT,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL,
    client_ip TEXT,
    user_agent TEXT,
    detail TEXT
);
CREATE INDEX audit_events_by_user ON audit_events(user_id, id DESC);
CREATE INDEX audit_events_by_time ON audit_events(at);
"#];

/// Any value: the advisory lock under which instances starting together migrate one at a time.
const MIGRATION_LOCK: i64 = 0x7265_6175_7468; // "reauth"

const FAMILY_COLUMNS: &str = "id, user_id, generation, created_at, expires_at, token_expires_at, \
     rotated_at, last_used_at, user_agent, client_ip, revoke_reason";

/// A [`TokenStore`] on PostgreSQL, shared by any number of `reauth-server` instances.
///
/// Rotation is one conditional `UPDATE … RETURNING`: under READ COMMITTED a concurrent update of
/// the same row waits for the first to commit and then re-checks the generation against the new
/// row, so exactly one of concurrent rotations wins. The pool replaces broken connections by itself.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to a `postgres://` URL (parameters as sqlx understands them, e.g.
    /// `options[search_path]=reauth` for a schema of its own) and applies pending migrations.
    pub async fn open_url(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url).map_err(StoreError::unavailable)?;
        Self::connect(options).await
    }

    /// Connects with explicit options and applies pending migrations.
    pub async fn connect(options: PgConnectOptions) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // A request waits at most this long for a connection; beyond it the store is unavailable.
            .acquire_timeout(Duration::from_secs(2))
            .connect_with(options)
            .await
            .map_err(StoreError::unavailable)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(StoreError::unavailable)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(MIGRATION_LOCK).execute(&mut *tx).await.map_err(StoreError::unavailable)?;
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS reauth_schema (version INTEGER NOT NULL)")
            .execute(&mut *tx)
            .await
            .map_err(StoreError::unavailable)?;
        let applied: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM reauth_schema")
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::unavailable)?;
        for (version, migration) in MIGRATIONS.iter().enumerate().skip(applied.unwrap_or(0) as usize) {
            sqlx::raw_sql(migration).execute(&mut *tx).await.map_err(StoreError::unavailable)?;
            sqlx::query("INSERT INTO reauth_schema (version) VALUES ($1)")
                .bind(version as i32 + 1)
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
impl TokenStore for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn create_user(&self, user: &User) -> StoreResult<()> {
        sqlx::query("INSERT INTO users (id, username, password_hash, active, created_at) VALUES ($1, $2, $3, $4, $5)")
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
        let row = sqlx::query("SELECT * FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(user_from_row).transpose().map_err(store_error)
    }

    async fn user_by_id(&self, user_id: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(user_from_row).transpose().map_err(store_error)
    }

    async fn set_user_active(&self, user_id: &str, active: bool) -> StoreResult<bool> {
        let result = sqlx::query("UPDATE users SET active = $1 WHERE id = $2")
            .bind(active)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn delete_user(&self, user_id: &str) -> StoreResult<bool> {
        // Families go with the user through ON DELETE CASCADE.
        let result = sqlx::query("DELETE FROM users WHERE id = $1").bind(user_id).execute(&self.pool).await.map_err(store_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn create_family(&self, family: &NewFamily) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO families (id, user_id, generation, created_at, expires_at, token_expires_at, \
             rotated_at, last_used_at, user_agent, client_ip) VALUES ($1, $2, 0, $3, $4, $5, $3, $3, $6, $7)",
        )
        .bind(&family.id)
        .bind(&family.user_id)
        .bind(family.created_at)
        .bind(family.expires_at)
        .bind(family.token_expires_at.min(family.expires_at))
        .bind(&family.user_agent)
        .bind(&family.client_ip)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn family(&self, family_id: &str) -> StoreResult<Option<Family>> {
        let row = sqlx::query(&format!("SELECT {FAMILY_COLUMNS} FROM families WHERE id = $1"))
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
            "UPDATE families SET generation = generation + 1, rotated_at = $1, last_used_at = $1, \
             token_expires_at = LEAST($2, expires_at) \
             WHERE id = $3 AND generation = $4 AND revoke_reason IS NULL \
             AND token_expires_at > $1 AND expires_at > $1 \
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
        let result = sqlx::query("UPDATE families SET revoke_reason = $1 WHERE id = $2 AND revoke_reason IS NULL")
            .bind(reason.as_str())
            .bind(family_id)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn revoke_user_families(&self, user_id: &str, reason: RevokeReason) -> StoreResult<u64> {
        let result = sqlx::query("UPDATE families SET revoke_reason = $1 WHERE user_id = $2 AND revoke_reason IS NULL")
            .bind(reason.as_str())
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected())
    }

    async fn live_families(&self, user_id: &str, now: UnixTime) -> StoreResult<Vec<Family>> {
        let rows = sqlx::query(&format!(
            "SELECT {FAMILY_COLUMNS} FROM families WHERE user_id = $1 AND revoke_reason IS NULL \
             AND token_expires_at > $2 AND expires_at > $2 ORDER BY last_used_at DESC, id"
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
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
        let rows = sqlx::query("SELECT * FROM audit_events WHERE user_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(user_id)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter().map(event_from_row).collect::<Result<_, _>>().map_err(store_error)
    }

    async fn purge_expired(&self, now: UnixTime, events_before: UnixTime) -> StoreResult<u64> {
        // A token never outlives its family (CHECK above), so its end alone decides, on one index.
        let families = sqlx::query("DELETE FROM families WHERE token_expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        let events = sqlx::query("DELETE FROM audit_events WHERE at < $1")
            .bind(events_before)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(families.rows_affected() + events.rows_affected())
    }
}

/// A schema of its own on the test server, so that cases run in parallel on one database.
#[cfg(test)]
async fn store_in_fresh_schema() -> Option<PostgresStore> {
    let url = crate::store::conformance::server_url("REAUTH_TEST_POSTGRES_URL")?;
    let schema = format!("test_{}", crate::tokens::random_id().replace(['-', '_'], "").to_ascii_lowercase());
    let admin = PgConnectOptions::from_str(&url).expect("REAUTH_TEST_POSTGRES_URL");
    let mut connection: sqlx::PgConnection = sqlx::Connection::connect_with(&admin).await.expect("connect to REAUTH_TEST_POSTGRES_URL");
    sqlx::raw_sql(&format!("CREATE SCHEMA {schema}")).execute(&mut connection).await.expect("create schema");
    let options = admin.options([("search_path", schema.as_str())]);
    Some(PostgresStore::connect(options).await.expect("open the test schema"))
}

#[cfg(test)]
crate::conformance_tests!(postgres_store_tests, optional store_in_fresh_schema());
