use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::cookies::Cookies;
use super::error::ApiError;
use crate::config::CookieSettings;
use crate::edge::EdgeIdentity;
use crate::revocation::RevocationList;
use crate::service::{unix_now, AuthService, ClientInfo};
use crate::tokens::{AccessClaims, AccessTokenError, AccessTokenVerifier};

/// What [`AuthenticatedUser`] checks requests with: the public-key verifier and the cookie names.
/// An [`AuthService`] provides one through `FromRef`; a service that must accept reauth's tokens
/// without holding the signing key (another API, an edge app refreshing through a remote reauth
/// server) builds one from the JWKS with [`AccessTokenVerifier::fetch_jwks`], which accepts every
/// published key (current, next and retired ones of a rotation).
#[derive(Clone, Debug)]
pub struct Authenticator {
    verifier: AccessTokenVerifier,
    cookies: Cookies,
    revocations: Option<Arc<RevocationList>>,
}

impl Authenticator {
    /// Verifies with `verifier`, reading the access cookie named by `cookies`: **stateless**
    /// verification, signature and claims only, so a token stays valid until it expires whatever
    /// happens to its session. Add [`Self::with_revocations`] to refuse revoked sessions at once.
    pub fn new(verifier: AccessTokenVerifier, cookies: &CookieSettings) -> Self {
        Self { verifier, cookies: Cookies::new(cookies), revocations: None }
    }

    /// Also refuses tokens whose session or user was revoked (401 `invalid_token`, reason
    /// `revoked`). An [`AuthService`] provides its list through `FromRef`, kept current by
    /// [`AuthService::follow_revocations`].
    pub fn with_revocations(mut self, revocations: Arc<RevocationList>) -> Self {
        self.revocations = Some(revocations);
        self
    }

    fn verify(&self, token: &str) -> Result<AuthenticatedUser, AuthRejection> {
        let claims = self.verifier.verify(token, unix_now()).map_err(|error| {
            tracing::debug!(%error, "access token refused");
            match error {
                AccessTokenError::Expired => AuthRejection::Expired,
                _ => AuthRejection::Invalid,
            }
        })?;
        self.admit(claims)
    }

    fn admit(&self, claims: AccessClaims) -> Result<AuthenticatedUser, AuthRejection> {
        if self.revocations.as_ref().is_some_and(|revocations| revocations.is_revoked(&claims)) {
            tracing::debug!(session_id = %claims.sid, "access token of a revoked session refused");
            return Err(AuthRejection::Revoked);
        }
        Ok(AuthenticatedUser { claims })
    }
}

/// Why [`AuthenticatedUser`] refused a request. Answers 401 with `WWW-Authenticate: Bearer` and the
/// JSON error body (RFC 6750): `unauthorized`/`missing`, or `invalid_token` with the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthRejection {
    /// No access token: no `Authorization: Bearer`, no edge identity, no access cookie.
    #[error("an access token is required")]
    Missing,
    /// The token's `exp` has passed.
    #[error("the access token has expired")]
    Expired,
    /// Not a token of ours: malformed, forged, another key, wrong issuer or audience.
    #[error("the access token is invalid")]
    Invalid,
    /// Its session or user was revoked (logout, revoked device, reuse, logout-all, disabled or
    /// deleted user).
    #[error("the access token's session was revoked")]
    Revoked,
}

impl From<AuthRejection> for ApiError {
    fn from(rejection: AuthRejection) -> Self {
        match rejection {
            AuthRejection::Missing => Self::MissingBearer,
            AuthRejection::Expired => Self::InvalidBearer("expired"),
            AuthRejection::Invalid => Self::InvalidBearer("invalid"),
            AuthRejection::Revoked => Self::InvalidBearer("revoked"),
        }
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

impl FromRef<AuthService> for Authenticator {
    fn from_ref(service: &AuthService) -> Self {
        Self::new(service.access_tokens().verifier().clone(), &service.settings().cookies)
            .with_revocations(service.revocations().clone())
    }
}

/// The caller of a route that requires an access token: verified claims from, in this order,
/// `Authorization: Bearer …`, the identity [`SilentRefreshLayer`](crate::edge::SilentRefreshLayer)
/// verified or refreshed on this very request, or the access cookie (when
/// [`CookieSettings::access_cookie`](crate::config::CookieSettings::access_cookie) is on). Works in
/// any router whose state provides an [`Authenticator`] through `FromRef` (an [`AuthService`] does).
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use reauth_server::{AuthService, AuthenticatedUser};
///
/// async fn whoami(user: AuthenticatedUser) -> String {
///     format!("user {} in session {}", user.claims.sub, user.claims.sid)
/// }
///
/// fn routes(auth: AuthService) -> Router {
///     Router::new().route("/whoami", get(whoami)).with_state(auth)
/// }
/// ```
#[derive(Clone, Debug)]
pub struct AuthenticatedUser {
    /// The verified claims (`sub` is the user id, `sid` the session).
    pub claims: AccessClaims,
}

impl<S> FromRequestParts<S> for AuthenticatedUser
where
    S: Send + Sync,
    Authenticator: FromRef<S>,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let authenticator = Authenticator::from_ref(state);
        if let Some(token) = bearer_token(&parts.headers) {
            return authenticator.verify(token);
        }
        if let Some(identity) = parts.extensions.get::<EdgeIdentity>() {
            return authenticator.admit(identity.claims.clone());
        }
        match authenticator.cookies.access_token(&parts.headers) {
            Some(token) => authenticator.verify(token),
            None => Err(AuthRejection::Missing),
        }
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

const MAX_USER_AGENT_LEN: usize = 256;

impl<S> FromRequestParts<S> for ClientInfo
where
    S: Send + Sync,
    AuthService: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let service = AuthService::from_ref(state);
        let forwarded = service
            .settings()
            .trust_forwarded_for
            .then(|| last_forwarded_for(&parts.headers))
            .flatten()
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok());
        let peer = || parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_string());
        let user_agent = parts.headers.get(header::USER_AGENT).and_then(|value| value.to_str().ok()).map(|agent| {
            let cut = agent.char_indices().nth(MAX_USER_AGENT_LEN).map_or(agent.len(), |(index, _)| index);
            agent[..cut].to_owned()
        });
        Ok(ClientInfo { ip: forwarded.or_else(peer), user_agent })
    }
}

/// The last `X-Forwarded-For` entry over every line of the header: the address our own proxy saw
/// (it appends), whatever a client put in lines of its own before it. A proxy may add its entry as a
/// separate line rather than extend the first, and RFC 9110 §5.3 makes both forms equivalent.
fn last_forwarded_for(headers: &HeaderMap) -> Option<String> {
    let last_line = headers.get_all("x-forwarded-for").iter().next_back()?.to_str().ok()?;
    last_line.rsplit(',').next().map(str::trim).filter(|entry| !entry.is_empty()).map(str::to_owned)
}

/// `axum::Json` with rejections turned into [`ApiError`]s (415, 413, 400 with a JSON body).
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// `axum::extract::Path` with rejections turned into [`ApiError`]s (400 with a JSON body).
pub struct PathParam<T>(pub T);

impl<S, T> FromRequestParts<S> for PathParam<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// The OAuth token endpoint's body: `application/x-www-form-urlencoded` (RFC 6749) or JSON.
pub struct FormOrJson<T>(pub T);

impl<S, T> FromRequest<S> for FormOrJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .map(|value| value.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let body = axum::body::Bytes::from_request(request, state).await?;
        let parsed = match content_type.as_str() {
            "application/x-www-form-urlencoded" => {
                serde_urlencoded::from_bytes(&body).map_err(|error| error.to_string())
            }
            "application/json" => serde_json::from_slice(&body).map_err(|error| error.to_string()),
            _ => {
                return Err(ApiError::UnsupportedMediaType(
                    "expected Content-Type: application/x-www-form-urlencoded or application/json",
                ))
            }
        };
        parsed.map(Self).map_err(|message| ApiError::InvalidRequest(format!("malformed body: {message}")))
    }
}
