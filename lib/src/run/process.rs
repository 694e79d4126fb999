//! Children in their own process group: spawn, wait with a deadline, kill the whole group.
//!
//! A wrapped command (a start script, a probe, an attempt under `hub-retry`) may fork: killing
//! only its leader leaves orphans holding ports. So every child leads its own process group and
//! is always signalled as a group. Waiting happens on a thread that blocks in `wait()`, so a
//! fast child costs no polling delay and a timeout costs no busy loop.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

/// How a child is detached from us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detach {
    /// Its own process group (a terminal's Ctrl-C still reaches it through us, by forwarding).
    /// A long-running service that outlives us gets its own session as well, through
    /// [`crate::spawn::session`] (`posix_spawn`, no fork).
    Group,
}

/// A running child that leads its own process group.
#[derive(Debug)]
pub struct Running {
    pid: Pid,
    start: Option<u64>,
    exited: Receiver<io::Result<ExitStatus>>,
    status: Option<ExitStatus>,
}

impl Running {
    /// Spawn `cmd` detached as asked. Standard streams are whatever `cmd` was given.
    pub fn spawn(cmd: &mut Command, detach: Detach) -> io::Result<Running> {
        let (child, identity) = spawn_detached(cmd, detach)?;
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        let mut child = child;
        let (tx, exited) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("wait-{pid}"))
            .spawn(move || {
                let _ = tx.send(child.wait());
            })?;
        Ok(Running {
            pid,
            start: identity.map(|i| i.start),
            exited,
            status: None,
        })
    }
}

/// Spawn `cmd` detached as asked, leaving the waiting to the caller (a [`crate::reaper`], or
/// [`Running`]'s thread): the child and its identity (`None` without `/proc`).
pub fn spawn_detached(cmd: &mut Command, detach: Detach) -> io::Result<(Child, Option<Identity>)> {
    unblock_signals_in_child(cmd);
    match detach {
        Detach::Group => {
            cmd.process_group(0);
        }
    }
    let child = cmd.spawn()?;
    let identity = Identity::of_child(child.id());
    Ok((child, identity))
}

impl Running {
    /// The child's pid, which is also its process group id.
    pub fn pid(&self) -> u32 {
        u32::try_from(self.pid.as_raw()).unwrap_or(0)
    }

    /// The child's identity (pid and start time), for pid files; `None` without `/proc`.
    pub fn identity(&self) -> Option<Identity> {
        self.start.map(|start| Identity {
            pid: self.pid(),
            start,
        })
    }

    /// Wait for the child to exit; `None` if it is still running after `timeout`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        match self.exited.recv_timeout(timeout) {
            Ok(result) => {
                let status = result?;
                self.status = Some(status);
                Ok(Some(status))
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                Err(io::Error::other("the child's waiter thread is gone"))
            }
        }
    }

    /// Wait for the child to exit.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = self
            .exited
            .recv()
            .map_err(|_| io::Error::other("the child's waiter thread is gone"))??;
        self.status = Some(status);
        Ok(status)
    }

    /// The exit status if the child has exited, without waiting.
    pub fn try_status(&mut self) -> io::Result<Option<ExitStatus>> {
        self.wait_timeout(Duration::ZERO)
    }

    /// Send a signal to the child's whole process group. A group that is gone is not an error.
    pub fn signal_group(&self, signal: Signal) -> io::Result<()> {
        signal_group(self.pid(), signal)
    }

    /// TERM the whole group, wait up to `grace` for the leader, then KILL the group.
    /// The group is KILLed even when the leader exited in time, so no member outlives it.
    pub fn terminate(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        self.signal_group(Signal::SIGTERM)?;
        let status = match self.wait_timeout(grace)? {
            Some(status) => status,
            None => {
                self.signal_group(Signal::SIGKILL)?;
                self.wait()?
            }
        };
        self.signal_group(Signal::SIGKILL)?;
        Ok(status)
    }
}

/// Give the child an empty signal mask.
///
/// Tools block SIGINT/SIGTERM in every thread to receive them as events
/// ([`crate::signals::watch`]); `Command` does not reset the mask, so without this every child
/// would ignore TERM and Ctrl-C. Use it on every `Command` a tool spawns.
///
/// It also keeps [`crate::signals::ENV_PARENT`] from the child: it names *our* parent, and a
/// hub tool run as a service (`start: "hub-retry … -- ./migrate.sh"`) would read it as its own
/// and stop at once.
pub fn unblock_signals_in_child(cmd: &mut Command) {
    cmd.env_remove(crate::signals::ENV_PARENT);
    // SAFETY: pthread_sigmask is async-signal-safe and touches no memory of the parent.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::signal::SigSet::empty()
                .thread_set_mask()
                .map_err(io::Error::from)
        });
    }
}

/// Send `signal` to process group `pgid`; a group that no longer exists is fine.
pub fn signal_group(pgid: u32, signal: Signal) -> io::Result<()> {
    let pgid = i32::try_from(pgid).map_err(|_| io::Error::other("pid out of range"))?;
    if pgid <= 1 {
        return Err(io::Error::other(format!(
            "refusing to signal process group {pgid}"
        )));
    }
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Is any process of group `pgid` alive?
pub fn group_alive(pgid: u32) -> bool {
    let Ok(pgid) = i32::try_from(pgid) else {
        return false;
    };
    pgid > 1 && killpg(Pid::from_raw(pgid), None).is_ok()
}

/// Is process `pid` alive (not yet reaped; a zombie counts as alive)?
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    pid > 1 && nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
}

/// A process by pid and start time, so that a pid the kernel has handed to another process
/// since is not taken for the one recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// The process id.
    pub pid: u32,
    /// Its start time in clock ticks since boot (field 22 of `/proc/PID/stat`).
    pub start: u64,
}

impl Identity {
    /// The identity of the running process `pid`; `None` when it is gone, a zombie, or there is
    /// no `/proc` to read its start time from.
    pub fn of(pid: u32) -> Option<Identity> {
        process_start(pid).map(|start| Identity { pid, start })
    }

    /// The identity of our child `pid`, read before anyone reaps it: even a child that has
    /// exited already is a zombie until then, with its start time still in `/proc`. `None`
    /// without `/proc`.
    pub fn of_child(pid: u32) -> Option<Identity> {
        let start = stat_fields(pid).and_then(|f| f.get(19)?.parse().ok())?;
        Some(Identity { pid, start })
    }

    /// Is this process still alive (a zombie included: it has not been reaped, so its pid is
    /// not reused yet)?
    pub fn is_alive(&self) -> bool {
        stat_fields(self.pid).and_then(|f| f.get(19)?.parse::<u64>().ok()) == Some(self.start)
    }

    /// How long ago this process started (from its start time and `/proc/uptime`); `None`
    /// without `/proc`.
    pub fn age(&self) -> Option<Duration> {
        use nix::unistd::{SysconfVar, sysconf};
        let ticks = u64::try_from(sysconf(SysconfVar::CLK_TCK).ok()??)
            .ok()
            .filter(|&t| t > 0)?;
        let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
        let uptime: f64 = uptime.split_whitespace().next()?.parse().ok()?;
        let uptime = Duration::try_from_secs_f64(uptime).ok()?;
        let started = Duration::from_secs(self.start / ticks)
            + Duration::from_nanos((self.start % ticks) * 1_000_000_000 / ticks);
        Some(uptime.saturating_sub(started))
    }

    /// Send `signal` to this process alone, only while it is still the same process.
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        let pid = i32::try_from(self.pid).map_err(|_| io::Error::other("pid out of range"))?;
        if pid <= 1 || !self.is_alive() {
            return Ok(());
        }
        match nix::sys::signal::kill(Pid::from_raw(pid), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(io::Error::from(e)),
        }
    }

    /// Is this process still running (alive and not a zombie)?
    pub fn is_running(&self) -> bool {
        process_start(self.pid) == Some(self.start)
    }
}

/// The fields of `/proc/PID/stat` after the command name (field 3, the state, is index 0).
pub fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields resume after the
    // last `)`.
    Some(
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

/// A running process's start time in clock ticks since boot (field 22 of `/proc/PID/stat`),
/// or `None` where there is no `/proc` or the process is gone or a zombie.
pub fn process_start(pid: u32) -> Option<u64> {
    let fields = stat_fields(pid)?;
    if fields.first().map(String::as_str) == Some("Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Is process `pid` a zombie (exited, not yet reaped by its parent) or gone altogether?
///
/// `kill(pid, 0)` succeeds on a zombie, so a reader that is not the parent needs `/proc` to
/// learn that a process has exited before its parent reaps it.
pub fn process_exited(pid: u32) -> bool {
    if !process_alive(pid) {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| matches!(state, 'Z' | 'X' | 'x')),
        Err(_) => !process_alive(pid),
    }
}

/// Watches one process for its exit, from a reader that is not its parent.
///
/// It holds `/proc/PID/stat` open and re-reads it on each check: one `pread` tells both "reaped"
/// (the read fails once the process is gone, even if its pid has been reused since) and
/// "zombie" (state `Z`). Without `/proc` it falls back to [`process_exited`].
#[derive(Debug)]
pub struct ExitWatch {
    pid: u32,
    stat: Option<std::fs::File>,
}

impl ExitWatch {
    /// Start watching `pid`.
    pub fn new(pid: u32) -> ExitWatch {
        ExitWatch {
            pid,
            stat: std::fs::File::open(format!("/proc/{pid}/stat")).ok(),
        }
    }

    /// True once the process has exited (a zombie, or reaped).
    pub fn exited(&self) -> bool {
        use std::os::unix::fs::FileExt;
        let Some(stat) = &self.stat else {
            return process_exited(self.pid);
        };
        let mut buf = [0u8; 512];
        match stat.read_at(&mut buf, 0) {
            Ok(n) => {
                let text = &buf[..n];
                let state = text
                    .iter()
                    .rposition(|&b| b == b')')
                    .and_then(|close| text.get(close + 2))
                    .copied();
                matches!(state, Some(b'Z' | b'X' | b'x'))
            }
            Err(_) => true,
        }
    }
}

/// The shell's view of an exit status: the code, or 128+N when killed by signal N.
pub fn status_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// How a finished command ended, for [`run_with_timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// It exited (or was killed by a signal) on its own; the shell-style status.
    Exited(i32),
    /// It ran past its timeout and its group was killed.
    TimedOut,
}

/// Run a command in its own group, killing the group if it outlives `timeout`.
pub fn run_with_timeout(
    cmd: &mut Command,
    timeout: Duration,
    grace: Duration,
) -> io::Result<Finished> {
    run_with_timeout_observed(cmd, timeout, grace, |_| {})
}

/// As [`run_with_timeout`], telling `on_spawn` the child's process group id as soon as it runs,
/// so a caller can kill the group from elsewhere (on SIGINT/SIGTERM) while this call waits.
pub fn run_with_timeout_observed(
    cmd: &mut Command,
    timeout: Duration,
    grace: Duration,
    on_spawn: impl FnOnce(u32),
) -> io::Result<Finished> {
    let mut child = Running::spawn(cmd, Detach::Group)?;
    on_spawn(child.pid());
    match child.wait_timeout(timeout)? {
        Some(status) => {
            // Members left behind by a leader that exited in time are killed too.
            child.signal_group(Signal::SIGKILL)?;
            Ok(Finished::Exited(status_code(status)))
        }
        None => {
            child.terminate(grace)?;
            Ok(Finished::TimedOut)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    #[test]
    fn exit_codes_pass_through() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 7"]);
        let finished =
            run_with_timeout(&mut cmd, Duration::from_secs(10), Duration::from_secs(1)).unwrap();
        assert_eq!(finished, Finished::Exited(7));
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let dir = tempfile_dir();
        let pidfile = dir.join("grandchild.pid");
        let mut cmd = Command::new("sh");
        // The grandchild writes its pid, then both wait forever.
        cmd.arg("-c")
            .arg(format!(
                "sleep 1000 & echo $! > {}; wait",
                pidfile.display()
            ))
            .stdout(Stdio::null());
        let mut child = Running::spawn(&mut cmd, Detach::Group).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !pidfile.exists() || std::fs::read_to_string(&pidfile).unwrap().trim().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "grandchild never started"
            );
            std::thread::yield_now();
        }
        let grandchild: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            child
                .wait_timeout(Duration::from_millis(1))
                .unwrap()
                .is_none()
        );
        let status = child.terminate(Duration::from_secs(2)).unwrap();
        assert_eq!(status_code(status), 128 + 15);
        // The grandchild was in the group: it dies too (reaped by init; wait until gone).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while process_alive(grandchild) && !is_zombie(grandchild) {
            assert!(
                std::time::Instant::now() < deadline,
                "grandchild {grandchild} survived"
            );
            std::thread::yield_now();
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn children_start_with_no_blocked_signal() {
        // As after `signals::watch`: SIGTERM blocked in the spawning thread.
        let mut blocked = nix::sys::signal::SigSet::empty();
        blocked.add(Signal::SIGTERM);
        blocked.thread_block().unwrap();
        let mut cmd = Command::new("sleep");
        cmd.arg("1000");
        let mut child = Running::spawn(&mut cmd, Detach::Group).unwrap();
        let mask = std::fs::read_to_string(format!("/proc/{}/status", child.pid()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:").map(|m| m.trim().to_owned()))
            .unwrap();
        let status = child.terminate(Duration::from_secs(60)).unwrap();
        blocked.thread_unblock().unwrap();
        assert_eq!(mask, "0000000000000000");
        assert_eq!(status_code(status), 128 + 15, "SIGTERM reached the child");
    }

    #[test]
    fn exit_watch_sees_zombies_and_reaped_processes() {
        let mut alive = Command::new("sleep").arg("600").spawn().unwrap();
        let watch = ExitWatch::new(alive.id());
        assert!(!watch.exited());
        alive.kill().unwrap();
        // Killed but not reaped: a zombie, which kill(pid, 0) alone would call alive.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !watch.exited() {
            assert!(std::time::Instant::now() < deadline, "zombie not seen");
            std::thread::yield_now();
        }
        assert!(process_alive(alive.id()));
        assert!(process_exited(alive.id()));
        alive.wait().unwrap();
        assert!(watch.exited());
    }

    fn is_zombie(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hub-process-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
