//! The refresh-token decoder on arbitrary strings, with the secrets a server holds an hour after a
//! rotation (the stored secret signs `rt2.` tokens, the configured key's still accepts `rt1.` ones):
//! refuses without panicking; a token it accepts has exactly one spelling, the one the server issues
//! with the secret it names (no second encoding of the same family and generation); and an `rt1.`
//! token stops being accepted once the last token the replaced secret signed has expired. The seeds
//! are tokens of both forms made with the fixture secrets.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use reauth_fuzz::{refresh_lifetime, refresh_secret, NOW, ROTATED_AT};
use reauth_server::tokens::{KeySet, RefreshToken, RefreshTokenError};

static KEY_SET: LazyLock<KeySet> = LazyLock::new(reauth_fuzz::key_set);

fuzz_target!(|token: &str| {
    let mut named = None;
    let decoded = RefreshToken::decode(token, |id| {
        named = refresh_secret(&KEY_SET, id, NOW);
        named
    });
    let (Ok(decoded), Some(secret)) = (decoded, named) else { return };
    assert_eq!(RefreshToken::encode(secret, &decoded.family_id, decoded.generation), token);
    if token.starts_with("rt1.") {
        let after_last_rt1 = ROTATED_AT + refresh_lifetime() + 1;
        let late = RefreshToken::decode(token, |id| refresh_secret(&KEY_SET, id, after_last_rt1));
        assert_eq!(late, Err(RefreshTokenError::UnknownSecret), "an rt1 token outlived the replaced secret");
    }
});
