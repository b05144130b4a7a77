//! `reauth-server bench`: a bounded load test over real HTTP on loopback.
//!
//! N sessions log in, then for a fixed time each one refreshes its own token in a loop (every
//! refresh is a real rotation), then calls the protected route in a loop. Prints throughput and
//! p50/p99 latency per phase. Without `--target` it starts a server in-process on each given store
//! in turn, the in-memory store first as the baseline, and ends with each store's throughput as a
//! ratio to the baseline's: on a shared machine only figures of one run compare.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Args;
use reauth_server::config::{Lifetime, Settings};
use reauth_server::server::{open_store, resolve_keys, RunningServer};
use reauth_server::AuthService;
use serde_json::json;

const PASSWORD: &str = "bench password 1";

/// Options of `reauth-server bench`.
#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Stores to benchmark one after another with an in-process server (comma-separated URLs).
    #[arg(long, value_delimiter = ',', default_value = "memory://")]
    store: Vec<String>,
    /// Benchmark an already running server instead (its base URL); `--store` is then ignored.
    #[arg(long)]
    target: Option<String>,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 64)]
    sessions: usize,
    /// Length of each timed phase.
    #[arg(long, default_value = "5s")]
    duration: Lifetime,
}

struct Phase {
    name: &'static str,
    operations: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Phase {
    fn per_sec(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[index] as f64 / 1000.0
    }
}

pub(crate) async fn run(args: BenchArgs) -> Result<(), String> {
    let duration = Duration::from_secs(args.duration.secs().max(1) as u64);
    println!(
        "reauth bench: {} sessions, {}s per phase, {} CPUs",
        args.sessions,
        duration.as_secs(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| store | phase | ops | ops/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    if let Some(target) = &args.target {
        return bench_one(target.trim_end_matches('/'), "target", args.sessions, duration).await.map(drop);
    }
    let mut store_urls = args.store.clone();
    if !store_urls.first().is_some_and(|url| url.starts_with("memory:")) {
        store_urls.retain(|url| !url.starts_with("memory:"));
        store_urls.insert(0, "memory://".to_owned());
    }
    let mut summaries = Vec::new();
    for store_url in &store_urls {
        let (store, sqlite_path) = open_store(store_url).await.map_err(|error| error.to_string())?;
        let backend = store.backend();
        let keys = resolve_keys(None, sqlite_path.as_deref()).map_err(|error| error.to_string())?;
        let cookies = reauth_server::config::CookieSettings { secure: false, domain: None, access_cookie: false };
        let mut settings = Settings { cookies, ..Settings::default() };
        // Every session registers from the one loopback address.
        settings.login_limits.enabled = false;
        let service = AuthService::new(store, keys, settings);
        let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
        let server = RunningServer::start_with(service, bind, None, std::future::pending())
            .await
            .map_err(|error| error.to_string())?;
        let result = bench_one(&format!("http://{}", server.addr), backend, args.sessions, duration).await;
        server.abort();
        summaries.push(result?);
    }
    print_ratios(&summaries);
    Ok(())
}

/// One store's figures for the closing table.
struct Summary {
    label: String,
    refresh_per_sec: f64,
    refresh_p99_ms: f64,
    protected_per_sec: f64,
    /// Resident set of the whole bench process (client and server) after the refresh phase.
    rss_mib: Option<f64>,
}

/// The closing table: throughput of each store as a ratio to the first (the in-memory baseline).
fn print_ratios(summaries: &[Summary]) {
    let Some(baseline) = summaries.first() else { return };
    println!();
    println!("| store | refresh/s | ÷ memory | refresh p99 ms | GET /api/me/s | ÷ memory | RSS MiB |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for summary in summaries {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {} |",
            summary.label,
            summary.refresh_per_sec,
            summary.refresh_per_sec / baseline.refresh_per_sec,
            summary.refresh_p99_ms,
            summary.protected_per_sec,
            summary.protected_per_sec / baseline.protected_per_sec,
            summary.rss_mib.map_or_else(|| "?".to_owned(), |mib| format!("{mib:.0}")),
        );
    }
}

/// `VmRSS` of this process, from `/proc` (Linux only).
fn resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

async fn bench_one(base: &str, label: &str, sessions: usize, duration: Duration) -> Result<Summary, String> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(sessions).build().map_err(|e| e.to_string())?;
    let run_id = format!("{:x}", std::process::id() ^ Instant::now().elapsed().subsec_nanos());
    let names: Vec<String> = (0..sessions).map(|i| format!("bench-{run_id}-{label}-{i}")).collect();
    for name in &names {
        let response = http
            .post(format!("{base}/auth/register"))
            .json(&json!({ "username": name, "password": PASSWORD }))
            .send()
            .await;
        if !response.map(|r| r.status().is_success()).unwrap_or(false) {
            return Err(format!(
                "registering {name} at {base} failed (is registration open, and REAUTH_THROTTLING=false for a bench?)"
            ));
        }
    }

    let login = timed_phase(
        "login",
        names.iter().cloned().map(|name| {
            let (http, url) = (http.clone(), format!("{base}/auth/login"));
            async move {
                let started = Instant::now();
                let mut response;
                loop {
                    response =
                        http.post(&url).json(&json!({ "username": name, "password": PASSWORD })).send().await.ok()?;
                    // The hashing bound answers 503 + Retry-After when saturated: wait as told.
                    if response.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let ok = response.status().is_success();
                let token = refresh_cookie(&response);
                let access = response.json::<serde_json::Value>().await.ok()?["access_token"].as_str()?.to_owned();
                ok.then_some((vec![started.elapsed()], (token?, access)))
            }
        }),
    )
    .await;
    print_phase(label, &login.0);
    let credentials: Vec<(String, String)> = login.1;

    let deadline = Instant::now() + duration;
    let refresh = timed_phase(
        "refresh",
        credentials.iter().cloned().map(|(mut token, _)| {
            let (http, url) = (http.clone(), format!("{base}/auth/refresh"));
            async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let response =
                        http.post(&url).header("cookie", format!("reauth_refresh={token}")).send().await.ok()?;
                    if !response.status().is_success() {
                        return None;
                    }
                    token = refresh_cookie(&response)?;
                    latencies.push(started.elapsed());
                }
                Some((latencies, ()))
            }
        }),
    )
    .await;
    print_phase(label, &refresh.0);
    let rss_mib = resident_mib();

    let deadline = Instant::now() + duration;
    let protected = timed_phase(
        "GET /api/me",
        credentials.iter().cloned().map(|(_, access)| {
            let (http, url) = (http.clone(), format!("{base}/api/me"));
            async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let response = http.get(&url).bearer_auth(&access).send().await.ok()?;
                    if !response.status().is_success() {
                        return None;
                    }
                    latencies.push(started.elapsed());
                }
                Some((latencies, ()))
            }
        }),
    )
    .await;
    print_phase(label, &protected.0);
    Ok(Summary {
        label: label.to_owned(),
        refresh_per_sec: refresh.0.per_sec(),
        refresh_p99_ms: refresh.0.percentile_ms(0.99),
        protected_per_sec: protected.0.per_sec(),
        rss_mib,
    })
}

/// Runs the workers concurrently; each yields its latencies and a value, or `None` on an error.
async fn timed_phase<F, T>(name: &'static str, workers: impl Iterator<Item = F>) -> (Phase, Vec<T>)
where
    F: std::future::Future<Output = Option<(Vec<Duration>, T)>> + Send + 'static,
    T: Send + 'static,
{
    let started = Instant::now();
    let handles: Vec<_> = workers.map(tokio::spawn).collect();
    let mut phase = Phase { name, operations: 0, errors: 0, elapsed: Duration::ZERO, latencies_us: Vec::new() };
    let mut values = Vec::new();
    for handle in handles {
        match handle.await.ok().flatten() {
            Some((latencies, value)) => {
                phase.operations += latencies.len();
                phase.latencies_us.extend(latencies.iter().map(|d| d.as_micros() as u64));
                values.push(value);
            }
            None => phase.errors += 1,
        }
    }
    phase.elapsed = started.elapsed();
    phase.latencies_us.sort_unstable();
    (phase, values)
}

fn print_phase(label: &str, phase: &Phase) {
    println!(
        "| {label} | {} | {} | {:.0} | {:.2} | {:.2} | {} |",
        phase.name,
        phase.operations,
        phase.per_sec(),
        phase.percentile_ms(0.5),
        phase.percentile_ms(0.99),
        phase.errors
    );
}

fn refresh_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|line| {
            line.split(';')
                .next()?
                .split_once('=')
                .filter(|(name, _)| name.ends_with("reauth_refresh"))
                .map(|(_, v)| v.to_owned())
        })
        .filter(|value| !value.is_empty())
}
