//! Every error path answers a 4xx (or 503) with the JSON error body; nothing yields a 500.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_reason, TestServer, PASSWORD};

#[tokio::test]
async fn registration_refuses_taken_weak_and_malformed_input() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let taken = server.post_json("/auth/register", json!({ "username": "ALICE", "password": PASSWORD })).await;
    assert_eq!(error_reason(taken, StatusCode::CONFLICT, "username_taken").await, "conflict");
    for (username, password) in
        [("bob", "short"), ("bob", "password123"), ("b", PASSWORD), ("bob smith", PASSWORD), ("bob", "bob")]
    {
        let response = server.post_json("/auth/register", json!({ "username": username, "password": password })).await;
        assert_eq!(
            error_reason(response, StatusCode::BAD_REQUEST, "invalid_request").await,
            "invalid",
            "{username}/{password}"
        );
    }
    let wrong_shape = server.post_json("/auth/register", json!({ "username": 5 })).await;
    assert_eq!(error_reason(wrong_shape, StatusCode::BAD_REQUEST, "invalid_request").await, "invalid");
}

#[tokio::test]
async fn registration_can_be_switched_off() {
    let server = TestServer::start_with(&["--allow-registration", "false"]).await;
    let response = server.post_json("/auth/register", json!({ "username": "alice", "password": PASSWORD })).await;
    assert_eq!(error_reason(response, StatusCode::FORBIDDEN, "registration_closed").await, "disabled");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let wrong = server.post_json("/auth/login", json!({ "username": "alice", "password": "not the password" })).await;
    let unknown =
        server.post_json("/auth/login", json!({ "username": "nobody", "password": "not the password" })).await;
    assert!(wrong.headers().get("set-cookie").is_none());
    let wrong: serde_json::Value = {
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        wrong.json().await.unwrap()
    };
    let unknown: serde_json::Value = {
        assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
        unknown.json().await.unwrap()
    };
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["error"], "invalid_credentials");
}

#[tokio::test]
async fn failed_logins_are_throttled_per_username_with_retry_after() {
    let server = TestServer::start_with(&["--login-max-failures", "3"]).await;
    server.register("alice").await;
    for _ in 0..3 {
        let response = server.post_json("/auth/login", json!({ "username": "alice", "password": "guess guess" })).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = server.post_json("/auth/login", json!({ "username": "alice", "password": PASSWORD })).await;
    let retry_after: i64 = throttled.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(error_reason(throttled, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await, "rate_limited");
    // Another account from the same address is not locked by alice's counter.
    server.register("bob").await;
    server.login("bob").await;
}

#[tokio::test]
async fn failed_logins_are_throttled_per_address() {
    let server = TestServer::start_with(&["--login-max-failures-per-address", "4"]).await;
    for name in ["a1x", "a2x", "a3x", "a4x"] {
        let response = server.post_json("/auth/login", json!({ "username": name, "password": "guess guess" })).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = server.post_json("/auth/login", json!({ "username": "a5x", "password": "guess guess" })).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn bodies_are_checked_for_type_size_and_syntax() {
    let server = TestServer::start().await;
    let as_text =
        server.http.post(server.url("/auth/login")).body(r#"{"username":"a","password":"b"}"#).send().await.unwrap();
    assert_eq!(
        error_reason(as_text, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await,
        "content_type"
    );
    let huge = json!({ "username": "alice", "password": "x".repeat(64 * 1024) });
    assert_eq!(
        error_reason(server.post_json("/auth/login", huge).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            .await,
        "too_large"
    );
    let broken = server
        .http
        .post(server.url("/auth/login"))
        .header("content-type", "application/json")
        .body("{\"username\":")
        .send()
        .await
        .unwrap();
    assert_eq!(error_reason(broken, StatusCode::BAD_REQUEST, "invalid_request").await, "invalid");
    let long_password = json!({ "username": "alice", "password": "x".repeat(4000) });
    assert_eq!(server.post_json("/auth/login", long_password).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_token_endpoint_names_each_bad_request() {
    let server = TestServer::start_with(&["--password-grant", "true"]).await;
    let token = |body: serde_json::Value| server.post_json("/auth/token", body);
    assert_eq!(
        error_reason(
            token(json!({ "grant_type": "client_credentials" })).await,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type"
        )
        .await,
        "unsupported"
    );
    assert_eq!(
        error_reason(token(json!({ "username": "a" })).await, StatusCode::BAD_REQUEST, "invalid_request").await,
        "invalid"
    );
    assert_eq!(
        error_reason(token(json!({ "grant_type": "refresh_token" })).await, StatusCode::BAD_REQUEST, "invalid_request")
            .await,
        "invalid"
    );
    let bad_password = token(json!({ "grant_type": "password", "username": "nobody", "password": "whatever1" })).await;
    assert_eq!(error_reason(bad_password, StatusCode::BAD_REQUEST, "invalid_grant").await, "invalid_credentials");
    let xml = server
        .http
        .post(server.url("/auth/token"))
        .header("content-type", "text/xml")
        .body("<x/>")
        .send()
        .await
        .unwrap();
    assert_eq!(xml.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let bad_form = server
        .http
        .post(server.url("/auth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=%ZZ&&=")
        .send()
        .await
        .unwrap();
    assert!(bad_form.status().is_client_error());
}

#[tokio::test]
async fn protected_routes_demand_a_valid_bearer_token() {
    let server = TestServer::start_with(&["--access-expires-in", "1s", "--clock-leeway", "0s"]).await;
    let session = server.signed_in("alice").await;
    let missing = server.http.get(server.url("/api/me")).send().await.unwrap();
    assert_eq!(missing.headers()["www-authenticate"], r#"Bearer realm="reauth""#);
    assert_eq!(error_reason(missing, StatusCode::UNAUTHORIZED, "unauthorized").await, "missing");

    let garbage = server.get_bearer("/api/me", "not.a.jwt").await;
    assert!(garbage.headers()["www-authenticate"].to_str().unwrap().contains(r#"error="invalid_token""#));
    assert_eq!(error_reason(garbage, StatusCode::UNAUTHORIZED, "invalid_token").await, "invalid");

    let (header, rest) = session.access_token.split_once('.').unwrap();
    let _ = header;
    use base64::Engine as _;
    let none_header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
    let unsigned = format!("{none_header}.{}.", rest.split('.').next().unwrap());
    assert_eq!(server.get_bearer("/api/me", &unsigned).await.status(), StatusCode::UNAUTHORIZED);

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let expired = server.get_bearer("/api/me", &session.access_token).await;
    assert_eq!(error_reason(expired, StatusCode::UNAUTHORIZED, "invalid_token").await, "expired");
    for path in ["/auth/sessions", "/auth/audit"] {
        assert_eq!(
            server.http.get(server.url(path)).send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert_eq!(
        server.http.post(server.url("/auth/logout-all")).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn cross_origin_posts_are_refused_and_allowed_origins_get_cors() {
    let server = TestServer::start_with(&["--allowed-origins", "http://app.test:3000"]).await;
    let session = server.signed_in("alice").await;
    let with_origin = |origin: &str| {
        server
            .http
            .post(server.url("/auth/refresh"))
            .header("origin", origin)
            .header("cookie", format!("reauth_refresh={}", session.refresh_token))
            .send()
    };
    let evil = with_origin("https://evil.test").await.unwrap();
    assert!(evil.headers().get("set-cookie").is_none());
    assert_eq!(error_reason(evil, StatusCode::FORBIDDEN, "forbidden_origin").await, "origin");
    assert_eq!(with_origin("null").await.unwrap().status(), StatusCode::FORBIDDEN);
    let login = server
        .http
        .post(server.url("/auth/login"))
        .header("origin", "https://evil.test")
        .json(&json!({"username":"alice","password":PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::FORBIDDEN, "login CSRF too");

    let allowed = with_origin("http://app.test:3000").await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(allowed.headers()["access-control-allow-origin"], "http://app.test:3000");
    assert_eq!(allowed.headers()["access-control-allow-credentials"], "true");
    let same_origin = server
        .http
        .post(server.url("/auth/logout"))
        .header("origin", format!("http://{}", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), StatusCode::NO_CONTENT);

    let preflight = server
        .http
        .request(reqwest::Method::OPTIONS, server.url("/auth/refresh"))
        .header("origin", "http://app.test:3000")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "http://app.test:3000");
    let foreign_preflight = server
        .http
        .request(reqwest::Method::OPTIONS, server.url("/auth/refresh"))
        .header("origin", "https://evil.test")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(foreign_preflight.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_json() {
    let server = TestServer::start().await;
    let missing = server.http.get(server.url("/auth/nothing-here")).send().await.unwrap();
    assert_eq!(error_reason(missing, StatusCode::NOT_FOUND, "not_found").await, "not_found");
    let wrong_method = server.http.get(server.url("/auth/login")).send().await.unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    let revoke_unknown = {
        let session = server.signed_in("alice").await;
        server
            .http
            .delete(server.url("/auth/sessions/does-not-exist"))
            .bearer_auth(&session.access_token)
            .send()
            .await
            .unwrap()
    };
    assert_eq!(revoke_unknown.status(), StatusCode::NOT_FOUND);
}

/// Found by the `http_request` fuzz target: axum's own rejection was a plain-text 400.
#[tokio::test]
async fn a_session_id_that_does_not_decode_is_a_json_400() {
    let server = TestServer::start().await;
    let session = server.signed_in("alice").await;
    let response = server
        .http
        .delete(server.url("/auth/sessions/abc%2F..%FF"))
        .bearer_auth(&session.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(error_reason(response, StatusCode::BAD_REQUEST, "invalid_request").await, "invalid");
    let sessions = server.get_bearer("/auth/sessions", &session.access_token).await;
    assert_eq!(sessions.json::<serde_json::Value>().await.unwrap().as_array().unwrap().len(), 1, "nothing was revoked");
}
