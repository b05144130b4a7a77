//! End-to-end tests of the HTTP contract: the real server on a loopback port, a real SQLite file,
//! a real HTTP client. One binary with modules links once.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod abuse;
mod cli;
mod crash;
mod edge;
mod errors;
mod flows;
mod helpers;
mod interop;
mod keys;
mod oauth;
mod refresh;
mod revocation;
mod storm;
mod tokens;
#[path = "../common/traffic.rs"]
mod traffic;
mod wallet;
