//! The HTTP surface.
//!
//! - `auth`: `/auth/*`, the browser (cookie) flow and the OAuth token endpoint;
//! - `api`: `/api/me`, the example route protected by [`AuthenticatedUser`];
//! - `account`: `/account`, a server-rendered demo page behind the silent-refresh layer (only with
//!   the access cookie on);
//! - this module: `/.well-known/jwks.json`, `/healthz`, and the layers every route shares (CORS,
//!   the Origin check that defends cookie-authenticated endpoints against CSRF, body limit, panics
//!   turned into JSON 500s, request tracing).

mod account;
mod api;
mod auth;
pub mod cookies;
/// The error type every route answers with.
pub mod error;
/// Extractors: the authenticated caller, client details, JSON and form bodies.
pub mod extract;

use std::path::Path;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use crate::service::AuthService;
use error::ApiError;
pub use extract::{AuthenticatedUser, Authenticator};

/// Largest request body accepted (credentials and tokens are a few hundred bytes). Enforced by the
/// body extractors, so the 413 carries the JSON error body like every other error.
const BODY_LIMIT_BYTES: usize = 16 * 1024;

/// The reauth routes (`/auth/*`, `/api/me`, `/.well-known/jwks.json`, `/healthz`) with their layers,
/// ready to merge into an application's router.
pub fn router(service: AuthService) -> Router {
    let auth = auth::router().layer(middleware::map_response(|mut response: Response| async move {
        response.headers_mut().extend(auth::no_store_headers());
        response
    }));
    let routes = Router::new()
        .merge(auth)
        .merge(api::router())
        .route("/.well-known/jwks.json", get(jwks))
        .route("/healthz", get(healthz))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(middleware::from_fn_with_state(service.clone(), check_origin));
    let routes = match cors(&service) {
        Some(cors) => routes.layer(cors),
        None => routes,
    };
    routes.layer(CatchPanicLayer::custom(panic_response)).layer(TraceLayer::new_for_http()).with_state(service)
}

/// [`router`] plus the files of `www_dir` at `/` (the demo page), the server-rendered `/account`
/// page when the access cookie is on, and JSON 404s elsewhere.
pub fn app(service: AuthService, www_dir: Option<&Path>) -> Router {
    let router = if service.settings().cookies.access_cookie {
        router(service.clone()).merge(account::router(service))
    } else {
        router(service)
    };
    match www_dir {
        Some(dir) => router.fallback_service(ServeDir::new(dir).fallback(get(not_found))),
        None => router.fallback(not_found),
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// 405 with the JSON error body, for every router of this crate (axum's own 405 has no body).
async fn method_not_allowed() -> Response {
    let body = serde_json::json!({
        "error": "method_not_allowed", "error_description": "method not allowed on this path", "reason": "method"
    });
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

async fn jwks(State(service): State<AuthService>) -> Response {
    let keys = serde_json::json!({ "keys": [service.access_tokens().keys().jwk()] });
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(keys)).into_response()
}

async fn healthz(State(service): State<AuthService>) -> Result<Json<serde_json::Value>, ApiError> {
    service.store().user_by_id("").await.map_err(|error| ApiError::Unavailable(Box::new(error)))?;
    Ok(Json(serde_json::json!({ "status": "ok", "store": service.store().backend() })))
}

fn cors(service: &AuthService) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> =
        service.settings().allowed_origins.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()).collect();
    (!origins.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([header::RETRY_AFTER, header::WWW_AUTHENTICATE])
            .max_age(Duration::from_secs(600))
    })
}

/// CSRF defence: a state-changing request whose `Origin` is neither this server nor an allowed origin
/// is refused before any handler runs. Browsers always send `Origin` on cross-origin POSTs (and on
/// same-origin POSTs in all current engines); clients that are not browsers send none and pass.
async fn check_origin(State(service): State<AuthService>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return next.run(request).await;
    };
    let origin = origin.to_str().unwrap_or("null").trim_end_matches('/');
    let host = request.headers().get(header::HOST).and_then(|host| host.to_str().ok());
    let same_origin = origin
        .split_once("://")
        .is_some_and(|(_, authority)| host.is_some_and(|host| authority.eq_ignore_ascii_case(host)));
    let allowed = service.settings().allowed_origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin));
    if same_origin || allowed {
        next.run(request).await
    } else {
        tracing::warn!(origin, path = %request.uri().path(), "cross-origin request refused");
        ApiError::ForbiddenOrigin.into_response()
    }
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(
            serde_json::json!({ "error": "server_error", "error_description": "internal error", "reason": "internal" }),
        ),
    )
        .into_response()
}
