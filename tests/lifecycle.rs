//! Process lifecycle under attack: every service carries a unique marker in its argv, and after
//! each scenario (an interrupt, a second deploy, a recycled pid, a hangup…) `hub-down` must
//! leave zero marker processes, and a bystander that merely looks like one of ours (its pid in a
//! pid file, its own process group) must survive. Every wait is on a condition with a deadline.

use hub::records::{
    AttemptOf, Check, Class, HealthSpec, Record, SignalName, Started, Stopped, UnhealthyReason,
};
use hub_tests::{Cmd, KillPidsOnDrop, Running, is, temp_with, typed_records, variants, wait_until};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A marker no other test (of this run, or of anyone else's on this machine) carries.
fn marker(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "hubmark-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Live (non-zombie) processes whose command line holds `marker`.
fn marked(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(marker) && hub_tests::alive(pid) {
            found.push(pid);
        }
    }
    found
}

/// The absolute path of a program on the PATH.
fn which(program: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{program} is not on the PATH"))
}

/// Kills whatever still carries the marker, so a failing test leaves nothing behind.
struct KillMarked(String);

impl Drop for KillMarked {
    fn drop(&mut self) {
        for pid in marked(&self.0) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A stack in a temp folder whose services all carry one marker.
struct Stack {
    _kill: KillMarked,
    _cleanup: KillPidsOnDrop,
    marker: String,
    dir: tempfile::TempDir,
}

impl Stack {
    /// `compose` may say MARK wherever the marker goes.
    fn new(name: &str, compose: &str) -> Stack {
        let marker = marker(name);
        let dir = temp_with(&[("compose.yaml", &compose.replace("MARK", &marker))]);
        // `./MARK 1000` is `sleep 1000` with the marker in its argv.
        std::os::unix::fs::symlink(which("sleep"), dir.path().join(&marker)).unwrap();
        Stack {
            _kill: KillMarked(marker.clone()),
            _cleanup: KillPidsOnDrop(dir.path().join(".hub")),
            marker,
            dir,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn deploy(&self, extra: &[&str]) -> Running {
        let mut args = vec!["--events", "/dev/stdout", "--state-dir", ".hub"];
        args.extend_from_slice(extra);
        Running::spawn_script("hub-deploy", &args, self.path(), &[])
    }

    fn down(&self) -> Vec<Stopped> {
        let out = Cmd::script("hub-down")
            .current_dir(self.path())
            .args(["--state-dir", ".hub", "--grace", "5s"])
            .run();
        typed_records(&out)
            .into_iter()
            .map(|r| match r {
                Record::Stopped(stopped) => stopped,
                other => panic!("hub-down wrote a record other than `stopped`: {other:?}"),
            })
            .collect()
    }

    fn marked(&self) -> Vec<u32> {
        marked(&self.marker)
    }

    /// hub-down, then: nothing of ours runs.
    fn down_leaves_nothing(&self) -> Vec<Stopped> {
        let stopped = self.down();
        wait_until("no marker process is left", || self.marked().is_empty());
        stopped
    }
}

/// A process that is not ours but looks it: it leads its own process group, like a service.
struct Bystander(Child);

impl Bystander {
    fn spawn() -> Bystander {
        use std::os::unix::process::CommandExt;
        Bystander(
            Command::new("sleep")
                .arg("1000")
                .process_group(0)
                .spawn()
                .expect("sleep"),
        )
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn start_time(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        fields[19].parse().unwrap()
    }

    fn assert_alive(&mut self) {
        assert_eq!(self.0.try_wait().unwrap(), None, "the bystander was killed");
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The names in folder `dir`.
fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// A `run` service with the marker, healthy once NAME.ready exists.
fn service(name: &str, deps: &str) -> String {
    format!(
        "  {name}:\n    depends_on: [{deps}]\n    x-hub:\n      run: \"exec ./MARK 1000\"\n      health: {{ cmd: \"test -f {name}.ready\", interval: 20ms }}\n      timeout: 60s\n"
    )
}

#[test]
fn a_recycled_pid_in_a_pid_file_is_left_alone() {
    let stack = Stack::new("recycled", &format!("services:\n{}", service("api", "")));
    std::fs::write(stack.path().join("api.ready"), "").unwrap();
    let mut bystander = Bystander::spawn();
    // The pid file of a service that died long ago, whose pid the kernel has since handed to an
    // unrelated process group leader.
    std::fs::create_dir_all(stack.path().join(".hub/pids")).unwrap();
    std::fs::write(
        stack.path().join(".hub/pids/api.pid"),
        format!("{} {}\n", bystander.pid(), bystander.start_time() - 1),
    )
    .unwrap();
    // A rerun does not take the bystander for the service: it starts the service.
    let deploy = stack.deploy(&[]);
    let (status, records, err) = deploy.finish();
    assert_eq!(status, Some(0), "{err}");
    assert!(records.iter().any(is("started", "api")), "{records:#?}");
    assert_eq!(stack.marked().len(), 1);
    stack.down_leaves_nothing();
    bystander.assert_alive();
    // Again with only the stale pid file: hub-down signals nothing.
    std::fs::write(
        stack.path().join(".hub/pids/api.pid"),
        format!("{} {}\n", bystander.pid(), bystander.start_time() - 1),
    )
    .unwrap();
    let stopped = stack.down_leaves_nothing();
    bystander.assert_alive();
    let api = stopped.iter().find(|r| r.of.service == "api").unwrap();
    assert!(api.ok, "{api:?}");
    assert!(api.message.contains("another process"), "{api:?}");
}

#[test]
fn a_second_deploy_on_one_state_dir_is_refused_naming_the_first() {
    let stack = Stack::new("twice", &format!("services:\n{}", service("api", "")));
    let mut first = stack.deploy(&[]);
    first.wait_for("api started", is("started", "api"));
    let second = stack.deploy(&[]);
    let (status, records, err) = second.finish();
    assert_eq!(status, Some(2), "{err}");
    assert!(err.contains("another deploy (pid "), "{err}");
    assert!(err.contains("--wait-lock"), "{err}");
    assert!(
        !records.iter().any(|r| r.kind() == "started"),
        "{records:#?}"
    );
    assert_eq!(stack.marked().len(), 1, "only the first deploy launched");
    std::fs::write(stack.path().join("api.ready"), "").unwrap();
    let (status, _, err) = first.finish();
    assert_eq!(status, Some(0), "{err}");
    stack.down_leaves_nothing();
}

#[test]
fn a_second_deploy_waits_with_wait_lock() {
    let stack = Stack::new("waitlock", &format!("services:\n{}", service("api", "")));
    let mut first = stack.deploy(&[]);
    first.wait_for("api started", is("started", "api"));
    let mut second = Running::spawn(
        "hub-start",
        &["--state-dir", ".hub", "--wait-lock", "60s"],
        stack.path(),
        &[],
    );
    second.close_stdin();
    std::fs::write(stack.path().join("api.ready"), "").unwrap();
    let (status, _, err) = first.finish();
    assert_eq!(status, Some(0), "{err}");
    let (status, records, err) = second.finish();
    assert_eq!(status, Some(0), "{err}");
    assert!(
        records.iter().any(|r| r.kind() == "finished"),
        "{records:#?}"
    );
    stack.down_leaves_nothing();
}

#[test]
fn hub_down_during_a_deploy_stops_the_deploy_first() {
    let stack = Stack::new(
        "downduring",
        &format!("services:\n{}{}", service("db", ""), service("api", "db")),
    );
    let mut deploy = stack.deploy(&[]);
    deploy.wait_for("db started", is("started", "db"));
    let stopped = stack.down_leaves_nothing();
    assert!(stopped.iter().all(|r| r.ok), "{stopped:#?}");
    let (status, records, err) = deploy.finish();
    assert_eq!(status, Some(143), "{err}");
    assert!(
        records.iter().any(|r| r.kind() == "interrupted"),
        "{records:#?}"
    );
    // Nothing started after the teardown: the deploy was stopped before it.
    assert!(!records.iter().any(is("started", "api")), "{records:#?}");
    assert!(stack.marked().is_empty());
}

/// A service whose every attempt leaves a marked process behind and fails.
fn leaves_a_child(attempts: u32) -> String {
    format!(
        "services:\n  leaky:\n    x-hub:\n      class: core\n      run: \"./MARK 1000 & exit 1\"\n      health: {{ cmd: \"false\", interval: 20ms }}\n      retry: {{ attempts: {attempts}, delay: 10ms }}\n"
    )
}

#[test]
fn failed_attempts_leave_no_member_of_their_group_behind() {
    let stack = Stack::new("leaky", &leaves_a_child(3));
    let deploy = stack.deploy(&[]);
    let (status, records, err) = deploy.finish();
    assert_eq!(status, Some(1), "{err}");
    let failed = records
        .iter()
        .filter(|r| matches!(r, Record::Failed(_) | Record::Unhealthy(_)));
    assert!(failed.count() >= 3, "{records:#?}");
    // hub-start stopped each attempt's group before it exited: nothing is left, even before
    // hub-down.
    assert_eq!(stack.marked(), Vec::<u32>::new());
    stack.down_leaves_nothing();
}

#[test]
fn hub_down_stops_a_group_whose_leader_is_gone() {
    let stack = Stack::new("orphans", &leaves_a_child(1));
    let mut bystander = Bystander::spawn();
    let out = Cmd::new("hub-levels").current_dir(stack.path()).run();
    // --keep-failed: the attempt's members stay, for someone to debug; the pid file names the
    // attempt's group. Ungated, the launch may count as started or as failed at once: either
    // way its leader exits and its member lives on.
    let mut kept = Command::new(hub_tests::bin("hub-start"))
        .current_dir(stack.path())
        .args(["--state-dir", ".hub", "--keep-failed"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut kept.stdin.take().unwrap(), &out.stdout).unwrap();
    assert!(matches!(kept.wait().unwrap().code(), Some(0 | 1)));
    let leader = hub_tests::wait_for_pid_file(&stack.path().join(".hub/pids/leaky.pid"));
    wait_until("the leader is gone", || !hub_tests::alive(leader));
    wait_until("the kept member runs", || !stack.marked().is_empty());
    let stopped = stack.down();
    let leaky = stopped.iter().find(|r| r.of.service == "leaky").unwrap();
    assert!(leaky.ok, "{leaky:?}");
    assert!(leaky.message.contains("process group"), "{leaky:?}");
    wait_until("no marker process is left", || stack.marked().is_empty());
    bystander.assert_alive();
}

/// Run tool `name` in the stack's folder, wait until its child (the marked sleep) runs, send
/// `signal`, and return its exit status and stderr once it ends.
fn signalled(stack: &Stack, name: &str, args: &[&str], signals: &[&str]) -> (Option<i32>, String) {
    let mut tool = Running::spawn(name, args, stack.path(), &[]);
    tool.close_stdin();
    // The tool's own argv holds the marker too: wait for another process.
    let me = tool.pid();
    wait_until("the marked child runs", || {
        stack.marked().iter().any(|&pid| pid != me)
    });
    for (n, signal) in signals.iter().enumerate() {
        tool.signal(signal);
        // Signals of one kind do not queue: let the first be handled before the next.
        if n + 1 < signals.len() {
            wait_until("the signal is forwarded", || {
                tool.stderr().contains("forwarded")
            });
        }
    }
    let (status, _, err) = tool.finish();
    wait_until("the child is gone too", || stack.marked().is_empty());
    (status, err)
}

#[test]
fn sighup_under_hub_retry_stops_the_child_and_exits_129() {
    let stack = Stack::new("hup-retry", "services: {}\n");
    let mark = format!("./{}", stack.marker);
    let (status, err) = signalled(&stack, "hub-retry", &["--", &mark, "1000"], &["HUP"]);
    assert_eq!(status, Some(129), "{err}");
}

#[test]
fn sighup_under_hub_breaker_run_stops_the_child_and_exits_129() {
    let stack = Stack::new("hup-breaker", "services: {}\n");
    let mark = format!("./{}", stack.marker);
    let args = ["run", "--state", "breaker.json", "k", "--", &mark, "1000"];
    let (status, err) = signalled(&stack, "hub-breaker", &args, &["HUP"]);
    assert_eq!(status, Some(129), "{err}");
}

#[test]
fn sighup_under_hub_start_stops_start_commands_and_exits_129() {
    let stack = Stack::new(
        "hup-start",
        "services:\n  slow:\n    x-hub: { start: \"./MARK 1000\", timeout: 10m }\n",
    );
    let plans = Cmd::new("hub-levels")
        .current_dir(stack.path())
        .run()
        .stdout;
    let mut tool = Running::spawn("hub-start", &["--state-dir", ".hub"], stack.path(), &[]);
    for line in String::from_utf8(plans).unwrap().lines() {
        tool.send(line);
    }
    tool.close_stdin();
    wait_until("the start command runs", || !stack.marked().is_empty());
    tool.signal("HUP");
    let (status, records, err) = tool.finish();
    assert_eq!(status, Some(129), "{err}");
    let interrupted = records
        .iter()
        .find_map(|r| match r {
            Record::Interrupted(i) => Some(i),
            _ => None,
        })
        .unwrap();
    assert_eq!(interrupted.signal, SignalName::Hup);
    wait_until("the start command is gone", || stack.marked().is_empty());
}

#[test]
fn sighup_under_hub_wait_healthy_exits_129() {
    let stack = Stack::new("hup-wait", "services: {}\n");
    let mut tool = Running::spawn("hub-wait-healthy", &[], stack.path(), &[]);
    let mark = format!("./{} 1000", stack.marker);
    let of = AttemptOf {
        service: "s".into(),
        class: Class::Core,
        level: 0,
        attempt: 1,
        max_attempts: 1,
    };
    let health = HealthSpec {
        check: Check::Cmd {
            cmd: hub::command::CommandSpec::Shell(mark),
        },
        interval_ms: 20,
        probe_timeout_ms: 600_000,
        start_period_ms: 0,
    };
    let started = Started {
        timeout_ms: 600_000,
        ..Started::new(of, health)
    };
    let line = hub::records::Line {
        ts: Some(1),
        run_id: Some("r".into()),
        record: Record::Started(Box::new(started)),
    };
    tool.send(&line.to_line().unwrap());
    // The probe command is the marked sleep: it runs until the signal stops it.
    wait_until("the probe runs", || !stack.marked().is_empty());
    tool.signal("HUP");
    let (status, _, err) = tool.finish();
    assert_eq!(status, Some(129), "{err}");
    wait_until("the probe is gone", || stack.marked().is_empty());
}

/// A child that ignores TERM (and so does its own child, the marked sleep).
fn deaf_child(stack: &Stack) -> String {
    format!("trap '' TERM; ./{} 1000", stack.marker)
}

#[test]
fn a_child_ignoring_term_is_killed_after_kill_after() {
    let stack = Stack::new("deaf", "services: {}\n");
    let script = deaf_child(&stack);
    let args = ["--kill-after", "1s", "--", "sh", "-c", &script];
    let (status, err) = signalled(&stack, "hub-retry", &args, &["TERM"]);
    assert_eq!(status, Some(143), "{err}");
}

#[test]
fn a_second_signal_kills_at_once() {
    let stack = Stack::new("deaf-twice", "services: {}\n");
    let script = deaf_child(&stack);
    // A grace far past the test's deadline: only the escalation can end it in time.
    let args = ["--kill-after", "1h", "--", "sh", "-c", &script];
    let (status, err) = signalled(&stack, "hub-retry", &args, &["TERM", "TERM"]);
    assert_eq!(status, Some(143), "{err}");
}

#[test]
fn kill_9_of_hub_deploy_stops_the_deploy_with_an_interrupted_record() {
    let stack = Stack::new(
        "kill9",
        &format!("services:\n{}{}", service("db", ""), service("api", "db")),
    );
    let mut deploy = stack.deploy(&[]);
    deploy.wait_for("db started", is("started", "db"));
    deploy.signal("KILL");
    // tee outlives the script and passes on the tools' last records.
    deploy.wait_for(
        "hub-start's interrupted record",
        |r| matches!(r, Record::Interrupted(i) if i.tool == "hub-start"),
    );
    let (_, records, _) = deploy.finish();
    assert!(!records.iter().any(is("started", "api")), "{records:#?}");
    // Its temp files are in the state dir, not leaked in /tmp.
    let leftovers: Vec<_> = names_in(&stack.path().join(".hub"))
        .into_iter()
        .filter(|n| n.starts_with("tmp."))
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    stack.down_leaves_nothing();
}

/// Deploy `stack`, interrupt it once `api` has started, and return api's pid: a launched
/// service outlives an interrupt (a rerun resumes it), still running and not healthy.
fn interrupted_with_api_running(stack: &Stack) -> u32 {
    let mut first = stack.deploy(&[]);
    let started = started_record(first.wait_for("api started", is("started", "api")));
    first.signal("INT");
    let (status, _, err) = first.finish();
    assert_eq!(status, Some(130), "{err}");
    let pid = started.pid.unwrap();
    assert!(hub_tests::alive(pid));
    pid
}

#[test]
fn a_rerun_adopts_an_earlier_process_that_is_not_healthy_yet() {
    let stack = Stack::new("adopt", &format!("services:\n{}", service("api", "")));
    let old = interrupted_with_api_running(&stack);
    let mut second = stack.deploy(&[]);
    let started = started_record(second.wait_for("api adopted", is("started", "api")));
    assert_eq!(started.pid, Some(old), "{started:?}");
    assert!(started.adopted);
    assert!(started.timeout_ms <= 60_000);
    assert_eq!(stack.marked(), vec![old], "a second copy was launched");
    std::fs::write(stack.path().join("api.ready"), "").unwrap();
    let (status, records, err) = second.finish();
    assert_eq!(status, Some(0), "{err}");
    assert!(records.iter().any(is("healthy", "api")));
    stack.down_leaves_nothing();
}

#[test]
fn a_rerun_restarts_an_earlier_process_past_its_timeout_never_beside_it() {
    let stack = Stack::new(
        "restart",
        "services:\n  api:\n    x-hub:\n      run: \"exec ./MARK 1000\"\n      health: { cmd: \"test -f api.ready\", interval: 20ms }\n      timeout: 1s\n",
    );
    let old = interrupted_with_api_running(&stack);
    // Its timeout counts from its own start: wait (on /proc, not a sleep) until it is spent.
    wait_until("the earlier process is older than its timeout", || {
        process_age(old).is_some_and(|age| age > std::time::Duration::from_secs(1))
    });
    let mut second = stack.deploy(&[]);
    let started = started_record(second.wait_for("api started again", is("started", "api")));
    assert_ne!(started.pid, Some(old));
    assert!(
        !hub_tests::alive(old),
        "the earlier copy still runs beside the new one"
    );
    assert_eq!(stack.marked().len(), 1);
    std::fs::write(stack.path().join("api.ready"), "").unwrap();
    let (status, _, err) = second.finish();
    assert_eq!(status, Some(0), "{err}");
    stack.down_leaves_nothing();
}

/// How long ago process `pid` started, from `/proc` (clock ticks of 1/100 s, Linux's USER_HZ).
fn process_age(pid: u32) -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let start: u64 = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    let uptime: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    std::time::Duration::from_secs_f64(uptime)
        .checked_sub(std::time::Duration::from_millis(start * 10))
}

#[test]
fn a_timed_out_service_is_stopped_and_a_rerun_starts_one_copy() {
    let stack = Stack::new(
        "timedout",
        "services:\n  api:\n    x-hub:\n      class: optional\n      run: \"exec ./MARK 1000\"\n      health: { cmd: \"test -f api.ready\", interval: 20ms }\n      timeout: 200ms\n      retry: { attempts: 1 }\n",
    );
    for _ in 0..2 {
        let (status, records, err) = stack.deploy(&[]).finish();
        assert_eq!(status, Some(0), "{err}");
        let unhealthy = variants!(&records, Record::Unhealthy)
            .into_iter()
            .find(|u| u.of.service == "api")
            .unwrap();
        assert_eq!(unhealthy.reason, UnhealthyReason::Timeout, "{unhealthy:?}");
        assert_eq!(
            stack.marked(),
            Vec::<u32>::new(),
            "the timed-out copy still runs"
        );
    }
    stack.down_leaves_nothing();
}

#[test]
fn sigint_at_any_point_of_a_deploy_then_hub_down_leaves_nothing() {
    let stack = Stack::new(
        "sigint",
        &format!(
            "services:\n{}{}{}",
            service("db", ""),
            service("cache", ""),
            service("api", "db, cache")
        ),
    );
    for name in ["db", "cache", "api"] {
        std::fs::write(stack.path().join(format!("{name}.ready")), "").unwrap();
    }
    // Cut the deploy after its Nth record (plans, starts, health results…), and once at the
    // very start; each time a rerun resumes, and hub-down stops everything.
    for cut in 0..8 {
        let mut deploy = stack.deploy(&[]);
        for _ in 0..cut {
            if deploy.next_record().is_none() {
                break;
            }
        }
        deploy.signal(if cut % 2 == 0 { "INT" } else { "TERM" });
        let (status, _, err) = deploy.finish();
        assert!(!err.contains("Killed"), "cut {cut}: {err}");
        // None: the signal came before bash had even set its traps (nothing started then).
        assert!(
            matches!(status, None | Some(0 | 130 | 143)),
            "cut {cut}: {status:?} {err}"
        );
        let (status, _, err) = stack.deploy(&[]).finish();
        assert_eq!(status, Some(0), "cut {cut}: the rerun: {err}");
        assert_eq!(stack.marked().len(), 3, "cut {cut}: one copy of each");
        stack.down_leaves_nothing();
    }
}

#[test]
fn a_run_service_that_exits_is_an_exited_record_and_leaves_no_file() {
    let stack = Stack::new(
        "exitfile",
        "services:\n  job:\n    x-hub: { class: core, run: \"./MARK 0\", health: { completed: true } }\n  api:\n    depends_on: { job: { condition: service_completed_successfully } }\n    x-hub: { class: core, run: \"exec ./MARK 1000\", health: { cmd: \"true\" } }\n",
    );
    for _ in 0..3 {
        let (status, events, err) = stack.deploy(&[]).finish();
        assert_eq!(status, Some(0), "{err}");
        assert!(!err.contains("Killed"), "{err}");
        // The exit travels downstream as a record, not through a file.
        assert!(
            events.iter().any(
                |r| matches!(r, Record::Exited(e) if e.of.service == "job" && e.exit_status == 0)
            ),
            "{events:?}"
        );
        let pids = names_in(&stack.path().join(".hub/pids"));
        assert!(!pids.iter().any(|n| n.ends_with(".exit")), "{pids:?}");
        assert!(!pids.iter().any(|n| n.ends_with(".tmp")), "{pids:?}");
        let state = names_in(&stack.path().join(".hub"));
        assert!(
            !state.iter().any(|n| n.starts_with("tmp.")),
            "hub-deploy left its temp folder: {state:?}"
        );
        stack.down_leaves_nothing();
    }
}

#[test]
fn state_files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let stack = Stack::new("umask", &format!("services:\n{}", service("api", "")));
    std::fs::write(stack.path().join("api.ready"), "").unwrap();
    let script = hub_tests::workspace_root().join("scripts/hub-deploy");
    let bins = hub_tests::bin_dir().display().to_string();
    let out = Cmd::program(Path::new("bash"))
        .current_dir(stack.path())
        .env("HUB_BIN_DIR", &bins)
        .args(["-c", "umask 000; exec \"$0\" \"$@\""])
        .arg(&script)
        .args(["--state-dir", ".hub"])
        .run();
    assert!(hub_tests::stderr(&out).contains("healthy"));
    let mode = |p: &str| {
        std::fs::metadata(stack.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    for folder in [".hub", ".hub/pids", ".hub/logs", ".hub/events"] {
        assert_eq!(mode(folder), 0o700, "{folder}");
    }
    let events = names_in(&stack.path().join(".hub/events"));
    let event_file = format!(".hub/events/{}", events[0]);
    for file in [
        ".hub/pids/api.pid",
        ".hub/logs/api.log",
        ".hub/deploy.lock",
        event_file.as_str(),
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    stack.down_leaves_nothing();
}

#[test]
fn a_hub_tool_run_as_a_service_is_not_stopped_by_hub_deploys_parent_watch() {
    // hub-deploy tells its tools to stop when it dies; a hub-retry inside a start command
    // must not take that for its own parent.
    let retry = hub_tests::bin("hub-retry").display().to_string();
    let stack = Stack::new(
        "nested",
        &format!(
            "services:\n  migrate:\n    x-hub: {{ class: core, start: \"{retry} -n 1 -- ./MARK 0\" }}\n"
        ),
    );
    let (status, records, err) = stack.deploy(&[]).finish();
    assert_eq!(status, Some(0), "{err}");
    assert!(records.iter().any(is("started", "migrate")), "{err}");
    stack.down_leaves_nothing();
}

/// A `started` record's body.
fn started_record(record: Record) -> Started {
    match record {
        Record::Started(started) => *started,
        other => panic!("not a started record: {other:?}"),
    }
}
