//! Key rotation on one server, driven by `reauth-server keys` as an operator runs it against the
//! same SQLite file.

use std::process::Output;

use reqwest::StatusCode;
use serde_json::Value;

use crate::cli::binary;
use crate::helpers::TestServer;
use crate::traffic::{kid_of, Traffic};

fn keys_command(server: &TestServer, args: &[&str]) -> Output {
    let output = binary()
        .arg("keys")
        .args(args)
        .env("REAUTH_STORE", format!("sqlite://{}", server.db_path.display()))
        .output()
        .unwrap();
    assert!(output.status.success(), "keys {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    output
}

/// `keys rotate …`: the id it prints.
fn rotate(server: &TestServer, args: &[&str]) -> String {
    let output = keys_command(server, &[&["rotate"], args].concat());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// `keys list`: (kind, state, id) per line.
fn list(server: &TestServer) -> Vec<(String, String, String)> {
    let output = keys_command(server, &["list"]);
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields[0].to_owned(), fields[1].to_owned(), fields[2].to_owned())
        })
        .collect()
}

fn state_of(listing: &[(String, String, String)], id: &str) -> String {
    listing.iter().find(|(_, _, listed)| listed == id).map(|(_, state, _)| state.clone()).unwrap_or_default()
}

async fn published_kids(server: &TestServer) -> Vec<String> {
    let jwks: Value = server.http.get(server.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|key| key["kid"].as_str().unwrap().to_owned()).collect()
}

/// Waits, a bounded while, until the running server publishes `kid`.
async fn wait_until_published(server: &TestServer, kid: &str) {
    for _ in 0..120 {
        if published_kids(server).await.iter().any(|published| published == kid) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("{kid} never published");
}

#[tokio::test]
async fn rotating_keys_on_a_running_server_signs_no_one_out() {
    let server = TestServer::start_with(&["--key-refresh-interval", "1s"]).await;
    let session = server.signed_in("alice").await;
    let first_kid = kid_of(&session.access_token);
    assert!(session.refresh_token.starts_with("rt1."), "the configured key's refresh secret signs at first");
    let traffic = Traffic::start(vec![server.url("")], session.refresh_token.clone(), session.access_token.clone());

    // A scheduled rotation: published at once, signing in an hour.
    let scheduled = rotate(&server, &["--activate-in", "1h"]);
    assert_ne!(scheduled, first_kid);
    let listing = list(&server);
    assert_eq!(state_of(&listing, &first_kid), "current", "{listing:?}");
    assert_eq!(state_of(&listing, &scheduled), "next", "{listing:?}");
    wait_until_published(&server, &scheduled).await;
    let fresh = server.login("alice").await;
    assert_eq!(kid_of(&fresh.access_token), first_kid, "a next key does not sign yet");

    // An immediate one (after a leak; safe on a single server): new tokens carry the new kid.
    let immediate = rotate(&server, &["--activate-in", "0s"]);
    traffic.wait_for_kid(&immediate).await;
    let published = published_kids(&server).await;
    for kid in [&first_kid, &scheduled, &immediate] {
        assert!(published.contains(kid), "{kid} published in {published:?}");
    }
    let listing = list(&server);
    assert_eq!(state_of(&listing, &first_kid), "retired", "{listing:?}");
    assert_eq!(state_of(&listing, &immediate), "current", "{listing:?}");
    assert_eq!(state_of(&listing, &scheduled), "next", "{listing:?}");
    let me = server.get_bearer("/api/me", &fresh.access_token).await;
    assert_eq!(me.status(), StatusCode::OK, "a token of the retired key still verifies");

    // The refresh MAC secret rotates on its own; rt1 tokens issued before keep working.
    let secret = rotate(&server, &["--refresh-secret", "--activate-in", "0s"]);
    traffic.wait_for_refresh_form("rt2.").await;
    let listing = list(&server);
    assert_eq!(state_of(&listing, &secret), "current", "{listing:?}");
    assert_eq!(state_of(&listing, "root"), "retired", "{listing:?}");
    let refreshed = server.refresh(&fresh.refresh_token).await;
    assert_eq!(refreshed.status(), StatusCode::OK, "an rt1 token from before the rotation refreshes");

    let report = traffic.finish().await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.kids, [first_kid, immediate], "tokens switched to the new key once it was current");
    assert!(report.requests > 10, "{report:?}");
}

#[tokio::test]
async fn keys_rotate_on_a_store_without_a_key_file_is_refused() {
    let output = binary().args(["keys", "rotate"]).env("REAUTH_STORE", "redis://127.0.0.1:1/").output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("REAUTH_SIGNING_KEY"));
}

#[tokio::test]
async fn keys_commands_refuse_a_memory_store() {
    let output = binary().args(["keys", "list"]).env("REAUTH_STORE", "memory://").output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("memory://"));
}

/// The promise with the default settings: a running server publishes a key added by
/// `keys rotate` within 30 s (it rereads the set every `REAUTH_KEY_REFRESH_INTERVAL`, 10 s).
#[tokio::test]
async fn with_default_settings_a_running_server_publishes_a_rotated_key_within_30_seconds() {
    let server = TestServer::start().await;
    // The server has read the set once (start-up, then the refresh task's first tick) before the
    // rotation: from here on only its periodic reread can find the new key.
    let before = published_kids(&server).await;
    let kid = rotate(&server, &[]);
    assert!(!before.contains(&kid));
    for _ in 0..60 {
        if published_kids(&server).await.contains(&kid) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    panic!("{kid} not published within 30 s");
}
