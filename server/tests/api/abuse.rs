//! Attacks from outside: bursts of guesses, floods of registrations, forged origins and forwarded
//! addresses. Each test is the attack as a client would make it, against the real server.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{cookie, error_reason, join_all, set_cookie_line, TestServer, PASSWORD};

/// Sends `count` logins at once and returns their statuses, checking each 429 has a `Retry-After`.
async fn login_burst(
    server: &TestServer,
    count: usize,
    body: impl Fn(usize) -> Value,
    forwarded: Option<&str>,
) -> Vec<StatusCode> {
    let requests = (0..count).map(|i| {
        let mut request = server.http.post(server.url("/auth/login")).json(&body(i));
        if let Some(address) = forwarded {
            request = request.header("x-forwarded-for", address);
        }
        request.send()
    });
    let responses = join_all(requests).await;
    responses
        .into_iter()
        .map(|response| {
            let response = response.unwrap();
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                let retry_after: i64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                assert!(retry_after >= 1, "{retry_after}");
            }
            response.status()
        })
        .collect()
}

fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test]
async fn a_burst_of_guesses_for_one_username_gets_at_most_the_limit_of_401s() {
    let server = TestServer::start_with(&["--login-max-failures", "5"]).await;
    server.register("alice").await;
    let statuses = login_burst(&server, 40, |_| json!({ "username": "alice", "password": "wrong guess" }), None).await;
    assert_eq!(count(&statuses, StatusCode::UNAUTHORIZED), 5, "{statuses:?}");
    assert_eq!(count(&statuses, StatusCode::TOO_MANY_REQUESTS), 35, "{statuses:?}");
}

#[tokio::test]
async fn a_burst_of_guesses_from_one_address_gets_at_most_the_address_limit_of_401s() {
    let server = TestServer::start_with(&["--login-max-failures-per-address", "4"]).await;
    let statuses =
        login_burst(&server, 30, |i| json!({ "username": format!("user{i}"), "password": "wrong guess" }), None).await;
    assert_eq!(count(&statuses, StatusCode::UNAUTHORIZED), 4, "{statuses:?}");
    assert_eq!(count(&statuses, StatusCode::TOO_MANY_REQUESTS), 26, "{statuses:?}");
}

#[tokio::test]
async fn someone_elses_guesses_do_not_lock_the_owner_out() {
    let server = TestServer::start_with(&["--login-max-failures", "3", "--trust-forwarded-for", "true"]).await;
    server.register("alice").await;
    let attacker = "203.0.113.66";
    let statuses =
        login_burst(&server, 10, |_| json!({ "username": "alice", "password": "wrong guess" }), Some(attacker)).await;
    assert_eq!(count(&statuses, StatusCode::UNAUTHORIZED), 3, "{statuses:?}");
    // The attacker's address is locked out of alice; alice, elsewhere, signs in.
    let from = |address: &str, password: &str| {
        server
            .http
            .post(server.url("/auth/login"))
            .header("x-forwarded-for", address)
            .json(&json!({ "username": "alice", "password": password }))
            .send()
    };
    assert_eq!(from(attacker, PASSWORD).await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(from("198.51.100.7", PASSWORD).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn registrations_are_throttled_per_address() {
    let server = TestServer::start_with(&["--registrations-per-address", "3"]).await;
    let register = |i: usize| {
        server
            .http
            .post(server.url("/auth/register"))
            .json(&json!({ "username": format!("user{i}"), "password": PASSWORD }))
            .send()
    };
    let statuses: Vec<StatusCode> =
        join_all((0..10).map(register)).await.into_iter().map(|response| response.unwrap().status()).collect();
    assert_eq!(count(&statuses, StatusCode::CREATED), 3, "{statuses:?}");
    assert_eq!(count(&statuses, StatusCode::TOO_MANY_REQUESTS), 7, "{statuses:?}");
    // Input refused before hashing costs nothing and is answered as such.
    let weak = server.post_json("/auth/register", json!({ "username": "user99", "password": "short" })).await;
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_client_address_is_the_last_forwarded_entry_over_every_header_line() {
    let server = TestServer::start_with(&["--trust-forwarded-for", "true"]).await;
    server.register("alice").await;
    let login = server
        .http
        .post(server.url("/auth/login"))
        // A client's own line first, then the line our proxy appended.
        .header("x-forwarded-for", "10.9.9.9, 10.8.8.8")
        .header("x-forwarded-for", "192.0.2.44")
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let token = login.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let sessions: Value = server.get_bearer("/auth/sessions", &token).await.json().await.unwrap();
    assert_eq!(sessions[0]["client_ip"], "192.0.2.44", "{sessions}");
}

#[tokio::test]
async fn the_origin_check_compares_against_the_public_origin_never_the_host_header() {
    let server = TestServer::start_with(&["--public-origin", "https://auth.example.test"]).await;
    let logout = |headers: &[(&str, String)]| {
        let mut request = server.http.post(server.url("/auth/logout"));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send()
    };
    let own_host = format!("http://{}", server.addr);
    // Origin equal to the Host the client sent, but not the configured public origin.
    let forged = logout(&[("origin", own_host.clone()), ("host", server.addr.to_string())]).await.unwrap();
    assert_eq!(error_reason(forged, StatusCode::FORBIDDEN, "forbidden_origin").await, "origin");
    for other in ["http://auth.example.test", "https://auth.example.test:8443", "https://evil.example.test"] {
        assert_eq!(logout(&[("origin", other.into())]).await.unwrap().status(), StatusCode::FORBIDDEN, "{other}");
    }
    assert_eq!(
        logout(&[("origin", "https://AUTH.example.test:443".into())]).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        logout(&[("sec-fetch-site", "same-origin".into())]).await.unwrap().status(),
        StatusCode::NO_CONTENT,
        "a browser's own fetch metadata"
    );
    assert_eq!(
        logout(&[("sec-fetch-site", "cross-site".into())]).await.unwrap().status(),
        StatusCode::FORBIDDEN,
        "a cross-site browser request, whatever its Origin"
    );
    assert_eq!(logout(&[]).await.unwrap().status(), StatusCode::NO_CONTENT, "no Origin: not a browser");
}

/// A refresh with exactly this `Cookie` header.
async fn refresh_with_cookie(server: &TestServer, cookie: &str) -> reqwest::Response {
    server.http.post(server.url("/auth/refresh")).header("cookie", cookie).send().await.unwrap()
}

#[tokio::test]
async fn secure_cookies_use_the_host_prefix_so_a_sibling_cannot_plant_one() {
    let server = TestServer::start_with(&["--cookie-secure", "true"]).await;
    server.register("victim").await;
    server.register("mallory").await;
    let login = |name: &'static str| {
        server.http.post(server.url("/auth/login")).json(&json!({ "username": name, "password": PASSWORD })).send()
    };
    let victim = login("victim").await.unwrap();
    let line = set_cookie_line(victim.headers(), "__Host-reauth_refresh").expect("a __Host- refresh cookie");
    assert!(line.contains("; Path=/;") && line.contains("; Secure") && !line.contains("Domain"), "{line}");
    let victim_token = cookie(victim.headers(), "__Host-reauth_refresh").unwrap();
    let mallory_token = cookie(login("mallory").await.unwrap().headers(), "__Host-reauth_refresh").unwrap();

    // What a sibling subdomain can plant: a __Secure- (or unprefixed) cookie with Domain= and a
    // longer path, sent first. It is not the name the server reads.
    let planted = format!("__Secure-reauth_refresh={mallory_token}; reauth_refresh={mallory_token}");
    let signed_out_victim = refresh_with_cookie(&server, &planted).await;
    assert_eq!(error_reason(signed_out_victim, StatusCode::UNAUTHORIZED, "invalid_grant").await, "missing");
    let both = refresh_with_cookie(&server, &format!("{planted}; __Host-reauth_refresh={victim_token}")).await;
    assert_eq!(both.status(), StatusCode::OK);
    assert_eq!(both.json::<Value>().await.unwrap()["user"]["username"], "victim");
}

#[tokio::test]
async fn a_duplicated_refresh_cookie_is_refused_without_touching_either_session() {
    // Plain-http mode has no prefix, as with a shared REAUTH_COOKIE_DOMAIN: a planted duplicate can arrive.
    let server = TestServer::start().await;
    let victim = server.signed_in("victim").await;
    let mallory = server.signed_in("mallory").await;
    let both = format!("reauth_refresh={}; reauth_refresh={}", mallory.refresh_token, victim.refresh_token);
    let refused = refresh_with_cookie(&server, &both).await;
    let set_cookies: Vec<String> =
        refused.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert!(set_cookies.iter().all(|line| !line.contains("Path=/auth;")), "the cookie in use stays: {set_cookies:?}");
    assert_eq!(error_reason(refused, StatusCode::BAD_REQUEST, "invalid_request").await, "duplicate_cookie");
    // Neither session was rotated nor revoked: each token still refreshes, once, as its own user.
    for (session, name) in [(&victim, "victim"), (&mallory, "mallory")] {
        let response = server.refresh(&session.refresh_token).await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert_eq!(response.json::<Value>().await.unwrap()["user"]["username"], name);
    }
}

#[tokio::test]
async fn logout_with_a_planted_duplicate_still_ends_the_real_session() {
    let server = TestServer::start().await;
    let victim = server.signed_in("victim").await;
    let mallory = server.signed_in("mallory").await;
    let logout = server
        .http
        .post(server.url("/auth/logout"))
        .header("cookie", format!("reauth_refresh={}; reauth_refresh={}", mallory.refresh_token, victim.refresh_token))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        error_reason(server.refresh(&victim.refresh_token).await, StatusCode::UNAUTHORIZED, "invalid_grant").await,
        "revoked"
    );
}

/// A fault during logout: another connection holds SQLite's write lock past the busy timeout.
#[tokio::test]
async fn logout_clears_the_cookies_whatever_the_store_says_and_tells_whether_it_revoked() {
    use sqlx::{Connection, Executor};
    let server = TestServer::start().await;
    let session = server.signed_in("alice").await;
    let mut blocker = sqlx::SqliteConnection::connect(&format!("sqlite://{}", server.db_path.display())).await.unwrap();
    blocker.execute("BEGIN EXCLUSIVE").await.unwrap();
    let logout = server.logout(&session.refresh_token).await;
    blocker.execute("ROLLBACK").await.unwrap();
    assert_eq!(logout.status(), StatusCode::ACCEPTED);
    let cleared = set_cookie_line(logout.headers(), "reauth_refresh").expect("the refresh cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(set_cookie_line(logout.headers(), "reauth_session").unwrap().contains("Max-Age=0"));
    let body: Value = logout.json().await.unwrap();
    assert_eq!(body, json!({ "server_revoked": false, "reason": "unavailable" }));
    // With the store back, the same logout revokes and says so with 204.
    let again = server.logout(&session.refresh_token).await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn sessions_per_user_are_capped_and_the_oldest_is_revoked_and_audited() {
    let server = TestServer::start_with(&["--max-sessions-per-user", "2"]).await;
    let oldest = server.signed_in("alice").await;
    // Sessions are ordered by last use in whole seconds: make the first one clearly the oldest.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let _second = server.login("alice").await;
    let newest = server.login("alice").await;
    assert_eq!(
        error_reason(server.refresh(&oldest.refresh_token).await, StatusCode::UNAUTHORIZED, "invalid_grant").await,
        "revoked"
    );
    assert_eq!(
        error_reason(
            server.get_bearer("/api/me", &oldest.access_token).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token"
        )
        .await,
        "revoked"
    );
    let sessions: Value = server.get_bearer("/auth/sessions", &newest.access_token).await.json().await.unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 2, "{sessions}");
    let events: Value = server.get_bearer("/auth/audit", &newest.access_token).await.json().await.unwrap();
    assert!(
        events.as_array().unwrap().iter().any(|e| e["type"] == "revoke" && e["detail"] == "session limit"),
        "{events}"
    );
}
