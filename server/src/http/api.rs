//! `/api/*`: the example protected route.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::error::ApiError;
use super::extract::AuthenticatedUser;
use crate::service::{AuthService, UserView};

pub(super) fn router() -> Router<AuthService> {
    Router::new().route("/api/me", get(me))
}

/// The caller's account. A token for a deleted user is refused like an invalid one.
async fn me(State(service): State<AuthService>, user: AuthenticatedUser) -> Result<Json<UserView>, ApiError> {
    service.user(&user.claims.sub).await?.map(Json).ok_or(ApiError::InvalidBearer("invalid"))
}
