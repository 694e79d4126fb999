//! `hub-breaker`: a circuit breaker per key, shared by every process through a locked state file.
//!
//! The seed's `circuit_breaker_*` functions kept their counts in shell arrays, so parallel
//! subshells never saw each other's failures. Here the state lives in one file that every
//! `hub-breaker`, `hub-retry --breaker` and `hub-start` process reads and updates under a lock
//! (see [`hub::breaker`] and [`hub::statefile`]).

use hub::breaker::{Breaker, Decision, KeyState, State, Transition};
use hub::error::exit;
use hub::output::RecordWriter;
use hub::records::{BreakerStatus, Record};
use hub::retry::{self, Interrupts, Job, Policy};
use hub::{Result, log};

pub mod cli;
pub use cli::{Action, Cli};

/// Run `hub-breaker`.
pub fn run(args: Cli) -> Result<u8> {
    let breaker = args.breaker.breaker()?;
    let mut events = match &args.events.events {
        Some(target) => Some(retry::open_events(target)?),
        None => None,
    };
    let run_id = args.run_id.run_id;
    let mut report = |transitions: Vec<Transition>| -> Result<()> {
        for transition in transitions {
            retry::log_transition(&transition);
            if let Some(events) = events.as_mut() {
                events.emit(run_id.as_deref(), Record::Breaker(transition))?;
            }
        }
        Ok(())
    };
    match args.action {
        Action::Check { key, holder } => {
            let holder = holder
                .unwrap_or_else(|| u32::try_from(nix::unistd::getppid().as_raw()).unwrap_or(0));
            let (decision, transition) = breaker.check_for(&key, holder)?;
            report(transition.into_iter().collect())?;
            Ok(match decision {
                Decision::Allowed => exit::OK,
                Decision::Trial { released } => {
                    log::info(&retry::describe_trial(&key, released));
                    exit::OK
                }
                Decision::Refused { .. } => {
                    log::warn(&retry::describe_refusal(&key, &decision, breaker.path()));
                    exit::REFUSED
                }
            })
        }
        Action::Success { key } => {
            report(breaker.record_success(&key)?.into_iter().collect())?;
            Ok(exit::OK)
        }
        Action::Failure { key } => {
            report(breaker.record_failure(&key)?.into_iter().collect())?;
            Ok(exit::OK)
        }
        Action::Reset { key, all } => {
            let transitions = if all {
                breaker.reset_all()?
            } else {
                breaker.reset(&key)?
            };
            report(transitions)?;
            Ok(exit::OK)
        }
        Action::Status { key, json } => status(&breaker, &key, json),
        Action::Run { key, command } => {
            // Before any thread starts: SIGINT/SIGTERM/SIGHUP become events, forwarded to CMD. (The
            // other subcommands keep the default: a signal ends them at once.)
            let interrupts = Interrupts::watch(Policy::default().grace)?;
            let job = Job {
                name: key.clone(),
                argv: command,
                policy: Policy {
                    attempts: 1,
                    ..Policy::default()
                },
                breaker: Some((&breaker, key)),
                events,
                stdin: None,
                run_id,
            };
            retry::run(job, &interrupts)
        }
    }
}

/// `status`: a table, or one `breaker_status` record per key.
fn status(breaker: &Breaker, wanted: &[String], json: bool) -> Result<u8> {
    let mut all = breaker.status()?;
    let keys: Vec<(String, KeyState)> = if wanted.is_empty() {
        all.into_iter().collect()
    } else {
        wanted
            .iter()
            .map(|k| (k.clone(), all.remove(k).unwrap_or_default()))
            .collect()
    };
    let mut out = RecordWriter::stdout();
    if json {
        for (key, entry) in &keys {
            let status = BreakerStatus {
                key: key.clone(),
                state: entry.state,
                consecutive_failures: entry.consecutive_failures,
                opened_at: entry.opened_at,
                retry_after_ms: hub::duration::to_ms(breaker.retry_after(entry)),
                trial_pid: entry.trial.as_ref().map(|t| t.pid),
                updated_at: entry.updated_at,
            };
            out.emit(None, Record::BreakerStatus(status))?;
        }
        return Ok(exit::OK);
    }
    let width = hub::output::column_width(keys.iter().map(|(k, _)| k.chars().count()), "KEY");
    let mut table = format!(
        "{:<width$}  {:<9}  {:>8}  {:<20}  {}\n",
        "KEY", "STATE", "FAILURES", "OPENED", "NEXT TRY"
    );
    for (key, entry) in &keys {
        let opened = entry
            .opened_at
            .map_or_else(|| "-".to_owned(), hub::time::rfc3339_seconds);
        let next = match entry.state {
            State::Closed => "-".to_owned(),
            _ => format!(
                "in {}s",
                breaker.retry_after(entry).as_millis().div_ceil(1000)
            ),
        };
        table.push_str(&format!(
            "{key:<width$}  {:<9}  {:>8}  {opened:<20}  {next}\n",
            entry.state.as_str(),
            entry.consecutive_failures
        ));
    }
    out.text(&table)?;
    Ok(exit::OK)
}
