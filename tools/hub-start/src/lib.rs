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

use hub::Result;
use hub::deploylock::StateLock;

pub mod cli;
pub use cli::{Cli, Schedule};
pub use scheduler::Mode;

/// Run `hub-start`.
pub fn run(args: Cli) -> Result<u8> {
    let mode = match (&args.gate, args.schedule) {
        (None, _) => Mode::Ungated,
        (Some(_), Schedule::Levels) => Mode::Levels,
        (Some(_), Schedule::Dag) => Mode::Dag,
    };
    let state_dir = hub::statedir::create(&args.state_dir.resolve()?)?;
    let lock = StateLock::new(&state_dir);
    if args.stop {
        let _lock = stop::stop_running_deploy(&lock, args.wait_lock)?;
        return stop::run(
            &state_dir,
            args.kill_after,
            args.compose.compose_cmd.as_deref(),
        );
    }
    // Held until we return: one deploy per state dir.
    let _lock = lock.acquire(args.wait_lock)?;
    let breaker = hub::breaker::Breaker::new(
        args.breaker_state.of_deploy(&state_dir),
        args.breaker.config(),
        std::sync::Arc::new(hub::clock::SystemClock),
    );
    let config = deploy::Config {
        mode,
        jobs: args.jobs,
        gate: args.gate,
        state_dir,
        breaker,
        inject_failure: args.inject_failure,
        compose_cmd: args.compose.compose_cmd,
        keep_failed: args.keep_failed,
    };
    deploy::run(config)
}
