//! `hub-report trend`: read the history `--history` appended (one JSON report per run) and show,
//! per service, the median and p95 time to healthy, success rate and attempts, and the deploy's
//! own duration, flagging regressions: the latest run slower than `--regression`× the median of
//! the earlier runs in the window.

use crate::cli::{TrendArgs, TrendFormat};
use crate::format::{html_escape as esc, secs};
use crate::html::{self, CRITICAL, FAILED, HEALTHY};
use crate::model::Status;
use hub::jsonl::{self, Policy};
use hub::records::Class;
use hub::{Error, Result, log};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// One history line, as much of it as the trend needs: the rest of the report (timelines,
/// hints, log lines) is skipped while parsing, so a long window stays small in memory.
#[derive(Debug, Clone, Deserialize)]
pub struct RunSummary {
    /// The run id.
    pub run_id: Option<String>,
    /// Whether the run was ok.
    pub ok: bool,
    /// The deploy's duration.
    pub duration_ms: u64,
    /// Its services.
    pub services: Vec<ServiceSummary>,
}

/// One service of a history line.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceSummary {
    /// The service name.
    pub service: String,
    /// Its class.
    pub class: Option<Class>,
    /// Its level.
    pub level: Option<u32>,
    /// Its outcome.
    pub status: Status,
    /// Start attempts.
    pub attempts: u32,
    /// From its last start to healthy.
    #[serde(default)]
    pub time_to_healthy_ms: Option<u64>,
}

/// Regressions are judged only against at least this many earlier values: fewer is noise.
pub const MIN_EARLIER: usize = 3;

/// `--regression FACTOR`: a finite factor of at least 1.
pub(crate) fn parse_factor(text: &str) -> std::result::Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && *f >= 1.0)
        .ok_or_else(|| format!("`{text}` is not a factor of 1 or more, such as 1.5"))
}

/// Run `hub-report trend`.
pub fn run(args: &TrendArgs) -> Result<u8> {
    let history = &args.history;
    let policy = Policy {
        strict: args.strict.strict,
        report_limit: 0,
    };
    let last = args.last as usize;
    let factor = args.regression;
    let mut runs: std::collections::VecDeque<RunSummary> = Default::default();
    let tally = jsonl::read_sources(std::slice::from_ref(history), policy, |line, _| {
        let report: RunSummary = jsonl::decode(line)?;
        if runs.len() == last {
            runs.pop_front();
        }
        runs.push_back(report);
        Ok(())
    })?;
    tally.report(policy);
    if runs.is_empty() {
        return Err(Error::input(format!(
            "no runs in {history}; append some with `hub-report --history {history} EVENTS`"
        )));
    }
    let runs: Vec<RunSummary> = runs.into();
    let trend = analyse(&runs, factor);
    for regression in &trend.regressions {
        log::warn(&format!("regression: {regression}"));
    }
    let rendered = match args.format {
        TrendFormat::Json => serde_json::to_string(&trend)
            .map(|s| s + "\n")
            .map_err(|e| Error::internal(format!("cannot encode the trend: {e}")))?,
        TrendFormat::Html => html_page(&trend, &runs),
        TrendFormat::Text => text(&trend),
    };
    crate::write_output(&rendered, args.output.as_deref())?;
    Ok(if trend.regressions.is_empty() {
        hub::error::exit::OK
    } else {
        hub::error::exit::NO
    })
}

/// Summary statistics of a series of milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stats {
    /// The median.
    pub median_ms: u64,
    /// The 95th percentile (nearest rank).
    pub p95_ms: u64,
    /// The latest run's value, when it has one.
    pub latest_ms: Option<u64>,
    /// The median of the values before the latest run's (null with fewer than 3).
    pub earlier_median_ms: Option<u64>,
    /// True when the latest value exceeds the factor × the earlier median.
    pub regression: bool,
}

/// One service over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceTrend {
    /// The service name.
    pub service: String,
    /// Its class in the latest run it appeared in.
    pub class: Option<Class>,
    /// Its level in the latest run it appeared in.
    pub level: Option<u32>,
    /// Runs it appeared in.
    pub runs: u32,
    /// Runs it was healthy in.
    pub healthy: u32,
    /// Runs it failed in.
    pub failed: u32,
    /// Runs it was skipped in.
    pub skipped: u32,
    /// healthy / (healthy + failed); null when never tried.
    pub success_rate: Option<f64>,
    /// Mean attempts over the runs it was tried in.
    pub mean_attempts: Option<f64>,
    /// The most attempts in one run.
    pub max_attempts: u32,
    /// Time to healthy over the runs it started and became healthy in.
    pub time_to_healthy: Option<Stats>,
    /// Per run in the window (oldest first): its time to healthy, or null.
    pub series: Vec<Option<u64>>,
    /// Per run in the window: its status, or null when absent.
    pub statuses: Vec<Option<Status>>,
}

/// The whole trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    /// Runs in the window.
    pub runs: u32,
    /// The oldest run id in the window.
    pub first_run: Option<String>,
    /// The newest run id.
    pub last_run: Option<String>,
    /// The regression factor.
    pub regression_factor: f64,
    /// Runs with no CORE failure.
    pub ok_runs: u32,
    /// Per run in the window (oldest first): whether it was ok.
    pub run_ok: Vec<bool>,
    /// The ids of the runs that were not ok, oldest first.
    pub failed_runs: Vec<String>,
    /// The deploy duration.
    pub deploy: Stats,
    /// Per service.
    pub services: Vec<ServiceTrend>,
    /// One line per regression flagged.
    pub regressions: Vec<String>,
}

/// The median (mean of the two middle values for an even count).
pub fn median(values: &[u64]) -> Option<u64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

/// The nearest-rank percentile `p` (0–100).
pub fn percentile(values: &[u64], p: f64) -> Option<u64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Stats over a per-run series whose last element is the latest run.
fn stats(series: &[Option<u64>], factor: f64) -> Option<Stats> {
    let values: Vec<u64> = series.iter().flatten().copied().collect();
    let latest = series.last().copied().flatten();
    let earlier: Vec<u64> = series[..series.len().saturating_sub(1)]
        .iter()
        .flatten()
        .copied()
        .collect();
    let earlier_median = (earlier.len() >= MIN_EARLIER)
        .then(|| median(&earlier))
        .flatten();
    let regression = match (latest, earlier_median) {
        (Some(latest), Some(median)) => latest as f64 > factor * median as f64,
        _ => false,
    };
    Some(Stats {
        median_ms: median(&values)?,
        p95_ms: percentile(&values, 95.0)?,
        latest_ms: latest,
        earlier_median_ms: earlier_median,
        regression,
    })
}

/// Compute the trend of `runs` (oldest first).
pub fn analyse(runs: &[RunSummary], factor: f64) -> Trend {
    let mut names: Vec<(Option<u32>, String)> = Vec::new();
    for run in runs.iter().rev() {
        for service in &run.services {
            if !names.iter().any(|(_, name)| *name == service.service) {
                names.push((service.level, service.service.clone()));
            }
        }
    }
    names.sort_by(|a, b| (a.0.unwrap_or(u32::MAX), &a.1).cmp(&(b.0.unwrap_or(u32::MAX), &b.1)));
    let mut regressions = Vec::new();
    let durations: Vec<Option<u64>> = runs.iter().map(|r| Some(r.duration_ms)).collect();
    let deploy = stats(&durations, factor).unwrap_or(Stats {
        median_ms: 0,
        p95_ms: 0,
        latest_ms: None,
        earlier_median_ms: None,
        regression: false,
    });
    if deploy.regression {
        regressions.push(regression_line("the deploy", &deploy));
    }
    let services = names
        .into_iter()
        .map(|(_, name)| {
            let entries: Vec<Option<&ServiceSummary>> = runs
                .iter()
                .map(|run| run.services.iter().find(|s| s.service == name))
                .collect();
            let latest = entries.iter().rev().flatten().next();
            let count = |status: Status| {
                entries
                    .iter()
                    .flatten()
                    .filter(|s| s.status == status)
                    .count() as u32
            };
            let (healthy, failed, skipped) = (
                count(Status::Healthy),
                count(Status::Failed),
                count(Status::Skipped),
            );
            let tried: Vec<u32> = entries
                .iter()
                .flatten()
                .filter(|s| s.attempts > 0)
                .map(|s| s.attempts)
                .collect();
            let series: Vec<Option<u64>> = entries
                .iter()
                .map(|entry| {
                    entry
                        .filter(|s| s.status == Status::Healthy && s.attempts > 0)
                        .and_then(|s| s.time_to_healthy_ms)
                })
                .collect();
            let time_to_healthy = stats(&series, factor);
            if let Some(stats) = time_to_healthy.filter(|s| s.regression) {
                regressions.push(regression_line(&name, &stats));
            }
            ServiceTrend {
                class: latest.and_then(|s| s.class),
                level: latest.and_then(|s| s.level),
                runs: entries.iter().flatten().count() as u32,
                healthy,
                failed,
                skipped,
                success_rate: (healthy + failed > 0)
                    .then(|| f64::from(healthy) / f64::from(healthy + failed)),
                mean_attempts: (!tried.is_empty())
                    .then(|| tried.iter().map(|&a| f64::from(a)).sum::<f64>() / tried.len() as f64),
                max_attempts: tried.iter().copied().max().unwrap_or(0),
                time_to_healthy,
                statuses: entries.iter().map(|e| e.map(|s| s.status)).collect(),
                series,
                service: name,
            }
        })
        .collect();
    Trend {
        runs: runs.len() as u32,
        first_run: runs.first().and_then(|r| r.run_id.clone()),
        last_run: runs.last().and_then(|r| r.run_id.clone()),
        regression_factor: factor,
        ok_runs: runs.iter().filter(|r| r.ok).count() as u32,
        run_ok: runs.iter().map(|r| r.ok).collect(),
        failed_runs: runs
            .iter()
            .filter(|r| !r.ok)
            .map(|r| r.run_id.clone().unwrap_or_else(|| "-".into()))
            .collect(),
        deploy,
        services,
        regressions,
    }
}

fn regression_line(what: &str, stats: &Stats) -> String {
    let latest = stats.latest_ms.unwrap_or(0);
    let median = stats.earlier_median_ms.unwrap_or(0).max(1);
    format!(
        "{what} took {} in the latest run, {:.1}× the median {} of the earlier runs",
        secs(latest),
        latest as f64 / median as f64,
        secs(median)
    )
}

fn opt_secs(ms: Option<u64>) -> String {
    ms.map(secs).unwrap_or_else(|| "-".into())
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".into(), |r| format!("{:.0}%", r * 100.0))
}

/// The text table.
pub fn text(trend: &Trend) -> String {
    let mut out = format!(
        "Trend over {} run{} ({} … {}) · regression factor {}\n\n",
        trend.runs,
        if trend.runs == 1 { "" } else { "s" },
        trend.first_run.as_deref().unwrap_or("-"),
        trend.last_run.as_deref().unwrap_or("-"),
        trend.regression_factor
    );
    let _ = writeln!(
        out,
        "Deploy: median {} · p95 {} · latest {} · ok {}/{}{}",
        secs(trend.deploy.median_ms),
        secs(trend.deploy.p95_ms),
        opt_secs(trend.deploy.latest_ms),
        trend.ok_runs,
        trend.runs,
        if trend.deploy.regression {
            "  ⚠️ REGRESSION"
        } else {
            ""
        }
    );
    // Failed runs apart from good ones: one mark per run, and the failed ones by id.
    let marks: String = trend
        .run_ok
        .iter()
        .map(|ok| if *ok { '✓' } else { '✗' })
        .collect();
    let _ = writeln!(out, "Runs (oldest → latest): {marks}");
    if !trend.failed_runs.is_empty() {
        let _ = writeln!(out, "Failed runs: {}", trend.failed_runs.join(", "));
    }
    let width = crate::format::service_column(trend.services.iter().map(|s| s.service.as_str()));
    let _ = writeln!(
        out,
        "\n{:<width$}  {:<8}  {:>4}  {:>7}  {:>7}  {:>7}  {:>7}  {:>8}",
        "SERVICE", "CLASS", "RUNS", "SUCCESS", "MEDIAN", "P95", "LATEST", "ATTEMPTS"
    );
    for s in &trend.services {
        let stats = s.time_to_healthy;
        let row = format!(
            "{:<width$}  {:<8}  {:>4}  {:>7}  {:>7}  {:>7}  {:>7}  {:>8}  {}",
            s.service,
            s.class.map_or_else(|| "?".into(), |c| c.to_string()),
            s.runs,
            percent(s.success_rate),
            opt_secs(stats.map(|s| s.median_ms)),
            opt_secs(stats.map(|s| s.p95_ms)),
            opt_secs(stats.and_then(|s| s.latest_ms)),
            s.mean_attempts
                .map_or_else(|| "-".into(), |a| format!("{a:.1}")),
            if stats.is_some_and(|s| s.regression) {
                "⚠️ REGRESSION"
            } else {
                ""
            }
        );
        out.push_str(row.trim_end());
        out.push('\n');
    }
    if trend.regressions.is_empty() {
        out.push_str("\nNo regression.\n");
    } else {
        out.push_str("\nRegressions\n");
        for line in &trend.regressions {
            let _ = writeln!(out, "  ⚠️ {line}");
        }
    }
    out
}

const CHART_W: f64 = 400.0;
const CHART_H: f64 = 90.0;

/// A bar chart of one series: a bar per run (red marker for a failed run), the median as a
/// dashed line, the latest bar outlined when it is a regression.
fn chart(series: &[Option<u64>], statuses: &[Option<Status>], stats: Option<&Stats>) -> String {
    let max = series.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let n = series.len().max(1) as f64;
    let slot = CHART_W / n;
    let bar = (slot * 0.7).max(2.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\">\n\
         <rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#f6f7f9\"/>\n",
        CHART_W + 60.0,
        CHART_H + 20.0,
        CHART_W + 60.0,
        CHART_H + 20.0,
        CHART_W,
        CHART_H
    );
    let top = 6.0;
    let height = |v: u64| v as f64 / max * (CHART_H - top);
    for (i, value) in series.iter().enumerate() {
        let x = i as f64 * slot + (slot - bar) / 2.0;
        let latest = i + 1 == series.len();
        match (value, statuses.get(i).copied().flatten()) {
            (Some(v), status) => {
                let h = height(*v).max(1.0);
                let (fill, note) = if status == Some(Status::Failed) {
                    (FAILED, " (failed)")
                } else {
                    (HEALTHY, "")
                };
                let outline = if latest && stats.is_some_and(|s| s.regression) {
                    format!(" stroke=\"{FAILED}\" stroke-width=\"3\"")
                } else {
                    String::new()
                };
                let _ = writeln!(
                    svg,
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"{fill}\"{outline}>\
                     <title>run {}: {}{note}</title></rect>",
                    CHART_H - h,
                    i + 1,
                    secs(*v)
                );
            }
            (None, Some(Status::Failed)) => {
                let _ = writeln!(
                    svg,
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"8\" fill=\"{FAILED}\">\
                     <title>run {}: failed</title></rect>",
                    CHART_H - 8.0,
                    i + 1
                );
            }
            _ => {}
        }
    }
    if let Some(stats) = stats {
        let y = CHART_H - height(stats.median_ms);
        let _ = writeln!(
            svg,
            "<line x1=\"0\" y1=\"{y:.1}\" x2=\"{CHART_W}\" y2=\"{y:.1}\" stroke=\"{CRITICAL}\" \
             stroke-dasharray=\"5 3\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{CRITICAL}\">{}</text>",
            CHART_W + 4.0,
            y + 4.0,
            secs(stats.median_ms)
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"0\" y=\"{:.1}\" font-size=\"10\" fill=\"#5a6270\">oldest</text>\
         <text x=\"{CHART_W}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#5a6270\">latest</text>",
        CHART_H + 14.0,
        CHART_H + 14.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// The HTML page: the deploy's chart, then a chart per service.
pub fn html_page(trend: &Trend, runs: &[RunSummary]) -> String {
    let mut body = format!(
        "<header class=\"{}\">\n<h1>Deploy trend</h1>\n<p class=\"summary\">{} runs · median {} · p95 {} · ok {}/{}</p>\n\
         <p>{} … {} · regression factor {}</p>\n</header>\n",
        if trend.regressions.is_empty() {
            "healthy"
        } else {
            "degraded"
        },
        trend.runs,
        secs(trend.deploy.median_ms),
        secs(trend.deploy.p95_ms),
        trend.ok_runs,
        trend.runs,
        esc(trend.first_run.as_deref().unwrap_or("-")),
        esc(trend.last_run.as_deref().unwrap_or("-")),
        trend.regression_factor
    );
    if !trend.regressions.is_empty() {
        body.push_str("<h2>Regressions</h2>\n<ul>\n");
        for line in &trend.regressions {
            let _ = writeln!(body, "<li>{}</li>", esc(line));
        }
        body.push_str("</ul>\n");
    }
    let durations: Vec<Option<u64>> = runs.iter().map(|r| Some(r.duration_ms)).collect();
    // A failed run's bar is drawn in the failure colour, apart from the good ones.
    let statuses: Vec<Option<Status>> = runs
        .iter()
        .map(|r| {
            Some(if r.ok {
                Status::Healthy
            } else {
                Status::Failed
            })
        })
        .collect();
    let _ = write!(
        body,
        "<h2>Deploy duration</h2>\n{}",
        chart(&durations, &statuses, Some(&trend.deploy))
    );
    body.push_str("<h2>Time to healthy, per service</h2>\n");
    for s in &trend.services {
        let stats = s.time_to_healthy;
        let _ = write!(
            body,
            "<div class=\"chart\"><h3>{} <small>{} · success {} · median {} · p95 {} · attempts {}{}</small></h3>\n{}</div>\n",
            esc(&s.service),
            s.class.map_or_else(|| "?".into(), |c| c.to_string()),
            percent(s.success_rate),
            opt_secs(stats.map(|s| s.median_ms)),
            opt_secs(stats.map(|s| s.p95_ms)),
            s.mean_attempts
                .map_or_else(|| "-".into(), |a| format!("{a:.1}")),
            if stats.is_some_and(|s| s.regression) {
                " · <b style=\"color:#d63c3c\">regression</b>"
            } else {
                ""
            },
            chart(&s.series, &s.statuses, stats.as_ref())
        );
    }
    html::page("hub deploy trend", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p95() {
        assert_eq!(median(&[3, 1, 2]), Some(2));
        assert_eq!(median(&[4, 1, 2, 3]), Some(2));
        assert_eq!(median(&[]), None);
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 95.0), Some(95));
        assert_eq!(percentile(&[7], 95.0), Some(7));
    }

    #[test]
    fn regression_needs_three_earlier_values() {
        let few = [Some(10), Some(10), Some(100)];
        assert!(!stats(&few, 1.5).unwrap().regression);
        let enough = [Some(10), Some(11), Some(9), Some(100)];
        assert!(stats(&enough, 1.5).unwrap().regression);
        let fine = [Some(10), Some(11), Some(9), Some(14)];
        assert!(!stats(&fine, 1.5).unwrap().regression);
    }

    #[test]
    fn factors_below_one_are_refused() {
        assert!(parse_factor("0.5").is_err());
        assert!(parse_factor("nan").is_err());
        assert_eq!(parse_factor("2"), Ok(2.0));
    }
}
