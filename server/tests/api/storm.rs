//! A login storm against the real binary: bounded hashing keeps memory and `/healthz` in hand.

use std::process::Child;

use reqwest::StatusCode;
use serde_json::json;

use crate::cli::{binary, spawn_listening};
use crate::helpers::{join_all, PASSWORD};

/// `reauth-server serve` as a child process on a free loopback port, killed (SIGKILL) on drop.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) base: String,
    _dir: Option<tempfile::TempDir>,
}

impl ServerProcess {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Self::on_file(&dir.path().join("reauth.db"), extra);
        server._dir = Some(dir);
        server
    }

    /// A server on the SQLite file `db` (and the signing key it keeps beside it).
    pub(crate) fn on_file(db: &std::path::Path, extra: &[&str]) -> Self {
        let mut command = binary();
        let store = format!("sqlite://{}", db.display());
        let (child, base) = spawn_listening(
            command
                .args(["serve", "--bind", "127.0.0.1:0", "--cookie-secure", "false", "--store", &store])
                .args(extra)
                .env("RUST_LOG", "error"),
        );
        Self { child, base, _dir: None }
    }

    /// The process's peak resident set (`VmHWM`), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|line| line.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn two_hundred_parallel_logins_stay_under_300_mib_and_healthz_answers_throughout() {
    let server = ServerProcess::start(&["--throttling", "false"]);
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);
    let registered =
        http.post(url("/auth/register")).json(&json!({ "username": "alice", "password": PASSWORD })).send().await;
    assert_eq!(registered.unwrap().status(), StatusCode::CREATED);

    let storm = join_all((0..200).map(|i| {
        let username = if i % 2 == 0 { "alice".to_owned() } else { format!("nobody{i}") };
        http.post(url("/auth/login")).json(&json!({ "username": username, "password": "wrong guess" })).send()
    }));
    let health = async {
        let mut answers = Vec::new();
        // At least one probe, then more while the storm lasts.
        for _ in 0..20 {
            answers.push(http.get(url("/healthz")).send().await.unwrap().status());
        }
        answers
    };
    let (responses, health) = tokio::join!(storm, health);

    let mut by_status = std::collections::BTreeMap::new();
    for response in responses {
        let response = response.unwrap();
        let status = response.status();
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS, StatusCode::SERVICE_UNAVAILABLE]
                .contains(&status),
            "{status}"
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(response.headers().contains_key("retry-after"));
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["reason"], "busy", "{body}");
        }
        *by_status.entry(status.as_u16()).or_insert(0) += 1;
    }
    assert!(health.iter().all(|status| *status == StatusCode::OK), "{health:?}");
    let peak_mib = server.peak_rss_kib() / 1024;
    println!("login storm: answers {by_status:?}, server peak RSS {peak_mib} MiB");
    assert!(peak_mib < 300, "peak RSS {peak_mib} MiB");
    assert!(by_status.contains_key(&401), "some logins were checked: {by_status:?}");
}
