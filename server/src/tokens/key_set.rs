//! The key set: access-token signing keys and refresh-token MAC secrets that rotate without
//! signing anyone out.
//!
//! Each key has an activation time. At any moment the *current* key of a kind is the one activated
//! last; keys not yet active are *next* (signing keys are published from the moment they are added,
//! so every verifier knows them before the first token they sign); a key that was replaced stays
//! *retired* (still accepted) until the last token it could have signed has expired, then is
//! *expired*. Every instance computes the same states from the same stored times, so a fleet
//! switches keys together without coordinating.
//!
//! The configured key (`REAUTH_SIGNING_KEY`, see [`Keys`]) is the *root* of the set: it is the first
//! signing key (active since forever, so an upgrade keeps every token valid), the first refresh
//! secret (the `rt1.` tokens), and the key-encryption key under which the store keeps every other
//! key, so that a stolen database yields nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::Sha256;

use super::keys::{jwk_thumbprint, Keys};
use super::random_bytes;
use crate::store::{KeyKind, StoreError, StoredKey, UnixTime};

/// The id length of a refresh MAC secret, as `rt2.` tokens carry it.
pub(crate) const SECRET_ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;

/// Where a key stands at a given moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Added, not signing yet; a signing key is already published.
    Next,
    /// Signs new tokens.
    Current,
    /// Replaced; still accepted until the tokens it signed have expired.
    Retired,
    /// Replaced long enough ago that no token it signed is still valid; no longer accepted.
    Expired,
}

impl KeyState {
    /// The name `keys list` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Current => "current",
            Self::Retired => "retired",
            Self::Expired => "expired",
        }
    }

    /// Whether tokens signed by the key are accepted, and for a signing key, whether it is published.
    pub fn is_accepted(self) -> bool {
        self != Self::Expired
    }
}

/// Why the key set could not be read or extended.
#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store holds no key set (a backend without [`crate::store::KeyStore`]).
    #[error("the token store {0} cannot hold a key set; rotation needs SQLite, Redis or PostgreSQL")]
    Unsupported(&'static str),
    /// A stored key does not open under the configured key: edited in the store, or sealed by a
    /// key file with the same public key but other contents (which cannot happen by accident).
    #[error("stored {kind} key {id} does not open with REAUTH_SIGNING_KEY {root}: the store was tampered with")]
    Sealed {
        /// The key's kind.
        kind: &'static str,
        /// The key's id.
        id: String,
        /// The configured key's kid.
        root: String,
    },
}

/// One signing key of the set.
#[derive(Clone)]
pub(crate) struct SigningEntry {
    pub(crate) kid: String,
    pub(crate) key: SigningKey,
    pub(crate) active_at: UnixTime,
}

/// One refresh-token MAC secret of the set. The root's has no id: it makes the `rt1.` tokens.
#[derive(Clone)]
pub struct MacSecret {
    pub(crate) id: Option<[u8; SECRET_ID_LEN]>,
    pub(crate) key: [u8; 32],
    active_at: UnixTime,
}

impl MacSecret {
    /// The secret's id as `keys list` shows it (`root` for the configured key's).
    pub fn display_id(&self) -> String {
        self.id.map_or_else(|| "root".to_owned(), |id| URL_SAFE_NO_PAD.encode(id))
    }
}

/// A key as `keys list` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDescription {
    /// What the key is for.
    pub kind: KeyKind,
    /// `kid` of a signing key, id of a refresh secret.
    pub id: String,
    /// Its state at the time asked.
    pub state: KeyState,
    /// When it started (or starts) signing; `None` for the configured key, active since forever.
    pub active_at: Option<UnixTime>,
    /// Whether it is the configured key itself rather than a stored one.
    pub root: bool,
}

/// The signing keys and refresh secrets in force, sorted by activation.
#[derive(Clone)]
pub struct KeySet {
    root_kid: String,
    signing: Vec<SigningEntry>,
    refresh: Vec<MacSecret>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.signing.iter().map(|entry| entry.kid.as_str()).collect();
        f.debug_struct("KeySet").field("root", &self.root_kid).field("signing", &kids).finish_non_exhaustive()
    }
}

impl KeySet {
    /// The set before any rotation: the configured key alone, for signing and for refresh tokens.
    pub fn single(root: &Keys) -> Self {
        Self {
            root_kid: root.kid().to_owned(),
            signing: vec![SigningEntry {
                kid: root.kid().to_owned(),
                key: root.signing_key().clone(),
                active_at: UnixTime::MIN,
            }],
            refresh: vec![MacSecret { id: None, key: *root.refresh_mac_key(), active_at: UnixTime::MIN }],
        }
    }

    /// The configured key and the stored keys it sealed.
    pub fn open(root: &Keys, stored: &[StoredKey]) -> Result<Self, KeySetError> {
        let mut set = Self::single(root);
        let kek = key_encryption_key(root);
        // Stores list keys in no particular order: sorted here, every instance picks the same
        // current key even among keys activated in the same second.
        let mut ours: Vec<&StoredKey> = stored.iter().filter(|key| key.root == root.kid()).collect();
        ours.sort_by(|a, b| (a.active_at, a.created_at, &a.id).cmp(&(b.active_at, b.created_at, &b.id)));
        for key in ours {
            let sealed_error =
                || KeySetError::Sealed { kind: key.kind.as_str(), id: key.id.clone(), root: root.kid().to_owned() };
            let secret: [u8; 32] =
                unseal(&kek, key).and_then(|bytes| bytes.try_into().ok()).ok_or_else(sealed_error)?;
            match key.kind {
                KeyKind::Signing => {
                    let signing = SigningKey::from_bytes(&secret);
                    if jwk_thumbprint(&signing.verifying_key()) != key.id {
                        return Err(sealed_error());
                    }
                    set.signing.push(SigningEntry { kid: key.id.clone(), key: signing, active_at: key.active_at });
                }
                KeyKind::Refresh => {
                    let id = URL_SAFE_NO_PAD
                        .decode(&key.id)
                        .ok()
                        .and_then(|id| <[u8; SECRET_ID_LEN]>::try_from(id).ok())
                        .ok_or_else(sealed_error)?;
                    set.refresh.push(MacSecret { id: Some(id), key: secret, active_at: key.active_at });
                }
            }
        }
        Ok(set)
    }

    /// A new key of `kind`, sealed under `root`, that starts signing at `active_at`; its id is the
    /// stored key's `id`.
    pub fn seal_new(root: &Keys, kind: KeyKind, now: UnixTime, active_at: UnixTime) -> StoredKey {
        let secret = random_bytes::<32>();
        let id = match kind {
            KeyKind::Signing => jwk_thumbprint(&SigningKey::from_bytes(&secret).verifying_key()),
            KeyKind::Refresh => URL_SAFE_NO_PAD.encode(random_bytes::<SECRET_ID_LEN>()),
        };
        let mut key =
            StoredKey { id, root: root.kid().to_owned(), kind, created_at: now, active_at, sealed: Vec::new() };
        key.sealed = seal(&key_encryption_key(root), &key, &secret);
        key
    }

    fn signing_times(&self) -> Vec<UnixTime> {
        self.signing.iter().map(|entry| entry.active_at).collect()
    }

    fn refresh_times(&self) -> Vec<UnixTime> {
        self.refresh.iter().map(|secret| secret.active_at).collect()
    }

    /// The signing key that signs at `now`.
    pub(crate) fn signing_at(&self, now: UnixTime) -> &SigningEntry {
        &self.signing[current_index(&self.signing_times(), now)]
    }

    /// The refresh secret that signs at `now`.
    pub fn refresh_secret_at(&self, now: UnixTime) -> &MacSecret {
        &self.refresh[current_index(&self.refresh_times(), now)]
    }

    /// The secret a refresh token names, if tokens it signed are still accepted at `now` (the last
    /// it signed lives `token_lifetime` after it was replaced).
    pub fn refresh_secret(
        &self,
        id: Option<&[u8; SECRET_ID_LEN]>,
        now: UnixTime,
        token_lifetime: i64,
    ) -> Option<&MacSecret> {
        let states = states(&self.refresh_times(), now, token_lifetime);
        self.refresh
            .iter()
            .zip(states)
            .find(|(secret, state)| secret.id.as_ref() == id && state.is_accepted())
            .map(|(secret, _)| secret)
    }

    /// The signing keys verifiers must know at `now`: next, current and retired ones, whose tokens
    /// live `token_lifetime` at most.
    pub fn published(&self, now: UnixTime, token_lifetime: i64) -> Vec<(String, VerifyingKey)> {
        let states = states(&self.signing_times(), now, token_lifetime);
        self.signing
            .iter()
            .zip(states)
            .filter(|(_, state)| state.is_accepted())
            .map(|(entry, _)| (entry.kid.clone(), entry.key.verifying_key()))
            .collect()
    }

    /// Every key with its state at `now`, signing keys first, each kind in activation order.
    pub fn describe(&self, now: UnixTime, access_lifetime: i64, refresh_lifetime: i64) -> Vec<KeyDescription> {
        let active_since = |at: UnixTime| (at != UnixTime::MIN).then_some(at);
        let signing =
            self.signing.iter().zip(states(&self.signing_times(), now, access_lifetime)).map(|(entry, state)| {
                KeyDescription {
                    kind: KeyKind::Signing,
                    id: entry.kid.clone(),
                    state,
                    active_at: active_since(entry.active_at),
                    root: entry.active_at == UnixTime::MIN,
                }
            });
        let refresh =
            self.refresh.iter().zip(states(&self.refresh_times(), now, refresh_lifetime)).map(|(secret, state)| {
                KeyDescription {
                    kind: KeyKind::Refresh,
                    id: secret.display_id(),
                    state,
                    active_at: active_since(secret.active_at),
                    root: secret.id.is_none(),
                }
            });
        signing.chain(refresh).collect()
    }
}

/// The index of the last key activated at or before `now` (the root, activated at `MIN`, at worst).
fn current_index(active_ats: &[UnixTime], now: UnixTime) -> usize {
    active_ats.iter().take_while(|at| **at <= now).count().saturating_sub(1)
}

/// The state of each key, in order: a key replaced at `t` is retired until `t + token_lifetime`.
fn states(active_ats: &[UnixTime], now: UnixTime, token_lifetime: i64) -> Vec<KeyState> {
    let current = current_index(active_ats, now);
    (0..active_ats.len())
        .map(|index| match index.cmp(&current) {
            std::cmp::Ordering::Greater => KeyState::Next,
            std::cmp::Ordering::Equal => KeyState::Current,
            // A retired key was replaced when its successor became active.
            std::cmp::Ordering::Less => match active_ats.get(index + 1) {
                Some(replaced_at) if replaced_at.saturating_add(token_lifetime) > now => KeyState::Retired,
                _ => KeyState::Expired,
            },
        })
        .collect()
}

/// Domain-separated from the other uses of the configured key (the refresh MAC of `rt1.` tokens).
fn key_encryption_key(root: &Keys) -> XChaCha20Poly1305 {
    let mut kek = [0u8; 32];
    Hkdf::<Sha256>::new(Some(b"reauth"), root.signing_key().as_bytes())
        .expand(b"key-encryption v1", &mut kek)
        .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 output length"));
    XChaCha20Poly1305::new(&kek.into())
}

/// The fields the ciphertext is bound to: moving a sealed secret to another id, kind or activation
/// time makes it fail to open.
fn associated_data(key: &StoredKey) -> Vec<u8> {
    format!("reauth key v1\n{}\n{}\n{}\n{}\n{}", key.root, key.id, key.kind.as_str(), key.created_at, key.active_at)
        .into_bytes()
}

fn seal(kek: &XChaCha20Poly1305, key: &StoredKey, secret: &[u8; 32]) -> Vec<u8> {
    let nonce = random_bytes::<NONCE_LEN>();
    let aad = associated_data(key);
    let Ok(ciphertext) = kek.encrypt(XNonce::from_slice(&nonce), Payload { msg: secret, aad: &aad }) else {
        unreachable!("XChaCha20-Poly1305 encrypts any message of 32 bytes")
    };
    [nonce.as_slice(), &ciphertext].concat()
}

fn unseal(kek: &XChaCha20Poly1305, key: &StoredKey) -> Option<Vec<u8>> {
    if key.sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = key.sealed.split_at(NONCE_LEN);
    kek.decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &associated_data(key) }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = 1_700_000_000;

    #[test]
    fn the_configured_key_alone_is_current_forever() {
        let root = Keys::generate();
        let set = KeySet::single(&root);
        assert_eq!(set.signing_at(NOW).kid, root.kid());
        assert_eq!(set.published(NOW, 900).len(), 1);
        assert!(set.refresh_secret_at(NOW).id.is_none());
    }

    #[test]
    fn a_rotated_key_is_next_then_current_and_its_predecessor_retires_then_expires() {
        let root = Keys::generate();
        let next = KeySet::seal_new(&root, KeyKind::Signing, NOW, NOW + 60);
        let set = KeySet::open(&root, std::slice::from_ref(&next)).unwrap();
        let states_at = |now| set.describe(now, 900, 3600).into_iter().map(|key| key.state).collect::<Vec<_>>();
        use KeyState::*;
        // signing: root, new; refresh: root
        assert_eq!(states_at(NOW), [Current, Next, Current]);
        assert_eq!(set.published(NOW, 900).len(), 2, "the next key is published before it signs");
        assert_eq!(set.signing_at(NOW).kid, root.kid());
        assert_eq!(states_at(NOW + 60), [Retired, Current, Current]);
        assert_eq!(set.signing_at(NOW + 60).kid, next.id);
        assert_eq!(states_at(NOW + 60 + 899), [Retired, Current, Current]);
        assert_eq!(states_at(NOW + 60 + 900), [Expired, Current, Current]);
        assert_eq!(set.published(NOW + 60 + 900, 900).len(), 1);
    }

    #[test]
    fn a_replaced_refresh_secret_is_accepted_for_the_life_of_its_tokens() {
        let root = Keys::generate();
        let stored = KeySet::seal_new(&root, KeyKind::Refresh, NOW, NOW);
        let set = KeySet::open(&root, &[stored]).unwrap();
        let new = set.refresh_secret_at(NOW).id.expect("the stored secret signs");
        assert!(set.refresh_secret(Some(&new), NOW, 3600).is_some());
        assert!(set.refresh_secret(None, NOW + 3599, 3600).is_some(), "rt1 tokens live out their lifetime");
        assert!(set.refresh_secret(None, NOW + 3600, 3600).is_none());
        assert!(set.refresh_secret(Some(&[0; SECRET_ID_LEN]), NOW, 3600).is_none(), "unknown id");
    }

    #[test]
    fn every_instance_picks_the_same_current_key_whatever_order_the_store_lists_them_in() {
        let root = Keys::generate();
        let keys: Vec<StoredKey> = (0..4).map(|_| KeySet::seal_new(&root, KeyKind::Signing, NOW, NOW)).collect();
        let reversed: Vec<StoredKey> = keys.iter().rev().cloned().collect();
        let current = |stored: &[StoredKey]| KeySet::open(&root, stored).unwrap().signing_at(NOW).kid.clone();
        assert_eq!(current(&keys), current(&reversed));
    }

    #[test]
    fn a_stored_key_opens_only_with_its_root_and_unchanged() {
        let root = Keys::generate();
        let key = KeySet::seal_new(&root, KeyKind::Signing, NOW, NOW);
        // Another deployment's key set sharing the store is not even looked at.
        assert_eq!(KeySet::open(&Keys::generate(), std::slice::from_ref(&key)).unwrap().published(NOW, 1).len(), 1);
        let mut moved = key.clone();
        moved.active_at -= 1;
        assert!(matches!(KeySet::open(&root, &[moved]), Err(KeySetError::Sealed { .. })));
        let mut flipped = key.clone();
        flipped.sealed[30] ^= 1;
        assert!(matches!(KeySet::open(&root, &[flipped]), Err(KeySetError::Sealed { .. })));
        assert_eq!(KeySet::open(&root, &[key]).unwrap().published(NOW, 1).len(), 2);
    }

    #[test]
    fn a_stored_key_that_is_not_the_key_its_id_names_or_is_cut_short_is_refused() {
        let root = Keys::generate();
        // Sealed correctly under this root, but the secret inside is not the key the id names.
        let mut impostor = KeySet::seal_new(&root, KeyKind::Signing, NOW, NOW);
        impostor.sealed = seal(&key_encryption_key(&root), &impostor, &random_bytes::<32>());
        assert!(matches!(KeySet::open(&root, &[impostor]), Err(KeySetError::Sealed { .. })));
        let mut truncated = KeySet::seal_new(&root, KeyKind::Refresh, NOW, NOW);
        truncated.sealed.truncate(NONCE_LEN - 1);
        assert!(matches!(KeySet::open(&root, &[truncated]), Err(KeySetError::Sealed { .. })));
    }

    #[test]
    fn debug_output_names_the_keys_and_shows_no_secret() {
        let root = Keys::generate();
        let set = KeySet::open(&root, &[KeySet::seal_new(&root, KeyKind::Signing, NOW, NOW)]).unwrap();
        let secret = URL_SAFE_NO_PAD.encode(root.signing_key().to_bytes());
        let shown = format!("{set:?}");
        assert!(shown.contains(root.kid()) && !shown.contains(&secret), "{shown}");
        let verifier = crate::tokens::AccessTokenVerifier::new(root.verifying_key(), "iss", "aud");
        let shown = format!("{verifier:?}");
        assert!(shown.contains(root.kid()) && shown.contains("iss") && !shown.contains(&secret), "{shown}");
    }

    #[test]
    fn key_states_have_the_names_keys_list_prints() {
        let names = [KeyState::Next, KeyState::Current, KeyState::Retired, KeyState::Expired].map(KeyState::as_str);
        assert_eq!(names, ["next", "current", "retired", "expired"]);
    }
}
