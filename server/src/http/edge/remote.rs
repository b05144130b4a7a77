//! The edge layer's client of a remote reauth server: `POST /auth/refresh` with the refresh cookie,
//! and the reading of its answers. Only reauth's own answers about the session can end it; anything
//! else (a proxy's 401, a malformed body, a timeout) is transient.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::Deserialize;

use super::{RotationFailure, TransientCause};
use crate::http::cookies::Cookies;
use crate::service::{DeadReason, Issued, UserView};

/// A remote answer larger than this is not a token response.
const MAX_REMOTE_BODY_BYTES: usize = 64 * 1024;

/// A remote reauth server to rotate through, and how long to wait for it.
#[derive(Clone)]
pub(super) struct RemoteRefresh {
    pub(super) client: reqwest::Client,
    pub(super) refresh_url: reqwest::Url,
    pub(super) timeout: Duration,
}

impl RemoteRefresh {
    pub(super) async fn refresh(
        &self,
        refresh_token: &str,
        cookies: &Cookies,
        parts: &Parts,
    ) -> Result<Issued, RotationFailure> {
        let transient = RotationFailure::Transient;
        let mut request = self
            .client
            .post(self.refresh_url.clone())
            .timeout(self.timeout)
            .header(header::COOKIE, format!("{}={refresh_token}", cookies.refresh_name()));
        // For the remote's audit trail; it uses the address only if it trusts X-Forwarded-For.
        if let Some(agent) = parts.headers.get(header::USER_AGENT) {
            request = request.header(header::USER_AGENT, agent.clone());
        }
        if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            request = request.header("x-forwarded-for", peer.ip().to_string());
        }
        let response = request.send().await.map_err(|error| transient(error.into()))?;
        let status = response.status();
        let headers = response.headers().clone();
        if response.content_length().is_some_and(|length| length > MAX_REMOTE_BODY_BYTES as u64) {
            return Err(transient(TransientCause::Malformed("the answer is too large")));
        }
        let body = response.bytes().await.map_err(|error| transient(error.into()))?;
        match status {
            StatusCode::OK => read_remote_tokens(cookies, &headers, &body).map_err(transient),
            StatusCode::UNAUTHORIZED => Err(read_remote_rejection(&body)),
            other => Err(transient(TransientCause::Status(other))),
        }
    }
}

#[derive(Deserialize)]
struct RemoteTokens {
    access_token: String,
    expires_in: i64,
    user: RemoteUser,
}

#[derive(Deserialize)]
struct RemoteUser {
    id: String,
    username: String,
}

/// A remote 200: the access token from the JSON body, the refresh token and its lifetime from the
/// refresh cookie the remote set. Anything missing or out of range is malformed, never a dead
/// session.
fn read_remote_tokens(cookies: &Cookies, headers: &HeaderMap, body: &[u8]) -> Result<Issued, TransientCause> {
    if body.len() > MAX_REMOTE_BODY_BYTES {
        return Err(TransientCause::Malformed("the answer is too large"));
    }
    let tokens: RemoteTokens =
        serde_json::from_slice(body).map_err(|_| TransientCause::Malformed("the body is not a token response"))?;
    if tokens.access_token.is_empty() || tokens.expires_in <= 0 {
        return Err(TransientCause::Malformed("no usable access token"));
    }
    let (refresh_token, refresh_expires_in) = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|line| line.to_str().ok())
        .find_map(|line| refresh_cookie(line, cookies.refresh_name()))
        .ok_or(TransientCause::Malformed("no usable refresh cookie"))?;
    Ok(Issued {
        access_token: tokens.access_token,
        expires_in: tokens.expires_in,
        refresh_token,
        refresh_expires_in,
        user: UserView { id: tokens.user.id, username: tokens.user.username },
        // Filled in from the verified claims.
        session_id: String::new(),
    })
}

/// Value and `Max-Age` of a `Set-Cookie` line for cookie `name`, if it sets a live, non-empty one.
fn refresh_cookie(line: &str, name: &str) -> Option<(String, i64)> {
    let mut attributes = line.split(';');
    let (cookie_name, value) = attributes.next()?.trim().split_once('=')?;
    let max_age = attributes
        .filter_map(|attribute| attribute.trim().split_once('='))
        .find(|(key, _)| key.eq_ignore_ascii_case("max-age"))
        .and_then(|(_, secs)| secs.trim().parse::<i64>().ok())?;
    let value = value.trim().trim_matches('"');
    (cookie_name == name && !value.is_empty() && max_age > 0).then(|| (value.to_owned(), max_age))
}

/// A remote 401. Only reauth's own `invalid_grant` with a reason ends the session: a 401 from a
/// proxy in between, or "missing" when a token was sent (mismatched cookie names), must not log
/// anyone out.
fn read_remote_rejection(body: &[u8]) -> RotationFailure {
    #[derive(Deserialize)]
    struct Rejection {
        error: String,
        reason: String,
    }
    let reason = serde_json::from_slice::<Rejection>(body)
        .ok()
        .filter(|rejection| rejection.error == "invalid_grant")
        .and_then(|rejection| DeadReason::parse(&rejection.reason));
    match reason {
        Some(DeadReason::Missing) => RotationFailure::Transient(TransientCause::Malformed(
            "the remote saw no refresh cookie; do the cookie settings match?",
        )),
        Some(reason) => RotationFailure::SessionDead(reason),
        None => RotationFailure::Transient(TransientCause::Malformed("a 401 that is not reauth's invalid_grant")),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::config::CookieSettings;

    #[test]
    fn only_a_live_non_empty_refresh_cookie_of_the_right_name_is_read() {
        let name = "reauth_refresh";
        assert_eq!(
            refresh_cookie("reauth_refresh=rt1.abc; Path=/; Max-Age=86400; HttpOnly", name),
            Some(("rt1.abc".to_owned(), 86_400))
        );
        for line in [
            "reauth_refresh=; Path=/; Max-Age=0",
            "reauth_refresh=rt1.abc; Path=/; Max-Age=0",
            "reauth_refresh=rt1.abc; Path=/; Max-Age=-5",
            "reauth_refresh=rt1.abc; Path=/",
            "reauth_refresh=rt1.abc; Max-Age=soon",
            "reauth_session=1; Max-Age=86400",
            "garbage",
        ] {
            assert_eq!(refresh_cookie(line, name), None, "{line}");
        }
    }

    fn cookies() -> Cookies {
        Cookies::new(&CookieSettings { secure: false, domain: None, access_cookie: true })
    }

    fn set_cookie(line: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::SET_COOKIE, HeaderValue::from_static(line));
        headers
    }

    #[test]
    fn a_remote_token_answer_is_read_from_body_and_cookie() {
        let body =
            br#"{"access_token":"a.b.c","token_type":"Bearer","expires_in":900,"user":{"id":"u1","username":"alice"}}"#;
        let issued =
            read_remote_tokens(&cookies(), &set_cookie("reauth_refresh=rt1.x; Path=/; Max-Age=600"), body).unwrap();
        assert_eq!(
            (issued.access_token.as_str(), issued.expires_in, issued.refresh_token.as_str(), issued.refresh_expires_in),
            ("a.b.c", 900, "rt1.x", 600)
        );
        assert_eq!(issued.user, UserView { id: "u1".into(), username: "alice".into() });
    }

    #[test]
    fn malformed_remote_answers_are_transient() {
        let good_cookie = set_cookie("reauth_refresh=rt1.x; Path=/; Max-Age=600");
        let good_body = br#"{"access_token":"a.b.c","expires_in":900,"user":{"id":"u1","username":"alice"}}"#;
        let cases: [(&[u8], &HeaderMap); 6] = [
            (b"<html>oops</html>", &good_cookie),
            (b"", &good_cookie),
            (br#"{"access_token":42,"expires_in":900,"user":{"id":"u1","username":"a"}}"#, &good_cookie),
            (br#"{"access_token":"a.b.c","expires_in":0,"user":{"id":"u1","username":"a"}}"#, &good_cookie),
            (br#"{"access_token":"","expires_in":900,"user":{"id":"u1","username":"a"}}"#, &good_cookie),
            (good_body, &set_cookie("reauth_refresh=; Path=/; Max-Age=0")),
        ];
        for (body, headers) in cases {
            let result = read_remote_tokens(&cookies(), headers, body);
            assert!(matches!(result, Err(TransientCause::Malformed(_))), "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn only_reauths_own_401_ends_the_session() {
        let dead = read_remote_rejection(br#"{"error":"invalid_grant","error_description":"x","reason":"reused"}"#);
        assert!(matches!(dead, RotationFailure::SessionDead(DeadReason::Reused)), "{dead:?}");
        for body in [
            &br#"{"error":"invalid_grant","reason":"missing"}"#[..],
            br#"{"error":"unauthorized","reason":"revoked"}"#,
            br#"{"error":"invalid_grant","reason":"sunspots"}"#,
            b"Authorization Required",
        ] {
            let failure = read_remote_rejection(body);
            assert!(matches!(failure, RotationFailure::Transient(_)), "{}: {failure:?}", String::from_utf8_lossy(body));
        }
    }
}
