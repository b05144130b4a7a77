//! The happy paths of every endpoint, cookie attributes and restarts.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{cookie, error_reason, set_cookie_line, Session, TestServer, PASSWORD};

#[tokio::test]
async fn login_answers_tokens_and_sets_both_cookies_without_caching() {
    let server = TestServer::start().await;
    let registered = server.register("Alice").await;
    assert_eq!(registered["user"]["username"], "alice");
    let response = server.post_json("/auth/login", json!({ "username": "alice", "password": PASSWORD })).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let refresh = set_cookie_line(response.headers(), "reauth_refresh").unwrap();
    assert!(refresh.starts_with("reauth_refresh=rt1."), "{refresh}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/auth", "Max-Age=86400"] {
        assert!(refresh.contains(attribute), "{attribute} missing in {refresh}");
    }
    let indicator = set_cookie_line(response.headers(), "reauth_session").unwrap();
    assert!(indicator.contains("Path=/") && !indicator.contains("HttpOnly"), "{indicator}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"], registered["user"]);
    assert!(body.get("refresh_token").is_none(), "the browser flow keeps the refresh token in the cookie only");
}

#[tokio::test]
async fn secure_cookies_use_the_prefix_and_secure_attribute() {
    let server = TestServer::start_with(&["--cookie-secure", "true"]).await;
    server.register("alice").await;
    let response = server.post_json("/auth/login", json!({ "username": "alice", "password": PASSWORD })).await;
    let refresh = set_cookie_line(response.headers(), "__Host-reauth_refresh").expect("prefixed cookie");
    assert!(refresh.contains("; Secure") && refresh.contains("HttpOnly"), "{refresh}");
    assert!(set_cookie_line(response.headers(), "reauth_session").unwrap().contains("; Secure"));
    // The prefixed name is the one read back.
    let token = cookie(response.headers(), "__Host-reauth_refresh").unwrap();
    let refreshed = server
        .http
        .post(server.url("/auth/refresh"))
        .header("cookie", format!("__Host-reauth_refresh={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_access_token_opens_the_protected_route_and_verifies_with_the_jwks() {
    let server = TestServer::start().await;
    let session = server.signed_in("alice").await;
    let me: Value = server.get_bearer("/api/me", &session.access_token).await.json().await.unwrap();
    assert_eq!(me, session.body["user"]);

    let jwks: Value = server.http.get(server.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str()),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    // Verify the token's signature with nothing but the published key, as another service would.
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use ed25519_dalek::{Signature, VerifyingKey};
    let public: [u8; 32] = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap().try_into().unwrap();
    let (signing_input, signature) = session.access_token.rsplit_once('.').unwrap();
    let signature: [u8; 64] = URL_SAFE_NO_PAD.decode(signature).unwrap().try_into().unwrap();
    VerifyingKey::from_bytes(&public)
        .unwrap()
        .verify_strict(signing_input.as_bytes(), &Signature::from_bytes(&signature))
        .unwrap();
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(signing_input.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["kid"], key["kid"]);
    assert_eq!(header["typ"], "at+jwt");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(signing_input.split('.').nth(1).unwrap()).unwrap()).unwrap();
    for claim in ["sub", "sid", "iat", "exp", "iss", "aud", "jti"] {
        assert!(claims.get(claim).is_some(), "claim {claim} missing: {claims}");
    }
}

#[tokio::test]
async fn sessions_list_devices_and_one_can_be_revoked() {
    let server = TestServer::start().await;
    let laptop = server.signed_in("alice").await;
    let phone = server.login("alice").await;
    let sessions: Vec<Value> = server.get_bearer("/auth/sessions", &laptop.access_token).await.json().await.unwrap();
    assert_eq!(sessions.len(), 2);
    let current: Vec<bool> = sessions.iter().map(|s| s["current"].as_bool().unwrap()).collect();
    assert_eq!(current.iter().filter(|c| **c).count(), 1);
    assert!(sessions
        .iter()
        .all(|s| s["user_agent"] == "reauth-tests" && s["created_at"].is_i64() && s["last_used_at"].is_i64()));
    let phone_id = sessions.iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();

    let revoked = server
        .http
        .delete(server.url(&format!("/auth/sessions/{phone_id}")))
        .bearer_auth(&laptop.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        error_reason(server.refresh(&phone.refresh_token).await, StatusCode::UNAUTHORIZED, "invalid_grant").await,
        "revoked"
    );
    assert_eq!(server.refresh(&laptop.refresh_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn nobody_can_revoke_or_see_another_users_session() {
    let server = TestServer::start().await;
    let alice = server.signed_in("alice").await;
    let mallory = server.signed_in("mallory").await;
    let alice_sessions: Vec<Value> =
        server.get_bearer("/auth/sessions", &alice.access_token).await.json().await.unwrap();
    let alice_sid = alice_sessions[0]["id"].as_str().unwrap();
    let attempt = server
        .http
        .delete(server.url(&format!("/auth/sessions/{alice_sid}")))
        .bearer_auth(&mallory.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(error_reason(attempt, StatusCode::NOT_FOUND, "not_found").await, "not_found");
    assert_eq!(server.refresh(&alice.refresh_token).await.status(), StatusCode::OK);
    let mallory_sessions: Vec<Value> =
        server.get_bearer("/auth/sessions", &mallory.access_token).await.json().await.unwrap();
    assert!(mallory_sessions.iter().all(|s| s["id"] != alice_sid));
}

#[tokio::test]
async fn logout_revokes_the_family_and_clears_both_cookies() {
    let server = TestServer::start().await;
    let session = server.signed_in("alice").await;
    let response = server.logout(&session.refresh_token).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.headers()["cache-control"], "no-store");
    for name in ["reauth_refresh", "reauth_session"] {
        let line = set_cookie_line(response.headers(), name).unwrap();
        assert!(line.starts_with(&format!("{name}=;")) && line.contains("Max-Age=0"), "{line}");
    }
    assert_eq!(
        error_reason(server.refresh(&session.refresh_token).await, StatusCode::UNAUTHORIZED, "invalid_grant").await,
        "revoked"
    );
    // Logging out again, or without a cookie, is harmless.
    assert_eq!(server.http.post(server.url("/auth/logout")).send().await.unwrap().status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn logout_all_revokes_every_device() {
    let server = TestServer::start().await;
    let first = server.signed_in("alice").await;
    let second = server.login("alice").await;
    let bystander = server.signed_in("bob").await;
    let response =
        server.http.post(server.url("/auth/logout-all")).bearer_auth(&first.access_token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for session in [&first, &second] {
        assert_eq!(
            error_reason(server.refresh(&session.refresh_token).await, StatusCode::UNAUTHORIZED, "invalid_grant").await,
            "revoked"
        );
    }
    assert_eq!(server.refresh(&bystander.refresh_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_audit_log_records_each_kind_of_event() {
    let server = TestServer::start_with(&["--reuse-interval", "0s"]).await;
    server.register("alice").await;
    let bad = server.post_json("/auth/login", json!({ "username": "alice", "password": "wrong password" })).await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let stolen = server.login("alice").await;
    let rotated = Session::from_response(server.refresh(&stolen.refresh_token).await).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(server.refresh(&stolen.refresh_token).await.status(), StatusCode::UNAUTHORIZED);
    let other = server.login("alice").await;
    let logout =
        server.http.post(server.url("/auth/logout-all")).bearer_auth(&other.access_token).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);

    // Every earlier access token died with its session; read the log from a new one.
    assert_eq!(server.get_bearer("/auth/audit", &rotated.access_token).await.status(), StatusCode::UNAUTHORIZED);
    let reader = server.login("alice").await;
    let events: Vec<Value> = server.get_bearer("/auth/audit", &reader.access_token).await.json().await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["login", "logout_all", "login", "reuse_detected", "refresh", "login", "login_failed"],
        "newest first"
    );
    let reuse = &events[3];
    assert_eq!(reuse["session_id"], events[4]["session_id"]);
    assert_eq!(reuse["client_ip"], "127.0.0.1");
    assert_eq!(reuse["user_agent"], "reauth-tests");
    assert!(reuse["at"].is_i64());
}

#[tokio::test]
async fn a_restart_keeps_users_sessions_and_the_signing_key() {
    let mut server = TestServer::start().await;
    let session = server.signed_in("alice").await;
    server.restart().await;
    assert_eq!(
        server.get_bearer("/api/me", &session.access_token).await.status(),
        StatusCode::OK,
        "same key after restart"
    );
    let refreshed = server.refresh(&session.refresh_token).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed = Session::from_response(refreshed).await;
    assert_eq!(server.get_bearer("/api/me", &refreshed.access_token).await.status(), StatusCode::OK);
    assert!(server.db_path.with_file_name("reauth-signing-key.pem").exists());
}

#[tokio::test]
async fn the_oauth_token_endpoint_serves_password_and_refresh_grants() {
    let server = TestServer::start_with(&["--password-grant", "true"]).await;
    server.register("alice").await;
    let response = server
        .http
        .post(server.url("/auth/token"))
        .form(&[("grant_type", "password"), ("username", "alice"), ("password", crate::helpers::PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    assert!(response.headers().get("set-cookie").is_none(), "non-browser clients get no cookies");
    let body: Value = response.json().await.unwrap();
    let refresh_token = body["refresh_token"].as_str().unwrap();
    assert_eq!(body["token_type"], "Bearer");

    let rotated: Value = server
        .post_json("/auth/token", json!({ "grant_type": "refresh_token", "refresh_token": refresh_token }))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(rotated["refresh_token"].as_str().unwrap(), refresh_token);
    assert_eq!(server.get_bearer("/api/me", rotated["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn health_reports_the_store() {
    let server = TestServer::start().await;
    let health: Value = server.http.get(server.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health, json!({ "status": "ok", "store": "sqlite" }));
}
