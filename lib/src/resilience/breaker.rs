//! A circuit breaker whose state every process shares, through a locked state file.
//!
//! Per key (by convention `service:failure_type`, e.g. `keycloak:start`) the breaker is
//! `closed` (calls run), `open` (calls are refused for a cool-down) or `half_open` (exactly one
//! caller, across all processes, gets a trial). `threshold` consecutive failures open it; after
//! `cooldown` the next check turns it half-open and hands that caller the trial; the trial's
//! success closes it, its failure re-opens it for a new cool-down.
//!
//! Mainstream breakers keep their state in memory, so parallel processes each have their own
//! (Polly #259); the shared-state ones have known bugs, each guarded against here:
//! - a new instance resetting shared state to closed (pybreaker #26): nothing is written on
//!   construction, and a state file that does not parse is an error, never replaced;
//! - `opened_at` overwritten by later failures (pybreaker #24): it is set only on opening;
//! - several processes probing a half-open breaker at once (cockatiel #89): the trial is
//!   granted under the file lock and recorded with its holder;
//! - a breaker stuck half-open (resilience4j #903): a trial whose holder died, or that overran
//!   `trial_timeout`, is released to the next caller.
//!
//! Every read-modify-write goes through [`crate::statefile::LockedFile`]; the lock is held only
//! for the update, never while a wrapped command runs. Time comes from a [`Clock`], so tests
//! drive transitions with a [`crate::clock::ManualClock`] instead of sleeping.

use crate::clock::Clock;
use crate::process::process_start;
use crate::statefile::LockedFile;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The version of the state file format this code writes.
pub const STATE_VERSION: u32 = 1;

/// The breaker key `hub-start` guards a service's start with: `SERVICE:start`. Readers find a
/// service's breaker by this key, never by splitting a key.
pub fn start_key(service: &str) -> String {
    format!("{service}:start")
}

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Calls run; failures are counted.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// One trial call runs; the others are refused.
    HalfOpen,
}

impl State {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who holds a half-open breaker's trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trial {
    /// The holder's process id.
    pub pid: u32,
    /// The holder's start time (from `/proc/PID/stat`), so a reused pid is not taken for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
    /// When the trial was granted, ms since the epoch.
    pub started_at: u64,
}

/// One key's state, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    /// The state.
    pub state: State,
    /// Failures since the last success.
    pub consecutive_failures: u64,
    /// When it last opened, ms since the epoch; `None` when closed.
    pub opened_at: Option<u64>,
    /// The trial holder, when half-open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<Trial>,
    /// When this key last changed, ms since the epoch.
    #[serde(default)]
    pub updated_at: u64,
    /// A hash of what failed (hub-start: the service's definition), when the caller gave one:
    /// a changed definition is a different thing, and starts afresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
}

impl Default for KeyState {
    fn default() -> Self {
        KeyState {
            state: State::Closed,
            consecutive_failures: 0,
            opened_at: None,
            trial: None,
            updated_at: 0,
            definition: None,
        }
    }
}

/// The whole state file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StateDoc {
    version: u32,
    keys: BTreeMap<String, KeyState>,
}

/// The breaker's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Consecutive failures that open the breaker (at least 1).
    pub threshold: u64,
    /// How long it stays open before one trial is allowed.
    pub cooldown: Duration,
    /// How long a trial may run before it is released to another caller.
    pub trial_timeout: Duration,
    /// How long to wait for the state file's lock.
    pub lock_timeout: Duration,
}

impl Default for Config {
    /// The seed's settings: 3 failures, 60 s open; trials released after 60 s; 10 s lock wait.
    fn default() -> Self {
        Config {
            threshold: 3,
            cooldown: Duration::from_secs(60),
            trial_timeout: Duration::from_secs(60),
            lock_timeout: Duration::from_secs(10),
        }
    }
}

/// Environment variable: consecutive failures that open a breaker.
pub const ENV_THRESHOLD: &str = "CIRCUIT_BREAKER_THRESHOLD";
/// Environment variable: how long a breaker stays open (the seed's name for the cool-down).
pub const ENV_COOLDOWN: &str = "CIRCUIT_BREAKER_TIMEOUT";
/// Environment variable: the state file.
pub const ENV_STATE: &str = "HUB_BREAKER_STATE";

impl Config {
    /// The defaults, overridden by `CIRCUIT_BREAKER_THRESHOLD` and `CIRCUIT_BREAKER_TIMEOUT`
    /// as `env` returns them (pass `|k| std::env::var(k).ok()`).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let mut config = Config::default();
        if let Some(text) = env(ENV_THRESHOLD).filter(|t| !t.trim().is_empty()) {
            config.threshold = parse_threshold(&text)
                .map_err(|e| Error::input(format!("{ENV_THRESHOLD}: {e}")))?;
        }
        if let Some(text) = env(ENV_COOLDOWN).filter(|t| !t.trim().is_empty()) {
            config.cooldown = crate::duration::parse(&text)
                .map_err(|e| Error::input(format!("{ENV_COOLDOWN}: {e}")))?;
        }
        Ok(config)
    }
}

/// Parse a threshold: a whole number, at least 1.
pub fn parse_threshold(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            format!("`{text}` is not a threshold: give a whole number of failures, at least 1")
        })
}

/// Where the state file is: `explicit` (`--breaker-state`), else `$HUB_BREAKER_STATE`, else
/// `breaker.json` in the state folder in use ([`crate::statedir::in_use`]: `$HUB_STATE_DIR`, or
/// `.hub/` in the current folder), else `$XDG_STATE_HOME/hub/breaker.json`, else
/// `~/.local/state/hub/breaker.json`.
pub fn default_state_path(
    explicit: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let set = |key: &str| env(key).filter(|v| !v.is_empty());
    if let Some(path) = set(ENV_STATE) {
        return Ok(PathBuf::from(path));
    }
    if let Some(dir) = crate::statedir::in_use(&env) {
        return Ok(dir.join(crate::statedir::BREAKER_FILE));
    }
    // The XDG spec: a relative XDG_STATE_HOME is invalid and ignored.
    if let Some(state_home) = set("XDG_STATE_HOME").filter(|v| v.starts_with('/')) {
        return Ok(Path::new(&state_home).join("hub/breaker.json"));
    }
    if let Some(home) = set("HOME") {
        return Ok(Path::new(&home).join(".local/state/hub/breaker.json"));
    }
    Err(Error::input(
        "no place for the breaker state: pass --breaker-state PATH or set HUB_BREAKER_STATE or HOME",
    ))
}

/// A state change, for the caller to log and to write as a `breaker` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The key.
    pub key: String,
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// Consecutive failures after the change.
    pub consecutive_failures: u64,
    /// When it last opened; `None` when closed.
    pub opened_at: Option<u64>,
}

impl Transition {
    /// One line for the human log: `keycloak:start: circuit breaker closed → open (3 consecutive failures)`.
    pub fn describe(&self) -> String {
        format!(
            "{}: circuit breaker {} → {} ({} consecutive failure{})",
            self.key,
            self.from,
            self.to,
            self.consecutive_failures,
            if self.consecutive_failures == 1 {
                ""
            } else {
                "s"
            }
        )
    }
}

/// Why a trial was taken from its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The holder process is gone.
    HolderDied {
        /// Its pid.
        pid: u32,
    },
    /// The trial ran past `trial_timeout`.
    Overran {
        /// Its holder's pid.
        pid: u32,
    },
}

/// What [`Breaker::check`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Closed: run.
    Allowed,
    /// Half-open, and this caller holds the one trial: run, then record the outcome.
    Trial {
        /// The stale trial this one replaced, if any.
        released: Option<Released>,
    },
    /// Open (or half-open with the trial taken): do not run.
    Refused {
        /// When a check may next be allowed (an upper bound while a trial runs).
        retry_after: Duration,
        /// Consecutive failures so far.
        consecutive_failures: u64,
        /// `open`, or `half_open` when another caller holds the trial.
        state: State,
    },
}

impl Decision {
    /// True when the caller may run.
    pub fn allowed(&self) -> bool {
        !matches!(self, Decision::Refused { .. })
    }
}

/// The shared circuit breaker, stored in one state file.
#[derive(Debug, Clone)]
pub struct Breaker {
    file: LockedFile,
    config: Config,
    clock: Arc<dyn Clock>,
}

impl Breaker {
    /// A breaker on state file `path`. Nothing is read or written until it is used.
    pub fn new(path: impl Into<PathBuf>, config: Config, clock: Arc<dyn Clock>) -> Breaker {
        Breaker {
            file: LockedFile::new(path, config.lock_timeout),
            config,
            clock,
        }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// May this process run a call for `key`? A trial is held by this process.
    pub fn check(&self, key: &str) -> Result<(Decision, Option<Transition>)> {
        self.check_for(key, std::process::id())
    }

    /// May a call for `key` run, on behalf of process `holder` (who holds a trial, and whose
    /// death releases it)? `hub-breaker check` passes its parent, the script that will run the
    /// call and record its outcome.
    pub fn check_for(&self, key: &str, holder: u32) -> Result<(Decision, Option<Transition>)> {
        let now = self.clock.now_ms();
        // Fast path without the lock: a closed key needs no write, and a rename-replaced file
        // is always whole. Only a key that may change takes the lock.
        if self.read_key(key)?.state == State::Closed {
            return Ok((Decision::Allowed, None));
        }
        self.update_key(key, |entry| {
            let before = entry.state;
            let decision = match entry.state {
                State::Closed => Decision::Allowed,
                State::Open => {
                    let reopens = entry
                        .opened_at
                        .unwrap_or(0)
                        .saturating_add(crate::duration::to_ms(self.config.cooldown));
                    if now >= reopens {
                        entry.state = State::HalfOpen;
                        entry.trial = Some(new_trial(holder, now));
                        Decision::Trial { released: None }
                    } else {
                        Decision::Refused {
                            retry_after: Duration::from_millis(reopens - now),
                            consecutive_failures: entry.consecutive_failures,
                            state: State::Open,
                        }
                    }
                }
                State::HalfOpen => match self.trial_status(entry.trial.as_ref(), now) {
                    TrialStatus::Held { ends } => Decision::Refused {
                        retry_after: Duration::from_millis(ends.saturating_sub(now)),
                        consecutive_failures: entry.consecutive_failures,
                        state: State::HalfOpen,
                    },
                    TrialStatus::Free(released) => {
                        entry.trial = Some(new_trial(holder, now));
                        Decision::Trial { released }
                    }
                },
            };
            let changed = before != entry.state || matches!(decision, Decision::Trial { .. });
            Ok((changed, decision))
        })
    }

    /// Record a success for `key`: it closes the breaker and clears the failures.
    pub fn record_success(&self, key: &str) -> Result<Option<Transition>> {
        // Fast path: a closed key with no failures has nothing to record.
        let current = self.read_key(key)?;
        if current.state == State::Closed && current.consecutive_failures == 0 {
            return Ok(None);
        }
        self.update_key(key, |entry| {
            let changed = entry.state != State::Closed || entry.consecutive_failures != 0;
            *entry = KeyState::default();
            Ok((changed, ()))
        })
        .map(|((), transition)| transition)
    }

    /// Record a failure for `key`: it counts, opens the breaker at the threshold, and re-opens
    /// a half-open one. An open breaker keeps its `opened_at`.
    pub fn record_failure(&self, key: &str) -> Result<Option<Transition>> {
        self.record_failure_of(key, None)
    }

    /// [`Breaker::record_failure`], remembering `definition` (a hash of what failed) with the
    /// key for [`Breaker::forget_if_changed`].
    pub fn record_failure_of(
        &self,
        key: &str,
        definition: Option<&str>,
    ) -> Result<Option<Transition>> {
        let now = self.clock.now_ms();
        self.update_key(key, |entry| {
            entry.consecutive_failures = entry.consecutive_failures.saturating_add(1);
            if let Some(definition) = definition {
                entry.definition = Some(definition.to_owned());
            }
            match entry.state {
                State::Closed if entry.consecutive_failures >= self.config.threshold => {
                    entry.state = State::Open;
                    entry.opened_at = Some(now);
                }
                State::HalfOpen => {
                    entry.state = State::Open;
                    entry.opened_at = Some(now);
                    entry.trial = None;
                }
                State::Closed | State::Open => {}
            }
            Ok((true, ()))
        })
        .map(|((), transition)| transition)
    }

    /// Forget `key`'s failures when they were recorded for another definition than
    /// `definition`: the breaker protects against hammering the same broken thing, not against
    /// a fixed one. Returns the forgotten state (`None`: nothing recorded, or the same thing).
    pub fn forget_if_changed(&self, key: &str, definition: &str) -> Result<Option<KeyState>> {
        let current = self.read_key(key)?;
        if current
            .definition
            .as_deref()
            .is_none_or(|stored| stored == definition)
        {
            return Ok(None);
        }
        self.file.update(|bytes| {
            let mut doc = self.parse(bytes)?;
            match doc.keys.get(key) {
                Some(entry)
                    if entry
                        .definition
                        .as_deref()
                        .is_some_and(|stored| stored != definition) =>
                {
                    let old = doc.keys.remove(key);
                    Ok((Some(encode(&doc)?), old))
                }
                _ => Ok((None, None)),
            }
        })
    }

    /// Close the breakers of `keys` and forget their failures.
    pub fn reset(&self, keys: &[String]) -> Result<Vec<Transition>> {
        self.file.update(|current| {
            let mut doc = self.parse(current)?;
            let mut transitions = Vec::new();
            for key in keys {
                if let Some(entry) = doc.keys.remove(key)
                    && let Some(t) = transition(key, entry.state, &KeyState::default())
                {
                    transitions.push(t);
                }
            }
            Ok((Some(encode(&doc)?), transitions))
        })
    }

    /// Close every breaker: the state file is replaced by an empty one without being read,
    /// so this is also the fix for a corrupt file. Returns the keys' transitions when the old
    /// file could still be read.
    pub fn reset_all(&self) -> Result<Vec<Transition>> {
        self.file.update(|current| {
            let old = self.parse(current).ok().unwrap_or_default();
            let transitions = old
                .keys
                .iter()
                .filter_map(|(key, entry)| transition(key, entry.state, &KeyState::default()))
                .collect();
            Ok((Some(encode(&StateDoc::empty())?), transitions))
        })
    }

    /// Every key's stored state (read without the lock: the file is always whole).
    pub fn status(&self) -> Result<BTreeMap<String, KeyState>> {
        let bytes = self.file.read()?;
        Ok(self.parse(bytes.as_deref())?.keys)
    }

    /// One key's stored state (closed with no failures when unknown).
    pub fn read_key(&self, key: &str) -> Result<KeyState> {
        Ok(self.status()?.remove(key).unwrap_or_default())
    }

    /// When a stored key would next allow a call, from now (zero when it would now).
    pub fn retry_after(&self, entry: &KeyState) -> Duration {
        let now = self.clock.now_ms();
        let at = match entry.state {
            State::Closed => now,
            State::Open => entry
                .opened_at
                .unwrap_or(0)
                .saturating_add(crate::duration::to_ms(self.config.cooldown)),
            State::HalfOpen => match self.trial_status(entry.trial.as_ref(), now) {
                TrialStatus::Held { ends } => ends,
                TrialStatus::Free(_) => now,
            },
        };
        Duration::from_millis(at.saturating_sub(now))
    }

    /// Lock, apply `change` to `key`'s entry, write when it says so, and report the state
    /// change.
    fn update_key<T>(
        &self,
        key: &str,
        change: impl FnOnce(&mut KeyState) -> Result<(bool, T)>,
    ) -> Result<(T, Option<Transition>)> {
        let now = self.clock.now_ms();
        self.file.update(|current| {
            let mut doc = self.parse(current)?;
            let mut entry = doc.keys.get(key).cloned().unwrap_or_default();
            let before = entry.state;
            let (changed, value) = change(&mut entry)?;
            let transition = transition(key, before, &entry);
            if !changed {
                return Ok((None, (value, transition)));
            }
            entry.updated_at = now;
            if entry == KeyState::default_at(now) {
                doc.keys.remove(key);
            } else {
                doc.keys.insert(key.to_owned(), entry);
            }
            Ok((Some(encode(&doc)?), (value, transition)))
        })
    }

    /// Decode the file's contents; a missing file is an empty state, anything unreadable an
    /// error naming the file and the fix.
    fn parse(&self, bytes: Option<&[u8]>) -> Result<StateDoc> {
        let Some(bytes) = bytes else {
            return Ok(StateDoc::empty());
        };
        let doc: StateDoc = serde_json::from_slice(bytes).map_err(|e| {
            Error::input(format!(
                "the breaker state {} is corrupt ({e}); move it aside to inspect it, or start \
                 afresh with `hub-breaker reset --all`",
                self.path().display()
            ))
        })?;
        if doc.version > STATE_VERSION {
            return Err(Error::input(format!(
                "the breaker state {} has format version {}, newer than this hub ({STATE_VERSION}); \
                 upgrade hub, or start afresh with `hub-breaker reset --all`",
                self.path().display(),
                doc.version
            )));
        }
        Ok(doc)
    }

    fn trial_status(&self, trial: Option<&Trial>, now: u64) -> TrialStatus {
        let Some(trial) = trial else {
            return TrialStatus::Free(None);
        };
        let ends = trial
            .started_at
            .saturating_add(crate::duration::to_ms(self.config.trial_timeout));
        if !holder_alive(trial) {
            TrialStatus::Free(Some(Released::HolderDied { pid: trial.pid }))
        } else if now >= ends {
            TrialStatus::Free(Some(Released::Overran { pid: trial.pid }))
        } else {
            TrialStatus::Held { ends }
        }
    }
}

enum TrialStatus {
    Held { ends: u64 },
    Free(Option<Released>),
}

impl StateDoc {
    fn empty() -> StateDoc {
        StateDoc {
            version: STATE_VERSION,
            keys: BTreeMap::new(),
        }
    }
}

impl KeyState {
    fn default_at(now: u64) -> KeyState {
        KeyState {
            updated_at: now,
            ..KeyState::default()
        }
    }
}

fn encode(doc: &StateDoc) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(doc)
        .map_err(|e| Error::internal(format!("cannot encode the breaker state: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn transition(key: &str, from: State, after: &KeyState) -> Option<Transition> {
    (from != after.state).then(|| Transition {
        key: key.to_owned(),
        from,
        to: after.state,
        consecutive_failures: after.consecutive_failures,
        opened_at: after.opened_at,
    })
}

fn new_trial(pid: u32, now: u64) -> Trial {
    Trial {
        pid,
        pid_start: process_start(pid),
        started_at: now,
    }
}

/// Is a trial's holder still running (the same process, not a reused pid)?
fn holder_alive(trial: &Trial) -> bool {
    match trial.pid_start {
        Some(start) => process_start(trial.pid) == Some(start),
        None => crate::process::process_alive(trial.pid),
    }
}

/// A breaker key from the command line: not empty, no control characters (they would corrupt
/// the status table and the logs, and no one can type such a key back to reset it).
pub fn parse_key(key: &str) -> Result<String, String> {
    if key.is_empty() {
        return Err(
            "a breaker key cannot be empty; name it service:failure_type (keycloak:start)".into(),
        );
    }
    if key.chars().any(char::is_control) {
        return Err(format!(
            "breaker key {:?} holds a control character; use printable characters (keycloak:start)",
            key
        ));
    }
    Ok(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    struct Fixture {
        dir: PathBuf,
        clock: ManualClock,
        breaker: Breaker,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn fixture(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("hub-breaker-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let clock = ManualClock::new(1_000_000);
        let config = Config {
            threshold: 3,
            cooldown: Duration::from_secs(60),
            trial_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(5),
        };
        let breaker = Breaker::new(dir.join("breaker.json"), config, Arc::new(clock.clone()));
        Fixture {
            dir,
            clock,
            breaker,
        }
    }

    fn open(f: &Fixture, key: &str) -> Transition {
        f.breaker.record_failure(key).unwrap();
        f.breaker.record_failure(key).unwrap();
        f.breaker.record_failure(key).unwrap().unwrap()
    }

    #[test]
    fn closed_opens_at_the_threshold_and_refuses() {
        let f = fixture("opens");
        assert_eq!(f.breaker.check("k").unwrap(), (Decision::Allowed, None));
        assert_eq!(f.breaker.record_failure("k").unwrap(), None);
        assert_eq!(f.breaker.record_failure("k").unwrap(), None);
        assert_eq!(f.breaker.check("k").unwrap().0, Decision::Allowed);
        let opened = f.breaker.record_failure("k").unwrap().unwrap();
        assert_eq!((opened.from, opened.to), (State::Closed, State::Open));
        assert_eq!(opened.consecutive_failures, 3);
        assert_eq!(opened.opened_at, Some(1_000_000));
        f.clock.advance(Duration::from_secs(20));
        let (decision, transition) = f.breaker.check("k").unwrap();
        assert_eq!(
            decision,
            Decision::Refused {
                retry_after: Duration::from_secs(40),
                consecutive_failures: 3,
                state: State::Open
            }
        );
        assert_eq!(transition, None);
    }

    #[test]
    fn later_failures_keep_opened_at() {
        let f = fixture("opened-at");
        open(&f, "k");
        f.clock.advance(Duration::from_secs(10));
        assert_eq!(f.breaker.record_failure("k").unwrap(), None);
        let entry = f.breaker.read_key("k").unwrap();
        assert_eq!(entry.opened_at, Some(1_000_000));
        assert_eq!(entry.consecutive_failures, 4);
    }

    #[test]
    fn after_the_cooldown_exactly_one_trial_then_success_closes() {
        let f = fixture("trial-success");
        open(&f, "k");
        f.clock.advance(Duration::from_secs(60));
        let (decision, transition) = f.breaker.check_for("k", std::process::id()).unwrap();
        assert_eq!(decision, Decision::Trial { released: None });
        let t = transition.unwrap();
        assert_eq!((t.from, t.to), (State::Open, State::HalfOpen));
        // Everyone else is refused while the trial runs.
        for _ in 0..3 {
            let (decision, _) = f.breaker.check("k").unwrap();
            assert!(
                matches!(
                    decision,
                    Decision::Refused {
                        state: State::HalfOpen,
                        ..
                    }
                ),
                "{decision:?}"
            );
        }
        let closed = f.breaker.record_success("k").unwrap().unwrap();
        assert_eq!((closed.from, closed.to), (State::HalfOpen, State::Closed));
        assert_eq!(closed.consecutive_failures, 0);
        assert_eq!(closed.opened_at, None);
        assert_eq!(f.breaker.check("k").unwrap().0, Decision::Allowed);
        assert!(
            f.breaker.status().unwrap().is_empty(),
            "a closed key is forgotten"
        );
    }

    #[test]
    fn a_failed_trial_reopens_for_a_new_cooldown() {
        let f = fixture("trial-failure");
        open(&f, "k");
        f.clock.advance(Duration::from_secs(61));
        assert!(matches!(
            f.breaker.check("k").unwrap().0,
            Decision::Trial { .. }
        ));
        let reopened = f.breaker.record_failure("k").unwrap().unwrap();
        assert_eq!((reopened.from, reopened.to), (State::HalfOpen, State::Open));
        assert_eq!(reopened.opened_at, Some(1_061_000));
        assert_eq!(reopened.consecutive_failures, 4);
        f.clock.advance(Duration::from_secs(59));
        assert!(!f.breaker.check("k").unwrap().0.allowed());
        f.clock.advance(Duration::from_secs(1));
        assert!(matches!(
            f.breaker.check("k").unwrap().0,
            Decision::Trial { .. }
        ));
    }

    #[test]
    fn an_overrunning_trial_is_released() {
        let f = fixture("overrun");
        open(&f, "k");
        f.clock.advance(Duration::from_secs(60));
        assert!(matches!(
            f.breaker.check("k").unwrap().0,
            Decision::Trial { .. }
        ));
        f.clock.advance(Duration::from_secs(29));
        assert!(!f.breaker.check("k").unwrap().0.allowed());
        f.clock.advance(Duration::from_secs(1));
        let (decision, transition) = f.breaker.check("k").unwrap();
        assert_eq!(
            decision,
            Decision::Trial {
                released: Some(Released::Overran {
                    pid: std::process::id()
                })
            }
        );
        assert_eq!(transition, None, "still half-open");
    }

    #[test]
    fn a_dead_holders_trial_is_released() {
        let f = fixture("dead-holder");
        open(&f, "k");
        f.clock.advance(Duration::from_secs(60));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        assert!(matches!(
            f.breaker.check_for("k", dead).unwrap().0,
            Decision::Trial { .. }
        ));
        let (decision, _) = f.breaker.check("k").unwrap();
        assert_eq!(
            decision,
            Decision::Trial {
                released: Some(Released::HolderDied { pid: dead })
            }
        );
    }

    #[test]
    fn success_in_closed_state_clears_failures() {
        let f = fixture("clear");
        f.breaker.record_failure("k").unwrap();
        f.breaker.record_failure("k").unwrap();
        assert_eq!(f.breaker.record_success("k").unwrap(), None);
        f.breaker.record_failure("k").unwrap();
        f.breaker.record_failure("k").unwrap();
        assert_eq!(f.breaker.read_key("k").unwrap().state, State::Closed);
    }

    #[test]
    fn keys_are_independent_and_reset_closes() {
        let f = fixture("reset");
        open(&f, "a:start");
        f.breaker.record_failure("b:start").unwrap();
        assert_eq!(f.breaker.check("b:start").unwrap().0, Decision::Allowed);
        let transitions = f.breaker.reset(&["a:start".into(), "nope".into()]).unwrap();
        assert_eq!(transitions.len(), 1);
        assert_eq!(transitions[0].to, State::Closed);
        assert_eq!(
            f.breaker.read_key("b:start").unwrap().consecutive_failures,
            1
        );
        open(&f, "a:start");
        let transitions = f.breaker.reset_all().unwrap();
        assert_eq!(transitions.len(), 1);
        assert!(f.breaker.status().unwrap().is_empty());
    }

    #[test]
    fn a_corrupt_file_is_an_error_never_discarded() {
        let f = fixture("corrupt");
        open(&f, "k");
        std::fs::write(f.breaker.path(), b"{\"version\":1,\"keys\":{").unwrap();
        for err in [
            f.breaker.check("k").unwrap_err(),
            f.breaker.record_failure("k").unwrap_err(),
            f.breaker.record_success("k").unwrap_err(),
        ] {
            assert_eq!(err.code(), 2);
            assert!(
                err.message()
                    .contains(&f.breaker.path().display().to_string())
            );
            assert!(err.message().contains("hub-breaker reset --all"), "{err}");
        }
        assert_eq!(
            std::fs::read(f.breaker.path()).unwrap(),
            b"{\"version\":1,\"keys\":{",
            "left as it was"
        );
        f.breaker.reset_all().unwrap();
        assert_eq!(f.breaker.check("k").unwrap().0, Decision::Allowed);
    }

    #[test]
    fn state_paths_in_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let all = env(&[
            ("HUB_BREAKER_STATE", "/s/b.json"),
            ("XDG_STATE_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(
            default_state_path(Some(Path::new("mine.json")), all).unwrap(),
            Path::new("mine.json")
        );
        assert_eq!(
            default_state_path(None, all).unwrap(),
            Path::new("/s/b.json")
        );
        let xdg = env(&[("XDG_STATE_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(
            default_state_path(None, xdg).unwrap(),
            Path::new("/x/hub/breaker.json")
        );
        let relative = env(&[("XDG_STATE_HOME", "x"), ("HOME", "/h")]);
        assert_eq!(
            default_state_path(None, relative).unwrap(),
            Path::new("/h/.local/state/hub/breaker.json")
        );
        assert!(default_state_path(None, env(&[])).is_err());
    }

    #[test]
    fn config_from_env() {
        let config = Config::from_env(|k| match k {
            "CIRCUIT_BREAKER_THRESHOLD" => Some("5".into()),
            "CIRCUIT_BREAKER_TIMEOUT" => Some("90".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.threshold, 5);
        assert_eq!(config.cooldown, Duration::from_secs(90));
        let err = Config::from_env(|k| (k == "CIRCUIT_BREAKER_THRESHOLD").then(|| "0".into()))
            .unwrap_err();
        assert!(
            err.message().starts_with("CIRCUIT_BREAKER_THRESHOLD"),
            "{err}"
        );
        assert_eq!(Config::from_env(|_| None).unwrap(), Config::default());
    }

    #[test]
    fn process_start_reads_this_process() {
        assert!(process_start(std::process::id()).is_some());
        assert!(holder_alive(&new_trial(std::process::id(), 0)));
    }
}
