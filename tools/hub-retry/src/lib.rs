//! `hub-retry`: run a command, and retry it with exponential backoff while it fails.
//!
//! The seed's `retry_with_backoff` as a standalone tool: the real exit status passed through,
//! per-attempt timeouts that kill the whole process group, exit-code predicates, jitter, and an
//! optional shared circuit breaker asked before every attempt. The loop itself lives in
//! [`hub::retry`], so `hub-breaker run` and `hub-start` share it.

use hub::Result;
use hub::backoff::Backoff;
use hub::retry::{self, Interrupts, Job, Policy};
use std::path::Path;

pub mod cli;
pub use cli::Cli;

/// Run `hub-retry`.
pub fn run(args: Cli) -> Result<u8> {
    // First, before any thread starts: SIGINT/SIGTERM/SIGHUP become events.
    let interrupts = Interrupts::watch(args.kill_after)?;
    let policy = Policy {
        attempts: args.attempts,
        backoff: Backoff {
            base: args.delay,
            max: args.max_delay,
            jitter: args.jitter,
        },
        // As GNU timeout: 0 is no timeout.
        timeout: args.timeout.filter(|t| !t.is_zero()),
        max_time: args.max_time,
        grace: args.kill_after,
        retry_on: args.retry_on,
        stop_on: args.stop_on,
    };
    let name = match args.name {
        Some(name) => name,
        None => args
            .command
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
    let breaker = match &args.breaker {
        Some(_) => Some(args.breaker_args.breaker()?),
        None => None,
    };
    let events = match &args.events.events {
        Some(target) => Some(retry::open_events(target)?),
        None => None,
    };
    let job = Job {
        name,
        argv: args.command,
        policy,
        breaker: breaker.as_ref().zip(args.breaker),
        events,
        run_id: args.run_id.run_id,
        stdin: if args.replay_stdin {
            Some(retry::spool_stdin()?)
        } else {
            None
        },
    };
    retry::run(job, &interrupts)
}
