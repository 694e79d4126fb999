//! The one library every hub tool stands on.
//!
//! The tools (`hub-levels`, `hub-start`, `hub-wait-healthy`, `hub-retry`, `hub-breaker`,
//! `hub-report`) are thin binaries; what they share lives here so that a rule (how a duration
//! is spelled, what a record looks like, how a child is killed) is written once.
#![deny(missing_docs)]

pub mod atomic;
pub mod backoff;
pub mod breaker;
pub mod cli;
pub mod clock;
pub mod codes;
pub mod command;
pub mod compose;
pub mod container;
pub mod container_health;
pub mod deploylock;
pub mod dotenv;
pub mod duration;
pub mod error;
pub mod graph;
pub mod include;
pub mod interpolate;
pub mod jsonl;
mod local;
pub mod log;
pub mod logheader;
pub mod output;
pub mod pidfile;
pub mod probe;
pub mod process;
pub mod reaper;
pub mod records;
pub mod retry;
pub mod service;
pub mod signals;
pub mod similar;
pub mod spawn;
pub mod statedir;
pub mod statefile;
pub mod swarm;
pub mod time;
pub mod yaml;

pub use error::{Error, Result};
