//! The records contract: the JSON-lines records the tools exchange, read and written one
//! line at a time.

pub mod jsonl;
pub mod output;
pub mod records;
