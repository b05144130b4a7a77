//! Access tokens: JWTs per RFC 9068 (`typ: at+jwt`), signed with Ed25519 (`alg: EdDSA`).
//!
//! Written against `ed25519-dalek` directly rather than a general JWT library: verification accepts
//! exactly one algorithm and one header shape, so there is no algorithm negotiation to get wrong
//! (`alg: none`, HS256 with the public key as secret) and no RSA code in the build.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::keys::jwk_thumbprint;
use super::{random_id, Keys};
use crate::store::UnixTime;

/// The claims reauth puts in an access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer (`REAUTH_ISSUER`).
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// Audience (`REAUTH_AUDIENCE`).
    pub aud: String,
    /// Issued at.
    pub iat: UnixTime,
    /// Expiry.
    pub exp: UnixTime,
    /// Unique token id.
    pub jti: String,
    /// Session (refresh-token family) id.
    pub sid: String,
}

/// Why an access token was refused. The variants are for logs; clients all get
/// `invalid_token`, so a forger learns nothing about which check failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccessTokenError {
    /// Not three base64url parts of JSON.
    #[error("malformed token")]
    Malformed,
    /// `alg` other than `EdDSA` (including `none`), `typ` other than `at+jwt`, or a `crit` header.
    #[error("unacceptable header")]
    Header,
    /// `kid` names no key of ours.
    #[error("unknown key id")]
    UnknownKey,
    /// Signature does not verify.
    #[error("bad signature")]
    Signature,
    /// `exp` is past.
    #[error("expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("not yet valid")]
    NotYetValid,
    /// `iss` or `aud` is not ours.
    #[error("wrong issuer or audience")]
    WrongAudience,
}

#[derive(Serialize, Deserialize)]
struct Header<'a> {
    alg: &'a str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<&'a str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    #[serde(default, skip_serializing)]
    crit: Option<serde_json::Value>,
}

/// Claims as they may arrive: `aud` may be a string or an array (RFC 7519 §4.1.3), `nbf` optional.
#[derive(Deserialize)]
struct IncomingClaims {
    iss: String,
    sub: String,
    aud: Audience,
    iat: UnixTime,
    exp: UnixTime,
    #[serde(default)]
    nbf: Option<UnixTime>,
    jti: String,
    sid: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Verifies access tokens with nothing but the public key: what a service needs that must accept
/// reauth's tokens without being able to mint them (another API, the edge layer in remote mode).
#[derive(Clone, Debug)]
pub struct AccessTokenVerifier {
    key: VerifyingKey,
    kid: String,
    issuer: String,
    audience: String,
}

/// Why a JWK could not serve as a verification key.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an Ed25519 public key in JWK form (kty OKP, crv Ed25519, 32-byte x)")]
pub struct InvalidJwk;

impl AccessTokenVerifier {
    /// A verifier for tokens signed by the private half of `key`, issued by `issuer` for `audience`.
    pub fn new(key: VerifyingKey, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self { kid: jwk_thumbprint(&key), key, issuer: issuer.into(), audience: audience.into() }
    }

    /// A verifier from one key of a reauth server's `/.well-known/jwks.json`.
    pub fn from_jwk(
        jwk: &serde_json::Value,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Self, InvalidJwk> {
        if jwk["kty"] != "OKP" || jwk["crv"] != "Ed25519" {
            return Err(InvalidJwk);
        }
        let x = jwk["x"].as_str().ok_or(InvalidJwk)?;
        let bytes: [u8; 32] =
            URL_SAFE_NO_PAD.decode(x).ok().and_then(|bytes| bytes.try_into().ok()).ok_or(InvalidJwk)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| InvalidJwk)?;
        Ok(Self::new(key, issuer, audience))
    }

    /// Verifies signature, header, issuer, audience and time; returns the claims.
    pub fn verify(&self, token: &str, now: UnixTime) -> Result<AccessClaims, AccessTokenError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AccessTokenError::Malformed);
        };
        let header_json = decode_part(header_b64)?;
        let header: Header<'_> = serde_json::from_slice(&header_json).map_err(|_| AccessTokenError::Malformed)?;
        let typ_ok = header
            .typ
            .is_some_and(|typ| typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt"));
        if header.alg != "EdDSA" || !typ_ok || header.crit.is_some() {
            return Err(AccessTokenError::Header);
        }
        if header.kid != Some(self.kid.as_str()) {
            return Err(AccessTokenError::UnknownKey);
        }
        let signature_bytes: [u8; 64] =
            decode_part(signature_b64)?.try_into().map_err(|_| AccessTokenError::Signature)?;
        let signing_input_len = header_b64.len() + 1 + claims_b64.len();
        // verify_strict rejects small-order keys and non-canonical signatures (malleability).
        self.key
            .verify_strict(&token.as_bytes()[..signing_input_len], &Signature::from_bytes(&signature_bytes))
            .map_err(|_| AccessTokenError::Signature)?;

        let claims: IncomingClaims =
            serde_json::from_slice(&decode_part(claims_b64)?).map_err(|_| AccessTokenError::Malformed)?;
        let audience_ok = match &claims.aud {
            Audience::One(aud) => *aud == self.audience,
            Audience::Many(auds) => auds.contains(&self.audience),
        };
        if claims.iss != self.issuer || !audience_ok {
            return Err(AccessTokenError::WrongAudience);
        }
        if claims.exp <= now {
            return Err(AccessTokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now) {
            return Err(AccessTokenError::NotYetValid);
        }
        Ok(AccessClaims {
            iss: claims.iss,
            sub: claims.sub,
            aud: self.audience.clone(),
            iat: claims.iat,
            exp: claims.exp,
            jti: claims.jti,
            sid: claims.sid,
        })
    }
}

/// Issues access tokens, and verifies them like [`AccessTokenVerifier`].
#[derive(Clone, Debug)]
pub struct AccessTokens {
    keys: Keys,
    verifier: AccessTokenVerifier,
    lifetime_secs: i64,
}

impl AccessTokens {
    /// An issuer/verifier for tokens of `lifetime_secs`.
    pub fn new(keys: Keys, issuer: impl Into<String>, audience: impl Into<String>, lifetime_secs: i64) -> Self {
        let verifier = AccessTokenVerifier::new(keys.verifying_key(), issuer, audience);
        Self { keys, verifier, lifetime_secs }
    }

    /// The key material.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The public-key verifier for these tokens.
    pub fn verifier(&self) -> &AccessTokenVerifier {
        &self.verifier
    }

    /// Token lifetime in seconds.
    pub fn lifetime_secs(&self) -> i64 {
        self.lifetime_secs
    }

    /// Verifies signature, header, issuer, audience and time; returns the claims.
    pub fn verify(&self, token: &str, now: UnixTime) -> Result<AccessClaims, AccessTokenError> {
        self.verifier.verify(token, now)
    }

    /// Signs a fresh token for `user_id` in session `session_id`.
    pub fn issue(&self, user_id: &str, session_id: &str, now: UnixTime) -> (String, AccessClaims) {
        let claims = AccessClaims {
            iss: self.verifier.issuer.clone(),
            sub: user_id.to_owned(),
            aud: self.verifier.audience.clone(),
            iat: now,
            exp: now + self.lifetime_secs,
            jti: random_id(),
            sid: session_id.to_owned(),
        };
        (self.sign(&claims), claims)
    }

    /// Signs arbitrary claims with our key and header (tests of the verifier use it too).
    pub fn sign(&self, claims: &AccessClaims) -> String {
        let header = Header { alg: "EdDSA", typ: Some("at+jwt"), kid: Some(self.keys.kid()), crit: None };
        let signing_input = format!("{}.{}", encode_json(&header), encode_json(claims));
        let signature = self.keys.signing_key().sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

fn encode_json(value: &impl Serialize) -> String {
    // Serialising these plain structs cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

fn decode_part(part: &str) -> Result<Vec<u8>, AccessTokenError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| AccessTokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = 1_700_000_000;

    fn tokens() -> AccessTokens {
        AccessTokens::new(Keys::generate(), "https://issuer.test", "reauth-test", 900)
    }

    fn forge(header: &str, claims: &AccessClaims, signature: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap()),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let tokens = tokens();
        let (token, claims) = tokens.issue("user-1", "session-1", NOW);
        let verified = tokens.verify(&token, NOW + 1).unwrap();
        assert_eq!(verified, claims);
        assert_eq!((verified.sub.as_str(), verified.sid.as_str(), verified.exp), ("user-1", "session-1", NOW + 900));
    }

    #[test]
    fn the_header_names_eddsa_at_jwt_and_the_key() {
        let tokens = tokens();
        let (token, _) = tokens.issue("u", "s", NOW);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["kid"], tokens.keys().kid());
    }

    #[test]
    fn alg_none_is_refused() {
        let tokens = tokens();
        let (_, claims) = tokens.issue("u", "s", NOW);
        let header = format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{}"}}"#, tokens.keys().kid());
        assert_eq!(tokens.verify(&forge(&header, &claims, b""), NOW), Err(AccessTokenError::Header));
    }

    #[test]
    fn hs256_signed_with_the_public_key_is_refused() {
        use hmac::{Hmac, Mac};
        let tokens = tokens();
        let (_, claims) = tokens.issue("u", "s", NOW);
        let header = format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"{}"}}"#, tokens.keys().kid());
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&header),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        );
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(tokens.keys().verifying_key().as_bytes()).unwrap();
        mac.update(input.as_bytes());
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
        assert_eq!(tokens.verify(&token, NOW), Err(AccessTokenError::Header));
    }

    #[test]
    fn a_token_from_another_key_is_refused() {
        let ours = tokens();
        let theirs = tokens();
        let (token, _) = theirs.issue("u", "s", NOW);
        assert_eq!(ours.verify(&token, NOW), Err(AccessTokenError::UnknownKey));
        // Same kid claimed, other key's signature.
        let mut claims = ours.issue("u", "s", NOW).1;
        claims.sub = "admin".into();
        let forged = theirs.sign(&claims);
        let ours_header = ours.sign(&claims);
        let spliced = format!("{}.{}", ours_header.rsplit_once('.').unwrap().0, forged.rsplit_once('.').unwrap().1);
        assert_eq!(ours.verify(&spliced, NOW), Err(AccessTokenError::Signature));
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let tokens = tokens();
        let (token, mut claims) = tokens.issue("user-1", "s", NOW);
        claims.sub = "user-2".into();
        let parts: Vec<&str> = token.split('.').collect();
        let tampered =
            format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()), parts[2]);
        assert_eq!(tokens.verify(&tampered, NOW), Err(AccessTokenError::Signature));
    }

    #[test]
    fn wrong_typ_or_crit_is_refused() {
        let tokens = tokens();
        let (_, claims) = tokens.issue("u", "s", NOW);
        let kid = tokens.keys().kid();
        for header in [
            format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}"}}"#),
            format!(r#"{{"alg":"EdDSA","kid":"{kid}"}}"#),
            format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","crit":["exp"]}}"#),
        ] {
            assert_eq!(
                tokens.verify(&forge(&header, &claims, &[0; 64]), NOW),
                Err(AccessTokenError::Header),
                "{header}"
            );
        }
    }

    #[test]
    fn expiry_issuer_and_audience_are_checked() {
        let tokens = tokens();
        let (token, claims) = tokens.issue("u", "s", NOW);
        assert_eq!(tokens.verify(&token, NOW + 900), Err(AccessTokenError::Expired));
        let other_issuer = AccessTokens::new(tokens.keys().clone(), "https://evil.test", "reauth-test", 900);
        assert_eq!(other_issuer.verify(&token, NOW), Err(AccessTokenError::WrongAudience));
        let other_audience = AccessTokens::new(tokens.keys().clone(), "https://issuer.test", "billing", 900);
        assert_eq!(other_audience.verify(&token, NOW), Err(AccessTokenError::WrongAudience));
        assert!(tokens.verify(&tokens.sign(&claims), NOW).is_ok());
    }

    #[test]
    fn a_verifier_built_from_the_published_jwk_accepts_our_tokens_only() {
        let tokens = tokens();
        let jwk = serde_json::to_value(tokens.keys().jwk()).unwrap();
        let verifier = AccessTokenVerifier::from_jwk(&jwk, "https://issuer.test", "reauth-test").unwrap();
        let (token, claims) = tokens.issue("u", "s", NOW);
        assert_eq!(verifier.verify(&token, NOW), Ok(claims));
        let (foreign, _) =
            AccessTokens::new(Keys::generate(), "https://issuer.test", "reauth-test", 900).issue("u", "s", NOW);
        assert_eq!(verifier.verify(&foreign, NOW), Err(AccessTokenError::UnknownKey));
        let strict = AccessTokenVerifier::from_jwk(&jwk, "https://issuer.test", "billing").unwrap();
        assert_eq!(strict.verify(&token, NOW), Err(AccessTokenError::WrongAudience));
    }

    #[test]
    fn a_jwk_that_is_not_an_ed25519_key_is_refused() {
        let rsa = serde_json::json!({ "kty": "RSA", "n": "AQAB", "e": "AQAB" });
        let short = serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": "AAAA" });
        let x448 = serde_json::json!({ "kty": "OKP", "crv": "X448", "x": URL_SAFE_NO_PAD.encode([0u8; 32]) });
        for jwk in [rsa, short, x448] {
            assert_eq!(AccessTokenVerifier::from_jwk(&jwk, "i", "a").unwrap_err(), InvalidJwk, "{jwk}");
        }
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let tokens = tokens();
        for token in ["", ".", "..", "a.b.c", "a.b.c.d", "eyJ.eyJ.sig", "\u{0}.\u{0}.\u{0}"] {
            assert!(tokens.verify(token, NOW).is_err(), "{token:?}");
        }
    }
}
