//! `hub-retry`'s arguments, parsed once into [`Cli`]: `run` reads fields, never looks a value
//! up by name.

use clap::Parser;
use hub::backoff::Jitter;
use hub::cli::{BreakerArgs, Common, Events, RunId};
use hub::codes::ExitCodes;
use std::ffi::OsString;
use std::time::Duration;

const LONG_ABOUT: &str = "Run a command, retrying it with exponential backoff while it fails.\n\n\
             CMD runs directly (no shell) in its own process group, with stdin, stdout and \
             stderr inherited. Delays double from --delay up to --max-delay: 2s 4s 8s 16s 30s. \
             Durations are humantime (500ms, 2s, 1m30s) or bare seconds.\n\n\
             stdin is inherited, not replayed: a later attempt reads whatever the earlier ones \
             left. With --replay-stdin, hub-retry first reads stdin to its end into a temporary \
             file and gives every attempt the whole of it.";

const AFTER_HELP: &str = "Exit status: 0 the command succeeded; otherwise the last attempt's status \
             (124 it timed out, 128+N it was killed by signal N); 75 an open circuit breaker \
             refused to run it; 129/130/143 hub-retry got SIGHUP/SIGINT/SIGTERM (forwarded to the \
             running attempt's process group, which is KILLed if it still runs --kill-after \
             later, or at once on a second signal; no further attempt starts); 126/127 CMD cannot be run / was not found; \
             2 bad usage, or the breaker state is unreadable.\n\n\
             A child killed by SIGINT is never retried. A timed-out attempt counts as status \
             124 for --retry-on/--stop-on.\n\n\
             Environment: RETRY_MAX_ATTEMPTS, RETRY_BASE_DELAY, RETRY_MAX_DELAY (defaults of \
             -n, --delay, --max-delay); HUB_BREAKER_STATE, CIRCUIT_BREAKER_THRESHOLD, \
             CIRCUIT_BREAKER_TIMEOUT (the breaker); HUB_RUN_ID (run_id of records).";

/// Run a command, retrying it with exponential backoff while it fails
#[derive(Debug, Parser)]
#[command(
    version,
    override_usage = "hub-retry [OPTIONS] -- CMD [ARGS...]",
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    mut_arg("breaker_state", |arg| arg.alias("state").help(hub::cli::STANDALONE_BREAKER_STATE_HELP)),
    mut_arg("events", |arg| arg.help("Append one JSON-lines `attempt` record per attempt (and `breaker` records) to FILE; - is stdout")),
)]
pub struct Cli {
    /// Attempts in all; 0 = until success
    #[arg(
        short = 'n',
        long,
        value_name = "N",
        env = "RETRY_MAX_ATTEMPTS",
        default_value = "3"
    )]
    pub attempts: u32,
    /// The first delay; later delays double
    #[arg(long, value_name = "D", env = "RETRY_BASE_DELAY", default_value = "2s", value_parser = hub::duration::parse)]
    pub delay: Duration,
    /// The cap on any one delay
    #[arg(long = "max-delay", value_name = "D", env = "RETRY_MAX_DELAY", default_value = "30s", value_parser = hub::duration::parse)]
    pub max_delay: Duration,
    /// Randomise delays (AWS formulas)
    #[arg(long, value_name = "KIND", value_enum, default_value_t = Jitter::None)]
    pub jitter: Jitter,
    /// Per attempt: then TERM its process group, KILL after --kill-after; counts as status 124 (0:
    /// no timeout)
    #[arg(long, value_name = "D", value_parser = hub::duration::parse)]
    pub timeout: Option<Duration>,
    /// Grace between TERM (or a forwarded signal) and KILL when an attempt is stopped
    #[arg(long = "kill-after", aliases = hub::cli::KILL_AFTER_ALIASES, value_name = "D", default_value = "5s", value_parser = hub::duration::parse)]
    pub kill_after: Duration,
    /// Overall budget: no attempt starts that it cannot cover
    #[arg(long = "max-time", value_name = "D", value_parser = hub::duration::parse)]
    pub max_time: Option<Duration>,
    /// Retry only these statuses, e.g. 1,75,100-110 [default: any failure]
    #[arg(long = "retry-on", value_name = "CODES", value_parser = ExitCodes::parse)]
    pub retry_on: Option<ExitCodes>,
    /// Never retry these statuses, e.g. 2,126-127
    #[arg(long = "stop-on", value_name = "CODES", value_parser = ExitCodes::parse)]
    pub stop_on: Option<ExitCodes>,
    /// Read stdin to its end first, and give every attempt all of it (spooled to a temporary file)
    #[arg(long = "replay-stdin")]
    pub replay_stdin: bool,
    /// The name in messages and records [default: the program's name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Ask this circuit breaker (e.g. keycloak:start) before each attempt; record each outcome
    #[arg(long, value_name = "KEY", value_parser = hub::breaker::parse_key)]
    pub breaker: Option<String>,
    /// The breaker's state file, policy and timeouts.
    #[command(flatten)]
    pub breaker_args: BreakerArgs,
    /// `--events`.
    #[command(flatten)]
    pub events: Events,
    /// `--run-id`.
    #[command(flatten)]
    pub run_id: RunId,
    /// The command and its arguments
    #[arg(value_name = "CMD", required = true, num_args = 1.., trailing_var_arg = true)]
    pub command: Vec<OsString>,
    /// `-q`, `-v`, `--color`.
    #[command(flatten)]
    pub common: Common,
}

hub::tool!(Cli);
