//! Replacing a file so that a reader never sees half of it, and nobody can redirect the write.
//!
//! `hub-report --output` (node_exporter's textfile collector reads it at any moment) and the
//! breaker's state file want a temp file beside the target, fsynced, renamed over it, and the
//! folder fsynced so the rename survives a crash. `hub-start`'s pid files want the rename only
//! ([`write_private_volatile`]): what they describe, a running process, does not survive a
//! crash of the machine either, and two fsyncs per launch were most of a launch's time.
//!
//! The temp file is created with `O_EXCL` under an unpredictable name ([`create_temp_beside`]):
//! a fixed or guessable name in a folder others can write to lets them plant a symlink there
//! and make root truncate any file it points to; `O_EXCL` never follows a symlink, and a name
//! that cannot be guessed cannot be planted in advance.

use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Write `content` to `path` atomically; the new file gets the usual mode (0666 less the
/// umask). On error the temp file is removed.
pub fn write_file(path: &Path, content: &[u8]) -> io::Result<()> {
    write_with_mode(path, content, None)
}

/// As [`write_file`], the file mode exactly 0600 whatever the umask: for state files.
pub fn write_private(path: &Path, content: &[u8]) -> io::Result<()> {
    write_with_mode(path, content, Some(0o600))
}

/// As [`write_private`], atomic for readers but not made durable (no fsync): for files about
/// things a crash of the machine ends anyway (a running process's pid file).
pub fn write_private_volatile(path: &Path, content: &[u8]) -> io::Result<()> {
    write_atomic(path, content, Some(0o600), false)
}

fn write_with_mode(path: &Path, content: &[u8], mode: Option<u32>) -> io::Result<()> {
    write_atomic(path, content, mode, true)
}

fn write_atomic(path: &Path, content: &[u8], mode: Option<u32>, durable: bool) -> io::Result<()> {
    let (mut file, temp) = create_temp_beside(path, mode)?;
    let dir = folder_of(path);
    let mut write = || -> io::Result<()> {
        file.write_all(content)?;
        if durable {
            file.sync_all()?;
        }
        std::fs::rename(&temp, path)?;
        if durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

/// The folder `path` is in (`.` for a bare name).
pub fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Create a new temp file beside `path` (`.NAME.RANDOM.tmp`) with `O_EXCL`, so it is always a
/// fresh file of ours, never one a symlink points to. `mode`: set exactly (whatever the
/// umask); `None`: 0666 less the umask.
pub fn create_temp_beside(path: &Path, mode: Option<u32>) -> io::Result<(File, PathBuf)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} is not a file name", path.display())))?;
    let dir = folder_of(path);
    let mut last_error = None;
    for _ in 0..16 {
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{:016x}.tmp", unpredictable()));
        let temp = dir.join(temp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode.unwrap_or(0o666))
            .open(&temp)
        {
            Ok(file) => {
                if let Some(mode) = mode {
                    // The umask may have taken bits off at creation: say exactly `mode`.
                    if let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(mode)) {
                        let _ = std::fs::remove_file(&temp);
                        return Err(e);
                    }
                }
                return Ok((file, temp));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free temp file name")))
}

/// 64 bits no other process can predict: std's hasher keys come from the OS's random source.
fn unpredictable() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temp_behind() {
        let dir = std::env::temp_dir().join(format!("hub-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.prom");
        write_file(&path, b"one\n").unwrap();
        write_file(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        assert!(write_file(&dir.join("missing/x"), b"").is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn temp_names_differ_and_a_planted_symlink_is_not_followed() {
        let dir = std::env::temp_dir().join(format!("hub-atomic-excl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let path = dir.join("state.json");
        let (_a, first) = create_temp_beside(&path, Some(0o600)).unwrap();
        let (_b, second) = create_temp_beside(&path, Some(0o600)).unwrap();
        assert_ne!(first, second);
        let mode = std::fs::metadata(&first).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The old fixed names, planted as symlinks to the victim, are never written through.
        for planted in [
            ".state.json.tmp",
            &format!(".state.json.{}.tmp", std::process::id()),
        ] {
            std::os::unix::fs::symlink(&victim, dir.join(planted)).unwrap();
        }
        write_private(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
