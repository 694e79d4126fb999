//! The text format: what an operator reads in the terminal right after a deploy.
//!
//! One row per service grouped by level (icon, name, class, attempts, time to healthy, when it
//! was ready, reason), then the summary, the critical path and each failure's hint with the
//! last log lines. Colour only when asked (a terminal without `NO_COLOR`).

use crate::format::{self, secs};
use crate::model::{Report, ServiceReport, Status};
use hub::records::Class;

/// Render the text report.
pub fn report(report: &Report, color: bool) -> String {
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    };
    let width = format::service_column(report.services.iter().map(|s| s.service.as_str()));
    let mut out = format!(
        "Run {} · started {}\n\n",
        report.run_id.as_deref().unwrap_or("-"),
        report.started_at.as_deref().unwrap_or("-")
    );
    out.push_str(&paint(
        "1",
        &format!(
            "   {:<width$}  {:<8}  {:>5}  {:>10}  {:>8}  REASON",
            "SERVICE", "CLASS", "TRIES", "TO HEALTHY", "READY AT"
        ),
    ));
    out.push('\n');
    for (level, services) in format::by_level(report) {
        out.push_str(&paint("1", &format::level_title(level)));
        out.push('\n');
        for service in services {
            let row = format!(
                "{} {:<width$}  {:<8}  {:>5}  {:>10}  {:>8}  {}",
                format::icon(service),
                service.service,
                format::class(service),
                service.attempts,
                service.time_to_healthy_ms.map(secs).unwrap_or_default(),
                service.ready_ms.map(secs).unwrap_or_default(),
                format::reason(service),
            );
            out.push_str("  ");
            out.push_str(paint(row_colour(service), row.trim_end()).as_str());
            out.push('\n');
        }
    }
    out.push('\n');
    let verdict_colour = if !report.ok {
        "1;31"
    } else if report.counts.failed + report.counts.skipped > 0 {
        "1;33"
    } else {
        "1;32"
    };
    out.push_str(&paint(
        verdict_colour,
        &format!(
            "{} {}",
            format::verdict_icon(report),
            format::summary(report)
        ),
    ));
    out.push('\n');
    if let Some(path) = format::critical_path(report) {
        out.push_str(&format!("Critical path: {path}\n"));
    }
    let mut failures = format::failures(report).peekable();
    if failures.peek().is_some() {
        out.push_str("\nFailures\n");
        for service in failures {
            out.push_str(&format!(
                "  {} {} ({}, {} attempt{}): {}\n",
                format::icon(service),
                paint("1", &service.service),
                format::class(service),
                service.attempts,
                if service.attempts == 1 { "" } else { "s" },
                format::reason(service),
            ));
            if let Some(hint) = &service.hint {
                out.push_str(&format!("     {hint}\n"));
            }
            for line in &service.log_tail {
                out.push_str(&format!("     │ {line}\n"));
            }
        }
    }
    out
}

fn row_colour(service: &ServiceReport) -> &'static str {
    match service.status {
        Status::Healthy => "32",
        Status::Failed if service.class == Some(Class::Core) => "31",
        Status::Failed => "33",
        Status::Skipped | Status::Started => "2",
    }
}
