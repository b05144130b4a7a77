//! Throttling of expensive, guessable attempts (password logins, registrations, wallet sign-ins).
//!
//! An attempt is *reserved* before the expensive check runs: [`Throttle::reserve`] counts it on
//! every key at once, under one lock, or refuses it when any key is exhausted. A burst of parallel
//! guesses therefore gets at most the limit through, however many arrive together. The caller then
//! settles the reservation: [`Attempt::succeeded`] gives it back (and resets the keys marked
//! [`ThrottleKey::reset_on_success`]), [`Attempt::refund`] gives it back for an attempt that never
//! reached a verdict (the store or the hashing pool was busy); an attempt dropped unsettled stays
//! counted, as a failure.
//!
//! Keys are fixed-size digests of `(kind, subject)`, so a long username costs no more memory than a
//! short one, and their number is capped ([`MAX_KEYS`]). Counters live in process memory: with
//! several instances each counts its own share (docs/SECURITY.md).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::store::UnixTime;

/// Keys tracked at most. Past it, expired windows are swept; if the table is still full, attempts
/// on new keys are refused until a window ends (failing closed: a flood of distinct keys cannot
/// reset the counters of the keys under attack).
pub const MAX_KEYS: usize = 100_000;

/// How many attempts a key allows per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Attempts allowed within one window.
    pub max: u32,
    /// Window length in seconds.
    pub window_secs: i64,
}

type KeyDigest = [u8; 16];

/// One counter an attempt is charged to: a kind (`login`, `login-addr`, `register-addr`, …), a
/// subject (a username, an account, an address) and the limit that applies.
#[derive(Clone, Debug)]
pub struct ThrottleKey {
    digest: KeyDigest,
    limit: Limit,
    reset_on_success: bool,
}

impl ThrottleKey {
    /// A key for `subject` under `kind`.
    pub fn new(kind: &str, subject: &str, limit: Limit) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(kind.as_bytes());
        hasher.update([0]);
        hasher.update(subject.as_bytes());
        let mut digest = KeyDigest::default();
        digest.copy_from_slice(&hasher.finalize()[..16]);
        Self { digest, limit, reset_on_success: false }
    }

    /// A key for a client address. IPv6 addresses count per /64, the block one subscriber usually
    /// holds, so an attacker cannot get a fresh counter per address of their own block.
    pub fn address(kind: &str, address: Option<&str>, limit: Limit) -> Self {
        Self::new(kind, &address_block(address), limit)
    }

    /// A key for `subject` as tried from one client address (block): guesses from elsewhere never
    /// use up this counter, so they cannot lock the subject's owner out.
    pub fn subject_at_address(kind: &str, subject: &str, address: Option<&str>, limit: Limit) -> Self {
        Self::new(kind, &format!("{subject}\n{}", address_block(address)), limit)
    }

    /// On success, clear this key's whole window instead of giving back just the one attempt (the
    /// username/address pair that just proved it knows the password).
    pub fn reset_on_success(mut self) -> Self {
        self.reset_on_success = true;
        self
    }
}

/// The address as throttling counts it: an IPv4 address, or the /64 block of an IPv6 one.
fn address_block(address: Option<&str>) -> String {
    match address.and_then(|text| text.parse::<IpAddr>().ok()) {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let segments = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", segments[0], segments[1], segments[2], segments[3])
            }
        },
        Some(IpAddr::V4(v4)) => v4.to_string(),
        None => address.unwrap_or("-").to_owned(),
    }
}

#[derive(Clone, Copy)]
struct Window {
    started_at: UnixTime,
    ends_at: UnixTime,
    attempts: u32,
}

/// Fixed-window attempt counters; see the module documentation.
pub struct Throttle {
    enabled: bool,
    windows: Mutex<HashMap<KeyDigest, Window>>,
}

/// An attempt refused: seconds until the earliest moment it could be let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds to put in `Retry-After`.
    pub retry_after_secs: i64,
}

impl Throttle {
    /// Counters that refuse attempts past their limits; `enabled: false` lets everything through
    /// (for load tests, or when a proxy in front already throttles).
    pub fn new(enabled: bool) -> Self {
        Self { enabled, windows: Mutex::new(HashMap::new()) }
    }

    /// Charges one attempt to every key, or to none if any key is exhausted.
    pub fn reserve(&self, keys: Vec<ThrottleKey>, now: UnixTime) -> Result<Attempt<'_>, Throttled> {
        if !self.enabled {
            return Ok(Attempt { throttle: self, keys: Vec::new() });
        }
        let mut windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut retry_after = None::<i64>;
        let mut new_keys = 0;
        for key in &keys {
            match windows.get(&key.digest) {
                Some(window) if window.ends_at > now => {
                    if window.attempts >= key.limit.max {
                        let wait = window.ends_at - now;
                        retry_after = Some(retry_after.map_or(wait, |longest| longest.max(wait)));
                    }
                }
                _ => new_keys += 1,
            }
        }
        if let Some(retry_after_secs) = retry_after {
            return Err(Throttled { retry_after_secs });
        }
        if new_keys > 0 && windows.len() + new_keys > MAX_KEYS {
            windows.retain(|_, window| window.ends_at > now);
            if windows.len() + new_keys > MAX_KEYS {
                tracing::warn!(keys = windows.len(), "throttle table full: refusing attempts on new keys");
                let wait = keys.iter().map(|key| key.limit.window_secs).min().unwrap_or(60);
                return Err(Throttled { retry_after_secs: wait });
            }
        }
        let mut charged = Vec::with_capacity(keys.len());
        for key in keys {
            let fresh = Window { started_at: now, ends_at: now + key.limit.window_secs, attempts: 0 };
            let window = windows.entry(key.digest).or_insert(fresh);
            if window.ends_at <= now {
                *window = fresh;
            }
            window.attempts += 1;
            charged.push((key, window.started_at));
        }
        Ok(Attempt { throttle: self, keys: charged })
    }

    fn give_back(&self, keys: &[(ThrottleKey, UnixTime)], success: bool) {
        if keys.is_empty() {
            return;
        }
        let mut windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (key, started_at) in keys {
            if success && key.reset_on_success {
                windows.remove(&key.digest);
                continue;
            }
            // Only the window the attempt was charged to: a newer window never had it.
            if let Some(window) = windows.get_mut(&key.digest).filter(|window| window.started_at == *started_at) {
                window.attempts = window.attempts.saturating_sub(1);
            }
        }
    }

    #[cfg(test)]
    fn tracked_keys(&self) -> usize {
        self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }
}

/// A reserved attempt; settle it with [`Self::succeeded`] or [`Self::refund`], or drop it to leave
/// it counted as a failure.
#[must_use = "an attempt dropped unsettled counts as a failure"]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    keys: Vec<(ThrottleKey, UnixTime)>,
}

impl Attempt<'_> {
    /// The attempt succeeded: it no longer counts (keys marked reset-on-success start afresh).
    pub fn succeeded(self) {
        self.throttle.give_back(&self.keys, true);
    }

    /// The attempt reached no verdict (a fault, a busy server): it no longer counts.
    pub fn refund(self) {
        self.throttle.give_back(&self.keys, false);
    }

    /// The attempt failed: it stays counted (the same as dropping it, said out loud).
    pub fn failed(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Limit = Limit { max: 3, window_secs: 60 };

    fn keys(user: &str, address: &str) -> Vec<ThrottleKey> {
        vec![
            ThrottleKey::subject_at_address("login", user, Some(address), LIMIT).reset_on_success(),
            ThrottleKey::address("login-addr", Some(address), Limit { max: 5, window_secs: 60 }),
        ]
    }

    #[test]
    fn reservations_count_before_the_check_and_stop_at_the_limit() {
        let throttle = Throttle::new(true);
        // Three reserved and not yet settled, as in a burst: the fourth is refused at once.
        let held: Vec<_> = (0..3).map(|_| throttle.reserve(keys("alice", "10.0.0.1"), 100).unwrap()).collect();
        assert_eq!(throttle.reserve(keys("alice", "10.0.0.1"), 100).err(), Some(Throttled { retry_after_secs: 60 }));
        held.into_iter().for_each(Attempt::failed);
        assert_eq!(throttle.reserve(keys("alice", "10.0.0.1"), 130).err(), Some(Throttled { retry_after_secs: 30 }));
        assert!(throttle.reserve(keys("alice", "10.0.0.1"), 160).is_ok(), "a new window");
    }

    #[test]
    fn a_refund_and_a_success_give_the_attempt_back() {
        let throttle = Throttle::new(true);
        for _ in 0..10 {
            throttle.reserve(keys("alice", "10.0.0.1"), 100).unwrap().refund();
        }
        for _ in 0..2 {
            throttle.reserve(keys("alice", "10.0.0.1"), 100).unwrap().failed();
        }
        throttle.reserve(keys("alice", "10.0.0.1"), 100).unwrap().succeeded();
        // The username key was reset; the address key still holds the two failures.
        for _ in 0..3 {
            throttle.reserve(keys("alice", "10.0.0.1"), 100).unwrap().failed();
        }
        assert!(throttle.reserve(keys("bob", "10.0.0.1"), 100).is_err(), "address exhausted: 2 + 3 failures");
    }

    #[test]
    fn a_refused_attempt_charges_no_key() {
        let throttle = Throttle::new(true);
        for _ in 0..3 {
            throttle.reserve(keys("alice", "10.0.0.1"), 100).unwrap().failed();
        }
        for _ in 0..10 {
            assert!(throttle.reserve(keys("alice", "10.0.0.1"), 100).is_err());
        }
        // The refused ones did not use up the address: two more users can still be tried.
        assert!(throttle.reserve(keys("bob", "10.0.0.1"), 100).is_ok());
        assert!(throttle.reserve(keys("carol", "10.0.0.1"), 100).is_ok());
    }

    #[test]
    fn ipv6_addresses_count_per_64_block() {
        let throttle = Throttle::new(true);
        for i in 0..5 {
            let address = format!("2001:db8:1:2::{i:x}");
            throttle.reserve(vec![ThrottleKey::address("a", Some(&address), LIMIT)], 100).map(Attempt::failed).ok();
        }
        assert!(throttle.reserve(vec![ThrottleKey::address("a", Some("2001:db8:1:2:ffff::1"), LIMIT)], 100).is_err());
        assert!(throttle.reserve(vec![ThrottleKey::address("a", Some("2001:db8:1:3::1"), LIMIT)], 100).is_ok());
    }

    #[test]
    fn keys_have_a_fixed_size_and_a_bounded_count() {
        let throttle = Throttle::new(true);
        let long = "x".repeat(100_000);
        throttle.reserve(vec![ThrottleKey::new("login", &long, LIMIT)], 100).unwrap().failed();
        for i in 0..MAX_KEYS {
            let _ = throttle.reserve(vec![ThrottleKey::new("login", &i.to_string(), LIMIT)], 100).map(Attempt::failed);
        }
        assert_eq!(throttle.tracked_keys(), MAX_KEYS);
        assert!(throttle.reserve(vec![ThrottleKey::new("login", "one more", LIMIT)], 100).is_err(), "fails closed");
        // Once the windows have ended, the sweep makes room again.
        assert!(throttle.reserve(vec![ThrottleKey::new("login", "one more", LIMIT)], 160).is_ok());
        assert_eq!(throttle.tracked_keys(), 1);
    }

    #[test]
    fn a_disabled_throttle_lets_everything_through() {
        let throttle = Throttle::new(false);
        for _ in 0..100 {
            throttle.reserve(keys("alice", "10.0.0.1"), 100).unwrap().failed();
        }
    }
}
