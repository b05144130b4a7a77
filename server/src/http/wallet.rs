//! `/auth/wallet/*`: sign-in with a Stellar wallet (challenge, then signed challenge).

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::auth::browser_tokens;
use super::error::ApiError;
use super::extract::JsonBody;
use crate::service::{AuthError, AuthService, ClientInfo, WalletChallenge};

pub(super) fn router() -> Router<AuthService> {
    Router::new().route("/auth/wallet/challenge", post(challenge)).route("/auth/wallet/login", post(login))
}

#[derive(Deserialize)]
struct ChallengeRequest {
    account: String,
}

#[derive(Deserialize)]
struct SignedChallenge {
    account: String,
    message: String,
    signature: String,
}

async fn challenge(
    State(service): State<AuthService>,
    client: ClientInfo,
    JsonBody(body): JsonBody<ChallengeRequest>,
) -> Result<Json<WalletChallenge>, ApiError> {
    Ok(Json(service.wallet_challenge(&body.account, &client).await?))
}

async fn login(
    State(service): State<AuthService>,
    client: ClientInfo,
    JsonBody(body): JsonBody<SignedChallenge>,
) -> Result<Response, ApiError> {
    let issued = service.wallet_login(&body.account, &body.message, &body.signature, &client).await;
    Ok(browser_tokens(&service, &issued.map_err(refused_signature)?))
}

/// The login answer's 401, worded for a signature rather than a password.
fn refused_signature(error: AuthError) -> ApiError {
    match error {
        AuthError::InvalidCredentials => ApiError::RefusedSignature,
        other => other.into(),
    }
}
