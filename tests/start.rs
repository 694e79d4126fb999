//! hub-start on its own: the test plays hub-wait-healthy, writing health results into the gate
//! file as it sees `started` records, so every scheduling decision is observed exactly.

use hub::records::{
    AttemptOf, Class, Counts, FailReason, Healthy, Record, SignalName, SkipReason, Unhealthy,
    UnhealthyReason,
};
use hub_tests::{
    Cmd, KillPidsOnDrop, Running, alive, append_record, is, temp_with, variants, wait_for_pid_file,
    wait_until,
};
use std::path::{Path, PathBuf};

/// Fields drop in order: the services are killed before their folder is removed.
struct Deploy {
    _cleanup: KillPidsOnDrop,
    dir: tempfile::TempDir,
    gate: PathBuf,
}

impl Deploy {
    fn new(compose: &str) -> Deploy {
        let dir = temp_with(&[("compose.yaml", compose), ("gate.jsonl", "")]);
        let gate = dir.path().join("gate.jsonl");
        let cleanup = KillPidsOnDrop(dir.path().join(".hub"));
        Deploy {
            dir,
            gate,
            _cleanup: cleanup,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn plans(&self) -> Vec<String> {
        let out = Cmd::new("hub-levels")
            .current_dir(self.path())
            .args(["--run-id", "r1"])
            .run();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Start hub-start with the plans on stdin (closed), gated on the gate file.
    fn start(&self, extra: &[&str]) -> Running {
        let mut args = vec!["--gate", "gate.jsonl"];
        args.extend_from_slice(extra);
        let mut running = Running::spawn("hub-start", &args, self.path(), &[]);
        for line in self.plans() {
            running.send(&line);
        }
        running.close_stdin();
        running
    }

    /// Play hub-wait-healthy: attempt `attempt` of `service` is healthy.
    fn healthy(&self, service: &str, attempt: u32) {
        let record = Record::Healthy(Healthy {
            of: attempt_of(service, attempt),
            is_final: true,
            ready_ms: 0,
            probes: 1,
            failures: 0,
            tasks: Vec::new(),
        });
        append_record(&self.gate, Some("r1"), record);
    }

    /// Play hub-wait-healthy: attempt `attempt` of `service` is unhealthy, for `reason`.
    fn unhealthy(&self, service: &str, attempt: u32, reason: UnhealthyReason, is_final: bool) {
        let record = Record::Unhealthy(Unhealthy::new(
            attempt_of(service, attempt),
            reason,
            is_final,
        ));
        append_record(&self.gate, Some("r1"), record);
    }
}

/// Attempt `attempt` of `service`, as hub-start's gate reads it (by service and attempt).
fn attempt_of(service: &str, attempt: u32) -> AttemptOf {
    AttemptOf {
        service: service.into(),
        class: Class::Core,
        level: 0,
        attempt,
        max_attempts: 1,
    }
}

fn services_of(records: &[Record], kind: &str) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.kind() == kind)
        .filter_map(|r| r.service().map(str::to_owned))
        .collect()
}

/// The `failed` records.
fn failures(records: &[Record]) -> Vec<&hub::records::Failed> {
    variants!(records, Record::Failed)
}

/// The `skipped` records.
fn skips(records: &[Record]) -> Vec<&hub::records::Skipped> {
    variants!(records, Record::Skipped)
}

/// The `finished` record, which is the last one.
fn finished(records: &[Record]) -> &hub::records::Finished {
    match records.last() {
        Some(Record::Finished(finished)) => finished,
        other => panic!("the last record is not `finished`: {other:?}"),
    }
}

/// A `started` record's body.
fn started(record: Record) -> hub::records::Started {
    match record {
        Record::Started(started) => *started,
        other => panic!("not a started record: {other:?}"),
    }
}

const CHAIN: &str = r#"
services:
  db:
    x-hub: { class: core, run: "exec sleep 1000" }
  cache:
    x-hub: { class: core, run: "exec sleep 1000" }
  api:
    depends_on: [db]
    x-hub: { class: core, run: "exec sleep 1000" }
  web:
    depends_on: [api, cache]
    x-hub: { class: core, run: "exec sleep 1000" }
"#;

#[test]
fn dag_starts_a_service_as_soon_as_its_own_dependencies_are_healthy() {
    let deploy = Deploy::new(CHAIN);
    let mut hub = deploy.start(&[]);
    hub.wait_for("db started", is("started", "db"));
    hub.wait_for("cache started", is("started", "cache"));
    deploy.healthy("db", 1);
    // api needs only db: it starts while cache is still unhealthy.
    let api = started(hub.wait_for("api started", is("started", "api")));
    assert_eq!((api.of.attempt, api.of.level), (1, 1));
    assert!(api.pid.is_some());
    assert!(Path::new(api.log.as_deref().unwrap()).is_absolute());
    deploy.healthy("api", 1);
    deploy.healthy("cache", 1);
    hub.wait_for("web started", is("started", "web"));
    deploy.healthy("web", 1);
    let (status, records, _) = hub.finish();
    assert_eq!(status, Some(0));
    let finished = finished(&records);
    assert!(finished.ok);
    assert_eq!(finished.counts.healthy, 4);
    assert_eq!(services_of(&records, "plan").len(), 4, "plans pass through");
}

#[test]
fn levels_mode_waits_for_the_whole_level() {
    let deploy = Deploy::new(CHAIN);
    let mut hub = deploy.start(&["--schedule", "levels"]);
    hub.wait_for("db started", is("started", "db"));
    hub.wait_for("cache started", is("started", "cache"));
    deploy.healthy("db", 1);
    // A marker record after db's result: if api were released by db alone, it would come first.
    deploy.unhealthy("cache", 1, UnhealthyReason::Exited, false);
    hub.wait_for(
        "cache retried",
        |r| matches!(r, Record::Started(s) if s.of.service == "cache" && s.of.attempt == 2),
    );
    assert!(
        !hub.seen_records().iter().any(is("started", "api")),
        "api must wait for all of level 0"
    );
    deploy.healthy("cache", 2);
    hub.wait_for("api started", is("started", "api"));
    deploy.healthy("api", 1);
    hub.wait_for("web started", is("started", "web"));
    deploy.healthy("web", 1);
    let (status, _, stderr) = hub.finish();
    assert_eq!(status, Some(0));
    assert!(stderr.contains("Level 0: Starting cache db"), "{stderr}");
    assert!(stderr.contains("Level 1: Starting api"), "{stderr}");
}

#[test]
fn a_flaky_start_command_recovers_on_its_third_attempt() {
    let deploy = Deploy::new(
        r#"
services:
  flaky:
    x-hub:
      class: core
      start: 'echo "attempt $$HUB_ATTEMPT"; [ "$$HUB_ATTEMPT" -ge 3 ]'
      retry: { attempts: 3, delay: 10ms }
"#,
    );
    let mut hub = deploy.start(&[]);
    let started = started(hub.wait_for("flaky started", is("started", "flaky")));
    assert_eq!(started.of.attempt, 3);
    deploy.healthy("flaky", 3);
    let (status, records, stderr) = hub.finish();
    assert_eq!(status, Some(0), "{stderr}");
    let failed = failures(&records);
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0].of.attempt, 1);
    assert!(!failed[0].is_final);
    assert_eq!(failed[0].exit_status, Some(1));
    assert_eq!(failed[0].next_delay_ms, Some(10));
    assert_eq!(failed[1].next_delay_ms, Some(20), "delays double");
    assert!(stderr.contains("flaky: attempt 1/3 failed"), "{stderr}");
    // Each attempt's output follows its own header line (run id, attempt, time, command).
    let log = std::fs::read_to_string(deploy.path().join(".hub/logs/flaky.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 6, "{log}");
    for (attempt, pair) in lines.chunks(2).enumerate() {
        let header = hub::logheader::parse_header(pair[0]).expect("a header line");
        assert_eq!(header.run_id, "r1");
        assert_eq!(header.attempt as usize, attempt + 1);
        assert!(
            header.at.ends_with('Z') && header.at.contains('T'),
            "{header:?}"
        );
        assert!(
            header.cmd.starts_with("echo \"attempt $HUB_ATTEMPT\""),
            "{header:?}"
        );
        assert_eq!(pair[1], format!("attempt {}", attempt + 1));
    }
}

#[test]
fn a_core_start_failure_stops_everything_not_yet_started() {
    let deploy = Deploy::new(
        r#"
services:
  db:
    x-hub: { class: core, start: "exit 4", retry: { attempts: 2, delay: 10ms } }
  slow:
    x-hub: { class: optional, run: "exec sleep 1000" }
  api:
    depends_on: [db]
    x-hub: { class: core, run: "exec sleep 1000" }
  web:
    depends_on: [api]
    x-hub: { class: optional, run: "exec sleep 1000" }
"#,
    );
    let hub = deploy.start(&[]);
    let (status, records, stderr) = hub.finish();
    assert_eq!(status, Some(1), "{stderr}");
    let last_failure = failures(&records).pop().unwrap();
    assert_eq!((last_failure.of.attempt, last_failure.is_final), (2, true));
    let skipped: Vec<(&str, SkipReason)> = skips(&records)
        .iter()
        .map(|s| (s.of.service.as_str(), s.reason))
        .collect();
    assert_eq!(
        skipped,
        [("api", SkipReason::Aborted), ("web", SkipReason::Aborted)]
    );
    assert!(!services_of(&records, "started").contains(&"api".to_owned()));
    assert!(!finished(&records).ok);
    assert!(
        stderr.contains("Level 0 had 1 CORE service failures"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Service db failed (CORE - deployment will fail)"),
        "{stderr}"
    );
}

#[test]
fn optional_and_stretch_failures_skip_only_their_dependents() {
    let deploy = Deploy::new(
        r#"
services:
  db:
    x-hub: { class: core, run: "exec sleep 1000" }
  kas:
    x-hub: { class: stretch, run: "exec sleep 1000" }
  kas-ui:
    depends_on: [kas]
    x-hub: { class: stretch, run: "exec sleep 1000" }
  otel:
    x-hub: { class: optional, start: "exit 1", retry: { attempts: 1 } }
  api:
    depends_on:
      db: { condition: service_started }
      otel: { condition: service_started, required: false }
    x-hub: { class: core, run: "exec sleep 1000" }
"#,
    );
    let mut hub = deploy.start(&[]);
    hub.wait_for("kas started", is("started", "kas"));
    // A check that cannot run: no attempt can help, whatever the attempts left.
    deploy.unhealthy("kas", 1, UnhealthyReason::ProbeError, true);
    hub.wait_for("db started", is("started", "db"));
    deploy.healthy("db", 1);
    // api's soft dependency otel failed: api still starts.
    hub.wait_for("api started", is("started", "api"));
    deploy.healthy("api", 1);
    let (status, records, stderr) = hub.finish();
    assert_eq!(status, Some(0), "{stderr}");
    let skip = skips(&records)[0];
    assert_eq!(
        (
            skip.of.service.as_str(),
            skip.reason,
            skip.dependency.as_deref()
        ),
        ("kas-ui", SkipReason::DependencyFailed, Some("kas"))
    );
    // What a health failure means for the deploy is said once, by hub-start, which decides it
    // (hub-wait-healthy only reports what it observed).
    assert!(
        stderr.contains("Service kas failed (STRETCH - deployment will continue): probe_error"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Service otel failed (OPTIONAL - deployment will continue)"),
        "{stderr}"
    );
    assert_eq!(
        finished(&records).counts,
        Counts {
            healthy: 2,
            already_healthy: 0,
            started: 0,
            failed: 2,
            skipped: 1
        }
    );
}

#[test]
fn a_core_service_behind_a_failed_optional_one_fails_the_deploy() {
    let deploy = Deploy::new(
        r#"
services:
  cache:
    x-hub: { class: optional, start: "exit 1", retry: { attempts: 1 } }
  api:
    depends_on: [cache]
    x-hub: { class: core, run: "exec sleep 1000" }
"#,
    );
    let (status, records, stderr) = deploy.start(&[]).finish();
    assert_eq!(status, Some(1), "{stderr}");
    assert_eq!(skips(&records)[0].reason, SkipReason::DependencyFailed);
    assert!(
        stderr.contains("api skipped: its dependency cache failed (CORE - deployment will fail)"),
        "{stderr}"
    );
}

#[test]
fn an_injected_failure_of_a_service_not_in_the_plan_is_a_usage_error() {
    let deploy = Deploy::new("services:\n  kas:\n    x-hub: { class: stretch, start: \"true\" }\n");
    let (status, _, stderr) = deploy.start(&["--inject-failure", "ksa"]).finish();
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("--inject-failure ksa: no such service in the plan"),
        "{stderr}"
    );
}

#[test]
fn an_injected_failure_is_final_at_once() {
    let deploy =
        Deploy::new("services:\n  kas:\n    x-hub: { class: stretch, run: \"exec sleep 1000\" }\n");
    let (status, records, stderr) = deploy.start(&["--inject-failure", "kas"]).finish();
    assert_eq!(status, Some(0), "{stderr}");
    let failed = failures(&records)[0];
    assert_eq!(
        (&failed.reason, failed.is_final),
        (&FailReason::Injected, true)
    );
    assert!(
        stderr.contains("Service kas failed (STRETCH - deployment will continue)"),
        "{stderr}"
    );
}

#[test]
fn a_rerun_skips_services_that_are_already_up() {
    let deploy =
        Deploy::new("services:\n  db:\n    x-hub: { class: core, run: \"exec sleep 1000\" }\n");
    let mut hub = deploy.start(&[]);
    let first = started(hub.wait_for("db started", is("started", "db")));
    deploy.healthy("db", 1);
    assert_eq!(hub.finish().0, Some(0));
    let pid = first.pid.unwrap();
    assert!(alive(pid), "a launched service outlives hub-start");
    let (status, records, stderr) = deploy.start(&[]).finish();
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(skips(&records)[0].reason, SkipReason::AlreadyHealthy);
    assert!(services_of(&records, "started").is_empty());
    assert_eq!(finished(&records).counts.healthy, 1);
}

#[test]
fn sigterm_kills_start_commands_in_flight() {
    let deploy = Deploy::new(
        "services:\n  slow:\n    x-hub: { class: core, start: \"echo $$$$ > started.pid; sleep 1000 & wait\" }\n",
    );
    let mut hub = deploy.start(&[]);
    let marker = deploy.path().join("started.pid");
    let shell = wait_for_pid_file(&marker);
    hub.signal("TERM");
    let record = hub.wait_for("interrupted", |r| r.kind() == "interrupted");
    let Record::Interrupted(interrupted) = record else {
        unreachable!()
    };
    assert_eq!(interrupted.signal, SignalName::Term);
    assert_eq!(interrupted.in_flight, ["slow"]);
    let (status, _, _) = hub.finish();
    assert_eq!(status, Some(143));
    wait_until("the start command is gone", || !alive(shell));
}

#[test]
fn bad_input_is_an_error() {
    let dir = temp_with(&[]);
    Cmd::new("hub-start")
        .current_dir(dir.path())
        .stdin("{not json\n")
        .stderr_contains("stdin:1: not a JSON record")
        .status(2);
    let plan = Cmd::new("hub-levels")
        .args(["-f", "-"])
        .stdin("services:\n  a:\n    x-hub: { run: \"true\" }\n")
        .run();
    let line = String::from_utf8(plan.stdout).unwrap();
    Cmd::new("hub-start")
        .current_dir(dir.path())
        .stdin(format!("{line}{line}"))
        .stderr_contains("stdin:2: service \"a\" appears twice in the plan")
        .status(2);
    Cmd::new("hub-start")
        .current_dir(dir.path())
        .args(["--gate", "missing/gate"])
        .stdin(line)
        .stderr_contains("--gate missing/gate: cannot open")
        .status(2);
}

#[test]
fn a_service_whose_probe_was_in_flight_at_a_core_failure_is_not_started() {
    let deploy = Deploy::new(
        r#"
services:
  db:
    x-hub: { class: core, start: "exit 1", retry: { attempts: 1 } }
  other:
    x-hub:
      class: optional
      start: "touch started.flag"
      health: { cmd: "while [ ! -f release ]; do sleep 0.01; done; false", probe_timeout: 60s }
"#,
    );
    let mut hub = deploy.start(&[]);
    hub.wait_for(
        "db failed",
        |r| matches!(r, Record::Failed(f) if f.of.service == "db" && f.is_final),
    );
    // Only now does other's already-healthy probe answer (no).
    std::fs::write(deploy.path().join("release"), "").unwrap();
    let (status, records, err) = hub.finish();
    assert_eq!(status, Some(1), "{err}");
    let skip = skips(&records)
        .into_iter()
        .find(|s| s.of.service == "other")
        .unwrap();
    assert_eq!(skip.reason, SkipReason::Aborted);
    assert!(
        !deploy.path().join("started.flag").exists(),
        "other was started after the abort"
    );
}
