//! Launching one attempt of a service: a `start` command run to completion, or a `run`
//! command launched detached in its own session and tracked by pid.
//!
//! Everything a launched service writes goes to `STATE_DIR/logs/SERVICE.log`; a `run`
//! service's pid goes to `STATE_DIR/pids/SERVICE.pid`. Its exit, when it dies while hub-start
//! runs, is an event for the deploy loop, which writes it downstream as an `exited` record.

use hub::command::CommandSpec;
use hub::process::{self, Detach, Running};
use hub::records::{FailReason, Plan};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Where a service's files live.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `STATE_DIR/logs/SERVICE.log`
    pub log: PathBuf,
    /// `STATE_DIR/pids/SERVICE.pid`
    pub pid: PathBuf,
}

impl Paths {
    /// The paths for `service` under `state_dir`, creating the folders.
    pub fn new(state_dir: &Path, service: &str) -> io::Result<Paths> {
        // A name from the plan stream must not lead outside the state dir (`../../x`).
        hub::service::check_name_for_paths(service)
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?;
        let logs = state_dir.join("logs");
        let pids = state_dir.join("pids");
        hub::statedir::create_folder(&logs)?;
        hub::statedir::create_folder(&pids)?;
        Ok(Paths {
            log: logs.join(format!("{service}.log")),
            pid: pids.join(format!("{service}.pid")),
        })
    }
}

/// How an attempt's launch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// Launched: probe it now.
    Started {
        /// A `run` service's pid (also its process group and session).
        pid: Option<u32>,
        /// A container service's container id.
        container: Option<String>,
    },
    /// The attempt failed.
    Failed {
        /// `start_failed` or `launch_failed`.
        reason: FailReason,
        /// The start command's status, when there is one.
        exit_status: Option<i32>,
        /// One line for humans.
        message: String,
    },
}

/// Which attempt of which run: written at the head of the attempt's log and into its
/// environment.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// The deploy run, when the plan had one.
    pub run_id: Option<&'a str>,
    /// 1-based.
    pub number: u32,
}

/// A command for a service, in its working folder with its environment (from the plan) and
/// the attempt in its environment, and its log, opened for appending, which gets the attempt's
/// header line first, so a failure's tail shows this attempt only. The log is not yet the
/// command's stdout/stderr.
fn service_command(
    spec: &CommandSpec,
    plan: &Plan,
    attempt: Attempt<'_>,
    log: &Path,
) -> io::Result<(Command, fs::File)> {
    let mut log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)?;
    let header = hub::logheader::header(
        attempt.run_id,
        attempt.number,
        hub::time::now_ms(),
        &spec.to_string(),
    );
    writeln!(log_file, "{header}")?;
    let attempt = attempt.number;
    let mut cmd = spec.to_command_in(plan.working_dir.as_deref(), &plan.environment)?;
    cmd.env("HUB_SERVICE", &plan.service)
        .env("HUB_ATTEMPT", attempt.to_string());
    Ok((cmd, log_file))
}

/// Spawn a `start` command in its own process group (the caller waits for it).
pub fn spawn_start(
    spec: &CommandSpec,
    plan: &Plan,
    attempt: Attempt<'_>,
    paths: &Paths,
) -> io::Result<Running> {
    let (mut cmd, log_file) = service_command(spec, plan, attempt, &paths.log)?;
    cmd.stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    Running::spawn(&mut cmd, Detach::Group)
}

/// Wait for a `start` command, killing its group if it outlives `timeout` or fails (unless
/// `keep_failed`).
pub fn finish_start(
    mut child: Running,
    timeout: Duration,
    spec: &CommandSpec,
    keep_failed: bool,
) -> Launch {
    let failed = |exit_status, message| Launch::Failed {
        reason: FailReason::StartFailed,
        exit_status,
        message,
    };
    match child.wait_timeout(timeout) {
        Ok(Some(status)) => {
            // Members a successful start command leaves behind are the service (a daemon that
            // forked): they are not killed. A failed one's are what is left of a failed attempt.
            match process::status_code(status) {
                0 => Launch::Started {
                    pid: None,
                    container: None,
                },
                code => {
                    if let (false, Some(identity)) = (keep_failed, child.identity()) {
                        let _ = hub::pidfile::stop_group(identity, Duration::from_secs(2));
                    }
                    failed(Some(code), format!("`{spec}` exited with status {code}"))
                }
            }
        }
        Ok(None) => {
            let _ = child.terminate(Duration::from_secs(2));
            failed(
                Some(i32::from(hub::error::exit::TIMED_OUT)),
                format!(
                    "`{spec}` did not return within {}",
                    hub::duration::human(timeout)
                ),
            )
        }
        Err(e) => failed(None, format!("waiting for `{spec}`: {e}")),
    }
}

/// Launch a `run` command detached, record its pid, and hand it to `reaper` (else, on old
/// kernels, a thread of its own), which calls `on_exit` with its shell-style status when it
/// exits.
pub fn launch_run(
    spec: &CommandSpec,
    plan: &Plan,
    attempt: Attempt<'_>,
    paths: &Paths,
    reaper: Option<&hub::reaper::Reaper>,
    on_exit: impl FnOnce(i32) + Send + 'static,
) -> Launch {
    let failed = |message: String, exit_status| Launch::Failed {
        reason: FailReason::LaunchFailed,
        exit_status,
        message,
    };
    // Never a second copy beside an earlier one (of an interrupted deploy, or an attempt kept
    // by --keep-failed) that still runs but was not healthy: stop it first.
    if let Some(earlier) = live_process(paths) {
        hub::log::warn(&format!(
            "{}: its earlier process (pid {}) still runs but is not healthy: stopping it before starting anew",
            plan.service, earlier.pid
        ));
        if let Err(e) = hub::pidfile::stop_group(earlier, Duration::from_secs(3)) {
            return failed(
                format!("cannot stop its earlier process (pid {}): {e}", earlier.pid),
                None,
            );
        }
    }
    let _ = fs::remove_file(&paths.pid);
    // Through posix_spawn (no fork of this multi-threaded process): its own session, an empty
    // signal mask, the log as stdout/stderr.
    let pid = match service_command(spec, plan, attempt, &paths.log)
        .and_then(|(cmd, log)| hub::spawn::session(&cmd, &log))
    {
        Ok(pid) => pid,
        Err(e) => return failed(format!("cannot launch `{spec}`: {e}"), None),
    };
    let identity = process::Identity::of_child(pid);
    // With its start time, so that no later reader takes a reused pid for this process.
    let recorded = match identity {
        Some(identity) => hub::pidfile::write(&paths.pid, identity),
        None => hub::atomic::write_private(&paths.pid, format!("{pid}\n").as_bytes()),
    };
    if let Err(e) = recorded {
        let _ = process::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = hub::spawn::wait(pid);
        return failed(format!("cannot write {}: {e}", paths.pid.display()), None);
    }
    // "Started" means still alive right after launch: a command that is not found or
    // exits at once fails here, without waiting for any health check. A one-shot job may well
    // be done already: its exit status, written by the tracker below, decides.
    let one_shot = plan.health.check == hub::records::Check::Completed;
    let exited_at_once = if one_shot {
        None
    } else {
        hub::spawn::try_wait(pid).ok().flatten()
    };
    if let Some(status) = exited_at_once {
        let code = process::status_code(status);
        let mut message = format!("`{spec}` exited at once with status {code}");
        if code == 0 {
            message = format!("{message} — {}", hub::codes::EXITED_0_HINT);
        }
        return failed(message, Some(code));
    }
    let report: hub::reaper::OnExit = Box::new(move |status| {
        if let Ok(status) = status {
            on_exit(process::status_code(status));
        }
    });
    let unreaped = match reaper {
        Some(reaper) => reaper.reap(pid, report).err().map(|(r, _)| r),
        None => Some(report),
    };
    // No pidfds: a thread of its own blocks in wait().
    if let Some(report) = unreaped {
        let spawned = std::thread::Builder::new()
            .name(format!("track-{}", plan.service))
            .spawn(move || report(hub::spawn::wait(pid)));
        if spawned.is_err() {
            return failed("cannot start a thread to track the process".into(), None);
        }
    }
    Launch::Started {
        pid: Some(pid),
        container: None,
    }
}

/// Projects whose first `up` succeeded: their networks exist.
static PROJECTS_UP: std::sync::Mutex<Vec<hub::records::ComposeRef>> =
    std::sync::Mutex::new(Vec::new());
/// Held while a project's first `up` runs.
static FIRST_UP: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Bring a container service up alone (`up -d --no-deps`): hub owns the ordering.
///
/// Two concurrent first `up`s of one project both create its default network, and the engine
/// then refuses both ("network … is ambiguous"). So a project's first `up` runs alone; once it
/// succeeded, the networks exist and later `up`s run in parallel.
pub fn launch_container(
    cmd: &hub::container::ComposeCmd,
    compose: &hub::records::ComposeRef,
    service: &str,
) -> Launch {
    let known = |compose| PROJECTS_UP.lock().is_ok_and(|up| up.contains(compose));
    let result = if known(compose) {
        hub::container::up(cmd, compose, service)
    } else {
        let _first = FIRST_UP.lock();
        let result = hub::container::up(cmd, compose, service);
        if result.is_ok()
            && !known(compose)
            && let Ok(mut up) = PROJECTS_UP.lock()
        {
            up.push(compose.clone());
        }
        result
    };
    engine_launch(result)
}

/// A container or Swarm service's launch: the id the engine gave it, or why it failed.
fn engine_launch(result: Result<String, hub::container::ComposeFailure>) -> Launch {
    match result {
        Ok(id) => Launch::Started {
            pid: None,
            container: Some(id),
        },
        Err(failure) => Launch::Failed {
            reason: FailReason::StartFailed,
            exit_status: failure.exit_status,
            message: failure.message,
        },
    }
}

/// Release a Swarm service into its stack (`hub::swarm::release`): hub owns the ordering,
/// Swarm the placement. The started record carries the Swarm service id where a container
/// id would be.
pub fn launch_swarm(
    cmd: &hub::container::ComposeCmd,
    compose: &hub::records::ComposeRef,
    service: &str,
) -> Launch {
    let Some(stack) = compose.stack.as_deref() else {
        return Launch::Failed {
            reason: FailReason::NoBackend,
            exit_status: None,
            message: format!(
                "service \"{service}\": backend swarm without a stack (hub-levels --swarm STACK)"
            ),
        };
    };
    engine_launch(hub::swarm::release(cmd, compose, stack, service))
}

/// The process recorded for a `run` service by an earlier deploy, if that same process runs.
pub fn live_process(paths: &Paths) -> Option<hub::process::Identity> {
    hub::pidfile::live(&paths.pid)
}
