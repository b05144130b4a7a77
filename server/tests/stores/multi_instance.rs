//! Two instances behind an imaginary load balancer: whatever one does, the other sees.

use reqwest::StatusCode;
use serde_json::Value;

use crate::fleet::{
    binary, dead_reason, http, login, refresh, register, session_from, unique_name, Instance, SharedKey, Store,
};

/// Two instances on the shared server of `store`, reading one key file (docs/DEPLOYMENT.md).
async fn pair(store: Store, extra: &[&str]) -> Option<(SharedKey, Instance, Instance)> {
    let url = store.shared_url()?;
    let key = SharedKey::create();
    let first = Instance::start(&url, &key.path, extra).await;
    let second = Instance::start(&url, &key.path, extra).await;
    Some((key, first, second))
}

/// `GET /auth/sessions` on `instance`: the caller's live sessions.
async fn live_sessions(http: &reqwest::Client, instance: &Instance, access_token: &str) -> Vec<Value> {
    http.get(instance.url("/auth/sessions")).bearer_auth(access_token).send().await.unwrap().json().await.unwrap()
}

async fn a_session_created_on_one_refreshes_on_the_other(store: Store) {
    let Some((_key, a, b)) = pair(store, &[]).await else { return };
    let http = http();
    let name = unique_name("roaming");
    register(&http, &a, &name).await;
    let on_a = login(&http, &a, &name).await;

    let me = http.get(b.url("/api/me")).bearer_auth(&on_a.access_token).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK, "B accepts A's access token");
    let jwks = |instance: &Instance| http.get(instance.url("/.well-known/jwks.json")).send();
    let (jwks_a, jwks_b): (Value, Value) =
        (jwks(&a).await.unwrap().json().await.unwrap(), jwks(&b).await.unwrap().json().await.unwrap());
    assert_eq!(jwks_a, jwks_b, "one key set for services that verify access tokens");

    let on_b = session_from(refresh(&http, &b.base, &on_a.refresh_token).await.unwrap())
        .await
        .expect("B refreshes A's session");
    let back_on_a = session_from(refresh(&http, &a.base, &on_b.refresh_token).await.unwrap())
        .await
        .expect("and A refreshes B's successor");
    let sessions = live_sessions(&http, &a, &back_on_a.access_token).await;
    assert_eq!(sessions.len(), 1, "one session throughout: {sessions:?}");
}

async fn simultaneous_refreshes_over_both_instances_all_succeed(store: Store) {
    let Some((_key, a, b)) = pair(store, &[]).await else { return };
    let http = http();
    let name = unique_name("racing");
    register(&http, &a, &name).await;
    let session = login(&http, &a, &name).await;

    let bases = [a.base.clone(), b.base.clone()];
    let refreshes: Vec<_> = (0..20)
        .map(|i| {
            let (http, base, token) = (http.clone(), bases[i % 2].clone(), session.refresh_token.clone());
            tokio::spawn(async move { refresh(&http, &base, &token).await })
        })
        .collect();
    let mut successors = Vec::new();
    for response in refreshes {
        let response = response.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::OK, "every simultaneous refresh succeeds");
        successors.push(session_from(response).await.unwrap());
    }
    let tokens: std::collections::BTreeSet<&str> = successors.iter().map(|s| s.refresh_token.as_str()).collect();
    assert_eq!(tokens.len(), 1, "all twenty got the same successor: no fork");
    let sessions = live_sessions(&http, &b, &successors[0].access_token).await;
    assert_eq!(sessions.len(), 1, "one family left: {sessions:?}");
    let next = refresh(&http, &b.base, &successors[0].refresh_token).await.unwrap();
    assert_eq!(next.status(), StatusCode::OK, "and it keeps working");
}

async fn reuse_detected_on_either_instance_revokes_everywhere(store: Store) {
    let Some((_key, a, b)) = pair(store, &["--reuse-interval", "1s"]).await else { return };
    let http = http();
    let name = unique_name("stolen");
    register(&http, &a, &name).await;
    for (rotates, detects) in [(&a, &b), (&b, &a)] {
        let stolen = login(&http, rotates, &name).await;
        let first = session_from(refresh(&http, &rotates.base, &stolen.refresh_token).await.unwrap()).await.unwrap();
        // Past the reuse interval (whole seconds, so more than one full second), the successor
        // unused: a lost answer, handed out again on the other instance.
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        let again = session_from(refresh(&http, &detects.base, &stolen.refresh_token).await.unwrap()).await.unwrap();
        assert_eq!(again.refresh_token, first.refresh_token);
        // Once the successor is used, the old token is theft, whichever instance sees it.
        let current = session_from(refresh(&http, &rotates.base, &first.refresh_token).await.unwrap()).await.unwrap();
        assert_eq!(dead_reason(refresh(&http, &detects.base, &stolen.refresh_token).await.unwrap()).await, "reused");
        // The access token of the revoked session dies on the other instance too, within a poll.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let me = http.get(rotates.url("/api/me")).bearer_auth(&current.access_token).send().await.unwrap();
            if me.status() == StatusCode::UNAUTHORIZED {
                assert_eq!(me.json::<Value>().await.unwrap()["reason"], "revoked");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "still accepted on the other instance");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        for instance in [&a, &b] {
            assert_eq!(
                dead_reason(refresh(&http, &instance.base, &current.refresh_token).await.unwrap()).await,
                "reused",
                "revoked everywhere"
            );
        }
    }
}

#[test]
fn a_shared_store_without_a_shared_key_refuses_to_start() {
    for store in ["redis://127.0.0.1:1/", "postgres://reauth@127.0.0.1:1/reauth"] {
        let output = binary().args(["serve", "--bind", "127.0.0.1:0", "--store", store]).output().unwrap();
        assert!(!output.status.success(), "{store} started without REAUTH_SIGNING_KEY");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("REAUTH_SIGNING_KEY") && stderr.contains("keygen"), "{stderr}");
    }
}

macro_rules! on_each_store {
    ($($case:ident),*) => {
        mod redis {
            $(#[tokio::test] async fn $case() { super::$case(crate::fleet::Store::Redis).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $case() { super::$case(crate::fleet::Store::Postgres).await })*
        }
    };
}

on_each_store!(
    a_session_created_on_one_refreshes_on_the_other,
    simultaneous_refreshes_over_both_instances_all_succeed,
    reuse_detected_on_either_instance_revokes_everywhere
);
