//! The executor: one event loop that reads plans and health results, asks the scheduler what
//! to do, launches attempts, tells the scheduler what happened, and writes records.
//!
//! Every source of news (stdin, the gate, start commands finishing, probes, signals) is a
//! thread that sends an [`Event`] into one channel, so all state lives on one thread and no
//! lock is needed. Retry delays are the loop's receive timeout, not sleeps. Apart from the
//! loop: the threads reading stdin and the gate ([`readers`]), the circuit breaker it asks and
//! tells ([`breaker`]), the records' contents (`crate::records`), the wording of its log lines
//! ([`messages`]), and which service may start ([`crate::scheduler`], which alone moves a
//! service from state to state).

use crate::launch::{self, Launch, Paths};
use crate::scheduler::{Action, Mode, Scheduler, SkipReason, State};
use hub::backoff::Backoff;
use hub::breaker::Breaker;
use hub::container::ComposeCmd;
use hub::error::exit;
use hub::output::RecordWriter;
use hub::pidfile::Recorded;
use hub::records::{
    self as rec, AttemptOf, Backend, Class, FailReason, Line, Plan, Record, Subject,
};
use hub::{Error, Result, log};

mod breaker;
mod messages;
mod readers;
use nix::sys::signal::Signal;
use std::collections::{BTreeSet, HashMap};
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
    readers::spawn_input_reader(tx.clone())?;
    if let Some(gate) = &config.gate {
        readers::spawn_gate_reader(gate.clone(), tx.clone())?;
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
    let result = deploy.event_loop(&rx);
    if result.is_err() {
        // A launch in flight ends with its pid file written: whatever was started stays
        // reachable by hub-down after we give up on the plan.
        deploy.settle_launches(&rx);
    }
    result
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
        let Some(attempt) = self.sched.awaiting_verdict(index) else {
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
                self.sched.on_healthy(index);
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
            self.sched.on_healthy(index);
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
            self.sched
                .on_retry(index, attempt + 1, Instant::now() + delay);
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
                self.sched.on_healthy(index);
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
        let (level, message) = messages::died_after_healthy(plan, status);
        log::line(level, &format!("{service} {message}"));
        for line in log_tail.iter().rev().take(3).rev() {
            log::info(&messages::log_line(&service, line));
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
        self.sched.on_stopping(index, next_attempt);
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
        let delay = self.retry_delay(index, next_attempt - 1);
        if !self
            .sched
            .on_stopped(index, next_attempt, Instant::now() + delay)
        {
            return;
        }
        let plan = &self.sched.entry(index).plan;
        log::info(&messages::attempt_stopped(plan, next_attempt - 1, message));
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
                for line in messages::aborted(level, failures) {
                    log::error(&line);
                }
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
            self.sched.on_skipped(index);
            return self.skip(index, &SkipReason::Aborted);
        }
        if !healthy {
            if let Some((pid, remaining)) = self.adoptable(index) {
                let service = &self.sched.entry(index).plan.service;
                log::info(&messages::adopted(service, pid, remaining));
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
        log::success(&messages::already_healthy(plan));
        let record = Record::Skipped(rec::Skipped {
            of: self.subject(index),
            reason: rec::SkipReason::AlreadyHealthy,
            dependency: None,
        });
        self.emit(record)?;
        self.sched.on_already_healthy(index);
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
        log::info(&messages::starting(&plan, attempt));
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
                self.sched.on_launched(index, attempt);
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
                self.sched
                    .on_retry(index, attempt + 1, Instant::now() + delay);
            }
            None => {
                let service = &self.sched.entry(index).plan.service;
                log::error(&messages::failed_to_start(service, &message));
                self.service_failed(index, reason.as_str(), true);
            }
        }
        Ok(())
    }

    fn log_retry(&self, index: usize, attempt: u32, why: &str, delay: Duration) {
        let plan = &self.sched.entry(index).plan;
        log::warn(&messages::retrying(plan, attempt, why, delay));
    }

    /// A service failed for good. `announce`: say so in the seed's words (false when
    /// hub-wait-healthy, which reported the health failure, already did).
    fn service_failed(&mut self, index: usize, reason: &str, announce: bool) {
        if announce {
            let (level, line) = messages::service_failed(&self.sched.entry(index).plan, reason);
            log::line(level, &line);
        }
        self.sched.on_failed(index);
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
            let (level, line) = messages::dependency_failed(plan, dep);
            log::line(level, &line);
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
            .level_members(level)
            .iter()
            .map(|&i| self.sched.entry(i))
            .filter(|e| !e.state.decided())
            .map(|e| e.plan.service.as_str())
            .collect();
        log::info(&messages::level_starting(level, &names));
    }

    /// In levels mode, summarise each level once it is decided.
    fn summarise_levels(&mut self) {
        if self.config.mode != Mode::Levels || self.sched.aborted() || !self.sched.input_done() {
            return;
        }
        // Per event: only the levels not summarised yet are looked at, by their counts.
        let after = self
            .levels_summarised
            .last()
            .map_or(0, |&l| l.saturating_add(1));
        let levels: Vec<u32> = self.sched.levels().filter(|&l| l >= after).collect();
        for level in levels {
            if !self.sched.level_decided(level) {
                return;
            }
            self.levels_summarised.insert(level);
            let failed = self
                .sched
                .level_members(level)
                .iter()
                .filter(|&&i| matches!(self.sched.entry(i).state, State::Failed | State::Skipped))
                .count();
            if failed > 0 {
                log::warn(&messages::level_degraded(level, failed));
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
        let (level, line) = messages::finished(&messages::Outcome {
            ok,
            mode: self.config.mode,
            total: entries.len(),
            healthy,
            already_healthy: already,
            started,
            failed,
            skipped,
            elapsed,
            abort_reason: self.abort_reason(),
        });
        log::line(level, &line);
        Ok(status)
    }

    /// Why the deploy failed, in a few words: which CORE service, and why when it was skipped.
    fn abort_reason(&self) -> String {
        let cause = self.sched.abort_cause();
        messages::abort_reason(
            cause.map(|c| self.sched.entry(c).plan.service.as_str()),
            cause
                .and_then(|c| self.blocked_by.get(&c))
                .map(String::as_str),
        )
    }

    /// SIGINT/SIGTERM/SIGHUP: kill in-flight start commands' groups (TERM, then KILL after a
    /// grace, or at once on a second signal),
    /// record what was cut short, and exit 130/143. Launched services keep running.
    /// Wait, up to the kill grace, for the launcher's launches in flight to report back.
    fn settle_launches(&mut self, rx: &Receiver<Event>) {
        self.take_launch_reports(rx, |deploy| !deploy.launching.is_empty());
    }

    /// Take the launcher's reports while `pending` holds, up to the kill grace; a signal
    /// ends the wait at once (a second signal: no more grace).
    fn take_launch_reports(&mut self, rx: &Receiver<Event>, pending: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + KILL_GRACE;
        while pending(self) {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Event::Launched { index, .. }) => {
                    self.in_flight.remove(&index);
                    self.launching.remove(&index);
                }
                Ok(Event::Signal(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    fn interrupt(&mut self, signal: Signal, rx: &Receiver<Event>) -> Result<u8> {
        log::warn(&messages::interrupted(signal));
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
        self.take_launch_reports(rx, |deploy| {
            !deploy.in_flight.is_empty() || !deploy.launching.is_empty()
        });
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
}
