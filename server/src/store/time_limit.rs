use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;

use super::{
    AuditEvent, Challenge, ChallengeStore, Family, KeyStore, Maintenance, NewFamily, Revocation, RevokeReason, Rotated,
    Rotation, StoreError, StoreResult, StoredKey, TokenStore, UnixTime, User,
};

/// A store call that did not finish within the limit.
#[derive(Debug, thiserror::Error)]
#[error("the token store did not answer within {0:?}")]
struct StoreTimeout(Duration);

/// Bounds every call of a networked store in time: a store that hangs (a frozen server, a lost
/// packet) gives [`StoreError::Unavailable`], so the request answers 503 instead of hanging.
pub struct TimeLimited<S> {
    inner: S,
    limit: Duration,
}

impl<S: TokenStore> TimeLimited<S> {
    /// `inner` with every call limited to `limit`.
    pub fn new(inner: S, limit: Duration) -> Self {
        Self { inner, limit }
    }

    async fn bounded<T>(&self, call: impl Future<Output = StoreResult<T>> + Send) -> StoreResult<T> {
        tokio::time::timeout(self.limit, call)
            .await
            .unwrap_or_else(|_| Err(StoreError::unavailable(StoreTimeout(self.limit))))
    }
}

#[async_trait]
impl<S: TokenStore> TokenStore for TimeLimited<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn create_user(&self, user: &User) -> StoreResult<()> {
        self.bounded(self.inner.create_user(user)).await
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        self.bounded(self.inner.user_by_name(username)).await
    }

    async fn user_by_id(&self, user_id: &str) -> StoreResult<Option<User>> {
        self.bounded(self.inner.user_by_id(user_id)).await
    }

    async fn set_user_active(&self, user_id: &str, active: bool) -> StoreResult<bool> {
        self.bounded(self.inner.set_user_active(user_id, active)).await
    }

    async fn delete_user(&self, user_id: &str) -> StoreResult<bool> {
        self.bounded(self.inner.delete_user(user_id)).await
    }

    async fn create_family(&self, family: &NewFamily) -> StoreResult<()> {
        self.bounded(self.inner.create_family(family)).await
    }

    async fn family(&self, family_id: &str) -> StoreResult<Option<Family>> {
        self.bounded(self.inner.family(family_id)).await
    }

    async fn rotate_family(&self, rotation: &Rotation) -> StoreResult<Option<Rotated>> {
        self.bounded(self.inner.rotate_family(rotation)).await
    }

    async fn revoke_family(&self, family_id: &str, reason: RevokeReason) -> StoreResult<bool> {
        self.bounded(self.inner.revoke_family(family_id, reason)).await
    }

    async fn end_user_sessions(&self, user_id: &str, valid_after: UnixTime, reason: RevokeReason) -> StoreResult<u64> {
        self.bounded(self.inner.end_user_sessions(user_id, valid_after, reason)).await
    }

    async fn live_families(&self, user_id: &str, now: UnixTime) -> StoreResult<Vec<Family>> {
        self.bounded(self.inner.live_families(user_id, now)).await
    }

    async fn record_event(&self, event: &AuditEvent) -> StoreResult<()> {
        self.bounded(self.inner.record_event(event)).await
    }

    async fn record_revocation(&self, revocation: &Revocation) -> StoreResult<()> {
        self.bounded(self.inner.record_revocation(revocation)).await
    }

    async fn revocations_since(&self, since: UnixTime) -> StoreResult<Vec<Revocation>> {
        self.bounded(self.inner.revocations_since(since)).await
    }

    async fn recent_events(&self, user_id: &str, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        self.bounded(self.inner.recent_events(user_id, limit)).await
    }

    fn key_store(&self) -> Option<&dyn KeyStore> {
        self.inner.key_store().map(|_| self as &dyn KeyStore)
    }
}

/// The purge walks the whole store and runs in the background: it gets no limit of its own.
#[async_trait]
impl<S: TokenStore> Maintenance for TimeLimited<S> {
    async fn purge_expired(&self, now: UnixTime, events_before: UnixTime) -> StoreResult<u64> {
        self.inner.purge_expired(now, events_before).await
    }
}

/// Only reached through [`TokenStore::key_store`], which offers it when the inner store has one.
#[async_trait]
impl<S: TokenStore> KeyStore for TimeLimited<S> {
    async fn add_key(&self, key: &StoredKey) -> StoreResult<()> {
        match self.inner.key_store() {
            Some(keys) => self.bounded(keys.add_key(key)).await,
            None => Ok(()),
        }
    }

    async fn keys_sealed_by(&self, root: &str) -> StoreResult<Vec<StoredKey>> {
        match self.inner.key_store() {
            Some(keys) => self.bounded(keys.keys_sealed_by(root)).await,
            None => Ok(Vec::new()),
        }
    }
}

#[async_trait]
impl<S: TokenStore> ChallengeStore for TimeLimited<S> {
    async fn put_challenge(&self, challenge: &Challenge, now: UnixTime) -> StoreResult<()> {
        self.bounded(self.inner.put_challenge(challenge, now)).await
    }

    async fn take_challenge(&self, nonce: &str, now: UnixTime) -> StoreResult<Option<Challenge>> {
        self.bounded(self.inner.take_challenge(nonce, now)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    /// A store whose server froze: every call waits forever.
    struct Frozen;

    #[async_trait]
    impl TokenStore for Frozen {
        fn backend(&self) -> &'static str {
            "frozen"
        }
        async fn create_user(&self, _: &User) -> StoreResult<()> {
            std::future::pending().await
        }
        async fn user_by_name(&self, _: &str) -> StoreResult<Option<User>> {
            std::future::pending().await
        }
        async fn user_by_id(&self, _: &str) -> StoreResult<Option<User>> {
            std::future::pending().await
        }
        async fn set_user_active(&self, _: &str, _: bool) -> StoreResult<bool> {
            std::future::pending().await
        }
        async fn delete_user(&self, _: &str) -> StoreResult<bool> {
            std::future::pending().await
        }
        async fn create_family(&self, _: &NewFamily) -> StoreResult<()> {
            std::future::pending().await
        }
        async fn family(&self, _: &str) -> StoreResult<Option<Family>> {
            std::future::pending().await
        }
        async fn rotate_family(&self, _: &Rotation) -> StoreResult<Option<Rotated>> {
            std::future::pending().await
        }
        async fn revoke_family(&self, _: &str, _: RevokeReason) -> StoreResult<bool> {
            std::future::pending().await
        }
        async fn end_user_sessions(&self, _: &str, _: UnixTime, _: RevokeReason) -> StoreResult<u64> {
            std::future::pending().await
        }
        async fn live_families(&self, _: &str, _: UnixTime) -> StoreResult<Vec<Family>> {
            std::future::pending().await
        }
        async fn record_event(&self, _: &AuditEvent) -> StoreResult<()> {
            std::future::pending().await
        }
        async fn record_revocation(&self, _: &Revocation) -> StoreResult<()> {
            std::future::pending().await
        }
        async fn revocations_since(&self, _: UnixTime) -> StoreResult<Vec<Revocation>> {
            std::future::pending().await
        }
        async fn recent_events(&self, _: &str, _: usize) -> StoreResult<Vec<AuditEvent>> {
            std::future::pending().await
        }
    }

    #[async_trait]
    impl Maintenance for Frozen {
        async fn purge_expired(&self, _: UnixTime, _: UnixTime) -> StoreResult<u64> {
            std::future::pending().await
        }
    }

    #[async_trait]
    impl ChallengeStore for Frozen {
        async fn put_challenge(&self, _: &Challenge, _: UnixTime) -> StoreResult<()> {
            std::future::pending().await
        }
        async fn take_challenge(&self, _: &str, _: UnixTime) -> StoreResult<Option<Challenge>> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_frozen_store_answers_unavailable_within_the_limit() {
        let store = TimeLimited::new(Frozen, Duration::from_millis(50));
        let started = std::time::Instant::now();
        let rotation = Rotation {
            family_id: "family".into(),
            expected_generation: 0,
            now: 0,
            token_expires_at: 100,
            client_ip: None,
            user_agent: None,
        };
        let result = store.rotate_family(&rotation).await;
        assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_healthy_store_answers_as_it_would_without_the_limit() {
        let store = TimeLimited::new(MemoryStore::new(), Duration::from_secs(1));
        assert_eq!(store.family("missing").await.unwrap(), None);
    }
}
