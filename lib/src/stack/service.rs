//! From compose service definitions to resolved `plan` records: classes, timeouts, health,
//! retry, dependencies, profiles, and every validation error a user can hit.
//!
//! Every error is one line that names the file, the service and the fix, because the person
//! reading it is in the middle of a deploy.

use crate::command::CommandSpec;
use crate::compose::{ComposeDoc, ServiceSource};
use crate::records::{Backend, Check, Class, ComposeRef, Environment, HealthSpec, Plan, RetrySpec};
use crate::{Error, Result, duration, graph, similar};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The keys `x-hub` may hold.
const XHUB_KEYS: [&str; 7] = [
    "class", "start", "run", "stop", "health", "timeout", "retry",
];
/// The keys `x-hub.health` may hold.
const HEALTH_KEYS: [&str; 11] = [
    "grace",
    "completed",
    "cmd",
    "http",
    "tcp",
    "exec",
    "status",
    "body",
    "interval",
    "probe_timeout",
    "start_period",
];
/// The keys `x-hub.retry` may hold.
const RETRY_KEYS: [&str; 3] = ["attempts", "delay", "max_delay"];

/// The default time a service has to become healthy (the seed's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a container without a healthcheck must run to count as healthy (the seed's 10 s).
pub const DEFAULT_CONTAINER_GRACE: Duration = Duration::from_secs(10);
/// Probe interval cap for tcp/http: cheap probes, so detection stays under ~100 ms.
pub const DEFAULT_FAST_INTERVAL: Duration = Duration::from_millis(100);
/// Probe interval cap for commands (each probe forks a process).
pub const DEFAULT_CMD_INTERVAL: Duration = Duration::from_millis(500);
/// The default per-probe timeout.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Looks up an environment variable (injected, so tests need not set process variables).
pub type EnvLookup = Box<dyn Fn(&str) -> Option<String>>;

/// What the user chose on the command line and in the environment.
pub struct Options {
    /// The label that carries the class when `x-hub.class` is absent (`hub.class` by default).
    pub class_label: String,
    /// The class of unlabelled services.
    pub default_class: Class,
    /// Active profiles (`--profile`, or `COMPOSE_PROFILES`); `*` activates all.
    pub profiles: Vec<String>,
    /// Environment lookup (injected so tests need not set process variables).
    pub env: EnvLookup,
    /// The document is compose's own resolution (`docker compose config` output): every
    /// service in it is active, and a `required: false` dependency on a service it left out
    /// is dropped with a note, as compose ignores it at `up` time.
    pub resolved: bool,
}

/// The result of resolving a compose document.
#[derive(Debug)]
pub struct Resolved {
    /// Plans ordered by level, then name.
    pub plans: Vec<Plan>,
    /// Warnings for stderr (exit status stays 0).
    pub warnings: Vec<String>,
}

/// Formats errors as `FILE: service "NAME": …`.
pub(crate) struct Place<'a> {
    pub(crate) file: &'a str,
    pub(crate) service: &'a str,
}

impl Place<'_> {
    pub(crate) fn error(&self, message: impl AsRef<str>) -> Error {
        Error::input(format!(
            "{}: service \"{}\": {}",
            self.file,
            self.service,
            message.as_ref()
        ))
    }

    pub(crate) fn duration(&self, value: &Value, what: &str) -> Result<Duration> {
        let parsed = match value {
            Value::Number(n) => n
                .as_f64()
                .and_then(duration::from_secs_f64)
                .ok_or_else(|| format!("invalid duration {n}")),
            Value::String(s) => duration::parse(s),
            other => Err(format!("invalid duration {other}")),
        };
        parsed.map_err(|e| {
            self.error(format!(
                "{what}: {e}; write e.g. 500ms, 2s, 1m30s or a number of seconds"
            ))
        })
    }

    fn command(&self, value: &Value, what: &str) -> Result<CommandSpec> {
        CommandSpec::from_value(value).map_err(|e| self.error(format!("{what}: {e}")))
    }

    pub(crate) fn check_keys(
        &self,
        map: &Map<String, Value>,
        allowed: &[&str],
        what: &str,
    ) -> Result<()> {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                let hint = similar::closest(key, allowed.iter().copied())
                    .map(|k| format!("did you mean `{k}`? "))
                    .unwrap_or_default();
                return Err(self.error(format!(
                    "unknown key `{key}` in {what}; {hint}allowed: {}",
                    allowed.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// A valid compose service name: starts with a letter or digit, then letters, digits, `_.-`.
pub fn valid_service_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The longest service name hub accepts, in bytes: hub makes file names of it
/// (`pids/.SERVICE.pid.RANDOM.tmp`, the pid file's temp name, must stay within a file system's
/// 255 bytes).
pub const MAX_NAME_LEN: usize = 200;

/// Can `name` name files in the state dir (`logs/NAME.log`, `pids/NAME.pid`)? A valid compose
/// name of at most [`MAX_NAME_LEN`] bytes; otherwise why not, for an error message. Every tool
/// that makes a path of a name read from a stream checks it: `../../x` must not write outside
/// the state dir.
pub fn check_name_for_paths(name: &str) -> std::result::Result<(), String> {
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "service name of {} bytes is too long (at most {MAX_NAME_LEN}: hub makes file names of it)",
            name.len()
        ));
    }
    if !valid_service_name(name) {
        let shown: String = name.chars().take(60).collect();
        return Err(format!(
            "service \"{}\": invalid service name; use letters, digits, `_`, `.`, `-`, starting with a letter or digit",
            shown.escape_debug()
        ));
    }
    Ok(())
}

/// The environment variable that overrides a service's timeout: `TIMEOUT_<SERVICE>`.
pub fn timeout_env_var(service: &str) -> String {
    format!(
        "TIMEOUT_{}",
        service.to_ascii_uppercase().replace(['-', '.'], "_")
    )
}

/// Is a service with these profiles active under the chosen ones?
fn profile_active(service_profiles: &[String], active: &[String]) -> bool {
    service_profiles.is_empty()
        || active
            .iter()
            .any(|p| p == "*" || service_profiles.contains(p))
}

/// The note for a `required: false` dependency on a service the profiles left out.
fn left_out_note(service: &str, dep: &str) -> String {
    format!(
        "note: service \"{service}\": its `required: false` dependency \"{dep}\" is not active (left out by its profiles); it is dropped, as compose ignores it at `up`"
    )
}

/// A dependency as declared.
struct Dependency {
    name: String,
    required: bool,
    /// `condition: service_completed_successfully`: the dependency is a one-shot job.
    completes: bool,
}

/// Parse `depends_on` in both forms.
fn dependencies(place: &Place<'_>, value: Option<&Value>) -> Result<Vec<Dependency>> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(name) => Ok(Dependency { name: name.clone(), required: true, completes: false }),
                other => Err(place.error(format!("depends_on: list items must be service names, found {other}"))),
            })
            .collect(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(name, spec)| {
                let completes = spec.get("condition").and_then(Value::as_str) == Some("service_completed_successfully");
                let required = match spec {
                    Value::Object(spec) => {
                        if let Some(condition) = spec.get("condition") {
                            let ok = matches!(condition.as_str(), Some("service_started" | "service_healthy" | "service_completed_successfully"));
                            if !ok {
                                return Err(place.error(format!(
                                    "depends_on.{name}.condition: {condition} is not one of service_started, service_healthy, service_completed_successfully"
                                )));
                            }
                        }
                        match spec.get("required") {
                            None => true,
                            Some(Value::Bool(b)) => *b,
                            Some(other) => {
                                return Err(place.error(format!(
                                    "depends_on.{name}.required: must be true or false, found {other}"
                                )));
                            }
                        }
                    }
                    Value::Null => true,
                    other => {
                        return Err(place.error(format!(
                            "depends_on.{name}: must be a mapping (condition, required, restart), found {other}"
                        )));
                    }
                };
                Ok(Dependency { name: name.clone(), required, completes })
            })
            .collect(),
        Some(other) => Err(place.error(format!("depends_on: must be a list or a mapping, found {other}"))),
    }
}

/// Labels in both forms (`["k=v"]` and `{k: v}`), as a map.
fn labels(place: &Place<'_>, value: Option<&Value>) -> Result<BTreeMap<String, String>> {
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match value {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(match text.split_once('=') {
                    Some((k, v)) => (k.to_owned(), v.to_owned()),
                    None => (text.clone(), String::new()),
                }),
                other => Err(place.error(format!(
                    "labels: list items must be \"key=value\" strings, found {other}"
                ))),
            })
            .collect(),
        Some(Value::Object(map)) => Ok(map.iter().map(|(k, v)| (k.clone(), scalar(v))).collect()),
        Some(other) => Err(place.error(format!(
            "labels: must be a list or a mapping, found {other}"
        ))),
    }
}

/// A list of strings (profiles).
fn string_list(place: &Place<'_>, value: Option<&Value>, what: &str) -> Result<Vec<String>> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    place.error(format!("{what}: items must be strings, found {item}"))
                })
            })
            .collect(),
        Some(other) => {
            Err(place.error(format!("{what}: must be a list of strings, found {other}")))
        }
    }
}

/// The compose healthcheck test as a command to run inside the container.
fn compose_test(place: &Place<'_>, healthcheck: Option<&Value>) -> Result<CommandSpec> {
    let test = healthcheck.and_then(|h| h.get("test")).ok_or_else(|| {
        place.error("x-hub.health.exec needs the service's compose `healthcheck.test`; add one or drop exec")
    })?;
    crate::local::healthcheck_test(test)
        .map_err(|e| place.error(format!("{e}, found {test}")))?
        .ok_or_else(|| place.error("x-hub.health.exec: the healthcheck test is [\"NONE\"], which has nothing to run; give it a test or drop exec"))
}

/// Resolve `x-hub.health` (or the default for the backend).
fn health(
    place: &Place<'_>,
    xhub: &Map<String, Value>,
    backend: Backend,
    healthcheck: Option<&Value>,
) -> Result<HealthSpec> {
    let Some(spec) = xhub.get("health") else {
        let check = match backend {
            Backend::Container | Backend::Swarm => Check::Container {
                grace_ms: duration::to_ms(DEFAULT_CONTAINER_GRACE),
            },
            Backend::Start | Backend::Run => Check::None,
        };
        return Ok(HealthSpec {
            check,
            interval_ms: duration::to_ms(DEFAULT_CMD_INTERVAL),
            probe_timeout_ms: duration::to_ms(DEFAULT_PROBE_TIMEOUT),
            start_period_ms: 0,
        });
    };
    let Value::Object(spec) = spec else {
        return Err(place.error("x-hub.health: must be a mapping with one of cmd, http, tcp, exec"));
    };
    place.check_keys(spec, &HEALTH_KEYS, "x-hub.health")?;
    let flag = |key: &str| match spec.get(key) {
        None | Some(Value::Bool(false)) => Ok(false),
        Some(Value::Bool(true)) => Ok(true),
        Some(other) => Err(place.error(format!(
            "x-hub.health.{key}: must be true or false, found {other}"
        ))),
    };
    let exec = flag("exec")?;
    let completed = flag("completed")?;
    let kinds: Vec<&str> = ["cmd", "http", "tcp"]
        .into_iter()
        .filter(|k| spec.contains_key(*k))
        .chain(exec.then_some("exec"))
        .chain(completed.then_some("completed"))
        .collect();
    // A container judged by the engine needs no kind, only (optionally) its grace.
    let engine_judged = kinds.is_empty() && backend == Backend::Container;
    if spec.contains_key("grace") && !(engine_judged) {
        return Err(place.error(
            "x-hub.health.grace: only for a container service judged by its engine status (no cmd, http, tcp, exec or completed)",
        ));
    }
    if kinds.len() != 1 && !engine_judged {
        return Err(place.error(format!(
            "x-hub.health: needs exactly one of cmd, http, tcp, exec: true, completed: true (found {})",
            if kinds.is_empty() {
                "none".to_owned()
            } else {
                kinds.join(", ")
            }
        )));
    }
    let check = match kinds.first().copied().unwrap_or("grace") {
        "grace" => Check::Container {
            grace_ms: spec
                .get("grace")
                .map_or(Ok(DEFAULT_CONTAINER_GRACE), |v| {
                    place.duration(v, "x-hub.health.grace")
                })
                .map(duration::to_ms)?,
        },
        "cmd" => Check::Cmd {
            cmd: place.command(&spec["cmd"], "x-hub.health.cmd")?,
        },
        "http" => {
            let url = spec["http"]
                .as_str()
                .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                .ok_or_else(|| {
                    place
                        .error("x-hub.health.http: must be a URL starting with http:// or https://")
                })?;
            let status = match spec.get("status") {
                None => "200-399".to_owned(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    return Err(place.error(format!(
                        "x-hub.health.status: expected e.g. 200-399, found {other}"
                    )));
                }
            };
            crate::records::status_matches(&status, 200)
                .map_err(|e| place.error(format!("x-hub.health.status: {e}")))?;
            let body = match spec.get("body") {
                None => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => {
                    return Err(place.error(format!(
                        "x-hub.health.body: must be a string, found {other}"
                    )));
                }
            };
            Check::Http {
                url: url.to_owned(),
                status,
                body,
            }
        }
        "tcp" => {
            let address = spec["tcp"]
                .as_str()
                .filter(|a| {
                    a.rsplit_once(':')
                        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
                })
                .ok_or_else(|| {
                    place.error("x-hub.health.tcp: must be HOST:PORT, e.g. 127.0.0.1:5432")
                })?;
            Check::Tcp {
                address: address.to_owned(),
            }
        }
        "completed" => {
            if backend == Backend::Start {
                return Err(place.error(ONE_SHOT_NEEDS_A_PROCESS));
            }
            Check::Completed
        }
        _ => {
            if backend != Backend::Container {
                return Err(place.error(
                    "x-hub.health.exec: only a container service can be checked with docker exec",
                ));
            }
            Check::Exec {
                test: compose_test(place, healthcheck)?,
            }
        }
    };
    let default_interval = match check {
        Check::Http { .. } | Check::Tcp { .. } => DEFAULT_FAST_INTERVAL,
        _ => DEFAULT_CMD_INTERVAL,
    };
    let get = |key: &str, default: Duration| -> Result<u64> {
        spec.get(key)
            .map_or(Ok(default), |v| {
                place.duration(v, &format!("x-hub.health.{key}"))
            })
            .map(duration::to_ms)
    };
    Ok(HealthSpec {
        check,
        interval_ms: get("interval", default_interval)?.max(1),
        probe_timeout_ms: get("probe_timeout", DEFAULT_PROBE_TIMEOUT)?.max(1),
        start_period_ms: get("start_period", Duration::ZERO)?,
    })
}

/// The seed's retry defaults, overridable by `RETRY_MAX_ATTEMPTS`, `RETRY_BASE_DELAY`, `RETRY_MAX_DELAY`.
pub fn retry_defaults(env: &dyn Fn(&str) -> Option<String>) -> Result<RetrySpec> {
    let mut spec = RetrySpec::default();
    if let Some(text) = env("RETRY_MAX_ATTEMPTS") {
        spec.attempts = text.trim().parse().map_err(|_| {
            Error::input(format!(
                "RETRY_MAX_ATTEMPTS={text}: not a whole number; set e.g. RETRY_MAX_ATTEMPTS=3"
            ))
        })?;
    }
    for (var, slot) in [
        ("RETRY_BASE_DELAY", &mut spec.delay_ms),
        ("RETRY_MAX_DELAY", &mut spec.max_delay_ms),
    ] {
        if let Some(text) = env(var) {
            *slot = duration::parse(&text)
                .map(duration::to_ms)
                .map_err(|e| Error::input(format!("{var}={text}: {e}")))?;
        }
    }
    Ok(spec)
}

/// Resolve `x-hub.retry` over the defaults.
fn retry(place: &Place<'_>, xhub: &Map<String, Value>, defaults: RetrySpec) -> Result<RetrySpec> {
    let Some(spec) = xhub.get("retry") else {
        return Ok(defaults);
    };
    let Value::Object(spec) = spec else {
        return Err(place.error("x-hub.retry: must be a mapping with attempts, delay, max_delay"));
    };
    place.check_keys(spec, &RETRY_KEYS, "x-hub.retry")?;
    let mut out = defaults;
    if let Some(attempts) = spec.get("attempts") {
        out.attempts = attempts
            .as_f64()
            .filter(|a| a.fract() == 0.0 && *a >= 0.0 && *a <= f64::from(u32::MAX))
            .map(|a| a as u32)
            .ok_or_else(|| place.error(format!("x-hub.retry.attempts: must be a whole number (0 = until success), found {attempts}")))?;
    }
    if let Some(delay) = spec.get("delay") {
        out.delay_ms = duration::to_ms(place.duration(delay, "x-hub.retry.delay")?);
    }
    if let Some(max_delay) = spec.get("max_delay") {
        out.max_delay_ms = duration::to_ms(place.duration(max_delay, "x-hub.retry.max_delay")?);
    }
    Ok(out)
}

/// One service before levels are known, with its declared dependencies.
struct Pending {
    plan: Plan,
    declared: Vec<Dependency>,
    file: String,
    /// `x-hub.health` was written out (not a default).
    explicit_health: bool,
    /// A local service: the warning naming what compose would do that hub does not.
    unhonoured: Option<String>,
    /// Its deadline is its compose healthcheck's (nothing else set one).
    healthcheck_deadline: bool,
}

/// Why a `start` service cannot be a one-shot job.
const ONE_SHOT_NEEDS_A_PROCESS: &str = "a one-shot job (x-hub.health.completed, or a dependent's `condition: service_completed_successfully`) needs `x-hub.run` or a container, whose exit hub can see; a `start` command returns once it has launched something";

/// Resolve one service.
fn resolve_service(
    name: &str,
    source: &ServiceSource,
    doc: &ComposeDoc,
    opts: &Options,
    warnings: &mut Vec<String>,
    retry_default: RetrySpec,
) -> Result<Pending> {
    let place = Place {
        file: &source.file,
        service: name,
    };
    let body = &source.body;
    let empty = Map::new();
    let xhub = match body.get("x-hub") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(map)) => map,
        Some(_) => return Err(place.error("x-hub: must be a mapping")),
    };
    place.check_keys(xhub, &XHUB_KEYS, "x-hub")?;
    let labels = labels(&place, body.get("labels"))?;

    let class = if let Some(value) = xhub.get("class") {
        value.as_str().and_then(Class::parse).ok_or_else(|| {
            place.error(format!(
                "x-hub.class: {value} is not a class; use core, optional or stretch"
            ))
        })?
    } else if let Some(text) = labels.get(&opts.class_label) {
        Class::parse(text).unwrap_or_else(|| {
            warnings.push(format!(
                "{}: service \"{name}\": label {}={text} is not core, optional or stretch; using {}",
                source.file, opts.class_label, opts.default_class.as_str()
            ));
            opts.default_class
        })
    } else {
        opts.default_class
    };

    let start = xhub
        .get("start")
        .map(|v| place.command(v, "x-hub.start"))
        .transpose()?;
    let run = xhub
        .get("run")
        .map(|v| place.command(v, "x-hub.run"))
        .transpose()?;
    let stop = xhub
        .get("stop")
        .map(|v| place.command(v, "x-hub.stop"))
        .transpose()?;
    let backend = match (&start, &run) {
        (Some(_), Some(_)) => {
            return Err(place.error(
                "x-hub: give `start` (returns once launched) or `run` (long-running), not both",
            ));
        }
        (Some(_), None) => Backend::Start,
        (None, Some(_)) => Backend::Run,
        (None, None) => Backend::Container,
    };
    let healthcheck = body.get("healthcheck").cloned();
    let local = backend != Backend::Container;
    // A local service with no x-hub.health is probed with its compose healthcheck, as its
    // container would be.
    let from_healthcheck = match (&healthcheck, xhub.contains_key("health")) {
        (Some(spec), false) if local => crate::local::from_healthcheck(&place, spec)?,
        _ => None,
    };
    let health = match &from_healthcheck {
        Some(from) => from.health.clone(),
        None => health(&place, xhub, backend, healthcheck.as_ref())?,
    };
    let written = match (xhub.get("timeout"), labels.get("hub.timeout")) {
        (Some(value), _) => Some(place.duration(value, "x-hub.timeout")?),
        (None, Some(text)) => {
            Some(place.duration(&Value::String(text.clone()), "label hub.timeout")?)
        }
        (None, None) => None,
    };
    let var = timeout_env_var(name);
    let from_env = (opts.env)(&var)
        .map(|text| duration::parse(&text).map_err(|e| Error::input(format!("{var}={text}: {e}"))))
        .transpose()?;
    let chosen = from_env.or(written);
    let healthcheck_deadline = from_healthcheck
        .as_ref()
        .and_then(|from| from.deadline)
        .filter(|_| chosen.is_none());
    let timeout = chosen.or(healthcheck_deadline).unwrap_or(DEFAULT_TIMEOUT);
    let healthcheck_deadline = healthcheck_deadline.is_some();
    let (working_dir, unhonoured) = if local {
        let keys = crate::local::unhonoured(body, from_healthcheck.is_some());
        let how = if backend == Backend::Start {
            "x-hub.start"
        } else {
            "x-hub.run"
        };
        (
            Some(crate::local::working_dir(&place, body, &doc.project_dir)?),
            (!keys.is_empty()).then(|| format!(
                "{}: service \"{name}\" runs as a local process ({how}): hub does not apply {}, which compose would apply to its container",
                source.file,
                keys.join(", ")
            )),
        )
    } else {
        (None, None)
    };
    let retry = retry(&place, xhub, retry_default)?;
    let container_name = match body.get("container_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(place.error(format!("container_name: must be a string, found {other}")));
        }
    };
    let profiles = string_list(&place, body.get("profiles"), "profiles")?;
    let declared = dependencies(&place, body.get("depends_on"))?;
    let compose = (backend == Backend::Container).then(|| ComposeRef {
        files: doc
            .files
            .iter()
            .filter(|f| *f != "-")
            .map(|f| absolute(f))
            .collect(),
        project: doc
            .project
            .clone()
            .or_else(|| (opts.env)("COMPOSE_PROJECT_NAME"))
            .or_else(|| doc.dotenv.get("COMPOSE_PROJECT_NAME").cloned()),
        project_directory: doc.project_directory.clone(),
        env_files: doc.env_files.clone(),
        stack: None,
    });
    Ok(Pending {
        plan: Plan {
            service: name.to_owned(),
            level: 0,
            class,
            deps: Vec::new(),
            soft_deps: Vec::new(),
            timeout_ms: duration::to_ms(timeout),
            backend,
            start,
            run,
            stop,
            working_dir,
            // Read once it is known to be active (see `resolve`).
            environment: Environment::new(),
            health,
            retry,
            container_name,
            profiles,
            labels,
            healthcheck: if backend == Backend::Container {
                healthcheck
            } else {
                None
            },
            compose,
            project: None,
        },
        declared,
        file: source.file.clone(),
        explicit_health: xhub.contains_key("health"),
        unhonoured,
        healthcheck_deadline,
    })
}

/// The project name as compose chooses it: the top-level `name:`, else `COMPOSE_PROJECT_NAME`
/// (the environment, then `.env`), else the project folder's name (`--project-directory`, else
/// the first file's folder) lowercased, keeping only what compose allows (`a-z0-9_-`).
fn project_name(doc: &ComposeDoc, opts: &Options) -> Option<String> {
    if let Some(name) = doc
        .project
        .clone()
        .or_else(|| (opts.env)("COMPOSE_PROJECT_NAME"))
        .or_else(|| doc.dotenv.get("COMPOSE_PROJECT_NAME").cloned())
    {
        return Some(name);
    }
    let folder = std::path::absolute(&doc.project_dir).ok()?;
    let name: String = folder
        .file_name()?
        .to_string_lossy()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        .collect();
    (!name.is_empty()).then_some(name)
}

/// A path made absolute against the current folder, so a plan works from anywhere.
fn absolute(path: &str) -> String {
    std::path::absolute(path).map_or_else(|_| path.to_owned(), |p| p.display().to_string())
}

/// Resolve a compose document into plans with levels, validating everything.
///
/// Linear in services + edges (hash lookups by name), so a 10,000-service file stays fast.
pub fn resolve(doc: &ComposeDoc, opts: &Options) -> Result<Resolved> {
    let mut warnings = Vec::new();
    let retry_default = retry_defaults(&*opts.env)?;
    let mut all: Vec<Pending> = Vec::with_capacity(doc.services.len());
    for (name, source) in &doc.services {
        if let Err(why) = check_name_for_paths(name) {
            return Err(Error::input(format!("{}: {why}", source.file)));
        }
        all.push(resolve_service(
            name,
            source,
            doc,
            opts,
            &mut warnings,
            retry_default,
        )?);
    }
    // `all` is in `doc.services` order, so the document's keys index it.
    let defined: HashMap<&str, usize> = doc
        .services
        .keys()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();
    let active: Vec<bool> = all
        .iter()
        .map(|p| opts.resolved || profile_active(&p.plan.profiles, &opts.profiles))
        .collect();
    if opts.resolved {
        for pending in &mut all {
            let service = &pending.plan.service;
            pending.declared.retain(|dep| {
                let keep = dep.required || defined.contains_key(dep.name.as_str());
                if !keep {
                    warnings.push(left_out_note(service, &dep.name));
                }
                keep
            });
        }
    }

    // Two active services may not share a container name (compose refuses it too).
    let mut names: HashMap<&str, &str> = HashMap::new();
    for (pending, _) in all.iter().zip(&active).filter(|(_, a)| **a) {
        if let Some(container) = pending.plan.container_name.as_deref()
            && let Some(first) = names.insert(container, &pending.plan.service)
        {
            let place = Place {
                file: &pending.file,
                service: &pending.plan.service,
            };
            return Err(place.error(format!(
                "container_name \"{container}\" is already used by service \"{first}\"; give each service its own container_name (or none)"
            )));
        }
    }

    warnings.extend(
        all.iter()
            .zip(&active)
            .filter(|(_, a)| **a)
            .filter_map(|(p, _)| p.unhonoured.clone()),
    );
    // An active local service's variables; compose reads no env_file of a service its
    // profiles leave out.
    let project_env = |key: &str| (opts.env)(key).or_else(|| doc.dotenv.get(key).cloned());
    for (pending, _) in all.iter_mut().zip(&active).filter(|(_, a)| **a) {
        let plan = &mut pending.plan;
        if let (true, Some(source)) = (
            plan.backend != Backend::Container,
            doc.services.get(&plan.service),
        ) {
            let place = Place {
                file: &source.file,
                service: &plan.service,
            };
            plan.environment = crate::local::environment(
                &place,
                &source.body,
                &doc.project_dir,
                &project_env,
                &mut warnings,
            )?;
        }
    }

    // Dependencies, checked against every defined service, then against the active ones.
    for (pending, _) in all.iter().zip(&active).filter(|(_, a)| **a) {
        let name = pending.plan.service.as_str();
        let place = Place {
            file: &pending.file,
            service: name,
        };
        for dep in &pending.declared {
            if dep.name == name {
                return Err(place.error("depends on itself; remove it from its own depends_on"));
            }
            let Some(&target) = defined.get(dep.name.as_str()) else {
                let mut hint = similar::closest(&dep.name, defined.keys().copied())
                    .map(|c| format!(" (did you mean \"{c}\"?)"))
                    .unwrap_or_default();
                if !dep.required {
                    // `docker compose --profile … config` keeps such a dependency by name.
                    hint.push_str(
                        "; if this is `docker compose config` output, read it with --resolved",
                    );
                }
                return Err(place.error(format!(
                    "depends on \"{}\", which is not defined{hint}; define it or remove it from depends_on",
                    dep.name
                )));
            };
            if !active[target] && !dep.required {
                warnings.push(left_out_note(name, &dep.name));
            }
            if !active[target] && dep.required {
                let profiles = all[target].plan.profiles.join(", ");
                return Err(place.error(format!(
                    "depends on \"{}\", which is left out by its profiles ({profiles}); activate one with --profile, or mark the dependency `required: false`",
                    dep.name
                )));
            }
        }
    }

    // A service that a dependent waits for with `condition: service_completed_successfully` is
    // a one-shot job (a migration, a seed): done when it exits 0, as compose has it.
    let mut jobs: Vec<(usize, String)> = Vec::new();
    for (pending, _) in all.iter().zip(&active).filter(|(_, a)| **a) {
        for dep in pending.declared.iter().filter(|d| d.completes) {
            let target = defined[dep.name.as_str()];
            if active[target] {
                jobs.push((target, pending.plan.service.clone()));
            }
        }
    }
    for (target, dependent) in jobs {
        let job = &all[target];
        if job.plan.health.check == Check::Completed {
            continue;
        }
        let place = Place {
            file: &job.file,
            service: &job.plan.service,
        };
        if job.plan.backend == Backend::Start {
            return Err(place.error(ONE_SHOT_NEEDS_A_PROCESS));
        }
        if job.explicit_health {
            return Err(place.error(format!(
                "\"{dependent}\" waits for it to complete (`condition: service_completed_successfully`), but its x-hub.health checks it while it runs; make that `completed: true`, or change the condition"
            )));
        }
        all[target].plan.health.check = Check::Completed;
        // Its exit decides, not its healthcheck: nor does the healthcheck's deadline.
        if all[target].healthcheck_deadline {
            all[target].plan.timeout_ms = duration::to_ms(DEFAULT_TIMEOUT);
        }
    }

    // Index the active services densely; a dependency on an inactive one (soft) is dropped.
    let mut dense = vec![usize::MAX; all.len()];
    let mut next = 0;
    for (i, _) in active.iter().enumerate().filter(|(_, a)| **a) {
        dense[i] = next;
        next += 1;
    }
    let mut plans: Vec<Plan> = Vec::with_capacity(next);
    let mut edges: Vec<Vec<usize>> = Vec::with_capacity(next);
    for (pending, _) in all.into_iter().zip(&active).filter(|(_, a)| **a) {
        let mut plan = pending.plan;
        let mut service_edges = Vec::with_capacity(pending.declared.len());
        for dep in pending.declared {
            let target = dense[defined[dep.name.as_str()]];
            if target == usize::MAX {
                continue;
            }
            if dep.required {
                plan.deps.push(dep.name);
            } else {
                plan.soft_deps.push(dep.name);
            }
            service_edges.push(target);
        }
        plan.deps.sort_unstable();
        plan.deps.dedup();
        plan.soft_deps.sort_unstable();
        plan.soft_deps.dedup();
        service_edges.sort_unstable();
        service_edges.dedup();
        edges.push(service_edges);
        plans.push(plan);
    }
    let levels = graph::levels(&edges).map_err(|cycle| {
        let path: Vec<&str> = cycle.iter().map(|&i| plans[i].service.as_str()).collect();
        let file = doc
            .services
            .get(path[0])
            .map_or("compose file", |s| s.file.as_str());
        Error::input(format!(
            "{file}: dependency cycle: {}; remove one of these depends_on entries",
            path.join(" -> ")
        ))
    })?;
    for (plan, level) in plans.iter_mut().zip(levels) {
        plan.level = level;
    }
    let classes: HashMap<&str, Class> = plans
        .iter()
        .map(|p| (p.service.as_str(), p.class))
        .collect();
    for plan in plans.iter().filter(|p| p.class == Class::Core) {
        for dep in &plan.deps {
            let dep_class = classes.get(dep.as_str()).copied().unwrap_or(Class::Core);
            if dep_class != Class::Core {
                warnings.push(format!(
                    "service \"{}\" is CORE but hard-depends on \"{dep}\", which is {dep_class}: if \"{dep}\" fails, \"{}\" cannot start and the deploy fails; make \"{dep}\" core or the dependency `required: false`",
                    plan.service, plan.service
                ));
            }
        }
    }
    plans.sort_by(|a, b| (a.level, &a.service).cmp(&(b.level, &b.service)));
    let project = project_name(doc, opts);
    for plan in &mut plans {
        plan.project.clone_from(&project);
    }
    Ok(Resolved { plans, warnings })
}
