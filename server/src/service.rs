//! The storage-agnostic core: login, rotation with reuse detection, logout, sessions, audit.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;
use serde::Serialize;

use crate::config::Settings;
use crate::hashing::{HashPool, BUSY_RETRY_AFTER_SECS};
use crate::password::{self, check_password, check_username, normalize_username};
use crate::rate_limit::{Limit, Throttle, ThrottleKey, Throttled};
use crate::revocation::{RevocationList, POLL_EVERY, POLL_OVERLAP_SECS};
use crate::store::{
    family_id_for, AuditEvent, AuditKind, Family, KeyKind, NewFamily, Revocation, RevokeReason, RevokedSubject,
    Rotated, Rotation, StoreError, TokenStore, UnixTime, User,
};
use crate::tokens::{
    random_id, AccessClaims, AccessTokenError, AccessTokens, KeyDescription, KeySet, KeySetError, Keys, RefreshToken,
    RefreshTokenError,
};

mod user_views;
mod wallet;
use user_views::UserViews;
pub use wallet::WalletChallenge;

pub use crate::time::unix_now;

/// Where a request came from, for audit events and throttling.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// Client address.
    pub ip: Option<String>,
    /// `User-Agent`, truncated.
    pub user_agent: Option<String>,
}

crate::wire::wire_names! {
    /// Why a refresh token no longer works: the `reason` clients receive.
    pub enum DeadReason {
        /// No refresh token was presented.
        Missing = "missing",
        /// Not a token of ours (malformed, forged, another deployment's).
        Invalid = "invalid",
        /// Past its own or its session's lifetime, or no longer known.
        Expired = "expired",
        /// Logged out or revoked.
        Revoked = "revoked",
        /// Presented again after rotation: the whole session was revoked.
        Reused = "reused",
        /// The user is disabled or deleted.
        Inactive = "inactive",
    }
}

impl From<RevokeReason> for DeadReason {
    fn from(reason: RevokeReason) -> Self {
        match reason {
            RevokeReason::Reused => Self::Reused,
            RevokeReason::Inactive => Self::Inactive,
            RevokeReason::Logout | RevokeReason::Revoked => Self::Revoked,
        }
    }
}

/// How an operation of the service fails; the HTTP layer maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong username or password (or a disabled user): deliberately not told apart.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many attempts (failed logins, registrations) from this client or for this account.
    #[error("too many attempts; retry in {retry_after_secs}s")]
    RateLimited {
        /// Seconds until the window ends.
        retry_after_secs: i64,
    },
    /// Every password-hashing worker is busy and the queue is full: retry shortly.
    #[error("the server is busy; retry in {retry_after_secs}s")]
    Busy {
        /// Seconds to wait.
        retry_after_secs: i64,
    },
    /// The refresh token cannot be used any more; the client must log in.
    #[error("session ended: {}", .0.as_str())]
    SessionEnded(DeadReason),
    /// Registration input that breaks a rule.
    #[error("{0}")]
    InvalidInput(String),
    /// The username is taken.
    #[error("username already taken")]
    UsernameTaken,
    /// Registration is switched off.
    #[error("registration is disabled")]
    RegistrationClosed,
    /// No such session or user (or not the caller's).
    #[error("not found")]
    NotFound,
    /// The store failed: transient, never a reason to end a session.
    #[error(transparent)]
    Unavailable(#[from] StoreError),
}

/// A user as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserView {
    /// Stable id.
    pub id: String,
    /// Login name.
    pub username: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self { id: user.id.clone(), username: user.username.clone() }
    }
}

/// The tokens handed out at login and at each refresh.
#[derive(Clone, Debug)]
pub struct Issued {
    /// Signed JWT.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// Opaque refresh token (cookie value or `refresh_token` field).
    pub refresh_token: String,
    /// Seconds the refresh token remains usable (cookie `Max-Age`), capped by the session's end.
    pub refresh_expires_in: i64,
    /// Whom the tokens are for.
    pub user: UserView,
    /// The session (family) id.
    pub session_id: String,
}

/// A live session as its owner sees it.
#[derive(Clone, Debug, Serialize)]
pub struct SessionView {
    /// Session id (the `sid` claim).
    pub id: String,
    /// Login time.
    pub created_at: UnixTime,
    /// Last login or refresh.
    pub last_used_at: UnixTime,
    /// When the session ends at the latest.
    pub expires_at: UnixTime,
    /// Device description.
    pub user_agent: Option<String>,
    /// Address at login.
    pub client_ip: Option<String>,
    /// Whether it is the session of the access token asking.
    pub current: bool,
}

crate::wire::wire_names! {
    /// How a user proved who they are; the `login` audit event's detail names it.
    pub enum SignInMethod {
        /// Username and password.
        Password = "password",
        /// A Stellar wallet's signature of a server challenge (SEP-53).
        Wallet = "wallet",
    }
}

/// What a [`Credential`]'s check concluded.
pub(crate) enum Proof {
    /// The evidence holds for this user (whether the user is active is checked after, for all methods).
    Holds(User),
    /// It does not. `user` is the user it named, if known; `detail` goes to the `login_failed` event.
    Fails { user: Option<User>, detail: &'static str },
}

/// One way for a user to prove who they are. [`AuthService::sign_in`] throttles the attempt, asks the
/// credential for its [`Proof`], and then, the same for every method, refuses inactive users,
/// records the outcome and starts the session.
#[async_trait]
pub(crate) trait Credential: Send + Sync {
    /// Named in the audit log.
    fn method(&self) -> SignInMethod;
    /// What attempts are counted against besides the client address: the user name the evidence
    /// claims (normalised username, a wallet user's `stellar:G…` name).
    fn subject(&self) -> &str;
    /// Checks the evidence. Errors are for faults and malformed input, not for wrong evidence.
    async fn check(&self, service: &AuthService) -> Result<Proof, AuthError>;
}

/// Username and password, checked against the argon2id hash in constant time whether or not the
/// user exists.
struct PasswordCredential<'a> {
    username: String,
    password: &'a str,
}

#[async_trait]
impl Credential for PasswordCredential<'_> {
    fn method(&self) -> SignInMethod {
        SignInMethod::Password
    }

    fn subject(&self) -> &str {
        &self.username
    }

    async fn check(&self, service: &AuthService) -> Result<Proof, AuthError> {
        let user = if self.password.len() > password::MAX_PASSWORD_LEN {
            None
        } else {
            service.inner.store.user_by_name(&self.username).await?
        };
        let hash = match &user {
            Some(user) => user.password_hash.clone(),
            None => service.dummy_hash().await?,
        };
        let hashing = &service.inner.hashing;
        let password_ok = hashing.verify(self.password.to_owned(), hash).await.map_err(busy)? && user.is_some();
        Ok(match user {
            Some(user) if password_ok => Proof::Holds(user),
            None => Proof::Fails { user: None, detail: "unknown_user" },
            user => Proof::Fails { user, detail: "bad_password" },
        })
    }
}

/// The reauth core. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct AuthService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn TokenStore>,
    /// The configured key: root of the key set, and the key the stored keys are sealed under.
    root: Keys,
    access: AccessTokens,
    settings: Settings,
    throttle: Throttle,
    /// The bound on argon2 work shared by login, registration and the token endpoint.
    hashing: HashPool,
    /// Revoked sessions and users whose access tokens may still be alive.
    revocations: Arc<RevocationList>,
    /// What protected routes show of a user, without a store read.
    user_views: UserViews,
    /// The origin of the address the server listens on, the public origin when none is configured.
    listening_origin: OnceLock<String>,
    /// A real argon2id hash, verified against for unknown usernames so they take as long as known ones.
    dummy_hash: OnceLock<String>,
    /// When an unknown kid last made this instance reread the key set.
    last_reread: AtomicI64,
    /// Held from reading the key set to installing it, so that a reread which read the store before
    /// a rotation cannot install its older set after the rotation's own reread.
    reloading: tokio::sync::Mutex<()>,
}

impl AuthService {
    /// A service over `store`, signing with `keys` (the configured key) until
    /// [`reload_keys`](Self::reload_keys) reads the rotated key set from the store.
    pub fn new(store: Arc<dyn TokenStore>, keys: Keys, settings: Settings) -> Self {
        let inner = Arc::new_cyclic(|inner: &Weak<Inner>| {
            let inner = inner.clone();
            // A token of a key another instance put in force since this one last read the set:
            // reread it now rather than at the next interval, so the client's retry succeeds.
            let reread = Arc::new(move || {
                if let Some(inner) = inner.upgrade() {
                    AuthService { inner }.reread_keys_soon();
                }
            });
            let access =
                AccessTokens::new(keys.clone(), &settings.issuer, &settings.audience, settings.access_ttl_secs)
                    .with_leeway(settings.clock_leeway_secs)
                    .on_unknown_kid(reread);
            let throttle = Throttle::new(settings.login_limits.enabled);
            Inner {
                store,
                root: keys,
                access,
                settings,
                throttle,
                hashing: HashPool::per_core(),
                revocations: Arc::new(RevocationList::new()),
                user_views: UserViews::default(),
                listening_origin: OnceLock::new(),
                dummy_hash: OnceLock::new(),
                last_reread: AtomicI64::new(UnixTime::MIN),
                reloading: tokio::sync::Mutex::new(()),
            }
        });
        Self { inner }
    }

    /// Rereads the key set in the background, at most once a second however many unknown kids
    /// arrive (a forger cannot make the server hammer the store).
    fn reread_keys_soon(&self) {
        let now = unix_now();
        let last = self.inner.last_reread.load(Ordering::Relaxed);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if self.inner.store.key_store().is_none()
            || now <= last
            || self.inner.last_reread.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        let service = self.clone();
        runtime.spawn(async move {
            if let Err(error) = service.reload_keys().await {
                tracing::warn!(%error, "rereading the key set for an unknown kid failed");
            }
        });
    }

    /// Reads the key set from the store and puts it in force (at start-up, then every
    /// `REAUTH_KEY_REFRESH_INTERVAL`, see [`crate::server::spawn_key_refresh`]). On an error the
    /// keys in force stay as they were.
    pub async fn reload_keys(&self) -> Result<(), KeySetError> {
        let Some(key_store) = self.inner.store.key_store() else { return Ok(()) };
        let _one_at_a_time = self.inner.reloading.lock().await;
        let stored = key_store.keys_sealed_by(self.inner.root.kid()).await?;
        let set = KeySet::open(&self.inner.root, &stored)?;
        let now = unix_now();
        let (before, after) = (self.inner.access.current_kid(now), set.signing_at(now).kid.clone());
        if before != after {
            tracing::info!(kid = %after, previous = %before, "signing with a new key");
        }
        self.inner.access.install(set, now);
        Ok(())
    }

    /// Adds a key of `kind` to the stored set that starts signing `activate_in_secs` from now, and
    /// returns its id. Every instance reading the store (this one at once) publishes a new signing
    /// key immediately, so verifiers know it before the first token it signs.
    pub async fn rotate_key(&self, kind: KeyKind, activate_in_secs: i64) -> Result<String, KeySetError> {
        let key_store = self.inner.store.key_store().ok_or(KeySetError::Unsupported(self.inner.store.backend()))?;
        // Refuses to extend a set this key file cannot open.
        self.reload_keys().await?;
        let now = unix_now();
        let key = KeySet::seal_new(&self.inner.root, kind, now, now.saturating_add(activate_in_secs.max(0)));
        key_store.add_key(&key).await?;
        self.reload_keys().await?;
        tracing::info!(kind = kind.as_str(), id = %key.id, active_at = key.active_at, "key added");
        Ok(key.id)
    }

    /// Every key of the set in force with its state at `now` (`keys list`).
    pub fn describe_keys(&self, now: UnixTime) -> Vec<KeyDescription> {
        let access = &self.inner.access;
        let published_for = access.lifetime_secs().saturating_add(access.verifier().leeway_secs());
        access.key_set().describe(now, published_for, self.inner.settings.refresh_ttl_secs)
    }

    /// Authenticates a presented refresh token with the MAC secret it names, if still in force. A
    /// secret this instance does not know yet may have been added by `keys rotate` since it last
    /// read the key set: it reads the set again before refusing, so a rotation signs no one out. A
    /// store failure while doing so is a fault (503), never a refusal.
    async fn decode_refresh_token(
        &self,
        presented: &str,
        now: UnixTime,
    ) -> Result<Result<RefreshToken, RefreshTokenError>, StoreError> {
        let decode = || {
            let set = self.inner.access.key_set();
            RefreshToken::decode(presented, |id| set.refresh_secret(id, now, self.inner.settings.refresh_ttl_secs))
        };
        let decoded = decode();
        if decoded != Err(RefreshTokenError::UnknownSecret) || self.inner.store.key_store().is_none() {
            return Ok(decoded);
        }
        match self.reload_keys().await {
            Ok(()) => Ok(decode()),
            Err(KeySetError::Store(error)) => Err(error),
            Err(error) => {
                tracing::error!(%error, "rereading the key set failed");
                Ok(decoded)
            }
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The origins at which browsers reach this server: `REAUTH_PUBLIC_ORIGIN`, or, when that is
    /// unset, the origin of the listening address (see [`Self::set_listening_address`]).
    pub fn public_origins(&self) -> Vec<String> {
        if self.inner.settings.public_origins.is_empty() {
            self.inner.listening_origin.get().cloned().into_iter().collect()
        } else {
            self.inner.settings.public_origins.clone()
        }
    }

    /// The canonical public origin (the first of [`Self::public_origins`]), if known.
    pub fn public_origin(&self) -> Option<String> {
        self.public_origins().into_iter().next()
    }

    /// Records the bound address, whose `http://` origin stands in for the public origin when
    /// `REAUTH_PUBLIC_ORIGIN` is unset (local development). Only the first call counts.
    pub fn set_listening_address(&self, addr: std::net::SocketAddr) {
        if self.inner.listening_origin.set(format!("http://{addr}")).is_ok()
            && self.inner.settings.public_origins.is_empty()
        {
            tracing::warn!(
                origin = %format!("http://{addr}"),
                "REAUTH_PUBLIC_ORIGIN is unset: taking the listening address as the public origin; set it in production"
            );
        }
    }

    /// The attempt counters shared by every expensive, guessable check (password logins,
    /// registrations, wallet sign-ins): reserve before checking, settle after.
    pub fn throttle(&self) -> &Throttle {
        &self.inner.throttle
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.inner.store
    }

    /// The revocations access tokens are checked against (see [`crate::revocation`]).
    pub fn revocations(&self) -> &Arc<RevocationList> {
        &self.inner.revocations
    }

    /// Keeps [`Self::revocations`] in step with revocations made by other instances sharing the
    /// store, polling every [`POLL_EVERY`]; runs until dropped. [`crate::server::RunningServer`]
    /// spawns it; an application serving [`crate::router`] itself spawns it too.
    pub async fn follow_revocations(self) {
        let mut since = unix_now() - self.inner.settings.access_ttl_secs - POLL_OVERLAP_SECS;
        let mut interval = tokio::time::interval(POLL_EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let now = unix_now();
            match self.inner.store.revocations_since(since).await {
                Ok(revocations) => {
                    for revocation in &revocations {
                        self.apply_revocation(revocation, now);
                    }
                    self.inner.revocations.prune(now);
                    since = now - POLL_OVERLAP_SECS;
                }
                Err(error) => tracing::warn!(%error, "cannot read revocations from the store; will retry"),
            }
        }
    }

    /// Refuses the access tokens of `subject` from now on: at once on this instance, and on the
    /// others at their next poll. Kept as long as such a token could be alive.
    async fn revoke_access(&self, subject: RevokedSubject) -> Result<(), StoreError> {
        let now = unix_now();
        let revocation = Revocation { subject, at: now, expires_at: now + self.inner.settings.access_ttl_secs + 1 };
        self.apply_revocation(&revocation, now);
        self.inner.store.record_revocation(&revocation).await
    }

    /// A revoked user (disabled, deleted, logged out everywhere) is also dropped from the user views,
    /// so the next protected request that gets through reads the user afresh.
    fn apply_revocation(&self, revocation: &Revocation, now: UnixTime) {
        self.inner.revocations.apply(revocation, now);
        if let RevokedSubject::User { user_id, .. } = &revocation.subject {
            self.inner.user_views.forget(user_id);
        }
    }

    /// Access-token issuing and verification.
    pub fn access_tokens(&self) -> &AccessTokens {
        &self.inner.access
    }

    /// Verifies an access token (signature, header, issuer, audience, expiry).
    pub fn verify_access_token(&self, token: &str) -> Result<AccessClaims, AccessTokenError> {
        self.inner.access.verify(token, unix_now())
    }

    /// Creates a user after checking the username and password rules. Every attempt that gets as
    /// far as hashing counts against the client address's registration limit.
    #[tracing::instrument(skip(self, password, client), fields(client_ip = client.ip.as_deref()))]
    pub async fn register(&self, username: &str, password: &str, client: &ClientInfo) -> Result<UserView, AuthError> {
        if !self.inner.settings.allow_registration {
            return Err(AuthError::RegistrationClosed);
        }
        let limits = &self.inner.settings.login_limits;
        let limit = Limit { max: limits.registrations_per_address, window_secs: limits.window_secs };
        let normalized = normalize_username(username);
        // Input errors cost nothing to answer, so they are not counted.
        check_username(&normalized).map_err(AuthError::InvalidInput)?;
        check_password(password, &normalized).map_err(AuthError::InvalidInput)?;
        let key = ThrottleKey::address("register-addr", client.ip.as_deref(), limit);
        let attempt = self.inner.throttle.reserve(vec![key], unix_now()).map_err(rate_limited)?;
        let result = self.create_user(username, password).await;
        match &result {
            Err(AuthError::Unavailable(_) | AuthError::Busy { .. }) => attempt.refund(),
            _ => attempt.failed(),
        }
        result
    }

    /// Creates a user regardless of `allow_registration` (the `user add` command).
    pub async fn create_user(&self, username: &str, password: &str) -> Result<UserView, AuthError> {
        let username = normalize_username(username);
        check_username(&username).map_err(AuthError::InvalidInput)?;
        check_password(password, &username).map_err(AuthError::InvalidInput)?;
        let password_hash = self.inner.hashing.hash(password.to_owned()).await.map_err(busy)?;
        let user = User { id: random_id(), username, password_hash, active: true, created_at: unix_now() };
        match self.inner.store.create_user(&user).await {
            Ok(()) => Ok(UserView::from(&user)),
            Err(StoreError::Conflict) => Err(AuthError::UsernameTaken),
            Err(error) => Err(error.into()),
        }
    }

    /// Checks the password and starts a new session.
    #[tracing::instrument(skip(self, password, client), fields(client_ip = client.ip.as_deref()))]
    pub async fn login(&self, username: &str, password: &str, client: &ClientInfo) -> Result<Issued, AuthError> {
        let credential = PasswordCredential { username: normalize_username(username), password };
        self.sign_in(&credential, client).await
    }

    /// The path every sign-in method shares: throttle, check the credential, refuse inactive users,
    /// audit, start the session.
    pub(crate) async fn sign_in(&self, credential: &dyn Credential, client: &ClientInfo) -> Result<Issued, AuthError> {
        let (subject, method) = (credential.subject(), credential.method().as_str());
        let now = unix_now();
        // Reserved before the check, so a burst cannot get more guesses through than the limit.
        let attempt =
            self.inner.throttle.reserve(self.login_throttle_keys(subject, client), now).map_err(|throttled| {
                tracing::warn!(subject, method, "login throttled");
                rate_limited(throttled)
            })?;
        let proof = match credential.check(self).await {
            Ok(proof) => proof,
            // No verdict (store down, hashing pool busy, malformed input): the attempt is not counted.
            Err(error) => {
                attempt.refund();
                return Err(error);
            }
        };
        let user = match proof {
            Proof::Holds(user) if user.active => {
                attempt.succeeded();
                user
            }
            proof => {
                attempt.failed();
                let (user, detail) = match proof {
                    Proof::Holds(user) => (Some(user), "inactive"),
                    Proof::Fails { user, detail } => (user, detail),
                };
                let user_id = user.map(|user| user.id);
                self.record(AuditKind::LoginFailed, user_id, None, client, Some(detail)).await?;
                return Err(AuthError::InvalidCredentials);
            }
        };
        self.start_session(&user, credential.method(), client, now).await
    }

    /// What a sign-in attempt is charged to: the claimed user from this client address (cleared by
    /// a success), and the address whatever the user.
    fn login_throttle_keys(&self, subject: &str, client: &ClientInfo) -> Vec<ThrottleKey> {
        let limits = &self.inner.settings.login_limits;
        let window_secs = limits.window_secs;
        vec![
            ThrottleKey::subject_at_address(
                "login",
                subject,
                client.ip.as_deref(),
                Limit { max: limits.per_username, window_secs },
            )
            .reset_on_success(),
            ThrottleKey::address("login-addr", client.ip.as_deref(), Limit { max: limits.per_address, window_secs }),
        ]
    }

    /// Starts a session (family) for a user whose identity was just proved, and audits the login
    /// with the method that proved it.
    async fn start_session(
        &self,
        user: &User,
        method: SignInMethod,
        client: &ClientInfo,
        now: UnixTime,
    ) -> Result<Issued, AuthError> {
        let settings = &self.inner.settings;
        let family = NewFamily {
            id: family_id_for(&user.id),
            user_id: user.id.clone(),
            created_at: now,
            expires_at: now + settings.session_max_age_secs,
            token_expires_at: now + settings.refresh_ttl_secs,
            user_agent: client.user_agent.clone(),
            client_ip: client.ip.clone(),
        };
        self.inner.store.create_family(&family).await?;
        self.record(AuditKind::Login, Some(user.id.clone()), Some(&family.id), client, Some(method.as_str())).await?;
        self.enforce_session_limit(&user.id, &family.id, client, now).await?;
        Ok(self.issue(user, &family.id, 0, family.token_expires_at.min(family.expires_at), now))
    }

    /// Past `REAUTH_MAX_SESSIONS_PER_USER` live sessions, revokes the least recently used ones (never
    /// the one just started) and audits each, so a user looping logins cannot grow the store.
    async fn enforce_session_limit(
        &self,
        user_id: &str,
        new_session: &str,
        client: &ClientInfo,
        now: UnixTime,
    ) -> Result<(), AuthError> {
        let store = &self.inner.store;
        let live = store.live_families(user_id, now).await?;
        let excess = live.len().saturating_sub(self.inner.settings.max_sessions_per_user);
        // Most recently used first: the excess is at the end.
        let oldest = live.iter().rev().filter(|family| family.id != new_session).take(excess);
        for family in oldest {
            if store.revoke_family(&family.id, RevokeReason::Revoked).await? {
                self.revoke_access(RevokedSubject::Session(family.id.clone())).await?;
                let user = Some(user_id.to_owned());
                self.record(AuditKind::Revoke, user, Some(&family.id), client, Some("session limit")).await?;
            }
        }
        Ok(())
    }

    /// Rotates a refresh token: the presented generation is consumed and its successor issued.
    ///
    /// Within the reuse interval after a rotation, the just-consumed token yields the *same*
    /// successor again, so concurrent refreshes (two tabs, a retried request) all succeed and leave
    /// one family. Any older token, or the consumed one after the interval, revokes the family.
    #[tracing::instrument(skip_all, fields(client_ip = client.ip.as_deref(), session_id))]
    pub async fn refresh(&self, presented: Option<&str>, client: &ClientInfo) -> Result<Issued, AuthError> {
        let presented =
            presented.filter(|token| !token.is_empty()).ok_or(AuthError::SessionEnded(DeadReason::Missing))?;
        let now = unix_now();
        let token = self.decode_refresh_token(presented, now).await?.map_err(|error| {
            tracing::warn!(%error, "refresh token refused");
            AuthError::SessionEnded(DeadReason::Invalid)
        })?;
        tracing::Span::current().record("session_id", token.family_id.as_str());
        let rotation = Rotation {
            family_id: token.family_id.clone(),
            expected_generation: token.generation,
            now,
            token_expires_at: now + self.inner.settings.refresh_ttl_secs,
            client_ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        };
        // The usual case in one atomic store step: swap, user check and audit event together.
        let (family, user) = match self.inner.store.rotate_family(&rotation).await? {
            Some(Rotated { family, user }) => {
                log_event(&rotation.event(&family.user_id));
                (family, user)
            }
            None => self.hand_back_or_end(&token, client, now).await?,
        };
        Ok(self.issue(&user, &family.id, family.generation, family.token_expires_at, now))
    }

    /// The atomic rotation refused: decide between handing out the current successor again, reuse
    /// (revoke), and a session that simply ended.
    ///
    /// The token just before the current generation gets the current successor back, whenever it
    /// comes, as long as that successor has not been used (the family would have moved on): a
    /// concurrent tab, or a retry after a rotation whose answer was lost (a timeout, a dropped
    /// connection). The audit detail says which: `reuse_interval` within `REAUTH_REUSE_INTERVAL`
    /// of the rotation, `unused_successor` after it. Any older token is reuse.
    /// `REAUTH_REUSE_INTERVAL=0s` turns the hand-back off.
    async fn hand_back_or_end(
        &self,
        token: &RefreshToken,
        client: &ClientInfo,
        now: UnixTime,
    ) -> Result<(Family, User), AuthError> {
        let store = &self.inner.store;
        let Some(family) = store.family(&token.family_id).await? else {
            return Err(AuthError::SessionEnded(DeadReason::Expired));
        };
        if let Some(reason) = family.revoked {
            return Err(AuthError::SessionEnded(reason.into()));
        }
        if !family.is_live(now) {
            return Err(AuthError::SessionEnded(DeadReason::Expired));
        }
        let is_current = token.generation == family.generation;
        let is_predecessor = token.generation.checked_add(1) == Some(family.generation);
        let interval = self.inner.settings.reuse_interval_secs;
        if is_current || (is_predecessor && interval > 0) {
            let user = self.active_user_of(&family, client).await?;
            if is_current {
                // A live family at the presented generation that did not rotate: its user's
                // logout everywhere is under way (the fence holds it back, the revocation follows).
                return Err(AuthError::SessionEnded(DeadReason::Revoked));
            }
            let detail = if now - family.rotated_at <= interval { "reuse_interval" } else { "unused_successor" };
            self.record(AuditKind::Refresh, Some(user.id.clone()), Some(&family.id), client, Some(detail)).await?;
            return Ok((family, user));
        }
        if token.generation > family.generation {
            // A valid MAC for a generation never issued: only a key holder could make it.
            tracing::error!(session_id = %family.id, "refresh token from the future; key compromised?");
            return Err(AuthError::SessionEnded(DeadReason::Invalid));
        }
        if store.revoke_family(&family.id, RevokeReason::Reused).await? {
            self.revoke_access(RevokedSubject::Session(family.id.clone())).await?;
            let detail = format!("generation {} presented, current {}", token.generation, family.generation);
            tracing::warn!(session_id = %family.id, user_id = %family.user_id, %detail, "refresh token reuse: session revoked");
            self.record(
                AuditKind::ReuseDetected,
                Some(family.user_id.clone()),
                Some(&family.id),
                client,
                Some(&detail),
            )
            .await?;
        }
        Err(AuthError::SessionEnded(DeadReason::Reused))
    }

    /// The family's user if active; otherwise the family is revoked as `inactive` and the session
    /// ends.
    async fn active_user_of(&self, family: &Family, client: &ClientInfo) -> Result<User, AuthError> {
        let store = &self.inner.store;
        match store.user_by_id(&family.user_id).await? {
            Some(user) if user.active => Ok(user),
            _ => {
                if store.revoke_family(&family.id, RevokeReason::Inactive).await? {
                    self.revoke_access(RevokedSubject::Session(family.id.clone())).await?;
                    let user_id = Some(family.user_id.clone());
                    self.record(AuditKind::Revoke, user_id, Some(&family.id), client, Some("inactive")).await?;
                }
                Err(AuthError::SessionEnded(DeadReason::Inactive))
            }
        }
    }

    /// Ends the session the refresh token belongs to. A missing or foreign token is not an error:
    /// logging out is idempotent.
    pub async fn logout(&self, presented: Option<&str>, client: &ClientInfo) -> Result<(), AuthError> {
        let Some(presented) = presented else { return Ok(()) };
        let Ok(token) = self.decode_refresh_token(presented, unix_now()).await? else { return Ok(()) };
        let store = &self.inner.store;
        if let Some(family) = store.family(&token.family_id).await? {
            if store.revoke_family(&family.id, RevokeReason::Logout).await? {
                self.revoke_access(RevokedSubject::Session(family.id.clone())).await?;
                self.record(AuditKind::Logout, Some(family.user_id), Some(&family.id), client, None).await?;
            }
        }
        Ok(())
    }

    /// RFC 7009 revocation: a refresh token ends its session as a logout does; an access token of
    /// ours ends the session it belongs to. Anything else is ignored (the caller answers 200).
    pub async fn revoke_token(&self, token: &str, client: &ClientInfo) -> Result<(), AuthError> {
        if self.decode_refresh_token(token, unix_now()).await?.is_ok() {
            return self.logout(Some(token), client).await;
        }
        let Ok(claims) = self.verify_access_token(token) else { return Ok(()) };
        let store = &self.inner.store;
        if store.revoke_family(&claims.sid, RevokeReason::Logout).await? {
            self.revoke_access(RevokedSubject::Session(claims.sid.clone())).await?;
            self.record(AuditKind::Logout, Some(claims.sub.clone()), Some(&claims.sid), client, Some("revocation"))
                .await?;
        }
        Ok(())
    }

    /// Ends every session of the user.
    pub async fn logout_all(&self, claims: &AccessClaims, client: &ClientInfo) -> Result<u64, AuthError> {
        let now = unix_now();
        let store = &self.inner.store;
        let live = store.live_families(&claims.sub, now).await?;
        let revoked = store.end_user_sessions(&claims.sub, now, RevokeReason::Revoked).await?;
        // Tokens of earlier seconds by the user cutoff, those of this second by their sessions.
        self.revoke_access(RevokedSubject::User { user_id: claims.sub.clone(), issued_before: now }).await?;
        for family in live {
            self.revoke_access(RevokedSubject::Session(family.id)).await?;
        }
        let detail = format!("{revoked} sessions");
        self.record(AuditKind::LogoutAll, Some(claims.sub.clone()), Some(&claims.sid), client, Some(&detail)).await?;
        Ok(revoked)
    }

    /// The user's live sessions, `current` marking the caller's.
    pub async fn sessions(&self, claims: &AccessClaims) -> Result<Vec<SessionView>, AuthError> {
        let families = self.inner.store.live_families(&claims.sub, unix_now()).await?;
        Ok(families
            .into_iter()
            .map(|family| SessionView {
                current: family.id == claims.sid,
                id: family.id,
                created_at: family.created_at,
                last_used_at: family.last_used_at,
                expires_at: family.expires_at,
                user_agent: family.user_agent,
                client_ip: family.client_ip,
            })
            .collect())
    }

    /// Revokes one of the caller's own sessions; [`AuthError::NotFound`] for anyone else's.
    pub async fn revoke_session(
        &self,
        claims: &AccessClaims,
        session_id: &str,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let store = &self.inner.store;
        match store.family(session_id).await? {
            Some(family) if family.user_id == claims.sub => {
                if store.revoke_family(session_id, RevokeReason::Revoked).await? {
                    self.revoke_access(RevokedSubject::Session(session_id.to_owned())).await?;
                    self.record(AuditKind::Revoke, Some(claims.sub.clone()), Some(session_id), client, None).await?;
                }
                Ok(())
            }
            _ => Err(AuthError::NotFound),
        }
    }

    /// The user's recent audit events, newest first.
    pub async fn audit_events(&self, user_id: &str, limit: usize) -> Result<Vec<AuditEvent>, AuthError> {
        Ok(self.inner.store.recent_events(user_id, limit).await?)
    }

    /// The user behind an access token, if still present.
    ///
    /// Answered from memory once the user has signed in or refreshed on this instance (see
    /// `user_views`): the route's access token has passed the revocation check, which is what
    /// refuses a deleted or disabled user's tokens.
    pub async fn user(&self, user_id: &str) -> Result<Option<UserView>, AuthError> {
        if let Some(view) = self.inner.user_views.get(user_id) {
            return Ok(Some(view));
        }
        let view = self.inner.store.user_by_id(user_id).await?.as_ref().map(UserView::from);
        if let Some(view) = &view {
            self.inner.user_views.remember(view);
        }
        Ok(view)
    }

    /// Enables or disables a user by name; disabling revokes every session at once.
    pub async fn set_user_active(&self, username: &str, active: bool) -> Result<(), AuthError> {
        let store = &self.inner.store;
        let user = store.user_by_name(&stored_username(username)).await?.ok_or(AuthError::NotFound)?;
        store.set_user_active(&user.id, active).await?;
        if !active {
            let now = unix_now();
            let revoked = store.end_user_sessions(&user.id, now, RevokeReason::Inactive).await?;
            // A disabled user cannot sign in again, so this second's tokens can all go.
            self.revoke_access(RevokedSubject::User { user_id: user.id.clone(), issued_before: now + 1 }).await?;
            let detail = format!("user disabled, {revoked} sessions");
            self.record(AuditKind::Revoke, Some(user.id), None, &ClientInfo::default(), Some(&detail)).await?;
        }
        Ok(())
    }

    /// Deletes a user and all their sessions.
    pub async fn delete_user(&self, username: &str) -> Result<(), AuthError> {
        let store = &self.inner.store;
        let user = store.user_by_name(&stored_username(username)).await?.ok_or(AuthError::NotFound)?;
        store.delete_user(&user.id).await?;
        self.revoke_access(RevokedSubject::User { user_id: user.id.clone(), issued_before: unix_now() + 1 }).await?;
        Ok(())
    }

    /// Removes expired sessions and old audit events; returns how many records went.
    pub async fn purge_expired(&self) -> Result<u64, AuthError> {
        let now = unix_now();
        Ok(self.inner.store.purge_expired(now, now - self.inner.settings.audit_retention_secs).await?)
    }

    fn issue(
        &self,
        user: &User,
        family_id: &str,
        generation: u64,
        token_expires_at: UnixTime,
        now: UnixTime,
    ) -> Issued {
        let (access_token, claims) = self.inner.access.issue(&user.id, family_id, now);
        let view = UserView::from(user);
        self.inner.user_views.remember(&view);
        Issued {
            access_token,
            expires_in: claims.exp - now,
            refresh_token: RefreshToken::encode(
                self.inner.access.key_set().refresh_secret_at(now),
                family_id,
                generation,
            ),
            refresh_expires_in: token_expires_at - now,
            user: view,
            session_id: family_id.to_owned(),
        }
    }

    async fn dummy_hash(&self) -> Result<String, AuthError> {
        if let Some(hash) = self.inner.dummy_hash.get() {
            return Ok(hash.clone());
        }
        let hash = self.inner.hashing.hash("reauth timing equaliser".to_owned()).await.map_err(busy)?;
        Ok(self.inner.dummy_hash.get_or_init(|| hash).clone())
    }

    /// Writes an audit event to the store and to the log.
    async fn record(
        &self,
        kind: AuditKind,
        user_id: Option<String>,
        session_id: Option<&str>,
        client: &ClientInfo,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        let event = audit_event(kind, user_id, session_id, client, detail);
        self.inner.store.record_event(&event).await?;
        log_event(&event);
        Ok(())
    }
}

/// The stored name of a user as an administrator types it: a Stellar account id (alone or as
/// `stellar:G…`) names that account's wallet user, anything else a password user.
fn stored_username(name: &str) -> String {
    crate::stellar::AccountId::from_username(name)
        .map_or_else(|| normalize_username(name), |account| account.username())
}

fn busy(_: crate::hashing::Busy) -> AuthError {
    AuthError::Busy { retry_after_secs: BUSY_RETRY_AFTER_SECS }
}

fn rate_limited(throttled: Throttled) -> AuthError {
    AuthError::RateLimited { retry_after_secs: throttled.retry_after_secs }
}

fn audit_event(
    kind: AuditKind,
    user_id: Option<String>,
    session_id: Option<&str>,
    client: &ClientInfo,
    detail: Option<&str>,
) -> AuditEvent {
    AuditEvent {
        kind,
        user_id,
        session_id: session_id.map(str::to_owned),
        at: unix_now(),
        client_ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
        detail: detail.map(str::to_owned),
    }
}

/// Every audit event also goes to the log, as structured fields under the `reauth::audit` target.
fn log_event(event: &AuditEvent) {
    tracing::info!(
        target: "reauth::audit",
        event = event.kind.as_str(),
        user_id = event.user_id.as_deref(),
        session_id = event.session_id.as_deref(),
        client_ip = event.client_ip.as_deref(),
        user_agent = event.user_agent.as_deref(),
        detail = event.detail.as_deref(),
    );
}
