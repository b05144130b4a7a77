//! What the fuzz targets share: one fixed signing key and clock, so that the checked-in seeds carry
//! tokens that really verify and the fuzzer starts from inputs that reach past the first check; and
//! the text format of the `http_request` target's inputs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Method, Request, Uri};
use ed25519_dalek::SigningKey;
use reauth_server::config::CookieSettings;
use reauth_server::tokens::{AccessClaims, AccessTokenVerifier, AccessTokens};
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

/// The fixed key (not a secret: it signs nothing outside the fuzz targets).
pub fn keys() -> Keys {
    Keys::from_signing_key(SigningKey::from_bytes(&[0x5a; 32]))
}

/// Issuer and verifier of access tokens under [`keys`].
pub fn access_tokens() -> AccessTokens {
    AccessTokens::new(keys(), ISSUER, AUDIENCE, 900)
}

/// The public-key verifier the `access_token` target attacks.
pub fn verifier() -> AccessTokenVerifier {
    AccessTokenVerifier::new(SigningKey::from_bytes(&[0x5a; 32]).verifying_key(), ISSUER, AUDIENCE)
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

/// The settings of the fuzzed service: production defaults, one allowed origin, and the access
/// cookie (which puts `/account` behind the silent-refresh layer) as the input asks.
pub fn settings(access_cookie: bool) -> Settings {
    Settings {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        cookies: CookieSettings { secure: true, domain: None, access_cookie },
        allowed_origins: vec![ALLOWED_ORIGIN.into()],
        ..Settings::default()
    }
}

/// A fresh service over an empty memory store, under [`keys`].
pub fn service(access_cookie: bool) -> AuthService {
    AuthService::new(Arc::new(MemoryStore::new()), keys(), settings(access_cookie))
}

/// An input of the `http_request` target, read as a plain-text HTTP request:
///
/// ```text
/// @access-cookie            (optional: run with REAUTH_ACCESS_COOKIE on)
/// POST /auth/token          (method and path)
/// content-type: application/x-www-form-urlencoded
/// cookie: __Secure-reauth_refresh={{refresh}}
///                           (an empty line, then the body)
/// grant_type=refresh_token&refresh_token={{refresh}}
/// ```
///
/// `{{access}}` and `{{refresh}}` anywhere stand for the tokens of a session signed in just before,
/// so the fuzzer reaches the paths behind a valid token without having to forge one.
pub struct FuzzRequest {
    /// Whether the service runs with the access cookie on.
    pub access_cookie: bool,
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
        let mut request_line = lines.next()?;
        let access_cookie = request_line == b"@access-cookie";
        if access_cookie {
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
        Some(Self { access_cookie, method, target: target.to_vec(), headers, body: body.to_vec() })
    }

    /// The request with the placeholders replaced, from a loopback client as `axum::serve` would
    /// pass it; `None` if the target or a header value is not valid in HTTP/1.1.
    pub fn to_request(&self, access_token: &str, refresh_token: &str) -> Option<Request<Body>> {
        let fill = |bytes: &[u8]| {
            replace(&replace(bytes, b"{{access}}", access_token.as_bytes()), b"{{refresh}}", refresh_token.as_bytes())
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
