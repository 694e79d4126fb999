//! The JSON-lines records the tools exchange: the contract documented in `docs/records.md`.
//!
//! Every record is one JSON object on one line with a `type` field. Tools that pass records
//! through re-emit the original line untouched, so fields a tool does not know survive the
//! pipeline. The structs here are what hub's own tools write; readers decode with serde and
//! ignore fields they do not know.

use crate::command::CommandSpec;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A service's class: what its failure means for the deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
}

/// A local service's variables, as compose resolves them: a name with `None` is unset (compose's
/// bare `KEY` that found no value, which overrides an `env_file`'s value).
pub type Environment = BTreeMap<String, Option<String>>;

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
    /// Backends `start` and `run`: the folder their commands (start, run, stop, health) run
    /// in, absolute: the project directory, or the service's `working_dir` resolved against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Backends `start` and `run`: what the service's `environment` and `env_file` give its
    /// commands on top of the inherited environment; `None` unsets a variable.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: Environment,
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
    pub outcome: String,
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

/// Does an HTTP status match a spec such as `200-399`, `200,204` or `200`?
///
/// An invalid spec is an error naming what is wrong, so `hub-levels` can refuse it early.
pub fn status_matches(spec: &str, status: u16) -> Result<bool, String> {
    let mut matched = false;
    for part in spec.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim(), hi.trim()),
            None => (part, part),
        };
        let parse = |t: &str| {
            t.parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| format!("`{spec}` is not a status list such as 200-399 or 200,204"))
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo > hi {
            return Err(format!("`{part}`: the range is backwards"));
        }
        matched |= (lo..=hi).contains(&status);
    }
    Ok(matched)
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
        .map_err(|e| Error::input(format!("cannot encode a {kind} record: {e}")))?;
    let Some(fields) = fields.strip_prefix('{') else {
        return Err(Error::input(format!(
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
}
