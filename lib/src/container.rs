//! The container backend: start one compose service, learn when its container is healthy or
//! dead, probe it with `docker exec`, read its logs, and tear it down.
//!
//! hub owns the ordering, so each service is brought up alone
//! (`docker compose up -d --no-deps SERVICE`). Health follows the engine's own event stream
//! (`docker events`): a container that turns healthy or dies is seen the moment it happens, with
//! no `docker inspect` polling loop. Each event only triggers one `docker inspect`, whose answer
//! decides, so a stale or duplicated event can never mislead. Every docker call runs in its own
//! process group with a timeout and can be cancelled through a shared flag, so an interrupted
//! deploy never hangs on a stuck engine.

use crate::command::CommandSpec;
use crate::error::exit;
use crate::process::{Detach, Running, signal_group, status_code};
use crate::records::ComposeRef;
use crate::{Error, Result};
use nix::sys::signal::Signal;
use serde::Deserialize;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one docker or compose call may run before it is killed (compose may build).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// How often a cancellable wait looks at its cancel flag.
const CANCEL_CHECK: Duration = Duration::from_millis(50);
/// How long a killed docker CLI gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_millis(500);
/// The first gap between two exec probes; it doubles up to the check's interval.
const FIRST_PROBE_GAP: Duration = Duration::from_millis(50);
/// How long `docker compose version` may take during detection.
const DETECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The command that runs compose (`docker compose`, `docker-compose`, or the user's choice),
/// the engine CLI that goes with it, and the limits every call runs under.
#[derive(Debug, Clone)]
pub struct ComposeCmd {
    compose: Vec<String>,
    engine: Vec<String>,
    timeout: Duration,
    cancel: Option<Arc<AtomicBool>>,
}

impl ComposeCmd {
    /// The compose command: `explicit` (from `--compose-cmd`), else `$DOCKER_CMD`, else
    /// `docker compose` when `docker compose version` works, else `docker-compose`.
    pub fn detect(explicit: Option<&str>) -> Result<ComposeCmd> {
        if let Some(text) = explicit {
            return ComposeCmd::from_words(text, "--compose-cmd");
        }
        if let Ok(text) = std::env::var("DOCKER_CMD")
            && !text.trim().is_empty()
        {
            return ComposeCmd::from_words(&text, "DOCKER_CMD");
        }
        for candidate in ["docker compose", "docker-compose"] {
            let cmd = ComposeCmd::from_words(candidate, "detection")?.with_timeout(DETECT_TIMEOUT);
            let mut version = cmd.compose_command(&ComposeRef::default());
            version.arg("version");
            if matches!(capture(version, &cmd, false), Ok(out) if out.ended == Ended::Exited(0)) {
                return Ok(cmd);
            }
        }
        Err(Error::input(
            "no docker compose found: neither `docker compose version` nor `docker-compose version` \
             works; install Compose v2 (docs/docker-backend.md) or name it with --compose-cmd or DOCKER_CMD",
        ))
    }

    /// A compose command from words (`docker compose`, `/opt/bin/docker-compose`), split on
    /// whitespace; `origin` names where it came from for the error message.
    ///
    /// The engine CLI is the words before a `compose` word (`docker` in `docker compose`,
    /// `sudo docker` in `sudo docker compose`), else `docker`.
    pub fn from_words(text: &str, origin: &str) -> Result<ComposeCmd> {
        let compose: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        if compose.is_empty() {
            return Err(Error::input(format!(
                "{origin}: empty compose command; write e.g. \"docker compose\" or \"docker-compose\""
            )));
        }
        let engine = match compose.iter().skip(1).position(|w| w == "compose") {
            Some(i) => compose[..=i].to_vec(),
            None => vec!["docker".to_owned()],
        };
        Ok(ComposeCmd {
            compose,
            engine,
            timeout: DEFAULT_COMMAND_TIMEOUT,
            cancel: None,
        })
    }

    /// The same command with another per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> ComposeCmd {
        self.timeout = timeout;
        self
    }

    /// The same command, whose calls and waits end early once `flag` is set (e.g. on SIGINT).
    pub fn with_cancel(mut self, flag: Arc<AtomicBool>) -> ComposeCmd {
        self.cancel = Some(flag);
        self
    }

    /// The compose command's words.
    pub fn compose_words(&self) -> &[String] {
        &self.compose
    }

    /// The engine CLI's words (`docker`).
    pub fn engine_words(&self) -> &[String] {
        &self.engine
    }

    /// True once the cancel flag is set.
    pub fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// `COMPOSE [-p PROJECT] [--project-directory DIR] [--env-file FILE]… [-f FILE]…`, ready
    /// for a subcommand.
    pub fn compose_command(&self, compose: &ComposeRef) -> Command {
        let mut cmd = command_from(&self.compose);
        if let Some(project) = &compose.project {
            cmd.args(["-p", project]);
        }
        if let Some(dir) = &compose.project_directory {
            cmd.args(["--project-directory", dir]);
        }
        for file in &compose.env_files {
            cmd.args(["--env-file", file]);
        }
        for file in &compose.files {
            cmd.args(["-f", file]);
        }
        cmd
    }

    /// The engine CLI (`docker`), ready for a subcommand.
    pub fn engine_command(&self) -> Command {
        command_from(&self.engine)
    }
}

fn command_from(words: &[String]) -> Command {
    let mut cmd = Command::new(words.first().map_or("docker", String::as_str));
    cmd.args(words.iter().skip(1));
    cmd
}

/// A compose or docker call that failed: its exit status (none when it could not run or was
/// killed) and one line saying what failed and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeFailure {
    /// The command's exit status; `None` when it could not be spawned, timed out or was cancelled.
    pub exit_status: Option<i32>,
    /// One line: the command and the last line of its stderr.
    pub message: String,
}

impl fmt::Display for ComposeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ComposeFailure> for Error {
    fn from(failure: ComposeFailure) -> Error {
        let code = if failure.exit_status.is_some() {
            exit::NO
        } else {
            exit::ERROR
        };
        Error::new(code, failure.message)
    }
}

/// Start one service alone: `COMPOSE [-p P] -f FILE… up -d --no-deps SERVICE`, and return its
/// container id. hub has already made sure its dependencies are healthy.
pub fn up(cmd: &ComposeCmd, compose: &ComposeRef, service: &str) -> Result<String, ComposeFailure> {
    let mut up = cmd.compose_command(compose);
    up.args(["up", "-d", "--no-deps", service]);
    run_checked(cmd, up)?;
    container_id(cmd, compose, service)?.ok_or_else(|| ComposeFailure {
        exit_status: None,
        message: format!(
            "service \"{service}\": `up` succeeded but `ps -a -q {service}` shows no container; check the project name (-p) and files (-f)"
        ),
    })
}

/// The id of a service's container, running or not (`ps -a -q SERVICE`); the first one when
/// the service is scaled; `None` when it has none.
pub fn container_id(
    cmd: &ComposeCmd,
    compose: &ComposeRef,
    service: &str,
) -> Result<Option<String>, ComposeFailure> {
    let mut ps = cmd.compose_command(compose);
    ps.args(["ps", "-a", "-q", service]);
    let out = run_checked(cmd, ps)?;
    Ok(out
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned))
}

/// The project as compose resolves it: `COMPOSE -f FILE… [--profile P]… config`, as YAML (its
/// JSON drops the `x-` keys inside services, `x-hub` among them, in compose 2.40). Returns the
/// YAML and compose's stderr (its warnings).
pub fn config(
    cmd: &ComposeCmd,
    compose: &ComposeRef,
    profiles: &[String],
) -> Result<(String, String), ComposeFailure> {
    let mut call = cmd.compose_command(compose);
    for profile in profiles {
        call.args(["--profile", profile]);
    }
    call.arg("config");
    let out = run_checked(cmd, call)?;
    Ok((out.stdout, out.stderr))
}

/// Teardown of one service: `COMPOSE stop SERVICE`, then `COMPOSE rm -f SERVICE`.
pub fn stop_and_remove(
    cmd: &ComposeCmd,
    compose: &ComposeRef,
    service: &str,
) -> Result<(), ComposeFailure> {
    let mut stop = cmd.compose_command(compose);
    stop.args(["stop", service]);
    run_checked(cmd, stop)?;
    let mut rm = cmd.compose_command(compose);
    rm.args(["rm", "-f", service]);
    run_checked(cmd, rm)?;
    Ok(())
}

/// The last `lines` lines of a container's output (`docker logs --tail N`, stdout and stderr
/// together). A container that is gone has no lines.
pub fn logs_tail(cmd: &ComposeCmd, id: &str, lines: usize) -> Result<Vec<String>> {
    let mut logs = cmd.engine_command();
    logs.args(["logs", "--tail", &lines.to_string(), id]);
    let out = capture(logs, cmd, true).map_err(|e| Error::io(format!("docker logs {id}"), &e))?;
    let all: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.trim_end().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    if out.ended != Ended::Exited(0) {
        return Ok(Vec::new());
    }
    Ok(all[all.len().saturating_sub(lines)..].to_vec())
}

/// A container's state, as `docker inspect` reports `.State`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    /// `created`, `running`, `restarting`, `paused`, `removing`, `exited` or `dead`.
    pub status: String,
    /// True while it runs (also true while restarting, on some engines).
    pub running: bool,
    /// True while the engine restarts it under its restart policy.
    pub restarting: bool,
    /// The last exit code.
    pub exit_code: i32,
    /// When it last started (RFC 3339, the engine's clock); changes on every restart.
    pub started_at: String,
    /// True when the kernel's OOM killer ended it.
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    /// The engine's error for it, if any (e.g. a failed start).
    pub error: String,
    /// Its healthcheck's state; absent without a healthcheck.
    pub health: Option<ContainerHealth>,
}

/// `.State.Health` of a container with a healthcheck.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerHealth {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    /// Consecutive failed checks.
    pub failing_streak: u32,
}

impl ContainerState {
    /// Exited or dead: it will not run again by itself.
    pub fn is_final(&self) -> bool {
        !self.running && !self.restarting && matches!(self.status.as_str(), "exited" | "dead")
    }

    /// Running now (not between two runs of its restart policy).
    pub fn is_up(&self) -> bool {
        self.running && !self.restarting && self.status == "running"
    }
}

impl fmt::Display for ContainerState {
    /// `running (health: starting)`, `restarting (last exit 3)`, `exited (3)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.restarting {
            return write!(f, "restarting (last exit {})", self.exit_code);
        }
        match self.status.as_str() {
            "exited" | "dead" => write!(f, "{} ({})", self.status, self.exit_code)?,
            other => f.write_str(other)?,
        }
        if let Some(health) = &self.health {
            write!(f, " (health: {}", health.status)?;
            if health.failing_streak > 0 {
                write!(f, ", {} failed checks", health.failing_streak)?;
            }
            f.write_str(")")?;
        }
        if self.oom_killed {
            f.write_str(" (OOM killed)")?;
        }
        Ok(())
    }
}

/// One `docker inspect` of a container's state; `None` when no such container exists.
pub fn inspect(cmd: &ComposeCmd, id: &str) -> Result<Option<ContainerState>> {
    let mut inspect = cmd.engine_command();
    inspect.args([
        "inspect",
        "--type",
        "container",
        "--format",
        "{{json .State}}",
        id,
    ]);
    let out =
        capture(inspect, cmd, false).map_err(|e| Error::io(format!("docker inspect {id}"), &e))?;
    match out.ended {
        Ended::Exited(0) => serde_json::from_str(out.stdout.trim())
            .map(Some)
            .map_err(|e| Error::input(format!("docker inspect {id}: unexpected output ({e})"))),
        Ended::Exited(_) if out.stderr.contains("No such") => Ok(None),
        ended => Err(Error::input(format!(
            "docker inspect {id} {ended}: {}",
            last_line(&out.stderr)
        ))),
    }
}

/// What one `docker exec` probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    /// The test exited 0.
    Passed,
    /// The test (or `docker exec` itself, e.g. on a stopped container) exited non-zero.
    Failed {
        /// Its exit status.
        exit_status: i32,
        /// The last line of its output, for the `last_probe` field.
        output: String,
    },
    /// It ran past its timeout; the `docker exec` client was killed.
    TimedOut,
    /// The cancel flag was set while it ran.
    Cancelled,
}

impl fmt::Display for ProbeResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeResult::Passed => f.write_str("passed"),
            ProbeResult::Failed {
                exit_status,
                output,
            } if output.is_empty() => write!(f, "exit {exit_status}"),
            ProbeResult::Failed {
                exit_status,
                output,
            } => write!(f, "exit {exit_status}: {output}"),
            ProbeResult::TimedOut => f.write_str("timed out"),
            ProbeResult::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// Run a compose healthcheck test inside the container: `docker exec ID ARGV…` for the `CMD`
/// form, `docker exec ID sh -c TEXT` for `CMD-SHELL` (which needs a shell in the image).
///
/// A probe that times out kills the `docker exec` client; the engine may let the process inside
/// the container run on (a known engine limit), so keep tests short.
pub fn exec_probe(
    cmd: &ComposeCmd,
    id: &str,
    test: &CommandSpec,
    timeout: Duration,
) -> Result<ProbeResult> {
    let exec = exec_command(cmd, id, test);
    let limited = ComposeCmd {
        timeout,
        ..cmd.clone()
    };
    let out =
        capture(exec, &limited, true).map_err(|e| Error::io(format!("docker exec {id}"), &e))?;
    Ok(match out.ended {
        Ended::Exited(0) => ProbeResult::Passed,
        Ended::Exited(exit_status) => ProbeResult::Failed {
            exit_status,
            output: last_line(&out.stdout).to_owned(),
        },
        Ended::TimedOut => ProbeResult::TimedOut,
        Ended::Cancelled => ProbeResult::Cancelled,
    })
}

/// `docker exec ID ARGV…` for the `CMD` form, `docker exec ID sh -c TEXT` for a shell test.
fn exec_command(cmd: &ComposeCmd, id: &str, test: &CommandSpec) -> Command {
    let mut exec = cmd.engine_command();
    exec.args(["exec", id]);
    match test {
        CommandSpec::Argv(argv) => exec.args(argv),
        CommandSpec::Shell(text) => exec.args(["sh", "-c", text]),
    };
    exec
}

/// A container event, as `docker events` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerEvent {
    /// It started (also after a restart by its restart policy).
    Started,
    /// Its process ended, with the exit code the engine reported.
    Died {
        /// The exit code, when the event carried one.
        exit_code: Option<i32>,
    },
    /// Its health status changed: `healthy`, `unhealthy` or `starting`.
    Health(String),
    /// The OOM killer hit it.
    Oom,
    /// It was removed.
    Destroyed,
    /// Another action (`restart`, …), by name.
    Other(String),
    /// The event stream ended (the engine went away): the last line `docker events` printed.
    StreamEnded(String),
}

impl ContainerEvent {
    /// Decode one line of `docker events --format '{{json .}}'`.
    pub fn from_json_line(line: &str) -> Option<ContainerEvent> {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        let action = value
            .get("Action")
            .or_else(|| value.get("status"))
            .and_then(|a| a.as_str())?;
        Some(match action {
            "start" => ContainerEvent::Started,
            "die" => ContainerEvent::Died {
                exit_code: value
                    .pointer("/Actor/Attributes/exitCode")
                    .and_then(|c| c.as_str())
                    .and_then(|c| c.parse().ok()),
            },
            "oom" => ContainerEvent::Oom,
            "destroy" => ContainerEvent::Destroyed,
            health if health.starts_with("health_status") => ContainerEvent::Health(
                health
                    .split_once(':')
                    .map_or("", |(_, status)| status)
                    .trim()
                    .to_owned(),
            ),
            other => ContainerEvent::Other(other.to_owned()),
        })
    }
}

/// A running `docker events` for one container; the stream stops when this is dropped.
pub struct ContainerWatch {
    child: Running,
    events: Receiver<ContainerEvent>,
}

impl ContainerWatch {
    /// Follow container `id`'s start, die, health, OOM and destroy events.
    ///
    /// The stream asks for events since a moment before the call, so an event that happens
    /// while `docker events` connects is replayed rather than lost; the same event may then be
    /// seen twice, so treat events as "look again", not as the truth (as [`wait_healthy`] does).
    pub fn start(cmd: &ComposeCmd, id: &str) -> Result<ContainerWatch> {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs().saturating_sub(1));
        let mut events = cmd.engine_command();
        events.args(["events", "--since", &since.to_string()]);
        events.args(["--filter", &format!("container={id}")]);
        events.args(["--filter", "type=container"]);
        for event in ["start", "die", "health_status", "oom", "destroy", "restart"] {
            events.args(["--filter", &format!("event={event}")]);
        }
        events.args(["--format", "{{json .}}"]);
        let context = || format!("docker events for container {id}");
        let (out_read, out_write) = io::pipe().map_err(|e| Error::io(context(), &e))?;
        let (err_read, err_write) = io::pipe().map_err(|e| Error::io(context(), &e))?;
        events
            .stdin(Stdio::null())
            .stdout(out_write)
            .stderr(err_write);
        let child = Running::spawn(&mut events, Detach::Group).map_err(|e| {
            Error::io(
                format!("{}: cannot run {}", context(), cmd.engine.join(" ")),
                &e,
            )
        })?;
        // Our copies of the write ends go, so the reader sees EOF when the child ends.
        drop(events);
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("events-{}", short_id(id)))
            .spawn(move || {
                for line in BufReader::new(out_read).lines() {
                    let Ok(line) = line else { break };
                    if let Some(event) = ContainerEvent::from_json_line(&line)
                        && tx.send(event).is_err()
                    {
                        return;
                    }
                }
                let mut stderr = String::new();
                let _ = BufReader::new(err_read).read_to_string(&mut stderr);
                let why = match last_line(&stderr) {
                    "" => "docker events ended".to_owned(),
                    line => line.to_owned(),
                };
                let _ = tx.send(ContainerEvent::StreamEnded(why));
            })
            .map_err(|e| Error::io(context(), &e))?;
        Ok(ContainerWatch { child, events: rx })
    }

    /// The events, in the order the engine reported them.
    pub fn events(&self) -> &Receiver<ContainerEvent> {
        &self.events
    }
}

impl Drop for ContainerWatch {
    fn drop(&mut self) {
        let _ = self.child.signal_group(Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// How a container service's health is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerCheck {
    /// The engine's healthcheck status; without a healthcheck, running for `grace` (counted
    /// from the run's `StartedAt`, so a container that already ran that long passes at once).
    Engine {
        /// How long a container without a healthcheck must run to count as healthy.
        grace: Duration,
    },
    /// The compose healthcheck test run with `docker exec` on hub's schedule (first probe at
    /// once, gaps doubling from 50 ms up to `interval`); the engine's own `healthy` counts too.
    Exec {
        /// The test, as a command run inside the container.
        test: CommandSpec,
        /// The largest gap between two probes.
        interval: Duration,
        /// How long one probe may run.
        probe_timeout: Duration,
    },
    /// A one-shot job: healthy when it has exited 0 (compose's
    /// `service_completed_successfully`); any other final exit fails it.
    Completed,
}

/// What made a container count as healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthyBy {
    /// The engine's healthcheck reported `healthy`.
    Healthcheck,
    /// No healthcheck: it ran for the grace period.
    Grace,
    /// An exec probe passed.
    ExecProbe,
    /// A one-shot job exited 0.
    Completed,
}

/// How [`wait_healthy`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Healthy.
    Healthy {
        /// What decided it.
        by: HealthyBy,
        /// Exec probes run (0 for the engine's check).
        probes: u32,
    },
    /// It exited or died and will not restart (final at once), or it was removed.
    Exited {
        /// Its exit code; `None` when it was removed before its code was known.
        exit_code: Option<i32>,
        /// True when the OOM killer ended it.
        oom_killed: bool,
        /// The last lines of `docker logs`.
        log_tail: Vec<String>,
    },
    /// The deadline passed first (a container restarting under its restart policy, or
    /// `unhealthy`, ends here: neither is final before the deadline).
    TimedOut {
        /// Its last known state, one line (with the last probe's result for exec checks).
        last_state: String,
        /// Exec probes run.
        probes: u32,
    },
    /// The cancel flag was set.
    Cancelled,
}

/// What [`wait_healthy`] waits for, and how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitOptions {
    /// The check.
    pub check: ContainerCheck,
    /// The deadline, from the call.
    pub timeout: Duration,
    /// How many lines of `docker logs` an [`Outcome::Exited`] carries.
    pub log_lines: usize,
}

/// Wait until container `id` is healthy, has exited, or the deadline passes.
///
/// Rules: with a healthcheck, healthy when the engine says `healthy`; without one, healthy once
/// it has run for the grace period (counted again from each restart); exited or dead means
/// failed at once, with its exit code and log tail; restarting or `unhealthy` is not final
/// until the deadline. A one-shot job ([`ContainerCheck::Completed`]) is healthy when it exits 0
/// and failed on any other exit. Driven by `docker events`: each event (and the start) triggers one
/// `docker inspect`; between events nothing is polled except exec probes, when asked for.
pub fn wait_healthy(cmd: &ComposeCmd, id: &str, options: &WaitOptions) -> Result<Outcome> {
    match follow_until_decided(cmd, id, options) {
        // A docker call cut short by the cancel flag is a cancelled wait, not an error.
        Err(_) if cmd.cancelled() => Ok(Outcome::Cancelled),
        decided => decided,
    }
}

/// [`wait_healthy`]'s loop; its errors may be cancellations.
fn follow_until_decided(cmd: &ComposeCmd, id: &str, options: &WaitOptions) -> Result<Outcome> {
    let deadline = Instant::now() + options.timeout;
    let watch = ContainerWatch::start(cmd, id)?;
    let mut look_again = true;
    let mut last_exit: Option<i32> = None;
    let mut last: Option<ContainerState> = None;
    // (StartedAt, when we first saw that run up): the grace period counts from there.
    let mut up_since: Option<(String, Instant)> = None;
    let mut probes = 0u32;
    let mut last_probe: Option<ProbeResult> = None;
    let mut next_probe = Instant::now();
    let mut probe_gap = FIRST_PROBE_GAP;
    loop {
        if cmd.cancelled() {
            return Ok(Outcome::Cancelled);
        }
        // Everything already reported, then one look at the truth.
        while let Ok(event) = watch.events().try_recv() {
            match note_event(event, &mut last_exit) {
                Ok(()) => look_again = true,
                Err(why) => return Err(stream_ended(id, &why)),
            }
        }
        if look_again {
            look_again = false;
            let Some(state) = inspect(cmd, id)? else {
                return Ok(Outcome::Exited {
                    exit_code: last_exit,
                    oom_killed: false,
                    log_tail: Vec::new(),
                });
            };
            if state.is_final() {
                if options.check == ContainerCheck::Completed && state.exit_code == 0 {
                    return Ok(Outcome::Healthy {
                        by: HealthyBy::Completed,
                        probes,
                    });
                }
                return Ok(Outcome::Exited {
                    exit_code: Some(state.exit_code),
                    oom_killed: state.oom_killed,
                    log_tail: logs_tail(cmd, id, options.log_lines)?,
                });
            }
            let judged_by_health = options.check != ContainerCheck::Completed;
            if judged_by_health
                && state.is_up()
                && state.health.as_ref().is_some_and(|h| h.status == "healthy")
            {
                return Ok(Outcome::Healthy {
                    by: HealthyBy::Healthcheck,
                    probes,
                });
            }
            up_since = match (state.is_up(), up_since.take()) {
                (true, Some((started_at, seen))) if started_at == state.started_at => {
                    Some((started_at, seen))
                }
                (true, _) => Some((state.started_at.clone(), up_instant(&state.started_at))),
                (false, _) => None,
            };
            last = Some(state);
        }
        let now = Instant::now();
        let mut wake = deadline;
        match &options.check {
            ContainerCheck::Engine { grace } => {
                let no_healthcheck = last.as_ref().is_some_and(|s| s.health.is_none());
                if let (true, Some((_, seen))) = (no_healthcheck, &up_since) {
                    let healthy_at = *seen + *grace;
                    if now >= healthy_at {
                        return Ok(Outcome::Healthy {
                            by: HealthyBy::Grace,
                            probes,
                        });
                    }
                    wake = wake.min(healthy_at);
                }
            }
            ContainerCheck::Exec {
                test,
                interval,
                probe_timeout,
            } => {
                if now >= next_probe && up_since.is_some() {
                    let result = exec_probe(cmd, id, test, *probe_timeout)?;
                    probes += 1;
                    match result {
                        ProbeResult::Passed => {
                            return Ok(Outcome::Healthy {
                                by: HealthyBy::ExecProbe,
                                probes,
                            });
                        }
                        ProbeResult::Cancelled => return Ok(Outcome::Cancelled),
                        other => last_probe = Some(other),
                    }
                    next_probe = Instant::now() + probe_gap;
                    probe_gap = (probe_gap * 2).min(*interval);
                    // A failed probe may mean it died: the events (already queued) tell.
                    continue;
                }
                if up_since.is_some() {
                    wake = wake.min(next_probe);
                }
            }
            // Only its exit, which arrives as an event, decides.
            ContainerCheck::Completed => {}
        }
        let now = Instant::now();
        if now >= deadline {
            let mut last_state = last
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), ToString::to_string);
            if let Some(probe) = &last_probe {
                last_state.push_str(&format!("; last probe: {probe}"));
            }
            return Ok(Outcome::TimedOut { last_state, probes });
        }
        let mut wait = wake.saturating_duration_since(now);
        if cmd.cancel.is_some() {
            wait = wait.min(CANCEL_CHECK);
        }
        match watch.events().recv_timeout(wait) {
            Ok(event) => match note_event(event, &mut last_exit) {
                Ok(()) => look_again = true,
                Err(why) => return Err(stream_ended(id, &why)),
            },
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(stream_ended(id, "the event reader stopped"));
            }
        }
    }
}

/// When a run that started at `started_at` (the engine's RFC 3339 time) began, on our clock:
/// a container that has run for a while before the wait counts that time toward its grace.
/// Now, when the time cannot be read or lies in the future (another clock).
fn up_instant(started_at: &str) -> Instant {
    let now = Instant::now();
    humantime::parse_rfc3339(started_at)
        .ok()
        .and_then(|started| SystemTime::now().duration_since(started).ok())
        .and_then(|ran| now.checked_sub(ran))
        .unwrap_or(now)
}

/// Remember what an event says that inspect may no longer know; `Err` when the stream ended.
fn note_event(event: ContainerEvent, last_exit: &mut Option<i32>) -> Result<(), String> {
    match event {
        ContainerEvent::Died { exit_code } => {
            if exit_code.is_some() {
                *last_exit = exit_code;
            }
            Ok(())
        }
        ContainerEvent::StreamEnded(why) => Err(why),
        _ => Ok(()),
    }
}

fn stream_ended(id: &str, why: &str) -> Error {
    Error::input(format!(
        "docker events for container {} stopped: {why}; is the Docker engine still running (`docker info`)?",
        short_id(id)
    ))
}

fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn last_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
}

/// How a captured call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Exited(i32),
    TimedOut,
    Cancelled,
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Exited(code) => write!(f, "exited {code}"),
            Ended::TimedOut => f.write_str("timed out"),
            Ended::Cancelled => f.write_str("was cancelled"),
        }
    }
}

#[derive(Debug)]
struct Captured {
    ended: Ended,
    stdout: String,
    stderr: String,
}

/// Run a docker CLI call in its own process group under the command's timeout and cancel flag,
/// collecting its output (`merge`: stderr into stdout, in order).
fn capture(mut cmd: Command, limits: &ComposeCmd, merge: bool) -> io::Result<Captured> {
    let (out_read, out_write) = io::pipe()?;
    let (err_read, err_write) = if merge {
        (None, out_write.try_clone()?)
    } else {
        let (read, write) = io::pipe()?;
        (Some(read), write)
    };
    cmd.stdin(Stdio::null()).stdout(out_write).stderr(err_write);
    let mut child = Running::spawn(&mut cmd, Detach::Group)?;
    drop(cmd);
    let read_all = |mut pipe: io::PipeReader| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = read_all(out_read);
    let stderr = err_read.map(read_all);
    let deadline = Instant::now() + limits.timeout;
    let ended = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let slice = if limits.cancel.is_some() {
            left.min(CANCEL_CHECK)
        } else {
            left
        };
        if let Some(status) = child.wait_timeout(slice)? {
            break Ended::Exited(status_code(status));
        }
        if limits.cancelled() {
            child.terminate(KILL_GRACE)?;
            break Ended::Cancelled;
        }
        if Instant::now() >= deadline {
            child.terminate(KILL_GRACE)?;
            break Ended::TimedOut;
        }
    };
    // Whatever the leader left behind in its group goes too, so the pipes reach EOF.
    let _ = signal_group(child.pid(), Signal::SIGKILL);
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr
        .map(|t| t.join().unwrap_or_default())
        .unwrap_or_default();
    Ok(Captured {
        ended,
        stdout,
        stderr,
    })
}

/// Run an engine or compose call that must succeed, under `cmd`'s timeout and cancel flag, and
/// return its stdout; for other backends built on the same CLI (`hub::swarm`).
pub fn run_output(cmd: &ComposeCmd, call: Command) -> Result<String, ComposeFailure> {
    run_checked(cmd, call).map(|out| out.stdout)
}

/// Run a compose or docker call that must succeed; the failure names the call and its error.
fn run_checked(cmd: &ComposeCmd, call: Command) -> Result<Captured, ComposeFailure> {
    let shown = describe(&call);
    let out = capture(call, cmd, false).map_err(|e| ComposeFailure {
        exit_status: None,
        message: format!(
            "cannot run `{shown}`: {e}; install Docker Compose or set --compose-cmd / DOCKER_CMD"
        ),
    })?;
    match out.ended {
        Ended::Exited(0) => Ok(out),
        ended => {
            let why = match last_line(&out.stderr) {
                "" => last_line(&out.stdout).to_owned(),
                line => line.to_owned(),
            };
            Err(ComposeFailure {
                exit_status: match ended {
                    Ended::Exited(code) => Some(code),
                    _ => None,
                },
                message: format!("`{shown}` {ended}: {why}"),
            })
        }
    }
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|w| w.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_words_give_the_engine() {
        let cmd = ComposeCmd::from_words("docker compose", "test").unwrap();
        assert_eq!(cmd.engine_words(), ["docker"]);
        let cmd = ComposeCmd::from_words("sudo  /usr/bin/docker compose", "test").unwrap();
        assert_eq!(cmd.engine_words(), ["sudo", "/usr/bin/docker"]);
        assert_eq!(cmd.compose_words().len(), 3);
        let cmd = ComposeCmd::from_words("docker-compose", "test").unwrap();
        assert_eq!(cmd.engine_words(), ["docker"]);
        let err = ComposeCmd::from_words("  ", "DOCKER_CMD").unwrap_err();
        assert!(
            err.message()
                .starts_with("DOCKER_CMD: empty compose command")
        );
    }

    #[test]
    fn compose_command_carries_project_and_files() {
        let cmd = ComposeCmd::from_words("docker compose", "test").unwrap();
        let compose = ComposeRef {
            files: vec!["/a.yml".into(), "/b.yml".into()],
            project: Some("p".into()),
            project_directory: Some("/srv".into()),
            env_files: vec!["/srv/prod.env".into()],
            stack: None,
        };
        let mut c = cmd.compose_command(&compose);
        c.args(["up", "-d"]);
        assert_eq!(
            describe(&c),
            "docker compose -p p --project-directory /srv --env-file /srv/prod.env -f /a.yml -f /b.yml up -d"
        );
    }

    #[test]
    fn a_run_started_long_ago_has_used_its_grace() {
        let long_ago = up_instant("2000-01-01T00:00:00.123456789Z");
        assert!(long_ago.elapsed() > Duration::from_secs(3600));
        let unreadable = up_instant("0001-01-01T00:00:00Z x");
        assert!(unreadable.elapsed() < Duration::from_secs(3600));
    }

    #[test]
    fn exec_probes_use_the_test_form() {
        let cmd = ComposeCmd::from_words("docker compose", "test").unwrap();
        let argv = CommandSpec::Argv(vec!["pg_isready".into(), "-q".into()]);
        assert_eq!(
            describe(&exec_command(&cmd, "abc", &argv)),
            "docker exec abc pg_isready -q"
        );
        let shell = CommandSpec::Shell("redis-cli ping | grep PONG".into());
        let exec = exec_command(&cmd, "abc", &shell);
        let args: Vec<_> = exec
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            ["exec", "abc", "sh", "-c", "redis-cli ping | grep PONG"]
        );
    }

    #[test]
    fn events_decode() {
        let die = r#"{"status":"die","id":"abc","Type":"container","Action":"die","Actor":{"ID":"abc","Attributes":{"exitCode":"3","image":"x"}},"time":1,"timeNano":1}"#;
        assert_eq!(
            ContainerEvent::from_json_line(die),
            Some(ContainerEvent::Died { exit_code: Some(3) })
        );
        let health =
            r#"{"Type":"container","Action":"health_status: healthy","Actor":{"ID":"abc"}}"#;
        assert_eq!(
            ContainerEvent::from_json_line(health),
            Some(ContainerEvent::Health("healthy".into()))
        );
        let start = r#"{"status":"start","id":"abc"}"#;
        assert_eq!(
            ContainerEvent::from_json_line(start),
            Some(ContainerEvent::Started)
        );
        assert_eq!(ContainerEvent::from_json_line("not json"), None);
    }

    #[test]
    fn state_decodes_and_reads() {
        let json = r#"{"Status":"running","Running":true,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":1,"ExitCode":0,"Error":"","StartedAt":"2026-11-28T16:00:00.1Z","FinishedAt":"0001-01-01T00:00:00Z","Health":{"Status":"starting","FailingStreak":2,"Log":[]}}"#;
        let state: ContainerState = serde_json::from_str(json).unwrap();
        assert!(state.is_up());
        assert!(!state.is_final());
        assert_eq!(
            state.to_string(),
            "running (health: starting, 2 failed checks)"
        );
        let exited: ContainerState =
            serde_json::from_str(r#"{"Status":"exited","ExitCode":3}"#).unwrap();
        assert!(exited.is_final());
        assert_eq!(exited.to_string(), "exited (3)");
        let restarting: ContainerState = serde_json::from_str(
            r#"{"Status":"restarting","Running":true,"Restarting":true,"ExitCode":3}"#,
        )
        .unwrap();
        assert!(!restarting.is_final() && !restarting.is_up());
        assert_eq!(restarting.to_string(), "restarting (last exit 3)");
    }

    #[test]
    fn a_missing_compose_program_is_a_clear_failure() {
        let cmd = ComposeCmd::from_words("/nonexistent/hub-no-compose", "test").unwrap();
        let err = up(&cmd, &ComposeRef::default(), "web").unwrap_err();
        assert_eq!(err.exit_status, None);
        assert!(
            err.message
                .contains("cannot run `/nonexistent/hub-no-compose up -d --no-deps web`")
        );
    }

    #[test]
    fn a_failing_compose_call_names_its_last_stderr_line() {
        let cmd = ComposeCmd::from_words("sh -c", "test").unwrap();
        let mut call = command_from(&["sh".to_owned(), "-c".to_owned()]);
        call.arg("echo progress >&2; echo 'no such service: web' >&2; exit 4");
        let err = run_checked(&cmd, call).unwrap_err();
        assert_eq!(err.exit_status, Some(4));
        assert!(
            err.message.ends_with("exited 4: no such service: web"),
            "{}",
            err.message
        );
    }

    #[test]
    fn cancel_ends_a_call() {
        let flag = Arc::new(AtomicBool::new(true));
        let cmd = ComposeCmd::from_words("sh", "test")
            .unwrap()
            .with_cancel(flag);
        let mut call = command_from(&["sh".to_owned()]);
        call.args(["-c", "exec sleep 1000"]);
        let out = capture(call, &cmd, false).unwrap();
        assert_eq!(out.ended, Ended::Cancelled);
    }
}
