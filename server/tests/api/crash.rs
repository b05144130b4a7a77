//! The SQLite server killed with SIGKILL while sessions refresh, then restarted on the same file:
//! what a client saw acknowledged is still there.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{cookie, PASSWORD};
use crate::storm::ServerProcess;

const USERS: usize = 4;
const SESSIONS_PER_USER: usize = 4;
/// Refreshes per session at most: the user's audit view (its last 100 events) keeps all of them.
const REFRESHES_PER_SESSION: usize = 20;
/// Acknowledged refreshes in all before the kill: the loops are still running then.
const KILL_AFTER: usize = 128;

/// What a client last saw acknowledged for one session.
#[derive(Clone)]
struct Seen {
    refresh_token: String,
    access_token: String,
    acknowledged: usize,
}

impl Seen {
    /// From a 200 of login or refresh, read whole; `None` if the answer broke off.
    async fn from_response(response: reqwest::Response, acknowledged: usize) -> Option<Self> {
        let refresh_token = cookie(response.headers(), "reauth_refresh")?;
        let body: Value = response.json().await.ok()?;
        Some(Self { refresh_token, access_token: body["access_token"].as_str()?.to_owned(), acknowledged })
    }

    fn session_id(&self) -> String {
        use base64::Engine as _;
        let payload = self.access_token.split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["sid"].as_str().unwrap().to_owned()
    }
}

async fn refresh(http: &reqwest::Client, base: &str, refresh_token: &str) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{base}/auth/refresh")).header("cookie", format!("reauth_refresh={refresh_token}")).send().await
}

/// Refreshes in a loop until the server is gone or the session has refreshed enough; returns the
/// last acknowledged state and the unexpected answers.
async fn refresh_until_killed(
    http: reqwest::Client,
    base: String,
    mut seen: Seen,
    acknowledged_in_all: Arc<AtomicUsize>,
    enough: Arc<tokio::sync::Notify>,
) -> (Seen, Vec<StatusCode>) {
    let mut unexpected = Vec::new();
    // Whatever stops a loop before its count wakes the test: after the kill that changes nothing,
    // before it (a failed refresh, a server that died by itself) the test reports it rather than
    // wait for a total this loop will no longer add to.
    while seen.acknowledged < REFRESHES_PER_SESSION {
        let Ok(response) = refresh(&http, &base, &seen.refresh_token).await else {
            enough.notify_one();
            break;
        };
        if response.status() != StatusCode::OK {
            unexpected.push(response.status());
            enough.notify_one();
            break;
        }
        // An answer cut off by the kill was not acknowledged: the client keeps its last token.
        let Some(next) = Seen::from_response(response, seen.acknowledged + 1).await else {
            enough.notify_one();
            break;
        };
        seen = next;
        if acknowledged_in_all.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
            enough.notify_one();
        }
    }
    (seen, unexpected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_refresh_load_loses_no_acknowledged_rotation_and_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("reauth.db");
    let server = ServerProcess::on_file(&db, &["--throttling", "false"]);
    let http = reqwest::Client::new();

    let mut sessions = Vec::new();
    for user in 0..USERS {
        let username = format!("crash{user}");
        let credentials = json!({ "username": username, "password": PASSWORD });
        let registered = http.post(format!("{}/auth/register", server.base)).json(&credentials).send().await.unwrap();
        assert_eq!(registered.status(), StatusCode::CREATED);
        for _ in 0..SESSIONS_PER_USER {
            let login = http.post(format!("{}/auth/login", server.base)).json(&credentials).send().await.unwrap();
            assert_eq!(login.status(), StatusCode::OK);
            sessions.push(Seen::from_response(login, 0).await.unwrap());
        }
    }

    let acknowledged_in_all = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(tokio::sync::Notify::new());
    let loops: Vec<_> = sessions
        .into_iter()
        .map(|seen| {
            tokio::spawn(refresh_until_killed(
                http.clone(),
                server.base.clone(),
                seen,
                acknowledged_in_all.clone(),
                enough.clone(),
            ))
        })
        .collect();
    enough.notified().await;
    drop(server); // SIGKILL, with refreshes in flight.
    let mut sessions = Vec::new();
    for running in loops {
        let (seen, unexpected) = running.await.unwrap();
        assert!(unexpected.is_empty(), "answers other than 200 before the kill: {unexpected:?}");
        sessions.push(seen);
    }
    let acknowledged = sessions.iter().map(|seen| seen.acknowledged).sum::<usize>();
    assert!(acknowledged >= KILL_AFTER, "{acknowledged}");
    assert!(
        sessions.iter().any(|seen| seen.acknowledged < REFRESHES_PER_SESSION),
        "the kill came while sessions were still refreshing"
    );

    let restarted = ServerProcess::on_file(&db, &["--throttling", "false"]);
    let mut committed_unanswered = 0;
    for seen in &sessions {
        let session_id = seen.session_id();
        // Each acknowledged rotation's event is there; at most one more, committed but unanswered.
        let audit =
            http.get(format!("{}/auth/audit", restarted.base)).bearer_auth(&seen.access_token).send().await.unwrap();
        assert_eq!(audit.status(), StatusCode::OK);
        let events: Vec<Value> = audit.json().await.unwrap();
        let refreshes = events
            .iter()
            .filter(|event| event["type"] == "refresh" && event["session_id"] == session_id.as_str())
            .count();
        committed_unanswered += refreshes.saturating_sub(seen.acknowledged);
        assert!(
            (seen.acknowledged..=seen.acknowledged + 1).contains(&refreshes),
            "{session_id}: {} acknowledged, {refreshes} refresh events",
            seen.acknowledged
        );

        // The last acknowledged token still refreshes: it is current, or its committed but
        // unanswered successor is handed back. Then the session goes on.
        let response = refresh(&http, &restarted.base, &seen.refresh_token).await.unwrap();
        let next = cookie(response.headers(), "reauth_refresh");
        let (status, body) = (response.status(), response.text().await.unwrap());
        assert_eq!(status, StatusCode::OK, "{session_id}: {body}");
        let again = refresh(&http, &restarted.base, &next.unwrap()).await.unwrap();
        assert_eq!(again.status(), StatusCode::OK, "{session_id} after the restart");
    }
    println!("kill -9: {acknowledged} refreshes acknowledged, {committed_unanswered} committed but unanswered");
}
