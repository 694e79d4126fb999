//! What every tool's `main` shares: argument parsing, the common `-q`/`-v` flags, turning
//! a [`crate::Error`] into a one-line message and an exit status, and the shell completions
//! and man page generated from the same clap definition as `--help` (so they cannot drift).

use crate::Result;
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::process::ExitCode;

/// Add the flags every tool has: `-q/--quiet` and `-v/--verbose`.
pub fn with_common_args(cmd: Command) -> Command {
    cmd.arg(
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
    crate::log::init(verbosity);
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
