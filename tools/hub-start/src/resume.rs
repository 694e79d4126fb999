//! "Is it already healthy?": one probe before starting, so a rerun after an interrupted deploy
//! resumes where it stopped instead of starting a second copy of a running service.

use crate::launch::{self, Paths};
use hub::container::{self, ComposeCmd, ProbeResult};
use hub::probe::Target;
use hub::records::{Backend, Check, Plan};
use std::time::Duration;

/// One probe: true when the service is already up.
pub fn already_healthy(plan: &Plan, paths: &Paths, compose: Option<&ComposeCmd>) -> bool {
    match plan.backend {
        // A `run` service is ours only if the process an earlier deploy launched is alive.
        Backend::Run => {
            launch::live_process(paths).is_some()
                && (plan.health.check == Check::None || probe(plan))
        }
        // Without a health check a start command's result cannot be seen from outside.
        Backend::Start => plan.health.check != Check::None && probe(plan),
        Backend::Container => compose.is_some_and(|cmd| container_up(plan, cmd)),
        // At its desired count of tasks running and past their healthcheck.
        Backend::Swarm => compose.is_some_and(|cmd| {
            plan.compose
                .as_ref()
                .and_then(|c| c.stack.as_deref())
                .is_some_and(|stack| {
                    hub::swarm::already_healthy(cmd, stack, &plan.service, &plan.health.check)
                })
        }),
    }
}

/// One probe through the same prober `hub-wait-healthy` uses, so every kind it can check
/// (`http` included) can also prove a service already up.
fn probe(plan: &Plan) -> bool {
    let timeout = Duration::from_millis(plan.health.probe_timeout_ms);
    hub::probe::Prober::new(&plan.health.check, &Target::of_plan(plan), timeout)
        .is_ok_and(|prober| prober.checks_anything() && prober.probe().is_ok())
}

/// A container service is up when its container runs and, if it has a healthcheck, is healthy
/// (or, with `x-hub.health.exec`, its test passes now).
fn container_up(plan: &Plan, cmd: &ComposeCmd) -> bool {
    let compose = plan.compose.clone().unwrap_or_default();
    let Ok(Some(id)) = container::container_id(cmd, &compose, &plan.service) else {
        return false;
    };
    let Ok(Some(state)) = container::inspect(cmd, &id) else {
        return false;
    };
    if !state.is_up() {
        return false;
    }
    match &plan.health.check {
        // A job still running from an earlier deploy has not completed; compose runs it again.
        Check::Completed => false,
        Check::Exec { test } => matches!(
            container::exec_probe(
                cmd,
                &id,
                test,
                Duration::from_millis(plan.health.probe_timeout_ms)
            ),
            Ok(ProbeResult::Passed)
        ),
        _ => state.health.is_none_or(|h| h.status == "healthy"),
    }
}
