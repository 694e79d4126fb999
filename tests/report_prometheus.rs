//! hub-report's Prometheus output read by a real parser: Python's `prometheus_client`
//! (`text_string_to_metric_families`), installed by .ci/setup.d/30-report.sh.
//!
//! Without the parser (a developer's laptop) the tests print a loud SKIPPED line and pass;
//! under CI (`CI` set) a missing parser is a failure.

use hub_tests::{Cmd, fixture};
use std::io::Write;
use std::process::{Command, Stdio};

/// Parse exposition text on stdin; print one JSON object: family → {type, samples}.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    out[family.name] = {
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
print(json.dumps(out))
"#;

fn python() -> Option<String> {
    let python = std::env::var("HUB_REPORT_PYTHON").unwrap_or_else(|_| "python3".into());
    let works = Command::new(&python)
        .args(["-c", "import prometheus_client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have prometheus_client for {python}: .ci/setup.d/30-report.sh installs it"
    );
    eprintln!(
        "\n!!!!!!!! SKIPPED prometheus parser tests: {python} lacks prometheus_client \
         (pip install prometheus_client) !!!!!!!!\n"
    );
    None
}

/// Run the parser; Ok(families) or Err(its stderr).
fn parse(python: &str, text: &str) -> Result<serde_json::Value, String> {
    let mut child = Command::new(python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feeding the parser");
    let output = child.wait_with_output().expect("python output");
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&output.stdout).expect("parser JSON"))
}

fn render(stream: &str, format: &str) -> String {
    let output = Cmd::new("hub-report")
        .arg(fixture(&format!("events/{stream}.jsonl")))
        .args(["--format", format])
        .run();
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn value(families: &serde_json::Value, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families[family]["samples"]
        .as_array()?
        .iter()
        .find(|sample| {
            labels
                .iter()
                .all(|(key, want)| sample[1][*key].as_str() == Some(*want))
        })
        .and_then(|sample| sample[2].as_f64())
}

#[test]
fn every_stream_parses_and_agrees_with_the_json_report() {
    let Some(python) = python() else { return };
    for stream in [
        "healthy",
        "degraded",
        "core-failure",
        "interrupted",
        "retries",
    ] {
        let text = render(stream, "prometheus");
        let families = parse(&python, &text).unwrap_or_else(|e| panic!("{stream}: {e}"));
        let report: serde_json::Value =
            serde_json::from_str(&render(stream, "json")).expect("json report");
        for family in [
            "hub_deploy_duration_seconds",
            "hub_deploy_ok",
            "hub_deploy_core_failures",
            "hub_deploy_services",
            "hub_service_up",
            "hub_service_attempts",
        ] {
            assert_eq!(families[family]["type"], "gauge", "{stream}: {family}");
        }
        assert_eq!(
            value(&families, "hub_deploy_duration_seconds", &[]),
            Some(report["duration_ms"].as_f64().unwrap() / 1000.0),
            "{stream}"
        );
        assert_eq!(
            value(&families, "hub_deploy_ok", &[]),
            Some(if report["ok"] == true { 1.0 } else { 0.0 })
        );
        assert_eq!(
            value(&families, "hub_deploy_core_failures", &[]),
            report["counts"]["core_failed"].as_f64()
        );
        let services = report["services"].as_array().unwrap();
        assert_eq!(
            families["hub_service_up"]["samples"]
                .as_array()
                .unwrap()
                .len(),
            services.len()
        );
        for service in services {
            let name = service["service"].as_str().unwrap();
            let class = service["class"].as_str().unwrap();
            let labels = [("service", name), ("class", class)];
            let up = if service["status"] == "healthy" {
                1.0
            } else {
                0.0
            };
            assert_eq!(
                value(&families, "hub_service_up", &labels),
                Some(up),
                "{stream} {name}"
            );
            assert_eq!(
                value(&families, "hub_service_attempts", &labels),
                service["attempts"].as_f64(),
                "{stream} {name}"
            );
            assert_eq!(
                value(&families, "hub_service_ready_seconds", &labels),
                service["time_to_healthy_ms"].as_f64().map(|ms| ms / 1000.0),
                "{stream} {name}"
            );
        }
    }
}

#[test]
fn the_parser_rejects_a_broken_exposition() {
    // The control: proves the parser is strict enough for the test above to mean something.
    let Some(python) = python() else { return };
    let broken = "# TYPE hub_deploy_ok gauge\nhub_deploy_ok{service=\"unterminated} 1\n";
    assert!(parse(&python, broken).is_err());
}

#[test]
fn label_values_with_quotes_survive_the_parser() {
    let Some(python) = python() else { return };
    use hub::records::Class;
    use hub_tests::build::*;
    let name = "we\"ird\\name";
    let stream = stream(
        "r",
        vec![
            (1000, plan(name, Class::Core, 0, &[])),
            (1100, started(of(name, Class::Core, 0, 1, 1))),
            (2100, healthy(of(name, Class::Core, 0, 1, 1), 1000, 3)),
        ],
    );
    let output = Cmd::new("hub-report")
        .args(["--format", "prometheus"])
        .stdin(stream)
        .stderr("")
        .run();
    let families = parse(&python, &String::from_utf8_lossy(&output.stdout)).expect("parses");
    assert_eq!(
        value(&families, "hub_service_up", &[("service", "we\"ird\\name")]),
        Some(1.0)
    );
}
