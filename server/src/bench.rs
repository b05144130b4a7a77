//! `reauth-server bench`: a bounded load test over real HTTP on loopback.
//!
//! N sessions log in, then for a fixed time each one refreshes its own token in a loop (every
//! refresh is a real rotation), then calls the protected route in a loop. Prints throughput and
//! p50/p99 latency per phase. Without `--target` it starts `reauth-server serve` on each given store
//! in turn, the in-memory store first as the baseline, and ends with each store's throughput as a
//! ratio to the baseline's, the server's CPU time per refresh and its memory: on a shared machine
//! only figures of one run compare.

use std::time::{Duration, Instant};

use clap::Args;
use reauth_server::config::Lifetime;
use serde_json::json;

const PASSWORD: &str = "bench password 1";

/// Options of `reauth-server bench`.
#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Stores to benchmark one after another, each with a server process of its own
    /// (comma-separated URLs); the in-memory store always runs first, as the baseline.
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
        return bench_one(target.trim_end_matches('/'), "target", args.sessions, duration, None).await.map(drop);
    }
    let mut store_urls = args.store.clone();
    if !store_urls.first().is_some_and(|url| url.starts_with("memory:")) {
        store_urls.retain(|url| !url.starts_with("memory:"));
        store_urls.insert(0, "memory://".to_owned());
    }
    // A key shared by the servers of this run (a shared store needs one); removed at the end.
    let key_path = std::env::temp_dir().join(format!("reauth-bench-{}.pem", std::process::id()));
    reauth_server::Keys::load_or_create(&key_path).map_err(|error| error.to_string())?;
    let mut summaries = Vec::new();
    for store_url in &store_urls {
        let server = ServerProcess::start(store_url, &key_path)?;
        let label = store_url.split(':').next().unwrap_or(store_url).replace("postgresql", "postgres");
        let result = bench_one(&server.base, &label, args.sessions, duration, Some(&server)).await;
        summaries.push(result?);
    }
    let _ = std::fs::remove_file(&key_path);
    print_ratios(&summaries);
    Ok(())
}

/// `reauth-server serve` on one store, as a process of its own (as in production, and so that its
/// memory is measured apart from the load generator's), on a free loopback port; killed on drop.
struct ServerProcess {
    child: std::process::Child,
    base: String,
}

impl ServerProcess {
    fn start(store_url: &str, key_path: &std::path::Path) -> Result<Self, String> {
        use std::io::BufRead as _;
        let exe = std::env::current_exe().map_err(|error| error.to_string())?;
        let mut command = std::process::Command::new(exe);
        // A clean configuration, but for the SQLite durability setting, which a bench compares.
        let configured = |name: &str| name.starts_with("REAUTH_") && name != "REAUTH_SQLITE_SYNCHRONOUS";
        for (name, _) in std::env::vars().filter(|(name, _)| configured(name)) {
            command.env_remove(name);
        }
        let mut child = command
            .arg("serve")
            .env("REAUTH_STORE", store_url)
            .env("REAUTH_BIND", "127.0.0.1:0")
            .env("REAUTH_SIGNING_KEY", key_path)
            .env("REAUTH_COOKIE_SECURE", "false")
            // Every session registers and logs in from the one loopback address.
            .env("REAUTH_THROTTLING", "false")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|error| format!("starting reauth-server serve: {error}"))?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        }
        // Dropped (killed) on the error path too.
        let mut server = Self { child, base: String::new() };
        match line.trim().strip_prefix("reauth-server listening on ") {
            Some(base) => {
                server.base = base.to_owned();
                Ok(server)
            }
            None => Err(format!("reauth-server serve on {store_url} did not start (its stdout: {line:?})")),
        }
    }

    /// `VmRSS` and `VmHWM` (peak) of the server process, in MiB, from `/proc` (Linux only).
    fn memory_mib(&self) -> Option<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let field = |name: &str| -> Option<f64> {
            let line = status.lines().find(|line| line.starts_with(name))?;
            Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// CPU time the server process has used so far, user and system, from `/proc` (Linux only):
    /// unlike throughput, the cost of a request does not swing with what else the machine runs.
    fn cpu_time(&self) -> Option<Duration> {
        // /proc counts in USER_HZ, which Linux fixes at 100 for user space.
        const TICKS_PER_SEC: u64 = 100;
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields 14 and 15; the command name (field 2) can hold spaces, so count after it.
        let mut after_name = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
        let mut ticks = || after_name.next()?.parse::<u64>().ok();
        let (user, system) = (ticks()?, ticks()?);
        Some(Duration::from_millis((user + system) * 1000 / TICKS_PER_SEC))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One store's figures for the closing table.
struct Summary {
    label: String,
    refresh_per_sec: f64,
    refresh_p99_ms: f64,
    protected_per_sec: f64,
    /// The server's resident set after the refresh phase, and its peak over the run (logins
    /// included), in MiB.
    memory_mib: Option<(f64, f64)>,
    /// The server process's CPU time per refresh, in µs (not the CPU of a store's own server).
    refresh_cpu_us: Option<f64>,
}

/// The closing table: throughput of each store as a ratio to the first (the in-memory baseline).
fn print_ratios(summaries: &[Summary]) {
    let Some(baseline) = summaries.first() else { return };
    println!();
    println!(
        "| store | refresh/s | ÷ memory | refresh p99 ms | server CPU µs/refresh | GET /api/me/s | ÷ memory | server RSS MiB | peak MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let unknown = || "?".to_owned();
    for summary in summaries {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {} | {:.0} | {:.2} | {} | {} |",
            summary.label,
            summary.refresh_per_sec,
            summary.refresh_per_sec / baseline.refresh_per_sec,
            summary.refresh_p99_ms,
            summary.refresh_cpu_us.map_or_else(unknown, |us| format!("{us:.0}")),
            summary.protected_per_sec,
            summary.protected_per_sec / baseline.protected_per_sec,
            summary.memory_mib.map_or_else(unknown, |(rss, _)| format!("{rss:.0}")),
            summary.memory_mib.map_or_else(unknown, |(_, peak)| format!("{peak:.0}")),
        );
    }
}

async fn bench_one(
    base: &str,
    label: &str,
    sessions: usize,
    duration: Duration,
    server: Option<&ServerProcess>,
) -> Result<Summary, String> {
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

    let cpu_before = server.and_then(ServerProcess::cpu_time);
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
    let memory_mib = server.and_then(ServerProcess::memory_mib);
    let refresh_cpu_us = cpu_before
        .zip(server.and_then(ServerProcess::cpu_time))
        .map(|(before, after)| (after.saturating_sub(before)).as_secs_f64() * 1e6 / refresh.0.operations.max(1) as f64);

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
        memory_mib,
        refresh_cpu_us,
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
