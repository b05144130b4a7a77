//! The `reauth-server` binary: `serve` and the `user` commands, as an operator runs them.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use reqwest::StatusCode;

use crate::helpers::{error_reason, TestServer, PASSWORD};

/// Starts `command` (a `serve` on port 0), its standard error discarded, and reads the address it
/// prints first.
pub fn spawn_listening(command: &mut Command) -> (std::process::Child, String) {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("reauth-server listening on ").unwrap_or_else(|| panic!("{line}")).to_owned();
    (child, url)
}

pub fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reauth-server"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("REAUTH_") || name.starts_with("JWT_")) {
        command.env_remove(name);
    }
    command
}

pub fn user_command(server: &TestServer, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = binary()
        .arg("user")
        .args(args)
        .args(["--store", &format!("sqlite://{}", server.db_path.display())])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn user_add_reads_the_password_from_stdin_and_disable_ends_sessions() {
    let server = TestServer::start().await;
    let added = user_command(&server, &["add", "Carol"], &format!("{PASSWORD}\n"));
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let session = server.login("carol").await;

    let disabled = user_command(&server, &["disable", "carol"], "");
    assert!(disabled.status.success(), "{}", String::from_utf8_lossy(&disabled.stderr));
    assert_eq!(
        error_reason(server.refresh(&session.refresh_token).await, StatusCode::UNAUTHORIZED, "invalid_grant").await,
        "inactive"
    );
    let login = server.post_json("/auth/login", serde_json::json!({ "username": "carol", "password": PASSWORD })).await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);

    assert!(user_command(&server, &["enable", "carol"], "").status.success());
    server.login("carol").await;
}

#[tokio::test]
async fn user_add_refuses_a_weak_password_and_a_missing_user_is_an_error() {
    let server = TestServer::start().await;
    let weak = user_command(&server, &["add", "dave"], "123\n");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 8"));
    let missing = user_command(&server, &["disable", "nobody"], "");
    assert!(!missing.status.success());
}

#[test]
fn serve_help_documents_every_environment_variable() {
    let help = binary().args(["serve", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for variable in [
        "REAUTH_BIND",
        "REAUTH_STORE",
        "REAUTH_SIGNING_KEY",
        "JWT_ACCESS_EXPIRES_IN",
        "JWT_REFRESH_EXPIRES_IN",
        "REAUTH_SESSION_MAX_AGE",
        "REAUTH_REUSE_INTERVAL",
        "REAUTH_COOKIE_SECURE",
        "REAUTH_ALLOWED_ORIGINS",
        "REAUTH_ALLOW_REGISTRATION",
    ] {
        assert!(text.contains(variable), "{variable} missing from serve --help");
    }
}

#[test]
fn invalid_settings_fail_at_start_up_with_a_clear_message() {
    let cases: [(&str, &str, &str); 4] = [
        ("JWT_ACCESS_EXPIRES_IN", "soon", "time span"),
        ("REAUTH_STORE", "mongodb://x", "not supported"),
        ("REAUTH_ALLOWED_ORIGINS", "app.example.com", "not an origin"),
        ("JWT_REFRESH_EXPIRES_IN", "0s", "longer than 0s"),
    ];
    for (variable, value, expected) in cases {
        let output = binary()
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("REAUTH_STORE", "memory://")
            .env(variable, value)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{variable}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{variable}={value}: {stderr}");
    }
}

#[tokio::test]
async fn serve_prints_its_address_and_answers_on_it() {
    let (mut child, url) = spawn_listening(binary().args(["serve", "--bind", "127.0.0.1:0", "--store", "memory://"]));
    let health = reqwest::get(format!("{url}/healthz")).await.unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(health.status(), StatusCode::OK);
}

#[test]
fn a_store_password_never_appears_in_errors_logs_or_help() {
    const SECRET: &str = "Sup3rSecretPw";
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    assert!(binary().arg("keygen").arg(&key).output().unwrap().status.success());
    // Port 1 on loopback refuses connections: the store cannot be opened.
    for url in [
        format!("postgres://reauth:{SECRET}@127.0.0.1:1/reauth"),
        format!("redis://:{SECRET}@127.0.0.1:1/0"),
        format!("mysql://reauth:{SECRET}@127.0.0.1:1/reauth"),
    ] {
        let output = binary()
            .args(["serve", "--bind", "127.0.0.1:0", "--signing-key"])
            .arg(&key)
            .env("REAUTH_STORE", &url)
            .env("RUST_LOG", "debug")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{url}");
        let all = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(all.contains("***") && !all.contains(SECRET), "{url}: {all}");
        for args in [&["serve", "--help"][..], &["user", "add", "--help"][..]] {
            let help = binary().args(args).env("REAUTH_STORE", &url).output().unwrap();
            let text = String::from_utf8_lossy(&help.stdout);
            assert!(text.contains("REAUTH_STORE") && !text.contains(SECRET), "{text}");
        }
    }
}

#[tokio::test]
async fn serve_stops_cleanly_on_sigterm() {
    let (mut child, url) = spawn_listening(binary().args(["serve", "--bind", "127.0.0.1:0", "--store", "memory://"]));
    assert_eq!(reqwest::get(format!("{url}/healthz")).await.unwrap().status(), StatusCode::OK);
    let signalled = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(signalled.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

/// `reauth-server bench`, in-process on the memory store and against a running server, with the
/// smallest load: every phase reports, and nothing fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_reports_every_phase_without_errors() {
    let server = TestServer::start().await;
    let target = server.url("");
    for (args, label) in [(["--store", "memory://"], "memory"), (["--target", target.as_str()], "target")] {
        let output = binary().arg("bench").args(args).args(["--sessions", "2", "--duration", "1s"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
        for phase in ["login", "refresh", "GET /api/me"] {
            let row = stdout
                .lines()
                .find(|row| row.starts_with(&format!("| {label} | {phase} |")))
                .unwrap_or_else(|| panic!("no {phase} row for {label}: {stdout}"));
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            assert_eq!(cells[7], "0", "errors in {row}");
            if phase == "login" {
                assert_eq!(cells[3], "2", "one login per session: {row}");
            }
        }
    }
}

#[tokio::test]
async fn user_delete_removes_the_user_and_every_session() {
    let server = TestServer::start().await;
    let session = server.signed_in("erin").await;
    let deleted = user_command(&server, &["delete", "Erin"], "");
    assert!(deleted.status.success(), "{}", String::from_utf8_lossy(&deleted.stderr));
    assert!(String::from_utf8_lossy(&deleted.stdout).contains("deleted Erin"));
    assert_eq!(server.refresh(&session.refresh_token).await.status(), StatusCode::UNAUTHORIZED);
    let login = server.post_json("/auth/login", serde_json::json!({ "username": "erin", "password": PASSWORD })).await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
    assert!(!user_command(&server, &["delete", "erin"], "").status.success(), "a second delete finds no one");
}
