//! Every endpoint, through the real router (`reauth_server::app`) in process, on a fresh memory
//! store whose signing key and refresh secret were rotated once (so the session's tokens are `rt2.`
//! under a stored secret, and the configured key's are still accepted), with one user signed in and,
//! when the input asks, a wallet challenge issued. Inputs are plain-text HTTP requests (see `FuzzRequest`); the
//! JSON and form bodies of register, login and the token endpoint, cookies, bearer tokens, paths and
//! Origin headers are all fuzzed. Whatever comes in: no panic, no 5xx, every 4xx has the JSON error
//! body, and every `/auth` answer that carries a token or sets a cookie is `Cache-Control: no-store`.
#![no_main]

use std::sync::LazyLock;

use axum::http::{header, Method};
use libfuzzer_sys::fuzz_target;
use reauth_fuzz::{FuzzRequest, Placeholders, PASSWORD, USERNAME};
use reauth_server::store::KeyKind;
use reauth_server::ClientInfo;
use tokio::runtime::Runtime;
use tower::ServiceExt as _;

/// Largest response body read back (the audit page is the longest, a few KiB).
const MAX_RESPONSE_BYTES: usize = 1 << 20;

static RUNTIME: LazyLock<Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime"));

fuzz_target!(|input: &[u8]| {
    let Some(fuzzed) = FuzzRequest::parse(input) else { return };
    RUNTIME.block_on(async {
        let service = reauth_fuzz::service(&fuzzed.options);
        for kind in [KeyKind::Signing, KeyKind::Refresh] {
            service.rotate_key(kind, 0).await.expect("the memory store keeps a key set");
        }
        service.create_user(USERNAME, PASSWORD).await.expect("the fixture user is valid");
        let client = ClientInfo::default();
        let session = service.login(USERNAME, PASSWORD, &client).await.expect("the fixture login");
        let mut values =
            Placeholders { access: session.access_token, refresh: session.refresh_token, ..Placeholders::default() };
        if fuzzed.uses_wallet() {
            let challenge = service
                .wallet_challenge(&reauth_fuzz::wallet_account(), &client)
                .await
                .expect("a challenge for the fixture account");
            values.wallet_signature = reauth_fuzz::wallet_signature(&challenge.message);
            let quoted = serde_json::to_string(&challenge.message).expect("a string serialises");
            values.wallet_message = quoted[1..quoted.len() - 1].to_owned();
        }
        let Some(request) = fuzzed.to_request(&values) else { return };
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());

        let Ok(response) = reauth_server::app(service, None).oneshot(request).await;
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), MAX_RESPONSE_BYTES).await.expect("a readable body");
        let shown = String::from_utf8_lossy(&body);

        assert!(!status.is_server_error(), "{method} {path}: {status} {shown}");
        if status.is_client_error() && method != Method::HEAD {
            let error: serde_json::Value = serde_json::from_slice(&body)
                .unwrap_or_else(|_| panic!("{method} {path}: {status} without a JSON body: {shown}"));
            for field in ["error", "error_description", "reason"] {
                assert!(error[field].is_string(), "{method} {path}: {status} without {field}: {shown}");
            }
        }
        let carries_tokens = headers.contains_key(header::SET_COOKIE) || shown.contains("\"access_token\"");
        if carries_tokens && path.starts_with("/auth") {
            assert_eq!(headers.get(header::CACHE_CONTROL).map(|v| v.as_bytes()), Some(&b"no-store"[..]), "{path}");
        }
    });
});
