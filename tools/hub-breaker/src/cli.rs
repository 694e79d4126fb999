//! `hub-breaker`'s arguments, parsed once into [`Cli`] and its [`Action`]: `run` matches on the
//! subcommand's variant, never on its name.

use clap::{Parser, Subcommand};
use hub::cli::{BreakerArgs, Common, Events, RunId};
use std::ffi::OsString;

const LONG_ABOUT: &str = "A circuit breaker per key, shared by every process through a locked state file.\n\n\
             closed → open after --threshold consecutive failures; open for --cooldown, then \
             half-open: exactly one caller, across all processes, gets the trial; its success \
             closes the breaker, its failure re-opens it. A trial whose holder died or overran \
             --trial-timeout is released to the next caller.";

const AFTER_HELP: &str = "Exit status: 0 ok / allowed; 75 refused (the breaker is open, or half-open with \
             the trial taken); `run` exits with CMD's status (or 75, 126/127 CMD cannot be \
             run); 2 bad usage, a corrupt or unreadable state file (fix: `hub-breaker reset \
             --all`), or a lock not had within --lock-timeout.\n\n\
             Environment: HUB_BREAKER_STATE (the state file), CIRCUIT_BREAKER_THRESHOLD, \
             CIRCUIT_BREAKER_TIMEOUT (the cool-down), HUB_RUN_ID (run_id of records).";

/// A circuit breaker per key, shared by every process through a locked state file
#[derive(Debug, Parser)]
#[command(
    version,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    subcommand_required = true,
    arg_required_else_help = true,
    mut_arg("breaker_state", |arg| arg.alias("state").help(hub::cli::STANDALONE_BREAKER_STATE_HELP)),
    mut_arg("events", |arg| arg.help("Append a JSON-lines `breaker` record per state change to FILE; - is stdout")),
)]
pub struct Cli {
    /// The breaker's state file, policy and timeouts (before or after the subcommand).
    #[command(flatten)]
    pub breaker: BreakerArgs,
    /// `--events`.
    #[command(flatten)]
    pub events: Events,
    /// `--run-id`.
    #[command(flatten)]
    pub run_id: RunId,
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
    /// `-q`, `-v`, `--color`.
    #[command(flatten)]
    pub common: Common,
}

hub::tool!(Cli);

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Exit 0 when a call may run, 75 when refused; in half-open, take the one trial.
    #[command(
        about = "Exit 0 when a call may run, 75 when refused; in half-open, take the one trial"
    )]
    Check {
        /// The key.
        #[arg(value_name = "KEY", value_parser = hub::breaker::parse_key, help = KEY_HELP)]
        key: String,
        /// The process that holds a granted trial; its death releases it [default: the parent
        /// process, the script that runs the call]
        #[arg(long, value_name = "PID")]
        holder: Option<u32>,
    },
    /// Record a success.
    #[command(about = "Record a success: closes the breaker")]
    Success {
        /// The key.
        #[arg(value_name = "KEY", value_parser = hub::breaker::parse_key, help = KEY_HELP)]
        key: String,
    },
    /// Record a failure.
    #[command(about = "Record a failure: counts, and opens the breaker at the threshold")]
    Failure {
        /// The key.
        #[arg(value_name = "KEY", value_parser = hub::breaker::parse_key, help = KEY_HELP)]
        key: String,
    },
    /// Check, run, record.
    #[command(
        about = "Check, run CMD (no shell), record its outcome; exit with its status or 75",
        override_usage = "hub-breaker run [OPTIONS] KEY -- CMD [ARGS...]"
    )]
    Run {
        /// The key.
        #[arg(value_name = "KEY", value_parser = hub::breaker::parse_key, help = KEY_HELP)]
        key: String,
        /// The command and its arguments, after --
        #[arg(value_name = "CMD", required = true, num_args = 1.., last = true)]
        command: Vec<OsString>,
    },
    /// Show states.
    #[command(about = "Show keys' states (all known keys when none is given)")]
    Status {
        /// Keys to show
        #[arg(value_name = "KEY", num_args = 0..)]
        key: Vec<String>,
        /// One `breaker_status` JSON record per key instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Close breakers.
    #[command(about = "Close breakers and forget their failures")]
    #[command(group(clap::ArgGroup::new("what").args(["key", "all"]).required(true)))]
    Reset {
        /// Keys to reset
        #[arg(value_name = "KEY", num_args = 1.., value_parser = hub::breaker::parse_key)]
        key: Vec<String>,
        /// Reset every key; replaces even a corrupt state file
        #[arg(long, conflicts_with = "key")]
        all: bool,
    },
}

const KEY_HELP: &str = "The breaker key, by convention service:failure_type (keycloak:start)";
