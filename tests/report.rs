//! hub-report: golden files for every format on recorded event streams, input handling
//! (stdin, malformed and truncated lines, several runs), --output, --history and trend.
//!
//! Re-bless the golden files after an intended change with
//! `BLESS=1 cargo test --test report`, then review the diff.

use hub_tests::{Cmd, fixture, stderr, temp_with, workspace_root};
use std::path::PathBuf;

const STREAMS: [&str; 5] = [
    "healthy",
    "degraded",
    "core-failure",
    "interrupted",
    "retries",
];
const FORMATS: [(&str, &str); 5] = [
    ("text", "txt"),
    ("json", "json"),
    ("markdown", "md"),
    ("html", "html"),
    ("prometheus", "prom"),
];

fn events(name: &str) -> PathBuf {
    fixture(&format!("events/{name}.jsonl"))
}

fn read(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Compare `actual` with the golden file, or rewrite it when BLESS is set.
fn golden(name: &str, actual: &str) {
    let path = workspace_root().join("tests/golden/report").join(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no golden file {}: run `BLESS=1 cargo test --test report`",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from its golden file at line {}:\n--- expected\n{}\n--- actual\n{}\n\
             (if intended: BLESS=1 cargo test --test report)",
            first + 1,
            expected.lines().nth(first).unwrap_or("<end>"),
            actual.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

fn report(args: &[&str]) -> String {
    let output = Cmd::new("hub-report").args(args).run();
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn goldens_for(stream: &str) {
    let file = events(stream);
    for (format, ext) in FORMATS {
        let out = report(&[file.to_str().unwrap(), "--format", format]);
        golden(&format!("{stream}.{ext}"), &out);
    }
}

#[test]
fn golden_healthy_deploy() {
    goldens_for("healthy");
}

#[test]
fn golden_degraded_deploy() {
    goldens_for("degraded");
}

#[test]
fn golden_core_failure() {
    goldens_for("core-failure");
}

#[test]
fn golden_interrupted_deploy() {
    goldens_for("interrupted");
}

#[test]
fn golden_retries() {
    goldens_for("retries");
}

/// One service's entry in a JSON report.
fn service_in(report: &serde_json::Value, name: &str) -> serde_json::Value {
    report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == name)
        .unwrap_or_else(|| panic!("no service {name} in {report}"))
        .clone()
}

fn json_report(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let out = report(&all);
    assert_eq!(out.lines().count(), 1, "json is one line: {out}");
    serde_json::from_str(&out).expect("json output parses")
}

#[test]
fn json_carries_the_documented_fields() {
    let healthy = json_report(&[events("healthy").to_str().unwrap()]);
    for key in [
        "run_id",
        "ok",
        "started_at",
        "duration_ms",
        "critical_path",
        "counts",
        "services",
    ] {
        assert!(healthy.get(key).is_some(), "missing {key}");
    }
    assert_eq!(healthy["ok"], true);
    assert_eq!(healthy["duration_ms"], 67_200);
    assert_eq!(healthy["started_at"], "2026-11-28T16:18:33.000Z");
    assert_eq!(healthy["counts"]["healthy"], 11);
    assert_eq!(
        healthy["critical_path"],
        serde_json::json!(["postgres", "keycloak", "backend", "authzforce"])
    );
    let keycloak = &healthy["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "keycloak")
        .unwrap();
    assert_eq!(keycloak["status"], "healthy");
    assert_eq!(keycloak["reason"], serde_json::Value::Null);
    assert_eq!(keycloak["class"], "core");
    assert_eq!(keycloak["level"], 1);
    assert_eq!(keycloak["attempts"], 1);
    assert_eq!(keycloak["start_ms"], 6_300);
    assert_eq!(keycloak["ready_ms"], 19_300);

    let failed = json_report(&[events("core-failure").to_str().unwrap()]);
    assert_eq!(failed["ok"], false);
    assert_eq!(failed["counts"]["core_failed"], 1);
    let service = |name: &str| service_in(&failed, name);
    assert_eq!(service("keycloak")["status"], "failed");
    assert_eq!(service("keycloak")["reason"], "timeout");
    assert_eq!(service("keycloak")["ready_ms"], serde_json::Value::Null);
    assert_eq!(service("backend")["status"], "skipped");
    assert_eq!(service("backend")["reason"], "aborted");
    assert_eq!(service("backend")["start_ms"], serde_json::Value::Null);
}

#[test]
fn retries_count_only_final_records_and_keep_every_attempt() {
    let retries = json_report(&[events("retries").to_str().unwrap()]);
    let service = |name: &str| service_in(&retries, name);
    // postgres exited once (final: false), then became healthy.
    assert_eq!(service("postgres")["status"], "healthy");
    assert_eq!(service("postgres")["attempts"], 2);
    assert_eq!(service("postgres")["segments"].as_array().unwrap().len(), 2);
    // keycloak's start failed twice, then it started.
    assert_eq!(service("keycloak")["status"], "healthy");
    assert_eq!(service("keycloak")["attempts"], 3);
    let outcomes: Vec<String> = service("keycloak")["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(outcomes, ["retried", "retried", "healthy"]);
    assert_eq!(service("kas")["status"], "failed");
    assert_eq!(service("kas")["attempts"], 2);
    assert_eq!(
        retries["ok"], true,
        "a STRETCH failure does not fail the deploy"
    );
}

#[test]
fn already_healthy_skips_count_as_healthy() {
    let degraded = json_report(&[events("degraded").to_str().unwrap()]);
    let redis = degraded["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "redis")
        .unwrap()
        .clone();
    assert_eq!(redis["status"], "healthy");
    assert_eq!(redis["reason"], "already_healthy");
    assert_eq!(degraded["counts"]["healthy"], 9);
    assert_eq!(degraded["ok"], true);
}

#[test]
fn stdin_reads_like_a_file() {
    let file = events("retries");
    let from_file = report(&[file.to_str().unwrap()]);
    let from_stdin = Cmd::new("hub-report").stdin(read(&file)).run();
    assert_eq!(String::from_utf8_lossy(&from_stdin.stdout), from_file);
    let dash = Cmd::new("hub-report").arg("-").stdin(read(&file)).run();
    assert_eq!(String::from_utf8_lossy(&dash.stdout), from_file);
}

#[test]
fn malformed_lines_are_reported_by_place_and_skipped() {
    let clean = read(&events("healthy"));
    let mut lines: Vec<&str> = clean.lines().collect();
    lines.insert(3, "this is not json");
    lines.insert(7, r#"{"no_type": true}"#);
    lines.insert(9, r#"{"type":"started","ts":"yesterday"}"#);
    let dirty = lines.join("\n") + "\n";
    let dir = temp_with(&[("events.jsonl", &dirty)]);
    let path = dir.path().join("events.jsonl");
    let path = path.to_str().unwrap();
    let output = Cmd::new("hub-report")
        .args([path, "--format", "json"])
        .stderr_contains(&format!("{path}:4: not a JSON record"))
        .stderr_contains(&format!("{path}:8: not a hub record"))
        .stderr_contains(&format!("{path}:10: not a hub record"))
        .stderr_contains("3 malformed lines skipped")
        .run();
    let expected = report(&[events("healthy").to_str().unwrap(), "--format", "json"]);
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);

    Cmd::new("hub-report")
        .args([path, "--strict"])
        .stderr_contains(&format!("{path}:4: not a JSON record"))
        .stderr_contains("--strict")
        .status(2);
}

#[test]
fn a_truncated_last_line_is_tolerated_even_with_strict() {
    let mut stream = read(&events("healthy"));
    stream.push_str(r#"{"type":"healthy","ts":17958827"#);
    let output = Cmd::new("hub-report")
        .args(["--strict", "--format", "json"])
        .stdin(stream)
        .stderr_contains("<stdin>:35: truncated last line ignored")
        .run();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["counts"]["healthy"], 11);
}

fn two_runs() -> String {
    read(&events("healthy")) + &read(&events("core-failure"))
}

#[test]
fn several_runs_report_the_last_unless_one_is_named() {
    let output = Cmd::new("hub-report")
        .args(["--format", "json"])
        .stdin(two_runs())
        .run();
    let last: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(last["run_id"], "20261128T173015Z-4377");
    let output = Cmd::new("hub-report")
        .args(["--format", "json", "--run", "20261128T161833Z-4242"])
        .stdin(two_runs())
        .run();
    let first: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(first["run_id"], "20261128T161833Z-4242");
    assert_eq!(first["counts"]["healthy"], 11);
    Cmd::new("hub-report")
        .args(["--run", "20261128T161833Z-4243"])
        .stdin(two_runs())
        .stderr_contains("no run 20261128T161833Z-4243")
        .stderr_contains("did you mean 20261128T161833Z-4242")
        .status(2);
    Cmd::new("hub-report")
        .arg("--list-runs")
        .stdin(two_runs())
        .stdout(
            "20261128T161833Z-4242\t2026-11-28T16:18:33.000Z\t34 records\n\
             20261128T173015Z-4377\t2026-11-28T17:30:15.000Z\t33 records\n",
        )
        .run();
}

#[test]
fn interleaved_runs_are_told_apart() {
    let a = read(&events("healthy"));
    let b = read(&events("degraded"));
    let mut mixed = String::new();
    let (mut a_lines, mut b_lines) = (a.lines(), b.lines());
    loop {
        let (x, y) = (a_lines.next(), b_lines.next());
        if x.is_none() && y.is_none() {
            break;
        }
        for line in [x, y].into_iter().flatten() {
            mixed.push_str(line);
            mixed.push('\n');
        }
    }
    let output = Cmd::new("hub-report")
        .args(["--format", "json", "--run", "20261128T161833Z-4242"])
        .stdin(mixed)
        .run();
    let expected = report(&[events("healthy").to_str().unwrap(), "--format", "json"]);
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
}

#[test]
fn bad_input_exits_2_with_one_clear_line() {
    Cmd::new("hub-report")
        .stdin("")
        .stderr_contains("no records in the input")
        .status(2);
    Cmd::new("hub-report")
        .arg("/nonexistent/events.jsonl")
        .stderr_contains("cannot read /nonexistent/events.jsonl")
        .status(2);
    Cmd::new("hub-report")
        .args(["--format", "pdf"])
        .stdin("")
        .status(2);
}

#[test]
fn check_exits_1_when_the_deploy_failed() {
    Cmd::new("hub-report")
        .args([events("healthy").to_str().unwrap(), "--check"])
        .run();
    Cmd::new("hub-report")
        .args([events("core-failure").to_str().unwrap(), "--check"])
        .status(1);
    Cmd::new("hub-report")
        .args([events("interrupted").to_str().unwrap(), "--check"])
        .status(1);
    // Without --check a failed deploy still gets its report and exit 0.
    Cmd::new("hub-report")
        .arg(events("core-failure").to_str().unwrap())
        .run();
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let file = events("degraded");
    let plain = report(&[file.to_str().unwrap()]);
    assert!(!plain.contains('\x1b'), "a pipe gets no colour");
    let coloured = report(&[file.to_str().unwrap(), "--color", "always"]);
    assert!(coloured.contains("\x1b[32m"), "{coloured}");
}

#[test]
fn output_file_is_written_whole_and_alone() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("hub.prom");
    let file = events("healthy");
    Cmd::new("hub-report")
        .args([file.to_str().unwrap(), "--format", "prometheus", "--output"])
        .arg(&target)
        .stdout("")
        .run();
    assert_eq!(
        read(&target),
        report(&[file.to_str().unwrap(), "--format", "prometheus"])
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["hub.prom"], "no temp file left behind");
    Cmd::new("hub-report")
        .args([
            file.to_str().unwrap(),
            "--output",
            "/nonexistent/dir/report.txt",
        ])
        .stderr_contains("writing /nonexistent/dir/report.txt")
        .status(2);
}

#[test]
fn history_appends_the_json_summary() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.jsonl");
    for stream in ["healthy", "retries"] {
        Cmd::new("hub-report")
            .args([events(stream).to_str().unwrap(), "--history"])
            .arg(&history)
            .run();
    }
    let lines: Vec<String> = read(&history).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2);
    for (line, stream) in lines.iter().zip(["healthy", "retries"]) {
        let expected = report(&[events(stream).to_str().unwrap(), "--format", "json"]);
        assert_eq!(format!("{line}\n"), expected);
    }
}

#[test]
fn trend_goldens_and_regressions() {
    let history = fixture("events/history.jsonl");
    let history = history.to_str().unwrap();
    for (format, ext) in [("text", "txt"), ("json", "json"), ("html", "html")] {
        let output = Cmd::new("hub-report")
            .args(["trend", "--history", history, "--format", format])
            .stderr_contains("regression: keycloak took 31.0s")
            .status(1);
        golden(
            &format!("trend.{ext}"),
            &String::from_utf8_lossy(&output.stdout),
        );
    }
    // A laxer factor flags nothing: exit 0.
    Cmd::new("hub-report")
        .args(["trend", "--history", history, "--regression", "3"])
        .run();
    // Too few earlier runs to judge: nothing flagged.
    let output = Cmd::new("hub-report")
        .args([
            "trend",
            "--history",
            history,
            "--last",
            "3",
            "--format",
            "json",
        ])
        .run();
    let trend: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(trend["runs"], 3);
    assert_eq!(trend["regressions"], serde_json::json!([]));
}

#[test]
fn trend_reads_what_history_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.jsonl");
    for stream in STREAMS {
        Cmd::new("hub-report")
            .args([events(stream).to_str().unwrap(), "--history"])
            .arg(&history)
            .run();
    }
    let output = Cmd::new("hub-report")
        .args(["trend", "--format", "json", "--history"])
        .arg(&history)
        .run();
    let trend: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(trend["runs"], 5);
    assert_eq!(trend["ok_runs"], 3);
    let keycloak = trend["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "keycloak")
        .unwrap()
        .clone();
    assert_eq!(keycloak["healthy"], 3);
    assert_eq!(keycloak["failed"], 2);
}

#[test]
fn trend_bad_input() {
    Cmd::new("hub-report")
        .args(["trend", "--history", "/nonexistent/history.jsonl"])
        .stderr_contains("cannot read /nonexistent/history.jsonl")
        .status(2);
    let dir = temp_with(&[("empty.jsonl", "")]);
    Cmd::new("hub-report")
        .args(["trend", "--history"])
        .arg(dir.path().join("empty.jsonl"))
        .stderr_contains("no runs in")
        .status(2);
    Cmd::new("hub-report")
        .args(["trend", "--history", "x", "--regression", "0.5"])
        .status(2);
    let output = Cmd::new("hub-report").arg("trend").status(2);
    assert!(stderr(&output).contains("--history"));
}

/// A real recording of `hub-levels | hub-start` without `--gate` (no hub-wait-healthy): the
/// launched services never get a health result, and db's start fails twice.
#[test]
fn golden_hub_start_without_gate() {
    goldens_for("no-gate");
    let report = json_report(&[events("no-gate").to_str().unwrap()]);
    assert_eq!(report["counts"]["started"], 2);
    assert_eq!(report["counts"]["core_failed"], 1);
    assert_eq!(report["ok"], false);
    let api = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "api")
        .unwrap()
        .clone();
    assert_eq!(api["status"], "started");
    assert_eq!(api["reason"], "not_checked");
}

/// A real recording of `hub-levels | hub-start --gate G | hub-wait-healthy | tee G`:
/// hub-wait-healthy consumes the `started` records, so attempts are placed on the timeline
/// from the outcome records' `ready_ms` and `elapsed_ms`.
#[test]
fn golden_real_pipeline() {
    goldens_for("pipeline");
    let report = json_report(&[events("pipeline").to_str().unwrap()]);
    assert_eq!(report["ok"], true);
    assert_eq!(
        report["critical_path"],
        serde_json::json!(["postgres", "keycloak", "backend"])
    );
    for service in report["services"].as_array().unwrap() {
        assert!(service["start_ms"].is_u64(), "{service}");
    }
    let keycloak = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "keycloak")
        .unwrap()
        .clone();
    // ready at 1343 ms, 790 ms after its start.
    assert_eq!(keycloak["start_ms"], 553);
    assert_eq!(keycloak["ready_ms"], 1343);
}

#[test]
fn the_summary_counts_what_the_records_say_and_states_each_fact_once() {
    use hub::records::{Class, Counts, SkipReason, UnhealthyReason};
    use hub_tests::build::*;
    let events = stream(
        "r",
        vec![
            (1000, plan("db", Class::Core, 0, &[])),
            (1000, plan("cache", Class::Optional, 0, &[])),
            (1000, plan("api", Class::Core, 1, &["cache"])),
            (
                1010,
                skipped("db", Class::Core, 0, SkipReason::AlreadyHealthy, None),
            ),
            (1020, started(of("cache", Class::Optional, 0, 1, 1))),
            (
                2020,
                unhealthy(
                    of("cache", Class::Optional, 0, 1, 1),
                    UnhealthyReason::Timeout,
                    1000,
                    "exit 1",
                    "timed out after 1.0s (last probe: exit 1)",
                ),
            ),
            (
                2030,
                skipped(
                    "api",
                    Class::Core,
                    1,
                    SkipReason::DependencyFailed,
                    Some("cache"),
                ),
            ),
            (
                2040,
                finished(
                    false,
                    Counts {
                        healthy: 1,
                        already_healthy: 1,
                        started: 0,
                        failed: 1,
                        skipped: 1,
                    },
                    1040,
                ),
            ),
        ],
    );
    let out = Cmd::new("hub-report")
        .stdin(events.clone())
        .stderr("")
        .status(0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "1/3 healthy (1 already healthy) in 1.0s · 1 CORE failure (api skipped: dependency cache failed) · 1 failed · 1 skipped"
        ),
        "{text}"
    );
    for line in text.lines() {
        assert!(
            line.matches("exit 1").count() <= 1,
            "a line says the same twice: {line}"
        );
    }
    let json = Cmd::new("hub-report")
        .args(["--format", "json"])
        .stdin(events)
        .stderr("")
        .status(0);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["counts"]["core_failed"], 1);
    assert_eq!(report["counts"]["already_healthy"], 1);
}

#[test]
fn output_to_a_fifo_is_written_into_not_renamed_over() {
    // `-o /dev/null` as root once replaced /dev/null with a regular file; a FIFO shows the same
    // without touching the system's devices.
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("report.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    Cmd::new("hub-report")
        .args([
            events("healthy").to_str().unwrap(),
            "--format",
            "json",
            "-o",
        ])
        .arg(&fifo)
        .stderr("")
        .run();
    let text = reader.join().unwrap();
    assert!(text.contains("\"counts\""), "{text}");
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "the FIFO was replaced: {kind:?}");
}
