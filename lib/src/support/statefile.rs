//! A small file shared by many processes: read-modify-write under an exclusive lock, replaced
//! atomically, so readers and crashed writers never see or leave half a file.
//!
//! The rules (each fixes a known bug of shared-state tools):
//! - The lock is taken on a separate lock file beside the data (`breaker.json.lock`) that is
//!   never renamed or unlinked. Locking the data file itself breaks as soon as it is replaced
//!   by a rename: the next process locks the new inode while the old lock still stands.
//! - The new contents go to a fresh temp file (`O_EXCL`, unpredictable name: a planted symlink
//!   is never written through) in the same folder, which is fsynced, renamed over the
//!   data file, and then the folder is fsynced, so after a crash the file is either the old or
//!   the new contents, whole. Readers need no lock: a rename is atomic.
//! - `flock` locks are released by the kernel when their holder dies (even by `kill -9`), so
//!   there is no stale-lock cleanup. Waiting is bounded by a lock timeout: a lock that cannot be
//!   had in time is a clear error, never a hang.
//! - Files are created with mode 0600 and folders with 0700: the state is per user.

use crate::{Error, Result};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// A data file guarded by a lock file beside it.
#[derive(Debug, Clone)]
pub struct LockedFile {
    path: PathBuf,
    lock_path: PathBuf,
    lock_timeout: Duration,
}

/// What an update decided: new contents to write (or `None` to leave the file as it is), and a
/// value to hand back to the caller.
pub type Update<T> = (Option<Vec<u8>>, T);

impl LockedFile {
    /// The data file `path`, locked through `path` + `.lock`, waiting up to `lock_timeout`.
    pub fn new(path: impl Into<PathBuf>, lock_timeout: Duration) -> LockedFile {
        let path = path.into();
        // A symlink is resolved once, here: the lock beside it and the data renamed over it
        // would otherwise part ways (the rename replaces the link, not its target).
        let path = match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(&path).unwrap_or(path),
            _ => path,
        };
        let mut lock_name = path.file_name().unwrap_or_default().to_os_string();
        lock_name.push(".lock");
        let lock_path = path.with_file_name(lock_name);
        LockedFile {
            path,
            lock_path,
            lock_timeout,
        }
    }

    /// The data file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file beside it.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// Read the current contents without locking (`None` when the file does not exist yet).
    pub fn read(&self) -> Result<Option<Vec<u8>>> {
        // A FIFO would hang the read, a device (`/dev/zero`) fill memory: only a file will do.
        if let Ok(meta) = fs::metadata(&self.path)
            && !meta.is_file()
        {
            return Err(Error::input(format!(
                "{} is not a regular file; point the state path at a file (it is created when missing)",
                self.path.display()
            )));
        }
        match fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::input(format!(
                "cannot read {}: {e}; fix its permissions, or start afresh with `hub-breaker reset --all`",
                self.path.display()
            ))),
        }
    }

    /// Lock, read the current contents, let `update` decide, write its new contents
    /// atomically, unlock. `update` runs with the lock held: keep it short and never run a
    /// child from it.
    pub fn update<T>(&self, update: impl FnOnce(Option<&[u8]>) -> Result<Update<T>>) -> Result<T> {
        let _lock = self.lock()?;
        let current = self.read()?;
        let (new_contents, value) = update(current.as_deref())?;
        if let Some(bytes) = new_contents {
            self.write_atomic(&bytes)?;
        }
        Ok(value)
    }

    /// Take the exclusive lock; it is released when the returned file is dropped.
    pub fn lock(&self) -> Result<File> {
        self.create_folder()?;
        let file = open_lock_file(&self.lock_path).map_err(|e| {
            Error::io(
                format!("cannot open the lock file {}", self.lock_path.display()),
                &e,
            )
        })?;
        match lock_within(file, self.lock_timeout) {
            Ok(Some(file)) => Ok(file),
            Ok(None) => Err(Error::input(format!(
                "cannot lock {} within {}: another process holds it (find it with `fuser {}`); \
                 wait for it, or raise --lock-timeout",
                self.lock_path.display(),
                crate::backoff::format_delay(self.lock_timeout),
                self.lock_path.display()
            ))),
            Err(e) => Err(self.lock_error(&e)),
        }
    }

    fn lock_error(&self, e: &std::io::Error) -> Error {
        Error::io(format!("cannot lock {}", self.lock_path.display()), e)
    }

    /// The folder holding the file, created (mode 0700) when missing.
    fn folder(&self) -> &Path {
        match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        }
    }

    fn create_folder(&self) -> Result<()> {
        let folder = self.folder();
        crate::statedir::create_folder(folder)
            .map_err(|e| Error::io(format!("cannot create the folder {}", folder.display()), &e))
    }

    /// Temp file (fresh, `O_EXCL`, unpredictable name), fsync, rename over the data file,
    /// fsync the folder: [`crate::atomic::write_private`].
    fn write_atomic(&self, bytes: &[u8]) -> Result<()> {
        crate::atomic::write_private(&self.path, bytes)
            .map_err(|e| Error::io(format!("cannot replace {}", self.path.display()), &e))
    }
}

/// Open (creating it, 0600) a lock file: never truncated, renamed or removed, since a lock on
/// a replaced file is no lock.
pub fn open_lock_file(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    // Exactly 0600 whatever the umask took off (a 0400 lock file could not be reopened for
    // writing); a file someone else owns keeps its mode.
    use std::os::unix::fs::PermissionsExt;
    if file
        .metadata()
        .is_ok_and(|m| m.permissions().mode() & 0o777 != 0o600)
    {
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
    }
    Ok(file)
}

/// Take `file`'s exclusive `flock`, waiting up to `timeout`: `Ok(None)` when another holder
/// kept it that long.
pub fn lock_within(file: File, timeout: Duration) -> std::io::Result<Option<File>> {
    match file.try_lock() {
        Ok(()) => return Ok(Some(file)),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(e)) => return Err(e),
    }
    if timeout.is_zero() {
        return Ok(None);
    }
    // Contended: block in the kernel's queue on a helper thread, so waiting costs no polling,
    // and give up after the timeout. A lock won after we gave up is released at once when the
    // helper drops the file.
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("state-lock".into())
        .spawn(move || {
            let locked = file.lock().map(|()| file);
            let _ = tx.send(locked);
        })?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(file)) => Ok(Some(file)),
        Ok(Err(e)) => Err(e),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn update_writes_atomically_with_private_modes() {
        let dir = tempfile_dir("update");
        let file = LockedFile::new(dir.join("sub/state.json"), Duration::from_secs(5));
        assert_eq!(file.read().unwrap(), None);
        let seen = file
            .update(|current| Ok((Some(b"one".to_vec()), current.map(<[u8]>::to_vec))))
            .unwrap();
        assert_eq!(seen, None);
        let seen = file
            .update(|current| Ok((None, current.map(<[u8]>::to_vec))))
            .unwrap();
        assert_eq!(seen.as_deref(), Some(&b"one"[..]));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(file.path()), 0o600);
        assert_eq!(mode(file.lock_path()), 0o600);
        assert_eq!(mode(&dir.join("sub")), 0o700);
        assert!(file.lock_path().ends_with("state.json.lock"));
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_held_lock_times_out_with_a_clear_error() {
        let dir = tempfile_dir("timeout");
        let file = LockedFile::new(dir.join("state.json"), Duration::from_millis(50));
        let held = file.lock().unwrap();
        let err = file.update(|_| Ok((None, ()))).unwrap_err();
        assert_eq!(err.code(), 2);
        assert!(err.message().contains("--lock-timeout"), "{err}");
        drop(held);
        file.update(|_| Ok((None, ()))).unwrap();
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn the_lock_file_survives_replacement_of_the_data_file() {
        let dir = tempfile_dir("inode");
        let file = LockedFile::new(dir.join("state.json"), Duration::from_secs(5));
        file.update(|_| Ok((Some(b"a".to_vec()), ()))).unwrap();
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
        let lock_inode = inode(file.lock_path());
        let data_inode = inode(file.path());
        file.update(|_| Ok((Some(b"b".to_vec()), ()))).unwrap();
        assert_eq!(inode(file.lock_path()), lock_inode);
        assert_ne!(
            inode(file.path()),
            data_inode,
            "the data file is replaced by rename"
        );
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_fifo_or_device_is_refused_and_a_symlink_resolved_once() {
        let dir = tempfile_dir("special");
        for special in ["/dev/zero", "/dev/null"] {
            let err = LockedFile::new(special, Duration::from_secs(1))
                .read()
                .unwrap_err();
            assert!(err.message().contains("not a regular file"), "{err}");
        }
        nix::unistd::mkfifo(&dir.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = LockedFile::new(dir.join("fifo"), Duration::from_secs(1))
            .read()
            .unwrap_err();
        assert!(err.message().contains("not a regular file"), "{err}");
        fs::create_dir_all(dir.join("real")).unwrap();
        std::os::unix::fs::symlink(dir.join("real/state.json"), dir.join("link.json")).unwrap();
        fs::write(dir.join("real/state.json"), "a").unwrap();
        let file = LockedFile::new(dir.join("link.json"), Duration::from_secs(5));
        file.update(|_| Ok((Some(b"b".to_vec()), ()))).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("real/state.json")).unwrap(),
            "b"
        );
        assert!(
            file.lock_path()
                .starts_with(fs::canonicalize(dir.join("real")).unwrap())
        );
        assert!(
            fs::symlink_metadata(dir.join("link.json"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let _ = fs::remove_dir_all(dir);
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hub-statefile-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}
