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

/// How a duration is written: exactly, as a configured delay (`2s`, `2.5s`, `90s`), or rounded,
/// as a measured time (`6.1s`, `1m30s`). Both write under a second as `250ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// Every millisecond kept, trailing zeros dropped: `2s`, `2.5s`, `90s`.
    Exact,
    /// Tenths of a second under a minute, then minutes and seconds: `6.1s`, `1m30s`.
    Rounded,
}

/// The one duration formatter: `d` written as `spelling` says.
pub fn format(d: Duration, spelling: Spelling) -> String {
    let ms = to_ms(d);
    // An exact zero is `0s`, as a delay of none is written.
    if ms < 1000 && !(ms == 0 && spelling == Spelling::Exact) {
        return format!("{ms}ms");
    }
    match spelling {
        Spelling::Exact if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        Spelling::Exact => {
            let text = format!("{}.{:03}", ms / 1000, ms % 1000);
            format!("{}s", text.trim_end_matches('0'))
        }
        Spelling::Rounded if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Spelling::Rounded => {
            let secs = ms / 1000;
            format!("{}m{:02}s", secs / 60, secs % 60)
        }
    }
}

/// Format for humans: `6.1s`, `250ms`, `1m30s`.
pub fn human(d: Duration) -> String {
    format(d, Spelling::Rounded)
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
    fn exact_keeps_every_millisecond_and_rounded_tenths() {
        let ms = Duration::from_millis;
        let exact = |d| format(d, Spelling::Exact);
        assert_eq!(
            [ms(0), ms(500), ms(2000), ms(2500), ms(2050), ms(90_000)].map(exact),
            ["0s", "500ms", "2s", "2.5s", "2.05s", "90s"]
        );
        let rounded = |d| format(d, Spelling::Rounded);
        assert_eq!(
            [ms(0), ms(250), ms(6123), ms(90_000)].map(rounded),
            ["0ms", "250ms", "6.1s", "1m30s"]
        );
    }

    #[test]
    fn human_format() {
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_millis(6100)), "6.1s");
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
    }
}
