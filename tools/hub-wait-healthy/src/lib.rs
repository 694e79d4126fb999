//! `hub-wait-healthy`: probe every started service concurrently until it is healthy, its
//! deadline passes, or its process is known dead, and say so as records.
//!
//! It sits between `hub-start` and whatever reads health results (`hub-start --gate`,
//! `hub-report`): `started` records in, `healthy` / `unhealthy` / `waiting` records out, every
//! other record passed through byte for byte the moment it is read. One thread reads stdin,
//! one thread waits per service, and the main thread alone writes stdout and the human log.

pub mod cli;
mod containers;
mod exits;
mod status;
mod swarm;
mod waiter;

use exits::{ExitWatcher, Wake};
use hub::error::exit;
use hub::output::RecordWriter;
use hub::records::{self as rec, Line, Record};
use hub::{Result, duration, log, probe, signals};
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};
use waiter::{Report, Started, Verdict};

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
    /// A waiter's report.
    Report { id: u64, report: Report },
    /// SIGINT or SIGTERM.
    Signal(Signal),
}

/// How long an interrupted hub-wait-healthy still passes records through, waiting for its
/// upstream to close: longer than hub-start's grace for killing its start commands (3 s).
const UPSTREAM_GRACE: Duration = Duration::from_secs(5);

/// A wait in progress. Dropping it stops the waiter.
struct Waiting {
    id: u64,
    started: Started,
    since: Instant,
    wake: Sender<Wake>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let _ = self.wake.send(Wake::Stop);
    }
}

/// The main loop's state.
struct Waiter {
    out: RecordWriter,
    events: Sender<Event>,
    waiting: BTreeMap<String, Waiting>,
    next_id: u64,
    run_id: Option<String>,
    healthy: usize,
    failed: usize,
    core_failed: usize,
    bad_input: bool,
    status: status::StatusLine,
    /// Process exits as events; `None` where pidfds are missing (waiters poll instead).
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
    let mut waiter = Waiter {
        out: RecordWriter::stdout(),
        events,
        waiting: BTreeMap::new(),
        next_id: 0,
        run_id: None,
        healthy: 0,
        failed: 0,
        core_failed: 0,
        bad_input: false,
        status: status::StatusLine::for_stderr(),
        exits: ExitWatcher::start().ok(),
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
            let event = if self.status.enabled() {
                match inbox.recv_timeout(STATUS_EVERY) {
                    Ok(event) => Some(event),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match inbox.recv() {
                    Ok(event) => Some(event),
                    Err(_) => break,
                }
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
                    self.upstream_gone();
                }
                Some(Event::Report { id, report }) => self.report(id, report)?,
                Some(Event::Signal(signal)) => return self.interrupted(signal, inbox, eof),
            }
            self.draw_status();
        }
        self.status.clear();
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
            Record::Exited(exited) => {
                self.exited(&exited);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// hub-start says a process it launched exited: news for that attempt's wait.
    fn exited(&mut self, exited: &rec::Exited) {
        if let Some(waiting) = self.waiting.get(&exited.of.service)
            && waiting.started.of.attempt == exited.of.attempt
            && waiting.started.pid == Some(exited.pid)
        {
            let _ = waiting.wake.send(Wake::Exited(Some(exited.exit_status)));
        }
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
        if let Some(old) = self.waiting.remove(&started.of.service) {
            self.forget(&old);
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
        let (wake, inbox) = mpsc::channel();
        let exit_events = match (&self.exits, started.pid) {
            // hub-start's child: its exit comes as a record.
            (_, Some(_)) if started.exit_record => true,
            (Some(exits), Some(pid)) => exits.watch(id, pid, wake.clone()).is_ok(),
            _ => false,
        };
        if started.backend == Some(rec::Backend::Swarm) {
            // One poll thread for every Swarm service, not a thread each.
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
        } else {
            waiter::spawn(
                started.clone(),
                lag,
                inbox,
                exit_events,
                self.events.clone(),
                move |report| Event::Report { id, report },
            )
            .map_err(|e| {
                hub::Error::input(format!(
                    "cannot start a thread to wait for {}: {e}",
                    started.of.service
                ))
            })?;
        }
        self.say(
            log::Level::Debug,
            &format!(
                "{}: waiting up to {} ({} check)",
                started.of.service,
                duration::human(Duration::from_millis(started.timeout_ms)),
                check_name(&started)
            ),
        );
        self.waiting.insert(
            started.of.service.clone(),
            Waiting {
                id,
                started,
                since: Instant::now().checked_sub(lag).unwrap_or_else(Instant::now),
                wake,
            },
        );
        Ok(())
    }

    /// A waiter's report: log it, and write a record for warnings and verdicts.
    fn report(&mut self, id: u64, report: Report) -> Result<()> {
        let Some(name) = self
            .waiting
            .iter()
            .find(|(_, w)| w.id == id)
            .map(|(name, _)| name.clone())
        else {
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
                if let Some(waiting) = self.waiting.remove(&name) {
                    self.forget(&waiting);
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
    fn upstream_gone(&mut self) {
        let Some(exits) = &self.exits else {
            return;
        };
        for waiting in self.waiting.values_mut() {
            let (true, Some(pid)) = (waiting.started.exit_record, waiting.started.pid) else {
                continue;
            };
            match exits.watch(waiting.id, pid, waiting.wake.clone()) {
                // Ours to forget once the wait is over.
                Ok(()) => waiting.started.record.exit_record = false,
                Err(_) => {
                    let _ = waiting.wake.send(Wake::Exited(None));
                }
            }
        }
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
        let waiting = std::mem::take(&mut self.waiting);
        for wait in waiting.values() {
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
        probe::kill_probe_commands();
        let waiting = std::mem::take(&mut self.waiting);
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
                Ok(Event::Report { .. }) => {}
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
