//! The store's share of a refresh, measured apart from HTTP, token signing and the bench client:
//! `SESSIONS` tasks, each with a user of its own, rotate their own session as fast as the store answers, for `SECONDS`, on
//! every store named on the command line (`REAUTH_STORE` URLs), the in-memory store first.
//!
//! ```sh
//! cargo run --release -p reauth-server --example rotation_cost -- sqlite://.tmp/rotation-cost.db
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use reauth_server::server::open_store;
use reauth_server::store::{family_id_for, NewFamily, Rotation, TokenStore, User};

const SESSIONS: usize = 64;
const SECONDS: u64 = 3;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let urls: Vec<String> = std::iter::once("memory://".to_owned()).chain(std::env::args().skip(1)).collect();
    println!("| store | rotations/s | ÷ memory | p99 ms | CPU µs/rotation |");
    println!("|---|---:|---:|---:|---:|");
    let mut baseline = None;
    for url in urls {
        let (store, _) = open_store(&url).await.expect("open store");
        let cpu_before = cpu_time();
        let (rate, p99) = rotate_for_a_while(store).await;
        let cpu_us = (cpu_time() - cpu_before).as_secs_f64() * 1e6 / (rate * SECONDS as f64);
        let baseline = *baseline.get_or_insert(rate);
        println!("| {url} | {rate:.0} | {:.2} | {:.2} | {cpu_us:.1} |", rate / baseline, p99.as_secs_f64() * 1000.0);
    }
}

async fn rotate_for_a_while(store: Arc<dyn TokenStore>) -> (f64, Duration) {
    let now = reauth_server::time::unix_now();
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let mut tasks = Vec::new();
    for _ in 0..SESSIONS {
        // A user of its own per session, as in `reauth-server bench`.
        let user = User {
            id: format!("cost{}", random_suffix()),
            username: format!("cost-{}", random_suffix()),
            password_hash: String::new(),
            active: true,
            created_at: now,
        };
        store.create_user(&user).await.expect("user");
        let family = NewFamily {
            id: family_id_for(&user.id),
            user_id: user.id.clone(),
            created_at: now,
            expires_at: now + 86_400,
            token_expires_at: now + 3600,
            user_agent: Some("rotation_cost".into()),
            client_ip: Some("127.0.0.1".into()),
        };
        store.create_family(&family).await.expect("family");
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut generation = 0;
            while Instant::now() < deadline {
                let rotation = Rotation {
                    family_id: family.id.clone(),
                    expected_generation: generation,
                    now,
                    token_expires_at: now + 3600,
                    client_ip: family.client_ip.clone(),
                    user_agent: family.user_agent.clone(),
                };
                let started = Instant::now();
                store.rotate_family(&rotation).await.expect("rotate").expect("rotated");
                latencies.push(started.elapsed());
                generation += 1;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("task"));
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    (latencies.len() as f64 / SECONDS as f64, p99)
}

/// User and system CPU time of this process so far (Linux: /proc counts in USER_HZ, fixed at 100).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after_name = stat.rsplit_once(')').expect("stat").1;
    let ticks: u64 =
        after_name.split_whitespace().skip(11).take(2).map(|field| field.parse::<u64>().expect("ticks")).sum();
    Duration::from_millis(ticks * 10)
}

fn random_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    format!("{:x}", SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos())
}
