//! The report model: folding a run's records (per `docs/records.md`) into one [`Report`].
//!
//! Everything the formats print comes from [`Report`], and `--history` stores the same object,
//! so `trend` reads back exactly what `--format json` shows. The fold keeps one small state
//! per service, so memory grows with services, not with records.

use hub::jsonscan::Scan;
use hub::records::Class;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;

/// The fields of any record that the report uses; everything else is skipped unread.
///
/// Decode with [`Event::decode`]: a million lines are read per report, and serde's general
/// decoding is most of what that costs.
#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct Event<'a> {
    /// The record type.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default)]
    pub ts: Option<u64>,
    #[serde(default, borrow)]
    pub run_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub service: Option<Cow<'a, str>>,
    #[serde(default)]
    pub class: Option<Class>,
    #[serde(default)]
    pub level: Option<u32>,
    #[serde(default, borrow)]
    pub deps: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    pub soft_deps: Option<Vec<Cow<'a, str>>>,
    #[serde(default)]
    pub attempt: Option<u32>,
    #[serde(default, rename = "final")]
    pub is_final: Option<bool>,
    #[serde(default, borrow)]
    pub reason: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub message: Option<Cow<'a, str>>,
    #[serde(default)]
    pub exit_status: Option<i64>,
    #[serde(default)]
    pub ready_ms: Option<u64>,
    #[serde(default)]
    pub elapsed_ms: Option<u64>,
    #[serde(default, borrow)]
    pub last_probe: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub log_tail: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    pub dependency: Option<Cow<'a, str>>,
    #[serde(default)]
    pub ok: Option<bool>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    #[serde(default, borrow)]
    pub signal: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub in_flight: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    pub key: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub to: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub project: Option<Cow<'a, str>>,
}

impl<'a> Event<'a> {
    /// Decode one line: the fast scan for the plain lines hub's tools write, serde for the rest
    /// (escapes, floats, anything odd), which then decides and words any error.
    pub fn decode(line: &'a str) -> Result<Self, String> {
        let mut event = Event::default();
        event.decode_into(line)?;
        Ok(event)
    }

    /// [`Event::decode`] into `self`, a default event: an event is a few hundred bytes, and
    /// moving one out of a function per line shows in the profile. On an error, what `self`
    /// holds is unspecified.
    pub fn decode_into(&mut self, line: &'a str) -> Result<(), String> {
        if self.scan(line).is_none() {
            *self = hub::jsonl::decode(line)?;
        }
        Ok(())
    }

    /// The fast path: `None` whenever the line is not one it can vouch for, serde's derive
    /// above being the definition. Fields are told apart by a bit each, because serde refuses
    /// a field given twice (even as `null`).
    fn scan(&mut self, line: &'a str) -> Option<()> {
        let mut seen = 0u32;
        Scan::new(line).object(|key, scan| {
            let e = &mut *self;
            let (bit, read) = match key {
                "type" => (0, scan.str().map(|v| e.kind = Cow::Borrowed(v))),
                "ts" => (1, scan.nullable(Scan::u64).map(|v| e.ts = v)),
                "run_id" => (
                    2,
                    scan.nullable(Scan::str)
                        .map(|v| e.run_id = v.map(Cow::from)),
                ),
                "service" => (
                    3,
                    scan.nullable(Scan::str)
                        .map(|v| e.service = v.map(Cow::from)),
                ),
                "class" => (4, scan.nullable(Scan::str_as).map(|v| e.class = v)),
                "level" => (5, scan.nullable(Scan::u32).map(|v| e.level = v)),
                "deps" => (6, scan.nullable(Scan::str_array).map(|v| e.deps = v)),
                "soft_deps" => (7, scan.nullable(Scan::str_array).map(|v| e.soft_deps = v)),
                "attempt" => (8, scan.nullable(Scan::u32).map(|v| e.attempt = v)),
                "final" => (9, scan.nullable(Scan::bool).map(|v| e.is_final = v)),
                "reason" => (
                    10,
                    scan.nullable(Scan::str)
                        .map(|v| e.reason = v.map(Cow::from)),
                ),
                "message" => (
                    11,
                    scan.nullable(Scan::str)
                        .map(|v| e.message = v.map(Cow::from)),
                ),
                "exit_status" => (12, scan.nullable(Scan::i64).map(|v| e.exit_status = v)),
                "ready_ms" => (13, scan.nullable(Scan::u64).map(|v| e.ready_ms = v)),
                "elapsed_ms" => (14, scan.nullable(Scan::u64).map(|v| e.elapsed_ms = v)),
                "last_probe" => (
                    15,
                    scan.nullable(Scan::str)
                        .map(|v| e.last_probe = v.map(Cow::from)),
                ),
                "log_tail" => (16, scan.nullable(Scan::str_array).map(|v| e.log_tail = v)),
                "dependency" => (
                    17,
                    scan.nullable(Scan::str)
                        .map(|v| e.dependency = v.map(Cow::from)),
                ),
                "ok" => (18, scan.nullable(Scan::bool).map(|v| e.ok = v)),
                "duration_ms" => (19, scan.nullable(Scan::u64).map(|v| e.duration_ms = v)),
                "signal" => (
                    20,
                    scan.nullable(Scan::str)
                        .map(|v| e.signal = v.map(Cow::from)),
                ),
                "in_flight" => (21, scan.nullable(Scan::str_array).map(|v| e.in_flight = v)),
                "key" => (
                    22,
                    scan.nullable(Scan::str).map(|v| e.key = v.map(Cow::from)),
                ),
                "to" => (
                    23,
                    scan.nullable(Scan::str).map(|v| e.to = v.map(Cow::from)),
                ),
                "project" => (
                    24,
                    scan.nullable(Scan::str)
                        .map(|v| e.project = v.map(Cow::from)),
                ),
                _ => return scan.skip(),
            };
            read?;
            let bit = 1u32 << bit;
            (seen & bit == 0).then(|| seen |= bit)
        })?;
        // `type` is the one field serde requires.
        (seen & 1 != 0).then_some(())
    }
}

/// A service's outcome in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Healthy (or skipped because it already was).
    Healthy,
    /// Its last attempt failed, or the deploy stopped while it was starting.
    Failed,
    /// Never started.
    Skipped,
    /// Launched, but the deploy finished with no health result for it (`hub-start` without
    /// `--gate` counts a launch as done).
    Started,
}

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

fn owned(text: &Option<Cow<'_, str>>) -> Option<String> {
    text.as_deref().map(str::to_owned)
}

fn owned_list(list: &Option<Vec<Cow<'_, str>>>) -> Vec<String> {
    list.iter()
        .flatten()
        .map(|item| item.as_ref().to_owned())
        .collect()
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

    /// The run id.
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// Fold one record in. Record types the report does not use are ignored.
    pub fn apply(&mut self, event: &Event<'_>) {
        self.records += 1;
        let ts = event.ts.or(self.last_ts).unwrap_or(0);
        if event.ts.is_some() {
            let first = if event.kind == "plan" {
                &mut self.first_plan_ts
            } else {
                &mut self.first_ts
            };
            *first = Some(first.map_or(ts, |first| first.min(ts)));
            self.last_ts = Some(self.last_ts.map_or(ts, |last| last.max(ts)));
        }
        if self.project.is_none() && event.kind == "plan" {
            self.project = owned(&event.project);
        }
        match event.kind.as_ref() {
            "finished" => {
                self.finished = Some((event.ok.unwrap_or(false), event.duration_ms, ts));
            }
            "interrupted" => {
                let in_flight = self.interrupted.get_or_insert_with(Vec::new);
                for name in owned_list(&event.in_flight) {
                    if !in_flight.contains(&name) {
                        in_flight.push(name);
                    }
                }
            }
            "breaker" => {
                // `service:failure_type`: an opened breaker is a hint for that service.
                if let (Some(key), Some("open")) = (event.key.as_deref(), event.to.as_deref())
                    && let Some((service, kind)) = key.split_once(':')
                    && let Some(state) = self.services.get_mut(service)
                {
                    let note = format!("circuit breaker `{service}:{kind}` opened");
                    state.hint = Some(match state.hint.take() {
                        Some(hint) => format!("{hint} · {note}"),
                        None => note,
                    });
                }
            }
            kind @ ("plan" | "started" | "failed" | "skipped" | "healthy" | "unhealthy"
            | "waiting") => {
                if let Some(service) = event.service.as_deref() {
                    // Looked up by &str: the name is copied once per service, not once per
                    // record, and a known service (nearly every record) costs one lookup.
                    match self.services.get_mut(service) {
                        Some(state) => apply_service(state, kind, event, ts),
                        None => {
                            let mut state = ServiceState::default();
                            apply_service(&mut state, kind, event, ts);
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

fn apply_service(state: &mut ServiceState, kind: &str, event: &Event<'_>, ts: u64) {
    if event.class.is_some() {
        state.class = event.class;
    }
    if event.level.is_some() {
        state.level = event.level;
    }
    if event.deps.is_some() {
        state.deps = owned_list(&event.deps);
    }
    if event.soft_deps.is_some() {
        state.soft_deps = owned_list(&event.soft_deps);
    }
    if let Some(attempt) = event.attempt {
        state.attempts = state.attempts.max(attempt);
    }
    let attempt = event.attempt.unwrap_or(state.attempts.max(1));
    // The same outcome twice (an events file fed by two taps of one pipeline) is one outcome.
    if matches!(kind, "healthy" | "failed" | "unhealthy")
        && state.running.is_none()
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
    match kind {
        "started" => {
            state.first_start_ts.get_or_insert(ts);
            state.attempts = state.attempts.max(1);
            state.running = Some((attempt, ts));
        }
        "healthy" => {
            // hub-wait-healthy consumes `started` records: without one, `ready_ms` (from the
            // start to the passing probe) says when the attempt began.
            let start = state.running.map_or_else(
                || ts.saturating_sub(event.ready_ms.unwrap_or(0)),
                |(_, start)| start,
            );
            state.first_start_ts.get_or_insert(start);
            close(state, start, SegmentOutcome::Healthy);
            state.final_status = Some(Status::Healthy);
            state.reason = None;
            state.ready_ts = Some(ts);
            state.time_to_healthy_ms = event.ready_ms.or(Some(ts.saturating_sub(start)));
            state.failed_ts = None;
        }
        "failed" | "unhealthy" => {
            let is_final = event.is_final.unwrap_or(true);
            // Without a `started` record: an `unhealthy` one's `elapsed_ms` says when the attempt
            // began; a failed start shows as a mark where it failed.
            let start = state.running.map_or_else(
                || ts.saturating_sub(event.elapsed_ms.unwrap_or(0)),
                |(_, start)| start,
            );
            state.first_start_ts.get_or_insert(start);
            state.attempts = state.attempts.max(1);
            let outcome = if is_final {
                SegmentOutcome::Failed
            } else {
                SegmentOutcome::Retried
            };
            close(state, start, outcome);
            state.hint = failure_hint(event).or(state.hint.take());
            if let Some(tail) = &event.log_tail {
                state.log_tail = tail.iter().map(|line| line.as_ref().to_owned()).collect();
            }
            if is_final {
                state.final_status = Some(Status::Failed);
                state.reason = owned(&event.reason).or_else(|| Some(kind.to_owned()));
                state.failed_ts = Some(ts);
            }
        }
        "skipped" => {
            let reason = owned(&event.reason);
            if reason.as_deref() == Some("already_healthy") {
                state.final_status = Some(Status::Healthy);
                state.ready_ts = Some(ts);
                state.time_to_healthy_ms = Some(0);
            } else {
                state.final_status = Some(Status::Skipped);
                if let Some(dependency) = event.dependency.as_deref() {
                    state.hint = Some(format!("dependency {dependency} failed"));
                }
            }
            state.reason = reason.or_else(|| Some("skipped".to_owned()));
        }
        "waiting" => {
            if let Some(probe) = event.last_probe.as_deref() {
                let last = state.last_probe.get_or_insert_with(String::new);
                last.clear();
                last.push_str(probe);
            }
        }
        _ => {}
    }
    if kind == "unhealthy"
        && let Some(probe) = owned(&event.last_probe)
    {
        state.last_probe = Some(probe);
    }
}

/// The one-line hint a failure record carries: its message, exit status and last probe.
fn failure_hint(event: &Event<'_>) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(message) = event.message.as_deref() {
        parts.push(message.to_owned());
    }
    if let Some(status) = event.exit_status
        && !parts
            .iter()
            .any(|part| part.contains(&format!("status {status}")))
    {
        parts.push(format!("exit status {status}"));
    }
    // A message that already quotes the last probe (`timed out after 1.0s (last probe: exit
    // 1)`) is not followed by the same fact again.
    if let Some(probe) = event.last_probe.as_deref()
        && !parts.iter().any(|part| part.contains(probe))
    {
        parts.push(format!("last probe: {probe}"));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
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

    fn fold(lines: &[&str]) -> Report {
        let mut run = RunState::new(Some("r".into()));
        for line in lines {
            let event = Event::decode(line).unwrap();
            run.apply(&event);
        }
        run.report()
    }

    /// Records of every shape the report reads, as hub's tools write them.
    const RECORDS: &[&str] = &[
        r#"{"type":"plan","ts":1795882713000,"run_id":"r-1","service":"api","level":1,"class":"core","deps":["db","cache"],"soft_deps":[],"timeout_ms":60000,"backend":"run","run":["/opt/api"],"health":{"kind":"http","url":"http://127.0.0.1:8080/health","status":"200-399","interval_ms":100},"retry":{"attempts":3,"delay_ms":2000},"labels":{"hub.class":"core"}}"#,
        r#"{"type":"started","ts":1795882713050,"run_id":"r-1","service":"api","class":"stretch","level":0,"attempt":1,"max_attempts":3,"backend":"run","pid":2000,"log":".hub/logs/api.log"}"#,
        r#"{"type":"waiting","ts":1795882714754,"run_id":"r-1","service":"api","attempt":1,"percent":50,"elapsed_ms":1704,"last_probe":"GET /health: 503"}"#,
        r#"{"type":"unhealthy","ts":1795882713950,"run_id":"r-1","service":"api","class":"optional","attempt":1,"final":false,"reason":"exited","elapsed_ms":900,"probes":9,"exit_status":-1,"last_probe":"connection refused","log_tail":["error: not ready","exiting"]}"#,
        r#"{"type":"healthy","ts":1795882716459,"run_id":"r-1","service":"api","attempt":2,"final":true,"ready_ms":3409,"probes":34,"ratio":0.25}"#,
        r#"{"type":"failed","ts":5,"service":"api","message":"exit status 3","exit_status":3,"reason":null,"dependency":"db"}"#,
        r#"{"type":"skipped","ts":6,"run_id":null,"service":"web","reason":"dependency_failed","dependency":"api"}"#,
        r#"{"type":"breaker","ts":7,"key":"api:exited","from":"closed","to":"open"}"#,
        r#"{"type":"interrupted","ts":8,"signal":"SIGINT","in_flight":["api","web"]}"#,
        r#"{"type":"finished","ts":9,"ok":true,"exit_status":0,"counts":{"healthy":11},"duration_ms":3450}"#,
        "{ \"type\" : \"healthy\" ,\t\"service\":\"caf\u{e9} \u{2713}\", \"x\": [ ] }",
    ];

    /// Every field serde's derive knows is one the scan reads, so a field added to `Event`
    /// without its arm in `Event::scan` fails here rather than going silently missing (the scan
    /// would step over it as unknown). serde hands a struct's field names to
    /// `deserialize_struct`; this deserializer only collects them.
    #[test]
    fn the_fast_scan_reads_every_field_serde_knows() {
        struct Names(Vec<&'static str>);
        impl<'de> serde::Deserializer<'de> for &mut Names {
            type Error = serde::de::value::Error;
            fn deserialize_any<V: serde::de::Visitor<'de>>(
                self,
                _: V,
            ) -> Result<V::Value, Self::Error> {
                Err(serde::de::Error::custom("names only"))
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                self.0.extend(fields);
                Err(serde::de::Error::custom("names only"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
                identifier ignored_any
            }
        }
        let mut names = Names(Vec::new());
        assert!(Event::deserialize(&mut names).is_err());
        assert!(names.0.len() > 20, "{:?}", names.0);
        for name in names.0.iter().filter(|&&name| name != "type") {
            // No field takes an object, so the scan must decline the line, not step over it.
            let line = format!(r#"{{"type":"x","{name}":{{"z":1}}}}"#);
            assert_eq!(
                Event::default().scan(&line),
                None,
                "the scan skips `{name}`"
            );
        }
    }

    /// What the fast scan reads, serde reads alike: each record, and thousands of small
    /// mutations of them (an escape, a float, a stray comma, a duplicate field, a wrong type…).
    /// Where the scan declines, serde decides, so only its acceptances need checking.
    #[test]
    fn the_fast_scan_agrees_with_serde() {
        const PIECES: &[&str] = &[
            "{",
            "}",
            "[",
            "]",
            ":",
            ",",
            "\"",
            "\\",
            " ",
            "0",
            "7",
            "-",
            ".",
            "e",
            "E",
            "+",
            "null",
            "true",
            "false",
            "\\n",
            "\\u00e9",
            "1.5",
            "-0",
            "01",
            "1e3",
            "-1",
            "18446744073709551616",
            "4294967296",
            "9223372036854775808",
            "\"type\":\"x\",",
            "\"ts\":1,",
            "\"level\":2,",
            "\"final\":null,",
            "\"deps\":[\"a\"],",
            "\"class\":\"core\",",
            "\"class\":\"CORE\",",
            "\u{1}",
            "\u{e9}",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        let (mut tried, mut accepted) = (0, 0);
        for record in RECORDS {
            let mut fast = Event::default();
            assert_eq!(fast.scan(record), Some(()), "the scan reads {record}");
            for _ in 0..3000 {
                let mut line = (*record).to_owned();
                for _ in 0..1 + next(3) {
                    let mut at = next(line.len() + 1);
                    while !line.is_char_boundary(at) {
                        at -= 1;
                    }
                    let piece = PIECES[next(PIECES.len())];
                    match next(3) {
                        0 => line.insert_str(at, piece),
                        1 => {
                            let mut end = (at + 1 + next(4)).min(line.len());
                            while !line.is_char_boundary(end) {
                                end += 1;
                            }
                            line.replace_range(at..end, "");
                        }
                        _ => {
                            let mut end = (at + 1).min(line.len());
                            while !line.is_char_boundary(end) {
                                end += 1;
                            }
                            line.replace_range(at..end, piece);
                        }
                    }
                }
                tried += 1;
                let mut fast = Event::default();
                if fast.scan(&line).is_some() {
                    accepted += 1;
                    let slow: Event<'_> = hub::jsonl::decode(&line).unwrap_or_else(|e| {
                        panic!("serde refuses what the scan read: {line}: {e}")
                    });
                    assert_eq!(fast, slow, "{line}");
                }
            }
        }
        // Enough mutations survive for the comparison to mean something.
        assert!(accepted * 10 > tried, "{accepted} of {tried}");
    }

    #[test]
    fn the_critical_path_follows_the_dependency_that_finished_last() {
        let report = fold(&[
            r#"{"type":"plan","ts":0,"service":"a","level":0,"class":"core","deps":[]}"#,
            r#"{"type":"plan","ts":0,"service":"b","level":0,"class":"core","deps":[]}"#,
            r#"{"type":"plan","ts":0,"service":"c","level":1,"class":"core","deps":["a"],"soft_deps":["b"]}"#,
            r#"{"type":"started","ts":10,"service":"a","attempt":1}"#,
            r#"{"type":"started","ts":10,"service":"b","attempt":1}"#,
            r#"{"type":"healthy","ts":100,"service":"a","attempt":1,"ready_ms":90}"#,
            r#"{"type":"unhealthy","ts":300,"service":"b","attempt":1,"final":true,"reason":"timeout"}"#,
            r#"{"type":"started","ts":310,"service":"c","attempt":1}"#,
            r#"{"type":"healthy","ts":500,"service":"c","attempt":1,"ready_ms":190}"#,
        ]);
        // b (a soft dependency) failed last, so it, not a, held c back.
        assert_eq!(report.critical_path, ["b", "c"]);
        assert_eq!(report.critical_path_ms, Some(490));
        assert!(!report.ok, "b is CORE and failed");
    }

    #[test]
    fn a_repeated_outcome_counts_once() {
        let healthy = r#"{"type":"healthy","ts":90,"service":"a","attempt":1,"ready_ms":80}"#;
        let report = fold(&[
            r#"{"type":"started","ts":10,"service":"a","class":"core","level":0,"attempt":1}"#,
            healthy,
            healthy,
        ]);
        assert_eq!(report.services[0].segments.len(), 1);
        assert_eq!(report.services[0].time_to_healthy_ms, Some(80));
    }

    #[test]
    fn a_non_final_failure_is_not_an_outcome() {
        let report = fold(&[
            r#"{"type":"started","ts":0,"service":"a","class":"core","level":0,"attempt":1}"#,
            r#"{"type":"unhealthy","ts":50,"service":"a","attempt":1,"final":false,"reason":"exited"}"#,
        ]);
        // The stream ends before the retry: the service is incomplete, not failed for good.
        assert_eq!(report.services[0].status, Status::Failed);
        assert_eq!(report.services[0].reason.as_deref(), Some("incomplete"));
        assert_eq!(
            report.services[0].segments[0].outcome,
            SegmentOutcome::Retried
        );
    }
}
