//! The conformance suite every [`TokenStore`] backend must pass.
//!
//! Each case is a plain `pub async fn(Arc<dyn TokenStore>)` that panics on failure. The cases here
//! check the trait's contract (the compare-and-swap above all); the service-level cases in
//! [`crate::conformance`] run the rotation rules of [`crate::AuthService`] over the backend, so a
//! backend that satisfies the trait but breaks the rules in practice is caught too. The store
//! folder does not depend on the service: those cases live outside it.
//!
//! A backend expands the whole suite with [`conformance_tests!`](crate::conformance_tests):
//!
//! ```ignore
//! reauth_server::conformance_tests!(memory_store_tests, async { MemoryStore::new() });
//! ```
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use super::{
    family_id_for, AuditEvent, AuditKind, Challenge, Family, NewFamily, RevokeReason, Rotation, StoreError, TokenStore,
    User,
};
use crate::time::unix_now;
use crate::tokens::random_id;

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
                users_are_unique_by_name, users_can_be_disabled_and_deleted, rotation_is_a_compare_and_swap,
                rotation_refuses_revoked_and_expired_families, rotation_needs_an_active_user,
                token_expiry_never_passes_the_family_end, concurrent_rotations_have_one_winner,
                simultaneous_rotations_of_many_families_all_commit_with_their_events,
                rotations_abandoned_in_flight_happen_whole_or_not_at_all, revocation_is_first_reason_wins,
                logout_everywhere_fences_a_login_that_raced_it, revocations_are_shared_until_they_expire,
                audit_events_are_capped_per_user, live_families_lists_only_live_ones,
                events_are_kept_per_user_newest_first,
                purge_removes_only_expired_state,
                rotation_issues_a_new_token_each_time, concurrent_refreshes_of_one_token_all_succeed,
                reuse_after_the_interval_revokes_the_family, older_generation_is_reuse_even_within_interval,
                a_lost_answer_is_retried_after_the_interval_without_a_logout,
                disabled_user_cannot_refresh, deleted_user_cannot_refresh, logout_all_ends_every_session,
                expired_refresh_token_is_dead,
                key_store_keeps_sealed_keys_per_root, a_rotation_on_one_service_reaches_another_on_the_store,
                a_refresh_secret_unknown_to_a_service_makes_it_reread_the_key_set,
                an_unknown_kid_makes_a_service_reread_the_key_set,
                a_challenge_is_taken_once, an_expired_challenge_is_refused,
                concurrent_takes_of_a_challenge_have_one_winner, a_wallet_challenge_signs_in_once);
        }
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $make.await else { return };
                let store: std::sync::Arc<dyn $crate::store::TokenStore> = std::sync::Arc::new(store);
                $crate::conformance::$case(store).await;
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

pub fn user(name: &str) -> User {
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
        id: family_id_for(&user.id),
        user_id: user.id.clone(),
        created_at: now,
        expires_at: now + max_age,
        token_expires_at: now + token_ttl,
        user_agent: Some("conformance".into()),
        client_ip: Some("127.0.0.1".into()),
    }
}

/// A refresh of `family_id` at `generation`, as the service asks for it.
pub fn rotation(family_id: &str, generation: u64, now: i64, token_expires_at: i64) -> Rotation {
    Rotation {
        family_id: family_id.to_owned(),
        expected_generation: generation,
        now,
        token_expires_at,
        client_ip: Some("127.0.0.1".into()),
        user_agent: Some("conformance".into()),
    }
}

async fn rotated_family(store: &Arc<dyn TokenStore>, rotation: &Rotation) -> Option<Family> {
    store.rotate_family(rotation).await.unwrap().map(|rotated| rotated.family)
}

async fn refresh_events(store: &Arc<dyn TokenStore>, user_id: &str) -> usize {
    let events = store.recent_events(user_id, 10_000).await.unwrap();
    events.iter().filter(|event| event.kind == AuditKind::Refresh).count()
}

/// A `login` event of `user_id` at `at`.
pub fn login_event(user_id: &str, at: i64, detail: Option<&str>) -> AuditEvent {
    AuditEvent {
        kind: AuditKind::Login,
        user_id: Some(user_id.to_owned()),
        session_id: None,
        at,
        client_ip: None,
        user_agent: None,
        detail: detail.map(str::to_owned),
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

pub async fn rotation_is_a_compare_and_swap(store: Arc<dyn TokenStore>) {
    let (owner, family) = with_family(&store).await;
    let now = unix_now();
    let first = rotation(&family.id, 0, now + 5, now + 100);
    let rotated = store.rotate_family(&first).await.unwrap().unwrap();
    let advanced = &rotated.family;
    assert_eq!(
        (advanced.generation, advanced.rotated_at, advanced.last_used_at, advanced.token_expires_at),
        (1, now + 5, now + 5, now + 100)
    );
    assert_eq!(rotated.user, owner, "the user, read in the same step");
    assert_eq!(store.recent_events(&owner.id, 10).await.unwrap(), [first.event(&owner.id)], "with its event");
    assert_eq!(rotated_family(&store, &rotation(&family.id, 0, now + 6, now + 100)).await, None, "stale generation");
    assert_eq!(store.family(&family.id).await.unwrap().unwrap().generation, 1);
    assert_eq!(rotated_family(&store, &rotation(&family.id, 1, now + 7, now + 100)).await.unwrap().generation, 2);
    assert_eq!(rotated_family(&store, &rotation("no-such-family", 0, now, now + 100)).await, None);
    assert_eq!(refresh_events(&store, &owner.id).await, 2, "no event for a refused rotation");
}

pub async fn rotation_refuses_revoked_and_expired_families(store: Arc<dyn TokenStore>) {
    let (owner, revoked) = with_family(&store).await;
    let now = unix_now();
    assert!(store.revoke_family(&revoked.id, RevokeReason::Logout).await.unwrap());
    assert_eq!(rotated_family(&store, &rotation(&revoked.id, 0, now, now + 100)).await, None);

    let expiring = family_for(&owner, now, 10, 86_400);
    store.create_family(&expiring).await.unwrap();
    assert_eq!(rotated_family(&store, &rotation(&expiring.id, 0, now + 10, now + 100)).await, None, "token expired");
    assert_eq!(store.family(&expiring.id).await.unwrap().unwrap().generation, 0);
    assert_eq!(refresh_events(&store, &owner.id).await, 0);
}

/// The user check is part of the atomic step: a disabled or deleted user's family does not move and
/// gets no event, so the service can revoke it as `inactive`.
pub async fn rotation_needs_an_active_user(store: Arc<dyn TokenStore>) {
    let (owner, family) = with_family(&store).await;
    let now = unix_now();
    store.set_user_active(&owner.id, false).await.unwrap();
    assert_eq!(rotated_family(&store, &rotation(&family.id, 0, now, now + 100)).await, None);
    assert_eq!(store.family(&family.id).await.unwrap().unwrap().generation, 0, "nothing changed");
    assert_eq!(refresh_events(&store, &owner.id).await, 0, "no event for an inactive user");
    store.set_user_active(&owner.id, true).await.unwrap();
    assert!(rotated_family(&store, &rotation(&family.id, 0, now, now + 100)).await.is_some(), "active again");
    store.delete_user(&owner.id).await.unwrap();
    assert_eq!(rotated_family(&store, &rotation(&family.id, 1, now, now + 100)).await, None, "deleted");
}

pub async fn token_expiry_never_passes_the_family_end(store: Arc<dyn TokenStore>) {
    let owner = user("capped");
    store.create_user(&owner).await.unwrap();
    let now = unix_now();
    let family = family_for(&owner, now, 3600, 60);
    store.create_family(&family).await.unwrap();
    assert_eq!(store.family(&family.id).await.unwrap().unwrap().token_expires_at, now + 60);
    let advanced = rotated_family(&store, &rotation(&family.id, 0, now + 1, now + 3601)).await.unwrap();
    assert_eq!(advanced.token_expires_at, now + 60);
}

pub async fn concurrent_rotations_have_one_winner(store: Arc<dyn TokenStore>) {
    let (owner, family) = with_family(&store).await;
    let now = unix_now();
    let attempts = (0..20).map(|_| {
        let (store, rotation) = (store.clone(), rotation(&family.id, 0, now, now + 100));
        tokio::spawn(async move { store.rotate_family(&rotation).await.unwrap() })
    });
    let mut winners = 0;
    for attempt in attempts {
        winners += usize::from(attempt.await.unwrap().is_some());
    }
    assert_eq!(winners, 1);
    assert_eq!(store.family(&family.id).await.unwrap().unwrap().generation, 1);
    assert_eq!(refresh_events(&store, &owner.id).await, 1, "one event, the winner's");
}

/// Many sessions refreshing at once (what a backend may batch into one commit): every rotation
/// lands with its own event, none is lost or applied twice, and a refused one in the same batch
/// changes nothing.
pub async fn simultaneous_rotations_of_many_families_all_commit_with_their_events(store: Arc<dyn TokenStore>) {
    const SESSIONS: usize = 64;
    let owner = user(&format!("many{}", &random_id()[..8].to_ascii_lowercase()));
    store.create_user(&owner).await.unwrap();
    let now = unix_now();
    let families: Vec<NewFamily> = (0..SESSIONS).map(|_| family_for(&owner, now, 3600, 86_400)).collect();
    for family in &families {
        store.create_family(family).await.unwrap();
    }
    for round in 0..3u64 {
        let attempts: Vec<_> = families
            .iter()
            .enumerate()
            .map(|(index, family)| {
                // Every eighth presents a stale generation: refused, in the middle of the others.
                let generation = if index % 8 == 7 { round + 5 } else { round };
                let (store, rotation) =
                    (store.clone(), rotation(&family.id, generation, now + round as i64, now + 600));
                tokio::spawn(async move { store.rotate_family(&rotation).await.unwrap() })
            })
            .collect();
        for (index, attempt) in attempts.into_iter().enumerate() {
            let rotated = attempt.await.unwrap();
            assert_eq!(rotated.is_some(), index % 8 != 7, "family {index}, round {round}");
            if let Some(rotated) = rotated {
                assert_eq!(
                    (rotated.family.id.as_str(), rotated.family.generation),
                    (families[index].id.as_str(), round + 1)
                );
            }
        }
    }
    for (index, family) in families.iter().enumerate() {
        let expected = if index % 8 == 7 { 0 } else { 3 };
        assert_eq!(store.family(&family.id).await.unwrap().unwrap().generation, expected, "family {index}");
    }
    let events = store.recent_events(&owner.id, 10_000).await.unwrap();
    let rotated = SESSIONS - SESSIONS / 8;
    assert_eq!(events.len(), 3 * rotated, "one event per rotation");
    for family in families.iter().step_by(8) {
        let mine = events.iter().filter(|event| event.session_id.as_deref() == Some(family.id.as_str())).count();
        assert_eq!(mine, 3, "{}", family.id);
    }
}

/// Callers that stop waiting for their rotation (a request cancelled, a time limit hit) leave each
/// rotation whole or absent: afterwards no family is behind a rotation that was acknowledged, and
/// each has exactly one `refresh` event per generation. A batching backend answers after its
/// commit, so a waiter dropped mid-batch must leave neither half a rotation nor a lost one.
pub async fn rotations_abandoned_in_flight_happen_whole_or_not_at_all(store: Arc<dyn TokenStore>) {
    let owner = user(&format!("gone{}", &random_id()[..8].to_ascii_lowercase()));
    store.create_user(&owner).await.unwrap();
    let families = rotate_until_abandoned(&store, &owner).await;
    for (family, acknowledged) in &families {
        let generation = settle(&store, family).await;
        assert!(generation > *acknowledged, "{family}: generation {generation}, acknowledged {acknowledged}");
        let events = store.recent_events(&owner.id, 10_000).await.unwrap();
        let mine = events
            .iter()
            .filter(|event| event.kind == AuditKind::Refresh && event.session_id.as_deref() == Some(family.as_str()))
            .count();
        assert_eq!(mine as u64, generation, "{family}: one event per rotation");
    }
}

/// Starts 16 families of `owner`, rotates each in a loop of its own until 64 rotations in all were
/// acknowledged, then abandons the loops wherever they are (some rotations in flight). Returns each
/// family's id and the last generation a rotation of it was acknowledged at.
pub async fn rotate_until_abandoned(store: &Arc<dyn TokenStore>, owner: &User) -> Vec<(String, u64)> {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    const SESSIONS: usize = 16;
    const ACKNOWLEDGED: usize = 64;
    let now = unix_now();
    let acknowledged_in_all = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(tokio::sync::Notify::new());
    let mut loops = Vec::new();
    let mut families = Vec::new();
    for _ in 0..SESSIONS {
        let family = family_for(owner, now, 3600, 86_400);
        store.create_family(&family).await.unwrap();
        let acknowledged = Arc::new(AtomicU64::new(0));
        families.push((family.id.clone(), acknowledged.clone()));
        let (store, acknowledged_in_all, enough) = (store.clone(), acknowledged_in_all.clone(), enough.clone());
        loops.push(tokio::spawn(async move {
            for generation in 0.. {
                let rotated = store.rotate_family(&rotation(&family.id, generation, now, now + 600)).await.unwrap();
                assert!(rotated.is_some(), "the only rotator of {} refused at {generation}", family.id);
                acknowledged.store(generation + 1, Ordering::SeqCst);
                if acknowledged_in_all.fetch_add(1, Ordering::SeqCst) + 1 == ACKNOWLEDGED {
                    enough.notify_one();
                }
                // A store that never waits (memory) would otherwise never give the abort a chance.
                tokio::task::yield_now().await;
            }
        }));
    }
    enough.notified().await;
    for running in &loops {
        running.abort();
    }
    for running in loops {
        if let Err(error) = running.await {
            assert!(error.is_cancelled(), "a rotation loop failed: {error}");
        }
    }
    families.into_iter().map(|(id, acknowledged)| (id, acknowledged.load(Ordering::SeqCst))).collect()
}

/// Rotates `family_id` once more, acknowledged, and returns its generation after. A rotation
/// abandoned in flight may still be committing: the compare-and-swap refuses ours until it is
/// done, and after ours none of them can succeed, so the family stays as returned.
pub async fn settle(store: &Arc<dyn TokenStore>, family_id: &str) -> u64 {
    let now = unix_now();
    loop {
        let current = store.family(family_id).await.unwrap().unwrap().generation;
        if let Some(rotated) = store.rotate_family(&rotation(family_id, current, now, now + 600)).await.unwrap() {
            return rotated.family.generation;
        }
    }
}

pub async fn revocation_is_first_reason_wins(store: Arc<dyn TokenStore>) {
    let (owner, family) = with_family(&store).await;
    let other = family_for(&owner, unix_now(), 3600, 86_400);
    store.create_family(&other).await.unwrap();
    assert!(store.revoke_family(&family.id, RevokeReason::Reused).await.unwrap());
    assert!(!store.revoke_family(&family.id, RevokeReason::Logout).await.unwrap());
    assert_eq!(store.family(&family.id).await.unwrap().unwrap().revoked, Some(RevokeReason::Reused));
    assert_eq!(store.end_user_sessions(&owner.id, 0, RevokeReason::Revoked).await.unwrap(), 1, "the other one");
    assert_eq!(store.family(&other.id).await.unwrap().unwrap().revoked, Some(RevokeReason::Revoked));
    assert_eq!(store.family(&family.id).await.unwrap().unwrap().revoked, Some(RevokeReason::Reused));
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
    rotated_family(&store, &rotation(&second.id, 0, now + 1, now + 3600)).await.unwrap();
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

pub async fn purge_removes_only_expired_state(store: Arc<dyn TokenStore>) {
    let (owner, live) = with_family(&store).await;
    let now = unix_now();
    let expired = family_for(&owner, now - 100, 50, 86_400);
    store.create_family(&expired).await.unwrap();
    store.record_event(&login_event(&owner.id, now - 1000, None)).await.unwrap();
    store.record_event(&login_event(&owner.id, now, None)).await.unwrap();
    assert_eq!(store.purge_expired(now, now - 500).await.unwrap(), 2);
    assert!(store.family(&live.id).await.unwrap().is_some());
    assert!(store.family(&expired.id).await.unwrap().is_none());
    assert_eq!(store.recent_events(&owner.id, 10).await.unwrap().len(), 1);
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
    let id = |name: &str| format!("{}.{name}", owner.id);
    let new_family = |name: &str, created_at| NewFamily {
        id: id(name),
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
    assert_eq!(rotated_family(&store, &rotation(&id("raced"), 0, now, now + 600)).await, None, "fenced");
    assert_eq!(rotated_family(&store, &rotation(&id("before"), 0, now, now + 600)).await, None, "revoked");
    store.create_family(&new_family("after", now - 2)).await.unwrap();
    assert!(
        rotated_family(&store, &rotation(&id("after"), 0, now, now + 600)).await.is_some(),
        "a login after the fence"
    );
    let live: Vec<String> = store.live_families(&owner.id, now).await.unwrap().into_iter().map(|f| f.id).collect();
    assert_eq!(live, [id("after")]);
    // The fence only moves forward.
    store.end_user_sessions(&owner.id, now - 10, RevokeReason::Revoked).await.unwrap();
    store.create_family(&new_family("late", now - 4)).await.unwrap();
    assert_eq!(rotated_family(&store, &rotation(&id("late"), 0, now, now + 600)).await, None);
}

// ---- the key set (`reauth-server keys rotate`) over this backend ----

pub async fn key_store_keeps_sealed_keys_per_root(store: Arc<dyn TokenStore>) {
    use super::{KeyKind, StoredKey};
    let keys = store.key_store().expect("every backend of this crate keeps a key set");
    let (root, other_root) = (random_id(), random_id());
    let key = |root: &str, id: &str, kind, sealed: &[u8]| StoredKey {
        id: id.into(),
        root: root.into(),
        kind,
        created_at: 1_700_000_000,
        active_at: 1_700_000_600,
        sealed: sealed.to_vec(),
    };
    let signing = key(&root, "kid-1", KeyKind::Signing, &[0, 1, 2, 255]);
    let refresh = key(&root, "secret-1", KeyKind::Refresh, &[9; 56]);
    keys.add_key(&signing).await.unwrap();
    keys.add_key(&refresh).await.unwrap();
    keys.add_key(&key(&other_root, "kid-1", KeyKind::Signing, &[7])).await.unwrap();
    // Adding an id again keeps the first: a key never changes once instances may have used it.
    keys.add_key(&key(&root, "kid-1", KeyKind::Signing, &[1])).await.unwrap();
    let mut mine = keys.keys_sealed_by(&root).await.unwrap();
    mine.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(mine, [signing, refresh]);
    assert_eq!(keys.keys_sealed_by(&other_root).await.unwrap().len(), 1);
    assert!(keys.keys_sealed_by(&random_id()).await.unwrap().is_empty());
}

// ---- wallet sign-in challenges ----

fn challenge(nonce: &str, expires_at: i64) -> Challenge {
    Challenge {
        nonce: nonce.into(),
        account: "GBRPYHIL2CI3FNQ4BXLFMNDLFJUNPU2HY3ZMFSHONUCEOASW7QC7OX2H".into(),
        message: format!("sign-in challenge {nonce}"),
        expires_at,
    }
}

pub async fn a_challenge_is_taken_once(store: Arc<dyn TokenStore>) {
    let now = unix_now();
    let (first, second) = (challenge(&random_id(), now + 300), challenge(&random_id(), now + 300));
    store.put_challenge(&first, now).await.unwrap();
    store.put_challenge(&second, now).await.unwrap();
    assert_eq!(store.take_challenge(&first.nonce, now).await.unwrap(), Some(first.clone()));
    assert_eq!(store.take_challenge(&first.nonce, now).await.unwrap(), None);
    assert_eq!(store.take_challenge("never-issued", now).await.unwrap(), None);
    assert_eq!(store.take_challenge(&second.nonce, now).await.unwrap(), Some(second));
}

pub async fn an_expired_challenge_is_refused(store: Arc<dyn TokenStore>) {
    let now = unix_now();
    let soon = challenge(&random_id(), now + 5);
    store.put_challenge(&soon, now).await.unwrap();
    assert_eq!(store.take_challenge(&soon.nonce, now + 5).await.unwrap(), None);
    // Refused once is gone for good, even at an earlier clock (another instance's).
    assert_eq!(store.take_challenge(&soon.nonce, now).await.unwrap(), None);
}

pub async fn concurrent_takes_of_a_challenge_have_one_winner(store: Arc<dyn TokenStore>) {
    let now = unix_now();
    let contested = challenge(&random_id(), now + 300);
    store.put_challenge(&contested, now).await.unwrap();
    let takes: Vec<_> = (0..8)
        .map(|_| {
            let (store, nonce) = (store.clone(), contested.nonce.clone());
            tokio::spawn(async move { store.take_challenge(&nonce, now).await.unwrap() })
        })
        .collect();
    let mut taken = Vec::new();
    for take in takes {
        taken.extend(take.await.unwrap());
    }
    assert_eq!(taken, [contested]);
}
