//! `hub-breaker` on the real binary: the state machine through the CLI, the state file's
//! location, format, modes and errors, and the guarantees that need many processes at once:
//! no lost update, exactly one half-open trial, and a file that always parses even when its
//! writers are killed with SIGKILL at random moments.

use hub::breaker::State;
use hub::records::{BreakerStatus, Record};
use hub_tests::{Cmd, bin, stderr, typed_records};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A temp folder with a state file path in it.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state/breaker.json")
    }

    /// `hub-breaker --state <state> ARGS...`
    fn cmd(&self, args: &[&str]) -> Cmd {
        Cmd::new("hub-breaker")
            .arg("--state")
            .arg(self.state())
            .args(args)
    }

    /// The same, as a background process (stdout and stderr discarded).
    fn spawn(&self, args: &[&str]) -> Child {
        let mut cmd = Command::new(bin("hub-breaker"));
        for key in ["CIRCUIT_BREAKER_THRESHOLD", "CIRCUIT_BREAKER_TIMEOUT"] {
            cmd.env_remove(key);
        }
        cmd.arg("--state")
            .arg(self.state())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning hub-breaker")
    }

    /// `status --json` for one key.
    fn status(&self, key: &str) -> BreakerStatus {
        let out = self.cmd(&["status", "--json", key]).status(0);
        match typed_records(&out).remove(0) {
            Record::BreakerStatus(status) => status,
            other => panic!("not a breaker_status record: {other:?}"),
        }
    }
}

#[test]
fn failures_open_the_breaker_and_checks_are_refused_with_75() {
    let f = Fixture::new();
    f.cmd(&["check", "keycloak:start"]).stdout("").status(0);
    f.cmd(&["failure", "keycloak:start"]).status(0);
    f.cmd(&["failure", "keycloak:start"]).status(0);
    f.cmd(&["check", "keycloak:start"]).status(0);
    f.cmd(&["failure", "keycloak:start"])
        .stderr_contains("keycloak:start: circuit breaker closed → open (3 consecutive failures)")
        .status(0);
    f.cmd(&["check", "keycloak:start"])
        .stderr_contains("circuit breaker open after 3 consecutive failures; refused")
        .status(75);
    let status = f.status("keycloak:start");
    assert_eq!(status.key, "keycloak:start");
    assert_eq!(status.state, State::Open);
    assert_eq!(status.consecutive_failures, 3);
    assert!(status.opened_at.is_some());
    // Other keys are independent.
    f.cmd(&["check", "redis:start"]).status(0);
    let table = f.cmd(&["status"]).status(0);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.starts_with("KEY"), "{table}");
    assert!(
        table.contains("keycloak:start") && table.contains("open"),
        "{table}"
    );
}

#[test]
fn the_environment_sets_threshold_cooldown_and_state_path() {
    let f = Fixture::new();
    let xdg = f.dir.path().join("xdg");
    let env_cmd = |args: &[&str]| {
        Cmd::new("hub-breaker")
            .env("HUB_BREAKER_STATE", "")
            .env("XDG_STATE_HOME", &xdg)
            .env("CIRCUIT_BREAKER_THRESHOLD", "1")
            .env("CIRCUIT_BREAKER_TIMEOUT", "3600")
            .args(args)
    };
    env_cmd(&["failure", "k"])
        .stderr_contains("closed → open (1 consecutive failure)")
        .status(0);
    env_cmd(&["check", "k"])
        .stderr_contains("next try allowed in 3600s")
        .status(75);
    assert!(xdg.join("hub/breaker.json").is_file());
    let explicit = f.dir.path().join("explicit.json");
    Cmd::new("hub-breaker")
        .env("HUB_BREAKER_STATE", &explicit)
        .args(["failure", "k"])
        .status(0);
    assert!(explicit.is_file());
    Cmd::new("hub-breaker")
        .env("CIRCUIT_BREAKER_THRESHOLD", "0")
        .args(["--state", "x.json", "check", "k"])
        .stderr_contains("`0` is not a threshold")
        .stderr_contains("$CIRCUIT_BREAKER_THRESHOLD")
        .status(2);
}

#[test]
fn after_the_cooldown_one_trial_then_success_closes() {
    let f = Fixture::new();
    let events = f.dir.path().join("events.jsonl");
    let ev = events.to_str().unwrap();
    f.cmd(&["--threshold", "1", "--events", ev, "failure", "k"])
        .status(0);
    f.cmd(&["--cooldown", "0", "--events", ev, "check", "k"])
        .stderr_contains("k: circuit breaker open → half_open")
        .stderr_contains("this call is the trial")
        .status(0);
    f.cmd(&["--cooldown", "0", "check", "k"])
        .stderr_contains("another caller holds the trial")
        .status(75);
    assert_eq!(f.status("k").state, State::HalfOpen);
    f.cmd(&["--events", ev, "success", "k"])
        .stderr_contains("half_open → closed")
        .status(0);
    f.cmd(&["check", "k"]).status(0);
    let transitions: Vec<(State, State)> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| match hub_tests::line(l).record {
            Record::Breaker(t) => {
                assert_eq!(t.key, "k");
                (t.from, t.to)
            }
            other => panic!("not a breaker record: {other:?}"),
        })
        .collect();
    assert_eq!(
        transitions,
        [
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );
}

#[test]
fn a_failed_trial_reopens() {
    let f = Fixture::new();
    f.cmd(&["--threshold", "1", "failure", "k"]).status(0);
    let opened = f.status("k").opened_at.unwrap();
    f.cmd(&["--cooldown", "0", "check", "k"]).status(0);
    f.cmd(&["failure", "k"])
        .stderr_contains("half_open → open (2 consecutive failures)")
        .status(0);
    let status = f.status("k");
    assert_eq!(status.state, State::Open);
    assert!(status.opened_at.unwrap() >= opened);
}

#[test]
fn a_trial_whose_holder_died_is_released() {
    let f = Fixture::new();
    f.cmd(&["--threshold", "1", "failure", "k"]).status(0);
    let mut holder = Command::new("true").spawn().unwrap();
    let dead = holder.id().to_string();
    holder.wait().unwrap();
    f.cmd(&["--cooldown", "0", "check", "--holder", &dead, "k"])
        .status(0);
    f.cmd(&["--cooldown", "0", "check", "k"])
        .stderr_contains(&format!("the previous holder, pid {dead}, died"))
        .status(0);
}

#[test]
fn run_passes_the_status_through_and_records_it() {
    let f = Fixture::new();
    let marker = f.dir.path().join("ran");
    f.cmd(&["--threshold", "2", "run", "k", "--", "sh", "-c", "exit 9"])
        .status(9);
    assert_eq!(f.status("k").consecutive_failures, 1);
    f.cmd(&["run", "k", "--", "true"]).status(0);
    assert_eq!(f.status("k").consecutive_failures, 0);
    f.cmd(&["--threshold", "2", "run", "k", "--", "false"])
        .status(1);
    f.cmd(&["--threshold", "2", "run", "k", "--", "false"])
        .stderr_contains("closed → open")
        .status(1);
    f.cmd(&["run", "k", "--", "touch", marker.to_str().unwrap()])
        .stderr_contains("refused")
        .status(75);
    assert!(!marker.exists(), "a refused command never runs");
}

#[test]
fn reset_closes_keys_and_all() {
    let f = Fixture::new();
    for key in ["a", "b"] {
        f.cmd(&["--threshold", "1", "failure", key]).status(0);
    }
    f.cmd(&["reset", "a"])
        .stderr_contains("a: circuit breaker open → closed")
        .status(0);
    f.cmd(&["check", "a"]).status(0);
    f.cmd(&["check", "b"]).status(75);
    f.cmd(&["reset", "--all"]).status(0);
    f.cmd(&["check", "b"]).status(0);
    f.cmd(&["reset"]).status(2);
}

#[test]
fn a_corrupt_state_file_is_exit_2_naming_the_path_and_the_fix() {
    let f = Fixture::new();
    f.cmd(&["failure", "k"]).status(0);
    std::fs::write(f.state(), "{\"version\":1,\"keys\":{\"k\":").unwrap();
    for args in [
        &["check", "k"][..],
        &["failure", "k"],
        &["success", "k"],
        &["status"],
    ] {
        f.cmd(args)
            .stderr_contains(&format!(
                "the breaker state {} is corrupt",
                f.state().display()
            ))
            .stderr_contains("hub-breaker reset --all")
            .status(2);
    }
    assert_eq!(
        std::fs::read_to_string(f.state()).unwrap(),
        "{\"version\":1,\"keys\":{\"k\":",
        "never silently discarded"
    );
    f.cmd(&["reset", "--all"]).status(0);
    f.cmd(&["check", "k"]).status(0);
}

#[test]
fn state_and_lock_files_are_private_and_the_lock_is_never_replaced() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let f = Fixture::new();
    f.cmd(&["failure", "k"]).status(0);
    let lock = f.dir.path().join("state/breaker.json.lock");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&f.state()), 0o600);
    assert_eq!(mode(&lock), 0o600);
    assert_eq!(mode(f.state().parent().unwrap()), 0o700);
    let lock_inode = std::fs::metadata(&lock).unwrap().ino();
    f.cmd(&["failure", "k"]).status(0);
    assert_eq!(std::fs::metadata(&lock).unwrap().ino(), lock_inode);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(f.state()).unwrap()).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["keys"]["k"]["consecutive_failures"], 2);
}

#[test]
fn a_lock_held_too_long_is_a_clear_error() {
    let f = Fixture::new();
    f.cmd(&["failure", "k"]).status(0);
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(f.dir.path().join("state/breaker.json.lock"))
        .unwrap();
    lock.lock().unwrap();
    f.cmd(&["--lock-timeout", "200ms", "failure", "k"])
        .stderr_contains("within 200ms")
        .stderr_contains("--lock-timeout")
        .status(2);
    lock.unlock().unwrap();
    f.cmd(&["failure", "k"]).status(0);
    assert_eq!(f.status("k").consecutive_failures, 2);
}

#[test]
fn eight_processes_times_200_failures_lose_no_update() {
    let f = Fixture::new();
    let script = format!(
        "i=0; while [ $i -lt 200 ]; do {} --state {} --threshold 1000000 failure shared:start || exit 1; i=$((i+1)); done",
        bin("hub-breaker").display(),
        f.state().display()
    );
    let writers: Vec<Child> = (0..8)
        .map(|_| Command::new("sh").args(["-c", &script]).spawn().unwrap())
        .collect();
    for mut writer in writers {
        assert!(writer.wait().unwrap().success());
    }
    let status = f.status("shared:start");
    assert_eq!(status.consecutive_failures, 1600);
    assert_eq!(status.state, State::Closed);
}

#[test]
fn eight_processes_racing_check_on_a_half_open_key_admit_exactly_one() {
    let f = Fixture::new();
    for round in 0..3 {
        f.cmd(&["reset", "--all"]).status(0);
        f.cmd(&["--threshold", "1", "failure", "k"]).status(0);
        // --cooldown 0: the breaker is due for its trial; the holder is this test process.
        let racers: Vec<Child> = (0..8)
            .map(|_| f.spawn(&["--cooldown", "0", "check", "k"]))
            .collect();
        let mut codes: Vec<i32> = racers
            .into_iter()
            .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
            .collect();
        codes.sort_unstable();
        assert_eq!(codes, [0, 75, 75, 75, 75, 75, 75, 75], "round {round}");
    }
}

#[test]
fn writers_killed_at_random_moments_never_leave_a_broken_file() {
    let f = Fixture::new();
    f.cmd(&["failure", "k0"]).status(0);
    let mut rng = hub::backoff::Rng::from_entropy();
    let mut random = move |below: u64| rng.next_u64() % below;
    let ops = ["failure", "success", "check"];
    let mut kills = 0;
    for round in 0..80 {
        let writers: Vec<Child> = (0..3)
            .map(|i| {
                let op = ops[usize::try_from(random(3)).unwrap()];
                f.spawn(&[
                    "--threshold",
                    "5",
                    "--cooldown",
                    "0",
                    op,
                    &format!("k{}", (round + i) % 4),
                ])
            })
            .collect();
        // The random moment of the kill (not a synchronisation): 0–3 ms into the writers' run.
        std::thread::sleep(Duration::from_micros(random(3000)));
        for mut writer in writers {
            if writer.try_wait().unwrap().is_none() {
                kills += 1;
            }
            let _ = writer.kill();
            writer.wait().unwrap();
        }
        let text = std::fs::read_to_string(f.state()).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("round {round}: the state file does not parse ({e}):\n{text}")
        });
        assert_eq!(doc["version"], 1);
    }
    assert!(kills > 0, "some writers were killed mid-run");
    // A writer killed while holding the lock left no stale lock: the next call goes through.
    let out = f.cmd(&["--lock-timeout", "5s", "status"]).status(0);
    assert!(stderr(&out).is_empty());
}

#[test]
fn help_and_bad_usage() {
    let out = Cmd::new("hub-breaker").arg("--help").status(0);
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Exit status",
        "75",
        "reset --all",
        "HUB_BREAKER_STATE",
        "CIRCUIT_BREAKER_TIMEOUT",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
    Cmd::new("hub-breaker").status(2);
    Cmd::new("hub-breaker").args(["check"]).status(2);
    Cmd::new("hub-breaker")
        .args(["--cooldown", "later", "check", "k"])
        .status(2);
    Cmd::new("hub-breaker").args(["run", "k"]).status(2);
}

#[test]
fn the_state_file_is_breaker_state_as_in_hub_start_and_state_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.json");
    let file = file.to_str().unwrap();
    Cmd::new("hub-breaker")
        .args(["failure", "k", "--breaker-state", file])
        .stderr("")
        .status(0);
    let out = Cmd::new("hub-breaker")
        .args(["status", "--json", "k", "--state", file])
        .stderr("")
        .run();
    let records = hub_tests::typed_records(&out);
    let [hub::records::Record::BreakerStatus(status)] = records.as_slice() else {
        panic!("one breaker_status record: {records:?}");
    };
    assert_eq!((status.key.as_str(), status.consecutive_failures), ("k", 1));
}

#[test]
fn hub_start_takes_the_breakers_threshold_and_cooldown_by_the_names_hub_breaker_uses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  api:\n    x-hub: { class: core, start: \"exit 1\", retry: { attempts: 1 } }\n",
    )
    .unwrap();
    let plan = Cmd::new("hub-levels")
        .current_dir(dir.path())
        .status(0)
        .stdout;
    // One failure, a threshold of 1 and a cool-down of an hour: by flag, then by the variables
    // hub-breaker reads (the defaults, 3 and 60s, would leave it closed).
    let by_flag: (&[&str], &[(&str, &str)]) = (&["--threshold", "1", "--cooldown", "1h"], &[]);
    let by_env: (&[&str], &[(&str, &str)]) = (
        &[],
        &[
            ("CIRCUIT_BREAKER_THRESHOLD", "1"),
            ("CIRCUIT_BREAKER_TIMEOUT", "3600"),
        ],
    );
    for (i, (flags, env)) in [by_flag, by_env].into_iter().enumerate() {
        let state = dir.path().join(format!("state{i}"));
        let start = || {
            let mut start = Cmd::new("hub-start")
                .current_dir(dir.path())
                .env_remove("CIRCUIT_BREAKER_THRESHOLD")
                .env_remove("CIRCUIT_BREAKER_TIMEOUT")
                .env_remove("HUB_BREAKER_STATE")
                .arg("--state-dir")
                .arg(&state)
                .args(flags)
                .stdin(plan.clone());
            for (key, value) in env {
                start = start.env(key, value);
            }
            start
        };
        start().status(1);
        let status = Cmd::new("hub-breaker")
            .arg("--breaker-state")
            .arg(state.join("breaker.json"))
            .args(["status", "--json"])
            .status(0);
        let keys = hub_tests::typed_records(&status);
        let [Record::BreakerStatus(key)] = keys.as_slice() else {
            panic!("one breaker_status record: {keys:?}");
        };
        assert_eq!((key.key.as_str(), key.state), ("api:start", State::Open));
        // The cool-down is the reader's: the next deploy is refused for an hour, not 60s.
        start()
            .stderr_contains("refused, next try allowed in 3600s")
            .status(1);
    }
    Cmd::new("hub-start")
        .args(["--cooldown", "later"])
        .stdin(plan.clone())
        .stderr_contains("invalid value 'later' for '--cooldown <D>'")
        .status(2);
    Cmd::new("hub-start")
        .env("CIRCUIT_BREAKER_TIMEOUT", "later")
        .stdin(plan)
        .stderr_contains("(set by --cooldown, else $CIRCUIT_BREAKER_TIMEOUT)")
        .status(2);
}
