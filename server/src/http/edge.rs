//! Silent refresh on the server, for requests that cannot wait for client JavaScript: a browser
//! navigation, a reload of an idle tab, a server-rendered page.
//!
//! [`SilentRefreshLayer`] wraps the routes of such pages. When a request arrives without a valid
//! access cookie but with a refresh cookie, it rotates the session (in-process through
//! [`AuthService::refresh`], or by calling a remote reauth server's `/auth/refresh`), sets the new
//! cookies on the response and hands the fresh identity to the handler on the same request, where
//! [`AuthenticatedUser`](crate::AuthenticatedUser) finds it. Requires
//! [`CookieSettings::access_cookie`]; see docs/EDGE.md for when to use this rather than the Wasm
//! client.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use reauth_server::edge::SilentRefreshLayer;
//! use reauth_server::{AuthService, AuthenticatedUser};
//!
//! async fn dashboard(user: AuthenticatedUser) -> String {
//!     format!("hello {}", user.claims.sub)
//! }
//!
//! fn pages(auth: AuthService) -> Result<Router, reauth_server::edge::EdgeConfigError> {
//!     let refresh = SilentRefreshLayer::local(auth.clone()).login_path("/login")?;
//!     Ok(Router::new().route("/dashboard", get(dashboard)).layer(refresh).with_state(auth))
//! }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::config::CookieSettings;
use crate::http::cookies::Cookies;
use crate::http::error::ApiError;
use crate::service::{unix_now, AuthError, AuthService, ClientInfo, DeadReason, Issued};
use crate::store::UnixTime;
use crate::tokens::{AccessClaims, AccessTokenVerifier};

/// The client of a remote reauth server's `/auth/refresh`.
mod remote;
use remote::RemoteRefresh;

/// The counter of outcomes, labelled `outcome` with [`Outcome::as_str`].
pub const OUTCOMES_METRIC: &str = "reauth_edge_outcomes_total";

/// How long a call to a remote reauth server may take unless [`SilentRefreshLayer::timeout`] says
/// otherwise: a navigation waits on it.
pub const DEFAULT_REMOTE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the layer hands the handler in the request's extensions: the identity of the access token
/// that arrived valid or was just issued. [`AuthenticatedUser`](crate::AuthenticatedUser) reads it;
/// handlers with their own extractors can too.
#[derive(Clone, Debug)]
pub struct EdgeIdentity {
    /// The verified claims.
    pub claims: AccessClaims,
    /// The access token itself, e.g. to call an API on the user's behalf.
    pub access_token: String,
}

/// What the layer made of one request. Each is logged (target `reauth::edge`) and counted in
/// [`OUTCOMES_METRIC`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The request carries `Authorization`: the layer steps aside and the extractor checks it.
    Bearer,
    /// The access cookie is valid; its identity is handed on.
    Valid,
    /// The session was rotated: new cookies on the response, the new identity handed on.
    Refreshed,
    /// No refresh cookie: passed on unauthenticated, no cookie touched.
    Anonymous,
    /// A refresh was needed on a method other than GET or HEAD: passed on unauthenticated, no
    /// cookie touched, because a cross-site form post must not rotate anyone's session.
    UnsafeMethod,
    /// The rotation said the session is over: every reauth cookie is cleared and the request
    /// answered with a redirect to the login path (pages) or 401 (anything else).
    SessionDead,
    /// The rotation failed in a way that may pass (store down, remote 5xx or unreachable, timeout,
    /// malformed answer): [`TransientPolicy`] decides; no cookie is touched.
    Transient,
}

impl Outcome {
    /// The `outcome` label and log field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "bearer",
            Self::Valid => "valid",
            Self::Refreshed => "refreshed",
            Self::Anonymous => "anonymous",
            Self::UnsafeMethod => "unsafe_method",
            Self::SessionDead => "session_dead",
            Self::Transient => "transient",
        }
    }
}

/// What a transient failure does to the request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransientPolicy {
    /// 503 with `Retry-After`: the page is not rendered as if the user were signed out, so nobody
    /// is sent to log in again while their session is fine. The default.
    #[default]
    ServiceUnavailable,
    /// Pass the request on unauthenticated; the route answers as it does for anonymous visitors.
    /// For routes that render for both.
    PassThrough,
}

/// A setting the layer cannot work with.
#[derive(Debug, thiserror::Error)]
pub enum EdgeConfigError {
    /// The remote base URL is not an absolute http(s) URL.
    #[error("remote reauth URL {0:?} is not an absolute http(s) URL such as https://auth.example.com")]
    RemoteUrl(String),
    /// The login path is not a path on this site (an absolute URL would make an open redirect).
    #[error("login path {0:?} must be a path on this site starting with a single '/'")]
    LoginPath(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The tower layer; see the [module documentation](self).
#[derive(Clone)]
pub struct SilentRefreshLayer {
    config: Arc<EdgeConfig>,
}

#[derive(Clone)]
struct EdgeConfig {
    rotation: Rotation,
    verifier: AccessTokenVerifier,
    cookies: Cookies,
    login_path: Option<String>,
    on_transient: TransientPolicy,
}

#[derive(Clone)]
enum Rotation {
    Local(AuthService),
    Remote(RemoteRefresh),
}

impl SilentRefreshLayer {
    /// Rotates in-process with `service`, whose settings give the cookie names and attributes.
    pub fn local(service: AuthService) -> Self {
        let verifier = service.access_tokens().verifier().clone();
        let cookies = Cookies::new(&service.settings().cookies);
        Self::with(Rotation::Local(service), verifier, cookies)
    }

    /// Rotates by calling `POST {base_url}/auth/refresh` on a remote reauth server. `verifier`
    /// checks access tokens with the remote's public key, issuer and audience (build it from the
    /// remote's JWKS with [`AccessTokenVerifier::fetch_jwks`], and keep it current across key
    /// rotations with [`AccessTokenVerifier::spawn_jwks_refresh`]: this app never holds a signing key),
    /// and `cookies` must match the remote's cookie settings, `access_cookie` on.
    pub fn remote(
        base_url: &str,
        verifier: AccessTokenVerifier,
        cookies: &CookieSettings,
    ) -> Result<Self, EdgeConfigError> {
        let url_error = || EdgeConfigError::RemoteUrl(base_url.to_owned());
        let base = reqwest::Url::parse(base_url).map_err(|_| url_error())?;
        if !matches!(base.scheme(), "http" | "https") || !base.has_host() || base.query().is_some() {
            return Err(url_error());
        }
        let refresh_url = reqwest::Url::parse(&format!("{}/auth/refresh", base.as_str().trim_end_matches('/')))
            .map_err(|_| url_error())?;
        // Redirects are not followed: a refresh answer is 200 or an error, never somewhere else.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(EdgeConfigError::Client)?;
        let remote = RemoteRefresh { client, refresh_url, timeout: DEFAULT_REMOTE_TIMEOUT };
        Ok(Self::with(Rotation::Remote(remote), verifier, Cookies::new(cookies)))
    }

    fn with(rotation: Rotation, verifier: AccessTokenVerifier, cookies: Cookies) -> Self {
        metrics::describe_counter!(OUTCOMES_METRIC, "Requests seen by the reauth silent-refresh layer, by outcome");
        let config =
            EdgeConfig { rotation, verifier, cookies, login_path: None, on_transient: TransientPolicy::default() };
        Self { config: Arc::new(config) }
    }

    /// Where page navigations (`Accept: text/html`) go with a 303 when the session is dead. Unset,
    /// they get the 401 JSON answer like every other request.
    pub fn login_path(mut self, path: &str) -> Result<Self, EdgeConfigError> {
        let on_this_site = path.starts_with('/') && !path.starts_with("//") && !path.contains('\\');
        if !on_this_site || HeaderValue::from_str(path).is_err() {
            return Err(EdgeConfigError::LoginPath(path.to_owned()));
        }
        Arc::make_mut(&mut self.config).login_path = Some(path.to_owned());
        Ok(self)
    }

    /// What a transient failure does; [`TransientPolicy::ServiceUnavailable`] unless set.
    pub fn on_transient(mut self, policy: TransientPolicy) -> Self {
        Arc::make_mut(&mut self.config).on_transient = policy;
        self
    }

    /// The bound on a call to the remote reauth server (remote mode only), connection included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        if let Rotation::Remote(remote) = &mut Arc::make_mut(&mut self.config).rotation {
            remote.timeout = timeout;
        }
        self
    }
}

impl<S> Layer<S> for SilentRefreshLayer {
    type Service = SilentRefresh<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SilentRefresh { inner, config: self.config.clone() }
    }
}

/// The service [`SilentRefreshLayer`] wraps around a route.
#[derive(Clone)]
pub struct SilentRefresh<S> {
    inner: S,
    config: Arc<EdgeConfig>,
}

impl<S, B> Service<Request<B>> for SilentRefresh<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The service that was polled ready is the one to call; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match config.authenticate(&mut parts).await {
                Verdict::Answer(response) => Ok(response),
                Verdict::Forward { set_cookies } => {
                    let mut response = inner.call(Request::from_parts(parts, body)).await?;
                    if !set_cookies.is_empty() {
                        let headers = response.headers_mut();
                        // The response carries a session's tokens: no shared cache may keep it.
                        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                        for cookie in set_cookies {
                            headers.append(header::SET_COOKIE, cookie);
                        }
                    }
                    Ok(response)
                }
            }
        })
    }
}

enum Verdict {
    /// Call the route, then add these cookies to its response.
    Forward { set_cookies: Vec<HeaderValue> },
    /// Answer without calling the route.
    Answer(Response),
}

impl Verdict {
    const UNTOUCHED: Self = Self::Forward { set_cookies: Vec::new() };
}

/// Why a rotation did not produce tokens.
#[derive(Debug)]
enum RotationFailure {
    SessionDead(DeadReason),
    Transient(TransientCause),
}

/// A failure that says nothing about the session; never a reason to clear cookies.
#[derive(Debug, thiserror::Error)]
enum TransientCause {
    #[error("token store unavailable: {0}")]
    Store(#[source] AuthError),
    #[error("remote reauth server unreachable: {0}")]
    Unreachable(#[source] reqwest::Error),
    #[error("remote reauth server did not answer in time")]
    Timeout,
    #[error("remote reauth server answered {0}")]
    Status(StatusCode),
    #[error("malformed answer from the remote reauth server: {0}")]
    Malformed(&'static str),
}

impl From<reqwest::Error> for TransientCause {
    fn from(error: reqwest::Error) -> Self {
        if error.is_timeout() {
            Self::Timeout
        } else {
            Self::Unreachable(error)
        }
    }
}

impl TransientCause {
    fn kind(&self) -> &'static str {
        match self {
            Self::Store(_) => "store",
            Self::Unreachable(_) => "unreachable",
            Self::Timeout => "timeout",
            Self::Status(_) => "status",
            Self::Malformed(_) => "malformed",
        }
    }
}

impl EdgeConfig {
    async fn authenticate(&self, parts: &mut Parts) -> Verdict {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            record(Outcome::Bearer, parts, None, None, None);
            return Verdict::UNTOUCHED;
        }
        let now = unix_now();
        if let Some(token) = self.cookies.access_token(&parts.headers) {
            match self.verifier.verify(token, now) {
                Ok(claims) => {
                    record(Outcome::Valid, parts, Some(&claims.sid), None, None);
                    let access_token = token.to_owned();
                    parts.extensions.insert(EdgeIdentity { claims, access_token });
                    return Verdict::UNTOUCHED;
                }
                // Expired, forged, or without `exp` (the claims require it): as if absent.
                Err(error) => tracing::debug!(target: "reauth::edge", %error, "access cookie refused"),
            }
        }
        let Some(refresh_token) = self.cookies.refresh_token(&parts.headers).filter(|token| !token.is_empty()) else {
            record(Outcome::Anonymous, parts, None, None, None);
            return Verdict::UNTOUCHED;
        };
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            record(Outcome::UnsafeMethod, parts, None, None, None);
            return Verdict::UNTOUCHED;
        }
        let refresh_token = refresh_token.to_owned();
        match self.rotate(&refresh_token, parts, now).await {
            Ok((issued, claims)) => {
                record(Outcome::Refreshed, parts, Some(&issued.session_id), None, None);
                let set_cookies = self.cookies.issue(&issued);
                parts.extensions.insert(EdgeIdentity { claims, access_token: issued.access_token });
                Verdict::Forward { set_cookies }
            }
            Err(RotationFailure::SessionDead(reason)) => {
                record(Outcome::SessionDead, parts, None, Some(reason.as_str()), None);
                Verdict::Answer(self.session_dead_response(&parts.headers, reason))
            }
            Err(RotationFailure::Transient(cause)) => {
                record(Outcome::Transient, parts, None, Some(cause.kind()), Some(&cause));
                match self.on_transient {
                    TransientPolicy::PassThrough => Verdict::UNTOUCHED,
                    TransientPolicy::ServiceUnavailable => {
                        Verdict::Answer(ApiError::Unavailable(Box::new(cause)).into_response())
                    }
                }
            }
        }
    }

    /// Rotates, then verifies the new access token like any other: its claims are what the handler
    /// gets, and a remote answer whose token does not verify is malformed. It is checked as of
    /// `asked_at`, before the rotation: a token issued since then was valid when issued, even if
    /// its lifetime is one second and the clock has ticked.
    async fn rotate(
        &self,
        refresh_token: &str,
        parts: &mut Parts,
        asked_at: UnixTime,
    ) -> Result<(Issued, AccessClaims), RotationFailure> {
        let issued = match &self.rotation {
            Rotation::Local(service) => {
                let Ok(client) = ClientInfo::from_request_parts(parts, service).await;
                service.refresh(Some(refresh_token), &client).await.map_err(|error| match error {
                    AuthError::SessionEnded(reason) => RotationFailure::SessionDead(reason),
                    other => RotationFailure::Transient(TransientCause::Store(other)),
                })?
            }
            Rotation::Remote(remote) => remote.refresh(refresh_token, &self.cookies, parts).await?,
        };
        let claims = self
            .verifier
            .verify(&issued.access_token, asked_at)
            .map_err(|_| RotationFailure::Transient(TransientCause::Malformed("the access token does not verify")))?;
        if claims.sub != issued.user.id {
            return Err(RotationFailure::Transient(TransientCause::Malformed("the access token is for another user")));
        }
        Ok((Issued { session_id: claims.sid.clone(), ..issued }, claims))
    }

    fn session_dead_response(&self, headers: &HeaderMap, reason: DeadReason) -> Response {
        let clear_cookies = self.cookies.clear();
        let Some(login_path) = self.login_path.as_deref().filter(|_| wants_html(headers)) else {
            return ApiError::SessionEnded { reason, clear_cookies }.into_response();
        };
        let mut response = StatusCode::SEE_OTHER.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::LOCATION,
            HeaderValue::from_str(login_path).unwrap_or_else(|_| unreachable!("checked by login_path")),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for cookie in clear_cookies {
            headers.append(header::SET_COOKIE, cookie);
        }
        response
    }
}

/// Whether the request is a page navigation, which a redirect serves better than a JSON 401.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| media.split(';').next().is_some_and(|media| media.trim().eq_ignore_ascii_case("text/html")))
}

/// Logs the outcome as a structured event and counts it.
fn record(
    outcome: Outcome,
    parts: &Parts,
    session_id: Option<&str>,
    detail: Option<&str>,
    error: Option<&TransientCause>,
) {
    metrics::counter!(OUTCOMES_METRIC, "outcome" => outcome.as_str()).increment(1);
    let (method, path, label) = (parts.method.as_str(), parts.uri.path(), outcome.as_str());
    let error = error.map(tracing::field::display);
    match outcome {
        Outcome::Bearer | Outcome::Valid => {
            tracing::debug!(target: "reauth::edge", outcome = label, method, path, session_id, detail);
        }
        Outcome::SessionDead | Outcome::Transient => {
            tracing::warn!(target: "reauth::edge", outcome = label, method, path, session_id, detail, error);
        }
        Outcome::Refreshed | Outcome::Anonymous | Outcome::UnsafeMethod => {
            tracing::info!(target: "reauth::edge", outcome = label, method, path, session_id, detail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::{AccessTokens, Keys};

    fn html_accept(value: &'static str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(value));
        wants_html(&headers)
    }

    #[test]
    fn navigations_are_told_from_api_calls_by_accept() {
        assert!(html_accept("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
        assert!(html_accept("TEXT/HTML; q=1"));
        assert!(!html_accept("application/json"));
        assert!(!html_accept("*/*"));
        assert!(!html_accept("image/avif,image/webp,*/*"));
        assert!(!wants_html(&HeaderMap::new()));
    }

    #[test]
    fn outcome_labels_are_distinct() {
        let outcomes = [
            Outcome::Bearer,
            Outcome::Valid,
            Outcome::Refreshed,
            Outcome::Anonymous,
            Outcome::UnsafeMethod,
            Outcome::SessionDead,
            Outcome::Transient,
        ];
        let mut labels: Vec<&str> = outcomes.iter().map(|outcome| outcome.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), outcomes.len());
    }

    #[test]
    fn login_paths_must_stay_on_this_site() {
        let layer = || {
            SilentRefreshLayer::remote(
                "http://127.0.0.1:9",
                AccessTokens::new(Keys::generate(), "i", "a", 60).verifier().clone(),
                &CookieSettings { secure: false, domain: None, access_cookie: true },
            )
            .unwrap()
        };
        assert!(layer().login_path("/login?next=%2Faccount").is_ok());
        for path in ["https://evil.example/login", "//evil.example", "/\\evil.example", "login", "/a\nb"] {
            assert!(matches!(layer().login_path(path), Err(EdgeConfigError::LoginPath(_))), "{path:?}");
        }
    }

    #[test]
    fn remote_urls_must_be_absolute_http() {
        let verifier = AccessTokens::new(Keys::generate(), "i", "a", 60).verifier().clone();
        let cookies = CookieSettings { secure: false, domain: None, access_cookie: true };
        for url in ["auth.example.com", "ftp://auth.example.com", "", "http://"] {
            assert!(
                matches!(
                    SilentRefreshLayer::remote(url, verifier.clone(), &cookies),
                    Err(EdgeConfigError::RemoteUrl(_))
                ),
                "{url:?}"
            );
        }
        assert!(SilentRefreshLayer::remote("https://auth.example.com/reauth/", verifier, &cookies).is_ok());
    }
}
