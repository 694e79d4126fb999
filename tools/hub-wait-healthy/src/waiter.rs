//! One service's wait: probe on the growing schedule, watch its process, warn at 50/75/90%, and
//! decide healthy or unhealthy. Runs on its own thread and reports through a channel, so the
//! main thread alone writes records and log lines.

use crate::exits::Wake;
use hub::duration;
use hub::probe::{Outcome, Prober, Schedule, Target};
use hub::process;
use hub::records::{Check, Class, HealthSpec};
use serde::Deserialize;
use std::io::Read;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// Without pidfds, how often a `run` service's process is checked between probes.
pub const LIVENESS_EVERY: Duration = Duration::from_millis(50);
/// How long to wait for `hub-start` to write a dead process's exit file (it reaps, then writes).
const EXIT_FILE_WAIT: Duration = Duration::from_millis(300);
/// How often the exit file is looked for while waiting for it.
const EXIT_FILE_POLL: Duration = Duration::from_millis(2);
/// The percentages of the timeout at which a still-waiting service is reported.
pub const WARN_AT: [u32; 3] = [50, 75, 90];

/// A `started` record, as far as waiting needs it (see docs/records.md).
#[derive(Debug, Clone, Deserialize)]
pub struct Started {
    /// The service.
    pub service: String,
    /// When the record was written (ms since the epoch).
    #[serde(default)]
    pub ts: Option<u64>,
    /// The run it belongs to.
    #[serde(default)]
    pub run_id: Option<String>,
    /// Its class.
    pub class: Class,
    /// Its level.
    #[serde(default)]
    pub level: u32,
    /// This start attempt, 1-based.
    #[serde(default = "one")]
    pub attempt: u32,
    /// Attempts allowed (0 = until success).
    #[serde(default = "one")]
    pub max_attempts: u32,
    /// `run` services: the process (and group) id.
    #[serde(default)]
    pub pid: Option<u32>,
    /// `run` services: its log file.
    #[serde(default)]
    pub log: Option<String>,
    /// `run` services: where its exit status is written when it exits.
    #[serde(default)]
    pub exit_file: Option<String>,
    /// How long it has to become healthy.
    pub timeout_ms: u64,
    /// Its health check.
    pub health: HealthSpec,
    /// Container services: the container.
    #[serde(default)]
    pub container: Option<String>,
    /// Local services: the folder a health command runs in.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// Local services: the variables a health command is given.
    #[serde(default)]
    pub environment: hub::records::Environment,
}

fn one() -> u32 {
    1
}

impl Verdict {
    /// May `hub-start` try again after this verdict, attempts allowing? A process that
    /// exited or a health check that timed out, yes (the next attempt starts afresh); a check
    /// that cannot run, or a command that is not found or not executable, no.
    pub fn retryable(&self) -> bool {
        match self {
            Verdict::Healthy { .. } => false,
            Verdict::Unhealthy {
                reason,
                exit_status,
                ..
            } => match reason {
                Reason::Exited => exit_status.and_then(hub::codes::cannot_succeed).is_none(),
                Reason::Timeout => true,
                Reason::ProbeError => false,
            },
        }
    }
}

impl Started {
    /// Does a failure of this attempt leave another attempt to `hub-start`?
    pub fn attempts_left(&self) -> bool {
        self.max_attempts == 0 || self.attempt < self.max_attempts
    }
}

/// Why a service is unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The deadline passed.
    Timeout,
    /// Its process exited.
    Exited,
    /// The check cannot run.
    ProbeError,
}

impl Reason {
    /// As written in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Exited => "exited",
            Reason::ProbeError => "probe_error",
        }
    }
}

/// How a wait ended.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// A probe passed.
    Healthy {
        /// From the `started` record's time to the passing probe.
        ready: Duration,
        /// Probes run.
        probes: u32,
        /// Failed probes outside the start period.
        failures: u32,
    },
    /// It did not become healthy.
    Unhealthy {
        /// Why.
        reason: Reason,
        /// From the `started` record's time to the decision.
        elapsed: Duration,
        /// Probes run.
        probes: u32,
        /// Failed probes outside the start period.
        failures: u32,
        /// The last probe's result.
        last_probe: Option<String>,
        /// For `exited`: its exit status, when known.
        exit_status: Option<i32>,
        /// For `exited`: the last lines of its log.
        log_tail: Option<Vec<String>>,
        /// One line for humans.
        message: String,
    },
}

impl Verdict {
    /// The check cannot run at all (a bad URL, no container id): final at once.
    pub fn probe_error(elapsed: Duration, message: String) -> Verdict {
        Verdict::Unhealthy {
            reason: Reason::ProbeError,
            elapsed,
            probes: 0,
            failures: 0,
            last_probe: Some(message.clone()),
            exit_status: None,
            log_tail: None,
            message,
        }
    }
}

/// What a waiter tells the main thread.
#[derive(Debug, Clone)]
pub enum Report {
    /// A probe's result differs from the previous one (for `-v`).
    Probe {
        /// The probe's number, 1-based.
        number: u32,
        /// Its result.
        outcome: Outcome,
    },
    /// Still waiting at `percent` of the timeout.
    Waiting {
        /// 50, 75 or 90.
        percent: u32,
        /// Time since start.
        elapsed: Duration,
        /// The last probe's result.
        last_probe: Option<String>,
    },
    /// Decided.
    Done(Verdict),
}

/// Where a waiter sends its reports: false when nobody listens any more.
pub type Reporter<'a> = &'a dyn Fn(Report) -> bool;

/// Wait for one service. Returns when it is decided (after reporting [`Report::Done`]), when
/// `inbox` gets [`Wake::Stop`] or is disconnected, or when the reporter is gone.
///
/// `lag` is how old the `started` record already was when read: the deadline counts from the
/// record's time, measured from here on with the monotonic clock. With `exit_events`, an exit
/// of the service's process arrives as [`Wake::Exited`]; without, it is polled for.
pub fn wait(
    started: &Started,
    lag: Duration,
    inbox: &Receiver<Wake>,
    exit_events: bool,
    report: Reporter<'_>,
) {
    let now = Instant::now();
    let begin = now.checked_sub(lag).unwrap_or(now);
    let timeout = Duration::from_millis(started.timeout_ms);
    let deadline = begin + timeout;
    let start_period_end = begin + Duration::from_millis(started.health.start_period_ms);
    if crate::containers::is_container(started) {
        return crate::containers::wait(started, begin, inbox, report);
    }
    // A one-shot job is not probed: its exit decides.
    let one_shot = started.health.check == Check::Completed;
    let prober = if one_shot {
        if started.pid.is_none() {
            let message = "a one-shot job needs its process id (x-hub.run) or its container in the started record".to_owned();
            report(Report::Done(Verdict::probe_error(begin.elapsed(), message)));
            return;
        }
        None
    } else {
        let target = Target {
            service: started.service.clone(),
            container: started.container.clone(),
            working_dir: started.working_dir.clone(),
            environment: started.environment.clone(),
        };
        let probe_timeout = Duration::from_millis(started.health.probe_timeout_ms);
        match Prober::new(&started.health.check, &target, probe_timeout) {
            Ok(prober) => Some(prober),
            Err(message) => {
                report(Report::Done(Verdict::probe_error(begin.elapsed(), message)));
                return;
            }
        }
    };
    let mut schedule = Schedule::new(Duration::from_millis(started.health.interval_ms));
    let mut next_probe = if one_shot { deadline } else { now };
    let mut probes = 0u32;
    let mut failures = 0u32;
    let mut last: Option<Outcome> = None;
    let mut warned = 0usize;
    let watch = started.pid.map(process::ExitWatch::new);
    let dead = || watch.as_ref().is_some_and(process::ExitWatch::exited);
    // With exit events, `/proc` is read only once an exit was announced (and before a verdict
    // of healthy); without, at every wake-up.
    let mut exit_announced = false;
    loop {
        if (exit_announced || !exit_events) && dead() {
            report(Report::Done(exited(
                started, begin, probes, failures, &last,
            )));
            return;
        }
        if let Some(prober) = prober.as_ref().filter(|_| Instant::now() >= next_probe) {
            let outcome = prober.probe();
            probes += 1;
            if outcome.is_ok() {
                // A passing probe answered by someone else does not make a dead service healthy.
                let verdict = if dead() {
                    exited(started, begin, probes, failures, &last)
                } else {
                    Verdict::Healthy {
                        ready: begin.elapsed(),
                        probes,
                        failures,
                    }
                };
                report(Report::Done(verdict));
                return;
            }
            if Instant::now() >= start_period_end {
                failures += 1;
            }
            if last.as_ref() != Some(&outcome)
                && !report(Report::Probe {
                    number: probes,
                    outcome: outcome.clone(),
                })
            {
                return;
            }
            last = Some(outcome);
            next_probe = Instant::now() + schedule.next_gap();
        }
        let now = Instant::now();
        // Every threshold passed while still undecided is reported, in order, even when this
        // wake-up came late: the record says the service was still waiting at that point.
        while let Some(percent) = WARN_AT.get(warned).copied() {
            let at = begin + timeout * percent / 100;
            if now < at {
                break;
            }
            warned += 1;
            if at < start_period_end {
                continue;
            }
            let waiting = Report::Waiting {
                percent,
                elapsed: now - begin,
                last_probe: last.as_ref().map(|o| o.detail().to_owned()),
            };
            if !report(waiting) {
                return;
            }
        }
        if now >= deadline {
            let elapsed = now - begin;
            let last_probe = last.as_ref().map(|o| o.detail().to_owned());
            let message = match &last_probe {
                Some(last) => format!(
                    "timed out after {} (last probe: {last})",
                    duration::human(elapsed)
                ),
                None => format!("timed out after {}", duration::human(elapsed)),
            };
            report(Report::Done(Verdict::Unhealthy {
                reason: Reason::Timeout,
                elapsed,
                probes,
                failures,
                last_probe,
                exit_status: None,
                log_tail: None,
                message,
            }));
            return;
        }
        let mut wake = next_probe.min(deadline);
        if let Some(percent) = WARN_AT.get(warned) {
            wake = wake.min(begin + timeout * *percent / 100);
        }
        if started.pid.is_some() && !exit_events {
            wake = wake.min(now + LIVENESS_EVERY);
        }
        match inbox.recv_timeout(wake.saturating_duration_since(now)) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(Wake::Exited) => exit_announced = true,
            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The verdict for a process that exited: its status (from the exit file) and its log's tail;
/// healthy for a one-shot job that exited 0.
fn exited(
    started: &Started,
    begin: Instant,
    probes: u32,
    failures: u32,
    last: &Option<Outcome>,
) -> Verdict {
    let elapsed = begin.elapsed();
    let exit_status = started
        .exit_file
        .as_deref()
        .and_then(|path| read_exit_file(path, started.ts));
    if started.health.check == Check::Completed && exit_status == Some(0) {
        return Verdict::Healthy {
            ready: elapsed,
            probes,
            failures,
        };
    }
    let log_tail = started.log.as_deref().map(hub::logheader::tail);
    let took = duration::human(elapsed);
    let message = match exit_status {
        Some(status) if status > 128 => {
            format!("killed by signal {} after {took}", status - 128)
        }
        Some(0) => format!(
            "exited with status 0 after {took} — {}",
            hub::codes::EXITED_0_HINT
        ),
        Some(status) => match hub::codes::cannot_succeed(status) {
            Some(why) => format!("exited with status {status} after {took} ({why})"),
            None => format!("exited with status {status} after {took}"),
        },
        None => format!("exited after {took}"),
    };
    Verdict::Unhealthy {
        reason: Reason::Exited,
        elapsed,
        probes,
        failures,
        last_probe: last.as_ref().map(|o| o.detail().to_owned()),
        exit_status,
        log_tail,
        message,
    }
}

/// Read the exit status `hub-start` writes once it has reaped the process, waiting a little
/// for it (a zombie is seen before its parent reaps it). A file older than the `started`
/// record (less a margin for clock granularity) is a previous attempt's and is ignored.
fn read_exit_file(path: &str, started_ts: Option<u64>) -> Option<i32> {
    let give_up = Instant::now() + EXIT_FILE_WAIT;
    loop {
        if let Some(status) = exit_status_in(path, started_ts) {
            return Some(status);
        }
        if Instant::now() >= give_up {
            return None;
        }
        std::thread::sleep(EXIT_FILE_POLL);
    }
}

fn exit_status_in(path: &str, started_ts: Option<u64>) -> Option<i32> {
    let file = std::fs::File::open(path).ok()?;
    if let (Some(ts), Ok(modified)) = (started_ts, file.metadata().and_then(|m| m.modified())) {
        let modified_ms = modified
            .duration_since(std::time::UNIX_EPOCH)
            .map(duration::to_ms)
            .unwrap_or(0);
        if modified_ms + 500 < ts {
            return None;
        }
    }
    let mut text = String::new();
    file.take(64).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Start a waiter thread for `started`; its reports go to `events` through `wrap`.
pub fn spawn<E: Send + 'static>(
    started: Started,
    lag: Duration,
    inbox: Receiver<Wake>,
    exit_events: bool,
    events: Sender<E>,
    wrap: impl Fn(Report) -> E + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("wait-{}", started.service))
        .spawn(move || {
            let report = |r: Report| events.send(wrap(r)).is_ok();
            wait(&started, lag, &inbox, exit_events, &report);
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_left() {
        let mut started: Started = serde_json::from_value(serde_json::json!({
            "service": "a", "class": "core", "timeout_ms": 1,
            "health": {"kind": "none", "interval_ms": 1, "probe_timeout_ms": 1, "start_period_ms": 0},
            "attempt": 1, "max_attempts": 3
        }))
        .unwrap();
        assert!(started.attempts_left());
        started.attempt = 3;
        assert!(!started.attempts_left());
        started.max_attempts = 0;
        assert!(started.attempts_left());
    }
}
