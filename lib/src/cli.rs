//! What every tool's `main` shares: argument parsing, the common `-q`/`-v` flags, turning
//! a [`crate::Error`] into a one-line message and an exit status, and the shell completions
//! and man page generated from the same clap definition as `--help` (so they cannot drift).

use crate::Result;
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::process::ExitCode;

/// An enum of flag values (`--format text|json`) that clap parses into the enum itself, so a
/// tool matches on variants, never on strings with a `_ =>` fallback. (clap's own derive would
/// add a proc-macro crate for these few lines.)
#[macro_export]
macro_rules! value_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($name::$variant),+]
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(match self {
                    $($name::$variant => $text),+
                }))
            }
        }
    };
}

value_enum! {
    /// When to colour: `--color WHEN`, a flag every tool has.
    pub enum Color {
        /// On a terminal, unless `NO_COLOR` is set.
        Auto => "auto",
        /// Always.
        Always => "always",
        /// Never.
        Never => "never",
    }
}

/// A typed value parser for a [`value_enum!`] enum.
pub fn enum_parser<E: clap::ValueEnum + Clone + Send + Sync + 'static>()
-> clap::builder::EnumValueParser<E> {
    clap::builder::EnumValueParser::<E>::new()
}

impl Color {
    /// `--color` as parsed ([`Color::Auto`] when the tool was built without it).
    pub fn of(matches: &ArgMatches) -> Color {
        matches
            .try_get_one::<Color>("color")
            .ok()
            .flatten()
            .copied()
            .unwrap_or(Color::Auto)
    }

    /// Colour on a stream that is (or is not) a terminal: `auto` asks it and `NO_COLOR`.
    pub fn enabled(self, is_terminal: bool) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
}

/// `--run-id ID` (or `HUB_RUN_ID`): the run id put in the records a tool writes. Declared
/// here once for every tool that writes records.
pub fn run_id_arg(help: &'static str) -> Arg {
    Arg::new("run-id")
        .long("run-id")
        .value_name("ID")
        .env("HUB_RUN_ID")
        .help(help)
}

/// `--events FILE`: append the tool's records to FILE (`-` is stdout). Declared here once.
pub fn events_arg(help: &'static str) -> Arg {
    Arg::new("events")
        .long("events")
        .value_name("FILE")
        .value_parser(clap::value_parser!(std::path::PathBuf))
        .help(help)
}

/// Add the flags every tool has: `-q/--quiet`, `-v/--verbose` and `--color`.
pub fn with_common_args(cmd: Command) -> Command {
    cmd.arg(
        Arg::new("color")
            .long("color")
            .value_name("WHEN")
            .default_value("auto")
            .value_parser(enum_parser::<Color>())
            .global(true)
            .help("Colour: auto (on a terminal, unless NO_COLOR is set), always, never"),
    )
    .arg(
        Arg::new("quiet")
            .short('q')
            .long("quiet")
            .action(ArgAction::SetTrue)
            .global(true)
            .help("Print only warnings and errors on stderr"),
    )
    .arg(
        Arg::new("verbose")
            .short('v')
            .long("verbose")
            .action(ArgAction::Count)
            .global(true)
            .conflicts_with("quiet")
            .help("Print debug lines on stderr"),
    )
}

/// Run a tool: parse its arguments, set up logging, call `run`, and exit with its status.
///
/// `run` returns the exit status on success (a tool may succeed with 1, a clear "no"), or an
/// error that carries its own status. Usage errors exit 2 (clap's convention, and ours).
pub fn main(command: Command, run: fn(&ArgMatches) -> Result<u8>) -> ExitCode {
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
    let matches = match command.try_get_matches() {
        Ok(matches) => matches,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                crate::error::exit::ERROR
            } else {
                0
            });
        }
    };
    let verbosity = if matches
        .try_get_one::<bool>("quiet")
        .ok()
        .flatten()
        .copied()
        .unwrap_or(false)
    {
        -1
    } else {
        matches
            .try_get_one::<u8>("verbose")
            .ok()
            .flatten()
            .map_or(0, |v| i8::try_from(*v).unwrap_or(1))
    };
    crate::log::init_with(
        verbosity,
        Color::of(&matches).enabled(std::io::IsTerminal::is_terminal(&std::io::stderr())),
    );
    match run(&matches) {
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
