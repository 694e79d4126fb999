//! Streaming JSON-lines input: read records from files or stdin one line at a time, report a
//! malformed line by its place (`events.jsonl:7: …`) and go on.
//!
//! Event files grow for as long as deploys run, so readers must not hold them in memory: this
//! reader hands each line to a callback and keeps nothing. A writer killed mid-line leaves a
//! truncated last line; that is expected wear, not corruption, so it is tolerated even under
//! `strict`. Decoding is the caller's (each reader knows its own record shapes); [`decode`]
//! turns serde's error into the one-line message the reader reports (hub's records decode with
//! [`crate::records::Line::decode`]).

use crate::{Error, Result, log};
use serde::Deserialize;
use std::fmt;
use std::io::{BufRead, BufReader, Read};

/// Where a line came from: its source (a path, or `-` for stdin) and 1-based line number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    /// The path as given, or `-` for standard input.
    pub source: &'a str,
    /// The 1-based line number.
    pub line: u64,
}

impl fmt::Display for Place<'_> {
    /// `FILE:LINE`, with stdin spelled `<stdin>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = if self.source == "-" {
            "<stdin>"
        } else {
            self.source
        };
        write!(f, "{source}:{}", self.line)
    }
}

/// How a reader treats malformed lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// A malformed line (other than a truncated last line) is an error, exit status 2.
    pub strict: bool,
    /// How many malformed lines are reported one by one before the rest are only counted.
    /// 0 means the default, 20.
    pub report_limit: u64,
}

/// What a read saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// Non-blank lines read.
    pub lines: u64,
    /// Lines the callback accepted.
    pub records: u64,
    /// Malformed lines skipped (truncated last lines not included).
    pub malformed: u64,
    /// Truncated last lines tolerated.
    pub truncated: u64,
}

impl Tally {
    /// Print the closing summary of skipped lines on stderr, if any were skipped.
    pub fn report(&self, policy: Policy) {
        let limit = limit(policy);
        if self.malformed > limit {
            log::warn(&format!(
                "{} more malformed lines skipped ({} in all)",
                self.malformed - limit,
                self.malformed
            ));
        }
    }
}

fn limit(policy: Policy) -> u64 {
    if policy.report_limit == 0 {
        20
    } else {
        policy.report_limit
    }
}

/// Read every source in turn (`-` is stdin; no sources reads stdin) and call `each` with every
/// non-blank line. `each` returns `Err(message)` for a line it cannot use: the line is reported
/// as `FILE:LINE: message` on stderr and skipped, or, with `policy.strict`, ends the read with
/// an error (exit 2). A source that cannot be opened is an error.
pub fn read_sources<F>(sources: &[String], policy: Policy, mut each: F) -> Result<Tally>
where
    F: FnMut(&str, Place<'_>) -> std::result::Result<(), String>,
{
    let stdin = ["-".to_owned()];
    let sources = if sources.is_empty() {
        &stdin[..]
    } else {
        sources
    };
    let mut tally = Tally::default();
    for source in sources {
        if source == "-" {
            let stdin = std::io::stdin();
            read_source(stdin.lock(), source, policy, &mut tally, &mut each)?;
        } else {
            let file = std::fs::File::open(source).map_err(|e| {
                Error::input(format!(
                    "cannot read {source}: {e}; pass an events file written by hub-start (or - for stdin)"
                ))
            })?;
            read_source(file, source, policy, &mut tally, &mut each)?;
        }
    }
    Ok(tally)
}

/// Read one source (any reader) line by line; see [`read_sources`]. Counts go into `tally`.
pub fn read_source<R, F>(
    reader: R,
    source: &str,
    policy: Policy,
    tally: &mut Tally,
    each: &mut F,
) -> Result<()>
where
    R: Read,
    F: FnMut(&str, Place<'_>) -> std::result::Result<(), String>,
{
    let mut lines = Lines {
        source,
        policy,
        tally,
        each,
    };
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    // Lines are handed out from the reader's own buffer; only a line cut by the buffer's end is
    // copied, here, so a big file is not copied a second time line by line.
    let mut carry = Vec::with_capacity(1024);
    let mut line_no = 0u64;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(format!("reading {source}"), &e)),
        };
        if chunk.is_empty() {
            if !carry.is_empty() {
                line_no += 1;
                lines.take(&carry, line_no)?;
            }
            return Ok(());
        }
        let mut rest = chunk;
        if !carry.is_empty() {
            let Some(end) = find_newline(rest) else {
                carry.extend_from_slice(rest);
                let used = rest.len();
                reader.consume(used);
                continue;
            };
            let (tail, after) = rest.split_at(end + 1);
            carry.extend_from_slice(tail);
            line_no += 1;
            lines.take(&carry, line_no)?;
            carry.clear();
            rest = after;
        }
        while let Some(end) = find_newline(rest) {
            let (line, after) = rest.split_at(end + 1);
            line_no += 1;
            lines.take(line, line_no)?;
            rest = after;
        }
        carry.extend_from_slice(rest);
        let used = chunk.len();
        reader.consume(used);
    }
}

/// Where one source's lines go: its name (for messages), the policy, the counts, and `each`.
struct Lines<'a, F> {
    source: &'a str,
    policy: Policy,
    tally: &'a mut Tally,
    each: &'a mut F,
}

impl<F> Lines<'_, F>
where
    F: FnMut(&str, Place<'_>) -> std::result::Result<(), String>,
{
    /// Hand one line (its newline included, when it has one) to `each`, and count and report
    /// the outcome.
    fn take(&mut self, line: &[u8], line_no: u64) -> Result<()> {
        let complete = line.last() == Some(&b'\n');
        let bytes = trim_ascii(line);
        if bytes.is_empty() {
            return Ok(());
        }
        let tally = &mut *self.tally;
        tally.lines += 1;
        let place = Place {
            source: self.source,
            line: line_no,
        };
        let outcome = match std::str::from_utf8(bytes) {
            Ok(line) => (self.each)(line, place),
            Err(e) => Err(format!("not UTF-8 text ({e})")),
        };
        match outcome {
            Ok(()) => tally.records += 1,
            Err(_) if !complete => {
                // The last line with no newline: a writer stopped mid-line. Expected, not fatal.
                tally.truncated += 1;
                log::warn(&format!(
                    "{place}: truncated last line ignored (its writer stopped mid-line)"
                ));
            }
            Err(message) => {
                tally.malformed += 1;
                if self.policy.strict {
                    return Err(Error::input(format!(
                        "{place}: {message} (--strict refuses malformed lines)"
                    )));
                }
                if tally.malformed <= limit(self.policy) {
                    log::warn(&format!("{place}: {message}; line skipped"));
                }
            }
        }
        Ok(())
    }
}

/// Where the first `\n` is.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', bytes)
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Decode one line into a typed record (borrowing from the line where it can), with a one-line
/// message for the reader to report: `not JSON (…)` or `not a hub record (…)`.
pub fn decode<'a, T: Deserialize<'a>>(line: &'a str) -> std::result::Result<T, String> {
    serde_json::from_str(line).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => format!("not a hub record ({e})"),
            Category::Io | Category::Syntax | Category::Eof => format!("not JSON ({e})"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Rec<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
    }

    fn collect(input: &str, policy: Policy) -> (Result<()>, Tally, Vec<(u64, String)>) {
        let mut seen = Vec::new();
        let mut tally = Tally::default();
        let result = read_source(
            input.as_bytes(),
            "events.jsonl",
            policy,
            &mut tally,
            &mut |line: &str, place: Place<'_>| {
                let rec: Rec<'_> = decode(line)?;
                seen.push((place.line, rec.kind.to_owned()));
                Ok(())
            },
        );
        (result, tally, seen)
    }

    /// [`collect`] of input that must be read without error.
    fn collect_ok(input: &str, policy: Policy) -> (Tally, Vec<(u64, String)>) {
        let (result, tally, seen) = collect(input, policy);
        assert!(result.is_ok(), "{result:?}");
        (tally, seen)
    }

    #[test]
    fn reads_lines_with_their_numbers_and_skips_blanks() {
        let input = "{\"type\":\"plan\"}\n\n  \n{\"type\":\"healthy\"}\r\n";
        let (tally, seen) = collect_ok(input, Policy::default());
        assert_eq!(seen, vec![(1, "plan".into()), (4, "healthy".into())]);
        assert_eq!(tally.records, 2);
        assert_eq!(tally.lines, 2);
    }

    #[test]
    fn malformed_lines_are_skipped_and_counted() {
        let input = "{\"type\":\"plan\"}\nnot json\n{\"x\":1}\n{\"type\":\"finished\"}\n";
        let (tally, seen) = collect_ok(input, Policy::default());
        assert_eq!(seen.len(), 2);
        assert_eq!(tally.malformed, 2);
    }

    #[test]
    fn strict_refuses_a_malformed_line_naming_its_place() {
        let policy = Policy {
            strict: true,
            ..Policy::default()
        };
        let (result, _, _) = collect("{\"type\":\"plan\"}\n{oops\n", policy);
        let err = result.unwrap_err();
        assert_eq!(err.code(), 2);
        assert!(
            err.message().starts_with("events.jsonl:2: not JSON"),
            "{err}"
        );
    }

    #[test]
    fn a_truncated_last_line_is_tolerated_even_when_strict() {
        let policy = Policy {
            strict: true,
            ..Policy::default()
        };
        let (tally, seen) = collect_ok("{\"type\":\"plan\"}\n{\"type\":\"heal", policy);
        assert_eq!(seen.len(), 1);
        assert_eq!(tally.truncated, 1);
        assert_eq!(tally.malformed, 0);
    }

    #[test]
    fn a_complete_last_line_without_newline_is_read() {
        let (_, _, seen) = collect("{\"type\":\"plan\"}", Policy::default());
        assert_eq!(seen, vec![(1, "plan".into())]);
    }

    #[test]
    fn invalid_utf8_is_malformed() {
        let mut tally = Tally::default();
        let result = read_source(
            &b"\xff\xfe\n"[..],
            "x",
            Policy::default(),
            &mut tally,
            &mut |_: &str, _: Place<'_>| Ok(()),
        );
        assert!(result.is_ok());
        assert_eq!(tally.malformed, 1);
    }

    /// A reader that hands out a few bytes per read, so lines straddle its buffer's refills.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(out.len()).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn lines_cut_across_reads_are_joined() {
        let input = "{\"type\":\"plan\"}\n\n{\"type\":\"healthy\"}\r\n{\"type\":\"finished\"}";
        for step in 1..input.len() {
            let mut seen = Vec::new();
            let mut tally = Tally::default();
            let result = read_source(
                Trickle(input.as_bytes(), step),
                "x",
                Policy::default(),
                &mut tally,
                &mut |line: &str, place: Place<'_>| {
                    seen.push((place.line, line.to_owned()));
                    Ok(())
                },
            );
            assert!(result.is_ok());
            assert_eq!(
                seen,
                vec![
                    (1, "{\"type\":\"plan\"}".to_owned()),
                    (3, "{\"type\":\"healthy\"}".to_owned()),
                    (4, "{\"type\":\"finished\"}".to_owned()),
                ],
                "{step} bytes per read"
            );
        }
    }

    #[test]
    fn the_newline_search_finds_the_first_one_anywhere() {
        for len in 0..40 {
            for at in 0..len {
                let mut bytes = vec![b'x'; len];
                bytes[at] = b'\n';
                if at + 3 < len {
                    bytes[at + 3] = b'\n';
                }
                assert_eq!(find_newline(&bytes), Some(at), "{len} {at}");
            }
            assert_eq!(find_newline(&vec![0x8a; len]), None);
        }
    }

    #[test]
    fn places_print_as_file_colon_line() {
        let place = Place {
            source: "-",
            line: 3,
        };
        assert_eq!(place.to_string(), "<stdin>:3");
    }
}
