//! One service's wait: probe on the growing schedule, watch its process, warn at 50/75/90%, and
//! decide healthy or unhealthy. A wait is a state machine ([`Wait`]) that never blocks: the
//! main thread drives every wait from its timers and events, and alone writes records and log
//! lines, so waiting on a thousand services costs no thread of its own.

use hub::duration;
use hub::probe::{Outcome, Prober, Schedule, Target};
use hub::process;
use hub::records::Check;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How early a probe may run: one due within this is run now, so that a quiet outcome
/// collected one gap after its probe (see [`Wait::overdue`]) starts the next probe at once
/// instead of setting a timer for a few microseconds later.
const PROBE_EARLY: Duration = Duration::from_millis(1);
/// Without pidfds, how often a `run` service's process is checked between probes.
pub const LIVENESS_EVERY: Duration = Duration::from_millis(50);
/// How long a process seen dead is waited for `hub-start`'s `exited` record (it reaps, then
/// writes it at once: this only bounds a lost record).
const EXIT_RECORD_WAIT: Duration = Duration::from_secs(1);
/// A check-less process is called healthy only once it has lived this long since its start:
/// one that exits at once (`run: "echo seeded"`, a job not declared as one) was never up, and
/// is judged by its exit instead of racing the end of the deploy.
pub const SETTLE_WITHOUT_CHECK: Duration = Duration::from_millis(100);
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
        /// Backend `swarm`: the tasks that count.
        tasks: Vec<String>,
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

/// What a wait needs from its driver next.
#[derive(Debug)]
pub enum Next {
    /// Decided: the last report given was [`Report::Done`].
    Done,
    /// Still waiting.
    Continue {
        /// A probe to run now (due at that time), whose outcome goes to [`Wait::probed`].
        probe: Option<(Instant, Arc<Prober>)>,
        /// Call [`Wait::advance`] again at this time, unless news comes first.
        wake: Instant,
    },
}

/// One service's wait, as a state machine: it never blocks, so one thread drives every wait
/// (timers for its probes and thresholds, events for probe outcomes and exits) and the probes
/// themselves run on a fixed pool ([`crate::pool`]).
pub struct Wait {
    begin: Instant,
    timeout: Duration,
    deadline: Instant,
    start_period_end: Instant,
    /// None for a one-shot job: its exit decides.
    prober: Option<Arc<Prober>>,
    schedule: Schedule,
    /// When the next probe is due; None while one runs (or for a one-shot job).
    next_probe: Option<Instant>,
    /// While a probe runs: when its outcome is looked for, if it is a quiet one (the same
    /// failure as the last), which the pool leaves in a mailbox instead of waking the loop.
    collect_at: Option<Instant>,
    probes: u32,
    failures: u32,
    last: Option<Outcome>,
    /// How many of [`WARN_AT`] are behind us.
    warned: usize,
    watch: Option<process::ExitWatch>,
    /// hub-start's own child: its exit comes as an `exited` record, with its status.
    tracked: bool,
    /// An exit of an untracked process arrives as an event (pidfd); without, it is polled for.
    exit_events: bool,
    exit_announced: bool,
    exit_status: Option<i32>,
    /// A passing probe found the process dead: its `exited` record (with the status) is
    /// awaited until then.
    dead_after_pass: Option<Instant>,
    decided: bool,
}

impl Wait {
    /// Begin waiting for `started`. `lag` is how old the `started` record already was when
    /// read: the deadline counts from the record's time, measured from here on with the
    /// monotonic clock. With `exit_events`, an exit of the service's process arrives through
    /// [`Wait::exited`]; without, it is polled for. An error is the verdict: the check cannot
    /// run at all.
    pub fn new(started: &Started, lag: Duration, exit_events: bool) -> Result<Wait, Verdict> {
        let now = Instant::now();
        let begin = now.checked_sub(lag).unwrap_or(now);
        let timeout = Duration::from_millis(started.timeout_ms);
        let deadline = begin + timeout;
        // A one-shot job is not probed: its exit decides.
        let one_shot = started.health.check == Check::Completed;
        let prober = if one_shot {
            if started.pid.is_none() {
                let message = "a one-shot job needs its process id (x-hub.run) or its container in the started record".to_owned();
                return Err(Verdict::probe_error(begin.elapsed(), message));
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
                Ok(prober) => Some(Arc::new(prober)),
                Err(message) => return Err(Verdict::probe_error(begin.elapsed(), message)),
            }
        };
        Ok(Wait {
            begin,
            timeout,
            deadline,
            start_period_end: begin + Duration::from_millis(started.health.start_period_ms),
            next_probe: prober.as_ref().map(|_| {
                if started.health.check == Check::None && started.pid.is_some() {
                    (begin + SETTLE_WITHOUT_CHECK).max(now)
                } else {
                    now
                }
            }),
            collect_at: None,
            prober,
            schedule: Schedule::new(Duration::from_millis(started.health.interval_ms)),
            probes: 0,
            failures: 0,
            last: None,
            warned: 0,
            watch: started.pid.map(process::ExitWatch::new),
            tracked: started.exit_record && started.pid.is_some(),
            exit_events,
            exit_announced: false,
            exit_status: None,
            dead_after_pass: None,
            decided: false,
        })
    }

    fn dead(&self) -> bool {
        self.watch.as_ref().is_some_and(process::ExitWatch::exited)
    }

    fn done(&mut self, verdict: Verdict, reports: &mut Vec<Report>) -> Next {
        self.decided = true;
        reports.push(Report::Done(verdict));
        Next::Done
    }

    fn exited_verdict(&self, started: &Started) -> Verdict {
        exited(
            started,
            self.begin,
            (self.probes, self.failures),
            &self.last,
            self.exit_status,
        )
    }

    /// The last probe's outcome (a probe with the same failure is a quiet one).
    pub fn last(&self) -> Option<&Outcome> {
        self.last.as_ref()
    }

    /// True when the running probe's outcome was looked for and is not in yet: a quiet outcome
    /// must then wake the loop.
    pub fn overdue(&self, now: Instant) -> bool {
        self.collect_at.is_some_and(|at| now >= at)
    }

    /// The service's process exited, with its status when known (hub-start's `exited`
    /// record). Call [`Wait::advance`] next.
    pub fn exited(&mut self, status: Option<i32>) {
        self.exit_announced = true;
        self.exit_status = status.or(self.exit_status);
    }

    /// A probe's outcome (the one [`Next::Continue`] asked for), at `now`.
    pub fn probed(
        &mut self,
        started: &Started,
        outcome: Outcome,
        now: Instant,
        reports: &mut Vec<Report>,
    ) -> Next {
        if self.decided {
            return Next::Done;
        }
        self.collect_at = None;
        self.probes += 1;
        if outcome.is_ok() {
            // A passing probe answered by someone else does not make a dead service healthy.
            if !self.dead() {
                let healthy = Verdict::Healthy {
                    ready: self.begin.elapsed(),
                    probes: self.probes,
                    failures: self.failures,
                    tasks: Vec::new(),
                };
                return self.done(healthy, reports);
            }
            if !self.tracked || self.exit_status.is_some() {
                return self.done(self.exited_verdict(started), reports);
            }
            // hub-start reaps it, then writes its `exited` record at once.
            self.dead_after_pass = Some(now + EXIT_RECORD_WAIT);
            return self.advance(started, now, reports);
        }
        if now >= self.start_period_end {
            self.failures += 1;
        }
        if self.last.as_ref() != Some(&outcome) {
            reports.push(Report::Probe {
                number: self.probes,
                outcome: outcome.clone(),
            });
        }
        self.last = Some(outcome);
        self.next_probe = Some(now + self.schedule.next_gap());
        self.advance(started, now, reports)
    }

    /// Move on at `now`: report what is due (thresholds, the verdict) into `reports`, and
    /// say what is next.
    pub fn advance(&mut self, started: &Started, now: Instant, reports: &mut Vec<Report>) -> Next {
        if self.decided {
            return Next::Done;
        }
        if let Some(give_up) = self.dead_after_pass {
            if self.exit_status.is_some() || now >= give_up {
                return self.done(self.exited_verdict(started), reports);
            }
            return Next::Continue {
                probe: None,
                wake: give_up,
            };
        }
        let tracked = self.tracked;
        if (tracked && self.exit_announced)
            || (!tracked && (self.exit_announced || !self.exit_events) && self.dead())
        {
            return self.done(self.exited_verdict(started), reports);
        }
        let mut probe = None;
        if let (Some(prober), Some(due)) = (&self.prober, self.next_probe)
            && now + PROBE_EARLY >= due
        {
            self.next_probe = None;
            // Its outcome is looked for one gap later, when the next probe would be due.
            self.collect_at = Some(due.max(now) + self.schedule.peek_gap());
            probe = Some((due, prober.clone()));
        }
        // Every threshold passed while still undecided is reported, in order, even when this
        // wake-up came late: the record says the service was still waiting at that point.
        while let Some(percent) = WARN_AT.get(self.warned).copied() {
            let at = self.begin + self.timeout * percent / 100;
            if now < at {
                break;
            }
            self.warned += 1;
            if at < self.start_period_end {
                continue;
            }
            reports.push(Report::Waiting {
                percent,
                elapsed: now - self.begin,
                last_probe: self.last.as_ref().map(|o| o.detail().to_owned()),
            });
        }
        // The deadline is checked between probes, as one waits for its probe's answer: a probe
        // queued or running when it passes is awaited (it is bounded by its own timeout), so a
        // record read late still gets its one probe.
        let probing = self.prober.is_some() && self.next_probe.is_none();
        if now >= self.deadline && probing {
            // Its outcome is wanted now, quiet or not.
            self.collect_at = Some(now);
            let timeout = self.prober.as_ref().map_or(LIVENESS_EVERY, |p| p.timeout());
            return Next::Continue {
                probe,
                wake: now + timeout.max(LIVENESS_EVERY),
            };
        }
        if now >= self.deadline {
            let elapsed = now - self.begin;
            let last_probe = self.last.as_ref().map(|o| o.detail().to_owned());
            let message = match &last_probe {
                Some(last) => format!(
                    "timed out after {} (last probe: {last})",
                    duration::human(elapsed)
                ),
                None => format!("timed out after {}", duration::human(elapsed)),
            };
            let timed_out = Verdict::Unhealthy {
                reason: Reason::Timeout,
                elapsed,
                probes: self.probes,
                failures: self.failures,
                last_probe,
                exit_status: None,
                log_tail: None,
                message,
            };
            return self.done(timed_out, reports);
        }
        let mut wake = self.deadline;
        if let Some(next_probe) = self.next_probe {
            wake = wake.min(next_probe);
        }
        if let Some(collect_at) = self.collect_at.filter(|at| *at > now) {
            wake = wake.min(collect_at);
        }
        if let Some(percent) = WARN_AT.get(self.warned) {
            wake = wake.min(self.begin + self.timeout * *percent / 100);
        }
        if started.pid.is_some() && !self.exit_events && !tracked {
            wake = wake.min(now + LIVENESS_EVERY);
        }
        Next::Continue { probe, wake }
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
            tasks: Vec::new(),
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
