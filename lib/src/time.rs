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
