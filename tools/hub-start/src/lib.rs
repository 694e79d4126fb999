//! `hub-start`: start each service the moment its dependencies are healthy.
//!
//! Reads `plan` records on stdin, starts services through their backend with retries and a
//! circuit breaker, and writes `started`/`failed`/`skipped`/`finished` records on stdout. Health
//! results come back through `--gate` (a FIFO or file fed by `hub-wait-healthy`), so the whole
//! deploy loop is `hub-levels | hub-start --gate G | hub-wait-healthy | tee G`.

mod deploy;
mod launch;
mod launcher;
mod records;
mod resume;
mod scheduler;
mod stop;

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use hub::Result;
use hub::deploylock::StateLock;
use std::path::PathBuf;
use std::time::Duration;

pub use scheduler::Mode;

/// The command-line interface.
pub fn command() -> Command {
    let cmd = Command::new("hub-start")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Start services in dependency order, with retries, a circuit breaker and the CORE/OPTIONAL/STRETCH policy")
        .long_about(
            "Start services in dependency order, with retries, a circuit breaker and the \
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
             its hard dependents are skipped (`dependency_failed`) and the deploy goes on.",
        )
        .after_help(
            "Exit status: 0 deployed (OPTIONAL/STRETCH failures are warnings), 1 a CORE service \
             failed, 2 bad input, the gate closed early, or another deploy holds the state dir \
             (STATE_DIR/deploy.lock; see --wait-lock), 129/130/143 interrupted by SIGHUP/SIGINT/SIGTERM \
             (in-flight start commands are killed; launched services keep running). With --stop: 0 every service stopped, 1 one did not, 2 bad input.\n\n\
             Environment: CIRCUIT_BREAKER_THRESHOLD, CIRCUIT_BREAKER_TIMEOUT (the breaker), \
             HUB_BREAKER_STATE (its state file), HUB_STATE_DIR (the state folder).",
        )
        .arg(
            Arg::new("gate")
                .long("gate")
                .value_name("PATH")
                .value_parser(value_parser!(PathBuf))
                .help("A FIFO or file to follow for health results (healthy/unhealthy records)"),
        )
        .arg(
            Arg::new("schedule")
                .long("schedule")
                .value_name("MODE")
                .default_value("dag")
                .value_parser(["dag", "levels"])
                .help("dag: start a service as soon as its dependencies are healthy; levels: level N+1 waits for all of level N"),
        )
        .arg(
            Arg::new("jobs")
                .long("jobs")
                .short('j')
                .value_name("N")
                .default_value("0")
                .value_parser(value_parser!(usize))
                .help("At most N start attempts in flight at once (0 = no limit)"),
        )
        .arg(
            Arg::new("state-dir")
                .long("state-dir")
                .value_name("DIR")
                .value_parser(value_parser!(PathBuf))
                .help("Where logs, pid files and the breaker state live [default: $HUB_STATE_DIR, else .hub]"),
        )
        .arg(hub::breaker::state_arg())
        .arg(
            Arg::new("stop")
                .long("stop")
                .action(ArgAction::SetTrue)
                .conflicts_with_all(["gate", "inject-failure"])
                .help("Teardown: stop each service read (pipe `hub-levels --reverse`): x-hub.stop, else TERM its process group (pid file), else compose stop/rm; writes `stopped` records"),
        )
        .arg(
            Arg::new("stop-grace")
                .long("kill-after")
                .aliases(["stop-grace", "grace"])
                .value_name("DURATION")
                .default_value("10s")
                .value_parser(|s: &str| hub::duration::parse(s))
                .help("With --stop: how long a process group has between TERM and KILL (also --stop-grace)"),
        )
        .arg(
            Arg::new("keep-failed")
                .long("keep-failed")
                .action(ArgAction::SetTrue)
                .help("Leave a failed or timed-out attempt's processes running, to debug them (by default its whole process group is stopped, members that outlived the leader included)"),
        )
        .arg(
            Arg::new("wait-lock")
                .long("wait-lock")
                .value_name("DURATION")
                .default_value("0s")
                .value_parser(|s: &str| hub::duration::parse(s))
                .help("When another deploy holds the state dir's lock, wait up to DURATION for it instead of failing at once (exit 2). With --stop the running deploy is stopped first and waited for (at least 60s)"),
        )
        .arg(
            Arg::new("compose-cmd")
                .long("compose-cmd")
                .value_name("CMD")
                .help("The compose command for container services, e.g. \"docker-compose\" [default: $DOCKER_CMD, else `docker compose` if it works, else docker-compose]"),
        )
        .arg(
            Arg::new("inject-failure")
                .long("inject-failure")
                .value_name("SERVICE")
                .action(ArgAction::Append)
                .help("Make SERVICE fail as if its start had failed (final at once), to rehearse the policy"),
        );
    hub::cli::with_common_args(cmd)
}

/// Run `hub-start`.
pub fn run(matches: &ArgMatches) -> Result<u8> {
    let mode = match (
        matches.get_one::<PathBuf>("gate"),
        matches.get_one::<String>("schedule").map(String::as_str),
    ) {
        (None, _) => Mode::Ungated,
        (Some(_), Some("levels")) => Mode::Levels,
        (Some(_), _) => Mode::Dag,
    };
    let state_dir = hub::statedir::absolute_from_env(
        matches
            .get_one::<PathBuf>("state-dir")
            .map(PathBuf::as_path),
    )?;
    let state_dir = hub::statedir::create(&state_dir)?;
    let wait_lock = matches
        .get_one::<Duration>("wait-lock")
        .copied()
        .unwrap_or_default();
    let lock = StateLock::new(&state_dir);
    if matches.get_flag("stop") {
        let _lock = stop::stop_running_deploy(&lock, wait_lock)?;
        let grace = matches
            .get_one::<Duration>("stop-grace")
            .copied()
            .unwrap_or(Duration::from_secs(10));
        let compose_cmd = matches.get_one::<String>("compose-cmd").map(String::as_str);
        return stop::run(&state_dir, grace, compose_cmd);
    }
    // Held until we return: one deploy per state dir.
    let _lock = lock.acquire(wait_lock)?;
    let breaker_state = hub::breaker::deploy_state_path(matches, &state_dir);
    let breaker = hub::breaker::Breaker::new(
        breaker_state,
        hub::breaker::Config::from_env(|k| std::env::var(k).ok())?,
        std::sync::Arc::new(hub::clock::SystemClock),
    );
    let config = deploy::Config {
        mode,
        jobs: matches.get_one::<usize>("jobs").copied().unwrap_or(0),
        gate: matches.get_one::<PathBuf>("gate").cloned(),
        state_dir,
        breaker,
        inject_failure: matches
            .get_many::<String>("inject-failure")
            .map(|v| v.cloned().collect())
            .unwrap_or_default(),
        compose_cmd: matches.get_one::<String>("compose-cmd").cloned(),
        keep_failed: matches.get_flag("keep-failed"),
    };
    deploy::run(config)
}
