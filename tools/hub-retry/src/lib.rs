//! `hub-retry`: run a command, and retry it with exponential backoff while it fails.
//!
//! The seed's `retry_with_backoff` as a standalone tool: the real exit status passed through,
//! per-attempt timeouts that kill the whole process group, exit-code predicates, jitter, and an
//! optional shared circuit breaker asked before every attempt. The loop itself lives in
//! [`hub::retry`], so `hub-breaker run` and `hub-start` share it.

use clap::builder::TypedValueParser as _;
use clap::{Arg, ArgMatches, Command, value_parser};
use hub::backoff::{Backoff, Jitter};
use hub::codes::ExitCodes;
use hub::retry::{self, Interrupts, Job, Policy};
use hub::{Result, duration};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The command-line interface.
pub fn command() -> Command {
    let parse_duration = |text: &str| duration::parse(text);
    let cmd = Command::new("hub-retry")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Run a command, retrying it with exponential backoff while it fails")
        .override_usage("hub-retry [OPTIONS] -- CMD [ARGS...]")
        .long_about(
            "Run a command, retrying it with exponential backoff while it fails.\n\n\
             CMD runs directly (no shell) in its own process group, with stdin, stdout and \
             stderr inherited. Delays double from --delay up to --max-delay: 2s 4s 8s 16s 30s. \
             Durations are humantime (500ms, 2s, 1m30s) or bare seconds.\n\n\
             stdin is inherited, not replayed: a later attempt reads whatever the earlier ones \
             left. With --replay-stdin, hub-retry first reads stdin to its end into a temporary \
             file and gives every attempt the whole of it.",
        )
        .after_help(
            "Exit status: 0 the command succeeded; otherwise the last attempt's status \
             (124 it timed out, 128+N it was killed by signal N); 75 an open circuit breaker \
             refused to run it; 129/130/143 hub-retry got SIGHUP/SIGINT/SIGTERM (forwarded to the \
             running attempt's process group, which is KILLed if it still runs --kill-after \
             later, or at once on a second signal; no further attempt starts); 126/127 CMD cannot be run / was not found; \
             2 bad usage, or the breaker state is unreadable.\n\n\
             A child killed by SIGINT is never retried. A timed-out attempt counts as status \
             124 for --retry-on/--stop-on.\n\n\
             Environment: RETRY_MAX_ATTEMPTS, RETRY_BASE_DELAY, RETRY_MAX_DELAY (defaults of \
             -n, --delay, --max-delay); HUB_BREAKER_STATE, CIRCUIT_BREAKER_THRESHOLD, \
             CIRCUIT_BREAKER_TIMEOUT (the breaker); HUB_RUN_ID (run_id of records).",
        )
        .arg(
            Arg::new("attempts")
                .short('n')
                .long("attempts")
                .value_name("N")
                .env("RETRY_MAX_ATTEMPTS")
                .default_value("3")
                .value_parser(value_parser!(u32))
                .help("Attempts in all; 0 = until success"),
        )
        .arg(
            Arg::new("delay")
                .long("delay")
                .value_name("D")
                .env("RETRY_BASE_DELAY")
                .default_value("2s")
                .value_parser(parse_duration)
                .help("The first delay; later delays double"),
        )
        .arg(
            Arg::new("max-delay")
                .long("max-delay")
                .value_name("D")
                .env("RETRY_MAX_DELAY")
                .default_value("30s")
                .value_parser(parse_duration)
                .help("The cap on any one delay"),
        )
        .arg(
            Arg::new("jitter")
                .long("jitter")
                .value_name("KIND")
                .default_value("none")
                .value_parser(
                    clap::builder::PossibleValuesParser::new(Jitter::NAMES)
                        .try_map(|name| Jitter::parse(&name)),
                )
                .help("Randomise delays (AWS formulas): none, full, equal, decorrelated"),
        )
        .arg(
            Arg::new("timeout")
                .long("timeout")
                .value_name("D")
                .value_parser(parse_duration)
                .help("Per attempt: then TERM its process group, KILL after --kill-after; counts as status 124 (0: no timeout)"),
        )
        .arg(
            Arg::new("kill-after")
                .long("kill-after")
                // One name for the grace before KILL across the tools (GNU timeout's); the
                // others' names still work.
                .aliases(["grace", "stop-grace"])
                .value_name("D")
                .default_value("5s")
                .value_parser(parse_duration)
                .help("Grace between TERM (or a forwarded signal) and KILL when an attempt is stopped"),
        )
        .arg(
            Arg::new("max-time")
                .long("max-time")
                .value_name("D")
                .value_parser(parse_duration)
                .help("Overall budget: no attempt starts that it cannot cover"),
        )
        .arg(
            Arg::new("retry-on")
                .long("retry-on")
                .value_name("CODES")
                .value_parser(ExitCodes::parse)
                .help("Retry only these statuses, e.g. 1,75,100-110 [default: any failure]"),
        )
        .arg(
            Arg::new("stop-on")
                .long("stop-on")
                .value_name("CODES")
                .value_parser(ExitCodes::parse)
                .help("Never retry these statuses, e.g. 2,126-127"),
        )
        .arg(
            Arg::new("replay-stdin")
                .long("replay-stdin")
                .action(clap::ArgAction::SetTrue)
                .help("Read stdin to its end first, and give every attempt all of it (spooled to a temporary file)"),
        )
        .arg(
            Arg::new("name")
                .long("name")
                .value_name("NAME")
                .help("The name in messages and records [default: the program's name]"),
        )
        .arg(
            Arg::new("breaker")
                .long("breaker")
                .value_name("KEY")
                .value_parser(hub::breaker::parse_key)
                .help("Ask this circuit breaker (e.g. keycloak:start) before each attempt; record each outcome"),
        )
        .args(hub::breaker::cli_args())
        .arg(hub::cli::events_arg(
            "Append one JSON-lines `attempt` record per attempt (and `breaker` records) to FILE; - is stdout",
        ))
        .arg(hub::cli::run_id_arg("The run id put in records"))
        .arg(
            Arg::new("command")
                .value_name("CMD")
                .required(true)
                .num_args(1..)
                .trailing_var_arg(true)
                .value_parser(value_parser!(OsString))
                .help("The command and its arguments"),
        );
    hub::cli::with_common_args(cmd)
}

/// Run `hub-retry`.
pub fn run(matches: &ArgMatches) -> Result<u8> {
    // First, before any thread starts: SIGINT/SIGTERM/SIGHUP become events.
    let defaults = Policy::default();
    let grace = matches
        .get_one::<Duration>("kill-after")
        .copied()
        .unwrap_or(defaults.grace);
    let interrupts = Interrupts::watch(grace)?;
    let argv: Vec<OsString> = matches
        .get_many::<OsString>("command")
        .map(|values| values.cloned().collect())
        .unwrap_or_default();
    let get_duration = |id: &str| matches.get_one::<Duration>(id).copied();
    let policy = Policy {
        attempts: matches
            .get_one::<u32>("attempts")
            .copied()
            .unwrap_or(defaults.attempts),
        backoff: Backoff {
            base: get_duration("delay").unwrap_or(defaults.backoff.base),
            max: get_duration("max-delay").unwrap_or(defaults.backoff.max),
            jitter: matches
                .get_one::<Jitter>("jitter")
                .copied()
                .unwrap_or_default(),
        },
        // As GNU timeout: 0 is no timeout.
        timeout: get_duration("timeout").filter(|t| !t.is_zero()),
        max_time: get_duration("max-time"),
        grace,
        retry_on: matches.get_one::<ExitCodes>("retry-on").cloned(),
        stop_on: matches.get_one::<ExitCodes>("stop-on").cloned(),
    };
    let name = match matches.get_one::<String>("name") {
        Some(name) => name.clone(),
        None => argv
            .first()
            .map(|program| {
                Path::new(program)
                    .file_name()
                    .unwrap_or(program)
                    .to_string_lossy()
                    .into_owned()
            })
            .unwrap_or_default(),
    };
    let breaker = match matches.get_one::<String>("breaker") {
        Some(_) => Some(hub::breaker::from_matches(matches)?),
        None => None,
    };
    let events = match matches.get_one::<PathBuf>("events") {
        Some(target) => Some(retry::open_events(target)?),
        None => None,
    };
    let job = Job {
        name,
        argv,
        policy,
        breaker: breaker
            .as_ref()
            .zip(matches.get_one::<String>("breaker").cloned()),
        events,
        run_id: matches.get_one::<String>("run-id").cloned(),
        stdin: if matches.get_flag("replay-stdin") {
            Some(retry::spool_stdin()?)
        } else {
            None
        },
    };
    retry::run(job, &interrupts)
}
