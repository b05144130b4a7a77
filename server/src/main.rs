//! `reauth-server`: run the service, manage users.

use std::io::Read as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Lives beside the library's modules but belongs to the binary alone.
mod bench;
use reauth_server::config::ServeArgs;
use reauth_server::server::{self, RunningServer};
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
    /// Create a user; the password is read from standard input (first line).
    Add {
        /// Username (3-64 of a-z 0-9 . _ -; stored lower-case).
        name: String,
    },
    /// Disable a user and revoke all their sessions.
    Disable {
        /// Username.
        name: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// Username.
        name: String,
    },
    /// Delete a user and all their sessions.
    Delete {
        /// Username.
        name: String,
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
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
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

async fn user(command: UserCommand, store_url: &str) -> Result<(), String> {
    let (store, sqlite_path) = server::open_store(store_url).await.map_err(|error| error.to_string())?;
    let keys = server::resolve_keys(None, sqlite_path.as_deref()).map_err(|error| error.to_string())?;
    let service = AuthService::new(store, keys, Default::default());
    match command {
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
