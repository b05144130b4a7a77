//! # reauth-server
//!
//! Short-lived Ed25519 JWT access tokens and one-time, rotating refresh tokens in HttpOnly cookies,
//! for browsers that must stay signed in silently.
//!
//! Mount [`router`] (or [`app`], which also serves a directory of static files) in an axum
//! application, protect routes with the [`AuthenticatedUser`] extractor, and pick a [`TokenStore`]:
//! [`SqliteStore`] (embedded default) or [`MemoryStore`] (tests). Server-rendered pages that must
//! survive a reload after the access token expired go behind [`SilentRefreshLayer`] (docs/EDGE.md).
//!
//! ```no_run
//! use std::sync::Arc;
//! use reauth_server::{AuthService, Keys, Settings, SqliteStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(SqliteStore::open("reauth.db").await?);
//! let keys = Keys::load_or_create("reauth-signing-key.pem".as_ref())?;
//! let service = AuthService::new(store, keys, Settings::default());
//! let app = reauth_server::router(service);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(()) }
//! ```

pub mod config;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod hashing;
pub mod http;
pub mod password;
pub mod rate_limit;
pub mod revocation;
pub mod server;
pub mod service;
pub mod stellar;
pub mod store;
pub mod time;
pub mod tokens;
mod wire;

pub use config::Settings;
/// The edge layer, also at its historical path `reauth_server::edge`.
pub use http::edge;
pub use http::edge::SilentRefreshLayer;
pub use http::{app, router, AuthRejection, AuthenticatedUser, Authenticator};
pub use service::{AuthError, AuthService, ClientInfo, DeadReason};
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{MemoryStore, TokenStore};
pub use tokens::{AccessTokenVerifier, Keys};

/// The README's Rust examples, compiled as doctests so they stay true to the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
