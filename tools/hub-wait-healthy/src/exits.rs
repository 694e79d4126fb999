//! Exits of processes hub-wait-healthy did not see start as events: one thread blocks in
//! `poll(2)` on a pidfd per watched process (an adopted one, or a `started` record written by
//! hand) and tells that service's waiter the moment it exits. A process `hub-start` launched
//! needs none of this: hub-start is its parent and writes an `exited` record.
//!
//! A pidfd turns readable when its process exits, zombie or reaped, and it keeps referring to
//! that process even if the pid is reused. This makes a crash visible at once and costs nothing
//! while nothing happens; polling `/proc` every 50 ms for each of 100 services cost more CPU than
//! the probes. On kernels without pidfds (before Linux 5.3) [`ExitWatcher::watch`] fails and the
//! waiter polls instead.

use rustix::event::{PollFd, PollFlags, poll};
use rustix::process::{Pid, PidfdFlags, pidfd_open};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, Sender};

/// What wakes a waiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Stop waiting (superseded, or the tool is stopping).
    Stop,
    /// The watched process exited, with its status when known (hub-start's `exited` record).
    Exited(Option<i32>),
}

enum Request {
    Watch {
        key: u64,
        pidfd: OwnedFd,
        notify: Sender<Wake>,
    },
    Forget {
        key: u64,
    },
}

/// The handle to the exit-watching thread.
pub struct ExitWatcher {
    requests: Sender<Request>,
    /// Written to after each request, so the thread's `poll` wakes up to read it.
    wake: Mutex<UnixStream>,
}

impl ExitWatcher {
    /// Start the watching thread.
    pub fn start() -> io::Result<ExitWatcher> {
        let (requests, inbox) = mpsc::channel();
        let (wake, woken) = UnixStream::pair()?;
        woken.set_nonblocking(true)?;
        std::thread::Builder::new()
            .name("exits".into())
            .spawn(move || watch_loop(&inbox, woken))?;
        Ok(ExitWatcher {
            requests,
            wake: Mutex::new(wake),
        })
    }

    /// Send [`Wake::Exited`] to `notify` when process `pid` exits (at once if it already has).
    /// An error (no pidfd support, or no such process) means the caller must poll instead.
    pub fn watch(&self, key: u64, pid: u32, notify: Sender<Wake>) -> io::Result<()> {
        let pid = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::other("pid out of range"))?;
        let pidfd = pidfd_open(pid, PidfdFlags::empty())?;
        self.send(Request::Watch { key, pidfd, notify })
    }

    /// Stop watching for `key` (its wait is over), closing its pidfd.
    pub fn forget(&self, key: u64) {
        let _ = self.send(Request::Forget { key });
    }

    fn send(&self, request: Request) -> io::Result<()> {
        self.requests
            .send(request)
            .map_err(|_| io::Error::other("the exit watcher is gone"))?;
        let mut wake = self
            .wake
            .lock()
            .map_err(|_| io::Error::other("the exit watcher's wake socket is poisoned"))?;
        wake.write_all(&[1])
    }
}

fn watch_loop(inbox: &Receiver<Request>, mut woken: UnixStream) {
    let mut watched: HashMap<u64, (OwnedFd, Sender<Wake>)> = HashMap::new();
    loop {
        let keys: Vec<u64> = watched.keys().copied().collect();
        let (woke, exited) = {
            let mut fds = Vec::with_capacity(keys.len() + 1);
            fds.push(PollFd::new(&woken, PollFlags::IN));
            for key in &keys {
                if let Some((pidfd, _)) = watched.get(key) {
                    fds.push(PollFd::new(pidfd, PollFlags::IN));
                }
            }
            match poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return,
            }
            let ready = |fd: &PollFd<'_>| !fd.revents().is_empty();
            let exited: Vec<u64> = keys
                .iter()
                .zip(&fds[1..])
                .filter(|(_, fd)| ready(fd))
                .map(|(key, _)| *key)
                .collect();
            (ready(&fds[0]), exited)
        };
        for key in exited {
            if let Some((_, notify)) = watched.remove(&key) {
                let _ = notify.send(Wake::Exited(None));
            }
        }
        if woke {
            let mut drain = [0u8; 256];
            while matches!(woken.read(&mut drain), Ok(n) if n > 0) {}
            loop {
                match inbox.try_recv() {
                    Ok(Request::Watch { key, pidfd, notify }) => {
                        watched.insert(key, (pidfd, notify));
                    }
                    Ok(Request::Forget { key }) => {
                        watched.remove(&key);
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::Duration;

    #[test]
    fn an_exit_is_an_event() {
        let watcher = ExitWatcher::start().unwrap();
        let mut child = Command::new("sleep").arg("600").spawn().unwrap();
        let (tx, rx) = mpsc::channel();
        watcher.watch(1, child.id(), tx).unwrap();
        let mut other = Command::new("sleep").arg("600").spawn().unwrap();
        let (other_tx, other_rx) = mpsc::channel();
        watcher.watch(2, other.id(), other_tx).unwrap();
        watcher.forget(2);
        // Killed, not reaped: the zombie's exit is seen.
        child.kill().unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(30)),
            Ok(Wake::Exited(None))
        );
        child.wait().unwrap();
        other.kill().unwrap();
        other.wait().unwrap();
        // Forgotten: no news, and its sender is dropped.
        assert!(other_rx.recv_timeout(Duration::from_secs(30)).is_err());
    }
}
