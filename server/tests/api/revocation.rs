//! Revocation reaches access tokens at once: a revoked device, logout, logout-all and a disabled
//! user all make the old access token answer 401 `invalid_token`, reason `revoked`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_reason, TestServer, PASSWORD};

async fn assert_revoked(server: &TestServer, access_token: &str) {
    for path in ["/api/me", "/auth/sessions"] {
        let response = server.get_bearer(path, access_token).await;
        assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
        assert_eq!(error_reason(response, StatusCode::UNAUTHORIZED, "invalid_token").await, "revoked", "{path}");
    }
}

#[tokio::test]
async fn a_revoked_device_loses_its_access_token_at_once() {
    let server = TestServer::start().await;
    let laptop = server.signed_in("alice").await;
    let phone = server.login("alice").await;
    let sessions: Value = server.get_bearer("/auth/sessions", &phone.access_token).await.json().await.unwrap();
    let phone_sid = sessions.as_array().unwrap().iter().find(|s| s["current"] == true).unwrap()["id"].clone();
    let deleted = server
        .http
        .delete(server.url(&format!("/auth/sessions/{}", phone_sid.as_str().unwrap())))
        .bearer_auth(&laptop.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_revoked(&server, &phone.access_token).await;
    assert_eq!(server.get_bearer("/api/me", &laptop.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_and_logout_all_end_the_access_tokens_too() {
    let server = TestServer::start().await;
    let first = server.signed_in("alice").await;
    let second = server.login("alice").await;
    let logout = server.logout(&first.refresh_token).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_revoked(&server, &first.access_token).await;
    assert_eq!(server.get_bearer("/api/me", &second.access_token).await.status(), StatusCode::OK);

    let all = server.http.post(server.url("/auth/logout-all")).bearer_auth(&second.access_token).send().await.unwrap();
    assert_eq!(all.status(), StatusCode::NO_CONTENT);
    assert_revoked(&server, &second.access_token).await;
    // Signing in again afterwards works at once.
    let again = server.login("alice").await;
    assert_eq!(server.get_bearer("/api/me", &again.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_user_disabled_by_another_process_is_refused_within_a_second_or_so() {
    let server = TestServer::start().await;
    let session = server.signed_in("alice").await;
    assert_eq!(server.get_bearer("/api/me", &session.access_token).await.status(), StatusCode::OK);
    // The operator's command is another process writing to the same store.
    let disabled = std::process::Command::new(env!("CARGO_BIN_EXE_reauth-server"))
        .args(["user", "disable", "alice", "--store", &format!("sqlite://{}", server.db_path.display())])
        .env_remove("REAUTH_STORE")
        .output()
        .unwrap();
    assert!(disabled.status.success(), "{}", String::from_utf8_lossy(&disabled.stderr));
    // The server learns it from the store at its next poll (every 500 ms); bounded wait.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = server.get_bearer("/api/me", &session.access_token).await;
        if response.status() == StatusCode::UNAUTHORIZED {
            assert_eq!(error_reason(response, StatusCode::UNAUTHORIZED, "invalid_token").await, "revoked");
            break;
        }
        assert!(Instant::now() < deadline, "still accepted: {}", response.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let login = server.post_json("/auth/login", json!({ "username": "alice", "password": PASSWORD })).await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
}
