//! Storage of users, sessions (refresh-token families) and audit events.
//!
//! A backend implements [`TokenStore`]; the rotation rules (grace interval, reuse detection) live in
//! [`crate::AuthService`], so every backend only has to provide one atomic primitive:
//! [`TokenStore::rotate_family`], a compare-and-swap on a family's generation counter that checks
//! the user and records the refresh event in the same step. Clean-up is [`Maintenance`], apart from
//! the request path.
//!
//! A family holds constant state however often it rotates: the refresh token itself is never stored,
//! only the generation it must carry (the token is `family id ‖ generation ‖ MAC`, see
//! [`crate::tokens::refresh`]).

use std::error::Error as StdError;

use async_trait::async_trait;
use serde::Serialize;

mod challenges;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod group_commit;
mod key_store;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
mod time_limit;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

#[cfg(feature = "redis")]
pub use self::redis::RedisStore;
pub use challenges::{Challenge, ChallengeStore};
pub use key_store::{KeyKind, KeyStore, StoredKey};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteStore, Synchronous};
pub use time_limit::TimeLimited;

pub use crate::time::UnixTime;

/// Audit events kept per user (and for failed logins of unknown names, together) besides the age
/// limit: the purge drops the oldest beyond it (Redis trims its streams on every append).
pub const AUDIT_EVENTS_PER_USER: usize = 1000;

/// A new family (session) id for a user: the user's id, a dot, then 128 random bits. The user's id
/// comes first so that a store can keep a session beside its user (Redis: in the same Cluster slot,
/// so a refresh is one script; its `create_family` refuses an id that does not start with the
/// family's user id); nothing else reads it out of the id.
pub fn family_id_for(user_id: &str) -> String {
    format!("{user_id}.{}", crate::tokens::random_id())
}

/// A registered user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Opaque, stable identifier (the `sub` claim).
    pub id: String,
    /// Lower-case login name, unique.
    pub username: String,
    /// PHC string of the argon2id hash.
    pub password_hash: String,
    /// Disabled users cannot log in or refresh.
    pub active: bool,
    /// When the user was created.
    pub created_at: UnixTime,
}

/// What is needed to start a family at login.
#[derive(Clone, Debug)]
pub struct NewFamily {
    /// Random identifier, also the `sid` claim and the session id shown to the user.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Login time.
    pub created_at: UnixTime,
    /// The family's absolute end (login + session max age); no rotation extends it.
    pub expires_at: UnixTime,
    /// End of the first refresh token's life.
    pub token_expires_at: UnixTime,
    /// Device description for the sessions list.
    pub user_agent: Option<String>,
    /// Client address at login.
    pub client_ip: Option<String>,
}

/// A session: one chain of refresh tokens, of which only the latest generation is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Family {
    /// See [`NewFamily::id`].
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// The generation the current refresh token carries; starts at 0 and grows by one per rotation.
    pub generation: u64,
    /// Login time.
    pub created_at: UnixTime,
    /// Absolute end of the family.
    pub expires_at: UnixTime,
    /// End of the current refresh token's life (never after `expires_at`).
    pub token_expires_at: UnixTime,
    /// When the generation last advanced (login time before the first rotation).
    pub rotated_at: UnixTime,
    /// Last login or refresh.
    pub last_used_at: UnixTime,
    /// Device description.
    pub user_agent: Option<String>,
    /// Client address at login.
    pub client_ip: Option<String>,
    /// Set once the family is revoked; a revoked family never comes back.
    pub revoked: Option<RevokeReason>,
}

impl Family {
    /// Whether its current refresh token could still be used at `now`.
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.revoked.is_none() && self.token_expires_at > now && self.expires_at > now
    }
}

crate::wire::wire_names! {
    /// Why a family was revoked; reported to clients as the `reason` of a dead session.
    pub enum RevokeReason {
        /// The user logged out on this device.
        Logout = "logout",
        /// The user logged out everywhere, or revoked this device from another one.
        Revoked = "revoked",
        /// A consumed refresh token was presented again: the family is presumed stolen.
        Reused = "reused",
        /// The user was disabled or deleted.
        Inactive = "inactive",
    }
}

impl RevokeReason {
    /// The reason a store holds; a name this version does not know (written by a newer one) reads
    /// as `Revoked`, the conservative answer.
    pub fn from_stored(name: &str) -> Self {
        Self::parse(name).unwrap_or(Self::Revoked)
    }
}

crate::wire::wire_names! {
    /// The kinds of audit event.
    pub enum AuditKind {
        /// Successful login (password or wallet; cookie or token endpoint).
        Login = "login",
        /// Failed login (bad password or signature, unknown or disabled user).
        LoginFailed = "login_failed",
        /// A refresh token was rotated (or its successor handed out again within the reuse interval).
        Refresh = "refresh",
        /// A consumed refresh token was presented after the reuse interval; the family was revoked.
        ReuseDetected = "reuse_detected",
        /// A session was revoked from the sessions list, or because its user is inactive.
        Revoke = "revoke",
        /// Logout on one device.
        Logout = "logout",
        /// Logout everywhere.
        LogoutAll = "logout_all",
    }
}

/// One security-relevant event, kept for the user's audit view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// What happened.
    #[serde(rename = "type")]
    pub kind: AuditKind,
    /// The user concerned; `None` for a failed login with an unknown name.
    #[serde(skip)]
    pub user_id: Option<String>,
    /// The session concerned, if any.
    pub session_id: Option<String>,
    /// When.
    pub at: UnixTime,
    /// Client address.
    pub client_ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Extra detail, e.g. `reuse_interval` for a successor handed out again.
    pub detail: Option<String>,
}

/// What a [`Revocation`] ends before its time: the access tokens of one session, or of one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokedSubject {
    /// Every access token of this session (`sid`).
    Session(String),
    /// Every access token of this user issued (`iat`) before `issued_before`.
    User {
        /// The `sub`.
        user_id: String,
        /// Tokens issued at or after this second are not affected.
        issued_before: UnixTime,
    },
}

/// A revocation that access tokens must honour until they could no longer be alive anyway: kept in
/// the store so that every instance learns of it ([`TokenStore::revocations_since`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// What is revoked.
    pub subject: RevokedSubject,
    /// When (the order instances poll by).
    pub at: UnixTime,
    /// When no access token it could refuse is alive any more (`at` + access-token lifetime).
    pub expires_at: UnixTime,
}

impl Revocation {
    /// The stored kind and subject.
    pub fn kind_and_subject(&self) -> (&'static str, &str, UnixTime) {
        match &self.subject {
            RevokedSubject::Session(sid) => ("session", sid, 0),
            RevokedSubject::User { user_id, issued_before } => ("user", user_id, *issued_before),
        }
    }

    /// Rebuilds one from [`Self::kind_and_subject`]; `None` for an unknown kind.
    pub fn from_parts(
        kind: &str,
        subject: String,
        issued_before: UnixTime,
        at: UnixTime,
        expires_at: UnixTime,
    ) -> Option<Self> {
        let subject = match kind {
            "session" => RevokedSubject::Session(subject),
            "user" => RevokedSubject::User { user_id: subject, issued_before },
            _ => return None,
        };
        Some(Self { subject, at, expires_at })
    }
}

/// How a store operation fails.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (a username) is taken.
    #[error("already exists")]
    Conflict,
    /// The backend could not answer (connection lost, disk full, timeout). Transient: callers
    /// answer 503 and never treat it as a dead session.
    #[error("token store unavailable: {0}")]
    Unavailable(#[source] Box<dyn StdError + Send + Sync>),
}

impl StoreError {
    /// Wraps a backend error as [`StoreError::Unavailable`].
    pub fn unavailable(error: impl StdError + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(error))
    }
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// One refresh's write: the compare-and-swap of a family's generation, the check of its user, and
/// the `refresh` audit event, applied together or not at all ([`TokenStore::rotate_family`]).
#[derive(Clone, Debug)]
pub struct Rotation {
    /// The family the presented refresh token belongs to.
    pub family_id: String,
    /// The generation the presented token carries.
    pub expected_generation: u64,
    /// The time of the refresh: becomes `rotated_at`, `last_used_at` and the event's time.
    pub now: UnixTime,
    /// The new token's end; the family's own end caps it.
    pub token_expires_at: UnixTime,
    /// Client address, for the event.
    pub client_ip: Option<String>,
    /// Client user agent, for the event.
    pub user_agent: Option<String>,
}

impl Rotation {
    /// The audit event a successful rotation of a family of `user_id` records.
    pub fn event(&self, user_id: &str) -> AuditEvent {
        AuditEvent {
            kind: AuditKind::Refresh,
            user_id: Some(user_id.to_owned()),
            session_id: Some(self.family_id.clone()),
            at: self.now,
            client_ip: self.client_ip.clone(),
            user_agent: self.user_agent.clone(),
            detail: None,
        }
    }
}

/// What a successful [`TokenStore::rotate_family`] returns: the advanced family and its user as
/// read in the same atomic step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotated {
    /// The family after the swap.
    pub family: Family,
    /// Its user, active.
    pub user: User,
}

/// Storage-agnostic persistence for reauth: what the request path of [`crate::AuthService`] needs.
///
/// Every method is atomic on its own; [`rotate_family`](Self::rotate_family) is the one whose
/// atomicity the rotation logic relies on, and must be a real compare-and-swap in the backend (a
/// conditional `UPDATE … RETURNING`, a Lua script), never a read followed by a write.
///
/// Wallet sign-in challenges live in the same backend, through the [`ChallengeStore`] supertrait;
/// the periodic clean-up through [`Maintenance`], which is not on the request path.
///
/// A complete backend, the in-memory one, is [`MemoryStore`]; the conformance suite in
/// `reauth_server::conformance` (feature `conformance`, expanded by `conformance_tests!`) checks a
/// new backend against the same cases.
#[async_trait]
pub trait TokenStore: ChallengeStore + Maintenance + Send + Sync + 'static {
    /// A short name for logs and benchmarks (`memory`, `sqlite`, …).
    fn backend(&self) -> &'static str;

    /// Inserts a user; [`StoreError::Conflict`] when the username is taken.
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    /// Looks a user up by (lower-case) username.
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>>;
    /// Looks a user up by id.
    async fn user_by_id(&self, user_id: &str) -> StoreResult<Option<User>>;
    /// Enables or disables a user; false when there is no such user. Disabling does not revoke
    /// families by itself: [`crate::AuthService::set_user_active`] does both.
    async fn set_user_active(&self, user_id: &str, active: bool) -> StoreResult<bool>;
    /// Deletes a user with all their families; false when there is no such user.
    async fn delete_user(&self, user_id: &str) -> StoreResult<bool>;

    /// Starts a family at generation 0.
    async fn create_family(&self, family: &NewFamily) -> StoreResult<()>;
    /// Reads a family, live or not, while it is still kept.
    async fn family(&self, family_id: &str) -> StoreResult<Option<Family>>;
    /// The refresh as one atomic step. If the family is live at `now`, not behind its user's fence
    /// ([`Self::end_user_sessions`]), its generation equals `expected_generation`, and its user
    /// exists and is active: advance the generation by one, set `rotated_at` and `last_used_at` to
    /// `now`, set `token_expires_at` to `min(token_expires_at, family.expires_at)`, append
    /// [`Rotation::event`], and return the family and the user. Otherwise change nothing and return
    /// `None`. An acknowledged rotation is durable with its event, or neither happened.
    async fn rotate_family(&self, rotation: &Rotation) -> StoreResult<Option<Rotated>>;
    /// Revokes a family unless it is already revoked (the first reason sticks); true if this call
    /// revoked it.
    async fn revoke_family(&self, family_id: &str, reason: RevokeReason) -> StoreResult<bool>;
    /// Logout everywhere as one fence: from this call on, no family of the user created (logged in)
    /// before `valid_after` can rotate, whichever instance created it and however it raced this
    /// call; then every unrevoked family is revoked for the record. Returns how many were revoked.
    ///
    /// The fence is the user's "sessions valid after" time, kept at its latest value. A backend
    /// checks it inside the rotation's compare-and-swap ([`Self::rotate_family`] returns `None`
    /// for a fenced family) or, where the family and the user live on different keys, when a
    /// family is created: one created behind the fence is revoked at once.
    async fn end_user_sessions(&self, user_id: &str, valid_after: UnixTime, reason: RevokeReason) -> StoreResult<u64>;
    /// The user's live families at `now`, most recently used first.
    async fn live_families(&self, user_id: &str, now: UnixTime) -> StoreResult<Vec<Family>>;

    /// Keeps a revocation until its `expires_at` (the purge removes it after).
    async fn record_revocation(&self, revocation: &Revocation) -> StoreResult<()>;
    /// The revocations recorded at or after `since`, in any order (callers apply them idempotently).
    async fn revocations_since(&self, since: UnixTime) -> StoreResult<Vec<Revocation>>;

    /// Appends an audit event.
    async fn record_event(&self, event: &AuditEvent) -> StoreResult<()>;
    /// The user's most recent events, newest first.
    async fn recent_events(&self, user_id: &str, limit: usize) -> StoreResult<Vec<AuditEvent>>;

    /// Where the rotating key set lives, if this backend keeps one (every backend of this crate
    /// does); `None` leaves the server with its configured key alone.
    fn key_store(&self) -> Option<&dyn KeyStore> {
        None
    }
}

/// Clean-up that runs in the background, never on a request: it may take long, and
/// [`TimeLimited`] does not bound it.
#[async_trait]
pub trait Maintenance: Send + Sync {
    /// Removes families whose refresh token can no longer be used at `now` (expired, or revoked and
    /// past their token's expiry), revocations past their `expires_at`, and audit events older
    /// than `events_before` or beyond [`AUDIT_EVENTS_PER_USER`]; returns how many records went.
    async fn purge_expired(&self, now: UnixTime, events_before: UnixTime) -> StoreResult<u64>;
}
