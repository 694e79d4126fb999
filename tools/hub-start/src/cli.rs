//! `hub-start`'s arguments, parsed once into [`Cli`]: `run` reads fields, never looks a value
//! up by name.

use clap::{Parser, ValueEnum};
use hub::cli::{BreakerPolicy, BreakerState, Common, ComposeCmd, StateDir};
use std::path::PathBuf;
use std::time::Duration;

const LONG_ABOUT: &str = "Start services in dependency order, with retries, a circuit breaker and the \
             CORE/OPTIONAL/STRETCH policy.\n\n\
             Reads `plan` records (from hub-levels) on stdin and writes `started`, `failed`, \
             `skipped`, `breaker` and `finished` records on stdout; every input record is passed \
             through. Health results (`healthy`/`unhealthy` records from hub-wait-healthy) come \
             back through --gate:\n\n    \
             mkfifo G; exec 3<>G; hub-levels | hub-start --gate G | hub-wait-healthy | tee -p G > events.jsonl\n\n\
             Without --gate every service is started as it is read, and a launch counts as done.\n\n\
             A service with `x-hub.start` runs that command and waits for it (exit 0 = started; it \
             may take up to the service's timeout). One with `x-hub.run` is launched detached (own \
             session) with output in STATE_DIR/logs/SERVICE.log and pid in \
             STATE_DIR/pids/SERVICE.pid (`PID START`: its start time, so a reused pid is never \
             taken for it). Commands (start, run, stop) run in the plan's working_dir, with its \
             environment over the inherited one (null unsets), and see HUB_SERVICE and HUB_ATTEMPT \
             (in a compose file write $$HUB_ATTEMPT: hub-levels interpolates $VAR as compose \
             does).\n\n\
             Before starting, one probe checks whether the service is already healthy (a rerun \
             resumes). A failed attempt (the start command failed, or the process died before it \
             was healthy, or did not become healthy in time: then what it started is stopped first, \
             as --stop would stop it) is \
             retried with the service's x-hub.retry policy; an exit status of 126 or 127 (not \
             executable, not found) is final at once. Each outcome goes to the circuit breaker \
             `SERVICE:start`, with a hash of the service's definition: after a fix (a changed \
             command, health check, …) an open breaker starts afresh. A failed attempt's whole \
             process group is stopped (unless --keep-failed), and a `run` service's earlier \
             process that still runs but is not healthy is adopted or stopped before the service \
             is launched again: never a second copy.\n\n\
             When a CORE service fails, nothing new starts: everything not started is skipped \
             (reason `aborted`) and hub-start exits 1. When an OPTIONAL or STRETCH service fails, \
             its hard dependents are skipped (`dependency_failed`) and the deploy goes on.";

const AFTER_HELP: &str = "Exit status: 0 deployed (OPTIONAL/STRETCH failures are warnings), 1 a CORE service \
             failed, 2 bad input, the gate closed early, or another deploy holds the state dir \
             (STATE_DIR/deploy.lock; see --wait-lock), 129/130/143 interrupted by SIGHUP/SIGINT/SIGTERM \
             (in-flight start commands are killed; launched services keep running). With --stop: 0 every service stopped, 1 one did not, 2 bad input.\n\n\
             Environment: CIRCUIT_BREAKER_THRESHOLD, CIRCUIT_BREAKER_TIMEOUT (the breaker's \
             --threshold and --cooldown), HUB_BREAKER_STATE (its state file), HUB_STATE_DIR (the \
             state folder).";

/// Start services in dependency order, with retries, a circuit breaker and the
/// CORE/OPTIONAL/STRETCH policy
#[derive(Debug, Parser)]
#[command(version, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// A FIFO or file to follow for health results (healthy/unhealthy records)
    #[arg(long, value_name = "PATH")]
    pub gate: Option<PathBuf>,
    /// When a service may start
    #[arg(long, value_name = "MODE", value_enum, default_value_t = Schedule::Dag)]
    pub schedule: Schedule,
    /// At most N start attempts in flight at once (0 = no limit)
    #[arg(short = 'j', long, value_name = "N", default_value_t = 0)]
    pub jobs: usize,
    /// `--state-dir`.
    #[command(flatten)]
    pub state_dir: StateDir,
    /// `--breaker-state`.
    #[command(flatten)]
    pub breaker_state: BreakerState,
    /// `--threshold`, `--cooldown`.
    #[command(flatten)]
    pub breaker: BreakerPolicy,
    /// Teardown: stop each service read (pipe `hub-levels --reverse`): x-hub.stop, else TERM its
    /// process group (pid file), else compose stop/rm; writes `stopped` records
    #[arg(long, conflicts_with_all = ["gate", "inject_failure"])]
    pub stop: bool,
    /// With --stop: how long a process group has between TERM and KILL
    #[arg(long = "kill-after", aliases = hub::cli::KILL_AFTER_ALIASES, value_name = "DURATION", default_value = "10s", value_parser = hub::duration::parse)]
    pub kill_after: Duration,
    /// Leave a failed or timed-out attempt's processes running, to debug them (by default its whole
    /// process group is stopped, members that outlived the leader included)
    #[arg(long = "keep-failed")]
    pub keep_failed: bool,
    /// When another deploy holds the state dir's lock, wait up to DURATION for it instead of
    /// failing at once (exit 2). With --stop the running deploy is stopped first and waited for (at
    /// least 60s)
    #[arg(long = "wait-lock", value_name = "DURATION", default_value = "0s", value_parser = hub::duration::parse)]
    pub wait_lock: Duration,
    /// `--compose-cmd`.
    #[command(flatten)]
    pub compose: ComposeCmd,
    /// Make SERVICE fail as if its start had failed (final at once), to rehearse the policy
    #[arg(long = "inject-failure", value_name = "SERVICE")]
    pub inject_failure: Vec<String>,
    /// `-q`, `-v`, `--color`.
    #[command(flatten)]
    pub common: Common,
}

hub::tool!(Cli);

/// `--schedule`: when a service may start (with `--gate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Schedule {
    /// As soon as its dependencies are healthy.
    Dag,
    /// Level N+1 waits for all of level N.
    Levels,
}
