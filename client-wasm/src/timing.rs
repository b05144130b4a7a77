//! Pure timing rules: when a token is due for renewal, when it is dead, how long to back off.
//! Kept free of browser calls so the rules are tested on their own.

/// Renewal never happens before this share of a token's lifetime has elapsed, whatever the
/// margin: with a 3 s token and a 60 s margin the client renews after 1.5 s, not at once in a loop.
const MIN_LIFETIME_SHARE_BEFORE_RENEWAL: f64 = 0.5;

/// First retry delay after a transient refresh failure; doubles per consecutive failure.
const BACKOFF_BASE_MS: f64 = 1_000.0;
/// Upper bound of the retry delay, so a long outage is still noticed within half a minute of its end.
const BACKOFF_CAP_MS: f64 = 30_000.0;

/// Two readings of "now", in milliseconds: `monotonic` from `performance.now()`, which a wrong or
/// adjusted wall clock cannot move, and `wall` from `Date.now()`, which keeps counting while the
/// machine sleeps (the monotonic clock may not).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Instant {
    pub(crate) monotonic: f64,
    pub(crate) wall: f64,
}

/// When one access token needs renewing and when it dies, anchored at the moment it arrived.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Expiry {
    received: Instant,
    lifetime_ms: f64,
    renew_after_ms: f64,
}

impl Expiry {
    /// `expires_in` and `margin` in seconds, as the server and the options give them.
    pub(crate) fn new(received: Instant, expires_in_seconds: f64, margin_seconds: f64) -> Self {
        let lifetime_ms = expires_in_seconds.max(0.0) * 1_000.0;
        let margin_ms =
            (margin_seconds.max(0.0) * 1_000.0).min(lifetime_ms * (1.0 - MIN_LIFETIME_SHARE_BEFORE_RENEWAL));
        Self { received, lifetime_ms, renew_after_ms: lifetime_ms - margin_ms }
    }

    /// A token that arrived `age_ms` before `now` (handed over by another tab that got it then):
    /// its renewal point and expiry are those the other tab computed.
    pub(crate) fn received_ago(now: Instant, age_ms: f64, expires_in_seconds: f64, margin_seconds: f64) -> Self {
        let received = Instant { monotonic: now.monotonic - age_ms, wall: now.wall - age_ms };
        Self::new(received, expires_in_seconds, margin_seconds)
    }

    /// The whole lifetime the server gave the token, in seconds.
    pub(crate) fn lifetime_seconds(&self) -> f64 {
        self.lifetime_ms / 1_000.0
    }

    /// How long ago the token arrived, in ms.
    pub(crate) fn age_ms(&self, now: Instant) -> f64 {
        self.elapsed_ms(now)
    }

    /// Time since the token arrived. The larger of the two clocks wins: after a sleep the wall
    /// clock is right and the monotonic one lags; after the wall clock is set back the monotonic
    /// one is right. A clock that runs ahead only makes a renewal early, never late.
    fn elapsed_ms(&self, now: Instant) -> f64 {
        (now.monotonic - self.received.monotonic).max(now.wall - self.received.wall)
    }

    pub(crate) fn needs_renewal(&self, now: Instant) -> bool {
        self.elapsed_ms(now) >= self.renew_after_ms
    }

    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        self.elapsed_ms(now) >= self.lifetime_ms
    }

    /// Milliseconds until the renewal point, zero when it has passed.
    pub(crate) fn ms_until_renewal(&self, now: Instant) -> f64 {
        (self.renew_after_ms - self.elapsed_ms(now)).max(0.0)
    }

    /// Wall-clock expiry (ms since the epoch) for display: `auth.expiresAt`, events.
    pub(crate) fn expires_at_wall_ms(&self) -> f64 {
        self.received.wall + self.lifetime_ms
    }

    /// Wall-clock renewal point (ms since the epoch) for display: `auth.refreshAt`.
    pub(crate) fn renew_at_wall_ms(&self) -> f64 {
        self.received.wall + self.renew_after_ms
    }

    /// The same token treated as already expired, so the next caller renews it first.
    pub(crate) fn expired_now(now: Instant) -> Self {
        Self { received: now, lifetime_ms: 0.0, renew_after_ms: 0.0 }
    }
}

/// Delay before retry number `failures` (1 for the first retry): exponential, capped, with "equal
/// jitter" (half fixed, half random) so many clients that failed together do not retry together.
/// `random` is in `[0, 1)`. A server's `Retry-After` is a floor.
pub(crate) fn backoff_ms(failures: u32, random: f64, retry_after_seconds: Option<f64>) -> f64 {
    let exponent = failures.saturating_sub(1).min(16);
    let ceiling = (BACKOFF_BASE_MS * f64::from(1_u32 << exponent)).min(BACKOFF_CAP_MS);
    let jittered = ceiling / 2.0 + random * ceiling / 2.0;
    jittered.max(retry_after_seconds.unwrap_or(0.0) * 1_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    // Pure logic: plain #[test]s on the host, and the same tests in the browser under wasm-pack.
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

    fn at(monotonic: f64, wall: f64) -> Instant {
        Instant { monotonic, wall }
    }

    #[test]
    fn margin_is_honoured_when_the_token_is_long_lived() {
        let expiry = Expiry::new(at(0.0, 0.0), 900.0, 60.0);
        assert!(!expiry.needs_renewal(at(839_999.0, 839_999.0)));
        assert!(expiry.needs_renewal(at(840_000.0, 840_000.0)));
        assert!(!expiry.is_expired(at(899_999.0, 899_999.0)));
        assert!(expiry.is_expired(at(900_000.0, 900_000.0)));
    }

    #[test]
    fn margin_longer_than_the_token_renews_at_half_its_lifetime() {
        let expiry = Expiry::new(at(0.0, 0.0), 3.0, 60.0);
        assert_eq!(expiry.ms_until_renewal(at(0.0, 0.0)), 1_500.0);
        assert!(expiry.needs_renewal(at(1_500.0, 1_500.0)));
    }

    #[test]
    fn a_wall_clock_set_back_does_not_delay_renewal() {
        let expiry = Expiry::new(at(1_000.0, 5_000_000.0), 10.0, 2.0);
        // Monotonic time moved on 9 s while someone set the wall clock back an hour.
        assert!(expiry.needs_renewal(at(10_000.0, 1_400_000.0)));
    }

    #[test]
    fn a_sleep_that_stalled_the_monotonic_clock_is_seen_through_the_wall_clock() {
        let expiry = Expiry::new(at(1_000.0, 1_000.0), 10.0, 2.0);
        // The laptop slept 20 minutes: performance.now() barely moved, Date.now() did.
        let after_sleep = at(2_000.0, 1_201_000.0);
        assert!(expiry.needs_renewal(after_sleep));
        assert!(expiry.is_expired(after_sleep));
    }

    #[test]
    fn expires_at_is_reported_in_wall_clock_time() {
        let expiry = Expiry::new(at(50.0, 1_700_000_000_000.0), 3.0, 1.0);
        assert_eq!(expiry.expires_at_wall_ms(), 1_700_000_003_000.0);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_keeps_half_fixed() {
        assert_eq!(backoff_ms(1, 0.0, None), 500.0);
        assert_eq!(backoff_ms(1, 0.999_999, None).round(), 1_000.0);
        assert_eq!(backoff_ms(3, 0.0, None), 2_000.0);
        assert_eq!(backoff_ms(40, 0.0, None), BACKOFF_CAP_MS / 2.0);
        assert!(backoff_ms(40, 0.999, None) < BACKOFF_CAP_MS);
    }

    #[test]
    fn retry_after_is_a_floor_for_the_backoff() {
        assert_eq!(backoff_ms(1, 0.0, Some(7.0)), 7_000.0);
        assert_eq!(backoff_ms(5, 0.0, Some(1.0)), 8_000.0);
    }
}
