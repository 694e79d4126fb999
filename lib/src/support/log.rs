//! The human log on stderr, in the seed's style (`✅ redis is healthy (6.1s)`), through `tracing`.
//!
//! Operators read these lines while a deploy runs, so they stay short and recognisable. Every
//! line is a `tracing` event whose target is the tool (`hub_start`, `hub_retry`, …), so one
//! filter decides what shows: `-q` keeps warnings and errors, the default adds progress and
//! successes, `-v` adds debug lines, and `HUB_LOG` (a tracing filter such as `debug` or
//! `hub_start=debug`) adds to that. A layer of this module formats the events as the emoji
//! lines (colour only on a terminal and never with `NO_COLOR`); `HUB_LOG_FORMAT=json` formats
//! them as JSON objects instead, one per line, for machines.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI8, Ordering};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

static VERBOSITY: AtomicI8 = AtomicI8::new(0);
static COLOR: AtomicBool = AtomicBool::new(false);
static TOOL: OnceLock<String> = OnceLock::new();

/// The kinds of human log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `❌`: something failed.
    Error,
    /// `⚠️`: something degraded, or is slow.
    Warn,
    /// `✅`: something succeeded.
    Success,
    /// `ℹ`: progress.
    Info,
    /// Detail, shown with `-v`.
    Debug,
}

impl Level {
    /// As the `kind` field of its event says it (success and progress share tracing's INFO).
    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Success => "success",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// Set verbosity (`-q` = -1, default 0, `-v` = 1) and start the log: the filter from the
/// verbosity plus `HUB_LOG`, the format from `HUB_LOG_FORMAT`, colour on a terminal unless
/// `NO_COLOR`. The tool is the program's name.
pub fn init(verbosity: i8) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    init_with(verbosity, !no_color && std::io::stderr().is_terminal());
}

/// [`init`], with colour decided by the caller (`--color`).
pub fn init_with(verbosity: i8, color: bool) {
    VERBOSITY.store(verbosity, Ordering::Relaxed);
    COLOR.store(color, Ordering::Relaxed);
    let tool = std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().replace('-', "_")))
        .unwrap_or_default();
    let _ = TOOL.set(tool);
    let ours = match verbosity {
        ..0 => "warn",
        0 => "info",
        _ => "debug",
    };
    // Other crates' events (an HTTP client's, say) stay at warnings unless HUB_LOG asks.
    let default = std::iter::once("warn".to_owned())
        .chain(TARGETS.iter().map(|t| format!("{t}={ours}")))
        .collect::<Vec<_>>()
        .join(",");
    // HUB_LOG's directives come after the default, so a target it names (`hub_start=debug`)
    // overrides the default for that target only. A filter it cannot parse is ignored whole.
    let filter = std::env::var("HUB_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|extra| tracing_subscriber::EnvFilter::try_new(format!("{default},{extra}")).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    let json = json();
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests calling twice) is harmless: the first subscriber stays.
    let _ = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry.with(Human).try_init()
    };
}

/// True when the log is JSON (`HUB_LOG_FORMAT=json`): no live terminal lines then.
pub fn json() -> bool {
    std::env::var("HUB_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"))
}

/// The layer that writes events as the seed's emoji lines.
struct Human;

/// The two fields a human line is made of.
#[derive(Default)]
struct Fields {
    message: String,
    kind: Option<&'static str>,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "kind" => {
                self.kind = [Level::Success, Level::Info]
                    .into_iter()
                    .map(Level::as_str)
                    .find(|k| *k == value);
            }
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write as _;
            let _ = write!(self.message, "{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Human {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warn,
            tracing::Level::INFO if fields.kind == Some("success") => Level::Success,
            tracing::Level::INFO => Level::Info,
            _ => Level::Debug,
        };
        write_human(level, &fields.message);
    }
}

/// One emoji line on stderr.
fn write_human(level: Level, message: &str) {
    let (icon, colour) = match level {
        Level::Error => ("❌", "31"),
        Level::Warn => ("⚠️ ", "33"),
        Level::Success => ("✅", "32"),
        Level::Info => ("ℹ", "36"),
        Level::Debug => ("·", "2"),
    };
    let mut err = std::io::stderr().lock();
    // Errors from writing the log are ignored: a closed stderr must not stop a deploy.
    let _ = if color() {
        writeln!(err, "\x1b[{colour}m{icon} {message}\x1b[0m")
    } else {
        writeln!(err, "{icon} {message}")
    };
}

/// True when stderr gets colour.
pub fn color() -> bool {
    COLOR.load(Ordering::Relaxed)
}

/// True when `-q` was given.
pub fn quiet() -> bool {
    VERBOSITY.load(Ordering::Relaxed) < 0
}

/// The targets hub's lines are logged under: the library's and each tool's.
const TARGETS: [&str; 7] = [
    "hub",
    "hub_start",
    "hub_wait_healthy",
    "hub_levels",
    "hub_retry",
    "hub_breaker",
    "hub_report",
];

/// Write one human log line: a `tracing` event of the tool's target, at the line's level.
pub fn line(level: Level, message: &str) {
    let tool = TOOL.get().map_or("", String::as_str);
    // A target is part of an event's static metadata, so each tool's is spelt out here.
    macro_rules! at {
        ($target:literal) => {
            match level {
                Level::Error => tracing::error!(target: $target, kind = level.as_str(), "{message}"),
                Level::Warn => tracing::warn!(target: $target, kind = level.as_str(), "{message}"),
                Level::Success | Level::Info => {
                    tracing::info!(target: $target, kind = level.as_str(), "{message}")
                }
                Level::Debug => tracing::debug!(target: $target, kind = level.as_str(), "{message}"),
            }
        };
    }
    match tool {
        "hub_start" => at!("hub_start"),
        "hub_wait_healthy" => at!("hub_wait_healthy"),
        "hub_levels" => at!("hub_levels"),
        "hub_retry" => at!("hub_retry"),
        "hub_breaker" => at!("hub_breaker"),
        "hub_report" => at!("hub_report"),
        _ => at!("hub"),
    }
}

/// `❌ message`
pub fn error(message: &str) {
    line(Level::Error, message);
}

/// `⚠️ message`
pub fn warn(message: &str) {
    line(Level::Warn, message);
}

/// `✅ message`
pub fn success(message: &str) {
    line(Level::Success, message);
}

/// `ℹ message`
pub fn info(message: &str) {
    line(Level::Info, message);
}

/// A debug line, shown with `-v`.
pub fn debug(message: &str) {
    line(Level::Debug, message);
}
