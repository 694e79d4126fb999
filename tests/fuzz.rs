//! No input makes any tool panic (exit 101): every input format (compose files, event streams,
//! history files, the breaker's state file) mutated at random for a bounded time, driven
//! through the real binaries, plus the inputs fuzzing once found.
//!
//! The mutations are seeded (the seed is in the failure message, with the input written out),
//! so a failure reproduces. Each target runs for a time budget of about a second: enough for a
//! few hundred inputs in the normal test run; `HUB_FUZZ_SECS` runs longer.

use hub_tests::{bin, fixture};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// hub's own seeded generator (reproducible from its seed), with a bounded draw.
struct Rng(hub::backoff::Rng);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.0.next_u64() % (n.max(1) as u64)).unwrap()
    }
}

/// Things parsers trip on: huge and negative numbers, a time past year 9999, path traversal,
/// a name longer than any format width, control characters, structure.
fn tokens() -> Vec<Vec<u8>> {
    let long = "a".repeat(70_000);
    [
        "253402300800000",
        "18446744073709551615",
        "99999999999999999999999",
        "-1",
        "1e400",
        "0",
        "../../x",
        long.as_str(),
        "\u{0}",
        "\u{1b}[31m",
        "null",
        "[]",
        "{}",
        "\"",
        "\n",
        ":",
        "- ",
        "&a",
        "*a",
    ]
    .iter()
    .map(|t| t.as_bytes().to_vec())
    .collect()
}

fn mutate(rng: &mut Rng, seed: &[u8], tokens: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => {
                let end = (at + rng.below(64)).min(data.len());
                data.drain(at..end);
            }
            2 => {
                let token = &tokens[rng.below(tokens.len())];
                data.splice(at..at, token.iter().copied());
            }
            3 => {
                // Replace a whole number (a `ts`, a count, a port) with an interesting one.
                let digits: Vec<usize> = (0..data.len())
                    .filter(|&i| data[i].is_ascii_digit())
                    .collect();
                if let Some(&start) = digits.get(rng.below(digits.len())) {
                    let end = (start..data.len())
                        .find(|&i| !data[i].is_ascii_digit())
                        .unwrap_or(data.len());
                    let token = &tokens[rng.below(6)];
                    data.splice(start..end, token.iter().copied());
                }
            }
            4 => {
                // Replace a quoted string (a service name, a key) with a token.
                let quotes: Vec<usize> = (0..data.len()).filter(|&i| data[i] == b'"').collect();
                if quotes.len() >= 2 {
                    let q = rng.below(quotes.len() - 1);
                    let (start, end) = (quotes[q] + 1, quotes[q + 1]);
                    let token = &tokens[6 + rng.below(4)];
                    data.splice(start..end, token.iter().copied());
                }
            }
            _ => {
                let end = (at + rng.below(200)).min(data.len());
                let copy = data[at..end].to_vec();
                data.splice(at..at, copy);
            }
        }
    }
    data
}

fn budget() -> Duration {
    let secs = std::env::var("HUB_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    Duration::from_secs_f64(secs)
}

/// Run `tool` with `args` (the input written to `input` first); fail on exit 101 or a hang.
fn run_once(tool: &str, args: &[&str], dir: &Path, what: &str, input_bytes: &[u8]) {
    let mut child = Command::new(bin(tool))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut { stderr }, &mut text);
        let _ = tx.send((child.wait(), text));
    });
    let Ok((status, stderr)) = rx.recv_timeout(hub_tests::DEADLINE) else {
        keep_and_fail(tool, args, what, input_bytes, "hung past the deadline", "");
    };
    let code = status.expect("wait").code();
    if code == Some(101) {
        keep_and_fail(
            tool,
            args,
            what,
            input_bytes,
            "panicked (exit 101)",
            &stderr,
        );
    }
}

fn keep_and_fail(
    tool: &str,
    args: &[&str],
    what: &str,
    input: &[u8],
    how: &str,
    stderr: &str,
) -> ! {
    let kept = std::env::temp_dir().join(format!("hub-fuzz-{tool}-{}.input", std::process::id()));
    let _ = std::fs::write(&kept, input);
    let head: String = stderr.chars().take(2000).collect();
    panic!(
        "{tool} {args:?} {how} on {what}; input kept in {}\n--- stderr\n{head}",
        kept.display()
    );
}

/// Mutate each seed in turn for the budget, writing each input to `name` in a temp folder and
/// running `tool` on it with each argument set.
fn fuzz(tool: &str, name: &str, seeds: &[Vec<u8>], arg_sets: &[Vec<&str>], seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join(name);
    let tokens = tokens();
    let mut rng = Rng(hub::backoff::Rng::seeded(seed));
    let deadline = Instant::now() + budget();
    let mut runs = 0u32;
    while Instant::now() < deadline || runs < 20 {
        let pick = rng.below(seeds.len());
        let data = mutate(&mut rng, &seeds[pick], &tokens);
        std::fs::write(&input, &data).unwrap();
        let args = &arg_sets[rng.below(arg_sets.len())];
        run_once(
            tool,
            args,
            dir.path(),
            &format!("mutation {runs} of seed {seed}"),
            &data,
        );
        runs += 1;
    }
    eprintln!("{tool}: {runs} mutated inputs, no panic");
}

fn read_all(paths: &[PathBuf]) -> Vec<Vec<u8>> {
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn event_fixtures() -> Vec<Vec<u8>> {
    let dir = fixture("events");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl") && !p.ends_with("history.jsonl"))
        .collect();
    paths.sort();
    read_all(&paths)
}

#[test]
fn hub_levels_survives_mutated_compose_files() {
    let dir = fixture("levels");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    let args = |format: &'static str| vec!["-f", "compose.yaml", "--format", format];
    fuzz(
        "hub-levels",
        "compose.yaml",
        &read_all(&paths),
        &[args("json"), args("table"), args("text"), args("dot")],
        0x9e37_79b9_7f4a_7c15,
    );
}

#[test]
fn hub_report_survives_mutated_event_streams() {
    let args = |format: &'static str| vec!["--format", format, "events.jsonl"];
    fuzz(
        "hub-report",
        "events.jsonl",
        &event_fixtures(),
        &[
            args("text"),
            args("json"),
            args("markdown"),
            args("html"),
            args("prometheus"),
        ],
        0x2545_f491_4f6c_dd1d,
    );
}

#[test]
fn hub_report_trend_survives_mutated_history_files() {
    let args =
        |format: &'static str| vec!["trend", "--history", "history.jsonl", "--format", format];
    fuzz(
        "hub-report",
        "history.jsonl",
        &read_all(&[fixture("events/history.jsonl")]),
        &[args("text"), args("json"), args("html")],
        0x1234_5678_9abc_def1,
    );
}

#[test]
fn hub_breaker_status_survives_mutated_state_files() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("breaker.json");
    for key in [
        "db:start",
        "api:start",
        "db:start",
        "db:start",
        "db:start",
        "db:start",
    ] {
        let _ = Command::new(bin("hub-breaker"))
            .args(["failure", "--state"])
            .arg(&state)
            .arg(key)
            .stderr(Stdio::null())
            .status()
            .unwrap();
    }
    let seed = std::fs::read(&state).unwrap();
    fuzz(
        "hub-breaker",
        "breaker.json",
        &[seed],
        &[
            vec!["status", "--state", "breaker.json"],
            vec!["status", "--state", "breaker.json", "--json"],
            vec!["check", "--state", "breaker.json", "db:start"],
        ],
        0x0bad_cafe_f00d_d00d,
    );
}

/// The inputs fuzzing found, kept as plain cases.
#[test]
fn inputs_that_once_panicked_are_refused_or_reported() {
    let dir = tempfile::tempdir().unwrap();
    let long = "s".repeat(70_000);
    let events = format!(
        "{{\"type\":\"plan\",\"ts\":1,\"run_id\":\"r\",\"service\":\"{long}\",\"level\":0,\"class\":\"core\",\"deps\":[],\"timeout_ms\":1000,\"backend\":\"run\",\"run\":\"true\",\"health\":{{\"kind\":\"none\"}}}}\n\
         {{\"type\":\"finished\",\"ts\":253402300800000,\"run_id\":\"r\",\"ok\":true,\"exit_status\":0}}\n"
    );
    std::fs::write(dir.path().join("events.jsonl"), &events).unwrap();
    for format in ["text", "json", "markdown", "html", "prometheus"] {
        let args = ["--format", format, "events.jsonl"];
        run_once(
            "hub-report",
            &args,
            dir.path(),
            "a long name and a ts in year 10000",
            events.as_bytes(),
        );
    }
    let history = std::fs::read_to_string(fixture("events/history.jsonl"))
        .unwrap()
        .replace("\"mongodb\"", &format!("\"{long}\""))
        .replace("2026-11-21T09:00:00.000Z", "+10000-01-01T00:00:00.000Z");
    std::fs::write(dir.path().join("history.jsonl"), &history).unwrap();
    for format in ["text", "json", "html"] {
        let args = ["trend", "--history", "history.jsonl", "--format", format];
        run_once(
            "hub-report",
            &args,
            dir.path(),
            "a long name in a history",
            history.as_bytes(),
        );
    }
    let state = "{\"version\":1,\"keys\":{\"k\":{\"state\":\"open\",\"consecutive_failures\":9,\"opened_at\":253402300800000,\"updated_at\":253402300800000}}}";
    std::fs::write(dir.path().join("breaker.json"), state).unwrap();
    run_once(
        "hub-breaker",
        &["status", "--state", "breaker.json"],
        dir.path(),
        "opened_at in year 10000",
        state.as_bytes(),
    );
    // Names too long for a file, or leading out of the state dir, are refused with exit 2.
    let compose = format!(
        "services:\n  {}:\n    x-hub: {{ run: \"true\" }}\n",
        "n".repeat(300)
    );
    std::fs::write(dir.path().join("compose.yaml"), &compose).unwrap();
    hub_tests::Cmd::new("hub-levels")
        .current_dir(dir.path())
        .args(["-f", "compose.yaml", "--format", "table"])
        .stderr_contains("too long")
        .status(2);
    let plan = "{\"type\":\"plan\",\"ts\":1,\"run_id\":\"r\",\"service\":\"../../escaped\",\"level\":0,\"class\":\"core\",\"deps\":[],\"soft_deps\":[],\"timeout_ms\":1000,\"backend\":\"run\",\"run\":\"true\",\"health\":{\"kind\":\"none\",\"interval_ms\":100,\"probe_timeout_ms\":100,\"start_period_ms\":0},\"retry\":{\"attempts\":1,\"delay_ms\":1,\"max_delay_ms\":1}}\n";
    for stop in [false, true] {
        let mut cmd = hub_tests::Cmd::new("hub-start")
            .current_dir(dir.path())
            .args(["--state-dir", "state/hub"])
            .stdin(plan)
            .stderr_contains("invalid service name");
        if stop {
            cmd = cmd.arg("--stop");
        }
        cmd.status(2);
    }
    assert!(!dir.path().join("escaped.log").exists());
    assert!(!dir.path().join("state/escaped.log").exists());
    // Breaker keys that are empty or hold control characters; a state path that is a FIFO.
    for key in ["", "a\u{7}b"] {
        hub_tests::Cmd::new("hub-breaker")
            .current_dir(dir.path())
            .args(["failure", "--state", "b.json", key])
            .status(2);
    }
    assert!(
        Command::new("mkfifo")
            .arg(dir.path().join("fifo"))
            .status()
            .unwrap()
            .success()
    );
    hub_tests::Cmd::new("hub-breaker")
        .current_dir(dir.path())
        .args(["status", "--state", "fifo"])
        .stderr_contains("not a regular file")
        .status(2);
    hub_tests::Cmd::new("hub-breaker")
        .current_dir(dir.path())
        .args(["status", "--state", "/dev/zero"])
        .stderr_contains("not a regular file")
        .status(2);
    hub_tests::Cmd::new("hub-start")
        .current_dir(dir.path())
        .args(["--state-dir", "fifo"])
        .stderr_contains("not a folder")
        .status(2);
    // --timeout 0 is no timeout, as for GNU timeout.
    hub_tests::Cmd::new("hub-retry")
        .args(["--timeout", "0", "--", "true"])
        .status(0);
}
