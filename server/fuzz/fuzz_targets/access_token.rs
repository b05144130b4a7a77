//! The access-token verifier on arbitrary strings: refuses without panicking, and whatever it
//! accepts is ours, current and for us. The seeds are tokens signed by the fixture key.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use reauth_fuzz::{AUDIENCE, ISSUER, NOW};
use reauth_server::tokens::{AccessTokenError, AccessTokenVerifier};

static VERIFIER: LazyLock<AccessTokenVerifier> = LazyLock::new(reauth_fuzz::verifier);

fuzz_target!(|token: &str| {
    if let Ok(claims) = VERIFIER.verify(token, NOW) {
        assert_eq!((claims.iss.as_str(), claims.aud.as_str()), (ISSUER, AUDIENCE));
        assert!(claims.exp > NOW, "accepted a token that expired at {}", claims.exp);
        assert_eq!(VERIFIER.verify(token, claims.exp), Err(AccessTokenError::Expired));
    }
});
