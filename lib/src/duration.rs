//! Durations as users write them: humantime (`500ms`, `2s`, `1m30s`) or a bare number of seconds.
//!
//! The seed's environment variables (`RETRY_BASE_DELAY=2`) use bare seconds, compose uses
//! `1m30s`: both must work everywhere a duration is read.

use std::time::Duration;

/// Parse `500ms`, `2s`, `1m30s`, `2`, `0.5` (bare numbers are seconds).
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = text.parse::<f64>() {
        return from_secs_f64(secs).ok_or_else(|| format!("invalid duration `{text}`"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("invalid duration `{text}` ({e}); write e.g. 500ms, 2s, 1m30s"))
}

/// Seconds as a float to a duration, refusing negative, NaN and absurdly large values.
pub fn from_secs_f64(secs: f64) -> Option<Duration> {
    if !secs.is_finite() || !(0.0..=1e12).contains(&secs) {
        return None;
    }
    Some(Duration::from_secs_f64(secs))
}

/// A duration in milliseconds, saturating.
pub fn to_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Format for humans: `6.1s`, `250ms`, `1m30s`.
pub fn human(d: Duration) -> String {
    let ms = to_ms(d);
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        let secs = ms / 1000;
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_numbers_are_seconds() {
        assert_eq!(parse("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse("0.5").unwrap(), Duration::from_millis(500));
    }

    #[test]
    fn humantime_forms() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse("").is_err());
        assert!(parse("-1").is_err());
        assert!(parse("soon").is_err());
        assert!(parse("NaN").is_err());
    }

    #[test]
    fn human_format() {
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_millis(6100)), "6.1s");
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
    }
}
