//! Exits of processes hub-wait-healthy did not see start as events: one thread waits in
//! `epoll` on a pidfd per watched process (an adopted one, a `started` record written by hand,
//! or every child of a hub-start that is gone) and calls back with that wait's key the moment
//! it exits. A process `hub-start` launched needs none of this while hub-start runs: it is the
//! parent and writes an `exited` record.
//!
//! A pidfd turns readable when its process exits, zombie or reaped, and it keeps referring to
//! that process even if the pid is reused. This makes a crash visible at once and costs nothing
//! while nothing happens; polling `/proc` every 50 ms for each of 100 services cost more CPU than
//! the probes, and `epoll` (unlike `poll`) does not rescan every watched process at each exit.
//! On kernels without pidfds (before Linux 5.3) [`ExitWatcher::watch`] fails and the wait polls
//! instead.

use rustix::event::epoll;
use rustix::process::{Pid, PidfdFlags, pidfd_open};
use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

/// What is called with a watched process's key when it exits (on the watching thread: keep it
/// short, e.g. a channel send).
pub type OnExit = Box<dyn Fn(u64) + Send>;

/// The handle to the exit-watching thread.
pub struct ExitWatcher {
    epoll: Arc<OwnedFd>,
    /// The pidfds watched, by key: closing one removes it from the epoll set.
    watched: Arc<Mutex<HashMap<u64, OwnedFd>>>,
}

impl ExitWatcher {
    /// Start the watching thread; `on_exit` is called with the key of each process that exits.
    pub fn start(on_exit: OnExit) -> io::Result<ExitWatcher> {
        let epoll = Arc::new(epoll::create(epoll::CreateFlags::CLOEXEC)?);
        let watched: Arc<Mutex<HashMap<u64, OwnedFd>>> = Arc::default();
        let (fd, table) = (epoll.clone(), watched.clone());
        std::thread::Builder::new()
            .name("exits".into())
            .spawn(move || watch_loop(&fd, &table, &on_exit))?;
        Ok(ExitWatcher { epoll, watched })
    }

    /// Call back with `key` when process `pid` exits (at once if it already has). An error (no
    /// pidfd support, or no such process) means the caller must poll instead.
    pub fn watch(&self, key: u64, pid: u32) -> io::Result<()> {
        let pid = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::other("pid out of range"))?;
        let pidfd = pidfd_open(pid, PidfdFlags::empty())?;
        let mut watched = self
            .watched
            .lock()
            .map_err(|_| io::Error::other("the exit watcher's table is poisoned"))?;
        epoll::add(
            &*self.epoll,
            &pidfd,
            epoll::EventData::new_u64(key),
            epoll::EventFlags::IN | epoll::EventFlags::ONESHOT,
        )?;
        watched.insert(key, pidfd);
        Ok(())
    }

    /// Stop watching for `key` (its wait is over), closing its pidfd.
    pub fn forget(&self, key: u64) {
        if let Ok(mut watched) = self.watched.lock() {
            watched.remove(&key);
        }
    }
}

fn watch_loop(epoll: &OwnedFd, watched: &Mutex<HashMap<u64, OwnedFd>>, on_exit: &OnExit) {
    let mut events: Vec<epoll::Event> = Vec::with_capacity(256);
    while let Some(keys) = hub::reaper::ready_keys(epoll, &mut events) {
        for key in keys {
            // Forgotten meanwhile: nobody waits for it any more.
            let known = watched
                .lock()
                .map(|mut watched| watched.remove(&key).is_some())
                .unwrap_or(false);
            if known {
                on_exit(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn an_exit_is_an_event() {
        let (tx, rx) = mpsc::channel();
        let watcher = ExitWatcher::start(Box::new(move |key| {
            let _ = tx.send(key);
        }))
        .unwrap();
        let mut child = Command::new("sleep").arg("600").spawn().unwrap();
        watcher.watch(1, child.id()).unwrap();
        let mut other = Command::new("sleep").arg("600").spawn().unwrap();
        watcher.watch(2, other.id()).unwrap();
        watcher.forget(2);
        other.kill().unwrap();
        other.wait().unwrap();
        // Killed, not reaped: the zombie's exit is seen.
        child.kill().unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(1));
        child.wait().unwrap();
        // Forgotten: no news of it.
        let mut third = Command::new("true").spawn().unwrap();
        watcher.watch(3, third.id()).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(3));
        third.wait().unwrap();
    }
}
