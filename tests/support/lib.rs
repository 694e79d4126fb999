//! The test builder every integration test uses: run a real hub binary, feed it stdin, and
//! assert its exit status and output, in the style of `just`'s tests.
//!
//! The binaries are built once per test process with `cargo build --bins`, so `cargo test`
//! alone never runs a stale binary.

pub mod build;
pub mod docker;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The folder the workspace's binaries are built into (next to this test executable).
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target dir")
            .to_path_buf();
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "--quiet", "--workspace", "--bins"]);
        if release {
            build.arg("--release");
        }
        build.current_dir(workspace_root());
        // Cargo gives a test the variables of the package under test; build scripts (ring's)
        // watch some of them, so an inherited set would make this build and the next `cargo
        // test` rebuild each other every time.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let set_for_tests = key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_BIN_EXE_")
                || [
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_CRATE_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_BIN_NAME",
                    "OUT_DIR",
                ]
                .contains(&key.as_ref());
            if set_for_tests {
                build.env_remove(key.as_ref());
            }
        }
        let status = build.status().expect("running cargo build for the tools");
        assert!(status.success(), "cargo build --bins failed");
        dir
    })
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The path of one tool's binary.
pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// A fixture path under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    workspace_root().join("tests").join("fixtures").join(name)
}

/// A command under test: builder methods, then `.status(n)` runs it and checks the status.
pub struct Cmd {
    command: Command,
    stdin: Option<Vec<u8>>,
    expect_status: i32,
    stdout: Option<String>,
    stderr_contains: Vec<String>,
    stderr: Option<Stderr>,
}

impl Cmd {
    /// A command for tool `name` (e.g. `hub-levels`).
    pub fn new(name: &str) -> Self {
        Cmd::program(&bin(name))
    }

    /// A command for one of the repository's scripts, using the test binaries.
    pub fn script(name: &str) -> Self {
        let bins = bin_dir().display().to_string();
        Cmd::program(&workspace_root().join("scripts").join(name)).env("HUB_BIN_DIR", bins)
    }

    /// A command for any program.
    pub fn program(program: &Path) -> Self {
        let mut command = Command::new(program);
        // Tests see stable output: no colour, no inherited knobs.
        command.env("NO_COLOR", "1");
        for (key, _) in std::env::vars() {
            if key.starts_with("TIMEOUT_")
                || key.starts_with("RETRY_")
                || key.starts_with("CIRCUIT_BREAKER_")
                || key == "COMPOSE_PROFILES"
                || key == "HUB_LOG"
            {
                command.env_remove(key);
            }
        }
        Cmd {
            command,
            stdin: None,
            expect_status: 0,
            stdout: None,
            stderr_contains: Vec::new(),
            stderr: None,
        }
    }

    /// Add an argument.
    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    /// Add arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, args: I) -> Self {
        self.command.args(args);
        self
    }

    /// Set an environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Remove an environment variable.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.command.env_remove(key);
        self
    }

    /// Run in this folder.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Feed this to stdin.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Expect exactly this stdout.
    pub fn stdout(mut self, expected: &str) -> Self {
        self.stdout = Some(expected.to_owned());
        self
    }

    /// Expect stderr to contain this.
    pub fn stderr_contains(mut self, needle: &str) -> Self {
        self.stderr_contains.push(needle.to_owned());
        self
    }

    /// Expect exactly this stderr: a stray warning fails the test.
    pub fn stderr(mut self, expected: &str) -> Self {
        self.stderr = Some(Stderr::Exact(expected.to_owned()));
        self
    }

    /// Expect stderr to be exactly these lines, in order, each matching its pattern whole
    /// (`*` stands for any run of characters: a time, a path, a pid). A line more, or one less,
    /// fails the test.
    pub fn stderr_lines(mut self, patterns: &[&str]) -> Self {
        self.stderr = Some(Stderr::Lines(
            patterns.iter().map(|&p| p.to_owned()).collect(),
        ));
        self
    }

    /// Run, check the exit status and expectations, and return the output.
    pub fn status(mut self, code: i32) -> Output {
        self.expect_status = code;
        self.run()
    }

    /// Run and check (status 0 unless `.status` was used).
    pub fn run(mut self) -> Output {
        self.command.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        self.command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = self.command.spawn().expect("spawning the tool");
        if let Some(input) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        let output = child.wait_with_output().expect("waiting for the tool");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(self.expect_status),
            "unexpected exit status\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
        if let Some(expected) = &self.stdout {
            assert_eq!(stdout, *expected, "unexpected stdout\n--- stderr\n{stderr}");
        }
        match &self.stderr {
            Some(Stderr::Exact(expected)) => {
                assert_eq!(stderr, *expected, "unexpected stderr\n--- stdout\n{stdout}");
            }
            Some(Stderr::Lines(patterns)) => {
                let lines: Vec<&str> = stderr.lines().collect();
                let fits = lines.len() == patterns.len()
                    && lines.iter().zip(patterns).all(|(l, p)| glob(p, l));
                assert!(
                    fits,
                    "stderr does not match line for line\n--- expected\n{}\n--- stderr\n{stderr}",
                    patterns.join("\n")
                );
            }
            None => {}
        }
        for needle in &self.stderr_contains {
            assert!(
                stderr.contains(needle.as_str()),
                "stderr lacks {needle:?}\n--- stderr\n{stderr}"
            );
        }
        output
    }
}

/// What stderr must be, when a test says so.
enum Stderr {
    Exact(String),
    Lines(Vec<String>),
}

/// Does `text` match `pattern` whole, `*` standing for any run of characters?
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return text.is_empty();
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// One stdout line decoded as the records contract (`hub::records::Line`): a line a tool
/// writes that the contract cannot read fails the test.
pub fn line(text: &str) -> hub::records::Line {
    hub::records::Line::parse(text, "stdout", 0)
        .unwrap_or_else(|e| panic!("not a hub record: {text}: {e}"))
}

/// The records of an output's stdout, typed.
pub fn typed_records(output: &Output) -> Vec<hub::records::Record> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| line(l).record)
        .collect()
}

/// The records of an output's stdout, typed, with their envelope (`ts`, `run_id`).
pub fn lines(output: &Output) -> Vec<hub::records::Line> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(line)
        .collect()
}

/// The records of one type, as that type's struct: `variants!(&records, Record::Failed)` is a
/// `Vec<&Failed>`. Takes anything that iterates over `&Record`.
#[macro_export]
macro_rules! variants {
    ($records:expr, $variant:path) => {
        $records
            .into_iter()
            .filter_map(|r: &hub::records::Record| match r {
                $variant(x) => Some(x),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
}

/// A matcher: a `kind` record (`started`, `healthy`, …) about `service`.
pub fn is(kind: &'static str, service: &'static str) -> impl Fn(&hub::records::Record) -> bool {
    move |r| r.kind() == kind && r.service() == Some(service)
}

/// Append one record, stamped now for `run_id`, to a file (a gate, an events file), as a tool
/// would write it.
pub fn append_record(path: &Path, run_id: Option<&str>, record: hub::records::Record) {
    let text = hub::records::Line::now(run_id, record)
        .to_line()
        .expect("a record encodes");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for appending");
    writeln!(file, "{text}").expect("append a record");
}

/// The JSON lines of an output's stdout, not checked against the contract: for a test of
/// what a tool passes through untouched (a line it was given, malformed or not).
pub fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// Stderr as a string.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A temp folder with files written into it, removed when dropped.
pub fn temp_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        let mut file = std::fs::File::create(&path).expect("create fixture");
        file.write_all(content.as_bytes()).expect("write fixture");
    }
    dir
}

/// A tool running in the background, read record by record as it writes them.
pub struct Running {
    child: std::process::Child,
    records: std::sync::mpsc::Receiver<hub::records::Line>,
    /// Every record read so far, with its envelope.
    pub seen: Vec<hub::records::Line>,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    /// Receives once the tool's stderr reaches end of file.
    stderr_closed: std::sync::mpsc::Receiver<()>,
}

/// How long a test waits for any one expected event before failing (a deadline, not a sleep).
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

impl Running {
    /// Start tool `name` with `args` in `dir`, stdin piped (write with [`Running::send`]).
    pub fn spawn(name: &str, args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Running {
        Running::spawn_program(&bin(name), args, dir, env)
    }

    /// Start one of the repository's scripts (`hub-deploy`) with the test binaries.
    pub fn spawn_script(name: &str, args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Running {
        let script = workspace_root().join("scripts").join(name);
        let bins = bin_dir().display().to_string();
        let mut all_env = vec![("HUB_BIN_DIR", bins.as_str())];
        all_env.extend_from_slice(env);
        Running::spawn_program(&script, args, dir, &all_env)
    }

    /// Start any program.
    pub fn spawn_program(
        program: &Path,
        args: &[&str],
        dir: &Path,
        env: &[(&str, &str)],
    ) -> Running {
        let mut command = Command::new(program);
        command.args(args).current_dir(dir).env("NO_COLOR", "1");
        for (k, v) in env {
            command.env(k, v);
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawning the tool");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, records) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if line.trim().is_empty() {
                    continue;
                }
                // A record the contract cannot read ends the stream here: the test sees its
                // records stop, and this thread's panic message says why.
                if tx.send(crate::line(&line)).is_err() {
                    return;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let mut err = child.stderr.take().expect("stderr");
        let (closed, stderr_closed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut err, &mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            let _ = closed.send(());
        });
        Running {
            child,
            records,
            seen: Vec::new(),
            stderr,
            stderr_closed,
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Write a line to its stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{}", line.trim_end()).expect("writing to the tool's stdin");
        stdin.flush().expect("flush");
    }

    /// Close its stdin.
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// The next record, or None when stdout closed.
    pub fn next_record(&mut self) -> Option<hub::records::Line> {
        match self.records.recv_timeout(DEADLINE) {
            Ok(line) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!(
                    "no record within {DEADLINE:?}; seen {:#?}\n--- stderr\n{}",
                    self.seen,
                    self.stderr()
                )
            }
        }
    }

    /// The first record (already read, or read now) that matches.
    pub fn wait_for(
        &mut self,
        what: &str,
        matches: impl Fn(&hub::records::Record) -> bool,
    ) -> hub::records::Record {
        if let Some(found) = self.seen.iter().find(|l| matches(&l.record)) {
            return found.record.clone();
        }
        loop {
            match self.next_record() {
                Some(line) if matches(&line.record) => return line.record,
                Some(_) => {}
                None => panic!(
                    "stdout closed before {what}; seen {:#?}\n--- stderr\n{}",
                    self.seen,
                    self.stderr()
                ),
            }
        }
    }

    /// Every record read so far.
    pub fn seen_records(&self) -> Vec<hub::records::Record> {
        self.seen.iter().map(|l| l.record.clone()).collect()
    }

    /// Read all remaining records and wait for the exit status: the status, the records, and
    /// stderr.
    pub fn finish(self) -> (Option<i32>, Vec<hub::records::Record>, String) {
        let (status, lines, stderr) = self.finish_lines();
        (
            status,
            lines.into_iter().map(|l| l.record).collect(),
            stderr,
        )
    }

    /// [`Running::finish`], with each record's envelope (`ts`, `run_id`) kept.
    pub fn finish_lines(mut self) -> (Option<i32>, Vec<hub::records::Line>, String) {
        self.close_stdin();
        while self.next_record().is_some() {}
        let status = self.child.wait().expect("wait");
        // The reader thread may still hold the tool's last lines: wait for end of file, with a
        // deadline, since a grandchild that inherited stderr may keep it open.
        let _ = self
            .stderr_closed
            .recv_timeout(std::time::Duration::from_secs(5));
        let stderr = self.stderr();
        (status.code(), std::mem::take(&mut self.seen), stderr)
    }

    /// Send a signal to the tool.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kill the process groups named by the pid files in `STATE_DIR/pids`, so a test leaves no
/// service behind even when it fails.
pub struct KillPidsOnDrop(pub PathBuf);

impl Drop for KillPidsOnDrop {
    fn drop(&mut self) {
        // Belt and braces: anything still running in the stack's folder (whose pid file a
        // failed or racing test never saw) goes too.
        if let Some(folder) = self.0.parent() {
            let me = std::process::id().to_string();
            for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
                    continue;
                }
                if std::fs::read_link(entry.path().join("cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(folder))
                {
                    let _ = Command::new("kill")
                        .args(["-KILL", &name])
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        let Ok(entries) = std::fs::read_dir(self.0.join("pids")) else {
            return;
        };
        for entry in entries.flatten() {
            // `PID START`: the pid is the first word.
            let pid = std::fs::read_to_string(entry.path()).ok().and_then(|text| {
                text.split_whitespace()
                    .next()
                    .and_then(|pid| pid.parse::<i32>().ok())
            });
            if let (true, Some(pid)) = (entry.path().extension().is_some_and(|e| e == "pid"), pid)
                && pid > 1
            {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// A TCP port nobody listens on (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binding a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// Is process `pid` alive (and not a zombie)?
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Wait until a command has written its pid (a whole line) to `path`, and read it. hub's own
/// pid files hold `PID START`: the pid is the first word.
pub fn wait_for_pid_file(path: &Path) -> u32 {
    wait_until(&format!("a pid in {}", path.display()), || {
        std::fs::read_to_string(path).is_ok_and(|s| s.ends_with('\n'))
    });
    std::fs::read_to_string(path)
        .expect("pid file")
        .split_whitespace()
        .next()
        .expect("a pid")
        .parse()
        .expect("a pid")
}

/// Wait (with a deadline) until `condition` holds.
pub fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A small stack of the demo's stand-in services on free ports, for tests that deploy a real
/// stack without the demo's fixed ports (other people's demos may hold them): `db` (CORE, tcp),
/// `migrate` (CORE one-shot job), `web` (OPTIONAL, http, fails its first attempt).
/// `service_py` is the demo's `service.py` (the checkout's, or an installed copy).
pub fn small_stack(service_py: &Path) -> String {
    let py = service_py.display();
    let (db, web) = (free_port(), free_port());
    format!(
        r#"name: hub-small
services:
  db:
    x-hub:
      class: core
      run: [python3, "{py}", --name, db, --port, "{db}", --ready-after, "0.2"]
      health: {{ tcp: "127.0.0.1:{db}" }}
      timeout: 20s
  migrate:
    depends_on: {{ db: {{ condition: service_healthy }} }}
    x-hub:
      class: core
      run: [sh, -c, "echo migrated"]
      health: {{ completed: true }}
      timeout: 20s
  web:
    depends_on: [migrate]
    x-hub:
      class: optional
      run: [python3, "{py}", --name, web, --port, "{web}", --fail-until-attempt, "2"]
      health: {{ http: "http://127.0.0.1:{web}/" }}
      retry: {{ attempts: 2, delay: 100ms }}
      timeout: 20s
"#
    )
}

/// KILL the process group `pgid` (a service hub launched) and wait until its leader is gone.
pub fn kill_group(pgid: u64) {
    let killed = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status()
        .expect("running kill");
    assert!(killed.success(), "kill -KILL -{pgid} failed");
    wait_until(&format!("process {pgid} is gone"), || {
        !Path::new(&format!("/proc/{pgid}")).exists()
    });
}

/// Whether a test's outside tool is here. When not, print a loud SKIPPED line with `what` and
/// how to install it, and fail instead when `CI` is set (CI's setup installs it).
pub fn present_or_skip(found: bool, what: &str, install: &str) -> bool {
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is missing in CI: {install}"
        );
        eprintln!("\n!!!!!!!!!! SKIPPED: {what} is missing: {install} !!!!!!!!!!");
    }
    found
}
