//! Wall-clock time for timestamps that are stored or compared between
//! nodes (hint ages, anti-entropy record times, write timestamps).
//! Must not be used to measure durations: that is `std::time::Instant`'s
//! (or the injected clock's, in membership).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 if the clock is before it.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
