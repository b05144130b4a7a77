//! The HTTP surface.
//!
//! - `auth`: `/auth/*`, the browser (cookie) flow and the OAuth token endpoint;
//! - `wallet`: `/auth/wallet/*`, sign-in with a Stellar wallet's signature instead of a password;
//! - `api`: `/api/me`, the example route protected by [`AuthenticatedUser`];
//! - `account`: `/account`, a server-rendered demo page behind the silent-refresh layer (only with
//!   the access cookie on);
//! - `edge`: [`edge::SilentRefreshLayer`], silent refresh on the server for pages of any router
//!   (its remote-refresh client in `edge/remote.rs`);
//! - this module: `/.well-known/jwks.json`, `/healthz`, and the layers every route shares (CORS,
//!   the Origin check that defends cookie-authenticated endpoints against CSRF, body limit, panics
//!   turned into JSON 500s, request tracing).

mod account;
mod api;
mod auth;
pub mod cookies;
pub mod edge;
/// The error type every route answers with.
pub mod error;
/// Extractors: the authenticated caller, client details, JSON and form bodies.
pub mod extract;
mod origin;
mod wallet;

use std::path::Path;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use crate::service::AuthService;
use error::ApiError;
pub use extract::{AuthRejection, AuthenticatedUser, Authenticator};

/// Largest request body accepted (credentials and tokens are a few hundred bytes). Enforced by the
/// body extractors, so the 413 carries the JSON error body like every other error.
const BODY_LIMIT_BYTES: usize = 16 * 1024;

/// The reauth routes (`/auth/*`, `/api/me`, `/.well-known/jwks.json`, `/healthz`) with their layers,
/// ready to merge into an application's router.
pub fn router(service: AuthService) -> Router {
    let auth = auth::router().merge(wallet::router());
    let auth = auth.layer(middleware::map_response(|mut response: Response| async move {
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
        .layer(middleware::from_fn_with_state(service.clone(), origin::check_origin));
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
    let keys = service.access_tokens().jwks(crate::service::unix_now());
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
