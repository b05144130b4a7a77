//! The access-token verifier on arbitrary strings, over the keys published an hour after a rotation
//! (the stored current key and the configured, retired one) with the default clock leeway: refuses
//! without panicking, and whatever it accepts is ours, current within the leeway and for us. The
//! seeds are tokens signed by both fixture keys.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use reauth_fuzz::{AUDIENCE, ISSUER, NOW};
use reauth_server::tokens::{AccessTokenError, AccessTokenVerifier};

static VERIFIER: LazyLock<AccessTokenVerifier> = LazyLock::new(reauth_fuzz::verifier);

fuzz_target!(|token: &str| {
    if let Ok(claims) = VERIFIER.verify(token, NOW) {
        let leeway = VERIFIER.leeway_secs();
        assert_eq!((claims.iss.as_str(), claims.aud.as_str()), (ISSUER, AUDIENCE));
        assert!(claims.exp.saturating_add(leeway) > NOW, "accepted a token that expired at {}", claims.exp);
        assert!(claims.iat <= NOW + leeway, "accepted a token issued at {}", claims.iat);
        assert_eq!(VERIFIER.verify(token, claims.exp.saturating_add(leeway)), Err(AccessTokenError::Expired));
    }
});
