//! `hub-start --stop`: teardown, the dual of starting. Reads plans (from
//! `hub-levels --reverse`, so dependents stop before what they depend on) and stops each
//! service through the backend that started it.
//!
//! A service stops by its `x-hub.stop` command when it has one; a `run` service's process
//! group (from its pid file) is then TERMed, and KILLed after a grace; a container service is
//! stopped and removed with compose. The services of one level stop in parallel.

use crate::launch::Paths;
use hub::container::{self, ComposeCmd};
use hub::output::RecordWriter;
use hub::process::{self, Finished};
use hub::records::{Backend, Plan};
use hub::{Result, log};
use nix::sys::signal::Signal;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long an `x-hub.stop` command may run.
const STOP_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What stopping one service did.
struct Stopped {
    service: String,
    method: &'static str,
    ok: bool,
    message: String,
}

/// Stop every service whose plan is on stdin; exit 0 when all stopped, 1 when one did not.
pub fn run(state_dir: &Path, grace: Duration, compose_cmd: Option<&str>) -> Result<u8> {
    let plans: Vec<(String, Plan)> = hub::records::read_plans(std::io::stdin().lock(), "stdin")?
        .into_iter()
        .map(|(run_id, plan)| (run_id.unwrap_or_default(), plan))
        .collect();
    let compose = if plans.iter().any(|(_, p)| p.backend == Backend::Container) {
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
            let body = json!({
                "service": stopped.service,
                "class": plan.class,
                "level": plan.level,
                "method": stopped.method,
                "ok": stopped.ok,
                "message": stopped.message,
            });
            // A reader that went away (`hub-down | head`) must not stop the teardown.
            if !out_closed {
                let run_id = (!run_id.is_empty()).then_some(run_id.as_str());
                out_closed = out.record("stopped", run_id, &body).is_err();
            }
        }
        start = end;
    }
    Ok(if all_ok {
        hub::error::exit::OK
    } else {
        hub::error::exit::NO
    })
}

fn stop_one(
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
                "none",
                false,
                format!("state folder {}: {e}", state_dir.display()),
            );
        }
    };
    let mut notes = Vec::new();
    let mut method = "none";
    if let Some(spec) = &plan.stop {
        method = "stop";
        let mut cmd = spec.to_command();
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
                method = if method == "stop" { "stop" } else { "signal" };
                notes.push(note);
            }
            Ok(None) => notes.push("not running".into()),
            Err(message) => return stopped("signal", false, message),
        },
        Backend::Container if plan.stop.is_none() => {
            method = "container";
            let Some(cmd) = compose else {
                return stopped(method, false, "no compose command".into());
            };
            let compose_ref = plan.compose.clone().unwrap_or_default();
            match container::stop_and_remove(cmd, &compose_ref, &plan.service) {
                Ok(()) => notes.push("container stopped and removed".into()),
                Err(failure) => return stopped(method, false, failure.message),
            }
        }
        Backend::Start if plan.stop.is_none() => {
            return stopped(
                "none",
                true,
                "no x-hub.stop: nothing to stop it with, left as is".into(),
            );
        }
        _ => {}
    }
    stopped(method, true, notes.join("; "))
}

/// TERM the process group in a `run` service's pid file, KILL it after `grace`, remove the file.
fn signal_pid_file(paths: &Paths, grace: Duration) -> std::result::Result<Option<String>, String> {
    let Ok(text) = std::fs::read_to_string(&paths.pid) else {
        return Ok(None);
    };
    let pid: u32 = text
        .trim()
        .parse()
        .map_err(|_| format!("{} does not hold a pid; remove it", paths.pid.display()))?;
    let note = if process::group_alive(pid) && !process::process_exited(pid) {
        process::signal_group(pid, Signal::SIGTERM)
            .map_err(|e| format!("TERM to group {pid}: {e}"))?;
        let deadline = Instant::now() + grace;
        // Not our child: no wait() to block on, so look again every few milliseconds. A zombie
        // counts as gone: after hub-start exits, init reaps it whenever it gets round to it.
        while !process::process_exited(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let in_time = process::process_exited(pid);
        // Members the leader left behind got the TERM too; whatever still runs is killed.
        process::signal_group(pid, Signal::SIGKILL)
            .map_err(|e| format!("KILL to group {pid}: {e}"))?;
        Some(if in_time {
            format!("process group {pid} terminated")
        } else {
            format!(
                "process group {pid} killed after {}",
                hub::duration::human(grace)
            )
        })
    } else {
        None
    };
    let _ = std::fs::remove_file(&paths.pid);
    let _ = std::fs::remove_file(&paths.exit);
    Ok(note)
}
