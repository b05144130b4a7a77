//! The JSON the reauth server speaks, as far as the client reads it. The browser parses the JSON
//! (`response.json()`); these readers pick the fields they need from the resulting objects and
//! ignore the rest, so the server can add fields without breaking clients. Readers and writers
//! are written by hand: serde's generated code cost more Wasm than the session engine itself
//! (see docs/BENCHMARKS.md).

use alloc::string::String;

use js_sys::Object;
use wasm_bindgen::JsValue;

use crate::js::{get_property, set_property};

/// The signed-in user, as the server describes it (`id` is a string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) username: String,
}

/// The body of a successful `POST /auth/login` or `POST /auth/refresh`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    /// Seconds the access token stays valid, counted from when the server answered. The client
    /// trusts this and never decodes the token itself.
    pub(crate) expires_in: f64,
    pub(crate) user: User,
}

/// The body of every error answer: `{"error", "error_description", "reason"}`, all optional.
#[derive(Debug, Default)]
pub(crate) struct ErrorBody {
    pub(crate) error: Option<String>,
    pub(crate) error_description: Option<String>,
    pub(crate) reason: Option<String>,
}

impl User {
    pub(crate) fn from_js(value: &JsValue) -> Option<Self> {
        Some(Self {
            id: get_property(value, "id").as_string()?,
            username: get_property(value, "username").as_string()?,
        })
    }

    /// `{id, username}`, as the server sent it.
    pub(crate) fn to_js(&self) -> JsValue {
        let object = Object::new();
        set_property(&object, "id", &self.id.as_str().into());
        set_property(&object, "username", &self.username.as_str().into());
        object.into()
    }
}

impl TokenResponse {
    /// `None` unless the token, a numeric lifetime and the user are all there.
    pub(crate) fn from_js(value: &JsValue) -> Option<Self> {
        Some(Self {
            access_token: get_property(value, "access_token").as_string()?,
            expires_in: get_property(value, "expires_in").as_f64()?,
            user: User::from_js(&get_property(value, "user"))?,
        })
    }

    /// The same shape as the server's JSON, so [`TokenResponse::from_js`] reads it back.
    pub(crate) fn to_js(&self) -> JsValue {
        let object = Object::new();
        set_property(&object, "access_token", &self.access_token.as_str().into());
        set_property(&object, "expires_in", &self.expires_in.into());
        set_property(&object, "user", &self.user.to_js());
        object.into()
    }
}

impl ErrorBody {
    pub(crate) fn from_js(value: &JsValue) -> Self {
        Self {
            error: get_property(value, "error").as_string(),
            error_description: get_property(value, "error_description").as_string(),
            reason: get_property(value, "reason").as_string(),
        }
    }
}

/// The script-readable cookie the server sets next to the refresh cookie, with the same lifetime,
/// and deletes when the session ends: it says "a session may exist" and nothing more.
const SESSION_INDICATOR: &str = "reauth_session";

/// Whether `document.cookie` holds the session indicator (with or without a `__Host-` or
/// `__Secure-` prefix, which a deployment may add). Byte-wise: `str` patterns cost Wasm.
pub(crate) fn has_session_indicator(document_cookie: &str) -> bool {
    document_cookie.as_bytes().split(|byte| *byte == b';').any(|mut pair| {
        while let [b' ', rest @ ..] = pair {
            pair = rest;
        }
        let name = pair.strip_prefix(b"__Host-").or_else(|| pair.strip_prefix(b"__Secure-")).unwrap_or(pair);
        matches!(name.strip_prefix(SESSION_INDICATOR.as_bytes()), Some([b'=', _, ..]))
    })
}

/// The endpoints the client calls, relative to `baseUrl`.
pub(crate) mod path {
    pub(crate) const LOGIN: &str = "/auth/login";
    pub(crate) const WALLET_CHALLENGE: &str = "/auth/wallet/challenge";
    pub(crate) const WALLET_LOGIN: &str = "/auth/wallet/login";
    pub(crate) const REFRESH: &str = "/auth/refresh";
    pub(crate) const LOGOUT: &str = "/auth/logout";
    pub(crate) const LOGOUT_ALL: &str = "/auth/logout-all";
    /// Requests under this prefix never get the 401 retry: their 401s are answers, not stale tokens.
    pub(crate) const AUTH_PREFIX: &str = "/auth/";
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn the_session_indicator_is_found_among_other_cookies_with_or_without_a_prefix() {
        assert!(has_session_indicator("reauth_session=1"));
        assert!(has_session_indicator("theme=dark; reauth_session=1; lang=en"));
        assert!(has_session_indicator("__Host-reauth_session=1"));
        assert!(has_session_indicator("__Secure-reauth_session=1"));
    }

    #[test]
    fn other_or_empty_cookies_are_not_the_indicator() {
        assert!(!has_session_indicator(""));
        assert!(!has_session_indicator("reauth_session="));
        assert!(!has_session_indicator("reauth_sessions=1; my_reauth_session=1; xreauth_session=1"));
        assert!(!has_session_indicator("reauth_refresh=abc"));
    }
}
