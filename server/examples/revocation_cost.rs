//! What the revocation check adds to a Bearer request, measured apart from the noise of a whole
//! HTTP benchmark: the time of one access-token verification (what every protected request does
//! anyway) against one `RevocationList::is_revoked` lookup in a list holding `ENTRIES` revocations.
//!
//! ```sh
//! cargo run --release -p reauth-server --example revocation_cost
//! ```
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use reauth_server::revocation::RevocationList;
use reauth_server::store::{Revocation, RevokedSubject};
use reauth_server::tokens::{AccessTokens, Keys};

/// Revocations of the last access-token lifetime: many logouts on a busy deployment.
const ENTRIES: usize = 10_000;
const ROUNDS: u32 = 200_000;

fn main() {
    let now = reauth_server::service::unix_now();
    let tokens = AccessTokens::new(Keys::generate(), "reauth", "reauth", 900);
    let (token, claims) = tokens.issue("user", "user.session", now);
    let list = RevocationList::new();
    for index in 0..ENTRIES {
        let subject = if index % 2 == 0 {
            RevokedSubject::Session(format!("user{index}.session"))
        } else {
            RevokedSubject::User { user_id: format!("user{index}"), issued_before: now }
        };
        list.apply(&Revocation { subject, at: now, expires_at: now + 900 }, now);
    }

    let verify_ns = per_call_ns(ROUNDS / 20, || black_box(tokens.verify(black_box(&token), now)).is_ok());
    let check_ns = per_call_ns(ROUNDS, || black_box(list.is_revoked(black_box(&claims))));
    println!("access-token verification: {verify_ns:.0} ns per call");
    println!("revocation check ({ENTRIES} entries): {check_ns:.0} ns per call");
    println!("check ÷ verification: {:.4}", check_ns / verify_ns);
}

fn per_call_ns(rounds: u32, mut call: impl FnMut() -> bool) -> f64 {
    let started = Instant::now();
    let mut accepted = 0u32;
    for _ in 0..rounds {
        accepted += u32::from(call());
    }
    black_box(accepted);
    started.elapsed().as_nanos() as f64 / f64::from(rounds)
}
