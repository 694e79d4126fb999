//! Children's exits as events, for a tool that launches many: one thread waits in `epoll` on a
//! pidfd per child and reaps each the moment it exits.
//!
//! A thread blocked in `wait()` per child made 10,000 services cost 10,000 threads (pids count
//! against `pid_max`), and every thread's stack mapping made each later `fork` copy more: a
//! launch got slower the more had been launched. A pidfd turns readable when its process exits
//! and always refers to that process, so one thread serves every child. On kernels without
//! pidfds (before Linux 5.3) [`Reaper::reap`] fails and the caller falls back to a thread.

use rustix::event::epoll;
use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What is called with a reaped child's status.
pub type OnExit = Box<dyn FnOnce(io::Result<ExitStatus>) + Send>;

struct Entry {
    /// A child of this process, reaped by pid ([`crate::spawn::wait`]).
    pid: u32,
    /// Kept open while watched: closing it removes it from the epoll set.
    _pidfd: OwnedFd,
    on_exit: OnExit,
}

/// The handle to the reaping thread.
pub struct Reaper {
    epoll: Arc<OwnedFd>,
    children: Arc<Mutex<HashMap<u64, Entry>>>,
    next_key: AtomicU64,
}

impl Reaper {
    /// Start the reaping thread.
    pub fn start() -> io::Result<Reaper> {
        let epoll = Arc::new(epoll::create(epoll::CreateFlags::CLOEXEC)?);
        let children: Arc<Mutex<HashMap<u64, Entry>>> = Arc::default();
        let (fd, table) = (epoll.clone(), children.clone());
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || reap_loop(&fd, &table))?;
        Ok(Reaper {
            epoll,
            children,
            next_key: AtomicU64::new(1),
        })
    }

    /// Reap our child `child` (a pid: nobody else may wait for it) when it exits and call
    /// `on_exit` with its status (on the reaping thread: keep it short, e.g. a channel send).
    /// An error (no pidfd support) hands `on_exit` back.
    pub fn reap(&self, child: u32, on_exit: OnExit) -> Result<(), (OnExit, io::Error)> {
        let pid = i32::try_from(child)
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        let Some(pid) = pid else {
            return Err((on_exit, io::Error::other("pid out of range")));
        };
        let pidfd = match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(e) => return Err((on_exit, e.into())),
        };
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let Ok(mut children) = self.children.lock() else {
            return Err((on_exit, io::Error::other("the reaper's table is poisoned")));
        };
        let added = epoll::add(
            &*self.epoll,
            &pidfd,
            epoll::EventData::new_u64(key),
            epoll::EventFlags::IN | epoll::EventFlags::ONESHOT,
        );
        if let Err(e) = added {
            return Err((on_exit, e.into()));
        }
        children.insert(
            key,
            Entry {
                pid: child,
                _pidfd: pidfd,
                on_exit,
            },
        );
        Ok(())
    }
}

/// Wait until something in `epoll` is ready (retrying when a signal interrupts): the keys of
/// what is ready, or `None` when `epoll` is broken. `events` is the reused buffer.
pub fn ready_keys(epoll: &OwnedFd, events: &mut Vec<epoll::Event>) -> Option<Vec<u64>> {
    loop {
        events.clear();
        match epoll::wait(epoll, rustix::buffer::spare_capacity(events), None) {
            Ok(_) => return Some(events.iter().map(|e| e.data.u64()).collect()),
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    }
}

fn reap_loop(epoll: &OwnedFd, children: &Mutex<HashMap<u64, Entry>>) {
    let mut events: Vec<epoll::Event> = Vec::with_capacity(256);
    while let Some(keys) = ready_keys(epoll, &mut events) {
        for key in keys {
            // Taken out under the lock, reaped and reported outside it: `reap` is not held up.
            let entry = children.lock().ok().and_then(|mut c| c.remove(&key));
            if let Some(entry) = entry {
                let status = crate::spawn::wait(entry.pid);
                (entry.on_exit)(status);
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
    fn every_child_is_reaped_with_its_status() {
        let reaper = Reaper::start().unwrap();
        let (tx, rx) = mpsc::channel();
        let log = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        for code in 0..20 {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", &format!("exit {code}")]);
            let pid = crate::spawn::session(&cmd, &log).unwrap();
            let tx = tx.clone();
            let on_exit: OnExit = Box::new(move |status| {
                let _ = tx.send((pid, status.unwrap().code()));
            });
            assert!(reaper.reap(pid, on_exit).is_ok());
        }
        let mut codes: Vec<i32> = (0..20)
            .map(|_| rx.recv_timeout(Duration::from_secs(60)).unwrap().1.unwrap())
            .collect();
        codes.sort_unstable();
        assert_eq!(codes, (0..20).collect::<Vec<_>>());
    }
}
