//! `hub-report status`: what a deployed stack is doing now, one row per service, for the
//! operator who comes back after the deploy (`scripts/hub-status`, like `docker compose ps`).
//!
//! A deploy leaves a state folder behind: pid files, logs, the breaker's state and
//! an events file per run. This reads them together with the stack's plans (from `hub-levels`),
//! probes every service once, concurrently, and says per service what state it is in now, next
//! to what the last deploy decided about it. Health is probed now, never read from the last
//! deploy: a service that died since is `exited`, not `healthy`.

use crate::cli::{StatusArgs, StatusFormat};
use crate::model::{Report, RunState};
use hub::container::{self, ComposeCmd};
use hub::jsonl::Policy;
use hub::probe::{Prober, Target};
use hub::records::{
    Backend, Check, LastDeploy, Plan, Record, ServiceState, ServiceStatus, Subject, Verdict,
};
use hub::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Healthy enough for the exit status: a service that is up and passes its check, or a
/// one-shot job that completed.
fn good(status: &ServiceStatus) -> bool {
    matches!(
        status.state,
        ServiceState::Healthy | ServiceState::Completed
    )
}

/// Run `hub-report status`.
pub fn run(args: &StatusArgs) -> Result<u8> {
    let state_dir = args.state_dir.resolve()?;
    let probe_timeout = args.probe_timeout;
    let plans: Vec<Plan> = hub::records::read_plans(std::io::stdin().lock(), "stdin")?
        .into_iter()
        .map(|(_, plan)| plan)
        .collect();
    if plans.is_empty() {
        return Err(Error::input(
            "no plan records on stdin; pipe the stack's plans in: hub-levels -f compose.yaml | hub-report status",
        ));
    }
    let compose = if plans
        .iter()
        .any(|p| matches!(p.backend, Backend::Container | Backend::Swarm))
    {
        ComposeCmd::detect(args.compose.compose_cmd.as_deref())
            .ok()
            .map(|c| c.with_timeout(probe_timeout.max(Duration::from_secs(5))))
    } else {
        None
    };
    let breaker_path = args.breaker_state.of_deploy(&state_dir);
    let breakers = breaker_states(&breaker_path);
    let last = last_deploy(&state_dir)?;
    let statuses: Vec<ServiceStatus> = std::thread::scope(|scope| {
        let handles: Vec<_> = plans
            .iter()
            .map(|plan| {
                let (state_dir, compose, last, breakers) =
                    (&state_dir, compose.as_ref(), last.as_ref(), &breakers);
                scope.spawn(move || {
                    let mut status = observe(plan, state_dir, compose, probe_timeout);
                    if let (Some((_, run)), Some(pid), ServiceState::Exited) =
                        (last, status.pid, status.state)
                    {
                        // hub-start said how its process exited, in an `exited` record.
                        status.exit_status = run.exit_status(&plan.service, pid);
                        if status.exit_status == Some(0)
                            && matches!(plan.health.check, Check::Completed)
                        {
                            status.state = ServiceState::Completed;
                        }
                    }
                    status.last_deploy =
                        last.and_then(|(report, _)| verdict(report, &plan.service));
                    status.breaker = breakers
                        .get(&hub::breaker::start_key(&plan.service))
                        .copied()
                        .unwrap_or(hub::breaker::State::Closed);
                    status
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let json = args.format == StatusFormat::Json;
    let mut out = hub::output::RecordWriter::stdout();
    if json {
        let run_id = last.as_ref().and_then(|(r, _)| r.run_id.as_deref());
        for status in statuses.iter().cloned() {
            out.emit(run_id, Record::ServiceStatus(Box::new(status)))?;
        }
    } else {
        out.text(&table(&statuses))?;
    }
    let all_core_good = statuses
        .iter()
        .filter(|s| s.of.class == hub::records::Class::Core)
        .all(good);
    Ok(if all_core_good {
        hub::error::exit::OK
    } else {
        hub::error::exit::NO
    })
}

/// The process a deploy recorded for a `run` service, and whether it runs now: the one place
/// that reads pid files here (through [`hub::pidfile`], which knows their format).
fn recorded_process(path: &Path) -> Option<(u32, bool, Option<u64>)> {
    match hub::pidfile::read(path).ok()?? {
        hub::pidfile::Recorded::Known(identity) => {
            let up_since = identity.age().and_then(|age| {
                let age = u64::try_from(age.as_millis()).ok()?;
                Some(hub::time::now_ms().saturating_sub(age))
            });
            Some((identity.pid, identity.is_running(), up_since))
        }
        // An older hub's bare pid: alive or not, hub cannot tell it is the same process.
        hub::pidfile::Recorded::PidOnly(pid) => Some((
            pid,
            hub::process::group_alive(pid) && !hub::process::process_exited(pid),
            modified_ms(path),
        )),
    }
}

fn modified_ms(path: &Path) -> Option<u64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let ms = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_millis();
    u64::try_from(ms).ok()
}

/// The newest events file's run, folded as the report folds it; None when there is none.
fn last_deploy(state_dir: &Path) -> Result<Option<(Report, RunState)>> {
    let events = state_dir.join("events");
    let Ok(entries) = std::fs::read_dir(&events) else {
        return Ok(None);
    };
    let newest = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max();
    let Some((_, path)) = newest else {
        return Ok(None);
    };
    let policy = Policy {
        strict: false,
        report_limit: 0,
    };
    let input = crate::read_run(&[path.display().to_string()], policy, None)?;
    Ok(input.state.map(|state| (state.report(), state)))
}

fn verdict(report: &Report, service: &str) -> Option<LastDeploy> {
    let s = report.services.iter().find(|s| s.service == service)?;
    Some(LastDeploy {
        run_id: report.run_id.clone(),
        status: s.status,
        attempts: s.attempts,
        reason: s.reason.clone(),
    })
}

/// Breaker key → its state; an unreadable state file reads as "no breaker open".
fn breaker_states(path: &Path) -> BTreeMap<String, hub::breaker::State> {
    let config = hub::breaker::Config::from_env(|k| std::env::var(k).ok());
    let (Ok(config), true) = (config, path.exists()) else {
        return BTreeMap::new();
    };
    hub::breaker::Breaker::new(path, config, std::sync::Arc::new(hub::clock::SystemClock))
        .status()
        .map(|keys| keys.into_iter().map(|(k, v)| (k, v.state)).collect())
        .unwrap_or_default()
}

/// Look at one service now: its process or container, and one probe.
fn observe(
    plan: &Plan,
    state_dir: &Path,
    compose: Option<&ComposeCmd>,
    probe_timeout: Duration,
) -> ServiceStatus {
    let log = state_dir.join("logs").join(format!("{}.log", plan.service));
    let mut status = ServiceStatus {
        of: Subject {
            service: plan.service.clone(),
            class: plan.class,
            level: plan.level,
        },
        backend: plan.backend,
        state: ServiceState::NeverStarted,
        exit_status: None,
        probe: None,
        pid: None,
        container: None,
        up_since: None,
        last_deploy: None,
        breaker: hub::breaker::State::Closed,
        log: matches!(plan.backend, Backend::Start | Backend::Run)
            .then(|| log.display().to_string()),
    };
    let timeout = probe_timeout.min(Duration::from_millis(plan.health.probe_timeout_ms.max(1)));
    match plan.backend {
        Backend::Run => {
            let pid_file = state_dir.join("pids").join(format!("{}.pid", plan.service));
            match recorded_process(&pid_file) {
                None if log.exists() => status.state = ServiceState::Stopped,
                None => {}
                Some((pid, running, up_since)) => {
                    status.pid = Some(pid);
                    status.up_since = up_since;
                    if running {
                        alive_state(&mut status, &plan.health.check, timeout);
                    } else {
                        // Its exit status, when known, comes from the last deploy's records.
                        status.state = ServiceState::Exited;
                    }
                }
            }
        }
        Backend::Start => {
            if log.exists() {
                status.up_since = modified_ms(&log);
                alive_state(&mut status, &plan.health.check, timeout);
            }
        }
        Backend::Container => {
            if let Some(cmd) = compose {
                container_state(&mut status, plan, cmd, timeout);
            } else {
                status.probe = Some("no compose command found".into());
            }
        }
        Backend::Swarm => match (
            compose,
            plan.compose.as_ref().and_then(|c| c.stack.as_deref()),
        ) {
            (Some(cmd), Some(stack)) => swarm_state(&mut status, plan, cmd, stack),
            _ => status.probe = Some("no compose command or no Swarm stack".into()),
        },
    }
    status
}

/// A Swarm service: its tasks, judged as `hub-wait-healthy` judges them.
fn swarm_state(status: &mut ServiceStatus, plan: &Plan, cmd: &ComposeCmd, stack: &str) {
    use hub::swarm::{self, Assessment, Judge};
    let snapshot = match swarm::snapshot(cmd, stack) {
        Ok(snapshot) => snapshot,
        Err(e) => {
            status.probe = Some(e.to_string());
            return;
        }
    };
    let full = swarm::service_name(stack, &plan.service);
    status.container = snapshot
        .services
        .iter()
        .find(|s| s.name == full)
        .map(|s| s.id.clone());
    let judge = Judge {
        check: &plan.health.check,
        since_ms: u64::MAX,
        now_ms: hub::time::now_ms(),
    };
    let (state, probe) = match swarm::assess(&snapshot, &full, &judge).0 {
        Assessment::Missing => return,
        Assessment::Healthy { tasks } if plan.health.check == Check::Completed => (
            ServiceState::Completed,
            format!("{} tasks completed", tasks.len()),
        ),
        Assessment::Healthy { tasks } => (
            ServiceState::Healthy,
            format!("{} tasks healthy", tasks.len()),
        ),
        Assessment::Pending(summary) => (ServiceState::Unhealthy, summary),
        Assessment::TaskFailed { error, .. } | Assessment::Unplaceable(error) => {
            (ServiceState::Unhealthy, error)
        }
    };
    status.state = state;
    status.probe = Some(probe);
}

/// A process that is up: one probe decides healthy or unhealthy; without a check it is running.
fn alive_state(status: &mut ServiceStatus, check: &Check, timeout: Duration) {
    status.state = ServiceState::Running;
    let Ok(prober) = Prober::new(check, &Target::default(), timeout) else {
        return;
    };
    if !prober.checks_anything() {
        return;
    }
    let outcome = prober.probe();
    status.state = if outcome.is_ok() {
        ServiceState::Healthy
    } else {
        ServiceState::Unhealthy
    };
    status.probe = Some(outcome.detail().to_owned());
}

/// A container service: what the engine says, and for `exec` checks one `docker exec` probe.
fn container_state(status: &mut ServiceStatus, plan: &Plan, cmd: &ComposeCmd, timeout: Duration) {
    let compose = plan.compose.clone().unwrap_or_default();
    let id = match container::container_id(cmd, &compose, &plan.service) {
        Ok(Some(id)) => id,
        Ok(None) => return,
        Err(e) => {
            status.probe = Some(e.to_string());
            return;
        }
    };
    status.container = Some(id.clone());
    let state = match container::inspect(cmd, &id) {
        Ok(Some(state)) => state,
        Ok(None) => return,
        Err(e) => {
            status.probe = Some(e.to_string());
            return;
        }
    };
    status.up_since = humantime::parse_rfc3339_weak(state.started_at.trim_end_matches('Z'))
        .ok()
        .or_else(|| humantime::parse_rfc3339(&state.started_at).ok())
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_millis()).ok());
    if !state.is_up() {
        status.exit_status = Some(state.exit_code);
        status.state = match (&plan.health.check, state.exit_code) {
            (Check::Completed, 0) => ServiceState::Completed,
            _ if state.status == "created" => ServiceState::Stopped,
            _ => ServiceState::Exited,
        };
        return;
    }
    match (&plan.health.check, &state.health) {
        (Check::Exec { test }, _) => {
            let passed = matches!(
                container::exec_probe(cmd, &id, test, timeout),
                Ok(container::ProbeResult::Passed)
            );
            status.state = if passed {
                ServiceState::Healthy
            } else {
                ServiceState::Unhealthy
            };
            status.probe = Some(if passed { "exec passed" } else { "exec failed" }.into());
        }
        (_, Some(health)) => {
            status.state = if health.status == "healthy" {
                ServiceState::Healthy
            } else {
                ServiceState::Unhealthy
            };
            status.probe = Some(format!("container {}", health.status));
        }
        (Check::Completed, None) => status.state = ServiceState::Running,
        (_, None) => {
            // A container without a healthcheck counts as healthy once running, as hub-wait-healthy
            // counts it after its grace.
            status.state = ServiceState::Healthy;
            status.probe = Some("running (no healthcheck)".into());
        }
    }
}

/// The human table, one row per service, in plan order (by level).
fn table(statuses: &[ServiceStatus]) -> String {
    let now = hub::time::now_ms();
    let rows: Vec<[String; 8]> = statuses
        .iter()
        .map(|s| {
            let state = match (s.state, s.exit_status, &s.probe) {
                (ServiceState::Exited, Some(code), _) => format!("exited {code}"),
                (ServiceState::Running, _, None) => "running (no check)".into(),
                (ServiceState::Unhealthy, _, Some(probe)) => format!("unhealthy ({probe})"),
                (ServiceState::NeverStarted, _, _) => "never started".into(),
                (state, _, _) => state.as_str().into(),
            };
            let id = match (s.pid, &s.container) {
                (Some(pid), _) => pid.to_string(),
                (None, Some(c)) => c.chars().take(12).collect(),
                _ => "-".into(),
            };
            let up = match (s.state, s.up_since) {
                (
                    ServiceState::Healthy | ServiceState::Unhealthy | ServiceState::Running,
                    Some(since),
                ) => {
                    let secs = now.saturating_sub(since) / 1000;
                    if secs < 60 {
                        format!("{secs}s")
                    } else {
                        hub::duration::human(Duration::from_secs(secs))
                    }
                }
                _ => "-".into(),
            };
            let last = s.last_deploy.as_ref().map_or("-".into(), |d| {
                let status = d.status.as_str();
                if d.attempts == 0 && d.status == Verdict::Healthy {
                    // Skipped as already healthy: that deploy did not start it.
                    return "already healthy".to_owned();
                }
                format!(
                    "{status}, {} attempt{}",
                    d.attempts,
                    if d.attempts == 1 { "" } else { "s" }
                )
            });
            [
                s.of.service.clone(),
                s.of.class.as_str().to_owned(),
                s.of.level.to_string(),
                state,
                id,
                up,
                last,
                s.breaker.as_str().to_owned(),
            ]
        })
        .collect();
    let headers = [
        "SERVICE",
        "CLASS",
        "LEVEL",
        "STATE",
        "PID/CONTAINER",
        "UP",
        "LAST DEPLOY",
        "BREAKER",
    ];
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>, log: &str| {
        for (cell, w) in cells.iter().zip(&widths) {
            out.push_str(cell);
            out.push_str(&" ".repeat(w - cell.chars().count() + 2));
        }
        out.push_str(log);
        out.push('\n');
    };
    line(headers.to_vec(), "LOG");
    for (row, s) in rows.iter().zip(statuses) {
        let log = s.log.as_ref().map_or("-".into(), Clone::clone);
        line(row.iter().map(String::as_str).collect(), &log);
    }
    out
}
