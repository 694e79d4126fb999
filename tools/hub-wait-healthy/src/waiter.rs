//! One service's wait: probe on the growing schedule, watch its process, warn at 50/75/90%, and
//! decide healthy or unhealthy. Runs on its own thread and reports through a channel, so the
//! main thread alone writes records and log lines.

use crate::exits::Wake;
use hub::duration;
use hub::probe::{Outcome, Prober, Schedule, Target};
use hub::process;
use hub::records::Check;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// Without pidfds, how often a `run` service's process is checked between probes.
pub const LIVENESS_EVERY: Duration = Duration::from_millis(50);
/// How long a process seen dead is waited for `hub-start`'s `exited` record (it reaps, then
/// writes it at once: this only bounds a lost record).
const EXIT_RECORD_WAIT: Duration = Duration::from_secs(1);
/// The percentages of the timeout at which a still-waiting service is reported.
pub const WARN_AT: [u32; 3] = [50, 75, 90];

/// A `started` record as read: the typed record and its envelope (the deadline counts from
/// its `ts`).
#[derive(Debug, Clone)]
pub struct Started {
    /// When the record was written (ms since the epoch).
    pub ts: Option<u64>,
    /// The run it belongs to.
    pub run_id: Option<String>,
    /// The record.
    pub record: hub::records::Started,
}

impl std::ops::Deref for Started {
    type Target = hub::records::Started;
    fn deref(&self) -> &hub::records::Started {
        &self.record
    }
}

/// Why a service is unhealthy.
pub use hub::records::UnhealthyReason as Reason;

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
            service: started.of.service.clone(),
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
    // hub-start's own child: its exit comes as an `exited` record, with its status.
    let tracked = started.exit_record && started.pid.is_some();
    // With exit events, `/proc` is read only once an exit was announced (and before a verdict
    // of healthy); without, at every wake-up.
    let mut exit_announced = false;
    let mut exit_status = None;
    loop {
        if (tracked && exit_announced) || (!tracked && (exit_announced || !exit_events) && dead()) {
            report(Report::Done(exited(
                started,
                begin,
                (probes, failures),
                &last,
                exit_status,
            )));
            return;
        }
        if let Some(prober) = prober.as_ref().filter(|_| Instant::now() >= next_probe) {
            let outcome = prober.probe();
            probes += 1;
            if outcome.is_ok() {
                // A passing probe answered by someone else does not make a dead service healthy.
                let verdict = if dead() {
                    if tracked {
                        exit_status = exit_record(inbox).or(exit_status);
                    }
                    exited(started, begin, (probes, failures), &last, exit_status)
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
        if started.pid.is_some() && !exit_events && !tracked {
            wake = wake.min(now + LIVENESS_EVERY);
        }
        match inbox.recv_timeout(wake.saturating_duration_since(now)) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(Wake::Exited(status)) => {
                exit_announced = true;
                exit_status = status.or(exit_status);
            }
            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// A process hub-start launched was seen dead: its `exited` record follows at once (hub-start
/// reaps it, then writes it). Its status, unless it does not come in [`EXIT_RECORD_WAIT`].
fn exit_record(inbox: &Receiver<Wake>) -> Option<i32> {
    let give_up = Instant::now() + EXIT_RECORD_WAIT;
    loop {
        match inbox.recv_timeout(give_up.saturating_duration_since(Instant::now())) {
            Ok(Wake::Exited(Some(status))) => return Some(status),
            Ok(Wake::Exited(None)) => {}
            Ok(Wake::Stop) | Err(_) => return None,
        }
    }
}

/// The verdict for a process that exited: its status (from hub-start's `exited` record, when
/// it is hub-start's child) and its log's tail; healthy for a one-shot job that exited 0.
fn exited(
    started: &Started,
    begin: Instant,
    (probes, failures): (u32, u32),
    last: &Option<Outcome>,
    exit_status: Option<i32>,
) -> Verdict {
    let elapsed = begin.elapsed();
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
        .name(format!("wait-{}", started.of.service))
        .spawn(move || {
            let report = |r: Report| events.send(wrap(r)).is_ok();
            wait(&started, lag, &inbox, exit_events, &report);
        })
        .map(|_| ())
}
