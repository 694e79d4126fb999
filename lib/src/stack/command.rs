//! Commands as compose writes them: a string run by `sh -c`, or a list run directly.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A command from a compose file or a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandSpec {
    /// Run by `sh -c`, so pipes and `&&` work.
    Shell(String),
    /// Run directly: the first element is the program.
    Argv(Vec<String>),
}

impl CommandSpec {
    /// A `std::process::Command` for this spec (not yet spawned).
    pub fn to_command(&self) -> std::process::Command {
        self.build(None)
    }

    fn build(&self, working_dir: Option<&str>) -> std::process::Command {
        match self {
            CommandSpec::Shell(text) => {
                let mut cmd = std::process::Command::new("sh");
                cmd.arg("-c").arg(text);
                cmd
            }
            CommandSpec::Argv(argv) => {
                let program = argv.first().map_or("", String::as_str);
                // `./migrate.sh` is the one in the folder the command runs in; which folder a
                // relative program is found from is left to the platform by the standard library.
                let mut cmd = match working_dir {
                    Some(dir) if program.contains('/') && !program.starts_with('/') => {
                        std::process::Command::new(std::path::Path::new(dir).join(program))
                    }
                    _ => std::process::Command::new(program),
                };
                cmd.args(argv.iter().skip(1));
                cmd
            }
        }
    }

    /// A command for a local service: run in `working_dir` (when given), with `environment`
    /// over the inherited variables (`None` unsets one), as compose gives them to a container.
    ///
    /// A `working_dir` that is not a folder is an error naming it, not the `No such file or
    /// directory` that spawning would report as if the program were missing.
    pub fn to_command_in(
        &self,
        working_dir: Option<&str>,
        environment: &BTreeMap<String, Option<String>>,
    ) -> std::io::Result<std::process::Command> {
        let mut cmd = self.build(working_dir);
        if let Some(dir) = working_dir {
            if !std::path::Path::new(dir).is_dir() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("its working_dir {dir} is not a folder"),
                ));
            }
            cmd.current_dir(dir);
        }
        for (key, value) in environment {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        Ok(cmd)
    }

    /// Read a command from a compose value: a non-empty string or a non-empty list of strings.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, String> {
        match value {
            serde_json::Value::String(s) if !s.trim().is_empty() => {
                Ok(CommandSpec::Shell(s.clone()))
            }
            serde_json::Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => Ok(s.clone()),
                    serde_json::Value::Number(n) => Ok(n.to_string()),
                    other => Err(format!("command list items must be strings, found {other}")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(CommandSpec::Argv),
            _ => Err("a command must be a non-empty string (run by sh -c) or a list".into()),
        }
    }
}

impl fmt::Display for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandSpec::Shell(text) => f.write_str(text),
            CommandSpec::Argv(argv) => f.write_str(&argv.join(" ")),
        }
    }
}
