//! Container services: their health comes from the engine, followed through `docker events`
//! by [`hub::container::wait_healthy`], not from a probe loop of ours. This module runs that
//! wait on a helper thread so the waiter can still be stopped, and turns its outcome into a
//! verdict like any other service's.

use crate::waiter::{Reason, Report, Started, Verdict, WARN_AT};
use hub::container::{self, ComposeCmd, ContainerCheck, Outcome, WaitOptions};
use hub::records::Check;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Where a container wait sends its reports: false when nobody listens any more.
pub type Reporter<'a> = &'a dyn Fn(Report) -> bool;

/// Sent to a container wait to stop it (superseded, or the tool is stopping).
pub struct Stop;

/// `--compose-cmd`, set once by `run`.
pub static COMPOSE_CMD: OnceLock<Option<String>> = OnceLock::new();

/// How often the waiter looks for a stop request while the engine wait runs.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// Is this service's wait one for the container backend? (A one-shot job may be a container
/// or a process.)
pub fn is_container(started: &Started) -> bool {
    match started.health.check {
        Check::Container { .. } | Check::Exec { .. } => true,
        Check::Completed => started.container.is_some(),
        _ => false,
    }
}

/// Start a thread waiting for container service `started` (whose record was `lag` old when
/// read); its reports go to `events` through `wrap`, until it is decided or `inbox` says stop.
pub fn spawn<E: Send + 'static>(
    started: Started,
    lag: Duration,
    inbox: Receiver<Stop>,
    events: std::sync::mpsc::Sender<E>,
    wrap: impl Fn(Report) -> E + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("wait-{}", started.of.service))
        .spawn(move || {
            let now = Instant::now();
            let begin = now.checked_sub(lag).unwrap_or(now);
            let report = |r: Report| events.send(wrap(r)).is_ok();
            wait(&started, begin, &inbox, &report);
        })
        .map(|_| ())
}

/// Wait for a container service, reporting as a local service's [`crate::waiter::Wait`] does.
fn wait(started: &Started, begin: Instant, inbox: &Receiver<Stop>, report: Reporter<'_>) {
    let probe_error = |message: String| {
        report(Report::Done(Verdict::probe_error(begin.elapsed(), message)));
    };
    let Some(id) = started.container.clone() else {
        return probe_error("the started record names no container".into());
    };
    let explicit = COMPOSE_CMD.get().cloned().flatten();
    let cancel = Arc::new(AtomicBool::new(false));
    let cmd = match ComposeCmd::detect(explicit.as_deref()) {
        Ok(cmd) => cmd.with_cancel(cancel.clone()),
        Err(e) => return probe_error(e.to_string()),
    };
    let check = match &started.health.check {
        Check::Exec { test } => ContainerCheck::Exec {
            test: test.clone(),
            interval: Duration::from_millis(started.health.interval_ms),
            probe_timeout: Duration::from_millis(started.health.probe_timeout_ms),
        },
        Check::Container { grace_ms } => ContainerCheck::Engine {
            grace: Duration::from_millis(*grace_ms),
        },
        Check::Completed => ContainerCheck::Completed,
        _ => return probe_error("not a container check".into()),
    };
    let timeout = Duration::from_millis(started.timeout_ms);
    let deadline = begin + timeout;
    let options = WaitOptions {
        check,
        timeout: deadline.saturating_duration_since(Instant::now()),
        log_lines: hub::logheader::TAIL_LINES,
    };
    let (done, result) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("engine-{}", started.of.service))
        .spawn(move || {
            let _ = done.send(container::wait_healthy(&cmd, &id, &options));
        });
    if let Err(e) = spawned {
        return probe_error(format!("cannot start a thread: {e}"));
    }
    let mut warned = 0usize;
    loop {
        match result.recv_timeout(STOP_CHECK) {
            Ok(outcome) => {
                if let Some(verdict) = verdict(outcome, begin) {
                    report(Report::Done(verdict));
                }
                return;
            }
            Err(RecvTimeoutError::Disconnected) => {
                return probe_error("the engine wait ended without an answer".into());
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        match inbox.try_recv() {
            Ok(Stop) | Err(TryRecvError::Disconnected) => {
                cancel.store(true, Ordering::SeqCst);
                return;
            }
            Err(TryRecvError::Empty) => {}
        }
        let now = Instant::now();
        while let Some(percent) = WARN_AT.get(warned).copied() {
            if now < begin + timeout * percent / 100 {
                break;
            }
            warned += 1;
            let waiting = Report::Waiting {
                percent,
                elapsed: now - begin,
                last_probe: None,
            };
            if !report(waiting) {
                cancel.store(true, Ordering::SeqCst);
                return;
            }
        }
    }
}

/// The engine's outcome as a verdict; `None` when the wait was cancelled.
fn verdict(outcome: hub::Result<Outcome>, begin: Instant) -> Option<Verdict> {
    let elapsed = begin.elapsed();
    Some(match outcome {
        Ok(Outcome::Healthy { probes, .. }) => Verdict::Healthy {
            ready: elapsed,
            probes,
            failures: 0,
        },
        Ok(Outcome::Exited {
            exit_code,
            oom_killed,
            log_tail,
        }) => {
            let status =
                exit_code.map_or("an unknown status".to_owned(), |c| format!("status {c}"));
            let oom = if oom_killed {
                " (killed by the OOM killer)"
            } else {
                ""
            };
            Verdict::Unhealthy {
                reason: Reason::Exited,
                elapsed,
                probes: 0,
                failures: 0,
                last_probe: None,
                exit_status: exit_code,
                log_tail: Some(log_tail),
                message: format!(
                    "container exited with {status}{oom} after {}",
                    hub::duration::human(elapsed)
                ),
            }
        }
        Ok(Outcome::TimedOut { last_state, probes }) => Verdict::Unhealthy {
            reason: Reason::Timeout,
            elapsed,
            probes,
            failures: probes,
            last_probe: Some(last_state.clone()),
            exit_status: None,
            log_tail: None,
            message: format!(
                "timed out after {} ({last_state})",
                hub::duration::human(elapsed)
            ),
        },
        Ok(Outcome::Cancelled) => return None,
        Err(e) => Verdict::probe_error(elapsed, e.to_string()),
    })
}
