//! End-to-end tests of the HTTP contract: the real server on a loopback port, a real SQLite file,
//! a real HTTP client. One binary with modules links once.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod cli;
mod edge;
mod errors;
mod flows;
mod helpers;
mod refresh;
mod tokens;
