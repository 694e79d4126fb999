//! What every tool's `main` shares: parsing its arguments once into its own typed struct (clap
//! derive), the flags several tools have, declared here once and flattened into theirs
//! (`-q`/`-v`/`--color`, `--run-id`, `--events`, `--state-dir`, `--compose-cmd`, the
//! breaker's), turning a [`crate::Error`] into a one-line message and an exit status, and the
//! shell completions and man page generated from the same definition as `--help` (so they cannot
//! drift). A flag's help is its field's doc comment; each sits on one attribute line, so the
//! flags of different tools read as a table rather than as look-alike blocks.

use crate::{Error, Result};
use clap::{ArgAction, Args, Command, Parser, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// When to colour: `--color WHEN`, a flag every tool has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// On a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl Color {
    /// Colour on a stream that is (or is not) a terminal: `auto` asks it and `NO_COLOR`.
    pub fn enabled(self, is_terminal: bool) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
}

/// The flags every tool has: `--color`, `-q/--quiet`, `-v/--verbose` (global: they may follow
/// a subcommand).
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// When to colour the output
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = Color::Auto, global = true)]
    pub color: Color,
    /// Print only warnings and errors on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print debug lines on stderr
    #[arg(short, long, action = ArgAction::Count, global = true, conflicts_with = "quiet")]
    pub verbose: u8,
}

impl Common {
    /// The log's verbosity: -1 quiet, 0 normal, 1 debug.
    pub fn verbosity(&self) -> i8 {
        if self.quiet {
            -1
        } else {
            i8::from(self.verbose > 0)
        }
    }
}

/// `--run-id ID` (or `HUB_RUN_ID`): the run id put in the records a tool writes.
#[derive(Debug, Clone, Args)]
pub struct RunId {
    /// The run id put in records
    #[arg(long = "run-id", value_name = "ID", env = "HUB_RUN_ID", global = true)]
    pub run_id: Option<String>,
}

/// `--events FILE`: append the tool's records to FILE (`-` is stdout).
#[derive(Debug, Clone, Args)]
pub struct Events {
    /// Append the records to FILE; - is stdout
    #[arg(long, value_name = "FILE", global = true)]
    pub events: Option<PathBuf>,
}

/// `--state-dir DIR`: the deploy's state folder (logs, pid files, the breaker, events).
#[derive(Debug, Clone, Args)]
pub struct StateDir {
    /// Where logs, pid files and the breaker state live [default: $HUB_STATE_DIR, else .hub]
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl StateDir {
    /// The folder, absolute: `--state-dir`, else `$HUB_STATE_DIR`, else `.hub`.
    pub fn resolve(&self) -> Result<PathBuf> {
        crate::statedir::absolute_from_env(self.state_dir.as_deref())
    }
}

/// `--compose-cmd CMD`: the compose command for container services (else detected once).
#[derive(Debug, Clone, Args)]
pub struct ComposeCmd {
    /// The compose command for container services, e.g. "docker-compose" [default: $DOCKER_CMD,
    /// else `docker compose` if it works, else docker-compose]
    #[arg(long = "compose-cmd", value_name = "CMD")]
    pub compose_cmd: Option<String>,
}

/// `--breaker-state PATH`: the circuit breaker's state file.
#[derive(Debug, Clone, Args)]
pub struct BreakerState {
    /// The circuit breaker's state file [default: $HUB_BREAKER_STATE, else STATE_DIR/breaker.json]
    #[arg(long = "breaker-state", value_name = "PATH", global = true)]
    pub breaker_state: Option<PathBuf>,
}

impl BreakerState {
    /// The state file of a deploy: `--breaker-state`, else `$HUB_BREAKER_STATE`, else
    /// `STATE_DIR/breaker.json`.
    pub fn of_deploy(&self, state_dir: &Path) -> PathBuf {
        self.breaker_state
            .clone()
            .or_else(|| std::env::var_os(crate::breaker::ENV_STATE).map(PathBuf::from))
            .unwrap_or_else(|| state_dir.join(crate::statedir::BREAKER_FILE))
    }

    /// The state file of a breaker used on its own (`hub-breaker`, `hub-retry --breaker`):
    /// see [`crate::breaker::default_state_path`].
    pub fn standalone(&self) -> Result<PathBuf> {
        crate::breaker::default_state_path(self.breaker_state.as_deref(), |key| {
            std::env::var(key).ok()
        })
    }
}

/// The breaker's policy, one flag per concept in every tool with a breaker: `--threshold`
/// (`$CIRCUIT_BREAKER_THRESHOLD`) and the cool-down `--cooldown` (`$CIRCUIT_BREAKER_TIMEOUT`,
/// the seed's name for it).
#[derive(Debug, Clone, Args)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker
    #[arg(long, value_name = "N", env = crate::breaker::ENV_THRESHOLD, default_value = "3", global = true)]
    pub threshold: String,
    /// How long an open breaker refuses calls before one trial (bare number = seconds)
    #[arg(long, value_name = "D", env = crate::breaker::ENV_COOLDOWN, default_value = "60s", global = true)]
    pub cooldown: String,
}

/// `--threshold`'s value; the message names the variable too, since it may have come from there.
fn threshold(text: &str) -> std::result::Result<u64, String> {
    crate::breaker::parse_threshold(text).map_err(|e| {
        format!(
            "{e} (set by --threshold, else ${})",
            crate::breaker::ENV_THRESHOLD
        )
    })
}

/// `--cooldown`'s value, as [`threshold`].
fn cooldown(text: &str) -> std::result::Result<Duration, String> {
    crate::duration::parse(text).map_err(|e| {
        format!(
            "{e} (set by --cooldown, else ${})",
            crate::breaker::ENV_COOLDOWN
        )
    })
}

/// The breaker options `hub-breaker` and `hub-retry` share: the policy, the state file (the old
/// `--state` name still works), and the two timeouts of a standalone breaker.
#[derive(Debug, Clone, Args)]
pub struct BreakerArgs {
    /// `--breaker-state`.
    #[command(flatten)]
    pub state: BreakerState,
    /// `--threshold`, `--cooldown`.
    #[command(flatten)]
    pub policy: BreakerPolicy,
    /// A half-open trial still running after this is released to the next caller
    #[arg(long = "trial-timeout", value_name = "D", default_value = "60s", value_parser = crate::duration::parse, global = true)]
    pub trial_timeout: Duration,
    /// How long to wait for the state file's lock before failing (exit 2)
    #[arg(long = "lock-timeout", value_name = "D", default_value = "10s", value_parser = crate::duration::parse, global = true)]
    pub lock_timeout: Duration,
}

/// The help of `--breaker-state` for a breaker used on its own ([`BreakerState::standalone`]).
pub const STANDALONE_BREAKER_STATE_HELP: &str = "The breaker state file [default: $HUB_BREAKER_STATE, else breaker.json in $HUB_STATE_DIR or in .hub/ when it exists here (where hub-deploy keeps it), else $XDG_STATE_HOME/hub/breaker.json, else ~/.local/state/hub/breaker.json]";

impl BreakerPolicy {
    /// A breaker configuration with this policy and the default timeouts. The values are
    /// checked here, when a breaker is used, not while parsing: a stray
    /// `CIRCUIT_BREAKER_THRESHOLD` in the environment must not stop `hub-down` or a
    /// `hub-retry` without `--breaker`.
    pub fn config(&self) -> Result<crate::breaker::Config> {
        Ok(crate::breaker::Config {
            threshold: threshold(&self.threshold).map_err(Error::input)?,
            cooldown: cooldown(&self.cooldown).map_err(Error::input)?,
            ..crate::breaker::Config::default()
        })
    }
}

impl BreakerArgs {
    /// The breaker these options describe.
    pub fn breaker(&self) -> Result<crate::breaker::Breaker> {
        let config = crate::breaker::Config {
            trial_timeout: self.trial_timeout,
            lock_timeout: self.lock_timeout,
            ..self.policy.config()?
        };
        Ok(crate::breaker::Breaker::new(
            self.state.standalone()?,
            config,
            std::sync::Arc::new(crate::clock::SystemClock),
        ))
    }
}

/// The grace between TERM and KILL is `--kill-after` (GNU `timeout`'s name) in every tool; the
/// names other tools once used still work, hidden.
pub const KILL_AFTER_ALIASES: [&str; 2] = ["grace", "stop-grace"];

/// A tool's parsed arguments: its own struct (clap derive), which flattens [`Common`].
pub trait Tool: Parser {
    /// The flags every tool has.
    fn common(&self) -> &Common;
}

/// Make a tool's argument struct (a clap `Parser` with a `common: Common` field) a [`Tool`],
/// with a test that clap's own consistency checks pass on its definition.
#[macro_export]
macro_rules! tool {
    ($cli:ty) => {
        impl $crate::cli::Tool for $cli {
            fn common(&self) -> &$crate::cli::Common {
                &self.common
            }
        }

        #[cfg(test)]
        #[test]
        fn the_definition_passes_clap_s_own_checks() {
            <$cli as clap::CommandFactory>::command().debug_assert();
        }
    };
}

/// Run a tool: parse its arguments once into `T`, set up logging, call `run`, and exit with
/// its status.
///
/// `run` returns the exit status on success (a tool may succeed with 1, a clear "no"), or an
/// error that carries its own status. Usage errors exit 2 (clap's convention, and ours).
pub fn main<T: Tool>(run: fn(T) -> Result<u8>) -> ExitCode {
    let command = T::command();
    let name = command.get_name().to_owned();
    // Hidden, for `scripts/install`: read before clap, so a tool's required arguments do not
    // stand in the way.
    let mut args = std::env::args_os().skip(1);
    match args.next().as_ref().and_then(|a| a.to_str()) {
        Some("--generate-completions") => {
            let shell = args.next().and_then(|s| s.into_string().ok());
            return generate_completions(command, shell.as_deref());
        }
        Some("--generate-man") => return generate_man(command),
        _ => {}
    }
    let parsed = match T::try_parse() {
        Ok(parsed) => parsed,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                crate::error::exit::ERROR
            } else {
                0
            });
        }
    };
    let common = parsed.common();
    crate::log::init_with(
        common.verbosity(),
        common
            .color
            .enabled(std::io::IsTerminal::is_terminal(&std::io::stderr())),
    );
    match run(parsed) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if !err.is_quiet() {
                eprintln!("{name}: {err}");
            }
            ExitCode::from(err.code())
        }
    }
}

/// `TOOL --generate-completions bash|zsh|fish|elvish|powershell`: the completion script on stdout.
fn generate_completions(mut command: Command, shell: Option<&str>) -> ExitCode {
    let name = command.get_name().to_owned();
    let Some(shell) = shell.and_then(|s| s.parse::<clap_complete::Shell>().ok()) else {
        eprintln!(
            "{name}: --generate-completions needs a shell: bash, zsh, fish, elvish or powershell"
        );
        return ExitCode::from(crate::error::exit::ERROR);
    };
    clap_complete::generate(shell, &mut command, name, &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// `TOOL --generate-man`: its man page (section 1, roff) on stdout.
fn generate_man(command: Command) -> ExitCode {
    let name = command.get_name().to_owned();
    match clap_mangen::Man::new(command).render(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: writing the man page: {e}");
            ExitCode::from(crate::error::exit::ERROR)
        }
    }
}
