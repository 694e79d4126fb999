//! The deploy's circuit breaker `SERVICE:start`: asked before each attempt, told each
//! outcome, and keyed to the service's definition so that a fixed service starts afresh.

use super::Deploy;
use hub::Result;
use hub::breaker::Transition;
use hub::log;
use hub::records::{Backend, Plan, Record};

impl Deploy {
    fn breaker_key(&self, index: usize) -> String {
        hub::breaker::start_key(&self.sched.entry(index).plan.service)
    }

    fn transition(&mut self, transition: Option<Transition>) -> Result<()> {
        let Some(transition) = transition else {
            return Ok(());
        };
        hub::retry::log_transition(&transition);
        self.emit(Record::Breaker(transition))
    }

    /// Ask the circuit breaker `SERVICE:start`; a refusal's message (with the command that
    /// resets it). Failures recorded for another definition of the service are forgotten first.
    pub(super) fn breaker_refuses(&mut self, index: usize) -> Result<Option<String>> {
        let key = self.breaker_key(index);
        let definition = definition_hash(&self.sched.entry(index).plan);
        if let Some(old) = self.config.breaker.forget_if_changed(&key, &definition)? {
            log::info(&format!(
                "{key}: the service's definition changed since its {} failure(s); its circuit breaker starts afresh",
                old.consecutive_failures
            ));
            if old.state != hub::breaker::State::Closed {
                self.transition(Some(Transition {
                    key: key.clone(),
                    from: old.state,
                    to: hub::breaker::State::Closed,
                    consecutive_failures: 0,
                    opened_at: None,
                }))?;
            }
        }
        let (decision, transition) = self.config.breaker.check(&key)?;
        self.transition(transition)?;
        Ok((!decision.allowed())
            .then(|| hub::retry::describe_refusal(&key, &decision, self.config.breaker.path())))
    }

    /// Record an attempt's outcome in the circuit breaker `SERVICE:start`.
    pub(super) fn breaker_record(&mut self, index: usize, ok: bool) -> Result<()> {
        let key = self.breaker_key(index);
        let transition = if ok {
            self.config.breaker.record_success(&key)?
        } else {
            let definition = definition_hash(&self.sched.entry(index).plan);
            self.config
                .breaker
                .record_failure_of(&key, Some(&definition))?
        };
        self.transition(transition)
    }
}

/// A hash of what hub-start runs for a service, and how it judges it: its backend, commands,
/// health check, timeout and compose reference. The breaker stores it with the failures, so a
/// fixed service is not refused for the failures of its broken predecessor. FNV-1a, not the
/// standard library's hasher, whose output may change between Rust releases (the hash is
/// stored in a file).
fn definition_hash(plan: &Plan) -> String {
    /// What is hashed, in this order (the stored hashes depend on it).
    #[derive(serde::Serialize)]
    struct Definition<'a> {
        backend: Backend,
        compose: &'a Option<hub::records::ComposeRef>,
        container_name: &'a Option<String>,
        health: &'a hub::records::HealthSpec,
        healthcheck: &'a Option<serde_json::Value>,
        run: &'a Option<hub::command::CommandSpec>,
        start: &'a Option<hub::command::CommandSpec>,
        timeout_ms: u64,
    }
    let what = Definition {
        backend: plan.backend,
        compose: &plan.compose,
        container_name: &plan.container_name,
        health: &plan.health,
        healthcheck: &plan.healthcheck,
        run: &plan.run,
        start: &plan.start,
        timeout_ms: plan.timeout_ms,
    };
    // Through a `Value`: its objects sort their keys, nested ones too, as the stored hashes did.
    let text = serde_json::to_value(&what)
        .map(|v| v.to_string())
        .unwrap_or_default();
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}
