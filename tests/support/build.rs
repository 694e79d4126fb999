//! Typed records for tests that feed a tool a stream: built from `hub::records`, so a test's
//! input is the contract the tools read, not JSON written by hand that may drift from it.

use hub::records::{
    AttemptOf, Class, Counts, Finished, HealthSpec, Healthy, Line, Plan, Record, SkipReason,
    Skipped, Started, Subject, Unhealthy, UnhealthyReason,
};

/// A `plan` for a `start` service with no check.
pub fn plan(service: &str, class: Class, level: u32, deps: &[&str]) -> Record {
    Record::Plan(Box::new(Plan {
        deps: deps.iter().map(|&d| d.into()).collect(),
        ..Plan::named(service, class, level)
    }))
}

/// Service, class, level and attempt `attempt` of `max_attempts`.
pub fn of(service: &str, class: Class, level: u32, attempt: u32, max_attempts: u32) -> AttemptOf {
    AttemptOf {
        service: service.into(),
        class,
        level,
        attempt,
        max_attempts,
    }
}

/// A `started` record.
pub fn started(of: AttemptOf) -> Record {
    Record::Started(Box::new(Started::new(of, HealthSpec::none())))
}

/// A `healthy` record.
pub fn healthy(of: AttemptOf, ready_ms: u64, probes: u32) -> Record {
    Record::Healthy(Healthy {
        of,
        is_final: true,
        ready_ms,
        probes,
        failures: 0,
        tasks: Vec::new(),
    })
}

/// A final `unhealthy` record.
pub fn unhealthy(
    of: AttemptOf,
    reason: UnhealthyReason,
    elapsed_ms: u64,
    last_probe: &str,
    message: &str,
) -> Record {
    Record::Unhealthy(Unhealthy {
        of,
        is_final: true,
        reason,
        elapsed_ms,
        probes: 1,
        failures: 1,
        last_probe: Some(last_probe.into()),
        exit_status: None,
        log_tail: None,
        message: message.into(),
    })
}

/// A `skipped` record.
pub fn skipped(
    service: &str,
    class: Class,
    level: u32,
    reason: SkipReason,
    dependency: Option<&str>,
) -> Record {
    Record::Skipped(Skipped {
        of: Subject {
            service: service.into(),
            class,
            level,
        },
        reason,
        dependency: dependency.map(str::to_owned),
    })
}

/// A `finished` record.
pub fn finished(ok: bool, counts: Counts, duration_ms: u64) -> Record {
    Record::Finished(Finished {
        ok,
        exit_status: if ok { 0 } else { 1 },
        counts,
        duration_ms,
    })
}

/// The records as a stream of lines of run `run_id`, each stamped with its ts.
pub fn stream(run_id: &str, records: Vec<(u64, Record)>) -> String {
    records
        .into_iter()
        .map(|(ts, record)| {
            let line = Line {
                ts: Some(ts),
                run_id: Some(run_id.into()),
                record,
            };
            line.to_line()
                .unwrap_or_else(|e| panic!("encoding a record: {e}"))
                + "\n"
        })
        .collect()
}
