//! The line that opens each start attempt in a service's log (`STATE_DIR/logs/SERVICE.log`).
//!
//! A service's log is appended to across runs and attempts; without a marker, the tail shown
//! for a failure mixes in lines from an earlier, successful run. `hub-start` writes this header
//! before each attempt's output, `hub-wait-healthy` cuts a failure's log tail at the last one,
//! and `hub-logs` splits a log by attempt with [`parse_header`]. One formatter and one parser
//! here, so the three agree on the format:
//!
//! `==> hub run=RUN_ID attempt=N at=YYYY-MM-DDTHH:MM:SSZ cmd=COMMAND <==`

use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, UNIX_EPOCH};

const OPEN: &str = "==> hub run=";
const CLOSE: &str = " <==";

/// One attempt's header, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The deploy run (`-` when the attempt had none).
    pub run_id: String,
    /// The attempt, 1-based.
    pub attempt: u32,
    /// When it started, RFC 3339 UTC to the second (`2026-12-01T01:02:03Z`).
    pub at: String,
    /// The command as hub shows it, on one line.
    pub cmd: String,
}

/// The header line (no newline) for attempt `attempt` of run `run_id`, started at `at_ms`
/// (ms since the epoch), running `cmd`. Line breaks in `cmd` become spaces: one line per header.
pub fn header(run_id: Option<&str>, attempt: u32, at_ms: u64, cmd: &str) -> String {
    let run_id = run_id
        .filter(|r| !r.is_empty() && !r.contains(char::is_whitespace))
        .unwrap_or("-");
    let at = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(at_ms));
    let cmd = cmd.replace(['\n', '\r'], " ");
    format!("{OPEN}{run_id} attempt={attempt} at={at} cmd={cmd}{CLOSE}")
}

/// The header in `line` (with or without its newline), or `None` for any other line.
pub fn parse_header(line: &str) -> Option<Header> {
    let body = line
        .trim_end_matches(['\n', '\r'])
        .strip_prefix(OPEN)?
        .strip_suffix(CLOSE)?;
    let (run_id, rest) = body.split_once(" attempt=")?;
    let (attempt, rest) = rest.split_once(" at=")?;
    let (at, cmd) = rest.split_once(" cmd=")?;
    Some(Header {
        run_id: run_id.to_owned(),
        attempt: attempt.parse().ok()?,
        at: at.to_owned(),
        cmd: cmd.to_owned(),
    })
}

/// The part of a log's `lines` that belongs to the last attempt: after its last header (all
/// of them when there is none, as in a log written before headers existed).
pub fn last_attempt<'a>(lines: &'a [&'a str]) -> &'a [&'a str] {
    match lines.iter().rposition(|l| parse_header(l).is_some()) {
        Some(i) => &lines[i + 1..],
        None => lines,
    }
}

/// How many lines of a dead process's log go into the record about its death.
pub const TAIL_LINES: usize = 10;
/// How much of the end of a log is read to find those lines.
const TAIL_BYTES: u64 = 64 * 1024;

/// The last [`TAIL_LINES`] non-empty-ended lines of a log's last attempt (empty when it
/// cannot be read).
pub fn tail(path: &str) -> Vec<String> {
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let skip = len.saturating_sub(TAIL_BYTES);
    if skip > 0 && file.seek(SeekFrom::Start(skip)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if skip > 0 && !lines.is_empty() {
        // The first line read may be cut in the middle.
        lines.remove(0);
    }
    // Lines before this attempt's header are an earlier attempt's or run's.
    let mut lines = last_attempt(&lines).to_vec();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    let from = lines.len().saturating_sub(TAIL_LINES);
    lines[from..]
        .iter()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips() {
        let line = header(
            Some("20261201T010203Z-42"),
            2,
            1_764_550_923_000,
            "sh -c 'a\nb'",
        );
        assert_eq!(
            line,
            "==> hub run=20261201T010203Z-42 attempt=2 at=2025-12-01T01:02:03Z cmd=sh -c 'a b' <=="
        );
        assert_eq!(
            parse_header(&format!("{line}\n")),
            Some(Header {
                run_id: "20261201T010203Z-42".into(),
                attempt: 2,
                at: "2025-12-01T01:02:03Z".into(),
                cmd: "sh -c 'a b'".into(),
            })
        );
    }

    #[test]
    fn a_missing_run_id_is_a_dash_and_other_lines_are_not_headers() {
        let line = header(None, 1, 0, "x");
        assert_eq!(parse_header(&line).map(|h| h.run_id), Some("-".into()));
        assert_eq!(
            parse_header("==> hub run=x attempt=one at=t cmd=c <=="),
            None
        );
        assert_eq!(parse_header("server listening"), None);
    }

    #[test]
    fn the_last_attempt_is_after_the_last_header() {
        let h1 = header(Some("r"), 1, 0, "x");
        let h2 = header(Some("r"), 2, 0, "x");
        let lines = ["old", h1.as_str(), "one", h2.as_str(), "two"];
        assert_eq!(last_attempt(&lines), ["two"]);
        assert_eq!(last_attempt(&["plain"]), ["plain"]);
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = std::env::temp_dir().join(format!("hub-logheader-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("svc.log");
        let text: String = (1..=15).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, format!("{text}\n\n")).unwrap();
        let lines = tail(path.to_str().unwrap());
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines[0], "line 6");
        assert_eq!(lines[9], "line 15");
        assert!(tail("/nonexistent/hub.log").is_empty());
        // An earlier attempt's lines are not this attempt's.
        let header = header(Some("r"), 2, 0, "x");
        std::fs::write(&path, format!("{text}{header}\nnew\n")).unwrap();
        assert_eq!(tail(path.to_str().unwrap()), ["new"]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
