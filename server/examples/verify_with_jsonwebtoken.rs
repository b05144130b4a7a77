//! Another service, downstream of reauth, that accepts reauth's access tokens: an axum app
//! verifying them with the `jsonwebtoken` crate from nothing but reauth's JWKS, and refetching the
//! key set when a token names a `kid` it does not know yet (a key rotation happened).
//!
//! ```sh
//! REAUTH_URL=http://127.0.0.1:8080 cargo run -p reauth-server --example verify_with_jsonwebtoken
//! curl -H "authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:8090/whoami
//! ```
//!
//! Settings (environment): `REAUTH_URL` (the reauth server), `REAUTH_ISSUER` and `REAUTH_AUDIENCE`
//! (as the server's, default `reauth`), `BIND` (default `127.0.0.1:8090`).
//!
//! What to copy: [`ReauthKeys`] (key cache, refresh on unknown `kid`, strict header checks) and the
//! [`crypto`] module. `jsonwebtoken` 11 needs a crypto backend: its `rust_crypto` feature pulls in
//! the `rsa` crate and `aws_lc_rs` a C toolchain, so this installs a provider of its own built on
//! `ed25519-dalek`, which accepts EdDSA and nothing else.
#![allow(missing_docs, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

/// The claims of a reauth access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub sid: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// Why a token was refused (all answer 401 `invalid_token`).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("not an EdDSA at+jwt token with a kid and no crit header")]
    Header,
    #[error("no published key has this kid")]
    UnknownKey,
    #[error("the key set could not be fetched: {0}")]
    Jwks(String),
    #[error(transparent)]
    Invalid(#[from] jsonwebtoken::errors::Error),
}

/// Refetch the JWKS at most this often, however many unknown kids arrive (a forger sending random
/// kids must not make this service hammer reauth).
const MIN_REFETCH: Duration = Duration::from_secs(10);

/// reauth's published keys, by kid, and how to check a token against them.
pub struct ReauthKeys {
    jwks_url: String,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: Mutex<Option<Instant>>,
    validation: Validation,
}

impl ReauthKeys {
    /// Fetches `{reauth_url}/.well-known/jwks.json` once; tokens must carry `issuer` and `audience`.
    pub async fn fetch(reauth_url: &str, issuer: &str, audience: &str) -> Result<Self, Refused> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let keys = Self {
            jwks_url: format!("{}/.well-known/jwks.json", reauth_url.trim_end_matches('/')),
            http: reqwest::Client::builder().timeout(Duration::from_secs(5)).build().map_err(jwks_error)?,
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
            validation,
        };
        keys.load().await?;
        Ok(keys)
    }

    /// Fetches the JWKS again for an unknown kid, unless that was done less than [`MIN_REFETCH`] ago.
    async fn refetch(&self) -> Result<(), Refused> {
        {
            let mut last = self.last_fetch.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if last.is_some_and(|at| at.elapsed() < MIN_REFETCH) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        self.load().await
    }

    /// Replaces the key set with the current JWKS.
    async fn load(&self) -> Result<(), Refused> {
        let jwks: JwkSet =
            self.http.get(&self.jwks_url).send().await.map_err(jwks_error)?.json().await.map_err(jwks_error)?;
        let keys: HashMap<String, DecodingKey> = jwks
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
            .collect();
        *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = keys;
        Ok(())
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(kid).cloned()
    }

    /// Checks header, signature, issuer, audience and expiry; returns the claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, Refused> {
        let header = jsonwebtoken::decode_header(token)?;
        // jsonwebtoken checks the algorithm against `validation`; the token type and `crit` are ours
        // to check (RFC 9068 access tokens are `at+jwt`, and no extension is understood here).
        let typ_ok = header.typ.as_deref().is_some_and(|typ| typ.eq_ignore_ascii_case("at+jwt"));
        let kid = header.kid.filter(|_| typ_ok && header.alg == Algorithm::EdDSA && header.crit.is_none());
        let kid = kid.ok_or(Refused::Header)?;
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                // A rotation published a key after our last fetch: fetch again, once.
                self.refetch().await?;
                self.key(&kid).ok_or(Refused::UnknownKey)?
            }
        };
        Ok(jsonwebtoken::decode::<Claims>(token, &key, &self.validation)?.claims)
    }
}

fn jwks_error(error: reqwest::Error) -> Refused {
    // The URL is in the service's own settings; the message needs only the cause.
    Refused::Jwks(error.without_url().to_string())
}

async fn whoami(
    State(keys): State<Arc<ReauthKeys>>,
    headers: HeaderMap,
) -> Result<Json<Claims>, (StatusCode, HeaderMap)> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let refused = |error: &dyn std::fmt::Display| {
        eprintln!("token refused: {error}");
        let mut headers = HeaderMap::new();
        headers.insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static(r#"Bearer error="invalid_token""#));
        (StatusCode::UNAUTHORIZED, headers)
    };
    let token = token.ok_or_else(|| refused(&"no bearer token"))?;
    keys.verify(token).await.map(Json).map_err(|error| refused(&error))
}

/// The downstream service: `GET /whoami` answers the verified claims.
pub fn app(keys: Arc<ReauthKeys>) -> Router {
    Router::new().route("/whoami", get(whoami)).with_state(keys)
}

/// A `jsonwebtoken` crypto backend on `ed25519-dalek`: EdDSA verification only.
pub mod crypto {
    use ed25519_dalek::{Signature, VerifyingKey};
    use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
    use jsonwebtoken::errors::{ErrorKind, Result};
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

    pub struct EdDsaVerifier(VerifyingKey);

    impl signature::Verifier<Vec<u8>> for EdDsaVerifier {
        fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
            let signature = Signature::from_slice(signature)?;
            // Strict: no small-order keys, no malleable signatures, as reauth itself verifies.
            self.0.verify_strict(message, &signature)
        }
    }

    impl JwtVerifier for EdDsaVerifier {
        fn algorithm(&self) -> Algorithm {
            Algorithm::EdDSA
        }
    }

    /// Builds a verifier for EdDSA and refuses every other algorithm.
    pub fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
        if *algorithm != Algorithm::EdDSA {
            return Err(ErrorKind::InvalidAlgorithm.into());
        }
        let bytes: [u8; 32] = key.try_get_as_bytes()?.try_into().map_err(|_| ErrorKind::InvalidEddsaKey)?;
        Ok(Box::new(EdDsaVerifier(VerifyingKey::from_bytes(&bytes).map_err(|_| ErrorKind::InvalidEddsaKey)?)))
    }

    fn no_signer(_: &Algorithm, _: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
        Err(ErrorKind::InvalidAlgorithm.into())
    }

    /// This service verifies and never signs.
    pub static VERIFY_ONLY: CryptoProvider = CryptoProvider {
        signer_factory: no_signer,
        verifier_factory: new_verifier,
        key_utils: KeyUtils::new_unimplemented(),
    };
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    crypto::VERIFY_ONLY.install_default().map_err(|_| "a jsonwebtoken crypto provider was installed already")?;
    let setting = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let reauth_url = std::env::var("REAUTH_URL").map_err(|_| "set REAUTH_URL to the reauth server's base URL")?;
    let keys =
        ReauthKeys::fetch(&reauth_url, &setting("REAUTH_ISSUER", "reauth"), &setting("REAUTH_AUDIENCE", "reauth"))
            .await?;
    let bind: SocketAddr = setting("BIND", "127.0.0.1:8090").parse()?;
    let listener = tokio::net::TcpListener::bind(bind).await?;
    println!("verifying reauth tokens on http://{}", listener.local_addr()?);
    axum::serve(listener, app(Arc::new(keys))).await?;
    Ok(())
}
