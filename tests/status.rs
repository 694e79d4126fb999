//! `scripts/hub-status` (hub-levels | `hub-report status`): the state of a deployed stack now,
//! probed now: a service killed after the deploy reads `exited` and fails the check, whatever
//! the last deploy said about it.

use hub_tests::{Cmd, KillPidsOnDrop, records, small_stack, temp_with, workspace_root};
use serde_json::Value;
use std::path::Path;

fn status(dir: &Path, code: i32) -> Vec<Value> {
    let out = Cmd::script("hub-status")
        .current_dir(dir)
        .args(["--json"])
        .status(code);
    records(&out)
}

fn service<'a>(records: &'a [Value], name: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["service"] == name)
        .unwrap_or_else(|| panic!("no {name} in {records:?}"))
}

#[test]
fn status_probes_now_and_fails_once_a_core_service_died() {
    let stack = small_stack(&workspace_root().join("examples/demo/service.py"));
    let dir = temp_with(&[("compose.yaml", &stack)]);
    let _cleanup = KillPidsOnDrop(dir.path().join(".hub"));

    let before = status(dir.path(), 1);
    assert_eq!(before.len(), 3);
    assert!(before.iter().all(|r| r["type"] == "service_status"
        && r["state"] == "never_started"
        && r["last_deploy"].is_null()));

    Cmd::script("hub-deploy").current_dir(dir.path()).status(0);
    let up = status(dir.path(), 0);
    assert_eq!(service(&up, "db")["state"], "healthy");
    assert_eq!(service(&up, "db")["probe"], "connected");
    assert_eq!(service(&up, "migrate")["state"], "completed");
    let web = service(&up, "web");
    assert_eq!(web["state"], "healthy");
    assert_eq!(web["last_deploy"]["status"], "healthy");
    assert_eq!(
        web["last_deploy"]["attempts"], 2,
        "its first attempt failed"
    );
    assert_eq!(web["breaker"], "closed");
    assert!(web["log"].as_str().unwrap().ends_with(".hub/logs/web.log"));
    let run_id = up[0]["run_id"].as_str().unwrap().to_owned();
    assert_eq!(web["last_deploy"]["run_id"], run_id.as_str());

    // The table names every service and its state.
    let table = Cmd::script("hub-status").current_dir(dir.path()).status(0);
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(table.starts_with("SERVICE"), "{table}");
    assert!(table.contains("completed"), "{table}");
    assert!(table.contains("healthy, 2 attempts"), "{table}");

    hub_tests::kill_group(service(&up, "db")["pid"].as_u64().unwrap());
    let down = status(dir.path(), 1);
    assert_eq!(service(&down, "db")["state"], "exited");
    assert_eq!(
        service(&down, "db")["last_deploy"]["status"],
        "healthy",
        "the last deploy's verdict stays beside the state now"
    );
    assert_eq!(service(&down, "web")["state"], "healthy");

    Cmd::script("hub-down").current_dir(dir.path()).run();
    let stopped = status(dir.path(), 1);
    assert!(
        stopped
            .iter()
            .all(|r| r["state"] == "stopped" || r["state"] == "completed"),
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
