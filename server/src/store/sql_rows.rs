//! Rows of the SQL backends (SQLite, PostgreSQL) read back as records: one mapping for both, as
//! their schemas have the same columns.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{AuditEvent, AuditKind, Family, RevokeReason, User};

/// What a row type must decode for the mappings below.
pub(super) trait RecordRow: Row
where
    for<'r> &'r str: ColumnIndex<Self>,
{
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn optional_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn integer(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn flag(&self, column: &str) -> Result<bool, sqlx::Error>;
}

impl<R> RecordRow for R
where
    R: Row,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
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

pub(super) fn user_from_row<R: RecordRow>(row: &R) -> Result<User, sqlx::Error>
where
    for<'r> &'r str: ColumnIndex<R>,
{
    Ok(User {
        id: row.text("id")?,
        username: row.text("username")?,
        password_hash: row.text("password_hash")?,
        active: row.flag("active")?,
        created_at: row.integer("created_at")?,
    })
}

pub(super) fn family_from_row<R: RecordRow>(row: &R) -> Result<Family, sqlx::Error>
where
    for<'r> &'r str: ColumnIndex<R>,
{
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
        revoked: row.optional_text("revoke_reason")?.as_deref().map(RevokeReason::parse),
    })
}

pub(super) fn event_from_row<R: RecordRow>(row: &R) -> Result<AuditEvent, sqlx::Error>
where
    for<'r> &'r str: ColumnIndex<R>,
{
    let kind = row.text("kind")?;
    Ok(AuditEvent {
        kind: AuditKind::parse(&kind).ok_or_else(|| sqlx::Error::Decode(format!("unknown audit kind {kind:?}").into()))?,
        user_id: row.optional_text("user_id")?,
        session_id: row.optional_text("session_id")?,
        at: row.integer("at")?,
        client_ip: row.optional_text("client_ip")?,
        user_agent: row.optional_text("user_agent")?,
        detail: row.optional_text("detail")?,
    })
}
