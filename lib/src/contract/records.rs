//! The JSON-lines records the tools exchange: the contract documented in `docs/records.md`.
//!
//! Every record is one JSON object on one line with a `type` field. Tools that pass records
//! through re-emit the original line untouched, so fields a tool does not know survive the
//! pipeline. [`Record`] is that contract as one type: a variant per record type (tagged by
//! `type`, with reasons and states as enums) plus [`Record::Unknown`] for types this build does
//! not know, kept whole; [`Line`] adds the envelope (`ts`, `run_id`) once, around any record.
//! Readers ignore fields they do not know.

use crate::command::CommandSpec;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A service's class: what its failure means for the deploy.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Its failure aborts the deploy.
    Core,
    /// Its failure warns; the deploy goes on.
    Optional,
    /// Its failure warns; the deploy goes on (nice-to-have features).
    Stretch,
}

impl Class {
    /// Parse `core`, `optional`, `stretch`, in any case.
    pub fn parse(text: &str) -> Option<Class> {
        match text.trim().to_ascii_lowercase().as_str() {
            "core" => Some(Class::Core),
            "optional" => Some(Class::Optional),
            "stretch" => Some(Class::Stretch),
            _ => None,
        }
    }

    /// `core`, `optional` or `stretch`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Core => "core",
            Class::Optional => "optional",
            Class::Stretch => "stretch",
        }
    }
}

impl fmt::Display for Class {
    /// Upper case, as the seed's messages print it: `CORE`, `OPTIONAL`, `STRETCH`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str().to_ascii_uppercase())
    }
}

/// How a service is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// `x-hub.start`: a command that returns once the service is launched.
    Start,
    /// `x-hub.run`: a long-running command, launched detached and tracked by pid.
    Run,
    /// No `start`/`run`: a compose container, started with `docker compose up -d --no-deps`.
    Container,
    /// A container service deployed onto Docker Swarm (`hub-levels --swarm STACK`): released
    /// into the stack by `docker stack deploy` of that service alone (`hub::swarm`).
    Swarm,
}

/// The retry policy for a service's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrySpec {
    /// Attempts in all (1 = no retry; 0 = until success).
    pub attempts: u32,
    /// The first delay; later delays double.
    pub delay_ms: u64,
    /// The cap on any one delay.
    pub max_delay_ms: u64,
}

impl Default for RetrySpec {
    /// The seed's policy: 3 attempts, 2 s doubling, capped at 30 s.
    fn default() -> Self {
        RetrySpec {
            attempts: 3,
            delay_ms: 2000,
            max_delay_ms: 30_000,
        }
    }
}

/// How a service's health is checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSpec {
    /// The check itself.
    #[serde(flatten)]
    pub check: Check,
    /// The longest gap between two probes (probing starts faster and grows to this).
    pub interval_ms: u64,
    /// How long one probe may take before it counts as failed.
    pub probe_timeout_ms: u64,
    /// Failures inside this period after start count toward nothing but the deadline.
    pub start_period_ms: u64,
}

/// One kind of health check. Serialized with a `kind` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    /// Healthy when the command exits 0.
    Cmd {
        /// The probe command.
        cmd: CommandSpec,
    },
    /// Healthy when a GET answers with a status in range (and the body holds `body`).
    Http {
        /// The URL to GET.
        url: String,
        /// Accepted statuses: `200-399`, `200,204`, `200`.
        status: String,
        /// A substring the body must contain.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    /// Healthy when a TCP connect succeeds.
    Tcp {
        /// `HOST:PORT`.
        address: String,
    },
    /// A container: the engine's health status, or running for `grace_ms` without a healthcheck.
    Container {
        /// How long a container without a healthcheck must run before it counts as healthy.
        grace_ms: u64,
    },
    /// A container's own compose healthcheck test, run with `docker exec` on hub's schedule.
    Exec {
        /// The healthcheck test, as a command run inside the container.
        test: CommandSpec,
    },
    /// A one-shot job (a migration, a seed): done, and so healthy, when its process or
    /// container exits 0; any other exit fails it.
    Completed,
    /// No check: healthy once started (and, for a `run` service, still alive).
    None,
}

impl Check {
    /// Its `kind`, as records spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Cmd { .. } => "cmd",
            Check::Http { .. } => "http",
            Check::Tcp { .. } => "tcp",
            Check::Container { .. } => "container",
            Check::Exec { .. } => "exec",
            Check::Completed => "completed",
            Check::None => "none",
        }
    }
}

/// Where a container service's compose project is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ComposeRef {
    /// The compose files, as given to `hub-levels` (empty when read from stdin).
    pub files: Vec<String>,
    /// The project name (`name:` in the file, or `COMPOSE_PROJECT_NAME`), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// `--project-directory`, when `hub-levels` was given one (else compose's default, the
    /// first file's folder, is the same as hub's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_directory: Option<String>,
    /// The env files compose reads instead of `.env` (`--env-file`), absolute, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_files: Vec<String>,
    /// Backend `swarm`: the Swarm stack the service is deployed into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

/// Declares a record struct with the two fields that say where and with what a local
/// service's commands run, which `plan` and `started` both carry (hub-start copies them from
/// one into the other, for hub-wait-healthy's health commands). Written out here rather than
/// shared through `#[serde(flatten)]`, which would put `plan`, the most read record, on
/// serde's buffered decoding path.
macro_rules! with_local_context {
    ($(#[$meta:meta])* pub struct $name:ident { $($fields:tt)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($fields)*
            /// Backends `start` and `run`: the folder their commands (start, run, stop, health)
            /// run in, absolute: the project directory, or the service's `working_dir`
            /// resolved against it.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub working_dir: Option<String>,
            /// Backends `start` and `run`: what the service's `environment` and `env_file`
            /// give its commands on top of the inherited environment; `None` unsets a variable.
            #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
            pub environment: Environment,
        }
    };
}

/// A local service's variables, as compose resolves them: a name with `None` is unset (compose's
/// bare `KEY` that found no value, which overrides an `env_file`'s value).
pub type Environment = BTreeMap<String, Option<String>>;

with_local_context! {
/// `plan`: one service, as `hub-levels` resolved it. Carries everything downstream tools need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The service name.
    pub service: String,
    /// 0 with no dependencies, else 1 + the highest level among its dependencies.
    pub level: u32,
    /// Its class.
    pub class: Class,
    /// Hard dependencies: must be healthy before this service starts.
    pub deps: Vec<String>,
    /// Soft dependencies (`required: false`): waited for, but their failure does not block.
    pub soft_deps: Vec<String>,
    /// How long it has to become healthy once started.
    pub timeout_ms: u64,
    /// How it is started.
    pub backend: Backend,
    /// `x-hub.start`, for backend `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<CommandSpec>,
    /// `x-hub.run`, for backend `run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<CommandSpec>,
    /// `x-hub.stop`, for teardown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<CommandSpec>,
    /// How its health is checked.
    pub health: HealthSpec,
    /// Its start retry policy.
    pub retry: RetrySpec,
    /// `container_name`, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// Its compose `profiles`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Its compose labels (both forms normalised to a map).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The compose healthcheck as written (for container services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    /// The compose project, for container services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<ComposeRef>,
    /// The stack's compose project name, as compose names it (`name:`, else
    /// `COMPOSE_PROJECT_NAME`, else the project folder's name), for every backend: reports and
    /// metrics name the stack by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}
}

impl HealthSpec {
    /// No check (`none`), probed every 100 ms with a 1 s probe timeout.
    pub fn none() -> HealthSpec {
        HealthSpec {
            check: Check::None,
            interval_ms: 100,
            probe_timeout_ms: 1000,
            start_period_ms: 0,
        }
    }
}

impl Plan {
    /// A plan with only a name, class and level: a `start` service with no commands,
    /// dependencies or check, a 60 s timeout and the default retry. A base for a test's or a
    /// tool's own plan (`Plan { deps, ..Plan::named(…) }`).
    pub fn named(service: &str, class: Class, level: u32) -> Plan {
        Plan {
            service: service.into(),
            level,
            class,
            deps: vec![],
            soft_deps: vec![],
            timeout_ms: 60_000,
            backend: Backend::Start,
            start: None,
            run: None,
            stop: None,
            working_dir: None,
            environment: Environment::new(),
            health: HealthSpec::none(),
            retry: RetrySpec::default(),
            container_name: None,
            profiles: vec![],
            labels: BTreeMap::new(),
            healthcheck: None,
            compose: None,
            project: None,
        }
    }
}

impl Started {
    /// Attempt `of` started with `health` and nothing else known (no pid, log or container).
    pub fn new(of: AttemptOf, health: HealthSpec) -> Started {
        Started {
            of,
            backend: None,
            pid: None,
            adopted: false,
            log: None,
            exit_record: false,
            timeout_ms: 60_000,
            health,
            container: None,
            compose: None,
            working_dir: None,
            environment: Environment::new(),
        }
    }
}

/// `attempt`: one try of a command under `hub-retry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// `--name`, or the program name.
    pub name: String,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Attempts allowed (0 = until success).
    pub max_attempts: u32,
    /// `success`, `failure`, `timeout`, `refused` (breaker open) or `interrupted`.
    pub outcome: crate::retry::Outcome,
    /// The exit status (124 timed out, 128+N killed by signal N, 75 refused).
    pub status: i32,
    /// How long the attempt ran.
    pub duration_ms: u64,
    /// The delay before the next attempt; null when this attempt is final.
    pub next_delay_ms: Option<u64>,
    /// True when no further attempt follows.
    #[serde(rename = "final")]
    pub is_final: bool,
}

/// The service a record is about, with its class and level from the plan: what `skipped` and
/// `stopped` begin with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The service.
    pub service: String,
    /// Its class.
    pub class: Class,
    /// Its level (0 when a hand-written record leaves it out).
    #[serde(default)]
    pub level: u32,
}

/// The service and start attempt a record is about: what `started`, `exited`, `failed`,
/// `healthy`, `unhealthy` and `waiting` begin with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptOf {
    /// The service.
    pub service: String,
    /// Its class.
    pub class: Class,
    /// Its level (0 when left out).
    #[serde(default)]
    pub level: u32,
    /// This start attempt, 1-based (1 when left out).
    #[serde(default = "one")]
    pub attempt: u32,
    /// Attempts allowed, 0 = until success (1 when left out).
    #[serde(default = "one")]
    pub max_attempts: u32,
}

impl AttemptOf {
    /// Does a failure of this attempt leave another attempt?
    pub fn attempts_left(&self) -> bool {
        self.max_attempts == 0 || self.attempt < self.max_attempts
    }
}

fn one() -> u32 {
    1
}

fn is_false(value: &bool) -> bool {
    !*value
}

with_local_context! {
/// `started`: a start attempt succeeded; the service is launched and can be probed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// Service, class, level, attempt.
    #[serde(flatten)]
    pub of: AttemptOf,
    /// As in the plan (left out by hand-written records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// `run` services: the process id (also its group and session id).
    #[serde(default)]
    pub pid: Option<u32>,
    /// True when a rerun adopted an earlier process instead of starting one.
    #[serde(default, skip_serializing_if = "is_false")]
    pub adopted: bool,
    /// `run` and `start` services: the log file.
    #[serde(default)]
    pub log: Option<String>,
    /// True when `hub-start` is the process's parent and writes an `exited` record when it
    /// exits (an adopted process, or a hand-written record, is watched by pid instead).
    #[serde(default, skip_serializing_if = "is_false")]
    pub exit_record: bool,
    /// How long it has to become healthy.
    pub timeout_ms: u64,
    /// Its health check.
    pub health: HealthSpec,
    /// Container services: the container, when known.
    #[serde(default)]
    pub container: Option<String>,
    /// Container services: the compose project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<ComposeRef>,
}
}

/// `exited`: a process `hub-start` launched exited (its parent learns it first, and says so).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exited {
    /// Service, class, level, attempt.
    #[serde(flatten)]
    pub of: AttemptOf,
    /// The process that exited.
    pub pid: u32,
    /// Its shell-style exit status (128+N for signal N).
    pub exit_status: i32,
}

/// Why a start attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// The start command exited non-zero.
    StartFailed,
    /// It could not be spawned, or a `run` process died at once.
    LaunchFailed,
    /// The circuit breaker refused it.
    BreakerOpen,
    /// `--inject-failure`.
    Injected,
    /// Neither `start`, `run` nor a container.
    NoBackend,
    /// A `run` process with a `healthy` verdict exited before the deploy ended.
    ExitedAfterHealthy,
    /// The deadline passed (a final `unhealthy`, as hub-start judges it).
    Timeout,
    /// The process or container exited before it was healthy.
    Exited,
    /// The check cannot run.
    ProbeError,
}

impl FailReason {
    /// As written in records.
    pub fn as_str(&self) -> &'static str {
        match self {
            FailReason::StartFailed => "start_failed",
            FailReason::LaunchFailed => "launch_failed",
            FailReason::BreakerOpen => "breaker_open",
            FailReason::Injected => "injected",
            FailReason::NoBackend => "no_backend",
            FailReason::ExitedAfterHealthy => "exited_after_healthy",
            FailReason::Timeout => "timeout",
            FailReason::Exited => "exited",
            FailReason::ProbeError => "probe_error",
        }
    }
}

/// `failed`: a start attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    /// Service, class, level, attempt.
    #[serde(flatten)]
    pub of: AttemptOf,
    /// True when no attempt follows.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Why.
    pub reason: FailReason,
    /// The start command's or process's status, when there is one.
    #[serde(default)]
    pub exit_status: Option<i32>,
    /// For `exited_after_healthy`: the last lines of the attempt's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<Vec<String>>,
    /// One line for humans.
    pub message: String,
    /// The delay before the next attempt; null when final.
    #[serde(default)]
    pub next_delay_ms: Option<u64>,
}

/// Why a service was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// One probe passed before starting: it counts as healthy.
    AlreadyHealthy,
    /// A CORE service failed; nothing new starts.
    Aborted,
    /// A hard dependency failed or was skipped.
    DependencyFailed,
}

impl SkipReason {
    /// As written in records.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::AlreadyHealthy => "already_healthy",
            SkipReason::Aborted => "aborted",
            SkipReason::DependencyFailed => "dependency_failed",
        }
    }
}

/// `skipped`: a service was not started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Service, class, level.
    #[serde(flatten)]
    pub of: Subject,
    /// Why.
    pub reason: SkipReason,
    /// For `dependency_failed`: the dependency that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependency: Option<String>,
}

/// `healthy`: a started service passed its health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthy {
    /// Service, class, level, attempt.
    #[serde(flatten)]
    pub of: AttemptOf,
    /// Always true.
    #[serde(rename = "final", default = "yes")]
    pub is_final: bool,
    /// From the `started` record's time to the passing probe.
    #[serde(default)]
    pub ready_ms: u64,
    /// Probes run.
    #[serde(default)]
    pub probes: u32,
    /// Of those, failures outside the start period.
    #[serde(default)]
    pub failures: u32,
    /// Backend `swarm`: the tasks that made it healthy (running past their healthcheck, or a
    /// one-shot job's completed ones), where a container service names its container. Tasks
    /// only exist once Swarm has placed the released service, so `started` cannot carry them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Why a started service is not healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnhealthyReason {
    /// The deadline passed.
    Timeout,
    /// The process or container exited.
    Exited,
    /// The check cannot run.
    ProbeError,
    /// hub-start gave up (a CORE failure), so the wait was abandoned.
    Aborted,
    /// Swarm cannot place its tasks (no node matches its constraints, or has its image).
    Unplaceable,
}

impl UnhealthyReason {
    /// As written in records.
    pub fn as_str(self) -> &'static str {
        match self {
            UnhealthyReason::Timeout => "timeout",
            UnhealthyReason::Exited => "exited",
            UnhealthyReason::ProbeError => "probe_error",
            UnhealthyReason::Aborted => "aborted",
            UnhealthyReason::Unplaceable => "unplaceable",
        }
    }
}

impl Unhealthy {
    /// Attempt `of` is not healthy, for `reason`, with nothing else known (no probe counts, no
    /// exit status, no log).
    pub fn new(of: AttemptOf, reason: UnhealthyReason, is_final: bool) -> Unhealthy {
        Unhealthy {
            of,
            is_final,
            reason,
            elapsed_ms: 0,
            probes: 0,
            failures: 0,
            last_probe: None,
            exit_status: None,
            log_tail: None,
            message: String::new(),
        }
    }

    /// May another attempt help, attempts allowing? A process that exited or a check that
    /// timed out, yes (the next attempt starts afresh); a check that cannot run, a command that
    /// is not found or not executable (126, 127), or an abandoned wait, no. The one place this
    /// is decided: `hub-start` acts on it, `hub-wait-healthy` writes it into `final`.
    pub fn retryable(reason: UnhealthyReason, exit_status: Option<i32>) -> bool {
        match reason {
            UnhealthyReason::Exited => exit_status.and_then(crate::codes::cannot_succeed).is_none(),
            UnhealthyReason::Timeout => true,
            UnhealthyReason::ProbeError
            | UnhealthyReason::Aborted
            | UnhealthyReason::Unplaceable => false,
        }
    }
}

/// `unhealthy`: a started service did not become healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unhealthy {
    /// Service, class, level, attempt.
    #[serde(flatten)]
    pub of: AttemptOf,
    /// False when the reason is retryable and attempts are left.
    #[serde(rename = "final", default = "yes")]
    pub is_final: bool,
    /// Why.
    pub reason: UnhealthyReason,
    /// From start to the decision.
    #[serde(default)]
    pub elapsed_ms: u64,
    /// Probes run.
    #[serde(default)]
    pub probes: u32,
    /// Of those, failures outside the start period.
    #[serde(default)]
    pub failures: u32,
    /// The last probe's result, one line.
    #[serde(default)]
    pub last_probe: Option<String>,
    /// For `exited`: its exit status, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
    /// For `exited`: the last lines of its log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<Vec<String>>,
    /// One line for humans.
    #[serde(default)]
    pub message: String,
}

/// `waiting`: a service still undecided at 50%, 75% or 90% of its timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// Service, class, level, attempt.
    #[serde(flatten)]
    pub of: AttemptOf,
    /// 50, 75 or 90.
    pub percent: u32,
    /// Time waited so far.
    pub elapsed_ms: u64,
    /// The whole timeout.
    pub timeout_ms: u64,
    /// The last probe's result, one line.
    #[serde(default)]
    pub last_probe: Option<String>,
}

/// The signal that interrupted a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignalName {
    /// The terminal closed.
    #[serde(rename = "SIGHUP")]
    Hup,
    /// Ctrl-C.
    #[serde(rename = "SIGINT")]
    Int,
    /// `kill`, or `hub-deploy`'s parent died.
    #[serde(rename = "SIGTERM")]
    Term,
}

impl SignalName {
    /// The name of a signal hub handles (SIGTERM for any other).
    pub fn of(signal: nix::sys::signal::Signal) -> SignalName {
        match signal {
            nix::sys::signal::Signal::SIGHUP => SignalName::Hup,
            nix::sys::signal::Signal::SIGINT => SignalName::Int,
            _ => SignalName::Term,
        }
    }
}

/// `interrupted`: a tool got SIGHUP/SIGINT/SIGTERM and stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interrupted {
    /// Which tool.
    pub tool: String,
    /// Which signal.
    pub signal: SignalName,
    /// Services whose start or wait was cut short, sorted.
    #[serde(default)]
    pub in_flight: Vec<String>,
}

/// How a service was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMethod {
    /// Its `x-hub.stop` command ran.
    Stop,
    /// Its process group was TERMed, then KILLed after the grace.
    Signal,
    /// `compose stop` + `rm -f`.
    Container,
    /// `docker service rm` of a Swarm service (backend `swarm`), waited for.
    Swarm,
    /// Nothing to stop it with.
    None,
}

/// `stopped`: teardown of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopped {
    /// Service, class, level.
    #[serde(flatten)]
    pub of: Subject,
    /// How.
    pub method: StopMethod,
    /// True when it is stopped (or was not running).
    pub ok: bool,
    /// One line for humans.
    pub message: String,
}

/// `finished`'s counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Healthy, already-healthy skips included.
    pub healthy: usize,
    /// Of those, already healthy before starting.
    #[serde(default)]
    pub already_healthy: usize,
    /// Launched (without `--gate`: not checked). Absent from records older than `--gate`.
    #[serde(default)]
    pub started: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped.
    pub skipped: usize,
}

/// `finished`: the deploy is decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished {
    /// True when no CORE service failed.
    pub ok: bool,
    /// What `hub-start` exits with.
    pub exit_status: i32,
    /// How many services ended how.
    pub counts: Counts,
    /// From the first record read to now.
    pub duration_ms: u64,
}

/// `breaker_status`: one breaker key's current state (a snapshot, not a change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerStatus {
    /// The breaker key.
    pub key: String,
    /// Its state.
    pub state: crate::breaker::State,
    /// Failures since the last success.
    pub consecutive_failures: u64,
    /// When it last opened, ms since the epoch; null when closed.
    pub opened_at: Option<u64>,
    /// How long until a check would be allowed.
    pub retry_after_ms: u64,
    /// Half-open: the process holding the trial.
    pub trial_pid: Option<u32>,
    /// When the key last changed, ms since the epoch.
    pub updated_at: u64,
}

/// What a service is doing now, as `hub-report status` observes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    /// Up, and one probe passed now.
    Healthy,
    /// Up, and the probe failed.
    Unhealthy,
    /// Up, with no check to run (or a one-shot job still running).
    Running,
    /// A one-shot job that exited 0.
    Completed,
    /// Its process or container is gone.
    Exited,
    /// `hub-down` removed it: no pid file, but a log.
    Stopped,
    /// Never started.
    NeverStarted,
}

impl ServiceState {
    /// As written in records.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Healthy => "healthy",
            ServiceState::Unhealthy => "unhealthy",
            ServiceState::Running => "running",
            ServiceState::Completed => "completed",
            ServiceState::Exited => "exited",
            ServiceState::Stopped => "stopped",
            ServiceState::NeverStarted => "never_started",
        }
    }
}

/// A deploy's verdict on one service: what `hub-report` decides from a run's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Healthy (or skipped because it already was).
    Healthy,
    /// Its last attempt failed, or the deploy stopped while it was starting.
    Failed,
    /// Never started.
    Skipped,
    /// Launched, but the deploy finished with no health result for it (`hub-start` without
    /// `--gate` counts a launch as done).
    Started,
}

impl Verdict {
    /// As written in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Failed => "failed",
            Verdict::Skipped => "skipped",
            Verdict::Started => "started",
        }
    }
}

/// What the last deploy said about a service (in a `service_status` record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastDeploy {
    /// The run id.
    pub run_id: Option<String>,
    /// Its verdict.
    pub status: Verdict,
    /// Its start attempts.
    pub attempts: u32,
    /// Why it failed or was skipped; null when healthy.
    pub reason: Option<String>,
}

/// `service_status`: one service of a deployed stack, as it is now (a snapshot, not a change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Service, class, level.
    #[serde(flatten)]
    pub of: Subject,
    /// As in the plan.
    pub backend: Backend,
    /// What it is doing now.
    pub state: ServiceState,
    /// For `exited` and `completed`: its exit status when known.
    #[serde(default)]
    pub exit_status: Option<i32>,
    /// The probe's one-line result; null when nothing was probed.
    #[serde(default)]
    pub probe: Option<String>,
    /// A `run` service's process (group) id, from its pid file.
    #[serde(default)]
    pub pid: Option<u32>,
    /// A container service's container id.
    #[serde(default)]
    pub container: Option<String>,
    /// When it was launched (ms since the epoch), when known.
    #[serde(default)]
    pub up_since: Option<u64>,
    /// The last deploy's verdict on it; null when no deploy mentions it.
    #[serde(default)]
    pub last_deploy: Option<LastDeploy>,
    /// The breaker `SERVICE:start`.
    pub breaker: crate::breaker::State,
    /// Its log file (`run`/`start` services), whether or not it exists yet.
    #[serde(default)]
    pub log: Option<String>,
}

/// Declares [`Record`] (a variant per record type, plus [`Record::Unknown`]), its serde twins
/// (`Known`, derived and internally tagged by `type`; `KnownRef`, the same by reference for
/// writing) and [`TYPES`], all from one list, so adding a record type is one line.
macro_rules! record_types {
    ($($variant:ident($ty:ty) = $name:literal,)*) => {
        /// One record of any type: the contract of `docs/records.md` as a type. Tagged by
        /// `type`; a type this build does not know is kept whole in [`Record::Unknown`], so a
        /// tool that reads and re-emits records loses nothing.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Record {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant($ty),
            )*
            /// A record of a type this build does not know, kept whole.
            Unknown(Unknown),
        }

        #[derive(Deserialize)]
        #[serde(tag = "type")]
        enum Known {
            $(#[serde(rename = $name)] $variant($ty),)*
        }

        #[derive(Serialize)]
        #[serde(tag = "type")]
        enum KnownRef<'a> {
            $(#[serde(rename = $name)] $variant(&'a $ty),)*
        }

        /// Every record type [`Record`] knows, as `type` spells it (`docs/records.md`
        /// documents each).
        pub const TYPES: &[&str] = &[$($name),*];

        impl Record {
            /// Its `type`.
            pub fn kind(&self) -> &str {
                match self {
                    $(Record::$variant(_) => $name,)*
                    Record::Unknown(unknown) => &unknown.kind,
                }
            }

            /// Decode the body of a record of known type `kind` straight from its line's
            /// text: the type is already known, so serde's tagged derive, which buffers the
            /// whole object to find the tag, is skipped (a third of a million-line report's
            /// time).
            fn from_body(kind: &str, text: &str) -> serde_json::Result<Record> {
                Ok(match kind {
                    $($name => Record::$variant(serde_json::from_str(text)?),)*
                    _ => serde_json::from_str::<Known>(text)?.into(),
                })
            }

            fn known(&self) -> Option<KnownRef<'_>> {
                Some(match self {
                    $(Record::$variant(r) => KnownRef::$variant(r),)*
                    Record::Unknown(_) => return None,
                })
            }
        }

        impl From<Known> for Record {
            fn from(known: Known) -> Record {
                match known {
                    $(Known::$variant(r) => Record::$variant(r),)*
                }
            }
        }
    };
}

record_types! {
    Plan(Box<Plan>) = "plan",
    Started(Box<Started>) = "started",
    Exited(Exited) = "exited",
    Failed(Failed) = "failed",
    Skipped(Skipped) = "skipped",
    Healthy(Healthy) = "healthy",
    Unhealthy(Unhealthy) = "unhealthy",
    Waiting(Waiting) = "waiting",
    Interrupted(Interrupted) = "interrupted",
    Stopped(Stopped) = "stopped",
    Finished(Finished) = "finished",
    Attempt(Attempt) = "attempt",
    Breaker(crate::breaker::Transition) = "breaker",
    BreakerStatus(BreakerStatus) = "breaker_status",
    ServiceStatus(Box<ServiceStatus>) = "service_status",
}

/// A record of a type this build does not know: its type and service, and the object as read
/// (envelope included), written back byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// Its `type`.
    pub kind: String,
    /// Its `service`, if it names one.
    pub service: Option<String>,
    /// The JSON object, as read.
    pub raw: String,
}

impl Record {
    /// The service it is about, if any (the envelope's `service`).
    pub fn service(&self) -> Option<&str> {
        match self {
            Record::Plan(p) => Some(&p.service),
            Record::Started(r) => Some(&r.of.service),
            Record::Exited(r) => Some(&r.of.service),
            Record::Failed(r) => Some(&r.of.service),
            Record::Skipped(r) => Some(&r.of.service),
            Record::Healthy(r) => Some(&r.of.service),
            Record::Unhealthy(r) => Some(&r.of.service),
            Record::Waiting(r) => Some(&r.of.service),
            Record::Stopped(r) => Some(&r.of.service),
            Record::ServiceStatus(r) => Some(&r.of.service),
            Record::Unknown(unknown) => unknown.service.as_deref(),
            Record::Interrupted(_)
            | Record::Finished(_)
            | Record::Attempt(_)
            | Record::Breaker(_)
            | Record::BreakerStatus(_) => None,
        }
    }
}

impl Serialize for Record {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match self.known() {
            Some(known) => known.serialize(serializer),
            None => match self {
                Record::Unknown(unknown) => {
                    let value: serde_json::Value =
                        serde_json::from_str(&unknown.raw).map_err(serde::ser::Error::custom)?;
                    value.serialize(serializer)
                }
                _ => Err(serde::ser::Error::custom("a known record without its type")),
            },
        }
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        Record::from_map(map, None).map_err(D::Error::custom)
    }
}

impl Record {
    /// Decode a record's object; `raw`, when given, is its text (kept by an unknown type).
    fn from_map(
        map: serde_json::Map<String, serde_json::Value>,
        raw: Option<&str>,
    ) -> std::result::Result<Record, String> {
        let kind = match map.get("type") {
            Some(serde_json::Value::String(kind)) => kind.clone(),
            _ => return Err("every record needs a string `type`".into()),
        };
        if !TYPES.contains(&kind.as_str()) {
            let service = map
                .get("service")
                .and_then(|s| s.as_str())
                .map(str::to_owned);
            let raw = match raw {
                Some(raw) => raw.trim().to_owned(),
                None => serde_json::to_string(&map).map_err(|e| e.to_string())?,
            };
            return Ok(Record::Unknown(Unknown { kind, service, raw }));
        }
        Known::deserialize(serde_json::Value::Object(map))
            .map(Record::from)
            .map_err(|e| e.to_string())
    }
}

/// The envelope of a line, and its `service` (what an unknown record keeps), borrowed.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    ts: Option<u64>,
    #[serde(default, borrow)]
    run_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    service: Option<std::borrow::Cow<'a, str>>,
}

/// One record line: the envelope (`ts`, `run_id`) written once around any record. (`service`,
/// the envelope's third field, belongs to the records about one service: [`Record::service`].)
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// When it was written, ms since the Unix epoch.
    pub ts: Option<u64>,
    /// The run it belongs to.
    pub run_id: Option<String>,
    /// The record.
    pub record: Record,
}

impl Line {
    /// A record stamped now, for `run_id`.
    pub fn now(run_id: Option<&str>, record: Record) -> Line {
        Line {
            ts: Some(crate::time::now_ms()),
            run_id: run_id.map(str::to_owned),
            record,
        }
    }

    /// Decode one input line. The error names the source and line number, for readers that
    /// report and skip.
    pub fn parse(text: &str, source: &str, line_no: usize) -> Result<Line> {
        Line::decode(text).map_err(|why| Error::input(format!("{source}:{line_no}: {why}")))
    }

    /// Decode one input line; the error is one line saying what is wrong, for a reader that
    /// names the place itself ([`crate::jsonl::read_sources`]).
    pub fn decode(text: &str) -> std::result::Result<Line, String> {
        // The common case in two passes over the text and no tree: the envelope (borrowed),
        // then the body straight from the text by serde's tagged derive (bodies ignore the
        // envelope's fields). Anything that fails takes the path below, which words the error.
        if let Ok(head) = serde_json::from_str::<Head<'_>>(text) {
            let run_id = head.run_id.map(std::borrow::Cow::into_owned);
            if !TYPES.contains(&head.kind.as_ref()) {
                let record = Record::Unknown(Unknown {
                    kind: head.kind.into_owned(),
                    service: head.service.map(std::borrow::Cow::into_owned),
                    raw: text.trim().to_owned(),
                });
                return Ok(Line {
                    ts: head.ts,
                    run_id,
                    record,
                });
            }
            if let Ok(record) = Record::from_body(&head.kind, text) {
                return Ok(Line {
                    ts: head.ts,
                    run_id,
                    record,
                });
            }
        }
        Line::decode_slowly(text)
    }

    fn decode_slowly(text: &str) -> std::result::Result<Line, String> {
        let mut map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| format!("not a JSON record ({e})"))?;
        let ts = match map.get("ts") {
            None | Some(serde_json::Value::Null) => None,
            Some(ts) => Some(
                ts.as_u64()
                    .ok_or_else(|| "not a hub record: `ts` is not a time in ms".to_owned())?,
            ),
        };
        let run_id = match map.get("run_id") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(run_id)) => Some(run_id.clone()),
            Some(_) => return Err("not a hub record: `run_id` is not a string".to_owned()),
        };
        let known = matches!(map.get("type"), Some(serde_json::Value::String(kind)) if TYPES.contains(&kind.as_str()));
        if known {
            // The envelope is the line's, not the body's: typed bodies never see it.
            map.remove("ts");
            map.remove("run_id");
        }
        let record = Record::from_map(map, Some(text)).map_err(|e| {
            let what = if known {
                "malformed record"
            } else {
                "not a hub record"
            };
            format!("{what}: {e}")
        })?;
        Ok(Line { ts, run_id, record })
    }

    /// Encode as one line: `{"type":…,"ts":…,"run_id":…,…body}`. An unknown record is
    /// written as it was read.
    pub fn to_line(&self) -> Result<String> {
        match &self.record {
            Record::Unknown(unknown) => Ok(unknown.raw.clone()),
            record => {
                let kind = record.kind().to_owned();
                let body = serde_json::to_string(record)
                    .map_err(|e| Error::internal(format!("cannot encode a {kind} record: {e}")))?;
                // serde writes the tag first: splice the envelope in right after it, so every
                // line leads with `type`, `ts`, `run_id` as it always has.
                let head = format!("{{\"type\":\"{kind}\"");
                let Some(rest) = body.strip_prefix(&head) else {
                    return Err(Error::internal(format!(
                        "a {kind} record did not encode with its type first"
                    )));
                };
                let mut line = String::with_capacity(body.len() + 64);
                line.push_str(&head);
                if let Some(ts) = self.ts {
                    line.push_str(",\"ts\":");
                    line.push_str(&ts.to_string());
                }
                if let Some(run_id) = &self.run_id {
                    line.push_str(",\"run_id\":");
                    line.push_str(&serde_json::Value::from(run_id.as_str()).to_string());
                }
                line.push_str(rest);
                Ok(line)
            }
        }
    }
}

/// Does an HTTP status match a spec such as `200-399`, `200,204` or `200`? (Parses the spec
/// each call: a prober parses it once, [`crate::codes::HttpStatuses`].)
///
/// An invalid spec is an error naming what is wrong, so `hub-levels` can refuse it early.
pub fn status_matches(spec: &str, status: u16) -> Result<bool, String> {
    crate::codes::HttpStatuses::parse(spec).map(|set| set.contains(status))
}

/// A typed view of a record's envelope: the fields every record may carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The record type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Milliseconds since the Unix epoch when it was written.
    #[serde(default)]
    pub ts: Option<u64>,
    /// The deploy run it belongs to.
    #[serde(default)]
    pub run_id: Option<String>,
    /// The service it is about, if any.
    #[serde(default)]
    pub service: Option<String>,
}

/// Wrap a record body into a full record line: `{"type": kind, "ts": …, "run_id": …, …body}`.
pub fn to_line(kind: &str, run_id: Option<&str>, body: &impl Serialize) -> Result<String> {
    // The envelope is written first and the body's fields spliced after it: `type` leads every
    // line, and the body is encoded once, straight to text (no intermediate map). Bodies never
    // carry `type`, `ts` or `run_id` themselves.
    let fields = serde_json::to_string(body)
        .map_err(|e| Error::internal(format!("cannot encode a {kind} record: {e}")))?;
    let Some(fields) = fields.strip_prefix('{') else {
        return Err(Error::internal(format!(
            "a {kind} record's body is not an object: {fields}"
        )));
    };
    let mut line = String::with_capacity(fields.len() + 96);
    line.push_str("{\"type\":");
    line.push_str(&serde_json::Value::from(kind).to_string());
    line.push_str(",\"ts\":");
    line.push_str(&crate::time::now_ms().to_string());
    if let Some(run_id) = run_id {
        line.push_str(",\"run_id\":");
        line.push_str(&serde_json::Value::from(run_id).to_string());
    }
    if fields != "}" {
        line.push(',');
    }
    line.push_str(fields);
    Ok(line)
}

/// The `plan` records among the lines of `input` (other records are skipped), each with its
/// `run_id`: what the tools that act on a whole stack (`hub-start --stop`, `hub-report status`)
/// read on stdin from `hub-levels`. A service name that cannot name its files is refused.
pub fn read_plans(
    input: impl std::io::BufRead,
    source: &str,
) -> Result<Vec<(Option<String>, Plan)>> {
    let mut plans = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line =
            line.map_err(|e| Error::io(format!("reading plan records from {source}"), &e))?;
        if line.trim().is_empty() {
            continue;
        }
        let (envelope, value) = parse_line(&line, source, n + 1)?;
        if envelope.kind == "plan" {
            let plan: Plan = decode(value, source, n + 1)?;
            crate::service::check_name_for_paths(&plan.service)
                .map_err(|why| Error::input(format!("{source}:{}: {why}", n + 1)))?;
            plans.push((envelope.run_id, plan));
        }
    }
    Ok(plans)
}

/// Parse one input line into its envelope and full JSON value.
///
/// The error names the source and line number, for readers that report and skip.
pub fn parse_line(
    line: &str,
    source: &str,
    line_no: usize,
) -> Result<(Envelope, serde_json::Value)> {
    let value: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| Error::input(format!("{source}:{line_no}: not a JSON record ({e})")))?;
    let envelope: Envelope = serde_json::from_value(value.clone()).map_err(|e| {
        Error::input(format!(
            "{source}:{line_no}: not a hub record: {e} (every record needs a string `type`)"
        ))
    })?;
    Ok((envelope, value))
}

/// Decode a record's full value into one typed record body.
pub fn decode<T: for<'de> Deserialize<'de>>(
    value: serde_json::Value,
    source: &str,
    line_no: usize,
) -> Result<T> {
    serde_json::from_value(value)
        .map_err(|e| Error::input(format!("{source}:{line_no}: malformed record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_plan() -> Plan {
        Plan {
            service: "keycloak".into(),
            level: 1,
            class: Class::Core,
            deps: vec!["postgres".into()],
            soft_deps: vec![],
            timeout_ms: 60_000,
            backend: Backend::Run,
            start: None,
            run: Some(CommandSpec::Argv(vec!["kc.sh".into(), "start".into()])),
            stop: None,
            working_dir: None,
            environment: Default::default(),
            health: HealthSpec {
                check: Check::Http {
                    url: "http://127.0.0.1:8080/health".into(),
                    status: "200-399".into(),
                    body: None,
                },
                interval_ms: 200,
                probe_timeout_ms: 2000,
                start_period_ms: 0,
            },
            retry: RetrySpec::default(),
            container_name: None,
            profiles: vec![],
            labels: BTreeMap::new(),
            healthcheck: None,
            compose: None,
            project: None,
        }
    }

    #[test]
    fn plan_round_trips_through_a_line() {
        let plan = sample_plan();
        let line = to_line("plan", Some("r1"), &plan).unwrap();
        let (env, value) = parse_line(&line, "test", 1).unwrap();
        assert_eq!(env.kind, "plan");
        assert_eq!(env.run_id.as_deref(), Some("r1"));
        assert_eq!(value["health"]["kind"], "http");
        let back: Plan = decode(value, "test", 1).unwrap();
        assert_eq!(back, plan);
    }

    #[test]
    fn the_envelope_leads_every_line() {
        let line = to_line("finished", Some("r\"1"), &serde_json::json!({"ok": true})).unwrap();
        assert!(line.starts_with(r#"{"type":"finished","ts":"#), "{line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            (value["run_id"].as_str(), value["ok"].as_bool()),
            (Some("r\"1"), Some(true))
        );
        let empty = to_line("x", None, &serde_json::json!({})).unwrap();
        assert!(
            serde_json::from_str::<serde_json::Value>(&empty).is_ok(),
            "{empty}"
        );
        assert!(to_line("x", None, &1).is_err());
    }

    #[test]
    fn check_none_is_tagged() {
        let health = HealthSpec {
            check: Check::None,
            interval_ms: 1,
            probe_timeout_ms: 1,
            start_period_ms: 0,
        };
        let text = serde_json::to_string(&health).unwrap();
        assert!(text.contains(r#""kind":"none""#), "{text}");
        let back: HealthSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(back, health);
    }

    #[test]
    fn status_specs() {
        assert_eq!(status_matches("200-399", 302), Ok(true));
        assert_eq!(status_matches("200,204", 204), Ok(true));
        assert_eq!(status_matches("200", 500), Ok(false));
        assert!(status_matches("abc", 200).is_err());
        assert!(status_matches("399-200", 200).is_err());
    }

    #[test]
    fn bad_lines_name_their_place() {
        let err = parse_line("{", "events.jsonl", 7).unwrap_err();
        assert!(err.message().starts_with("events.jsonl:7:"), "{err}");
        let err = parse_line("{\"x\":1}", "events.jsonl", 8).unwrap_err();
        assert!(err.message().contains("type"), "{err}");
    }

    fn of(service: &str) -> AttemptOf {
        AttemptOf {
            service: service.into(),
            class: Class::Optional,
            level: 2,
            attempt: 1,
            max_attempts: 3,
        }
    }

    fn subject(service: &str) -> Subject {
        Subject {
            service: service.into(),
            class: Class::Stretch,
            level: 1,
        }
    }

    /// One record of every known type, in [`TYPES`] order.
    fn one_of_each() -> Vec<Record> {
        let health = sample_plan().health;
        vec![
            Record::Plan(Box::new(sample_plan())),
            Record::Started(Box::new(Started {
                of: of("redis"),
                backend: Some(Backend::Run),
                pid: Some(4321),
                adopted: true,
                log: Some(".hub/logs/redis.log".into()),
                exit_record: true,
                timeout_ms: 60_000,
                health,
                container: None,
                compose: None,
                working_dir: Some("/srv".into()),
                environment: [("A".to_owned(), None)].into_iter().collect(),
            })),
            Record::Exited(Exited {
                of: of("redis"),
                pid: 4321,
                exit_status: 137,
            }),
            Record::Failed(Failed {
                of: of("redis"),
                is_final: false,
                reason: FailReason::BreakerOpen,
                exit_status: Some(1),
                log_tail: Some(vec!["boom".into()]),
                message: "refused".into(),
                next_delay_ms: Some(2000),
            }),
            Record::Skipped(Skipped {
                of: subject("api"),
                reason: SkipReason::DependencyFailed,
                dependency: Some("redis".into()),
            }),
            Record::Healthy(Healthy {
                of: of("redis"),
                is_final: true,
                ready_ms: 412,
                probes: 9,
                failures: 8,
                tasks: vec!["x1ab".into()],
            }),
            Record::Unhealthy(Unhealthy {
                of: of("redis"),
                is_final: false,
                reason: UnhealthyReason::Exited,
                elapsed_ms: 400,
                probes: 3,
                failures: 3,
                last_probe: Some("exit 1".into()),
                exit_status: Some(1),
                log_tail: Some(vec![]),
                message: "exited with status 1 after 0.4s".into(),
            }),
            Record::Waiting(Waiting {
                of: of("redis"),
                percent: 50,
                elapsed_ms: 30_000,
                timeout_ms: 60_000,
                last_probe: None,
            }),
            Record::Interrupted(Interrupted {
                tool: "hub-start".into(),
                signal: SignalName::Hup,
                in_flight: vec!["redis".into()],
            }),
            Record::Stopped(Stopped {
                of: subject("redis"),
                method: StopMethod::Signal,
                ok: true,
                message: "stopped".into(),
            }),
            Record::Finished(Finished {
                ok: false,
                exit_status: 1,
                counts: Counts {
                    healthy: 1,
                    already_healthy: 0,
                    started: 0,
                    failed: 1,
                    skipped: 2,
                },
                duration_ms: 9000,
            }),
            Record::Attempt(Attempt {
                name: "curl".into(),
                attempt: 2,
                max_attempts: 3,
                outcome: crate::retry::Outcome::Timeout,
                status: 124,
                duration_ms: 5,
                next_delay_ms: None,
                is_final: true,
            }),
            Record::Breaker(crate::breaker::Transition {
                key: "redis:start".into(),
                from: crate::breaker::State::Closed,
                to: crate::breaker::State::Open,
                consecutive_failures: 3,
                opened_at: Some(7),
            }),
            Record::BreakerStatus(BreakerStatus {
                key: "redis:start".into(),
                state: crate::breaker::State::HalfOpen,
                consecutive_failures: 3,
                opened_at: Some(7),
                retry_after_ms: 0,
                trial_pid: Some(99),
                updated_at: 8,
            }),
            Record::ServiceStatus(Box::new(ServiceStatus {
                of: subject("redis"),
                backend: Backend::Run,
                state: ServiceState::Exited,
                exit_status: Some(1),
                probe: None,
                pid: Some(4321),
                container: None,
                up_since: Some(5),
                last_deploy: Some(LastDeploy {
                    run_id: Some("run-1".into()),
                    status: Verdict::Failed,
                    attempts: 3,
                    reason: Some("exited".into()),
                }),
                breaker: crate::breaker::State::Open,
                log: Some(".hub/logs/redis.log".into()),
            })),
        ]
    }

    #[test]
    fn every_record_type_round_trips() {
        let records = one_of_each();
        let kinds: Vec<&str> = records.iter().map(Record::kind).collect();
        assert_eq!(kinds, TYPES);
        for record in records {
            let line = Line {
                ts: Some(1_700_000_000_000),
                run_id: Some("run-1".into()),
                record,
            };
            let text = line.to_line().unwrap();
            let kind = line.record.kind();
            assert!(
                text.starts_with(&format!(
                    r#"{{"type":"{kind}","ts":1700000000000,"run_id":"run-1""#
                )),
                "{text}"
            );
            assert_eq!(Line::parse(&text, "t", 1).unwrap(), line, "{text}");
        }
    }

    #[test]
    fn unknown_types_survive_whole() {
        let text =
            r#"{"type":"from_the_future","ts":5,"run_id":"r","service":"x","n":[1,{"a":null}]}"#;
        let line = Line::parse(text, "t", 1).unwrap();
        assert_eq!(line.record.kind(), "from_the_future");
        assert_eq!(line.record.service(), Some("x"));
        assert_eq!(line.ts, Some(5));
        assert_eq!(line.to_line().unwrap(), text);
    }

    #[test]
    fn malformed_known_records_are_errors_not_unknown() {
        let err = Line::parse(
            r#"{"type":"skipped","service":"x","class":"core","reason":"bored"}"#,
            "ev",
            3,
        )
        .unwrap_err();
        assert!(err.message().starts_with("ev:3:"), "{err}");
    }

    #[test]
    fn docs_list_exactly_the_record_types() {
        let docs = include_str!("../../../docs/records.md");
        let documented: Vec<&str> = docs
            .lines()
            .filter_map(|l| l.strip_prefix("## `")?.strip_suffix('`'))
            .collect();
        let mut documented_sorted = documented.clone();
        documented_sorted.sort_unstable();
        let mut types = TYPES.to_vec();
        types.sort_unstable();
        assert_eq!(
            documented_sorted, types,
            "docs/records.md sections: {documented:?}"
        );
    }
}
