//! Bench for `hub-wait-healthy`, run by hand (docs/benchmarks.md has the figures):
//!
//! - detection latency: the time from a service becoming ready (a TCP port starts listening;
//!   an HTTP endpoint turns from 503 to 200) to the `healthy` record arriving on the tool's
//!   stdout, and from a `run` process dying to its `unhealthy` record;
//! - CPU: the tool's own user+system time (from /proc/PID/stat) while it waits on 100 services
//!   that never become ready, at the default probe intervals.
//!
//! Usage: hub-bench-wait [--bin PATH] [--rounds N] [--cpu-seconds S] [--services N] [--only KIND]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Options {
    bin: PathBuf,
    rounds: usize,
    cpu_seconds: u64,
    services: usize,
    /// Only this CPU case (`tcp`, `http-keep-alive`, `http`, `run`, `cmd`), and no latency rounds.
    only: Option<String>,
}

fn options() -> Options {
    let mut opts = Options {
        bin: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/release/hub-wait-healthy"),
        rounds: 40,
        cpu_seconds: 20,
        services: 100,
        only: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--bin" => opts.bin = PathBuf::from(value),
            "--rounds" => opts.rounds = value.parse().expect("--rounds N"),
            "--cpu-seconds" => opts.cpu_seconds = value.parse().expect("--cpu-seconds S"),
            "--services" => opts.services = value.parse().expect("--services N"),
            "--only" => opts.only = Some(value),
            other => {
                eprintln!("unknown argument {other}; see the top of bench/wait/src/main.rs");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    opts
}

/// The tool under test, its stdout lines stamped with the moment they were read.
struct Tool {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<(Instant, String)>,
}

impl Tool {
    fn spawn(bin: &PathBuf) -> Tool {
        let mut child = Command::new(bin)
            .arg("-q")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e}; build it with cargo build --release -p hub-wait-healthy",
                    bin.display()
                )
            });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take().expect("stdin");
        Tool {
            child,
            stdin,
            lines,
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("writing to the tool");
        self.stdin.flush().expect("flushing to the tool");
    }

    /// Wait for a record of `kind` about `service`; the moment it was read.
    fn wait_for(&self, kind: &str, service: &str) -> Instant {
        let kind = format!("\"type\":\"{kind}\"");
        let service = format!("\"service\":\"{service}\"");
        loop {
            let (at, line) = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .expect("no record within 60s");
            if line.contains(&kind) && line.contains(&service) {
                return at;
            }
        }
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A `started` record with the default probe settings of `hub-levels` (interval 100 ms for
/// tcp/http, 500 ms for cmd; probe timeout 2 s).
fn started(service: &str, check: &str, interval_ms: u64, extra: &str) -> String {
    format!(
        "{{\"type\":\"started\",\"ts\":{},\"run_id\":\"bench\",\"service\":\"{service}\",\
         \"class\":\"core\",\"level\":0,\"attempt\":1,\"max_attempts\":1,\"timeout_ms\":600000,\
         \"health\":{{{check},\"interval_ms\":{interval_ms},\"probe_timeout_ms\":2000,\
         \"start_period_ms\":0}}{extra}}}",
        now_ms()
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// An HTTP server answering 200 on `/r<N>` when N < `ready_below`, else 503. With `keep_alive`
/// it serves many requests per connection (as most servers do); without, it closes each one.
fn http_server(ready_below: Arc<AtomicUsize>, keep_alive: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let ready_below = Arc::clone(&ready_below);
            let serve = move || serve_http(stream, &ready_below, keep_alive);
            if keep_alive {
                std::thread::spawn(serve);
            } else {
                serve();
            }
        }
    });
    port
}

fn serve_http(mut stream: std::net::TcpStream, ready_below: &AtomicUsize, keep_alive: bool) {
    let mut request = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&request);
        let round: usize = text
            .split_whitespace()
            .nth(1)
            .and_then(|path| path.strip_prefix("/r"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(usize::MAX);
        let status = if round < ready_below.load(Ordering::SeqCst) {
            "200 OK"
        } else {
            "503 Service Unavailable"
        };
        let connection = if keep_alive { "keep-alive" } else { "close" };
        let answer =
            format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: {connection}\r\n\r\nok");
        if stream.write_all(answer.as_bytes()).is_err() || !keep_alive {
            return;
        }
        request.clear();
    }
}

/// A spread of delays before the service turns ready, so readiness falls at every phase of the
/// probe schedule (early short gaps and the steady interval alike).
fn delay(round: usize) -> Duration {
    Duration::from_millis(150 + (round as u64 * 37) % 450)
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        samples.len(),
        ms(pick(0.5)),
        ms(pick(0.9)),
        ms(samples[0]),
        ms(samples[samples.len() - 1])
    );
}

fn latency(opts: &Options) {
    println!("\n## Detection latency ({} rounds each)\n", opts.rounds);
    println!("| event → record | rounds | median ms | p90 ms | min ms | max ms |");
    println!("|---|---|---|---|---|---|");

    let mut tool = Tool::spawn(&opts.bin);
    let mut samples = Vec::new();
    for round in 0..opts.rounds {
        let port = free_port();
        let name = format!("tcp{round}");
        tool.send(&started(
            &name,
            &format!("\"kind\":\"tcp\",\"address\":\"127.0.0.1:{port}\""),
            100,
            "",
        ));
        std::thread::sleep(delay(round));
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the service port");
        let ready = Instant::now();
        let seen = tool.wait_for("healthy", &name);
        samples.push(seen - ready);
        drop(listener);
    }
    report("tcp: port listens → `healthy`", samples);

    let ready_below = Arc::new(AtomicUsize::new(0));
    let port = http_server(Arc::clone(&ready_below), false);
    let mut samples = Vec::new();
    for round in 0..opts.rounds {
        let name = format!("http{round}");
        let check = format!(
            "\"kind\":\"http\",\"url\":\"http://127.0.0.1:{port}/r{round}\",\"status\":\"200-399\""
        );
        tool.send(&started(&name, &check, 100, ""));
        std::thread::sleep(delay(round));
        ready_below.store(round + 1, Ordering::SeqCst);
        let ready = Instant::now();
        let seen = tool.wait_for("healthy", &name);
        samples.push(seen - ready);
    }
    report("http: 503 turns 200 → `healthy`", samples);

    let dir = std::env::temp_dir().join(format!("hub-bench-wait-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut samples = Vec::new();
    for round in 0..opts.rounds {
        let name = format!("run{round}");
        let mut child = Command::new("sleep")
            .arg("600")
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let log = dir.join(format!("{name}.log"));
        std::fs::write(&log, "booting\n").expect("log");
        // As hub-start does: it is the parent, so it reaps the child and says so downstream
        // with an `exited` record.
        let extra = format!(
            ",\"backend\":\"run\",\"pid\":{pid},\"log\":\"{}\",\"exit_record\":true",
            log.display()
        );
        let check = format!("\"kind\":\"tcp\",\"address\":\"127.0.0.1:{}\"", free_port());
        tool.send(&started(&name, &check, 100, &extra));
        std::thread::sleep(delay(round));
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        let died = Instant::now();
        let status = child.wait().expect("wait");
        let code = status.code().unwrap_or(128 + 9);
        tool.send(&format!(
            "{{\"type\":\"exited\",\"service\":\"{name}\",\"class\":\"core\",\"attempt\":1,\"max_attempts\":1,\"pid\":{pid},\"exit_status\":{code}}}"
        ));
        let seen = tool.wait_for("unhealthy", &name);
        samples.push(seen - died);
    }
    report("run: process killed → `unhealthy` (exited)", samples);
    let _ = std::fs::remove_dir_all(&dir);
    tool.stop();
}

/// The process's user+system CPU time, from /proc/PID/stat, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields[11].parse().unwrap_or(0);
    let stime: u64 = fields[12].parse().unwrap_or(0);
    utime + stime
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

fn threads_and_rss(pid: u32) -> (String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_owned())
            .unwrap_or_default()
    };
    (field("Threads:"), field("VmRSS:"))
}

fn cpu(opts: &Options) {
    println!(
        "\n## CPU while waiting on {} services that never become ready ({} s window)\n",
        opts.services, opts.cpu_seconds
    );
    println!("| services | probes/s (expected) | CPU, % of one core | threads | RSS |");
    println!("|---|---|---|---|---|");
    let ticks_per_second = clock_ticks_per_second();
    let ready_below = Arc::new(AtomicUsize::new(0));
    let close_port = http_server(Arc::clone(&ready_below), false);
    let keep_alive_port = http_server(Arc::clone(&ready_below), true);
    let n = opts.services;
    let cases: [(&str, &str, u64); 5] = [
        ("tcp, connection refused", "tcp", 100),
        ("http, answering 503, keep-alive", "http-keep-alive", 100),
        (
            "http, answering 503, a new connection each time",
            "http",
            100,
        ),
        ("run process alive + tcp refused", "run", 100),
        ("cmd `exit 1` (forks a shell per probe)", "cmd", 500),
    ];
    for (label, kind, interval) in cases {
        if opts.only.as_deref().is_some_and(|only| only != kind) {
            continue;
        }
        let mut tool = Tool::spawn(&opts.bin);
        let mut sleepers = Vec::new();
        for i in 0..n {
            let name = format!("{kind}{i}");
            let (check, extra) = match kind {
                "tcp" => (
                    format!("\"kind\":\"tcp\",\"address\":\"127.0.0.1:{}\"", free_port()),
                    String::new(),
                ),
                "http" | "http-keep-alive" => {
                    let port = if kind == "http" {
                        close_port
                    } else {
                        keep_alive_port
                    };
                    (
                        format!(
                            "\"kind\":\"http\",\"url\":\"http://127.0.0.1:{port}/r{}\"",
                            1_000_000 + i
                        ) + ",\"status\":\"200-399\"",
                        String::new(),
                    )
                }
                "run" => {
                    let child = Command::new("sleep")
                        .arg("600")
                        .process_group(0)
                        .stdin(Stdio::null())
                        .spawn()
                        .expect("spawn sleep");
                    let extra = format!(",\"backend\":\"run\",\"pid\":{}", child.id());
                    sleepers.push(child);
                    (
                        format!("\"kind\":\"tcp\",\"address\":\"127.0.0.1:{}\"", free_port()),
                        extra,
                    )
                }
                _ => (
                    "\"kind\":\"cmd\",\"cmd\":\"exit 1\"".to_owned(),
                    String::new(),
                ),
            };
            tool.send(&started(&name, &check, interval, &extra));
        }
        let pid = tool.child.id();
        // Let every schedule grow to its steady interval first.
        std::thread::sleep(Duration::from_secs(2));
        let before = cpu_ticks(pid);
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs(opts.cpu_seconds));
        let used = (cpu_ticks(pid) - before) as f64 / ticks_per_second as f64;
        let wall = start.elapsed().as_secs_f64();
        let (threads, rss) = threads_and_rss(pid);
        println!(
            "| {n} × {label} | {} | {:.2} | {threads} | {rss} |",
            n as u64 * 1000 / interval,
            used / wall * 100.0
        );
        tool.stop();
        for mut child in sleepers {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn main() {
    let opts = options();
    println!("# hub-wait-healthy bench\n\nbinary: {}", opts.bin.display());
    if opts.only.is_none() {
        latency(&opts);
    }
    cpu(&opts);
}
