//! `hub-wait-healthy` end to end: the real binary, real processes, real sockets, real pipes.
//!
//! Tests that need to act while the tool runs (open a port, flip an HTTP answer, send SIGTERM)
//! wait for the tool's own `-v` lines on stderr ("probe 1: connection refused") as the event to
//! act on, never for a fixed time.

use hub::command::CommandSpec;
use hub::records::{
    AttemptOf, Backend, Check, Class, Exited, HealthSpec, Interrupted, Line, Record, SignalName,
    Started, Unhealthy, UnhealthyReason, Waiting,
};
use hub_tests::{Cmd, bin, json_lines, lines, stderr, variants};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest any one expected event may take before a test gives up (a hang, not a speed check).
const PATIENCE: Duration = Duration::from_secs(60);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A health spec with the usual timing: probes every 100 ms at most, each up to 2 s.
fn health(check: Check) -> HealthSpec {
    HealthSpec {
        check,
        interval_ms: 100,
        probe_timeout_ms: 2000,
        start_period_ms: 0,
    }
}

/// A TCP check.
fn tcp(address: impl Into<String>) -> HealthSpec {
    health(Check::Tcp {
        address: address.into(),
    })
}

/// A command check, run by `sh -c`.
fn cmd(text: impl Into<String>) -> HealthSpec {
    health(Check::Cmd {
        cmd: CommandSpec::Shell(text.into()),
    })
}

/// A `started` record line, as hub-start writes it (attempt 1 of 1, backend `start`), after
/// `change`.
fn started(
    service: &str,
    class: Class,
    timeout_ms: u64,
    health: HealthSpec,
    change: impl FnOnce(&mut Started),
) -> String {
    let of = AttemptOf {
        service: service.into(),
        class,
        level: 0,
        attempt: 1,
        max_attempts: 1,
    };
    let mut started = Started {
        backend: Some(Backend::Start),
        timeout_ms,
        ..Started::new(of, health)
    };
    change(&mut started);
    record_line(Record::Started(Box::new(started)))
}

/// A record as one line of this run.
fn record_line(record: Record) -> String {
    Line {
        ts: Some(now_ms()),
        run_id: Some("test-run".into()),
        record,
    }
    .to_line()
    .unwrap()
}

/// No change to a `started` record.
fn as_is(_: &mut Started) {}

/// A `run` service's process, watched by pid.
fn run_process(pid: u32) -> impl FnOnce(&mut Started) {
    move |started| {
        started.backend = Some(Backend::Run);
        started.pid = Some(pid);
    }
}

/// A TCP port nobody listens on (bound then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// hub-start's own child `pid`, logging to `log`: its exit comes as an `exited` record.
fn its_child(pid: u32, log: &std::path::Path) -> impl FnOnce(&mut Started) + '_ {
    move |started| {
        run_process(pid)(started);
        started.log = Some(log.display().to_string());
        started.exit_record = true;
    }
}

/// The records of an output's stdout.
fn records(output: &std::process::Output) -> Vec<Record> {
    lines(output).into_iter().map(|l| l.record).collect()
}

fn of_type<'a>(records: &'a [Record], kind: &str) -> Vec<&'a Record> {
    records.iter().filter(|r| r.kind() == kind).collect()
}

/// The `unhealthy` records.
fn unhealthy(records: &[Record]) -> Vec<&Unhealthy> {
    variants!(records, Record::Unhealthy)
}

/// The `waiting` records.
fn waiting(records: &[Record]) -> Vec<&Waiting> {
    variants!(records, Record::Waiting)
}

/// The services of the `healthy` records.
fn healthy_services(records: &[Record]) -> Vec<&str> {
    of_type(records, "healthy")
        .into_iter()
        .filter_map(Record::service)
        .collect()
}

/// The tool running in the background, its output read line by line as it comes.
struct Live {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    out_lines: Vec<String>,
    err_lines: Vec<String>,
}

fn lines_of(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Live {
    fn spawn(args: &[&str]) -> Live {
        let mut child = Command::new(bin("hub-wait-healthy"))
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("HUB_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning hub-wait-healthy");
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        Live {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            out_lines: Vec::new(),
            err_lines: Vec::new(),
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Wait for a stderr line containing `needle`.
    fn stderr_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        if let Some(line) = self.err_lines.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.err_lines.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no stderr line with {needle:?}\n--- stderr\n{}",
                    self.err_lines.join("\n")
                ),
            }
        }
    }

    /// Wait for a record of type `kind`.
    fn record(&mut self, kind: &str) -> Line {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    self.out_lines.push(line.clone());
                    let record = hub_tests::line(&line);
                    if record.record.kind() == kind {
                        return record;
                    }
                }
                Err(_) => panic!(
                    "no {kind} record\n--- stdout\n{}\n--- stderr\n{}",
                    self.out_lines.join("\n"),
                    self.drain_stderr()
                ),
            }
        }
    }

    fn drain_stderr(&mut self) -> String {
        while let Ok(line) = self.stderr.try_recv() {
            self.err_lines.push(line);
        }
        self.err_lines.join("\n")
    }

    /// Close stdin, wait for the exit, and return its status and every record written.
    fn finish(mut self) -> (i32, Vec<Line>) {
        self.close_stdin();
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.stdout.recv_timeout(PATIENCE) {
            self.out_lines.push(line);
        }
        let records = self.out_lines.iter().map(|l| hub_tests::line(l)).collect();
        (status.code().unwrap_or(-1), records)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A service process as hub-start launches one: its own process group, output to `log`.
fn launch(script: &str, log: &std::path::Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap()
}

/// Send SIG`name` to the tool (the shell's `kill` builtin: no procps needed).
fn signal(live: &Live, name: &str) {
    let status = Command::new("sh")
        .args(["-c", &format!("kill -{name} {}", live.child.id())])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Is process `pid` gone or a zombie?
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

#[test]
fn a_tcp_service_that_opens_its_port_later_is_healthy() {
    let port = free_port();
    let mut live = Live::spawn(&["-v"]);
    let check = tcp(format!("127.0.0.1:{port}"));
    live.send(&started("redis", Class::Core, 600_000, check, as_is));
    live.stderr_line("redis: probe 1: connection refused");
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let line = live.record("healthy");
    assert_eq!(line.run_id.as_deref(), Some("test-run"));
    let Record::Healthy(healthy) = line.record else {
        unreachable!()
    };
    assert_eq!(healthy.of.service, "redis");
    assert_eq!(healthy.of.class, Class::Core);
    assert_eq!(healthy.of.attempt, 1);
    assert!(healthy.is_final);
    assert!(healthy.probes >= 2, "{healthy:?}");
    live.stderr_line("✅ redis is healthy (");
    let (status, _) = live.finish();
    assert_eq!(status, 0);
    drop(listener);
}

/// A tiny HTTP server whose answer the test flips: 0 = 503, 1 = 200 "starting", 2 = 200 "ready".
fn http_server() -> (u16, Arc<AtomicU8>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = Arc::new(AtomicU8::new(0));
    let answer = Arc::clone(&state);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            let (status, body) = match answer.load(Ordering::SeqCst) {
                0 => ("503 Service Unavailable", "down"),
                1 => ("200 OK", "starting"),
                _ => ("200 OK", "status: ready"),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, state)
}

#[test]
fn an_http_check_wants_its_status_and_its_body() {
    let (port, state) = http_server();
    let mut live = Live::spawn(&["-v"]);
    let check = health(Check::Http {
        url: format!("http://127.0.0.1:{port}/health"),
        status: "200".into(),
        body: Some("ready".into()),
    });
    live.send(&started("keycloak", Class::Core, 600_000, check, as_is));
    live.stderr_line("keycloak: probe 1: HTTP 503");
    state.store(1, Ordering::SeqCst);
    live.stderr_line("HTTP 200, body lacks \"ready\"");
    state.store(2, Ordering::SeqCst);
    let Record::Healthy(healthy) = live.record("healthy").record else {
        unreachable!()
    };
    assert_eq!(healthy.of.service, "keycloak");
    assert!(healthy.probes >= 3, "{healthy:?}");
    let (status, _) = live.finish();
    assert_eq!(status, 0);
}

#[test]
fn a_cmd_check_passes_when_its_command_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let mut live = Live::spawn(&["-v"]);
    let check = health(Check::Cmd {
        cmd: CommandSpec::Argv(vec![
            "test".into(),
            "-e".into(),
            ready.display().to_string(),
        ]),
    });
    live.send(&started("migrate", Class::Core, 600_000, check, as_is));
    live.stderr_line("migrate: probe 1: exit 1");
    std::fs::write(&ready, "").unwrap();
    let healthy = live.record("healthy");
    assert_eq!(healthy.record.service(), Some("migrate"));
    let (status, _) = live.finish();
    assert_eq!(status, 0);
}

#[test]
fn a_crashed_process_is_reported_at_once_not_after_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("keycloak.log");
    // It exits at once and is never reaped while the tool runs: a zombie, as it is while
    // hub-start has not yet reaped it.
    let mut crashed = launch(
        "echo booting; echo 'fatal: port 8080 in use' >&2; exit 3",
        &log,
    );
    let check = tcp(format!("127.0.0.1:{}", free_port()));
    let pid = crashed.id();
    let extra = |started: &mut Started| {
        run_process(pid)(started);
        started.log = Some(log.display().to_string());
        started.of.attempt = 3;
        started.of.max_attempts = 3;
    };
    // Ten minutes of timeout: the test ending at all shows the exit was seen, not waited out.
    let output = Cmd::new("hub-wait-healthy")
        .stdin(started("keycloak", Class::Core, 600_000, check, extra) + "\n")
        .stderr_contains("❌ keycloak is unhealthy: exited after")
        .status(1);
    // What a failure means for the deploy is hub-start's to say, once.
    assert!(!stderr(&output).contains("deployment will"));
    let records = records(&output);
    let unhealthy = unhealthy(&records);
    assert_eq!(unhealthy.len(), 1, "{records:?}");
    let unhealthy = unhealthy[0];
    assert_eq!(unhealthy.reason, UnhealthyReason::Exited);
    assert!(unhealthy.is_final);
    assert_eq!((unhealthy.of.attempt, unhealthy.of.max_attempts), (3, 3));
    assert_eq!(unhealthy.exit_status, None, "{unhealthy:?}");
    assert_eq!(
        unhealthy.log_tail.as_deref(),
        Some(&["booting".to_owned(), "fatal: port 8080 in use".to_owned()][..])
    );
    crashed.wait().unwrap();
}

#[test]
fn once_hub_start_is_gone_its_children_are_watched_here() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("db.log");
    // hub-start launched it and promised its exit as an `exited` record, then went away (killed,
    // interrupted, or done without a gate) with no such record: no news will come that way.
    let mut crashed = launch("echo 'db: killed by the teardown'; exit 9", &log);
    let check = tcp(format!("127.0.0.1:{}", free_port()));
    let pid = crashed.id();
    let extra = its_child(pid, &log);
    // Ten minutes of timeout: the test ending at all shows the exit was seen, not waited out.
    let output = Cmd::new("hub-wait-healthy")
        .stdin(started("db", Class::Core, 600_000, check, extra) + "\n")
        .stderr_contains("❌ db is unhealthy: exited after")
        .status(1);
    let records = records(&output);
    let unhealthy = unhealthy(&records);
    assert_eq!(unhealthy.len(), 1, "{records:?}");
    assert_eq!(unhealthy[0].reason, UnhealthyReason::Exited);
    crashed.wait().unwrap();
}

#[test]
fn an_exit_with_attempts_left_is_not_final_and_carries_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kas.log");
    // As hub-start does: reap the process, then say so downstream with an `exited` record.
    let mut crashed = launch("echo 'kas: cannot reach keycloak'; exit 7", &log);
    let status = crashed.wait().unwrap();
    let check = tcp(format!("127.0.0.1:{}", free_port()));
    let pid = crashed.id();
    let extra = |started: &mut Started| {
        its_child(pid, &log)(started);
        started.of.max_attempts = 3;
    };
    let exited = record_line(Record::Exited(Exited {
        of: AttemptOf {
            service: "kas".into(),
            class: Class::Core,
            level: 0,
            attempt: 1,
            max_attempts: 3,
        },
        pid,
        exit_status: status.code().unwrap(),
    }));
    // A CORE service, but another attempt follows: not a failure yet, so exit 0.
    let output = Cmd::new("hub-wait-healthy")
        .stdin(started("kas", Class::Core, 600_000, check, extra) + "\n" + &exited + "\n")
        .stderr_contains("kas exited with status 7 after")
        .stderr_contains("attempt 1/3; hub-start will try again")
        .status(0);
    let records = records(&output);
    let unhealthy = unhealthy(&records)[0];
    assert_eq!(unhealthy.reason, UnhealthyReason::Exited);
    assert!(!unhealthy.is_final);
    assert_eq!(unhealthy.exit_status, Some(7));
    assert_eq!(
        unhealthy.log_tail.as_deref(),
        Some(&["kas: cannot reach keycloak".to_owned()][..])
    );
    assert!(!stderr(&output).contains("deployment will"));
}

#[test]
fn a_timeout_warns_at_50_75_90_percent_and_names_the_last_probe() {
    let check = tcp(format!("127.0.0.1:{}", free_port()));
    let output = Cmd::new("hub-wait-healthy")
        .stdin(started("otel", Class::Optional, 300, check, as_is) + "\n")
        .stderr_contains("otel is still not healthy after")
        .stderr_contains("(50% of 300ms): connection refused")
        .stderr_contains("⚠️  otel is unhealthy: timed out after")
        .status(0);
    assert!(!stderr(&output).contains("deployment will"));
    let records = records(&output);
    let percents: Vec<u32> = waiting(&records).iter().map(|w| w.percent).collect();
    assert_eq!(percents, [50, 75, 90]);
    let first = waiting(&records)[0];
    assert_eq!(first.timeout_ms, 300);
    assert_eq!(first.last_probe.as_deref(), Some("connection refused"));
    let unhealthy = unhealthy(&records)[0];
    assert_eq!(unhealthy.reason, UnhealthyReason::Timeout);
    assert!(unhealthy.is_final);
    assert_eq!(unhealthy.last_probe.as_deref(), Some("connection refused"));
    assert!(unhealthy.elapsed_ms >= 300);
    assert_eq!(unhealthy.failures, unhealthy.probes);
    assert_eq!(records.last().map(Record::kind), Some("unhealthy"));
}

#[test]
fn failures_inside_the_start_period_count_for_nothing_but_the_deadline() {
    let check = HealthSpec {
        start_period_ms: 600_000,
        ..cmd("exit 1")
    };
    let output = Cmd::new("hub-wait-healthy")
        .stdin(started("kas", Class::Stretch, 300, check, as_is) + "\n")
        .stderr_contains("⚠️  kas is unhealthy: timed out after")
        .status(0);
    let records = records(&output);
    assert!(waiting(&records).is_empty(), "{records:?}");
    let unhealthy = unhealthy(&records)[0];
    assert_eq!(unhealthy.reason, UnhealthyReason::Timeout);
    assert_eq!(unhealthy.last_probe.as_deref(), Some("exit 1"));
    assert_eq!(unhealthy.failures, 0);
    assert!(unhealthy.probes >= 1);
}

#[test]
fn a_core_failure_exits_1() {
    let lines = [
        started("postgres", Class::Core, 200, cmd("exit 1"), as_is),
        started("opa", Class::Core, 600_000, cmd("true"), as_is),
    ];
    let output = Cmd::new("hub-wait-healthy")
        .stdin(lines.join("\n") + "\n")
        .stderr_contains("❌ postgres is unhealthy: timed out after")
        .stderr_contains("(last probe: exit 1)")
        .stderr_contains("✅ opa is healthy (")
        .status(1);
    let records = records(&output);
    assert_eq!(healthy_services(&records), ["opa"]);
    assert_eq!(unhealthy(&records)[0].of.service, "postgres");
}

#[test]
fn other_records_pass_through_byte_for_byte() {
    let lines = [
        r#"{"type":"plan","service":"a",  "weird" : [1, 2.50, "é\u00e9"]}"#,
        r#"{"type":"something_new","x":{"y":null}}"#,
        r#"{"type":"failed","service":"b","final":true}"#,
    ];
    let input = lines.join("\n") + "\n";
    Cmd::new("hub-wait-healthy")
        .stdin(input.clone())
        .stdout(&input)
        .status(0);
}

#[test]
fn a_live_process_with_no_check_is_healthy_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut service = launch("exec sleep 600", &dir.path().join("svc.log"));
    let extra = run_process(service.id());
    let output = Cmd::new("hub-wait-healthy")
        .stdin(started("svc", Class::Core, 600_000, health(Check::None), extra) + "\n")
        .status(0);
    assert_eq!(healthy_services(&records(&output)), ["svc"]);
    service.kill().unwrap();
    service.wait().unwrap();
}

#[test]
fn started_records_pass_through_byte_for_byte_before_their_outcome() {
    let line = started("svc", Class::Core, 600_000, health(Check::None), as_is);
    let output = Cmd::new("hub-wait-healthy")
        .stdin(line.clone() + "\n")
        .status(0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&line.as_str()), "stdout:\n{stdout}");
    assert_eq!(healthy_services(&records(&output)), ["svc"]);
}

#[test]
fn after_an_interrupt_upstream_records_still_pass_through_until_stdin_closes() {
    // A Ctrl-C reaches hub-start too: its own `interrupted` record comes after ours and must
    // still reach the events file.
    let mut live = Live::spawn(&[]);
    let check = tcp(format!("127.0.0.1:{}", free_port()));
    live.send(&started("redis", Class::Core, 600_000, check, as_is));
    live.record("started");
    let kill = Command::new("kill")
        .args(["-INT", &live.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    live.record("interrupted");
    let upstream = record_line(Record::Interrupted(Interrupted {
        tool: "hub-start".into(),
        signal: SignalName::Int,
        in_flight: Vec::new(),
    }));
    live.send(&upstream);
    let (status, records) = live.finish();
    assert_eq!(status, 130);
    assert_eq!(records.last(), Some(&hub_tests::line(&upstream)));
}

#[test]
fn a_container_check_without_a_container_is_a_probe_error() {
    let check = health(Check::Container { grace_ms: 10 });
    let container = |started: &mut Started| started.backend = Some(Backend::Container);
    let output = Cmd::new("hub-wait-healthy")
        .stdin(started("web", Class::Optional, 600_000, check, container) + "\n")
        .status(0);
    let records = records(&output);
    let unhealthy = unhealthy(&records)[0];
    assert_eq!(unhealthy.reason, UnhealthyReason::ProbeError);
    assert!(unhealthy.is_final);
    // Container checks go to the Docker backend, which needs the container's id.
    assert_eq!(unhealthy.message, "the started record names no container");
}

#[test]
fn bad_lines_are_named_skipped_and_exit_2() {
    let good = started("opa", Class::Core, 600_000, cmd("true"), as_is);
    let input = format!(
        "{{\"type\":\"plan\"}}\nnot json\n{{\"type\":\"started\",\"service\":\"x\"}}\n{good}\n"
    );
    let output = Cmd::new("hub-wait-healthy")
        .stdin(input)
        .stderr_contains("stdin:2: not a JSON record")
        .stderr_contains("stdin:3: malformed record")
        .status(2);
    // The malformed plan is passed through as it came, so the stream is not all records: its
    // raw JSON is all there is to look at.
    let raw = json_lines(&output);
    assert_eq!(raw[0]["type"], "plan");
    let healthy: Vec<Record> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| Line::decode(l).ok())
        .map(|l| l.record)
        .collect();
    assert_eq!(healthy_services(&healthy), ["opa"]);
}

#[test]
fn sigterm_stops_waiting_kills_probe_commands_and_exits_143() {
    let dir = tempfile::tempdir().unwrap();
    let probe_pid = dir.path().join("probe.pid");
    let mut live = Live::spawn(&["-v"]);
    let slow_tcp = tcp(format!("127.0.0.1:{}", free_port()));
    live.send(&started("redis", Class::Core, 600_000, slow_tcp, as_is));
    let hanging = HealthSpec {
        probe_timeout_ms: 600_000,
        ..cmd(format!(
            "echo $$ > {}.tmp && mv {0}.tmp {0} && exec sleep 600",
            probe_pid.display()
        ))
    };
    live.send(&started("vault", Class::Core, 600_000, hanging, as_is));
    live.stderr_line("redis: probe 1: connection refused");
    let deadline = Instant::now() + PATIENCE;
    while !probe_pid.exists() {
        assert!(Instant::now() < deadline, "the probe command never started");
        std::thread::yield_now();
    }
    let pid: u32 = std::fs::read_to_string(&probe_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    signal(&live, "TERM");
    let line = live.record("interrupted");
    assert_eq!(line.run_id.as_deref(), Some("test-run"));
    let Record::Interrupted(interrupted) = line.record else {
        unreachable!()
    };
    assert_eq!(interrupted.tool, "hub-wait-healthy");
    assert_eq!(interrupted.signal, SignalName::Term);
    assert_eq!(interrupted.in_flight, ["redis", "vault"]);
    let (status, _) = live.finish();
    assert_eq!(status, 143);
    let deadline = Instant::now() + PATIENCE;
    while !process_gone(pid) {
        assert!(Instant::now() < deadline, "probe command {pid} survived");
        std::thread::yield_now();
    }
}

#[test]
fn sigint_exits_130_with_an_interrupted_record() {
    let mut live = Live::spawn(&["-v"]);
    let check = tcp(format!("127.0.0.1:{}", free_port()));
    live.send(&started("redis", Class::Core, 600_000, check, as_is));
    live.stderr_line("redis: probe 1: connection refused");
    signal(&live, "INT");
    let Record::Interrupted(interrupted) = live.record("interrupted").record else {
        unreachable!()
    };
    assert_eq!(interrupted.signal, SignalName::Int);
    assert_eq!(interrupted.in_flight, ["redis"]);
    let (status, _) = live.finish();
    assert_eq!(status, 130);
}

#[test]
fn a_probe_answered_by_a_stray_server_does_not_make_a_dead_service_healthy() {
    // The service died ("Address already in use"); something else answers on its port.
    let stray = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = stray.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut service = launch(
        "echo 'Address already in use' >&2; exit 1",
        &dir.path().join("svc.log"),
    );
    service.wait().unwrap();
    let extra = run_process(service.id());
    let output = Cmd::new("hub-wait-healthy")
        .stdin(started("svc", Class::Core, 600_000, tcp(address), extra) + "\n")
        .status(1);
    let records = records(&output);
    assert!(of_type(&records, "healthy").is_empty(), "{records:?}");
    assert_eq!(unhealthy(&records)[0].reason, UnhealthyReason::Exited);
}

/// The threads of process `pid` now (0 once it is gone).
fn threads_of(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Wait on `count` services checked by `check_cmd` (a shell command that passes once `go`
/// exists), with `args`: every service is probed once and fails, then `go` is created and
/// every one must become healthy. Returns how many probes each healthy record counted, and the
/// most threads the tool had, read at every line it wrote meanwhile.
fn many_cmd_services(
    args: &[&str],
    count: usize,
    check_cmd: &str,
    go: &std::path::Path,
) -> (Vec<u32>, usize) {
    let mut live = Live::spawn(args);
    let pid = live.child.id();
    for n in 0..count {
        live.send(&started(
            &format!("s{n}"),
            Class::Core,
            600_000,
            cmd(check_cmd),
            as_is,
        ));
    }
    let mut most = 0;
    for n in 0..count {
        live.stderr_line(&format!("s{n}: probe 1: exit 1"));
        most = most.max(threads_of(pid));
    }
    std::fs::write(go, "").unwrap();
    let mut probes = Vec::new();
    while probes.len() < count {
        match live.record("healthy").record {
            Record::Healthy(healthy) => probes.push(healthy.probes),
            other => panic!("not a healthy record: {other:?}"),
        }
        most = most.max(threads_of(pid));
    }
    let (status, _) = live.finish();
    assert_eq!(status, 0);
    (probes, most)
}

#[test]
fn three_hundred_services_are_waited_for_on_a_bounded_number_of_threads() {
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let check = format!("test -f {}", go.display());
    let (healthy, most) = many_cmd_services(&["-v"], 300, &check, &go);
    assert_eq!(healthy.len(), 300);
    // Main, stdin, signals, exits; 16 probe commands at most (the default), each with the
    // thread that reaps it. Not one per service.
    eprintln!("hub-wait-healthy had at most {most} threads for 300 services");
    assert!(
        most <= 40,
        "hub-wait-healthy had {most} threads for 300 services"
    );
}

#[test]
fn with_one_probe_command_at_a_time_every_service_is_still_probed_and_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let (go, lock, overlap) = (
        dir.path().join("go"),
        dir.path().join("lock"),
        dir.path().join("overlap"),
    );
    // A probe that finds another one running leaves `overlap` behind.
    let check = format!(
        "mkdir {lock} 2>/dev/null || touch {overlap}; test -f {go}; s=$?; rmdir {lock}; exit $s",
        lock = lock.display(),
        overlap = overlap.display(),
        go = go.display()
    );
    let (probes, _) = many_cmd_services(&["-v", "--max-probe-commands", "1"], 40, &check, &go);
    assert_eq!(probes.len(), 40);
    // The failed first probe, then the passing one at least, for every service.
    assert!(probes.iter().all(|n| *n >= 2), "{probes:?}");
    assert!(!overlap.exists(), "two probe commands ran at once");
}
