//! Wallet sign-in over HTTP: `/auth/wallet/challenge` and `/auth/wallet/login` with SEP-53 signatures
//! made here with a real Ed25519 key, as a Stellar wallet makes them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use reauth_server::server::RunningServer;
use reauth_server::stellar::sep53_hash;
use reauth_server::{AuthService, Keys};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::cli::user_command;
use crate::helpers::{cookie, error_reason, Session, TestServer};

const ORIGIN: &str = "https://app.example.com";

/// A wallet: an Ed25519 key and its `G…` account id.
struct Wallet {
    key: SigningKey,
    account: String,
}

impl Wallet {
    fn new() -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        let key = SigningKey::from_bytes(&seed);
        let account = stellar_strkey::ed25519::PublicKey(key.verifying_key().to_bytes()).to_string();
        Self { key, account: account.as_str().to_owned() }
    }

    fn sign(&self, message: &str) -> String {
        STANDARD.encode(self.key.sign(&sep53_hash(message)).to_bytes())
    }
}

async fn wallet_server(extra: &[&str]) -> TestServer {
    let mut args = vec!["--public-origin", ORIGIN];
    args.extend_from_slice(extra);
    TestServer::start_with(&args).await
}

async fn challenge(server: &TestServer, account: &str) -> String {
    let response = server.post_json("/auth/wallet/challenge", json!({ "account": account })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body["expires_at"].is_i64(), "{body}");
    body["message"].as_str().unwrap().to_owned()
}

async fn present(server: &TestServer, account: &str, message: &str, signature: &str) -> reqwest::Response {
    let body = json!({ "account": account, "message": message, "signature": signature });
    server.post_json("/auth/wallet/login", body).await
}

/// A fresh challenge for `wallet`, signed by it, presented.
async fn sign_in(server: &TestServer, wallet: &Wallet) -> reqwest::Response {
    let message = challenge(server, &wallet.account).await;
    present(server, &wallet.account, &message, &wallet.sign(&message)).await
}

async fn assert_refused(response: reqwest::Response) {
    let reason = error_reason(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(reason, "invalid_credentials");
}

#[tokio::test]
async fn a_signed_challenge_signs_in_like_a_password_and_the_session_rotates() {
    let server = wallet_server(&[]).await;
    let wallet = Wallet::new();
    let message = challenge(&server, &wallet.account).await;
    let first_line = format!("app.example.com wants you to sign in with your Stellar account:\n{}\n", wallet.account);
    assert!(message.starts_with(&first_line), "{message}");
    assert!(message.contains("\nURI: https://app.example.com\nVersion: 1\nNonce: "), "{message}");

    let response = present(&server, &wallet.account, &message, &wallet.sign(&message)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(cookie(response.headers(), "reauth_session").as_deref(), Some("1"));
    let session = Session::from_response(response).await;
    assert_eq!(session.body["token_type"], "Bearer");
    assert_eq!(session.body["user"]["username"], format!("stellar:{}", wallet.account));
    let me: Value = server.get_bearer("/api/me", &session.access_token).await.json().await.unwrap();
    assert_eq!(me["id"], session.body["user"]["id"], "{me}");

    let rotated = server.refresh(&session.refresh_token).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated = Session::from_response(rotated).await;
    let events: Vec<Value> = server.get_bearer("/auth/audit", &rotated.access_token).await.json().await.unwrap();
    let login = events.iter().find(|event| event["type"] == "login").unwrap();
    assert_eq!(login["detail"], "wallet", "the audit log names the method");

    // The same account signs in again as the same user.
    let again = Session::from_response(sign_in(&server, &wallet).await).await;
    assert_eq!(again.body["user"]["id"], session.body["user"]["id"]);
}

#[tokio::test]
async fn a_password_login_is_audited_with_its_method() {
    let server = TestServer::start().await;
    let session = server.signed_in("alice").await;
    let events: Vec<Value> = server.get_bearer("/auth/audit", &session.access_token).await.json().await.unwrap();
    assert_eq!(events[0]["type"], "login");
    assert_eq!(events[0]["detail"], "password");
}

#[tokio::test]
async fn a_signature_is_accepted_once() {
    let server = wallet_server(&[]).await;
    let wallet = Wallet::new();
    let message = challenge(&server, &wallet.account).await;
    let signature = wallet.sign(&message);
    assert_eq!(present(&server, &wallet.account, &message, &signature).await.status(), StatusCode::OK);
    assert_refused(present(&server, &wallet.account, &message, &signature).await).await;
}

#[tokio::test]
async fn a_signature_sent_many_times_at_once_signs_in_once() {
    let server = wallet_server(&[]).await;
    let wallet = Wallet::new();
    let message = challenge(&server, &wallet.account).await;
    let signature = wallet.sign(&message);
    let body = json!({ "account": wallet.account, "message": message, "signature": signature });
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let request = server.http.post(server.url("/auth/wallet/login")).json(&body);
            tokio::spawn(async move { request.send().await.unwrap().status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|status| **status == StatusCode::OK).count(), 1, "{statuses:?}");
    // The others are refused as used (401) or, past the per-account limit, throttled (429).
    let refused = [StatusCode::OK, StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS];
    assert!(statuses.iter().all(|status| refused.contains(status)), "{statuses:?}");
}

#[tokio::test]
async fn an_expired_challenge_is_refused() {
    let server = wallet_server(&["--wallet-challenge-ttl", "1s"]).await;
    let wallet = Wallet::new();
    let message = challenge(&server, &wallet.account).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_refused(present(&server, &wallet.account, &message, &wallet.sign(&message)).await).await;
}

#[tokio::test]
async fn a_challenge_for_another_account_is_refused() {
    let server = wallet_server(&[]).await;
    let (alice, mallory) = (Wallet::new(), Wallet::new());
    let message = challenge(&server, &alice.account).await;
    // Mallory signs Alice's challenge with her own key, claiming her own account.
    assert_refused(present(&server, &mallory.account, &message, &mallory.sign(&message)).await).await;
    // Or claims Alice's account with her own signature.
    assert_refused(present(&server, &alice.account, &message, &mallory.sign(&message)).await).await;
    // Alice's challenge was left alone by both.
    assert_eq!(present(&server, &alice.account, &message, &alice.sign(&message)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_message_altered_by_one_byte_is_refused() {
    let server = wallet_server(&[]).await;
    let wallet = Wallet::new();
    let message = challenge(&server, &wallet.account).await;
    // Same nonce, a later expiry: signed by the right key, but not the text the server issued.
    let altered = message.replacen("Expiration Time: 2", "Expiration Time: 3", 1);
    assert_eq!(altered.len(), message.len());
    assert_ne!(altered, message);
    assert_refused(present(&server, &wallet.account, &altered, &wallet.sign(&altered)).await).await;
    // The signature of the original does not cover the altered text either.
    assert_refused(present(&server, &wallet.account, &altered, &wallet.sign(&message)).await).await;
}

#[tokio::test]
async fn a_signature_by_another_key_is_refused() {
    let server = wallet_server(&[]).await;
    let (wallet, other) = (Wallet::new(), Wallet::new());
    let message = challenge(&server, &wallet.account).await;
    assert_refused(present(&server, &wallet.account, &message, &other.sign(&message)).await).await;
    // A signature of the bare message, without the SEP-53 prefix and hash, is not one either.
    let bare = STANDARD.encode(wallet.key.sign(message.as_bytes()).to_bytes());
    assert_refused(present(&server, &wallet.account, &message, &bare).await).await;
}

/// Strkeys that are not account ids: bad checksum, wrong version byte, a seed.
fn malformed_accounts(good: &str) -> Vec<String> {
    let last = if good.ends_with('A') { "B" } else { "A" };
    let bad_checksum = format!("{}{last}", &good[..55]);
    let payload = stellar_strkey::ed25519::PublicKey::from_string(good).unwrap().0;
    let contract = stellar_strkey::Contract(payload).to_string().as_str().to_owned();
    let seed = stellar_strkey::ed25519::PrivateKey(payload);
    let seed = seed.as_unredacted().to_string().as_str().to_owned();
    assert!(contract.starts_with('C') && seed.starts_with('S'));
    vec![bad_checksum, contract, seed, good.to_lowercase(), String::new()]
}

#[tokio::test]
async fn malformed_accounts_messages_and_signatures_are_bad_requests() {
    let server = wallet_server(&[]).await;
    let wallet = Wallet::new();
    for account in malformed_accounts(&wallet.account) {
        let response = server.post_json("/auth/wallet/challenge", json!({ "account": account })).await;
        error_reason(response, StatusCode::BAD_REQUEST, "invalid_request").await;
        let response = present(&server, &account, "Nonce: 0123456789abcdef", &wallet.sign("x")).await;
        error_reason(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let message = challenge(&server, &wallet.account).await;
    for signature in ["not base64!", &STANDARD.encode([1u8; 63]), ""] {
        let response = present(&server, &wallet.account, &message, signature).await;
        error_reason(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let no_nonce = "app.example.com wants you to sign in with your Stellar account:";
    let response = present(&server, &wallet.account, no_nonce, &wallet.sign(no_nonce)).await;
    error_reason(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    let missing_field = server.post_json("/auth/wallet/login", json!({ "account": wallet.account })).await;
    error_reason(missing_field, StatusCode::BAD_REQUEST, "invalid_request").await;
    // None of it used the challenge up.
    assert_eq!(present(&server, &wallet.account, &message, &wallet.sign(&message)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_challenge_of_another_domain_is_refused_even_from_a_shared_store() {
    let server = wallet_server(&[]).await;
    // A second site on the same store, reached at another origin.
    let mut settings = server.service().settings().clone();
    settings.public_origins = vec!["https://other.example.org".into()];
    let other_site = AuthService::new(server.service().store().clone(), Keys::generate(), settings);
    let other = RunningServer::start_with(other_site, "127.0.0.1:0".parse().unwrap(), None, std::future::pending())
        .await
        .unwrap();

    let wallet = Wallet::new();
    let body = json!({ "account": wallet.account });
    let response = server.http.post(format!("http://{}/auth/wallet/challenge", other.addr)).json(&body).send().await;
    let message = response.unwrap().json::<Value>().await.unwrap()["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("other.example.org wants you"), "{message}");
    assert_refused(present(&server, &wallet.account, &message, &wallet.sign(&message)).await).await;
    other.abort();
}

#[tokio::test]
async fn with_signup_off_only_known_accounts_sign_in() {
    let server = wallet_server(&["--wallet-signup", "false"]).await;
    let wallet = Wallet::new();
    assert_refused(sign_in(&server, &wallet).await).await;
    server.service().create_wallet_user(&wallet.account).await.unwrap();
    assert_eq!(sign_in(&server, &wallet).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_disabled_wallet_user_gets_the_answer_of_a_wrong_signature() {
    let server = wallet_server(&[]).await;
    let wallet = Wallet::new();
    let session = Session::from_response(sign_in(&server, &wallet).await).await;
    server.service().set_user_active(&wallet.account, false).await.unwrap();
    let disabled = sign_in(&server, &wallet).await;
    let message = challenge(&server, &wallet.account).await;
    let wrong = present(&server, &wallet.account, &message, &Wallet::new().sign(&message)).await;
    assert_eq!(disabled.status(), wrong.status());
    assert_eq!(disabled.text().await.unwrap(), wrong.text().await.unwrap());
    assert_eq!(server.refresh(&session.refresh_token).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn challenges_are_throttled_per_account() {
    let server = wallet_server(&["--login-max-failures", "2"]).await;
    let wallet = Wallet::new();
    challenge(&server, &wallet.account).await;
    challenge(&server, &wallet.account).await;
    let throttled = server.post_json("/auth/wallet/challenge", json!({ "account": wallet.account })).await;
    let retry_after = throttled.headers().get("retry-after").cloned();
    error_reason(throttled, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(retry_after.is_some());
    // Another account from the same address is not held up.
    challenge(&server, &Wallet::new().account).await;
}

#[tokio::test]
async fn without_a_public_origin_the_challenge_binds_the_listening_address() {
    let server = TestServer::start().await;
    let message = challenge(&server, &Wallet::new().account).await;
    let expected = format!("127.0.0.1:{} wants you to sign in", server.addr.port());
    assert!(message.starts_with(&expected), "{message}");
}

#[tokio::test]
async fn the_cli_adds_and_disables_wallet_users_by_account_id() {
    let server = wallet_server(&["--wallet-signup", "false"]).await;
    let wallet = Wallet::new();
    let added = user_command(&server, &["add", &wallet.account], "");
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    assert!(String::from_utf8_lossy(&added.stdout).contains(&format!("stellar:{}", wallet.account)));
    assert_eq!(sign_in(&server, &wallet).await.status(), StatusCode::OK);

    let disabled = user_command(&server, &["disable", &wallet.account], "");
    assert!(disabled.status.success(), "{}", String::from_utf8_lossy(&disabled.stderr));
    assert_refused(sign_in(&server, &wallet).await).await;
    let enabled = user_command(&server, &["enable", &format!("stellar:{}", wallet.account)], "");
    assert!(enabled.status.success());
    assert_eq!(sign_in(&server, &wallet).await.status(), StatusCode::OK);
}

/// Across features: once a new refresh secret is in force, a wallet sign-in gets an `rt2.` token as a
/// password login does, and `POST /auth/revoke` recognises that token and ends its session.
#[tokio::test]
async fn after_a_refresh_secret_rotation_a_wallet_session_gets_rt2_tokens_that_revoke_ends() {
    let server = wallet_server(&[]).await;
    server.service().rotate_key(reauth_server::store::KeyKind::Refresh, 0).await.unwrap();
    let response = sign_in(&server, &Wallet::new()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let session = Session::from_response(response).await;
    assert!(session.refresh_token.starts_with("rt2."), "{}", session.refresh_token);
    let revoke = server.http.post(server.url("/auth/revoke")).form(&[("token", session.refresh_token.as_str())]);
    assert_eq!(revoke.send().await.unwrap().status(), StatusCode::OK);
    let refused = server.refresh(&session.refresh_token).await;
    assert_eq!(error_reason(refused, StatusCode::UNAUTHORIZED, "invalid_grant").await, "revoked");
}
