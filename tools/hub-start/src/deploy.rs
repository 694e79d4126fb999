//! The executor: one event loop that reads plans and health results, asks the scheduler what
//! to do, launches attempts, and writes records.
//!
//! Every source of news (stdin, the gate, start commands finishing, probes, signals) is a
//! thread that sends an [`Event`] into one channel, so all state lives on one thread and no
//! lock is needed. Retry delays are the loop's receive timeout, not sleeps.

use crate::launch::{self, Launch, Paths};
use crate::scheduler::{Action, Mode, Scheduler, SkipReason, State};
use hub::backoff::Backoff;
use hub::breaker::{Breaker, Transition};
use hub::container::ComposeCmd;
use hub::error::exit;
use hub::output::RecordWriter;
use hub::pidfile::Recorded;
use hub::records::{
    self as rec, AttemptOf, Backend, Class, FailReason, Line, Plan, Record, Subject,
};
use hub::{Error, Result, log};
use nix::sys::signal::Signal;
use std::collections::{BTreeSet, HashMap};
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// What the command line chose.
#[derive(Debug)]
pub struct Config {
    /// How services are released.
    pub mode: Mode,
    /// At most this many attempts in flight (0 = no cap).
    pub jobs: usize,
    /// Where health results come from.
    pub gate: Option<PathBuf>,
    /// Logs and pid files.
    pub state_dir: PathBuf,
    /// The circuit breaker shared with every process of this deploy and the next.
    pub breaker: Breaker,
    /// Services made to fail, to rehearse the policy.
    pub inject_failure: Vec<String>,
    /// `--compose-cmd`: the compose command for container services (else detected).
    pub compose_cmd: Option<String>,
    /// `--keep-failed`: leave a failed attempt's processes running.
    pub keep_failed: bool,
}

/// News for the event loop.
enum Event {
    Input(String),
    InputEnd(Option<Error>),
    Gate(String),
    GateEnd(Error),
    Probed {
        index: usize,
        healthy: bool,
    },
    Launched {
        index: usize,
        attempt: u32,
        launch: Launch,
    },
    Signal(Signal),
    /// A failed attempt's process was stopped (`message`: how), so the next one may follow.
    AttemptStopped {
        index: usize,
        next_attempt: u32,
        message: String,
    },
    /// A launched `run` process exited (shell-style status).
    Exited {
        index: usize,
        attempt: u32,
        status: i32,
    },
}

/// Launcher threads: launches block until the child has exec'd; a few in parallel keep a burst
/// of due services from queueing, more would only add mappings for every fork to copy.
const LAUNCHERS: usize = 4;

/// Threads for the already-healthy probes (a probe may block up to its timeout, so apart from
/// the launchers).
const PROBERS: usize = 8;

/// How long an interrupted start command gets between TERM and KILL.
const KILL_GRACE: Duration = Duration::from_secs(3);

/// Run a deploy per `config`; the exit status.
pub fn run(config: Config) -> Result<u8> {
    let (tx, rx) = mpsc::channel();
    let signal_tx = tx.clone();
    hub::signals::watch(move |signal| {
        let _ = signal_tx.send(Event::Signal(signal));
    })?;
    hub::signals::stop_with_parent()?;
    spawn_input_reader(tx.clone())?;
    if let Some(gate) = &config.gate {
        spawn_gate_reader(gate.clone(), tx.clone())?;
    }
    let mut deploy = Deploy {
        sched: Scheduler::new(config.mode, config.jobs),
        out: RecordWriter::stdout(),
        run_id: None,
        started_at: Instant::now(),
        line_no: 0,
        probed: Vec::new(),
        paths: Vec::new(),
        in_flight: HashMap::new(),
        levels_announced: BTreeSet::new(),
        levels_summarised: BTreeSet::new(),
        compose: None,
        cancel: Arc::new(AtomicBool::new(false)),
        launched_attempt: HashMap::new(),
        already_healthy: 0,
        blocked_by: HashMap::new(),
        exited_early: HashMap::new(),
        stopping: Vec::new(),
        adopted: HashMap::new(),
        launched_pid: HashMap::new(),
        reaper: hub::reaper::Reaper::start().ok().map(Arc::new),
        launcher: crate::launcher::Launcher::start(LAUNCHERS).ok(),
        probers: crate::launcher::Launcher::start(PROBERS).ok(),
        exited_before_started: HashMap::new(),
        launching: BTreeSet::new(),
        healthy_unconfirmed: BTreeSet::new(),
        tx,
        config,
    };
    deploy.event_loop(&rx)
}

fn spawn_input_reader(tx: Sender<Event>) -> Result<()> {
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                match line {
                    Ok(line) => {
                        if tx.send(Event::Input(line)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Event::InputEnd(Some(Error::io(
                            "reading plan records from stdin",
                            &e,
                        ))));
                        return;
                    }
                }
            }
            let _ = tx.send(Event::InputEnd(None));
        })
        .map(|_| ())
        .map_err(|e| Error::io("starting the stdin reader", &e))
}

/// Follow the gate: a FIFO is read to its end; a regular file is followed like `tail -f`.
fn spawn_gate_reader(path: PathBuf, tx: Sender<Event>) -> Result<()> {
    std::thread::Builder::new()
        .name("gate".into())
        .spawn(move || {
            let end = |e: Error| {
                let _ = tx.send(Event::GateEnd(e));
            };
            // A FIFO is opened read-write: the open never blocks, and `tee G`'s open for writing
            // succeeds even if we have already finished. A regular file is opened read-only.
            let fifo = std::fs::metadata(&path).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_fifo()
            });
            let file = match std::fs::OpenOptions::new()
                .read(true)
                .write(fifo)
                .open(&path)
            {
                Ok(file) => file,
                Err(e) => {
                    return end(Error::input(format!(
                        "--gate {}: cannot open: {e}; create it with `mkfifo {}`",
                        path.display(),
                        path.display()
                    )));
                }
            };
            // We hold the FIFO's write end too, so neither kind ever ends: a FIFO blocks in
            // read, a regular file is followed like `tail -f` (an end of file is "not yet").
            let mut reader = std::io::BufReader::new(file);
            let mut line = String::new();
            loop {
                match reader.read_line(&mut line) {
                    Ok(0) => std::thread::sleep(Duration::from_millis(20)),
                    Ok(_) if !line.ends_with('\n') => {}
                    Ok(_) => {
                        if tx.send(Event::Gate(std::mem::take(&mut line))).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        return end(Error::io(format!("reading --gate {}", path.display()), &e));
                    }
                }
            }
        })
        .map(|_| ())
        .map_err(|e| Error::io("starting the gate reader", &e))
}

struct Deploy {
    config: Config,
    sched: Scheduler,
    out: RecordWriter,
    run_id: Option<String>,
    started_at: Instant,
    line_no: usize,
    /// Whether the already-healthy probe ran, per service.
    probed: Vec<bool>,
    paths: Vec<Paths>,
    /// Start commands running now: service index -> process group.
    in_flight: HashMap<usize, u32>,
    levels_announced: BTreeSet<u32>,
    levels_summarised: BTreeSet<u32>,
    /// The compose command, detected on the first container service.
    compose: Option<std::result::Result<ComposeCmd, String>>,
    /// Set on SIGINT/SIGTERM: docker calls in flight give up.
    cancel: Arc<AtomicBool>,
    /// Services found already healthy before starting (a rerun).
    already_healthy: usize,
    /// Services skipped because a hard dependency failed: index -> that dependency.
    blocked_by: HashMap<usize, String>,
    /// The latest attempt launched per service (its `started` record was written).
    launched_attempt: HashMap<usize, u32>,
    /// `run` processes that exited while their attempt was still waiting for its verdict:
    /// service index -> (attempt, status). A `healthy` verdict for such an attempt came from
    /// a probe that someone else answered.
    exited_early: HashMap<usize, (u32, i32)>,
    /// Failed attempts' process groups being stopped.
    stopping: Vec<std::thread::JoinHandle<()>>,
    /// Earlier processes adopted by a rerun, with what is left of their timeout.
    adopted: HashMap<usize, Duration>,
    /// The process each launched `run` attempt is: (service index, attempt) -> pid.
    launched_pid: HashMap<(usize, u32), u32>,
    /// Reaps every `run` process launched (one thread for all; `None` without pidfds).
    reaper: Option<Arc<hub::reaper::Reaper>>,
    /// Launches `run` processes off this thread.
    launcher: Option<crate::launcher::Launcher>,
    /// Runs the one already-healthy probe before a service's first start.
    probers: Option<crate::launcher::Launcher>,
    /// Exits reported before their launch was (the reaper and the launcher race):
    /// (service index, attempt) -> status, handled once its `started` record is written.
    exited_before_started: HashMap<(usize, u32), i32>,
    /// `run` launches handed to the launcher whose result has not come back: an interrupt
    /// waits for them, so no process is left without its pid file.
    launching: BTreeSet<usize>,
    /// Healthy verdicts for attempts whose process was already dead when they came: the exit,
    /// on its way, turns them into `exited_after_healthy`.
    healthy_unconfirmed: BTreeSet<(usize, u32)>,
    tx: Sender<Event>,
}

impl Deploy {
    fn event_loop(&mut self, rx: &Receiver<Event>) -> Result<u8> {
        loop {
            let now = Instant::now();
            let actions = self.sched.actions(now);
            let acted = !actions.is_empty();
            for action in actions {
                self.act(action)?;
            }
            // A launch that failed for good inside act() (a `run` command that exited at once)
            // may have aborted the deploy: its skips come from the next round of actions.
            if acted && self.sched.aborted() {
                continue;
            }
            self.summarise_levels();
            if self.sched.finished() {
                return self.finish();
            }
            let event = match self.sched.next_due() {
                Some(due) => match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                    Ok(event) => event,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(Error::input("internal: event channel closed"));
                    }
                },
                None => rx
                    .recv()
                    .map_err(|_| Error::input("internal: event channel closed"))?,
            };
            match event {
                Event::Input(line) => self.input(&line)?,
                Event::InputEnd(None) => {
                    self.sched.input_closed();
                    self.check_injected()?;
                }
                Event::InputEnd(Some(err)) | Event::GateEnd(err) => return Err(err),
                Event::Gate(line) => self.gate(&line)?,
                Event::Probed { index, healthy } => self.probed(index, healthy)?,
                Event::Launched {
                    index,
                    attempt,
                    launch,
                } => {
                    self.in_flight.remove(&index);
                    self.launching.remove(&index);
                    self.launched(index, attempt, launch)?;
                }
                Event::Signal(signal) => return self.interrupt(signal, rx),
                Event::Exited {
                    index,
                    attempt,
                    status,
                } => self.exited(index, attempt, status)?,
                Event::AttemptStopped {
                    index,
                    next_attempt,
                    message,
                } => self.attempt_stopped(index, next_attempt, &message),
            }
        }
    }

    fn input(&mut self, line: &str) -> Result<()> {
        self.line_no += 1;
        if line.trim().is_empty() {
            return Ok(());
        }
        let parsed = match Line::parse(line, "stdin", self.line_no) {
            Ok(parsed) => parsed,
            // A record of another tool that this one does not need passes through even when
            // it does not match its type (a hand-made test record): only plans are read here.
            Err(e) => match hub::records::parse_line(line, "stdin", self.line_no) {
                Ok((envelope, _)) if envelope.kind != "plan" => {
                    return self.out.line(line);
                }
                _ => return Err(e),
            },
        };
        self.out.line(line)?;
        let Record::Plan(plan) = parsed.record else {
            return Ok(());
        };
        let plan: Plan = *plan;
        if self.run_id.is_none() {
            self.run_id = parsed.run_id;
        }
        hub::service::check_name_for_paths(&plan.service)
            .map_err(|why| Error::input(format!("stdin:{}: {why}", self.line_no)))?;
        let paths = Paths::new(&self.config.state_dir, &plan.service).map_err(|e| {
            Error::io(
                format!(
                    "creating the state folder {}",
                    self.config.state_dir.display()
                ),
                &e,
            )
        })?;
        self.sched.add(plan).map_err(|e| {
            Error::input(format!(
                "stdin:{}: {e}; each service needs one plan record",
                self.line_no
            ))
        })?;
        self.probed.push(false);
        self.paths.push(paths);
        Ok(())
    }

    fn gate(&mut self, line: &str) -> Result<()> {
        // The gate carries everything hub-wait-healthy wrote, our own records included.
        let parsed = match Line::parse(line.trim_end(), "gate", 0) {
            Ok(parsed) => parsed,
            Err(e) => {
                log::debug(&format!("gate: ignoring a line: {e}"));
                return Ok(());
            }
        };
        let (of, unhealthy) = match &parsed.record {
            Record::Healthy(healthy) => (&healthy.of, None),
            Record::Unhealthy(unhealthy) => (&unhealthy.of, Some(unhealthy)),
            _ => return Ok(()),
        };
        if let (Some(mine), Some(theirs)) = (self.run_id.as_deref(), parsed.run_id.as_deref())
            && mine != theirs
        {
            return Ok(());
        }
        let Some(index) = self.sched.find(&of.service) else {
            return Ok(());
        };
        let State::Started { attempt } = self.sched.entry(index).state else {
            return Ok(());
        };
        if of.attempt != attempt {
            return Ok(());
        }
        let Some(unhealthy) = unhealthy else {
            if let Some((exited, status)) = self.exited_early.remove(&index)
                && exited == attempt
            {
                self.breaker_record(index, true)?;
                self.sched.set(index, State::Healthy);
                return self.died_after_healthy(index, attempt, status);
            }
            // Our process is already dead (a probe answered by someone else, or it died just
            // after): its exit, on its way from the reaper, decides; no dependent starts first.
            if self.sched.entry(index).plan.health.check != hub::records::Check::Completed
                && let Some(pid) = self.launched_pid.get(&(index, attempt))
                && hub::process::ExitWatch::new(*pid).exited()
            {
                self.healthy_unconfirmed.insert((index, attempt));
                return Ok(());
            }
            self.breaker_record(index, true)?;
            self.sched.set(index, State::Healthy);
            return Ok(());
        };
        // What hub-wait-healthy observed; whether another attempt follows is decided here.
        let (reason_kind, exit_status) = (unhealthy.reason, unhealthy.exit_status);
        let reason = reason_kind.as_str();
        self.breaker_record(index, false)?;
        let is_final = !rec::Unhealthy::retryable(reason_kind, exit_status)
            || self.no_attempt_left(index, attempt);
        if is_final {
            self.stop_failed_attempt(index);
            self.service_failed(index, reason, true);
        } else if reason_kind == rec::UnhealthyReason::Timeout {
            // Its process may well be alive: stop it (as --stop would) before the next attempt
            // starts beside it.
            self.log_retry(index, attempt, reason, self.retry_delay(index, attempt));
            self.stop_attempt(index, attempt);
        } else {
            self.stop_failed_attempt(index);
            let delay = self.retry_delay(index, attempt);
            self.log_retry(index, attempt, reason, delay);
            self.sched.set(
                index,
                State::RetryWait {
                    next_attempt: attempt + 1,
                    due: Instant::now() + delay,
                },
            );
        }
        Ok(())
    }

    /// A launched `run` process exited. Before its verdict, hub-wait-healthy judges it; after a
    /// `healthy` verdict (and until the deploy ends) the service is no longer running, which is
    /// a failure of its class: its dependents that have not started are skipped.
    fn exited(&mut self, index: usize, attempt: u32, status: i32) -> Result<()> {
        if !self.launched_pid.contains_key(&(index, attempt))
            && matches!(self.sched.entry(index).state, State::Starting { .. })
        {
            self.exited_before_started.insert((index, attempt), status);
            return Ok(());
        }
        // The parent knows first: say so downstream, where hub-wait-healthy judges the attempt.
        if let Some(pid) = self.launched_pid.get(&(index, attempt)).copied() {
            let record = Record::Exited(rec::Exited {
                of: self.attempt_of(index, attempt),
                pid,
                exit_status: status,
            });
            self.emit(record)?;
        }
        let entry = self.sched.entry(index);
        // A one-shot job is done when it exits; its exit is its verdict.
        if entry.plan.health.check == hub::records::Check::Completed
            || self.launched_attempt.get(&index) != Some(&attempt)
        {
            return Ok(());
        }
        match entry.state {
            State::Started { attempt: current }
                if current == attempt && self.healthy_unconfirmed.remove(&(index, attempt)) =>
            {
                self.breaker_record(index, true)?;
                self.sched.set(index, State::Healthy);
                self.died_after_healthy(index, attempt, status)
            }
            State::Started { attempt: current } if current == attempt => {
                self.exited_early.insert(index, (attempt, status));
                Ok(())
            }
            State::Healthy => self.died_after_healthy(index, attempt, status),
            _ => Ok(()),
        }
    }

    /// A `run` service that was healthy is not running any more: a `failed` record with its
    /// status and log tail, and the failure policy of its class.
    fn died_after_healthy(&mut self, index: usize, attempt: u32, status: i32) -> Result<()> {
        let plan = &self.sched.entry(index).plan;
        let service = plan.service.clone();
        let log_tail = hub::logheader::tail(&self.paths[index].log.display().to_string());
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
        if plan.class == Class::Core {
            log::error(&format!("{service} {message}"));
        } else {
            log::warn(&format!("{service} {message}"));
        }
        for line in log_tail.iter().rev().take(3).rev() {
            log::info(&format!("{service} log: {line}"));
        }
        self.breaker_record(index, false)?;
        let record = Record::Failed(rec::Failed {
            of: self.attempt_of(index, attempt),
            is_final: true,
            reason: FailReason::ExitedAfterHealthy,
            exit_status: Some(status),
            log_tail: Some(log_tail),
            message,
            next_delay_ms: None,
        });
        self.emit(record)?;
        self.service_failed(index, FailReason::ExitedAfterHealthy.as_str(), true);
        Ok(())
    }

    /// `--inject-failure` of a service the plan does not have rehearses nothing: a usage error.
    fn check_injected(&self) -> Result<()> {
        match self
            .config
            .inject_failure
            .iter()
            .find(|s| self.sched.find(s).is_none())
        {
            Some(name) => Err(Error::input(format!(
                "--inject-failure {name}: no such service in the plan; name one of the services read on stdin"
            ))),
            None => Ok(()),
        }
    }

    /// Before another attempt of a service whose health check timed out: stop what the attempt
    /// started, as `hub-down` would (its `x-hub.stop`, its process group, its container), on a
    /// thread, so the loop goes on; the backoff starts once it is stopped.
    fn stop_attempt(&mut self, index: usize, attempt: u32) {
        let plan = self.sched.entry(index).plan.clone();
        let state_dir = self.config.state_dir.clone();
        let compose = matches!(plan.backend, Backend::Container | Backend::Swarm)
            .then(|| self.compose_cmd().ok())
            .flatten();
        let tx = self.tx.clone();
        let next_attempt = attempt + 1;
        self.sched.set(index, State::Stopping { next_attempt });
        let spawned = std::thread::Builder::new()
            .name(format!("stop-{}", plan.service))
            .spawn(move || {
                let stopped =
                    crate::stop::stop_one(&plan, &state_dir, KILL_GRACE, compose.as_ref());
                let message = if stopped.ok {
                    stopped.message
                } else {
                    format!("could not stop it: {}", stopped.message)
                };
                let _ = tx.send(Event::AttemptStopped {
                    index,
                    next_attempt,
                    message,
                });
            });
        if spawned.is_err() {
            self.attempt_stopped(index, next_attempt, "could not start a thread to stop it");
        }
    }

    /// A timed-out attempt is stopped: its backoff begins.
    fn attempt_stopped(&mut self, index: usize, next_attempt: u32, message: &str) {
        if self.sched.entry(index).state != (State::Stopping { next_attempt }) {
            return;
        }
        let plan = &self.sched.entry(index).plan;
        log::info(&format!(
            "{}: attempt {} stopped before the next one ({message})",
            plan.service,
            next_attempt - 1
        ));
        let delay = self.retry_delay(index, next_attempt - 1);
        self.sched.set(
            index,
            State::RetryWait {
                next_attempt,
                due: Instant::now() + delay,
            },
        );
    }

    fn act(&mut self, action: Action) -> Result<()> {
        match action {
            Action::Start { index, attempt } => {
                self.announce_level(index);
                let injected = self
                    .config
                    .inject_failure
                    .contains(&self.sched.entry(index).plan.service);
                // An injected failure rehearses a failing start even on a running stack.
                if attempt == 1
                    && !self.probed[index]
                    && self.config.mode != Mode::Ungated
                    && !injected
                {
                    self.probed[index] = true;
                    self.spawn_probe(index);
                    Ok(())
                } else {
                    self.launch(index, attempt)
                }
            }
            Action::Skip { index, reason } => self.skip(index, &reason),
            Action::Abort { cause } => {
                let level = self.sched.entry(cause).plan.level;
                let failures = self
                    .sched
                    .entries()
                    .iter()
                    .filter(|e| {
                        e.plan.level == level
                            && e.plan.class == Class::Core
                            && matches!(e.state, State::Failed | State::Skipped)
                    })
                    .count();
                log::error(&format!(
                    "Level {level} had {failures} CORE service failures"
                ));
                log::error("Stopping startup - fix CORE service failures and redeploy");
                Ok(())
            }
        }
    }

    fn spawn_probe(&mut self, index: usize) {
        let plan = self.sched.entry(index).plan.clone();
        let paths = self.paths[index].clone();
        let tx = self.tx.clone();
        let compose = matches!(plan.backend, Backend::Container | Backend::Swarm)
            .then(|| self.compose_cmd().ok())
            .flatten();
        let job = move || {
            let healthy = crate::resume::already_healthy(&plan, &paths, compose.as_ref());
            let _ = tx.send(Event::Probed { index, healthy });
        };
        // A fixed pool, not a thread per service: a burst of thousands probes a few at a time.
        let queued = self.probers.as_ref().map(|pool| pool.run(job));
        if !matches!(queued, Some(Ok(()))) {
            let _ = self.tx.send(Event::Probed {
                index,
                healthy: false,
            });
        }
    }

    fn probed(&mut self, index: usize, healthy: bool) -> Result<()> {
        if !healthy && self.sched.aborted() {
            // A CORE service failed while this probe ran: start nothing new.
            self.sched.set(index, State::Skipped);
            return self.skip(index, &SkipReason::Aborted);
        }
        if !healthy {
            if let Some((pid, remaining)) = self.adoptable(index) {
                let service = &self.sched.entry(index).plan.service;
                log::info(&format!(
                    "{service}: its earlier process (pid {pid}) still runs, not yet healthy: adopted, not started again ({} left of its timeout)",
                    hub::duration::human(remaining)
                ));
                self.adopted.insert(index, remaining);
                let launch = Launch::Started {
                    pid: Some(pid),
                    container: None,
                };
                return self.launched(index, 1, launch);
            }
            return self.launch(index, 1);
        }
        let plan = &self.sched.entry(index).plan;
        log::success(&format!("{} is already healthy (skipped)", plan.service));
        let record = Record::Skipped(rec::Skipped {
            of: self.subject(index),
            reason: rec::SkipReason::AlreadyHealthy,
            dependency: None,
        });
        self.emit(record)?;
        self.sched.set_already_healthy(index);
        self.already_healthy += 1;
        Ok(())
    }

    /// A rerun finding a `run` service's earlier process alive but not healthy adopts it (it
    /// is probed and watched as if just started) while its timeout, counted from the process's
    /// own start, has time left: the pid and that time. Else it is stopped and started anew
    /// ([`launch::launch_run`]). A one-shot job is never adopted: only its parent learns its
    /// exit status.
    fn adoptable(&self, index: usize) -> Option<(u32, Duration)> {
        let plan = &self.sched.entry(index).plan;
        if plan.backend != Backend::Run
            || plan.health.check == hub::records::Check::Completed
            || self.config.inject_failure.contains(&plan.service)
        {
            return None;
        }
        let earlier = launch::live_process(&self.paths[index])?;
        let remaining = Duration::from_millis(plan.timeout_ms).checked_sub(earlier.age()?)?;
        (!remaining.is_zero()).then_some((earlier.pid, remaining))
    }

    fn launch(&mut self, index: usize, attempt: u32) -> Result<()> {
        let plan = self.sched.entry(index).plan.clone();
        if self.config.inject_failure.contains(&plan.service) {
            return self.attempt_failed(
                index,
                attempt,
                FailReason::Injected,
                None,
                "failure injected by --inject-failure".into(),
                true,
            );
        }
        if let Some(message) = self.breaker_refuses(index)? {
            return self.attempt_failed(
                index,
                attempt,
                FailReason::BreakerOpen,
                Some(i32::from(exit::REFUSED)),
                message,
                true,
            );
        }
        log::info(&format!(
            "Starting {} (attempt {attempt}, level {}, {})",
            plan.service, plan.level, plan.class
        ));
        let paths = self.paths[index].clone();
        match (plan.backend, &plan.start, &plan.run) {
            (Backend::Start, Some(spec), _) => {
                let child = match launch::spawn_start(spec, &plan, self.attempt(attempt), &paths) {
                    Ok(child) => child,
                    Err(e) => {
                        let message = format!("cannot run `{spec}`: {e}");
                        return self.attempt_failed(
                            index,
                            attempt,
                            FailReason::LaunchFailed,
                            None,
                            message,
                            false,
                        );
                    }
                };
                self.in_flight.insert(index, child.pid());
                let spec = spec.clone();
                let timeout = Duration::from_millis(plan.timeout_ms);
                let keep_failed = self.config.keep_failed;
                self.in_background(
                    index,
                    attempt,
                    format!("start-{}", plan.service),
                    move || launch::finish_start(child, timeout, &spec, keep_failed),
                )
            }
            (Backend::Run, _, Some(spec)) => {
                let tx = self.tx.clone();
                let on_exit = move |status| {
                    let _ = tx.send(Event::Exited {
                        index,
                        attempt,
                        status,
                    });
                };
                let (spec, run_id) = (spec.clone(), self.run_id.clone());
                let (reaper, done) = (self.reaper.clone(), self.tx.clone());
                let job = move || {
                    let number = launch::Attempt {
                        run_id: run_id.as_deref(),
                        number: attempt,
                    };
                    let launch = launch::launch_run(
                        &spec,
                        &plan,
                        number,
                        &paths,
                        reaper.as_deref(),
                        on_exit,
                    );
                    let _ = done.send(Event::Launched {
                        index,
                        attempt,
                        launch,
                    });
                };
                // Off the loop's thread, so a burst of due services launches in parallel.
                self.launching.insert(index);
                match &self.launcher {
                    Some(launcher) => launcher.run(job).unwrap_or_else(|job| job()),
                    None => job(),
                }
                Ok(())
            }
            (backend @ (Backend::Container | Backend::Swarm), _, _) => {
                let cmd = match self.compose_cmd() {
                    Ok(cmd) => cmd,
                    Err(message) => {
                        return self.attempt_failed(
                            index,
                            attempt,
                            FailReason::NoBackend,
                            None,
                            message,
                            true,
                        );
                    }
                };
                let compose = plan.compose.clone().unwrap_or_default();
                let service = plan.service.clone();
                self.in_background(index, attempt, format!("up-{service}"), move || {
                    if backend == Backend::Swarm {
                        launch::launch_swarm(&cmd, &compose, &service)
                    } else {
                        launch::launch_container(&cmd, &compose, &service)
                    }
                })
            }
            _ => self.attempt_failed(
                index,
                attempt,
                FailReason::NoBackend,
                None,
                format!(
                    "service \"{}\": backend {:?} without its command",
                    plan.service, plan.backend
                ),
                true,
            ),
        }
    }

    fn attempt(&self, number: u32) -> launch::Attempt<'_> {
        launch::Attempt {
            run_id: self.run_id.as_deref(),
            number,
        }
    }

    /// Run a blocking launch (a start command, a compose `up`) on its own thread; its result
    /// comes back to the loop as [`Event::Launched`].
    fn in_background(
        &self,
        index: usize,
        attempt: u32,
        name: String,
        work: impl FnOnce() -> Launch + Send + 'static,
    ) -> Result<()> {
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let launch = work();
                let _ = tx.send(Event::Launched {
                    index,
                    attempt,
                    launch,
                });
            })
            .map(|_| ())
            .map_err(|e| Error::io("starting a thread", &e))
    }

    fn launched(&mut self, index: usize, attempt: u32, launch: Launch) -> Result<()> {
        if !matches!(self.sched.entry(index).state, State::Starting { .. }) {
            return Ok(());
        }
        match launch {
            Launch::Started { pid, container } => {
                let adopted = self.adopted.remove(&index);
                let started = crate::records::started(
                    &self.sched.entry(index).plan,
                    crate::records::Launched {
                        attempt,
                        pid,
                        container,
                        log: &self.paths[index].log,
                        adopted,
                    },
                );
                if let Some(pid) = pid.filter(|_| adopted.is_none()) {
                    self.launched_pid.insert((index, attempt), pid);
                }
                self.emit(Record::Started(Box::new(started)))?;
                self.launched_attempt.insert(index, attempt);
                if self.config.mode == Mode::Ungated {
                    self.breaker_record(index, true)?;
                }
                self.sched.set(index, State::Started { attempt });
                match self.exited_before_started.remove(&(index, attempt)) {
                    Some(status) => self.exited(index, attempt, status),
                    None => Ok(()),
                }
            }
            Launch::Failed {
                reason,
                exit_status,
                message,
            } => {
                self.stop_failed_attempt(index);
                self.attempt_failed(index, attempt, reason, exit_status, message, false)
            }
        }
    }

    /// A `run` service's attempt failed (it died, or it was not healthy in time): stop its
    /// whole process group, members that outlived the leader included, unless --keep-failed.
    /// On a thread: a group that ignores TERM gets [`KILL_GRACE`], and the loop goes on.
    fn stop_failed_attempt(&mut self, index: usize) {
        if self.config.keep_failed || self.sched.entry(index).plan.backend != Backend::Run {
            return;
        }
        let Ok(Some(Recorded::Known(identity))) = hub::pidfile::read(&self.paths[index].pid) else {
            return;
        };
        let stopping = std::thread::Builder::new()
            .name(format!("stop-{}", identity.pid))
            .spawn(move || {
                let _ = hub::pidfile::stop_group(identity, KILL_GRACE);
            });
        match stopping {
            Ok(handle) => self.stopping.push(handle),
            Err(_) => {
                let _ = hub::pidfile::stop_group(identity, KILL_GRACE);
            }
        }
    }

    /// Wait until every failed attempt being stopped is stopped: exiting would end those
    /// threads half-way.
    fn join_stopping(&mut self) {
        for handle in self.stopping.drain(..) {
            let _ = handle.join();
        }
    }

    /// The compose command: `--compose-cmd`, `DOCKER_CMD`, or detected once.
    fn compose_cmd(&mut self) -> std::result::Result<ComposeCmd, String> {
        let cancel = self.cancel.clone();
        let explicit = self.config.compose_cmd.clone();
        self.compose
            .get_or_insert_with(|| {
                ComposeCmd::detect(explicit.as_deref())
                    .map(|cmd| cmd.with_cancel(cancel))
                    .map_err(|e| e.to_string())
            })
            .clone()
    }

    fn no_attempt_left(&self, index: usize, attempt: u32) -> bool {
        let max = self.sched.entry(index).plan.retry.attempts;
        max != 0 && attempt >= max
    }

    fn attempt_failed(
        &mut self,
        index: usize,
        attempt: u32,
        reason: FailReason,
        exit_status: Option<i32>,
        message: String,
        force_final: bool,
    ) -> Result<()> {
        if reason != FailReason::BreakerOpen && reason != FailReason::Injected {
            self.breaker_record(index, false)?;
        }
        let hopeless = exit_status.and_then(hub::codes::cannot_succeed);
        let message = match hopeless {
            Some(why) => format!("{message} ({why})"),
            None => message,
        };
        let is_final = force_final || hopeless.is_some() || self.no_attempt_left(index, attempt);
        let delay = (!is_final).then(|| self.retry_delay(index, attempt));
        let record = Record::Failed(rec::Failed {
            of: self.attempt_of(index, attempt),
            is_final,
            reason: reason.clone(),
            exit_status,
            log_tail: None,
            message: message.clone(),
            next_delay_ms: delay.map(hub::duration::to_ms),
        });
        self.emit(record)?;
        match delay {
            Some(delay) => {
                self.log_retry(index, attempt, &message, delay);
                self.sched.set(
                    index,
                    State::RetryWait {
                        next_attempt: attempt + 1,
                        due: Instant::now() + delay,
                    },
                );
            }
            None => {
                let service = &self.sched.entry(index).plan.service;
                log::error(&format!("{service} failed to start: {message}"));
                self.service_failed(index, reason.as_str(), true);
            }
        }
        Ok(())
    }

    fn log_retry(&self, index: usize, attempt: u32, why: &str, delay: Duration) {
        let plan = &self.sched.entry(index).plan;
        let max = match plan.retry.attempts {
            0 => "∞".to_owned(),
            n => n.to_string(),
        };
        log::warn(&format!(
            "{}: attempt {attempt}/{max} failed ({why}), retrying in {}",
            plan.service,
            hub::duration::human(delay)
        ));
    }

    /// A service failed for good. `announce`: say so in the seed's words (false when
    /// hub-wait-healthy, which reported the health failure, already did).
    fn service_failed(&mut self, index: usize, reason: &str, announce: bool) {
        let plan = &self.sched.entry(index).plan;
        match plan.class {
            _ if !announce => {}
            Class::Core => log::error(&format!(
                "Service {} failed (CORE - deployment will fail): {reason}",
                plan.service
            )),
            class => log::warn(&format!(
                "Service {} failed ({class} - deployment will continue): {reason}",
                plan.service
            )),
        }
        self.sched.set(index, State::Failed);
    }

    fn skip(&mut self, index: usize, reason: &SkipReason) -> Result<()> {
        let plan = &self.sched.entry(index).plan;
        let (reason, dependency) = match reason {
            SkipReason::Aborted => (rec::SkipReason::Aborted, None),
            SkipReason::DependencyFailed(dep) => {
                (rec::SkipReason::DependencyFailed, Some(dep.as_str()))
            }
        };
        if let Some(dep) = dependency {
            self.blocked_by.insert(index, dep.to_owned());
            let line = format!("{} skipped: its dependency {dep} failed", plan.service);
            if plan.class == Class::Core {
                log::error(&format!("{line} (CORE - deployment will fail)"));
            } else {
                log::warn(&line);
            }
        }
        let record = Record::Skipped(rec::Skipped {
            of: self.subject(index),
            reason,
            dependency: dependency.map(str::to_owned),
        });
        self.emit(record)
    }

    fn subject(&self, index: usize) -> Subject {
        crate::records::subject(&self.sched.entry(index).plan)
    }

    fn attempt_of(&self, index: usize, attempt: u32) -> AttemptOf {
        crate::records::attempt_of(&self.sched.entry(index).plan, attempt)
    }

    /// Write a record of this run.
    fn emit(&mut self, record: Record) -> Result<()> {
        self.out.emit(self.run_id.as_deref(), record)
    }

    /// In levels mode, say when a level starts, as the seed did.
    fn announce_level(&mut self, index: usize) {
        let level = self.sched.entry(index).plan.level;
        if self.config.mode != Mode::Levels || !self.levels_announced.insert(level) {
            return;
        }
        let names: Vec<&str> = self
            .sched
            .entries()
            .iter()
            .filter(|e| e.plan.level == level && !e.state.decided())
            .map(|e| e.plan.service.as_str())
            .collect();
        log::info(&format!("Level {level}: Starting {}", names.join(" ")));
    }

    /// In levels mode, summarise each level once it is decided.
    fn summarise_levels(&mut self) {
        if self.config.mode != Mode::Levels || self.sched.aborted() || !self.sched.input_done() {
            return;
        }
        let levels: BTreeSet<u32> = self.sched.entries().iter().map(|e| e.plan.level).collect();
        for level in levels {
            if self.levels_summarised.contains(&level) {
                continue;
            }
            let members: Vec<_> = self
                .sched
                .entries()
                .iter()
                .filter(|e| e.plan.level == level)
                .collect();
            if !members.iter().all(|e| e.state.decided()) {
                return;
            }
            self.levels_summarised.insert(level);
            let failed = members
                .iter()
                .filter(|e| matches!(e.state, State::Failed | State::Skipped))
                .count();
            if failed > 0 {
                log::warn(&format!(
                    "Level {level} had {failed} failures, but all CORE services operational"
                ));
            }
        }
    }

    fn finish(&mut self) -> Result<u8> {
        self.join_stopping();
        let entries = self.sched.entries();
        let count = |f: &dyn Fn(State) -> bool| entries.iter().filter(|e| f(e.state)).count();
        let healthy = count(&|s| s == State::Healthy);
        let started = count(&|s| matches!(s, State::Started { .. }));
        let failed = count(&|s| s == State::Failed);
        let skipped = count(&|s| s == State::Skipped);
        let ok = !self.sched.aborted();
        let status = if ok { exit::OK } else { exit::NO };
        let elapsed = self.started_at.elapsed();
        let already = self.already_healthy;
        let record = Record::Finished(rec::Finished {
            ok,
            exit_status: i32::from(status),
            counts: rec::Counts {
                healthy,
                already_healthy: already,
                started,
                failed,
                skipped,
            },
            duration_ms: hub::duration::to_ms(elapsed),
        });
        self.out.emit(self.run_id.as_deref(), record)?;
        let total = entries.len();
        let took = hub::duration::human(elapsed);
        let healthy_text = match already {
            0 => format!("{healthy}/{total} healthy"),
            n => format!("{healthy}/{total} healthy ({n} already healthy)"),
        };
        match (ok, self.config.mode) {
            (false, _) => log::error(&format!(
                "Deploy failed: {} ({healthy_text}, {failed} failed, {skipped} skipped) after {took}",
                self.abort_reason()
            )),
            (true, Mode::Ungated) => log::success(&format!(
                "Launched {started}/{total} services ({failed} failed) in {took}"
            )),
            (true, _) if failed + skipped > 0 => log::warn(&format!(
                "Deployed with degradation: {healthy_text}, {failed} failed, {skipped} skipped, in {took}"
            )),
            (true, _) => log::success(&format!("Deployed: {healthy_text} in {took}")),
        }
        Ok(status)
    }

    /// Why the deploy failed, in a few words: which CORE service, and why when it was skipped.
    fn abort_reason(&self) -> String {
        let Some(cause) = self.sched.abort_cause() else {
            return "a CORE service failed".to_owned();
        };
        let service = &self.sched.entry(cause).plan.service;
        match self.blocked_by.get(&cause) {
            Some(dep) => format!(
                "CORE service {service} was skipped because its hard dependency {dep} failed"
            ),
            None => format!("CORE service {service} failed"),
        }
    }

    /// SIGINT/SIGTERM/SIGHUP: kill in-flight start commands' groups (TERM, then KILL after a
    /// grace, or at once on a second signal),
    /// record what was cut short, and exit 130/143. Launched services keep running.
    fn interrupt(&mut self, signal: Signal, rx: &Receiver<Event>) -> Result<u8> {
        log::warn(&format!(
            "{} received: stopping start commands in flight",
            signal.as_str()
        ));
        self.cancel.store(true, Ordering::SeqCst);
        let in_flight: Vec<String> = self
            .sched
            .undecided()
            .into_iter()
            .filter(|s| {
                self.sched
                    .find(s)
                    .is_some_and(|i| matches!(self.sched.entry(i).state, State::Starting { .. }))
            })
            .map(str::to_owned)
            .collect();
        for pgid in self.in_flight.values() {
            let _ = hub::process::signal_group(*pgid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + KILL_GRACE;
        while !self.in_flight.is_empty() || !self.launching.is_empty() {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Event::Launched { index, .. }) => {
                    self.in_flight.remove(&index);
                    self.launching.remove(&index);
                }
                // A second signal: no more grace.
                Ok(Event::Signal(_)) => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        for pgid in self.in_flight.values() {
            let _ = hub::process::signal_group(*pgid, Signal::SIGKILL);
        }
        self.join_stopping();
        let record = Record::Interrupted(rec::Interrupted {
            tool: "hub-start".into(),
            signal: rec::SignalName::of(signal),
            in_flight,
        });
        self.emit(record)?;
        Ok(hub::signals::exit_code(signal))
    }

    /// The seed's doubling delay, through the same backoff code as `hub-retry`.
    fn retry_delay(&self, index: usize, failed_attempt: u32) -> Duration {
        let retry = &self.sched.entry(index).plan.retry;
        let backoff = Backoff {
            base: Duration::from_millis(retry.delay_ms),
            max: Duration::from_millis(retry.max_delay_ms),
            jitter: hub::backoff::Jitter::None,
        };
        backoff.ceiling(failed_attempt.saturating_sub(1))
    }

    fn breaker_key(&self, index: usize) -> String {
        hub::breaker::start_key(&self.sched.entry(index).plan.service)
    }

    fn transition(&mut self, transition: Option<Transition>) -> Result<()> {
        let Some(transition) = transition else {
            return Ok(());
        };
        hub::retry::log_transition(&transition);
        self.emit(Record::Breaker(transition))
    }

    /// Ask the circuit breaker `SERVICE:start`; a refusal's message (with the command that
    /// resets it). Failures recorded for another definition of the service are forgotten first.
    fn breaker_refuses(&mut self, index: usize) -> Result<Option<String>> {
        let key = self.breaker_key(index);
        let definition = definition_hash(&self.sched.entry(index).plan);
        if let Some(old) = self.config.breaker.forget_if_changed(&key, &definition)? {
            log::info(&format!(
                "{key}: the service's definition changed since its {} failure(s); its circuit breaker starts afresh",
                old.consecutive_failures
            ));
            if old.state != hub::breaker::State::Closed {
                self.transition(Some(Transition {
                    key: key.clone(),
                    from: old.state,
                    to: hub::breaker::State::Closed,
                    consecutive_failures: 0,
                    opened_at: None,
                }))?;
            }
        }
        let (decision, transition) = self.config.breaker.check(&key)?;
        self.transition(transition)?;
        Ok((!decision.allowed())
            .then(|| hub::retry::describe_refusal(&key, &decision, self.config.breaker.path())))
    }

    /// Record an attempt's outcome in the circuit breaker `SERVICE:start`.
    fn breaker_record(&mut self, index: usize, ok: bool) -> Result<()> {
        let key = self.breaker_key(index);
        let transition = if ok {
            self.config.breaker.record_success(&key)?
        } else {
            let definition = definition_hash(&self.sched.entry(index).plan);
            self.config
                .breaker
                .record_failure_of(&key, Some(&definition))?
        };
        self.transition(transition)
    }
}

/// A hash of what hub-start runs for a service, and how it judges it: its backend, commands,
/// health check, timeout and compose reference. The breaker stores it with the failures, so a
/// fixed service is not refused for the failures of its broken predecessor. FNV-1a, not the
/// standard library's hasher, whose output may change between Rust releases (the hash is
/// stored in a file).
fn definition_hash(plan: &Plan) -> String {
    /// What is hashed, in this order (the stored hashes depend on it).
    #[derive(serde::Serialize)]
    struct Definition<'a> {
        backend: Backend,
        compose: &'a Option<hub::records::ComposeRef>,
        container_name: &'a Option<String>,
        health: &'a hub::records::HealthSpec,
        healthcheck: &'a Option<serde_json::Value>,
        run: &'a Option<hub::command::CommandSpec>,
        start: &'a Option<hub::command::CommandSpec>,
        timeout_ms: u64,
    }
    let what = Definition {
        backend: plan.backend,
        compose: &plan.compose,
        container_name: &plan.container_name,
        health: &plan.health,
        healthcheck: &plan.healthcheck,
        run: &plan.run,
        start: &plan.start,
        timeout_ms: plan.timeout_ms,
    };
    // Through a `Value`: its objects sort their keys, nested ones too, as the stored hashes did.
    let text = serde_json::to_value(&what)
        .map(|v| v.to_string())
        .unwrap_or_default();
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}
