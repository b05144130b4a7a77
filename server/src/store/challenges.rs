//! Storage of wallet sign-in challenges: issued, then consumed once or expired.
//!
//! Kept apart from [`TokenStore`](super::TokenStore)'s own methods (which require this trait) so
//! that each backend implements it in a block of its own.

use async_trait::async_trait;

use super::{StoreResult, UnixTime};

/// A wallet sign-in challenge waiting for its signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Single-use random nonce, the key.
    pub nonce: String,
    /// The account (`G…` strkey) it was issued for.
    pub account: String,
    /// The exact message text issued.
    pub message: String,
    /// Past this time it is refused and may be forgotten.
    pub expires_at: UnixTime,
}

/// Issued wallet challenges, each usable once until it expires.
///
/// Expired challenges never accumulate: each backend removes them on its own (Redis key expiry, an
/// indexed `DELETE` before each SQL insert, a sweep in memory), so what is stored is bounded by the
/// rate of issued challenges times their lifetime, which the per-account and per-address throttle
/// bounds in turn.
#[async_trait]
pub trait ChallengeStore: Send + Sync {
    /// Keeps `challenge` until its `expires_at` at the latest, removing challenges expired at `now`
    /// along the way.
    async fn put_challenge(&self, challenge: &Challenge, now: UnixTime) -> StoreResult<()>;
    /// Removes the challenge with this nonce and returns it if it is still unexpired at `now`.
    /// Atomic in the backend: of any number of concurrent calls with one nonce, at most one gets it.
    async fn take_challenge(&self, nonce: &str, now: UnixTime) -> StoreResult<Option<Challenge>>;
}
