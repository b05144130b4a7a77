//! Time as reauth counts it: whole seconds since the Unix epoch, in one place for the store, the
//! tokens and the service.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> UnixTime {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs() as i64)
}
