//! Storage of the rotating key set (`reauth-server keys rotate`), kept apart from [`TokenStore`]
//! so that a backend outside this crate need not hold keys: without a key store, a server signs
//! with its configured key alone.
//!
//! The store holds only sealed keys: each secret is encrypted under a key-encryption key derived
//! from the configured `REAUTH_SIGNING_KEY` file (see [`crate::tokens::key_set`]), so a copy of the
//! database mints nothing.
//!
//! [`TokenStore`]: super::TokenStore

use async_trait::async_trait;

use super::{StoreResult, UnixTime};

crate::wire::wire_names! {
    /// What a stored key is for.
    #[derive(PartialOrd, Ord)]
    pub enum KeyKind {
        /// An Ed25519 access-token signing key, published in the JWKS.
        Signing = "signing",
        /// A refresh-token MAC secret, never published.
        Refresh = "refresh",
    }
}

/// One sealed key as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    /// The key's id: the `kid` of a signing key, the id a refresh token names for a MAC secret.
    pub id: String,
    /// The `kid` of the configured key that sealed it: instances with another key file (another
    /// deployment sharing the database) neither can nor try to open it.
    pub root: String,
    /// What the key is for.
    pub kind: KeyKind,
    /// When `keys rotate` added it.
    pub created_at: UnixTime,
    /// When it starts signing; published from `created_at` on, so verifiers learn it first.
    pub active_at: UnixTime,
    /// Nonce and ciphertext of the secret, bound to the fields above.
    pub sealed: Vec<u8>,
}

/// Where the key set lives, shared by every instance of one store.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Adds a key; a key with the same `root` and `id` already there is kept unchanged.
    async fn add_key(&self, key: &StoredKey) -> StoreResult<()>;
    /// Every key sealed under `root`, in no particular order.
    async fn keys_sealed_by(&self, root: &str) -> StoreResult<Vec<StoredKey>>;
}
