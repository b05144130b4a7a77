//! `/auth/*`: registration, login, refresh, the OAuth token endpoint, logout, sessions and audit.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::cookies::{CookieValue, Cookies};
use super::error::ApiError;
use super::extract::{AuthenticatedUser, FormOrJson, JsonBody, PathParam};
use crate::service::{AuthService, ClientInfo, Issued, SessionView, UserView};
use crate::store::AuditEvent;

/// How many audit events `GET /auth/audit` returns.
const AUDIT_PAGE: usize = 100;

pub(super) fn router() -> Router<AuthService> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/token", post(token))
        .route("/auth/revoke", post(revoke))
        .route("/auth/logout", post(logout))
        .route("/auth/logout-all", post(logout_all))
        .route("/auth/sessions", get(sessions))
        .route("/auth/sessions/{id}", delete(revoke_session))
        .route("/auth/audit", get(audit))
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    user: &'a UserView,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

fn cookies(service: &AuthService) -> Cookies {
    Cookies::new(&service.settings().cookies)
}

/// The login/refresh answer of the browser flow: tokens in the body, refresh token only in the cookie.
pub(super) fn browser_tokens(service: &AuthService, issued: &Issued) -> Response {
    let body = TokenResponse {
        access_token: &issued.access_token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        user: &issued.user,
        refresh_token: None,
    };
    let mut response = Json(body).into_response();
    for cookie in cookies(service).issue(issued) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

async fn register(
    State(service): State<AuthService>,
    client: ClientInfo,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Response, ApiError> {
    let user = service.register(&body.username, &body.password, &client).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "user": user }))).into_response())
}

async fn login(
    State(service): State<AuthService>,
    client: ClientInfo,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Response, ApiError> {
    let issued = service.login(&body.username, &body.password, &client).await?;
    Ok(browser_tokens(&service, &issued))
}

async fn refresh(
    State(service): State<AuthService>,
    client: ClientInfo,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cookies = cookies(&service);
    let presented = match cookies.refresh_cookie(&headers) {
        CookieValue::Conflicting => {
            tracing::warn!(
                client_ip = client.ip.as_deref(),
                "refresh cookie sent twice with different values: refused"
            );
            return Err(ApiError::DuplicateCookie { clear_stale: cookies.clear_other_path() });
        }
        CookieValue::Absent => None,
        CookieValue::One(token) => Some(token),
    };
    match service.refresh(presented, &client).await {
        Ok(issued) => Ok(browser_tokens(&service, &issued)),
        Err(error) => Err(ApiError::from_auth(error, || cookies.clear())),
    }
}

/// RFC 6749 token request; unknown fields are ignored as §3.2 requires.
#[derive(Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
}

async fn token(
    State(service): State<AuthService>,
    client: ClientInfo,
    FormOrJson(request): FormOrJson<TokenRequest>,
) -> Result<Response, ApiError> {
    let missing = |field: &str| ApiError::InvalidRequest(format!("{field} is required"));
    let issued = match request.grant_type.as_deref() {
        Some("password") if service.settings().password_grant => {
            let username = request.username.ok_or_else(|| missing("username"))?;
            let password = request.password.ok_or_else(|| missing("password"))?;
            service.login(&username, &password, &client).await
        }
        Some("refresh_token") => {
            let refresh_token = request.refresh_token.ok_or_else(|| missing("refresh_token"))?;
            service.refresh(Some(&refresh_token), &client).await
        }
        Some(other) => return Err(ApiError::UnsupportedGrantType(other.to_owned())),
        None => return Err(missing("grant_type")),
    }
    .map_err(ApiError::from_auth_oauth)?;
    let body = TokenResponse {
        access_token: &issued.access_token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        user: &issued.user,
        refresh_token: Some(&issued.refresh_token),
    };
    Ok(Json(body).into_response())
}

/// RFC 7009 token revocation request.
#[derive(Deserialize)]
struct RevocationRequest {
    token: Option<String>,
    /// Accepted and ignored: every token type is searched anyway, as §2.1 allows.
    #[serde(default, rename = "token_type_hint")]
    _token_type_hint: Option<String>,
}

/// `POST /auth/revoke` (RFC 7009): ends the session of a refresh token (or of an access token)
/// handed out in a body. 200 also for an unknown, malformed or already revoked token (§2.2), so the
/// answer tells nothing about the token.
async fn revoke(
    State(service): State<AuthService>,
    client: ClientInfo,
    FormOrJson(request): FormOrJson<RevocationRequest>,
) -> Result<StatusCode, ApiError> {
    let token = request.token.ok_or_else(|| ApiError::InvalidRequest("token is required".into()))?;
    service.revoke_token(&token, &client).await?;
    Ok(StatusCode::OK)
}

async fn logout(
    State(service): State<AuthService>,
    client: ClientInfo,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cookies = cookies(&service);
    // Every refresh cookie sent: with a planted duplicate, the real session still ends.
    let mut revoked = true;
    for token in cookies.refresh_tokens(&headers) {
        if let Err(error) = service.logout(Some(token), &client).await {
            tracing::warn!(%error, "logout: the session could not be revoked in the store; cookies cleared anyway");
            revoked = false;
        }
    }
    if revoked {
        return Ok(no_content_clearing(&cookies));
    }
    // Signed out here all the same: the cookies go, and the answer says the server-side revocation
    // did not happen (the refresh token dies at its expiry, or at the next logout-all).
    let body = serde_json::json!({ "server_revoked": false, "reason": "unavailable" });
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    for cookie in cookies.clear() {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

async fn logout_all(
    State(service): State<AuthService>,
    client: ClientInfo,
    user: AuthenticatedUser,
) -> Result<Response, ApiError> {
    service.logout_all(&user.claims, &client).await?;
    Ok(no_content_clearing(&cookies(&service)))
}

fn no_content_clearing(cookies: &Cookies) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    for cookie in cookies.clear() {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

async fn sessions(
    State(service): State<AuthService>,
    user: AuthenticatedUser,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    Ok(Json(service.sessions(&user.claims).await?))
}

async fn revoke_session(
    State(service): State<AuthService>,
    client: ClientInfo,
    user: AuthenticatedUser,
    PathParam(session_id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    service.revoke_session(&user.claims, &session_id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn audit(State(service): State<AuthService>, user: AuthenticatedUser) -> Result<Json<Vec<AuditEvent>>, ApiError> {
    Ok(Json(service.audit_events(&user.claims.sub, AUDIT_PAGE).await?))
}

/// `Cache-Control: no-store` for every `/auth` answer (RFC 6749 §5.1): a cached `Set-Cookie` or
/// token body would sign the next user of a shared cache in as someone else.
pub(super) fn no_store_headers() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}
