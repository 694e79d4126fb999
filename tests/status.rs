//! `scripts/hub-status` (hub-levels | `hub-report status`): the state of a deployed stack now,
//! probed now: a service killed after the deploy reads `exited` and fails the check, whatever
//! the last deploy said about it.

use hub::breaker::State;
use hub::records::{Line, Record, ServiceState, ServiceStatus, Verdict};
use hub_tests::{Cmd, KillPidsOnDrop, lines, small_stack, temp_with, workspace_root};
use std::path::Path;

/// `hub-status --json`: one `service_status` record per service, with its envelope.
fn status(dir: &Path, code: i32) -> Vec<(Line, ServiceStatus)> {
    let out = Cmd::script("hub-status")
        .current_dir(dir)
        .args(["--json"])
        .status(code);
    lines(&out)
        .into_iter()
        .map(|line| match &line.record {
            Record::ServiceStatus(status) => {
                let status = (**status).clone();
                (line, status)
            }
            other => panic!("not a service_status record: {other:?}"),
        })
        .collect()
}

fn service<'a>(records: &'a [(Line, ServiceStatus)], name: &str) -> &'a ServiceStatus {
    records
        .iter()
        .map(|(_, status)| status)
        .find(|r| r.of.service == name)
        .unwrap_or_else(|| panic!("no {name} in {records:?}"))
}

#[test]
fn status_probes_now_and_fails_once_a_core_service_died() {
    let stack = small_stack(&workspace_root().join("examples/demo/service.py"));
    let dir = temp_with(&[("compose.yaml", &stack)]);
    let _cleanup = KillPidsOnDrop(dir.path().join(".hub"));

    let before = status(dir.path(), 1);
    assert_eq!(before.len(), 3);
    assert!(
        before
            .iter()
            .all(|(_, r)| r.state == ServiceState::NeverStarted && r.last_deploy.is_none())
    );

    Cmd::script("hub-deploy").current_dir(dir.path()).status(0);
    let up = status(dir.path(), 0);
    assert_eq!(service(&up, "db").state, ServiceState::Healthy);
    assert_eq!(service(&up, "db").probe.as_deref(), Some("connected"));
    assert_eq!(service(&up, "migrate").state, ServiceState::Completed);
    let web = service(&up, "web");
    assert_eq!(web.state, ServiceState::Healthy);
    let last = web.last_deploy.as_ref().unwrap();
    assert_eq!(last.status, Verdict::Healthy);
    assert_eq!(last.attempts, 2, "its first attempt failed");
    assert_eq!(web.breaker, State::Closed);
    assert!(web.log.as_deref().unwrap().ends_with(".hub/logs/web.log"));
    assert_eq!(last.run_id, up[0].0.run_id);

    // The table names every service and its state.
    let table = Cmd::script("hub-status").current_dir(dir.path()).status(0);
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(table.starts_with("SERVICE"), "{table}");
    assert!(table.contains("completed"), "{table}");
    assert!(table.contains("healthy, 2 attempts"), "{table}");

    hub_tests::kill_group(u64::from(service(&up, "db").pid.unwrap()));
    let down = status(dir.path(), 1);
    assert_eq!(service(&down, "db").state, ServiceState::Exited);
    assert_eq!(
        service(&down, "db").last_deploy.as_ref().unwrap().status,
        Verdict::Healthy,
        "the last deploy's verdict stays beside the state now"
    );
    assert_eq!(service(&down, "web").state, ServiceState::Healthy);

    Cmd::script("hub-down").current_dir(dir.path()).run();
    let stopped = status(dir.path(), 1);
    assert!(
        stopped
            .iter()
            .all(|(_, r)| matches!(r.state, ServiceState::Stopped | ServiceState::Completed)),
        "{stopped:?}"
    );
}

#[test]
fn status_without_plans_is_an_error() {
    Cmd::new("hub-report")
        .args(["status"])
        .stdin("")
        .stderr_contains("no plan records on stdin")
        .status(2);
}
