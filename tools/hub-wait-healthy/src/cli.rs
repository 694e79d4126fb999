//! `hub-wait-healthy`'s arguments, parsed once into [`Cli`].

use clap::Parser;
use hub::cli::{Common, ComposeCmd};

const LONG_ABOUT: &str = "Probe each started service concurrently until it is healthy, its deadline passes, \
             or its process is known dead.\n\n\
             Reads JSON-lines records on stdin. Every record is passed through to stdout byte for \
             byte, at once; each `started` record (from hub-start) also starts a wait. \
             Writes `healthy`, `unhealthy` (reason timeout, exited, probe_error, or aborted when \
             a `finished` record with ok false says hub-start gave up), `waiting` (at 50%, 75% \
             and 90% of the timeout) and `interrupted` records; see docs/records.md.\n\n\
             Probes (from the record's `health`): cmd (exit 0; run in its own process group, \
             killed on timeout; in the record's working_dir, with its environment), http (a GET; status in range, default 200-399; optional body \
             substring; redirects are never followed, the 3xx status is judged as is; proxies \
             are not used), tcp (a connect). Each probe has its own timeout (probe_timeout_ms). \
             Container services (health kind container or exec, from the Docker backend) are \
             followed through `docker events`: healthy when the engine says so (or, without a \
             healthcheck, after running for grace_ms), or when the compose test passes under \
             `docker exec` on hub's schedule; an exited container fails at once with its exit \
             code and `docker logs` tail; one restarting is not final before the deadline.\n\n\
             Schedule: the first probe runs at once; then gaps of 10ms, 15ms, 22ms, … growing by \
             half up to the check's interval_ms. A failing probe is not final: probing goes on \
             until timeout_ms after the `started` record's time. Failures inside \
             start_period_ms count toward nothing but the deadline (no `failures`, no warnings). \
             A `run` service (with a pid) that hub-start launched is followed through the \
             `exited` record hub-start writes when it exits; one hub-start did not launch \
             (adopted, or a record written by hand) is watched through a pidfd (on old kernels: \
             checked every 50ms). The moment it exits it is `unhealthy` with reason `exited`, \
             with its exit status (from the `exited` record, when there is one) and \
             the last 10 lines of its current attempt's log (after the attempt's `==> hub run=…` \
             header). Such a failure, or a timeout, is not final when attempts remain: \
             hub-start tries again (after stopping a timed-out attempt's process); an exit \
             status of 126 or 127 (not executable, not found) is final at once. A `run` \
             process that exits 0 without being a one-shot job is told how to declare one.\n\n\
             On a terminal, one live status line on stderr shows who is being waited on.";

const AFTER_HELP: &str = "Exit status: 0 no CORE service failed (final outcomes only); 1 a CORE service \
             failed; 2 bad input (a line that is not a JSON record, or a malformed `started` \
             record: an error naming its line is printed, the line is skipped, every other \
             service is still waited for, and the exit status is 2); 129 SIGHUP, 130 SIGINT, 143 SIGTERM \
             (an `interrupted` record names the services still waited for; probe commands are \
             killed).\n\n\
             Environment: NO_COLOR (no colour), HUB_LOG (tracing filter), HUB_LOG_FORMAT=json, \
             HUB_MAX_PROBE_COMMANDS (as --max-probe-commands).";

/// Probe each started service until it is healthy, times out, or exits
#[derive(Debug, Parser)]
#[command(version, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// `--compose-cmd`.
    #[command(flatten)]
    pub compose: ComposeCmd,
    /// `-q`, `-v`, `--color`.
    #[command(flatten)]
    pub common: Common,
    /// At most N probe commands (cmd checks, containers' `docker exec` probes) run at once;
    /// when more are due, the earliest due runs first, and every service is still probed
    #[arg(
        long,
        value_name = "N",
        env = "HUB_MAX_PROBE_COMMANDS",
        default_value = crate::DEFAULT_PROBE_COMMANDS,
        value_parser = clap::value_parser!(u32).range(1..=4096)
    )]
    pub max_probe_commands: u32,
}

hub::tool!(Cli);
