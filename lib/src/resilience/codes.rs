//! Sets of exit statuses, written as users write them: `1,75,100-110`.
//!
//! `hub-retry --retry-on/--stop-on` decide from a child's exit status whether to try again;
//! the set syntax is the one HTTP status lists use elsewhere in hub (`200-399`), so users
//! learn one form. What a service's exit status means for hub-start's retries lives here too.

use std::fmt;
use std::str::FromStr;

/// A set of numbers written as users write them, `1,75,100-110`, kept as those inclusive
/// ranges: exit statuses and HTTP statuses share the one syntax and this one parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet<T> {
    ranges: Vec<(T, T)>,
}

impl<T: Copy + Ord + FromStr + fmt::Display> RangeSet<T> {
    /// Parse `text`, every number within `lo..=hi`; `what` words the error ("a list of exit
    /// statuses (0-255) such as 1,75,100-110").
    pub fn parse(text: &str, bounds: (T, T), what: &str) -> Result<RangeSet<T>, String> {
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let (lo, hi) = part.split_once('-').unwrap_or((part, part));
            let number = |t: &str| {
                t.trim()
                    .parse::<T>()
                    .ok()
                    .filter(|n| (bounds.0..=bounds.1).contains(n))
                    .ok_or_else(|| format!("`{text}` is not {what}"))
            };
            let (lo, hi) = (number(lo)?, number(hi)?);
            if lo > hi {
                return Err(format!("`{part}`: the range is backwards; write {hi}-{lo}"));
            }
            ranges.push((lo, hi));
        }
        Ok(RangeSet { ranges })
    }

    /// Is `n` in the set?
    pub fn contains(&self, n: T) -> bool {
        self.ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&n))
    }
}

impl<T: PartialEq + fmt::Display> fmt::Display for RangeSet<T> {
    /// The canonical spelling, `1,75,100-110`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (lo, hi)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

/// A set of exit statuses (0–255), kept as the inclusive ranges the user wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitCodes(RangeSet<u8>);

impl ExitCodes {
    /// Parse `1`, `1,75`, `100-110`, `1,75,100-110` (spaces allowed around items).
    pub fn parse(text: &str) -> Result<ExitCodes, String> {
        RangeSet::parse(
            text,
            (0, 255),
            "a list of exit statuses (0-255) such as 1,75,100-110",
        )
        .map(ExitCodes)
    }

    /// Is `status` (a shell-style status: 124 timed out, 128+N killed by signal N) in the set?
    pub fn contains(&self, status: i32) -> bool {
        u8::try_from(status).is_ok_and(|s| self.0.contains(s))
    }
}

impl FromStr for ExitCodes {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ExitCodes::parse(text)
    }
}

impl fmt::Display for ExitCodes {
    /// The canonical spelling, `1,75,100-110`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A set of HTTP statuses (100–599) a health check accepts: `200-399`, `200,204`, `200`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpStatuses(RangeSet<u16>);

impl HttpStatuses {
    /// Parse a status list; the error names what is wrong, so `hub-levels` can refuse it early.
    pub fn parse(text: &str) -> Result<HttpStatuses, String> {
        RangeSet::parse(text, (100, 599), "a status list such as 200-399 or 200,204")
            .map(HttpStatuses)
    }

    /// Is `status` accepted?
    pub fn contains(&self, status: u16) -> bool {
        self.0.contains(status)
    }
}

/// Why no retry can make a command that exited with `status` succeed: the shell's 126 (found
/// but not executable) and 127 (not found). `None` for any other status. Retrying these only
/// delays the failure by every backoff delay.
pub fn cannot_succeed(status: i32) -> Option<&'static str> {
    match status {
        126 => Some("126: the command is not executable; retrying cannot help"),
        127 => Some("127: the command was not found; retrying cannot help"),
        _ => None,
    }
}

/// Said of a long-running (`x-hub.run`) service whose process exited 0: as in compose, an exit
/// is a failure unless the service is a job, and this is how to say it is one.
pub const EXITED_0_HINT: &str = "if it is a one-shot job, set `x-hub.health.completed: true`";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ranges() {
        let codes = ExitCodes::parse("1, 75,100-110").unwrap();
        for yes in [1, 75, 100, 105, 110] {
            assert!(codes.contains(yes), "{yes}");
        }
        for no in [0, 2, 74, 99, 111, 255, -1, 256, 1000] {
            assert!(!codes.contains(no), "{no}");
        }
        assert_eq!(codes.to_string(), "1,75,100-110");
    }

    #[test]
    fn bad_lists_are_refused() {
        for bad in ["", "x", "1,,2", "256", "-1", "5-3", "1-", "1-2-3"] {
            assert!(ExitCodes::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ExitCodes::parse("5-3").unwrap_err().contains("backwards"));
    }
}
