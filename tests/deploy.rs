//! The whole deploy through real pipes: `scripts/hub-deploy` (hub-levels | hub-start --gate G |
//! hub-wait-healthy | tee G) on stacks of real local processes whose readiness the test
//! controls with marker files, so every ordering claim is observed, never timed.

use hub::records::{AttemptOf, Class, Counts, FailReason, Record, SkipReason, UnhealthyReason};
use hub_tests::{
    Cmd, KillPidsOnDrop, Running, alive, is, stderr, temp_with, typed_records, variants,
    wait_for_pid_file, wait_until,
};
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

fn position(records: &[Record], pred: impl Fn(&Record) -> bool) -> usize {
    records.iter().position(pred).expect("record present")
}

fn count(records: &[Record], kind: &str) -> usize {
    records.iter().filter(|r| r.kind() == kind).count()
}

/// The `skipped` record of a service.
fn skip_of<'a>(records: &'a [Record], service: &str) -> &'a hub::records::Skipped {
    variants!(records, Record::Skipped)
        .into_iter()
        .find(|s| s.of.service == service)
        .unwrap_or_else(|| panic!("{service} was not skipped: {records:#?}"))
}

/// The pids of the `started` records.
fn started_pids(records: &[Record]) -> Vec<(&str, u32)> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Started(s) => Some((s.of.service.as_str(), s.pid?)),
            _ => None,
        })
        .collect()
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
    assert!(!deploy.seen_records().iter().any(is("healthy", "slow")));
    stack.touch("slow.ready");
    let (status, records, err) = deploy.finish();
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(count(&records, "healthy"), 3);
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
    let records: Vec<Record> = events.lines().map(|l| hub_tests::line(l).record).collect();
    assert!(position(&records, is("healthy", "db")) < position(&records, is("started", "api")));
    assert_eq!(count(&records, "finished"), 1);
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
    assert_eq!(count(&records, "skipped"), 1);
    assert_eq!(
        skip_of(&records, "kas-ui").reason,
        SkipReason::DependencyFailed
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
                .any(|r| r.kind() == "started" && r.service() == Some(late)),
            "{late} started"
        );
        assert_eq!(skip_of(&records, late).reason, SkipReason::Aborted);
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
    let failure = unhealthy_of(&records, "api");
    assert_eq!(failure.reason, UnhealthyReason::Exited);
    assert_eq!(failure.exit_status, Some(3));
    assert!(failure.is_final);
    assert!(
        failure.log_tail.iter().flatten().any(|l| l == "boom"),
        "{failure:?}"
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
        .filter_map(|r| match r {
            Record::Skipped(s) if s.reason == SkipReason::AlreadyHealthy => {
                Some(s.of.service.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(skipped, ["db", "api"]);
    assert_eq!(count(&records, "started"), 0);
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
        .find_map(|r| match r {
            Record::Interrupted(i) if i.tool == "hub-start" => Some(i),
            _ => None,
        })
        .unwrap();
    assert_eq!(interrupted.in_flight, ["slow"]);
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
    assert!(records.iter().any(
        |r| matches!(r, Record::Failed(f) if f.reason == FailReason::Injected && f.of.service == "kas")
    ));
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
    // Rehearsing the failure of a service that is not deployed would rehearse nothing.
    let stack = Stack::new(&compose(&[gated("db", "core", "")]));
    stack.touch("db.ready");
    Cmd::script("hub-deploy")
        .current_dir(stack.path())
        .args(["--inject-failure", "dbb"])
        .stderr_contains("--inject-failure dbb: no such service in the plan")
        .status(2);
    assert!(!stack.path().join(".hub/pids").exists(), "nothing started");
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
    let keycloak = &records[position(&records, is("healthy", "keycloak"))];
    assert_eq!(
        attempt(keycloak),
        3,
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
    let stopped = typed_records(&down);
    assert_eq!(stopped.len(), 9);
    assert!(
        stopped
            .iter()
            .all(|r| matches!(r, Record::Stopped(s) if s.ok)),
        "{stopped:?}"
    );
    assert_eq!(
        stopped[0].service(),
        Some("frontend"),
        "dependents stop first"
    );
    for (service, pid) in started_pids(&records) {
        assert!(!alive(pid), "{service} (pid {pid}) survived hub-down");
    }
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
    for (_, pid) in started_pids(&records) {
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
    let failed = unhealthy_of(&records, "migrate");
    assert_eq!(failed.reason, UnhealthyReason::Exited);
    assert_eq!(failed.exit_status, Some(3));
    assert_eq!(
        failed.log_tail.as_deref(),
        Some(&["relation users already exists".to_owned()][..])
    );
    // A CORE job failed: the deploy stops, and api never starts.
    assert_eq!(skip_of(&records, "api").reason, SkipReason::Aborted);
    assert!(!records.iter().any(is("started", "api")));
}

/// Deploy `stack` (with `extra` flags) to the end, expecting exit status `status`: its records
/// and stderr.
fn deployed(stack: &Stack, extra: &[&str], status: i32) -> (Vec<Record>, String) {
    let (got, records, err) = stack.deploy(extra).finish();
    assert_eq!(got, Some(status), "{err}");
    (records, err)
}

/// The `unhealthy` record of a service.
fn unhealthy_of<'a>(records: &'a [Record], service: &str) -> &'a hub::records::Unhealthy {
    variants!(records, Record::Unhealthy)
        .into_iter()
        .find(|u| u.of.service == service)
        .unwrap_or_else(|| panic!("no unhealthy record of {service}: {records:#?}"))
}

/// The attempt a record is about (0 for one about no attempt).
fn attempt(record: &Record) -> u32 {
    match record {
        Record::Started(r) => r.of.attempt,
        Record::Exited(r) => r.of.attempt,
        Record::Failed(r) => r.of.attempt,
        Record::Healthy(r) => r.of.attempt,
        Record::Unhealthy(r) => r.of.attempt,
        Record::Waiting(r) => r.of.attempt,
        _ => 0,
    }
}

/// Assert that `text` says `needle`.
fn says(text: &str, needle: &str) {
    assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
}

/// What a final `failed` or `unhealthy` record says.
#[derive(Debug)]
struct Failure<'a> {
    of: &'a AttemptOf,
    exit_status: Option<i32>,
    message: &'a str,
    log_tail: Option<&'a [String]>,
}

/// The final outcome record (`failed` or `unhealthy` with `final: true`) of a service.
fn final_failure<'a>(records: &'a [Record], service: &str) -> Failure<'a> {
    records
        .iter()
        .find_map(|r| match r {
            Record::Failed(f) if f.is_final && f.of.service == service => Some(Failure {
                of: &f.of,
                exit_status: f.exit_status,
                message: &f.message,
                log_tail: f.log_tail.as_deref(),
            }),
            Record::Unhealthy(u) if u.is_final && u.of.service == service => Some(Failure {
                of: &u.of,
                exit_status: u.exit_status,
                message: &u.message,
                log_tail: u.log_tail.as_deref(),
            }),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no final failure of {service} in {records:#?}"))
}

#[test]
fn a_service_with_no_class_is_core_so_its_failure_fails_the_deploy() {
    // A plain compose file: nothing says which services matter, so, as in compose, all do.
    let stack =
        Stack::new("services:\n  api:\n    x-hub: { start: \"exit 3\", retry: { attempts: 1 } }\n");
    let (records, err) = deployed(&stack, &[], 1);
    assert_eq!(final_failure(&records, "api").of.class, Class::Core);
    says(&err, "Deploy failed");
    // The seed's behaviour stays one flag away.
    let (records, _) = deployed(&stack, &["--default-class", "optional"], 0);
    assert_eq!(final_failure(&records, "api").of.class, Class::Optional);
}

#[test]
fn a_core_service_skipped_for_a_failed_dependency_is_a_core_failure_and_says_why() {
    let stack = Stack::new(concat!(
        "services:\n",
        "  cache:\n    x-hub: { class: optional, start: \"exit 3\", retry: { attempts: 1 } }\n",
        "  api:\n    depends_on: [cache]\n    x-hub: { class: core, run: \"exec sleep 1000\" }\n",
    ));
    let (_, err) = deployed(&stack, &[], 1);
    says(
        &err,
        "service \"api\" is CORE but hard-depends on \"cache\", which is OPTIONAL",
    );
    assert!(
        err.contains(
            "Deploy failed: CORE service api was skipped because its hard dependency cache failed"
        ),
        "{err}"
    );
    says(
        &err,
        "· 1 CORE failure (api skipped: dependency cache failed)",
    );
    assert!(!err.contains("0 CORE failures"), "{err}");
}

#[test]
fn a_run_process_that_exits_0_is_told_how_to_be_a_one_shot_job() {
    let stack = Stack::new(
        "services:\n  seed:\n    x-hub: { class: optional, run: \"echo seeded\", retry: { attempts: 1 } }\n",
    );
    let (records, err) = deployed(&stack, &[], 0);
    let failure = final_failure(&records, "seed");
    let message = failure.message;
    assert!(
        message.contains("status 0")
            && message.contains("if it is a one-shot job, set `x-hub.health.completed: true`"),
        "{failure:?}"
    );
    says(&err, "x-hub.health.completed: true");
}

#[test]
fn a_service_that_dies_after_its_probe_passed_is_a_failure_and_blocks_its_dependents() {
    // A stray server holds the port: the probe reaches it, not the service.
    let stray = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = stray.local_addr().unwrap().port();
    let stack = Stack::new(&format!(
        r#"
services:
  api:
    x-hub:
      class: core
      run: "while [ ! -f die ]; do sleep 0.02; done; echo 'Address already in use' >&2; exit 1"
      health: {{ tcp: "127.0.0.1:{port}" }}
      retry: {{ attempts: 1 }}
  slow:
    x-hub: {{ class: core, run: "exec sleep 1000", health: {{ cmd: "test -f slow.ready", interval: 20ms }} }}
  web:
    depends_on: [api, slow]
    x-hub: {{ class: core, run: "exec sleep 1000" }}
"#
    ));
    let mut deploy = stack.deploy(&[]);
    deploy.wait_for("api healthy", is("healthy", "api"));
    stack.touch("die");
    let died = deploy.wait_for("api's death", is("failed", "api"));
    let Record::Failed(died) = died else {
        unreachable!()
    };
    assert_eq!(died.reason, FailReason::ExitedAfterHealthy);
    assert_eq!(died.exit_status, Some(1));
    assert!(died.is_final);
    assert_eq!(
        died.log_tail.as_deref(),
        Some(&["Address already in use".to_owned()][..])
    );
    stack.touch("slow.ready");
    let (status, records, err) = deploy.finish();
    assert_eq!(status, Some(1), "{err}");
    assert!(!records.iter().any(is("started", "web")), "{records:#?}");
    assert!(records.iter().any(is("skipped", "web")));
    says(&err, "api was healthy, then exited with status 1");
}

#[test]
fn rerun_counts_already_healthy_services_as_such() {
    let stack = Stack::new(&compose(&[
        gated("db", "core", ""),
        "  kas:\n    x-hub: { class: stretch, start: \"exit 3\", retry: { attempts: 1 } }\n".into(),
    ]));
    stack.touch("db.ready");
    assert_eq!(stack.deploy(&[]).finish().0, Some(0));
    let (records, err) = deployed(&stack, &[], 0);
    let Some(Record::Finished(finished)) = records.last() else {
        panic!("the last record is not `finished`: {records:#?}");
    };
    assert_eq!(
        finished.counts,
        Counts {
            healthy: 1,
            already_healthy: 1,
            started: 0,
            failed: 1,
            skipped: 0
        }
    );
    says(
        &err,
        "Deployed with degradation: 1/2 healthy (1 already healthy), 1 failed",
    );
    // The report agrees.
    says(&err, "1/2 healthy (1 already healthy) in ");
}

#[test]
fn a_service_log_tail_shows_the_current_attempt_only() {
    let stack = Stack::new(
        "services:\n  api:\n    x-hub:\n      class: optional\n      run: \"echo boom; sleep 0.2; exit 3\"\n      health: { tcp: \"127.0.0.1:9\" }\n      retry: { attempts: 1 }\n",
    );
    let logs = stack.path().join(".hub/logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("api.log"), "an earlier run was fine\n").unwrap();
    let (status, lines, err) = stack.deploy(&[]).finish_lines();
    assert_eq!(status, Some(0), "{err}");
    let records: Vec<Record> = lines.iter().map(|l| l.record.clone()).collect();
    let failure = final_failure(&records, "api");
    assert_eq!(
        failure.log_tail,
        Some(&["boom".to_owned()][..]),
        "{failure:?}"
    );
    let log = std::fs::read_to_string(logs.join("api.log")).unwrap();
    let header = log.lines().nth(1).unwrap();
    let parsed = hub::logheader::parse_header(header).expect("a header before the attempt");
    assert_eq!(parsed.attempt, 1);
    assert_eq!(parsed.cmd, "echo boom; sleep 0.2; exit 3");
    assert!(
        lines
            .iter()
            .all(|l| l.run_id.as_deref() == Some(parsed.run_id.as_str())),
        "the log header names the deploy's run"
    );
}

#[test]
fn a_command_that_is_not_found_is_not_retried() {
    let stack = Stack::new(concat!(
        "services:\n",
        "  starter:\n    x-hub: { class: optional, start: \"no-such-command-hub-11\", retry: { attempts: 3, delay: 10ms } }\n",
        "  runner:\n    x-hub: { class: optional, run: \"no-such-command-hub-11\", retry: { attempts: 3, delay: 10ms } }\n",
    ));
    let (records, _) = deployed(&stack, &[], 0);
    for service in ["starter", "runner"] {
        let failure = final_failure(&records, service);
        assert_eq!(failure.of.attempt, 1, "{failure:?}");
        assert_eq!(failure.exit_status, Some(127), "{failure:?}");
        assert!(
            failure
                .message
                .contains("127: the command was not found; retrying cannot help"),
            "{failure:?}"
        );
        assert!(
            !records
                .iter()
                .any(|r| r.service() == Some(service) && attempt(r) == 2),
            "{service} was retried"
        );
    }
}

#[test]
fn a_health_timeout_is_retried_after_stopping_the_attempt() {
    let stack = Stack::new(
        r#"
services:
  api:
    x-hub:
      class: core
      run: "touch attempt-$$HUB_ATTEMPT; exec sleep 1000"
      health: { cmd: "test -f attempt-2", interval: 20ms }
      timeout: 500ms
      retry: { attempts: 2, delay: 10ms }
  daemon:
    x-hub:
      class: core
      start: "true"
      stop: "touch daemon.stopped"
      health: { cmd: "test -f daemon.stopped", interval: 20ms }
      timeout: 500ms
      retry: { attempts: 2, delay: 10ms }
"#,
    );
    let (records, _) = deployed(&stack, &[], 0);
    let timeout = unhealthy_of(&records, "api");
    assert_eq!(
        (timeout.reason, timeout.of.attempt, timeout.is_final),
        (UnhealthyReason::Timeout, 1, false)
    );
    assert_eq!(
        attempt(&records[position(&records, is("healthy", "api"))]),
        2
    );
    let (_, pid) = started_pids(&records)
        .into_iter()
        .find(|(service, _)| *service == "api")
        .unwrap();
    assert!(!alive(pid), "attempt 1 (pid {pid}) was left running");
    // A start command's service is stopped with its x-hub.stop before the next attempt.
    assert_eq!(
        attempt(&records[position(&records, is("healthy", "daemon"))]),
        2
    );
}

#[test]
fn hub_deploy_quiet_prints_no_report_but_warnings() {
    let stack = Stack::new(&compose(&[
        gated("db", "core", ""),
        "  kas:\n    x-hub: { class: stretch, start: \"exit 3\", retry: { attempts: 1 } }\n".into(),
    ]));
    stack.touch("db.ready");
    let (_, err) = deployed(&stack, &["-q"], 0);
    says(
        &err,
        "Service kas failed (STRETCH - deployment will continue)",
    );
    for noise in [
        "ℹ Starting",
        "SERVICE  CLASS",
        "ℹ events:",
        "✅ db is healthy",
    ] {
        assert!(!err.contains(noise), "-q printed {noise:?}: {err}");
    }
}

#[test]
fn the_scripts_answer_version_and_help() {
    for script in ["hub-deploy", "hub-down"] {
        let out = Cmd::script(script).arg("--version").run();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text,
            format!("{script} {}\n", env!("CARGO_PKG_VERSION")),
            "{script} --version"
        );
        let out = Cmd::script(script).arg("--help").run();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: "),
            "{script} --help"
        );
    }
}

#[test]
fn hub_down_prints_human_lines_on_a_terminal_and_records_elsewhere() {
    let has_script = std::process::Command::new("script")
        .args(["-qec", "true", "/dev/null"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        eprintln!(
            "\n!!!!!!!!!! SKIPPED: hub_down_prints_human_lines_on_a_terminal_and_records_elsewhere did not run: `script` (util-linux) is missing !!!!!!!!!!"
        );
        return;
    }
    let stack = Stack::new(&compose(&[gated("db", "core", "")]));
    stack.touch("db.ready");
    assert_eq!(stack.deploy(&[]).finish().0, Some(0));
    let down = hub_tests::workspace_root().join("scripts/hub-down");
    // `script` gives hub-down a terminal for stdout and stderr, and copies both to our pipe.
    let out = Cmd::program(Path::new("script"))
        .current_dir(stack.path())
        .env("HUB_BIN_DIR", hub_tests::bin_dir())
        .args([
            "-qec",
            &format!("{} --state-dir .hub", down.display()),
            "/dev/null",
        ])
        .run();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("db stopped"), "{screen}");
    assert!(
        !screen.contains("\"type\""),
        "records on a terminal: {screen}"
    );
    // Records where a program reads them: --events FILE, or a stdout that is not a terminal.
    let down_again = Cmd::script("hub-down")
        .current_dir(stack.path())
        .args(["--state-dir", ".hub", "--events", "down.jsonl"])
        .run();
    assert!(down_again.stdout.is_empty());
    let events = std::fs::read_to_string(stack.path().join("down.jsonl")).unwrap();
    assert!(
        events
            .lines()
            .any(|l| matches!(hub_tests::line(l).record, Record::Stopped(_))),
        "{events}"
    );
}

#[test]
fn a_fixed_service_is_not_refused_by_its_broken_predecessors_breaker() {
    let broken = "services:\n  api:\n    x-hub: { class: core, start: \"exit 1\", retry: { attempts: 3, delay: 10ms } }\n";
    let stack = Stack::new(broken);
    let home = tempfile::tempdir().unwrap();
    let (records, _) = deployed(&stack, &[], 1);
    assert!(
        records.iter().any(|r| matches!(r, Record::Breaker(t) if t.key == "api:start" && t.to == hub::breaker::State::Open)),
        "{records:#?}"
    );
    // hub-breaker in the same folder sees the breaker the deploy used (not ~/.local/state).
    let breaker = |args: &[&str]| {
        Cmd::new("hub-breaker")
            .current_dir(stack.path())
            .env("HOME", home.path())
            .env_remove("XDG_STATE_HOME")
            .env_remove("HUB_BREAKER_STATE")
            .env_remove("HUB_STATE_DIR")
            .args(args)
            .run()
    };
    let status_out = breaker(&["status", "--json"]);
    let keys = typed_records(&status_out);
    let [Record::BreakerStatus(key)] = keys.as_slice() else {
        panic!("one breaker_status record: {keys:?}");
    };
    assert_eq!(
        (key.key.as_str(), key.state),
        ("api:start", hub::breaker::State::Open)
    );
    // The same definition again: refused, and told exactly how to reset.
    let (_, err) = deployed(&stack, &[], 1);
    let state = stack.path().join(".hub/breaker.json");
    let reset = format!(
        "hub-breaker reset api:start --breaker-state {}",
        state.display()
    );
    says(&err, &reset);
    // Fixed: it starts afresh, and says so.
    std::fs::write(
        stack.path().join("compose.yaml"),
        broken.replace("exit 1", "true"),
    )
    .unwrap();
    let (records, err) = deployed(&stack, &[], 0);
    says(&err, "api:start: the service's definition changed");
    assert!(records.iter().any(is("healthy", "api")) || records.iter().any(is("started", "api")));
    // And a reset in this folder resets the deploy's breaker.
    std::fs::write(stack.path().join("compose.yaml"), broken).unwrap();
    assert_eq!(stack.deploy(&[]).finish().0, Some(1));
    breaker(&["reset", "api:start"]);
    let keys = typed_records(&breaker(&["status", "--json"]));
    assert!(keys.is_empty(), "{keys:?}");
}
