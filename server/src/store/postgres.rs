use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::sql::{rotated_from_row, store_error, Dialect, FAMILY_COLUMNS, ROTATED_USER_COLUMNS};
use super::{AuditKind, Rotated, Rotation, StoreError, StoreResult};

/// Schema versions ([`super::sql::migrations`] in this dialect), applied in order at start-up;
/// recorded in `reauth_schema`.
static MIGRATIONS: LazyLock<Vec<String>> = LazyLock::new(|| super::sql::migrations(&POSTGRES));

/// Any value: the advisory lock under which instances starting together migrate one at a time.
const MIGRATION_LOCK: i64 = 0x7265_6175_7468; // "reauth"

/// A [`TokenStore`](super::TokenStore) on PostgreSQL, shared by any number of `reauth-server` instances.
///
/// A refresh is one statement, so one round trip and one commit: a conditional `UPDATE … FROM users
/// … RETURNING` in a `WITH` whose second part inserts the audit event from what the update
/// returned. Under READ COMMITTED a concurrent update of the same row waits for the first to commit
/// and then re-checks the generation against the new row, so exactly one of concurrent rotations
/// wins. The pool replaces broken connections by itself.
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
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::unavailable)?;
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

impl PostgresStore {
    /// Writes need no turn of their own here: PostgreSQL locks rows, not the database.
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        None
    }

    async fn rotate(&self, rotation: &Rotation) -> StoreResult<Option<Rotated>> {
        static STATEMENT: LazyLock<String> = LazyLock::new(|| {
            format!(
                "WITH rotated AS (\
                 UPDATE families SET generation = families.generation + 1, rotated_at = $1, last_used_at = $1, \
                 token_expires_at = LEAST($2, families.expires_at) FROM users u \
                 WHERE families.id = $3 AND families.generation = $4 AND families.revoke_reason IS NULL \
                 AND families.token_expires_at > $1 AND families.expires_at > $1 \
                 AND u.id = families.user_id AND u.active AND families.created_at >= u.sessions_valid_after \
                 RETURNING {family}, {user}), \
                 recorded AS (INSERT INTO audit_events (user_id, session_id, kind, at, client_ip, user_agent) \
                 SELECT user_id, id, $5, $1, $6, $7 FROM rotated) \
                 SELECT * FROM rotated",
                family = qualified_family_columns(),
                user = ROTATED_USER_COLUMNS,
            )
        });
        let row = sqlx::query(&STATEMENT)
            .bind(rotation.now)
            .bind(rotation.token_expires_at)
            .bind(&rotation.family_id)
            .bind(rotation.expected_generation as i64)
            .bind(AuditKind::Refresh.as_str())
            .bind(&rotation.client_ip)
            .bind(&rotation.user_agent)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(rotated_from_row).transpose().map_err(store_error)
    }
}

/// [`FAMILY_COLUMNS`] of the `families` table, which a join with `users` needs spelled out.
fn qualified_family_columns() -> String {
    FAMILY_COLUMNS.split(", ").map(|column| format!("families.{column}")).collect::<Vec<_>>().join(", ")
}

/// PostgreSQL's departures from the shared statements and schema.
const POSTGRES: Dialect = Dialect {
    backend: "postgres",
    parameter_prefix: "$",
    greatest: "GREATEST",
    // A token never outlives its family (CHECK above), so its end alone decides, on one index.
    purge_families: "token_expires_at <= $1",
    integer: "BIGINT",
    active_column: "BOOLEAN NOT NULL DEFAULT TRUE",
    event_id_column: "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    // Lets the purge decide by the token's end alone, on one index.
    token_expiry_check: " CHECK (token_expires_at <= expires_at)",
    families_by_user: "user_id, last_used_at DESC",
    events_by_user: "user_id, id DESC",
};

super::sql::impl_token_store!(PostgresStore, POSTGRES);

/// A schema of its own on the test server, so that cases run in parallel on one database.
#[cfg(test)]
async fn store_in_fresh_schema() -> Option<PostgresStore> {
    let url = crate::store::conformance::server_url("REAUTH_TEST_POSTGRES_URL")?;
    let schema = format!("test_{}", crate::tokens::random_id().replace(['-', '_'], "").to_ascii_lowercase());
    let admin = PgConnectOptions::from_str(&url).expect("REAUTH_TEST_POSTGRES_URL");
    let mut connection: sqlx::PgConnection =
        sqlx::Connection::connect_with(&admin).await.expect("connect to REAUTH_TEST_POSTGRES_URL");
    sqlx::raw_sql(&format!("CREATE SCHEMA {schema}")).execute(&mut connection).await.expect("create schema");
    let options = admin.options([("search_path", schema.as_str())]);
    Some(PostgresStore::connect(options).await.expect("open the test schema"))
}

#[cfg(test)]
crate::conformance_tests!(postgres_store_tests, optional store_in_fresh_schema());
