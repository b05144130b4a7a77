use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row as _};
use tokio::sync::mpsc;

use super::group_commit::{answer, rotate_in_batch, Waiting};
use super::sql::{rotated_from_row, Dialect, FAMILY_COLUMNS, ROTATED_USER_COLUMNS};
use super::{AuditKind, Rotated, Rotation, StoreError, StoreResult};

/// Schema versions ([`super::sql::migrations`] in this dialect), applied in order at start-up;
/// recorded in `reauth_schema`.
static MIGRATIONS: LazyLock<Vec<String>> = LazyLock::new(|| super::sql::migrations(&POSTGRES));

/// Any value: the advisory lock under which instances starting together migrate one at a time.
const MIGRATION_LOCK: i64 = 0x7265_6175_7468; // "reauth"

/// A [`TokenStore`](super::TokenStore) on PostgreSQL, shared by any number of `reauth-server` instances.
///
/// Refreshes are committed in groups: every rotation waiting is applied by one statement, so one
/// round trip and one commit for the group: a conditional `UPDATE … FROM users … RETURNING` in a
/// `WITH` whose second part inserts the audit events from what the update returned. Under READ
/// COMMITTED a concurrent update of the same row (another instance's) waits for the first to commit
/// and then re-checks the generation against the new row, so exactly one of concurrent rotations
/// wins. The pool replaces broken connections by itself.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// To the batcher ([`commit_rotations`]).
    rotations: mpsc::UnboundedSender<Waiting>,
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
        let (rotations, waiting) = mpsc::unbounded_channel();
        let store = Self { pool: pool.clone(), rotations };
        store.migrate().await?;
        tokio::spawn(commit_rotations(pool, waiting));
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
        rotate_in_batch(POSTGRES.backend, rotation, |waiting| self.rotations.send(waiting).is_ok()).await
    }
}

/// Rotations committed together at most.
const BATCH: usize = 128;

/// Group commit: takes every rotation waiting (up to [`BATCH`]), applies them in one statement and
/// so one commit, and answers each after it. With `synchronous_commit` on, every commit waits for
/// its WAL flush (an fsync); one flush per batch instead of one per refresh is what lets refreshes
/// outnumber the pool's connections. Ends when the store (every sender) is dropped.
async fn commit_rotations(pool: PgPool, mut waiting: mpsc::UnboundedReceiver<Waiting>) {
    let mut batch = Vec::with_capacity(BATCH);
    while waiting.recv_many(&mut batch, BATCH).await > 0 {
        let outcome = rotate_batch(&pool, &batch).await;
        answer(POSTGRES.backend, &mut batch, outcome);
    }
}

/// One statement for the whole batch: the rotations as arrays, unnested with their position; the
/// conditional `UPDATE … FROM` advances those whose conditions hold (of several asking for one
/// family, one: a row is updated once) and returns each with its position and user; the `INSERT`
/// writes their events from what the update returned.
async fn rotate_batch(pool: &PgPool, batch: &[Waiting]) -> Result<Vec<Option<Rotated>>, sqlx::Error> {
    static STATEMENT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH asked AS (SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::text[], $6::text[]) \
             WITH ORDINALITY AS a(family_id, generation, now, token_expires_at, client_ip, user_agent, position)), \
             rotated AS (\
             UPDATE families SET generation = families.generation + 1, rotated_at = a.now, last_used_at = a.now, \
             token_expires_at = LEAST(a.token_expires_at, families.expires_at) FROM asked a, users u \
             WHERE families.id = a.family_id AND families.generation = a.generation \
             AND families.revoke_reason IS NULL AND families.token_expires_at > a.now AND families.expires_at > a.now \
             AND u.id = families.user_id AND u.active AND families.created_at >= u.sessions_valid_after \
             RETURNING a.position, a.now AS asked_at, a.client_ip AS asked_ip, a.user_agent AS asked_agent, \
             {family}, {user}), \
             recorded AS (INSERT INTO audit_events (user_id, session_id, kind, at, client_ip, user_agent) \
             SELECT user_id, id, $7, asked_at, asked_ip, asked_agent FROM rotated) \
             SELECT * FROM rotated",
            family = qualified_family_columns(),
            user = ROTATED_USER_COLUMNS,
        )
    });
    let rotations = batch.iter().map(|waiting| &waiting.rotation);
    let rows = sqlx::query(&STATEMENT)
        .bind(rotations.clone().map(|r| r.family_id.clone()).collect::<Vec<_>>())
        .bind(rotations.clone().map(|r| r.expected_generation as i64).collect::<Vec<_>>())
        .bind(rotations.clone().map(|r| r.now).collect::<Vec<_>>())
        .bind(rotations.clone().map(|r| r.token_expires_at).collect::<Vec<_>>())
        .bind(rotations.clone().map(|r| r.client_ip.clone()).collect::<Vec<_>>())
        .bind(rotations.map(|r| r.user_agent.clone()).collect::<Vec<_>>())
        .bind(AuditKind::Refresh.as_str())
        .fetch_all(pool)
        .await?;
    let mut by_position = rows
        .iter()
        .map(|row| Ok((row.try_get::<i64, _>("position")?, rotated_from_row(row)?)))
        .collect::<Result<std::collections::HashMap<_, _>, sqlx::Error>>()?;
    Ok((1..=batch.len() as i64).map(|position| by_position.remove(&position)).collect())
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
