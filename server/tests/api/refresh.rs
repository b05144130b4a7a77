//! Rotation, the reuse interval, reuse detection, concurrency, expiry and store faults over HTTP.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{cookie, error_reason, set_cookie_line, Session, TestServer};

#[tokio::test]
async fn each_refresh_rotates_the_cookie_and_keeps_the_session() {
    let server = TestServer::start().await;
    let mut session = server.signed_in("alice").await;
    let sid = |s: &Session| {
        let payload = s.access_token.split('.').nth(1).unwrap().to_owned();
        use base64::Engine as _;
        let claims: serde_json::Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["sid"].as_str().unwrap().to_owned()
    };
    let first_sid = sid(&session);
    for _ in 0..5 {
        let response = server.refresh(&session.refresh_token).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let next = Session::from_response(response).await;
        assert_ne!(next.refresh_token, session.refresh_token);
        assert_eq!(sid(&next), first_sid, "one family");
        assert_eq!(next.body["user"], session.body["user"]);
        session = next;
    }
    assert_eq!(server.get_bearer("/api/me", &session.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_token_presented_again_within_the_interval_gets_the_same_successor() {
    let server = TestServer::start().await;
    let session = server.signed_in("alice").await;
    let first = Session::from_response(server.refresh(&session.refresh_token).await).await;
    let retried = server.refresh(&session.refresh_token).await;
    assert_eq!(retried.status(), StatusCode::OK, "a retried request is not theft");
    let retried = Session::from_response(retried).await;
    assert_eq!(retried.refresh_token, first.refresh_token, "no second branch");
    assert_eq!(server.refresh(&first.refresh_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn reuse_after_the_successor_was_used_revokes_the_whole_family_and_clears_cookies() {
    let server = TestServer::start_with(&["--reuse-interval", "1s"]).await;
    let stolen = server.signed_in("alice").await;
    let first = Session::from_response(server.refresh(&stolen.refresh_token).await).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Past the interval, the successor still unused: the same successor again (a lost answer).
    let retried = Session::from_response(server.refresh(&stolen.refresh_token).await).await;
    assert_eq!(retried.refresh_token, first.refresh_token);
    // Once the successor is used, the old token is theft.
    let legitimate = Session::from_response(server.refresh(&first.refresh_token).await).await;

    let replay = server.refresh(&stolen.refresh_token).await;
    for name in ["reauth_refresh", "reauth_session"] {
        assert!(set_cookie_line(replay.headers(), name).unwrap().contains("Max-Age=0"), "{name} cleared");
    }
    assert_eq!(error_reason(replay, StatusCode::UNAUTHORIZED, "invalid_grant").await, "reused");
    // The legitimate holder's newer token died with the family.
    assert_eq!(
        error_reason(server.refresh(&legitimate.refresh_token).await, StatusCode::UNAUTHORIZED, "invalid_grant").await,
        "reused"
    );
}

#[tokio::test]
async fn twenty_simultaneous_refreshes_of_one_token_all_succeed_with_one_family() {
    let server = TestServer::start().await;
    let session = server.signed_in("alice").await;
    let requests = (0..20).map(|_| {
        let (http, url, token) = (server.http.clone(), server.url("/auth/refresh"), session.refresh_token.clone());
        tokio::spawn(
            async move { http.post(url).header("cookie", format!("reauth_refresh={token}")).send().await.unwrap() },
        )
    });
    let mut successors = Vec::new();
    for request in requests {
        let response = request.await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        successors.push(cookie(response.headers(), "reauth_refresh").unwrap());
    }
    successors.dedup();
    assert_eq!(successors.len(), 1, "every racer got the same successor");
    let next = Session::from_response(server.refresh(&successors[0]).await).await;
    let sessions: Vec<serde_json::Value> =
        server.get_bearer("/auth/sessions", &next.access_token).await.json().await.unwrap();
    assert_eq!(sessions.len(), 1, "one family left");
}

#[tokio::test]
async fn a_dead_session_names_its_reason() {
    let server = TestServer::start_with(&["--refresh-expires-in", "1s"]).await;
    let missing = server.http.post(server.url("/auth/refresh")).send().await.unwrap();
    assert!(set_cookie_line(missing.headers(), "reauth_refresh").unwrap().contains("Max-Age=0"));
    assert_eq!(error_reason(missing, StatusCode::UNAUTHORIZED, "invalid_grant").await, "missing");
    assert_eq!(
        error_reason(server.refresh("rt1.forged").await, StatusCode::UNAUTHORIZED, "invalid_grant").await,
        "invalid"
    );

    let session = server.signed_in("alice").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        error_reason(server.refresh(&session.refresh_token).await, StatusCode::UNAUTHORIZED, "invalid_grant").await,
        "expired"
    );
}

#[tokio::test]
async fn a_session_never_outlives_its_max_age() {
    let server = TestServer::start_with(&["--session-max-age", "2s", "--refresh-expires-in", "1h"]).await;
    let session = server.signed_in("alice").await;
    let response = server.refresh(&session.refresh_token).await;
    let line = set_cookie_line(response.headers(), "reauth_refresh").unwrap();
    let max_age: i64 = line.split("Max-Age=").nth(1).unwrap().split(';').next().unwrap().parse().unwrap();
    assert!(max_age <= 2, "cookie capped by the session's end: {line}");
    let next = Session::from_response(response).await;
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(
        error_reason(server.refresh(&next.refresh_token).await, StatusCode::UNAUTHORIZED, "invalid_grant").await,
        "expired"
    );
}

#[tokio::test]
async fn the_token_endpoint_answers_dead_grants_with_400() {
    let server = TestServer::start_with(&["--reuse-interval", "0s"]).await;
    let session = server.signed_in("alice").await;
    let body = |token: &str| serde_json::json!({ "grant_type": "refresh_token", "refresh_token": token });
    assert_eq!(server.post_json("/auth/token", body(&session.refresh_token)).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let replay = server.post_json("/auth/token", body(&session.refresh_token)).await;
    assert!(replay.headers().get("set-cookie").is_none());
    assert_eq!(error_reason(replay, StatusCode::BAD_REQUEST, "invalid_grant").await, "reused");
}

/// A real fault: another connection holds SQLite's write lock past the busy timeout. The refresh
/// must answer 503 with Retry-After and leave the cookie alone; once the lock is gone the same
/// token works.
#[tokio::test]
async fn a_locked_store_answers_503_and_the_session_survives() {
    use sqlx::{Connection, Executor};
    let server = TestServer::start().await;
    let session = server.signed_in("alice").await;

    let mut blocker = sqlx::SqliteConnection::connect(&format!("sqlite://{}", server.db_path.display())).await.unwrap();
    blocker.execute("BEGIN EXCLUSIVE").await.unwrap();
    let response = server.refresh(&session.refresh_token).await;
    assert!(response.headers().get("retry-after").is_some());
    assert!(response.headers().get("set-cookie").is_none(), "a fault never touches cookies");
    assert_eq!(error_reason(response, StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable").await, "unavailable");
    blocker.execute("ROLLBACK").await.unwrap();

    assert_eq!(server.refresh(&session.refresh_token).await.status(), StatusCode::OK);
}

/// A valid MAC on a generation never issued can only come from a holder of the key: it is refused
/// as invalid, and the session it names is left alone rather than revoked as if reused.
#[tokio::test]
async fn a_token_for_a_generation_never_issued_is_invalid_and_revokes_nothing() {
    let server = TestServer::start().await;
    let session = server.signed_in("alice").await;
    let service = server.service();
    let sid = service.verify_access_token(&session.access_token).unwrap().sid;
    let keys = service.access_tokens().key_set();
    let secret = keys.refresh_secret_at(reauth_server::time::unix_now());
    let from_the_future = reauth_server::tokens::RefreshToken::encode(secret, &sid, 5);
    assert_eq!(
        error_reason(server.refresh(&from_the_future).await, StatusCode::UNAUTHORIZED, "invalid_grant").await,
        "invalid"
    );
    assert_eq!(server.refresh(&session.refresh_token).await.status(), StatusCode::OK, "the session lives on");
}

#[tokio::test]
async fn ending_a_session_twice_is_harmless_and_audited_once() {
    let server = TestServer::start().await;
    let laptop = server.signed_in("alice").await;
    let phone = server.login("alice").await;
    let laptop_sid = server.service().verify_access_token(&laptop.access_token).unwrap().sid;
    for _ in 0..2 {
        let logout = server.logout(&laptop.refresh_token).await;
        assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    }
    for _ in 0..2 {
        let revoke = server
            .http
            .delete(server.url(&format!("/auth/sessions/{laptop_sid}")))
            .bearer_auth(&phone.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(revoke.status(), StatusCode::NO_CONTENT, "revoking an ended session of one's own is a no-op");
    }
    let audit: serde_json::Value = server.get_bearer("/auth/audit", &phone.access_token).await.json().await.unwrap();
    let count = |kind: &str| audit.as_array().unwrap().iter().filter(|event| event["type"] == kind).count();
    assert_eq!((count("logout"), count("revoke")), (1, 0), "{audit}");
    assert_eq!(server.refresh(&phone.refresh_token).await.status(), StatusCode::OK, "the other device is untouched");
}
