//! Launching a detached service through `posix_spawn`, not `fork`.
//!
//! A `run` service needs its own session (`setsid`) and an empty signal mask (the tools block
//! SIGINT/SIGTERM/SIGHUP in every thread, see [`crate::signals`]). Done in `pre_exec`, both
//! made `std::process::Command` fork the whole multi-threaded launcher and wait for the child's
//! exec over a pipe: ~2.8 ms per launch, and a burst of due services queued behind it.
//! glibc's `posix_spawn` does both itself (`POSIX_SPAWN_SETSID`, `POSIX_SPAWN_SETSIGMASK`) in a
//! `clone(CLONE_VM | CLONE_VFORK)` child, which copies no page tables, and reports a failed
//! exec (not found, not executable) as its error, like `Command::spawn`.
//!
//! What the child gets is what `Command::spawn` with [`crate::process::unblock_signals_in_child`]
//! and `setsid` gave it: the command's program, arguments, environment changes (without
//! [`crate::signals::ENV_PARENT`]) and working folder; stdin from `/dev/null`, stdout and
//! stderr to the given log; an empty signal mask; SIGPIPE (ignored by Rust programs) and the
//! signals the tools handle at their default; its own session and process group. The program
//! is looked up in the child's `PATH`, and a file the kernel cannot execute (`ENOEXEC`, a
//! script without `#!`) is run by `/bin/sh`, as `execvp` does.
//!
//! The child is not a `std::process::Child`: the caller reaps it by pid ([`wait`], [`try_wait`],
//! or a [`crate::reaper::Reaper`]).

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// Spawn `cmd` (its program, arguments, environment changes and working folder; any stdio set
/// on it is not used) in a session of its own, stdin `/dev/null`, stdout and stderr `log`:
/// its pid, which is also its process group and session id.
pub fn session(cmd: &Command, log: &File) -> io::Result<u32> {
    let env = child_env(cmd);
    let cwd = cmd.get_current_dir();
    let program = resolve(cmd.get_program(), &env, cwd)?;
    let mut argv = vec![c_string(cmd.get_program())?];
    for arg in cmd.get_args() {
        argv.push(c_string(arg)?);
    }
    let envp = env
        .iter()
        .map(|(key, value)| {
            let mut pair = key.clone();
            pair.push("=");
            pair.push(value);
            c_string(&pair)
        })
        .collect::<io::Result<Vec<_>>>()?;
    let cwd = cwd.map(|dir| c_string(dir.as_os_str())).transpose()?;
    let path = c_string(program.as_os_str())?;
    let spawned = spawn_raw(&path, &argv, &envp, cwd.as_deref(), log_fd(log));
    match spawned {
        // What `execvp` does with a file that has no `#!` line: hand it to the shell.
        Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) => {
            let mut argv = argv;
            argv[0] = path;
            argv.insert(0, c"/bin/sh".to_owned());
            spawn_raw(c"/bin/sh", &argv, &envp, cwd.as_deref(), log_fd(log))
        }
        other => other,
    }
    .map(|pid| pid.unsigned_abs())
}

fn log_fd(log: &File) -> BorrowedFd<'_> {
    use std::os::fd::AsFd;
    log.as_fd()
}

/// Reap child `pid`, waiting for it to exit.
pub fn wait(pid: u32) -> io::Result<ExitStatus> {
    waitpid(pid, rustix::process::WaitOptions::empty())?
        .ok_or_else(|| io::Error::other("waitpid returned no status"))
}

/// Reap child `pid` if it has exited; `None` while it runs.
pub fn try_wait(pid: u32) -> io::Result<Option<ExitStatus>> {
    waitpid(pid, rustix::process::WaitOptions::NOHANG)
}

fn waitpid(pid: u32, options: rustix::process::WaitOptions) -> io::Result<Option<ExitStatus>> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| io::Error::other("pid out of range"))?;
    loop {
        match rustix::process::waitpid(Some(pid), options) {
            Ok(status) => return Ok(status.map(|(_, s)| ExitStatus::from_raw(s.as_raw()))),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The child's environment: ours with the command's changes, without [`ENV_PARENT`]
/// (it names *our* parent).
///
/// [`ENV_PARENT`]: crate::signals::ENV_PARENT
fn child_env(cmd: &Command) -> Vec<(OsString, OsString)> {
    let mut env: std::collections::BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => env.insert(key.to_owned(), value.to_owned()),
            None => env.remove(key),
        };
    }
    env.remove(OsStr::new(crate::signals::ENV_PARENT));
    env.into_iter().collect()
}

/// The file to execute: `program` itself when it names a path, else the first executable
/// `program` in the child's `PATH` (`/bin:/usr/bin` when it has none, as `execvp`). Relative
/// folders count from the child's working folder, where `exec` runs.
fn resolve(
    program: &OsStr,
    env: &[(OsString, OsString)],
    cwd: Option<&Path>,
) -> io::Result<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let path = env.iter().find(|(key, _)| key == "PATH").map_or_else(
        || OsString::from("/bin:/usr/bin"),
        |(_, value)| value.clone(),
    );
    for dir in std::env::split_paths(&path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(program);
        let seen_from_here = match cwd {
            Some(cwd) if candidate.is_relative() => cwd.join(&candidate),
            _ => candidate.clone(),
        };
        let executable = seen_from_here.is_file()
            && nix::unistd::access(&seen_from_here, nix::unistd::AccessFlags::X_OK).is_ok();
        if executable {
            return Ok(candidate);
        }
    }
    Err(io::Error::from_raw_os_error(libc::ENOENT))
}

fn c_string(text: &OsStr) -> io::Result<CString> {
    CString::new(text.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} holds a NUL byte", text.to_string_lossy()),
        )
    })
}

/// The one call into libc: `posix_spawn` of `path` with `argv` and `envp`, in a new session,
/// with an empty signal mask, SIGPIPE/SIGINT/SIGTERM/SIGHUP at their default, stdin from
/// `/dev/null`, stdout and stderr to `log`, in `cwd` when given. The child's pid.
#[allow(unsafe_code)]
fn spawn_raw(
    path: &std::ffi::CStr,
    argv: &[CString],
    envp: &[CString],
    cwd: Option<&std::ffi::CStr>,
    log: BorrowedFd<'_>,
) -> io::Result<libc::pid_t> {
    let check = |code: libc::c_int| match code {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    };
    // NULL-terminated pointer arrays; the CStrings they point into outlive the call.
    let argv_p: Vec<*mut libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let envp_p: Vec<*mut libc::c_char> = envp
        .iter()
        .map(|e| e.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let mut attr = std::mem::MaybeUninit::<libc::posix_spawnattr_t>::uninit();
    let mut actions = std::mem::MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
    // SAFETY: `attr` and `actions` are initialised by their `_init` before any other use and
    // destroyed once below, on every path after a successful init. Every pointer handed to
    // libc (path, cwd, "/dev/null", the argv/envp arrays and their strings) points into memory
    // that lives until `posix_spawn` returns, and posix_spawn copies what it keeps. The
    // sigset_t values are initialised by `sigemptyset` before use. `log` is an open fd borrowed
    // for the whole call. No Rust code runs in the child: glibc's child only applies the
    // attributes and file actions, then execs (or reports the error and exits).
    unsafe {
        check(libc::posix_spawnattr_init(attr.as_mut_ptr()))?;
        if let Err(e) = check(libc::posix_spawn_file_actions_init(actions.as_mut_ptr())) {
            libc::posix_spawnattr_destroy(attr.as_mut_ptr());
            return Err(e);
        }
        let (attr_p, actions_p) = (attr.as_mut_ptr(), actions.as_mut_ptr());
        let result = (|| {
            let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(empty.as_mut_ptr());
            check(libc::posix_spawnattr_setsigmask(attr_p, empty.as_ptr()))?;
            let mut default = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(default.as_mut_ptr());
            for signal in [libc::SIGPIPE, libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::sigaddset(default.as_mut_ptr(), signal);
            }
            check(libc::posix_spawnattr_setsigdefault(
                attr_p,
                default.as_ptr(),
            ))?;
            let flags = libc::c_int::from(libc::POSIX_SPAWN_SETSID)
                | libc::POSIX_SPAWN_SETSIGMASK
                | libc::POSIX_SPAWN_SETSIGDEF;
            let flags = libc::c_short::try_from(flags).map_err(io::Error::other)?;
            check(libc::posix_spawnattr_setflags(attr_p, flags))?;
            if let Some(cwd) = cwd {
                check(libc::posix_spawn_file_actions_addchdir_np(
                    actions_p,
                    cwd.as_ptr(),
                ))?;
            }
            check(libc::posix_spawn_file_actions_addopen(
                actions_p,
                0,
                c"/dev/null".as_ptr(),
                libc::O_RDONLY,
                0,
            ))?;
            // The log is close-on-exec: only its copies as 1 and 2 reach the service.
            check(libc::posix_spawn_file_actions_adddup2(
                actions_p,
                log.as_raw_fd(),
                1,
            ))?;
            check(libc::posix_spawn_file_actions_adddup2(
                actions_p,
                log.as_raw_fd(),
                2,
            ))?;
            let mut pid: libc::pid_t = 0;
            check(libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                actions_p,
                attr_p,
                argv_p.as_ptr(),
                envp_p.as_ptr(),
            ))?;
            Ok(pid)
        })();
        libc::posix_spawn_file_actions_destroy(actions_p);
        libc::posix_spawnattr_destroy(attr_p);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_in(dir: &Path) -> (PathBuf, File) {
        let path = dir.join("out.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        (path, file)
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hub-spawn-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_child_has_its_session_no_blocked_signal_its_env_cwd_and_log() {
        let dir = temp_dir("attrs");
        let (path, log) = log_in(&dir);
        // As after `signals::watch`: SIGTERM blocked in the spawning thread.
        let mut blocked = nix::sys::signal::SigSet::empty();
        blocked.add(nix::sys::signal::Signal::SIGTERM);
        blocked.thread_block().unwrap();
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "grep -E '^(SigBlk|SigIgn)' /proc/self/status; read -r _ _ _ _ pg sid _ < /proc/self/stat; echo \"$sid $pg\"; pwd; echo \"$HUB_X\"; read -r line || echo eof",
        ])
        .env("HUB_X", "x-value")
        .current_dir(&dir);
        let pid = session(&cmd, &log).unwrap();
        blocked.thread_unblock().unwrap();
        let status = wait(pid).unwrap();
        assert!(status.success());
        let out = std::fs::read_to_string(&path).unwrap();
        assert!(out.contains("SigBlk:\t0000000000000000"), "{out}");
        let ignored = out.lines().find_map(|l| l.strip_prefix("SigIgn:")).unwrap();
        let ignored = u64::from_str_radix(ignored.trim(), 16).unwrap();
        assert_eq!(
            ignored & (1 << (libc::SIGPIPE - 1)),
            0,
            "SIGPIPE at its default: {out}"
        );
        let ids: Vec<&str> = out.lines().nth(2).unwrap().split_whitespace().collect();
        assert_eq!(ids, [pid.to_string(), pid.to_string()], "{out}");
        assert!(
            out.contains(&dir.canonicalize().unwrap().display().to_string()),
            "{out}"
        );
        assert!(out.contains("x-value\neof"), "{out}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_missing_program_is_an_error_and_a_script_without_shebang_runs() {
        let dir = temp_dir("exec");
        let (path, log) = log_in(&dir);
        let missing = session(&Command::new("hub-no-such-program"), &log).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        let script = dir.join("plain");
        std::fs::write(&script, "echo from-plain-script\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let pid = session(&Command::new(&script), &log).unwrap();
        assert!(wait(pid).unwrap().success());
        let out = std::fs::read_to_string(&path).unwrap();
        assert!(out.contains("from-plain-script"), "{out}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
