//! Access tokens: JWTs per RFC 9068 (`typ: at+jwt`), signed with Ed25519 (`alg: EdDSA`).
//!
//! Written against `ed25519-dalek` directly rather than a general JWT library: verification accepts
//! exactly one algorithm and one header shape, so there is no algorithm negotiation to get wrong
//! (`alg: none`, HS256 with the public key as secret) and no RSA code in the build.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, VerifyingKey};
use serde::{Deserialize, Serialize};

use std::sync::{Arc, RwLock};

use super::key_set::KeySet;
use super::keys::{jwk_thumbprint, Jwk};
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
    /// `exp` is past, beyond the clock leeway.
    #[error("expired")]
    Expired,
    /// `nbf` is in the future, beyond the clock leeway.
    #[error("not yet valid")]
    NotYetValid,
    /// `iat` is in the future, beyond the clock leeway: no clock of ours issued it.
    #[error("issued in the future")]
    IssuedInFuture,
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

/// Verification keys under their `kid`s; replaced whole, never edited.
type KeyList = Arc<[(String, VerifyingKey)]>;

/// The clock leeway a verifier allows unless told otherwise (`REAUTH_CLOCK_LEEWAY`).
pub const DEFAULT_CLOCK_LEEWAY_SECS: i64 = 5;

/// Verifies access tokens with nothing but public keys: what a service needs that must accept
/// reauth's tokens without being able to mint them (another API, the edge layer in remote mode).
///
/// It holds a key set, each key under its `kid`, and accepts a token signed by any of them. Clones
/// share the set, so replacing it (a rotation, a fresh JWKS) reaches every clone at once.
#[derive(Clone)]
pub struct AccessTokenVerifier {
    keys: Arc<RwLock<KeyList>>,
    issuer: String,
    audience: String,
    leeway_secs: i64,
    /// Told when a well-formed token names a kid not in the set (see [`Self::on_unknown_kid`]).
    unknown_kid_hook: Option<UnknownKidHook>,
}

/// What a verifier calls on meeting an unknown kid: a key set holder rereads its keys.
pub(crate) type UnknownKidHook = Arc<dyn Fn() + Send + Sync>;

impl std::fmt::Debug for AccessTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokenVerifier")
            .field("kids", &self.kids())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .finish()
    }
}

/// Why a JWK could not serve as a verification key.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an Ed25519 public key in JWK form (kty OKP, crv Ed25519, 32-byte x)")]
pub struct InvalidJwk;

impl AccessTokenVerifier {
    /// A verifier for tokens signed by the private half of `key`, issued by `issuer` for `audience`.
    pub fn new(key: VerifyingKey, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self::with_keys(vec![(jwk_thumbprint(&key), key)], issuer, audience)
    }

    fn with_keys(keys: Vec<(String, VerifyingKey)>, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            keys: Arc::new(RwLock::new(keys.into())),
            issuer: issuer.into(),
            audience: audience.into(),
            leeway_secs: DEFAULT_CLOCK_LEEWAY_SECS,
            unknown_kid_hook: None,
        }
    }

    /// A verifier from one key of a reauth server's `/.well-known/jwks.json`.
    pub fn from_jwk(
        jwk: &serde_json::Value,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Self, InvalidJwk> {
        Ok(Self::with_keys(vec![key_from_jwk(jwk)?], issuer, audience))
    }

    /// A verifier that accepts every key of a reauth server's `/.well-known/jwks.json` document
    /// (`{"keys": [...]}`): the current, next and retired keys of a rotation. Keys that are not
    /// Ed25519 are skipped; a document without any is refused.
    pub fn from_jwks(
        jwks: &serde_json::Value,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Self, InvalidJwk> {
        Ok(Self::with_keys(keys_from_jwks(jwks)?, issuer, audience))
    }

    /// Replaces the key set with the keys of a freshly fetched JWKS document (a service that met an
    /// unknown `kid` refetches it). Every clone of this verifier sees the new set.
    pub fn replace_keys_from_jwks(&self, jwks: &serde_json::Value) -> Result<(), InvalidJwk> {
        self.replace_keys(keys_from_jwks(jwks)?);
        Ok(())
    }

    /// Fetches `jwks_url` (a reauth server's `/.well-known/jwks.json`) and builds a verifier that
    /// accepts every key in it.
    pub async fn fetch_jwks(
        jwks_url: &str,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Self, JwksFetchError> {
        Ok(Self::from_jwks(&fetch_jwks_document(jwks_url).await?, issuer, audience)?)
    }

    /// Refetches `jwks_url` every `every` and puts its keys in force, so that keys a rotation adds
    /// are accepted without a restart (a failed fetch keeps the keys in force and is logged). The
    /// task ends when the returned handle is aborted.
    pub fn spawn_jwks_refresh(
        &self,
        jwks_url: impl Into<String>,
        every: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let (verifier, jwks_url) = (self.clone(), jwks_url.into());
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let fetched = fetch_jwks_document(&jwks_url).await;
                let result = fetched.and_then(|jwks| Ok(verifier.replace_keys_from_jwks(&jwks)?));
                if let Err(error) = result {
                    tracing::warn!(%error, jwks_url, "refetching the JWKS failed; keeping the keys in force");
                }
            }
        })
    }

    pub(crate) fn replace_keys(&self, keys: Vec<(String, VerifyingKey)>) {
        *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = keys.into();
    }

    fn key_list(&self) -> KeyList {
        Arc::clone(&self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// The `kid`s accepted.
    pub fn kids(&self) -> Vec<String> {
        self.key_list().iter().map(|(kid, _)| kid.clone()).collect()
    }

    /// The same verifier allowing `leeway_secs` of clock difference on `exp`, `nbf` and `iat`
    /// (default [`DEFAULT_CLOCK_LEEWAY_SECS`]).
    pub fn with_leeway(mut self, leeway_secs: i64) -> Self {
        self.leeway_secs = leeway_secs.max(0);
        self
    }

    /// The same verifier calling `hook` whenever a token names a kid it does not know: a key set
    /// holder uses it to reread its keys (the token is refused all the same).
    pub(crate) fn on_unknown_kid(mut self, hook: UnknownKidHook) -> Self {
        self.unknown_kid_hook = Some(hook);
        self
    }

    /// The clock leeway in seconds.
    pub fn leeway_secs(&self) -> i64 {
        self.leeway_secs
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
        let keys = self.key_list();
        let key =
            keys.iter().find(|(kid, _)| header.kid == Some(kid.as_str())).map(|(_, key)| key).ok_or_else(|| {
                if let Some(hook) = &self.unknown_kid_hook {
                    hook();
                }
                AccessTokenError::UnknownKey
            })?;
        let signature_bytes: [u8; 64] =
            decode_part(signature_b64)?.try_into().map_err(|_| AccessTokenError::Signature)?;
        let signing_input_len = header_b64.len() + 1 + claims_b64.len();
        // verify_strict rejects small-order keys and non-canonical signatures (malleability).
        key.verify_strict(&token.as_bytes()[..signing_input_len], &Signature::from_bytes(&signature_bytes))
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
        let leeway = self.leeway_secs;
        if claims.exp.saturating_add(leeway) <= now {
            return Err(AccessTokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(AccessTokenError::NotYetValid);
        }
        if claims.iat > now.saturating_add(leeway) {
            return Err(AccessTokenError::IssuedInFuture);
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

/// Why a JWKS document could not be fetched or used.
#[derive(Debug, thiserror::Error)]
pub enum JwksFetchError {
    /// The request failed or the answer was not JSON.
    #[error("fetching the JWKS: {0}")]
    Http(#[from] reqwest::Error),
    /// The document holds no Ed25519 key.
    #[error(transparent)]
    Invalid(#[from] InvalidJwk),
}

async fn fetch_jwks_document(jwks_url: &str) -> Result<serde_json::Value, JwksFetchError> {
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build()?;
    Ok(client.get(jwks_url).send().await?.error_for_status()?.json().await?)
}

fn key_from_jwk(jwk: &serde_json::Value) -> Result<(String, VerifyingKey), InvalidJwk> {
    if jwk["kty"] != "OKP" || jwk["crv"] != "Ed25519" {
        return Err(InvalidJwk);
    }
    let x = jwk["x"].as_str().ok_or(InvalidJwk)?;
    let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(x).ok().and_then(|bytes| bytes.try_into().ok()).ok_or(InvalidJwk)?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| InvalidJwk)?;
    // The kid is recomputed, not taken from the document: a JWKS cannot pair a key with another kid.
    Ok((jwk_thumbprint(&key), key))
}

fn keys_from_jwks(jwks: &serde_json::Value) -> Result<Vec<(String, VerifyingKey)>, InvalidJwk> {
    let keys: Vec<_> =
        jwks["keys"].as_array().ok_or(InvalidJwk)?.iter().filter_map(|jwk| key_from_jwk(jwk).ok()).collect();
    if keys.is_empty() {
        return Err(InvalidJwk);
    }
    Ok(keys)
}

/// Issues access tokens with the current key of a key set, and verifies them like
/// [`AccessTokenVerifier`] with every published key. Clones share the set.
#[derive(Clone, Debug)]
pub struct AccessTokens {
    set: Arc<RwLock<Arc<KeySet>>>,
    verifier: AccessTokenVerifier,
    lifetime_secs: i64,
}

impl AccessTokens {
    /// An issuer/verifier for tokens of `lifetime_secs`, signing with `keys` alone until a key set
    /// is installed.
    // `keys` by value as before key sets existed, so that callers need not change.
    #[allow(clippy::needless_pass_by_value)]
    pub fn new(keys: Keys, issuer: impl Into<String>, audience: impl Into<String>, lifetime_secs: i64) -> Self {
        let set = KeySet::single(&keys);
        let verifier = AccessTokenVerifier::new(keys.verifying_key(), issuer, audience);
        Self { set: Arc::new(RwLock::new(Arc::new(set))), verifier, lifetime_secs }
    }

    /// The same, allowing `leeway_secs` of clock difference when verifying.
    pub fn with_leeway(mut self, leeway_secs: i64) -> Self {
        self.verifier = self.verifier.with_leeway(leeway_secs);
        self
    }

    /// The same, calling `hook` when a token names a kid the set does not hold.
    pub(crate) fn on_unknown_kid(mut self, hook: UnknownKidHook) -> Self {
        self.verifier = self.verifier.on_unknown_kid(hook);
        self
    }

    /// Puts `set` in force: it signs from now on, and its published keys verify.
    pub fn install(&self, set: KeySet, now: UnixTime) {
        self.verifier.replace_keys(set.published(now, self.published_for()));
        *self.set.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(set);
    }

    /// How long a replaced signing key stays published: the life of the last token it signed.
    fn published_for(&self) -> i64 {
        self.lifetime_secs.saturating_add(self.verifier.leeway_secs)
    }

    /// The key set in force.
    pub fn key_set(&self) -> Arc<KeySet> {
        Arc::clone(&self.set.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// The public-key verifier for these tokens.
    pub fn verifier(&self) -> &AccessTokenVerifier {
        &self.verifier
    }

    /// Token lifetime in seconds.
    pub fn lifetime_secs(&self) -> i64 {
        self.lifetime_secs
    }

    /// The `kid` that signs at `now`.
    pub fn current_kid(&self, now: UnixTime) -> String {
        self.key_set().signing_at(now).kid.clone()
    }

    /// The JWKS document (`/.well-known/jwks.json`): every published key at `now`.
    pub fn jwks(&self, now: UnixTime) -> serde_json::Value {
        let keys: Vec<Jwk> =
            self.key_set().published(now, self.published_for()).iter().map(|(_, key)| Jwk::from_key(key)).collect();
        serde_json::json!({ "keys": keys })
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

    /// Signs arbitrary claims with the key current at their `iat`, in our header (tests of the
    /// verifier use it too).
    pub fn sign(&self, claims: &AccessClaims) -> String {
        let set = self.key_set();
        let signer = set.signing_at(claims.iat);
        let header = Header { alg: "EdDSA", typ: Some("at+jwt"), kid: Some(&signer.kid), crit: None };
        let signing_input = format!("{}.{}", encode_json(&header), encode_json(claims));
        let signature = signer.key.sign(signing_input.as_bytes());
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
        assert_eq!(header["kid"], tokens.current_kid(NOW));
    }

    #[test]
    fn alg_none_is_refused() {
        let tokens = tokens();
        let (_, claims) = tokens.issue("u", "s", NOW);
        let header = format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{}"}}"#, tokens.current_kid(NOW));
        assert_eq!(tokens.verify(&forge(&header, &claims, b""), NOW), Err(AccessTokenError::Header));
    }

    #[test]
    fn hs256_signed_with_the_public_key_is_refused() {
        use hmac::{Hmac, Mac};
        let tokens = tokens();
        let (_, claims) = tokens.issue("u", "s", NOW);
        let header = format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"{}"}}"#, tokens.current_kid(NOW));
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&header),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        );
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(tokens.key_set().published(NOW, 1)[0].1.as_bytes()).unwrap();
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
        let kid = tokens.current_kid(NOW);
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
        let keys = Keys::generate();
        let tokens = AccessTokens::new(keys.clone(), "https://issuer.test", "reauth-test", 900);
        let (token, claims) = tokens.issue("u", "s", NOW);
        let leeway = tokens.verifier().leeway_secs();
        assert!(tokens.verify(&token, NOW + 900 + leeway - 1).is_ok(), "within the leeway");
        assert_eq!(tokens.verify(&token, NOW + 900 + leeway), Err(AccessTokenError::Expired));
        let other_issuer = AccessTokens::new(keys.clone(), "https://evil.test", "reauth-test", 900);
        assert_eq!(other_issuer.verify(&token, NOW), Err(AccessTokenError::WrongAudience));
        let other_audience = AccessTokens::new(keys, "https://issuer.test", "billing", 900);
        assert_eq!(other_audience.verify(&token, NOW), Err(AccessTokenError::WrongAudience));
        assert!(tokens.verify(&tokens.sign(&claims), NOW).is_ok());
    }

    #[test]
    fn a_verifier_built_from_the_published_jwk_accepts_our_tokens_only() {
        let tokens = tokens();
        let jwk = tokens.jwks(NOW)["keys"][0].clone();
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

#[cfg(test)]
mod key_set_tests {
    use super::*;
    use crate::store::KeyKind;

    const NOW: UnixTime = 1_700_000_000;

    fn claims_at(tokens: &AccessTokens, iat: UnixTime) -> AccessClaims {
        tokens.issue("u", "s", iat).1
    }

    #[test]
    fn the_clock_leeway_bounds_exp_nbf_and_iat() {
        let tokens = AccessTokens::new(Keys::generate(), "i", "a", 60).with_leeway(3);
        let ahead = tokens.sign(&claims_at(&tokens, NOW + 3));
        assert!(tokens.verify(&ahead, NOW).is_ok(), "issued by a clock 3 s ahead");
        let too_far = tokens.sign(&claims_at(&tokens, NOW + 4));
        assert_eq!(tokens.verify(&too_far, NOW), Err(AccessTokenError::IssuedInFuture));
        let token = tokens.sign(&claims_at(&tokens, NOW));
        assert!(tokens.verify(&token, NOW + 62).is_ok());
        assert_eq!(tokens.verify(&token, NOW + 63), Err(AccessTokenError::Expired));
        let strict = AccessTokens::new(Keys::generate(), "i", "a", 60).with_leeway(0);
        let token = strict.sign(&claims_at(&strict, NOW));
        assert_eq!(strict.verify(&token, NOW + 60), Err(AccessTokenError::Expired));
        assert_eq!(
            strict.verify(&strict.sign(&claims_at(&strict, NOW + 1)), NOW),
            Err(AccessTokenError::IssuedInFuture)
        );
    }

    #[test]
    fn a_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key_once_current() {
        let root = Keys::generate();
        let tokens = AccessTokens::new(root.clone(), "i", "a", 60).with_leeway(0);
        let before = tokens.issue("u", "s", NOW).0;
        let next = KeySet::seal_new(&root, KeyKind::Signing, NOW, NOW + 10);
        tokens.install(KeySet::open(&root, std::slice::from_ref(&next)).unwrap(), NOW);
        assert_eq!(tokens.verifier().kids(), [root.kid().to_owned(), next.id.clone()], "next key published");
        assert_eq!(tokens.current_kid(NOW + 9), root.kid());
        assert_eq!(tokens.current_kid(NOW + 10), next.id);
        let after = tokens.issue("u", "s", NOW + 10).0;
        assert!(tokens.verify(&before, NOW + 10).is_ok(), "a token of the old key still verifies");
        assert!(tokens.verify(&after, NOW + 10).is_ok());
        // A verifier built from the JWKS alone accepts both.
        let remote = AccessTokenVerifier::from_jwks(&tokens.jwks(NOW + 10), "i", "a").unwrap();
        assert!(remote.verify(&before, NOW + 10).is_ok() && remote.verify(&after, NOW + 10).is_ok());
        // Once the old key's last token expired, it is no longer published nor accepted.
        tokens.install(KeySet::open(&root, &[next]).unwrap(), NOW + 70);
        assert_eq!(tokens.jwks(NOW + 70)["keys"].as_array().unwrap().len(), 1);
        let forged_late = tokens.sign(&claims_at(&tokens, NOW));
        assert_eq!(tokens.verify(&forged_late, NOW + 70), Err(AccessTokenError::UnknownKey));
    }

    #[test]
    fn replacing_the_keys_of_a_verifier_reaches_its_clones() {
        let tokens = AccessTokens::new(Keys::generate(), "i", "a", 60);
        let verifier = AccessTokenVerifier::from_jwks(
            &serde_json::json!({"keys": [
                {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
                AccessTokens::new(Keys::generate(), "i", "a", 60).jwks(NOW)["keys"][0].clone()
            ]}),
            "i",
            "a",
        )
        .unwrap();
        let clone = verifier.clone();
        let token = tokens.issue("u", "s", NOW).0;
        assert_eq!(clone.verify(&token, NOW), Err(AccessTokenError::UnknownKey));
        verifier.replace_keys_from_jwks(&tokens.jwks(NOW)).unwrap();
        assert!(clone.verify(&token, NOW).is_ok());
        assert_eq!(AccessTokenVerifier::from_jwks(&serde_json::json!({"keys": []}), "i", "a").unwrap_err(), InvalidJwk);
    }
}
