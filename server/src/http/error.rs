use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::service::{AuthError, DeadReason};

/// Every error the HTTP layer answers. The body is always
/// `{"error": CODE, "error_description": TEXT, "reason": WHY}`.
#[derive(Debug)]
pub enum ApiError {
    /// 400 `invalid_request`: malformed body or a rule broken (weak password, bad username).
    InvalidRequest(String),
    /// 400 `unsupported_grant_type` (token endpoint).
    UnsupportedGrantType(String),
    /// 401 `invalid_credentials` (cookie login) or 400 `invalid_grant` (token endpoint).
    InvalidCredentials {
        /// Whether this is the OAuth token endpoint, which answers 400 per RFC 6749 §5.2.
        oauth: bool,
    },
    /// 401 `invalid_credentials` for a wallet sign-in: a wrong signature, or a challenge that was not
    /// issued for this account and domain, has expired or was used (deliberately not told apart).
    RefusedSignature,
    /// 401 `invalid_grant` (cookie flow, with both cookies cleared) or 400 (token endpoint).
    SessionEnded {
        /// Why.
        reason: DeadReason,
        /// `Set-Cookie` headers clearing the cookies; empty on the token endpoint.
        clear_cookies: Vec<HeaderValue>,
    },
    /// 400 `invalid_request` (reason `duplicate_cookie`): the refresh cookie came twice with different
    /// values, so neither is used and nothing is rotated or revoked. The `Set-Cookie` headers delete
    /// a stale cookie of ours at the other path; the cookie in use is left alone.
    DuplicateCookie {
        /// `Set-Cookie` headers deleting our cookie at the path not in use.
        clear_stale: Vec<HeaderValue>,
    },
    /// 401 with `WWW-Authenticate: Bearer`: no access token.
    MissingBearer,
    /// 401 with `WWW-Authenticate: Bearer error="invalid_token"`.
    InvalidBearer(&'static str),
    /// 403 `forbidden_origin`: a cross-site request to a cookie-authenticated endpoint.
    ForbiddenOrigin,
    /// 403 `registration_closed`.
    RegistrationClosed,
    /// 404 `not_found`.
    NotFound,
    /// 409 `username_taken`.
    UsernameTaken,
    /// 413 `payload_too_large`.
    PayloadTooLarge,
    /// 415 `unsupported_media_type`.
    UnsupportedMediaType(&'static str),
    /// 429 `rate_limited` with `Retry-After`.
    RateLimited {
        /// Seconds.
        retry_after_secs: i64,
    },
    /// 503 `temporarily_unavailable` (reason `busy`) with `Retry-After`: every password-hashing
    /// worker is taken and the queue is full.
    Busy {
        /// Seconds.
        retry_after_secs: i64,
    },
    /// 503 `temporarily_unavailable` with `Retry-After`: the store (or, for the edge layer, the
    /// remote reauth server) failed. Cookies are untouched, so a fault never logs anyone out. The
    /// cause is logged, not sent.
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
    reason: &'a str,
}

const RETRY_AFTER_UNAVAILABLE_SECS: u32 = 2;

impl ApiError {
    /// Maps a service error for the browser (cookie) flow.
    pub fn from_auth(error: AuthError, clear_cookies: impl FnOnce() -> Vec<HeaderValue>) -> Self {
        Self::from_service(error, false, clear_cookies)
    }

    /// Maps a service error for the OAuth token endpoint (400s, no cookies).
    pub fn from_auth_oauth(error: AuthError) -> Self {
        Self::from_service(error, true, Vec::new)
    }

    fn from_service(error: AuthError, oauth: bool, clear_cookies: impl FnOnce() -> Vec<HeaderValue>) -> Self {
        match error {
            AuthError::InvalidCredentials => Self::InvalidCredentials { oauth },
            AuthError::RateLimited { retry_after_secs } => Self::RateLimited { retry_after_secs },
            AuthError::Busy { retry_after_secs } => Self::Busy { retry_after_secs },
            AuthError::SessionEnded(reason) => Self::SessionEnded { reason, clear_cookies: clear_cookies() },
            AuthError::InvalidInput(message) => Self::InvalidRequest(message),
            AuthError::UsernameTaken => Self::UsernameTaken,
            AuthError::RegistrationClosed => Self::RegistrationClosed,
            AuthError::NotFound => Self::NotFound,
            AuthError::Unavailable(error) => Self::Unavailable(Box::new(error)),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        Self::from_auth(error, Vec::new)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => {
                Self::UnsupportedMediaType("expected Content-Type: application/json")
            }
            JsonRejection::BytesRejection(bytes) => bytes.into(),
            other => Self::InvalidRequest(other.body_text()),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::PayloadTooLarge
        } else {
            Self::InvalidRequest(rejection.body_text())
        }
    }
}

/// A path parameter that does not decode (invalid percent-encoded UTF-8, say): axum would answer a
/// plain-text 400.
impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::InvalidRequest(rejection.body_text())
    }
}

fn dead_session_description(reason: DeadReason) -> &'static str {
    match reason {
        DeadReason::Missing => "no refresh token was presented",
        DeadReason::Invalid => "the refresh token is not valid",
        DeadReason::Expired => "the session has expired",
        DeadReason::Revoked => "the session was ended",
        DeadReason::Reused => "the refresh token was already used; the session was revoked for safety",
        DeadReason::Inactive => "the account is disabled",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = |status: StatusCode, error: &str, description: &str, reason: &str| {
            (status, Json(ErrorBody { error, error_description: description, reason })).into_response()
        };
        match self {
            Self::InvalidRequest(message) => body(StatusCode::BAD_REQUEST, "invalid_request", &message, "invalid"),
            Self::UnsupportedGrantType(grant) => body(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant_type {grant:?} is not supported here"),
                "unsupported",
            ),
            Self::InvalidCredentials { oauth: false } => body(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "invalid username or password",
                "invalid_credentials",
            ),
            Self::RefusedSignature => body(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "the signature was not accepted: wrong key, or a challenge not issued for this account, expired or used",
                "invalid_credentials",
            ),
            Self::InvalidCredentials { oauth: true } => {
                body(StatusCode::BAD_REQUEST, "invalid_grant", "invalid username or password", "invalid_credentials")
            }
            Self::SessionEnded { reason, clear_cookies } => {
                let status = if clear_cookies.is_empty() { StatusCode::BAD_REQUEST } else { StatusCode::UNAUTHORIZED };
                let mut response = body(status, "invalid_grant", dead_session_description(reason), reason.as_str());
                for cookie in clear_cookies {
                    response.headers_mut().append(header::SET_COOKIE, cookie);
                }
                response
            }
            Self::DuplicateCookie { clear_stale } => {
                let mut response = body(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "the refresh cookie was sent twice with different values; neither is used",
                    "duplicate_cookie",
                );
                for cookie in clear_stale {
                    response.headers_mut().append(header::SET_COOKIE, cookie);
                }
                response
            }
            Self::MissingBearer => {
                let mut response =
                    body(StatusCode::UNAUTHORIZED, "unauthorized", "an access token is required", "missing");
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer realm="reauth""#));
                response
            }
            Self::InvalidBearer(reason) => {
                let mut response =
                    body(StatusCode::UNAUTHORIZED, "invalid_token", "the access token is invalid or expired", reason);
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="reauth", error="invalid_token""#),
                );
                response
            }
            Self::ForbiddenOrigin => body(
                StatusCode::FORBIDDEN,
                "forbidden_origin",
                "this origin may not call this endpoint with credentials",
                "origin",
            ),
            Self::RegistrationClosed => body(
                StatusCode::FORBIDDEN,
                "registration_closed",
                "registration is disabled on this server",
                "disabled",
            ),
            Self::NotFound => body(StatusCode::NOT_FOUND, "not_found", "no such resource", "not_found"),
            Self::UsernameTaken => body(StatusCode::CONFLICT, "username_taken", "that username is taken", "conflict"),
            Self::PayloadTooLarge => {
                body(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is too large", "too_large")
            }
            Self::UnsupportedMediaType(message) => {
                body(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message, "content_type")
            }
            Self::RateLimited { retry_after_secs } => {
                let mut response = body(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many failed attempts; try again later",
                    "rate_limited",
                );
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)));
                response
            }
            Self::Busy { retry_after_secs } => {
                let mut response = body(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the server is busy checking passwords; retry shortly",
                    "busy",
                );
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)));
                response
            }
            Self::Unavailable(source) => {
                tracing::error!(error = %source, "answering 503: a dependency (token store or remote reauth) failed");
                let mut response = body(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the server cannot reach its token store; retry shortly",
                    "unavailable",
                );
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_UNAVAILABLE_SECS));
                response
            }
        }
    }
}
