//! `scripts/hub-logs`: a stack's service logs as `docker compose logs` shows them: the last N
//! lines, several services with a `service | ` prefix, one attempt by its header line, and
//! `-f` following a log as the service writes (and restarts into) it.

use hub_tests::{Cmd, temp_with};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::mpsc;

fn header(run: &str, attempt: u32) -> String {
    format!("==> hub run={run} attempt={attempt} at=2026-12-01T01:00:00Z cmd=python3 app.py <==")
}

fn state() -> tempfile::TempDir {
    let api = [
        header("r1", 1),
        "old run".into(),
        header("r2", 1),
        "cannot connect".into(),
        header("r2", 2),
        "listening".into(),
        "ready".into(),
    ]
    .join("\n")
        + "\n";
    temp_with(&[
        (".hub/logs/api.log", &api),
        (".hub/logs/db.log", "db one\ndb two\ndb three\n"),
    ])
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tail_n_of_several_services_is_prefixed_per_service() {
    let dir = state();
    let one = Cmd::script("hub-logs")
        .current_dir(dir.path())
        .args(["db", "-n", "2"])
        .status(0);
    assert_eq!(stdout(&one), "db two\ndb three\n", "one service: no prefix");
    let two = Cmd::script("hub-logs")
        .current_dir(dir.path())
        .args(["db", "api", "-n", "1"])
        .status(0);
    assert_eq!(stdout(&two), "db  | db three\napi | ready\n");
}

#[test]
fn attempt_n_is_that_attempt_of_the_latest_run() {
    let dir = state();
    let first = Cmd::script("hub-logs")
        .current_dir(dir.path())
        .args(["api", "--attempt", "1"])
        .status(0);
    assert_eq!(stdout(&first), "cannot connect\n");
    let second = Cmd::script("hub-logs")
        .current_dir(dir.path())
        .args(["api", "--attempt", "2", "-n", "1"])
        .status(0);
    assert_eq!(stdout(&second), "ready\n");
    Cmd::script("hub-logs")
        .current_dir(dir.path())
        .args(["api", "--attempt", "3"])
        .stderr_contains("no attempt 3 in the latest run")
        .status(2);
}

#[test]
fn an_unknown_service_names_the_ones_with_logs() {
    let dir = state();
    Cmd::script("hub-logs")
        .current_dir(dir.path())
        .arg("web")
        .stderr_contains("services with logs: api db")
        .status(2);
}

/// Kills a process group when dropped, so a failing test leaves no `tail -F` behind.
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn follow_prints_what_the_service_writes_next() {
    let dir = state();
    let mut child =
        std::process::Command::new(hub_tests::workspace_root().join("scripts/hub-logs"))
            .args(["-f", "-n", "1", "db", "api"])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
    let group = Group(child.id());
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut wait_for = |want: &str| {
        while !seen.iter().any(|l: &String| l == want) {
            match rx.recv_timeout(hub_tests::DEADLINE) {
                Ok(line) => seen.push(line),
                Err(_) => panic!("no line {want:?} within the deadline; saw {seen:?}"),
            }
        }
    };
    wait_for("db  | db three");
    wait_for("api | ready");
    // A restart: hub appends the next attempt's header and output to the same file.
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join(".hub/logs/api.log"))
        .unwrap();
    writeln!(log, "{}\nrestarted", header("r3", 1)).unwrap();
    wait_for("api | restarted");
    drop(group);
    let _ = child.wait();
}
