//! The service-level half of the store conformance suite: the rotation rules of [`AuthService`]
//! (hand-back of the unused successor, reuse, inactive users, logout everywhere, key rotation across
//! instances, wallet sign-in) run over a backend.
//! Together with the store-level cases of [`crate::store::conformance`], re-exported here, this is
//! the suite [`conformance_tests!`](crate::conformance_tests) expands per backend.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use crate::config::Settings;
use crate::service::{AuthError, AuthService, ClientInfo, DeadReason};
pub use crate::store::conformance::*;
use crate::store::{AuditEvent, AuditKind, Challenge, NewFamily, RevokeReason, StoreError, TokenStore, User};
use crate::time::unix_now;
use crate::tokens::{random_id, Keys};

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

/// A store whose first successful rotation commits and then fails (once): its answer never reaches
/// the client, as with a timeout or a dropped connection.
struct FailsAfterSwap {
    inner: Arc<dyn TokenStore>,
    failed_once: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl TokenStore for FailsAfterSwap {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn create_user(&self, user: &User) -> crate::store::StoreResult<()> {
        self.inner.create_user(user).await
    }
    async fn user_by_name(&self, username: &str) -> crate::store::StoreResult<Option<User>> {
        self.inner.user_by_name(username).await
    }
    async fn user_by_id(&self, user_id: &str) -> crate::store::StoreResult<Option<User>> {
        self.inner.user_by_id(user_id).await
    }
    async fn set_user_active(&self, user_id: &str, active: bool) -> crate::store::StoreResult<bool> {
        self.inner.set_user_active(user_id, active).await
    }
    async fn delete_user(&self, user_id: &str) -> crate::store::StoreResult<bool> {
        self.inner.delete_user(user_id).await
    }
    async fn create_family(&self, family: &NewFamily) -> crate::store::StoreResult<()> {
        self.inner.create_family(family).await
    }
    async fn family(&self, family_id: &str) -> crate::store::StoreResult<Option<crate::store::Family>> {
        self.inner.family(family_id).await
    }
    async fn rotate_family(
        &self,
        rotation: &crate::store::Rotation,
    ) -> crate::store::StoreResult<Option<crate::store::Rotated>> {
        let rotated = self.inner.rotate_family(rotation).await?;
        if rotated.is_some() && !self.failed_once.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::unavailable(std::io::Error::other("connection lost after the commit")));
        }
        Ok(rotated)
    }
    async fn revoke_family(&self, family_id: &str, reason: RevokeReason) -> crate::store::StoreResult<bool> {
        self.inner.revoke_family(family_id, reason).await
    }
    async fn end_user_sessions(
        &self,
        user_id: &str,
        valid_after: crate::store::UnixTime,
        reason: RevokeReason,
    ) -> crate::store::StoreResult<u64> {
        self.inner.end_user_sessions(user_id, valid_after, reason).await
    }
    async fn live_families(
        &self,
        user_id: &str,
        now: crate::store::UnixTime,
    ) -> crate::store::StoreResult<Vec<crate::store::Family>> {
        self.inner.live_families(user_id, now).await
    }
    async fn record_event(&self, event: &AuditEvent) -> crate::store::StoreResult<()> {
        self.inner.record_event(event).await
    }
    async fn record_revocation(&self, revocation: &crate::store::Revocation) -> crate::store::StoreResult<()> {
        self.inner.record_revocation(revocation).await
    }
    async fn revocations_since(
        &self,
        since: crate::store::UnixTime,
    ) -> crate::store::StoreResult<Vec<crate::store::Revocation>> {
        self.inner.revocations_since(since).await
    }
    async fn recent_events(&self, user_id: &str, limit: usize) -> crate::store::StoreResult<Vec<AuditEvent>> {
        self.inner.recent_events(user_id, limit).await
    }
}

#[async_trait::async_trait]
impl crate::store::Maintenance for FailsAfterSwap {
    async fn purge_expired(
        &self,
        now: crate::store::UnixTime,
        events_before: crate::store::UnixTime,
    ) -> crate::store::StoreResult<u64> {
        self.inner.purge_expired(now, events_before).await
    }
}

#[async_trait::async_trait]
impl crate::store::ChallengeStore for FailsAfterSwap {
    async fn put_challenge(&self, challenge: &Challenge, now: crate::store::UnixTime) -> crate::store::StoreResult<()> {
        self.inner.put_challenge(challenge, now).await
    }
    async fn take_challenge(
        &self,
        nonce: &str,
        now: crate::store::UnixTime,
    ) -> crate::store::StoreResult<Option<Challenge>> {
        self.inner.take_challenge(nonce, now).await
    }
}

pub async fn a_lost_answer_is_retried_after_the_interval_without_a_logout(store: Arc<dyn TokenStore>) {
    let faulty: Arc<dyn TokenStore> =
        Arc::new(FailsAfterSwap { inner: store.clone(), failed_once: Default::default() });
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

// ---- the key set (`reauth-server keys rotate`) over this backend ----

pub async fn a_rotation_on_one_service_reaches_another_on_the_store(store: Arc<dyn TokenStore>) {
    use crate::store::KeyKind;
    let root = Keys::generate();
    let settings = Settings { clock_leeway_secs: 0, ..Settings::default() };
    let first = AuthService::new(store.clone(), root.clone(), settings.clone());
    let second = AuthService::new(store, root.clone(), settings);
    let (_, before) = signed_in(&second).await;
    assert!(before.refresh_token.starts_with("rt1."));

    let kid = first.rotate_key(KeyKind::Signing, 0).await.unwrap();
    let secret = first.rotate_key(KeyKind::Refresh, 0).await.unwrap();
    assert_eq!(first.access_tokens().current_kid(unix_now()), kid);
    second.reload_keys().await.unwrap();
    assert_eq!(second.access_tokens().current_kid(unix_now()), kid, "the other service reads the same set");
    assert!(second.describe_keys(unix_now()).iter().any(|key| key.id == secret));

    // Nothing issued before is lost: the old access token verifies on both, the rt1 token refreshes.
    for service in [&first, &second] {
        assert!(service.verify_access_token(&before.access_token).is_ok());
    }
    let after = second.refresh(Some(&before.refresh_token), &ClientInfo::default()).await.unwrap();
    assert!(after.refresh_token.starts_with("rt2."), "{}", after.refresh_token);
    assert!(first.verify_access_token(&after.access_token).is_ok(), "signed by the new key, known to both");
    let again = first.refresh(Some(&after.refresh_token), &ClientInfo::default()).await.unwrap();
    assert_eq!(again.session_id, before.session_id);
}

pub async fn a_refresh_secret_unknown_to_a_service_makes_it_reread_the_key_set(store: Arc<dyn TokenStore>) {
    use crate::store::KeyKind;
    let root = Keys::generate();
    let first = AuthService::new(store.clone(), root.clone(), Settings::default());
    let second = AuthService::new(store, root, Settings::default());
    let (_, login) = signed_in(&first).await;
    // An immediate rotation on one instance; the other has not reread the set yet.
    first.rotate_key(KeyKind::Refresh, 0).await.unwrap();
    let on_first = first.refresh(Some(&login.refresh_token), &ClientInfo::default()).await.unwrap();
    assert!(on_first.refresh_token.starts_with("rt2."));
    let on_second = second.refresh(Some(&on_first.refresh_token), &ClientInfo::default()).await;
    assert_eq!(on_second.unwrap().session_id, login.session_id, "not signed out by a secret it had not read yet");
}

pub async fn an_unknown_kid_makes_a_service_reread_the_key_set(store: Arc<dyn TokenStore>) {
    use crate::store::KeyKind;
    use crate::tokens::AccessTokenError;
    let root = Keys::generate();
    let first = AuthService::new(store.clone(), root.clone(), Settings::default());
    let second = AuthService::new(store, root, Settings::default());
    // An immediate rotation on one instance; the other has not reread the set yet.
    let kid = first.rotate_key(KeyKind::Signing, 0).await.unwrap();
    let (_, login) = signed_in(&first).await;
    assert_eq!(second.verify_access_token(&login.access_token).unwrap_err(), AccessTokenError::UnknownKey);
    // That refusal made it reread the set in the background: a retry soon succeeds.
    for _ in 0..200 {
        if second.verify_access_token(&login.access_token).is_ok() {
            assert_eq!(second.access_tokens().current_kid(unix_now()), kid);
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the second service never reread the key set");
}

// ---- wallet sign-in over this backend ----

/// A Stellar key pair as a wallet holds it.
fn wallet_key() -> (ed25519_dalek::SigningKey, String) {
    let key = ed25519_dalek::SigningKey::from_bytes(&crate::tokens::random_bytes::<32>());
    let account = stellar_strkey::ed25519::PublicKey(key.verifying_key().to_bytes()).to_string();
    (key, account.as_str().to_owned())
}

fn sep53_sign(key: &ed25519_dalek::SigningKey, message: &str) -> String {
    use base64::Engine as _;
    use ed25519_dalek::Signer as _;
    base64::engine::general_purpose::STANDARD.encode(key.sign(&crate::stellar::sep53_hash(message)).to_bytes())
}

pub async fn a_wallet_challenge_signs_in_once(store: Arc<dyn TokenStore>) {
    let settings = Settings { public_origins: vec!["https://app.example.com".into()], ..Settings::default() };
    let service = AuthService::new(store, Keys::generate(), settings);
    let (key, account) = wallet_key();
    let client = ClientInfo::default();
    let challenge = service.wallet_challenge(&account, &client).await.unwrap();
    let signature = sep53_sign(&key, &challenge.message);
    let issued = service.wallet_login(&account, &challenge.message, &signature, &client).await.unwrap();
    assert_eq!(issued.user.username, format!("stellar:{account}"));
    let replay = service.wallet_login(&account, &challenge.message, &signature, &client).await;
    assert!(matches!(replay, Err(AuthError::InvalidCredentials)), "{replay:?}");
    // The second sign-in finds the user the first created, and the session refreshes as any other.
    let again = service.wallet_challenge(&account, &client).await.unwrap();
    let second = service.wallet_login(&account, &again.message, &sep53_sign(&key, &again.message), &client).await;
    assert_eq!(second.unwrap().user.id, issued.user.id);
    service.refresh(Some(&issued.refresh_token), &client).await.unwrap();
}
