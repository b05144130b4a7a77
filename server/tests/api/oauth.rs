//! The OAuth surface per current best practice: no password grant unless asked for, and RFC 7009
//! revocation.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_reason, TestServer, PASSWORD};

#[tokio::test]
async fn the_password_grant_is_off_by_default() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let response = server
        .http
        .post(server.url("/auth/token"))
        .form(&[("grant_type", "password"), ("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(error_reason(response, StatusCode::BAD_REQUEST, "unsupported_grant_type").await, "unsupported");
}

/// A refresh token handed out in a body, as a non-browser client holds it.
async fn body_refresh_token(server: &TestServer) -> (String, String) {
    let session = server.signed_in("alice").await;
    let body = json!({ "grant_type": "refresh_token", "refresh_token": session.refresh_token });
    let rotated: Value = server.post_json("/auth/token", body).await.json().await.unwrap();
    (rotated["refresh_token"].as_str().unwrap().to_owned(), rotated["access_token"].as_str().unwrap().to_owned())
}

async fn revoke(server: &TestServer, form: &[(&str, &str)]) -> reqwest::Response {
    server.http.post(server.url("/auth/revoke")).form(form).send().await.unwrap()
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_session() {
    let server = TestServer::start().await;
    let (refresh_token, _) = body_refresh_token(&server).await;
    let response = revoke(&server, &[("token", &refresh_token), ("token_type_hint", "refresh_token")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = json!({ "grant_type": "refresh_token", "refresh_token": refresh_token });
    let dead = server.post_json("/auth/token", body).await;
    assert_eq!(error_reason(dead, StatusCode::BAD_REQUEST, "invalid_grant").await, "revoked");
    // Revoking again, with a wrong hint, is still 200.
    assert_eq!(
        revoke(&server, &[("token", &refresh_token), ("token_type_hint", "access_token")]).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn revoking_an_access_token_ends_its_session_too() {
    let server = TestServer::start().await;
    let (refresh_token, access_token) = body_refresh_token(&server).await;
    assert_eq!(revoke(&server, &[("token", &access_token)]).await.status(), StatusCode::OK);
    let body = json!({ "grant_type": "refresh_token", "refresh_token": refresh_token });
    assert_eq!(
        error_reason(server.post_json("/auth/token", body).await, StatusCode::BAD_REQUEST, "invalid_grant").await,
        "revoked"
    );
}

#[tokio::test]
async fn unknown_and_malformed_tokens_get_200_and_a_missing_token_400() {
    let server = TestServer::start().await;
    for token in
        ["", "garbage", "rt1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "a.b.c"]
    {
        assert_eq!(revoke(&server, &[("token", token)]).await.status(), StatusCode::OK, "{token:?}");
    }
    let missing = revoke(&server, &[("token_type_hint", "refresh_token")]).await;
    assert_eq!(error_reason(missing, StatusCode::BAD_REQUEST, "invalid_request").await, "invalid");
}
