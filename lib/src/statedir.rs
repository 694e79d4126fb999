//! Where hub keeps its state: one rule for every tool, so that `hub-breaker status` run after a
//! deploy looks at the breaker file the deploy used.
//!
//! The state folder is `--state-dir`, else `$HUB_STATE_DIR`, else `.hub` in the current folder.
//! The breaker's file inside it is `breaker.json`; tools that can run without any deploy
//! (`hub-breaker`, `hub-retry`) use it whenever a state folder is in use (`$HUB_STATE_DIR` is
//! set, or `.hub/` exists here), and otherwise the per-user file
//! ([`crate::breaker::default_state_path`]).

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

/// The state folder in use without `--state-dir`: `$HUB_STATE_DIR`, else `.hub` when it exists
/// in the current folder; `None` when neither.
pub fn in_use(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let dir = state_dir(None, &env);
    let named = env(ENV).is_some_and(|v| !v.is_empty());
    (named || dir.is_dir()).then(|| std::path::absolute(&dir).unwrap_or(dir))
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
}
