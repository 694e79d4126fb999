//! What hub-start says on stderr, worded apart from the loop that decides when to say it: the
//! seed's lines (`Service X failed (CORE - deployment will fail)`, `Level N had …`) are kept
//! word for word, and a CORE service's trouble is an error where another's is a warning.

use crate::scheduler::Mode;
use hub::log::Level;
use hub::records::{Class, Plan};
use std::time::Duration;

/// An error for a CORE service (the deploy fails), a warning for the others.
fn by_class(class: Class) -> Level {
    if class == Class::Core {
        Level::Error
    } else {
        Level::Warn
    }
}

/// A `run` service that was healthy exited with `status` (shell-style).
pub(super) fn died_after_healthy(plan: &Plan, status: i32) -> (Level, String) {
    let message = match status {
        s if s > 128 => format!("was healthy, then was killed by signal {}", s - 128),
        0 => format!(
            "was healthy, then exited with status 0 — {}",
            hub::codes::EXITED_0_HINT
        ),
        // A command not found dies soon after launch: a check-less service may well have
        // been called healthy in between. Say why no retry follows.
        s => match hub::codes::cannot_succeed(s) {
            Some(why) => format!("was healthy, then exited with status {s} ({why})"),
            None => format!("was healthy, then exited with status {s}"),
        },
    };
    (by_class(plan.class), message)
}

/// Attempt `attempt` of the service starts.
pub(super) fn starting(plan: &Plan, attempt: u32) -> String {
    format!(
        "Starting {} (attempt {attempt}, level {}, {})",
        plan.service, plan.level, plan.class
    )
}

/// Found healthy before its first start: nothing to do.
pub(super) fn already_healthy(plan: &Plan) -> String {
    format!("{} is already healthy (skipped)", plan.service)
}

/// A rerun adopts a service's earlier process, with `remaining` of its timeout left.
pub(super) fn adopted(service: &str, pid: u32, remaining: Duration) -> String {
    format!(
        "{service}: its earlier process (pid {pid}) still runs, not yet healthy: adopted, not started again ({} left of its timeout)",
        hub::duration::human(remaining)
    )
}

/// Attempt `attempt` was stopped (`how`) before the next one.
pub(super) fn attempt_stopped(plan: &Plan, attempt: u32, how: &str) -> String {
    format!(
        "{}: attempt {attempt} stopped before the next one ({how})",
        plan.service
    )
}

/// One of the last lines of a service's log, after its failure.
pub(super) fn log_line(service: &str, line: &str) -> String {
    format!("{service} log: {line}")
}

/// An attempt failed for good (`message`: why).
pub(super) fn failed_to_start(service: &str, message: &str) -> String {
    format!("{service} failed to start: {message}")
}

/// A signal stops the deploy.
pub(super) fn interrupted(signal: nix::sys::signal::Signal) -> String {
    format!(
        "{} received: stopping start commands in flight",
        signal.as_str()
    )
}

/// Attempt `attempt` failed (`why`); the next follows after `delay`.
pub(super) fn retrying(plan: &Plan, attempt: u32, why: &str, delay: Duration) -> String {
    let max = match plan.retry.attempts {
        0 => "∞".to_owned(),
        n => n.to_string(),
    };
    format!(
        "{}: attempt {attempt}/{max} failed ({why}), retrying in {}",
        plan.service,
        hub::duration::human(delay)
    )
}

/// The service failed for good, in the seed's words.
pub(super) fn service_failed(plan: &Plan, reason: &str) -> (Level, String) {
    let line = match plan.class {
        Class::Core => format!(
            "Service {} failed (CORE - deployment will fail): {reason}",
            plan.service
        ),
        class => format!(
            "Service {} failed ({class} - deployment will continue): {reason}",
            plan.service
        ),
    };
    (by_class(plan.class), line)
}

/// The service is skipped because its hard dependency `dep` failed.
pub(super) fn dependency_failed(plan: &Plan, dep: &str) -> (Level, String) {
    let line = format!("{} skipped: its dependency {dep} failed", plan.service);
    match plan.class {
        Class::Core => (
            Level::Error,
            format!("{line} (CORE - deployment will fail)"),
        ),
        _ => (Level::Warn, line),
    }
}

/// A CORE failure stopped the deploy: the seed's two lines.
pub(super) fn aborted(level: u32, failures: usize) -> [String; 2] {
    [
        format!("Level {level} had {failures} CORE service failures"),
        "Stopping startup - fix CORE service failures and redeploy".to_owned(),
    ]
}

/// Levels mode: level `level` starts `names`.
pub(super) fn level_starting(level: u32, names: &[&str]) -> String {
    format!("Level {level}: Starting {}", names.join(" "))
}

/// Levels mode: a decided level had `failed` failures, none of them CORE.
pub(super) fn level_degraded(level: u32, failed: usize) -> String {
    format!("Level {level} had {failed} failures, but all CORE services operational")
}

/// Why the deploy failed: which CORE service (`None`: unknown), and the hard dependency whose
/// failure skipped it.
pub(super) fn abort_reason(service: Option<&str>, blocked_by: Option<&str>) -> String {
    match (service, blocked_by) {
        (None, _) => "a CORE service failed".to_owned(),
        (Some(service), Some(dep)) => {
            format!("CORE service {service} was skipped because its hard dependency {dep} failed")
        }
        (Some(service), None) => format!("CORE service {service} failed"),
    }
}

/// How the deploy ended, for its last line.
pub(super) struct Outcome {
    pub ok: bool,
    pub mode: Mode,
    pub total: usize,
    pub healthy: usize,
    pub already_healthy: usize,
    pub started: usize,
    pub failed: usize,
    pub skipped: usize,
    pub elapsed: Duration,
    /// [`abort_reason`], when it failed.
    pub abort_reason: String,
}

/// The deploy's last line.
pub(super) fn finished(o: &Outcome) -> (Level, String) {
    let Outcome {
        total,
        healthy,
        started,
        failed,
        skipped,
        ..
    } = *o;
    let took = hub::duration::human(o.elapsed);
    let healthy_text = match o.already_healthy {
        0 => format!("{healthy}/{total} healthy"),
        n => format!("{healthy}/{total} healthy ({n} already healthy)"),
    };
    match (o.ok, o.mode) {
        (false, _) => (
            Level::Error,
            format!(
                "Deploy failed: {} ({healthy_text}, {failed} failed, {skipped} skipped) after {took}",
                o.abort_reason
            ),
        ),
        (true, Mode::Ungated) => (
            Level::Success,
            format!("Launched {started}/{total} services ({failed} failed) in {took}"),
        ),
        (true, _) if failed + skipped > 0 => (
            Level::Warn,
            format!(
                "Deployed with degradation: {healthy_text}, {failed} failed, {skipped} skipped, in {took}"
            ),
        ),
        (true, _) => (
            Level::Success,
            format!("Deployed: {healthy_text} in {took}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(class: Class, attempts: u32) -> Plan {
        let mut plan = crate::scheduler::tests::plan("api", 1, class, &[], &[]);
        plan.retry.attempts = attempts;
        plan
    }

    #[test]
    fn the_seeds_lines_are_kept_word_for_word() {
        assert_eq!(
            service_failed(&plan(Class::Optional, 3), "start_failed"),
            (
                Level::Warn,
                "Service api failed (OPTIONAL - deployment will continue): start_failed".into()
            )
        );
        assert_eq!(
            aborted(2, 1),
            [
                "Level 2 had 1 CORE service failures".to_owned(),
                "Stopping startup - fix CORE service failures and redeploy".to_owned()
            ]
        );
        assert_eq!(
            level_degraded(1, 2),
            "Level 1 had 2 failures, but all CORE services operational"
        );
        assert_eq!(
            dependency_failed(&plan(Class::Core, 3), "db"),
            (
                Level::Error,
                "api skipped: its dependency db failed (CORE - deployment will fail)".into()
            )
        );
    }

    #[test]
    fn a_retry_counts_attempts_and_an_endless_one_says_so() {
        let delay = Duration::from_secs(2);
        assert_eq!(
            retrying(&plan(Class::Core, 3), 1, "exit 1", delay),
            "api: attempt 1/3 failed (exit 1), retrying in 2.0s"
        );
        assert_eq!(
            retrying(&plan(Class::Core, 0), 4, "exit 1", delay),
            "api: attempt 4/∞ failed (exit 1), retrying in 2.0s"
        );
    }

    #[test]
    fn the_last_line_tells_failed_degraded_launched_and_deployed_apart() {
        let outcome = |ok, mode, failed| Outcome {
            ok,
            mode,
            total: 3,
            healthy: 3 - failed,
            already_healthy: 1,
            started: 3 - failed,
            failed,
            skipped: 0,
            elapsed: Duration::from_secs(1),
            abort_reason: abort_reason(Some("db"), None),
        };
        let line = |o| finished(&o);
        assert_eq!(
            line(outcome(false, Mode::Dag, 1)),
            (
                Level::Error,
                "Deploy failed: CORE service db failed (2/3 healthy (1 already healthy), 1 failed, 0 skipped) after 1.0s".into()
            )
        );
        assert_eq!(line(outcome(true, Mode::Dag, 1)).0, Level::Warn);
        assert_eq!(
            line(outcome(true, Mode::Ungated, 0)),
            (
                Level::Success,
                "Launched 3/3 services (0 failed) in 1.0s".into()
            )
        );
        assert_eq!(
            line(outcome(true, Mode::Dag, 0)),
            (
                Level::Success,
                "Deployed: 3/3 healthy (1 already healthy) in 1.0s".into()
            )
        );
        assert_eq!(
            abort_reason(Some("api"), Some("db")),
            "CORE service api was skipped because its hard dependency db failed"
        );
    }
}
