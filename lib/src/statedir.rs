//! The state dir (`.hub`): made once, private, and resolved once.
//!
//! Logs, pid files, exit files, the deploy lock and the breaker state live there. It is created
//! 0700 whatever the umask (it names processes root may signal), and a state dir that is a
//! symlink is resolved once at the start, so the lock and the data it guards cannot end up in two
//! places when the link is changed mid-run. A state path that is not a folder (a FIFO, a device,
//! a file) is refused, not read from or written into.

use crate::{Error, Result};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Create `path` (mode 0700, parents too) when missing, refuse it when it is not a folder, and
/// return it resolved (symlinks followed once, absolute).
pub fn create(path: &Path) -> Result<PathBuf> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::input(format!(
                "--state-dir {} is not a folder; point --state-dir at a folder (it is created when missing)",
                path.display()
            )));
        }
        Err(_) => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(|e| Error::io(format!("creating the state dir {}", path.display()), &e))?;
            // The umask may have taken bits off (never added any): say exactly 0700.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io(format!("setting the mode of {}", path.display()), &e))?;
        }
    }
    std::fs::canonicalize(path)
        .map_err(|e| Error::io(format!("resolving the state dir {}", path.display()), &e))
}

/// Create the folder `path` inside a state dir, mode 0700 whatever the umask.
pub fn create_folder(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_and_a_symlink_resolved() {
        let dir = std::env::temp_dir().join(format!("hub-statedir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let made = create(&dir.join("a/b")).unwrap();
        let mode = std::fs::metadata(&made).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::os::unix::fs::symlink(&made, dir.join("link")).unwrap();
        assert_eq!(create(&dir.join("link")).unwrap(), made);
        nix::unistd::mkfifo(&dir.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = create(&dir.join("fifo")).unwrap_err();
        assert!(err.message().contains("not a folder"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
