//! The token code's edges through its public API: audiences given as arrays, `nbf`, what `Debug`
//! shows of the keys, and key files at paths that cannot be used.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use reauth_server::tokens::{AccessTokenError, AccessTokenVerifier, AccessTokens, KeyError};
use reauth_server::Keys;
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;
const SECRET: [u8; 32] = [7; 32];

/// A token with exactly these claims, signed with our key and header, as only a key holder could.
fn signed(claims: &Value) -> String {
    let keys = Keys::from_signing_key(SigningKey::from_bytes(&SECRET));
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": keys.kid() });
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = SigningKey::from_bytes(&SECRET).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

fn verifier() -> AccessTokenVerifier {
    AccessTokenVerifier::new(SigningKey::from_bytes(&SECRET).verifying_key(), "iss", "api")
}

fn claims(extra: &Value) -> Value {
    let mut claims =
        json!({ "iss": "iss", "sub": "u", "aud": "api", "iat": NOW, "exp": NOW + 60, "jti": "j", "sid": "s" });
    claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    claims
}

#[test]
fn an_audience_array_must_contain_ours() {
    let ours = signed(&claims(&json!({ "aud": ["billing", "api"] })));
    assert_eq!(verifier().verify(&ours, NOW).unwrap().aud, "api");
    let theirs = signed(&claims(&json!({ "aud": ["billing", "reports"] })));
    assert_eq!(verifier().verify(&theirs, NOW), Err(AccessTokenError::WrongAudience));
    let empty = signed(&claims(&json!({ "aud": [] })));
    assert_eq!(verifier().verify(&empty, NOW), Err(AccessTokenError::WrongAudience));
}

#[test]
fn a_token_is_refused_before_its_nbf() {
    let later = signed(&claims(&json!({ "nbf": NOW + 30 })));
    assert_eq!(verifier().verify(&later, NOW), Err(AccessTokenError::NotYetValid));
    assert!(verifier().verify(&later, NOW + 30).is_ok(), "valid from nbf on");
}

#[test]
fn a_signed_token_without_a_required_claim_is_malformed() {
    let mut no_exp = claims(&json!({}));
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(verifier().verify(&signed(&no_exp), NOW), Err(AccessTokenError::Malformed));
    let string_exp = signed(&claims(&json!({ "exp": (NOW + 60).to_string() })));
    assert_eq!(verifier().verify(&string_exp, NOW), Err(AccessTokenError::Malformed));
}

#[test]
fn issued_tokens_last_the_configured_lifetime() {
    let tokens = AccessTokens::new(Keys::from_signing_key(SigningKey::from_bytes(&SECRET)), "iss", "api", 120);
    assert_eq!(tokens.lifetime_secs(), 120);
    let (token, claims) = tokens.issue("u", "s", NOW);
    assert_eq!(claims.exp - claims.iat, 120);
    // Without clock leeway, so the lifetime is exactly the configured one.
    let strict = verifier().with_leeway(0);
    assert_eq!(strict.verify(&token, NOW + 119).map(|verified| verified.exp), Ok(NOW + 120));
    assert_eq!(strict.verify(&token, NOW + 120), Err(AccessTokenError::Expired));
}

#[test]
fn debug_output_shows_the_key_id_and_no_secret() {
    let keys = Keys::from_signing_key(SigningKey::from_bytes(&SECRET));
    let shown = format!("{keys:?}");
    assert!(shown.contains(keys.kid()), "{shown}");
    for secret in [format!("{:?}", SECRET), URL_SAFE_NO_PAD.encode(SECRET), "7, 7, 7".to_owned()] {
        assert!(!shown.contains(&secret), "{shown}");
    }
}

/// Creation is exclusive (`O_EXCL`), which never follows a symlink: a link planted at the key path
/// cannot redirect the new private key elsewhere.
#[cfg(unix)]
#[test]
fn a_symlink_at_the_key_path_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere.pem");
    let path = dir.path().join("signing.pem");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let error = Keys::load_or_create(&path).unwrap_err();
    assert!(matches!(error, KeyError::Io { .. }), "{error}");
    assert!(!target.exists(), "no key was written through the link");
}

#[test]
fn a_key_path_that_cannot_be_created_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{}.pem", "k".repeat(300)));
    let error = Keys::load_or_create(&path).unwrap_err();
    assert!(matches!(error, KeyError::Io { .. }), "{error}");
    assert!(error.to_string().contains("kkkk"), "{error}");
}
