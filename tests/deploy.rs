//! The whole deploy through real pipes: `scripts/hub-deploy` (hub-levels | hub-start --gate G |
//! hub-wait-healthy | tee G) on stacks of real local processes whose readiness the test
//! controls with marker files, so every ordering claim is observed, never timed.

use hub_tests::{
    Cmd, KillPidsOnDrop, Running, alive, records, stderr, temp_with, wait_for_pid_file, wait_until,
};
use serde_json::Value;
use std::path::Path;

/// A test stack in a temp folder; its services are killed before the folder goes.
struct Stack {
    _cleanup: KillPidsOnDrop,
    dir: tempfile::TempDir,
}

impl Stack {
    fn new(compose: &str) -> Stack {
        let dir = temp_with(&[("compose.yaml", compose)]);
        Stack {
            _cleanup: KillPidsOnDrop(dir.path().join(".hub")),
            dir,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn touch(&self, name: &str) {
        std::fs::write(self.path().join(name), "").unwrap();
    }

    /// hub-deploy in the background, its records on our pipe.
    fn deploy(&self, extra: &[&str]) -> Running {
        let mut args = vec!["--events", "/dev/stdout", "--state-dir", ".hub"];
        args.extend_from_slice(extra);
        Running::spawn_script("hub-deploy", &args, self.path(), &[])
    }
}

fn is(kind: &'static str, service: &'static str) -> impl Fn(&Value) -> bool {
    move |r| r["type"] == kind && r["service"] == service
}

fn position(records: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    records.iter().position(pred).expect("record present")
}

/// A service that is healthy once the test creates NAME.ready in the stack's folder.
fn gated(name: &str, class: &str, deps: &str) -> String {
    format!(
        "  {name}:\n    depends_on: [{deps}]\n    x-hub:\n      class: {class}\n      run: \"exec sleep 1000\"\n      health: {{ cmd: \"test -f {name}.ready\", interval: 20ms }}\n"
    )
}

fn compose(services: &[String]) -> String {
    format!("services:\n{}", services.concat())
}

/// `slow` and `fast` at level 0, `after-fast` (on fast) at level 1; only `slow` waits for the
/// test to make it ready.
fn slow_and_fast() -> Stack {
    let stack = Stack::new(&compose(&[
        gated("slow", "core", ""),
        gated("fast", "core", ""),
        gated("after-fast", "core", "fast"),
    ]));
    stack.touch("fast.ready");
    stack.touch("after-fast.ready");
    stack
}

#[test]
fn dag_starts_a_dependent_while_an_unrelated_service_is_still_starting() {
    let stack = slow_and_fast();
    let mut deploy = stack.deploy(&[]);
    // after-fast starts although slow is not healthy (and cannot be until we say so).
    deploy.wait_for("after-fast started", is("started", "after-fast"));
    assert!(!deploy.seen.iter().any(is("healthy", "slow")));
    stack.touch("slow.ready");
    let (status, records, err) = deploy.finish();
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(records.iter().filter(|r| r["type"] == "healthy").count(), 3);
}

#[test]
fn levels_waits_for_the_whole_level_before_the_next() {
    let stack = slow_and_fast();
    let mut deploy = stack.deploy(&["--schedule", "levels"]);
    deploy.wait_for("fast healthy", is("healthy", "fast"));
    stack.touch("slow.ready");
    let (status, records, err) = deploy.finish();
    assert_eq!(status, Some(0), "{err}");
    assert!(
        position(&records, is("healthy", "slow")) < position(&records, is("started", "after-fast")),
        "level 1 started before level 0 was decided"
    );
    assert!(err.contains("Level 1: Starting after-fast"), "{err}");
}

#[test]
fn the_raw_pipeline_runs_through_a_fifo() {
    let stack = Stack::new(&compose(&[
        gated("db", "core", ""),
        gated("api", "core", "db"),
    ]));
    stack.touch("db.ready");
    stack.touch("api.ready");
    let bins = hub_tests::bin_dir().display().to_string();
    let out = Cmd::program(Path::new("bash"))
        .current_dir(stack.path())
        .env("PATH", format!("{bins}:{}", std::env::var("PATH").unwrap_or_default()))
        .args(["-c", "mkfifo G && exec 3<>G && hub-levels | hub-start --gate G | hub-wait-healthy | tee -p G > events.jsonl; echo ${PIPESTATUS[*]}"])
        .stdout("0 0 0 0\n")
        .run();
    assert!(stderr(&out).contains("✅ api is healthy"));
    let events = std::fs::read_to_string(stack.path().join("events.jsonl")).unwrap();
    let records: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(position(&records, is("healthy", "db")) < position(&records, is("started", "api")));
    assert_eq!(
        records.iter().filter(|r| r["type"] == "finished").count(),
        1
    );
}

#[test]
fn a_stretch_failure_skips_its_dependents_and_the_deploy_goes_on() {
    let stack = Stack::new(&compose(&[
        gated("db", "core", ""),
        "  kas:\n    x-hub: { class: stretch, start: \"exit 3\", retry: { attempts: 1 } }\n".into(),
        gated("kas-ui", "stretch", "kas"),
        gated("api", "core", "db"),
    ]));
    for name in ["db", "kas-ui", "api"] {
        stack.touch(&format!("{name}.ready"));
    }
    let (status, records, err) = stack.deploy(&[]).finish();
    assert_eq!(status, Some(0), "{err}");
    assert!(
        err.contains("Service kas failed (STRETCH - deployment will continue)"),
        "{err}"
    );
    let skip = records.iter().find(|r| r["type"] == "skipped").unwrap();
    assert_eq!(
        (skip["service"].as_str(), skip["reason"].as_str()),
        (Some("kas-ui"), Some("dependency_failed"))
    );
    assert!(records.iter().any(is("healthy", "api")));
}

#[test]
fn a_core_failure_stops_everything_not_yet_started() {
    let stack = Stack::new(&compose(&[
        "  db:\n    x-hub: { class: core, run: \"echo 'FATAL: bad config' >&2; exit 1\", retry: { attempts: 2, delay: 10ms }, timeout: 10m }\n".into(),
        gated("cache", "optional", ""),
        gated("api", "core", "db"),
        gated("web", "core", "api"),
    ]));
    stack.touch("cache.ready");
    let (status, records, err) = stack.deploy(&[]).finish();
    assert_eq!(status, Some(1), "{err}");
    for late in ["api", "web"] {
        assert!(
            !records
                .iter()
                .any(|r| r["type"] == "started" && r["service"] == late),
            "{late} started"
        );
        let skip = records
            .iter()
            .find(|r| r["type"] == "skipped" && r["service"] == late)
            .unwrap();
        assert_eq!(skip["reason"], "aborted");
    }
    assert!(err.contains("Level 0 had 1 CORE service failures"), "{err}");
}

#[test]
fn a_crashed_process_is_reported_long_before_its_timeout() {
    // Timeout 10 minutes, one attempt: the test's own deadline (60 s) would fail first if
    // the crash were only noticed at the timeout.
    let stack = Stack::new(
        "services:\n  api:\n    x-hub:\n      class: optional\n      run: \"echo boom; sleep 0.2; exit 3\"\n      health: { tcp: \"127.0.0.1:9\" }\n      timeout: 10m\n      retry: { attempts: 1 }\n",
    );
    let (status, records, err) = stack.deploy(&[]).finish();
    assert_eq!(status, Some(0), "{err}");
    let failure = records.iter().find(|r| r["type"] == "unhealthy").unwrap();
    assert_eq!(failure["reason"], "exited");
    assert_eq!(failure["exit_status"], 3);
    assert_eq!(failure["final"], true);
    assert!(
        failure["log_tail"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "boom"),
        "{failure}"
    );
}

#[test]
fn a_rerun_resumes_skipping_what_is_healthy() {
    let stack = Stack::new(&compose(&[
        gated("db", "core", ""),
        gated("api", "core", "db"),
    ]));
    stack.touch("db.ready");
    stack.touch("api.ready");
    assert_eq!(stack.deploy(&[]).finish().0, Some(0));
    let (status, records, err) = stack.deploy(&[]).finish();
    assert_eq!(status, Some(0), "{err}");
    let skipped: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "skipped" && r["reason"] == "already_healthy")
        .map(|r| r["service"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["db", "api"]);
    assert!(!records.iter().any(|r| r["type"] == "started"));
}

#[test]
fn sigterm_mid_deploy_leaves_no_start_command_running() {
    let stack = Stack::new(
        "services:\n  slow:\n    x-hub: { class: core, start: \"echo $$$$ > start.pid; sleep 1000 & wait\" }\n",
    );
    let deploy = stack.deploy(&[]);
    let marker = stack.path().join("start.pid");
    let shell = wait_for_pid_file(&marker);
    deploy.signal("TERM");
    let (status, records, err) = deploy.finish();
    assert_eq!(status, Some(143), "{err}");
    let interrupted = records
        .iter()
        .find(|r| r["type"] == "interrupted" && r["tool"] == "hub-start")
        .unwrap();
    assert_eq!(interrupted["in_flight"], serde_json::json!(["slow"]));
    wait_until("the start command is gone", || !alive(shell));
}

#[test]
fn inject_failure_rehearses_the_policy() {
    let stack = Stack::new(&compose(&[
        gated("db", "core", ""),
        gated("kas", "stretch", ""),
    ]));
    stack.touch("db.ready");
    stack.touch("kas.ready");
    let (status, records, err) = stack.deploy(&["--inject-failure", "kas"]).finish();
    assert_eq!(status, Some(0), "{err}");
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "failed" && r["reason"] == "injected" && r["service"] == "kas")
    );
    assert!(
        err.contains("Service kas failed (STRETCH - deployment will continue)"),
        "{err}"
    );
    let (status, _, err) = stack.deploy(&["--inject-failure", "db"]).finish();
    assert_eq!(status, Some(1), "{err}");
}

#[test]
fn dry_run_prints_the_plan_and_starts_nothing() {
    let stack = Stack::new(&compose(&[
        gated("db", "core", ""),
        gated("api", "core", "db"),
    ]));
    let out = Cmd::script("hub-deploy")
        .current_dir(stack.path())
        .arg("--dry-run")
        .run();
    let plan = String::from_utf8(out.stdout).unwrap();
    assert!(plan.starts_with("LEVEL  SERVICE"), "{plan}");
    assert!(plan.contains("run: exec sleep 1000"), "{plan}");
    assert!(
        !stack.path().join(".hub").exists(),
        "nothing started, nothing written"
    );
}

#[test]
fn bad_input_exits_2_before_anything_starts() {
    let stack = Stack::new(
        "services:\n  api:\n    depends_on: [db]\n    x-hub: { run: \"exec sleep 1000\" }\n",
    );
    let out = Cmd::script("hub-deploy")
        .current_dir(stack.path())
        .status(2);
    assert!(
        stderr(&out).contains("depends on \"db\", which is not defined"),
        "{}",
        stderr(&out)
    );
    assert!(!stack.path().join(".hub/pids").exists());
    Cmd::script("hub-deploy")
        .arg("--schedule")
        .arg("fast")
        .stderr_contains("--schedule must be dag or levels")
        .status(2);
}

#[test]
fn the_demo_deploys_recovers_a_flaky_service_and_tears_down() {
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().join(".hub");
    let _cleanup = KillPidsOnDrop(state_dir.clone());
    let empty = temp_with(&[]);
    let state_arg = state_dir.display().to_string();
    let (status, records, err) = Running::spawn_script(
        "hub-deploy",
        &["--events", "/dev/stdout", "--state-dir", &state_arg],
        empty.path(),
        &[],
    )
    .finish();
    assert_eq!(status, Some(0), "{err}");
    assert!(err.contains("using the bundled demo stack"), "{err}");
    let keycloak = records
        .iter()
        .find(|r| is("healthy", "keycloak")(r))
        .unwrap();
    assert_eq!(
        keycloak["attempt"], 3,
        "the flaky service recovered on its third attempt"
    );
    assert!(
        err.contains("Service otel-collector failed (OPTIONAL - deployment will continue)"),
        "{err}"
    );
    assert!(records.iter().any(is("healthy", "frontend")));
    // The one-shot migration completed before keycloak's first attempt.
    assert!(
        position(&records, is("healthy", "keycloak-migrate"))
            < position(&records, is("started", "keycloak"))
    );
    let down = Cmd::script("hub-down")
        .current_dir(empty.path())
        .args(["--state-dir", &state_arg])
        .run();
    let stopped = records_of(&down);
    assert_eq!(stopped.len(), 9);
    assert!(
        stopped
            .iter()
            .all(|r| r["type"] == "stopped" && r["ok"] == true),
        "{stopped:?}"
    );
    assert_eq!(stopped[0]["service"], "frontend", "dependents stop first");
    for started in records.iter().filter(|r| r["type"] == "started") {
        let pid = started["pid"].as_u64().unwrap() as u32;
        assert!(
            !alive(pid),
            "{} (pid {pid}) survived hub-down",
            started["service"]
        );
    }
}

fn records_of(output: &std::process::Output) -> Vec<Value> {
    records(output)
}

#[test]
fn hub_down_finishes_the_teardown_when_its_reader_goes_away() {
    let stack = Stack::new(&compose(&[
        gated("db", "core", ""),
        gated("api", "core", "db"),
        gated("web", "core", "api"),
    ]));
    for name in ["db", "api", "web"] {
        stack.touch(&format!("{name}.ready"));
    }
    let (status, records, err) = stack.deploy(&[]).finish();
    assert_eq!(status, Some(0), "{err}");
    let bins = hub_tests::bin_dir().display().to_string();
    let script = hub_tests::workspace_root().join("scripts/hub-down");
    Cmd::program(Path::new("bash"))
        .current_dir(stack.path())
        .env("HUB_BIN_DIR", bins)
        .args([
            "-c",
            &format!(
                "{} --state-dir .hub | head -1 > /dev/null",
                script.display()
            ),
        ])
        .run();
    for started in records.iter().filter(|r| r["type"] == "started") {
        let pid = started["pid"].as_u64().unwrap() as u32;
        wait_until("every service is stopped", || !alive(pid));
    }
}

/// `migrate` is a one-shot job that `api` waits on with `service_completed_successfully`.
fn with_a_migration(job: &str) -> Stack {
    Stack::new(&format!(
        r#"
services:
  migrate:
    x-hub: {{ class: core, run: "{job}", retry: {{ attempts: 1 }} }}
  api:
    depends_on: {{ migrate: {{ condition: service_completed_successfully }} }}
    x-hub: {{ class: core, run: "exec sleep 1000", health: {{ cmd: "test -f migrated", interval: 20ms }} }}
"#
    ))
}

#[test]
fn a_one_shot_job_that_exits_0_lets_its_dependents_start() {
    let stack = with_a_migration("echo migrating; touch migrated");
    let (status, records, err) = stack.deploy(&[]).finish();
    assert_eq!(status, Some(0), "{err}");
    let done = position(&records, is("healthy", "migrate"));
    assert!(
        done < position(&records, is("started", "api")),
        "{records:#?}"
    );
    assert!(records.iter().any(is("healthy", "api")));
    assert!(stack.path().join("migrated").exists());
    assert!(err.contains("migrate completed with exit 0 after"), "{err}");
}

#[test]
fn a_one_shot_job_that_fails_blocks_its_dependents() {
    let stack = with_a_migration("echo 'relation users already exists' >&2; exit 3");
    let (status, records, err) = stack.deploy(&[]).finish();
    assert_eq!(status, Some(1), "{err}");
    let failed = &records[position(&records, is("unhealthy", "migrate"))];
    assert_eq!(failed["reason"], "exited");
    assert_eq!(failed["exit_status"], 3);
    assert_eq!(
        failed["log_tail"],
        serde_json::json!(["relation users already exists"])
    );
    // A CORE job failed: the deploy stops, and api never starts.
    let skipped = &records[position(&records, is("skipped", "api"))];
    assert_eq!(skipped["reason"], "aborted");
    assert!(!records.iter().any(is("started", "api")));
}
