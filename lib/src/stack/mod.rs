//! The model of a stack: compose files read as compose reads them, the services they
//! define, and the dependency graph between them.

pub mod command;
pub mod compose;
pub mod dotenv;
pub mod graph;
pub mod include;
pub mod interpolate;
pub(crate) mod local;
pub mod service;
pub mod yaml;
