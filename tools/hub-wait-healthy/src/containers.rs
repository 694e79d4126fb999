//! Container services: their health comes from the engine, not from a probe loop of ours. One
//! loop, on one thread, follows every container service being waited for: ONE `docker events`
//! for all of them (started with the first, stopped when none is left), and after each burst of
//! events ONE `docker inspect` for every container the events concern. Each container's wait
//! is a [`hub::container_health::Tracker`]; its exec probes (`docker exec`) run on the probe
//! pool's command lane, so they count against `--max-probe-commands` like any probe command.
//! Verdicts are turned into the same [`Verdict`]s as a local service's.

use crate::pool::{self, Pool};
use crate::waiter::{Reason, Report, Started, Verdict, WARN_AT};
use hub::container::{self, ComposeCmd, ContainerWatch, ProbeResult, TaggedEvent};
use hub::container_health::{self, ContainerCheck, Outcome, Step, Tracker};
use hub::records::Check;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// `--compose-cmd`, set once by `run`.
pub static COMPOSE_CMD: OnceLock<Option<String>> = OnceLock::new();

/// Is this service's wait one for the container backend? (A one-shot job may be a container
/// or a process.)
pub fn is_container(started: &Started) -> bool {
    match started.health.check {
        Check::Container { .. } | Check::Exec { .. } => true,
        Check::Completed => started.container.is_some(),
        _ => false,
    }
}

/// Where the loop sends a wait's reports (by its id): false when nobody listens any more.
pub type Reporter = Box<dyn Fn(u64, Report) -> bool + Send>;

enum Msg {
    Add {
        id: u64,
        started: Box<Started>,
        lag: Duration,
    },
    Remove {
        id: u64,
    },
    Event(TaggedEvent),
    Probed {
        id: u64,
        result: hub::Result<ProbeResult>,
    },
}

/// The loop following every container service.
pub struct Engine {
    tx: Sender<Msg>,
    /// The one `docker events`, shared so that dropping the engine stops it at once.
    watch: Arc<Mutex<Option<ContainerWatch>>>,
}

/// One container wait; dropping it ends the wait.
pub struct Handle {
    id: u64,
    tx: Sender<Msg>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Remove { id: self.id });
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Ok(mut watch) = self.watch.lock() {
            watch.take();
        }
    }
}

impl Engine {
    /// Start the loop; exec probes go to `pool`, reports to `report`.
    pub fn start(pool: Arc<Pool>, report: Reporter) -> std::io::Result<Engine> {
        let (tx, rx) = mpsc::channel();
        let watch = Arc::default();
        let mut follow = Follow {
            tx: tx.clone(),
            pool,
            report,
            cmd: None,
            watch: Arc::clone(&watch),
            entries: HashMap::new(),
        };
        std::thread::Builder::new()
            .name("containers".into())
            .spawn(move || follow.run(&rx))?;
        Ok(Engine { tx, watch })
    }

    /// Wait for container service `started` (whose record was `lag` old when read) as `id`.
    pub fn add(&self, id: u64, started: Started, lag: Duration) -> Handle {
        let _ = self.tx.send(Msg::Add {
            id,
            started: Box::new(started),
            lag,
        });
        Handle {
            id,
            tx: self.tx.clone(),
        }
    }
}

/// One container's wait.
struct Entry {
    begin: Instant,
    timeout: Duration,
    /// The container, as the `started` record names it (an id or a name).
    container: String,
    tracker: Tracker,
    /// How many of [`WARN_AT`] are behind us.
    warned: usize,
    /// Set when the wait ends: its queued exec probe is skipped.
    cancelled: Arc<AtomicBool>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

struct Follow {
    tx: Sender<Msg>,
    pool: Arc<Pool>,
    report: Reporter,
    cmd: Option<ComposeCmd>,
    watch: Arc<Mutex<Option<ContainerWatch>>>,
    entries: HashMap<u64, Entry>,
}

impl Follow {
    fn run(&mut self, rx: &Receiver<Msg>) {
        loop {
            let wake = self.step();
            let first = match wake {
                Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(msg) => Some(msg),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match rx.recv() {
                    Ok(msg) => Some(msg),
                    Err(_) => return,
                },
            };
            // A burst is taken whole, so its events lead to one inspect.
            let mut next = first;
            while let Some(msg) = next {
                if !self.handle(msg) {
                    return;
                }
                next = rx.try_recv().ok();
            }
        }
    }

    /// One message; false when reports have nowhere to go.
    fn handle(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Add { id, started, lag } => return self.add(id, &started, lag),
            Msg::Remove { id } => {
                self.entries.remove(&id);
                if self.entries.is_empty() {
                    self.set_watch(None);
                }
            }
            Msg::Event(tagged) => {
                if let container::ContainerEvent::StreamEnded(why) = &tagged.event {
                    // Every wait depended on it.
                    self.set_watch(None);
                    let ids: Vec<u64> = self.entries.keys().copied().collect();
                    for id in ids {
                        if let Some(entry) = self.entries.remove(&id) {
                            let error = container_health::stream_ended(&entry.container, why);
                            let verdict =
                                Verdict::probe_error(entry.begin.elapsed(), error.to_string());
                            if !(self.report)(id, Report::Done(verdict)) {
                                return false;
                            }
                        }
                    }
                    return true;
                }
                for entry in self.entries.values_mut() {
                    if tagged.is_about(&entry.container) {
                        let _ = entry.tracker.event(tagged.event.clone());
                    }
                }
            }
            Msg::Probed { id, result } => {
                let Some(entry) = self.entries.get_mut(&id) else {
                    return true;
                };
                match result {
                    Ok(result) => entry.tracker.probed(result, Instant::now()),
                    Err(e) => return self.done(id, Err(e)),
                }
            }
        }
        true
    }

    fn set_watch(&self, watch: Option<ContainerWatch>) {
        if let Ok(mut slot) = self.watch.lock() {
            *slot = watch;
        }
    }

    fn watching(&self) -> bool {
        self.watch.lock().is_ok_and(|w| w.is_some())
    }

    /// Begin a container wait; a check that cannot run is its verdict at once.
    fn add(&mut self, id: u64, started: &Started, lag: Duration) -> bool {
        let now = Instant::now();
        let begin = now.checked_sub(lag).unwrap_or(now);
        let probe_error = |message: String| {
            (self.report)(
                id,
                Report::Done(Verdict::probe_error(begin.elapsed(), message)),
            )
        };
        let Some(reference) = started.container.clone() else {
            return probe_error("the started record names no container".into());
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
        if self.cmd.is_none() {
            let explicit = COMPOSE_CMD.get().cloned().flatten();
            match ComposeCmd::detect(explicit.as_deref()) {
                Ok(cmd) => self.cmd = Some(cmd),
                Err(e) => return probe_error(e.to_string()),
            }
        }
        if !self.watching()
            && let Some(cmd) = &self.cmd
        {
            let tx = self.tx.clone();
            match ContainerWatch::start_all(cmd, move |event| tx.send(Msg::Event(event)).is_ok()) {
                Ok(watch) => self.set_watch(Some(watch)),
                Err(e) => return probe_error(e.to_string()),
            }
        }
        let timeout = Duration::from_millis(started.timeout_ms);
        self.entries.insert(
            id,
            Entry {
                begin,
                timeout,
                container: reference,
                tracker: Tracker::new(check, begin + timeout),
                warned: 0,
                cancelled: Arc::default(),
            },
        );
        true
    }

    /// Move every wait on: one inspect for all that need one, then each one's next step.
    /// When the loop next has something to do unprompted.
    fn step(&mut self) -> Option<Instant> {
        let cmd = self.cmd.clone()?;
        let wanted: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, entry)| entry.tracker.wants_inspect())
            .map(|(id, _)| *id)
            .collect();
        if !wanted.is_empty() {
            let references: Vec<&str> = wanted
                .iter()
                .filter_map(|id| self.entries.get(id))
                .map(|entry| entry.container.as_str())
                .collect();
            match container::inspect_many(&cmd, &references) {
                Ok(states) => {
                    for (id, state) in wanted.iter().zip(states) {
                        if let Some(entry) = self.entries.get_mut(id) {
                            entry.tracker.inspected(state);
                        }
                    }
                }
                Err(e) => {
                    for id in wanted {
                        self.done(id, Err(e.clone()));
                    }
                }
            }
        }
        let now = Instant::now();
        let mut wake: Option<Instant> = None;
        let mut decided = Vec::new();
        let ids: Vec<u64> = self.entries.keys().copied().collect();
        for id in ids {
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            // Every threshold passed while still undecided is reported, in order.
            while let Some(percent) = WARN_AT.get(entry.warned).copied() {
                if now < entry.begin + entry.timeout * percent / 100 {
                    break;
                }
                entry.warned += 1;
                let waiting = Report::Waiting {
                    percent,
                    elapsed: now - entry.begin,
                    last_probe: None,
                };
                (self.report)(id, waiting);
            }
            let mut at = match entry.tracker.next(now) {
                Step::Inspect => now,
                Step::Probe => {
                    if let ContainerCheck::Exec {
                        test,
                        probe_timeout,
                        ..
                    } = entry.tracker.check()
                    {
                        let (cmd, reference) = (cmd.clone(), entry.container.clone());
                        let (test, timeout, tx) = (test.clone(), *probe_timeout, self.tx.clone());
                        let task = Box::new(move || {
                            let result = container::exec_probe(&cmd, &reference, &test, timeout);
                            let _ = tx.send(Msg::Probed { id, result });
                        });
                        let cancelled = entry.cancelled.clone();
                        if let Err(e) = self.pool.submit(pool::Kind::Command, now, cancelled, task)
                        {
                            let message = format!("cannot start a thread to probe: {e}");
                            decided.push((id, Err(hub::Error::input(message))));
                        }
                    }
                    continue;
                }
                Step::ReadLogs {
                    exit_code,
                    oom_killed,
                } => {
                    let log_tail =
                        container::logs_tail(&cmd, &entry.container, hub::logheader::TAIL_LINES);
                    decided.push((
                        id,
                        log_tail.map(|log_tail| Outcome::Exited {
                            exit_code: Some(exit_code),
                            oom_killed,
                            log_tail,
                        }),
                    ));
                    continue;
                }
                Step::Done(outcome) => {
                    decided.push((id, Ok(outcome)));
                    continue;
                }
                Step::Until(at) => at,
            };
            if let Some(percent) = WARN_AT.get(entry.warned) {
                at = at.min(entry.begin + entry.timeout * *percent / 100);
            }
            wake = Some(wake.map_or(at, |w| w.min(at)));
        }
        for (id, outcome) in decided {
            self.done(id, outcome);
        }
        wake
    }

    /// Wait `id` is decided: forget it (and the event stream, when no wait is left), then
    /// report.
    fn done(&mut self, id: u64, outcome: hub::Result<Outcome>) -> bool {
        let Some(entry) = self.entries.remove(&id) else {
            return true;
        };
        if self.entries.is_empty() {
            self.set_watch(None);
        }
        match verdict(outcome, entry.begin) {
            Some(verdict) => (self.report)(id, Report::Done(verdict)),
            None => true,
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
            tasks: Vec::new(),
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
