//! Refresh tokens: `rt1.` + base64url(family id ‖ generation ‖ HMAC-SHA256).
//!
//! The MAC key (derived from the signing key) is 256 bits from the CSPRNG, so a token is as hard to
//! guess as 256 random bits, yet the store holds no token material at all: only the family's current
//! generation. A stolen database mints no tokens, and the successor of any token can be recomputed,
//! which is what lets a concurrent refresh within the reuse interval receive the *same* successor
//! instead of forking the family.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Keys;

const PREFIX: &str = "rt1.";
const FAMILY_ID_LEN: usize = 16;
const MAC_LEN: usize = 32;
const PAYLOAD_LEN: usize = FAMILY_ID_LEN + 8;
const DOMAIN: &[u8] = b"reauth refresh token v1";

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
    /// The MAC does not verify: forged, or from another deployment's key.
    #[error("refresh token MAC does not verify")]
    BadMac,
}

impl RefreshToken {
    /// Encodes the token string for `family_id` at `generation`.
    pub fn encode(keys: &Keys, family_id: &str, generation: u64) -> String {
        let Ok(id) = URL_SAFE_NO_PAD.decode(family_id) else { unreachable!("family ids are produced by random_id()") };
        let mut bytes = Vec::with_capacity(PAYLOAD_LEN + MAC_LEN);
        bytes.extend_from_slice(&id);
        bytes.extend_from_slice(&generation.to_be_bytes());
        let tag = mac(keys, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Parses and authenticates a presented token (MAC compared in constant time).
    pub fn decode(keys: &Keys, token: &str) -> Result<Self, RefreshTokenError> {
        let encoded = token.strip_prefix(PREFIX).ok_or(RefreshTokenError::Malformed)?;
        let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| RefreshTokenError::Malformed)?;
        if bytes.len() != PAYLOAD_LEN + MAC_LEN {
            return Err(RefreshTokenError::Malformed);
        }
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        mac(keys, payload).verify_slice(tag).map_err(|_| RefreshTokenError::BadMac)?;
        let (id, generation) = payload.split_at(FAMILY_ID_LEN);
        let generation = u64::from_be_bytes(generation.try_into().map_err(|_| RefreshTokenError::Malformed)?);
        Ok(Self { family_id: URL_SAFE_NO_PAD.encode(id), generation })
    }
}

fn mac(keys: &Keys, payload: &[u8]) -> Hmac<Sha256> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(keys.refresh_mac_key()) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(DOMAIN);
    mac.update(payload);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::random_id;

    #[test]
    fn a_token_round_trips() {
        let keys = Keys::generate();
        let family = random_id();
        let token = RefreshToken::encode(&keys, &family, 41);
        assert!(token.starts_with("rt1."));
        assert_eq!(RefreshToken::decode(&keys, &token), Ok(RefreshToken { family_id: family, generation: 41 }));
    }

    #[test]
    fn successive_generations_differ_and_are_deterministic() {
        let keys = Keys::generate();
        let family = random_id();
        assert_ne!(RefreshToken::encode(&keys, &family, 1), RefreshToken::encode(&keys, &family, 2));
        assert_eq!(RefreshToken::encode(&keys, &family, 2), RefreshToken::encode(&keys, &family, 2));
    }

    #[test]
    fn another_key_or_a_changed_generation_fails_the_mac() {
        let keys = Keys::generate();
        let token = RefreshToken::encode(&keys, &random_id(), 3);
        assert_eq!(RefreshToken::decode(&Keys::generate(), &token), Err(RefreshTokenError::BadMac));
        let mut bytes = URL_SAFE_NO_PAD.decode(&token[4..]).unwrap();
        bytes[FAMILY_ID_LEN + 7] ^= 1; // generation 3 -> 2
        let tampered = format!("rt1.{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(RefreshToken::decode(&keys, &tampered), Err(RefreshTokenError::BadMac));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let keys = Keys::generate();
        let good = RefreshToken::encode(&keys, &random_id(), 0);
        for token in ["", "rt1.", "rt2.abc", &good[..good.len() - 2], &format!("{good}AA"), "rt1.!!!!"] {
            assert_eq!(RefreshToken::decode(&keys, token), Err(RefreshTokenError::Malformed), "{token:?}");
        }
    }
}
