//! What every format shares (the summary sentence, seconds, icons, reasons), and the two small
//! formats: JSON (the documented object) and Markdown (CI job summaries, pull-request comments).

use crate::model::{Report, ServiceReport, Status};
use hub::records::Class;
use hub::{Error, Result};

/// Milliseconds as seconds with one decimal: `67.2s`.
pub fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// The width of a SERVICE column holding these names (never narrower than its heading).
pub fn service_column<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    hub::output::column_width(names.map(|name| name.chars().count()), "SERVICE")
}

/// `11/11 healthy in 67.2s · 0 CORE failures` (and already healthy, failed, skipped,
/// interrupted when any). A CORE service skipped because its dependency failed counts as a
/// CORE failure, and the line says so: the counts match the records.
pub fn summary(report: &Report) -> String {
    let counts = report.counts;
    let plural = |n: u32, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let already = if counts.already_healthy > 0 {
        format!(" ({} already healthy)", counts.already_healthy)
    } else {
        String::new()
    };
    let blocked: Vec<String> = report
        .services
        .iter()
        .filter(|s| {
            s.class == Some(Class::Core)
                && s.status == Status::Skipped
                && s.reason.as_deref() == Some("dependency_failed")
        })
        .map(|s| match &s.hint {
            Some(hint) => format!("{} skipped: {hint}", s.service),
            None => format!("{} skipped: a dependency failed", s.service),
        })
        .collect();
    let why = if blocked.is_empty() {
        String::new()
    } else {
        format!(" ({})", blocked.join("; "))
    };
    let mut text = format!(
        "{}/{} healthy{already} in {} · {}{why}",
        counts.healthy,
        counts.total,
        secs(report.duration_ms),
        plural(counts.core_failed, "CORE failure")
    );
    if counts.failed > 0 {
        text.push_str(&format!(" · {} failed", counts.failed));
    }
    if counts.skipped > 0 {
        text.push_str(&format!(" · {} skipped", counts.skipped));
    }
    if counts.started > 0 {
        text.push_str(&format!(" · {} started, not checked", counts.started));
    }
    if report.interrupted {
        text.push_str(" · interrupted");
    }
    text
}

/// The headline verdict: what happened, in three words.
pub fn verdict(report: &Report) -> &'static str {
    if report.interrupted {
        "Deploy interrupted"
    } else if !report.ok {
        "Deploy failed"
    } else if report.counts.failed > 0 || report.counts.skipped > 0 {
        "Deploy degraded"
    } else {
        "Deploy healthy"
    }
}

/// The verdict's icon.
pub fn verdict_icon(report: &Report) -> &'static str {
    if report.interrupted {
        "⏹️"
    } else if !report.ok {
        "❌"
    } else if report.counts.failed > 0 || report.counts.skipped > 0 {
        "⚠️"
    } else {
        "✅"
    }
}

/// A service's status icon: ✅ healthy, ❌ CORE failed, ⚠️ other failed, ⏭️ skipped,
/// ⏹️ cut short by an interrupt, ▶️ started but never health-checked.
pub fn icon(service: &ServiceReport) -> &'static str {
    match (service.status, service.reason.as_deref()) {
        (Status::Healthy, _) => "✅",
        (_, Some("interrupted")) => "⏹️",
        (Status::Failed, _) if service.class == Some(Class::Core) => "❌",
        (Status::Failed, _) => "⚠️",
        (Status::Skipped, _) => "⏭️",
        (Status::Started, _) => "▶️",
    }
}

/// The class in capitals, as the seed prints it, or `?` when unknown.
pub fn class(service: &ServiceReport) -> String {
    service.class.map_or_else(|| "?".into(), |c| c.to_string())
}

/// The reason column: the reason, with the failed dependency for `dependency_failed`.
pub fn reason(service: &ServiceReport) -> String {
    match service.reason.as_deref() {
        None => String::new(),
        Some("already_healthy") => "already healthy".into(),
        Some(reason) => reason.to_owned(),
    }
}

/// `postgres → keycloak → frontend 41.3s`, or None when there is no path.
pub fn critical_path(report: &Report) -> Option<String> {
    if report.critical_path.is_empty() {
        return None;
    }
    let mut text = report.critical_path.join(" → ");
    if let Some(ms) = report.critical_path_ms {
        text.push(' ');
        text.push_str(&secs(ms));
    }
    Some(text)
}

/// The services that need a word after the table: failures and cut-short starts.
pub fn failures(report: &Report) -> impl Iterator<Item = &ServiceReport> {
    report
        .services
        .iter()
        .filter(|s| s.status == Status::Failed || s.hint.is_some() && s.status != Status::Healthy)
}

/// The levels present, in order, with their services (services with no level last).
pub fn by_level(report: &Report) -> Vec<(Option<u32>, Vec<&ServiceReport>)> {
    let mut groups: Vec<(Option<u32>, Vec<&ServiceReport>)> = Vec::new();
    for service in &report.services {
        match groups.last_mut() {
            Some((level, members)) if *level == service.level => members.push(service),
            _ => groups.push((service.level, vec![service])),
        }
    }
    groups
}

/// `Level 0`, or `No level` for services whose records carried none.
pub fn level_title(level: Option<u32>) -> String {
    level.map_or_else(|| "No level".into(), |l| format!("Level {l}"))
}

/// The documented JSON object, on one line.
pub fn json(report: &Report) -> Result<String> {
    serde_json::to_string(report)
        .map(|mut line| {
            line.push('\n');
            line
        })
        .map_err(|e| Error::internal(format!("cannot encode the report: {e}")))
}

/// Markdown: a headline, the service table, the critical path, and failure details.
pub fn markdown(report: &Report) -> String {
    let cell = |text: &str| text.replace('|', "\\|").replace('\n', " ");
    let mut out = format!(
        "## {} {}: {}\n\n",
        verdict_icon(report),
        verdict(report),
        summary(report)
    );
    out.push_str(&format!(
        "Run `{}` · started {}\n\n",
        report.run_id.as_deref().unwrap_or("-"),
        report.started_at.as_deref().unwrap_or("-")
    ));
    out.push_str(
        "| | Service | Class | Level | Attempts | To healthy | Ready at | Reason |\n\
         |---|---|---|---|---:|---:|---:|---|\n",
    );
    for service in &report.services {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            icon(service),
            cell(&service.service),
            class(service),
            service.level.map_or_else(|| "?".into(), |l| l.to_string()),
            service.attempts,
            service.time_to_healthy_ms.map(secs).unwrap_or_default(),
            service.ready_ms.map(secs).unwrap_or_default(),
            cell(&reason(service)),
        ));
    }
    if let Some(path) = critical_path(report) {
        out.push_str(&format!("\n**Critical path:** {path}\n"));
    }
    let mut failures = failures(report).peekable();
    if failures.peek().is_some() {
        out.push_str("\n### Failures\n");
        for service in failures {
            out.push_str(&format!(
                "\n<details><summary>{} <b>{}</b> ({}, {} attempt{}): {}</summary>\n\n",
                icon(service),
                html_escape(&service.service),
                class(service),
                service.attempts,
                if service.attempts == 1 { "" } else { "s" },
                html_escape(&reason(service))
            ));
            if let Some(hint) = &service.hint {
                out.push_str(&format!("{}\n\n", cell(hint)));
            }
            if !service.log_tail.is_empty() {
                // A fence longer than any backtick run in the log keeps the block closed.
                let longest = service
                    .log_tail
                    .iter()
                    .map(|l| longest_run(l, '`'))
                    .max()
                    .unwrap_or(0);
                let fence = "`".repeat(longest.max(2) + 1);
                out.push_str(&format!("{fence}\n"));
                for line in &service.log_tail {
                    out.push_str(line);
                    out.push('\n');
                }
                out.push_str(&format!("{fence}\n\n"));
            }
            out.push_str("</details>\n");
        }
    }
    out
}

fn longest_run(text: &str, ch: char) -> usize {
    let (mut best, mut current) = (0, 0);
    for c in text.chars() {
        current = if c == ch { current + 1 } else { 0 };
        best = best.max(current);
    }
    best
}

/// Escape text for HTML element content and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_have_one_decimal() {
        assert_eq!(secs(67_249), "67.2s");
        assert_eq!(secs(0), "0.0s");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html_escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn fences_outgrow_backticks() {
        assert_eq!(longest_run("a ```` b ``", '`'), 4);
    }
}
