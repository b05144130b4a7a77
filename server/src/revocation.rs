//! Revocation that reaches access tokens at once: the in-memory list every Bearer check consults.
//!
//! Access tokens are verified without the store, so on their own they outlive a logout, a revoked
//! device or a disabled user by up to their lifetime. Each instance therefore keeps the revocations
//! that can still matter (those recorded within the last access-token lifetime: older ones refuse
//! only tokens that have expired anyway) in memory. A revocation made on this instance applies at
//! once; the others learn it by polling the store ([`crate::store::TokenStore::revocations_since`])
//! every [`POLL_EVERY`]. A check is one read lock and two hash lookups.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use crate::store::{Revocation, RevokedSubject, UnixTime};
use crate::tokens::AccessClaims;

/// How often each instance asks the store for revocations made elsewhere.
pub const POLL_EVERY: Duration = Duration::from_millis(500);
/// How far back each poll looks beyond the previous one: a revocation written with a clock a little
/// behind, or committed a little late, is still seen. Applying one twice is harmless.
pub(crate) const POLL_OVERLAP_SECS: i64 = 5;

#[derive(Default)]
struct Lists {
    /// Session id → when its entry can go.
    sessions: HashMap<String, UnixTime>,
    /// User id → (tokens issued before this second are refused, when the entry can go).
    users: HashMap<String, (UnixTime, UnixTime)>,
}

/// The revocations still relevant to access tokens; see the module documentation.
#[derive(Default)]
pub struct RevocationList {
    lists: RwLock<Lists>,
}

impl std::fmt::Debug for RevocationList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationList").field("entries", &self.len()).finish()
    }
}

impl RevocationList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a revocation (idempotent); one already past its `expires_at` at `now` is ignored.
    pub fn apply(&self, revocation: &Revocation, now: UnixTime) {
        if revocation.expires_at <= now {
            return;
        }
        let mut lists = self.lists.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        match &revocation.subject {
            RevokedSubject::Session(sid) => {
                let entry = lists.sessions.entry(sid.clone()).or_insert(revocation.expires_at);
                *entry = (*entry).max(revocation.expires_at);
            }
            RevokedSubject::User { user_id, issued_before } => {
                let entry = lists.users.entry(user_id.clone()).or_insert((*issued_before, revocation.expires_at));
                *entry = (entry.0.max(*issued_before), entry.1.max(revocation.expires_at));
            }
        }
    }

    /// Whether the token's session or user was revoked after it was issued.
    pub fn is_revoked(&self, claims: &AccessClaims) -> bool {
        let lists = self.lists.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        lists.sessions.contains_key(&claims.sid)
            || lists.users.get(&claims.sub).is_some_and(|(issued_before, _)| claims.iat < *issued_before)
    }

    /// Drops the entries whose tokens are all expired by `now`.
    pub fn prune(&self, now: UnixTime) {
        let mut lists = self.lists.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        lists.sessions.retain(|_, expires_at| *expires_at > now);
        lists.users.retain(|_, (_, expires_at)| *expires_at > now);
    }

    /// How many entries are kept.
    pub fn len(&self) -> usize {
        let lists = self.lists.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        lists.sessions.len() + lists.users.len()
    }

    /// Whether no entry is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, sid: &str, iat: UnixTime) -> AccessClaims {
        AccessClaims {
            iss: "reauth".into(),
            sub: sub.into(),
            aud: "reauth".into(),
            iat,
            exp: iat + 900,
            jti: "j".into(),
            sid: sid.into(),
        }
    }

    #[test]
    fn sessions_and_users_are_refused_until_their_entries_expire() {
        let list = RevocationList::new();
        let session = Revocation { subject: RevokedSubject::Session("s1".into()), at: 100, expires_at: 1000 };
        let user = Revocation {
            subject: RevokedSubject::User { user_id: "u2".into(), issued_before: 200 },
            at: 200,
            expires_at: 1100,
        };
        list.apply(&session, 100);
        list.apply(&user, 200);
        list.apply(&user, 200);
        assert!(list.is_revoked(&claims("u1", "s1", 50)));
        assert!(!list.is_revoked(&claims("u1", "s9", 50)));
        assert!(list.is_revoked(&claims("u2", "s2", 199)));
        assert!(!list.is_revoked(&claims("u2", "s3", 200)), "issued after the revocation");
        assert_eq!(list.len(), 2);
        list.prune(1050);
        assert_eq!(list.len(), 1);
        list.prune(1100);
        assert!(list.is_empty());
        list.apply(&session, 1000);
        assert!(list.is_empty(), "already expired");
    }
}
