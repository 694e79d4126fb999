//! `hub-retry` on the real binary: exit statuses passed through, retries and their messages,
//! per-attempt timeouts that kill the whole process group, exit-code predicates, environment
//! defaults, signals during an attempt and during a delay, the time budget and the breaker.

use hub::records::{Attempt, Line, Record};
use hub::retry::Outcome;
use hub_tests::{Cmd, bin, stderr, typed_records};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Read a JSON-lines events file (empty when missing).
fn events(path: &Path) -> Vec<Line> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(hub_tests::line)
        .collect()
}

/// The `attempt` records among `records` (every one of them must be one).
fn attempts(records: impl IntoIterator<Item = Record>) -> Vec<Attempt> {
    records
        .into_iter()
        .map(|r| match r {
            Record::Attempt(attempt) => attempt,
            other => panic!("not an attempt record: {other:?}"),
        })
        .collect()
}

/// The `attempt` records hub-retry wrote on stdout (`--events -`).
fn attempts_of(out: &std::process::Output) -> Vec<Attempt> {
    attempts(typed_records(out))
}

/// Wait (with a generous deadline) until `condition` holds.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Is `pid` gone (or a zombie no one reaped yet)?
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Commands that count their runs in a file.
struct CountedRuns {
    dir: tempfile::TempDir,
}

impl CountedRuns {
    fn new() -> Self {
        CountedRuns {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn count_file(&self) -> std::path::PathBuf {
        self.dir.path().join("count")
    }

    /// A shell command that counts one run and exits with `code`.
    fn failing(&self, code: u8) -> String {
        format!("echo x >> {}; exit {code}", self.count_file().display())
    }

    /// The runs counted so far, starting the count again.
    fn take(&self) -> usize {
        let n = std::fs::read_to_string(self.count_file())
            .unwrap_or_default()
            .lines()
            .count();
        let _ = std::fs::remove_file(self.count_file());
        n
    }
}

/// hub-retry spawned in the background, with the inherited knobs removed.
fn spawn_retry(args: &[&str]) -> Child {
    let mut cmd = Command::new(bin("hub-retry"));
    for key in ["RETRY_MAX_ATTEMPTS", "RETRY_BASE_DELAY", "RETRY_MAX_DELAY"] {
        cmd.env_remove(key);
    }
    cmd.env("NO_COLOR", "1")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning hub-retry")
}

/// Send `signal` (`TERM`, `INT`) to `child`, with the shell's builtin `kill` (no procps needed).
fn send(child: &Child, signal: &str) {
    let status = Command::new("sh")
        .args(["-c", &format!("kill -s {signal} {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn success_is_silent_and_exits_zero() {
    Cmd::new("hub-retry")
        .args(["--", "true"])
        .stdout("")
        .status(0);
}

#[test]
fn the_last_status_passes_through() {
    let out = Cmd::new("hub-retry")
        .args([
            "-n", "2", "--delay", "0", "--name", "job", "--", "sh", "-c", "exit 7",
        ])
        .stderr_contains("job: attempt 1/2 failed (exit 7), retrying in 0s")
        .stderr_contains("job: attempt 2/2 failed (exit 7); giving up after 2 attempts")
        .status(7);
    assert!(out.stdout.is_empty(), "stdout carries records only");
}

#[test]
fn messages_name_the_service_and_the_delay_as_the_seed_did() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count");
    let script = format!("echo x >> {0}; [ $(wc -l < {0}) -ge 3 ]", count.display());
    let log = dir.path().join("events.jsonl");
    Cmd::new("hub-retry")
        .args([
            "--name",
            "keycloak",
            "--delay",
            "1",
            "--max-delay",
            "1",
            "--events",
        ])
        .arg(&log)
        .args(["--", "sh", "-c", &script])
        .stderr_contains("keycloak: attempt 1/3 failed (exit 1), retrying in 1s")
        .stderr_contains("keycloak: attempt 2/3 failed (exit 1), retrying in 1s")
        .stderr_contains("keycloak: recovered after 3 attempts")
        .status(0);
    let lines = events(&log);
    assert!(lines.iter().all(|l| l.ts.is_some()));
    let records = attempts(lines.into_iter().map(|l| l.record));
    assert_eq!(records.len(), 3);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.name, "keycloak");
        assert_eq!(record.attempt as usize, i + 1);
        assert_eq!(record.max_attempts, 3);
    }
    let outcomes: Vec<_> = records.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Failure, Outcome::Failure, Outcome::Success]
    );
    let delays: Vec<_> = records.iter().map(|r| r.next_delay_ms).collect();
    assert_eq!(delays, [Some(1000), Some(1000), None]);
    let finals: Vec<_> = records.iter().map(|r| r.is_final).collect();
    assert_eq!(finals, [false, false, true]);
}

#[test]
fn a_child_killed_by_a_signal_exits_128_plus_n_and_is_retried() {
    let out = Cmd::new("hub-retry")
        .args([
            "-n",
            "2",
            "--delay",
            "0",
            "--events",
            "-",
            "--",
            "sh",
            "-c",
            "kill -KILL $$",
        ])
        .stderr_contains("killed by SIGKILL")
        .status(137);
    assert_eq!(attempts_of(&out).len(), 2);
}

#[test]
fn a_child_killed_by_sigint_is_never_retried() {
    let out = Cmd::new("hub-retry")
        .args([
            "-n",
            "3",
            "--delay",
            "0",
            "--events",
            "-",
            "--",
            "sh",
            "-c",
            "kill -INT $$",
        ])
        .status(130);
    let records = attempts_of(&out);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].outcome, Outcome::Interrupted);
    assert_eq!(records[0].status, 130);
    assert!(records[0].is_final);
}

#[test]
fn a_timeout_kills_the_whole_group_and_exits_124() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    // Both the shell and its background grandchild ignore TERM: only the KILL after
    // --kill-after ends them, and it must reach the grandchild too.
    let script = format!(
        "trap '' TERM; sleep 1000 & echo $! > {}; wait",
        pidfile.display()
    );
    let out = Cmd::new("hub-retry")
        .args([
            "-n",
            "1",
            "--timeout",
            "2s",
            "--kill-after",
            "100ms",
            "--events",
            "-",
        ])
        .args(["--", "sh", "-c", &script])
        .stderr_contains("attempt 1/1 timed out after 2s (exit 124)")
        .status(124);
    let records = attempts_of(&out);
    assert_eq!(records[0].outcome, Outcome::Timeout);
    assert_eq!(records[0].status, 124);
    let grandchild: u32 = std::fs::read_to_string(&pidfile)
        .expect("the attempt started its grandchild within the timeout")
        .trim()
        .parse()
        .unwrap();
    wait_until("the grandchild to be killed", || gone(grandchild));
}

#[test]
fn retry_on_retries_only_the_listed_statuses() {
    let runs = CountedRuns::new();
    Cmd::new("hub-retry")
        .args([
            "--delay",
            "0",
            "--retry-on",
            "3,100-110",
            "--",
            "sh",
            "-c",
            &runs.failing(4),
        ])
        .stderr_contains("not retried: 4 is not in --retry-on 3,100-110")
        .status(4);
    assert_eq!(runs.take(), 1);
    Cmd::new("hub-retry")
        .args([
            "--delay",
            "0",
            "--retry-on",
            "3,100-110",
            "--",
            "sh",
            "-c",
            &runs.failing(105),
        ])
        .status(105);
    assert_eq!(runs.take(), 3);
}

#[test]
fn stop_on_stops_at_the_listed_statuses() {
    let runs = CountedRuns::new();
    Cmd::new("hub-retry")
        .args([
            "--delay",
            "0",
            "--stop-on",
            "5",
            "--",
            "sh",
            "-c",
            &runs.failing(5),
        ])
        .stderr_contains("not retried: 5 is in --stop-on 5")
        .status(5);
    assert_eq!(runs.take(), 1);
    Cmd::new("hub-retry")
        .args([
            "--delay",
            "0",
            "--stop-on",
            "5",
            "--",
            "sh",
            "-c",
            &runs.failing(6),
        ])
        .status(6);
    assert_eq!(runs.take(), 3);
}

#[test]
fn environment_variables_set_the_defaults() {
    let out = Cmd::new("hub-retry")
        .env("RETRY_MAX_ATTEMPTS", "4")
        .env("RETRY_BASE_DELAY", "0.01")
        .env("RETRY_MAX_DELAY", "0.02")
        .args(["--events", "-", "--", "false"])
        .stderr_contains("attempt 4/4 failed (exit 1)")
        .status(1);
    let delays: Vec<Option<u64>> = attempts_of(&out).iter().map(|r| r.next_delay_ms).collect();
    assert_eq!(delays, [Some(10), Some(20), Some(20), None]);
    // Flags beat the environment.
    let out = Cmd::new("hub-retry")
        .env("RETRY_MAX_ATTEMPTS", "4")
        .args(["-n", "1", "--events", "-", "--", "false"])
        .status(1);
    assert_eq!(attempts_of(&out).len(), 1);
}

#[test]
fn sigterm_during_a_retry_delay_stops_at_once_with_143() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let log_arg = log.to_str().unwrap();
    let child = spawn_retry(&[
        "-n", "2", "--delay", "1h", "--events", log_arg, "--", "false",
    ]);
    wait_until("the first attempt's record", || events(&log).len() == 1);
    send(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted by SIGTERM while waiting to retry"));
    assert_eq!(events(&log).len(), 1, "no further attempt");
}

#[test]
fn sigint_is_forwarded_to_the_running_attempt_and_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let marker = dir.path().join("started");
    let script = format!("touch {}; sleep 1000", marker.display());
    let child = spawn_retry(&[
        "-n",
        "3",
        "--delay",
        "0",
        "--events",
        log.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        &script,
    ]);
    wait_until("the attempt to start", || marker.exists());
    send(&child, "INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let records = attempts(events(&log).into_iter().map(|l| l.record));
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].outcome, Outcome::Interrupted);
}

#[test]
fn no_attempt_starts_that_the_budget_cannot_cover() {
    let out = Cmd::new("hub-retry")
        .args([
            "--max-time",
            "1s",
            "--delay",
            "5s",
            "--events",
            "-",
            "--",
            "false",
        ])
        .stderr_contains("would overrun --max-time 1s")
        .status(1);
    assert_eq!(attempts_of(&out).len(), 1);
}

#[test]
fn an_open_breaker_refuses_with_75_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("breaker.json");
    let marker = dir.path().join("ran");
    // Two failures with threshold 2 open the breaker; hub-retry writes the transition.
    let out = Cmd::new("hub-retry")
        .args([
            "-n",
            "5",
            "--delay",
            "0",
            "--threshold",
            "2",
            "--breaker",
            "svc:start",
        ])
        .arg("--state")
        .arg(&state)
        .args(["--events", "-", "--name", "svc", "--", "false"])
        .stderr_contains("svc:start: circuit breaker closed → open (2 consecutive failures)")
        .stderr_contains(
            "svc: svc:start: circuit breaker open after 2 consecutive failures; refused",
        )
        .status(75);
    let kinds: Vec<(String, String)> = typed_records(&out)
        .iter()
        .map(|r| {
            let what = match r {
                Record::Attempt(a) => a.outcome.as_str(),
                Record::Breaker(t) => t.to.as_str(),
                other => panic!("neither an attempt nor a breaker record: {other:?}"),
            };
            (r.kind().into(), what.into())
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("attempt", "failure"),
        ("attempt", "failure"),
        ("breaker", "open"),
        ("attempt", "refused"),
    ]
    .iter()
    .map(|(a, b)| ((*a).into(), (*b).into()))
    .collect();
    // The transition is written when the failure is recorded, before that attempt's record.
    let mut sorted = kinds.clone();
    sorted.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(sorted, expected_sorted, "{kinds:?}");
    Cmd::new("hub-retry")
        .args(["--breaker", "svc:start"])
        .arg("--state")
        .arg(&state)
        .args(["--", "touch"])
        .arg(&marker)
        .stderr_contains("refused")
        .status(75);
    assert!(!marker.exists(), "a refused command never runs");
}

#[test]
fn a_corrupt_breaker_state_is_an_error() {
    let dir = hub_tests::temp_with(&[("breaker.json", "{ not json")]);
    let state = dir.path().join("breaker.json");
    Cmd::new("hub-retry")
        .args(["--breaker", "k"])
        .arg("--state")
        .arg(&state)
        .args(["--", "true"])
        .stderr_contains(&state.display().to_string())
        .stderr_contains("hub-breaker reset --all")
        .status(2);
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "{ not json");
}

#[test]
fn bad_usage_exits_2_and_a_missing_command_127() {
    Cmd::new("hub-retry").status(2);
    Cmd::new("hub-retry")
        .args(["--retry-on", "abc", "--", "true"])
        .status(2);
    Cmd::new("hub-retry")
        .args(["--retry-on", "9-3", "--", "true"])
        .status(2);
    Cmd::new("hub-retry")
        .args(["--jitter", "wild", "--", "true"])
        .status(2);
    Cmd::new("hub-retry")
        .args(["--delay", "soon", "--", "true"])
        .status(2);
    Cmd::new("hub-retry")
        .env("RETRY_MAX_ATTEMPTS", "many")
        .args(["--", "true"])
        .status(2);
    Cmd::new("hub-retry")
        .args(["--", "/nonexistent/program"])
        .stderr_contains("cannot run `/nonexistent/program`")
        .status(127);
}

#[test]
fn help_documents_the_exit_statuses() {
    let out = Cmd::new("hub-retry").arg("--help").status(0);
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Exit status",
        "124",
        "128+N",
        "75",
        "130/143",
        "RETRY_MAX_ATTEMPTS",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
}

#[test]
fn jittered_delays_stay_within_their_formula() {
    let out = Cmd::new("hub-retry")
        .args([
            "-n",
            "4",
            "--delay",
            "10ms",
            "--max-delay",
            "40ms",
            "--jitter",
            "equal",
        ])
        .args(["--events", "-", "--", "false"])
        .status(1);
    let delays: Vec<u64> = attempts_of(&out)
        .iter()
        .filter_map(|r| r.next_delay_ms)
        .collect();
    assert_eq!(delays.len(), 3);
    for (delay, ceiling) in delays.iter().zip([10, 20, 40]) {
        assert!(
            (ceiling / 2..=ceiling).contains(delay),
            "{delay} not in [{}, {ceiling}]",
            ceiling / 2
        );
    }
}

#[test]
fn the_budget_cuts_a_running_attempt_short() {
    let out = Cmd::new("hub-retry")
        .args([
            "--max-time",
            "500ms",
            "--events",
            "-",
            "--",
            "sleep",
            "1000",
        ])
        .stderr_contains("attempt 1/3 was stopped at the end of --max-time 500ms (exit 124)")
        .status(124);
    let records = attempts_of(&out);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Outcome::Timeout);
}

#[test]
fn replay_stdin_gives_every_attempt_all_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen");
    let script = format!(
        "cat >> '{}'; echo >> '{}'; exit 1",
        seen.display(),
        seen.display()
    );
    let input = "line one\nline two\n";
    Cmd::new("hub-retry")
        .args([
            "-n",
            "3",
            "--delay",
            "1ms",
            "--replay-stdin",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdin(input)
        .status(1);
    let text = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(text, format!("{input}\n").repeat(3));
    // Without it, stdin is inherited: the first attempt reads it all, the later ones nothing.
    std::fs::remove_file(&seen).unwrap();
    Cmd::new("hub-retry")
        .args(["-n", "3", "--delay", "1ms", "--", "sh", "-c", &script])
        .stdin(input)
        .status(1);
    let text = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(text, format!("{input}\n\n\n"));
}

#[test]
fn hub_log_opens_a_tools_debug_lines_and_hub_log_format_makes_the_log_json() {
    let args = ["--attempts", "2", "--delay", "1ms", "--", "false"];
    let warned = "⚠️  false: attempt 1/2 failed (exit 1), retrying in 1ms";
    let gave_up = "❌ false: attempt 2/2 failed (exit 1); giving up after 2 attempts";
    Cmd::new("hub-retry")
        .args(args)
        .env("HUB_LOG", "hub_retry=debug")
        .stderr_lines(&[
            "· false: attempt 1/2 starts (timeout none)",
            warned,
            "· false: attempt 2/2 starts (timeout none)",
            gave_up,
        ])
        .status(1);
    // Another tool's target opens nothing here; without HUB_LOG, the default lines only.
    Cmd::new("hub-retry")
        .args(args)
        .env("HUB_LOG", "hub_start=debug")
        .stderr_lines(&[warned, gave_up])
        .status(1);
    let out = Cmd::new("hub-retry")
        .args(args)
        .env("HUB_LOG", "hub_retry=debug")
        .env("HUB_LOG_FORMAT", "json")
        .status(1);
    let events: Vec<Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let seen: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["target"].as_str().unwrap_or(""),
                e["level"].as_str().unwrap_or(""),
                e["fields"]["kind"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("hub_retry", "DEBUG", "debug"),
            ("hub_retry", "WARN", "warn"),
            ("hub_retry", "DEBUG", "debug"),
            ("hub_retry", "ERROR", "error"),
        ]
    );
    assert_eq!(
        events[3]["fields"]["message"],
        "false: attempt 2/2 failed (exit 1); giving up after 2 attempts"
    );
}

#[test]
fn color_is_one_flag_for_every_tool_and_the_kill_grace_answers_to_its_old_names() {
    // --color always colours the log even off a terminal; NO_COLOR only steers `auto`.
    Cmd::new("hub-retry")
        .args(["--color", "always", "--attempts", "1", "--", "false"])
        .env("NO_COLOR", "1")
        .stderr("\x1b[31m❌ false: attempt 1/1 failed (exit 1)\x1b[0m\n")
        .status(1);
    for grace in ["--kill-after", "--grace", "--stop-grace"] {
        Cmd::new("hub-retry")
            .args(["--color", "never", grace, "1s", "--", "true"])
            .stderr("")
            .status(0);
    }
    // hub-start --stop takes the same name (its old one still works): nothing to stop here.
    let state = tempfile::tempdir().unwrap();
    for grace in ["--kill-after", "--stop-grace"] {
        Cmd::new("hub-start")
            .args(["--stop", grace, "1s", "--color", "never"])
            .env("HUB_STATE_DIR", state.path())
            .stdin("")
            .run();
    }
    // And so does hub-down, which passes it on.
    let stack = hub_tests::temp_with(&[(
        "compose.yaml",
        "services:\n  a:\n    x-hub: { run: \"true\" }\n",
    )]);
    for grace in ["--kill-after", "--grace"] {
        Cmd::script("hub-down")
            .current_dir(stack.path())
            .args([grace, "1s", "--state-dir", ".hub"])
            .status(0);
    }
    for tool in [
        "hub-levels",
        "hub-retry",
        "hub-breaker",
        "hub-report",
        "hub-start",
        "hub-wait-healthy",
    ] {
        let help = Cmd::new(tool).arg("--help").run();
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(text.contains("--color <WHEN>"), "{tool} --help:\n{text}");
    }
}
