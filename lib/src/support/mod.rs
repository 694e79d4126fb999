//! What every part leans on: errors with exit codes, the command line, logs, durations and
//! timestamps, files replaced atomically or shared under a lock, name suggestions.

pub mod atomic;
pub mod cli;
pub mod duration;
pub mod error;
pub mod log;
pub mod logheader;
pub mod similar;
pub mod statefile;
pub mod time;
