use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;

use super::cookies::Cookies;
use super::error::ApiError;
use crate::config::CookieSettings;
use crate::edge::EdgeIdentity;
use crate::service::{unix_now, AuthService, ClientInfo};
use crate::tokens::{AccessClaims, AccessTokenError, AccessTokenVerifier};

/// What [`AuthenticatedUser`] checks requests with: the public-key verifier and the cookie names.
/// An [`AuthService`] provides one through `FromRef`; a service that must accept reauth's tokens
/// without holding the signing key (another API, an edge app refreshing through a remote reauth
/// server) builds one from the JWKS with [`AccessTokenVerifier::from_jwk`].
#[derive(Clone, Debug)]
pub struct Authenticator {
    verifier: AccessTokenVerifier,
    cookies: Cookies,
}

impl Authenticator {
    /// Verifies with `verifier`, reading the access cookie named by `cookies`.
    pub fn new(verifier: AccessTokenVerifier, cookies: &CookieSettings) -> Self {
        Self { verifier, cookies: Cookies::new(cookies) }
    }

    fn verify(&self, token: &str) -> Result<AuthenticatedUser, ApiError> {
        self.verifier.verify(token, unix_now()).map(|claims| AuthenticatedUser { claims }).map_err(|error| {
            tracing::debug!(%error, "access token refused");
            ApiError::InvalidBearer(match error {
                AccessTokenError::Expired => "expired",
                _ => "invalid",
            })
        })
    }
}

impl FromRef<AuthService> for Authenticator {
    fn from_ref(service: &AuthService) -> Self {
        Self::new(service.access_tokens().verifier().clone(), &service.settings().cookies)
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
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let authenticator = Authenticator::from_ref(state);
        if let Some(token) = bearer_token(&parts.headers) {
            return authenticator.verify(token);
        }
        if let Some(identity) = parts.extensions.get::<EdgeIdentity>() {
            return Ok(Self { claims: identity.claims.clone() });
        }
        match authenticator.cookies.access_token(&parts.headers) {
            Some(token) => authenticator.verify(token),
            None => Err(ApiError::MissingBearer),
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
            .then(|| {
                parts
                    .headers
                    .get("x-forwarded-for")?
                    .to_str()
                    .ok()?
                    .rsplit(',')
                    .next()
                    .map(str::trim)
                    .map(str::to_owned)
            })
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
