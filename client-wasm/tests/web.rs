//! Browser tests of `AuthClient` against a real reauth-server.
//!
//! Run by `scripts/test-client.sh`, which starts the server with 3-second access tokens, a fault
//! proxy in front of it, and passes both URLs in at build time (a browser has no environment).
//! Tests run one at a time in one page, so they share the cookie jar: each one signs in itself.
#![cfg(target_arch = "wasm32")]
#![allow(missing_docs)]

use std::cell::RefCell;
use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use js_sys::{Array, Function, Object, Promise, Reflect};
use reauth_client::AuthClient;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The reauth server, started with `JWT_ACCESS_EXPIRES_IN=3s`.
const SERVER: &str = match option_env!("REAUTH_TEST_SERVER") {
    Some(url) => url,
    None => "set REAUTH_TEST_SERVER (run scripts/test-client.sh)",
};
/// `scripts/client-fault-proxy.mjs` in front of the same server.
const PROXY: &str = match option_env!("REAUTH_TEST_PROXY") {
    Some(url) => url,
    None => "set REAUTH_TEST_PROXY (run scripts/test-client.sh)",
};
const TOKEN_LIFETIME_MS: u32 = 3_000;

#[wasm_bindgen(inline_js = r#"
// A fetch that records every request (url, Authorization, credentials mode) and can be told to
// answer some API requests itself, or to hold answers back until released.
export function spyFetch() {
  const spy = async (input, init) => {
    const request = new Request(input, init);
    const path = new URL(request.url).pathname;
    spy.calls.push({ path, authorization: request.headers.get("authorization"), credentials: request.credentials });
    const rule = spy.rules.find((r) => path.startsWith(r.prefix) && r.times !== 0);
    if (rule) {
      rule.times -= 1;
      if (rule.gate) await rule.gate;
      if (rule.status) return new Response(null, { status: rule.status, headers: { "www-authenticate": "Bearer" } });
    }
    const answer = await fetch(request);
    const held = spy.holdAnswers.find((h) => path.startsWith(h.prefix) && h.times !== 0);
    if (held) { held.times -= 1; await held.gate; }
    return answer;
  };
  spy.calls = [];
  spy.rules = [];
  spy.holdAnswers = [];
  return spy;
}
// The next `times` requests under `prefix` get `status` without reaching the server.
export function answerWith(spy, prefix, status, times) { spy.rules.push({ prefix, status, times }); }
// The next request under `prefix` waits for release(), then gets `status`.
export function gateThenAnswer(spy, prefix, status) {
  let release; const gate = new Promise((r) => (release = r));
  spy.rules.push({ prefix, status, times: 1, gate });
  return release;
}
// The next answer under `prefix` reaches the client only after release(): the server has already replied.
export function holdNextAnswer(spy, prefix) {
  let release; const gate = new Promise((r) => (release = r));
  spy.holdAnswers.push({ prefix, times: 1, gate });
  return release;
}
export function callsTo(spy, path) { return spy.calls.filter((c) => c.path === path); }
export function callCount(spy, path) { return callsTo(spy, path).length; }

// Holds the client's Web Lock like a hung tab would, until release() is called.
export function holdLock(name) {
  let release; const held = new Promise((r) => (release = r));
  // When the client steals the lock, this request rejects with AbortError: expected, not a failure.
  return new Promise((granted) => navigator.locks.request(name, () => { granted(release); return held; }).catch(() => {}));
}
// Makes Web Locks and BroadcastChannel disappear, as in browsers without them; returns an undo function.
export function hideCoordinationApis() {
  const channel = globalThis.BroadcastChannel;
  Object.defineProperty(navigator, "locks", { value: undefined, configurable: true });
  globalThis.BroadcastChannel = undefined;
  return () => { delete navigator.locks; globalThis.BroadcastChannel = channel; };
}
// Posts on the client's channel what another tab would after getting tokens.
export function postTokensFromAnotherTab(base, accessToken, user, newLogin) {
  const channel = new BroadcastChannel(`reauth:${base}`);
  channel.postMessage({ reauth: 1, tokens: { access_token: accessToken, expires_in: 3, user }, newLogin });
  channel.close();
}
export function fireEvent(target, type) {
  (target === "document" ? document : window).dispatchEvent(new Event(type));
}
export function streamBody() {
  return new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("{}")); c.close(); } });
}
export function textSeenByTheDom() {
  return [JSON.stringify({ ...localStorage }), JSON.stringify({ ...sessionStorage }), document.cookie,
    document.documentElement.outerHTML].join("\n");
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = spyFetch)]
    fn spy_fetch() -> Function;
    #[wasm_bindgen(js_name = answerWith)]
    fn answer_with(spy: &Function, prefix: &str, status: u16, times: i32);
    #[wasm_bindgen(js_name = gateThenAnswer)]
    fn gate_then_answer(spy: &Function, prefix: &str, status: u16) -> Function;
    #[wasm_bindgen(js_name = holdNextAnswer)]
    fn hold_next_answer(spy: &Function, prefix: &str) -> Function;
    #[wasm_bindgen(js_name = callsTo)]
    fn calls_to(spy: &Function, path: &str) -> Array;
    #[wasm_bindgen(js_name = callCount)]
    fn call_count(spy: &Function, path: &str) -> u32;
    #[wasm_bindgen(js_name = holdLock)]
    fn hold_lock(name: &str) -> Promise;
    #[wasm_bindgen(js_name = hideCoordinationApis)]
    fn hide_coordination_apis() -> Function;
    #[wasm_bindgen(js_name = postTokensFromAnotherTab)]
    fn post_tokens_from_another_tab(base: &str, access_token: &str, user: &JsValue, new_login: bool);
    #[wasm_bindgen(js_name = fireEvent)]
    fn fire_event(target: &str, kind: &str);
    #[wasm_bindgen(js_name = streamBody)]
    fn stream_body() -> JsValue;
    #[wasm_bindgen(js_name = textSeenByTheDom)]
    fn text_seen_by_the_dom() -> String;
}

// ----- helpers -----

fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (key, value) in pairs {
        Reflect::set(&object, &(*key).into(), value).expect("set property");
    }
    object.into()
}

fn client(base: &str, extra: &[(&str, JsValue)]) -> AuthClient {
    let mut pairs = vec![("baseUrl", JsValue::from(base))];
    pairs.extend(extra.iter().cloned());
    AuthClient::new(&object(&pairs)).expect("valid options")
}

async fn settle(promise: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(promise).await
}

async fn sleep(ms: u32) {
    TimeoutFuture::new(ms).await;
}

fn field(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn text(value: &JsValue, key: &str) -> String {
    field(value, key).as_string().unwrap_or_default()
}

fn error_code(error: &JsValue) -> String {
    assert!(error.is_instance_of::<js_sys::Error>(), "rejections must be Error objects, got {error:?}");
    text(error, "code")
}

/// Registers a fresh user straight through the server's API; returns (username, password).
async fn register() -> (String, String) {
    let username = format!("t{}", (js_sys::Math::random() * 1e12) as u64);
    let password = "correct horse battery".to_owned();
    let body = js_sys::JSON::stringify(&object(&[
        ("username", username.as_str().into()),
        ("password", password.as_str().into()),
    ]))
    .expect("json");
    let init = object(&[
        ("method", "POST".into()),
        ("headers", object(&[("content-type", "application/json".into())])),
        ("body", body.into()),
    ]);
    let response = raw_fetch(&format!("{SERVER}/auth/register"), &init).await;
    assert_eq!(status(&response), 201, "register {username}");
    (username, password)
}

async fn raw_fetch(url: &str, init: &JsValue) -> JsValue {
    let window = web_sys::window().expect("window");
    let fetch: Function = field(&window, "fetch").unchecked_into();
    let promise: Promise = fetch.call2(&window, &url.into(), init).expect("fetch").unchecked_into();
    settle(promise).await.expect("network")
}

fn status(response: &JsValue) -> u16 {
    field(response, "status").as_f64().expect("a Response") as u16
}

async fn json(response: &JsValue) -> JsValue {
    let method: Function = field(response, "json").unchecked_into();
    settle(method.call0(response).expect("json()").unchecked_into()).await.expect("JSON body")
}

async fn signed_in(base: &str, extra: &[(&str, JsValue)]) -> (AuthClient, String) {
    let (username, password) = register().await;
    let auth = client(base, extra);
    settle(auth.login(username.clone().into(), password.into())).await.expect("login");
    (auth, username)
}

async fn access_token(auth: &AuthClient) -> Result<String, JsValue> {
    settle(auth.access_token()).await.map(|token| token.as_string().expect("a string token"))
}

async fn get_me(auth: &AuthClient) -> JsValue {
    settle(auth.fetch("/api/me".into(), None)).await.expect("fetch resolves")
}

/// Records every event as (type, reason) in order.
type Recorded = Rc<RefCell<Vec<(String, String)>>>;

fn record_events(auth: &AuthClient) -> Recorded {
    let seen: Recorded = Rc::default();
    let sink = seen.clone();
    let listener = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        sink.borrow_mut().push((text(&event, "type"), text(&event, "reason")));
    });
    let _unsubscribe = auth.on_change(listener.into_js_value().unchecked_into());
    seen
}

fn types(seen: &Recorded) -> Vec<String> {
    seen.borrow().iter().map(|(kind, _)| kind.clone()).collect()
}

async fn wait_for_event(seen: &Recorded, kind: &str, within_ms: u32) -> bool {
    for _ in 0..within_ms / 50 {
        if types(seen).iter().any(|seen| seen == kind) {
            return true;
        }
        sleep(50).await;
    }
    false
}

async fn proxy_mode(mode: &str) {
    let response = raw_fetch(&format!("{PROXY}/__proxy/mode/{mode}"), &object(&[("method", "POST".into())])).await;
    assert_eq!(status(&response), 200, "proxy mode {mode}");
}

/// Logs out whatever session the page's cookie holds, as a page with no client would: the server
/// clears the refresh cookie and the session indicator, so the next client starts signed out.
async fn forget_session() {
    let init = object(&[("method", "POST".into()), ("credentials", "include".into())]);
    assert_eq!(status(&raw_fetch(&format!("{SERVER}/auth/logout"), &init).await), 204);
}

fn manual() -> (&'static str, JsValue) {
    ("autoRefresh", JsValue::FALSE)
}

fn solo() -> (&'static str, JsValue) {
    ("crossTab", JsValue::FALSE)
}

// ----- signing in, restoring, signing out -----

#[wasm_bindgen_test]
async fn login_resolves_to_the_user_and_fetch_carries_the_token() {
    let (username, password) = register().await;
    let auth = client(SERVER, &[solo()]);
    let events = record_events(&auth);
    assert!(!auth.is_authenticated());

    let user = settle(auth.login(username.clone().into(), password.into())).await.expect("login");
    assert_eq!(text(&user, "username"), username);
    assert!(!text(&user, "id").is_empty());
    assert!(auth.is_authenticated());
    assert_eq!(text(&auth.user(), "username"), username);
    let expires_in_ms = auth.expires_at().as_f64().expect("expiresAt") - js_sys::Date::now();
    assert!((2_000.0..=3_100.0).contains(&expires_in_ms), "expiresAt {expires_in_ms} ms away");
    assert_eq!(types(&events), ["signed_in"]);

    let me = get_me(&auth).await;
    assert_eq!(status(&me), 200);
    assert_eq!(text(&json(&me).await, "username"), username);
}

#[wasm_bindgen_test]
async fn wrong_password_rejects_with_invalid_credentials() {
    let (username, _) = register().await;
    let auth = client(SERVER, &[solo()]);
    let error = settle(auth.login(username.into(), "not the password".into())).await.expect_err("refused");
    assert_eq!(error_code(&error), "invalid_credentials");
    assert_eq!(field(&error, "status").as_f64(), Some(401.0));
    assert!(!auth.is_authenticated());
}

#[wasm_bindgen_test]
async fn repeated_failed_logins_reject_with_rate_limited_and_retry_after() {
    let (username, _) = register().await;
    let auth = client(SERVER, &[solo()]);
    let mut codes = Vec::new();
    let mut last = JsValue::UNDEFINED;
    // The server under test allows 5 failures per username (REAUTH_LOGIN_MAX_FAILURES default).
    for _ in 0..6 {
        last = settle(auth.login(username.clone().into(), "wrong password".into())).await.expect_err("refused");
        codes.push(error_code(&last));
    }
    assert_eq!(codes[..5], ["invalid_credentials"; 5]);
    assert_eq!(codes[5], "rate_limited");
    assert_eq!(field(&last, "status").as_f64(), Some(429.0));
    assert!(field(&last, "retryAfter").as_f64().is_some_and(|seconds| seconds >= 1.0), "Retry-After is exposed");
}

#[wasm_bindgen_test]
fn bad_options_throw_invalid_options() {
    let missing = AuthClient::new(&object(&[])).err().expect("baseUrl is required");
    assert_eq!(error_code(&missing), "invalid_options");
    let relative = AuthClient::new(&object(&[("baseUrl", "/relative".into())])).err().expect("absolute URL");
    assert_eq!(error_code(&relative), "invalid_options");
    let negative = AuthClient::new(&object(&[("baseUrl", SERVER.into()), ("refreshMarginSeconds", (-1).into())]))
        .err()
        .expect("non-negative margin");
    assert_eq!(error_code(&negative), "invalid_options");
}

#[wasm_bindgen_test]
async fn calls_without_a_session_reject_with_unauthenticated() {
    forget_session().await;
    let auth = client(SERVER, &[solo()]);
    let error = access_token(&auth).await.expect_err("no session");
    assert_eq!(error_code(&error), "unauthenticated");
    let error = settle(auth.logout_all()).await.expect_err("no session");
    assert_eq!(error_code(&error), "unauthenticated");
}

#[wasm_bindgen_test]
async fn restore_in_a_new_client_signs_in_silently_from_the_cookie() {
    let (first, username) = signed_in(SERVER, &[solo()]).await;
    drop(first); // the page is reloaded: only the HttpOnly cookie survives

    let auth = client(SERVER, &[solo()]);
    let events = record_events(&auth);
    let user = settle(auth.restore()).await.expect("restore");
    assert_eq!(text(&user, "username"), username);
    assert_eq!(types(&events), ["signed_in"]);
    assert_eq!(status(&get_me(&auth).await), 200);
}

#[wasm_bindgen_test]
async fn logout_signs_out_and_the_cookie_no_longer_restores() {
    let (auth, _) = signed_in(SERVER, &[solo()]).await;
    let events = record_events(&auth);
    settle(auth.logout()).await.expect("logout");
    assert!(!auth.is_authenticated());
    assert!(auth.user().is_null());
    assert!(auth.expires_at().is_null());
    assert_eq!(events.borrow().as_slice(), [("signed_out".to_owned(), "logout".to_owned())]);
    assert_eq!(error_code(&access_token(&auth).await.expect_err("signed out")), "unauthenticated");

    let reloaded = client(SERVER, &[solo()]);
    assert!(settle(reloaded.restore()).await.expect("restore answers").is_null());
    assert!(!reloaded.is_authenticated());
}

#[wasm_bindgen_test]
async fn logout_all_revokes_the_session_and_signs_out() {
    let (auth, _) = signed_in(SERVER, &[solo()]).await;
    let events = record_events(&auth);
    settle(auth.logout_all()).await.expect("logoutAll");
    assert_eq!(events.borrow().as_slice(), [("signed_out".to_owned(), "logout".to_owned())]);
    let reloaded = client(SERVER, &[solo()]);
    assert!(settle(reloaded.restore()).await.expect("restore answers").is_null());
}

// ----- the snapshot and accessTokenAfter401 -----

/// Counts the calls of a `subscribe` listener, checking each is made with no arguments.
fn count_snapshot_changes(auth: &AuthClient) -> (Rc<RefCell<u32>>, Function) {
    let calls: Rc<RefCell<u32>> = Rc::default();
    let sink = calls.clone();
    let listener = Closure::<dyn FnMut(JsValue)>::new(move |argument: JsValue| {
        assert!(argument.is_undefined(), "subscribe listeners get no arguments");
        *sink.borrow_mut() += 1;
    });
    let unsubscribe = auth.subscribe(listener.into_js_value().unchecked_into());
    (calls, unsubscribe.unchecked_into())
}

fn same(a: &JsValue, b: &JsValue) -> bool {
    Object::is(a, b)
}

#[wasm_bindgen_test]
async fn the_snapshot_keeps_its_identity_until_the_session_changes() {
    let (username, password) = register().await;
    let auth = client(SERVER, &[solo(), manual()]);
    let (changes, unsubscribe) = count_snapshot_changes(&auth);
    let before = auth.get_snapshot();
    assert!(Object::is_frozen(before.unchecked_ref::<Object>()));
    assert!(same(&before, &auth.get_snapshot()), "the same object while nothing happens");
    assert!(field(&before, "user").is_null());

    settle(auth.login(username.clone().into(), password.into())).await.expect("login");
    let signed_in = auth.get_snapshot();
    assert_eq!(*changes.borrow(), 1);
    assert!(!same(&signed_in, &before));
    assert_eq!(text(&signed_in, "status"), "signed_in");
    assert_eq!(text(&field(&signed_in, "user"), "username"), username);
    assert!(same(&field(&signed_in, "user"), &auth.user()), "snapshot.user is auth.user");
    assert!(same(&auth.user(), &auth.user()), "auth.user keeps its identity between events");
    assert_eq!(field(&signed_in, "expiresAt"), auth.expires_at());

    access_token(&auth).await.expect("token");
    settle(auth.fetch("/api/me".into(), None)).await.expect("fetch");
    assert!(same(&signed_in, &auth.get_snapshot()), "calls that change nothing keep the snapshot");
    assert_eq!(*changes.borrow(), 1);

    auth.invalidate_access_token();
    access_token(&auth).await.expect("renewed");
    let renewed = auth.get_snapshot();
    assert_eq!(*changes.borrow(), 2, "a renewal changes expiresAt");
    assert!(field(&renewed, "expiresAt").as_f64() > field(&signed_in, "expiresAt").as_f64());

    settle(auth.logout()).await.expect("logout");
    let signed_out = auth.get_snapshot();
    assert_eq!(*changes.borrow(), 3);
    assert_eq!(text(&signed_out, "status"), "signed_out");
    assert!(field(&signed_out, "user").is_null() && field(&signed_out, "expiresAt").is_null());

    unsubscribe.call0(&JsValue::UNDEFINED).expect("unsubscribe");
    let (username, password) = register().await;
    settle(auth.login(username.into(), password.into())).await.expect("login again");
    assert_eq!(*changes.borrow(), 3, "no calls after unsubscribing");
}

#[wasm_bindgen_test]
async fn access_token_after_401_hands_out_a_newer_token_without_a_refresh() {
    let spy = spy_fetch();
    let (auth, _) = signed_in(SERVER, &[solo(), manual(), ("fetch", spy.clone().into())]).await;
    let rejected = access_token(&auth).await.expect("token");
    auth.invalidate_access_token();
    let newer = access_token(&auth).await.expect("renewed");
    assert_eq!(call_count(&spy, "/auth/refresh"), 1);

    let after = settle(auth.access_token_after_401(&rejected.into())).await.expect("a token");
    assert_eq!(after.as_string(), Some(newer));
    assert_eq!(call_count(&spy, "/auth/refresh"), 1, "the newer token needed no refresh");
}

#[wasm_bindgen_test]
async fn access_token_after_401_shares_one_refresh_among_every_caller() {
    let spy = spy_fetch();
    let (auth, _) = signed_in(SERVER, &[solo(), manual(), ("fetch", spy.clone().into())]).await;
    let rejected = access_token(&auth).await.expect("token");
    let calls = Array::new();
    for _ in 0..5 {
        calls.push(&auth.access_token_after_401(&rejected.as_str().into()));
    }
    let tokens: Array = settle(Promise::all(&calls)).await.expect("all resolve").unchecked_into();
    assert_eq!(call_count(&spy, "/auth/refresh"), 1, "one refresh for five callers");
    let first = tokens.get(0).as_string().expect("a token");
    assert_ne!(first, rejected);
    assert!(tokens.iter().all(|token| token.as_string().as_ref() == Some(&first)));
    assert_eq!(access_token(&auth).await.expect("token"), first);
}

#[wasm_bindgen_test]
async fn access_token_after_401_is_null_when_signed_out_and_rejects_on_outages() {
    let options = [solo(), manual(), ("requestTimeoutMs", 1_000.into())];
    let (auth, _) = signed_in(PROXY, &options).await;
    let rejected = access_token(&auth).await.expect("token");
    proxy_mode("down").await;
    let outage = settle(auth.access_token_after_401(&rejected.as_str().into())).await;
    proxy_mode("up").await;
    assert_eq!(error_code(&outage.expect_err("the refresh failed")), "network");
    assert!(auth.is_authenticated(), "an outage keeps the session");

    settle(auth.logout()).await.expect("logout");
    let after = settle(auth.access_token_after_401(&rejected.into())).await.expect("resolves");
    assert!(after.is_null(), "no session, no token: {after:?}");
}

#[wasm_bindgen_test]
async fn a_dead_refresh_cookie_signs_out_with_the_servers_reason() {
    let (auth, _) = signed_in(SERVER, &[solo(), manual(), ("refreshMarginSeconds", 1.into())]).await;
    let token = access_token(&auth).await.expect("token");
    // Revoke every session behind the client's back; the access token itself stays valid.
    let init = object(&[
        ("method", "POST".into()),
        ("headers", object(&[("authorization", format!("Bearer {token}").into())])),
    ]);
    assert_eq!(status(&raw_fetch(&format!("{SERVER}/auth/logout-all"), &init).await), 204);
    let events = record_events(&auth);

    sleep(TOKEN_LIFETIME_MS - 800).await; // past the renewal point
    let error = access_token(&auth).await.expect_err("the refresh cookie is revoked");
    assert_eq!(error_code(&error), "session_expired");
    assert_eq!(events.borrow().as_slice(), [("signed_out".to_owned(), "revoked".to_owned())]);
    assert!(!auth.is_authenticated());
}

// ----- start-up -----

/// `count` calls made at once, every fifth `accessToken()`, the rest `fetch("/api/me")`; asserts
/// they all succeed as `username`.
async fn many_calls_succeed(auth: &AuthClient, count: u32, username: &str) {
    let calls = Array::new();
    for index in 0..count {
        if index % 5 == 0 {
            calls.push(&auth.access_token());
        } else {
            calls.push(&auth.fetch("/api/me".into(), None));
        }
    }
    let results: Array = settle(Promise::all(&calls)).await.expect("all succeed").unchecked_into();
    for result in results.iter() {
        if result.as_string().is_none() {
            assert_eq!(status(&result), 200);
            assert_eq!(text(&json(&result).await, "username"), username);
        }
    }
}

#[wasm_bindgen_test]
async fn fifty_calls_before_restore_join_one_start_up_refresh() {
    let (first, username) = signed_in(SERVER, &[solo()]).await;
    drop(first); // a fresh page: only the cookies are left
    let spy = spy_fetch();
    let auth = client(SERVER, &[manual(), ("fetch", spy.clone().into())]);
    assert_eq!(text(&auth.get_snapshot(), "status"), "loading", "the indicator says a session may exist");
    many_calls_succeed(&auth, 50, &username).await;
    assert_eq!(call_count(&spy, "/auth/refresh"), 1, "one start-up refresh for 50 calls");
    assert_eq!(call_count(&spy, "/api/me"), 40, "none went out without a token, none was retried");
    assert_eq!(text(&auth.get_snapshot(), "status"), "signed_in");
}

#[wasm_bindgen_test]
async fn fifty_calls_after_an_unawaited_restore_join_it() {
    let (first, username) = signed_in(SERVER, &[solo()]).await;
    drop(first);
    let spy = spy_fetch();
    let auth = client(SERVER, &[manual(), ("fetch", spy.clone().into())]);
    let restoring = auth.restore();
    many_calls_succeed(&auth, 50, &username).await;
    assert_eq!(text(&settle(restoring).await.expect("restore"), "username"), username);
    assert_eq!(call_count(&spy, "/auth/refresh"), 1, "restore and 50 calls shared one refresh");
    assert_eq!(call_count(&spy, "/api/me"), 40);
}

#[wasm_bindgen_test]
async fn without_the_indicator_cookie_nothing_asks_the_server() {
    forget_session().await;
    let spy = spy_fetch();
    let auth = client(SERVER, &[("fetch", spy.clone().into())]);
    let (changes, _) = count_snapshot_changes(&auth);
    assert_eq!(text(&auth.get_snapshot(), "status"), "signed_out", "known at once: no loading state");
    assert!(settle(auth.restore()).await.expect("restore").is_null());
    assert_eq!(error_code(&access_token(&auth).await.expect_err("no session")), "unauthenticated");
    let me = get_me(&auth).await;
    assert_eq!(status(&me), 401, "sent as written, without a token");
    assert_eq!(call_count(&spy, "/auth/refresh"), 0, "an anonymous visitor costs no refresh");
    assert!(field(&calls_to(&spy, "/api/me").get(0), "authorization").is_null());
    assert_eq!(*changes.borrow(), 0, "nothing changed");
}

#[wasm_bindgen_test]
async fn a_new_tab_adopts_a_siblings_live_token_without_a_refresh() {
    let (first, username) = signed_in(SERVER, &[manual()]).await;
    let spy = spy_fetch();
    let second = client(SERVER, &[manual(), ("fetch", spy.clone().into())]);
    let events = record_events(&second);
    let user = settle(second.restore()).await.expect("restore");
    assert_eq!(text(&user, "username"), username);
    assert_eq!(call_count(&spy, "/auth/refresh"), 0, "handed over, not refreshed");
    assert_eq!(access_token(&second).await.expect("token"), access_token(&first).await.expect("token"));
    // The same expiry as the sibling's, up to the sub-millisecond part of performance.now().
    let expiry_gap = second.expires_at().as_f64().expect("expiresAt") - first.expires_at().as_f64().expect("expiresAt");
    assert!(expiry_gap.abs() < 2.0, "expiry differs by {expiry_gap} ms");
    assert_eq!(types(&events), ["signed_in"]);
    assert_eq!(status(&get_me(&second).await), 200);

    // With no sibling left, a new tab refreshes as before.
    drop((first, second));
    let third = client(SERVER, &[manual(), ("fetch", spy.clone().into())]);
    assert_eq!(text(&settle(third.restore()).await.expect("restore"), "username"), username);
    assert_eq!(call_count(&spy, "/auth/refresh"), 1);
}

// ----- the debug option -----

#[wasm_bindgen_test]
async fn the_debug_option_reports_engine_decisions() {
    let seen: Rc<RefCell<Vec<String>>> = Rc::default();
    let sink = seen.clone();
    let debug = Closure::<dyn FnMut(JsValue, JsValue)>::new(move |message: JsValue, _detail: JsValue| {
        sink.borrow_mut().push(message.as_string().expect("a message string"));
    })
    .into_js_value();
    let (auth, _) = signed_in(SERVER, &[manual(), ("debug", debug.clone())]).await;
    auth.invalidate_access_token();
    let both = Array::of2(&auth.access_token(), &auth.access_token());
    settle(Promise::all(&both)).await.expect("renewed");
    drop(auth);
    let (timed, _) = signed_in(SERVER, &[solo(), ("debug", debug)]).await;
    drop(timed);
    let messages = seen.borrow().clone();
    for expected in ["reauth: took the lock", "reauth: joined the refresh in flight", "reauth: scheduled the renewal"] {
        assert!(messages.iter().any(|message| message == expected), "{expected}: {messages:?}");
    }

    let (console, _) = signed_in(SERVER, &[solo(), ("debug", true.into())]).await;
    drop(console); // `true` logs to console.debug: nothing to check here but that it does not throw
    let quiet = client(SERVER, &[solo(), ("debug", false.into())]);
    drop(quiet);
    let error = AuthClient::new(&object(&[("baseUrl", SERVER.into()), ("debug", "yes".into())])).err().expect("bad");
    assert_eq!(error_code(&error), "invalid_options");
}

// ----- one refresh at a time -----

#[wasm_bindgen_test]
async fn fifty_concurrent_fetches_after_expiry_share_one_refresh() {
    let spy = spy_fetch();
    let (auth, username) = signed_in(SERVER, &[solo(), manual(), ("fetch", spy.clone().into())]).await;
    sleep(TOKEN_LIFETIME_MS + 300).await;

    let calls = Array::new();
    for index in 0..50 {
        if index % 5 == 0 {
            calls.push(&auth.access_token());
        } else {
            calls.push(&auth.fetch("/api/me".into(), None));
        }
    }
    let results: Array = settle(Promise::all(&calls)).await.expect("all succeed").unchecked_into();
    assert_eq!(call_count(&spy, "/auth/refresh"), 1, "one refresh request for 50 callers");
    let mut tokens = Vec::new();
    for result in results.iter() {
        match result.as_string() {
            Some(token) => tokens.push(token),
            None => {
                assert_eq!(status(&result), 200);
                assert_eq!(text(&json(&result).await, "username"), username);
            }
        }
    }
    assert_eq!(tokens.len(), 10);
    assert!(tokens.iter().all(|token| *token == tokens[0]), "every caller got the same fresh token");
    assert_eq!(call_count(&spy, "/api/me"), 40, "no request was retried");
}

#[wasm_bindgen_test]
async fn an_invalidated_token_is_renewed_once_for_all_callers_and_keeps_the_session() {
    let spy = spy_fetch();
    let (auth, username) = signed_in(SERVER, &[solo(), manual(), ("fetch", spy.clone().into())]).await;
    let before = access_token(&auth).await.expect("token");
    let refresh_at = auth.refresh_at().as_f64().expect("refreshAt");
    let expires_at = auth.expires_at().as_f64().expect("expiresAt");
    assert!(js_sys::Date::now() <= refresh_at && refresh_at < expires_at, "renewal falls before expiry");

    auth.invalidate_access_token();
    assert!(auth.is_authenticated(), "the session is kept");
    let calls = Array::new();
    for _ in 0..10 {
        calls.push(&auth.fetch("/api/me".into(), None));
    }
    let results: Array = settle(Promise::all(&calls)).await.expect("all succeed").unchecked_into();
    assert_eq!(call_count(&spy, "/auth/refresh"), 1, "one refresh for ten callers");
    for result in results.iter() {
        assert_eq!(status(&result), 200);
        assert_eq!(text(&json(&result).await, "username"), username);
    }
    assert_ne!(access_token(&auth).await.expect("token"), before, "a new token");
}

// ----- scheduled renewal and wake-ups -----

#[wasm_bindgen_test]
async fn scheduled_renewal_fires_before_expiry() {
    let spy = spy_fetch();
    let (auth, _) =
        signed_in(SERVER, &[solo(), ("refreshMarginSeconds", 1.into()), ("fetch", spy.clone().into())]).await;
    let before = access_token(&auth).await.expect("token");
    let events = record_events(&auth);
    let expires_at = auth.expires_at().as_f64().expect("expiresAt");

    sleep(1_700).await;
    assert_eq!(call_count(&spy, "/auth/refresh"), 0, "not renewed before the renewal point (2 s)");
    assert!(wait_for_event(&events, "refreshed", 1_200).await, "renewed on its own");
    assert!(js_sys::Date::now() < expires_at, "renewed before the old token expired");
    assert_eq!(call_count(&spy, "/auth/refresh"), 1);
    assert_ne!(access_token(&auth).await.expect("token"), before);
    assert!(auth.expires_at().as_f64().expect("expiresAt") > expires_at);
}

#[wasm_bindgen_test]
async fn wake_up_events_renew_a_token_past_its_renewal_point() {
    let spy = spy_fetch();
    let margin = ("refreshMarginSeconds", 1.into());
    let (auth, _) = signed_in(SERVER, &[solo(), manual(), margin, ("fetch", spy.clone().into())]).await;
    let events = record_events(&auth);
    for (round, (target, event)) in
        [("window", "online"), ("window", "pageshow"), ("document", "visibilitychange")].into_iter().enumerate()
    {
        sleep(2_200).await; // timers were "throttled": nothing renewed the token yet
        assert_eq!(call_count(&spy, "/auth/refresh"), round as u32, "no renewal before {event}");
        fire_event(target, event);
        sleep(600).await;
        assert_eq!(call_count(&spy, "/auth/refresh"), round as u32 + 1, "{event} renewed the token");
    }
    assert_eq!(types(&events), ["refreshed", "refreshed", "refreshed"]);
}

// ----- 401 handling -----

#[wasm_bindgen_test]
async fn a_401_is_refreshed_and_retried_once() {
    let spy = spy_fetch();
    let (auth, _) = signed_in(SERVER, &[solo(), manual(), ("fetch", spy.clone().into())]).await;
    let token = access_token(&auth).await.expect("token");
    answer_with(&spy, "/api/", 401, 1);

    let response = get_me(&auth).await;
    assert_eq!(status(&response), 200, "the retry succeeded");
    assert_eq!(call_count(&spy, "/auth/refresh"), 1);
    let attempts = calls_to(&spy, "/api/me");
    assert_eq!(attempts.length(), 2);
    assert_eq!(text(&attempts.get(0), "authorization"), format!("Bearer {token}"));
    assert_ne!(text(&attempts.get(1), "authorization"), format!("Bearer {token}"), "retried with the new token");
}

#[wasm_bindgen_test]
async fn a_second_401_goes_back_to_the_caller() {
    let spy = spy_fetch();
    let (auth, _) = signed_in(SERVER, &[solo(), manual(), ("fetch", spy.clone().into())]).await;
    answer_with(&spy, "/api/", 401, -1);

    let response = get_me(&auth).await;
    assert_eq!(status(&response), 401);
    assert_eq!(call_count(&spy, "/api/me"), 2, "exactly one retry");
    assert_eq!(call_count(&spy, "/auth/refresh"), 1);
    assert!(auth.is_authenticated(), "a 401 from the API does not end the session");
}

#[wasm_bindgen_test]
async fn a_late_401_for_an_older_token_retries_without_another_refresh() {
    let spy = spy_fetch();
    let margin = ("refreshMarginSeconds", 1.into());
    let (auth, _) = signed_in(SERVER, &[solo(), manual(), margin, ("fetch", spy.clone().into())]).await;
    let old = access_token(&auth).await.expect("token");
    let release = gate_then_answer(&spy, "/api/", 401);
    let slow_request = auth.fetch("/api/me".into(), None);

    sleep(2_100).await;
    let new = access_token(&auth).await.expect("renewed token");
    assert_ne!(new, old);
    assert_eq!(call_count(&spy, "/auth/refresh"), 1);
    release.call0(&JsValue::UNDEFINED).expect("release");

    let response = settle(slow_request).await.expect("fetch resolves");
    assert_eq!(status(&response), 200);
    assert_eq!(call_count(&spy, "/auth/refresh"), 1, "the stale 401 caused no second rotation");
    let attempts = calls_to(&spy, "/api/me");
    assert_eq!(text(&attempts.get(1), "authorization"), format!("Bearer {new}"));
}

#[wasm_bindgen_test]
async fn stream_bodies_are_sent_once_and_never_replayed() {
    let spy = spy_fetch();
    let (auth, _) = signed_in(SERVER, &[solo(), manual(), ("fetch", spy.clone().into())]).await;
    answer_with(&spy, "/api/", 401, -1);
    let init = object(&[("method", "POST".into()), ("body", stream_body()), ("duplex", "half".into())]);
    let response = settle(auth.fetch("/api/me".into(), Some(init.unchecked_into()))).await.expect("resolves");
    assert_eq!(status(&response), 401);
    assert_eq!(call_count(&spy, "/api/me"), 1, "a stream cannot be sent twice");
    assert_eq!(call_count(&spy, "/auth/refresh"), 0);
}

#[wasm_bindgen_test]
async fn the_token_goes_only_to_base_url_and_the_cookie_only_to_auth_endpoints() {
    let spy = spy_fetch();
    let (auth, _) = signed_in(SERVER, &[solo(), manual(), ("fetch", spy.clone().into())]).await;
    // The proxy listens on another port: another origin, which must not see the token.
    let elsewhere = format!("{PROXY}/api/me");
    settle(auth.fetch(elsewhere.as_str().into(), None)).await.expect("resolves");
    assert_eq!(status(&get_me(&auth).await), 200);

    let calls: Vec<JsValue> = spy_calls(&spy);
    for call in &calls {
        let (path, credentials) = (text(call, "path"), text(call, "credentials"));
        let expected = if path.starts_with("/auth/") { "include" } else { "same-origin" };
        assert_eq!(credentials, expected, "credentials mode of {path}");
    }
    let api = calls_to(&spy, "/api/me");
    assert_eq!(api.length(), 2);
    assert!(field(&api.get(0), "authorization").is_null(), "no token for another origin");
    assert!(text(&api.get(1), "authorization").starts_with("Bearer "));
}

#[wasm_bindgen_test]
async fn api_origins_get_the_token_and_no_other_origin_does() {
    let spy = spy_fetch();
    let api_origins: JsValue = Array::of1(&PROXY.into()).into();
    let (auth, username) =
        signed_in(SERVER, &[solo(), manual(), ("fetch", spy.clone().into()), ("apiOrigins", api_origins)]).await;
    // The proxy is a second origin (another port) in front of the same server: with the token it
    // answers for the user, as an API on another origin that trusts this server's tokens would.
    let response = settle(auth.fetch(format!("{PROXY}/api/me").into(), None)).await.expect("resolves");
    assert_eq!(status(&response), 200);
    assert_eq!(text(&json(&response).await, "username"), username);
    // An origin that is not listed: a port that refuses connections, so only the request matters.
    let _ = settle(auth.fetch("http://127.0.0.1:9/api/me".into(), None)).await;

    let api = calls_to(&spy, "/api/me");
    assert_eq!(api.length(), 2);
    assert!(text(&api.get(0), "authorization").starts_with("Bearer "), "the listed origin gets the token");
    assert!(field(&api.get(1), "authorization").is_null(), "an unlisted origin does not");

    assert!(auth.sends_token_to(&"/api/me".into()), "relative URLs are baseUrl's");
    assert!(auth.sends_token_to(&format!("{PROXY}/anything?x=1").into()));
    // Same host, a port that merely starts with the listed one: another origin.
    assert!(!auth.sends_token_to(&format!("{PROXY}0/api/me").into()));
    assert!(!auth.sends_token_to(&"http://127.0.0.1:9/api/me".into()));
    assert!(!auth.sends_token_to(&"http://[".into()), "an invalid URL gets nothing");
}

#[wasm_bindgen_test]
fn api_origins_must_be_exact_origins() {
    let with = |origins: JsValue| AuthClient::new(&object(&[("baseUrl", SERVER.into()), ("apiOrigins", origins)]));
    for bad in ["https://api.example.com/v1", "api.example.com", "ftp://api.example.com", "https://u@api.example.com"] {
        let error = with(Array::of1(&bad.into()).into()).err().unwrap_or_else(|| panic!("{bad} is refused"));
        assert_eq!(error_code(&error), "invalid_options", "{bad}");
    }
    let not_a_list = with("https://api.example.com".into()).err().expect("a string is not a list");
    assert_eq!(error_code(&not_a_list), "invalid_options");
    let not_a_string = with(Array::of1(&42.into()).into()).err().expect("entries are strings");
    assert_eq!(error_code(&not_a_string), "invalid_options");

    // Spelled differently, the same origin: normalised as URL.origin spells it.
    let auth = with(Array::of1(&"https://API.example.com:443/".into()).into()).expect("an origin");
    assert!(auth.sends_token_to(&"https://api.example.com/v1/items".into()));
    assert!(!auth.sends_token_to(&"https://api.example.com:8443/v1/items".into()));
    assert!(!auth.sends_token_to(&"http://api.example.com/v1/items".into()), "the scheme is part of the origin");
    let default_only = client(SERVER, &[solo()]);
    assert!(!default_only.sends_token_to(&"https://api.example.com/v1/items".into()), "none by default");
}

fn spy_calls(spy: &Function) -> Vec<JsValue> {
    let calls: Array = field(spy, "calls").unchecked_into();
    calls.iter().collect()
}

#[wasm_bindgen_test]
async fn the_access_token_never_reaches_storage_cookies_or_the_dom() {
    let (auth, _) = signed_in(SERVER, &[solo(), manual()]).await;
    let token = access_token(&auth).await.expect("token");
    assert!(token.len() > 20);
    assert!(!text_seen_by_the_dom().contains(&token));
}

// ----- stale answers, timeouts, outages -----

#[wasm_bindgen_test]
async fn a_refresh_answer_arriving_after_logout_is_discarded() {
    let _session = signed_in(SERVER, &[solo()]).await; // leaves a refresh cookie
    let spy = spy_fetch();
    let auth = client(SERVER, &[solo(), ("fetch", spy.clone().into())]);
    let events = record_events(&auth);
    let release = hold_next_answer(&spy, "/auth/refresh");
    let restoring = auth.restore();
    sleep(300).await; // the server has answered; the answer is on its way
    settle(auth.logout()).await.expect("logout");
    release.call0(&JsValue::UNDEFINED).expect("release");

    let restored = settle(restoring).await.expect("restore settles");
    assert!(restored.is_null(), "the late answer did not bring the session back");
    assert!(!auth.is_authenticated());
    assert!(types(&events).is_empty(), "no signed_in from the stale answer: {:?}", types(&events));
}

#[wasm_bindgen_test]
async fn a_refresh_answer_arriving_after_a_new_login_is_discarded() {
    let (old, old_username) = signed_in(SERVER, &[solo()]).await;
    drop(old);
    let (username, password) = register().await;
    let spy = spy_fetch();
    let auth = client(SERVER, &[solo(), ("fetch", spy.clone().into())]);
    let release = hold_next_answer(&spy, "/auth/refresh");
    let restoring = auth.restore();
    sleep(300).await;
    settle(auth.login(username.clone().into(), password.into())).await.expect("login");
    release.call0(&JsValue::UNDEFINED).expect("release");
    settle(restoring).await.expect("restore settles");

    assert_eq!(text(&auth.user(), "username"), username, "still {username}, not {old_username}");
    let me = get_me(&auth).await;
    assert_eq!(text(&json(&me).await, "username"), username);
}

#[wasm_bindgen_test]
async fn a_hung_refresh_times_out_and_releases_every_waiter() {
    let options = [solo(), manual(), ("requestTimeoutMs", 700.into())];
    let (auth, _) = signed_in(PROXY, &options).await;
    sleep(TOKEN_LIFETIME_MS + 200).await;
    proxy_mode("hang").await;

    let started = js_sys::Date::now();
    let waiters = Array::new();
    for _ in 0..5 {
        waiters.push(&auth.access_token());
    }
    let outcomes: Array = settle(Promise::all_settled(&waiters)).await.expect("settles").unchecked_into();
    let waited = js_sys::Date::now() - started;
    proxy_mode("up").await;
    assert!(waited < 3_000.0, "released after the timeout, took {waited} ms");
    for outcome in outcomes.iter() {
        assert_eq!(error_code(&field(&outcome, "reason")), "timeout");
    }
    assert!(auth.is_authenticated(), "a timeout is transient: the session is kept");
    assert!(access_token(&auth).await.is_ok(), "works again once the server answers");
}

#[wasm_bindgen_test]
async fn server_down_during_refresh_keeps_the_session_and_recovers() {
    let options = [solo(), ("refreshMarginSeconds", 1.into()), ("requestTimeoutMs", 1_000.into())];
    let (auth, username) = signed_in(PROXY, &options).await;
    let token = access_token(&auth).await.expect("token");
    let events = record_events(&auth);
    proxy_mode("down").await;

    assert!(wait_for_event(&events, "refresh_failed", 2_800).await, "the scheduled renewal failed");
    assert_eq!(events.borrow()[0].1, "network");
    assert!(auth.is_authenticated());
    assert_eq!(access_token(&auth).await.expect("still valid"), token, "the old token is used until it expires");

    proxy_mode("503").await;
    sleep(TOKEN_LIFETIME_MS).await; // expired now, and backoff retries hit the 503
    let error = access_token(&auth).await.expect_err("cannot renew during the outage");
    assert_eq!(error_code(&error), "temporarily_unavailable");
    let unavailable = events.borrow().iter().filter(|(_, reason)| reason == "temporarily_unavailable").count();
    assert!(unavailable >= 2, "retried on its own with backoff during the outage ({unavailable} failures seen)");
    assert!(types(&events).iter().all(|kind| kind == "refresh_failed"), "{:?}", types(&events));
    assert!(auth.is_authenticated(), "an outage never ends the session");

    proxy_mode("up").await;
    // The token is expired, so the next call renews at once instead of waiting for the backoff.
    let me = settle(auth.fetch("/api/me".into(), None)).await.expect("fetch");
    assert_eq!(text(&json(&me).await, "username"), username);
    assert_eq!(types(&events).last().map(String::as_str), Some("refreshed"));
}

// ----- across tabs -----

#[wasm_bindgen_test]
async fn tabs_share_one_refresh_and_sign_in_together() {
    let spy = spy_fetch();
    let options = [manual(), ("refreshMarginSeconds", 1.into()), ("fetch", spy.clone().into())];
    let (first, username) = signed_in(SERVER, &options).await;
    let second = client(SERVER, &options);
    sleep(100).await;
    assert!(!second.is_authenticated(), "a tab created after the login hears nothing yet");
    let first_tab_events = record_events(&first);
    let second_tab_events = record_events(&second);

    sleep(2_100).await; // both tabs need a renewal now
    let renewals = Array::of3(&first.access_token(), &second.restore(), &second.access_token());
    let results: Array = settle(Promise::all(&renewals)).await.expect("renewed").unchecked_into();
    assert_eq!(call_count(&spy, "/auth/refresh"), 1, "one refresh request for both tabs");
    assert_eq!(text(&results.get(1), "username"), username);
    assert_eq!(results.get(0), results.get(2), "both tabs use the same token");
    assert_eq!(types(&first_tab_events), ["refreshed"]);
    assert_eq!(types(&second_tab_events), ["signed_in"]);
}

#[wasm_bindgen_test]
async fn logout_in_one_tab_signs_out_every_tab() {
    let (first, _) = signed_in(SERVER, &[manual()]).await;
    let second = client(SERVER, &[manual()]);
    settle(second.restore()).await.expect("restore");
    assert!(second.is_authenticated());
    let events = record_events(&second);

    settle(first.logout()).await.expect("logout");
    assert!(wait_for_event(&events, "signed_out", 1_000).await);
    assert_eq!(events.borrow().as_slice(), [("signed_out".to_owned(), "logout".to_owned())]);
    assert!(!second.is_authenticated());
}

#[wasm_bindgen_test]
async fn a_renewal_from_another_tab_that_crossed_a_logout_does_not_sign_back_in() {
    let (auth, _) = signed_in(SERVER, &[manual()]).await;
    let token = access_token(&auth).await.expect("token");
    let user = auth.user();
    settle(auth.logout()).await.expect("logout");
    let events = record_events(&auth);

    post_tokens_from_another_tab(SERVER, &token, &user, false);
    sleep(300).await;
    assert!(!auth.is_authenticated(), "a renewal posted before the logout landed after it");
    assert!(types(&events).is_empty());

    post_tokens_from_another_tab(SERVER, &token, &user, true);
    assert!(wait_for_event(&events, "signed_in", 1_000).await, "a new login in another tab signs this tab in");
    assert!(auth.is_authenticated());
}

#[wasm_bindgen_test]
async fn a_lock_held_by_a_hung_tab_is_stolen_after_the_lock_timeout() {
    let (first, username) = signed_in(SERVER, &[manual()]).await;
    drop(first); // no sibling with a live token to hand over: the new client must refresh
    let release: Function = settle(hold_lock(&format!("reauth:{SERVER}"))).await.expect("lock").unchecked_into();
    let auth = client(SERVER, &[manual(), ("lockTimeoutMs", 600.into())]);
    let started = js_sys::Date::now();
    let user = settle(auth.restore()).await.expect("restore");
    let waited = js_sys::Date::now() - started;
    release.call0(&JsValue::UNDEFINED).expect("release");
    assert_eq!(text(&user, "username"), username);
    assert!(waited >= 550.0, "waited for the holder first ({waited} ms)");
    assert!(waited < 3_000.0, "then stole the lock ({waited} ms)");
}

#[wasm_bindgen_test]
async fn without_web_locks_or_broadcast_channel_the_client_still_works() {
    let undo = hide_coordination_apis();
    let (first, username) = signed_in(SERVER, &[manual()]).await;
    drop(first);
    let auth = client(SERVER, &[manual()]);
    let user = settle(auth.restore()).await;
    let me = settle(auth.fetch("/api/me".into(), None)).await;
    undo.call0(&JsValue::UNDEFINED).expect("undo");
    assert_eq!(text(&user.expect("restore"), "username"), username);
    assert_eq!(status(&me.expect("fetch")), 200);
}

// ----- lifecycle -----

#[wasm_bindgen_test]
async fn free_stops_timers_and_listeners() {
    let spy = spy_fetch();
    let (auth, _) =
        signed_in(SERVER, &[solo(), ("refreshMarginSeconds", 1.into()), ("fetch", spy.clone().into())]).await;
    let events = record_events(&auth);
    drop(auth); // what auth.free() does from JavaScript
    sleep(2_500).await;
    fire_event("window", "online");
    sleep(200).await;
    assert_eq!(call_count(&spy, "/auth/refresh"), 0, "no renewal after free()");
    assert!(types(&events).is_empty());
}
