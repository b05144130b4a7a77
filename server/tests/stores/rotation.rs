//! Key rotation on a fleet: two instances on one shared store, `reauth-server keys rotate` run
//! beside them with the same settings, as docs/DEPLOYMENT.md describes.

use reqwest::StatusCode;
use serde_json::Value;

use crate::fleet::{binary, http, login, register, unique_name, Instance, SharedKey, Store};
use crate::traffic::{kid_of, Traffic};

/// `reauth-server keys ARGS` with the instances' settings; its standard output.
fn keys_command(store_url: &str, key: &SharedKey, args: &[&str]) -> String {
    let output = binary()
        .arg("keys")
        .args(args)
        .env("REAUTH_STORE", store_url)
        .env("REAUTH_SIGNING_KEY", &key.path)
        .output()
        .unwrap();
    assert!(output.status.success(), "keys {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

async fn published_kids(instance: &Instance) -> Vec<String> {
    let jwks: Value = http().get(instance.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|key| key["kid"].as_str().unwrap().to_owned()).collect()
}

async fn a_rotation_across_two_instances_signs_no_one_out(store: Store) {
    let Some(url) = store.shared_url() else { return };
    let key = SharedKey::create();
    // Instances reread the key set every second; the new key is published 5 s before it signs, so
    // both know it before either signs with it.
    let extra = ["--key-refresh-interval", "1s"];
    let (a, b) = (Instance::start(&url, &key.path, &extra).await, Instance::start(&url, &key.path, &extra).await);
    let http = http();
    let name = unique_name("rotating");
    register(&http, &a, &name).await;
    let session = login(&http, &a, &name).await;
    let first_kid = kid_of(&session.access_token);
    let traffic = Traffic::start(vec![a.base.clone(), b.base.clone()], session.refresh_token, session.access_token);

    let new_kid = keys_command(&url, &key, &["rotate", "--activate-in", "5s"]).trim().to_owned();
    assert_ne!(new_kid, first_kid);
    let listing = keys_command(&url, &key, &["list"]);
    assert!(listing.lines().any(|line| line.contains(&new_kid)), "{listing}");
    traffic.wait_for_kid(&new_kid).await;
    for instance in [&a, &b] {
        let published = published_kids(instance).await;
        assert!(published.contains(&first_kid) && published.contains(&new_kid), "{published:?}");
    }

    let secret = keys_command(&url, &key, &["rotate", "--refresh-secret", "--activate-in", "5s"]).trim().to_owned();
    traffic.wait_for_refresh_form("rt2.").await;
    let listing = keys_command(&url, &key, &["list"]);
    assert!(listing.lines().any(|line| line.contains(&secret) && line.contains("current")), "{listing}");

    let report = traffic.finish().await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.kids, [first_kid, new_kid], "one switch, on both instances");
    // A fresh login on either instance signs with the new key.
    for instance in [&a, &b] {
        let fresh = login(&http, instance, &name).await;
        assert_eq!(
            http.get(instance.url("/api/me")).bearer_auth(&fresh.access_token).send().await.unwrap().status(),
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn redis_a_rotation_across_two_instances_signs_no_one_out() {
    a_rotation_across_two_instances_signs_no_one_out(Store::Redis).await;
}

#[tokio::test]
async fn postgres_a_rotation_across_two_instances_signs_no_one_out() {
    a_rotation_across_two_instances_signs_no_one_out(Store::Postgres).await;
}
