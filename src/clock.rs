//! Wall-clock time for timestamps that are stored or compared between
//! nodes (hint ages, anti-entropy record times, write timestamps), and
//! such a time as people read it ([`rfc3339`]).
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

/// Ms since the Unix epoch as RFC 3339 UTC, `2025-12-01T01:02:03.456Z`
/// (days to a civil date as in Howard Hinnant's `civil_from_days`).
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    format!(
        "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    /// review-auth29 L2 (moved from the CLI, review-clock35 L5: the
    /// `superseded` body uses it too).
    #[test]
    fn a_wall_time_prints_as_rfc3339() {
        assert_eq!(
            super::rfc3339(1_764_550_923_456),
            "2025-12-01T01:02:03.456Z"
        );
        assert_eq!(
            super::rfc3339(1_709_251_199_000),
            "2024-02-29T23:59:59.000Z"
        );
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
    }
}
