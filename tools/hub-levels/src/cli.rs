//! `hub-levels`' arguments, parsed once into [`Cli`]: `run` reads fields, never looks a value
//! up by name.

use clap::{Parser, ValueEnum};
use hub::cli::{Common, ComposeCmd, RunId};
use hub::records::Class;
use std::path::PathBuf;

const LONG_ABOUT: &str = "Read compose files and print their services in dependency levels.\n\n\
             Writes one JSON `plan` record per service (ordered by level, then name) for \
             hub-start, or a text or Graphviz view. A service's level is 0 with no dependencies, \
             else 1 + the highest level of its dependencies. A service that a dependent waits \
             for with `condition: service_completed_successfully` is a one-shot job (health \
             kind `completed`: done when it exits 0).\n\n\
             Multiple -f files merge per service as compose merges them (mappings such as x-hub merge key by key; depends_on and labels merge in either form; profiles append; commands and scalars from a later file replace the earlier ones), and so do the YAML documents (---) of one file; \
             string values are interpolated as compose does (${VAR}, ${VAR:-default}, $$ for $; from the \
             environment, then .env in the project directory or the --env-file files, read as compose reads them); include and extends \
             are applied as compose applies them. --resolve lets compose resolve the files itself \
             (`docker compose config`) and plans from its output.\n\n\
             A local service (x-hub.start or x-hub.run) runs as compose would run its container: \
             in the project directory (or its working_dir, relative to it), with its environment \
             and env_file variables (compose's precedence) over the inherited ones, and, with no \
             x-hub.health, probed with its compose healthcheck (CMD, CMD-SHELL, NONE, disable; \
             interval caps the probe gaps, timeout bounds a probe, start_period is kept, and \
             start_period + retries × interval is its deadline unless x-hub.timeout says). What \
             compose would do and hub does not for a process (ports, volumes, restart, …) is \
             warned about, one line per service.";

const AFTER_HELP: &str = "Exit status: 0 ok (warnings on stderr), 2 bad input (malformed file, unknown \
             dependency, cycle, invalid x-hub value, …).\n\n\
             Environment: COMPOSE_PROFILES (when no --profile; else from .env), COMPOSE_ENV_FILES (when no --env-file), TIMEOUT_<SERVICE> (overrides a \
             timeout), RETRY_MAX_ATTEMPTS / RETRY_BASE_DELAY / RETRY_MAX_DELAY (retry defaults), \
             HUB_RUN_ID (the run id put in every record).";

/// Read compose files and print their services in dependency levels
#[derive(Debug, Parser)]
#[command(
    version,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    mut_arg("run_id", |arg| arg.help("The run id put in every record [default: generated]")),
    mut_arg("compose_cmd", |arg| arg.requires("resolve").help("The compose command --resolve runs [default: $DOCKER_CMD, else `docker compose`, else `docker-compose`]")),
)]
pub struct Cli {
    /// Compose file, YAML or JSON (repeatable; - reads stdin) [default: $COMPOSE_FILE, else
    /// compose.yaml, docker-compose.yml, … here or above, with compose.override.yml beside it]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<Vec<String>>,
    /// The project directory, as compose's: .env is read from it, local services run in it (and
    /// relative paths in their commands, working_dir and env_file start there), and with no -f the
    /// compose file is looked for in it [default: the first file's folder]
    #[arg(long = "project-directory", value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// An env file to read instead of the project's .env, as compose's --env-file (repeatable: read
    /// in order, a later one wins; relative to the current folder; passed on to compose for
    /// containers and --resolve) [default: $COMPOSE_ENV_FILES, comma-separated, else .env in the
    /// project directory]
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<String>,
    /// Activate a profile (repeatable; * activates all) [default: $COMPOSE_PROFILES]
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profile: Option<Vec<String>>,
    /// Let compose resolve the files first: run `COMPOSE -f FILE… [--profile P]… config` and plan
    /// from its output (every service it keeps is active; nothing is filtered again)
    #[arg(long, conflicts_with = "resolved")]
    pub resolve: bool,
    /// The input is already `docker compose config` output (e.g. `-f -`): take every service in it
    /// as active, with no profile filtering again
    #[arg(long)]
    pub resolved: bool,
    /// `--compose-cmd`.
    #[command(flatten)]
    pub compose: ComposeCmd,
    /// The label that carries a service's class when x-hub.class is absent (e.g.
    /// dive.service.class)
    #[arg(long = "class-label", value_name = "KEY", default_value = "hub.class")]
    pub class_label: String,
    /// The class of services with no class (x-hub.class, else the class label): core, as compose
    /// treats every service as required; `optional` is the seed's old default
    #[arg(long = "default-class", value_name = "CLASS", value_enum, default_value_t = Class::Core)]
    pub default_class: Class,
    /// What to print
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Deploy the container services onto Docker Swarm as stack STACK: their backend becomes
    /// `swarm` (released one by one with `docker stack deploy`, in dependency order; see
    /// docs/swarm.md)
    #[arg(long, value_name = "STACK", value_parser = hub::swarm::stack_name)]
    pub swarm: Option<String>,
    /// Highest level first (teardown order)
    #[arg(long)]
    pub reverse: bool,
    /// Only the services of level N
    #[arg(long, value_name = "N")]
    pub level: Option<u32>,
    /// Print the number of levels and nothing else
    #[arg(long, conflicts_with_all = ["level", "format", "reverse"])]
    pub count: bool,
    /// `--run-id`.
    #[command(flatten)]
    pub run_id: RunId,
    /// `-q`, `-v`, `--color`.
    #[command(flatten)]
    pub common: Common,
}

hub::tool!(Cli);

/// `--format`: what the plan is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `plan` records (JSON lines), for hub-start.
    Json,
    /// `Level 0: a b` lines.
    Text,
    /// What would start and how (hub-deploy --dry-run).
    Table,
    /// Graphviz.
    Dot,
}
