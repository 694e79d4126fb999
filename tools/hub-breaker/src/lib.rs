//! `hub-breaker`: a circuit breaker per key, shared by every process through a locked state file.
//!
//! The seed's `circuit_breaker_*` functions kept their counts in shell arrays, so parallel
//! subshells never saw each other's failures. Here the state lives in one file that every
//! `hub-breaker`, `hub-retry --breaker` and `hub-start` process reads and updates under a lock
//! (see [`hub::breaker`] and [`hub::statefile`]).

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use hub::breaker::{Breaker, Decision, KeyState, State, Transition};
use hub::error::exit;
use hub::output::RecordWriter;
use hub::records::{BreakerStatus, Record};
use hub::retry::{self, Interrupts, Job, Policy};
use hub::{Error, Result, log};
use std::ffi::OsString;
use std::path::PathBuf;

/// The command-line interface.
pub fn command() -> Command {
    let key = || {
        Arg::new("key")
            .value_name("KEY")
            .required(true)
            .value_parser(hub::breaker::parse_key)
            .help("The breaker key, by convention service:failure_type (keycloak:start)")
    };
    let cmd = Command::new("hub-breaker")
        .version(env!("CARGO_PKG_VERSION"))
        .about("A circuit breaker per key, shared by every process through a locked state file")
        .long_about(
            "A circuit breaker per key, shared by every process through a locked state file.\n\n\
             closed → open after --threshold consecutive failures; open for --cooldown, then \
             half-open: exactly one caller, across all processes, gets the trial; its success \
             closes the breaker, its failure re-opens it. A trial whose holder died or overran \
             --trial-timeout is released to the next caller.",
        )
        .after_help(
            "Exit status: 0 ok / allowed; 75 refused (the breaker is open, or half-open with \
             the trial taken); `run` exits with CMD's status (or 75, 126/127 CMD cannot be \
             run); 2 bad usage, a corrupt or unreadable state file (fix: `hub-breaker reset \
             --all`), or a lock not had within --lock-timeout.\n\n\
             Environment: HUB_BREAKER_STATE (the state file), CIRCUIT_BREAKER_THRESHOLD, \
             CIRCUIT_BREAKER_TIMEOUT (the cool-down), HUB_RUN_ID (run_id of records).",
        )
        .subcommand_required(true)
        .arg_required_else_help(true)
        .args(hub::breaker::cli_args().into_iter().map(|arg| arg.global(true)))
        .arg(
            hub::cli::events_arg(
                "Append a JSON-lines `breaker` record per state change to FILE; - is stdout",
            )
            .global(true),
        )
        .arg(hub::cli::run_id_arg("The run id put in records").global(true))
        .subcommand(
            Command::new("check")
                .about("Exit 0 when a call may run, 75 when refused; in half-open, take the one trial")
                .arg(key())
                .arg(
                    Arg::new("holder")
                        .long("holder")
                        .value_name("PID")
                        .value_parser(value_parser!(u32))
                        .help("The process that holds a granted trial; its death releases it [default: the parent process, the script that runs the call]"),
                ),
        )
        .subcommand(Command::new("success").about("Record a success: closes the breaker").arg(key()))
        .subcommand(
            Command::new("failure")
                .about("Record a failure: counts, and opens the breaker at the threshold")
                .arg(key()),
        )
        .subcommand(
            Command::new("run")
                .about("Check, run CMD (no shell), record its outcome; exit with its status or 75")
                .override_usage("hub-breaker run [OPTIONS] KEY -- CMD [ARGS...]")
                .arg(key())
                .arg(
                    Arg::new("command")
                        .value_name("CMD")
                        .required(true)
                        .num_args(1..)
                        .last(true)
                        .value_parser(value_parser!(OsString))
                        .help("The command and its arguments, after --"),
                ),
        )
        .subcommand(
            Command::new("status")
                .about("Show keys' states (all known keys when none is given)")
                .arg(Arg::new("key").value_name("KEY").num_args(0..).help("Keys to show"))
                .arg(
                    Arg::new("json")
                        .long("json")
                        .action(ArgAction::SetTrue)
                        .help("One `breaker_status` JSON record per key instead of a table"),
                ),
        )
        .subcommand(
            Command::new("reset")
                .about("Close breakers and forget their failures")
                .arg(Arg::new("key").value_name("KEY").num_args(1..).value_parser(hub::breaker::parse_key).help("Keys to reset"))
                .arg(
                    Arg::new("all")
                        .long("all")
                        .action(ArgAction::SetTrue)
                        .conflicts_with("key")
                        .help("Reset every key; replaces even a corrupt state file"),
                )
                .group(
                    clap::ArgGroup::new("what")
                        .args(["key", "all"])
                        .required(true),
                ),
        );
    hub::cli::with_common_args(cmd)
}

/// Run `hub-breaker`.
pub fn run(matches: &ArgMatches) -> Result<u8> {
    let (name, sub) = matches
        .subcommand()
        .ok_or_else(|| Error::input("no subcommand; see hub-breaker --help"))?;
    let breaker = hub::breaker::from_matches(sub)?;
    let mut events = match sub.get_one::<PathBuf>("events") {
        Some(target) => Some(retry::open_events(target)?),
        None => None,
    };
    let run_id = sub.get_one::<String>("run-id").cloned();
    let mut report = |transitions: Vec<Transition>| -> Result<()> {
        for transition in transitions {
            retry::log_transition(&transition);
            if let Some(events) = events.as_mut() {
                events.emit(run_id.as_deref(), Record::Breaker(transition))?;
            }
        }
        Ok(())
    };
    let key = || sub.get_one::<String>("key").cloned().unwrap_or_default();
    match name {
        "check" => {
            let holder = sub
                .get_one::<u32>("holder")
                .copied()
                .unwrap_or_else(|| u32::try_from(nix::unistd::getppid().as_raw()).unwrap_or(0));
            let key = key();
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
        "success" => {
            report(breaker.record_success(&key())?.into_iter().collect())?;
            Ok(exit::OK)
        }
        "failure" => {
            report(breaker.record_failure(&key())?.into_iter().collect())?;
            Ok(exit::OK)
        }
        "reset" => {
            let transitions = if sub.get_flag("all") {
                breaker.reset_all()?
            } else {
                let keys: Vec<String> = sub
                    .get_many::<String>("key")
                    .map(|keys| keys.cloned().collect())
                    .unwrap_or_default();
                breaker.reset(&keys)?
            };
            report(transitions)?;
            Ok(exit::OK)
        }
        "status" => status(&breaker, sub),
        "run" => {
            // Before any thread starts: SIGINT/SIGTERM/SIGHUP become events, forwarded to CMD. (The
            // other subcommands keep the default: a signal ends them at once.)
            let interrupts = Interrupts::watch(Policy::default().grace)?;
            let key = key();
            let job = Job {
                name: key.clone(),
                argv: sub
                    .get_many::<OsString>("command")
                    .map(|values| values.cloned().collect())
                    .unwrap_or_default(),
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
        other => Err(Error::input(format!("unknown subcommand `{other}`"))),
    }
}

/// `status`: a table, or one `breaker_status` record per key.
fn status(breaker: &Breaker, matches: &ArgMatches) -> Result<u8> {
    let mut all = breaker.status()?;
    let keys: Vec<(String, KeyState)> = match matches.get_many::<String>("key") {
        Some(keys) => keys
            .map(|k| (k.clone(), all.remove(k).unwrap_or_default()))
            .collect(),
        None => all.into_iter().collect(),
    };
    let mut out = RecordWriter::stdout();
    if matches.get_flag("json") {
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
