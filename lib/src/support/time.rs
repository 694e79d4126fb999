//! Wall-clock timestamps for records.
//!
//! Records carry `ts` as milliseconds since the Unix epoch: an integer every language parses,
//! with no time-zone question. Monotonic time ([`std::time::Instant`]) is used for measuring.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A run id: `YYYYMMDDTHHMMSSZ-PID`, sortable and unique per machine and second.
pub fn new_run_id() -> String {
    let secs = now_ms() / 1000;
    let stamp =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(secs))
            .to_string()
            .replace(['-', ':'], "");
    format!("{stamp}-{}", std::process::id())
}

/// The last millisecond RFC 3339 can write (9999-12-31T23:59:59.999Z): a record's `ts` past
/// it (a typo, a fuzzer) is outside any calendar a report can print.
pub const MAX_RFC3339_MS: u64 = 253_402_300_799_999;

/// `2026-11-28T16:18:33.000Z`; a time past year 9999 as `ts 253402300800000 (past year 9999)`.
pub fn rfc3339_millis(ts_ms: u64) -> String {
    if ts_ms > MAX_RFC3339_MS {
        return past_9999(ts_ms);
    }
    humantime::format_rfc3339_millis(UNIX_EPOCH + std::time::Duration::from_millis(ts_ms))
        .to_string()
}

/// `2026-11-28T16:18:33Z`, as [`rfc3339_millis`] without the milliseconds.
pub fn rfc3339_seconds(ts_ms: u64) -> String {
    if ts_ms > MAX_RFC3339_MS {
        return past_9999(ts_ms);
    }
    humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_millis(ts_ms))
        .to_string()
}

fn past_9999(ts_ms: u64) -> String {
    format!("ts {ts_ms} (past year 9999)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_past_year_9999_are_written_not_panicked_on() {
        assert_eq!(rfc3339_millis(MAX_RFC3339_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        assert!(rfc3339_millis(MAX_RFC3339_MS + 1).contains("past year 9999"));
        assert!(rfc3339_seconds(u64::MAX).contains("past year 9999"));
    }
}
