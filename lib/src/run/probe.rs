//! Health probes and their schedule: is a service ready yet, and when to ask again.
//!
//! One probe answers one question, within its own timeout, with a one-line reason a person can
//! act on (`connection refused`, `HTTP 503`, `exit 1`, `timed out after 2.0s`). A probe never
//! decides a service's fate: `hub-wait-healthy` keeps probing until the deadline, and
//! `hub-start` uses a single probe to skip a service that is already up.
//!
//! Kinds: `cmd` (exit 0, run in its own process group, the group killed on timeout); `http` (a
//! GET whose status is in range and whose body holds a substring; redirects are not followed at
//! all, so never to another host: the 3xx status itself is judged against the range; no proxy;
//! the timeout bounds each of connect, send, response and body, name resolution is the system
//! resolver's); `tcp` (a connect). `container` and `exec` are not probes: a container's health
//! is followed through the engine's events by [`crate::container_health::Tracker`] (as
//! `hub-wait-healthy` does, one event stream for all) or [`crate::container::wait_healthy`];
//! [`Prober::new`] refuses them with
//! [`CONTAINER_NEEDS_BACKEND`]. Nor is `completed`, a one-shot job's exit status, which the
//! waiter reads where it sees the exit ([`COMPLETION_IS_NOT_PROBED`]). To add a kind, add
//! a [`Kind`] variant, build it in [`Prober::new`] (the [`Target`] carries what it needs, e.g.
//! the container) and run it in [`Prober::probe`].

use crate::command::CommandSpec;
use crate::duration;
use crate::process::{self, Finished};
use crate::records::Check;
use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

/// The message for the container kinds until the Docker backend is wired in.
pub const CONTAINER_NEEDS_BACKEND: &str = "container health needs the docker backend";
/// The reason a one-shot job has no prober: its exit decides, not a probe.
pub const COMPLETION_IS_NOT_PROBED: &str =
    "a one-shot job is judged by its exit status, not by a probe";

/// The HTTP probe's input buffer (its output buffer is a quarter of it).
const HTTP_BUFFER: usize = 32 * 1024;

/// How much of an HTTP body is read to look for the expected substring.
const BODY_LIMIT: u64 = 64 * 1024;

/// How long a timed-out probe command gets between SIGTERM and SIGKILL.
const PROBE_KILL_GRACE: Duration = Duration::from_millis(200);

/// The process groups of probe commands running now, so an interrupt can kill them.
static PROBE_GROUPS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// The result of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It passed; a short description (`HTTP 200`, `connected`, `exit 0`).
    Ok(String),
    /// It failed; a one-line reason (`connection refused`, `HTTP 503`, `exit 1`).
    Failed(String),
}

impl Outcome {
    /// True when the probe passed.
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok(_))
    }

    /// The one-line description or reason.
    pub fn detail(&self) -> &str {
        match self {
            Outcome::Ok(detail) | Outcome::Failed(detail) => detail,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.detail())
    }
}

/// What a probe is about beyond its check: details some kinds need (the Docker kinds need the
/// container). Built from a `started` record; `Target::default()` before a service is started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// The service name.
    pub service: String,
    /// The container name or id, for container services.
    pub container: Option<String>,
    /// Local services: the folder a `cmd` probe runs in (the service's own).
    pub working_dir: Option<String>,
    /// Local services: the variables a `cmd` probe is given (the service's own).
    pub environment: crate::records::Environment,
}

impl Target {
    /// What a probe of the service `plan` describes needs to know, before it has started.
    pub fn of_plan(plan: &crate::records::Plan) -> Target {
        Target {
            service: plan.service.clone(),
            container: None,
            working_dir: plan.working_dir.clone(),
            environment: plan.environment.clone(),
        }
    }
}

/// One check, ready to run again and again.
#[derive(Debug)]
pub enum Kind {
    /// Exit 0, run in the service's folder with its environment.
    Cmd {
        /// The command.
        cmd: CommandSpec,
        /// The folder it runs in.
        working_dir: Option<String>,
        /// The variables it is given.
        environment: crate::records::Environment,
    },
    /// A GET, with its agent built once.
    Http {
        /// The agent (no redirects, no proxy, statuses as responses).
        agent: ureq::Agent,
        /// The URL.
        url: String,
        /// The accepted statuses, parsed once.
        status: crate::codes::HttpStatuses,
        /// The body substring, if any.
        body: Option<String>,
    },
    /// A TCP connect to `HOST:PORT`.
    Tcp(String),
    /// No check: passes at once.
    Nothing,
}

/// A prober: one service's check, built once (validated) and run many times.
#[derive(Debug)]
pub struct Prober {
    kind: Kind,
    timeout: Duration,
}

impl Prober {
    /// Build the prober for `check`, each probe limited to `timeout`.
    ///
    /// The error is one line saying why the check cannot run at all (a bad URL, a bad status
    /// list, a kind this build cannot probe): retrying will not help, so it is final
    /// (`probe_error`).
    pub fn new(check: &Check, target: &Target, timeout: Duration) -> Result<Prober, String> {
        let timeout = timeout.max(Duration::from_millis(1));
        let kind = match check {
            Check::Cmd { cmd } => Kind::Cmd {
                cmd: cmd.clone(),
                working_dir: target.working_dir.clone(),
                environment: target.environment.clone(),
            },
            Check::Http { url, status, body } => {
                let status = crate::codes::HttpStatuses::parse(status)?;
                let uri: ureq::http::Uri = url
                    .parse()
                    .map_err(|e| format!("bad health URL `{url}`: {e}"))?;
                if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                    return Err(format!(
                        "bad health URL `{url}`: write http://HOST:PORT/PATH"
                    ));
                }
                // Each phase is bounded, not the whole call: a global (or per-call) timeout makes
                // ureq resolve names on a new thread per request, which costs more CPU than the
                // whole probe when a hundred services are probed ten times a second.
                let agent = ureq::Agent::config_builder()
                    .timeout_connect(Some(timeout))
                    .timeout_send_request(Some(timeout))
                    .timeout_recv_response(Some(timeout))
                    .timeout_recv_body(Some(timeout))
                    .max_redirects(0)
                    // Small buffers: ureq's 128 KiB defaults, zeroed per connection, were the
                    // largest CPU cost of a probe. A health answer's headers fit in 16 KiB.
                    .input_buffer_size(HTTP_BUFFER)
                    .output_buffer_size(HTTP_BUFFER / 4)
                    .max_response_header_size(HTTP_BUFFER / 2)
                    // Keep-alive is used where the server offers it (ureq's pool, one per
                    // service): a probe on an open connection costs a tenth of a new one. A
                    // server that died fails that probe, and the next one connects afresh.
                    .http_status_as_error(false)
                    .proxy(None)
                    .build()
                    .into();
                Kind::Http {
                    agent,
                    url: url.clone(),
                    status,
                    body: body.clone(),
                }
            }
            Check::Tcp { address } => Kind::Tcp(address.clone()),
            Check::Container { .. } | Check::Exec { .. } => {
                return Err(CONTAINER_NEEDS_BACKEND.to_owned());
            }
            Check::Completed => return Err(COMPLETION_IS_NOT_PROBED.to_owned()),
            Check::None => Kind::Nothing,
        };
        Ok(Prober { kind, timeout })
    }

    /// False for a service with no check (`kind: none`): its probe passes without asking
    /// anything, so it must not be taken as proof that a service not yet started is up.
    pub fn checks_anything(&self) -> bool {
        !matches!(self.kind, Kind::Nothing)
    }

    /// True for a probe that runs a command (a child process), which a caller probing many
    /// services bounds in number apart from network probes.
    pub fn is_command(&self) -> bool {
        matches!(self.kind, Kind::Cmd { .. })
    }

    /// The per-probe timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Run one probe, within the prober's timeout.
    pub fn probe(&self) -> Outcome {
        match &self.kind {
            Kind::Cmd {
                cmd,
                working_dir,
                environment,
            } => match cmd.to_command_in(working_dir.as_deref(), environment) {
                Ok(command) => probe_cmd(command, cmd, self.timeout),
                Err(e) => Outcome::Failed(format!("cannot run `{cmd}`: {e}")),
            },
            Kind::Http {
                agent,
                url,
                status,
                body,
            } => probe_http(agent, url, status, body.as_deref(), self.timeout),
            Kind::Tcp(address) => probe_tcp(address, self.timeout),
            Kind::Nothing => Outcome::Ok("no health check".into()),
        }
    }
}

/// `timed out after 2.0s`
fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}", duration::human(timeout))
}

/// One line from an I/O error, with the common cases in plain words.
fn io_reason(err: &io::Error, timeout: Duration) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => timed_out(timeout),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        _ => one_line(&err.to_string()),
    }
}

/// The first line of a message, so a reason never spans lines.
fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_owned()
}

fn probe_cmd(mut command: std::process::Command, cmd: &CommandSpec, timeout: Duration) -> Outcome {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut group = None;
    let finished =
        process::run_with_timeout_observed(&mut command, timeout, PROBE_KILL_GRACE, |pgid| {
            group = Some(pgid);
            if let Ok(mut groups) = PROBE_GROUPS.lock() {
                groups.insert(pgid);
            }
        });
    if let (Some(pgid), Ok(mut groups)) = (group, PROBE_GROUPS.lock()) {
        groups.remove(&pgid);
    }
    match finished {
        Ok(Finished::Exited(0)) => Outcome::Ok("exit 0".into()),
        Ok(Finished::Exited(code)) if code > 128 => {
            Outcome::Failed(format!("killed by signal {}", code - 128))
        }
        Ok(Finished::Exited(code)) => Outcome::Failed(format!("exit {code}")),
        Ok(Finished::TimedOut) => Outcome::Failed(timed_out(timeout)),
        Err(e) => Outcome::Failed(format!("cannot run `{cmd}`: {}", one_line(&e.to_string()))),
    }
}

/// Kill every probe command still running (on SIGINT/SIGTERM), so none outlives the tool.
pub fn kill_probe_commands() {
    let groups = match PROBE_GROUPS.lock() {
        Ok(groups) => groups.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    for pgid in groups {
        let _ = process::signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
    }
}

fn probe_http(
    agent: &ureq::Agent,
    url: &str,
    status: &crate::codes::HttpStatuses,
    body: Option<&str>,
    timeout: Duration,
) -> Outcome {
    let mut response = match agent.get(url).call() {
        Ok(response) => response,
        Err(ureq::Error::Io(e)) => return Outcome::Failed(io_reason(&e, timeout)),
        Err(ureq::Error::Timeout(_)) => return Outcome::Failed(timed_out(timeout)),
        Err(ureq::Error::HostNotFound) => {
            return Outcome::Failed(format!("host not found in {url}"));
        }
        Err(e) => return Outcome::Failed(one_line(&e.to_string())),
    };
    let code = response.status().as_u16();
    // The body is read even when not checked: a connection is kept alive for the next probe
    // only once its response has been read to the end.
    let mut text = Vec::new();
    let read = response
        .body_mut()
        .as_reader()
        .take(BODY_LIMIT)
        .read_to_end(&mut text);
    if !status.contains(code) {
        return Outcome::Failed(format!("HTTP {code}"));
    }
    let Some(needle) = body else {
        return Outcome::Ok(format!("HTTP {code}"));
    };
    if let Err(e) = read {
        return Outcome::Failed(format!(
            "HTTP {code}, body unreadable: {}",
            io_reason(&e, timeout)
        ));
    }
    if String::from_utf8_lossy(&text).contains(needle) {
        Outcome::Ok(format!("HTTP {code}"))
    } else {
        Outcome::Failed(format!("HTTP {code}, body lacks {needle:?}"))
    }
}

fn probe_tcp(address: &str, timeout: Duration) -> Outcome {
    let addrs = match address.to_socket_addrs() {
        Ok(addrs) => addrs.collect::<Vec<_>>(),
        Err(e) => {
            return Outcome::Failed(format!(
                "cannot resolve {address}: {}",
                one_line(&e.to_string())
            ));
        }
    };
    let mut last = format!("{address} resolves to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => return Outcome::Ok("connected".into()),
            Err(e) => last = io_reason(&e, timeout),
        }
    }
    Outcome::Failed(last)
}

/// The gaps between probes: short at first (a fast service is seen at once), growing by half
/// each time up to the configured interval, so a slow one costs little.
#[derive(Debug, Clone)]
pub struct Schedule {
    next: Duration,
    max: Duration,
}

/// The first gap between two probes.
pub const FIRST_GAP: Duration = Duration::from_millis(10);

impl Schedule {
    /// A schedule whose gaps grow from [`FIRST_GAP`] to `interval`.
    pub fn new(interval: Duration) -> Schedule {
        let max = interval.max(Duration::from_millis(1));
        Schedule {
            next: FIRST_GAP.min(max),
            max,
        }
    }

    /// The gap [`Schedule::next_gap`] will give next, without moving on.
    pub fn peek_gap(&self) -> Duration {
        self.next
    }

    /// The gap before the next probe.
    pub fn next_gap(&mut self) -> Duration {
        let gap = self.next;
        self.next = (gap + gap / 2).min(self.max);
        gap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn prober(check: Check) -> Prober {
        Prober::new(&check, &Target::default(), Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn schedule_grows_to_the_interval() {
        let mut schedule = Schedule::new(Duration::from_millis(100));
        let gaps: Vec<u64> = (0..8)
            .map(|_| duration::to_ms(schedule.next_gap()))
            .collect();
        assert_eq!(gaps, [10, 15, 22, 33, 50, 75, 100, 100]);
        let mut tiny = Schedule::new(Duration::from_millis(3));
        assert_eq!(tiny.next_gap(), Duration::from_millis(3));
    }

    #[test]
    fn cmd_exit_status_is_the_reason() {
        let ok = prober(Check::Cmd {
            cmd: CommandSpec::Shell("true".into()),
        });
        assert!(ok.probe().is_ok());
        let fails = prober(Check::Cmd {
            cmd: CommandSpec::Argv(vec!["sh".into(), "-c".into(), "exit 3".into()]),
        });
        assert_eq!(fails.probe(), Outcome::Failed("exit 3".into()));
    }

    #[test]
    fn cmd_timeout_is_the_reason() {
        let slow = Prober::new(
            &Check::Cmd {
                cmd: CommandSpec::Shell("sleep 30".into()),
            },
            &Target::default(),
            Duration::from_millis(50),
        )
        .unwrap();
        assert_eq!(slow.probe(), Outcome::Failed("timed out after 50ms".into()));
    }

    #[test]
    fn tcp_connects_or_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let check = Check::Tcp {
            address: address.clone(),
        };
        assert_eq!(
            prober(check.clone()).probe(),
            Outcome::Ok("connected".into())
        );
        drop(listener);
        assert_eq!(
            prober(check).probe(),
            Outcome::Failed("connection refused".into())
        );
    }

    /// A server that answers every request with `answer`, on a thread; its address.
    fn answering(answer: &'static str) -> String {
        use std::io::Write;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    request.push(byte[0]);
                }
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        address
    }

    #[test]
    fn redirects_are_judged_not_followed() {
        let address = answering(
            "HTTP/1.1 302 Found\r\nLocation: http://elsewhere.invalid/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        let http = |status: &str| {
            prober(Check::Http {
                url: format!("http://{address}/health"),
                status: status.into(),
                body: None,
            })
        };
        assert_eq!(http("200-399").probe(), Outcome::Ok("HTTP 302".into()));
        assert_eq!(http("200").probe(), Outcome::Failed("HTTP 302".into()));
    }

    #[test]
    fn bad_specs_are_refused_up_front() {
        let target = Target::default();
        let timeout = Duration::from_secs(1);
        let http = |url: &str, status: &str| Check::Http {
            url: url.into(),
            status: status.into(),
            body: None,
        };
        assert!(Prober::new(&http("not a url", "200"), &target, timeout).is_err());
        assert!(Prober::new(&http("ftp://host/x", "200"), &target, timeout).is_err());
        assert!(Prober::new(&http("http://127.0.0.1:1/", "abc"), &target, timeout).is_err());
        let container = Check::Container { grace_ms: 1 };
        assert_eq!(
            Prober::new(&container, &target, timeout).unwrap_err(),
            CONTAINER_NEEDS_BACKEND
        );
        assert!(!prober(Check::None).checks_anything());
    }
}
