//! Pid files that name a process, not a number.
//!
//! A pid alone is reused by the kernel: a pid file left by a service that died long ago may
//! name an unrelated process today, and signalling it (worse, its process group) kills a
//! bystander. So every pid hub records carries the process's start time
//! ([`crate::process::Identity`]), written as `PID START` on one line, and hub acts on a
//! recorded pid only while the same process runs. A file without a start time (written by an
//! older hub) is never acted on: the user is told to check it by hand.
//!
//! Stopping a recorded service stops its whole process group, including members that outlived
//! their leader ([`stop_group`]): a pid that leads a process group is not handed out again
//! while any member of the group lives, so a group whose leader is gone can only hold our
//! members.

use crate::process::{self, Identity};
use nix::sys::signal::Signal;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// What a pid file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A pid with its start time.
    Known(Identity),
    /// A bare pid (an older format): never acted on.
    PidOnly(u32),
}

/// Read a pid file: `Ok(None)` when there is none.
pub fn read(path: &Path) -> io::Result<Option<Recorded>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    parse(&text).map(Some).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} does not hold `PID START`; remove it", path.display()),
        )
    })
}

/// Parse `PID START` (or a bare `PID`).
pub fn parse(text: &str) -> Option<Recorded> {
    let mut words = text.split_whitespace();
    let pid: u32 = words.next()?.parse().ok()?;
    let recorded = match words.next() {
        Some(start) => Recorded::Known(Identity {
            pid,
            start: start.parse().ok()?,
        }),
        None => Recorded::PidOnly(pid),
    };
    (words.next().is_none() && pid > 1).then_some(recorded)
}

/// The line a pid file holds for `identity`.
pub fn format(identity: Identity) -> String {
    format!("{} {}\n", identity.pid, identity.start)
}

/// Write `identity` to `path` atomically (mode 0600).
pub fn write(path: &Path, identity: Identity) -> io::Result<()> {
    crate::atomic::write_private_volatile(path, format(identity).as_bytes())
}

/// The recorded process, if it is still the same process and running (not a zombie).
pub fn live(path: &Path) -> Option<Identity> {
    match read(path) {
        Ok(Some(Recorded::Known(identity))) if identity.is_running() => Some(identity),
        _ => None,
    }
}

/// How [`stop_group`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupStop {
    /// Nothing of the group was running.
    NotRunning,
    /// The leader (or, with the leader gone, the last member) ended after TERM.
    Terminated,
    /// It was still running after the grace, and was killed.
    Killed,
    /// The pid now belongs to another process: nothing was signalled.
    Recycled,
}

/// Stop the process group `identity` leads: TERM the group, wait up to `grace` for it to end,
/// then KILL whatever is left.
///
/// Signals go to the group only while its leader is the same process, or while the leader is
/// gone and members remain (their group id cannot have been reused). A pid that now names
/// another process is never signalled.
pub fn stop_group(identity: Identity, grace: Duration) -> io::Result<GroupStop> {
    let leader_ours = identity.is_alive();
    if !leader_ours {
        if process::process_alive(identity.pid) && !process::process_exited(identity.pid) {
            // The pid is in use, by someone else: our group, whose id it was, is gone.
            if process::process_start(identity.pid) != Some(identity.start) {
                return Ok(GroupStop::Recycled);
            }
        }
        if group_members(identity).is_empty() {
            return Ok(GroupStop::NotRunning);
        }
    }
    process::signal_group(identity.pid, Signal::SIGTERM)?;
    let deadline = Instant::now() + grace;
    // Not our child: there is no wait() to block on, so look again every few milliseconds.
    // The running leader is one of the members; a zombie leader has ended.
    let gone = || group_members(identity).is_empty();
    while !gone() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let in_time = gone();
    // Whatever still runs of the group (members that ignored TERM). Only while some member
    // runs: once the group is empty its id may be handed out again.
    if !in_time {
        process::signal_group(identity.pid, Signal::SIGKILL)?;
    }
    Ok(if in_time {
        GroupStop::Terminated
    } else {
        GroupStop::Killed
    })
}

/// Running (non-zombie) members of the group `identity` leads that started no earlier than its
/// leader, from `/proc`. Empty where there is no `/proc`.
pub fn group_members(identity: Identity) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            process::stat_fields(pid).is_some_and(|f| {
                // Fields after the command name: state is index 0, pgrp 2, starttime 19.
                f.first().is_some_and(|s| s != "Z")
                    && f.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(identity.pid)
                    && f.get(19)
                        .and_then(|s| s.parse::<u64>().ok())
                        .is_some_and(|start| start >= identity.start)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_formats_and_refuses_junk() {
        assert_eq!(
            parse("123 456\n"),
            Some(Recorded::Known(Identity {
                pid: 123,
                start: 456
            }))
        );
        assert_eq!(parse("123\n"), Some(Recorded::PidOnly(123)));
        for junk in ["", "x", "1 2", "0 5", "12 x", "12 3 4", "-5 1"] {
            assert_eq!(parse(junk), None, "{junk:?}");
        }
        let me = Identity::of(std::process::id()).unwrap();
        assert_eq!(parse(&format(me)), Some(Recorded::Known(me)));
    }

    #[test]
    fn a_recycled_pid_is_never_signalled() {
        let mut bystander = std::process::Command::new("sleep")
            .arg("600")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = bystander.id();
        let real = Identity::of(pid).unwrap();
        // The same pid with another start time: what a pid file of a dead service looks like
        // once the kernel has handed its pid to someone else.
        let stale = Identity {
            pid,
            start: real.start.saturating_sub(1),
        };
        assert!(!stale.is_alive());
        assert_eq!(
            stop_group(stale, Duration::from_millis(50)).unwrap(),
            GroupStop::Recycled
        );
        assert!(real.is_running(), "the bystander was signalled");
        assert_eq!(
            stop_group(real, Duration::from_secs(10)).unwrap(),
            GroupStop::Terminated
        );
        bystander.wait().unwrap();
    }

    use std::os::unix::process::CommandExt;
}
