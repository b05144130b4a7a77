//! Access tokens (Ed25519-signed JWTs), refresh tokens (family id, generation and MAC) and the key
//! material behind both.

pub mod access;
pub mod key_set;
pub mod keys;
pub mod refresh;

pub use access::{
    AccessClaims, AccessTokenError, AccessTokenVerifier, AccessTokens, InvalidJwk, JwksFetchError,
    DEFAULT_CLOCK_LEEWAY_SECS,
};
pub use key_set::{KeyDescription, KeySet, KeySetError, KeyState, MacSecret};
pub use keys::{KeyError, Keys};
pub use refresh::{RefreshToken, RefreshTokenError};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// `N` bytes from the operating system's CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS CSPRNG failing is not recoverable; continuing would issue guessable tokens.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    bytes
}

/// A fresh random identifier: 128 bits, base64url (22 characters).
pub(crate) fn random_id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}
