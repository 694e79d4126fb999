//! The Docker Swarm backend: Swarm schedules, hub orders.
//!
//! `docker stack deploy` ignores `depends_on`: every service of a stack starts at once and the
//! dependents restart until their dependencies happen to be up. hub releases the services into
//! the stack one at a time instead, each the moment its dependencies are healthy: a release is
//! a `docker stack deploy` of a file holding that one service (plus the stack's networks,
//! volumes, secrets and configs), so Swarm's own compose translation builds it, replicated and
//! `deploy.mode: global` alike. Why not zero replicas or an impossible placement constraint:
//! docs/swarm.md.
//!
//! The file Swarm gets is compose's own resolution of the user's files (`docker compose config
//! --format json`: interpolation, `env_file`, `extends`, `include`, merges), made acceptable to
//! the docker CLI's stack loader: no `depends_on` (hub orders; the loader refuses its long
//! form), published ports as numbers, compose's generated resource names left to the stack, and
//! the keys Swarm does not honour dropped and named in a warning ([`StackFile::warnings`]).
//!
//! Health is judged from the tasks ([`snapshot`], [`assess`]): one snapshot of the whole stack
//! (`docker service ls`, `docker stack ps`, `docker inspect` of the tasks) answers for every
//! service waited for, so a waiter polls once per stack, not once per service.

use crate::container::{self, ComposeCmd, ComposeFailure};
use crate::records::{Check, ComposeRef};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The label Swarm puts on every object of a stack.
pub const STACK_LABEL: &str = "com.docker.stack.namespace";

/// A global service with no task this long after its creation has no node to run on.
pub const GLOBAL_SETTLE: Duration = Duration::from_secs(3);

/// How often a teardown looks again whether the engine has let go of what it removed.
const GONE_CHECK: Duration = Duration::from_millis(100);

/// The service keys Swarm honours (the docker CLI's stack loader turns them into the service's
/// spec); every other key of a service is dropped from Swarm's file, with a warning.
const HONOURED: &[&str] = &[
    "cap_add",
    "cap_drop",
    "command",
    "configs",
    "credential_spec",
    "deploy",
    "dns",
    "dns_search",
    "entrypoint",
    "env_file",
    "environment",
    "extra_hosts",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "isolation",
    "labels",
    "logging",
    "networks",
    "ports",
    "read_only",
    "secrets",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "user",
    "volumes",
    "working_dir",
];

/// Keys dropped without a warning: hub acts on them itself (ordering, which services are
/// active), so nothing the user wrote is lost.
const HUB_OWNS: &[&str] = &["depends_on", "profiles"];

/// The top-level keys a stack file keeps.
const TOP_LEVEL: &[&str] = &["networks", "volumes", "secrets", "configs"];

/// What to do instead, for the keys users most often miss under Swarm.
fn instead(key: &str) -> Option<&'static str> {
    Some(match key {
        "build" => "build the image beforehand and make it available to every node",
        "restart" => "use deploy.restart_policy",
        "container_name" => "Swarm names the tasks",
        "expose" => "services on one network reach each other on any port",
        "mem_limit" | "cpus" | "cpu_shares" | "cpu_quota" | "cpuset" | "memswap_limit" => {
            "use deploy.resources"
        }
        "network_mode" => "use networks",
        _ => return None,
    })
}

/// The stack's file as Swarm gets it: compose's resolution without what Swarm refuses or
/// ignores.
#[derive(Debug, Clone, PartialEq)]
pub struct StackFile {
    top: Map<String, Value>,
    services: Map<String, Value>,
    /// Per service, the keys dropped because Swarm does not honour them.
    pub dropped: BTreeMap<String, Vec<String>>,
    /// One-shot jobs (a dependent waits for `service_completed_successfully`) whose restart
    /// policy makes Swarm run them again once they complete.
    pub rerun_jobs: Vec<String>,
}

impl StackFile {
    /// Build it from `docker compose config --format json` output; `project` is the compose
    /// project name, whose generated resource names (`PROJECT_default`) are left to the stack
    /// (`STACK_default`), as `docker stack deploy` names them.
    pub fn from_config(config: &Value, project: Option<&str>) -> StackFile {
        let project = project.or_else(|| config.get("name").and_then(Value::as_str));
        let mut top = Map::new();
        for key in TOP_LEVEL {
            let Some(Value::Object(entries)) = config.get(*key) else {
                continue;
            };
            let mut entries = entries.clone();
            for (name, entry) in &mut entries {
                if let (Some(project), Value::Object(fields)) = (project, entry)
                    && fields.get("name").and_then(Value::as_str)
                        == Some(format!("{project}_{name}").as_str())
                {
                    fields.remove("name");
                }
            }
            top.insert((*key).to_owned(), Value::Object(entries));
        }
        let mut services = Map::new();
        let mut dropped = BTreeMap::new();
        if let Some(Value::Object(all)) = config.get("services") {
            for (name, body) in all {
                let Value::Object(body) = body else { continue };
                let mut kept = Map::new();
                let mut gone = Vec::new();
                for (key, value) in body {
                    if value.is_null() || HUB_OWNS.contains(&key.as_str()) {
                        continue;
                    }
                    if HONOURED.contains(&key.as_str()) {
                        kept.insert(key.clone(), value.clone());
                    } else {
                        gone.push(key.clone());
                    }
                }
                if let Some(Value::Array(ports)) = kept.get_mut("ports") {
                    numeric_published_ports(ports);
                }
                if !gone.is_empty() {
                    dropped.insert(name.clone(), gone);
                }
                services.insert(name.clone(), Value::Object(kept));
            }
        }
        let rerun_jobs = rerun_jobs(config.get("services"));
        StackFile {
            top,
            services,
            dropped,
            rerun_jobs,
        }
    }

    /// One line per service with keys Swarm does not honour, naming them.
    pub fn warnings(&self) -> Vec<String> {
        self.dropped
            .iter()
            .map(|(service, keys)| {
                let hints: Vec<String> = keys
                    .iter()
                    .filter_map(|k| instead(k).map(|hint| format!("{k}: {hint}")))
                    .collect();
                format!(
                    "service \"{service}\" runs on Swarm: Swarm does not honour {}, so hub leaves {} out of the stack's file{}",
                    keys.join(", "),
                    if keys.len() == 1 { "it" } else { "them" },
                    if hints.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", hints.join("; "))
                    }
                )
            })
            .chain(self.rerun_jobs.iter().map(|job| {
                format!(
                    "service \"{job}\" runs on Swarm as a one-shot job (a dependent waits for service_completed_successfully), but its restart policy makes Swarm run it again once it completes: set deploy.restart_policy.condition to on-failure or none"
                )
            }))
            .collect()
    }

    /// The file that releases `service` alone: the stack's networks, volumes, secrets and
    /// configs, and that one service. `None` when compose does not know the service.
    pub fn for_service(&self, service: &str) -> Option<Value> {
        let body = self.services.get(service)?;
        let mut file = self.top.clone();
        let mut one = Map::new();
        one.insert(service.to_owned(), body.clone());
        file.insert("services".into(), Value::Object(one));
        Some(Value::Object(file))
    }
}

/// The services some dependent waits for with `service_completed_successfully` whose
/// `deploy.restart_policy.condition` is Swarm's default `any`: Swarm restarts a task that
/// exits 0 under that policy, so the job would run again after hub counted it done.
fn rerun_jobs(services: Option<&Value>) -> Vec<String> {
    let Some(Value::Object(services)) = services else {
        return Vec::new();
    };
    let jobs: BTreeSet<&str> = services
        .values()
        .filter_map(|body| body.get("depends_on").and_then(Value::as_object))
        .flat_map(|deps| deps.iter())
        .filter(|(_, dep)| {
            dep.get("condition").and_then(Value::as_str) == Some("service_completed_successfully")
        })
        .map(|(name, _)| name.as_str())
        .collect();
    jobs.into_iter()
        .filter(|job| {
            let condition = services
                .get(*job)
                .and_then(|body| body.pointer("/deploy/restart_policy/condition"))
                .and_then(Value::as_str);
            !matches!(condition, Some("on-failure" | "none"))
        })
        .map(str::to_owned)
        .collect()
}

/// Compose writes `published` as a string; the stack loader wants a number.
fn numeric_published_ports(ports: &mut [Value]) {
    for port in ports {
        if let Some(Value::String(text)) = port.get("published")
            && let Ok(number) = text.parse::<u64>()
        {
            port["published"] = Value::from(number);
        }
    }
}

/// A stack's service name: `STACK_SERVICE`, as `docker stack deploy` names it.
pub fn service_name(stack: &str, service: &str) -> String {
    format!("{stack}_{service}")
}

/// A stack name as `--swarm` takes it: what Swarm accepts in a stack's name (it prefixes every
/// service, network and volume), checked before anything runs.
pub fn stack_name(name: &str) -> crate::Result<String> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && name.len() <= 63;
    if valid {
        Ok(name.to_owned())
    } else {
        Err(crate::Error::input(format!(
            "--swarm {name:?}: a stack name is letters, digits, `_`, `-` and `.`, starting with a letter or digit, at most 63 characters"
        )))
    }
}

/// `--swarm STACK`: every container service of the plan runs on Swarm in stack `stack`. Its
/// `x-hub.health.exec` cannot reach a task on another node: Swarm's own health status judges
/// it instead (a warning says so). Returns the warnings.
pub fn to_swarm(plans: &mut [crate::records::Plan], stack: &str) -> Vec<String> {
    use crate::records::Backend;
    let mut warnings = Vec::new();
    for plan in plans.iter_mut().filter(|p| p.backend == Backend::Container) {
        plan.backend = Backend::Swarm;
        plan.compose.get_or_insert_with(ComposeRef::default).stack = Some(stack.to_owned());
        if matches!(plan.health.check, Check::Exec { .. }) {
            plan.health.check = Check::Container { grace_ms: 0 };
            warnings.push(format!(
                "service \"{}\" runs on Swarm: x-hub.health.exec is not used (a task may run on another node); Swarm's own healthcheck status decides",
                plan.service
            ));
        }
    }
    warnings
}

/// Stack files already built in this process (compose runs once per project).
static FILES: Mutex<Vec<(ComposeRef, Arc<StackFile>)>> = Mutex::new(Vec::new());
/// Held while a service is released: two first deploys would both create the stack's networks.
static RELEASING: Mutex<()> = Mutex::new(());

/// The stack's file for the project `compose` names, built once per process (and its warnings
/// said once): `COMPOSE … --profile * config --format json` (hub's plan decides which services
/// are active; every profile is resolved so any of them can be released).
pub fn stack_file(
    cmd: &ComposeCmd,
    compose: &ComposeRef,
) -> Result<Arc<StackFile>, ComposeFailure> {
    let cached = |files: &Vec<(ComposeRef, Arc<StackFile>)>| {
        files
            .iter()
            .find(|(c, _)| c == compose)
            .map(|(_, f)| f.clone())
    };
    let mut files = FILES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(file) = cached(&files) {
        return Ok(file);
    }
    let mut call = cmd.compose_command(compose);
    call.args(["--profile", "*", "config", "--format", "json"]);
    let text = container::run_output(cmd, call)?;
    let config: Value = serde_json::from_str(&text).map_err(|e| ComposeFailure {
        exit_status: None,
        message: format!("`docker compose config --format json` printed no JSON: {e}"),
    })?;
    let file = Arc::new(StackFile::from_config(&config, compose.project.as_deref()));
    for warning in file.warnings() {
        crate::log::warn(&warning);
    }
    files.push((compose.clone(), file.clone()));
    Ok(file)
}

/// Release one service into the stack: `docker stack deploy --resolve-image never` of a file
/// holding it alone, and return its Swarm service id. A service that already exists (an
/// earlier attempt) is left to Swarm's restart policy, unless that policy gave up (no task
/// is meant to run any more): then `docker service update --force` gives it fresh tasks.
pub fn release(
    cmd: &ComposeCmd,
    compose: &ComposeRef,
    stack: &str,
    service: &str,
) -> Result<String, ComposeFailure> {
    let file = stack_file(cmd, compose)?;
    let full = service_name(stack, service);
    let _one = RELEASING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(id) = service_id(cmd, &full)? {
        // A task Swarm means to run (`running`), or one waiting out its restart delay
        // (`ready`): the restart policy is still at work.
        let snapshot = snapshot(cmd, stack).map_err(|e| ComposeFailure {
            exit_status: None,
            message: e.to_string(),
        })?;
        let live = snapshot
            .tasks
            .iter()
            .any(|t| t.service_id == id && matches!(t.desired.as_str(), "running" | "ready"));
        if !live {
            let mut force = cmd.engine_command();
            force.args(["service", "update", "--detach", "--force", "--quiet", &full]);
            container::run_output(cmd, force)?;
        }
        return Ok(id);
    }
    let body = file.for_service(service).ok_or_else(|| ComposeFailure {
        exit_status: None,
        message: format!(
            "service \"{service}\": `docker compose config` does not list it; check the files (-f) and the project name"
        ),
    })?;
    static FILE_NUMBER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let number = FILE_NUMBER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("hub-swarm-{}-{number}.json", std::process::id()));
    std::fs::write(&path, body.to_string()).map_err(|e| ComposeFailure {
        exit_status: None,
        message: format!("cannot write {}: {e}", path.display()),
    })?;
    let mut deploy = cmd.engine_command();
    deploy
        .args([
            "stack",
            "deploy",
            "--detach=true",
            "--quiet",
            "--resolve-image",
            "never",
            "-c",
        ])
        .arg(&path)
        .arg(stack);
    let deployed = container::run_output(cmd, deploy);
    let _ = std::fs::remove_file(&path);
    deployed?;
    service_id(cmd, &full)?.ok_or_else(|| ComposeFailure {
        exit_status: None,
        message: format!("`docker stack deploy` succeeded but Swarm has no service {full}"),
    })
}

/// A service's id, `None` when Swarm has no such service.
pub fn service_id(cmd: &ComposeCmd, full_name: &str) -> Result<Option<String>, ComposeFailure> {
    let mut ls = cmd.engine_command();
    ls.args([
        "service",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        &format!("name={full_name}"),
    ]);
    // `name=` matches prefixes: look for the exact name.
    if !lines(&container::run_output(cmd, ls)?)
        .iter()
        .any(|n| n == full_name)
    {
        return Ok(None);
    }
    let mut inspect = cmd.engine_command();
    inspect.args(["service", "inspect", "--format", "{{.ID}}", full_name]);
    Ok(Some(container::run_output(cmd, inspect)?.trim().to_owned()))
}

/// How a service runs its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `deploy.replicas` tasks.
    Replicated(u64),
    /// One task on every node that may run it.
    Global,
}

/// A service of the stack, as the engine has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Its id.
    pub id: String,
    /// `STACK_SERVICE`.
    pub name: String,
    /// Replicated or global.
    pub mode: Mode,
    /// When it was created, ms since the epoch.
    pub created_ms: u64,
}

/// One task, as `docker inspect` of the task has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Its id (what `docker service ps --no-trunc` lists).
    pub id: String,
    /// Its service's id.
    pub service_id: String,
    /// The node it was placed on (empty while pending).
    pub node_id: String,
    /// `new`, `pending`, `assigned`, …, `starting` (until its healthcheck passes), `running`,
    /// `complete`, `failed`, `rejected`, `shutdown`, `orphaned`, `remove`.
    pub state: String,
    /// What the orchestrator wants of it (`running`, `shutdown`, …).
    pub desired: String,
    /// When it was created, ms since the epoch.
    pub created_ms: u64,
    /// When it reached its current state, ms since the epoch.
    pub state_ms: u64,
    /// The engine's error for it (`No such image: …`, `task: non-zero exit (3)`, `no suitable
    /// node …`), empty when none.
    pub error: String,
    /// Its container's exit code, once it exited.
    pub exit_code: Option<i32>,
    /// Whether its container has a healthcheck (Swarm holds it in `starting` until it passes).
    pub healthcheck: bool,
}

impl Task {
    /// A task that ended without doing its job: one failed attempt.
    pub fn failed(&self) -> bool {
        matches!(self.state.as_str(), "failed" | "rejected" | "orphaned")
            || (self.state == "shutdown" && !self.error.is_empty())
    }
}

/// The whole stack at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Its services.
    pub services: Vec<Service>,
    /// Their tasks, history included.
    pub tasks: Vec<Task>,
    /// Nodes that are ready and active; only counted when a task was rejected for a missing
    /// image (is it missing everywhere?).
    pub ready_nodes: Option<usize>,
}

fn ms_of(value: Option<&Value>) -> u64 {
    value
        .and_then(Value::as_str)
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn text_of(value: Option<&Value>) -> String {
    value.and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn json_array(text: &str, what: &str) -> crate::Result<Vec<Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Array(items)) => Ok(items),
        _ => Err(crate::Error::input(format!(
            "`docker inspect` of {what} printed no JSON array"
        ))),
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Read the engine's view of one stack: services, tasks (with history), and, when needed,
/// its ready nodes. A stack with no service yet is an empty snapshot.
pub fn snapshot(cmd: &ComposeCmd, stack: &str) -> crate::Result<Snapshot> {
    let mut ls = cmd.engine_command();
    ls.args([
        "service",
        "ls",
        "-q",
        "--filter",
        &format!("label={STACK_LABEL}={stack}"),
    ]);
    let ids = lines(&container::run_output(cmd, ls)?);
    if ids.is_empty() {
        return Ok(Snapshot::default());
    }
    let mut inspect = cmd.engine_command();
    inspect.args(["service", "inspect"]).args(&ids);
    let services: Vec<Service> = json_array(&container::run_output(cmd, inspect)?, "services")?
        .iter()
        .map(|s| Service {
            id: text_of(s.get("ID")),
            name: text_of(s.pointer("/Spec/Name")),
            mode: match s.pointer("/Spec/Mode/Replicated/Replicas") {
                Some(n) => Mode::Replicated(n.as_u64().unwrap_or(0)),
                None if s.pointer("/Spec/Mode/Global").is_some() => Mode::Global,
                None => Mode::Replicated(1),
            },
            created_ms: ms_of(s.get("CreatedAt")),
        })
        .collect();
    let mut ps = cmd.engine_command();
    ps.args(["service", "ps", "-q", "--no-trunc"]).args(&ids);
    // A service removed between the two calls makes `service ps` fail: then no tasks this time.
    let task_ids = container::run_output(cmd, ps)
        .map(|t| lines(&t))
        .unwrap_or_default();
    let mut tasks = Vec::new();
    if !task_ids.is_empty() {
        let mut inspect = cmd.engine_command();
        inspect.args(["inspect", "--type", "task"]).args(&task_ids);
        if let Ok(text) = container::run_output(cmd, inspect) {
            tasks = json_array(&text, "tasks")?.iter().map(task_of).collect();
        }
    }
    let ready_nodes = if tasks.iter().any(|t| t.error.contains("No such image")) {
        let mut nodes = cmd.engine_command();
        nodes.args(["node", "ls", "--format", "{{.Status}} {{.Availability}}"]);
        let text = container::run_output(cmd, nodes)?;
        Some(text.lines().filter(|l| l.trim() == "Ready Active").count())
    } else {
        None
    };
    Ok(Snapshot {
        services,
        tasks,
        ready_nodes,
    })
}

fn task_of(t: &Value) -> Task {
    let healthcheck = t
        .pointer("/Spec/ContainerSpec/Healthcheck/Test")
        .and_then(Value::as_array)
        .is_some_and(|test| test.first().and_then(Value::as_str) != Some("NONE"));
    Task {
        id: text_of(t.get("ID")),
        service_id: text_of(t.get("ServiceID")),
        node_id: text_of(t.get("NodeID")),
        state: text_of(t.pointer("/Status/State")),
        desired: text_of(t.get("DesiredState")),
        created_ms: ms_of(t.get("CreatedAt")),
        state_ms: ms_of(t.pointer("/Status/Timestamp")),
        error: text_of(t.pointer("/Status/Err")),
        exit_code: t
            .pointer("/Status/ContainerStatus/ExitCode")
            .and_then(Value::as_i64)
            .and_then(|c| i32::try_from(c).ok())
            .filter(|_| t.pointer("/Status/ContainerStatus/ContainerID").is_some()),
        healthcheck,
    }
}

/// Where one service stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    /// As many tasks as it wants are running and past their healthcheck (for a one-shot job:
    /// completed): their ids.
    Healthy {
        /// The tasks that count.
        tasks: Vec<String>,
    },
    /// Not yet: a one-line summary (`0/2 running (1 starting, 1 preparing)`).
    Pending(String),
    /// A task failed, was rejected or shut down with an error, after `since`: one attempt.
    TaskFailed {
        /// The task's id.
        task: String,
        /// Its state and the engine's error.
        error: String,
        /// Its container's exit code, when it ran.
        exit_code: Option<i32>,
    },
    /// Swarm cannot place its tasks: no node matches its constraints, or no node has its
    /// image. No retry helps.
    Unplaceable(String),
    /// The stack has no such service.
    Missing,
}

/// What counts as healthy for one service.
#[derive(Debug, Clone, Copy)]
pub struct Judge<'a> {
    /// Its check: `completed` for a one-shot job, else its tasks' health.
    pub check: &'a Check,
    /// Failures before this time (ms since the epoch) belong to earlier attempts.
    pub since_ms: u64,
    /// Now, ms since the epoch.
    pub now_ms: u64,
}

/// Judge `service` (its full `STACK_SERVICE` name) in a snapshot, and count its failed tasks
/// since `judge.since_ms`.
pub fn assess(snapshot: &Snapshot, full_name: &str, judge: &Judge<'_>) -> (Assessment, u32) {
    let Some(service) = snapshot.services.iter().find(|s| s.name == full_name) else {
        return (Assessment::Missing, 0);
    };
    let tasks: Vec<&Task> = snapshot
        .tasks
        .iter()
        .filter(|t| t.service_id == service.id)
        .collect();
    let grace = match judge.check {
        Check::Container { grace_ms } => *grace_ms,
        _ => 0,
    };
    let completed = *judge.check == Check::Completed;
    let live: Vec<&&Task> = tasks.iter().filter(|t| t.desired == "running").collect();
    let wanted = match service.mode {
        Mode::Replicated(n) => n,
        Mode::Global => live
            .iter()
            .map(|t| &t.node_id)
            .collect::<BTreeSet<_>>()
            .len() as u64,
    };
    let good: Vec<String> = tasks
        .iter()
        .filter(|t| {
            if completed {
                t.state == "complete"
            } else {
                t.state == "running"
                    && t.desired == "running"
                    && (t.healthcheck || judge.now_ms.saturating_sub(t.state_ms) >= grace)
            }
        })
        .map(|t| t.id.clone())
        .collect();
    let failures: Vec<&&Task> = tasks
        .iter()
        .filter(|t| t.failed() && t.state_ms >= judge.since_ms)
        .collect();
    let failed = u32::try_from(failures.len()).unwrap_or(u32::MAX);
    let global_has_tasks = service.mode != Mode::Global || !tasks.is_empty();
    if global_has_tasks && good.len() as u64 >= wanted {
        return (Assessment::Healthy { tasks: good }, failed);
    }
    if let Some(pending) = live
        .iter()
        .find(|t| t.state == "pending" && !t.error.is_empty())
    {
        return (
            Assessment::Unplaceable(format!("no node can run it: {}", pending.error)),
            failed,
        );
    }
    let no_image: BTreeSet<&str> = tasks
        .iter()
        .filter(|t| t.state == "rejected" && t.error.contains("No such image"))
        .map(|t| t.node_id.as_str())
        .collect();
    if let (Some(ready), Some(task)) = (
        snapshot.ready_nodes,
        tasks.iter().find(|t| t.error.contains("No such image")),
    ) && no_image.len() >= ready.max(1)
    {
        return (
            Assessment::Unplaceable(format!(
                "no node has its image ({}; deployed with --resolve-image never: build or load it on every node)",
                task.error.trim_matches('"')
            )),
            failed,
        );
    }
    if service.mode == Mode::Global
        && tasks.is_empty()
        && judge.now_ms.saturating_sub(service.created_ms) >= crate::duration::to_ms(GLOBAL_SETTLE)
    {
        return (
            Assessment::Unplaceable(
                "no node matches its placement constraints (a global service with no task)".into(),
            ),
            failed,
        );
    }
    if let Some(task) = failures.iter().min_by_key(|t| t.state_ms) {
        let error = if task.error.is_empty() {
            task.state.clone()
        } else {
            format!("{}: {}", task.state, task.error.trim_matches('"'))
        };
        return (
            Assessment::TaskFailed {
                task: task.id.clone(),
                error,
                exit_code: task.exit_code.filter(|_| task.state != "rejected"),
            },
            failed,
        );
    }
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    for task in &live {
        *states.entry(task.state.as_str()).or_default() += 1;
    }
    let detail: Vec<String> = states
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    let summary = format!(
        "{}/{wanted} {}{}",
        good.len(),
        if completed { "completed" } else { "running" },
        if detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", detail.join(", "))
        }
    );
    (Assessment::Pending(summary), failed)
}

/// Is `service` already at its desired healthy count (a rerun resumes)?
pub fn already_healthy(cmd: &ComposeCmd, stack: &str, service: &str, check: &Check) -> bool {
    if *check == Check::Completed {
        return false;
    }
    let Ok(snapshot) = snapshot(cmd, stack) else {
        return false;
    };
    let judge = Judge {
        check,
        since_ms: u64::MAX,
        now_ms: crate::time::now_ms(),
    };
    matches!(
        assess(&snapshot, &service_name(stack, service), &judge).0,
        Assessment::Healthy { .. }
    )
}

/// Poll `done` until it holds or `wait` has passed; true when it held.
fn until(wait: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(GONE_CHECK);
    }
}

fn listed(cmd: &ComposeCmd, args: &[&str]) -> Vec<String> {
    let mut call = cmd.engine_command();
    call.args(args);
    container::run_output(cmd, call)
        .map(|t| lines(&t))
        .unwrap_or_default()
}

/// Remove one service of the stack (`docker service rm`) and wait up to `wait` until its
/// containers on this node are gone. Ok(false) when there was no such service.
pub fn remove_service(
    cmd: &ComposeCmd,
    stack: &str,
    service: &str,
    wait: Duration,
) -> Result<bool, ComposeFailure> {
    let full = service_name(stack, service);
    if service_id(cmd, &full)?.is_none() {
        return Ok(false);
    }
    let mut rm = cmd.engine_command();
    rm.args(["service", "rm", &full]);
    container::run_output(cmd, rm)?;
    let label = format!("label=com.docker.swarm.service.name={full}");
    let gone = until(wait, || {
        listed(cmd, &["ps", "-a", "-q", "--filter", &label]).is_empty()
    });
    if gone {
        Ok(true)
    } else {
        Err(ComposeFailure {
            exit_status: None,
            message: format!(
                "{full} was removed but its containers were still there after {}",
                crate::duration::human(wait)
            ),
        })
    }
}

/// Remove the stack (`docker stack rm`) and wait up to `wait` until its services, tasks,
/// containers and networks are gone (a network still in use when `stack rm` tried is removed again).
pub fn remove_stack(cmd: &ComposeCmd, stack: &str, wait: Duration) -> Result<(), ComposeFailure> {
    let label = format!("label={STACK_LABEL}={stack}");
    let mut rm = cmd.engine_command();
    rm.args(["stack", "rm", stack]);
    // It fails when a network is still in use; the loop below removes it once it is not.
    let _ = container::run_output(cmd, rm);
    let gone = until(wait, || {
        let services = listed(cmd, &["service", "ls", "-q", "--filter", &label]);
        let containers = listed(cmd, &["ps", "-a", "-q", "--filter", &label]);
        // The manager forgets a removed service's tasks a moment after their containers go.
        let tasks = listed(cmd, &["stack", "ps", "-q", stack]);
        if !services.is_empty() || !containers.is_empty() || !tasks.is_empty() {
            return false;
        }
        let networks = listed(cmd, &["network", "ls", "-q", "--filter", &label]);
        for network in &networks {
            let _ = listed(cmd, &["network", "rm", network]);
        }
        networks.is_empty()
    });
    if gone {
        Ok(())
    } else {
        Err(ComposeFailure {
            exit_status: None,
            message: format!(
                "stack {stack}: services, containers or networks were still there {} after `docker stack rm`",
                crate::duration::human(wait)
            ),
        })
    }
}

/// Before a deploy onto `stack`: the engine the docker CLI talks to must be a swarm manager
/// (only a manager deploys stacks), else every release would fail alike. The error says what
/// `docker info` answered and how to fix it.
pub fn require_manager(cmd: &ComposeCmd, stack: &str) -> crate::Result<()> {
    let mut info = cmd.engine_command();
    info.args([
        "info",
        "--format",
        "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
    ]);
    let answer = match container::run_output(cmd, info) {
        Ok(text) if text.trim() == "active true" => return Ok(()),
        Ok(text) => format!("its swarm state is \"{}\"", text.trim()),
        Err(failure) => failure.message,
    };
    Err(crate::Error::input(format!(
        "--swarm {stack}: the Docker engine is not a swarm manager ({answer}); run `docker swarm init` (one machine) or point DOCKER_HOST at a manager"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_stack_file_drops_what_swarm_refuses_and_names_what_it_ignores() {
        let config = json!({
            "name": "shop",
            "networks": {"default": {"name": "shop_default", "ipam": {}}, "ext": {"name": "corp", "external": true}},
            "volumes": {"data": {"name": "shop_data"}},
            "services": {
                "web": {
                    "image": "web:1", "command": null, "entrypoint": null,
                    "depends_on": {"db": {"condition": "service_healthy", "required": true}},
                    "profiles": ["x"], "restart": "always", "container_name": "w", "build": {"context": "."},
                    "ports": [{"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"}],
                    "networks": {"default": null}
                },
                "db": {"image": "db:1", "deploy": {"mode": "global"}}
            }
        });
        let file = StackFile::from_config(&config, None);
        let web = file.for_service("web").unwrap();
        assert_eq!(
            web,
            json!({
                "networks": {"default": {"ipam": {}}, "ext": {"name": "corp", "external": true}},
                "volumes": {"data": {}},
                "services": {"web": {
                    "image": "web:1",
                    "ports": [{"mode": "ingress", "target": 80, "published": 8080, "protocol": "tcp"}],
                    "networks": {"default": null}
                }}
            })
        );
        assert_eq!(
            file.warnings(),
            [
                "service \"web\" runs on Swarm: Swarm does not honour build, container_name, restart, so hub leaves them out of the stack's file (build: build the image beforehand and make it available to every node; container_name: Swarm names the tasks; restart: use deploy.restart_policy)"
            ]
        );
        assert!(file.for_service("nope").is_none());
    }

    #[test]
    fn a_one_shot_job_that_swarm_would_run_again_is_named() {
        let job = |policy: Value| {
            json!({"services": {
                "api": {"image": "api:1", "depends_on": {
                    "migrate": {"condition": "service_completed_successfully", "required": true},
                    "db": {"condition": "service_healthy", "required": true}}},
                "migrate": {"image": "m:1", "deploy": policy},
                "db": {"image": "db:1"}
            }})
        };
        let warned = StackFile::from_config(&job(json!({})), None);
        assert_eq!(warned.rerun_jobs, ["migrate"]);
        assert!(
            warned.warnings()[0].starts_with("service \"migrate\" runs on Swarm as a one-shot job"),
            "{:?}",
            warned.warnings()
        );
        let any =
            StackFile::from_config(&job(json!({"restart_policy": {"condition": "any"}})), None);
        assert_eq!(any.rerun_jobs, ["migrate"]);
        for condition in ["on-failure", "none"] {
            let fine = StackFile::from_config(
                &job(json!({"restart_policy": {"condition": condition}})),
                None,
            );
            assert!(fine.rerun_jobs.is_empty(), "{condition}");
            assert!(fine.warnings().is_empty(), "{condition}");
        }
    }

    fn task(id: &str, state: &str, desired: &str, at: u64) -> Task {
        Task {
            id: id.into(),
            service_id: "s1".into(),
            node_id: "n1".into(),
            state: state.into(),
            desired: desired.into(),
            created_ms: at,
            state_ms: at,
            error: String::new(),
            exit_code: None,
            healthcheck: true,
        }
    }

    fn one_service(mode: Mode, tasks: Vec<Task>) -> Snapshot {
        Snapshot {
            services: vec![Service {
                id: "s1".into(),
                name: "st_a".into(),
                mode,
                created_ms: 1_000,
            }],
            tasks,
            ready_nodes: None,
        }
    }

    const ENGINE: Check = Check::Container { grace_ms: 0 };

    fn judge(since_ms: u64, now_ms: u64) -> Judge<'static> {
        Judge {
            check: &ENGINE,
            since_ms,
            now_ms,
        }
    }

    #[test]
    fn healthy_needs_every_wanted_task_past_its_healthcheck() {
        let snap = one_service(
            Mode::Replicated(2),
            vec![
                task("t1", "running", "running", 2_000),
                task("t2", "starting", "running", 2_000),
            ],
        );
        let (a, _) = assess(&snap, "st_a", &judge(0, 3_000));
        assert_eq!(
            a,
            Assessment::Pending("1/2 running (1 running, 1 starting)".into())
        );
        let mut snap = snap;
        snap.tasks[1].state = "running".into();
        let (a, _) = assess(&snap, "st_a", &judge(0, 3_000));
        assert_eq!(
            a,
            Assessment::Healthy {
                tasks: vec!["t1".into(), "t2".into()]
            }
        );
        assert_eq!(
            assess(&snap, "st_b", &judge(0, 3_000)).0,
            Assessment::Missing
        );
    }

    #[test]
    fn a_failed_task_is_an_attempt_unless_an_earlier_one_saw_it() {
        let mut failed = task("t1", "failed", "shutdown", 2_000);
        failed.error = "task: non-zero exit (3)".into();
        failed.exit_code = Some(3);
        let snap = one_service(
            Mode::Replicated(1),
            vec![failed, task("t2", "starting", "running", 2_500)],
        );
        let (a, n) = assess(&snap, "st_a", &judge(1_500, 3_000));
        assert_eq!(n, 1);
        assert_eq!(
            a,
            Assessment::TaskFailed {
                task: "t1".into(),
                error: "failed: task: non-zero exit (3)".into(),
                exit_code: Some(3)
            }
        );
        let (a, n) = assess(&snap, "st_a", &judge(2_100, 3_000));
        assert_eq!(
            (n, a),
            (0, Assessment::Pending("0/1 running (1 starting)".into()))
        );
    }

    #[test]
    fn unplaceable_tasks_fail_at_once() {
        let mut pending = task("t1", "pending", "running", 2_000);
        pending.error = "no suitable node (scheduling constraints not satisfied on 1 node)".into();
        let snap = one_service(Mode::Replicated(1), vec![pending]);
        assert_eq!(
            assess(&snap, "st_a", &judge(0, 2_100)).0,
            Assessment::Unplaceable(
                "no node can run it: no suitable node (scheduling constraints not satisfied on 1 node)".into()
            )
        );
        let mut rejected = task("t1", "rejected", "shutdown", 2_000);
        rejected.error = "\"No such image: nope:1\"".into();
        let mut snap = one_service(Mode::Replicated(1), vec![rejected]);
        snap.ready_nodes = Some(1);
        assert!(matches!(
            assess(&snap, "st_a", &judge(0, 2_100)).0,
            Assessment::Unplaceable(m) if m.starts_with("no node has its image (No such image: nope:1;")
        ));
        let global = one_service(Mode::Global, vec![]);
        assert_eq!(
            assess(&global, "st_a", &judge(0, 2_000)).0,
            Assessment::Pending("0/0 running".into())
        );
        assert!(matches!(
            assess(&global, "st_a", &judge(0, 5_000)).0,
            Assessment::Unplaceable(_)
        ));
    }

    #[test]
    fn a_one_shot_job_is_healthy_when_its_tasks_complete() {
        let snap = one_service(
            Mode::Replicated(1),
            vec![task("t1", "complete", "shutdown", 2_000)],
        );
        let judge = Judge {
            check: &Check::Completed,
            since_ms: 0,
            now_ms: 3_000,
        };
        assert_eq!(
            assess(&snap, "st_a", &judge).0,
            Assessment::Healthy {
                tasks: vec!["t1".into()]
            }
        );
    }
}
