//! `scripts/hub-deploy` on a stack of real servers from Debian packages: PostgreSQL (its own
//! data dir via `initdb`, `pg_ctl start`/`stop`, health `pg_isready`), Redis (`redis-server`,
//! health `redis-cli ping`), nginx (its own config, health `http`) and an app that depends on
//! all three. Each test gets its own temp folder and free ports, so they run in parallel.
//!
//! What users judge hub on is whether it brings *their* stack up: fake services cannot show
//! that a real postmaster, a real nginx master/worker pair or a real Redis is started, probed,
//! resumed and torn down correctly. Where the servers are not installed (a laptop), each test
//! prints a loud SKIPPED line and passes, unless `HUB_REQUIRE_SERVERS=1` (set in CI by
//! `.ci/setup.d/20-servers.sh`), when a missing server fails the test.

use hub::records::{
    Class, FailReason, Failed, Finished, Interrupted, Line, Record, SignalName, SkipReason,
    Skipped, StopMethod, Stopped,
};
use hub_tests::{KillPidsOnDrop, alive, bin_dir, free_port, variants, wait_until, workspace_root};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// The server programs, found where Debian installs them.
#[derive(Clone)]
struct Servers {
    /// `/usr/lib/postgresql/<version>/bin`: initdb, pg_ctl, pg_isready.
    pg_bin: PathBuf,
    redis_server: PathBuf,
    redis_cli: PathBuf,
    nginx: PathBuf,
    python3: PathBuf,
}

/// A program on PATH or in the sbin folders (nginx lives in /usr/sbin, off a user's PATH).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/bin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

/// The newest PostgreSQL server's bin folder (`/usr/lib/postgresql/15/bin`).
fn find_pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            ["initdb", "pg_ctl", "pg_isready", "postgres"]
                .iter()
                .all(|p| bin.join(p).is_file())
                .then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The servers, or None after a loud SKIPPED line (a failure when `HUB_REQUIRE_SERVERS=1`).
fn servers_or_skip(test: &str) -> Option<Servers> {
    let found = (
        find_pg_bin(),
        find_program("redis-server"),
        find_program("redis-cli"),
        find_program("nginx"),
        find_program("python3"),
    );
    let missing: Vec<&str> = [
        ("postgresql (/usr/lib/postgresql/*/bin)", found.0.is_none()),
        ("redis-server", found.1.is_none()),
        ("redis-cli", found.2.is_none()),
        ("nginx", found.3.is_none()),
        ("python3", found.4.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, gone)| gone.then_some(name))
    .collect();
    if let (Some(pg_bin), Some(redis_server), Some(redis_cli), Some(nginx), Some(python3)) = found {
        return Some(Servers {
            pg_bin,
            redis_server,
            redis_cli,
            nginx,
            python3,
        });
    }
    assert!(
        std::env::var("HUB_REQUIRE_SERVERS").as_deref() != Ok("1"),
        "{test}: HUB_REQUIRE_SERVERS=1 but these are missing: {missing:?} (.ci/setup.d/20-servers.sh installs them)"
    );
    // Written to the stderr handle, not with eprintln!, so the test harness does not swallow it.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!!!! SKIPPED: {test} did not run: missing {} (apt-get install postgresql redis-server nginx-light, or run .ci/setup.d/20-servers.sh as root) !!!!!!!!!!",
        missing.join(", ")
    );
    None
}

/// True when the tests run as root: PostgreSQL then runs as the `postgres` user.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// A command as a YAML flow list (JSON is YAML).
fn list(words: &[&str]) -> String {
    serde_json::to_string(words).expect("a list of strings")
}

/// A string as a YAML (JSON) scalar.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string")
}

/// What a scenario changes about the stack.
#[derive(Clone, Copy)]
struct Spec {
    postgres: &'static str,
    redis: &'static str,
    nginx: &'static str,
    app: &'static str,
    /// `postgresql.conf` gets an unknown setting: the postmaster refuses to start.
    broken_postgres: bool,
    /// `redis-server` gets an unknown option: it exits at once.
    broken_redis: bool,
    /// nginx's config gets an unknown directive: it exits at once.
    broken_nginx: bool,
    /// The app's dependency on nginx is soft (`required: false`).
    app_soft_nginx: bool,
    /// A `migrate` job between PostgreSQL and the app whose start command waits for the file
    /// `go` (announcing itself with the file `entered`): a start in flight the test controls.
    gated_migrate: bool,
}

const ALL_CORE: Spec = Spec {
    postgres: "core",
    redis: "core",
    nginx: "core",
    app: "core",
    broken_postgres: false,
    broken_redis: false,
    broken_nginx: false,
    app_soft_nginx: false,
    gated_migrate: false,
};

/// One stack in its own temp folder. Dropping it stops every server it may have started
/// (even when the test failed half-way), then removes the folder: fields drop in order.
struct Stack {
    background: Option<Child>,
    _kill_groups: KillPidsOnDrop,
    _postgres: StopPostgres,
    dir: tempfile::TempDir,
    servers: Servers,
    run_as_postgres: Vec<String>,
    pg_port: u16,
    redis_port: u16,
    nginx_port: u16,
    app_port: u16,
    runs: usize,
}

/// Stops the test's postmaster (`pg_ctl stop -m immediate`) if it still runs: it is a `start`
/// service, in no process group hub keeps a pid file for.
struct StopPostgres {
    pg_ctl: Vec<String>,
    data: PathBuf,
}

impl Drop for StopPostgres {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists()
            && let Some((program, args)) = self.pg_ctl.split_first()
        {
            let _ = Command::new(program)
                .args(args)
                .args(["stop", "-w", "-m", "immediate", "-D"])
                .arg(&self.data)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// One finished `hub-deploy` run.
struct Deployed {
    status: ExitStatus,
    events: Vec<Line>,
    stderr: String,
}

impl Deployed {
    fn of(&self, kind: &str, service: &str) -> Vec<&Record> {
        self.events
            .iter()
            .map(|l| &l.record)
            .filter(|r| r.kind() == kind && r.service() == Some(service))
            .collect()
    }

    /// The `skipped` records of `service`.
    fn skipped(&self, service: &str) -> Vec<&Skipped> {
        let all = variants!(self.records(), Record::Skipped);
        all.into_iter()
            .filter(|r| r.of.service == service)
            .collect()
    }

    /// The `failed` records of `service`.
    fn failed(&self, service: &str) -> Vec<&Failed> {
        let all = variants!(self.records(), Record::Failed);
        all.into_iter()
            .filter(|r| r.of.service == service)
            .collect()
    }

    /// The `stopped` records of `service`.
    fn stopped(&self, service: &str) -> Vec<&Stopped> {
        let all = variants!(self.records(), Record::Stopped);
        all.into_iter()
            .filter(|r| r.of.service == service)
            .collect()
    }

    /// The `finished` records.
    fn finished(&self) -> Vec<&Finished> {
        variants!(self.records(), Record::Finished)
    }

    /// The records, without their envelope.
    fn records(&self) -> impl Iterator<Item = &Record> {
        self.events.iter().map(|l| &l.record)
    }

    /// The index in the events file of the first `kind` record of `service`.
    fn position(&self, kind: &str, service: &str) -> usize {
        self.events
            .iter()
            .position(|l| l.record.kind() == kind && l.record.service() == Some(service))
            .unwrap_or_else(|| panic!("no {kind} record for {service}\n{}", self.dump()))
    }

    fn dump(&self) -> String {
        let events: Vec<String> = self
            .events
            .iter()
            .map(|l| l.to_line().unwrap_or_default())
            .collect();
        format!(
            "--- events\n{}\n--- stderr\n{}",
            events.join("\n"),
            self.stderr
        )
    }

    fn assert_status(&self, code: i32) {
        assert_eq!(self.status.code(), Some(code), "{}", self.dump());
    }
}

fn read_events(path: &Path) -> Vec<Line> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(hub_tests::line)
        .collect()
}

impl Stack {
    /// Build the stack for `spec`: ports, PostgreSQL's data dir (initdb), nginx's config, the
    /// compose file. None when the servers are missing (after the SKIPPED line).
    fn new(test: &str, spec: Spec) -> Option<Stack> {
        let servers = servers_or_skip(test)?;
        let dir = tempfile::tempdir().expect("temp dir");
        let run_as_postgres: Vec<String> = if running_as_root() {
            // initdb and the postmaster refuse to run as root. setpriv (util-linux) execs the
            // program as `postgres` without forking, unlike su/runuser, so pids stay exact.
            [
                "setpriv",
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ]
            .map(String::from)
            .to_vec()
        } else {
            Vec::new()
        };
        let pg = dir.path().join("pg");
        std::fs::create_dir(&pg).expect("mkdir pg");
        if !run_as_postgres.is_empty() {
            // The postgres user must reach its folder inside root's 0700 temp folder.
            chmod(dir.path(), "755");
            chmod(&pg, "700");
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&pg)
                .status()
                .expect("chown");
            assert!(status.success(), "chown postgres {}", pg.display());
        }
        let mut pg_ctl = run_as_postgres.clone();
        pg_ctl.push(servers.pg_bin.join("pg_ctl").display().to_string());
        let stack = Stack {
            background: None,
            _kill_groups: KillPidsOnDrop(dir.path().join(".hub")),
            _postgres: StopPostgres {
                pg_ctl,
                data: pg.join("data"),
            },
            servers,
            run_as_postgres,
            pg_port: free_port(),
            redis_port: free_port(),
            nginx_port: free_port(),
            app_port: free_port(),
            runs: 0,
            dir,
        };
        stack.initdb(spec.broken_postgres);
        stack.write_nginx_conf(spec.broken_nginx);
        std::fs::write(stack.path().join("compose.yaml"), stack.compose(spec))
            .expect("writing compose.yaml");
        Some(stack)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, name: &str) -> String {
        self.path().join(name).display().to_string()
    }

    /// A command run as the postgres user (when we are root), as one shell-safe list.
    fn as_postgres(&self, program: &str, args: &[&str]) -> Vec<String> {
        let mut words = self.run_as_postgres.clone();
        words.push(self.servers.pg_bin.join(program).display().to_string());
        words.extend(args.iter().map(|a| (*a).to_owned()));
        words
    }

    fn initdb(&self, broken: bool) {
        let data = self.file("pg/data");
        let words = self.as_postgres(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ],
        );
        let output = Command::new(&words[0])
            .args(&words[1..])
            .current_dir(self.path())
            .output()
            .expect("running initdb");
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut conf = format!(
            "\n# hub tests\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n",
            self.pg_port,
            self.file("pg")
        );
        if broken {
            conf.push_str("no_such_setting_for_the_test = on\n");
        }
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path().join("pg/data/postgresql.conf"))
            .expect("opening postgresql.conf");
        file.write_all(conf.as_bytes())
            .expect("writing postgresql.conf");
    }

    fn write_nginx_conf(&self, broken: bool) {
        let nginx = self.path().join("nginx");
        std::fs::create_dir(&nginx).expect("mkdir nginx");
        let n = nginx.display();
        let broken = if broken {
            "no_such_directive_for_the_test on;"
        } else {
            ""
        };
        let conf = format!(
            "worker_processes 1;\npid {n}/nginx.pid;\nerror_log stderr;\nevents {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  {broken}\n\
             client_body_temp_path {n}/body;\n  proxy_temp_path {n}/proxy;\n  fastcgi_temp_path {n}/fastcgi;\n\
             uwsgi_temp_path {n}/uwsgi;\n  scgi_temp_path {n}/scgi;\n\
             server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"ok nginx\\n\"; }} }}\n}}\n",
            port = self.nginx_port
        );
        std::fs::write(nginx.join("nginx.conf"), conf).expect("writing nginx.conf");
    }

    fn compose(&self, spec: Spec) -> String {
        let data = self.file("pg/data");
        let pg_start = self.as_postgres(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-D",
                &data,
                "-l",
                &self.file("pg/server.log"),
            ],
        );
        let pg_stop = self.as_postgres("pg_ctl", &["stop", "-w", "-m", "fast", "-D", &data]);
        let pg_isready = [
            self.servers.pg_bin.join("pg_isready").display().to_string(),
            "-q".into(),
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.pg_port.to_string(),
        ];
        let strs = |words: &[String]| list(&words.iter().map(String::as_str).collect::<Vec<_>>());
        let redis_port = self.redis_port.to_string();
        let mut redis = vec![
            self.servers.redis_server.to_str().expect("utf-8 path"),
            "--port",
            &redis_port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            self.path().to_str().expect("utf-8 path"),
        ];
        if spec.broken_redis {
            redis.extend(["--no-such-option-for-the-test", "yes"]);
        }
        let redis_ping = format!(
            "{} -h 127.0.0.1 -p {} ping | grep -q PONG",
            self.servers.redis_cli.display(),
            self.redis_port
        );
        let nginx_dir = self.file("nginx");
        let nginx_conf = self.file("nginx/nginx.conf");
        let nginx = [
            self.servers.nginx.to_str().expect("utf-8 path"),
            "-e",
            "stderr",
            "-p",
            &nginx_dir,
            "-c",
            &nginx_conf,
            "-g",
            "daemon off;",
        ];
        let app_port = self.app_port.to_string();
        let app = [
            self.servers.python3.to_str().expect("utf-8 path"),
            "-m",
            "http.server",
            &app_port,
            "--bind",
            "127.0.0.1",
            "--directory",
            self.path().to_str().expect("utf-8 path"),
        ];
        // A failing server gets one attempt: its failure is the point, retries only add time.
        let retry = |broken: bool| {
            if broken {
                "\n      retry: { attempts: 1 }"
            } else {
                ""
            }
        };
        let nginx_dep = if spec.app_soft_nginx {
            "nginx: { condition: service_healthy, required: false }"
        } else {
            "nginx: { condition: service_healthy }"
        };
        let (migrate, app_first_dep) = if spec.gated_migrate {
            let gate = format!(
                "touch {entered}; while [ ! -e {go} ]; do sleep 0.05; done; touch {done}",
                entered = self.file("entered"),
                go = self.file("go"),
                done = self.file("migrated"),
            );
            let service = format!(
                "  migrate:\n    depends_on: [postgres]\n    x-hub:\n      class: core\n      start: {}\n      health: {{ cmd: {} }}\n      timeout: 60s\n",
                quoted(&gate),
                quoted(&format!("test -e {}", self.file("migrated")))
            );
            (service, "migrate: { condition: service_healthy }")
        } else {
            (String::new(), "postgres: { condition: service_healthy }")
        };
        let pg_class = spec.postgres;
        let redis_class = spec.redis;
        let nginx_class = spec.nginx;
        let app_class = spec.app;
        let (pg_start, pg_stop, pg_isready) = (strs(&pg_start), strs(&pg_stop), strs(&pg_isready));
        let (redis, redis_ping) = (list(&redis), quoted(&redis_ping));
        let (nginx, app) = (list(&nginx), list(&app));
        let nginx_url = quoted(&format!("http://127.0.0.1:{}/", self.nginx_port));
        let app_url = quoted(&format!("http://127.0.0.1:{}/", self.app_port));
        let lines = [
            "# written by tests/real_servers.rs".to_owned(),
            "name: hub-real-test".to_owned(),
            "services:".to_owned(),
            "  postgres:".to_owned(),
            "    x-hub:".to_owned(),
            format!("      class: {pg_class}"),
            format!("      start: {pg_start}"),
            format!("      stop: {pg_stop}"),
            format!("      health: {{ cmd: {pg_isready} }}"),
            format!("      timeout: 60s{}", retry(spec.broken_postgres)),
            "  redis:".to_owned(),
            "    x-hub:".to_owned(),
            format!("      class: {redis_class}"),
            format!("      run: {redis}"),
            format!("      health: {{ cmd: {redis_ping} }}"),
            format!("      timeout: 60s{}", retry(spec.broken_redis)),
            "  nginx:".to_owned(),
            "    x-hub:".to_owned(),
            format!("      class: {nginx_class}"),
            format!("      run: {nginx}"),
            format!("      health: {{ http: {nginx_url}, body: \"ok nginx\" }}"),
            format!("      timeout: 60s{}", retry(spec.broken_nginx)),
            format!("{migrate}  app:"),
            "    depends_on:".to_owned(),
            format!("      {app_first_dep}"),
            "      redis: { condition: service_healthy }".to_owned(),
            format!("      {nginx_dep}"),
            "    x-hub:".to_owned(),
            format!("      class: {app_class}"),
            format!("      run: {app}"),
            format!("      health: {{ http: {app_url} }}"),
            "      timeout: 60s".to_owned(),
        ];
        lines.join("\n") + "\n"
    }

    /// `scripts/<script>` with the test's binaries, state dir and events file; stdout and
    /// stderr go to files (no pipe to fill while nobody reads).
    fn script(&mut self, script: &str, args: &[&str]) -> (Command, PathBuf, PathBuf) {
        self.runs += 1;
        let events = self.path().join(format!("events-{}.jsonl", self.runs));
        let stderr = self.path().join(format!("stderr-{}.txt", self.runs));
        let mut command = Command::new(workspace_root().join("scripts").join(script));
        command
            .current_dir(self.path())
            .env("HUB_BIN_DIR", bin_dir())
            .env("NO_COLOR", "1")
            .env_remove("HUB_LOG")
            .args(["--state-dir", ".hub"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&events).expect("events file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        (command, events, stderr)
    }

    /// Run hub-deploy to the end.
    fn deploy(&mut self, args: &[&str]) -> Deployed {
        let (mut command, events, stderr) = self.script("hub-deploy", args);
        command.arg("--events").arg(&events);
        let status = command.status().expect("running scripts/hub-deploy");
        Deployed {
            status,
            events: read_events(&events),
            stderr: std::fs::read_to_string(&stderr).unwrap_or_default(),
        }
    }

    /// Run hub-down to the end; its stdout is the `stopped` records.
    fn down(&mut self) -> Deployed {
        let (mut command, events, stderr) = self.script("hub-down", &[]);
        let status = command.status().expect("running scripts/hub-down");
        Deployed {
            status,
            events: read_events(&events),
            stderr: std::fs::read_to_string(&stderr).unwrap_or_default(),
        }
    }

    /// The pids hub keeps for `run` services, and PostgreSQL's postmaster.
    fn server_pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        if let Ok(entries) = std::fs::read_dir(self.path().join(".hub/pids")) {
            for entry in entries.flatten() {
                // hub's pid files hold `PID START`: the pid is the first word.
                if let Some(pid) = std::fs::read_to_string(entry.path())
                    .ok()
                    .and_then(|t| t.split_whitespace().next()?.parse().ok())
                {
                    pids.push(pid);
                }
            }
        }
        if let Some(pid) = std::fs::read_to_string(self.path().join("pg/data/postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
        {
            pids.push(pid);
        }
        pids
    }

    fn ports(&self) -> [u16; 4] {
        [
            self.pg_port,
            self.redis_port,
            self.nginx_port,
            self.app_port,
        ]
    }
}

fn chmod(path: &Path, mode: &str) {
    let status = Command::new("chmod")
        .arg(mode)
        .arg(path)
        .status()
        .expect("chmod");
    assert!(status.success(), "chmod {mode} {}", path.display());
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(child) = &mut self.background {
            let _ = child.kill();
            let _ = child.wait();
        }
        kill_processes_mentioning(self.path());
    }
}

/// Kill every process whose command line names `dir`: a server whose pid file was lost (say,
/// overwritten by a second copy) still names its temp folder in its arguments. Group leaders
/// (services hub launched) are killed with their group (nginx's workers); never our own group.
fn kill_processes_mentioning(dir: &Path) {
    let needle = dir.display().to_string();
    let own_group = stat_fields(std::process::id()).and_then(|f| f.pgrp);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if pid == std::process::id() || !String::from_utf8_lossy(&cmdline).contains(&needle) {
            continue;
        }
        let group = stat_fields(pid)
            .and_then(|f| f.pgrp)
            .filter(|&g| g == pid && Some(g) != own_group);
        let target = group.map_or(pid.to_string(), |g| format!("-{g}"));
        let _ = Command::new("kill")
            .args(["-KILL", "--", &target])
            .stderr(Stdio::null())
            .status();
    }
}

/// The fields of `/proc/PID/stat` a test needs.
struct Stat {
    zombie: bool,
    ppid: Option<u32>,
    pgrp: Option<u32>,
    comm: String,
}

fn stat_fields(pid: u32) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid pgrp ...
    let (head, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        zombie: fields.first() == Some(&"Z"),
        ppid: fields.get(1).and_then(|f| f.parse().ok()),
        pgrp: fields.get(2).and_then(|f| f.parse().ok()),
        comm: head.split_once('(').map_or("", |(_, c)| c).to_owned(),
    })
}

/// Live processes whose process group or parent is one of `pids` (nginx's worker, the
/// postmaster's children), or which are one of them.
fn processes_of(pids: &[u32]) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = stat_fields(pid)?;
            let ours = pids.contains(&pid)
                || stat.ppid.is_some_and(|p| pids.contains(&p))
                || stat.pgrp.is_some_and(|p| pids.contains(&p));
            (ours && !stat.zombie).then(|| format!("{pid} ({})", stat.comm))
        })
        .collect()
}

const SERVERS: [&str; 3] = ["postgres", "redis", "nginx"];

#[test]
#[cfg_attr(
    not(have_servers),
    ignore = "needs postgresql, redis, nginx and python3 (.ci/setup.d/20-servers.sh)"
)]
fn all_healthy_and_the_app_starts_only_after_its_three_servers() {
    let Some(mut stack) = Stack::new("all_healthy", ALL_CORE) else {
        return;
    };
    let run = stack.deploy(&[]);
    run.assert_status(0);
    for service in SERVERS.iter().chain(&["app"]) {
        assert_eq!(
            run.of("healthy", service).len(),
            1,
            "{service} healthy once\n{}",
            run.dump()
        );
        assert!(run.of("failed", service).is_empty(), "{}", run.dump());
    }
    let app_started = run.position("started", "app");
    let app_ts = run.events[app_started].ts.expect("ts");
    for server in SERVERS {
        let healthy = run.position("healthy", server);
        assert!(
            healthy < app_started,
            "{server} healthy after the app started\n{}",
            run.dump()
        );
        assert!(run.events[healthy].ts.expect("ts") <= app_ts);
    }
    let finished = run.finished();
    assert_eq!(finished.len(), 1, "{}", run.dump());
    assert!(finished[0].ok);
    assert_eq!(finished[0].counts.healthy, 4);
    // The servers really answer (not only their probes): a PostgreSQL query through the port.
    let psql = Command::new(stack.servers.pg_bin.join("psql"))
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-At",
            "-c",
            "select 1+1",
        ])
        .arg("-p")
        .arg(stack.pg_port.to_string())
        .output()
        .expect("psql");
    assert_eq!(String::from_utf8_lossy(&psql.stdout).trim(), "2");
}

#[test]
#[cfg_attr(
    not(have_servers),
    ignore = "needs postgresql, redis, nginx and python3 (.ci/setup.d/20-servers.sh)"
)]
fn an_optional_server_that_fails_is_a_warning_and_the_deploy_succeeds() {
    let spec = Spec {
        nginx: "optional",
        broken_nginx: true,
        app_soft_nginx: true,
        ..ALL_CORE
    };
    let Some(mut stack) = Stack::new("optional_failure", spec) else {
        return;
    };
    let run = stack.deploy(&[]);
    run.assert_status(0);
    assert!(
        run.stderr
            .contains("Service nginx failed (OPTIONAL - deployment will continue)"),
        "{}",
        run.dump()
    );
    let class = run
        .events
        .iter()
        .find_map(|l| match &l.record {
            Record::Unhealthy(u) if u.of.service == "nginx" && u.is_final => Some(u.of.class),
            Record::Failed(f) if f.of.service == "nginx" && f.is_final => Some(f.of.class),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no final failure for nginx\n{}", run.dump()));
    assert_eq!(class, Class::Optional);
    assert!(run.of("healthy", "nginx").is_empty(), "{}", run.dump());
    for service in ["postgres", "redis", "app"] {
        assert_eq!(run.of("healthy", service).len(), 1, "{}", run.dump());
    }
}

#[test]
#[cfg_attr(
    not(have_servers),
    ignore = "needs postgresql, redis, nginx and python3 (.ci/setup.d/20-servers.sh)"
)]
fn a_stretch_server_that_fails_skips_its_hard_dependents_and_the_deploy_succeeds() {
    let spec = Spec {
        redis: "stretch",
        broken_redis: true,
        app: "optional",
        ..ALL_CORE
    };
    let Some(mut stack) = Stack::new("stretch_failure", spec) else {
        return;
    };
    let run = stack.deploy(&[]);
    run.assert_status(0);
    assert!(
        run.stderr
            .contains("Service redis failed (STRETCH - deployment will continue)"),
        "{}",
        run.dump()
    );
    let skipped = run.skipped("app");
    assert_eq!(skipped.len(), 1, "{}", run.dump());
    assert_eq!(skipped[0].reason, SkipReason::DependencyFailed);
    assert_eq!(skipped[0].dependency.as_deref(), Some("redis"));
    assert!(run.of("started", "app").is_empty(), "{}", run.dump());
    for service in ["postgres", "nginx"] {
        assert_eq!(run.of("healthy", service).len(), 1, "{}", run.dump());
    }
}

#[test]
#[cfg_attr(
    not(have_servers),
    ignore = "needs postgresql, redis, nginx and python3 (.ci/setup.d/20-servers.sh)"
)]
fn a_core_postgres_with_a_broken_config_fails_the_deploy_and_nothing_later_starts() {
    let spec = Spec {
        broken_postgres: true,
        ..ALL_CORE
    };
    let Some(mut stack) = Stack::new("core_failure", spec) else {
        return;
    };
    let run = stack.deploy(&[]);
    run.assert_status(1);
    let failed = run.failed("postgres");
    assert_eq!(failed.len(), 1, "{}", run.dump());
    assert_eq!(failed[0].reason, FailReason::StartFailed);
    assert!(failed[0].is_final);
    // Nothing above level 0 started; everything above it was skipped as aborted.
    for line in &run.events {
        match &line.record {
            Record::Started(started) => {
                assert_eq!(started.of.level, 0, "{started:?}\n{}", run.dump());
            }
            Record::Plan(plan) if plan.level != 0 => {
                let skipped = run.skipped(&plan.service);
                assert_eq!(skipped.len(), 1, "{}\n{}", plan.service, run.dump());
                assert_eq!(skipped[0].reason, SkipReason::Aborted);
            }
            _ => {}
        }
    }
    let Record::Plan(app) = run.of("plan", "app")[0] else {
        unreachable!()
    };
    assert_eq!(app.level, 1);
    assert!(
        run.stderr.contains("CORE - deployment will fail"),
        "{}",
        run.dump()
    );
    let finished = run.finished();
    let finished = finished
        .first()
        .unwrap_or_else(|| panic!("no finished record\n{}", run.dump()));
    assert!(!finished.ok);
    // PostgreSQL says why in its log, where the operator will look.
    let log = std::fs::read_to_string(stack.path().join("pg/server.log")).unwrap_or_default();
    assert!(log.contains("no_such_setting_for_the_test"), "{log}");
}

#[test]
#[cfg_attr(
    not(have_servers),
    ignore = "needs postgresql, redis, nginx and python3 (.ci/setup.d/20-servers.sh)"
)]
fn sigint_mid_deploy_exits_130_and_a_rerun_resumes_where_it_stopped() {
    let spec = Spec {
        gated_migrate: true,
        ..ALL_CORE
    };
    let Some(mut stack) = Stack::new("sigint_resume", spec) else {
        return;
    };
    let (mut command, events, stderr) = stack.script("hub-deploy", &[]);
    command.arg("--events").arg(&events);
    stack.background = Some(command.spawn().expect("spawning scripts/hub-deploy"));
    let pid = stack.background.as_ref().map(Child::id).expect("child");
    // Interrupt while migrate's start command is in flight and the three servers are up.
    let entered = stack.path().join("entered");
    wait_until("migrate's start command is in flight", || entered.exists());
    wait_until("the three servers are healthy", || {
        let seen = read_events(&events);
        SERVERS.iter().all(|s| {
            seen.iter()
                .any(|l| l.record.kind() == "healthy" && l.record.service() == Some(*s))
        })
    });
    let kill = Command::new("kill")
        .args(["-s", "INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let status = stack
        .background
        .take()
        .map(|mut child| child.wait().expect("waiting for hub-deploy"))
        .expect("child");
    let first = Deployed {
        status,
        events: read_events(&events),
        stderr: std::fs::read_to_string(&stderr).unwrap_or_default(),
    };
    first.assert_status(130);
    let interrupted: Vec<&Interrupted> = first
        .events
        .iter()
        .filter_map(|l| match &l.record {
            Record::Interrupted(i) if i.tool == "hub-start" => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(interrupted.len(), 1, "{}", first.dump());
    assert_eq!(interrupted[0].signal, SignalName::Int);
    assert_eq!(interrupted[0].in_flight, ["migrate"]);
    assert!(first.of("started", "app").is_empty(), "{}", first.dump());
    assert!(!stack.path().join("migrated").exists());

    // The rerun: the servers are still up and are skipped, migrate and the app start.
    std::fs::write(stack.path().join("go"), "").expect("writing the go marker");
    let second = stack.deploy(&[]);
    second.assert_status(0);
    for server in SERVERS {
        let skipped = second.skipped(server);
        assert_eq!(skipped.len(), 1, "{server}\n{}", second.dump());
        assert_eq!(skipped[0].reason, SkipReason::AlreadyHealthy);
        assert!(second.of("started", server).is_empty(), "{}", second.dump());
    }
    for service in ["migrate", "app"] {
        assert_eq!(second.of("started", service).len(), 1, "{}", second.dump());
        assert_eq!(second.of("healthy", service).len(), 1, "{}", second.dump());
    }
}

#[test]
#[cfg_attr(
    not(have_servers),
    ignore = "needs postgresql, redis, nginx and python3 (.ci/setup.d/20-servers.sh)"
)]
fn hub_down_stops_every_server_and_leaves_no_process_behind() {
    let Some(mut stack) = Stack::new("teardown", ALL_CORE) else {
        return;
    };
    stack.deploy(&[]).assert_status(0);
    let pids = stack.server_pids();
    assert_eq!(pids.len(), 4, "three run services and the postmaster");
    assert!(pids.iter().all(|&pid| alive(pid)));
    assert!(
        !processes_of(&pids).is_empty(),
        "the stack's processes are found"
    );

    let down = stack.down();
    down.assert_status(0);
    for service in ["postgres", "redis", "nginx", "app"] {
        let stopped = down.stopped(service);
        assert_eq!(stopped.len(), 1, "{service}\n{}", down.dump());
        assert!(stopped[0].ok, "{}", down.dump());
        let method = if service == "postgres" {
            StopMethod::Stop
        } else {
            StopMethod::Signal
        };
        assert_eq!(stopped[0].method, method, "{}", down.dump());
    }
    // Dependents first: the app stops before the servers it needs.
    let app = down.position("stopped", "app");
    assert!(SERVERS.iter().all(|s| down.position("stopped", s) > app));
    // Stopped processes may still be on their way out of the kernel: wait, never sleep.
    wait_until("every process of the stack is gone", || {
        processes_of(&pids).is_empty()
    });
    assert!(!stack.path().join("pg/data/postmaster.pid").exists());
    for port in stack.ports() {
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} is still taken"
        );
    }
}
