//! The records hub-start writes about a service, built from its plan: apart from the deploy
//! loop, which decides *when* to write them, so what goes into each lives in one place.

use hub::records::{AttemptOf, Backend, Plan, Started, Subject};
use std::time::Duration;

/// The service, class and level records about it begin with.
pub fn subject(plan: &Plan) -> Subject {
    Subject {
        service: plan.service.clone(),
        class: plan.class,
        level: plan.level,
    }
}

/// Attempt `attempt` of the service, as records about one attempt begin.
pub fn attempt_of(plan: &Plan, attempt: u32) -> AttemptOf {
    AttemptOf {
        service: plan.service.clone(),
        class: plan.class,
        level: plan.level,
        attempt,
        max_attempts: plan.retry.attempts,
    }
}

/// How an attempt was launched, for its `started` record.
pub struct Launched<'a> {
    /// The attempt.
    pub attempt: u32,
    /// A `run` service's process.
    pub pid: Option<u32>,
    /// A container service's container.
    pub container: Option<String>,
    /// Its log file (not for containers).
    pub log: &'a std::path::Path,
    /// For a process a rerun adopted: what is left of its timeout.
    pub adopted: Option<Duration>,
}

/// The `started` record: everything hub-wait-healthy needs to judge the attempt.
pub fn started(plan: &Plan, launched: Launched<'_>) -> Started {
    Started {
        of: attempt_of(plan, launched.attempt),
        backend: Some(plan.backend),
        pid: launched.pid,
        adopted: launched.adopted.is_some(),
        log: matches!(plan.backend, Backend::Start | Backend::Run)
            .then(|| launched.log.display().to_string()),
        // Our own child: its exit comes downstream as an `exited` record. An adopted process
        // is not our child, and is watched by pid.
        exit_record: launched.pid.is_some() && launched.adopted.is_none(),
        // An adopted process's timeout counts from its own start.
        timeout_ms: launched
            .adopted
            .map_or(plan.timeout_ms, hub::duration::to_ms),
        health: plan.health.clone(),
        container: launched.container,
        compose: plan.compose.clone(),
        // A health command runs where the service runs, with what it is given.
        working_dir: plan.working_dir.clone(),
        environment: plan.environment.clone(),
    }
}
