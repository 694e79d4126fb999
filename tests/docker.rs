//! The container backend on a real Docker engine with compose v2: health from the engine's
//! events, fail-fast on exit, the grace period, exec probes, `docker compose config | hub-levels`,
//! and teardown. Each test has its own compose project, removed even when the test fails.
//! Without an engine every test prints a loud SKIPPED line and passes.

use hub::command::CommandSpec;
use hub::container::{
    self, ComposeCmd, ContainerCheck, HealthyBy, Outcome, ProbeResult, WaitOptions,
};
use hub::records::{Backend, Check, Class, ComposeRef, Plan, Record};
use hub_tests::docker::{Project, TestImage, engine_or_skip};
use hub_tests::{Cmd, typed_records};
use std::sync::Arc;
use std::time::Duration;

/// Long enough never to decide a test on a healthy engine: passing early is the assertion.
const GENEROUS: Duration = Duration::from_secs(120);

fn compose_cmd() -> ComposeCmd {
    ComposeCmd::from_words("docker compose", "test").unwrap()
}

fn compose_ref(project: &Project) -> ComposeRef {
    ComposeRef {
        files: vec![project.file().display().to_string()],
        project: Some(project.name().to_owned()),
        project_directory: None,
        env_files: Vec::new(),
        stack: None,
    }
}

fn engine_check(grace: Duration, timeout: Duration) -> WaitOptions {
    WaitOptions {
        check: ContainerCheck::Engine { grace },
        timeout,
        log_lines: 20,
    }
}

/// The exit code and log tail of an `Exited` outcome; any other outcome fails the test.
fn exit_of(outcome: Outcome) -> (Option<i32>, Vec<String>) {
    match outcome {
        Outcome::Exited {
            exit_code,
            log_tail,
            ..
        } => (exit_code, log_tail),
        other => panic!("expected Exited, got {other:?}"),
    }
}

fn server_check() -> CommandSpec {
    CommandSpec::Argv(vec!["/server".into(), "check".into()])
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine and docker compose (`docker info`)"
)]
fn a_healthcheck_gated_container_becomes_healthy() {
    if !engine_or_skip("a_healthcheck_gated_container_becomes_healthy") {
        return;
    }
    let project = Project::new(
        "gated",
        r#"
services:
  web:
    image: {{IMAGE}}
    environment:
      READY_AFTER_MS: "300"
    healthcheck:
      test: ["CMD", "/server", "check"]
      interval: 1s
      timeout: 2s
      retries: 30
"#,
    );
    let cmd = compose_cmd();
    let id = container::up(&cmd, &compose_ref(&project), "web").unwrap();
    // A grace far beyond the deadline: only the engine's `healthy` can pass this.
    let outcome =
        container::wait_healthy(&cmd, &id, &engine_check(GENEROUS * 10, GENEROUS)).unwrap();
    assert_eq!(
        outcome,
        Outcome::Healthy {
            by: HealthyBy::Healthcheck,
            probes: 0
        }
    );
    let state = container::inspect(&cmd, &id).unwrap().unwrap();
    assert_eq!(state.health.unwrap().status, "healthy");
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine and docker compose (`docker info`)"
)]
fn an_exiting_container_fails_at_once_with_its_code_and_log_tail() {
    if !engine_or_skip("an_exiting_container_fails_at_once_with_its_code_and_log_tail") {
        return;
    }
    let project = Project::new(
        "exits",
        r#"
services:
  checked:
    image: {{IMAGE}}
    environment:
      START_MESSAGE: "booting checked"
      EXIT_AFTER_MS: "200"
      EXIT_CODE: "3"
      EXIT_MESSAGE: "fatal: config file broken"
    healthcheck:
      test: ["CMD", "/server", "check"]
      interval: 1s
  unchecked:
    image: {{IMAGE}}
    environment:
      EXIT_AFTER_MS: "0"
      EXIT_CODE: "42"
      EXIT_MESSAGE: "cannot bind"
"#,
    );
    let cmd = compose_cmd();
    for (service, code, message) in [
        ("checked", 3, "fatal: config file broken"),
        ("unchecked", 42, "cannot bind"),
    ] {
        let id = container::up(&cmd, &compose_ref(&project), service).unwrap();
        // The deadline and grace are far away: an `Exited` here was decided by the exit.
        let outcome =
            container::wait_healthy(&cmd, &id, &engine_check(GENEROUS, GENEROUS)).unwrap();
        let Outcome::Exited {
            exit_code,
            oom_killed,
            log_tail,
        } = outcome
        else {
            panic!("{service}: expected Exited, got {outcome:?}");
        };
        assert_eq!(exit_code, Some(code), "{service}");
        assert!(!oom_killed);
        assert_eq!(
            log_tail.last().map(String::as_str),
            Some(message),
            "{service}: {log_tail:?}"
        );
    }
    let tail = container::logs_tail(
        &cmd,
        &container::container_id(&cmd, &compose_ref(&project), "checked")
            .unwrap()
            .unwrap(),
        1,
    )
    .unwrap();
    assert_eq!(tail, ["fatal: config file broken"]);
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine and docker compose (`docker info`)"
)]
fn a_container_without_healthcheck_is_healthy_after_its_grace_period() {
    if !engine_or_skip("a_container_without_healthcheck_is_healthy_after_its_grace_period") {
        return;
    }
    let project = Project::new(
        "grace",
        r#"
services:
  plain:
    image: {{IMAGE}}
"#,
    );
    let cmd = compose_cmd();
    let id = container::up(&cmd, &compose_ref(&project), "plain").unwrap();
    let outcome = container::wait_healthy(
        &cmd,
        &id,
        &engine_check(Duration::from_millis(500), GENEROUS),
    )
    .unwrap();
    assert_eq!(
        outcome,
        Outcome::Healthy {
            by: HealthyBy::Grace,
            probes: 0
        }
    );
    assert!(container::inspect(&cmd, &id).unwrap().unwrap().is_up());
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine and docker compose (`docker info`)"
)]
fn a_container_restarting_under_its_policy_is_not_final_before_the_deadline() {
    if !engine_or_skip("a_container_restarting_under_its_policy_is_not_final_before_the_deadline") {
        return;
    }
    let project = Project::new(
        "restarts",
        r#"
services:
  flappy:
    image: {{IMAGE}}
    restart: always
    environment:
      EXIT_AFTER_MS: "0"
      EXIT_CODE: "5"
    healthcheck:
      test: ["CMD", "/server", "check"]
      interval: 1s
"#,
    );
    let cmd = compose_cmd();
    let id = container::up(&cmd, &compose_ref(&project), "flappy").unwrap();
    // Each exit is followed by a restart, so nothing is final: only the deadline ends it.
    let outcome =
        container::wait_healthy(&cmd, &id, &engine_check(GENEROUS, Duration::from_secs(3)))
            .unwrap();
    let Outcome::TimedOut { last_state, .. } = outcome else {
        panic!("expected TimedOut, got {outcome:?}");
    };
    assert!(!last_state.is_empty());
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine and docker compose (`docker info`)"
)]
fn exec_probes_run_the_healthcheck_test_inside_the_container() {
    if !engine_or_skip("exec_probes_run_the_healthcheck_test_inside_the_container") {
        return;
    }
    // The engine would check only after an hour: only hub's exec probes can pass in time.
    let project = Project::new(
        "exec",
        r#"
services:
  slow-engine:
    image: {{IMAGE}}
    environment:
      READY_AFTER_MS: "400"
    healthcheck:
      test: ["CMD", "/server", "check"]
      interval: 1h
"#,
    );
    let cmd = compose_cmd();
    let id = container::up(&cmd, &compose_ref(&project), "slow-engine").unwrap();
    let bad = CommandSpec::Argv(vec!["/server".into(), "bogus".into()]);
    assert_eq!(
        container::exec_probe(&cmd, &id, &bad, GENEROUS).unwrap(),
        ProbeResult::Failed {
            exit_status: 2,
            output: "usage: server [check]".into()
        }
    );
    let outcome = container::wait_healthy(
        &cmd,
        &id,
        &WaitOptions {
            check: ContainerCheck::Exec {
                test: server_check(),
                interval: Duration::from_millis(200),
                probe_timeout: Duration::from_secs(10),
            },
            timeout: GENEROUS,
            log_lines: 20,
        },
    )
    .unwrap();
    let Outcome::Healthy {
        by: HealthyBy::ExecProbe,
        probes,
    } = outcome
    else {
        panic!("expected healthy by exec probe, got {outcome:?}");
    };
    assert!(probes >= 1);
    assert_eq!(
        container::exec_probe(&cmd, &id, &server_check(), GENEROUS).unwrap(),
        ProbeResult::Passed
    );
    // The engine's own check has not run yet: hub did not wait for it.
    let state = container::inspect(&cmd, &id).unwrap().unwrap();
    assert_eq!(state.health.unwrap().status, "starting");
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine and docker compose (`docker info`)"
)]
fn an_exec_check_still_fails_fast_when_the_container_exits() {
    if !engine_or_skip("an_exec_check_still_fails_fast_when_the_container_exits") {
        return;
    }
    let project = Project::new(
        "execexit",
        r#"
services:
  dies:
    image: {{IMAGE}}
    environment:
      READY_AFTER_MS: "60000"
      EXIT_AFTER_MS: "300"
      EXIT_CODE: "9"
      EXIT_MESSAGE: "out of luck"
"#,
    );
    let cmd = compose_cmd();
    let id = container::up(&cmd, &compose_ref(&project), "dies").unwrap();
    let outcome = container::wait_healthy(
        &cmd,
        &id,
        &WaitOptions {
            check: ContainerCheck::Exec {
                test: server_check(),
                interval: Duration::from_millis(500),
                probe_timeout: Duration::from_secs(10),
            },
            timeout: GENEROUS,
            log_lines: 5,
        },
    )
    .unwrap();
    let (exit_code, log_tail) = exit_of(outcome);
    assert_eq!(exit_code, Some(9));
    assert_eq!(log_tail, ["out of luck"]);
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine and docker compose (`docker info`)"
)]
fn up_of_an_unknown_service_is_a_clear_failure() {
    if !engine_or_skip("up_of_an_unknown_service_is_a_clear_failure") {
        return;
    }
    let project = Project::new(
        "unknown",
        r#"
services:
  web:
    image: {{IMAGE}}
"#,
    );
    let failure = container::up(&compose_cmd(), &compose_ref(&project), "nope").unwrap_err();
    assert!(failure.exit_status.is_some_and(|s| s != 0), "{failure:?}");
    assert!(
        failure.message.contains("up -d --no-deps nope"),
        "{}",
        failure.message
    );
    assert!(failure.message.contains("nope"), "{}", failure.message);
    assert_eq!(failure.message.lines().count(), 1);
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine and docker compose (`docker info`)"
)]
fn detection_finds_docker_compose() {
    if !engine_or_skip("detection_finds_docker_compose") {
        return;
    }
    let explicit = ComposeCmd::detect(Some("docker compose")).unwrap();
    assert_eq!(explicit.compose_words(), ["docker", "compose"]);
    if std::env::var_os("DOCKER_CMD").is_none() {
        let found = ComposeCmd::detect(None).unwrap();
        assert_eq!(found.engine_words(), ["docker"]);
    }
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine and docker compose (`docker info`)"
)]
fn compose_config_output_keeps_x_hub_for_hub_levels() {
    if !engine_or_skip("compose_config_output_keeps_x_hub_for_hub_levels") {
        return;
    }
    let project = Project::new(
        "config",
        r#"
services:
  db:
    image: {{IMAGE}}
    healthcheck:
      test: ["CMD", "/server", "check"]
      interval: 1s
    x-hub:
      class: core
      timeout: 45s
      health:
        exec: true
  app:
    image: {{IMAGE}}
    depends_on:
      db:
        condition: service_healthy
    labels:
      hub.class: stretch
"#,
    );
    let config = project.compose().arg("config").output().unwrap();
    assert!(
        config.status.success(),
        "{}",
        String::from_utf8_lossy(&config.stderr)
    );
    let out = Cmd::new("hub-levels")
        .args(["-f", "-"])
        .stdin(config.stdout)
        .status(0);
    let plans: Vec<Plan> = typed_records(&out)
        .into_iter()
        .map(|r| match r {
            Record::Plan(plan) => *plan,
            other => panic!("not a plan record: {other:?}"),
        })
        .collect();
    assert_eq!(plans.len(), 2);
    let db = &plans[0];
    assert_eq!((db.service.as_str(), db.level), ("db", 0));
    assert_eq!(db.class, Class::Core);
    assert_eq!(db.timeout_ms, 45_000);
    assert_eq!(db.backend, Backend::Container);
    assert_eq!(
        db.health.check,
        Check::Exec {
            test: CommandSpec::Argv(vec!["/server".into(), "check".into()])
        }
    );
    // The project name compose wrote into its output comes through.
    assert_eq!(
        db.compose.as_ref().and_then(|c| c.project.as_deref()),
        Some(project.name())
    );
    let app = &plans[1];
    assert_eq!((app.service.as_str(), app.level), ("app", 1));
    assert_eq!(app.deps, ["db"]);
    assert_eq!(app.class, Class::Stretch);
    assert!(matches!(app.health.check, Check::Container { .. }));
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine and docker compose (`docker info`)"
)]
fn teardown_leaves_no_container_network_or_image() {
    if !engine_or_skip("teardown_leaves_no_container_network_or_image") {
        return;
    }
    let image = Arc::new(TestImage::build());
    let tag = image.tag().to_owned();
    let project = Project::with_image(
        "teardown",
        r#"
services:
  a:
    image: {{IMAGE}}
  b:
    image: {{IMAGE}}
"#,
        image,
    );
    let cmd = compose_cmd();
    let compose = compose_ref(&project);
    container::up(&cmd, &compose, "a").unwrap();
    container::up(&cmd, &compose, "b").unwrap();
    assert_eq!(
        project.leftovers().len(),
        3,
        "two containers and the network"
    );

    container::stop_and_remove(&cmd, &compose, "b").unwrap();
    assert_eq!(container::container_id(&cmd, &compose, "b").unwrap(), None);
    assert!(
        container::container_id(&cmd, &compose, "a")
            .unwrap()
            .is_some()
    );

    let image = Arc::clone(project.image());
    let name = project.name().to_owned();
    drop(project);
    // Nothing labelled with the project is left.
    let label = format!("label=com.docker.compose.project={name}");
    let containers = hub_tests::docker::docker(["ps", "-a", "-q", "--filter", &label]);
    let networks = hub_tests::docker::docker(["network", "ls", "-q", "--filter", &label]);
    assert!(containers.stdout.is_empty() && networks.stdout.is_empty());
    assert!(image.exists());
    drop(image);
    let images = hub_tests::docker::docker(["images", "-q", &tag]);
    assert!(images.stdout.is_empty(), "image {tag} survived");
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine and docker compose (`docker info`)"
)]
fn a_cancelled_wait_ends_without_waiting_for_the_deadline() {
    if !engine_or_skip("a_cancelled_wait_ends_without_waiting_for_the_deadline") {
        return;
    }
    // The engine checks only after an hour: nothing but the cancel flag can end this wait.
    let project = Project::new(
        "cancel",
        r#"
services:
  idle:
    image: {{IMAGE}}
    healthcheck:
      test: ["CMD", "/server", "check"]
      interval: 1h
"#,
    );
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cmd = compose_cmd().with_cancel(Arc::clone(&flag));
    let id = container::up(&cmd, &compose_ref(&project), "idle").unwrap();
    let waiter = {
        let cmd = cmd.clone();
        let id = id.clone();
        std::thread::spawn(move || {
            container::wait_healthy(&cmd, &id, &engine_check(GENEROUS, GENEROUS * 10))
        })
    };
    // Cancel once the wait is under way (its `docker events` client runs).
    let deadline = std::time::Instant::now() + GENEROUS;
    while !events_client_running(&id) {
        assert!(
            std::time::Instant::now() < deadline,
            "the wait never followed events"
        );
        std::thread::yield_now();
    }
    flag.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(waiter.join().unwrap().unwrap(), Outcome::Cancelled);
    assert!(
        !events_client_running(&id),
        "docker events outlived the wait"
    );
}

/// Is a `docker events … container=ID` client of this test process running?
fn events_client_running(id: &str) -> bool {
    let needle = format!("container={id}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .any(|cmdline| {
            let words: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            words.iter().any(|w| w == "events") && words.contains(&needle)
        })
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine and docker compose (`docker info`)"
)]
fn unhealthy_is_not_final_before_the_deadline() {
    if !engine_or_skip("unhealthy_is_not_final_before_the_deadline") {
        return;
    }
    // One failed check makes it `unhealthy` (retries: 1); it listens only after 4.5 s, so the
    // engine reports unhealthy first and healthy later (compose's users hit docker/compose#12416).
    let project = Project::new(
        "unhealthy",
        r#"
services:
  late:
    image: {{IMAGE}}
    environment:
      READY_AFTER_MS: "4500"
    healthcheck:
      test: ["CMD", "/server", "check"]
      interval: 1s
      retries: 1
"#,
    );
    let cmd = compose_cmd();
    let id = container::up(&cmd, &compose_ref(&project), "late").unwrap();
    let watch = container::ContainerWatch::start(&cmd, &id).unwrap();
    let outcome = container::wait_healthy(&cmd, &id, &engine_check(GENEROUS, GENEROUS)).unwrap();
    assert_eq!(
        outcome,
        Outcome::Healthy {
            by: HealthyBy::Healthcheck,
            probes: 0
        }
    );
    // The engine did say `unhealthy` on the way.
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("healthy") {
        match watch.events().recv_timeout(GENEROUS).unwrap() {
            container::ContainerEvent::Health(status) => seen.push(status),
            container::ContainerEvent::StreamEnded(why) => panic!("events ended: {why}"),
            _ => {}
        }
    }
    assert!(seen.contains(&"unhealthy".to_owned()), "{seen:?}");
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine and docker compose (`docker info`)"
)]
fn a_one_shot_container_is_done_when_it_exits_0_and_failed_otherwise() {
    if !engine_or_skip("a_one_shot_container_is_done_when_it_exits_0_and_failed_otherwise") {
        return;
    }
    let project = Project::new(
        "oneshot",
        r#"
services:
  migrate:
    image: {{IMAGE}}
    environment: { EXIT_AFTER_MS: "300", EXIT_CODE: "0", EXIT_MESSAGE: "migrated" }
  broken:
    image: {{IMAGE}}
    environment: { EXIT_AFTER_MS: "300", EXIT_CODE: "5", EXIT_MESSAGE: "migration 0042 failed" }
"#,
    );
    let cmd = compose_cmd();
    let completed = WaitOptions {
        check: ContainerCheck::Completed,
        timeout: GENEROUS,
        log_lines: 5,
    };
    let id = container::up(&cmd, &compose_ref(&project), "migrate").unwrap();
    assert_eq!(
        container::wait_healthy(&cmd, &id, &completed).unwrap(),
        Outcome::Healthy {
            by: HealthyBy::Completed,
            probes: 0
        }
    );
    let id = container::up(&cmd, &compose_ref(&project), "broken").unwrap();
    let (exit_code, log_tail) = exit_of(container::wait_healthy(&cmd, &id, &completed).unwrap());
    assert_eq!(exit_code, Some(5));
    assert_eq!(
        log_tail.last().map(String::as_str),
        Some("migration 0042 failed")
    );
}

/// The `docker events` clients whose parent is process `parent`.
fn events_clients_of(parent: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let dir = entry.ok()?.path();
            let status = std::fs::read_to_string(dir.join("status")).ok()?;
            let ppid: u32 = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))?
                .trim()
                .parse()
                .ok()?;
            let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
            let is_events = cmdline.split(|b| *b == 0).any(|w| w == b"events");
            (ppid == parent && is_events).then_some(())
        })
        .count()
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine and docker compose (`docker info`)"
)]
fn hub_wait_healthy_follows_every_container_with_one_event_stream() {
    use std::io::{BufRead, BufReader, Write};
    if !engine_or_skip("hub_wait_healthy_follows_every_container_with_one_event_stream") {
        return;
    }
    let services = ["a", "b", "c", "d"];
    let mut compose = String::from("services:\n");
    for service in services {
        compose.push_str(&format!(
            "  {service}:\n    image: {{{{IMAGE}}}}\n    environment: {{ READY_AFTER_MS: \"300\" }}\n    \
             healthcheck: {{ test: [\"CMD\", \"/server\", \"check\"], interval: 1s, retries: 60 }}\n"
        ));
    }
    let project = Project::new("one-stream", &compose);
    let cmd = compose_cmd();
    let mut tool = std::process::Command::new(hub_tests::bin("hub-wait-healthy"))
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = tool.stdin.take().unwrap();
    for service in services {
        let id = container::up(&cmd, &compose_ref(&project), service).unwrap();
        let record = serde_json::json!({
            "type": "started", "ts": hub::time::now_ms(), "run_id": "r", "service": service, "class": "core",
            "level": 0, "attempt": 1, "max_attempts": 1, "backend": "container",
            "timeout_ms": GENEROUS.as_millis() as u64, "container": id,
            // A grace far beyond the deadline: only the engine's `healthy` can pass this.
            "health": {"kind": "container", "grace_ms": GENEROUS.as_millis() as u64 * 10,
                       "interval_ms": 1000, "probe_timeout_ms": 2000, "start_period_ms": 0},
        });
        writeln!(stdin, "{record}").unwrap();
    }
    stdin.flush().unwrap();
    let pid = tool.id();
    let mut most = 0;
    let mut healthy = 0;
    for line in BufReader::new(tool.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        most = most.max(events_clients_of(pid));
        let record: serde_json::Value = serde_json::from_str(&line).unwrap();
        if record["type"] == "healthy" {
            healthy += 1;
            if healthy == services.len() {
                break;
            }
        }
        assert_ne!(record["type"], "unhealthy", "{record}");
    }
    drop(stdin);
    assert!(tool.wait().unwrap().success());
    assert_eq!(healthy, services.len());
    assert!(most <= 1, "{most} docker events clients for one wait");
    assert_eq!(
        events_clients_of(pid),
        0,
        "docker events outlived the waits"
    );
}
