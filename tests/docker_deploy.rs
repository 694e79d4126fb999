//! hub-deploy and hub-down on a real Docker engine: a healthcheck-gated chain, a one-shot
//! migration, an exec check that beats the engine's interval, a container without a healthcheck, a container that exits, and
//! teardown. Skipped loudly where no engine answers (CI starts one).

use hub::records::{Record, StopMethod, UnhealthyReason};
use hub_tests::docker::{Project, engine_or_skip};
use hub_tests::{Cmd, typed_records};

const STACK: &str = r#"
services:
  db:
    image: {{IMAGE}}
    environment: { READY_AFTER_MS: "300" }
    healthcheck: { test: ["CMD", "/server", "check"], interval: 1s, retries: 60 }
    labels: [hub.class=core]
  migrate:
    image: {{IMAGE}}
    depends_on: { db: { condition: service_healthy } }
    environment: { EXIT_AFTER_MS: "200", EXIT_CODE: "0", EXIT_MESSAGE: "migrated" }
    labels: [hub.class=core]
  api:
    image: {{IMAGE}}
    depends_on:
      db: { condition: service_healthy }
      migrate: { condition: service_completed_successfully }
    environment: { READY_AFTER_MS: "300" }
    # The engine would check only after an hour: only hub's exec probe can pass in time.
    healthcheck: { test: ["CMD", "/server", "check"], interval: 1h }
    labels: [hub.class=core]
    x-hub: { health: { exec: true, interval: 100ms }, timeout: 60s }
  sidecar:
    image: {{IMAGE}}
    depends_on: [api]
    labels: [hub.class=optional]
    x-hub: { health: { grace: 1s } }
  broken:
    image: {{IMAGE}}
    environment: { EXIT_AFTER_MS: "200", EXIT_CODE: "3", EXIT_MESSAGE: "fatal: broken config" }
    labels: [hub.class=stretch]
    x-hub: { retry: { attempts: 1 }, timeout: 10m }
"#;

fn find<'a>(records: &'a [Record], kind: &str, service: &str) -> Option<&'a Record> {
    records
        .iter()
        .find(|r| r.kind() == kind && r.service() == Some(service))
}

fn position(records: &[Record], kind: &str, service: &str) -> usize {
    records
        .iter()
        .position(|r| r.kind() == kind && r.service() == Some(service))
        .unwrap_or_else(|| panic!("no {kind} record of {service}: {records:#?}"))
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine and docker compose (`docker info`)"
)]
fn a_container_stack_deploys_in_order_and_tears_down() {
    if !engine_or_skip("a_container_stack_deploys_in_order_and_tears_down") {
        return;
    }
    let project = Project::new("deploy", STACK);
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().display().to_string();
    let file = project.file().display().to_string();
    let out = Cmd::script("hub-deploy")
        .env("COMPOSE_PROJECT_NAME", project.name())
        .args([
            "-f",
            &file,
            "--events",
            "/dev/stdout",
            "--state-dir",
            &state_dir,
        ])
        .stderr_contains("Service broken failed (STRETCH - deployment will continue)")
        .run();
    let events = typed_records(&out);
    for service in ["db", "migrate", "api", "sidecar"] {
        assert!(
            find(&events, "healthy", service).is_some(),
            "{service} not healthy: {events:#?}"
        );
    }
    let db_healthy = position(&events, "healthy", "db");
    let api_started = position(&events, "started", "api");
    assert!(
        db_healthy < api_started,
        "api started before db was healthy"
    );
    // The one-shot migration ran to exit 0 before api started.
    let migrated = position(&events, "healthy", "migrate");
    assert!(
        migrated < api_started,
        "api started before migrate completed"
    );
    let Some(Record::Started(api)) = find(&events, "started", "api") else {
        panic!("api did not start: {events:#?}");
    };
    assert!(api.container.as_deref().is_some_and(|id| !id.is_empty()));
    // Fails fast: one attempt, exit status and log tail, long before its 10-minute timeout.
    let Some(Record::Unhealthy(broken)) = find(&events, "unhealthy", "broken") else {
        panic!("broken was not unhealthy: {events:#?}");
    };
    assert_eq!(
        (broken.reason, broken.exit_status, broken.is_final),
        (UnhealthyReason::Exited, Some(3), true)
    );
    assert!(
        broken
            .log_tail
            .iter()
            .flatten()
            .any(|l| l.contains("fatal: broken config")),
        "{broken:?}"
    );

    let down = Cmd::script("hub-down")
        .env("COMPOSE_PROJECT_NAME", project.name())
        .args(["-f", &file, "--state-dir", &state_dir])
        .run();
    let stopped = typed_records(&down);
    assert_eq!(stopped.len(), 5);
    assert!(
        stopped
            .iter()
            .all(|r| matches!(r, Record::Stopped(s) if s.method == StopMethod::Container && s.ok)),
        "{stopped:#?}"
    );
    let order: Vec<&str> = stopped.iter().filter_map(Record::service).collect();
    assert_eq!(
        order.last(),
        Some(&"db"),
        "dependents stop first: {order:?}"
    );
    let containers: Vec<String> = hub_tests::docker::docker([
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={}", project.name()),
    ])
    .stdout
    .iter()
    .map(|b| *b as char)
    .collect::<String>()
    .split_whitespace()
    .map(str::to_owned)
    .collect();
    assert!(containers.is_empty(), "containers left: {containers:?}");
}
