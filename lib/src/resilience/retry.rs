//! The retry loop of `hub-retry` (and `hub-breaker run`): run a command, and while it fails,
//! wait and run it again, asking a circuit breaker first when one is given.
//!
//! Each attempt runs directly (no shell) in its own process group, with the standard streams
//! inherited, so a timeout can kill everything it started. SIGINT and SIGTERM are forwarded to
//! the running attempt, end a delay at once, and stop the loop: Ctrl-C is never retried
//! (tirsen/retry-cli#3), and neither is a child that SIGINT killed.

use crate::backoff::{Backoff, Rng, format_delay};
use crate::breaker::{Breaker, Decision, Released, Transition};
use crate::codes::ExitCodes;
use crate::error::exit;
use crate::output::RecordWriter;
use crate::process::{Detach, Running, status_code};
use crate::records::{Attempt, Record};
use crate::{Error, Result, log, signals};
use nix::sys::signal::Signal;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// When and how often to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Attempts in all (1 = no retry; 0 = until success).
    pub attempts: u32,
    /// The delays between attempts.
    pub backoff: Backoff,
    /// The longest one attempt may run; its process group is then killed (status 124).
    pub timeout: Option<Duration>,
    /// The overall budget: no attempt starts that it cannot cover.
    pub max_time: Option<Duration>,
    /// Between SIGTERM and SIGKILL when an attempt is killed.
    pub grace: Duration,
    /// Retry only these statuses (all failures when `None`).
    pub retry_on: Option<ExitCodes>,
    /// Never retry these statuses.
    pub stop_on: Option<ExitCodes>,
}

impl Default for Policy {
    /// The seed's policy: 3 attempts, 2s doubling to 30s, no timeout.
    fn default() -> Self {
        Policy {
            attempts: 3,
            backoff: Backoff::default(),
            timeout: None,
            max_time: None,
            grace: Duration::from_secs(5),
            retry_on: None,
            stop_on: None,
        }
    }
}

/// Why an attempt is not retried, when its outcome alone decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRetry {
    /// It succeeded.
    Succeeded,
    /// It was interrupted (SIGINT/SIGTERM to us, or SIGINT killed it).
    Interrupted,
    /// Its status is not in `--retry-on`.
    NotInRetryOn(ExitCodes),
    /// Its status is in `--stop-on`.
    InStopOn(ExitCodes),
}

impl Policy {
    /// Does `outcome` (with shell-style `status`) allow another attempt? Attempts left and the
    /// time budget are checked separately.
    pub fn retryable(&self, outcome: Outcome, status: i32) -> Result<(), NoRetry> {
        match outcome {
            Outcome::Success => return Err(NoRetry::Succeeded),
            Outcome::Interrupted | Outcome::Refused => return Err(NoRetry::Interrupted),
            Outcome::Failure | Outcome::Timeout => {}
        }
        if let Some(codes) = self.retry_on.as_ref().filter(|c| !c.contains(status)) {
            return Err(NoRetry::NotInRetryOn(codes.clone()));
        }
        if let Some(codes) = self.stop_on.as_ref().filter(|c| c.contains(status)) {
            return Err(NoRetry::InStopOn(codes.clone()));
        }
        Ok(())
    }

    /// Are attempts left after attempt `attempt` (1-based)?
    pub fn attempts_left(&self, attempt: u32) -> bool {
        self.attempts == 0 || attempt < self.attempts
    }
}

/// How one attempt ended, as `attempt` records spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Exit status 0.
    Success,
    /// A non-zero status.
    Failure,
    /// Killed after `--timeout` (status 124).
    Timeout,
    /// The breaker refused it (status 75).
    Refused,
    /// SIGINT/SIGTERM stopped it.
    Interrupted,
}

impl Outcome {
    /// `success`, `failure`, `timeout`, `refused` or `interrupted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Timeout => "timeout",
            Outcome::Refused => "refused",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// SIGINT/SIGTERM/SIGHUP, turned into events the loop waits on, and forwarded to the running
/// attempt's process group. As GNU `timeout -k`: a group still running `grace` after the
/// signal is KILLed, and a second signal KILLs it at once.
#[derive(Debug)]
pub struct Interrupts {
    child_group: Arc<AtomicU32>,
    grace: Duration,
    events: Receiver<Signal>,
}

impl Interrupts {
    /// Start watching (call first thing, before any thread starts; see [`signals::watch`]);
    /// `grace` is how long a child may take to end after a forwarded signal.
    pub fn watch(grace: Duration) -> Result<Interrupts> {
        let child_group = Arc::new(AtomicU32::new(0));
        let (tx, events) = mpsc::channel();
        let forward_to = Arc::clone(&child_group);
        let seen = AtomicU32::new(0);
        signals::watch(move |signal| {
            let group = forward_to.load(Ordering::SeqCst);
            if group != 0 {
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    let _ = crate::process::signal_group(group, signal);
                    escalate_after(&forward_to, group, grace);
                    log::warn(&format!(
                        "{} forwarded to the command; KILL in {} if it still runs (a second signal: at once)",
                        signal.as_str(),
                        format_delay(grace)
                    ));
                } else {
                    let _ = crate::process::signal_group(group, Signal::SIGKILL);
                    log::warn(&format!("{}: a second signal, KILL sent", signal.as_str()));
                }
            } else {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            let _ = tx.send(signal);
        })?;
        signals::stop_with_parent()?;
        Ok(Interrupts {
            child_group,
            grace,
            events,
        })
    }

    /// The first signal received, if any.
    pub fn received(&self) -> Option<Signal> {
        signals::received()
    }

    /// Forward signals to `child`'s group from now on (and at once, if one already came).
    pub fn attach(&self, child: &Running) {
        self.child_group.store(child.pid(), Ordering::SeqCst);
        if let Some(signal) = self.received() {
            let _ = child.signal_group(signal);
            escalate_after(&self.child_group, child.pid(), self.grace);
        }
    }

    /// Stop forwarding (the child is gone).
    pub fn detach(&self) {
        self.child_group.store(0, Ordering::SeqCst);
    }

    /// Wait `delay`, or less if a signal comes: the signal, if one came.
    pub fn sleep(&self, delay: Duration) -> Option<Signal> {
        if let Some(signal) = self.received() {
            return Some(signal);
        }
        match self.events.recv_timeout(delay) {
            Ok(signal) => Some(signal),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(delay);
                self.received()
            }
        }
    }
}

/// KILL process group `group` after `grace` if it is still the attached child then.
fn escalate_after(attached: &Arc<AtomicU32>, group: u32, grace: Duration) {
    let attached = Arc::clone(attached);
    let _ = std::thread::Builder::new()
        .name("kill-after".into())
        .spawn(move || {
            std::thread::sleep(grace);
            if attached.load(Ordering::SeqCst) == group {
                let _ = crate::process::signal_group(group, Signal::SIGKILL);
            }
        });
}

/// One retry run: what to run, how, and where to report.
pub struct Job<'a> {
    /// The name in messages and records (`--name`, else the program).
    pub name: String,
    /// The command and its arguments; run directly, no shell.
    pub argv: Vec<OsString>,
    /// When to retry.
    pub policy: Policy,
    /// The breaker and key to ask before each attempt.
    pub breaker: Option<(&'a Breaker, String)>,
    /// Where `attempt` and `breaker` records go.
    pub events: Option<RecordWriter>,
    /// The run id for records.
    pub run_id: Option<String>,
    /// A spooled copy of stdin ([`spool_stdin`]) that every attempt reads from its start;
    /// `None`: attempts inherit stdin.
    pub stdin: Option<std::fs::File>,
}

/// Read all of stdin into an unnamed temporary file (created in the temp folder and unlinked at
/// once, so nothing is left behind), for every attempt to read from its start.
pub fn spool_stdin() -> Result<std::fs::File> {
    let folder = std::env::temp_dir();
    let path = folder.join(format!(
        "hub-retry-stdin-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| {
            Error::io(
                format!(
                    "--replay-stdin: creating a spool file in {}",
                    folder.display()
                ),
                &e,
            )
        })?;
    let _ = std::fs::remove_file(&path);
    std::io::copy(&mut std::io::stdin().lock(), &mut file)
        .map_err(|e| Error::io("--replay-stdin: reading stdin into the spool file", &e))?;
    Ok(file)
}

/// What one attempt came to.
struct Ended {
    outcome: Outcome,
    status: i32,
    detail: String,
    duration: Duration,
}

/// Run the job's loop; returns the exit status: 0, the last attempt's status, 75 refused by
/// the breaker, 130/143 interrupted, 126/127 the command cannot be run.
pub fn run(mut job: Job<'_>, interrupts: &Interrupts) -> Result<u8> {
    let program = job
        .argv
        .first()
        .cloned()
        .ok_or_else(|| Error::input("no command given: write `-- CMD [ARGS...]`"))?;
    let started = Instant::now();
    let mut rng = Rng::from_entropy();
    let mut previous_delay = job.policy.backoff.base;
    let mut attempt: u32 = 1;
    loop {
        if let Some(signal) = interrupts.received() {
            return Ok(signals::exit_code(signal));
        }
        if let Some(refused) = ask_breaker(&mut job, attempt)? {
            return Ok(refused);
        }
        let timeout = attempt_timeout(&job.policy, started.elapsed());
        log::debug(&format!(
            "{}: attempt {} starts (timeout {})",
            job.name,
            of_attempts(attempt, job.policy.attempts),
            timeout.map_or_else(|| "none".to_owned(), format_delay)
        ));
        let mut ended = run_attempt(
            &program,
            &job.argv[1..],
            job.stdin.as_ref(),
            timeout,
            job.policy.grace,
            interrupts,
        )?;
        if ended.outcome == Outcome::Timeout && timeout != job.policy.timeout {
            // The budget, not --timeout, ended it.
            let budget = format_delay(job.policy.max_time.unwrap_or_default());
            ended.detail = format!("was stopped at the end of --max-time {budget} (exit 124)");
        }
        record_in_breaker(&mut job, &ended)?;
        let of = of_attempts(attempt, job.policy.attempts);
        if ended.outcome == Outcome::Success {
            job.write_attempt(attempt, &ended, None)?;
            if attempt > 1 {
                log::success(&format!("{}: recovered after {attempt} attempts", job.name));
            }
            return Ok(exit::OK);
        }
        if ended.outcome == Outcome::Interrupted {
            job.write_attempt(attempt, &ended, None)?;
            let signal = interrupts.received().unwrap_or(Signal::SIGINT);
            log::warn(&format!(
                "{}: attempt {of} interrupted by {}; no further attempt",
                job.name,
                signal.as_str()
            ));
            return Ok(signals::exit_code(signal));
        }
        let delay = job
            .policy
            .backoff
            .delay(attempt - 1, previous_delay, &mut rng);
        let give_up = why_stop(&job.policy, attempt, &ended, delay, started.elapsed());
        let final_status = u8::try_from(ended.status).unwrap_or(exit::NO);
        if let Some(reason) = give_up {
            job.write_attempt(attempt, &ended, None)?;
            let reason = if reason.is_empty() {
                String::new()
            } else {
                format!("; {reason}")
            };
            log::error(&format!(
                "{}: attempt {of} {}{reason}",
                job.name, ended.detail
            ));
            return Ok(final_status);
        }
        job.write_attempt(attempt, &ended, Some(delay))?;
        log::warn(&format!(
            "{}: attempt {of} {}, retrying in {}",
            job.name,
            ended.detail,
            format_delay(delay)
        ));
        if let Some(signal) = interrupts.sleep(delay) {
            log::warn(&format!(
                "{}: interrupted by {} while waiting to retry; no further attempt",
                job.name,
                signal.as_str()
            ));
            return Ok(signals::exit_code(signal));
        }
        previous_delay = delay;
        attempt = attempt.saturating_add(1);
    }
}

impl Job<'_> {
    fn write_attempt(&mut self, attempt: u32, ended: &Ended, next: Option<Duration>) -> Result<()> {
        let Some(events) = self.events.as_mut() else {
            return Ok(());
        };
        let record = Attempt {
            name: self.name.clone(),
            attempt,
            max_attempts: self.policy.attempts,
            outcome: ended.outcome,
            status: ended.status,
            duration_ms: crate::duration::to_ms(ended.duration),
            next_delay_ms: next.map(crate::duration::to_ms),
            is_final: next.is_none(),
        };
        events.emit(self.run_id.as_deref(), Record::Attempt(record))
    }

    fn transition(&mut self, transition: Option<Transition>) -> Result<()> {
        let Some(transition) = transition else {
            return Ok(());
        };
        log_transition(&transition);
        match self.events.as_mut() {
            Some(events) => events.emit(self.run_id.as_deref(), Record::Breaker(transition)),
            None => Ok(()),
        }
    }
}

/// Log a breaker's state change: opening is an error, closing a success, else a warning.
pub fn log_transition(transition: &Transition) {
    use crate::breaker::State;
    let line = transition.describe();
    match transition.to {
        State::Open => log::error(&line),
        State::Closed => log::success(&line),
        State::HalfOpen => log::warn(&line),
    }
}

/// The one line for a refusal: `keycloak:start: circuit breaker open after 3 consecutive
/// failures; refused, next try allowed in 42s (to reset it now: hub-breaker reset
/// keycloak:start --breaker-state /srv/.hub/breaker.json)`. The reset command names the state file
/// `state_file` the refusing breaker read, so it resets that breaker and no other.
pub fn describe_refusal(key: &str, decision: &Decision, state_file: &std::path::Path) -> String {
    match decision {
        Decision::Refused {
            retry_after,
            consecutive_failures,
            state,
        } => {
            let why = if *state == crate::breaker::State::HalfOpen {
                "half-open and another caller holds the trial".to_owned()
            } else {
                format!("open after {consecutive_failures} consecutive failures")
            };
            let secs = retry_after.as_millis().div_ceil(1000);
            let file = std::path::absolute(state_file).unwrap_or_else(|_| state_file.to_path_buf());
            format!(
                "{key}: circuit breaker {why}; refused, next try allowed in {secs}s (to reset it now: hub-breaker reset {key} --breaker-state {})",
                file.display()
            )
        }
        _ => format!("{key}: circuit breaker allows the call"),
    }
}

/// The one line for a granted trial.
pub fn describe_trial(key: &str, released: Option<Released>) -> String {
    let why = match released {
        None => String::new(),
        Some(Released::HolderDied { pid }) => format!(" (the previous holder, pid {pid}, died)"),
        Some(Released::Overran { pid }) => {
            format!(" (the previous holder, pid {pid}, overran --trial-timeout)")
        }
    };
    format!("{key}: circuit breaker half-open: this call is the trial{why}")
}

/// Before an attempt: ask the breaker; `Some(75)` when it refuses.
fn ask_breaker(job: &mut Job<'_>, attempt: u32) -> Result<Option<u8>> {
    let Some((breaker, key)) = job.breaker.clone() else {
        return Ok(None);
    };
    let (decision, transition) = breaker.check(&key)?;
    job.transition(transition)?;
    match decision {
        Decision::Allowed => Ok(None),
        Decision::Trial { released } => {
            log::info(&describe_trial(&key, released));
            Ok(None)
        }
        Decision::Refused { .. } => {
            let refusal = describe_refusal(&key, &decision, breaker.path());
            if job.name == key {
                log::error(&refusal);
            } else {
                log::error(&format!("{}: {refusal}", job.name));
            }
            let ended = Ended {
                outcome: Outcome::Refused,
                status: i32::from(exit::REFUSED),
                detail: String::new(),
                duration: Duration::ZERO,
            };
            job.write_attempt(attempt, &ended, None)?;
            Ok(Some(exit::REFUSED))
        }
    }
}

/// After an attempt: tell the breaker. An interrupted attempt says nothing about the service.
fn record_in_breaker(job: &mut Job<'_>, ended: &Ended) -> Result<()> {
    let Some((breaker, key)) = job.breaker.clone() else {
        return Ok(());
    };
    let transition = match ended.outcome {
        Outcome::Success => breaker.record_success(&key)?,
        Outcome::Failure | Outcome::Timeout => breaker.record_failure(&key)?,
        Outcome::Interrupted | Outcome::Refused => None,
    };
    job.transition(transition)
}

/// After a failed attempt: why no other follows (`Some("")` when nothing needs saying), or
/// `None` to retry after `delay`.
fn why_stop(
    policy: &Policy,
    attempt: u32,
    ended: &Ended,
    delay: Duration,
    elapsed: Duration,
) -> Option<String> {
    match policy.retryable(ended.outcome, ended.status) {
        Err(NoRetry::NotInRetryOn(codes)) => {
            return Some(format!(
                "not retried: {} is not in --retry-on {codes}",
                ended.status
            ));
        }
        Err(NoRetry::InStopOn(codes)) => {
            return Some(format!(
                "not retried: {} is in --stop-on {codes}",
                ended.status
            ));
        }
        Err(NoRetry::Succeeded | NoRetry::Interrupted) => return Some(String::new()),
        Ok(()) => {}
    }
    if !policy.attempts_left(attempt) {
        return Some(if attempt == 1 {
            String::new()
        } else {
            format!("giving up after {attempt} attempts")
        });
    }
    if !budget_covers(policy, elapsed, delay) {
        return Some(format!(
            "giving up: another attempt after {} would overrun --max-time {}",
            format_delay(delay),
            format_delay(policy.max_time.unwrap_or_default())
        ));
    }
    None
}

/// `1/3`, or `1` when attempts are unlimited.
fn of_attempts(attempt: u32, attempts: u32) -> String {
    if attempts == 0 {
        attempt.to_string()
    } else {
        format!("{attempt}/{attempts}")
    }
}

/// The attempt's timeout: `--timeout`, shortened to what is left of `--max-time`.
fn attempt_timeout(policy: &Policy, elapsed: Duration) -> Option<Duration> {
    let left = policy.max_time.map(|max| max.saturating_sub(elapsed));
    match (policy.timeout, left) {
        (Some(t), Some(left)) => Some(t.min(left)),
        (t, left) => t.or(left),
    }
}

/// Can the budget cover a delay and then an attempt (its whole `--timeout`, when set)?
fn budget_covers(policy: &Policy, elapsed: Duration, delay: Duration) -> bool {
    let Some(max_time) = policy.max_time else {
        return true;
    };
    let needed = elapsed
        .saturating_add(delay)
        .saturating_add(policy.timeout.unwrap_or(Duration::ZERO));
    if policy.timeout.is_some() {
        needed <= max_time
    } else {
        needed < max_time
    }
}

/// Run one attempt in its own process group, killing the group after `timeout`.
fn run_attempt(
    program: &OsString,
    args: &[OsString],
    stdin: Option<&std::fs::File>,
    timeout: Option<Duration>,
    grace: Duration,
    interrupts: &Interrupts,
) -> Result<Ended> {
    let began = Instant::now();
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(spool) = stdin {
        // The attempt's copy shares the file offset: rewind it for each attempt.
        let rewound = {
            use std::io::Seek;
            let mut spool = spool;
            spool.rewind().and_then(|()| spool.try_clone())
        };
        let spool =
            rewound.map_err(|e| Error::io("--replay-stdin: rewinding the spool file", &e))?;
        cmd.stdin(spool);
    }
    let shown = program.to_string_lossy();
    let mut child = Running::spawn(&mut cmd, Detach::Group).map_err(|e| {
        let code = if e.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        };
        Error::new(
            code,
            format!("cannot run `{shown}`: {e}; check the command and PATH"),
        )
    })?;
    interrupts.attach(&child);
    let waited = match timeout {
        Some(timeout) => child.wait_timeout(timeout),
        None => child.wait().map(Some),
    };
    let waited = match waited {
        Ok(Some(status)) => Ok(Some(status)),
        Ok(None) => child.terminate(grace).map(|_| None),
        Err(e) => Err(e),
    };
    interrupts.detach();
    let waited = waited.map_err(|e| Error::io(format!("waiting for `{shown}`"), &e))?;
    let duration = began.elapsed();
    let ended = |outcome, status, detail: String| Ended {
        outcome,
        status,
        detail,
        duration,
    };
    let Some(status) = waited else {
        let after = format_delay(timeout.unwrap_or_default());
        return Ok(ended(
            Outcome::Timeout,
            i32::from(exit::TIMED_OUT),
            format!("timed out after {after} (exit 124)"),
        ));
    };
    let code = status_code(status);
    let signal = status.signal().and_then(|s| Signal::try_from(s).ok());
    if interrupts.received().is_some() || signal == Some(Signal::SIGINT) {
        return Ok(ended(
            Outcome::Interrupted,
            code,
            format!("interrupted (exit {code})"),
        ));
    }
    Ok(match (code, signal) {
        (0, _) => ended(Outcome::Success, 0, "succeeded".into()),
        (_, Some(signal)) => ended(
            Outcome::Failure,
            code,
            format!("failed (exit {code}, killed by {})", signal.as_str()),
        ),
        _ => ended(Outcome::Failure, code, format!("failed (exit {code})")),
    })
}

/// Where `--events` records go: `-` is stdout, else a file appended to (created 0644).
pub fn open_events(target: &std::path::Path) -> Result<RecordWriter> {
    if target.as_os_str() == "-" {
        return Ok(RecordWriter::stdout());
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(target)
        .map_err(|e| {
            Error::io(
                format!("cannot open the events file {}", target.display()),
                &e,
            )
        })?;
    Ok(RecordWriter::new(Box::new(file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_on_and_stop_on_decide() {
        let mut policy = Policy {
            retry_on: Some(ExitCodes::parse("1,75,100-110").unwrap()),
            ..Policy::default()
        };
        assert_eq!(policy.retryable(Outcome::Failure, 1), Ok(()));
        assert_eq!(policy.retryable(Outcome::Failure, 105), Ok(()));
        assert!(matches!(
            policy.retryable(Outcome::Failure, 2),
            Err(NoRetry::NotInRetryOn(_))
        ));
        assert!(matches!(
            policy.retryable(Outcome::Timeout, 124),
            Err(NoRetry::NotInRetryOn(_))
        ));
        policy.retry_on = None;
        policy.stop_on = Some(ExitCodes::parse("2").unwrap());
        assert!(matches!(
            policy.retryable(Outcome::Failure, 2),
            Err(NoRetry::InStopOn(_))
        ));
        assert_eq!(policy.retryable(Outcome::Timeout, 124), Ok(()));
        assert_eq!(
            policy.retryable(Outcome::Interrupted, 130),
            Err(NoRetry::Interrupted)
        );
        assert_eq!(
            policy.retryable(Outcome::Success, 0),
            Err(NoRetry::Succeeded)
        );
    }

    #[test]
    fn attempts_left_and_unlimited() {
        let policy = Policy::default();
        assert!(policy.attempts_left(2));
        assert!(!policy.attempts_left(3));
        let unlimited = Policy {
            attempts: 0,
            ..Policy::default()
        };
        assert!(unlimited.attempts_left(u32::MAX));
        assert_eq!(of_attempts(2, 0), "2");
        assert_eq!(of_attempts(2, 3), "2/3");
    }

    #[test]
    fn the_budget_covers_delay_and_timeout() {
        let s = Duration::from_secs;
        let policy = Policy {
            max_time: Some(s(10)),
            timeout: Some(s(3)),
            ..Policy::default()
        };
        assert!(budget_covers(&policy, s(5), s(2)));
        assert!(!budget_covers(&policy, s(5), s(3)));
        assert_eq!(attempt_timeout(&policy, s(8)), Some(s(2)));
        assert_eq!(attempt_timeout(&policy, s(1)), Some(s(3)));
        let no_timeout = Policy {
            max_time: Some(s(10)),
            ..Policy::default()
        };
        assert!(budget_covers(&no_timeout, s(5), s(4)));
        assert!(!budget_covers(&no_timeout, s(5), s(5)));
        assert_eq!(attempt_timeout(&no_timeout, s(4)), Some(s(6)));
        assert!(budget_covers(&Policy::default(), s(1_000_000), s(30)));
        assert_eq!(attempt_timeout(&Policy::default(), s(4)), None);
    }
}
