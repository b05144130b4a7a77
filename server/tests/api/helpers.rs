use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use reauth_server::config::ServeArgs;
use reauth_server::server::RunningServer;
use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

pub const PASSWORD: &str = "correct horse battery";

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

/// A server on a random loopback port over a SQLite file in its own temporary directory.
pub struct TestServer {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub db_path: PathBuf,
    args: Vec<String>,
    running: Option<RunningServer>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// `extra` are `serve` flags, e.g. `["--reuse-interval", "1s"]`.
    pub async fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("reauth.db");
        let mut args: Vec<String> = ["serve", "--bind", "127.0.0.1:0"].into_iter().map(String::from).collect();
        if !extra.contains(&"--cookie-secure") {
            args.extend(["--cookie-secure".into(), "false".into()]);
        }
        args.extend(["--store".into(), format!("sqlite://{}", db_path.display())]);
        args.extend(extra.iter().map(|arg| arg.to_string()));
        let running = Self::run(&args).await;
        let http = reqwest::Client::builder().user_agent("reauth-tests").build().unwrap();
        Self { addr: running.addr, http, db_path, args, running: Some(running), _dir: dir }
    }

    async fn run(args: &[String]) -> RunningServer {
        let cli = Cli::try_parse_from(args).unwrap();
        RunningServer::start(&cli.serve).await.unwrap()
    }

    /// Stops the server abruptly and starts a new one on the same database and key file.
    pub async fn restart(&mut self) {
        self.running.take().unwrap().abort();
        let running = Self::run(&self.args).await;
        self.addr = running.addr;
        self.running = Some(running);
    }

    /// The service behind the running server (same store and keys), for apps built in a test.
    pub fn service(&self) -> reauth_server::AuthService {
        self.running.as_ref().unwrap().service.clone()
    }

    /// The signing key file the server created next to its database.
    pub fn key_path(&self) -> PathBuf {
        self.db_path.with_file_name("reauth-signing-key.pem")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn register(&self, username: &str) -> Value {
        let response = self.post_json("/auth/register", json!({ "username": username, "password": PASSWORD })).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Response {
        self.http.post(self.url(path)).json(&body).send().await.unwrap()
    }

    pub async fn login(&self, username: &str) -> Session {
        let response = self.post_json("/auth/login", json!({ "username": username, "password": PASSWORD })).await;
        assert_eq!(response.status(), StatusCode::OK, "login of {username}");
        Session::from_response(response).await
    }

    /// A registered and signed-in user.
    pub async fn signed_in(&self, username: &str) -> Session {
        self.register(username).await;
        self.login(username).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.http
            .post(self.url("/auth/refresh"))
            .header("cookie", format!("reauth_refresh={refresh_token}"))
            .send()
            .await
            .unwrap()
    }

    /// `POST /auth/logout` with the refresh cookie.
    pub async fn logout(&self, refresh_token: &str) -> Response {
        self.http
            .post(self.url("/auth/logout"))
            .header("cookie", format!("reauth_refresh={refresh_token}"))
            .send()
            .await
            .unwrap()
    }

    pub async fn get_bearer(&self, path: &str, access_token: &str) -> Response {
        self.http.get(self.url(path)).bearer_auth(access_token).send().await.unwrap()
    }
}

/// What the browser holds after login or refresh.
#[derive(Clone, Debug)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub body: Value,
}

impl Session {
    pub async fn from_response(response: Response) -> Self {
        let refresh_token = cookie(response.headers(), "reauth_refresh").expect("a refresh cookie");
        let body: Value = response.json().await.unwrap();
        Self { access_token: body["access_token"].as_str().unwrap().to_owned(), refresh_token, body }
    }
}

/// The value a `Set-Cookie` header gives cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookie_line(headers, name)?.split(';').next()?.split_once('=').map(|(_, value)| value.to_owned())
}

/// The whole `Set-Cookie` line for cookie `name`.
pub fn set_cookie_line(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|line| line.split('=').next() == Some(name))
        .map(str::to_owned)
}

/// Asserts the standard error body and returns its `reason`.
pub async fn error_reason(response: Response, status: StatusCode, error: &str) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    body["reason"].as_str().unwrap().to_owned()
}

/// Runs the futures at once (each on its own task) and returns their outputs in order.
pub async fn join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}
