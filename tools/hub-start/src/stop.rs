//! `hub-start --stop`: teardown, the dual of starting. Reads plans (from
//! `hub-levels --reverse`, so dependents stop before what they depend on) and stops each
//! service through the backend that started it.
//!
//! A service stops by its `x-hub.stop` command when it has one; a `run` service's process
//! group (from its pid file) is then TERMed, and KILLed after a grace; a container service is
//! stopped and removed with compose. The services of one level stop in parallel.

use crate::launch::Paths;
use hub::container::{self, ComposeCmd};
use hub::deploylock::{DeployLock, StateLock};
use hub::output::RecordWriter;
use hub::pidfile::{self, GroupStop, Recorded};
use hub::process::Identity;
use hub::process::{self, Finished};
use hub::records::{Backend, Plan, Record, StopMethod, Subject};
use hub::swarm;
use hub::{Result, log};
use std::path::Path;
use std::time::Duration;

/// How long an `x-hub.stop` command may run.
const STOP_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What stopping one service did.
pub(crate) struct Stopped {
    service: String,
    method: StopMethod,
    /// Stopped (or was not running).
    pub(crate) ok: bool,
    /// One line for humans.
    pub(crate) message: String,
}

/// Stop every service whose plan is on stdin; exit 0 when all stopped, 1 when one did not.
pub fn run(state_dir: &Path, grace: Duration, compose_cmd: Option<&str>) -> Result<u8> {
    let plans: Vec<(String, Plan)> = hub::records::read_plans(std::io::stdin().lock(), "stdin")?
        .into_iter()
        .map(|(run_id, plan)| (run_id.unwrap_or_default(), plan))
        .collect();
    let compose = if plans
        .iter()
        .any(|(_, p)| matches!(p.backend, Backend::Container | Backend::Swarm))
    {
        Some(ComposeCmd::detect(compose_cmd)?)
    } else {
        None
    };
    let mut out = RecordWriter::stdout();
    let mut all_ok = true;
    let mut out_closed = false;
    // Consecutive plans of one level stop together.
    let mut start = 0;
    while start < plans.len() {
        let level = plans[start].1.level;
        let end = plans[start..]
            .iter()
            .position(|(_, p)| p.level != level)
            .map_or(plans.len(), |n| start + n);
        let batch = &plans[start..end];
        let results: Vec<Stopped> = std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .iter()
                .map(|(_, plan)| scope.spawn(|| stop_one(plan, state_dir, grace, compose.as_ref())))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for (stopped, (run_id, plan)) in results.iter().zip(batch) {
            all_ok &= stopped.ok;
            if stopped.ok {
                log::success(&format!(
                    "{} stopped ({})",
                    stopped.service, stopped.message
                ));
            } else {
                log::error(&format!(
                    "{} did not stop: {}",
                    stopped.service, stopped.message
                ));
            }
            let record = Record::Stopped(hub::records::Stopped {
                of: Subject {
                    service: stopped.service.clone(),
                    class: plan.class,
                    level: plan.level,
                },
                method: stopped.method,
                ok: stopped.ok,
                message: stopped.message.clone(),
            });
            // A reader that went away (`hub-down | head`) must not stop the teardown.
            if !out_closed {
                let run_id = (!run_id.is_empty()).then_some(run_id.as_str());
                out_closed = out.emit(run_id, record).is_err();
            }
        }
        start = end;
    }
    if let Some(cmd) = &compose {
        all_ok &= remove_stacks(&plans, cmd);
    }
    Ok(if all_ok {
        hub::error::exit::OK
    } else {
        hub::error::exit::NO
    })
}

/// How long `--stop` waits at least for a running deploy it has signalled to let go.
const DEPLOY_STOP_WAIT: Duration = Duration::from_secs(60);

/// Take the state dir's lock for a teardown. A deploy still running there is stopped first
/// (TERM to the holder, only while it is the process that wrote its name into the lock file),
/// and waited for: otherwise it would go on starting what we stop.
pub fn stop_running_deploy(lock: &StateLock, wait: Duration) -> Result<DeployLock> {
    if let Some(held) = lock.try_acquire(Duration::ZERO)? {
        return Ok(held);
    }
    match lock.holder().filter(Identity::is_running) {
        Some(holder) => {
            log::warn(&format!(
                "a deploy (pid {}) is running on this state dir: stopping it first",
                holder.pid
            ));
            // The holder alone, not its group: that is the shell that ran the deploy.
            let _ = holder.signal(nix::sys::signal::Signal::SIGTERM);
        }
        None => log::warn(&format!(
            "{} is held by a process that did not name itself: waiting for it",
            lock.path().display()
        )),
    }
    lock.acquire(wait.max(DEPLOY_STOP_WAIT))
}

pub(crate) fn stop_one(
    plan: &Plan,
    state_dir: &Path,
    grace: Duration,
    compose: Option<&ComposeCmd>,
) -> Stopped {
    let stopped = |method, ok, message: String| Stopped {
        service: plan.service.clone(),
        method,
        ok,
        message,
    };
    let paths = match Paths::new(state_dir, &plan.service) {
        Ok(paths) => paths,
        Err(e) => {
            return stopped(
                StopMethod::None,
                false,
                format!("state folder {}: {e}", state_dir.display()),
            );
        }
    };
    let mut notes = Vec::new();
    let mut method = StopMethod::None;
    if let Some(spec) = &plan.stop {
        method = StopMethod::Stop;
        let mut cmd = match spec.to_command_in(plan.working_dir.as_deref(), &plan.environment) {
            Ok(cmd) => cmd,
            Err(e) => return stopped(method, false, format!("cannot run `{spec}`: {e}")),
        };
        cmd.stdin(std::process::Stdio::null());
        if let Ok(log) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&paths.log)
        {
            if let Ok(copy) = log.try_clone() {
                cmd.stdout(copy);
            }
            cmd.stderr(log);
        }
        match process::run_with_timeout(&mut cmd, STOP_COMMAND_TIMEOUT, Duration::from_secs(2)) {
            Ok(Finished::Exited(0)) => notes.push(format!("`{spec}` ran")),
            Ok(Finished::Exited(code)) => {
                return stopped(method, false, format!("`{spec}` exited with status {code}"));
            }
            Ok(Finished::TimedOut) => {
                return stopped(method, false, format!("`{spec}` did not return within 60s"));
            }
            Err(e) => return stopped(method, false, format!("cannot run `{spec}`: {e}")),
        }
    }
    match plan.backend {
        Backend::Run => match signal_pid_file(&paths, grace) {
            Ok(Some(note)) => {
                if method != StopMethod::Stop {
                    method = StopMethod::Signal;
                }
                notes.push(note);
            }
            Ok(None) => notes.push("not running".into()),
            Err(message) => return stopped(StopMethod::Signal, false, message),
        },
        Backend::Container if plan.stop.is_none() => {
            method = StopMethod::Container;
            let Some(cmd) = compose else {
                return stopped(method, false, "no compose command".into());
            };
            let compose_ref = plan.compose.clone().unwrap_or_default();
            match container::stop_and_remove(cmd, &compose_ref, &plan.service) {
                Ok(()) => notes.push("container stopped and removed".into()),
                Err(failure) => return stopped(method, false, failure.message),
            }
        }
        Backend::Swarm if plan.stop.is_none() => {
            method = StopMethod::Swarm;
            let (Some(cmd), Some(stack)) = (compose, plan_stack(plan)) else {
                return stopped(method, false, "no compose command or no stack".into());
            };
            match swarm::remove_service(cmd, stack, &plan.service, SWARM_GONE_WAIT) {
                Ok(true) => notes.push(format!(
                    "Swarm service {} removed",
                    swarm::service_name(stack, &plan.service)
                )),
                Ok(false) => notes.push("not deployed".into()),
                Err(failure) => return stopped(method, false, failure.message),
            }
        }
        Backend::Start if plan.stop.is_none() => {
            return stopped(
                StopMethod::None,
                true,
                "no x-hub.stop: nothing to stop it with, left as is".into(),
            );
        }
        _ => {}
    }
    stopped(method, true, notes.join("; "))
}

/// How long a Swarm teardown waits for the engine to let go of a service or a stack.
const SWARM_GONE_WAIT: Duration = Duration::from_secs(60);

fn plan_stack(plan: &Plan) -> Option<&str> {
    plan.compose.as_ref().and_then(|c| c.stack.as_deref())
}

/// Once every service of a Swarm stack is removed, dependents first, the stack goes
/// (`docker stack rm`: its networks, configs, secrets), waited for until nothing of it is
/// left. True when every stack is gone.
fn remove_stacks(plans: &[(String, Plan)], cmd: &ComposeCmd) -> bool {
    let stacks: std::collections::BTreeSet<&str> = plans
        .iter()
        .filter(|(_, p)| p.backend == Backend::Swarm)
        .filter_map(|(_, p)| plan_stack(p))
        .collect();
    let mut ok = true;
    for stack in stacks {
        match swarm::remove_stack(cmd, stack, SWARM_GONE_WAIT) {
            Ok(()) => log::success(&format!("Swarm stack {stack} removed")),
            Err(failure) => {
                ok = false;
                log::error(&format!("Swarm stack {stack}: {}", failure.message));
            }
        }
    }
    ok
}

/// Stop the process group in a `run` service's pid file (TERM, KILL after `grace`) when it is
/// still the process recorded, then remove the file.
fn signal_pid_file(paths: &Paths, grace: Duration) -> std::result::Result<Option<String>, String> {
    let identity = match pidfile::read(&paths.pid).map_err(|e| e.to_string())? {
        None => return Ok(None),
        Some(Recorded::PidOnly(pid)) => {
            return Err(format!(
                "{} holds pid {pid} without its start time (written by an older hub), so it \
                 cannot be told from a reused pid; check `ps -o pid,lstart,args -g {pid}` and \
                 stop it by hand, then remove the file",
                paths.pid.display()
            ));
        }
        Some(Recorded::Known(identity)) => identity,
    };
    let pid = identity.pid;
    let note = match pidfile::stop_group(identity, grace)
        .map_err(|e| format!("stopping process group {pid}: {e}"))?
    {
        GroupStop::NotRunning => None,
        GroupStop::Recycled => Some(format!(
            "not running (pid {pid} now belongs to another process, left alone)"
        )),
        GroupStop::Terminated => Some(format!("process group {pid} terminated")),
        GroupStop::Killed => Some(format!(
            "process group {pid} killed after {}",
            hub::duration::human(grace)
        )),
    };
    let _ = std::fs::remove_file(&paths.pid);
    Ok(note)
}
