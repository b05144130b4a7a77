//! Several `reauth-server` processes on one shared store (Redis, PostgreSQL), and store faults.
//!
//! Real binaries on loopback ports, real store servers: `scripts/test-stores.sh` starts the shared
//! ones and says where through `REAUTH_TEST_*` variables. Without them (a plain `cargo test`) each
//! case prints a loud `SKIPPED` line and returns.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, unreachable_pub)]

mod faults;
mod fleet;
mod multi_instance;
mod rotation;
mod servers;
#[path = "../common/traffic.rs"]
mod traffic;
