//! One deploy per state dir.
//!
//! Two deploys on one state dir at once both think they own every service: both launch, both
//! write the pid files, and each one's records lie about the other's processes. So `hub-start`
//! (deploying or stopping) holds an exclusive `flock` on `STATE_DIR/deploy.lock` for its whole
//! run. The lock file is never renamed or removed (a lock on a replaced file is no lock); the
//! kernel drops the lock when its holder dies, even by `kill -9`, so there is no stale lock.
//! The holder writes its identity (`PID START`) into the file, so a second deploy can name it
//! and `hub-down` can stop it — only while it is the same process.

use crate::pidfile::{self, Recorded};
use crate::process::Identity;
use crate::{Error, Result};
use std::fs::File;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The lock file's name inside the state dir.
pub const FILE_NAME: &str = "deploy.lock";

/// A held deploy lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DeployLock {
    _file: File,
}

/// The lock of `state_dir`, not yet taken.
#[derive(Debug, Clone)]
pub struct StateLock {
    path: PathBuf,
}

impl StateLock {
    /// The lock of the state dir `state_dir` (which must exist).
    pub fn new(state_dir: &Path) -> StateLock {
        StateLock {
            path: state_dir.join(FILE_NAME),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Take the lock, waiting up to `wait` (zero: not at all). `Ok(None)` when another process
    /// kept it that long.
    pub fn try_acquire(&self, wait: Duration) -> Result<Option<DeployLock>> {
        let file = crate::statefile::open_lock_file(&self.path).map_err(|e| {
            Error::io(
                format!("opening the deploy lock {}", self.path.display()),
                &e,
            )
        })?;
        let Some(mut file) = crate::statefile::lock_within(file, wait)
            .map_err(|e| Error::io(format!("locking {}", self.path.display()), &e))?
        else {
            return Ok(None);
        };
        // Name ourselves for whoever finds the lock taken. The file is ours alone now.
        if let Some(me) = Identity::of(std::process::id()) {
            let written = file
                .set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(pidfile::format(me).as_bytes()));
            written.map_err(|e| Error::io(format!("writing {}", self.path.display()), &e))?;
        }
        Ok(Some(DeployLock { _file: file }))
    }

    /// Take the lock, waiting up to `wait`; else an error (exit 2) that names the holder.
    pub fn acquire(&self, wait: Duration) -> Result<DeployLock> {
        match self.try_acquire(wait)? {
            Some(lock) => Ok(lock),
            None => Err(Error::input(format!(
                "another deploy ({}) holds {}{}: one deploy per state dir; wait for it to \
                 finish, stop it with hub-down, or pass --wait-lock DURATION",
                self.describe_holder(),
                self.path.display(),
                if wait.is_zero() {
                    String::new()
                } else {
                    format!(" (waited {})", crate::duration::human(wait))
                }
            ))),
        }
    }

    /// The process holding the lock, as far as the file tells (a holder that died released
    /// the lock, but its identity stays in the file until the next holder writes its own).
    pub fn holder(&self) -> Option<Identity> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        match pidfile::parse(&text)? {
            Recorded::Known(identity) => Some(identity),
            Recorded::PidOnly(_) => None,
        }
    }

    fn describe_holder(&self) -> String {
        match self.holder() {
            Some(holder) if holder.is_alive() => format!("pid {}", holder.pid),
            // The lock is on the open file: a child forked by the last holder can keep it a
            // moment after that holder has gone, until the child's exec closes it.
            Some(holder) => format!(
                "last taken by pid {}, now gone; a process it started may still hold it",
                holder.pid
            ),
            None => "a process that did not name itself".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = std::env::temp_dir().join(format!("hub-deploylock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lock = StateLock::new(&dir);
        let held = lock.acquire(Duration::ZERO).unwrap();
        // flock conflicts between open file descriptions, even within one process.
        let err = lock.acquire(Duration::from_millis(20)).unwrap_err();
        assert_eq!(err.code(), 2);
        assert!(
            err.message()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert_eq!(lock.holder().map(|h| h.pid), Some(std::process::id()));
        drop(held);
        // Other tests of this binary spawn processes: a fork between our open and exec holds a
        // copy of the lock's file description until its exec closes it, so wait a little.
        assert!(lock.try_acquire(Duration::from_secs(5)).unwrap().is_some());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
