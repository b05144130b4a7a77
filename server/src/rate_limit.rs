//! Throttling of failed logins, per username and per client address.
//!
//! Counters live in process memory: with several instances each counts its own share, so the
//! effective limit is the configured one times the number of instances (docs/SECURITY.md).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::LoginLimits;
use crate::store::UnixTime;

/// Past this many tracked keys, expired windows are swept on the next failure, so memory stays
/// bounded by the rate of distinct keys an attacker can produce within one window.
const SWEEP_THRESHOLD: usize = 10_000;

#[derive(Clone, Copy)]
struct Window {
    started_at: UnixTime,
    failures: u32,
}

/// Fixed-window counters of failed logins.
pub(crate) struct LoginLimiter {
    limits: LoginLimits,
    windows: Mutex<HashMap<String, Window>>,
}

impl LoginLimiter {
    pub(crate) fn new(limits: LoginLimits) -> Self {
        Self { limits, windows: Mutex::new(HashMap::new()) }
    }

    fn keys(username: &str, address: Option<&str>) -> [(String, u32); 2] {
        [(format!("user:{username}"), 0), (format!("addr:{}", address.unwrap_or("-")), 1)]
    }

    fn limit(&self, kind: u32) -> u32 {
        if kind == 0 {
            self.limits.per_username
        } else {
            self.limits.per_address
        }
    }

    /// `Err(seconds until retry)` when either counter is exhausted.
    pub(crate) fn check(&self, username: &str, address: Option<&str>, now: UnixTime) -> Result<(), i64> {
        let windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let retry_after = Self::keys(username, address)
            .iter()
            .filter_map(|(key, kind)| {
                let window = windows.get(key)?;
                let ends_at = window.started_at + self.limits.window_secs;
                (ends_at > now && window.failures >= self.limit(*kind)).then_some(ends_at - now)
            })
            .max();
        retry_after.map_or(Ok(()), Err)
    }

    pub(crate) fn record_failure(&self, username: &str, address: Option<&str>, now: UnixTime) {
        let mut windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() > SWEEP_THRESHOLD {
            let window_secs = self.limits.window_secs;
            windows.retain(|_, window| window.started_at + window_secs > now);
        }
        for (key, _) in Self::keys(username, address) {
            let window = windows.entry(key).or_insert(Window { started_at: now, failures: 0 });
            if window.started_at + self.limits.window_secs <= now {
                *window = Window { started_at: now, failures: 0 };
            }
            window.failures += 1;
        }
    }

    /// A successful login clears the username's counter (not the address's: one address may be
    /// guessing at many accounts and own one).
    pub(crate) fn record_success(&self, username: &str) {
        let mut windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        windows.remove(&format!("user:{username}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> LoginLimiter {
        LoginLimiter::new(LoginLimits { per_username: 3, per_address: 5, window_secs: 60 })
    }

    #[test]
    fn a_username_is_locked_after_its_failures_until_the_window_ends() {
        let limiter = limiter();
        for _ in 0..3 {
            assert!(limiter.check("alice", Some("10.0.0.1"), 100).is_ok());
            limiter.record_failure("alice", Some("10.0.0.1"), 100);
        }
        assert_eq!(limiter.check("alice", Some("10.0.0.2"), 110), Err(50));
        assert!(limiter.check("bob", Some("10.0.0.2"), 110).is_ok());
        assert!(limiter.check("alice", Some("10.0.0.2"), 160).is_ok());
    }

    #[test]
    fn an_address_is_locked_across_usernames() {
        let limiter = limiter();
        for name in ["a", "b", "c", "d", "e"] {
            limiter.record_failure(name, Some("10.0.0.9"), 0);
        }
        assert_eq!(limiter.check("f", Some("10.0.0.9"), 1), Err(59));
        assert!(limiter.check("f", Some("10.0.0.8"), 1).is_ok());
    }

    #[test]
    fn success_clears_the_username_counter() {
        let limiter = limiter();
        for _ in 0..3 {
            limiter.record_failure("alice", None, 0);
        }
        limiter.record_success("alice");
        assert!(limiter.check("alice", Some("other"), 1).is_ok());
    }
}
