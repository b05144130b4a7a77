//! The conformance suite every [`TokenStore`] backend must pass.
//!
//! Each case is a plain `pub async fn(Arc<dyn TokenStore>)` that panics on failure. Store-level
//! cases check the trait's contract (the compare-and-swap above all); service-level cases run the
//! rotation rules of [`AuthService`] over the backend (grace interval, reuse, inactive users), so a
//! backend that satisfies the trait but breaks the rules in practice is caught too.
//!
//! A backend expands the whole suite with [`conformance_tests!`](crate::conformance_tests):
//!
//! ```ignore
//! reauth_server::conformance_tests!(memory_store_tests, async { MemoryStore::new() });
//! ```
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use super::{AuditEvent, AuditKind, NewFamily, RevokeReason, StoreError, TokenStore, User};
use crate::config::Settings;
use crate::service::{unix_now, AuthError, AuthService, ClientInfo, DeadReason};
use crate::tokens::{random_id, Keys};

/// Expands every conformance case into a `#[tokio::test]` in module `$module`, each on a fresh store
/// made by `$make` (an async block evaluating to the store).
#[macro_export]
///
/// A backend that needs a server uses the `optional` form, whose block evaluates to `Option<store>`:
/// `None` (after [`server_url`] printed why) returns from the case without testing anything.
macro_rules! conformance_tests {
    ($module:ident, optional $make:expr) => {
        $crate::conformance_tests!(@module $module, $make);
    };
    ($module:ident, $make:expr) => {
        $crate::conformance_tests!(@module $module, async { Some($make.await) });
    };
    (@module $module:ident, $make:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::conformance_tests!(@cases $make;
                users_are_unique_by_name, users_can_be_disabled_and_deleted, advance_is_a_compare_and_swap,
                advance_refuses_revoked_and_expired_families, token_expiry_never_passes_the_family_end,
                concurrent_advances_have_one_winner, revocation_is_first_reason_wins,
                logout_everywhere_fences_a_login_that_raced_it, revocations_are_shared_until_they_expire,
                audit_events_are_capped_per_user, live_families_lists_only_live_ones,
                events_are_kept_per_user_newest_first, the_refresh_event_is_written_only_for_an_active_user,
                purge_removes_only_expired_state,
                rotation_issues_a_new_token_each_time, concurrent_refreshes_of_one_token_all_succeed,
                reuse_after_the_interval_revokes_the_family, older_generation_is_reuse_even_within_interval,
                a_lost_answer_is_retried_after_the_interval_without_a_logout,
                disabled_user_cannot_refresh, deleted_user_cannot_refresh, logout_all_ends_every_session,
                expired_refresh_token_is_dead);
        }
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $make.await else { return };
                let store: std::sync::Arc<dyn $crate::store::TokenStore> = std::sync::Arc::new(store);
                $crate::store::conformance::$case(store).await;
            }
        )*
    };
}

/// The URL of a real store server from environment variable `variable`; when it is unset, prints a
/// loud `SKIPPED` line (once per variable, past the test harness's output capture) and gives `None`.
pub fn server_url(variable: &'static str) -> Option<String> {
    static ANNOUNCED: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    if let Some(url) = std::env::var(variable).ok().filter(|url| !url.is_empty()) {
        return Some(url);
    }
    let mut announced = ANNOUNCED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !announced.contains(&variable) {
        announced.push(variable);
        // Straight to stderr: the harness captures `eprintln!` of passing tests.
        let notice = format!("\nSKIPPED: {variable} not set: the cases on this backend test nothing here; scripts/test-stores.sh runs them on a real server\n");
        let _ = std::io::Write::write_all(&mut std::io::stderr(), notice.as_bytes());
    }
    None
}

fn user(name: &str) -> User {
    User {
        id: random_id(),
        username: name.into(),
        password_hash: "$argon2id$fake".into(),
        active: true,
        created_at: unix_now(),
    }
}

fn family_for(user: &User, now: i64, token_ttl: i64, max_age: i64) -> NewFamily {
    NewFamily {
        id: random_id(),
        user_id: user.id.clone(),
        created_at: now,
        expires_at: now + max_age,
        token_expires_at: now + token_ttl,
        user_agent: Some("conformance".into()),
        client_ip: Some("127.0.0.1".into()),
    }
}

async fn with_family(store: &Arc<dyn TokenStore>) -> (User, NewFamily) {
    let owner = user(&format!("u{}", &random_id()[..8].to_ascii_lowercase()));
    store.create_user(&owner).await.unwrap();
    let family = family_for(&owner, unix_now(), 3600, 86_400);
    store.create_family(&family).await.unwrap();
    (owner, family)
}

pub async fn users_are_unique_by_name(store: Arc<dyn TokenStore>) {
    let alice = user("alice");
    store.create_user(&alice).await.unwrap();
    assert!(matches!(store.create_user(&user("alice")).await, Err(StoreError::Conflict)));
    assert_eq!(store.user_by_name("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.user_by_id(&alice.id).await.unwrap(), Some(alice));
    assert_eq!(store.user_by_name("nobody").await.unwrap(), None);
}

pub async fn users_can_be_disabled_and_deleted(store: Arc<dyn TokenStore>) {
    let (owner, family) = with_family(&store).await;
    assert!(store.set_user_active(&owner.id, false).await.unwrap());
    assert!(!store.user_by_id(&owner.id).await.unwrap().unwrap().active);
    assert!(!store.set_user_active("missing", false).await.unwrap());
    assert!(store.delete_user(&owner.id).await.unwrap());
    assert_eq!(store.user_by_id(&owner.id).await.unwrap(), None);
    assert_eq!(store.family(&family.id).await.unwrap(), None, "families go with their user");
    assert!(!store.delete_user(&owner.id).await.unwrap());
}

pub async fn advance_is_a_compare_and_swap(store: Arc<dyn TokenStore>) {
    let (_, family) = with_family(&store).await;
    let now = unix_now();
    let advanced = store.advance_family(&family.id, 0, now + 5, now + 100).await.unwrap().unwrap();
    assert_eq!(
        (advanced.generation, advanced.rotated_at, advanced.last_used_at, advanced.token_expires_at),
        (1, now + 5, now + 5, now + 100)
    );
    assert_eq!(store.advance_family(&family.id, 0, now + 6, now + 100).await.unwrap(), None, "stale generation");
    assert_eq!(store.family(&family.id).await.unwrap().unwrap().generation, 1);
    assert_eq!(store.advance_family(&family.id, 1, now + 7, now + 100).await.unwrap().unwrap().generation, 2);
    assert_eq!(store.advance_family("no-such-family", 0, now, now + 100).await.unwrap(), None);
}

pub async fn advance_refuses_revoked_and_expired_families(store: Arc<dyn TokenStore>) {
    let (owner, revoked) = with_family(&store).await;
    let now = unix_now();
    assert!(store.revoke_family(&revoked.id, RevokeReason::Logout).await.unwrap());
    assert_eq!(store.advance_family(&revoked.id, 0, now, now + 100).await.unwrap(), None);

    let expiring = family_for(&owner, now, 10, 86_400);
    store.create_family(&expiring).await.unwrap();
    assert_eq!(store.advance_family(&expiring.id, 0, now + 10, now + 100).await.unwrap(), None, "token expired");
    assert_eq!(store.family(&expiring.id).await.unwrap().unwrap().generation, 0);
}

pub async fn token_expiry_never_passes_the_family_end(store: Arc<dyn TokenStore>) {
    let owner = user("capped");
    store.create_user(&owner).await.unwrap();
    let now = unix_now();
    let family = family_for(&owner, now, 3600, 60);
    store.create_family(&family).await.unwrap();
    assert_eq!(store.family(&family.id).await.unwrap().unwrap().token_expires_at, now + 60);
    let advanced = store.advance_family(&family.id, 0, now + 1, now + 3601).await.unwrap().unwrap();
    assert_eq!(advanced.token_expires_at, now + 60);
}

pub async fn concurrent_advances_have_one_winner(store: Arc<dyn TokenStore>) {
    let (_, family) = with_family(&store).await;
    let now = unix_now();
    let attempts = (0..20).map(|_| {
        let (store, id) = (store.clone(), family.id.clone());
        tokio::spawn(async move { store.advance_family(&id, 0, now, now + 100).await.unwrap() })
    });
    let mut winners = 0;
    for attempt in attempts {
        winners += usize::from(attempt.await.unwrap().is_some());
    }
    assert_eq!(winners, 1);
    assert_eq!(store.family(&family.id).await.unwrap().unwrap().generation, 1);
}

pub async fn revocation_is_first_reason_wins(store: Arc<dyn TokenStore>) {
    let (owner, family) = with_family(&store).await;
    let other = family_for(&owner, unix_now(), 3600, 86_400);
    store.create_family(&other).await.unwrap();
    assert!(store.revoke_family(&family.id, RevokeReason::Reused).await.unwrap());
    assert!(!store.revoke_family(&family.id, RevokeReason::Logout).await.unwrap());
    assert_eq!(store.family(&family.id).await.unwrap().unwrap().revoked, Some(RevokeReason::Reused));
    assert_eq!(store.revoke_user_families(&owner.id, RevokeReason::Revoked).await.unwrap(), 1);
    assert_eq!(store.family(&other.id).await.unwrap().unwrap().revoked, Some(RevokeReason::Revoked));
    assert!(!store.revoke_family("no-such-family", RevokeReason::Logout).await.unwrap());
}

pub async fn live_families_lists_only_live_ones(store: Arc<dyn TokenStore>) {
    let (owner, first) = with_family(&store).await;
    let now = unix_now();
    let second = family_for(&owner, now, 3600, 86_400);
    let revoked = family_for(&owner, now, 3600, 86_400);
    let expired = family_for(&owner, now - 100, 50, 86_400);
    for family in [&second, &revoked, &expired] {
        store.create_family(family).await.unwrap();
    }
    store.revoke_family(&revoked.id, RevokeReason::Logout).await.unwrap();
    store.advance_family(&second.id, 0, now + 1, now + 3600).await.unwrap().unwrap();
    let live: Vec<String> = store.live_families(&owner.id, now + 2).await.unwrap().into_iter().map(|f| f.id).collect();
    assert_eq!(live, [second.id, first.id], "most recently used first; revoked and expired left out");
}

pub async fn events_are_kept_per_user_newest_first(store: Arc<dyn TokenStore>) {
    let (owner, family) = with_family(&store).await;
    let now = unix_now();
    for (offset, kind) in [AuditKind::Login, AuditKind::Refresh, AuditKind::Logout].into_iter().enumerate() {
        let event = AuditEvent {
            kind,
            user_id: Some(owner.id.clone()),
            session_id: Some(family.id.clone()),
            at: now + offset as i64,
            client_ip: Some("127.0.0.1".into()),
            user_agent: Some("ua".into()),
            detail: None,
        };
        store.record_event(&event).await.unwrap();
    }
    let anonymous = AuditEvent {
        kind: AuditKind::LoginFailed,
        user_id: None,
        session_id: None,
        at: now,
        client_ip: None,
        user_agent: None,
        detail: Some("unknown_user".into()),
    };
    store.record_event(&anonymous).await.unwrap();
    let events = store.recent_events(&owner.id, 2).await.unwrap();
    assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), [AuditKind::Logout, AuditKind::Refresh]);
    assert_eq!(events[0].session_id.as_deref(), Some(family.id.as_str()));
}

pub async fn the_refresh_event_is_written_only_for_an_active_user(store: Arc<dyn TokenStore>) {
    let (owner, family) = with_family(&store).await;
    let event = AuditEvent {
        kind: AuditKind::Refresh,
        user_id: Some(owner.id.clone()),
        session_id: Some(family.id.clone()),
        at: unix_now(),
        client_ip: Some("127.0.0.1".into()),
        user_agent: None,
        detail: None,
    };
    assert_eq!(store.user_recording_if_active(&owner.id, &event).await.unwrap(), Some(owner.clone()));
    assert_eq!(store.recent_events(&owner.id, 10).await.unwrap(), std::slice::from_ref(&event));

    store.set_user_active(&owner.id, false).await.unwrap();
    let inactive = store.user_recording_if_active(&owner.id, &event).await.unwrap().unwrap();
    assert!(!inactive.active, "the user is returned as read");
    assert_eq!(store.recent_events(&owner.id, 10).await.unwrap().len(), 1, "no event for an inactive user");
    assert_eq!(store.user_recording_if_active("no-such-user", &event).await.unwrap(), None);
}

pub async fn purge_removes_only_expired_state(store: Arc<dyn TokenStore>) {
    let (owner, live) = with_family(&store).await;
    let now = unix_now();
    let expired = family_for(&owner, now - 100, 50, 86_400);
    store.create_family(&expired).await.unwrap();
    let event = |at| AuditEvent {
        kind: AuditKind::Login,
        user_id: Some(owner.id.clone()),
        session_id: None,
        at,
        client_ip: None,
        user_agent: None,
        detail: None,
    };
    store.record_event(&event(now - 1000)).await.unwrap();
    store.record_event(&event(now)).await.unwrap();
    assert_eq!(store.purge_expired(now, now - 500).await.unwrap(), 2);
    assert!(store.family(&live.id).await.unwrap().is_some());
    assert!(store.family(&expired.id).await.unwrap().is_none());
    assert_eq!(store.recent_events(&owner.id, 10).await.unwrap().len(), 1);
}

// ---- the rotation rules of AuthService over this backend ----

fn service(store: Arc<dyn TokenStore>, reuse_interval_secs: i64) -> AuthService {
    let settings = Settings { reuse_interval_secs, ..Settings::default() };
    AuthService::new(store, Keys::generate(), settings)
}

async fn signed_in(service: &AuthService) -> (String, crate::service::Issued) {
    let name = format!("user-{}", random_id()[..8].to_ascii_lowercase());
    service.create_user(&name, "correct horse battery").await.unwrap();
    let issued = service.login(&name, "correct horse battery", &ClientInfo::default()).await.unwrap();
    (name, issued)
}

fn dead_reason(result: Result<crate::service::Issued, AuthError>) -> DeadReason {
    match result {
        Err(AuthError::SessionEnded(reason)) => reason,
        other => panic!("expected a dead session, got {other:?}"),
    }
}

pub async fn rotation_issues_a_new_token_each_time(store: Arc<dyn TokenStore>) {
    let service = service(store, 10);
    let (_, login) = signed_in(&service).await;
    let first = service.refresh(Some(&login.refresh_token), &ClientInfo::default()).await.unwrap();
    let second = service.refresh(Some(&first.refresh_token), &ClientInfo::default()).await.unwrap();
    assert_ne!(login.refresh_token, first.refresh_token);
    assert_ne!(first.refresh_token, second.refresh_token);
    assert_eq!(second.session_id, login.session_id);
    assert!(service.verify_access_token(&second.access_token).is_ok());
}

pub async fn concurrent_refreshes_of_one_token_all_succeed(store: Arc<dyn TokenStore>) {
    let service = service(store, 10);
    let (_, login) = signed_in(&service).await;
    let refreshes = (0..20).map(|_| {
        let (service, token) = (service.clone(), login.refresh_token.clone());
        tokio::spawn(async move { service.refresh(Some(&token), &ClientInfo::default()).await })
    });
    let mut successors = Vec::new();
    for refresh in refreshes {
        successors.push(refresh.await.unwrap().expect("every concurrent refresh succeeds").refresh_token);
    }
    successors.dedup();
    assert_eq!(successors.len(), 1, "all got the same successor: one family, no fork");
    let next = service.refresh(Some(&successors[0]), &ClientInfo::default()).await.unwrap();
    assert_eq!(next.session_id, login.session_id, "the session keeps working");
}

pub async fn reuse_after_the_interval_revokes_the_family(store: Arc<dyn TokenStore>) {
    let service = service(store.clone(), 0);
    let (_, login) = signed_in(&service).await;
    let successor = service.refresh(Some(&login.refresh_token), &ClientInfo::default()).await.unwrap();
    // Interval 0: the rotation's own second has to pass before the grace is over.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        dead_reason(service.refresh(Some(&login.refresh_token), &ClientInfo::default()).await),
        DeadReason::Reused
    );
    assert_eq!(
        dead_reason(service.refresh(Some(&successor.refresh_token), &ClientInfo::default()).await),
        DeadReason::Reused
    );
    let family = store.family(&login.session_id).await.unwrap().unwrap();
    assert_eq!(family.revoked, Some(RevokeReason::Reused));
    let events = service.audit_events(&login.user.id, 10).await.unwrap();
    assert!(events.iter().any(|e| e.kind == AuditKind::ReuseDetected), "{events:?}");
}

pub async fn older_generation_is_reuse_even_within_interval(store: Arc<dyn TokenStore>) {
    let service = service(store, 60);
    let (_, login) = signed_in(&service).await;
    let first = service.refresh(Some(&login.refresh_token), &ClientInfo::default()).await.unwrap();
    service.refresh(Some(&first.refresh_token), &ClientInfo::default()).await.unwrap();
    assert_eq!(
        dead_reason(service.refresh(Some(&login.refresh_token), &ClientInfo::default()).await),
        DeadReason::Reused
    );
}

/// A store whose call after the first successful swap fails (once): the rotation committed, but its answer
/// never reaches the client (here the user read and audit write fail; a timeout or a dropped
/// connection look the same from the client).
struct FailsAfterSwap {
    inner: Arc<dyn TokenStore>,
    swapped: std::sync::atomic::AtomicBool,
    failed_once: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl TokenStore for FailsAfterSwap {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn create_user(&self, user: &User) -> super::StoreResult<()> {
        self.inner.create_user(user).await
    }
    async fn user_by_name(&self, username: &str) -> super::StoreResult<Option<User>> {
        self.inner.user_by_name(username).await
    }
    async fn user_by_id(&self, user_id: &str) -> super::StoreResult<Option<User>> {
        self.inner.user_by_id(user_id).await
    }
    async fn set_user_active(&self, user_id: &str, active: bool) -> super::StoreResult<bool> {
        self.inner.set_user_active(user_id, active).await
    }
    async fn delete_user(&self, user_id: &str) -> super::StoreResult<bool> {
        self.inner.delete_user(user_id).await
    }
    async fn create_family(&self, family: &NewFamily) -> super::StoreResult<()> {
        self.inner.create_family(family).await
    }
    async fn family(&self, family_id: &str) -> super::StoreResult<Option<super::Family>> {
        self.inner.family(family_id).await
    }
    async fn advance_family(
        &self,
        family_id: &str,
        expected_generation: u64,
        now: super::UnixTime,
        token_expires_at: super::UnixTime,
    ) -> super::StoreResult<Option<super::Family>> {
        let advanced = self.inner.advance_family(family_id, expected_generation, now, token_expires_at).await?;
        if advanced.is_some() {
            self.swapped.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(advanced)
    }
    async fn revoke_family(&self, family_id: &str, reason: RevokeReason) -> super::StoreResult<bool> {
        self.inner.revoke_family(family_id, reason).await
    }
    async fn revoke_user_families(&self, user_id: &str, reason: RevokeReason) -> super::StoreResult<u64> {
        self.inner.revoke_user_families(user_id, reason).await
    }
    async fn end_user_sessions(
        &self,
        user_id: &str,
        valid_after: super::UnixTime,
        reason: RevokeReason,
    ) -> super::StoreResult<u64> {
        self.inner.end_user_sessions(user_id, valid_after, reason).await
    }
    async fn live_families(&self, user_id: &str, now: super::UnixTime) -> super::StoreResult<Vec<super::Family>> {
        self.inner.live_families(user_id, now).await
    }
    async fn record_event(&self, event: &AuditEvent) -> super::StoreResult<()> {
        self.inner.record_event(event).await
    }
    async fn record_revocation(&self, revocation: &super::Revocation) -> super::StoreResult<()> {
        self.inner.record_revocation(revocation).await
    }
    async fn revocations_since(&self, since: super::UnixTime) -> super::StoreResult<Vec<super::Revocation>> {
        self.inner.revocations_since(since).await
    }
    async fn user_recording_if_active(&self, user_id: &str, event: &AuditEvent) -> super::StoreResult<Option<User>> {
        let after_swap = self.swapped.swap(false, std::sync::atomic::Ordering::SeqCst);
        if after_swap && !self.failed_once.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::unavailable(std::io::Error::other("connection lost after the swap")));
        }
        self.inner.user_recording_if_active(user_id, event).await
    }
    async fn recent_events(&self, user_id: &str, limit: usize) -> super::StoreResult<Vec<AuditEvent>> {
        self.inner.recent_events(user_id, limit).await
    }
    async fn purge_expired(&self, now: super::UnixTime, events_before: super::UnixTime) -> super::StoreResult<u64> {
        self.inner.purge_expired(now, events_before).await
    }
}

/// A user looping refreshes within the retention period cannot grow the audit log without bound.
pub async fn audit_events_are_capped_per_user(store: Arc<dyn TokenStore>) {
    let cap = super::AUDIT_EVENTS_PER_USER;
    let owner = user("chatty");
    store.create_user(&owner).await.unwrap();
    let now = unix_now();
    for index in 0..cap + 150 {
        let event = AuditEvent {
            kind: AuditKind::Refresh,
            user_id: Some(owner.id.clone()),
            session_id: Some("s".into()),
            at: now,
            client_ip: None,
            user_agent: None,
            detail: Some(index.to_string()),
        };
        store.record_event(&event).await.unwrap();
    }
    store.purge_expired(now, now - 3600).await.unwrap();
    let kept = store.recent_events(&owner.id, cap * 2).await.unwrap();
    // Redis trims approximately (whole stream nodes of 100 entries).
    assert!((cap..=cap + 100).contains(&kept.len()), "{} kept", kept.len());
    assert_eq!(kept[0].detail.as_deref(), Some((cap + 149).to_string().as_str()), "the newest stay");
}

pub async fn revocations_are_shared_until_they_expire(store: Arc<dyn TokenStore>) {
    use super::{Revocation, RevokedSubject};
    let now = unix_now();
    let session = Revocation { subject: RevokedSubject::Session(random_id()), at: now - 100, expires_at: now - 1 };
    let user = Revocation {
        subject: RevokedSubject::User { user_id: random_id(), issued_before: now },
        at: now,
        expires_at: now + 900,
    };
    store.record_revocation(&session).await.unwrap();
    store.record_revocation(&user).await.unwrap();
    let mut since = store.revocations_since(now - 200).await.unwrap();
    since.retain(|revocation| *revocation == session || *revocation == user);
    assert_eq!(since.len(), 2, "{since:?}");
    assert!(!store.revocations_since(now - 5).await.unwrap().contains(&session), "older than asked for");
    store.purge_expired(now, 0).await.unwrap();
    let left = store.revocations_since(now - 200).await.unwrap();
    assert!(left.contains(&user) && !left.contains(&session), "{left:?}");
}

/// A login authenticated before a "logout everywhere" but whose family is written after it (on
/// another instance, say) must not survive; one authenticated after it lives on.
pub async fn logout_everywhere_fences_a_login_that_raced_it(store: Arc<dyn TokenStore>) {
    let owner = user("fenced");
    store.create_user(&owner).await.unwrap();
    let now = unix_now();
    let new_family = |id: &str, created_at| NewFamily {
        id: id.to_owned(),
        user_id: owner.id.clone(),
        created_at,
        expires_at: now + 3600,
        token_expires_at: now + 600,
        user_agent: None,
        client_ip: None,
    };
    store.create_family(&new_family("before", now - 5)).await.unwrap();
    assert_eq!(store.end_user_sessions(&owner.id, now - 2, RevokeReason::Revoked).await.unwrap(), 1);
    // The racing login: authenticated at now - 3, written after the fence went up.
    store.create_family(&new_family("raced", now - 3)).await.unwrap();
    assert_eq!(store.advance_family("raced", 0, now, now + 600).await.unwrap(), None, "fenced");
    assert_eq!(store.advance_family("before", 0, now, now + 600).await.unwrap(), None, "revoked");
    store.create_family(&new_family("after", now - 2)).await.unwrap();
    assert!(store.advance_family("after", 0, now, now + 600).await.unwrap().is_some(), "a login after the fence");
    let live: Vec<String> = store.live_families(&owner.id, now).await.unwrap().into_iter().map(|f| f.id).collect();
    assert_eq!(live, ["after"]);
    // The fence only moves forward.
    store.end_user_sessions(&owner.id, now - 10, RevokeReason::Revoked).await.unwrap();
    store.create_family(&new_family("late", now - 4)).await.unwrap();
    assert_eq!(store.advance_family("late", 0, now, now + 600).await.unwrap(), None);
}

pub async fn a_lost_answer_is_retried_after_the_interval_without_a_logout(store: Arc<dyn TokenStore>) {
    let faulty: Arc<dyn TokenStore> =
        Arc::new(FailsAfterSwap { inner: store.clone(), swapped: Default::default(), failed_once: Default::default() });
    let service = service(faulty, 1);
    let (_, login) = signed_in(&service).await;
    let lost = service.refresh(Some(&login.refresh_token), &ClientInfo::default()).await;
    assert!(matches!(lost, Err(AuthError::Unavailable(_))), "{lost:?}");
    assert_eq!(store.family(&login.session_id).await.unwrap().unwrap().generation, 1, "the swap committed");
    // The client retries the same token much later than the reuse interval.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let retried = service.refresh(Some(&login.refresh_token), &ClientInfo::default()).await.unwrap();
    assert_eq!(retried.session_id, login.session_id);
    let family = store.family(&login.session_id).await.unwrap().unwrap();
    assert_eq!((family.generation, family.revoked), (1, None), "the unused successor, handed out again");
    let events = service.audit_events(&login.user.id, 10).await.unwrap();
    assert!(events.iter().any(|e| e.detail.as_deref() == Some("unused_successor")), "{events:?}");
    // The successor works, and then the old token is reuse as before.
    let next = service.refresh(Some(&retried.refresh_token), &ClientInfo::default()).await.unwrap();
    assert_eq!(
        dead_reason(service.refresh(Some(&login.refresh_token), &ClientInfo::default()).await),
        DeadReason::Reused
    );
    let _ = next;
}

pub async fn disabled_user_cannot_refresh(store: Arc<dyn TokenStore>) {
    let service = service(store.clone(), 10);
    let (name, login) = signed_in(&service).await;
    service.set_user_active(&name, false).await.unwrap();
    assert_eq!(
        dead_reason(service.refresh(Some(&login.refresh_token), &ClientInfo::default()).await),
        DeadReason::Inactive
    );
    assert!(matches!(
        service.login(&name, "correct horse battery", &ClientInfo::default()).await,
        Err(AuthError::InvalidCredentials)
    ));
    // Disabled in the store behind the service's back: the refresh path checks too.
    let (other, login) = signed_in(&service).await;
    let user = store.user_by_name(&other).await.unwrap().unwrap();
    store.set_user_active(&user.id, false).await.unwrap();
    assert_eq!(
        dead_reason(service.refresh(Some(&login.refresh_token), &ClientInfo::default()).await),
        DeadReason::Inactive
    );
    assert_eq!(store.family(&login.session_id).await.unwrap().unwrap().revoked, Some(RevokeReason::Inactive));
}

pub async fn deleted_user_cannot_refresh(store: Arc<dyn TokenStore>) {
    let service = service(store, 10);
    let (name, login) = signed_in(&service).await;
    service.delete_user(&name).await.unwrap();
    assert!(matches!(
        dead_reason(service.refresh(Some(&login.refresh_token), &ClientInfo::default()).await),
        DeadReason::Expired | DeadReason::Inactive
    ));
}

pub async fn logout_all_ends_every_session(store: Arc<dyn TokenStore>) {
    let service = service(store, 10);
    let (name, first) = signed_in(&service).await;
    let second = service.login(&name, "correct horse battery", &ClientInfo::default()).await.unwrap();
    let claims = service.verify_access_token(&second.access_token).unwrap();
    assert_eq!(service.sessions(&claims).await.unwrap().len(), 2);
    assert_eq!(service.logout_all(&claims, &ClientInfo::default()).await.unwrap(), 2);
    for issued in [first, second] {
        assert_eq!(
            dead_reason(service.refresh(Some(&issued.refresh_token), &ClientInfo::default()).await),
            DeadReason::Revoked
        );
    }
    assert!(service.sessions(&claims).await.unwrap().is_empty());
}

pub async fn expired_refresh_token_is_dead(store: Arc<dyn TokenStore>) {
    let settings = Settings { refresh_ttl_secs: 1, ..Settings::default() };
    let service = AuthService::new(store, Keys::generate(), settings);
    let (_, login) = signed_in(&service).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        dead_reason(service.refresh(Some(&login.refresh_token), &ClientInfo::default()).await),
        DeadReason::Expired
    );
}
