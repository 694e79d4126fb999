//! The scheduling state machine: which service may start now, which must be skipped, and when
//! the deploy is decided. Pure logic, no processes, so every failure-propagation path that
//! peers got wrong (a dependent started after its dependency failed, a dependent left pending
//! forever, a transitive failure that did not block) is tested directly.

use hub::records::{Class, Plan};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

/// How services are released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A service starts as soon as each hard dependency is healthy (soft: decided).
    Dag,
    /// The seed's barrier: level N+1 starts when every service of level N is decided.
    Levels,
    /// No health results come back: start everything as it arrives.
    Ungated,
}

/// Where one service is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started yet.
    Pending,
    /// An attempt is in flight (probe, breaker check, start command).
    Starting { attempt: u32 },
    /// Launched; waiting for its health result.
    Started { attempt: u32 },
    /// A failed attempt; the next one is due then.
    RetryWait { next_attempt: u32, due: Instant },
    /// A failed attempt whose process is being stopped; its backoff starts once it is.
    Stopping { next_attempt: u32 },
    /// Healthy (or already healthy).
    Healthy,
    /// Failed for good.
    Failed,
    /// Not started, and never will be in this run.
    Skipped,
}

impl State {
    /// Decided: nothing more will happen to it in this run.
    pub fn decided(self) -> bool {
        matches!(self, State::Healthy | State::Failed | State::Skipped)
    }
}

/// What the executor must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Begin attempt `attempt` of service `index`.
    Start { index: usize, attempt: u32 },
    /// Emit a `skipped` record.
    Skip { index: usize, reason: SkipReason },
    /// A CORE service failed: log it (once).
    Abort { cause: usize },
}

/// Why a service is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A CORE service failed; nothing new starts.
    Aborted,
    /// This hard dependency failed or was skipped.
    DependencyFailed(String),
}

/// One service under scheduling.
#[derive(Debug)]
pub struct Entry {
    /// Its plan.
    pub plan: Plan,
    /// Where it is.
    pub state: State,
}

/// The scheduler.
///
/// Each call of [`Scheduler::actions`] costs what changed since the last one, not the size of
/// the stack: at 10,000 services a scan of every service per event (a record read, a launch, a
/// health verdict) made the deploy loop quadratic and its `started` records seconds late. So
/// every state change goes through [`Scheduler::put`], which keeps the indexes below, and only
/// the services whose dependencies (or, in levels mode, lower levels) changed are re-examined.
#[derive(Debug)]
pub struct Scheduler {
    mode: Mode,
    jobs: usize,
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
    input_done: bool,
    abort_cause: Option<usize>,
    abort_announced: bool,
    /// Service name (known or not yet) -> the services naming it as a dependency.
    dependents: HashMap<String, Vec<usize>>,
    /// Services to re-examine: a dependency or their own state changed.
    dirty: BTreeSet<usize>,
    /// Services that may start now (pending with what they wait for done, or a retry that is
    /// due), by index: lower indexes start first, as the plan lists them.
    ready: BTreeSet<usize>,
    /// Retries waiting for their due time.
    retries: BTreeSet<(Instant, usize)>,
    /// Services an abort skips: pending, waiting for a retry, or being stopped.
    waiting: BTreeSet<usize>,
    /// How many are `Starting`, `Started`, decided.
    starting: usize,
    started: usize,
    decided: usize,
    /// Undecided services per level (levels with none are removed).
    undecided_by_level: BTreeMap<u32, usize>,
    /// The services of each level.
    by_level: BTreeMap<u32, Vec<usize>>,
    /// Levels mode: the lowest level with an undecided service when last looked at (every level
    /// up to it may start); `None` before input ends.
    unlocked: Option<u32>,
}

impl Scheduler {
    /// A scheduler releasing services per `mode`, at most `jobs` attempts in flight (0 = no cap).
    pub fn new(mode: Mode, jobs: usize) -> Self {
        Scheduler {
            mode,
            jobs,
            entries: Vec::new(),
            index: HashMap::new(),
            input_done: false,
            abort_cause: None,
            abort_announced: false,
            dependents: HashMap::new(),
            dirty: BTreeSet::new(),
            ready: BTreeSet::new(),
            retries: BTreeSet::new(),
            waiting: BTreeSet::new(),
            starting: 0,
            started: 0,
            decided: 0,
            undecided_by_level: BTreeMap::new(),
            by_level: BTreeMap::new(),
            unlocked: None,
        }
    }

    /// Add a service; an error if it was already added.
    pub fn add(&mut self, plan: Plan) -> Result<usize, String> {
        if self.index.contains_key(&plan.service) {
            return Err(format!(
                "service \"{}\" appears twice in the plan",
                plan.service
            ));
        }
        let index = self.entries.len();
        self.index.insert(plan.service.clone(), index);
        for dep in plan.deps.iter().chain(&plan.soft_deps) {
            self.dependents.entry(dep.clone()).or_default().push(index);
        }
        if let Some(dependents) = self.dependents.get(&plan.service) {
            self.dirty.extend(dependents);
        }
        *self.undecided_by_level.entry(plan.level).or_default() += 1;
        self.by_level.entry(plan.level).or_default().push(index);
        self.entries.push(Entry {
            plan,
            state: State::Pending,
        });
        self.waiting.insert(index);
        self.dirty.insert(index);
        Ok(index)
    }

    /// No more plans will come.
    pub fn input_closed(&mut self) {
        self.input_done = true;
        // Dependencies outside the input are satisfied now, and levels may start.
        self.dirty.extend(0..self.entries.len());
    }

    /// The levels of the plan, lowest first.
    pub fn levels(&self) -> impl Iterator<Item = u32> + '_ {
        self.by_level.keys().copied()
    }

    /// The services of `level`.
    pub fn level_members(&self, level: u32) -> &[usize] {
        self.by_level.get(&level).map_or(&[], Vec::as_slice)
    }

    /// True when every service of `level` is decided.
    pub fn level_decided(&self, level: u32) -> bool {
        !self.undecided_by_level.contains_key(&level)
    }

    /// True once every plan has been read.
    pub fn input_done(&self) -> bool {
        self.input_done
    }

    /// The entry at `index`.
    pub fn entry(&self, index: usize) -> &Entry {
        &self.entries[index]
    }

    /// All entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The index of a service by name.
    pub fn find(&self, service: &str) -> Option<usize> {
        self.index.get(service).copied()
    }

    /// True once a CORE failure stopped the deploy.
    pub fn aborted(&self) -> bool {
        self.abort_cause.is_some()
    }

    /// The CORE service whose failure (or skip) stopped the deploy.
    pub fn abort_cause(&self) -> Option<usize> {
        self.abort_cause
    }

    /// Move a service to a new state. A CORE service that fails (or is skipped because a
    /// dependency failed) aborts the deploy. Private: the executor reports what happened
    /// through the `on_*` methods below, and the scheduler decides what state that means.
    fn set(&mut self, index: usize, state: State) {
        self.put(index, state);
        if matches!(state, State::Failed | State::Skipped)
            && self.entries[index].plan.class == Class::Core
            && self.abort_cause.is_none()
        {
            self.abort_cause = Some(index);
        }
    }

    /// Move a service to `state`, keeping every index in step. The one place that writes a
    /// state.
    fn put(&mut self, index: usize, state: State) {
        let old = self.entries[index].state;
        if old == state {
            return;
        }
        self.entries[index].state = state;
        let waits = |s: State| {
            matches!(
                s,
                State::Pending | State::RetryWait { .. } | State::Stopping { .. }
            )
        };
        match old {
            State::Starting { .. } => self.starting -= 1,
            State::Started { .. } => self.started -= 1,
            State::RetryWait { due, .. } => {
                self.retries.remove(&(due, index));
            }
            _ => {}
        }
        match state {
            State::Starting { .. } => self.starting += 1,
            State::Started { .. } => self.started += 1,
            State::RetryWait { due, .. } => {
                self.retries.insert((due, index));
            }
            _ => {}
        }
        if waits(state) {
            self.waiting.insert(index);
        } else {
            self.waiting.remove(&index);
        }
        self.ready.remove(&index);
        self.dirty.insert(index);
        if old.decided() == state.decided() && !old.decided() {
            return;
        }
        let level = self.entries[index].plan.level;
        if state.decided() && !old.decided() {
            self.decided += 1;
            if let Some(count) = self.undecided_by_level.get_mut(&level) {
                *count -= 1;
                if *count == 0 {
                    self.undecided_by_level.remove(&level);
                }
            }
        } else if old.decided() && !state.decided() {
            self.decided -= 1;
            *self.undecided_by_level.entry(level).or_default() += 1;
        }
        // How its dependents see it changed (healthy, failed, skipped, or no longer either).
        if let Some(dependents) = self.dependents.get(&self.entries[index].plan.service) {
            self.dirty.extend(dependents);
        }
    }

    /// Attempt `attempt` was launched: it waits for its health verdict.
    pub fn on_launched(&mut self, index: usize, attempt: u32) {
        self.set(index, State::Started { attempt });
    }

    /// The attempt in flight, if the service waits for a verdict on one.
    pub fn awaiting_verdict(&self, index: usize) -> Option<u32> {
        match self.entries[index].state {
            State::Started { attempt } => Some(attempt),
            _ => None,
        }
    }

    /// The service is healthy: its dependents may start.
    pub fn on_healthy(&mut self, index: usize) {
        self.set(index, State::Healthy);
    }

    /// Found healthy before its first start (a rerun): decided, and no failure.
    pub fn on_already_healthy(&mut self, index: usize) {
        self.put(index, State::Healthy);
    }

    /// An attempt failed and attempt `next_attempt` is due at `due`.
    pub fn on_retry(&mut self, index: usize, next_attempt: u32, due: Instant) {
        self.set(index, State::RetryWait { next_attempt, due });
    }

    /// A failed attempt's process is being stopped; attempt `next_attempt` waits for that.
    pub fn on_stopping(&mut self, index: usize, next_attempt: u32) {
        self.set(index, State::Stopping { next_attempt });
    }

    /// The stopped attempt's process is gone: attempt `next_attempt` is due at `due`. False
    /// (and nothing changes) when the service no longer waits for that stop (an abort skipped
    /// it meanwhile).
    pub fn on_stopped(&mut self, index: usize, next_attempt: u32, due: Instant) -> bool {
        if self.entries[index].state != (State::Stopping { next_attempt }) {
            return false;
        }
        self.on_retry(index, next_attempt, due);
        true
    }

    /// The service failed for good (a CORE one aborts the deploy).
    pub fn on_failed(&mut self, index: usize) {
        self.set(index, State::Failed);
    }

    /// The service will not start in this run (a CORE one aborts the deploy).
    pub fn on_skipped(&mut self, index: usize) {
        self.set(index, State::Skipped);
    }

    /// The earliest retry due time.
    pub fn next_due(&self) -> Option<Instant> {
        self.retries.first().map(|&(due, _)| due)
    }

    /// How a dependency stands: satisfied, failed, or still waiting.
    fn dependency(&self, name: &str, hard: bool) -> Dep {
        let Some(&i) = self.index.get(name) else {
            // Not in this run's input (e.g. `hub-levels --level 2`): outside our scope.
            return if self.input_done {
                Dep::Satisfied
            } else {
                Dep::Waiting
            };
        };
        match self.entries[i].state {
            State::Healthy => Dep::Satisfied,
            State::Failed | State::Skipped if hard => Dep::Failed,
            State::Failed | State::Skipped => Dep::Satisfied,
            _ => Dep::Waiting,
        }
    }

    /// In levels mode: is every service below `level` decided?
    fn lower_levels_decided(&self, level: u32) -> bool {
        self.input_done
            && self
                .undecided_by_level
                .first_key_value()
                .is_none_or(|(&lowest, _)| lowest >= level)
    }

    /// In levels mode, once the lowest undecided level rose: the services of the levels it
    /// passed may start now, so they are re-examined.
    fn unlock_levels(&mut self) {
        if self.mode != Mode::Levels || !self.input_done {
            return;
        }
        let lowest = self
            .undecided_by_level
            .first_key_value()
            .map_or(u32::MAX, |(&level, _)| level);
        let Some(before) = self.unlocked.replace(lowest) else {
            return; // input_closed() marked every service
        };
        if lowest > before {
            for members in self.by_level.range(before + 1..=lowest).map(|(_, m)| m) {
                self.dirty.extend(members);
            }
        }
    }

    /// The first hard dependency of a pending service that failed or was skipped.
    fn failed_dependency(&self, index: usize) -> Option<String> {
        self.entries[index]
            .plan
            .deps
            .iter()
            .find(|d| self.dependency(d, true) == Dep::Failed)
            .cloned()
    }

    /// The actions to take now. Call after every change; states move as actions are returned
    /// (a started service becomes `Starting`, a skipped one `Skipped`).
    pub fn actions(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Some(cause) = self.abort_cause {
            if !self.abort_announced {
                self.abort_announced = true;
                actions.push(Action::Abort { cause });
            }
            for index in std::mem::take(&mut self.waiting) {
                self.put(index, State::Skipped);
                actions.push(Action::Skip {
                    index,
                    reason: SkipReason::Aborted,
                });
            }
            return actions;
        }
        self.unlock_levels();
        // Skips propagate transitively: passes over the changed services in index order,
        // repeated until nothing changes (a skip marks its dependents changed).
        while self.mode != Mode::Ungated {
            let mut changed = false;
            let mut next = 0;
            while let Some(&index) = self.dirty.range(next..).next() {
                next = index + 1;
                if self.entries[index].state != State::Pending {
                    continue;
                }
                if let Some(dep) = self.failed_dependency(index) {
                    self.set(index, State::Skipped);
                    actions.push(Action::Skip {
                        index,
                        reason: SkipReason::DependencyFailed(dep),
                    });
                    changed = true;
                    if self.abort_cause.is_some() {
                        actions.extend(self.actions(now));
                        return actions;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        for index in std::mem::take(&mut self.dirty) {
            if self.entries[index].state == State::Pending && self.may_start(index) {
                self.ready.insert(index);
            }
        }
        let due: Vec<usize> = self
            .retries
            .iter()
            .take_while(|&&(due, _)| due <= now)
            .map(|&(_, index)| index)
            .collect();
        self.ready.extend(due);
        let mut next = 0;
        while let Some(&index) = self.ready.range(next..).next() {
            if self.jobs > 0 && self.starting >= self.jobs {
                break;
            }
            next = index + 1;
            let attempt = match self.entries[index].state {
                State::Pending if self.may_start(index) => 1,
                State::RetryWait { next_attempt, due } if due <= now => next_attempt,
                _ => {
                    // No longer startable (a state changed since it was found ready).
                    self.ready.remove(&index);
                    continue;
                }
            };
            self.put(index, State::Starting { attempt });
            actions.push(Action::Start { index, attempt });
        }
        actions
    }

    fn may_start(&self, index: usize) -> bool {
        let plan = &self.entries[index].plan;
        match self.mode {
            Mode::Ungated => true,
            Mode::Dag => {
                plan.deps
                    .iter()
                    .all(|d| self.dependency(d, true) == Dep::Satisfied)
                    && plan
                        .soft_deps
                        .iter()
                        .all(|d| self.dependency(d, false) == Dep::Satisfied)
            }
            Mode::Levels => {
                self.lower_levels_decided(plan.level)
                    && plan
                        .deps
                        .iter()
                        .all(|d| self.dependency(d, true) == Dep::Satisfied)
            }
        }
    }

    /// The deploy is decided: every service is decided (ungated: launched or failed), or a
    /// CORE failure stopped it and no attempt is still in flight.
    pub fn finished(&self) -> bool {
        if !self.input_done {
            return false;
        }
        if self.aborted() {
            return self.starting == 0;
        }
        let settled = match self.mode {
            Mode::Ungated => self.decided + self.started,
            _ => self.decided,
        };
        settled == self.entries.len()
    }

    /// Services that are not decided (for an `interrupted` record or an error).
    pub fn undecided(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| !e.state.decided())
            .map(|e| e.plan.service.as_str())
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dep {
    Satisfied,
    Failed,
    Waiting,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hub::records::{Backend, Check, HealthSpec, RetrySpec};

    /// A plan for tests: only what scheduling reads.
    pub(crate) fn plan(name: &str, level: u32, class: Class, deps: &[&str], soft: &[&str]) -> Plan {
        Plan {
            service: name.into(),
            level,
            class,
            deps: deps.iter().map(|s| s.to_string()).collect(),
            soft_deps: soft.iter().map(|s| s.to_string()).collect(),
            timeout_ms: 1000,
            backend: Backend::Run,
            start: None,
            run: None,
            stop: None,
            working_dir: None,
            environment: Default::default(),
            health: HealthSpec {
                check: Check::None,
                interval_ms: 10,
                probe_timeout_ms: 10,
                start_period_ms: 0,
            },
            retry: RetrySpec::default(),
            container_name: None,
            profiles: vec![],
            labels: Default::default(),
            healthcheck: None,
            compose: None,
            project: None,
        }
    }

    fn started(actions: &[Action]) -> Vec<usize> {
        actions
            .iter()
            .filter_map(|a| {
                if let Action::Start { index, .. } = a {
                    Some(*index)
                } else {
                    None
                }
            })
            .collect()
    }

    fn stack(mode: Mode) -> Scheduler {
        // a(core) <- b(optional) <- c(core, soft on d) ; d(stretch) ; e(core) <- f(stretch)
        let mut s = Scheduler::new(mode, 0);
        s.add(plan("a", 0, Class::Core, &[], &[])).unwrap();
        s.add(plan("d", 0, Class::Stretch, &[], &[])).unwrap();
        s.add(plan("e", 0, Class::Core, &[], &[])).unwrap();
        s.add(plan("b", 1, Class::Optional, &["a"], &[])).unwrap();
        s.add(plan("f", 1, Class::Stretch, &["e"], &[])).unwrap();
        s.add(plan("c", 2, Class::Optional, &["b"], &["d"]))
            .unwrap();
        s.input_closed();
        s
    }

    #[test]
    fn dag_starts_each_service_when_its_own_dependencies_are_healthy() {
        let now = Instant::now();
        let mut s = stack(Mode::Dag);
        assert_eq!(started(&s.actions(now)), [0, 1, 2]);
        s.on_healthy(0);
        // b waits only for a, not for d or e.
        assert_eq!(started(&s.actions(now)), [3]);
        s.on_healthy(3);
        // c also waits for its soft dependency d.
        assert!(started(&s.actions(now)).is_empty());
        s.on_failed(1);
        assert_eq!(
            started(&s.actions(now)),
            [5],
            "a failed soft dependency does not block"
        );
        assert!(!s.aborted(), "a STRETCH failure does not abort");
    }

    #[test]
    fn levels_waits_for_the_whole_level() {
        let now = Instant::now();
        let mut s = stack(Mode::Levels);
        assert_eq!(started(&s.actions(now)), [0, 1, 2]);
        s.on_healthy(0);
        assert!(
            started(&s.actions(now)).is_empty(),
            "d and e still undecided"
        );
        s.on_healthy(1);
        s.on_healthy(2);
        assert_eq!(started(&s.actions(now)), [3, 4]);
    }

    #[test]
    fn a_failed_optional_dependency_skips_its_dependents_transitively() {
        let now = Instant::now();
        let mut s = Scheduler::new(Mode::Dag, 0);
        s.add(plan("a", 0, Class::Optional, &[], &[])).unwrap();
        s.add(plan("b", 1, Class::Stretch, &["a"], &[])).unwrap();
        s.add(plan("c", 2, Class::Optional, &["b"], &[])).unwrap();
        s.input_closed();
        s.actions(now);
        s.on_failed(0);
        let actions = s.actions(now);
        assert_eq!(
            actions,
            [
                Action::Skip {
                    index: 1,
                    reason: SkipReason::DependencyFailed("a".into())
                },
                Action::Skip {
                    index: 2,
                    reason: SkipReason::DependencyFailed("b".into())
                },
            ]
        );
        assert!(s.finished(), "nothing is left pending forever");
        assert!(!s.aborted());
    }

    #[test]
    fn a_core_dependent_of_a_failed_optional_service_fails_the_deploy() {
        let now = Instant::now();
        let mut s = Scheduler::new(Mode::Dag, 0);
        s.add(plan("cache", 0, Class::Optional, &[], &[])).unwrap();
        s.add(plan("other", 0, Class::Optional, &[], &[])).unwrap();
        s.add(plan("api", 1, Class::Core, &["cache"], &[])).unwrap();
        s.add(plan("late", 1, Class::Optional, &["other"], &[]))
            .unwrap();
        s.input_closed();
        s.actions(now);
        s.on_failed(0);
        let actions = s.actions(now);
        assert!(actions.contains(&Action::Skip {
            index: 2,
            reason: SkipReason::DependencyFailed("cache".into())
        }));
        assert!(actions.contains(&Action::Abort { cause: 2 }));
        assert!(s.aborted());
        // `other` is still in flight: the deploy ends when it settles; `late` is never started.
        assert!(!s.finished());
        s.on_launched(1, 1);
        assert!(s.finished());
        assert_eq!(s.entry(3).state, State::Skipped);
    }

    #[test]
    fn a_core_failure_skips_everything_not_started() {
        let now = Instant::now();
        let mut s = stack(Mode::Dag);
        s.actions(now);
        s.on_healthy(1);
        s.on_retry(2, 2, now);
        s.on_failed(0);
        let actions = s.actions(now);
        assert_eq!(actions[0], Action::Abort { cause: 0 });
        let skipped: Vec<usize> = actions
            .iter()
            .filter_map(|a| {
                if let Action::Skip {
                    index,
                    reason: SkipReason::Aborted,
                } = a
                {
                    Some(*index)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(skipped, [2, 3, 4, 5]);
        assert!(s.finished());
        assert!(s.actions(now).is_empty(), "abort is announced once");
    }

    #[test]
    fn retries_wait_for_their_due_time_and_jobs_cap_in_flight() {
        let now = Instant::now();
        let mut s = Scheduler::new(Mode::Ungated, 2);
        for name in ["a", "b", "c"] {
            s.add(plan(name, 0, Class::Optional, &[], &[])).unwrap();
        }
        s.input_closed();
        assert_eq!(started(&s.actions(now)), [0, 1], "--jobs 2");
        let due = now + std::time::Duration::from_secs(2);
        s.on_retry(0, 2, due);
        assert_eq!(started(&s.actions(now)), [2]);
        s.on_launched(1, 1);
        s.on_launched(2, 1);
        assert!(started(&s.actions(now)).is_empty(), "not due yet");
        assert_eq!(s.next_due(), Some(due));
        assert_eq!(
            s.actions(due),
            [Action::Start {
                index: 0,
                attempt: 2
            }]
        );
    }

    #[test]
    fn a_ready_dependent_whose_dependency_dies_after_healthy_is_skipped_not_started() {
        let now = Instant::now();
        let mut s = Scheduler::new(Mode::Dag, 1);
        s.add(plan("db", 0, Class::Optional, &[], &[])).unwrap();
        s.add(plan("other", 0, Class::Optional, &[], &[])).unwrap();
        s.add(plan("api", 1, Class::Optional, &["db"], &[]))
            .unwrap();
        s.input_closed();
        assert_eq!(started(&s.actions(now)), [0], "--jobs 1");
        s.on_launched(0, 1);
        s.on_healthy(0);
        // api may start now, but `other` comes first and fills the one slot.
        assert_eq!(started(&s.actions(now)), [1]);
        s.on_failed(0);
        s.on_launched(1, 1);
        assert_eq!(
            s.actions(now),
            [Action::Skip {
                index: 2,
                reason: SkipReason::DependencyFailed("db".into())
            }]
        );
    }

    #[test]
    fn levels_release_each_level_once_the_ones_below_are_decided() {
        let now = Instant::now();
        let mut s = Scheduler::new(Mode::Levels, 0);
        s.add(plan("a", 0, Class::Optional, &[], &[])).unwrap();
        s.add(plan("b", 1, Class::Optional, &[], &[])).unwrap();
        s.add(plan("c", 2, Class::Optional, &[], &[])).unwrap();
        assert!(started(&s.actions(now)).is_empty(), "input not done");
        s.input_closed();
        assert_eq!(started(&s.actions(now)), [0]);
        s.on_failed(0);
        assert_eq!(started(&s.actions(now)), [1], "a decided, even failed");
        s.on_healthy(1);
        assert_eq!(started(&s.actions(now)), [2]);
        s.on_healthy(2);
        assert!(s.finished());
    }

    #[test]
    fn a_dependency_outside_the_input_waits_until_input_ends() {
        let now = Instant::now();
        let mut s = Scheduler::new(Mode::Dag, 0);
        s.add(plan("b", 1, Class::Core, &["a"], &[])).unwrap();
        assert!(started(&s.actions(now)).is_empty());
        s.input_closed();
        assert_eq!(started(&s.actions(now)), [0]);
    }

    #[test]
    fn duplicates_are_refused() {
        let mut s = Scheduler::new(Mode::Dag, 0);
        s.add(plan("a", 0, Class::Core, &[], &[])).unwrap();
        assert!(s.add(plan("a", 0, Class::Core, &[], &[])).is_err());
    }

    #[test]
    fn a_stopped_attempt_retries_only_while_it_still_waits_for_that_stop() {
        let now = Instant::now();
        let mut s = Scheduler::new(Mode::Dag, 0);
        s.add(plan("db", 0, Class::Optional, &[], &[])).unwrap();
        s.input_closed();
        assert_eq!(started(&s.actions(now)), [0]);
        s.on_launched(0, 1);
        assert_eq!(s.awaiting_verdict(0), Some(1));
        s.on_stopping(0, 2);
        assert_eq!(s.awaiting_verdict(0), None);
        assert!(!s.on_stopped(0, 3, now), "another attempt's stop");
        assert!(s.on_stopped(0, 2, now));
        assert_eq!(started(&s.actions(now)), [0]);
        assert_eq!(s.entry(0).state, State::Starting { attempt: 2 });
        s.on_skipped(0);
        assert!(!s.on_stopped(0, 2, now), "skipped meanwhile: stays skipped");
        assert_eq!(s.entry(0).state, State::Skipped);
    }
}
