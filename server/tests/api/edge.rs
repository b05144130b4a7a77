//! The silent-refresh layer over HTTP: in-process rotation against the real server's SQLite store,
//! remote rotation against a real reauth server, broken remotes played by small axum apps, and
//! the demo `/account` page reloaded by a cookie-keeping client after its access token expired.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::Path;

use std::time::{Duration, Instant};

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reauth_server::config::{CookieSettings, Settings};
use reauth_server::edge::{SilentRefreshLayer, TransientPolicy, OUTCOMES_METRIC};

use axum::extract::FromRef;
use reauth_server::{AccessTokenVerifier, AuthRejection, AuthService, AuthenticatedUser, Authenticator, Keys};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

use crate::helpers::{cookie, error_reason, set_cookie_line, Session, TestServer, PASSWORD};

const ACCESS_COOKIE: &[&str] = &["--access-cookie", "true"];
const REAUTH_COOKIES: [&str; 3] = ["reauth_refresh", "reauth_session", "reauth_access"];

/// A route that reports who the extractor saw, or `anonymous`.
async fn whoami(user: Result<AuthenticatedUser, AuthRejection>) -> Json<Value> {
    Json(match user {
        Ok(AuthenticatedUser { claims }) => json!({ "sub": claims.sub, "sid": claims.sid, "jti": claims.jti }),
        Err(_) => json!({ "anonymous": true }),
    })
}

/// An application of its own, `GET|POST /whoami` behind `layer`, on a loopback port.
async fn serve_edge<S>(state: S, layer: SilentRefreshLayer) -> String
where
    S: Clone + Send + Sync + 'static,
    Authenticator: FromRef<S>,
{
    let app = Router::new().route("/whoami", get(whoami).post(whoami)).layer(layer).with_state(state);
    serve(app).await
}

/// The real server with the access cookie on, alice signed in, and `GET|POST /whoami` behind a
/// local layer that `configure` finishes; returns the server, alice's session and the app's URL.
struct LocalEdge {
    server: TestServer,
    session: Session,
    service: AuthService,
    whoami: String,
}

async fn local_edge(configure: impl FnOnce(SilentRefreshLayer) -> SilentRefreshLayer) -> LocalEdge {
    let server = TestServer::start_with(ACCESS_COOKIE).await;
    let session = server.signed_in("alice").await;
    let service = server.service();
    let edge = serve_edge(service.clone(), configure(SilentRefreshLayer::local(service.clone()))).await;
    LocalEdge { server, session, service, whoami: format!("{edge}/whoami") }
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).into_future());
    format!("http://{addr}")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn get_with(url: &str, cookies: &[(&str, &str)], accept: &str) -> reqwest::Response {
    let cookie_header: Vec<String> = cookies.iter().map(|(name, value)| format!("{name}={value}")).collect();
    let mut request = client().get(url).header(header::ACCEPT, accept);
    if !cookie_header.is_empty() {
        request = request.header(header::COOKIE, cookie_header.join("; "));
    }
    request.send().await.unwrap()
}

/// The claims of a token, read without verification (the test compares, the server verifies).
fn claims_of(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

/// A token signed with the server's own key whose claims lack `exp`.
fn signed_without_exp(key_path: &Path, sub: &str, sid: &str) -> String {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    use ed25519_dalek::Signer;
    let signing = ed25519_dalek::SigningKey::from_pkcs8_pem(&std::fs::read_to_string(key_path).unwrap()).unwrap();
    let kid = Keys::load(key_path).unwrap().kid().to_owned();
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid });
    let claims =
        json!({ "iss": "reauth", "aud": "reauth", "sub": sub, "sid": sid, "iat": 1_700_000_000, "jti": "no-exp" });
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap());
    let input = format!("{}.{}", encode(&header), encode(&claims));
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signing.sign(input.as_bytes()).to_bytes()))
}

/// A correctly signed access token for the session of `access_token` that expired a minute ago.
fn expired_like(service: &AuthService, access_token: &str) -> String {
    let mut claims = service.verify_access_token(access_token).unwrap();
    claims.exp = claims.iat - 60;
    claims.iat -= 120;
    service.access_tokens().sign(&claims)
}

fn assert_no_cookies_touched(headers: &HeaderMap) {
    assert!(headers.get(header::SET_COOKIE).is_none(), "{:?}", headers.get_all(header::SET_COOKIE));
}

fn assert_every_cookie_cleared(headers: &HeaderMap) {
    let lines: Vec<&str> = headers.get_all(header::SET_COOKIE).iter().map(|value| value.to_str().unwrap()).collect();
    for name in REAUTH_COOKIES {
        let deletions =
            lines.iter().filter(|line| line.starts_with(&format!("{name}=;")) && line.contains("Max-Age=0")).count();
        assert!(deletions >= 1, "{name} not cleared: {lines:?}");
    }
    assert!(lines.iter().all(|line| line.contains("Max-Age=0")), "only deletions: {lines:?}");
}

/// A new refresh cookie and access cookie, both with a value and a positive lifetime.
fn assert_fresh_cookies(headers: &HeaderMap) -> (String, String) {
    for name in REAUTH_COOKIES {
        let line = set_cookie_line(headers, name).unwrap_or_else(|| panic!("{name} set"));
        let max_age: i64 = line.split("Max-Age=").nth(1).unwrap().split(';').next().unwrap().parse().unwrap();
        assert!(max_age > 0, "{line}");
        assert!(!cookie(headers, name).unwrap().is_empty(), "{line}");
    }
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    (cookie(headers, "reauth_refresh").unwrap(), cookie(headers, "reauth_access").unwrap())
}

#[tokio::test]
async fn the_handler_sees_the_refreshed_identity_on_the_same_request() {
    let LocalEdge { server: _server, session, service, whoami } = local_edge(|layer| layer).await;

    let expired = expired_like(&service, &session.access_token);
    let response =
        get_with(&whoami, &[("reauth_access", &expired), ("reauth_refresh", &session.refresh_token)], "*/*").await;
    assert_eq!(response.status(), StatusCode::OK);
    let (refresh, access) = assert_fresh_cookies(response.headers());
    assert_ne!(refresh, session.refresh_token, "rotated");
    let seen: Value = response.json().await.unwrap();
    let issued = claims_of(&access);
    assert_eq!(seen["jti"], issued["jti"], "the handler got the token set on this very response");
    assert_eq!(seen["sid"], claims_of(&session.access_token)["sid"], "same session");

    // The new access cookie alone now authenticates, with nothing rotated.
    let again = get_with(&whoami, &[("reauth_access", &access)], "*/*").await;
    assert_no_cookies_touched(again.headers());
    assert_eq!(again.json::<Value>().await.unwrap()["jti"], issued["jti"]);
}

#[tokio::test]
async fn without_a_refresh_cookie_the_request_is_anonymous_and_no_cookie_is_touched() {
    let LocalEdge { server: _server, session, service, whoami } = local_edge(|layer| layer).await;
    let expired = expired_like(&service, &session.access_token);

    for cookies in
        [vec![], vec![("reauth_access", expired.as_str())], vec![("reauth_session", "1"), ("reauth_refresh", "")]]
    {
        let response = get_with(&whoami, &cookies, "text/html").await;
        assert_eq!(response.status(), StatusCode::OK, "{cookies:?}");
        assert_no_cookies_touched(response.headers());
        assert_eq!(response.json::<Value>().await.unwrap(), json!({ "anonymous": true }), "{cookies:?}");
    }
}

#[tokio::test]
async fn a_token_without_exp_is_never_accepted_and_is_refreshed_like_an_expired_one() {
    let LocalEdge { server, session, whoami, .. } = local_edge(|layer| layer).await;
    let claims = claims_of(&session.access_token);
    let no_exp =
        signed_without_exp(&server.key_path(), claims["sub"].as_str().unwrap(), claims["sid"].as_str().unwrap());

    let alone = get_with(&whoami, &[("reauth_access", &no_exp)], "*/*").await;
    assert_no_cookies_touched(alone.headers());
    assert_eq!(alone.json::<Value>().await.unwrap(), json!({ "anonymous": true }));
    let as_bearer = server.get_bearer("/api/me", &no_exp).await;
    assert_eq!(error_reason(as_bearer, StatusCode::UNAUTHORIZED, "invalid_token").await, "invalid");

    let with_refresh =
        get_with(&whoami, &[("reauth_access", &no_exp), ("reauth_refresh", &session.refresh_token)], "*/*").await;
    let (_, access) = assert_fresh_cookies(with_refresh.headers());
    let seen: Value = with_refresh.json().await.unwrap();
    assert_eq!(seen["jti"], claims_of(&access)["jti"]);
    assert_ne!(seen["jti"], "no-exp");
}

#[tokio::test]
async fn a_dead_session_clears_every_cookie_then_redirects_pages_and_rejects_api_calls() {
    let LocalEdge { server, session, whoami, .. } = local_edge(|layer| layer.login_path("/login").unwrap()).await;
    let logout = server
        .http
        .post(server.url("/auth/logout"))
        .header("cookie", format!("reauth_refresh={}", session.refresh_token));
    assert_eq!(logout.send().await.unwrap().status(), StatusCode::NO_CONTENT);

    let cookies = [("reauth_session", "1"), ("reauth_refresh", session.refresh_token.as_str())];
    let page = get_with(&whoami, &cookies, "text/html,application/xhtml+xml,*/*;q=0.8").await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()[header::LOCATION], "/login");
    assert_every_cookie_cleared(page.headers());

    let api = get_with(&whoami, &cookies, "application/json").await;
    assert_every_cookie_cleared(api.headers());
    assert_eq!(error_reason(api, StatusCode::UNAUTHORIZED, "invalid_grant").await, "revoked");
}

#[tokio::test]
async fn unsafe_methods_and_bearer_requests_are_never_refreshed() {
    let LocalEdge { server: _server, session, service, whoami } = local_edge(|layer| layer).await;
    let refresh_cookie = format!("reauth_refresh={}", session.refresh_token);

    let post = client().post(&whoami).header(header::COOKIE, &refresh_cookie).send().await.unwrap();
    assert_no_cookies_touched(post.headers());
    assert_eq!(post.json::<Value>().await.unwrap(), json!({ "anonymous": true }));

    let bearer = client()
        .get(&whoami)
        .header(header::COOKIE, &refresh_cookie)
        .bearer_auth(&session.access_token)
        .send()
        .await
        .unwrap();
    assert_no_cookies_touched(bearer.headers());
    assert_eq!(bearer.json::<Value>().await.unwrap()["jti"], claims_of(&session.access_token)["jti"]);

    let sid = claims_of(&session.access_token)["sid"].as_str().unwrap().to_owned();
    let family = service.store().family(&sid).await.unwrap().unwrap();
    assert_eq!(family.generation, 0, "neither request rotated the session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_navigations_with_the_same_expired_cookies_all_end_up_in_one_family() {
    let LocalEdge { server, session, service, whoami } = local_edge(|layer| layer).await;
    let expired = expired_like(&service, &session.access_token);
    let accepts = ["text/html", "application/json", "image/avif,image/webp,*/*", "*/*", "text/css,*/*;q=0.1"];

    let burst = (0..10).map(|index| {
        let (url, expired, refresh) = (whoami.clone(), expired.clone(), session.refresh_token.clone());
        tokio::spawn(async move {
            let response = get_with(
                &url,
                &[("reauth_access", &expired), ("reauth_refresh", &refresh)],
                accepts[index % accepts.len()],
            )
            .await;
            assert_eq!(response.status(), StatusCode::OK);
            let (refresh, access) = assert_fresh_cookies(response.headers());
            let seen: Value = response.json().await.unwrap();
            assert_eq!(seen["jti"], claims_of(&access)["jti"], "authenticated on its own request");
            (refresh, access, seen["sid"].as_str().unwrap().to_owned())
        })
    });
    let mut results = Vec::new();
    for request in burst {
        results.push(request.await.unwrap());
    }
    let mut successors: Vec<&str> = results.iter().map(|(refresh, _, _)| refresh.as_str()).collect();
    successors.dedup();
    assert_eq!(successors.len(), 1, "every navigation got the same successor");
    assert!(results.iter().all(|(_, _, sid)| *sid == claims_of(&session.access_token)["sid"]), "one session");

    let sessions: Vec<Value> = server.get_bearer("/auth/sessions", &results[0].1).await.json().await.unwrap();
    assert_eq!(sessions.len(), 1, "one live family: {sessions:?}");
    assert_eq!(server.refresh(successors[0]).await.status(), StatusCode::OK, "the successor works");
}

/// Another connection holds SQLite's write lock past the busy timeout: the rotation fails for a
/// reason that says nothing about the session.
#[tokio::test]
async fn a_store_fault_is_transient_and_never_clears_cookies() {
    use sqlx::{Connection, Executor};
    let LocalEdge { server, session, whoami, .. } =
        local_edge(|layer| layer.on_transient(TransientPolicy::PassThrough)).await;
    let cookies = [("reauth_refresh", session.refresh_token.as_str())];

    let mut blocker = sqlx::SqliteConnection::connect(&format!("sqlite://{}", server.db_path.display())).await.unwrap();
    blocker.execute("BEGIN EXCLUSIVE").await.unwrap();
    let during = get_with(&whoami, &cookies, "text/html").await;
    assert_no_cookies_touched(during.headers());
    assert_eq!(during.json::<Value>().await.unwrap(), json!({ "anonymous": true }), "let through unauthenticated");
    blocker.execute("ROLLBACK").await.unwrap();

    let after = get_with(&whoami, &cookies, "text/html").await;
    assert_fresh_cookies(after.headers());
    assert_eq!(after.json::<Value>().await.unwrap()["sid"], claims_of(&session.access_token)["sid"]);
}

#[tokio::test]
async fn cookies_set_by_the_layer_carry_the_login_cookies_attributes() {
    let server =
        TestServer::start_with(&["--access-cookie", "true", "--cookie-secure", "true", "--cookie-domain", "localhost"])
            .await;
    server.register("alice").await;
    let login = server.post_json("/auth/login", json!({ "username": "alice", "password": PASSWORD })).await;
    let refresh_token = cookie(login.headers(), "__Secure-reauth_refresh").unwrap();
    let service = server.service();
    let edge = serve_edge(service.clone(), SilentRefreshLayer::local(service.clone())).await;
    let refreshed =
        get_with(&format!("{edge}/whoami"), &[("__Secure-reauth_refresh", &refresh_token)], "text/html").await;

    // Everything but the value and the lifetime, which differ by design.
    let attributes = |headers: &HeaderMap, name: &str| {
        let line = set_cookie_line(headers, name).unwrap_or_else(|| panic!("{name} set"));
        let mut parts = line.split("; ");
        let value = parts.next().unwrap().split_once('=').unwrap().1.to_owned();
        let (max_age, rest): (Vec<&str>, Vec<&str>) = parts.partition(|part| part.starts_with("Max-Age="));
        let max_age: i64 = max_age[0].trim_start_matches("Max-Age=").parse().unwrap();
        assert!(max_age > 0 && !value.is_empty(), "{line}");
        rest.join("; ")
    };
    for name in ["__Secure-reauth_refresh", "reauth_session", "__Secure-reauth_access"] {
        assert_eq!(attributes(refreshed.headers(), name), attributes(login.headers(), name), "{name}");
    }
    assert_eq!(
        attributes(login.headers(), "__Secure-reauth_access"),
        "Path=/; SameSite=Strict; HttpOnly; Secure; Domain=localhost"
    );
}

#[tokio::test]
async fn the_access_cookie_follows_login_refresh_and_logout_only_when_enabled() {
    let server = TestServer::start_with(&["--access-cookie", "true", "--access-expires-in", "5m"]).await;
    server.register("alice").await;
    let login = server.post_json("/auth/login", json!({ "username": "alice", "password": PASSWORD })).await;
    assert_eq!(
        set_cookie_line(login.headers(), "reauth_access").unwrap().split_once("; ").unwrap().1,
        "Path=/; Max-Age=300; SameSite=Strict; HttpOnly"
    );
    assert!(set_cookie_line(login.headers(), "reauth_refresh").unwrap().contains("; Path=/;"), "pages must see it");
    let refresh_token = cookie(login.headers(), "reauth_refresh").unwrap();
    let refreshed = server.refresh(&refresh_token).await;
    let (refresh_token, _) = assert_fresh_cookies(refreshed.headers());
    let logout =
        server.http.post(server.url("/auth/logout")).header("cookie", format!("reauth_refresh={refresh_token}"));
    assert_every_cookie_cleared(logout.send().await.unwrap().headers());

    let without = TestServer::start().await;
    let session = without.signed_in("bob").await;
    let login = without.post_json("/auth/login", json!({ "username": "bob", "password": PASSWORD })).await;
    assert!(set_cookie_line(login.headers(), "reauth_access").is_none());
    assert!(set_cookie_line(login.headers(), "reauth_refresh").unwrap().contains("; Path=/auth;"));
    let cookie_only = get_with(&without.url("/api/me"), &[("reauth_access", &session.access_token)], "*/*").await;
    assert_eq!(
        error_reason(cookie_only, StatusCode::UNAUTHORIZED, "unauthorized").await,
        "missing",
        "the cookie is ignored when off"
    );
    let account = without.http.get(without.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), StatusCode::NOT_FOUND, "no demo page when off");
}

/// A remote reauth server: the edge app knows only its public key (fetched from the JWKS, as a
/// separate service would), issuer, audience and cookie settings; no signing key, no store.
async fn remote_edge_state(server: &TestServer) -> (Authenticator, AccessTokenVerifier, CookieSettings) {
    let settings = Settings::default();
    let jwks_url = server.url("/.well-known/jwks.json");
    let verifier = AccessTokenVerifier::fetch_jwks(&jwks_url, &settings.issuer, &settings.audience).await.unwrap();
    let cookies = CookieSettings { secure: false, domain: None, access_cookie: true };
    (Authenticator::new(verifier.clone(), &cookies), verifier, cookies)
}

#[tokio::test]
async fn the_remote_mode_refreshes_through_a_real_reauth_server() {
    let server = TestServer::start_with(ACCESS_COOKIE).await;
    let session = server.signed_in("alice").await;
    let (state, verifier, cookies) = remote_edge_state(&server).await;
    let layer = SilentRefreshLayer::remote(&server.url(""), verifier, &cookies).unwrap().login_path("/login").unwrap();
    let edge = serve_edge(state, layer).await;

    let response =
        get_with(&format!("{edge}/whoami"), &[("reauth_refresh", &session.refresh_token)], "text/html").await;
    let (refresh, access) = assert_fresh_cookies(response.headers());
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["jti"], claims_of(&access)["jti"]);
    assert_eq!(seen["sid"], claims_of(&session.access_token)["sid"]);
    let sessions: Vec<Value> = server.get_bearer("/auth/sessions", &access).await.json().await.unwrap();
    assert_eq!(sessions.len(), 1, "the remote rotated its own family");

    // Logged out at the remote: the next refresh through the edge finds the session dead.
    let logout = server.http.post(server.url("/auth/logout")).header("cookie", format!("reauth_refresh={refresh}"));
    assert_eq!(logout.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let dead = get_with(&format!("{edge}/whoami"), &[("reauth_refresh", &refresh)], "text/html").await;
    assert_eq!(dead.status(), StatusCode::SEE_OTHER);
    assert_every_cookie_cleared(dead.headers());
}

#[tokio::test]
async fn the_remote_mode_follows_a_key_rotation_of_the_remote() {
    let server = TestServer::start_with(&["--access-cookie", "true", "--key-refresh-interval", "1s"]).await;
    let session = server.signed_in("alice").await;
    let (state, verifier, cookies) = remote_edge_state(&server).await;
    let refetching = verifier.spawn_jwks_refresh(server.url("/.well-known/jwks.json"), Duration::from_secs(1));
    let layer = SilentRefreshLayer::remote(&server.url(""), verifier.clone(), &cookies).unwrap();
    let edge = serve_edge(state, layer).await;

    let rotated = crate::cli::binary()
        .args(["keys", "rotate", "--activate-in", "0s"])
        .env("REAUTH_STORE", format!("sqlite://{}", server.db_path.display()))
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    let new_kid = String::from_utf8(rotated.stdout).unwrap().trim().to_owned();
    // Bounded waits: the remote signs with the new key, and the edge's verifier has fetched it.
    let mut token = server.login("alice").await.access_token;
    for _ in 0..120 {
        if crate::traffic::kid_of(&token) == new_kid && verifier.kids().contains(&new_kid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        token = server.login("alice").await.access_token;
    }
    assert_eq!(crate::traffic::kid_of(&token), new_kid);
    for access in [&token, &session.access_token] {
        let response = get_with(&format!("{edge}/whoami"), &[("reauth_access", access)], "text/html").await;
        assert_eq!(response.status(), StatusCode::OK);
        let seen: Value = response.json().await.unwrap();
        assert_eq!(seen["jti"], claims_of(access)["jti"], "the new key's token and the old key's are both accepted");
    }
    refetching.abort();
}

/// Remotes that misbehave, one per path prefix.
async fn broken_remote() -> String {
    let tokens = || {
        let body = json!({ "access_token": "not.a.jwt", "token_type": "Bearer", "expires_in": 900, "user": { "id": "u", "username": "x" } });
        ([(header::SET_COOKIE, "reauth_refresh=rt1.fake; Path=/; Max-Age=600; HttpOnly")], Json(body))
    };
    let app = Router::new()
        .route("/bad-token/auth/refresh", post(move || async move { tokens() }))
        .route(
            "/html/auth/refresh",
            post(|| async { ([(header::CONTENT_TYPE, "text/html")], "<html>maintenance</html>") }),
        )
        .route(
            "/no-cookie/auth/refresh",
            post(|| async {
                Json(json!({ "access_token": "a.b.c", "expires_in": 900, "user": { "id": "u", "username": "x" } }))
            }),
        )
        .route("/down/auth/refresh", post(|| async { StatusCode::BAD_GATEWAY }))
        .route(
            "/proxy/auth/refresh",
            post(|| async { (StatusCode::UNAUTHORIZED, "Authorization Required").into_response() }),
        )
        .route(
            "/slow/auth/refresh",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                StatusCode::OK
            }),
        );
    serve(app).await
}

#[tokio::test]
async fn a_remote_answering_200_with_a_malformed_body_or_an_error_is_transient() {
    let server = TestServer::start_with(ACCESS_COOKIE).await;
    let session = server.signed_in("alice").await;
    let remote = broken_remote().await;
    let cookies = [("reauth_refresh", session.refresh_token.as_str())];
    for prefix in ["bad-token", "html", "no-cookie", "down", "proxy"] {
        let (state, verifier, settings) = remote_edge_state(&server).await;
        let base = format!("{remote}/{prefix}");
        let pass = SilentRefreshLayer::remote(&base, verifier.clone(), &settings)
            .unwrap()
            .on_transient(TransientPolicy::PassThrough);
        let edge = serve_edge(state.clone(), pass.login_path("/login").unwrap()).await;
        let response = get_with(&format!("{edge}/whoami"), &cookies, "text/html").await;
        assert_no_cookies_touched(response.headers());
        assert_eq!(response.json::<Value>().await.unwrap(), json!({ "anonymous": true }), "{prefix}");

        let edge = serve_edge(state, SilentRefreshLayer::remote(&base, verifier, &settings).unwrap()).await;
        let response = get_with(&format!("{edge}/whoami"), &cookies, "text/html").await;
        assert_no_cookies_touched(response.headers());
        assert!(response.headers().get(header::RETRY_AFTER).is_some(), "{prefix}");
        assert_eq!(
            error_reason(response, StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable").await,
            "unavailable"
        );
    }
    assert_eq!(server.refresh(&session.refresh_token).await.status(), StatusCode::OK, "the session survived");
}

#[tokio::test]
async fn a_remote_that_times_out_is_transient_within_the_bound() {
    let server = TestServer::start_with(ACCESS_COOKIE).await;
    let (state, verifier, settings) = remote_edge_state(&server).await;
    let remote = broken_remote().await;
    let layer = SilentRefreshLayer::remote(&format!("{remote}/slow"), verifier, &settings)
        .unwrap()
        .timeout(Duration::from_millis(300));
    let edge = serve_edge(state, layer).await;

    let started = Instant::now();
    let response = get_with(&format!("{edge}/whoami"), &[("reauth_refresh", "rt1.anything")], "text/html").await;
    assert!(started.elapsed() < Duration::from_secs(3), "bounded: {:?}", started.elapsed());
    assert_no_cookies_touched(response.headers());
    assert_eq!(error_reason(response, StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable").await, "unavailable");
}

/// A local recorder on this test's single thread sees exactly this test's counts, however many
/// other tests run at once.
#[tokio::test]
async fn every_outcome_is_counted_through_the_metrics_facade() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let LocalEdge { server: _server, session, whoami, .. } = local_edge(|layer| layer).await;
    let url = whoami;
    let refresh = session.refresh_token.as_str();

    get_with(&url, &[], "*/*").await; // anonymous
    get_with(&url, &[("reauth_access", &session.access_token)], "*/*").await; // valid
    client().post(&url).header(header::COOKIE, format!("reauth_refresh={refresh}")).send().await.unwrap(); // unsafe_method
    client().get(&url).bearer_auth(&session.access_token).send().await.unwrap(); // bearer
    get_with(&url, &[("reauth_refresh", refresh)], "*/*").await; // refreshed
    get_with(&url, &[("reauth_refresh", "rt1.forged")], "*/*").await; // session_dead

    let counts: Vec<(String, u64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == OUTCOMES_METRIC)
        .map(|(key, _, _, value)| {
            let outcome = key.key().labels().find(|label| label.key() == "outcome").unwrap().value().to_owned();
            let DebugValue::Counter(count) = value else { panic!("{OUTCOMES_METRIC} is a counter") };
            (outcome, count)
        })
        .collect();
    let mut counts = counts;
    counts.sort();
    let expected = ["anonymous", "bearer", "refreshed", "session_dead", "unsafe_method", "valid"];
    assert_eq!(counts, expected.map(|outcome| (outcome.to_owned(), 1)));
}

/// A client that keeps cookies as a browser does: by name and path, sent to matching paths
/// (longest path first), dropped at `Max-Age`.
struct Browser {
    base: String,
    jar: Vec<JarCookie>,
}

struct JarCookie {
    name: String,
    value: String,
    path: String,
    expires_at: Instant,
}

impl Browser {
    fn new(base: String) -> Self {
        Self { base, jar: Vec::new() }
    }

    fn cookie_header(&self, path: &str) -> String {
        let now = Instant::now();
        let mut sent: Vec<&JarCookie> = self
            .jar
            .iter()
            .filter(|c| {
                c.expires_at > now && (c.path == "/" || path == c.path || path.starts_with(&format!("{}/", c.path)))
            })
            .collect();
        sent.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        sent.iter().map(|c| format!("{}={}", c.name, c.value)).collect::<Vec<_>>().join("; ")
    }

    fn has(&self, name: &str) -> bool {
        let now = Instant::now();
        self.jar.iter().any(|c| c.name == name && c.expires_at > now)
    }

    fn remember(&mut self, headers: &HeaderMap) {
        for line in headers.get_all(header::SET_COOKIE).iter().map(|value| value.to_str().unwrap()) {
            let mut parts = line.split("; ");
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let attribute = |key: &str| line.split("; ").find_map(|part| part.strip_prefix(key)).map(str::to_owned);
            let path = attribute("Path=").unwrap_or_else(|| "/".into());
            let max_age: u64 = attribute("Max-Age=").unwrap().parse::<i64>().unwrap().max(0).try_into().unwrap();
            self.jar.retain(|c| !(c.name == name && c.path == path));
            if max_age > 0 {
                let expires_at = Instant::now() + Duration::from_secs(max_age);
                self.jar.push(JarCookie { name: name.into(), value: value.into(), path, expires_at });
            }
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder, path: &str) -> reqwest::Response {
        let cookies = self.cookie_header(path);
        let request = if cookies.is_empty() { request } else { request.header(header::COOKIE, cookies) };
        let response = request.send().await.unwrap();
        self.remember(response.headers());
        response
    }

    async fn navigate(&mut self, path: &str) -> reqwest::Response {
        let request = client()
            .get(format!("{}{path}", self.base))
            .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8");
        self.send(request, path).await
    }

    async fn login(&mut self, username: &str) {
        let request = client()
            .post(format!("{}/auth/login", self.base))
            .json(&json!({ "username": username, "password": PASSWORD }));
        assert_eq!(self.send(request, "/auth/login").await.status(), StatusCode::OK);
    }
}

/// The demo in full: the real server with a 1-second access token, a client that keeps cookies
/// like a browser, and the server-rendered page reloaded after the token and its cookie expired.
#[tokio::test]
async fn reloading_the_account_page_after_the_access_token_expired_renders_it_without_login() {
    let server = TestServer::start_with(&["--access-cookie", "true", "--access-expires-in", "1s"]).await;
    server.register("alice").await;
    let mut browser = Browser::new(server.url(""));

    let signed_out = browser.navigate("/account").await;
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER, "no session: the page's own redirect to sign in");
    assert_eq!(signed_out.headers()[header::LOCATION], "/");

    browser.login("alice").await;
    let first = browser.navigate("/account").await;
    assert_eq!(first.status(), StatusCode::OK);
    let first_page = first.text().await.unwrap();
    assert!(first_page.contains(r#"<span id="username">alice</span>"#), "{first_page}");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(!browser.has("reauth_access"), "the browser dropped the expired access cookie");
    let reloaded = browser.navigate("/account").await;
    assert_eq!(reloaded.status(), StatusCode::OK, "rendered, not sent to log in");
    assert_fresh_cookies(reloaded.headers());
    let page = reloaded.text().await.unwrap();
    assert!(page.contains(r#"<span id="username">alice</span>"#), "{page}");
    let session_of =
        |page: &str| page.split(r#"<dd id="session">"#).nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert_eq!(session_of(&page), session_of(&first_page), "the same session, refreshed");
    assert!(browser.has("reauth_access"));
}

/// Found by the `http_request` fuzz target: the page's router answered other methods with an empty 405.
#[tokio::test]
async fn other_methods_on_the_account_page_answer_a_json_405() {
    let server = TestServer::start_with(&["--access-cookie", "true"]).await;
    for method in [reqwest::Method::POST, reqwest::Method::from_bytes(b"PROPFIND").unwrap()] {
        let response = server.http.request(method.clone(), server.url("/account")).send().await.unwrap();
        assert_eq!(error_reason(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await, "method");
    }
}
