//! The refresh-token decoder on arbitrary strings: refuses without panicking, and a token it accepts
//! has exactly one spelling, the one the server issues (no second encoding of the same family and
//! generation). The seeds are tokens made with the fixture key.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use reauth_server::tokens::RefreshToken;
use reauth_server::Keys;

static KEYS: LazyLock<Keys> = LazyLock::new(reauth_fuzz::keys);

fuzz_target!(|token: &str| {
    if let Ok(decoded) = RefreshToken::decode(&KEYS, token) {
        assert_eq!(RefreshToken::encode(&KEYS, &decoded.family_id, decoded.generation), token);
    }
});
