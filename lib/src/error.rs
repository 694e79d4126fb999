//! Errors that carry the exit status they end the program with.
//!
//! Nothing below `main` exits the process: functions return an [`Error`] and the tool's
//! `main` (through [`crate::cli::main`]) prints its one-line message and exits with its code.

use std::fmt;

/// The exit statuses every hub tool shares. Tools document which ones they use.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A clear "no": a CORE service failed, a check said no.
    pub const NO: u8 = 1;
    /// An error: bad input, bad usage, an environment problem.
    pub const ERROR: u8 = 2;
    /// Refused by an open circuit breaker (`EX_TEMPFAIL` from sysexits.h).
    pub const REFUSED: u8 = 75;
    /// An attempt timed out (as GNU `timeout`).
    pub const TIMED_OUT: u8 = 124;
    /// Interrupted by SIGINT.
    pub const INTERRUPTED: u8 = 130;
    /// Terminated by SIGTERM.
    pub const TERMINATED: u8 = 143;
}

/// An error with the exit status it should end the program with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: u8,
    message: String,
    quiet: bool,
}

/// The result type of everything fallible in hub.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with an explicit exit status.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            quiet: false,
        }
    }

    /// Bad input or usage: exit status 2.
    pub fn input(message: impl Into<String>) -> Self {
        Error::new(exit::ERROR, message)
    }

    /// A downstream reader closed the pipe: exit quietly with status 0, as `head` expects.
    pub fn broken_pipe() -> Self {
        Error {
            code: exit::OK,
            message: "broken pipe".into(),
            quiet: true,
        }
    }

    /// An I/O error with what was being done, mapping a broken pipe to [`Error::broken_pipe`].
    pub fn io(context: impl fmt::Display, err: &std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            return Error::broken_pipe();
        }
        Error::input(format!("{context}: {err}"))
    }

    /// The exit status this error ends the program with.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True when nothing should be printed (a broken pipe).
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
