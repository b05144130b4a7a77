use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    AuditEvent, Challenge, ChallengeStore, Family, KeyStore, Maintenance, NewFamily, Revocation, RevokeReason, Rotated,
    Rotation, StoreError, StoreResult, StoredKey, TokenStore, UnixTime, User,
};

/// A [`TokenStore`] in process memory: for tests and single-process experiments. Everything is lost
/// on restart.
///
/// Each method holds one mutex for its whole body, which is what makes
/// [`rotate_family`](TokenStore::rotate_family) a compare-and-swap.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    keys: Mutex<Vec<StoredKey>>,
    challenges: Mutex<Challenges>,
}

#[derive(Default)]
struct Inner {
    users: HashMap<String, User>,
    user_ids_by_name: HashMap<String, String>,
    families: HashMap<String, Family>,
    events: Vec<AuditEvent>,
    /// Each user's fence ([`TokenStore::end_user_sessions`]).
    sessions_valid_after: HashMap<String, UnixTime>,
    revocations: Vec<Revocation>,
}

impl Inner {
    fn fenced(&self, family: &Family) -> bool {
        self.sessions_valid_after.get(&family.user_id).is_some_and(|valid_after| family.created_at < *valid_after)
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied update (each body mutates at
        // most one entry last), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let mut inner = self.lock();
        if inner.user_ids_by_name.contains_key(&user.username) {
            return Err(StoreError::Conflict);
        }
        inner.user_ids_by_name.insert(user.username.clone(), user.id.clone());
        inner.users.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        let inner = self.lock();
        Ok(inner.user_ids_by_name.get(username).and_then(|id| inner.users.get(id)).cloned())
    }

    async fn user_by_id(&self, user_id: &str) -> StoreResult<Option<User>> {
        Ok(self.lock().users.get(user_id).cloned())
    }

    async fn set_user_active(&self, user_id: &str, active: bool) -> StoreResult<bool> {
        Ok(self.lock().users.get_mut(user_id).map(|user| user.active = active).is_some())
    }

    async fn delete_user(&self, user_id: &str) -> StoreResult<bool> {
        let mut inner = self.lock();
        let Some(user) = inner.users.remove(user_id) else { return Ok(false) };
        inner.user_ids_by_name.remove(&user.username);
        inner.families.retain(|_, family| family.user_id != user_id);
        inner.sessions_valid_after.remove(user_id);
        Ok(true)
    }

    async fn create_family(&self, family: &NewFamily) -> StoreResult<()> {
        let family = Family {
            id: family.id.clone(),
            user_id: family.user_id.clone(),
            generation: 0,
            created_at: family.created_at,
            expires_at: family.expires_at,
            token_expires_at: family.token_expires_at.min(family.expires_at),
            rotated_at: family.created_at,
            last_used_at: family.created_at,
            user_agent: family.user_agent.clone(),
            client_ip: family.client_ip.clone(),
            revoked: None,
        };
        self.lock().families.insert(family.id.clone(), family);
        Ok(())
    }

    async fn family(&self, family_id: &str) -> StoreResult<Option<Family>> {
        Ok(self.lock().families.get(family_id).cloned())
    }

    async fn rotate_family(&self, rotation: &Rotation) -> StoreResult<Option<Rotated>> {
        let mut inner = self.lock();
        let Some(family) = inner.families.get(&rotation.family_id) else { return Ok(None) };
        let user = match inner.users.get(&family.user_id) {
            Some(user) if user.active => user.clone(),
            _ => return Ok(None),
        };
        if family.generation != rotation.expected_generation || !family.is_live(rotation.now) || inner.fenced(family) {
            return Ok(None);
        }
        let event = rotation.event(&family.user_id);
        let Some(family) = inner.families.get_mut(&rotation.family_id) else { return Ok(None) };
        family.generation += 1;
        family.rotated_at = rotation.now;
        family.last_used_at = rotation.now;
        family.token_expires_at = rotation.token_expires_at.min(family.expires_at);
        let family = family.clone();
        inner.events.push(event);
        Ok(Some(Rotated { family, user }))
    }

    async fn revoke_family(&self, family_id: &str, reason: RevokeReason) -> StoreResult<bool> {
        let mut inner = self.lock();
        match inner.families.get_mut(family_id) {
            Some(family) if family.revoked.is_none() => {
                family.revoked = Some(reason);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn end_user_sessions(&self, user_id: &str, valid_after: UnixTime, reason: RevokeReason) -> StoreResult<u64> {
        let mut inner = self.lock();
        let fence = inner.sessions_valid_after.entry(user_id.to_owned()).or_insert(valid_after);
        *fence = (*fence).max(valid_after);
        let mut revoked = 0;
        for family in inner.families.values_mut() {
            if family.user_id == user_id && family.revoked.is_none() {
                family.revoked = Some(reason);
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    async fn live_families(&self, user_id: &str, now: UnixTime) -> StoreResult<Vec<Family>> {
        let inner = self.lock();
        let mut families: Vec<Family> = inner
            .families
            .values()
            .filter(|family| family.user_id == user_id && family.is_live(now) && !inner.fenced(family))
            .cloned()
            .collect();
        families.sort_by(|a, b| b.last_used_at.cmp(&a.last_used_at).then_with(|| a.id.cmp(&b.id)));
        Ok(families)
    }

    async fn record_event(&self, event: &AuditEvent) -> StoreResult<()> {
        self.lock().events.push(event.clone());
        Ok(())
    }

    async fn record_revocation(&self, revocation: &Revocation) -> StoreResult<()> {
        self.lock().revocations.push(revocation.clone());
        Ok(())
    }

    async fn revocations_since(&self, since: UnixTime) -> StoreResult<Vec<Revocation>> {
        Ok(self.lock().revocations.iter().filter(|revocation| revocation.at >= since).cloned().collect())
    }

    async fn recent_events(&self, user_id: &str, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        let inner = self.lock();
        Ok(inner
            .events
            .iter()
            .rev()
            .filter(|event| event.user_id.as_deref() == Some(user_id))
            .take(limit)
            .cloned()
            .collect())
    }

    fn key_store(&self) -> Option<&dyn KeyStore> {
        Some(self)
    }
}

#[async_trait]
impl Maintenance for MemoryStore {
    async fn purge_expired(&self, now: UnixTime, events_before: UnixTime) -> StoreResult<u64> {
        let mut inner = self.lock();
        let before = inner.families.len() + inner.events.len() + inner.revocations.len();
        inner.families.retain(|_, family| family.token_expires_at > now && family.expires_at > now);
        inner.events.retain(|event| event.at >= events_before);
        // The newest AUDIT_EVENTS_PER_USER of each user (events are in time order).
        let mut seen: HashMap<Option<String>, usize> = HashMap::new();
        let mut keep: Vec<bool> = inner
            .events
            .iter()
            .rev()
            .map(|event| {
                let count = seen.entry(event.user_id.clone()).or_default();
                *count += 1;
                *count <= super::AUDIT_EVENTS_PER_USER
            })
            .collect();
        keep.reverse();
        let mut flags = keep.into_iter();
        inner.events.retain(|_| flags.next().unwrap_or(true));
        inner.revocations.retain(|revocation| revocation.expires_at > now);
        Ok((before - inner.families.len() - inner.events.len() - inner.revocations.len()) as u64)
    }
}

/// Wallet challenges by nonce, with the size after the last sweep of expired ones.
#[derive(Default)]
struct Challenges {
    by_nonce: HashMap<String, Challenge>,
    swept_len: usize,
}

/// Expired challenges are swept once the map has doubled since the last sweep (and holds at least
/// this many), which keeps it within twice the live challenges at amortised constant cost.
const CHALLENGE_SWEEP_MIN: usize = 64;

#[async_trait]
impl ChallengeStore for MemoryStore {
    async fn put_challenge(&self, challenge: &Challenge, now: UnixTime) -> StoreResult<()> {
        let mut challenges = self.challenges.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if challenges.by_nonce.len() >= CHALLENGE_SWEEP_MIN.max(2 * challenges.swept_len) {
            challenges.by_nonce.retain(|_, challenge| challenge.expires_at > now);
            challenges.swept_len = challenges.by_nonce.len();
        }
        challenges.by_nonce.insert(challenge.nonce.clone(), challenge.clone());
        Ok(())
    }

    async fn take_challenge(&self, nonce: &str, now: UnixTime) -> StoreResult<Option<Challenge>> {
        let mut challenges = self.challenges.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(challenges.by_nonce.remove(nonce).filter(|challenge| challenge.expires_at > now))
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn add_key(&self, key: &StoredKey) -> StoreResult<()> {
        let mut keys = self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !keys.iter().any(|kept| kept.root == key.root && kept.id == key.id) {
            keys.push(key.clone());
        }
        Ok(())
    }

    async fn keys_sealed_by(&self, root: &str) -> StoreResult<Vec<StoredKey>> {
        let keys = self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(keys.iter().filter(|key| key.root == root).cloned().collect())
    }
}

#[cfg(test)]
crate::conformance_tests!(memory_store_tests, async { MemoryStore::new() });

#[cfg(test)]
mod challenge_tests {
    use super::*;

    #[tokio::test]
    async fn expired_challenges_do_not_accumulate() {
        let store = MemoryStore::new();
        for round in 0..100 {
            for index in 0..50 {
                let challenge = Challenge {
                    nonce: format!("{round}-{index}"),
                    account: "G".into(),
                    message: String::new(),
                    expires_at: round + 1,
                };
                store.put_challenge(&challenge, round).await.unwrap_or_else(|_| unreachable!());
            }
        }
        // 5000 issued, at most 50 live at any time: the map stays within twice that plus the floor.
        let kept = store.challenges.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).by_nonce.len();
        assert!(kept <= 2 * 50 + CHALLENGE_SWEEP_MIN, "{kept} challenges kept");
    }
}
