//! Running things: processes in their own groups, their exits as events, pid files, health
//! probes, containers, and the lock that makes one deploy per state dir.

pub mod container;
pub mod container_health;
pub mod deploylock;
pub mod pidfile;
pub mod probe;
pub mod process;
pub mod reaper;
pub mod signals;
pub mod spawn;
pub mod statedir;
pub mod swarm;
