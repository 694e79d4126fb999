//! `hub-report`'s arguments, its `trend` and `status` subcommands included, parsed once into
//! [`Cli`]: the report and its subcommands read fields, never look a value up by name.

use clap::{Args, Parser, Subcommand, ValueEnum};
use hub::cli::{BreakerState, Common, ComposeCmd, StateDir};
use std::path::PathBuf;
use std::time::Duration;

const LONG_ABOUT: &str = "Report a deploy from its event records (JSON lines, as hub-start and \
             hub-wait-healthy write them): one row per service grouped by level, a summary, the \
             critical path, and failure hints.\n\n\
             Reads the FILEs in turn (- or none: stdin). A file may hold several runs, told \
             apart by run_id: the report is of the run whose first record comes last, or of \
             --run ID. A malformed line is reported as FILE:LINE on stderr and skipped \
             (--strict: exit 2); a truncated last line is tolerated.";

const AFTER_HELP: &str = "Exit status: 0 report written (whatever the deploy's outcome), 1 with --check when \
             the run is not ok (a CORE service failed or was skipped, or it was interrupted), 2 bad input (unreadable file, no \
             records, unknown --run, a malformed line with --strict).\n\n\
             `hub-report trend --history FILE` summarises many runs; see `hub-report trend --help`. \
             `hub-levels | hub-report status` shows a deployed stack's state now; see `hub-report status --help`.\n\
             Environment: NO_COLOR disables colour (text is coloured only on a terminal).";

/// Report a deploy from its event records: text, JSON, Markdown, HTML, Prometheus
#[derive(Debug, Parser)]
#[command(
    version,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true,
)]
pub struct Cli {
    /// Event files (JSON lines); - or none reads stdin
    #[arg(value_name = "FILE")]
    pub files: Vec<String>,
    /// What the report is written as
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the report to FILE atomically (temp file, then rename) instead of stdout
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Report this run id [default: the run whose first record comes last]
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// List the runs in the input (id, first record, records) and exit
    #[arg(long = "list-runs", conflicts_with_all = ["run", "format", "history"])]
    pub list_runs: bool,
    /// Also append this run's JSON summary, one line, to FILE (for `trend`)
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// `--strict`.
    #[command(flatten)]
    pub strict: Strict,
    /// Exit 1 when the run is not ok: a CORE service failed or was skipped, or it was interrupted
    #[arg(long)]
    pub check: bool,
    /// `trend` or `status`; none reports a run.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `-q`, `-v`, `--color`.
    #[command(flatten)]
    pub common: Common,
}

hub::tool!(Cli);

/// `--strict`, in the report and in `trend`.
#[derive(Debug, Clone, Args)]
pub struct Strict {
    /// A malformed line is an error (exit 2), not a warning
    #[arg(long)]
    pub strict: bool,
}

/// `--format`: what the report is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For a terminal.
    Text,
    /// One object.
    Json,
    /// CI job summaries, pull-request comments.
    Markdown,
    /// One self-contained file with the timeline.
    Html,
    /// The textfile collector's format.
    Prometheus,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Trends across deploys.
    #[command(
        about = "Trends across deploys from a history file: median/p95 time to healthy, success rate, regressions",
        after_help = TREND_AFTER_HELP
    )]
    Trend(TrendArgs),
    /// A deployed stack now.
    #[command(
        about = "The state of a deployed stack now: one row per service, health probed now",
        long_about = STATUS_LONG_ABOUT,
        after_help = STATUS_AFTER_HELP,
        mut_arg("state_dir", |arg| arg.help("The state folder the deploy wrote [default: $HUB_STATE_DIR, else .hub]")),
    )]
    Status(StatusArgs),
}

const TREND_AFTER_HELP: &str = "Regression: the latest run's time to healthy (or the deploy's duration) is more than \
             --regression × the median of the earlier runs in the window (at least 3 earlier \
             values are needed).\n\n\
             Exit status: 0 no regression, 1 a regression was flagged, 2 bad input (unreadable \
             history, no runs, a malformed line with --strict).";

/// `hub-report trend`'s arguments.
#[derive(Debug, Args)]
pub struct TrendArgs {
    /// The history file `hub-report --history FILE` appends to
    #[arg(long, value_name = "FILE")]
    pub history: String,
    /// Only the last N runs
    #[arg(long, value_name = "N", default_value = "30", value_parser = clap::value_parser!(u32).range(1..))]
    pub last: u32,
    /// Flag the latest run when slower than FACTOR × the earlier runs' median
    #[arg(long, value_name = "FACTOR", default_value = "1.5", value_parser = crate::trend::parse_factor)]
    pub regression: f64,
    /// What the trend is written as
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = TrendFormat::Text)]
    pub format: TrendFormat,
    /// Write to FILE atomically instead of stdout
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// `--strict`.
    #[command(flatten)]
    pub strict: Strict,
}

/// `trend --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrendFormat {
    /// A table.
    Text,
    /// One object.
    Json,
    /// A chart per service.
    Html,
}

const STATUS_LONG_ABOUT: &str = "The state of a deployed stack now. Reads the stack's `plan` records on stdin \
             (`hub-levels -f compose.yaml | hub-report status`), the state folder the deploy \
             wrote (pid files, logs, the breaker's state, the newest events file in \
             STATE_DIR/events/), and probes each service once, all at once, each probe bounded \
             by --probe-timeout.\n\n\
             States: healthy, unhealthy (the probe failed), running (alive, no check to run), \
             completed (a one-shot job that exited 0), exited (its process or container is gone; \
             with its status when known), stopped (hub-down removed it), never started.\n\n\
             --format json writes one `service_status` record per service (docs/records.md).";

const STATUS_AFTER_HELP: &str = "Exit status: 0 every CORE service is healthy (a CORE one-shot job: completed), 1 one \
             is not, 2 bad input (no plans on stdin, an unreadable state folder).";

/// `hub-report status`'s arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// `--state-dir`.
    #[command(flatten)]
    pub state_dir: StateDir,
    /// What the states are written as
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,
    /// The longest one probe may take (a service's own probe timeout, if shorter, wins)
    #[arg(long = "probe-timeout", value_name = "DURATION", default_value = "2s", value_parser = hub::duration::parse)]
    pub probe_timeout: Duration,
    /// `--breaker-state`.
    #[command(flatten)]
    pub breaker_state: BreakerState,
    /// `--compose-cmd`.
    #[command(flatten)]
    pub compose: ComposeCmd,
}

/// `status --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    /// A table.
    Text,
    /// `service_status` records.
    Json,
}
