//! The one error type of the client, and how it reaches JavaScript: a `ReauthError` (a subclass of
//! `Error`, defined in `js/error.js` and exported by the package) whose `code` never changes between
//! releases, so applications branch on `err.code`, not on message text.

use alloc::string::String;

use wasm_bindgen::prelude::*;

use crate::js::set_property;

#[wasm_bindgen(module = "/js/error.js")]
extern "C" {
    /// The package's `ReauthError` class: defined in JavaScript so that `instanceof` and stack
    /// traces work as for any `Error`, and so the package can export the very class it throws.
    type ReauthError;

    #[wasm_bindgen(constructor)]
    fn new(code: &str, message: &str) -> ReauthError;
}

/// Why an operation failed. Each variant is one stable `code` string in JavaScript.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    /// The constructor's options are missing or malformed.
    InvalidOptions,
    /// Login was refused: wrong username or password.
    InvalidCredentials,
    /// Too many failed logins; `retryAfter` says when to try again if the server exposed it.
    RateLimited,
    /// The request never got an HTTP answer: offline, DNS, refused connection, CORS refusal.
    Network,
    /// The request got no answer within `requestTimeoutMs` and was aborted.
    Timeout,
    /// The server answered 503 (its session store is down); the session is kept.
    TemporarilyUnavailable,
    /// The refresh cookie is dead (expired, revoked, reused, idle): the session has ended.
    SessionExpired,
    /// There is no session: sign in or `restore()` first.
    Unauthenticated,
    /// The server refused the request itself (HTTP 403), e.g. this page's origin is not allowed.
    Forbidden,
    /// Any other unexpected HTTP status; `status` carries it.
    HttpError,
    /// The server's answer did not have the documented shape.
    InvalidResponse,
}

impl ErrorCode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::InvalidOptions => "invalid_options",
            Self::InvalidCredentials => "invalid_credentials",
            Self::RateLimited => "rate_limited",
            Self::Network => "network",
            Self::Timeout => "timeout",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::SessionExpired => "session_expired",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::HttpError => "http_error",
            Self::InvalidResponse => "invalid_response",
        }
    }
}

/// An error with its stable code and what else a caller may need to react to it.
#[derive(Clone, Debug)]
pub(crate) struct AuthError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    /// The HTTP status, when the server answered.
    pub(crate) status: Option<u16>,
    /// Seconds from the server's `Retry-After`, when it sent (and exposed) one.
    pub(crate) retry_after: Option<f64>,
    /// The server's `reason` for a dead session (`expired`, `revoked`, `reused`, `inactive`, `missing`).
    pub(crate) reason: Option<String>,
}

impl AuthError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), status: None, retry_after: None, reason: None }
    }

    pub(crate) fn unauthenticated() -> Self {
        Self::new(ErrorCode::Unauthenticated, "not signed in")
    }

    /// Converts into the `ReauthError` callers see: `message`, `code`, and `status`, `retryAfter`,
    /// `reason` when known.
    pub(crate) fn into_js(self) -> JsValue {
        let error = ReauthError::new(self.code.as_str(), &self.message);
        if let Some(status) = self.status {
            set_property(&error, "status", &status.into());
        }
        if let Some(seconds) = self.retry_after {
            set_property(&error, "retryAfter", &seconds.into());
        }
        if let Some(reason) = self.reason {
            set_property(&error, "reason", &reason.into());
        }
        error.into()
    }
}

impl From<AuthError> for JsValue {
    fn from(error: AuthError) -> Self {
        error.into_js()
    }
}
