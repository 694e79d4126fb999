//! The human log on stderr, in the seed's style (`✅ redis is healthy (6.1s)`), and tracing setup.
//!
//! Operators read these lines while a deploy runs, so they stay short and recognisable.
//! Colour only on a terminal and never with `NO_COLOR`. `-q` keeps warnings and errors; `-v` adds
//! debug lines. `HUB_LOG` (a tracing filter, e.g. `debug`) and `HUB_LOG_FORMAT=json` steer the
//! tracing diagnostics; with `HUB_LOG_FORMAT=json` the human lines go out as JSON too.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicI8, Ordering};

static VERBOSITY: AtomicI8 = AtomicI8::new(0);
static COLOR: AtomicBool = AtomicBool::new(false);
static JSON: AtomicBool = AtomicBool::new(false);

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

/// Set verbosity (`-q` = -1, default 0, `-v` = 1) and start tracing per `HUB_LOG`/`HUB_LOG_FORMAT`.
pub fn init(verbosity: i8) {
    VERBOSITY.store(verbosity, Ordering::Relaxed);
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    COLOR.store(
        !no_color && std::io::stderr().is_terminal(),
        Ordering::Relaxed,
    );
    let json = std::env::var("HUB_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    JSON.store(json, Ordering::Relaxed);
    let default = if verbosity > 0 { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HUB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests calling twice) is harmless: keep the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.with_ansi(COLOR.load(Ordering::Relaxed)).try_init()
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

/// Write one human log line on stderr.
pub fn line(level: Level, message: &str) {
    let verbosity = VERBOSITY.load(Ordering::Relaxed);
    let shown = match level {
        // `-q` keeps what needs a reader's attention: what failed and what degraded.
        Level::Error | Level::Warn => true,
        Level::Debug => verbosity > 0,
        _ => verbosity >= 0,
    };
    if !shown {
        return;
    }
    let mut err = std::io::stderr().lock();
    if JSON.load(Ordering::Relaxed) {
        let object = serde_json::json!({
            "ts": crate::time::now_ms(),
            "level": format!("{level:?}").to_ascii_lowercase(),
            "message": message,
        });
        let _ = writeln!(err, "{object}");
        return;
    }
    let (icon, colour) = match level {
        Level::Error => ("❌", "31"),
        Level::Warn => ("⚠️ ", "33"),
        Level::Success => ("✅", "32"),
        Level::Info => ("ℹ", "36"),
        Level::Debug => ("·", "2"),
    };
    // Errors from writing the log are ignored: a closed stderr must not stop a deploy.
    let _ = if color() {
        writeln!(err, "\x1b[{colour}m{icon} {message}\x1b[0m")
    } else {
        writeln!(err, "{icon} {message}")
    };
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
