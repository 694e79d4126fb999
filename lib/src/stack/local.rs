//! What compose gives a service, given to the same service when hub runs it as a local process
//! (`x-hub.start` / `x-hub.run`) instead of a container: the folder it runs in, its
//! `environment` and `env_file` variables, its compose `healthcheck` as its probe, and a warning
//! naming every key compose would act on that hub cannot honour for a process.
//!
//! A stack written for compose then means the same under hub: `run: ./migrate.sh` runs from the
//! project directory wherever `hub-deploy` was started, and the variables a container would see
//! are the ones the process sees. The environment rules are compose-go's
//! (`WithServicesEnvironmentResolved`), checked against `docker compose config` v2.40.3 in
//! `tests/local_services.rs`.

use crate::command::CommandSpec;
use crate::records::{Check, Environment, HealthSpec};
use crate::service::Place;
use crate::{Result, duration};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The keys `healthcheck` may hold (compose refuses others too).
const HEALTHCHECK_KEYS: [&str; 7] = [
    "test",
    "interval",
    "timeout",
    "start_period",
    "start_interval",
    "retries",
    "disable",
];
/// The keys an `env_file` entry may hold (`format` is refused by name: hub reads only compose's
/// default format).
const ENV_FILE_KEYS: [&str; 3] = ["path", "required", "format"];

/// Compose's (the engine's) defaults for what a healthcheck leaves out.
const COMPOSE_INTERVAL: Duration = Duration::from_secs(30);
const COMPOSE_TIMEOUT: Duration = Duration::from_secs(30);
const COMPOSE_RETRIES: u32 = 3;

/// Keys hub honours for a local process: its ordering, selection and class, and what this
/// module turns into the process's folder, variables and probe.
const HONOURED: [&str; 8] = [
    "depends_on",
    "profiles",
    "labels",
    "environment",
    "env_file",
    "working_dir",
    "healthcheck",
    "x-hub",
];
/// Keys about what compose would run, which `x-hub.start` / `x-hub.run` replaces by design.
const REPLACED: [&str; 7] = [
    "image",
    "build",
    "command",
    "entrypoint",
    "container_name",
    "pull_policy",
    "platform",
];

/// The folder a local service's commands run in, absolute: its `working_dir` resolved against
/// the project directory, else the project directory itself.
pub(crate) fn working_dir(
    place: &Place<'_>,
    body: &Map<String, Value>,
    project_dir: &Path,
) -> Result<String> {
    let dir = match body.get("working_dir") {
        None | Some(Value::Null) => project_dir.to_path_buf(),
        Some(Value::String(dir)) if !dir.is_empty() => {
            crate::compose::clean(&project_dir.join(dir))
        }
        Some(other) => {
            return Err(place.error(format!(
                "working_dir: must be a folder (absolute, or relative to the project directory), found {other}"
            )));
        }
    };
    Ok(dir.display().to_string())
}

/// The variables compose gives the service: `env_file` entries in order (a later file wins),
/// then `environment` over them. A name written without a value takes it from the project's
/// environment (`project_env`: the process environment, then `.env`); found nowhere, it is
/// unset (`None`), even if an `env_file` set it, as compose has it. A variable an env file
/// reads while it is set nowhere is warned about into `warnings`, as compose warns.
pub(crate) fn environment(
    place: &Place<'_>,
    body: &Map<String, Value>,
    project_dir: &Path,
    project_env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Environment> {
    let mut declared = declared_environment(place, body.get("environment"))?;
    for (key, value) in &mut declared {
        if value.is_none() {
            *value = project_env(key);
        }
    }
    // compose parses every file into one map that already holds `environment` and the earlier
    // files, and looks a `${NAME}` up in the project's environment, then in `environment`,
    // then in that map: the chain's starting entries.
    let start: Vec<(String, String)> = declared
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
        .collect();
    let lookup = |name: &str| project_env(name).or_else(|| declared.get(name).cloned().flatten());
    let mut merged: BTreeMap<String, String> = start.iter().cloned().collect();
    let files = env_files(place, body.get("env_file"), project_dir)?;
    if let Some((missing, _)) = files
        .iter()
        .find(|(path, required)| *required && !path.exists())
    {
        return Err(place.error(format!(
            "env_file {} not found; create it, fix the path (relative to the project directory), or mark it `required: false`",
            missing.display()
        )));
    }
    if !files.is_empty() {
        let entries = crate::dotenv::read_chain_onto(&files, &lookup, start, warnings)
            .map_err(|e| place.error(format!("env_file {}", e.message())))?;
        merged.extend(entries);
    }
    let mut environment: Environment = merged.into_iter().map(|(k, v)| (k, Some(v))).collect();
    environment.extend(declared);
    Ok(environment)
}

/// `environment` in both forms: `["KEY=VALUE", "KEY"]` and `{KEY: VALUE, KEY: }`.
fn declared_environment(place: &Place<'_>, value: Option<&Value>) -> Result<Environment> {
    match value {
        None | Some(Value::Null) => Ok(Environment::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(match text.split_once('=') {
                    Some((key, value)) => (key.to_owned(), Some(value.to_owned())),
                    None => (text.clone(), None),
                }),
                other => Err(place.error(format!(
                    "environment: list items must be \"KEY=VALUE\" or \"KEY\" strings, found {other}"
                ))),
            })
            .collect(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(key, value)| match value {
                Value::String(text) => Ok((key.clone(), Some(text.clone()))),
                Value::Number(_) | Value::Bool(_) => Ok((key.clone(), Some(value.to_string()))),
                Value::Null => Ok((key.clone(), None)),
                other => Err(place.error(format!(
                    "environment.{key}: must be a string, a number or a boolean, found {other}"
                ))),
            })
            .collect(),
        Some(other) => Err(place.error(format!(
            "environment: must be a list of \"KEY=VALUE\" or a mapping, found {other}"
        ))),
    }
}

/// `env_file` as a string, a list of strings, or a list of `{path, required}`: each path made
/// absolute against the project directory, with whether it must exist (default: yes).
fn env_files(
    place: &Place<'_>,
    value: Option<&Value>,
    project_dir: &Path,
) -> Result<Vec<(PathBuf, bool)>> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items.as_slice(),
        Some(one) => std::slice::from_ref(one),
    };
    items
        .iter()
        .map(|item| {
            let (path, required) = match item {
                Value::String(path) => (path, true),
                Value::Object(entry) => {
                    place.check_keys(entry, &ENV_FILE_KEYS, "an env_file entry")?;
                    if let Some(format) = entry.get("format") {
                        return Err(place.error(format!(
                            "env_file format {format}: hub reads env files in compose's default format only; drop `format`, or let compose resolve the file (`docker compose config | hub-levels -f -`)"
                        )));
                    }
                    let path = match entry.get("path") {
                        Some(Value::String(path)) => path,
                        _ => {
                            return Err(place.error(
                                "env_file: an entry needs `path:`, the file (relative to the project directory)",
                            ));
                        }
                    };
                    let required = match entry.get("required") {
                        None => true,
                        Some(Value::Bool(b)) => *b,
                        Some(other) => {
                            return Err(place.error(format!(
                                "env_file {path}: required must be true or false, found {other}"
                            )));
                        }
                    };
                    (path, required)
                }
                other => {
                    return Err(place.error(format!(
                        "env_file: must be a path, a list of paths, or a list of {{path, required}}, found {other}"
                    )));
                }
            };
            Ok((project_dir.join(path), required))
        })
        .collect()
}

/// A compose `healthcheck.test` as a command: `["CMD", …]` runs directly, `["CMD-SHELL", …]`
/// and a plain string by `sh -c`; `["NONE"]` is no command (`Ok(None)`).
pub(crate) fn healthcheck_test(test: &Value) -> std::result::Result<Option<CommandSpec>, String> {
    const FORMS: &str =
        "healthcheck.test must be [\"CMD\", …], [\"CMD-SHELL\", \"…\"], [\"NONE\"] or a string";
    match test {
        Value::String(text) if !text.trim().is_empty() => {
            Ok(Some(CommandSpec::Shell(text.clone())))
        }
        Value::Array(items) => {
            let words: Vec<String> = items
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or(FORMS))
                .collect::<std::result::Result<_, _>>()?;
            match words.split_first() {
                Some((first, [])) if first == "NONE" => Ok(None),
                Some((first, rest)) if first == "CMD" && !rest.is_empty() => {
                    Ok(Some(CommandSpec::Argv(rest.to_vec())))
                }
                Some((first, rest)) if first == "CMD-SHELL" && !rest.is_empty() => {
                    Ok(Some(CommandSpec::Shell(rest.join(" "))))
                }
                _ => Err(FORMS.to_owned()),
            }
        }
        _ => Err(FORMS.to_owned()),
    }
}

/// A local service's health from its compose `healthcheck`, and the deadline compose would
/// give it.
pub(crate) struct FromHealthcheck {
    /// The check on hub's schedule.
    pub health: HealthSpec,
    /// When compose would call it unhealthy: `start_period + retries × interval` (none when
    /// the check is disabled).
    pub deadline: Option<Duration>,
}

/// The compose `healthcheck` of a local service as hub's health check: its test run as a
/// `cmd` probe (in the service's folder, with its variables); `disable: true` or `["NONE"]` as
/// no check. `interval` caps the probe gaps (hub's 500 ms when unset: hub probes at once and
/// often, instead of after a first interval); `timeout` bounds each probe (compose's 30 s when
/// unset); `start_period` is kept; `retries` sets the deadline compose would give it. `Ok(None)`
/// when it has no test (compose would take the image's, which a process has not).
pub(crate) fn from_healthcheck(
    place: &Place<'_>,
    healthcheck: &Value,
) -> Result<Option<FromHealthcheck>> {
    let Value::Object(spec) = healthcheck else {
        return Err(place.error(format!(
            "healthcheck: must be a mapping (test, interval, timeout, start_period, retries), found {healthcheck}"
        )));
    };
    place.check_keys(spec, &HEALTHCHECK_KEYS, "healthcheck")?;
    let disabled = match spec.get("disable") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(other) => {
            return Err(place.error(format!(
                "healthcheck.disable: must be true or false, found {other}"
            )));
        }
    };
    let test = match (disabled, spec.get("test")) {
        (true, _) => None,
        (false, None) => return Ok(None),
        (false, Some(test)) => {
            healthcheck_test(test).map_err(|e| place.error(format!("{e}, found {test}")))?
        }
    };
    let Some(cmd) = test else {
        return Ok(Some(FromHealthcheck {
            health: HealthSpec {
                check: Check::None,
                interval_ms: duration::to_ms(crate::service::DEFAULT_CMD_INTERVAL),
                probe_timeout_ms: duration::to_ms(crate::service::DEFAULT_PROBE_TIMEOUT),
                start_period_ms: 0,
            },
            deadline: None,
        }));
    };
    // Zero means "the default" to the engine.
    let get = |key: &str| -> Result<Option<Duration>> {
        spec.get(key)
            .map(|v| place.duration(v, &format!("healthcheck.{key}")))
            .transpose()
            .map(|d| d.filter(|d| !d.is_zero()))
    };
    let interval = get("interval")?;
    let timeout = get("timeout")?.unwrap_or(COMPOSE_TIMEOUT);
    let start_period = get("start_period")?.unwrap_or(Duration::ZERO);
    let retries = match spec.get("retries") {
        None => COMPOSE_RETRIES,
        Some(value) => {
            let retries = value
                .as_u64()
                .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    place.error(format!(
                        "healthcheck.retries: must be a whole number, found {value}"
                    ))
                })?;
            if retries == 0 {
                COMPOSE_RETRIES
            } else {
                retries
            }
        }
    };
    Ok(Some(FromHealthcheck {
        health: HealthSpec {
            check: Check::Cmd { cmd },
            interval_ms: duration::to_ms(interval.unwrap_or(crate::service::DEFAULT_CMD_INTERVAL)),
            probe_timeout_ms: duration::to_ms(timeout),
            start_period_ms: duration::to_ms(start_period),
        },
        deadline: Some(start_period + interval.unwrap_or(COMPOSE_INTERVAL) * retries),
    }))
}

/// The keys of a local service that compose would act on and hub does not (`ports`,
/// `volumes`, `restart`, …), sorted; `healthcheck` too when hub cannot use it.
pub(crate) fn unhonoured(body: &Map<String, Value>, healthcheck_used: bool) -> Vec<&str> {
    body.keys()
        .map(String::as_str)
        .filter(|key| !key.starts_with("x-"))
        .filter(|key| !REPLACED.contains(key))
        .filter(|key| !HONOURED.contains(key) || (*key == "healthcheck" && !healthcheck_used))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn place() -> Place<'static> {
        Place {
            file: "compose.yaml",
            service: "app",
        }
    }

    #[test]
    fn test_forms() {
        let argv = healthcheck_test(&json!(["CMD", "pg_isready", "-q"])).unwrap();
        assert_eq!(
            argv,
            Some(CommandSpec::Argv(vec!["pg_isready".into(), "-q".into()]))
        );
        let shell = healthcheck_test(&json!(["CMD-SHELL", "curl -f x || exit 1"])).unwrap();
        assert_eq!(
            shell,
            Some(CommandSpec::Shell("curl -f x || exit 1".into()))
        );
        let plain = healthcheck_test(&json!("test -f ready")).unwrap();
        assert_eq!(plain, Some(CommandSpec::Shell("test -f ready".into())));
        assert_eq!(healthcheck_test(&json!(["NONE"])).unwrap(), None);
        for bad in [
            json!([]),
            json!(["CMD"]),
            json!(["RUN", "x"]),
            json!(3),
            json!(""),
        ] {
            assert!(healthcheck_test(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schedule_and_deadline() {
        let spec = json!({"test": "true", "interval": "2s", "timeout": "5s", "start_period": "10s", "retries": 4});
        let got = from_healthcheck(&place(), &spec).unwrap().unwrap();
        assert_eq!(got.health.interval_ms, 2000);
        assert_eq!(got.health.probe_timeout_ms, 5000);
        assert_eq!(got.health.start_period_ms, 10_000);
        assert_eq!(got.deadline, Some(Duration::from_secs(18)));
        // Compose's defaults for the deadline and the probe timeout; hub's for the gaps.
        let got = from_healthcheck(&place(), &json!({"test": "true"}))
            .unwrap()
            .unwrap();
        assert_eq!(got.health.interval_ms, 500);
        assert_eq!(got.health.probe_timeout_ms, 30_000);
        assert_eq!(got.deadline, Some(Duration::from_secs(90)));
        let off = from_healthcheck(&place(), &json!({"test": "true", "disable": true}))
            .unwrap()
            .unwrap();
        assert_eq!(off.health.check, Check::None);
        assert_eq!(off.deadline, None);
        assert!(
            from_healthcheck(&place(), &json!({"interval": "1s"}))
                .unwrap()
                .is_none()
        );
        let err = from_healthcheck(&place(), &json!({"test": "x", "retires": 3}))
            .err()
            .unwrap();
        assert!(err.message().contains("did you mean `retries`"), "{err}");
    }

    #[test]
    fn unhonoured_keys() {
        let body = json!({"image": "x", "ports": ["80"], "x-hub": {}, "x-other": 1, "restart": "always", "environment": [], "healthcheck": {}});
        let Value::Object(body) = body else { panic!() };
        assert_eq!(unhonoured(&body, true), ["ports", "restart"]);
        assert_eq!(
            unhonoured(&body, false),
            ["healthcheck", "ports", "restart"]
        );
    }
}
