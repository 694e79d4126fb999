//! A container service's health, decided from what the engine says: the state machine that
//! turns `docker events` and `docker inspect` answers (and, for exec checks, `docker exec`
//! probes) into healthy, exited or timed out. It runs no docker command itself: its driver
//! does ([`wait_healthy`] for one container, or one loop for many sharing a single event
//! stream and batched inspects, as `hub-wait-healthy` does), so following a hundred containers
//! costs one `docker events` and one `docker inspect` per burst of events, not one of each per
//! container. The docker CLI calls are in [`crate::container`].
//!
//! Rules: with a healthcheck, healthy when the engine says `healthy`; without one, healthy
//! once it has run for the grace period (counted again from each restart); exited or dead
//! means failed at once, with its exit code and log tail; restarting or `unhealthy` is not
//! final until the deadline. A one-shot job ([`ContainerCheck::Completed`]) is healthy when it
//! exits 0 and failed on any other exit. Every event only means "look again": the next
//! `docker inspect` decides, so a stale or duplicated event can never mislead.

use crate::command::CommandSpec;
use crate::container::{
    self, ComposeCmd, ContainerEvent, ContainerState, ContainerWatch, ProbeResult,
};
use crate::{Error, Result};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant, SystemTime};

/// The first gap between two exec probes; it doubles up to the check's interval.
const FIRST_PROBE_GAP: Duration = Duration::from_millis(50);

/// How a container service's health is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerCheck {
    /// The engine's healthcheck status; without a healthcheck, running for `grace` (counted
    /// from the run's `StartedAt`, so a container that already ran that long passes at once).
    Engine {
        /// How long a container without a healthcheck must run to count as healthy.
        grace: Duration,
    },
    /// The compose healthcheck test run with `docker exec` on hub's schedule (first probe at
    /// once, gaps doubling from 50 ms up to `interval`); the engine's own `healthy` counts too.
    Exec {
        /// The test, as a command run inside the container.
        test: CommandSpec,
        /// The largest gap between two probes.
        interval: Duration,
        /// How long one probe may run.
        probe_timeout: Duration,
    },
    /// A one-shot job: healthy when it has exited 0 (compose's
    /// `service_completed_successfully`); any other final exit fails it.
    Completed,
}

/// What made a container count as healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthyBy {
    /// The engine's healthcheck reported `healthy`.
    Healthcheck,
    /// No healthcheck: it ran for the grace period.
    Grace,
    /// An exec probe passed.
    ExecProbe,
    /// A one-shot job exited 0.
    Completed,
}

/// How [`wait_healthy`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Healthy.
    Healthy {
        /// What decided it.
        by: HealthyBy,
        /// Exec probes run (0 for the engine's check).
        probes: u32,
    },
    /// It exited or died and will not restart (final at once), or it was removed.
    Exited {
        /// Its exit code; `None` when it was removed before its code was known.
        exit_code: Option<i32>,
        /// True when the OOM killer ended it.
        oom_killed: bool,
        /// The last lines of `docker logs`.
        log_tail: Vec<String>,
    },
    /// The deadline passed first (a container restarting under its restart policy, or
    /// `unhealthy`, ends here: neither is final before the deadline).
    TimedOut {
        /// Its last known state, one line (with the last probe's result for exec checks).
        last_state: String,
        /// Exec probes run.
        probes: u32,
    },
    /// The cancel flag was set.
    Cancelled,
}

/// What [`wait_healthy`] waits for, and how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitOptions {
    /// The check.
    pub check: ContainerCheck,
    /// The deadline, from the call.
    pub timeout: Duration,
    /// How many lines of `docker logs` an [`Outcome::Exited`] carries.
    pub log_lines: usize,
}

/// What a [`Tracker`]'s driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Look at the container (`docker inspect`) and give the answer to [`Tracker::inspected`].
    Inspect,
    /// Run one exec probe (the check's test) and give its result to [`Tracker::probed`].
    Probe,
    /// It exited for good: read its log tail ([`container::logs_tail`]) for
    /// [`Outcome::Exited`].
    ReadLogs {
        /// Its exit code.
        exit_code: i32,
        /// True when the OOM killer ended it.
        oom_killed: bool,
    },
    /// Decided.
    Done(Outcome),
    /// Nothing to do before the next event or this time.
    Until(Instant),
}

/// One container's wait, as a state machine fed with events, inspect answers and probe
/// results; it never blocks and runs no command.
#[derive(Debug, Clone)]
pub struct Tracker {
    check: ContainerCheck,
    deadline: Instant,
    /// An event came (or nothing was looked at yet): inspect before deciding anything.
    look_again: bool,
    /// The exit code the last `die` event carried: inspect no longer knows a removed one's.
    last_exit: Option<i32>,
    last: Option<ContainerState>,
    /// (StartedAt, when that run came up on our clock): the grace period counts from there.
    up_since: Option<(String, Instant)>,
    probes: u32,
    last_probe: Option<ProbeResult>,
    next_probe: Instant,
    probe_gap: Duration,
    probing: bool,
    decided: Option<Step>,
}

impl Tracker {
    /// A wait for `check`, until `deadline`.
    pub fn new(check: ContainerCheck, deadline: Instant) -> Tracker {
        Tracker {
            check,
            deadline,
            look_again: true,
            last_exit: None,
            last: None,
            up_since: None,
            probes: 0,
            last_probe: None,
            next_probe: Instant::now(),
            probe_gap: FIRST_PROBE_GAP,
            probing: false,
            decided: None,
        }
    }

    /// True when it needs a `docker inspect` before anything else: a driver following many
    /// containers gathers these into one call.
    pub fn wants_inspect(&self) -> bool {
        self.decided.is_none() && self.look_again
    }

    /// The check being waited for.
    pub fn check(&self) -> &ContainerCheck {
        &self.check
    }

    /// An event about this container: look again. `Err` (the reason) when the stream ended.
    pub fn event(&mut self, event: ContainerEvent) -> std::result::Result<(), String> {
        match event {
            ContainerEvent::Died {
                exit_code: Some(code),
            } => self.last_exit = Some(code),
            ContainerEvent::StreamEnded(why) => return Err(why),
            _ => {}
        }
        self.look_again = true;
        Ok(())
    }

    /// What `docker inspect` says now (`None`: no such container).
    pub fn inspected(&mut self, state: Option<ContainerState>) {
        self.look_again = false;
        let Some(state) = state else {
            self.decided = Some(Step::Done(Outcome::Exited {
                exit_code: self.last_exit,
                oom_killed: false,
                log_tail: Vec::new(),
            }));
            return;
        };
        if state.is_final() {
            self.decided = Some(
                if self.check == ContainerCheck::Completed && state.exit_code == 0 {
                    Step::Done(Outcome::Healthy {
                        by: HealthyBy::Completed,
                        probes: self.probes,
                    })
                } else {
                    Step::ReadLogs {
                        exit_code: state.exit_code,
                        oom_killed: state.oom_killed,
                    }
                },
            );
            return;
        }
        let judged_by_health = self.check != ContainerCheck::Completed;
        if judged_by_health
            && state.is_up()
            && state.health.as_ref().is_some_and(|h| h.status == "healthy")
        {
            self.decided = Some(Step::Done(Outcome::Healthy {
                by: HealthyBy::Healthcheck,
                probes: self.probes,
            }));
            return;
        }
        self.up_since = match (state.is_up(), self.up_since.take()) {
            (true, Some((started_at, seen))) if started_at == state.started_at => {
                Some((started_at, seen))
            }
            (true, _) => Some((state.started_at.clone(), up_instant(&state.started_at))),
            (false, _) => None,
        };
        self.last = Some(state);
    }

    /// An exec probe's result, at `now`.
    pub fn probed(&mut self, result: ProbeResult, now: Instant) {
        self.probing = false;
        self.probes += 1;
        match result {
            ProbeResult::Passed => {
                self.decided = Some(Step::Done(Outcome::Healthy {
                    by: HealthyBy::ExecProbe,
                    probes: self.probes,
                }));
            }
            ProbeResult::Cancelled => self.decided = Some(Step::Done(Outcome::Cancelled)),
            other => {
                self.last_probe = Some(other);
                self.next_probe = now + self.probe_gap;
                if let ContainerCheck::Exec { interval, .. } = &self.check {
                    self.probe_gap = (self.probe_gap * 2).min(*interval);
                }
                // A failed probe may mean it died: the events tell, and the next inspect.
            }
        }
    }

    /// What to do next, at `now`.
    pub fn next(&mut self, now: Instant) -> Step {
        if let Some(step) = self.decided.take() {
            return step;
        }
        if self.look_again {
            return Step::Inspect;
        }
        let mut wake = self.deadline;
        match &self.check {
            ContainerCheck::Engine { grace } => {
                let no_healthcheck = self.last.as_ref().is_some_and(|s| s.health.is_none());
                if let (true, Some((_, seen))) = (no_healthcheck, &self.up_since) {
                    let healthy_at = *seen + *grace;
                    if now >= healthy_at {
                        return Step::Done(Outcome::Healthy {
                            by: HealthyBy::Grace,
                            probes: self.probes,
                        });
                    }
                    wake = wake.min(healthy_at);
                }
            }
            ContainerCheck::Exec { .. } => {
                if self.probing {
                    // The deadline is checked between probes, as one waits for its answer
                    // (which wakes the driver: this is only a bound).
                    return Step::Until(wake.max(now + FIRST_PROBE_GAP));
                }
                if self.up_since.is_some() {
                    if now >= self.next_probe {
                        self.probing = true;
                        return Step::Probe;
                    }
                    wake = wake.min(self.next_probe);
                }
            }
            // Only its exit, which arrives as an event, decides.
            ContainerCheck::Completed => {}
        }
        if now >= self.deadline {
            let mut last_state = self
                .last
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), ToString::to_string);
            if let Some(probe) = &self.last_probe {
                last_state.push_str(&format!("; last probe: {probe}"));
            }
            return Step::Done(Outcome::TimedOut {
                last_state,
                probes: self.probes,
            });
        }
        Step::Until(wake)
    }
}

/// Wait until container `id` is healthy, has exited, or the deadline passes, by the rules
/// above. Driven by one `docker events` for this container: each event (and the start)
/// triggers one `docker inspect`; between events nothing is polled except exec probes, when
/// asked for.
pub fn wait_healthy(cmd: &ComposeCmd, id: &str, options: &WaitOptions) -> Result<Outcome> {
    match follow_until_decided(cmd, id, options) {
        // A docker call cut short by the cancel flag is a cancelled wait, not an error.
        Err(_) if cmd.cancelled() => Ok(Outcome::Cancelled),
        decided => decided,
    }
}

/// [`wait_healthy`]'s loop; its errors may be cancellations.
fn follow_until_decided(cmd: &ComposeCmd, id: &str, options: &WaitOptions) -> Result<Outcome> {
    let mut tracker = Tracker::new(options.check.clone(), Instant::now() + options.timeout);
    let watch = ContainerWatch::start(cmd, id)?;
    loop {
        if cmd.cancelled() {
            return Ok(Outcome::Cancelled);
        }
        // Everything already reported, then one look at the truth.
        while let Ok(event) = watch.events().try_recv() {
            tracker.event(event).map_err(|why| stream_ended(id, &why))?;
        }
        let now = Instant::now();
        match tracker.next(now) {
            Step::Inspect => tracker.inspected(container::inspect(cmd, id)?),
            Step::Probe => {
                if let ContainerCheck::Exec {
                    test,
                    probe_timeout,
                    ..
                } = &options.check
                {
                    let result = container::exec_probe(cmd, id, test, *probe_timeout)?;
                    tracker.probed(result, Instant::now());
                }
            }
            Step::ReadLogs {
                exit_code,
                oom_killed,
            } => {
                return Ok(Outcome::Exited {
                    exit_code: Some(exit_code),
                    oom_killed,
                    log_tail: container::logs_tail(cmd, id, options.log_lines)?,
                });
            }
            Step::Done(outcome) => return Ok(outcome),
            Step::Until(wake) => {
                let mut wait = wake.saturating_duration_since(now);
                if cmd.is_cancellable() {
                    wait = wait.min(container::CANCEL_CHECK);
                }
                match watch.events().recv_timeout(wait) {
                    Ok(event) => tracker.event(event).map_err(|why| stream_ended(id, &why))?,
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(stream_ended(id, "the event reader stopped"));
                    }
                }
            }
        }
    }
}

/// The error for a container whose event stream stopped (the engine went away): `why` is the
/// last line `docker events` printed.
pub fn stream_ended(id: &str, why: &str) -> Error {
    Error::input(format!(
        "docker events for container {} stopped: {why}; is the Docker engine still running (`docker info`)?",
        container::short_id(id)
    ))
}

/// When a run that started at `started_at` (the engine's RFC 3339 time) began, on our clock:
/// a container that has run for a while before the wait counts that time toward its grace.
/// Now, when the time cannot be read or lies in the future (another clock).
fn up_instant(started_at: &str) -> Instant {
    let now = Instant::now();
    humantime::parse_rfc3339(started_at)
        .ok()
        .and_then(|started| SystemTime::now().duration_since(started).ok())
        .and_then(|ran| now.checked_sub(ran))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_started_long_ago_has_used_its_grace() {
        let long_ago = up_instant("2000-01-01T00:00:00.123456789Z");
        assert!(long_ago.elapsed() > Duration::from_secs(3600));
        let unreadable = up_instant("0001-01-01T00:00:00Z x");
        assert!(unreadable.elapsed() < Duration::from_secs(3600));
    }

    fn state(json: &str) -> Option<ContainerState> {
        Some(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn an_event_means_look_again_and_inspect_decides() {
        let check = ContainerCheck::Engine {
            grace: Duration::from_secs(3600),
        };
        let mut tracker = Tracker::new(check, Instant::now() + Duration::from_secs(3600));
        assert_eq!(tracker.next(Instant::now()), Step::Inspect);
        tracker.inspected(state(
            r#"{"Status":"running","Running":true,"StartedAt":"2099-01-01T00:00:00Z","Health":{"Status":"starting"}}"#,
        ));
        assert!(matches!(tracker.next(Instant::now()), Step::Until(_)));
        // A (possibly stale) event: nothing is believed before the next inspect.
        tracker
            .event(ContainerEvent::Health("healthy".into()))
            .unwrap();
        assert_eq!(tracker.next(Instant::now()), Step::Inspect);
        tracker
            .event(ContainerEvent::Died { exit_code: Some(3) })
            .unwrap();
        tracker.inspected(state(r#"{"Status":"exited","ExitCode":3}"#));
        assert_eq!(
            tracker.next(Instant::now()),
            Step::ReadLogs {
                exit_code: 3,
                oom_killed: false
            }
        );
        let mut gone = Tracker::new(ContainerCheck::Completed, Instant::now());
        gone.event(ContainerEvent::Died { exit_code: Some(0) })
            .unwrap();
        gone.inspected(None);
        assert!(matches!(
            gone.next(Instant::now()),
            Step::Done(Outcome::Exited {
                exit_code: Some(0),
                ..
            })
        ));
        assert_eq!(
            tracker.event(ContainerEvent::StreamEnded("gone".into())),
            Err("gone".into())
        );
    }

    #[test]
    fn exec_probes_wait_for_the_container_and_back_off() {
        let check = ContainerCheck::Exec {
            test: CommandSpec::Shell("true".into()),
            interval: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(1),
        };
        let mut tracker = Tracker::new(check, Instant::now() + Duration::from_secs(3600));
        tracker.next(Instant::now());
        tracker.inspected(state(r#"{"Status":"created"}"#));
        // Not up yet: no probe.
        assert!(matches!(tracker.next(Instant::now()), Step::Until(_)));
        tracker.event(ContainerEvent::Started).unwrap();
        tracker.next(Instant::now());
        tracker.inspected(state(
            r#"{"Status":"running","Running":true,"StartedAt":"2099-01-01T00:00:00Z"}"#,
        ));
        assert_eq!(tracker.next(Instant::now()), Step::Probe);
        let now = Instant::now();
        let failed = ProbeResult::Failed {
            exit_status: 1,
            output: String::new(),
        };
        tracker.probed(failed, now);
        assert_eq!(tracker.next(now), Step::Until(now + FIRST_PROBE_GAP));
        assert_eq!(tracker.next(now + FIRST_PROBE_GAP), Step::Probe);
        tracker.probed(ProbeResult::Passed, now);
        assert!(matches!(
            tracker.next(now),
            Step::Done(Outcome::Healthy {
                by: HealthyBy::ExecProbe,
                probes: 2
            })
        ));
    }
}
