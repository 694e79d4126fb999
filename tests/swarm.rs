//! hub-deploy --swarm and hub-down --swarm on a real single-node swarm: a diamond released in
//! dependency order (checked from Swarm's own task timestamps), an OPTIONAL service whose
//! image no node has failing at once without blocking, services no node may run (a constraint
//! no node matches, replicated and global) failing at once, a rerun that resumes, a CORE failure
//! that stops its dependents with the task's error in the records and the report, and a
//! teardown that leaves no service, task, container or network. Compiled as ignored where the
//! engine is not a swarm manager (`have_swarm`, tests/support/probe.rs).

use hub::records::{Backend, Record, SkipReason, StopMethod, Stopped, UnhealthyReason};
use hub_tests::docker::{Project, docker};
use hub_tests::{Cmd, stderr, typed_records, variants};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);
const STACK_LABEL: &str = "com.docker.stack.namespace";

fn out_lines(output: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One stack for one test, with a name no parallel run shares; on drop `docker stack rm`, and
/// a wait (bounded) until nothing of it is left.
struct Stack {
    name: String,
}

impl Stack {
    fn new(hint: &str) -> Stack {
        Stack {
            name: format!(
                "hubsw-{hint}-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::SeqCst)
            ),
        }
    }

    /// Services, containers (tasks' and any other) and networks still labelled with it.
    fn leftovers(&self) -> Vec<String> {
        let label = format!("label={STACK_LABEL}={}", self.name);
        let mut left = Vec::new();
        for (what, args) in [
            ("service", vec!["service", "ls", "-q", "--filter", &label]),
            ("container", vec!["ps", "-a", "-q", "--filter", &label]),
            ("network", vec!["network", "ls", "-q", "--filter", &label]),
        ] {
            left.extend(
                out_lines(&docker(args))
                    .into_iter()
                    .map(|id| format!("{what} {id}")),
            );
        }
        left
    }

    /// `docker stack ps` has no task of it left.
    fn no_tasks(&self) -> bool {
        let ps = docker(["stack", "ps", "-q", &self.name]);
        out_lines(&ps).is_empty()
    }

    /// Every task of one service: `docker inspect` of each.
    fn tasks(&self, service: &str) -> Vec<Value> {
        let full = format!("{}_{service}", self.name);
        let ids = out_lines(&docker(["service", "ps", "-q", "--no-trunc", &full]));
        assert!(!ids.is_empty(), "{full} has no task");
        let mut args = vec!["inspect".to_owned(), "--type".into(), "task".into()];
        args.extend(ids);
        serde_json::from_slice(&docker(args).stdout).expect("docker inspect of tasks")
    }

    fn has_service(&self, service: &str) -> bool {
        let full = format!("{}_{service}", self.name);
        out_lines(&docker(["service", "ls", "--format", "{{.Name}}"])).contains(&full)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = docker(["stack", "rm", &self.name]);
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline && !self.leftovers().is_empty() {
            for network in out_lines(&docker([
                "network",
                "ls",
                "-q",
                "--filter",
                &format!("label={STACK_LABEL}={}", self.name),
            ])) {
                let _ = docker(["network", "rm", &network]);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// An RFC 3339 time as Swarm writes it, comparable: (date and time, nanoseconds).
fn instant(ts: &str) -> (String, u64) {
    let ts = ts.trim_end_matches('Z');
    let (whole, fraction) = ts.split_once('.').unwrap_or((ts, "0"));
    let nanos = format!("{fraction:0<9}")[..9].parse().expect("nanoseconds");
    (whole.to_owned(), nanos)
}

const DIAMOND: &str = r#"
services:
  db:
    image: {{IMAGE}}
    environment: { READY_AFTER_MS: "800" }
    healthcheck: { test: ["CMD", "/server", "check"], interval: 300ms, retries: 200 }
  cache:
    image: {{IMAGE}}
    environment: { READY_AFTER_MS: "200" }
    healthcheck: { test: ["CMD", "/server", "check"], interval: 300ms, retries: 200 }
  api:
    image: {{IMAGE}}
    depends_on:
      db: { condition: service_healthy }
      cache: { condition: service_healthy }
    environment: { READY_AFTER_MS: "300" }
    healthcheck: { test: ["CMD", "/server", "check"], interval: 300ms, retries: 200 }
    deploy: { replicas: 2 }
    restart: always
  web:
    image: {{IMAGE}}
    depends_on:
      api: { condition: service_healthy }
      extra: { condition: service_started, required: false }
    healthcheck: { test: ["CMD", "/server", "check"], interval: 300ms, retries: 200 }
    deploy: { mode: global }
  extra:
    image: hub-test-no-such-image:none
    labels: [hub.class=optional]
    x-hub: { timeout: 10m }
  pinned:
    image: {{IMAGE}}
    deploy: { placement: { constraints: [node.labels.hub-test-none == yes] } }
    labels: [hub.class=stretch]
    x-hub: { timeout: 10m }
  pinned-everywhere:
    image: {{IMAGE}}
    deploy: { mode: global, placement: { constraints: [node.labels.hub-test-none == yes] } }
    labels: [hub.class=stretch]
    x-hub: { timeout: 10m }
"#;

fn find<'a>(events: &'a [Record], kind: &str, service: &str) -> Option<&'a Record> {
    events
        .iter()
        .find(|r| r.kind() == kind && r.service() == Some(service))
}

/// The `unhealthy` record of `service`.
fn unhealthy_of<'a>(events: &'a [Record], service: &str) -> &'a hub::records::Unhealthy {
    variants!(events, Record::Unhealthy)
        .into_iter()
        .find(|u| u.of.service == service)
        .unwrap_or_else(|| panic!("no unhealthy record of {service}: {events:#?}"))
}

fn deploy(project: &Project, stack: &Stack, state_dir: &str) -> Cmd {
    let file = project.file().display().to_string();
    Cmd::script("hub-deploy")
        .env("COMPOSE_PROJECT_NAME", project.name())
        .args(["-f", &file, "--swarm", &stack.name])
        .args(["--events", "/dev/stdout", "--state-dir", state_dir])
}

fn down(project: &Project, stack: &Stack, state_dir: &str) -> Vec<Stopped> {
    let file = project.file().display().to_string();
    let out = Cmd::script("hub-down")
        .env("COMPOSE_PROJECT_NAME", project.name())
        .args(["-f", &file, "--swarm", &stack.name])
        .args(["--state-dir", state_dir])
        .run();
    variants!(&typed_records(&out), Record::Stopped)
        .into_iter()
        .cloned()
        .collect()
}

#[test]
#[cfg_attr(
    not(have_swarm),
    ignore = "needs a Docker engine that is a swarm manager (`docker swarm init`; .ci/setup.d/60-swarm.sh)"
)]
fn a_diamond_is_released_in_dependency_order_and_torn_down() {
    let project = Project::new("swarm", DIAMOND);
    let stack = Stack::new("diamond");
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().display().to_string();
    let out = deploy(&project, &stack, &state_dir)
        .stderr_contains("Service extra failed (OPTIONAL - deployment will continue)")
        .stderr_contains("Service pinned failed (STRETCH - deployment will continue)")
        .stderr_contains(
            "service \"api\" runs on Swarm: Swarm does not honour restart, so hub leaves it out",
        )
        .run();
    let events = typed_records(&out);
    for service in ["db", "cache", "api", "web"] {
        let Some(Record::Started(started)) = find(&events, "started", service) else {
            panic!("{service} did not start: {events:#?}");
        };
        assert_eq!(started.backend, Some(Backend::Swarm), "{started:?}");
        assert!(
            started
                .container
                .as_deref()
                .is_some_and(|id| !id.is_empty()),
            "the Swarm service id stands where a container id would: {started:?}"
        );
        assert!(
            find(&events, "healthy", service).is_some(),
            "{service} not healthy: {events:#?}"
        );
    }
    // No node has extra's image: it fails at once (not at its 10-minute timeout), and web,
    // which waits for it softly, is not blocked.
    let extra = unhealthy_of(&events, "extra");
    assert_eq!(
        (extra.reason, extra.is_final),
        (UnhealthyReason::Unplaceable, true),
        "{extra:?}"
    );
    assert!(
        extra
            .message
            .contains("No such image: hub-test-no-such-image:none"),
        "{extra:?}"
    );
    assert!(extra.elapsed_ms < 600_000, "{extra:?}");

    // No node matches their constraints: a replicated service's task stays pending with the
    // scheduler's reason, a global one gets no task at all; both fail at once.
    for (service, why) in [
        ("pinned", "no node can run it: no suitable node"),
        (
            "pinned-everywhere",
            "no node matches its placement constraints",
        ),
    ] {
        let failed = unhealthy_of(&events, service);
        assert_eq!(failed.reason, UnhealthyReason::Unplaceable, "{failed:?}");
        assert!(failed.message.contains(why), "{failed:?}");
        assert!(failed.elapsed_ms < 600_000, "{failed:?}");
    }

    // Swarm's own timestamps: every task of a service was created after each task of its
    // dependencies was running, that is past its healthcheck (Swarm shows `starting` until).
    let deps: BTreeMap<&str, &[&str]> =
        BTreeMap::from([("api", &["db", "cache"][..]), ("web", &["api"][..])]);
    for (service, on) in deps {
        let first = stack
            .tasks(service)
            .iter()
            .map(|t| instant(t["CreatedAt"].as_str().unwrap()))
            .min()
            .unwrap();
        for dep in on {
            let tasks = stack.tasks(dep);
            let running: Vec<_> = tasks
                .iter()
                .filter(|t| t["Status"]["State"] == "running")
                .map(|t| instant(t["Status"]["Timestamp"].as_str().unwrap()))
                .collect();
            let wanted = if *dep == "api" { 2 } else { 1 };
            assert_eq!(running.len(), wanted, "{dep}: {tasks:#?}");
            // The healthy record names the tasks that made it healthy, as Swarm numbers them.
            let Some(Record::Healthy(healthy)) = find(&events, "healthy", dep) else {
                panic!("{dep} not healthy: {events:#?}");
            };
            let running_ids: BTreeSet<&str> = tasks
                .iter()
                .filter(|t| t["Status"]["State"] == "running")
                .filter_map(|t| t["ID"].as_str())
                .collect();
            let named: BTreeSet<&str> = healthy.tasks.iter().map(String::as_str).collect();
            assert_eq!(named, running_ids, "{dep}: {healthy:?}");
            for ready in running {
                assert!(
                    ready < first,
                    "{service}'s first task ({first:?}) was created before {dep} was healthy ({ready:?})"
                );
            }
        }
    }

    // A rerun resumes: every healthy service is skipped, nothing is released again.
    let again = deploy(&project, &stack, &state_dir).run();
    let rerun = typed_records(&again);
    for service in ["db", "cache", "api", "web"] {
        let skipped = variants!(&rerun, Record::Skipped)
            .into_iter()
            .find(|s| s.of.service == service)
            .map(|s| s.reason);
        assert_eq!(
            skipped,
            Some(SkipReason::AlreadyHealthy),
            "{service}: {rerun:#?}"
        );
    }

    let stopped = down(&project, &stack, &state_dir);
    let order: Vec<&str> = stopped.iter().map(|r| r.of.service.as_str()).collect();
    assert_eq!(
        order.first(),
        Some(&"web"),
        "dependents stop first: {order:?}"
    );
    assert!(
        stopped
            .iter()
            .all(|r| r.method == StopMethod::Swarm && r.ok),
        "{stopped:#?}"
    );
    assert_eq!(stack.leftovers(), Vec::<String>::new());
    assert!(stack.no_tasks(), "tasks left in stack {}", stack.name);
}

const CORE_FAILS: &str = r#"
services:
  db:
    image: {{IMAGE}}
    environment: { EXIT_AFTER_MS: "200", EXIT_CODE: "3", EXIT_MESSAGE: "fatal: no disk" }
    labels: [hub.class=core]
    x-hub: { retry: { attempts: 2, delay: 100ms }, timeout: 10m }
  api:
    image: {{IMAGE}}
    depends_on: [db]
    healthcheck: { test: ["CMD", "/server", "check"], interval: 300ms, retries: 200 }
"#;

#[test]
#[cfg_attr(
    not(have_swarm),
    ignore = "needs a Docker engine that is a swarm manager (`docker swarm init`; .ci/setup.d/60-swarm.sh)"
)]
fn a_core_failure_on_swarm_stops_its_dependents() {
    let project = Project::new("swarmfail", CORE_FAILS);
    let stack = Stack::new("corefail");
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().display().to_string();
    let out = deploy(&project, &stack, &state_dir).status(1);
    let events = typed_records(&out);
    // Each failed task is one attempt, with the engine's error and the container's status.
    let failures: Vec<_> = variants!(&events, Record::Unhealthy)
        .into_iter()
        .filter(|u| u.of.service == "db")
        .collect();
    assert_eq!(failures.len(), 2, "{events:#?}");
    for (n, failure) in failures.iter().enumerate() {
        assert_eq!(
            (
                failure.reason,
                failure.exit_status,
                failure.of.attempt as usize,
                failure.is_final
            ),
            (UnhealthyReason::Exited, Some(3), n + 1, n == 1),
            "{failure:?}"
        );
        assert!(
            failure.message.contains("failed: task: non-zero exit (3)"),
            "{failure:?}"
        );
    }
    assert!(
        stderr(&out).contains("failed: task: non-zero exit (3)"),
        "the report names the task's error: {}",
        stderr(&out)
    );
    // api was never released into Swarm.
    let api = variants!(&events, Record::Skipped)
        .into_iter()
        .find(|s| s.of.service == "api")
        .unwrap();
    assert!(
        matches!(
            api.reason,
            SkipReason::Aborted | SkipReason::DependencyFailed
        ),
        "{api:?}"
    );
    assert!(!stack.has_service("api"));
    assert!(stack.has_service("db"));

    let stopped = down(&project, &stack, &state_dir);
    assert!(stopped.iter().all(|r| r.ok), "{stopped:#?}");
    assert_eq!(stack.leftovers(), Vec::<String>::new());
    assert!(stack.no_tasks(), "tasks left in stack {}", stack.name);
}

#[test]
fn a_bad_stack_name_is_refused_before_anything_runs() {
    let dir = hub_tests::temp_with(&[("compose.yaml", "services:\n  a:\n    image: x\n")]);
    let out = Cmd::new("hub-levels")
        .current_dir(dir.path())
        .args(["--swarm", "../x"])
        .status(2);
    assert!(
        stderr(&out).contains("--swarm \"../x\": a stack name is letters, digits"),
        "{}",
        stderr(&out)
    );
}

#[test]
#[cfg_attr(not(have_compose), ignore = "needs `docker compose`")]
fn a_deploy_onto_an_engine_that_is_no_swarm_manager_is_refused_at_plan_time() {
    let dir = hub_tests::temp_with(&[("compose.yaml", "services:\n  a:\n    image: x\n")]);
    let out = Cmd::new("hub-levels")
        .current_dir(dir.path())
        .env("DOCKER_HOST", "unix:///nonexistent/hub-test.sock")
        .args(["--swarm", "shop"])
        .status(2);
    assert!(
        stderr(&out).contains("--swarm shop: the Docker engine is not a swarm manager (")
            && stderr(&out).contains(
                "run `docker swarm init` (one machine) or point DOCKER_HOST at a manager"
            ),
        "{}",
        stderr(&out)
    );
    // A table for a dry run needs no engine.
    Cmd::new("hub-levels")
        .current_dir(dir.path())
        .env("DOCKER_HOST", "unix:///nonexistent/hub-test.sock")
        .args(["--swarm", "shop", "--format", "table"])
        .run();
}
