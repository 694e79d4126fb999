//! The HTML format: one self-contained file (inline CSS and SVG, no script, no external asset,
//! and a Content-Security-Policy that forbids loading any) with the summary, an SVG Gantt
//! timeline and the service table. It opens from a CI artifact or an e-mail attachment as is.
//!
//! The timeline draws one row per service grouped by level; each attempt is its own segment
//! from its start to healthy or failure, coloured by how it ended; the critical path is
//! outlined in blue and joined by dashed connectors. Hovering a segment shows its details
//! (SVG `<title>`, no JavaScript).
//!
//! The bar colours below are used for bars (and their legend swatches) only; the page's other
//! decorations use darker shades, so a screenshot's pixels tell whether bars were drawn.

use crate::format::{self, html_escape as esc, secs};
use crate::model::{Report, SegmentOutcome, ServiceReport, Status};
use std::fmt::Write;

/// Healthy attempts.
pub const HEALTHY: &str = "#2e9e44";
/// Attempts that failed and were retried.
pub const RETRIED: &str = "#f0a030";
/// Final failures.
pub const FAILED: &str = "#d63c3c";
/// Attempts cut short by an interrupt or the end of the stream.
pub const CUT_SHORT: &str = "#8a8a8a";
/// The critical path's outline and connectors.
pub const CRITICAL: &str = "#1f57d6";
/// The band behind a critical-path row.
pub const CRITICAL_BAND: &str = "#eaf0fd";

const WIDTH: f64 = 1000.0;
const LABEL_X: f64 = 16.0;
const CHART_X: f64 = 240.0;
const CHART_W: f64 = 660.0;
const ROW_H: f64 = 26.0;
const BAR_H: f64 = 14.0;
const AXIS_H: f64 = 34.0;

/// The page shell every HTML output shares: doctype, CSP, inline style, title.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        esc(title)
    )
}

const STYLE: &str = "\
body { font-family: system-ui, -apple-system, \"Segoe UI\", \"DejaVu Sans\", sans-serif; margin: 24px; color: #1d2330; background: #fff; }
header { border-left: 8px solid #888; padding: 8px 16px; margin-bottom: 20px; background: #f6f7f9; }
header.healthy { border-color: #237a35; } header.degraded { border-color: #c77d12; }
header.failed { border-color: #b32d2d; } header.interrupted { border-color: #6f6f6f; }
h1 { margin: 4px 0; font-size: 24px; } h2 { font-size: 18px; margin: 24px 0 8px; }
p { margin: 4px 0; } code { font-size: 13px; }
.summary { font-size: 17px; font-weight: 600; }
.critical { color: #1f57d6; font-weight: 600; }
table { border-collapse: collapse; font-size: 14px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e2e5ea; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 9px; color: #fff; font-size: 12px; }
.pill.healthy { background: #237a35; } .pill.failed { background: #b32d2d; }
.pill.skipped, .pill.started { background: #6f6f6f; }
.legend span { display: inline-block; margin-right: 18px; font-size: 13px; }
.legend i { display: inline-block; width: 14px; height: 10px; margin-right: 6px; vertical-align: middle; }
pre { background: #1d2330; color: #e8eaee; padding: 8px 12px; overflow-x: auto; font-size: 12px; }
.chart { display: inline-block; vertical-align: top; margin: 0 24px 12px 0; }
.chart h3 { font-size: 15px; margin: 8px 0 4px; } .chart small { font-weight: normal; color: #5a6270; }
svg text { font-family: system-ui, \"DejaVu Sans\", sans-serif; }
";

/// Render the report page.
pub fn report(report: &Report) -> String {
    let class = if report.interrupted {
        "interrupted"
    } else if !report.ok {
        "failed"
    } else if report.counts.failed + report.counts.skipped > 0 {
        "degraded"
    } else {
        "healthy"
    };
    let mut body = format!(
        "<header class=\"{class}\">\n<h1>{}</h1>\n<p class=\"summary\">{}</p>\n\
         <p>Run <code>{}</code> · started {}</p>\n",
        format::verdict(report),
        esc(&format::summary(report)),
        esc(report.run_id.as_deref().unwrap_or("-")),
        esc(report.started_at.as_deref().unwrap_or("-")),
    );
    if let Some(path) = format::critical_path(report) {
        let _ = writeln!(
            body,
            "<p>Critical path: <span class=\"critical\">{}</span></p>",
            esc(&path)
        );
    }
    body.push_str("</header>\n<h2>Timeline</h2>\n");
    body.push_str(&gantt(report));
    let _ = writeln!(
        body,
        "<p class=\"legend\"><span><i style=\"background:{HEALTHY}\"></i>healthy</span>\
         <span><i style=\"background:{RETRIED}\"></i>failed, retried</span>\
         <span><i style=\"background:{FAILED}\"></i>failed</span>\
         <span><i style=\"background:{CUT_SHORT}\"></i>cut short</span>\
         <span><i style=\"background:#fff;border:2px solid {CRITICAL}\"></i>critical path</span></p>"
    );
    body.push_str(&table(report));
    let mut failures = format::failures(report).peekable();
    if failures.peek().is_some() {
        body.push_str("<h2>Failures</h2>\n");
        for service in failures {
            let _ = writeln!(
                body,
                "<h3>{} <span class=\"pill {}\">{}</span></h3>\n<p>{}, {} attempt{}: {}</p>",
                esc(&service.service),
                status_word(service.status),
                esc(&format::reason(service)),
                format::class(service),
                service.attempts,
                if service.attempts == 1 { "" } else { "s" },
                esc(service.hint.as_deref().unwrap_or("no hint in the events")),
            );
            if !service.log_tail.is_empty() {
                let lines: Vec<String> = service.log_tail.iter().map(|l| esc(l)).collect();
                let _ = writeln!(body, "<pre>{}</pre>", lines.join("\n"));
            }
        }
    }
    page(
        &format!(
            "hub deploy {} · {}",
            report.run_id.as_deref().unwrap_or("-"),
            format::verdict(report)
        ),
        &body,
    )
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Healthy => "healthy",
        Status::Failed => "failed",
        Status::Skipped => "skipped",
        Status::Started => "started",
    }
}

fn table(report: &Report) -> String {
    let mut out = String::from(
        "<h2>Services</h2>\n<table>\n<tr><th>Service</th><th>Status</th><th>Class</th><th>Level</th>\
         <th>Attempts</th><th>To healthy</th><th>Ready at</th><th>Reason</th></tr>\n",
    );
    for s in &report.services {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td><span class=\"pill {}\">{}</span></td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&s.service),
            status_word(s.status),
            status_word(s.status),
            format::class(s),
            s.level.map_or_else(|| "?".into(), |l| l.to_string()),
            s.attempts,
            s.time_to_healthy_ms.map(secs).unwrap_or_default(),
            s.ready_ms.map(secs).unwrap_or_default(),
            esc(&format::reason(s)),
        );
    }
    out.push_str("</table>\n");
    out
}

/// A "nice" tick step (1, 2, 5 × 10ⁿ ms) giving at most about ten ticks over `span_ms`.
pub fn tick_step(span_ms: u64) -> u64 {
    let mut step = 100u64;
    loop {
        for factor in [1, 2, 5] {
            let candidate = step.saturating_mul(factor);
            if span_ms / candidate <= 10 {
                return candidate;
            }
        }
        step = step.saturating_mul(10);
    }
}

fn segment_colour(outcome: SegmentOutcome) -> &'static str {
    match outcome {
        SegmentOutcome::Healthy => HEALTHY,
        SegmentOutcome::Retried => RETRIED,
        SegmentOutcome::Failed => FAILED,
        SegmentOutcome::CutShort => CUT_SHORT,
    }
}

/// The SVG Gantt chart.
pub fn gantt(report: &Report) -> String {
    let groups = format::by_level(report);
    let rows = groups.iter().map(|(_, s)| s.len() + 1).sum::<usize>();
    let height = AXIS_H + rows as f64 * ROW_H + 12.0;
    let span = report
        .services
        .iter()
        .flat_map(|s| s.segments.iter().map(|seg| seg.end_ms))
        .chain([report.duration_ms, 1])
        .max()
        .unwrap_or(1);
    let x = |ms: u64| CHART_X + ms as f64 / span as f64 * CHART_W;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"deploy timeline\">\n"
    );
    // The time axis: grid lines and labels.
    let step = tick_step(span);
    let mut tick = 0;
    while tick <= span {
        let tx = x(tick);
        let _ = writeln!(
            svg,
            "<line x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#e2e5ea\"/>\
             <text x=\"{tx:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#5a6270\">{}</text>",
            AXIS_H - 8.0,
            height - 8.0,
            AXIS_H - 14.0,
            tick_label(tick, step)
        );
        tick += step;
    }
    let mut y = AXIS_H;
    let mut places: std::collections::HashMap<&str, (f64, f64, f64)> = Default::default();
    for (level, services) in &groups {
        let _ = writeln!(
            svg,
            "<text x=\"{LABEL_X}\" y=\"{:.1}\" font-size=\"13\" font-weight=\"bold\" fill=\"#1d2330\">{}</text>",
            y + ROW_H * 0.65,
            format::level_title(*level)
        );
        y += ROW_H;
        for service in services {
            row(&mut svg, report, service, y, &x, &mut places);
            y += ROW_H;
        }
    }
    // Dashed connectors along the critical path: from one link's end to the next one's start.
    for pair in report.critical_path.windows(2) {
        if let (Some(from), Some(to)) = (places.get(pair[0].as_str()), places.get(pair[1].as_str()))
        {
            let _ = writeln!(
                svg,
                "<path d=\"M{:.1} {:.1} L{:.1} {:.1}\" stroke=\"{CRITICAL}\" stroke-width=\"1.5\" \
                 stroke-dasharray=\"4 3\" fill=\"none\"/>",
                from.1, from.2, to.0, to.2
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn tick_label(ms: u64, step: u64) -> String {
    if step >= 1000 {
        format!("{}s", ms / 1000)
    } else {
        secs(ms)
    }
}

/// One service's row: its label and a segment per attempt. Records where its bars start and
/// end (and their middle height) in `places`, for the critical-path connectors.
fn row<'a>(
    svg: &mut String,
    report: &Report,
    service: &'a ServiceReport,
    y: f64,
    x: &dyn Fn(u64) -> f64,
    places: &mut std::collections::HashMap<&'a str, (f64, f64, f64)>,
) {
    let critical = report.critical_path.contains(&service.service);
    if critical {
        let _ = writeln!(
            svg,
            "<rect x=\"4\" y=\"{:.1}\" width=\"{}\" height=\"{ROW_H}\" fill=\"{CRITICAL_BAND}\"/>",
            y,
            WIDTH - 8.0
        );
    }
    let weight = if critical {
        " font-weight=\"bold\""
    } else {
        ""
    };
    let fill = if critical { CRITICAL } else { "#1d2330" };
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" fill=\"{fill}\"{weight}>{} \
         <tspan fill=\"#5a6270\" font-size=\"11\">{}</tspan></text>",
        LABEL_X + 14.0,
        y + ROW_H * 0.65,
        esc(&service.service),
        format::class(service)
    );
    let bar_y = y + (ROW_H - BAR_H) / 2.0;
    let mid = y + ROW_H / 2.0;
    if service.segments.is_empty() {
        let (colour, text) = match service.status {
            Status::Healthy => (HEALTHY, format!("✓ {}", format::reason(service))),
            _ => (
                "#5a6270",
                format!(
                    "{}: {}",
                    status_word(service.status),
                    format::reason(service)
                ),
            ),
        };
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" font-style=\"italic\" fill=\"{colour}\">{}</text>",
            CHART_X + 4.0,
            y + ROW_H * 0.65,
            esc(&text)
        );
        return;
    }
    let stroke = if critical {
        format!(" stroke=\"{CRITICAL}\" stroke-width=\"2.5\"")
    } else {
        String::new()
    };
    let mut first_x = f64::MAX;
    let mut last_x: f64 = 0.0;
    for segment in &service.segments {
        let x0 = x(segment.start_ms);
        let width = (x(segment.end_ms) - x0).max(6.0);
        first_x = first_x.min(x0);
        last_x = last_x.max(x0 + width);
        let what = match segment.outcome {
            SegmentOutcome::Healthy => "healthy",
            SegmentOutcome::Retried => "failed, retried",
            SegmentOutcome::Failed => "failed",
            SegmentOutcome::CutShort => "cut short",
        };
        let _ = writeln!(
            svg,
            "<rect x=\"{x0:.1}\" y=\"{bar_y:.1}\" width=\"{width:.1}\" height=\"{BAR_H}\" rx=\"2\" \
             fill=\"{}\"{stroke}><title>{} attempt {}: {what}, {} → {}</title></rect>",
            segment_colour(segment.outcome),
            esc(&service.service),
            segment.attempt,
            secs(segment.start_ms),
            secs(segment.end_ms),
        );
    }
    if let Some(ms) = service
        .time_to_healthy_ms
        .filter(|_| service.status == Status::Healthy)
    {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#5a6270\">{}</text>",
            last_x + 5.0,
            y + ROW_H * 0.65,
            secs(ms)
        );
    } else if service.status != Status::Healthy {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#5a6270\">{}</text>",
            last_x + 5.0,
            y + ROW_H * 0.65,
            esc(&format::reason(service))
        );
    }
    places.insert(service.service.as_str(), (first_x, last_x, mid));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice_and_few() {
        assert_eq!(tick_step(67_200), 10_000);
        assert_eq!(tick_step(900), 100);
        assert_eq!(tick_step(3_600_000), 500_000);
        assert!(tick_step(u64::MAX) > 0);
    }
}
