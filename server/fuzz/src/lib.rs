//! What the fuzz targets share: one fixed key set (the configured key and one rotation) and clock,
//! so that the checked-in seeds carry tokens that really verify and the fuzzer starts from inputs
//! that reach past the first check; and the text format of the `http_request` target's inputs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Method, Request, Uri};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use reauth_server::config::CookieSettings;
use reauth_server::store::{KeyKind, StoredKey};
use reauth_server::tokens::{AccessClaims, AccessTokenVerifier, AccessTokens, KeySet, MacSecret};
use reauth_server::{AuthService, Keys, MemoryStore, Settings};

/// Issuer of the fixture tokens.
pub const ISSUER: &str = "https://auth.example";
/// Audience of the fixture tokens.
pub const AUDIENCE: &str = "reauth-fuzz";
/// The clock of the token targets: the seeds' tokens are valid at this instant.
pub const NOW: i64 = 1_800_000_000;
/// The one origin besides the server's own that the fuzzed service allows.
pub const ALLOWED_ORIGIN: &str = "https://app.example";
/// The user the `http_request` target signs in before each input.
pub const USERNAME: &str = "fuzz-user";
/// Their password.
pub const PASSWORD: &str = "fuzzing is fun 42";

/// When the stored signing key and refresh secret of [`key_set`] took over from the configured key:
/// an hour before [`NOW`], so that at [`NOW`] the configured key's tokens (`rt1.` refresh tokens,
/// access tokens under its kid) are still accepted as retired ones, and the stored keys sign.
pub const ROTATED_AT: i64 = NOW - 3600;

/// The fixed configured key (not a secret: it signs nothing outside the fuzz targets).
pub fn keys() -> Keys {
    Keys::from_signing_key(SigningKey::from_bytes(&[0x5a; 32]))
}

/// One signing key and one refresh secret sealed under [`keys`] as `keys rotate` stores them,
/// active from [`ROTATED_AT`]. Sealing draws a random nonce, so they were sealed once
/// (`KeySet::seal_new`) and are kept here: the seeds' tokens stay valid from run to run.
pub fn stored_keys() -> Vec<StoredKey> {
    let stored = |kind, id: &str, sealed: &[u8]| StoredKey {
        id: id.to_owned(),
        root: keys().kid().to_owned(),
        kind,
        created_at: ROTATED_AT - 3600,
        active_at: ROTATED_AT,
        sealed: sealed.to_vec(),
    };
    vec![
        stored(
            KeyKind::Signing,
            "ZapsdpFqLe-8NXwuWNlpZpbIKRNX9dcFUx-eUAu7lJ0",
            &[
                67, 119, 174, 97, 155, 11, 234, 243, 148, 110, 19, 121, 41, 230, 57, 143, 22, 173, 226, 82, 54, 138,
                72, 162, 180, 199, 121, 160, 235, 189, 252, 80, 230, 194, 122, 73, 53, 6, 83, 157, 122, 40, 175, 42,
                234, 11, 76, 16, 163, 185, 96, 67, 109, 37, 91, 192, 210, 108, 40, 107, 144, 14, 202, 224, 116, 37,
                226, 213, 66, 135, 149, 160,
            ],
        ),
        stored(
            KeyKind::Refresh,
            "NUwwXw2VS30",
            &[
                164, 155, 249, 183, 67, 178, 115, 45, 101, 80, 114, 230, 9, 167, 245, 0, 45, 66, 34, 192, 162, 10, 14,
                36, 19, 60, 5, 121, 139, 250, 200, 14, 36, 119, 110, 237, 136, 156, 176, 42, 145, 169, 225, 215, 92,
                147, 20, 154, 171, 81, 98, 30, 80, 54, 21, 94, 188, 52, 225, 239, 201, 112, 123, 212, 155, 239, 105,
                106, 231, 31, 222, 140,
            ],
        ),
    ]
}

/// The configured key and [`stored_keys`]: what a server reads from its store after one rotation.
pub fn key_set() -> KeySet {
    KeySet::open(&keys(), &stored_keys()).expect("the fixture keys open under the fixture key")
}

/// Lifetime of refresh tokens, which decides how long a replaced refresh secret stays accepted.
pub fn refresh_lifetime() -> i64 {
    Settings::default().refresh_ttl_secs
}

/// The refresh secret a token names, as the server looks it up at `now` under [`key_set`].
pub fn refresh_secret<'a>(set: &'a KeySet, id: Option<&[u8; 8]>, now: i64) -> Option<&'a MacSecret> {
    set.refresh_secret(id, now, refresh_lifetime())
}

/// Issuer and verifier of access tokens under [`key_set`] as in force at [`NOW`].
pub fn access_tokens() -> AccessTokens {
    let tokens = AccessTokens::new(keys(), ISSUER, AUDIENCE, Settings::default().access_ttl_secs);
    tokens.install(key_set(), NOW);
    tokens
}

/// The public-key verifier the `access_token` target attacks: every key published at [`NOW`] (the
/// stored current one and the configured, retired one), with the default clock leeway.
pub fn verifier() -> AccessTokenVerifier {
    access_tokens().verifier().clone()
}

/// Claims valid at [`NOW`].
pub fn claims() -> AccessClaims {
    AccessClaims {
        iss: ISSUER.into(),
        sub: "user-1".into(),
        aud: AUDIENCE.into(),
        iat: NOW - 60,
        exp: NOW + 840,
        jti: "jti-1".into(),
        sid: "c2Vzc2lvbi1maXhlZC0wMQ".into(),
    }
}

/// The domain of the cookies when an input asks for `@cookie-domain`.
pub const COOKIE_DOMAIN: &str = "auth.example";

/// The fixed key of the Stellar account the `http_request` target signs wallet challenges with.
pub fn wallet_key() -> SigningKey {
    SigningKey::from_bytes(&[0x3c; 32])
}

/// That account's id (`G…`).
pub fn wallet_account() -> String {
    stellar_strkey::ed25519::PublicKey(wallet_key().verifying_key().to_bytes()).to_string().as_str().to_owned()
}

/// A base64 SEP-53 signature of `message` by [`wallet_key`], as a wallet makes it.
pub fn wallet_signature(message: &str) -> String {
    STANDARD.encode(wallet_key().sign(&reauth_server::stellar::sep53_hash(message)).to_bytes())
}

/// The settings of the fuzzed service: production defaults with `__Host-` cookies, one allowed
/// origin, and the password grant on (so that its code is fuzzed too); the access cookie (which puts
/// `/account` behind the silent-refresh layer) and a cookie domain (`__Secure-` names) as the input
/// asks.
pub fn settings(options: &Options) -> Settings {
    Settings {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        cookies: CookieSettings {
            secure: true,
            domain: options.cookie_domain.then(|| COOKIE_DOMAIN.to_owned()),
            access_cookie: options.access_cookie,
        },
        public_origins: vec![ISSUER.into()],
        allowed_origins: vec![ALLOWED_ORIGIN.into()],
        password_grant: true,
        ..Settings::default()
    }
}

/// A fresh service over an empty memory store, under [`keys`].
pub fn service(options: &Options) -> AuthService {
    AuthService::new(Arc::new(MemoryStore::new()), keys(), settings(options))
}

/// The service settings an input chooses with its `@` lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// `@access-cookie`: run with the access cookie (`REAUTH_ACCESS_COOKIE`) on.
    pub access_cookie: bool,
    /// `@cookie-domain`: cookies for [`COOKIE_DOMAIN`] (`REAUTH_COOKIE_DOMAIN`), named `__Secure-`.
    pub cookie_domain: bool,
}

/// What the placeholders of an input stand for.
#[derive(Clone, Debug, Default)]
pub struct Placeholders {
    /// `{{access}}`: the signed-in session's access token.
    pub access: String,
    /// `{{refresh}}`: its refresh token.
    pub refresh: String,
    /// `{{wallet-message}}`: a challenge issued to [`wallet_account`], escaped for a JSON string.
    pub wallet_message: String,
    /// `{{wallet-signature}}`: the wallet's signature of that challenge.
    pub wallet_signature: String,
}

/// An input of the `http_request` target, read as a plain-text HTTP request:
///
/// ```text
/// @access-cookie            (optional lines: the service's Options)
/// POST /auth/token          (method and path)
/// content-type: application/x-www-form-urlencoded
/// cookie: __Host-reauth_refresh={{refresh}}
///                           (an empty line, then the body)
/// grant_type=refresh_token&refresh_token={{refresh}}
/// ```
///
/// `{{access}}` and `{{refresh}}` anywhere stand for the tokens of a session signed in just before,
/// `{{wallet-account}}`, `{{wallet-message}}` and `{{wallet-signature}}` for a wallet challenge
/// issued just before and its signature, so the fuzzer reaches the paths behind a valid token or
/// signature without having to forge one.
pub struct FuzzRequest {
    /// The service settings the input asks for.
    pub options: Options,
    /// The request, placeholders not yet replaced.
    method: Method,
    target: Vec<u8>,
    headers: Vec<(HeaderName, Vec<u8>)>,
    body: Vec<u8>,
}

impl FuzzRequest {
    /// Reads an input; `None` for one that no HTTP/1.1 server would pass to the router (no request
    /// line, an invalid method or header name).
    pub fn parse(input: &[u8]) -> Option<Self> {
        let (head, body) = split_head(input);
        let mut lines = head.split(|byte| *byte == b'\n').map(|line| line.strip_suffix(b"\r").unwrap_or(line));
        let mut options = Options::default();
        let mut request_line = lines.next()?;
        while let Some(option) = request_line.strip_prefix(b"@") {
            match option {
                b"access-cookie" => options.access_cookie = true,
                b"cookie-domain" => options.cookie_domain = true,
                _ => return None,
            }
            request_line = lines.next()?;
        }
        let (method, target) = split_once(request_line, b" ")?;
        let method = Method::from_bytes(method).ok()?;
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = split_once(line, b":")?;
            let name = HeaderName::from_bytes(name).ok()?;
            headers.push((name, value.trim_ascii().to_vec()));
        }
        Some(Self { options, method, target: target.to_vec(), headers, body: body.to_vec() })
    }

    /// Whether the input uses the wallet placeholders (issuing a challenge is not free).
    pub fn uses_wallet(&self) -> bool {
        let mentions = |bytes: &[u8]| split_once(bytes, b"{{wallet-").is_some();
        mentions(&self.target) || mentions(&self.body) || self.headers.iter().any(|(_, value)| mentions(value))
    }

    /// The request with the placeholders replaced, from a loopback client as `axum::serve` would
    /// pass it; `None` if the target or a header value is not valid in HTTP/1.1.
    pub fn to_request(&self, values: &Placeholders) -> Option<Request<Body>> {
        let account = wallet_account();
        let fill = |bytes: &[u8]| {
            [
                ("{{access}}", &values.access),
                ("{{refresh}}", &values.refresh),
                ("{{wallet-account}}", &account),
                ("{{wallet-message}}", &values.wallet_message),
                ("{{wallet-signature}}", &values.wallet_signature),
            ]
            .iter()
            .fold(bytes.to_vec(), |filled, (name, value)| replace(&filled, name.as_bytes(), value.as_bytes()))
        };
        let uri = Uri::try_from(fill(&self.target)).ok()?;
        let mut request = Request::builder().method(self.method.clone()).uri(uri);
        for (name, value) in &self.headers {
            request = request.header(name, HeaderValue::from_bytes(&fill(value)).ok()?);
        }
        let mut request = request.body(Body::from(fill(&self.body))).ok()?;
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));
        Some(request)
    }
}

/// Head and body, split at the first empty line (`\n\n` or `\n\r\n`).
fn split_head(input: &[u8]) -> (&[u8], &[u8]) {
    let blank_line = input.windows(2).enumerate().find_map(|(at, pair)| match pair {
        b"\n\n" => Some((at, at + 2)),
        b"\n\r" if input.get(at + 2) == Some(&b'\n') => Some((at, at + 3)),
        _ => None,
    });
    match blank_line {
        Some((head_end, body_start)) => (&input[..head_end], &input[body_start..]),
        None => (input, &[]),
    }
}

fn split_once<'a>(bytes: &'a [u8], separator: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let at = bytes.windows(separator.len()).position(|window| window == separator)?;
    Some((&bytes[..at], &bytes[at + separator.len()..]))
}

fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some((before, after)) = split_once(rest, from) {
        out.extend_from_slice(before);
        out.extend_from_slice(to);
        rest = after;
    }
    out.extend_from_slice(rest);
    out
}
