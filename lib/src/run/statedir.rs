//! Where hub keeps its state: one rule for every tool, so that `hub-breaker status` run after a
//! deploy looks at the breaker file the deploy used.
//!
//! The state folder is `--state-dir`, else `$HUB_STATE_DIR`, else `.hub` in the current folder.
//! The breaker's file inside it is `breaker.json`; tools that can run without any deploy
//! (`hub-breaker`, `hub-retry`) use it whenever a state folder is in use (`$HUB_STATE_DIR` is
//! set, or `.hub/` exists here), and otherwise the per-user file
//! ([`crate::breaker::default_state_path`]).
//!
//! The folder is made once and private, and resolved once: it is created 0700 whatever the umask
//! (it names processes root may signal), and a state dir that is a symlink is resolved once at
//! the start, so the lock and the data it guards cannot end up in two places when the link is
//! changed mid-run. A state path that is not a folder (a FIFO, a device, a file) is refused, not
//! read from or written into.

use crate::{Error, Result};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Environment variable: the state folder.
pub const ENV: &str = "HUB_STATE_DIR";
/// The state folder when nothing says otherwise, relative to the current folder.
pub const DEFAULT: &str = ".hub";
/// The breaker's state file inside the state folder.
pub const BREAKER_FILE: &str = "breaker.json";

/// The state folder: `explicit` (`--state-dir`), else `$HUB_STATE_DIR` (as `env` returns it),
/// else `.hub`.
pub fn state_dir(explicit: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> PathBuf {
    explicit.map(Path::to_path_buf).unwrap_or_else(|| {
        env(ENV)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT), PathBuf::from)
    })
}

/// [`state_dir`] from this process's environment, made absolute: records and reports name
/// files under it, and a reader in another folder must find them.
pub fn absolute_from_env(explicit: Option<&Path>) -> Result<PathBuf> {
    let dir = state_dir(explicit, |key| std::env::var(key).ok());
    std::path::absolute(&dir).map_err(|e| Error::io(format!("--state-dir {}", dir.display()), &e))
}

/// The state folder in use without `--state-dir`: `$HUB_STATE_DIR`, else `.hub` when it exists
/// in the current folder; `None` when neither.
pub fn in_use(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let dir = state_dir(None, &env);
    let named = env(ENV).is_some_and(|v| !v.is_empty());
    (named || dir.is_dir()).then(|| std::path::absolute(&dir).unwrap_or(dir))
}

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
    fn explicit_then_environment_then_dot_hub() {
        let set = |k: &str| (k == ENV).then(|| "/srv/state".to_owned());
        let unset = |_: &str| None;
        assert_eq!(state_dir(Some(Path::new("x")), set), Path::new("x"));
        assert_eq!(state_dir(None, set), Path::new("/srv/state"));
        assert_eq!(state_dir(None, unset), Path::new(".hub"));
        assert_eq!(in_use(set), Some(PathBuf::from("/srv/state")));
    }

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
