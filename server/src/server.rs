//! Start-up shared by the binary and the integration tests: store from its URL, keys, service,
//! background clean-up, and the listening socket.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::ServeArgs;
use crate::service::AuthService;
use crate::store::{MemoryStore, TokenStore};
use crate::tokens::Keys;

/// How often expired sessions and old audit events are removed.
const PURGE_EVERY: Duration = Duration::from_secs(10 * 60);
/// The longest a networked store may take to answer one call before the request gets a 503.
pub const STORE_CALL_LIMIT: Duration = Duration::from_secs(2);

const REDIS_SCHEMES: [&str; 3] = ["redis://", "rediss://", "redis+unix://"];
const POSTGRES_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

/// Why the server could not start; the message names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The store could not be opened.
    #[error("cannot open the token store {url}: {cause}")]
    Store {
        /// `REAUTH_STORE`, its password replaced by `***` ([`redact_url`]).
        url: String,
        /// The cause's message, with the password removed wherever the driver repeated it.
        cause: String,
    },
    /// The signing key could not be read or created.
    #[error(transparent)]
    Key(#[from] crate::tokens::KeyError),
    /// The key set in the store could not be read or opened.
    #[error("cannot read the key set: {0}")]
    KeySet(#[from] crate::tokens::KeySetError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// `REAUTH_BIND`.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Opens the store named by a `REAUTH_STORE` URL. Also returns the SQLite file's path, next to which
/// the signing key is kept by default.
pub async fn open_store(url: &str) -> Result<(Arc<dyn TokenStore>, Option<PathBuf>), StartError> {
    #[cfg_attr(not(any(feature = "sqlite", feature = "redis", feature = "postgres")), allow(unused_variables))]
    let store_error = |source: crate::store::StoreError| StartError::Store {
        url: redact_url(url),
        cause: redact_secret_in(&source.to_string(), url),
    };
    if url == "memory://" || url == "memory:" {
        return Ok((Arc::new(MemoryStore::new()), None));
    }
    #[cfg(feature = "sqlite")]
    if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            return Err(StartError::Config(format!(
                "REAUTH_STORE {:?}: give a file path, e.g. sqlite://reauth.db",
                redact_url(url)
            )));
        }
        let synchronous = sqlite_synchronous(std::env::var(SQLITE_SYNCHRONOUS).ok().as_deref())?;
        let store = crate::store::SqliteStore::open_url_with(url, synchronous).await.map_err(store_error)?;
        return Ok((Arc::new(store), Some(PathBuf::from(path))));
    }
    #[cfg(feature = "redis")]
    if REDIS_SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
        let store = crate::store::RedisStore::open_url(url).await.map_err(store_error)?;
        return Ok((Arc::new(crate::store::TimeLimited::new(store, STORE_CALL_LIMIT)), None));
    }
    #[cfg(feature = "postgres")]
    if POSTGRES_SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
        let store = crate::store::PostgresStore::open_url(url).await.map_err(store_error)?;
        return Ok((Arc::new(crate::store::TimeLimited::new(store, STORE_CALL_LIMIT)), None));
    }
    Err(StartError::Config(format!(
        "REAUTH_STORE {:?} is not supported; use sqlite://PATH, redis://HOST:PORT, postgres://USER@HOST/DB or memory://",
        redact_url(url)
    )))
}

/// The environment variable that chooses when a SQLite commit is on the disk (README settings table).
#[cfg(feature = "sqlite")]
pub const SQLITE_SYNCHRONOUS: &str = "REAUTH_SQLITE_SYNCHRONOUS";

/// Reads [`SQLITE_SYNCHRONOUS`]'s value: `normal` or `full` (the default when unset).
#[cfg(feature = "sqlite")]
fn sqlite_synchronous(value: Option<&str>) -> Result<crate::store::Synchronous, StartError> {
    use crate::store::Synchronous;
    match value.map(str::trim).map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Ok(Synchronous::default()),
        Some("full") => Ok(Synchronous::Full),
        Some("normal") => Ok(Synchronous::Normal),
        Some(other) => Err(StartError::Config(format!("{SQLITE_SYNCHRONOUS} {other:?}: use normal or full"))),
    }
}

/// The password of a store URL (`scheme://user:PASSWORD@host/…`), if it has one.
fn url_password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (user_info, _) = authority.rsplit_once('@')?;
    let (_, password) = user_info.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// A store URL fit for messages and logs: its password, if any, replaced by `***`.
pub fn redact_url(url: &str) -> String {
    redact_secret_in(url, url)
}

/// `text` with the password of `url` (raw or percent-decoded) replaced by `***`.
fn redact_secret_in(text: &str, url: &str) -> String {
    let Some(password) = url_password(url) else { return text.to_owned() };
    let decoded = percent_decode(password);
    let mut redacted = text.replace(password, "***");
    if !decoded.is_empty() {
        redacted = redacted.replace(&decoded, "***");
    }
    redacted
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes.get(index + 1..index + 3).and_then(|pair| std::str::from_utf8(pair).ok());
        match (bytes[index], hex.and_then(|pair| u8::from_str_radix(pair, 16).ok())) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Whether several instances may share the store named by `url` (and so must share one key).
pub fn is_shared_store(url: &str) -> bool {
    REDIS_SCHEMES.iter().chain(&POSTGRES_SCHEMES).any(|scheme| url.starts_with(scheme))
}

/// The signing key: `REAUTH_SIGNING_KEY` if set; else kept next to the SQLite file; else ephemeral.
/// [`build_service`] refuses the ephemeral key for a shared store.
pub fn resolve_keys(signing_key: Option<&Path>, sqlite_path: Option<&Path>) -> Result<Keys, StartError> {
    Ok(match (signing_key, sqlite_path) {
        (Some(path), _) => Keys::load(path)?,
        (None, Some(db)) => {
            let path = db.with_file_name("reauth-signing-key.pem");
            // Convenient for a first run, not for production: see docs/SECURITY.md, "Where keys live".
            tracing::warn!(
                path = %path.display(),
                "no REAUTH_SIGNING_KEY: using a key file beside the database, so a copy of the data directory \
                 can mint tokens; set REAUTH_SIGNING_KEY to a file kept outside it"
            );
            Keys::load_or_create(&path)?
        }
        (None, None) => {
            tracing::warn!("no REAUTH_SIGNING_KEY and no SQLite file: using an ephemeral signing key");
            Keys::generate()
        }
    })
}

/// Builds the service described by the `serve` arguments.
pub async fn build_service(args: &ServeArgs) -> Result<AuthService, StartError> {
    let settings = args.settings().map_err(StartError::Config)?;
    if args.signing_key.is_none() && is_shared_store(&args.store) {
        // A key per instance would make every instance reject the tokens of the others.
        return Err(StartError::Config(format!(
            "REAUTH_STORE {:?} is shared by every instance, so they must share one signing key too: set \
             REAUTH_SIGNING_KEY to the same key file on each (create it once with `reauth-server keygen FILE`)",
            redact_url(&args.store)
        )));
    }
    let (store, sqlite_path) = open_store(&args.store).await?;
    let keys = resolve_keys(args.signing_key.as_deref(), sqlite_path.as_deref())?;
    let service = AuthService::new(store, keys, settings);
    service.reload_keys().await?;
    Ok(service)
}

/// Rereads the key set from the store every `REAUTH_KEY_REFRESH_INTERVAL`, so that a key added by
/// `reauth-server keys rotate` (on this machine or any other sharing the store) is published and
/// then signs without a restart. A failed read keeps the keys in force and is retried.
pub fn spawn_key_refresh(service: AuthService) -> JoinHandle<()> {
    let every = Duration::from_secs(service.settings().key_refresh_interval_secs.max(1) as u64);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(error) = service.reload_keys().await {
                tracing::warn!(%error, "rereading the key set failed; keeping the keys in force");
            }
        }
    })
}

/// Removes expired state now and then every ten minutes; failures are logged and retried later.
pub fn spawn_purge(service: AuthService) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(PURGE_EVERY);
        loop {
            interval.tick().await;
            match service.purge_expired().await {
                Ok(removed) => tracing::debug!(removed, "purged expired sessions and events"),
                Err(error) => tracing::warn!(%error, "purge failed; will retry"),
            }
        }
    })
}

/// A server bound and running in the background.
pub struct RunningServer {
    /// The bound address (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// The service behind it.
    pub service: AuthService,
    serve: JoinHandle<std::io::Result<()>>,
    purge: JoinHandle<()>,
    key_refresh: JoinHandle<()>,
    revocations: JoinHandle<()>,
}

impl RunningServer {
    /// Binds and starts serving; returns once the socket accepts connections.
    pub async fn start(args: &ServeArgs) -> Result<Self, StartError> {
        let service = build_service(args).await?;
        Self::start_with(service, args.bind, args.www_dir.as_deref(), std::future::pending()).await
    }

    /// Serves `service` on `bind` until `shutdown` resolves.
    pub async fn start_with(
        service: AuthService,
        bind: SocketAddr,
        www_dir: Option<&Path>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Self, StartError> {
        let listener = TcpListener::bind(bind).await.map_err(|source| StartError::Bind { addr: bind, source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: bind, source })?;
        service.set_listening_address(addr);
        let app = crate::http::app(service.clone(), www_dir);
        let serve = tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(shutdown)
                .await
        });
        let purge = spawn_purge(service.clone());
        let key_refresh = spawn_key_refresh(service.clone());
        let revocations = tokio::spawn(service.clone().follow_revocations());
        Ok(Self { addr, service, serve, purge, key_refresh, revocations })
    }

    /// Waits until the server stops (its shutdown future resolved, or it failed).
    pub async fn wait(self) -> std::io::Result<()> {
        let result = self.serve.await.unwrap_or_else(|join_error| Err(std::io::Error::other(join_error)));
        self.purge.abort();
        self.key_refresh.abort();
        self.revocations.abort();
        result
    }

    /// Stops accepting connections at once (tests simulating a crash or restart).
    pub fn abort(self) {
        self.serve.abort();
        self.purge.abort();
        self.key_refresh.abort();
        self.revocations.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_passwords_never_reach_messages() {
        assert_eq!(redact_url("postgres://app:s3cr%40t@db.internal/reauth"), "postgres://app:***@db.internal/reauth");
        assert_eq!(redact_url("redis://:hunter2@cache:6379/0"), "redis://:***@cache:6379/0");
        assert_eq!(redact_url("redis://cache:6379"), "redis://cache:6379");
        assert_eq!(redact_url("sqlite://data/reauth.db"), "sqlite://data/reauth.db");
        assert_eq!(
            redact_secret_in("password authentication failed: s3cr@t", "postgres://app:s3cr%40t@db/reauth"),
            "password authentication failed: ***"
        );
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_synchronous_is_full_unless_normal_is_asked_for() {
        use crate::store::Synchronous;
        assert_eq!(sqlite_synchronous(None).ok(), Some(Synchronous::Full));
        assert_eq!(sqlite_synchronous(Some("")).ok(), Some(Synchronous::Full));
        assert_eq!(sqlite_synchronous(Some("FULL")).ok(), Some(Synchronous::Full));
        assert_eq!(sqlite_synchronous(Some("normal")).ok(), Some(Synchronous::Normal));
        let refused = sqlite_synchronous(Some("off")).err().map(|error| error.to_string()).unwrap_or_default();
        assert!(refused.contains("REAUTH_SQLITE_SYNCHRONOUS"), "{refused}");
    }
}
