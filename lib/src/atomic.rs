//! Replacing a file so that a reader never sees half of it.
//!
//! `hub-start`'s exit files, `hub-report --output` (node_exporter's textfile collector reads
//! it at any moment) want the same thing: a temp file beside the target, fsynced, renamed over
//! it, and the folder fsynced so the rename survives a crash. (The breaker's state file has its
//! own variant in [`crate::statefile`]: a fixed temp name under its lock, mode 0600.)

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Write `content` to `path` atomically. On error the temp file is removed.
pub fn write_file(path: &Path, content: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} is not a file name", path.display())))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = dir.join(temp_name);
    let write = || -> io::Result<()> {
        let mut file = File::create(&temp)?;
        file.write_all(content)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        File::open(dir)?.sync_all()
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
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
}
