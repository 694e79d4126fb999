//! The report model: folding a run's records (per `docs/records.md`) into one [`Report`].
//!
//! Everything the formats print comes from [`Report`], and `--history` stores the same object,
//! so `trend` reads back exactly what `--format json` shows. The fold keeps one small state
//! per service, so memory grows with services, not with records.

use hub::breaker::State as BreakerState;
use hub::records::{AttemptOf, Class, Line, Record, SkipReason};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A service's outcome in the report: the deploy's verdict on it.
pub use hub::records::Verdict as Status;

/// How one attempt ended, for the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentOutcome {
    /// The attempt became healthy.
    Healthy,
    /// The attempt failed and another followed.
    Retried,
    /// The attempt failed and was the last.
    Failed,
    /// The deploy stopped (or the stream ended) while the attempt ran.
    CutShort,
}

/// One attempt on the timeline, in milliseconds from the deploy's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// The 1-based attempt.
    pub attempt: u32,
    /// When it started (its `started` record; for a start that failed, its `failed` record).
    pub start_ms: u64,
    /// When it ended.
    pub end_ms: u64,
    /// How it ended.
    pub outcome: SegmentOutcome,
}

/// One service's line in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceReport {
    /// The service name.
    pub service: String,
    /// Its class (null when no record said).
    pub class: Option<Class>,
    /// Its level (null when no record said).
    pub level: Option<u32>,
    /// `healthy`, `failed` or `skipped`.
    pub status: Status,
    /// Why it failed or was skipped; null when healthy (but `already_healthy` for such skips).
    pub reason: Option<String>,
    /// Start attempts made (0 when skipped).
    pub attempts: u32,
    /// When its first attempt started, from the deploy's start; null when never started.
    pub start_ms: Option<u64>,
    /// When it became healthy, from the deploy's start; null when never.
    pub ready_ms: Option<u64>,
    /// From its (last) start to healthy: the `healthy` record's `ready_ms`.
    #[serde(default)]
    pub time_to_healthy_ms: Option<u64>,
    /// When its last attempt ended in failure, from the deploy's start; null otherwise.
    #[serde(default)]
    pub failed_ms: Option<u64>,
    /// Its hard dependencies, from the plan.
    #[serde(default)]
    pub deps: Vec<String>,
    /// Its soft dependencies, from the plan.
    #[serde(default)]
    pub soft_deps: Vec<String>,
    /// For failures: the one-line hint (`message`, exit status, last probe).
    #[serde(default)]
    pub hint: Option<String>,
    /// For failures: the last lines of its log, when the events carried them.
    #[serde(default)]
    pub log_tail: Vec<String>,
    /// Its attempts on the timeline.
    #[serde(default)]
    pub segments: Vec<Segment>,
}

/// How many services ended how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Counts {
    /// Services in the run.
    pub total: u32,
    /// Healthy (already-healthy skips included).
    pub healthy: u32,
    /// Of those, already healthy before the run (a rerun's `already_healthy` skips).
    #[serde(default)]
    pub already_healthy: u32,
    /// Failed.
    pub failed: u32,
    /// Skipped (already-healthy skips excluded).
    pub skipped: u32,
    /// CORE services that failed, or were skipped because a hard dependency failed (a CORE
    /// service that cannot start fails the deploy as surely as one that crashed).
    pub core_failed: u32,
    /// Launched but never health-checked (`hub-start` without `--gate`).
    #[serde(default)]
    pub started: u32,
}

/// The report of one run: what `--format json` prints and `--history` stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The run id (null for records without one).
    pub run_id: Option<String>,
    /// The compose project the run deployed (from its `plan` records); absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// True when every CORE service is healthy (none failed or skipped), the deploy was not
    /// interrupted, and its `finished` record (if any) said ok.
    pub ok: bool,
    /// True when an `interrupted` record was seen.
    #[serde(default)]
    pub interrupted: bool,
    /// When the deploy started (see `docs/hub-report.md`), RFC 3339 UTC.
    pub started_at: Option<String>,
    /// The deploy's length: the `finished` record's `duration_ms`, else start to last record.
    pub duration_ms: u64,
    /// The dependency chain that decided when the last service was done.
    pub critical_path: Vec<String>,
    /// When the critical path's last service was done, from the deploy's start.
    #[serde(default)]
    pub critical_path_ms: Option<u64>,
    /// How many services ended how.
    pub counts: Counts,
    /// Every service, by level then name.
    pub services: Vec<ServiceReport>,
}

/// Attempts past this many are counted but not kept on the timeline (retry `attempts: 0`
/// retries until success, so a stream could hold any number).
const MAX_SEGMENTS: usize = 100;

#[derive(Debug, Default)]
struct ServiceState {
    class: Option<Class>,
    level: Option<u32>,
    deps: Vec<String>,
    soft_deps: Vec<String>,
    attempts: u32,
    /// The open attempt: its number and start ts.
    running: Option<(u32, u64)>,
    first_start_ts: Option<u64>,
    final_status: Option<Status>,
    reason: Option<String>,
    ready_ts: Option<u64>,
    time_to_healthy_ms: Option<u64>,
    failed_ts: Option<u64>,
    hint: Option<String>,
    last_probe: Option<String>,
    log_tail: Vec<String>,
    segments: Vec<(u32, u64, u64, SegmentOutcome)>,
    /// The last `exited` record: the process and its status.
    exited: Option<(u32, i32)>,
}

/// The fold of one run's records.
#[derive(Debug, Default)]
pub struct RunState {
    run_id: Option<String>,
    /// The earliest `ts` of a `plan` record, and of any other record.
    first_plan_ts: Option<u64>,
    first_ts: Option<u64>,
    last_ts: Option<u64>,
    /// The `finished` record: ok, duration_ms, and its ts.
    finished: Option<(bool, Option<u64>, u64)>,
    interrupted: Option<Vec<String>>,
    /// The first `plan` record's project.
    project: Option<String>,
    services: HashMap<String, ServiceState>,
    /// Records folded.
    pub records: u64,
}

impl RunState {
    /// A new, empty run.
    pub fn new(run_id: Option<String>) -> Self {
        RunState {
            run_id,
            ..RunState::default()
        }
    }

    /// Start over on another run. The service table keeps its room: a file of many runs
    /// replaces the fold once per run, and regrowing the table each time showed in the profile.
    pub fn restart(&mut self, run_id: Option<String>) {
        let mut services = std::mem::take(&mut self.services);
        services.clear();
        *self = RunState {
            run_id,
            services,
            ..RunState::default()
        };
    }

    /// How `service`'s process `pid` exited, when an `exited` record of this run says so.
    pub fn exit_status(&self, service: &str, pid: u32) -> Option<i32> {
        let (exited_pid, status) = self.services.get(service)?.exited?;
        (exited_pid == pid).then_some(status)
    }

    /// The run id.
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// Fold one record in. Record types the report does not use are ignored.
    pub fn apply(&mut self, line: &Line) {
        self.records += 1;
        let ts = line.ts.or(self.last_ts).unwrap_or(0);
        let record = &line.record;
        if line.ts.is_some() {
            let first = if matches!(record, Record::Plan(_)) {
                &mut self.first_plan_ts
            } else {
                &mut self.first_ts
            };
            *first = Some(first.map_or(ts, |first| first.min(ts)));
            self.last_ts = Some(self.last_ts.map_or(ts, |last| last.max(ts)));
        }
        match record {
            Record::Finished(finished) => {
                self.finished = Some((finished.ok, Some(finished.duration_ms), ts));
            }
            Record::Interrupted(interrupted) => {
                let in_flight = self.interrupted.get_or_insert_with(Vec::new);
                for name in &interrupted.in_flight {
                    if !in_flight.contains(name) {
                        in_flight.push(name.clone());
                    }
                }
            }
            Record::Breaker(transition) if transition.to == BreakerState::Open => {
                // An opened start breaker is a hint for its service: found by the key hub-start
                // guards the service with (breakers are few, services are few).
                if let Some((_, state)) = self
                    .services
                    .iter_mut()
                    .find(|(service, _)| hub::breaker::start_key(service) == transition.key)
                {
                    let note = format!("circuit breaker `{}` opened", transition.key);
                    state.hint = Some(match state.hint.take() {
                        Some(hint) => format!("{hint} · {note}"),
                        None => note,
                    });
                }
            }
            Record::Exited(exited) => {
                let state = self.services.entry(exited.of.service.clone()).or_default();
                state.exited = Some((exited.pid, exited.exit_status));
            }
            Record::Plan(_)
            | Record::Started(_)
            | Record::Failed(_)
            | Record::Skipped(_)
            | Record::Healthy(_)
            | Record::Unhealthy(_)
            | Record::Waiting(_) => {
                if let Record::Plan(plan) = record
                    && self.project.is_none()
                {
                    self.project.clone_from(&plan.project);
                }
                if let Some(service) = record.service() {
                    // Looked up by &str: the name is copied once per service, not once per
                    // record, and a known service (nearly every record) costs one lookup.
                    match self.services.get_mut(service) {
                        Some(state) => apply_service(state, record, ts),
                        None => {
                            let mut state = ServiceState::default();
                            apply_service(&mut state, record, ts);
                            self.services.insert(service.to_owned(), state);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// When the deploy started: the `finished` record's ts less its `duration_ms`; else the
    /// first record after the plan (plans may have been written long before the deploy ran);
    /// else the first plan record.
    fn start_ts(&self) -> Option<u64> {
        match self.finished {
            Some((_, Some(duration), ts)) => Some(ts.saturating_sub(duration)),
            _ => self.first_ts.or(self.first_plan_ts),
        }
    }

    /// The report, with times relative to the deploy's start.
    pub fn report(&self) -> Report {
        let start = self.start_ts();
        let t0 = start.unwrap_or(0);
        let rel = |ts: u64| ts.saturating_sub(t0);
        let interrupted = self.interrupted.is_some();
        let mut services: Vec<ServiceReport> = self
            .services
            .iter()
            .map(|(name, state)| {
                let (status, reason) = match state.final_status {
                    Some(status) => (status, state.reason.clone()),
                    // Launched, and the deploy finished without a health result for it.
                    None if state.running.is_some() && self.finished.is_some() && !interrupted => {
                        (Status::Started, Some("not_checked".to_owned()))
                    }
                    // No final record: cut short by an interrupt, or the stream just ended.
                    None if state.running.is_some() || state.attempts > 0 => (
                        Status::Failed,
                        Some(
                            if interrupted {
                                "interrupted"
                            } else {
                                "incomplete"
                            }
                            .to_owned(),
                        ),
                    ),
                    None => (
                        Status::Skipped,
                        Some(
                            if interrupted {
                                "interrupted"
                            } else {
                                "not_started"
                            }
                            .to_owned(),
                        ),
                    ),
                };
                let mut segments: Vec<Segment> = state
                    .segments
                    .iter()
                    .map(|&(attempt, start, end, outcome)| Segment {
                        attempt,
                        start_ms: rel(start),
                        end_ms: rel(end),
                        outcome,
                    })
                    .collect();
                let mut failed_ms = state.failed_ts.map(rel);
                if let (Some((attempt, start)), None) = (state.running, state.final_status)
                    && segments.len() < MAX_SEGMENTS
                    && status == Status::Failed
                {
                    let end = self.last_ts.unwrap_or(start).max(start);
                    segments.push(Segment {
                        attempt,
                        start_ms: rel(start),
                        end_ms: rel(end),
                        outcome: SegmentOutcome::CutShort,
                    });
                    failed_ms = Some(rel(end));
                }
                let hint = match status {
                    Status::Healthy => None,
                    _ => state.hint.clone().or_else(|| {
                        state
                            .last_probe
                            .as_ref()
                            .map(|probe| format!("last probe: {probe}"))
                    }),
                };
                ServiceReport {
                    service: name.clone(),
                    class: state.class,
                    level: state.level,
                    status,
                    reason,
                    attempts: state.attempts,
                    start_ms: state.first_start_ts.map(rel),
                    ready_ms: state.ready_ts.map(rel),
                    time_to_healthy_ms: state.time_to_healthy_ms,
                    failed_ms,
                    deps: state.deps.clone(),
                    soft_deps: state.soft_deps.clone(),
                    hint,
                    log_tail: if status == Status::Healthy {
                        Vec::new()
                    } else {
                        state.log_tail.clone()
                    },
                    segments,
                }
            })
            .collect();
        services.sort_by(|a, b| {
            (a.level.unwrap_or(u32::MAX), &a.service)
                .cmp(&(b.level.unwrap_or(u32::MAX), &b.service))
        });
        let mut counts = Counts {
            total: u32::try_from(services.len()).unwrap_or(u32::MAX),
            ..Counts::default()
        };
        let mut core_skipped = false;
        for service in &services {
            if service.reason.as_deref() == Some("already_healthy") {
                counts.already_healthy += 1;
            }
            match service.status {
                Status::Healthy => counts.healthy += 1,
                Status::Failed => counts.failed += 1,
                Status::Skipped => counts.skipped += 1,
                Status::Started => counts.started += 1,
            }
            if service.class == Some(Class::Core) {
                match service.status {
                    Status::Failed => counts.core_failed += 1,
                    Status::Skipped if service.reason.as_deref() == Some("dependency_failed") => {
                        counts.core_failed += 1;
                    }
                    Status::Skipped => core_skipped = true,
                    Status::Healthy | Status::Started => {}
                }
            }
        }
        let (critical_path, critical_path_ms) = critical_path(&services);
        let duration_ms = match self.finished {
            Some((_, Some(duration), _)) => duration,
            _ => self.last_ts.map_or(0, rel),
        };
        let finished_ok = self.finished.is_none_or(|(ok, _, _)| ok);
        Report {
            run_id: self.run_id.clone(),
            project: self.project.clone(),
            ok: counts.core_failed == 0 && !core_skipped && !interrupted && finished_ok,
            interrupted,
            started_at: start.map(rfc3339_millis),
            duration_ms,
            critical_path,
            critical_path_ms,
            counts,
            services,
        }
    }
}

/// The class, level and attempt a service record carries.
fn attempt_of(record: &Record) -> Option<&AttemptOf> {
    match record {
        Record::Started(r) => Some(&r.of),
        Record::Failed(r) => Some(&r.of),
        Record::Healthy(r) => Some(&r.of),
        Record::Unhealthy(r) => Some(&r.of),
        Record::Waiting(r) => Some(&r.of),
        _ => None,
    }
}

fn apply_service(state: &mut ServiceState, record: &Record, ts: u64) {
    let of = attempt_of(record);
    let (class, level) = match record {
        Record::Plan(plan) => (plan.class, plan.level),
        Record::Skipped(skipped) => (skipped.of.class, skipped.of.level),
        _ => match of {
            Some(of) => (of.class, of.level),
            None => return,
        },
    };
    state.class = Some(class);
    state.level = Some(level);
    if let Record::Plan(plan) = record {
        state.deps.clone_from(&plan.deps);
        state.soft_deps.clone_from(&plan.soft_deps);
    }
    if let Some(of) = of {
        state.attempts = state.attempts.max(of.attempt);
    }
    let attempt = of.map_or(state.attempts.max(1), |of| of.attempt);
    // The same outcome twice (an events file fed by two taps of one pipeline) is one outcome.
    if matches!(
        record,
        Record::Healthy(_) | Record::Failed(_) | Record::Unhealthy(_)
    ) && state.running.is_none()
        && state
            .segments
            .last()
            .is_some_and(|&(last_attempt, _, end, _)| last_attempt == attempt && end == ts)
    {
        return;
    }
    let close = |state: &mut ServiceState, start: u64, outcome: SegmentOutcome| {
        if state.segments.len() < MAX_SEGMENTS {
            state
                .segments
                .push((attempt, start, ts.max(start), outcome));
        }
        state.running = None;
    };
    match record {
        Record::Started(_) => {
            state.first_start_ts.get_or_insert(ts);
            state.attempts = state.attempts.max(1);
            state.running = Some((attempt, ts));
        }
        Record::Healthy(healthy) => {
            // hub-wait-healthy consumes `started` records: without one, `ready_ms` (from the
            // start to the passing probe) says when the attempt began.
            let start = state
                .running
                .map_or_else(|| ts.saturating_sub(healthy.ready_ms), |(_, start)| start);
            state.first_start_ts.get_or_insert(start);
            close(state, start, SegmentOutcome::Healthy);
            state.final_status = Some(Status::Healthy);
            state.reason = None;
            state.ready_ts = Some(ts);
            state.time_to_healthy_ms = Some(healthy.ready_ms);
            state.failed_ts = None;
        }
        Record::Failed(_) | Record::Unhealthy(_) => {
            let failure = Failure::of(record);
            // Without a `started` record: an `unhealthy` one's `elapsed_ms` says when the attempt
            // began; a failed start shows as a mark where it failed.
            let start = state
                .running
                .map_or_else(|| ts.saturating_sub(failure.elapsed_ms), |(_, start)| start);
            state.first_start_ts.get_or_insert(start);
            state.attempts = state.attempts.max(1);
            let outcome = if failure.is_final {
                SegmentOutcome::Failed
            } else {
                SegmentOutcome::Retried
            };
            close(state, start, outcome);
            state.hint = failure.hint().or(state.hint.take());
            if let Some(tail) = failure.log_tail {
                state.log_tail.clone_from(tail);
            }
            if failure.is_final {
                state.final_status = Some(Status::Failed);
                state.reason = Some(failure.reason.to_owned());
                state.failed_ts = Some(ts);
            }
            if let Some(probe) = failure.last_probe {
                state.last_probe = Some(probe.to_owned());
            }
        }
        Record::Skipped(skipped) => {
            if skipped.reason == SkipReason::AlreadyHealthy {
                state.final_status = Some(Status::Healthy);
                state.ready_ts = Some(ts);
                state.time_to_healthy_ms = Some(0);
            } else {
                state.final_status = Some(Status::Skipped);
                if let Some(dependency) = &skipped.dependency {
                    state.hint = Some(format!("dependency {dependency} failed"));
                }
            }
            state.reason = Some(skipped.reason.as_str().to_owned());
        }
        Record::Waiting(waiting) => {
            if let Some(probe) = &waiting.last_probe {
                let last = state.last_probe.get_or_insert_with(String::new);
                last.clear();
                last.push_str(probe);
            }
        }
        _ => {}
    }
}

/// What a `failed` or `unhealthy` record says, alike.
struct Failure<'a> {
    is_final: bool,
    reason: &'static str,
    message: Option<&'a str>,
    exit_status: Option<i32>,
    last_probe: Option<&'a str>,
    log_tail: Option<&'a Vec<String>>,
    elapsed_ms: u64,
}

impl<'a> Failure<'a> {
    fn of(record: &'a Record) -> Failure<'a> {
        match record {
            Record::Unhealthy(r) => Failure {
                is_final: r.is_final,
                reason: r.reason.as_str(),
                message: Some(r.message.as_str()).filter(|m| !m.is_empty()),
                exit_status: r.exit_status,
                last_probe: r.last_probe.as_deref(),
                log_tail: r.log_tail.as_ref(),
                elapsed_ms: r.elapsed_ms,
            },
            Record::Failed(r) => Failure {
                is_final: r.is_final,
                reason: r.reason.as_str(),
                message: Some(r.message.as_str()).filter(|m| !m.is_empty()),
                exit_status: r.exit_status,
                last_probe: None,
                log_tail: r.log_tail.as_ref(),
                elapsed_ms: 0,
            },
            _ => Failure {
                is_final: true,
                reason: "failed",
                message: None,
                exit_status: None,
                last_probe: None,
                log_tail: None,
                elapsed_ms: 0,
            },
        }
    }

    /// The one-line hint: its message, exit status and last probe.
    fn hint(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(message) = self.message {
            parts.push(message.to_owned());
        }
        if let Some(status) = self.exit_status
            && !parts
                .iter()
                .any(|part| part.contains(&format!("status {status}")))
        {
            parts.push(format!("exit status {status}"));
        }
        // A message that already quotes the last probe (`timed out after 1.0s (last probe: exit
        // 1)`) is not followed by the same fact again.
        if let Some(probe) = self.last_probe
            && !parts.iter().any(|part| part.contains(probe))
        {
            parts.push(format!("last probe: {probe}"));
        }
        (!parts.is_empty()).then(|| parts.join(" · "))
    }
}

/// The chain that decided when the last service was done: start at the service whose outcome
/// (healthy or a final failure) came last, then repeatedly step to the dependency (hard or soft) that
/// finished last before it. Returns the names, first to last, and the last one's end time.
pub fn critical_path(services: &[ServiceReport]) -> (Vec<String>, Option<u64>) {
    let by_name: HashMap<&str, &ServiceReport> =
        services.iter().map(|s| (s.service.as_str(), s)).collect();
    // Only decided outcomes count: an attempt cut short ended when the deploy stopped, not
    // when the service was done.
    let end = |s: &ServiceReport| match (s.status, s.reason.as_deref()) {
        (Status::Skipped | Status::Started, _) | (_, Some("interrupted" | "incomplete")) => None,
        _ => s.ready_ms.or(s.failed_ms),
    };
    let Some(last) = services
        .iter()
        .filter(|s| end(s).is_some())
        .max_by_key(|s| (end(s), std::cmp::Reverse(s.service.as_str())))
    else {
        return (Vec::new(), None);
    };
    let mut path = vec![last.service.clone()];
    let mut current = last;
    while path.len() <= services.len() {
        let next = current
            .deps
            .iter()
            .chain(&current.soft_deps)
            .filter_map(|dep| by_name.get(dep.as_str()).copied())
            .filter(|dep| end(dep).is_some() && !path.contains(&dep.service))
            .max_by_key(|dep| (end(dep), std::cmp::Reverse(dep.service.as_str())));
        match next {
            Some(dep) => {
                path.push(dep.service.clone());
                current = dep;
            }
            None => break,
        }
    }
    path.reverse();
    (path, end(last))
}

/// `2026-11-28T16:18:33.000Z` (see [`hub::time::rfc3339_millis`]).
pub fn rfc3339_millis(ts_ms: u64) -> String {
    hub::time::rfc3339_millis(ts_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hub::records::{HealthSpec, Healthy, Plan, Started, Unhealthy, UnhealthyReason};

    fn fold(lines: Vec<(u64, Record)>) -> Report {
        let mut run = RunState::new(Some("r".into()));
        for (ts, record) in lines {
            run.apply(&Line {
                ts: Some(ts),
                run_id: Some("r".into()),
                record,
            });
        }
        run.report()
    }

    fn plan(service: &str, level: u32, deps: &[&str], soft_deps: &[&str]) -> Record {
        Record::Plan(Box::new(Plan {
            deps: deps.iter().map(|&d| d.into()).collect(),
            soft_deps: soft_deps.iter().map(|&d| d.into()).collect(),
            ..Plan::named(service, Class::Core, level)
        }))
    }

    fn of(service: &str) -> AttemptOf {
        AttemptOf {
            service: service.into(),
            class: Class::Core,
            level: 0,
            attempt: 1,
            max_attempts: 3,
        }
    }

    fn started(service: &str) -> Record {
        Record::Started(Box::new(Started::new(of(service), HealthSpec::none())))
    }

    fn healthy(service: &str, ready_ms: u64) -> Record {
        Record::Healthy(Healthy {
            of: of(service),
            is_final: true,
            ready_ms,
            probes: 1,
            failures: 0,
            tasks: Vec::new(),
        })
    }

    fn unhealthy(service: &str, is_final: bool, reason: UnhealthyReason) -> Record {
        Record::Unhealthy(Unhealthy::new(of(service), reason, is_final))
    }

    #[test]
    fn the_critical_path_follows_the_dependency_that_finished_last() {
        let report = fold(vec![
            (0, plan("a", 0, &[], &[])),
            (0, plan("b", 0, &[], &[])),
            (0, plan("c", 1, &["a"], &["b"])),
            (10, started("a")),
            (10, started("b")),
            (100, healthy("a", 90)),
            (300, unhealthy("b", true, UnhealthyReason::Timeout)),
            (310, started("c")),
            (500, healthy("c", 190)),
        ]);
        // b (a soft dependency) failed last, so it, not a, held c back.
        assert_eq!(report.critical_path, ["b", "c"]);
        assert_eq!(report.critical_path_ms, Some(490));
        assert!(!report.ok, "b is CORE and failed");
    }

    #[test]
    fn a_repeated_outcome_counts_once() {
        let report = fold(vec![
            (10, started("a")),
            (90, healthy("a", 80)),
            (90, healthy("a", 80)),
        ]);
        assert_eq!(report.services[0].segments.len(), 1);
        assert_eq!(report.services[0].time_to_healthy_ms, Some(80));
    }

    #[test]
    fn a_non_final_failure_is_not_an_outcome() {
        let report = fold(vec![
            (0, started("a")),
            (50, unhealthy("a", false, UnhealthyReason::Exited)),
        ]);
        // The stream ends before the retry: the service is incomplete, not failed for good.
        assert_eq!(report.services[0].status, Status::Failed);
        assert_eq!(report.services[0].reason.as_deref(), Some("incomplete"));
        assert_eq!(
            report.services[0].segments[0].outcome,
            SegmentOutcome::Retried
        );
    }

    #[test]
    fn an_exited_record_gives_its_pids_exit_status() {
        let mut run = RunState::new(Some("r".into()));
        for record in [
            started("api"),
            Record::Exited(hub::records::Exited {
                of: of("api"),
                pid: 4321,
                exit_status: 137,
            }),
        ] {
            run.apply(&Line {
                ts: Some(5),
                run_id: Some("r".into()),
                record,
            });
        }
        assert_eq!(run.exit_status("api", 4321), Some(137));
        assert_eq!(run.exit_status("api", 999), None, "another process");
        assert_eq!(run.exit_status("db", 4321), None);
    }

    #[test]
    fn an_opened_start_breaker_is_its_services_hint() {
        let report = fold(vec![
            (0, started("api")),
            (
                5,
                Record::Breaker(hub::breaker::Transition {
                    key: hub::breaker::start_key("api"),
                    from: BreakerState::Closed,
                    to: BreakerState::Open,
                    consecutive_failures: 3,
                    opened_at: Some(5),
                }),
            ),
            (6, unhealthy("api", true, UnhealthyReason::Exited)),
        ]);
        assert_eq!(
            report.services[0].hint.as_deref(),
            Some("circuit breaker `api:start` opened")
        );
    }
}
