//! Refresh tokens: `rt2.` + base64url(secret id ‖ family id ‖ generation ‖ HMAC-SHA256), and the
//! older `rt1.` form without a secret id, made with the MAC secret derived from the configured key.
//! The family id is 32 bytes, its user's id then 128 random bits (`<user id>.<random>` as text, see
//! [`crate::store::family_id_for`]), or 16 random bytes in tokens of families started before that;
//! the length tells them apart.
//!
//! Each MAC secret is 256 bits from the CSPRNG, so a token is as hard to guess as 256 random bits,
//! yet the store holds no token material at all: only the family's current generation. A stolen
//! database mints no tokens, and the successor of any token can be recomputed, which is what lets a
//! concurrent refresh within the reuse interval receive a successor of the *same* generation
//! instead of forking the family. The secret id names the secret to check the MAC with, so that
//! several secrets can be in force during a rotation without trying each (the id is not secret;
//! the MAC comparison is constant-time).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::key_set::{MacSecret, SECRET_ID_LEN};

const LEGACY_PREFIX: &str = "rt1.";
const PREFIX: &str = "rt2.";
/// One half of a family id: a user id or the random part, each a `random_id()`.
const ID_LEN: usize = 16;
const MAC_LEN: usize = 32;
const GENERATION_LEN: usize = 8;
const LEGACY_DOMAIN: &[u8] = b"reauth refresh token v1";
const DOMAIN: &[u8] = b"reauth refresh token v2";

/// A refresh token whose MAC verified: it was issued by a holder of our key for this family and
/// generation. Whether that generation is still current is the store's business.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken {
    /// The family (session) id, base64url as stored.
    pub family_id: String,
    /// The generation it carries.
    pub generation: u64,
}

/// Why a presented refresh token was refused before reaching the store.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefreshTokenError {
    /// Wrong prefix, length or encoding.
    #[error("malformed refresh token")]
    Malformed,
    /// It names a MAC secret that is not (or no longer) in force.
    #[error("refresh token names an unknown or expired MAC secret")]
    UnknownSecret,
    /// The MAC does not verify: forged, or from another deployment's key.
    #[error("refresh token MAC does not verify")]
    BadMac,
}

impl RefreshToken {
    /// Encodes the token string for `family_id` at `generation`, MAC'd with `secret`.
    pub fn encode(secret: &MacSecret, family_id: &str, generation: u64) -> String {
        let mut id = Vec::with_capacity(2 * ID_LEN);
        for half in family_id.split('.') {
            let Ok(half) = URL_SAFE_NO_PAD.decode(half) else { unreachable!("family ids are made of random_id()s") };
            id.extend_from_slice(&half);
        }
        let mut bytes = Vec::with_capacity(SECRET_ID_LEN + id.len() + GENERATION_LEN + MAC_LEN);
        if let Some(secret_id) = &secret.id {
            bytes.extend_from_slice(secret_id);
        }
        bytes.extend_from_slice(&id);
        bytes.extend_from_slice(&generation.to_be_bytes());
        let tag = mac(secret, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag);
        let prefix = if secret.id.is_some() { PREFIX } else { LEGACY_PREFIX };
        format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Parses and authenticates a presented token (MAC compared in constant time) with the secret
    /// `secret_for` finds for the id it names (`None` for an `rt1.` token).
    pub fn decode<'a>(
        token: &str,
        secret_for: impl FnOnce(Option<&[u8; SECRET_ID_LEN]>) -> Option<&'a MacSecret>,
    ) -> Result<Self, RefreshTokenError> {
        let (encoded, id_len) = match (token.strip_prefix(PREFIX), token.strip_prefix(LEGACY_PREFIX)) {
            (Some(encoded), _) => (encoded, SECRET_ID_LEN),
            (None, Some(encoded)) => (encoded, 0),
            (None, None) => return Err(RefreshTokenError::Malformed),
        };
        let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| RefreshTokenError::Malformed)?;
        let family_id_len = bytes.len().wrapping_sub(id_len + GENERATION_LEN + MAC_LEN);
        if family_id_len != ID_LEN && family_id_len != 2 * ID_LEN {
            return Err(RefreshTokenError::Malformed);
        }
        let (signed, tag) = bytes.split_at(id_len + family_id_len + GENERATION_LEN);
        let (secret_id, payload) = signed.split_at(id_len);
        let secret_id: Option<&[u8; SECRET_ID_LEN]> = secret_id.try_into().ok();
        let secret = secret_for(secret_id).ok_or(RefreshTokenError::UnknownSecret)?;
        mac(secret, signed).verify_slice(tag).map_err(|_| RefreshTokenError::BadMac)?;
        let (id, generation) = payload.split_at(family_id_len);
        let generation = u64::from_be_bytes(generation.try_into().map_err(|_| RefreshTokenError::Malformed)?);
        let family_id = match id.split_at_checked(ID_LEN) {
            Some((user, random)) if !random.is_empty() => {
                format!("{}.{}", URL_SAFE_NO_PAD.encode(user), URL_SAFE_NO_PAD.encode(random))
            }
            _ => URL_SAFE_NO_PAD.encode(id),
        };
        Ok(Self { family_id, generation })
    }
}

fn mac(secret: &MacSecret, signed: &[u8]) -> Hmac<Sha256> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&secret.key) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(if secret.id.is_some() { DOMAIN } else { LEGACY_DOMAIN });
    mac.update(signed);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyKind;
    use crate::tokens::key_set::KeySet;
    use crate::tokens::{random_id, Keys};

    const NOW: i64 = 1_700_000_000;

    /// The configured key's secret (rt1) and a stored one (rt2), both in force.
    fn secrets() -> KeySet {
        let root = Keys::generate();
        KeySet::open(&root, &[KeySet::seal_new(&root, KeyKind::Refresh, NOW, NOW)]).unwrap()
    }

    fn decode(set: &KeySet, token: &str) -> Result<RefreshToken, RefreshTokenError> {
        RefreshToken::decode(token, |id| set.refresh_secret(id, NOW, 3600))
    }

    #[test]
    fn a_token_round_trips_in_both_forms_with_either_family_id() {
        let set = secrets();
        let with_user = crate::store::family_id_for(&random_id());
        for family in [random_id(), with_user] {
            let legacy = RefreshToken::encode(set.refresh_secret(None, NOW, 3600).unwrap(), &family, 41);
            let current = RefreshToken::encode(set.refresh_secret_at(NOW), &family, 41);
            assert!(legacy.starts_with("rt1.") && current.starts_with("rt2."), "{legacy} {current}");
            for token in [legacy, current] {
                assert_eq!(decode(&set, &token), Ok(RefreshToken { family_id: family.clone(), generation: 41 }));
            }
        }
    }

    #[test]
    fn an_rt1_token_of_the_previous_release_still_verifies() {
        // Made as the previous release made it: HMAC(HKDF(signing key), domain ‖ family ‖ generation).
        let root = Keys::generate();
        let family = random_id();
        let mut bytes = URL_SAFE_NO_PAD.decode(&family).unwrap();
        bytes.extend_from_slice(&7u64.to_be_bytes());
        let mut mac = Hmac::<Sha256>::new_from_slice(root.refresh_mac_key()).unwrap();
        mac.update(LEGACY_DOMAIN);
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        let token = format!("rt1.{}", URL_SAFE_NO_PAD.encode(bytes));
        let set = KeySet::single(&root);
        assert_eq!(decode(&set, &token), Ok(RefreshToken { family_id: family, generation: 7 }));
    }

    #[test]
    fn successive_generations_differ_and_are_deterministic() {
        let set = secrets();
        let secret = set.refresh_secret_at(NOW);
        let family = random_id();
        assert_ne!(RefreshToken::encode(secret, &family, 1), RefreshToken::encode(secret, &family, 2));
        assert_eq!(RefreshToken::encode(secret, &family, 2), RefreshToken::encode(secret, &family, 2));
    }

    #[test]
    fn another_key_a_changed_generation_or_an_unknown_secret_fails() {
        let set = secrets();
        let token = RefreshToken::encode(set.refresh_secret_at(NOW), &random_id(), 3);
        let other = secrets();
        assert_eq!(decode(&other, &token), Err(RefreshTokenError::UnknownSecret));
        let mut bytes = URL_SAFE_NO_PAD.decode(&token[4..]).unwrap();
        bytes[SECRET_ID_LEN + ID_LEN + 7] ^= 1; // generation 3 -> 2
        let tampered = format!("rt2.{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(decode(&set, &tampered), Err(RefreshTokenError::BadMac));
        let legacy = RefreshToken::encode(other.refresh_secret(None, NOW, 1).unwrap(), &random_id(), 3);
        assert_eq!(decode(&set, &legacy), Err(RefreshTokenError::BadMac), "another deployment's rt1 token");
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let set = secrets();
        let good = RefreshToken::encode(set.refresh_secret_at(NOW), &random_id(), 0);
        let legacy_length = format!("rt1.{}", &good[4..]);
        for token in
            ["", "rt1.", "rt2.", "rt3.abc", &good[..good.len() - 2], &format!("{good}AA"), "rt2.!!!!", &legacy_length]
        {
            assert_eq!(decode(&set, token), Err(RefreshTokenError::Malformed), "{token:?}");
        }
    }
}
