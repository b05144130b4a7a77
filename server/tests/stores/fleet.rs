//! `reauth-server serve` processes sharing one store and one signing key, and a browser-like client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

pub const PASSWORD: &str = "correct horse battery";

/// Which shared store a case runs on.
#[derive(Clone, Copy, Debug)]
pub enum Store {
    Redis,
    Postgres,
}

impl Store {
    fn variable(self) -> &'static str {
        match self {
            Self::Redis => "REAUTH_TEST_REDIS_URL",
            Self::Postgres => "REAUTH_TEST_POSTGRES_URL",
        }
    }

    /// The shared server's URL, or `None` after a loud notice when the suite runs without one.
    pub fn shared_url(self) -> Option<String> {
        required_env(self.variable())
    }
}

/// An environment variable set by `scripts/test-stores.sh`; unset, a loud `SKIPPED` and `None`.
pub fn required_env(variable: &str) -> Option<String> {
    let value = std::env::var(variable).ok().filter(|value| !value.is_empty());
    if value.is_none() {
        // Straight to stderr: the harness captures `eprintln!` of passing tests.
        let notice =
            format!("\nSKIPPED: {variable} not set: run scripts/test-stores.sh to test against a real server\n");
        let _ = std::io::Write::write_all(&mut std::io::stderr(), notice.as_bytes());
    }
    value
}

/// A key file made the way docs/DEPLOYMENT.md says, in a directory that lives as long as the value.
pub struct SharedKey {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SharedKey {
    pub fn create() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing-key.pem");
        let output = binary().arg("keygen").arg(&path).output().unwrap();
        assert!(output.status.success(), "keygen: {}", String::from_utf8_lossy(&output.stderr));
        Self { path, _dir: dir }
    }
}

pub fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reauth-server"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("REAUTH_") || name.starts_with("JWT_")) {
        command.env_remove(name);
    }
    command
}

/// One `reauth-server serve` process; killed when dropped.
pub struct Instance {
    pub base: String,
    store_url: String,
    key: PathBuf,
    extra: Vec<String>,
    child: Child,
}

impl Instance {
    /// Starts an instance configured through the environment, as an operator would.
    pub async fn start(store_url: &str, key: &Path, extra: &[&str]) -> Self {
        let extra: Vec<String> = extra.iter().map(|arg| arg.to_string()).collect();
        let (child, base) = spawn(store_url, key, &extra).await;
        Self { base, store_url: store_url.to_owned(), key: key.to_owned(), extra, child }
    }

    /// Kills the process outright (no graceful shutdown) and starts a new one with the same
    /// configuration, on a new port.
    pub async fn restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let (child, base) = spawn(&self.store_url, &self.key, &self.extra).await;
        self.child = child;
        self.base = base;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn spawn(store_url: &str, key: &Path, extra: &[String]) -> (Child, String) {
    let mut child = binary()
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(extra)
        .env("REAUTH_STORE", store_url)
        .env("REAUTH_SIGNING_KEY", key)
        .env("REAUTH_COOKIE_SECURE", "false")
        .stdout(Stdio::piped())
        // Quiet: the fault tests make the instances log every 503; assertions say what went wrong.
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first_line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(30), first_line)
        .await
        .expect("the server printed its address")
        .unwrap()
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("reauth-server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, base)
}

/// A browser's view of one session: the cookies it holds.
#[derive(Clone, Debug)]
pub struct Session {
    pub refresh_token: String,
    pub access_token: String,
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

pub async fn register(http: &reqwest::Client, instance: &Instance, username: &str) {
    let response = http
        .post(instance.url("/auth/register"))
        .json(&json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "register {username}");
}

pub async fn login(http: &reqwest::Client, instance: &Instance, username: &str) -> Session {
    let response = http
        .post(instance.url("/auth/login"))
        .json(&json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "login {username}");
    session_from(response).await.unwrap()
}

/// A refresh as the browser sends it, to the instance at `base`.
pub async fn refresh(http: &reqwest::Client, base: &str, refresh_token: &str) -> reqwest::Result<Response> {
    http.post(format!("{base}/auth/refresh")).header("cookie", format!("reauth_refresh={refresh_token}")).send().await
}

/// The session a successful login or refresh hands out.
pub async fn session_from(response: Response) -> Option<Session> {
    let refresh_token = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|line| line.split(';').next()?.strip_prefix("reauth_refresh=").map(str::to_owned))?;
    let body: Value = response.json().await.ok()?;
    Some(Session { refresh_token, access_token: body["access_token"].as_str()?.to_owned() })
}

/// The `reason` of a 401 `invalid_grant` answer.
pub async fn dead_reason(response: Response) -> String {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    body["reason"].as_str().unwrap().to_owned()
}
