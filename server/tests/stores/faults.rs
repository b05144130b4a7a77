//! The shared store goes away under load and comes back: refreshes in the gap answer 503 with
//! `Retry-After` (never 401), every session survives, and the instances reconnect by themselves.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::fleet::{http, login, refresh, register, session_from, unique_name, Instance, SharedKey, Store};
use crate::servers::PrivateStore;

const SESSIONS: usize = 6;
const OUTAGE: Duration = Duration::from_secs(3);
/// The longest the instances may take to serve every session again once the store is back.
const RECOVERY_LIMIT: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Tally {
    refreshed: usize,
    unavailable: usize,
    /// 503s without a `Retry-After`, or with another error code.
    malformed_unavailable: Vec<String>,
    /// Anything else: a 401 would mean a fault logged someone out.
    unexpected: Vec<String>,
    last_refresh: Vec<Option<Instant>>,
}

/// Sessions refreshing in a loop, each against both instances in turn, until told to stop.
struct Load {
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<String>>,
}

impl Load {
    fn start(bases: &[String; 2], sessions: Vec<String>) -> Self {
        let tally = Arc::new(Mutex::new(Tally { last_refresh: vec![None; sessions.len()], ..Tally::default() }));
        let stop = Arc::new(AtomicBool::new(false));
        let http = http();
        let workers = sessions
            .into_iter()
            .enumerate()
            .map(|(index, mut token)| {
                let (tally, stop, http, bases) = (tally.clone(), stop.clone(), http.clone(), bases.clone());
                tokio::spawn(async move {
                    let deadline = Instant::now() + Duration::from_secs(90);
                    let mut turn = index;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        turn += 1;
                        let response = refresh(&http, &bases[turn % 2], &token).await.expect("the instances stay up");
                        let status = response.status();
                        let retry_after = response.headers().get(reqwest::header::RETRY_AFTER).is_some();
                        if status == StatusCode::OK {
                            token = session_from(response).await.expect("a refreshed session").refresh_token;
                            let mut tally = tally.lock().unwrap();
                            tally.refreshed += 1;
                            tally.last_refresh[index] = Some(Instant::now());
                        } else {
                            let body: Value = response.json().await.unwrap_or_default();
                            let mut tally = tally.lock().unwrap();
                            if status == StatusCode::SERVICE_UNAVAILABLE {
                                tally.unavailable += 1;
                                if !retry_after || body["error"] != "temporarily_unavailable" {
                                    tally.malformed_unavailable.push(format!("{body} (Retry-After: {retry_after})"));
                                }
                            } else {
                                tally.unexpected.push(format!("{status}: {body}"));
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    token
                })
            })
            .collect();
        Self { tally, stop, workers }
    }

    /// Waits until every session has refreshed after `since`; false if that took too long.
    async fn all_refreshed_since(&self, since: Instant, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.tally.lock().unwrap().last_refresh.iter().all(|at| at.is_some_and(|at| at > since)) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Stops the workers and returns each session's current refresh token.
    async fn finish(self) -> (Tally, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut tokens = Vec::new();
        for worker in self.workers {
            tokens.push(worker.await.unwrap());
        }
        let tally = std::mem::take(&mut *self.tally.lock().unwrap());
        (tally, tokens)
    }
}

/// How the store is taken away.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The server process stops and is started again on the same data.
    Restart,
    /// The server process hangs (SIGSTOP) and then resumes (SIGCONT): calls time out rather than fail.
    Freeze,
}

async fn store_outage_under_load(kind: Store, fault: Fault) {
    let Some(mut store) = PrivateStore::start(kind).await else { return };
    let key = SharedKey::create();
    let mut a = Instance::start(&store.url(), &key.path, &[]).await;
    let b = Instance::start(&store.url(), &key.path, &[]).await;
    let http = http();
    let mut tokens = Vec::new();
    let mut access_on_a = String::new();
    for index in 0..SESSIONS {
        let name = unique_name(&format!("outage{index}"));
        register(&http, &a, &name).await;
        let session = login(&http, if index % 2 == 0 { &a } else { &b }, &name).await;
        if index == 0 {
            access_on_a = session.access_token;
        }
        tokens.push(session.refresh_token);
    }

    let load = Load::start(&[a.base.clone(), b.base.clone()], tokens);
    tokio::time::sleep(Duration::from_secs(1)).await;
    match fault {
        Fault::Restart => store.stop(),
        Fault::Freeze => store.freeze(),
    }
    // Protected routes need no store round trip: the token, the revocation list and the user seen
    // at login are all in the instance's memory.
    let me = http.get(a.url("/api/me")).bearer_auth(&access_on_a).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK, "{fault:?}: GET /api/me during the outage");
    tokio::time::sleep(OUTAGE).await;
    match fault {
        Fault::Restart => store.resume().await,
        Fault::Freeze => store.thaw(),
    }
    let back = Instant::now();
    let recovered = load.all_refreshed_since(back, RECOVERY_LIMIT).await;
    let (tally, tokens) = load.finish().await;

    assert!(tally.unexpected.is_empty(), "{fault:?}: answers other than 200 and 503: {:?}", tally.unexpected);
    assert!(
        tally.malformed_unavailable.is_empty(),
        "{fault:?}: 503s without Retry-After: {:?}",
        tally.malformed_unavailable
    );
    assert!(tally.unavailable > 0, "{fault:?}: no refresh fell into the gap ({} refreshed)", tally.refreshed);
    assert!(
        recovered,
        "{fault:?}: the instances did not serve every session within {RECOVERY_LIMIT:?} of the store's return"
    );

    // An instance killed and started again serves every session as before.
    a.restart().await;
    for token in &tokens {
        let response = refresh(&http, &a.base, token).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{fault:?}: a session was lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_under_load_gives_503_then_recovers() {
    store_outage_under_load(Store::Redis, Fault::Restart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_freeze_under_load_gives_503_then_recovers() {
    store_outage_under_load(Store::Redis, Fault::Freeze).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load_gives_503_then_recovers() {
    store_outage_under_load(Store::Postgres, Fault::Restart).await;
}
