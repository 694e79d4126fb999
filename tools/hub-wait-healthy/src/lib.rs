//! `hub-wait-healthy`: probe every started service concurrently until it is healthy, its
//! deadline passes, or its process is known dead, and say so as records.
//!
//! It sits between `hub-start` and whatever reads health results (`hub-start --gate`,
//! `hub-report`): `started` records in, `healthy` / `unhealthy` / `waiting` records out, every
//! other record passed through byte for byte the moment it is read. One thread reads stdin;
//! the main thread drives every wait (a state machine each, on one timer heap), and alone
//! writes stdout and the human log; probes run on small fixed pools ([`pool`]), exits come from
//! one epoll thread ([`exits`]), and container services are followed by one more loop with a
//! single `docker events` ([`containers`]). The thread count does not grow with the number of
//! services.

pub mod cli;
mod containers;
mod exits;
mod pool;
mod status;
mod swarm;
mod waiter;

use exits::ExitWatcher;
use hub::error::exit;
use hub::output::RecordWriter;
use hub::records::{self as rec, Line, Record};
use hub::{Result, duration, log, probe, signals};
use nix::sys::signal::Signal;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use waiter::{Next, Report, Started, Verdict, Wait};

/// `--max-probe-commands`' default: probe commands running at once.
pub const DEFAULT_PROBE_COMMANDS: &str = "16";

pub use cli::Cli;

/// How often the live status line is redrawn.
const STATUS_EVERY: Duration = Duration::from_millis(250);

/// Everything the main loop reacts to.
enum Event {
    /// One line of stdin, without its newline.
    Line(Vec<u8>),
    /// Reading stdin failed.
    ReadError(String),
    /// Stdin is closed.
    Eof,
    /// A container or Swarm wait's report.
    Report { id: u64, report: Report },
    /// A probe of wait `id` finished (with a pass or a changed outcome, or overdue).
    Probed { id: u64, outcome: probe::Outcome },
    /// A quiet outcome was left in the mailbox after its wait had looked for it.
    Collect,
    /// The process of wait `id`, watched through a pidfd, exited.
    Exited { id: u64 },
    /// SIGINT or SIGTERM.
    Signal(Signal),
}

/// How long an interrupted hub-wait-healthy still passes records through, waiting for its
/// upstream to close: longer than hub-start's grace for killing its start commands (3 s).
const UPSTREAM_GRACE: Duration = Duration::from_secs(5);

/// A wait in progress. Dropping it stops the wait (and skips its queued probe).
struct Waiting {
    id: u64,
    started: Started,
    since: Instant,
    work: Work,
}

/// How a wait is carried out.
enum Work {
    /// A local service: driven by the main loop.
    Local {
        wait: Box<Wait>,
        /// Set when the wait is over: a probe still queued for it is skipped.
        cancelled: Arc<AtomicBool>,
        /// Set when the running probe's outcome was looked for and not found: its quiet
        /// outcome must wake the loop.
        overdue: Arc<AtomicBool>,
        /// The earliest time the wait has an entry on the timer heap for.
        wake_at: Option<Instant>,
    },
    /// A Swarm service: followed by the one Swarm poll thread ([`swarm`]).
    Swarm { stop: Sender<swarm::Wake> },
    /// A container service: followed by the one engine loop (dropping the handle ends it).
    Container { _handle: containers::Handle },
}

impl Drop for Waiting {
    fn drop(&mut self) {
        match &self.work {
            Work::Local { cancelled, .. } => cancelled.store(true, Ordering::Relaxed),
            Work::Swarm { stop } => {
                let _ = stop.send(swarm::Wake::Stop);
            }
            Work::Container { .. } => {}
        }
    }
}

/// The main loop's state.
struct Waiter {
    out: RecordWriter,
    events: Sender<Event>,
    waiting: BTreeMap<String, Waiting>,
    /// The service of each wait in progress, by id.
    ids: HashMap<u64, String>,
    /// When waits want to be advanced: (time, id); an entry is live while it is the wait's
    /// `wake_at`, stale ones are skipped.
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    /// The probe pools.
    pool: Arc<pool::Pool>,
    /// Quiet probe outcomes (the same failure as the wait's last), left here by the pool
    /// without waking the loop; the loop collects them when their wait looks for them.
    mailbox: Arc<Mutex<Vec<(u64, probe::Outcome, Instant)>>>,
    /// The container services' waits, started with the first one.
    engine: Option<containers::Engine>,
    next_id: u64,
    run_id: Option<String>,
    healthy: usize,
    failed: usize,
    core_failed: usize,
    bad_input: bool,
    status: status::StatusLine,
    /// Process exits as events; `None` where pidfds are missing (waits poll instead).
    exits: Option<ExitWatcher>,
    /// `-v`: debug lines are shown.
    verbose: bool,
}

/// Run `hub-wait-healthy`.
pub fn run(args: Cli) -> Result<u8> {
    let _ = containers::COMPOSE_CMD.set(args.compose.compose_cmd);
    let (events, inbox) = mpsc::channel();
    let on_signal = events.clone();
    signals::watch(move |signal| {
        let _ = on_signal.send(Event::Signal(signal));
    })?;
    signals::stop_with_parent()?;
    let reader = events.clone();
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || read_stdin(&reader))
        .map_err(|e| hub::Error::input(format!("cannot start the stdin reader: {e}")))?;
    let commands = args.max_probe_commands as usize;
    let pool = Arc::new(pool::Pool::new(commands));
    let on_exit = events.clone();
    let exits = ExitWatcher::start(Box::new(move |id| {
        let _ = on_exit.send(Event::Exited { id });
    }))
    .ok();
    let mut waiter = Waiter {
        out: RecordWriter::stdout(),
        events,
        waiting: BTreeMap::new(),
        ids: HashMap::new(),
        timers: BinaryHeap::new(),
        pool,
        mailbox: Arc::default(),
        engine: None,
        next_id: 0,
        run_id: None,
        healthy: 0,
        failed: 0,
        core_failed: 0,
        bad_input: false,
        status: status::StatusLine::for_stderr(),
        exits,
        verbose: args.common.verbose > 0,
    };
    waiter.main_loop(&inbox)
}

/// Send each stdin line to the main loop, then `Eof`.
fn read_stdin(events: &Sender<Event>) {
    let mut input = std::io::stdin().lock();
    loop {
        let mut line = Vec::new();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if events.send(Event::Line(line)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = events.send(Event::ReadError(e.to_string()));
                break;
            }
        }
    }
    let _ = events.send(Event::Eof);
}

impl Waiter {
    fn main_loop(&mut self, inbox: &Receiver<Event>) -> Result<u8> {
        let mut line_no = 0usize;
        let mut eof = false;
        while !(eof && self.waiting.is_empty()) {
            let mut until = self.timers.peek().map(|Reverse((at, _))| *at);
            if self.status.enabled() {
                let redraw = Instant::now() + STATUS_EVERY;
                until = Some(until.map_or(redraw, |at| at.min(redraw)));
            }
            let event = match until {
                Some(until) => {
                    match inbox.recv_timeout(until.saturating_duration_since(Instant::now())) {
                        Ok(event) => Some(event),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match inbox.recv() {
                    Ok(event) => Some(event),
                    Err(_) => break,
                },
            };
            match event {
                None => {}
                Some(Event::Line(line)) => {
                    line_no += 1;
                    self.line(&line, line_no)?;
                }
                Some(Event::ReadError(e)) => {
                    self.bad_input = true;
                    self.say(log::Level::Error, &format!("reading stdin: {e}"));
                    eof = true;
                }
                Some(Event::Eof) => {
                    eof = true;
                    self.upstream_gone()?;
                }
                Some(Event::Report { id, report }) => self.report(id, report)?,
                Some(Event::Probed { id, outcome }) => {
                    self.drive(id, |wait, started, now, reports| {
                        wait.probed(started, outcome, now, reports)
                    })?;
                }
                Some(Event::Collect) => self.collect()?,
                Some(Event::Exited { id }) => self.drive(id, |wait, started, now, reports| {
                    wait.exited(None);
                    wait.advance(started, now, reports)
                })?,
                Some(Event::Signal(signal)) => return self.interrupted(signal, inbox, eof),
            }
            self.collect()?;
            self.run_timers()?;
            self.draw_status();
        }
        self.status.clear();
        // A probe still running for a wait that ended without it (superseded, aborted) is not
        // left behind, without an owner, when this process exits.
        probe::kill_probe_commands();
        Ok(if self.bad_input {
            exit::ERROR
        } else if self.core_failed > 0 {
            exit::NO
        } else {
            exit::OK
        })
    }

    /// A log line, with the live status line cleared first (unless the line is not shown).
    fn say(&mut self, level: log::Level, message: &str) {
        if level != log::Level::Debug || self.verbose {
            self.status.clear();
        }
        log::line(level, message);
    }

    fn draw_status(&mut self) {
        if !self.status.enabled() {
            return;
        }
        let mut waits: Vec<(&str, Duration)> = self
            .waiting
            .iter()
            .map(|(name, w)| (name.as_str(), w.since.elapsed()))
            .collect();
        waits.sort_by_key(|w| std::cmp::Reverse(w.1));
        let text = status::text(self.healthy, self.failed, &waits);
        self.status.draw(&text);
    }

    /// One input line: pass it through, or start a wait for a `started` record.
    fn line(&mut self, line: &[u8], line_no: usize) -> Result<()> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let Ok(text) = std::str::from_utf8(line) else {
            self.bad_line(&format!(
                "stdin:{line_no}: not UTF-8 text; records are JSON lines (skipped)"
            ));
            return Ok(());
        };
        let parsed = match Line::parse(text, "stdin", line_no) {
            Ok(parsed) => parsed,
            Err(e) => {
                // Only the records read here must match their type; any other passes through.
                match hub::records::parse_line(text, "stdin", line_no) {
                    Ok((envelope, _))
                        if !matches!(envelope.kind.as_str(), "started" | "exited" | "finished") =>
                    {
                        return self.out.line(text);
                    }
                    Ok((envelope, _)) if envelope.kind == "started" => self.bad_line(&format!(
                        "{e} (a started record needs service, class, timeout_ms and health; skipped)"
                    )),
                    _ => self.bad_line(&format!("{e} (skipped)")),
                }
                return Ok(());
            }
        };
        if parsed.run_id.is_some() {
            self.run_id.clone_from(&parsed.run_id);
        }
        // Every record passes through, `started` included: downstream (the gate, the events
        // file, hub-report) sees the whole story.
        self.out.line(text)?;
        match parsed.record {
            Record::Finished(finished) if !finished.ok => self.abort(),
            Record::Started(record) => self.start(Started {
                ts: parsed.ts,
                run_id: parsed.run_id,
                record: *record,
            }),
            Record::Exited(exited) => self.exited(&exited),
            _ => Ok(()),
        }
    }

    /// hub-start says a process it launched exited: news for that attempt's wait.
    fn exited(&mut self, exited: &rec::Exited) -> Result<()> {
        let Some(waiting) = self.waiting.get(&exited.of.service) else {
            return Ok(());
        };
        if waiting.started.of.attempt != exited.of.attempt
            || waiting.started.pid != Some(exited.pid)
        {
            return Ok(());
        }
        let status = exited.exit_status;
        self.drive(waiting.id, |wait, started, now, reports| {
            wait.exited(Some(status));
            wait.advance(started, now, reports)
        })
    }

    /// Advance wait `id` with `step` at the current time: queue the probe it asks for, set its
    /// timer, and handle its reports (its verdict among them).
    fn drive(
        &mut self,
        id: u64,
        step: impl FnOnce(&mut Wait, &Started, Instant, &mut Vec<Report>) -> Next,
    ) -> Result<()> {
        let Some(waiting) = self
            .ids
            .get(&id)
            .and_then(|name| self.waiting.get_mut(name))
        else {
            // A finished or superseded wait: its news is stale.
            return Ok(());
        };
        let Work::Local {
            wait,
            cancelled,
            overdue,
            wake_at,
        } = &mut waiting.work
        else {
            return Ok(());
        };
        let mut reports = Vec::new();
        let next = step(wait, &waiting.started, Instant::now(), &mut reports);
        if let Next::Continue { probe, wake } = next {
            let submitted = probe.map(|(due, prober)| {
                let kind = if prober.is_command() {
                    pool::Kind::Command
                } else {
                    pool::Kind::Net
                };
                let events = self.events.clone();
                let (mailbox, overdue) = (self.mailbox.clone(), overdue.clone());
                overdue.store(false, Ordering::SeqCst);
                let last = wait.last().cloned();
                let task = Box::new(move || {
                    let outcome = prober.probe();
                    if outcome.is_ok() || last.as_ref() != Some(&outcome) {
                        let _ = events.send(Event::Probed { id, outcome });
                        return;
                    }
                    // Quiet: the loop looks for it one gap later, unless it already did.
                    if let Ok(mut mailbox) = mailbox.lock() {
                        mailbox.push((id, outcome, Instant::now()));
                    }
                    if overdue.load(Ordering::SeqCst) {
                        let _ = events.send(Event::Collect);
                    }
                });
                self.pool.submit(kind, due, cancelled.clone(), task)
            });
            if let Some(Err(e)) = submitted {
                let message = format!("cannot start a thread to probe: {e}");
                reports.push(Report::Done(Verdict::probe_error(
                    waiting.since.elapsed(),
                    message,
                )));
            }
            // One live timer per wait: an earlier one already set will advance it in time.
            if wake_at.is_none_or(|at| wake < at) {
                *wake_at = Some(wake);
                self.timers.push(Reverse((wake, id)));
            }
        }
        for report in reports {
            self.report(id, report)?;
        }
        Ok(())
    }

    /// Take in the quiet probe outcomes the pool left.
    fn collect(&mut self) -> Result<()> {
        let quiet = match self.mailbox.lock() {
            Ok(mut mailbox) => std::mem::take(&mut *mailbox),
            Err(_) => Vec::new(),
        };
        for (id, outcome, finished) in quiet {
            // As of when it finished: the next probe is due one gap after that, not after now.
            self.drive(id, |wait, started, _, reports| {
                wait.probed(started, outcome, finished, reports)
            })?;
        }
        Ok(())
    }

    /// Advance every wait whose timer is due.
    fn run_timers(&mut self) -> Result<()> {
        let now = Instant::now();
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let live = self
                .ids
                .get(&id)
                .and_then(|name| self.waiting.get_mut(name))
                .is_some_and(|waiting| match &mut waiting.work {
                    Work::Local { wake_at, .. } if *wake_at == Some(at) => {
                        *wake_at = None;
                        true
                    }
                    _ => false,
                });
            if live {
                self.drive(id, |wait, started, now, reports| {
                    wait.advance(started, now, reports)
                })?;
                // Its probe's outcome was looked for and is not in: it must say when it comes
                // (then the mailbox is read once more, in case it came just now).
                let overdue = self
                    .ids
                    .get(&id)
                    .and_then(|name| self.waiting.get(name))
                    .and_then(|waiting| match &waiting.work {
                        Work::Local { wait, overdue, .. } if wait.overdue(now) => {
                            Some(overdue.clone())
                        }
                        _ => None,
                    });
                if let Some(overdue) = overdue {
                    overdue.store(true, Ordering::SeqCst);
                    self.collect()?;
                }
            }
        }
        // Superseded timers pile up (a probe's outcome sets an earlier one than the deadline):
        // rebuilt from the live ones when they outnumber the waits.
        if self.timers.len() > 2 * self.waiting.len() + 64 {
            self.timers = self
                .waiting
                .values()
                .filter_map(|waiting| match &waiting.work {
                    Work::Local {
                        wake_at: Some(at), ..
                    } => Some(Reverse((*at, waiting.id))),
                    _ => None,
                })
                .collect();
        }
        Ok(())
    }

    fn bad_line(&mut self, message: &str) {
        self.bad_input = true;
        self.say(log::Level::Error, message);
    }

    /// Start waiting for a service (replacing a wait for an earlier attempt, if any).
    fn start(&mut self, started: Started) -> Result<()> {
        let lag = started.ts.map_or(Duration::ZERO, |ts| {
            Duration::from_millis(
                hub::time::now_ms()
                    .saturating_sub(ts)
                    .min(started.timeout_ms),
            )
        });
        if let Some(old) = self.remove(&started.of.service) {
            drop(old);
            self.say(
                log::Level::Debug,
                &format!(
                    "{}: attempt {} replaces the wait for an earlier attempt",
                    started.of.service, started.of.attempt
                ),
            );
        }
        self.next_id += 1;
        let id = self.next_id;
        let name = started.of.service.clone();
        let work = if started.backend == Some(rec::Backend::Swarm) {
            // One poll thread for every Swarm service, not a thread each.
            let (stop, inbox) = mpsc::channel();
            let events = self.events.clone();
            swarm::watch(swarm::Watch {
                started: started.clone(),
                lag,
                stop: inbox,
                report: Box::new(move |report| {
                    let _ = events.send(Event::Report { id, report });
                }),
            })
            .map_err(hub::Error::input)?;
            Work::Swarm { stop }
        } else if containers::is_container(&started) {
            if self.engine.is_none() {
                let events = self.events.clone();
                let engine = containers::Engine::start(
                    self.pool.clone(),
                    Box::new(move |id, report| events.send(Event::Report { id, report }).is_ok()),
                )
                .map_err(|e| {
                    hub::Error::input(format!("cannot start a thread to wait for {name}: {e}"))
                })?;
                self.engine = Some(engine);
            }
            match &self.engine {
                Some(engine) => Work::Container {
                    _handle: engine.add(id, started.clone(), lag),
                },
                None => return Ok(()),
            }
        } else {
            let exit_events = match (&self.exits, started.pid) {
                // hub-start's child: its exit comes as a record.
                (_, Some(_)) if started.exit_record => true,
                (Some(exits), Some(pid)) => exits.watch(id, pid).is_ok(),
                _ => false,
            };
            match Wait::new(&started, lag, exit_events) {
                Ok(wait) => Work::Local {
                    wait: Box::new(wait),
                    cancelled: Arc::default(),
                    overdue: Arc::default(),
                    wake_at: None,
                },
                Err(verdict) => {
                    if let (Some(exits), true) = (&self.exits, exit_events) {
                        exits.forget(id);
                    }
                    return self.verdict(&started, &verdict);
                }
            }
        };
        self.say(
            log::Level::Debug,
            &format!(
                "{name}: waiting up to {} ({} check)",
                duration::human(Duration::from_millis(started.timeout_ms)),
                check_name(&started)
            ),
        );
        self.ids.insert(id, name.clone());
        self.waiting.insert(
            name,
            Waiting {
                id,
                started,
                since: Instant::now().checked_sub(lag).unwrap_or_else(Instant::now),
                work,
            },
        );
        self.drive(id, |wait, started, now, reports| {
            wait.advance(started, now, reports)
        })
    }

    /// End wait `name`: stop watching its process and forget its id.
    fn remove(&mut self, name: &str) -> Option<Waiting> {
        let waiting = self.waiting.remove(name)?;
        self.ids.remove(&waiting.id);
        self.forget(&waiting);
        Some(waiting)
    }

    /// A wait's report: log it, and write a record for warnings and verdicts.
    fn report(&mut self, id: u64, report: Report) -> Result<()> {
        let Some(name) = self.ids.get(&id).cloned() else {
            // A superseded wait: its news is stale.
            return Ok(());
        };
        match report {
            Report::Probe { number, outcome } => {
                self.say(
                    log::Level::Debug,
                    &format!("{name}: probe {number}: {outcome}"),
                );
                Ok(())
            }
            Report::Waiting {
                percent,
                elapsed,
                last_probe,
            } => self.waiting_record(&name, percent, elapsed, last_probe.as_deref()),
            Report::Done(verdict) => {
                if let Some(waiting) = self.remove(&name) {
                    self.verdict(&waiting.started, &verdict)?;
                }
                Ok(())
            }
        }
    }

    /// Stdin closed: hub-start, which reports its children's exits as `exited` records, is
    /// gone (finished without a gate, interrupted, or killed), so no more exit news will come
    /// from it. From here on its children are watched like anyone's, through a pidfd; one that
    /// is already gone is announced at once.
    fn upstream_gone(&mut self) -> Result<()> {
        let Some(exits) = &self.exits else {
            return Ok(());
        };
        let mut gone = Vec::new();
        for waiting in self.waiting.values_mut() {
            let (true, Some(pid)) = (waiting.started.exit_record, waiting.started.pid) else {
                continue;
            };
            match exits.watch(waiting.id, pid) {
                // Ours to forget once the wait is over.
                Ok(()) => waiting.started.record.exit_record = false,
                Err(_) => gone.push(waiting.id),
            }
        }
        for id in gone {
            self.drive(id, |wait, started, now, reports| {
                wait.exited(None);
                wait.advance(started, now, reports)
            })?;
        }
        Ok(())
    }

    /// Stop watching a finished wait's process.
    fn forget(&self, waiting: &Waiting) {
        if let (Some(exits), Some(_), false) = (
            &self.exits,
            waiting.started.pid,
            waiting.started.exit_record,
        ) {
            exits.forget(waiting.id);
        }
    }

    fn waiting_record(
        &mut self,
        name: &str,
        percent: u32,
        elapsed: Duration,
        last_probe: Option<&str>,
    ) -> Result<()> {
        let Some(started) = self.waiting.get(name).map(|w| w.started.clone()) else {
            return Ok(());
        };
        let timeout = Duration::from_millis(started.timeout_ms);
        self.say(
            log::Level::Warn,
            &format!(
                "{name} is still not healthy after {} ({percent}% of {}): {}",
                duration::human(elapsed),
                duration::human(timeout),
                last_probe.unwrap_or("no probe has finished yet")
            ),
        );
        let record = Record::Waiting(rec::Waiting {
            of: started.of.clone(),
            percent,
            elapsed_ms: duration::to_ms(elapsed),
            timeout_ms: started.timeout_ms,
            last_probe: last_probe.map(str::to_owned),
        });
        self.out.emit(run_id(&started, &self.run_id), record)
    }

    fn verdict(&mut self, started: &Started, verdict: &Verdict) -> Result<()> {
        let name = started.of.service.as_str();
        let run_id = run_id(started, &self.run_id).map(str::to_owned);
        match verdict {
            Verdict::Healthy {
                ready,
                probes,
                failures,
                tasks,
            } => {
                self.healthy += 1;
                let took = duration::human(*ready);
                let line = if started.health.check == hub::records::Check::Completed {
                    format!("{name} completed with exit 0 after {took}")
                } else {
                    format!("{name} is healthy ({took})")
                };
                self.say(log::Level::Success, &line);
                let record = Record::Healthy(rec::Healthy {
                    of: started.of.clone(),
                    is_final: true,
                    ready_ms: duration::to_ms(*ready),
                    probes: *probes,
                    failures: *failures,
                    tasks: tasks.clone(),
                });
                self.out.emit(run_id.as_deref(), record)
            }
            Verdict::Unhealthy {
                reason,
                elapsed,
                probes,
                failures,
                last_probe,
                exit_status,
                log_tail,
                message,
            } => {
                // The same rule hub-start acts on (it alone decides what follows).
                let is_final = !(rec::Unhealthy::retryable(*reason, *exit_status)
                    && started.of.attempts_left());
                self.unhealthy_log(started, is_final, message, log_tail.as_deref());
                let record = Record::Unhealthy(rec::Unhealthy {
                    of: started.of.clone(),
                    is_final,
                    reason: *reason,
                    elapsed_ms: duration::to_ms(*elapsed),
                    probes: *probes,
                    failures: *failures,
                    last_probe: last_probe.clone(),
                    exit_status: *exit_status,
                    log_tail: log_tail.clone(),
                    message: message.clone(),
                });
                self.out.emit(run_id.as_deref(), record)
            }
        }
    }

    /// The human lines for an unhealthy verdict, in the seed's words.
    fn unhealthy_log(
        &mut self,
        started: &Started,
        is_final: bool,
        message: &str,
        log_tail: Option<&[String]>,
    ) {
        let name = started.of.service.as_str();
        if !is_final {
            let attempts = if started.of.max_attempts == 0 {
                format!("attempt {}", started.of.attempt)
            } else {
                format!("attempt {}/{}", started.of.attempt, started.of.max_attempts)
            };
            self.say(
                log::Level::Warn,
                &format!("{name} {message} ({attempts}; hub-start will try again)"),
            );
        } else if started.of.class == hub::records::Class::Core {
            self.failed += 1;
            self.core_failed += 1;
            self.say(
                log::Level::Error,
                &format!("{name} is unhealthy: {message}"),
            );
        } else {
            self.failed += 1;
            self.say(log::Level::Warn, &format!("{name} is unhealthy: {message}"));
        }
        for line in log_tail.unwrap_or_default().iter().rev().take(3).rev() {
            self.say(log::Level::Info, &format!("{name} log: {line}"));
        }
    }

    /// hub-start gave up (a CORE failure: `finished` with `ok: false`): nobody acts on the
    /// remaining results, so stop waiting and say so, instead of waiting out their timeouts.
    fn abort(&mut self) -> Result<()> {
        let names: Vec<String> = self.waiting.keys().cloned().collect();
        let waiting: Vec<Waiting> = names.iter().filter_map(|name| self.remove(name)).collect();
        for wait in &waiting {
            let started = &wait.started;
            let message = "no longer waited for: the deploy stopped after a CORE failure";
            let record = Record::Unhealthy(rec::Unhealthy {
                of: started.of.clone(),
                is_final: true,
                reason: rec::UnhealthyReason::Aborted,
                elapsed_ms: duration::to_ms(wait.since.elapsed()),
                probes: 0,
                failures: 0,
                last_probe: None,
                exit_status: None,
                log_tail: None,
                message: message.to_owned(),
            });
            self.say(
                log::Level::Warn,
                &format!("{}: {message}", started.of.service),
            );
            self.out.emit(run_id(started, &self.run_id), record)?;
        }
        Ok(())
    }

    /// SIGINT/SIGTERM: stop every wait and probe, say who was still waited for, pass on what
    /// upstream still writes (unless stdin already ended), and exit.
    fn interrupted(&mut self, signal: Signal, inbox: &Receiver<Event>, eof: bool) -> Result<u8> {
        let waiting = std::mem::take(&mut self.waiting);
        // Queued probes are skipped, then the running commands are killed.
        for wait in waiting.values() {
            if let Work::Local { cancelled, .. } = &wait.work {
                cancelled.store(true, Ordering::Relaxed);
            }
        }
        probe::kill_probe_commands();
        let in_flight: Vec<&str> = waiting.keys().map(String::as_str).collect();
        let name = signal.as_str();
        self.say(
            log::Level::Warn,
            &format!(
                "interrupted by {name}{}",
                if in_flight.is_empty() {
                    String::new()
                } else {
                    format!(" while waiting for {}", in_flight.join(", "))
                }
            ),
        );
        let record = Record::Interrupted(rec::Interrupted {
            tool: "hub-wait-healthy".into(),
            signal: rec::SignalName::of(signal),
            in_flight: in_flight.iter().map(|s| (*s).to_owned()).collect(),
        });
        self.out.emit(self.run_id.as_deref(), record)?;
        drop(waiting);
        if !eof {
            self.pass_through_until_upstream_ends(inbox)?;
        }
        Ok(signals::exit_code(signal))
    }

    /// After an interrupt, keep passing stdin through until it closes: a Ctrl-C reaches
    /// hub-start too, and its last records (its own `interrupted`) come after ours. Bounded by
    /// [`UPSTREAM_GRACE`]; a second signal ends it at once.
    fn pass_through_until_upstream_ends(&mut self, inbox: &Receiver<Event>) -> Result<()> {
        let deadline = Instant::now() + UPSTREAM_GRACE;
        loop {
            match inbox.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Event::Line(line)) => {
                    if let Ok(text) = std::str::from_utf8(&line)
                        && !text.trim().is_empty()
                    {
                        self.out.line(text)?;
                    }
                }
                Ok(
                    Event::Report { .. }
                    | Event::Probed { .. }
                    | Event::Collect
                    | Event::Exited { .. },
                ) => {}
                Ok(Event::Eof | Event::ReadError(_) | Event::Signal(_)) | Err(_) => return Ok(()),
            }
        }
    }
}

/// The run id for a record about `started`: its own, else the last one seen.
fn run_id<'a>(started: &'a Started, last: &'a Option<String>) -> Option<&'a str> {
    started.run_id.as_deref().or(last.as_deref())
}

/// The check's kind, for log lines.
fn check_name(started: &Started) -> &'static str {
    use hub::records::Check;
    match started.health.check {
        Check::Cmd { .. } => "cmd",
        Check::Http { .. } => "http",
        Check::Tcp { .. } => "tcp",
        Check::Container { .. } => "container",
        Check::Exec { .. } => "exec",
        Check::Completed => "completion",
        Check::None => "no",
    }
}
