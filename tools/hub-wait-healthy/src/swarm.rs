//! Swarm services (backend `swarm`): one thread polls each stack once per round for every
//! service waited for in it (`hub::swarm::snapshot`), instead of a thread per service. A
//! service is healthy when as many of its tasks as it wants (its replicas, or one per eligible
//! node for a global service) are running and past their healthcheck; a task that failed, was
//! rejected or shut down with an error is one failed attempt, with the engine's error; a
//! service Swarm cannot place fails at once, not at its timeout.

use crate::waiter::{Reason, Report, Started, Verdict, WARN_AT};
use hub::container::ComposeCmd;
use hub::swarm::{self, Assessment, Judge};
use hub::{duration, time};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::{Duration, Instant};

/// What a Swarm wait is told.
pub enum Wake {
    /// Stop waiting (a later attempt, or the tool stopping).
    Stop,
}

/// How long a round waits before looking at the stacks again.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// How many lines of a failed task's output go into its record.
const LOG_LINES: usize = 10;

/// One service waited for.
pub struct Watch {
    /// Its `started` record.
    pub started: Started,
    /// How old the record was when read (the deadline counts from its time).
    pub lag: Duration,
    /// A stop request (a later attempt, or the tool stopping); disconnected counts as one.
    pub stop: Receiver<Wake>,
    /// Where its reports go.
    pub report: Box<dyn Fn(Report) + Send>,
}

/// The one poll thread, started with the first Swarm service.
static WAITS: OnceLock<Option<Sender<Watch>>> = OnceLock::new();

/// Wait for a Swarm service on the shared poll thread. Err when that thread cannot run.
pub fn watch(watch: Watch) -> Result<(), String> {
    let sender = WAITS.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("swarm".into())
            .spawn(move || poll_loop(&rx))
            .ok()
            .map(|_| tx)
    });
    match sender {
        Some(tx) => tx
            .send(watch)
            .map_err(|_| "the Swarm poll thread has stopped".to_owned()),
        None => Err("cannot start the Swarm poll thread".into()),
    }
}

/// A wait in progress.
struct Waiting {
    watch: Watch,
    begin: Instant,
    since_ms: u64,
    polls: u32,
    warned: usize,
    last: Option<String>,
}

impl Waiting {
    fn new(watch: Watch) -> Waiting {
        let now = Instant::now();
        let begin = now.checked_sub(watch.lag).unwrap_or(now);
        let ts = watch.started.ts.unwrap_or_else(time::now_ms);
        // A first attempt also owns a failure from just before its record was written (the
        // release returned, the task failed at once); a later one only what follows its
        // record: the failure that ended the attempt before it was already reported.
        let since_ms = if watch.started.of.attempt <= 1 {
            ts.saturating_sub(1000)
        } else {
            ts
        };
        Waiting {
            watch,
            begin,
            since_ms,
            polls: 0,
            warned: 0,
            last: None,
        }
    }

    fn stack(&self) -> Option<&str> {
        self.watch
            .started
            .compose
            .as_ref()
            .and_then(|c| c.stack.as_deref())
    }

    fn stopped(&self) -> bool {
        matches!(
            self.watch.stop.try_recv(),
            Ok(Wake::Stop) | Err(TryRecvError::Disconnected)
        )
    }
}

fn poll_loop(inbox: &Receiver<Watch>) {
    let mut cmd: Option<Result<ComposeCmd, String>> = None;
    let mut waits: Vec<Waiting> = Vec::new();
    loop {
        if waits.is_empty() {
            match inbox.recv() {
                Ok(watch) => waits.push(Waiting::new(watch)),
                Err(_) => return,
            }
        } else {
            match inbox.recv_timeout(POLL_EVERY) {
                Ok(watch) => waits.push(Waiting::new(watch)),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        while let Ok(watch) = inbox.try_recv() {
            waits.push(Waiting::new(watch));
        }
        waits.retain(|w| !w.stopped());
        let cmd = cmd.get_or_insert_with(|| {
            let explicit = crate::containers::COMPOSE_CMD.get().cloned().flatten();
            ComposeCmd::detect(explicit.as_deref())
                .map(|c| c.with_timeout(Duration::from_secs(30)))
                .map_err(|e| e.to_string())
        });
        let cmd = match cmd {
            Ok(cmd) => cmd.clone(),
            Err(message) => {
                for wait in waits.drain(..) {
                    let verdict = Verdict::probe_error(wait.begin.elapsed(), message.clone());
                    (wait.watch.report)(Report::Done(verdict));
                }
                continue;
            }
        };
        let stacks: BTreeSet<String> = waits
            .iter()
            .filter_map(|w| w.stack().map(str::to_owned))
            .collect();
        let snapshots: BTreeMap<String, Result<swarm::Snapshot, String>> = stacks
            .into_iter()
            .map(|stack| {
                let snap = swarm::snapshot(&cmd, &stack).map_err(|e| e.to_string());
                (stack, snap)
            })
            .collect();
        waits.retain_mut(|wait| !round(wait, &snapshots, &cmd));
    }
}

/// One round for one service: true when it is decided.
fn round(
    wait: &mut Waiting,
    snapshots: &BTreeMap<String, Result<swarm::Snapshot, String>>,
    cmd: &ComposeCmd,
) -> bool {
    wait.polls += 1;
    let started = &wait.watch.started;
    let elapsed = wait.begin.elapsed();
    let Some(stack) = wait.stack() else {
        let verdict = Verdict::probe_error(
            elapsed,
            "a swarm service's started record names no stack (compose.stack)".into(),
        );
        (wait.watch.report)(Report::Done(verdict));
        return true;
    };
    let full = swarm::service_name(stack, &started.of.service);
    let (assessment, failures) = match snapshots.get(stack) {
        Some(Ok(snapshot)) => {
            let judge = Judge {
                check: &started.health.check,
                since_ms: wait.since_ms,
                now_ms: time::now_ms(),
            };
            swarm::assess(snapshot, &full, &judge)
        }
        Some(Err(e)) => (Assessment::Pending(e.clone()), 0),
        None => (Assessment::Pending("not looked at yet".into()), 0),
    };
    let polls = wait.polls;
    let unhealthy =
        |reason, last_probe: String, exit_status, log_tail, message| Verdict::Unhealthy {
            reason,
            elapsed,
            probes: polls,
            failures,
            last_probe: Some(last_probe),
            exit_status,
            log_tail,
            message,
        };
    let verdict = match assessment {
        Assessment::Healthy { tasks } => Some(Verdict::Healthy {
            ready: elapsed,
            probes: polls,
            failures,
            tasks,
        }),
        Assessment::TaskFailed {
            task,
            error,
            exit_code,
        } => {
            let tail = task_logs(cmd, &task);
            let message = format!(
                "task {} {error} after {}",
                short(&task),
                duration::human(elapsed)
            );
            Some(unhealthy(
                Reason::Exited,
                format!("task {}: {error}", short(&task)),
                exit_code,
                tail,
                message,
            ))
        }
        Assessment::Unplaceable(why) => {
            let message = format!("Swarm cannot place its tasks: {why}");
            Some(unhealthy(Reason::Unplaceable, why, None, None, message))
        }
        Assessment::Missing if elapsed > Duration::from_secs(2) => {
            let why = format!("Swarm has no service {full} (removed?)");
            Some(unhealthy(Reason::Exited, why.clone(), None, None, why))
        }
        Assessment::Missing => {
            wait.last = Some(format!("no service {full} yet"));
            None
        }
        Assessment::Pending(summary) => {
            wait.last = Some(summary);
            None
        }
    };
    if let Some(verdict) = verdict {
        (wait.watch.report)(Report::Done(verdict));
        return true;
    }
    let timeout = Duration::from_millis(started.timeout_ms);
    if elapsed >= timeout {
        let last = wait.last.clone().unwrap_or_default();
        let message = format!(
            "timed out after {} (tasks: {last})",
            duration::human(timeout)
        );
        (wait.watch.report)(Report::Done(unhealthy(
            Reason::Timeout,
            last,
            None,
            None,
            message,
        )));
        return true;
    }
    while let Some(percent) = WARN_AT.get(wait.warned).copied() {
        if elapsed.as_millis() * 100 < u128::from(percent) * timeout.as_millis() {
            break;
        }
        wait.warned += 1;
        (wait.watch.report)(Report::Waiting {
            percent,
            elapsed,
            last_probe: wait.last.clone(),
        });
    }
    false
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// The last lines a failed task printed (`docker service logs --tail N TASK`), if any.
fn task_logs(cmd: &ComposeCmd, task: &str) -> Option<Vec<String>> {
    let mut logs = cmd.engine_command();
    logs.args([
        "service",
        "logs",
        "--raw",
        "--no-trunc",
        "--tail",
        &LOG_LINES.to_string(),
        task,
    ]);
    let text = hub::container::run_output(cmd, logs).ok()?;
    let lines: Vec<String> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    (!lines.is_empty()).then_some(lines)
}
