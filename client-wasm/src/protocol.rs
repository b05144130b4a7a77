//! The JSON the reauth server speaks, as far as the client reads it. Only the fields used are
//! declared; serde ignores the rest, so the server can add fields without breaking clients.

use serde::{Deserialize, Serialize};

/// The signed-in user, as the server describes it (`id` is a string).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) username: String,
}

/// The body of a successful `POST /auth/login` or `POST /auth/refresh`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    /// Seconds the access token stays valid, counted from when the server answered. The client
    /// trusts this and never decodes the token itself.
    pub(crate) expires_in: f64,
    pub(crate) user: User,
}

/// The body of every error answer: `{"error", "error_description", "reason"}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) error: Option<String>,
    #[serde(default)]
    pub(crate) error_description: Option<String>,
    #[serde(default)]
    pub(crate) reason: Option<String>,
}

/// The endpoints the client calls, relative to `baseUrl`.
pub(crate) mod path {
    pub(crate) const LOGIN: &str = "/auth/login";
    pub(crate) const REFRESH: &str = "/auth/refresh";
    pub(crate) const LOGOUT: &str = "/auth/logout";
    pub(crate) const LOGOUT_ALL: &str = "/auth/logout-all";
    /// Requests under this prefix never get the 401 retry: their 401s are answers, not stale tokens.
    pub(crate) const AUTH_PREFIX: &str = "/auth/";
}
