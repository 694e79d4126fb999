//! The container backend's docker CLI client: start one compose service, follow the engine's
//! events, inspect containers (many in one call), probe one with `docker exec`, read its logs,
//! and tear it down. What those answers mean for a service's health is decided in
//! [`crate::container_health`].
//!
//! hub owns the ordering, so each service is brought up alone
//! (`docker compose up -d --no-deps SERVICE`). Health follows the engine's own event stream
//! (`docker events`, one for one container or one for all), with no `docker inspect` polling
//! loop. Every docker call runs in its own process group with a timeout and can be cancelled
//! through a shared flag, so an interrupted deploy never hangs on a stuck engine.

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
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one docker or compose call may run before it is killed (compose may build).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// How often a cancellable wait looks at its cancel flag.
pub(crate) const CANCEL_CHECK: Duration = Duration::from_millis(50);
/// How long a killed docker CLI gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_millis(500);
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

    /// True when it has a cancel flag, which a wait must then look at.
    pub fn is_cancellable(&self) -> bool {
        self.cancel.is_some()
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

pub use crate::container_health::{ContainerCheck, HealthyBy, Outcome, WaitOptions, wait_healthy};

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
    Ok(inspect_many(cmd, &[id])?.pop().flatten())
}

/// One `docker inspect` call for many containers (ids or names): their states in the order
/// asked, `None` for one that does not exist. Following many containers then costs one call
/// per burst of events, not one per container.
pub fn inspect_many(cmd: &ComposeCmd, ids: &[&str]) -> Result<Vec<Option<ContainerState>>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut inspect = cmd.engine_command();
    inspect.args([
        "inspect",
        "--type",
        "container",
        "--format",
        "{{.Id}} {{json .Name}} {{json .State}}",
    ]);
    inspect.args(ids);
    let shown = || match ids {
        [one] => (*one).to_owned(),
        _ => format!("of {} containers", ids.len()),
    };
    let out = capture(inspect, cmd, false)
        .map_err(|e| Error::io(format!("docker inspect {}", shown()), &e))?;
    // A missing container makes the call exit 1 and is named on stderr; the others still
    // answer. Any other failure is an error.
    let only_missing = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .all(|l| l.contains("No such"));
    if !(out.ended == Ended::Exited(0) || matches!(out.ended, Ended::Exited(_)) && only_missing) {
        return Err(Error::input(format!(
            "docker inspect {} {}: {}",
            shown(),
            out.ended,
            last_line(&out.stderr)
        )));
    }
    let mut found: Vec<(String, String, ContainerState)> = Vec::new();
    for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
        let unexpected = |e: &dyn fmt::Display| {
            Error::input(format!(
                "docker inspect {}: unexpected output ({e})",
                shown()
            ))
        };
        let (full_id, rest) = line.split_once(' ').ok_or_else(|| unexpected(&"no id"))?;
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
        let name = match values.next() {
            Some(Ok(serde_json::Value::String(name))) => name,
            _ => return Err(unexpected(&"no name")),
        };
        let state = match values.next() {
            Some(Ok(value)) => {
                serde_json::from_value::<ContainerState>(value).map_err(|e| unexpected(&e))?
            }
            _ => return Err(unexpected(&"no state")),
        };
        found.push((full_id.to_owned(), name, state));
    }
    Ok(ids
        .iter()
        .map(|id| {
            found
                .iter()
                .find(|(full, name, _)| names_container(id, full, name))
                .map(|(_, _, state)| state.clone())
        })
        .collect())
}

/// Does `reference` (an id, a prefix of one, or a name) name the container with id `full_id`
/// and name `name` (docker writes `/name` in inspect, `name` in events)?
pub fn names_container(reference: &str, full_id: &str, name: &str) -> bool {
    !reference.is_empty()
        && (full_id.starts_with(reference) || name.trim_start_matches('/') == reference)
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

/// A container event with the container it is about, as a stream following every container
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedEvent {
    /// The container's full id (empty for [`ContainerEvent::StreamEnded`]).
    pub id: String,
    /// The container's name (empty when the event did not carry it).
    pub name: String,
    /// What happened.
    pub event: ContainerEvent,
}

impl TaggedEvent {
    /// Decode one line of `docker events --format '{{json .}}'`.
    pub fn from_json_line(line: &str) -> Option<TaggedEvent> {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        let text = |pointer: &str| {
            value
                .pointer(pointer)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        Some(TaggedEvent {
            id: text("/Actor/ID")
                .or_else(|| text("/id"))
                .unwrap_or_default(),
            name: text("/Actor/Attributes/name").unwrap_or_default(),
            event: ContainerEvent::from_value(&value)?,
        })
    }

    /// Is this event about the container `reference` (an id, a prefix of one, or a name)?
    pub fn is_about(&self, reference: &str) -> bool {
        names_container(reference, &self.id, &self.name)
    }
}

impl ContainerEvent {
    /// Decode one line of `docker events --format '{{json .}}'`.
    pub fn from_json_line(line: &str) -> Option<ContainerEvent> {
        ContainerEvent::from_value(&serde_json::from_str(line).ok()?)
    }

    fn from_value(value: &serde_json::Value) -> Option<ContainerEvent> {
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

/// A running `docker events` (for one container, or for every container); the stream stops
/// when this is dropped.
pub struct ContainerWatch {
    child: Running,
    events: Receiver<ContainerEvent>,
}

impl ContainerWatch {
    /// Follow container `id`'s start, die, health, OOM and destroy events.
    ///
    /// The stream asks for events since a moment before the call, so an event that happens
    /// while `docker events` connects is replayed rather than lost; the same event may then be
    /// seen twice, so treat events as "look again", not as the truth (as
    /// [`crate::container_health::Tracker`] does).
    pub fn start(cmd: &ComposeCmd, id: &str) -> Result<ContainerWatch> {
        let (tx, rx) = mpsc::channel();
        let child = follow(cmd, Some(id), move |tagged| tx.send(tagged.event).is_ok())?;
        Ok(ContainerWatch { child, events: rx })
    }

    /// Follow every container's events with ONE `docker events`, calling `on_event` (on the
    /// reading thread) with each, a [`ContainerEvent::StreamEnded`] last; `on_event` returning
    /// false stops reading. The events received are those of [`ContainerWatch::start`].
    pub fn start_all(
        cmd: &ComposeCmd,
        on_event: impl FnMut(TaggedEvent) -> bool + Send + 'static,
    ) -> Result<ContainerWatch> {
        let (_, events) = mpsc::channel();
        let child = follow(cmd, None, on_event)?;
        Ok(ContainerWatch { child, events })
    }

    /// The events, in the order the engine reported them (for [`ContainerWatch::start`]; a
    /// watch of every container delivers them to its callback instead).
    pub fn events(&self) -> &Receiver<ContainerEvent> {
        &self.events
    }
}

/// Run `docker events` (for `container`, or every container) and read it on a thread.
fn follow(
    cmd: &ComposeCmd,
    container: Option<&str>,
    mut on_event: impl FnMut(TaggedEvent) -> bool + Send + 'static,
) -> Result<Running> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().saturating_sub(1));
    let mut events = cmd.engine_command();
    events.args(["events", "--since", &since.to_string()]);
    if let Some(id) = container {
        events.args(["--filter", &format!("container={id}")]);
    }
    events.args(["--filter", "type=container"]);
    for event in ["start", "die", "health_status", "oom", "destroy", "restart"] {
        events.args(["--filter", &format!("event={event}")]);
    }
    events.args(["--format", "{{json .}}"]);
    let context = || match container {
        Some(id) => format!("docker events for container {id}"),
        None => "docker events".to_owned(),
    };
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
    let name = container.map_or_else(
        || "events".to_owned(),
        |id| format!("events-{}", short_id(id)),
    );
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            for line in BufReader::new(out_read).lines() {
                let Ok(line) = line else { break };
                if let Some(event) = TaggedEvent::from_json_line(&line)
                    && !on_event(event)
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
            on_event(TaggedEvent {
                id: String::new(),
                name: String::new(),
                event: ContainerEvent::StreamEnded(why),
            });
        })
        .map_err(|e| Error::io(context(), &e))?;
    Ok(child)
}

impl Drop for ContainerWatch {
    fn drop(&mut self) {
        let _ = self.child.signal_group(Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// The first 12 characters of a container id, as docker shows it.
pub fn short_id(id: &str) -> &str {
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
