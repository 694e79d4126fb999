//! A stack's deploys over time: `hub-deploy` appends each run's summary, naming the compose
//! project, to a history file; `hub-report trend` reads it and marks failed runs apart; and the
//! Prometheus output labels every series with the project and says when the last ok deploy
//! ended, so two stacks share a textfile collector and an alert can fire on staleness.

use hub_tests::{Cmd, KillPidsOnDrop, temp_with};
use serde_json::Value;

const STACK: &str = r#"name: shop
services:
  app:
    x-hub: { class: core, run: [sleep, "300"] }
"#;

#[test]
fn history_names_the_project_and_trend_and_metrics_set_failed_runs_apart() {
    let dir = temp_with(&[("compose.yaml", STACK)]);
    let _cleanup = KillPidsOnDrop(dir.path().join(".hub"));
    let deploy = |extra: &[&str], code| {
        Cmd::script("hub-deploy")
            .current_dir(dir.path())
            .args(["--report", "metrics.prom"])
            .args(extra)
            .status(code)
    };
    deploy(&[], 0);
    Cmd::script("hub-down").current_dir(dir.path()).status(0);
    deploy(&["--inject-failure", "app"], 1);

    let history = std::fs::read_to_string(dir.path().join(".hub/history.jsonl")).unwrap();
    let runs: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        runs.len(),
        2,
        "one line per run, however many reports: {history}"
    );
    assert!(runs.iter().all(|r| r["project"] == "shop"));
    assert_eq!(
        (runs[0]["ok"].clone(), runs[1]["ok"].clone()),
        (true.into(), false.into())
    );
    let failed_id = runs[1]["run_id"].as_str().unwrap();

    // The failed run's metrics: every series names the project, and the last success is the
    // first run's end, read from the history.
    let metrics = std::fs::read_to_string(dir.path().join("metrics.prom")).unwrap();
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.contains(r#"project="shop""#), "{line}");
    }
    let last_success = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"hub_deploy_last_success_timestamp_seconds{project="shop"} "#)
        })
        .unwrap_or_else(|| panic!("no last success in {metrics}"));
    let metric = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!(r#"{name}{{project="shop"}} "#)))
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
            .parse()
            .unwrap()
    };
    let failed_start = metric("hub_deploy_start_timestamp_seconds");
    let last_success: f64 = last_success.parse().unwrap();
    assert!(
        last_success <= failed_start && last_success > failed_start - 60.0,
        "the first run ended at {last_success}, before the failed one started at {failed_start}"
    );
    assert!(
        metrics.contains("hub_deploy_ok{project=\"shop\"} 0"),
        "{metrics}"
    );

    let trend = Cmd::new("hub-report")
        .current_dir(dir.path())
        .args(["trend", "--history", ".hub/history.jsonl"])
        .status(0);
    let text = String::from_utf8_lossy(&trend.stdout).into_owned();
    assert!(text.contains("Runs (oldest → latest): ✓✗"), "{text}");
    assert!(
        text.contains(&format!("Failed runs: {failed_id}")),
        "{text}"
    );
    let html = Cmd::new("hub-report")
        .current_dir(dir.path())
        .args([
            "trend",
            "--format",
            "html",
            "--history",
            ".hub/history.jsonl",
        ])
        .status(0);
    let html = String::from_utf8_lossy(&html.stdout).into_owned();
    assert!(html.contains("(failed)</title>"), "{html}");
    let json = Cmd::new("hub-report")
        .current_dir(dir.path())
        .args([
            "trend",
            "--format",
            "json",
            "--history",
            ".hub/history.jsonl",
        ])
        .status(0);
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["failed_runs"], serde_json::json!([failed_id]));
    Cmd::script("hub-down").current_dir(dir.path()).status(0);
}
