//! What the SQL backends (SQLite, PostgreSQL) share. Their tables have the same columns and their
//! statements differ in a few words, so one `TokenStore` implementation, `impl_token_store!`,
//! serves both; each backend keeps its own connection set-up and migrations.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{AuditEvent, AuditKind, Challenge, Family, KeyKind, RevokeReason, StoreError, StoredKey, User};

pub(super) const FAMILY_COLUMNS: &str = "id, user_id, generation, created_at, expires_at, token_expires_at, \
     rotated_at, last_used_at, user_agent, client_ip, revoke_reason";

/// Appends an audit event, parameters in the order of the columns.
pub(super) const INSERT_EVENT: &str =
    "INSERT INTO audit_events (user_id, session_id, kind, at, client_ip, user_agent, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// A user by id.
pub(super) const USER_BY_ID: &str = "SELECT * FROM users WHERE id = $1";

/// Where a backend's SQL departs from the statements in `impl_token_store!`, which are written
/// for PostgreSQL, and from the schema of [`migrations`].
pub(super) struct Dialect {
    /// What `TokenStore::backend` reports.
    pub(super) backend: &'static str,
    /// What the `$` of a numbered parameter `$N` becomes (SQLite's own numbered form is `?N`).
    pub(super) parameter_prefix: &'static str,
    /// The larger of two values.
    pub(super) greatest: &'static str,
    /// Which families `TokenStore::purge_expired` deletes, the time being `$1`.
    pub(super) purge_families: &'static str,
    /// The schema's 64-bit integer type.
    pub(super) integer: &'static str,
    /// The column type and default of `users.active`.
    pub(super) active_column: &'static str,
    /// The column definition of `audit_events.id`, growing with each event.
    pub(super) event_id_column: &'static str,
    /// Any check appended to `families.token_expires_at`.
    pub(super) token_expiry_check: &'static str,
    /// The columns of index `families_by_user`.
    pub(super) families_by_user: &'static str,
    /// The columns of index `audit_events_by_user`.
    pub(super) events_by_user: &'static str,
}

impl Dialect {
    pub(super) fn rewrite(&self, statement: &str) -> String {
        // No statement here has a `$` other than its parameters'.
        statement.replace('$', self.parameter_prefix)
    }
}

/// Schema versions in `dialect`, applied in order at start-up (each backend records how many ran).
/// Append only: a released migration is never edited, in either dialect.
pub(super) fn migrations(dialect: &Dialect) -> Vec<String> {
    let Dialect {
        integer, active_column, event_id_column, token_expiry_check, families_by_user, events_by_user, ..
    } = dialect;
    vec![
        format!(
            r#"
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    active {active_column},
    created_at {integer} NOT NULL
);
CREATE TABLE families (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    generation {integer} NOT NULL,
    created_at {integer} NOT NULL,
    expires_at {integer} NOT NULL,
    token_expires_at {integer} NOT NULL{token_expiry_check},
    rotated_at {integer} NOT NULL,
    last_used_at {integer} NOT NULL,
    user_agent TEXT,
    client_ip TEXT,
    revoke_reason TEXT
);
CREATE INDEX families_by_user ON families({families_by_user});
CREATE INDEX families_by_token_expiry ON families(token_expires_at);
CREATE TABLE audit_events (
    id {event_id_column},
    user_id TEXT,
    session_id TEXT,
    kind TEXT NOT NULL,
    at {integer} NOT NULL,
    client_ip TEXT,
    user_agent TEXT,
    detail TEXT
);
CREATE INDEX audit_events_by_user ON audit_events({events_by_user});
CREATE INDEX audit_events_by_time ON audit_events(at);
"#
        ),
        KEYS_TABLE.to_owned(),
        // Logout everywhere as one fence (TokenStore::end_user_sessions).
        format!("ALTER TABLE users ADD COLUMN sessions_valid_after {integer} NOT NULL DEFAULT 0;"),
        // Revoked sessions and users, shared by every instance until their access tokens are dead.
        format!(
            "CREATE TABLE revocations (kind TEXT NOT NULL, subject TEXT NOT NULL, issued_before {integer} NOT NULL, \
             at {integer} NOT NULL, expires_at {integer} NOT NULL);
CREATE INDEX revocations_by_time ON revocations(at);"
        ),
        format!(
            r#"
CREATE TABLE wallet_challenges (
    nonce TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    message TEXT NOT NULL,
    expires_at {integer} NOT NULL
);
CREATE INDEX wallet_challenges_by_expiry ON wallet_challenges(expires_at);
"#
        ),
        // A rotation changes token_expires_at and last_used_at on every refresh: with them in no
        // index, it writes no index entry (and PostgreSQL can update the row in place, HOT). The
        // sessions list sorts a user's few families itself; the background purge scans.
        "DROP INDEX families_by_token_expiry;
DROP INDEX families_by_user;
CREATE INDEX families_by_user_id ON families(user_id);"
            .to_owned(),
    ]
}

/// A statement in the expanding backend's `DIALECT`, rewritten on first use only. Every expansion
/// of `impl_token_store!` has statics of its own, so each backend keeps its own text.
macro_rules! statement {
    ($text:expr) => {{
        static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| DIALECT.rewrite(&$text));
        TEXT.as_str()
    }};
}
pub(super) use statement;

/// Implements `TokenStore` for `$store`, a struct whose `pool` is a sqlx pool, in `$dialect`.
///
/// `rotate_family` calls the backend's own inherent `rotate`: PostgreSQL does it in one statement,
/// SQLite through its one writer. Every other write first waits for the backend's inherent
/// `write_turn()` and holds what it returns while it runs: SQLite's writer turn (so that no write
/// here meets the rotation writer at the database's write lock and sleeps in its busy handler),
/// nothing on PostgreSQL, which locks rows. A macro rather than
/// an impl generic over sqlx's `Database`: that would need a bound per bound type and a trait for
/// `rows_affected`, which sqlx 0.8 has only as inherent methods.
macro_rules! impl_token_store {
    ($store:ident, $dialect:expr) => {
        // A block of its own, so that backends need not import what only this code uses.
        const _: () = {
            use async_trait::async_trait;
            use $crate::store::sql::{event_from_row, family_from_row, statement, store_error, user_from_row, FAMILY_COLUMNS};
            use $crate::store::{AuditEvent, Family, NewFamily, RevokeReason, Rotated, Rotation, StoreResult, TokenStore, UnixTime, User};

            const DIALECT: $crate::store::sql::Dialect = $dialect;

            #[async_trait]
            impl TokenStore for $store {
                fn backend(&self) -> &'static str {
                    DIALECT.backend
                }

                async fn create_user(&self, user: &User) -> StoreResult<()> {
                    let _turn = self.write_turn().await;
                    sqlx::query(statement!("INSERT INTO users (id, username, password_hash, active, created_at) VALUES ($1, $2, $3, $4, $5)"))
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
                    let row = sqlx::query(statement!("SELECT * FROM users WHERE username = $1"))
                        .bind(username)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(store_error)?;
                    row.as_ref().map(user_from_row).transpose().map_err(store_error)
                }

                async fn user_by_id(&self, user_id: &str) -> StoreResult<Option<User>> {
                    let row = sqlx::query(statement!($crate::store::sql::USER_BY_ID))
                        .bind(user_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(store_error)?;
                    row.as_ref().map(user_from_row).transpose().map_err(store_error)
                }

                async fn set_user_active(&self, user_id: &str, active: bool) -> StoreResult<bool> {
                    let _turn = self.write_turn().await;
                    let result = sqlx::query(statement!("UPDATE users SET active = $1 WHERE id = $2"))
                        .bind(active)
                        .bind(user_id)
                        .execute(&self.pool)
                        .await
                        .map_err(store_error)?;
                    Ok(result.rows_affected() == 1)
                }

                async fn delete_user(&self, user_id: &str) -> StoreResult<bool> {
                    // Families go with the user through ON DELETE CASCADE.
                    let _turn = self.write_turn().await;
                    let result = sqlx::query(statement!("DELETE FROM users WHERE id = $1"))
                        .bind(user_id)
                        .execute(&self.pool)
                        .await
                        .map_err(store_error)?;
                    Ok(result.rows_affected() == 1)
                }

                async fn create_family(&self, family: &NewFamily) -> StoreResult<()> {
                    let _turn = self.write_turn().await;
                    sqlx::query(statement!(
                        "INSERT INTO families (id, user_id, generation, created_at, expires_at, token_expires_at, \
                         rotated_at, last_used_at, user_agent, client_ip) VALUES ($1, $2, 0, $3, $4, $5, $3, $3, $6, $7)"
                    ))
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
                    let row = sqlx::query(statement!(format!("SELECT {FAMILY_COLUMNS} FROM families WHERE id = $1")))
                        .bind(family_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(store_error)?;
                    row.as_ref().map(family_from_row).transpose().map_err(store_error)
                }

                async fn rotate_family(&self, rotation: &Rotation) -> StoreResult<Option<Rotated>> {
                    // Each backend's own: the one path where SQLite and PostgreSQL differ in shape.
                    self.rotate(rotation).await
                }

                async fn revoke_family(&self, family_id: &str, reason: RevokeReason) -> StoreResult<bool> {
                    let _turn = self.write_turn().await;
                    let result =
                        sqlx::query(statement!("UPDATE families SET revoke_reason = $1 WHERE id = $2 AND revoke_reason IS NULL"))
                            .bind(reason.as_str())
                            .bind(family_id)
                            .execute(&self.pool)
                            .await
                            .map_err(store_error)?;
                    Ok(result.rows_affected() == 1)
                }

                async fn end_user_sessions(&self, user_id: &str, valid_after: UnixTime, reason: RevokeReason) -> StoreResult<u64> {
                    // One transaction: the fence and the revocations commit together. A login
                    // committing after it is caught by the fence in `rotate_family`.
                    let _turn = self.write_turn().await;
                    let mut tx = self.pool.begin().await.map_err(store_error)?;
                    sqlx::query(statement!(format!(
                        "UPDATE users SET sessions_valid_after = {greatest}(sessions_valid_after, $1) WHERE id = $2",
                        greatest = DIALECT.greatest
                    )))
                    .bind(valid_after)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                    let result =
                        sqlx::query(statement!("UPDATE families SET revoke_reason = $1 WHERE user_id = $2 AND revoke_reason IS NULL"))
                            .bind(reason.as_str())
                            .bind(user_id)
                            .execute(&mut *tx)
                            .await
                            .map_err(store_error)?;
                    tx.commit().await.map_err(store_error)?;
                    Ok(result.rows_affected())
                }

                async fn live_families(&self, user_id: &str, now: UnixTime) -> StoreResult<Vec<Family>> {
                    let rows = sqlx::query(statement!(format!(
                        "SELECT {FAMILY_COLUMNS} FROM families WHERE user_id = $1 AND revoke_reason IS NULL \
                         AND token_expires_at > $2 AND expires_at > $2 \
                         AND created_at >= (SELECT sessions_valid_after FROM users WHERE users.id = $1) \
                         ORDER BY last_used_at DESC, id"
                    )))
                    .bind(user_id)
                    .bind(now)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(store_error)?;
                    rows.iter().map(family_from_row).collect::<Result<_, _>>().map_err(store_error)
                }

                async fn record_event(&self, event: &AuditEvent) -> StoreResult<()> {
                    let _turn = self.write_turn().await;
                    sqlx::query(statement!($crate::store::sql::INSERT_EVENT))
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

                async fn record_revocation(&self, revocation: &$crate::store::Revocation) -> StoreResult<()> {
                    let _turn = self.write_turn().await;
                    let (kind, subject, issued_before) = revocation.kind_and_subject();
                    sqlx::query(statement!(
                        "INSERT INTO revocations (kind, subject, issued_before, at, expires_at) VALUES ($1, $2, $3, $4, $5)"
                    ))
                    .bind(kind)
                    .bind(subject)
                    .bind(issued_before)
                    .bind(revocation.at)
                    .bind(revocation.expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(store_error)?;
                    Ok(())
                }

                async fn revocations_since(&self, since: UnixTime) -> StoreResult<Vec<$crate::store::Revocation>> {
                    let rows = sqlx::query(statement!("SELECT kind, subject, issued_before, at, expires_at FROM revocations WHERE at >= $1"))
                        .bind(since)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(store_error)?;
                    rows.iter().map($crate::store::sql::revocation_from_row).collect::<Result<Vec<_>, _>>().map(|all| all.into_iter().flatten().collect()).map_err(store_error)
                }

                async fn recent_events(&self, user_id: &str, limit: usize) -> StoreResult<Vec<AuditEvent>> {
                    let rows = sqlx::query(statement!("SELECT * FROM audit_events WHERE user_id = $1 ORDER BY id DESC LIMIT $2"))
                        .bind(user_id)
                        .bind(limit as i64)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(store_error)?;
                    rows.iter().map(event_from_row).collect::<Result<_, _>>().map_err(store_error)
                }

                fn key_store(&self) -> Option<&dyn $crate::store::KeyStore> {
                    Some(self)
                }
            }

            #[async_trait]
            impl $crate::store::Maintenance for $store {
                async fn purge_expired(&self, now: UnixTime, events_before: UnixTime) -> StoreResult<u64> {
                    // A write turn per statement, not for the whole purge: rotations wait for
                    // one statement at most.
                    let families = {
                        let _turn = self.write_turn().await;
                        sqlx::query(statement!(format!("DELETE FROM families WHERE {}", DIALECT.purge_families)))
                            .bind(now)
                            .execute(&self.pool)
                            .await
                            .map_err(store_error)?
                    };
                    let events = {
                        let _turn = self.write_turn().await;
                        sqlx::query(statement!("DELETE FROM audit_events WHERE at < $1"))
                            .bind(events_before)
                            .execute(&self.pool)
                            .await
                            .map_err(store_error)?
                    };
                    // Besides age, a cap per user, as Redis caps its streams: a user looping
                    // refreshes within the retention period cannot grow the table without bound.
                    let capped = {
                        let _turn = self.write_turn().await;
                        sqlx::query(statement!(format!(
                            "DELETE FROM audit_events WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER \
                             (PARTITION BY user_id ORDER BY id DESC) AS newer FROM audit_events) ranked WHERE newer > {})",
                            $crate::store::AUDIT_EVENTS_PER_USER
                        )))
                        .execute(&self.pool)
                        .await
                        .map_err(store_error)?
                    };
                    let revocations = {
                        let _turn = self.write_turn().await;
                        sqlx::query(statement!("DELETE FROM revocations WHERE expires_at <= $1"))
                            .bind(now)
                            .execute(&self.pool)
                            .await
                            .map_err(store_error)?
                    };
                    Ok(families.rows_affected() + events.rows_affected() + capped.rows_affected() + revocations.rows_affected())
                }
            }

            #[async_trait]
            impl $crate::store::KeyStore for $store {
                async fn add_key(&self, key: &$crate::store::StoredKey) -> StoreResult<()> {
                    let _turn = self.write_turn().await;
                    sqlx::query(statement!("INSERT INTO reauth_keys (root, id, kind, created_at, active_at, sealed) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (root, id) DO NOTHING"))
                        .bind(&key.root)
                        .bind(&key.id)
                        .bind(key.kind.as_str())
                        .bind(key.created_at)
                        .bind(key.active_at)
                        .bind($crate::store::sql::encode_sealed(&key.sealed))
                        .execute(&self.pool)
                        .await
                        .map_err(store_error)?;
                    Ok(())
                }

                async fn keys_sealed_by(&self, root: &str) -> StoreResult<Vec<$crate::store::StoredKey>> {
                    let rows = sqlx::query(statement!("SELECT * FROM reauth_keys WHERE root = $1"))
                        .bind(root)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(store_error)?;
                    rows.iter().map(|row| $crate::store::sql::stored_key_from_row(row).map_err(store_error)).collect()
                }
            }

            $crate::store::sql::impl_challenge_store!($store);
        };
    };
}
pub(super) use impl_token_store;

/// Implements `ChallengeStore` for `$store` in the `DIALECT` of the enclosing `impl_token_store!`.
/// Taking a challenge is one `DELETE … RETURNING`, so of concurrent takes of one nonce only the
/// one that deleted the row gets it.
macro_rules! impl_challenge_store {
    ($store:ident) => {
        #[async_trait]
        impl $crate::store::ChallengeStore for $store {
            async fn put_challenge(&self, challenge: &$crate::store::Challenge, now: UnixTime) -> StoreResult<()> {
                let _turn = self.write_turn().await;
                // Indexed on expires_at: cheap when, as usual, there is little or nothing to delete.
                sqlx::query(statement!("DELETE FROM wallet_challenges WHERE expires_at <= $1"))
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(store_error)?;
                sqlx::query(statement!(
                    "INSERT INTO wallet_challenges (nonce, account, message, expires_at) VALUES ($1, $2, $3, $4)"
                ))
                .bind(&challenge.nonce)
                .bind(&challenge.account)
                .bind(&challenge.message)
                .bind(challenge.expires_at)
                .execute(&self.pool)
                .await
                .map_err(store_error)?;
                Ok(())
            }

            async fn take_challenge(
                &self,
                nonce: &str,
                now: UnixTime,
            ) -> StoreResult<Option<$crate::store::Challenge>> {
                let _turn = self.write_turn().await;
                let row = sqlx::query(statement!(
                    "DELETE FROM wallet_challenges WHERE nonce = $1 RETURNING account, message, expires_at"
                ))
                .bind(nonce)
                .fetch_optional(&self.pool)
                .await
                .map_err(store_error)?;
                let Some(row) = row else { return Ok(None) };
                let challenge = $crate::store::sql::challenge_from_row(nonce, &row).map_err(store_error)?;
                Ok(Some(challenge).filter(|challenge| challenge.expires_at > now))
            }
        }
    };
}
pub(super) use impl_challenge_store;

pub(super) fn store_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::unavailable(error),
    }
}

/// What a row type must decode for the mappings below: a sqlx row of either backend, or a row
/// of SQLite's writer connection (rusqlite), so that each record is read by one piece of code.
pub(super) trait RecordRow {
    /// The driver's error.
    type Error;
    fn text(&self, column: &str) -> Result<String, Self::Error>;
    fn optional_text(&self, column: &str) -> Result<Option<String>, Self::Error>;
    fn integer(&self, column: &str) -> Result<i64, Self::Error>;
    fn flag(&self, column: &str) -> Result<bool, Self::Error>;
}

impl<R> RecordRow for R
where
    R: Row,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    type Error = sqlx::Error;

    fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        self.try_get(column)
    }

    fn optional_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(column)
    }

    fn integer(&self, column: &str) -> Result<i64, sqlx::Error> {
        self.try_get(column)
    }

    fn flag(&self, column: &str) -> Result<bool, sqlx::Error> {
        self.try_get(column)
    }
}

pub(super) fn user_from_row<R: RecordRow>(row: &R) -> Result<User, R::Error> {
    Ok(User {
        id: row.text("id")?,
        username: row.text("username")?,
        password_hash: row.text("password_hash")?,
        active: row.flag("active")?,
        created_at: row.integer("created_at")?,
    })
}

pub(super) fn family_from_row<R: RecordRow>(row: &R) -> Result<Family, R::Error> {
    Ok(Family {
        id: row.text("id")?,
        user_id: row.text("user_id")?,
        generation: row.integer("generation")? as u64,
        created_at: row.integer("created_at")?,
        expires_at: row.integer("expires_at")?,
        token_expires_at: row.integer("token_expires_at")?,
        rotated_at: row.integer("rotated_at")?,
        last_used_at: row.integer("last_used_at")?,
        user_agent: row.optional_text("user_agent")?,
        client_ip: row.optional_text("client_ip")?,
        revoked: row.optional_text("revoke_reason")?.as_deref().map(RevokeReason::from_stored),
    })
}

/// The columns a rotation returns besides [`FAMILY_COLUMNS`]: its user's, under names of their own.
pub(super) const ROTATED_USER_COLUMNS: &str =
    "u.username AS user_username, u.password_hash AS user_password_hash, u.active AS user_active, \
     u.created_at AS user_created_at";

/// A family row joined with [`ROTATED_USER_COLUMNS`].
pub(super) fn rotated_from_row<R: RecordRow>(row: &R) -> Result<super::Rotated, R::Error> {
    let family = family_from_row(row)?;
    let user = User {
        id: family.user_id.clone(),
        username: row.text("user_username")?,
        password_hash: row.text("user_password_hash")?,
        active: row.flag("user_active")?,
        created_at: row.integer("user_created_at")?,
    };
    Ok(super::Rotated { family, user })
}

/// A revocation row; `None` for a kind this version does not know (written by a newer one).
pub(super) fn revocation_from_row<R: RecordRow<Error = sqlx::Error>>(
    row: &R,
) -> Result<Option<super::Revocation>, sqlx::Error> {
    Ok(super::Revocation::from_parts(
        &row.text("kind")?,
        row.text("subject")?,
        row.integer("issued_before")?,
        row.integer("at")?,
        row.integer("expires_at")?,
    ))
}

pub(super) fn event_from_row<R: RecordRow<Error = sqlx::Error>>(row: &R) -> Result<AuditEvent, sqlx::Error> {
    let kind = row.text("kind")?;
    Ok(AuditEvent {
        kind: AuditKind::parse(&kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown audit kind {kind:?}").into()))?,
        user_id: row.optional_text("user_id")?,
        session_id: row.optional_text("session_id")?,
        at: row.integer("at")?,
        client_ip: row.optional_text("client_ip")?,
        user_agent: row.optional_text("user_agent")?,
        detail: row.optional_text("detail")?,
    })
}

/// The table of the key set, as a migration of each SQL backend creates it (sealed keys
/// are base64 text, so both backends read them with the same code).
pub(super) const KEYS_TABLE: &str = "CREATE TABLE reauth_keys (
    root TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    active_at BIGINT NOT NULL,
    sealed TEXT NOT NULL,
    PRIMARY KEY (root, id)
)";

pub(super) fn encode_sealed(sealed: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(sealed)
}

pub(super) fn stored_key_from_row<R: RecordRow<Error = sqlx::Error>>(row: &R) -> Result<StoredKey, sqlx::Error> {
    use base64::Engine as _;
    let kind = row.text("kind")?;
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(row.text("sealed")?)
        .map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
    Ok(StoredKey {
        id: row.text("id")?,
        root: row.text("root")?,
        kind: KeyKind::parse(&kind).ok_or_else(|| sqlx::Error::Decode(format!("unknown key kind {kind:?}").into()))?,
        created_at: row.integer("created_at")?,
        active_at: row.integer("active_at")?,
        sealed,
    })
}

pub(super) fn challenge_from_row<R: RecordRow<Error = sqlx::Error>>(
    nonce: &str,
    row: &R,
) -> Result<Challenge, sqlx::Error> {
    Ok(Challenge {
        nonce: nonce.to_owned(),
        account: row.text("account")?,
        message: row.text("message")?,
        expires_at: row.integer("expires_at")?,
    })
}
