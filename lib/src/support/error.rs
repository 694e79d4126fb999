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

/// What an error is about: whose move it is to fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad input or usage: the caller fixes their arguments, files or records (exit 2).
    Input,
    /// The environment failed: a file, a pipe, a process, the docker engine (exit 2). The
    /// cause is the error's [`std::error::Error::source`].
    Environment,
    /// A bug in hub: something hub itself got wrong (exit 2, and the message says so).
    Internal,
    /// An outcome with its own exit status ([`Error::new`]): refused, timed out, a command's
    /// status passed on.
    Status,
    /// Nothing to say: a reader closed the pipe (exit 0, as `head` expects).
    Quiet,
}

/// The cause of an environment error, shared so the error stays cheap to clone.
type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// An error with the exit status it should end the program with, what it is about
/// ([`Kind`]) and, for an environment failure, its cause.
#[derive(Debug, Clone)]
pub struct Error {
    kind: Kind,
    code: u8,
    message: String,
    source: Option<Cause>,
}

impl PartialEq for Error {
    /// Two errors are equal when they say the same: kind, status and message (the cause is
    /// part of the message).
    fn eq(&self, other: &Self) -> bool {
        (self.kind, self.code, &self.message) == (other.kind, other.code, &other.message)
    }
}

impl Eq for Error {}

/// The result type of everything fallible in hub.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An outcome with an explicit exit status.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Error {
            kind: Kind::Status,
            code,
            message: message.into(),
            source: None,
        }
    }

    /// Bad input or usage: exit status 2.
    pub fn input(message: impl Into<String>) -> Self {
        Error {
            kind: Kind::Input,
            ..Error::new(exit::ERROR, message)
        }
    }

    /// The environment failed at `context` (what hub was doing), because of `cause`: exit
    /// status 2, the message `context: cause`, the cause kept as the error's source.
    pub fn environment(
        context: impl fmt::Display,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error {
            kind: Kind::Environment,
            code: exit::ERROR,
            message: format!("{context}: {cause}"),
            source: Some(std::sync::Arc::new(cause)),
        }
    }

    /// A bug in hub (a record that would not encode, a state that cannot be): exit status 2,
    /// with a message that says it is hub's fault, not the user's.
    pub fn internal(message: impl fmt::Display) -> Self {
        Error {
            kind: Kind::Internal,
            code: exit::ERROR,
            message: format!("internal error (a bug in hub, please report it): {message}"),
            source: None,
        }
    }

    /// A downstream reader closed the pipe: exit quietly with status 0, as `head` expects.
    pub fn broken_pipe() -> Self {
        Error {
            kind: Kind::Quiet,
            code: exit::OK,
            message: "broken pipe".into(),
            source: None,
        }
    }

    /// An I/O failure at `context` (an [`Kind::Environment`] error with the I/O error as its
    /// source), mapping a broken pipe to [`Error::broken_pipe`].
    pub fn io(context: impl fmt::Display, err: &std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            return Error::broken_pipe();
        }
        // io::Error is not Clone: keep its kind, OS code and text.
        let cause = match err.raw_os_error() {
            Some(code) => std::io::Error::from_raw_os_error(code),
            None => std::io::Error::new(err.kind(), err.to_string()),
        };
        Error::environment(context, cause)
    }

    /// The exit status this error ends the program with.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// What it is about.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The one-line message (an environment error's cause included).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True when nothing should be printed (a broken pipe).
    pub fn is_quiet(&self) -> bool {
        self.kind == Kind::Quiet
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|cause| cause as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn input_environment_and_bugs_are_told_apart() {
        let input = Error::input("--timeout: `soon` is not a duration");
        assert_eq!((input.kind(), input.code()), (Kind::Input, 2));
        assert!(input.source().is_none());

        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let env = Error::io("reading events.jsonl", &missing);
        assert_eq!((env.kind(), env.code()), (Kind::Environment, 2));
        assert!(env.message().starts_with("reading events.jsonl: "), "{env}");
        let cause = env
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            cause.map(std::io::Error::kind),
            Some(std::io::ErrorKind::NotFound)
        );

        let bug = Error::internal("a plan record did not encode");
        assert_eq!((bug.kind(), bug.code()), (Kind::Internal, 2));
        assert!(bug.message().contains("a bug in hub"), "{bug}");

        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let quiet = Error::io("writing", &pipe);
        assert!(quiet.is_quiet());
        assert_eq!(quiet.code(), 0);
    }
}
