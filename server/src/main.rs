//! `reauth-server`: run the service, manage users.

use std::io::{IsTerminal as _, Read as _};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Lives beside the library's modules but belongs to the binary alone.
mod bench;
use reauth_server::config::{Lifetime, ServeArgs};
use reauth_server::server::{self, RunningServer};
use reauth_server::service::unix_now;
use reauth_server::store::KeyKind;
use reauth_server::AuthService;

#[derive(Parser)]
#[command(
    name = "reauth-server",
    version,
    about = "Silent re-authentication: rotating refresh tokens and short-lived JWTs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve(Box<ServeArgs>),
    /// Load-test over HTTP on loopback: logins, then refreshes, then protected requests.
    Bench(bench::BenchArgs),
    /// Create a signing key file for REAUTH_SIGNING_KEY (an existing file is kept as it is); all
    /// instances sharing a store must read the same one.
    Keygen {
        /// Where to write the PKCS#8 PEM Ed25519 private key (mode 0600).
        file: std::path::PathBuf,
    },
    /// Rotate and list the key set (access-token signing keys, refresh-token MAC secrets), with
    /// the same settings as `serve`; running instances pick changes up without a restart.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
        /// Token store, as for `serve`.
        #[arg(long, env = "REAUTH_STORE", default_value = "sqlite://reauth.db", global = true, hide_env_values = true)]
        store: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from standard input (first line). A Stellar account id
    /// (`G…`) creates that account's wallet user instead, named `stellar:G…`, with no password.
    Add {
        /// Username (3-64 of a-z 0-9 . _ -; stored lower-case), or a Stellar account id.
        name: String,
    },
    /// Disable a user and revoke all their sessions.
    Disable {
        /// Username, or a wallet user's Stellar account id.
        name: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// Username, or a wallet user's Stellar account id.
        name: String,
    },
    /// Delete a user and all their sessions.
    Delete {
        /// Username, or a wallet user's Stellar account id.
        name: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a key that is published at once and signs after `--activate-in`; prints its id (the
    /// `kid` of a signing key) on standard output.
    Rotate {
        /// Rotate the refresh-token MAC secret instead of the access-token signing key.
        #[arg(long)]
        refresh_secret: bool,
        /// How long the new key is published before it signs: longer than every verifier's key
        /// refresh (REAUTH_KEY_REFRESH_INTERVAL of every instance, JWKS caches of other services).
        /// `0s` after a key leaked: an instance that has not reread the set yet answers 401 to the
        /// first access tokens of the new signing key it meets, then rereads it (refresh tokens are
        /// never refused for that reason).
        #[arg(long, default_value = "10m")]
        activate_in: Lifetime,
        #[command(flatten)]
        serve: Box<ServeArgs>,
    },
    /// Show every key with its state: next, current, retired (still accepted) or expired.
    List {
        #[command(flatten)]
        serve: Box<ServeArgs>,
    },
}

fn init_tracing() {
    let filter: tracing_subscriber::filter::Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|spec| spec.parse().ok())
        .unwrap_or_else(|| "info".parse().unwrap_or_default());
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr))
        .with(filter)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let result = match Cli::parse().command {
        Command::Serve(args) => serve(*args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Keygen { file } => reauth_server::Keys::load_or_create(&file)
            .map(|keys| println!("signing key {} in {}", keys.kid(), file.display()))
            .map_err(|error| error.to_string()),
        Command::Keys { command } => keys(command).await,
        Command::User { command, store } => user(command, &store).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("reauth-server: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let service = server::build_service(&args).await.map_err(|error| error.to_string())?;
    let running = RunningServer::start_with(service, args.bind, args.www_dir.as_deref(), shutdown_signal())
        .await
        .map_err(|error| error.to_string())?;
    // Scripts wait for this exact line to learn the port.
    println!("reauth-server listening on http://{}", running.addr);
    tracing::info!(addr = %running.addr, store = running.service.store().backend(), "listening");
    running.wait().await.map_err(|error| error.to_string())
}

async fn keys(command: KeysCommand) -> Result<(), String> {
    let (KeysCommand::Rotate { serve, .. } | KeysCommand::List { serve }) = &command;
    if serve.store.starts_with("memory:") {
        return Err("REAUTH_STORE memory:// lives inside one process: keys need the store a server uses".into());
    }
    let service = server::build_service(serve).await.map_err(|error| error.to_string())?;
    match command {
        KeysCommand::Rotate { refresh_secret, activate_in, .. } => {
            let kind = if refresh_secret { KeyKind::Refresh } else { KeyKind::Signing };
            let id = service.rotate_key(kind, activate_in.secs()).await.map_err(|error| error.to_string())?;
            eprintln!("added {} key {id}; it signs in {}s", kind.as_str(), activate_in.secs());
            println!("{id}");
        }
        KeysCommand::List { .. } => {
            let now = unix_now();
            for key in service.describe_keys(now) {
                let since = match key.active_at {
                    None => "configured key (REAUTH_SIGNING_KEY)".to_owned(),
                    Some(at) if at > now => format!("signs at {at} (in {}s)", at - now),
                    Some(at) => format!("signing from {at} ({}s ago)", now - at),
                };
                println!("{:<8} {:<8} {:<44} {since}", key.kind.as_str(), key.state.as_str(), key.id);
            }
        }
    }
    Ok(())
}

async fn user(command: UserCommand, store_url: &str) -> Result<(), String> {
    let (store, sqlite_path) = server::open_store(store_url).await.map_err(|error| error.to_string())?;
    let keys = server::resolve_keys(None, sqlite_path.as_deref()).map_err(|error| error.to_string())?;
    let service = AuthService::new(store, keys, Default::default());
    match command {
        UserCommand::Add { name } if reauth_server::stellar::AccountId::from_username(&name).is_some() => {
            let user = service.create_wallet_user(&name).await.map_err(|error| error.to_string())?;
            println!("created user {} ({})", user.username, user.id);
        }
        UserCommand::Add { name } => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).map_err(|error| format!("reading the password: {error}"))?;
            let password = input.lines().next().unwrap_or_default();
            let user = service.create_user(&name, password).await.map_err(|error| error.to_string())?;
            println!("created user {} ({})", user.username, user.id);
        }
        UserCommand::Disable { name } => {
            service.set_user_active(&name, false).await.map_err(|error| format!("{name}: {error}"))?;
            println!("disabled {name}; all their sessions are revoked");
        }
        UserCommand::Enable { name } => {
            service.set_user_active(&name, true).await.map_err(|error| format!("{name}: {error}"))?;
            println!("enabled {name}");
        }
        UserCommand::Delete { name } => {
            service.delete_user(&name).await.map_err(|error| format!("{name}: {error}"))?;
            println!("deleted {name}");
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = terminate => {} }
    tracing::info!("shutting down");
}
