//! The one library every hub tool stands on.
//!
//! The tools (`hub-levels`, `hub-start`, `hub-wait-healthy`, `hub-retry`, `hub-breaker`,
//! `hub-report`) are thin binaries; what they share lives here so that a rule (how a duration
//! is spelled, what a record looks like, how a child is killed) is written once.
//!
//! The folders are the architecture:
//! - [`stack`]: the model of a stack — compose files read as compose reads them, the services
//!   they define, the dependency graph;
//! - [`contract`]: the JSON-lines records the tools exchange;
//! - [`resilience`]: backoff, retries and the shared circuit breaker;
//! - [`run`]: processes, containers and Swarm services started, watched, probed and stopped;
//! - [`support`]: errors, the command line, logs, durations, files written safely.
//!
//! Each module is also re-exported at the root (`hub::records` is `hub::contract::records`),
//! so a tool names what it uses without spelling out the layout.
#![deny(missing_docs)]

pub mod contract;
pub mod resilience;
pub mod run;
pub mod stack;
pub mod support;

pub use contract::{jsonl, output, records};
pub use resilience::{backoff, breaker, clock, codes, retry};
pub use run::{
    container, container_health, deploylock, pidfile, probe, process, reaper, signals, spawn,
    statedir, swarm,
};
pub(crate) use stack::local;
pub use stack::{command, compose, dotenv, graph, include, interpolate, service, yaml};
pub use support::error::{Error, Result};
pub use support::{atomic, cli, duration, error, log, logheader, similar, statefile, time};
