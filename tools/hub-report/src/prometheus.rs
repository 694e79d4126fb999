//! The Prometheus text exposition format, for node_exporter's textfile collector: the deploy's
//! duration and outcome, and per service its ready time, up/down and attempts.
//!
//! The run id is deliberately not a label: it changes every deploy and would grow the series
//! count without bound. The compose project is one, on every series, so two stacks' files in
//! one collector folder do not clash. `--output FILE` writes the file atomically, as the
//! collector requires.

use crate::model::{Report, Status};
use std::fmt::Write;

/// Render the exposition text. `last_success_ms`: when the project's last ok deploy ended (this
/// one's end when it is ok; else from the history, when there is one).
pub fn exposition(report: &Report, last_success_ms: Option<u64>) -> String {
    let mut out = String::new();
    let project = report
        .project
        .as_deref()
        .map(|p| format!(r#"project="{}""#, escape(p)));
    // `{project="x",more}`: the project first on every series, then the series' own labels.
    let labelled = |more: &str| {
        let all: Vec<&str> = project
            .as_deref()
            .into_iter()
            .chain((!more.is_empty()).then_some(more))
            .collect();
        if all.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", all.join(","))
        }
    };
    let plain = labelled("");
    let mut gauge = |name: &str, help: &str, samples: &[(String, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let seconds = |ms: u64| format!("{}", ms as f64 / 1000.0);
    let flag = |b: bool| if b { "1" } else { "0" }.to_owned();
    gauge(
        "hub_deploy_duration_seconds",
        "How long the last deploy took, from its first record to its end.",
        &[(plain.clone(), seconds(report.duration_ms))],
    );
    if let Some(start) = report.started_at.as_deref().and_then(start_seconds) {
        gauge(
            "hub_deploy_start_timestamp_seconds",
            "When the last deploy started, seconds since the Unix epoch.",
            &[(plain.clone(), start)],
        );
    }
    if let Some(ms) = last_success_ms {
        gauge(
            "hub_deploy_last_success_timestamp_seconds",
            "When the project's last ok deploy ended, seconds since the Unix epoch (alert on its age).",
            &[(plain.clone(), format!("{:.3}", ms as f64 / 1000.0))],
        );
    }
    gauge(
        "hub_deploy_ok",
        "1 when every CORE service of the last deploy is healthy and it was not interrupted.",
        &[(plain.clone(), flag(report.ok))],
    );
    gauge(
        "hub_deploy_interrupted",
        "1 when the last deploy was interrupted (SIGINT or SIGTERM).",
        &[(plain.clone(), flag(report.interrupted))],
    );
    gauge(
        "hub_deploy_core_failures",
        "CORE services of the last deploy that failed.",
        &[(plain.clone(), report.counts.core_failed.to_string())],
    );
    let counts = report.counts;
    gauge(
        "hub_deploy_services",
        "Services of the last deploy by outcome.",
        &[
            (labelled(r#"status="healthy""#), counts.healthy.to_string()),
            (labelled(r#"status="failed""#), counts.failed.to_string()),
            (labelled(r#"status="skipped""#), counts.skipped.to_string()),
            (labelled(r#"status="started""#), counts.started.to_string()),
        ],
    );
    let labels = |service: &crate::model::ServiceReport| {
        labelled(&format!(
            r#"service="{}",class="{}""#,
            escape(&service.service),
            service.class.map_or("unknown", |c| c.as_str())
        ))
    };
    let up: Vec<(String, String)> = report
        .services
        .iter()
        .map(|s| (labels(s), flag(s.status == Status::Healthy)))
        .collect();
    gauge(
        "hub_service_up",
        "1 when the service became healthy in the last deploy (or already was), else 0.",
        &up,
    );
    let ready: Vec<(String, String)> = report
        .services
        .iter()
        .filter_map(|s| s.time_to_healthy_ms.map(|ms| (labels(s), seconds(ms))))
        .collect();
    gauge(
        "hub_service_ready_seconds",
        "Seconds from the service's start to its passing health check, in the last deploy.",
        &ready,
    );
    let ready_at: Vec<(String, String)> = report
        .services
        .iter()
        .filter_map(|s| s.ready_ms.map(|ms| (labels(s), seconds(ms))))
        .collect();
    gauge(
        "hub_service_ready_at_seconds",
        "Seconds from the deploy's start until the service was healthy, in the last deploy.",
        &ready_at,
    );
    let attempts: Vec<(String, String)> = report
        .services
        .iter()
        .map(|s| (labels(s), s.attempts.to_string()))
        .collect();
    gauge(
        "hub_service_attempts",
        "Start attempts the service took in the last deploy (0 when skipped).",
        &attempts,
    );
    out
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn start_seconds(rfc3339: &str) -> Option<String> {
    let time = humantime::parse_rfc3339(rfc3339).ok()?;
    let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(format!("{:.3}", since.as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
