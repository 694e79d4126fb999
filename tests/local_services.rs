//! Local services (`x-hub.start` / `x-hub.run`) run as compose would run their container: in
//! the project directory (or their `working_dir`), with compose's `environment` and `env_file`
//! variables, probed with their compose `healthcheck`, and with a warning for whatever compose
//! would do that hub does not. The plans are checked against `docker compose config` (the
//! oracle); a real deploy started from another folder proves the processes get it all.

use hub::command::CommandSpec;
use hub::records::{Check, Environment, FailReason, HealthSpec, Plan, Record};
use hub_tests::docker::engine_or_skip;
use hub_tests::{Cmd, KillPidsOnDrop, Running, is, stderr, temp_with, typed_records};
use serde_json::{Value, json};
use std::path::Path;

/// Variables the test sets in both hub's and compose's environment.
const SHELL: [(&str, &str); 2] = [("HT_SHELL", "sh"), ("HT_BOTH", "shell")];

fn hub_levels(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Cmd::new("hub-levels").current_dir(dir).args(args);
    for (key, value) in SHELL {
        cmd = cmd.env(key, value);
    }
    cmd.run()
}

/// The `plan` records hub-levels wrote.
fn records(output: &std::process::Output) -> Vec<Plan> {
    typed_records(output)
        .into_iter()
        .map(|r| match r {
            Record::Plan(plan) => *plan,
            other => panic!("hub-levels wrote a record other than `plan`: {other:?}"),
        })
        .collect()
}

fn plan<'a>(plans: &'a [Plan], service: &str) -> &'a Plan {
    plans
        .iter()
        .find(|p| p.service == service)
        .unwrap_or_else(|| panic!("no plan for {service}: {plans:#?}"))
}

/// A variable of a plan's environment (`None`: unset, or set to null).
fn var<'a>(plan: &'a Plan, key: &str) -> Option<&'a str> {
    plan.environment.get(key).and_then(|v| v.as_deref())
}

/// A plan's working_dir.
fn working_dir(plan: &Plan) -> &str {
    plan.working_dir.as_deref().unwrap_or_default()
}

/// `docker compose ARGS config --format json`, run where and with what hub-levels ran.
fn compose_config(dir: &Path, args: &[&str]) -> Value {
    let mut cmd = Cmd::program(Path::new("docker"))
        .current_dir(dir)
        .arg("compose")
        .args(args)
        .args(["config", "--format", "json"]);
    for (key, value) in SHELL {
        cmd = cmd.env(key, value);
    }
    serde_json::from_slice(&cmd.run().stdout).expect("compose config prints JSON")
}

/// Every service's environment in hub's plans equals compose's (`{}` when it has none).
fn assert_environments_match(plans: &[Plan], compose: &Value) {
    let services = compose["services"].as_object().expect("services");
    for (name, service) in services {
        let expected: Environment = serde_json::from_value(
            service
                .get("environment")
                .cloned()
                .unwrap_or_else(|| json!({})),
        )
        .expect("compose's environment is a map of strings");
        assert_eq!(
            plan(plans, name).environment,
            expected,
            "service {name}: hub's environment vs compose's"
        );
    }
}

/// A stack exercising every environment rule: both forms, bare names from the shell and from
/// `.env`, a bare name found nowhere overriding an env_file value, env_file as a string, a
/// list and `{path, required}` entries, and interpolation inside env files from the shell,
/// `.env`, `environment`, the lines above and earlier files.
const ENVIRONMENT_STACK: &[(&str, &str)] = &[
    (
        "compose.yaml",
        r#"services:
  a:
    image: x
    env_file:
      - one.env
      - path: two.env
        required: true
      - path: missing.env
        required: false
    environment:
      - HT_LIST=l
      - HT_SHELL
      - HT_DOTENV
      - HT_BOTH
      - HT_NOWHERE
      - HT_KEEP
      - HT_OVER=from-environment
      - HT_EMPTY=
    x-hub: { class: core, run: ./a.sh }
  b:
    image: x
    env_file: one.env
    environment:
      HT_NUMBER: 2
      HT_BOOL: true
      HT_NULL:
      HT_TEXT: "x-${HT_DOTENV}"
    x-hub: { class: core, start: ./b.sh }
  c:
    image: x
    env_file: [{ path: sub/three.env }]
    x-hub: { class: core, run: ./c.sh }
  d:
    image: x
    environment: { HT_CONTAINER: yes }
"#,
    ),
    (
        ".env",
        "HT_DOTENV=dot\nHT_BOTH=dotenv\nHT_DOT_REF=${HT_UNSET_IN_DOTENV}\n",
    ),
    (
        "one.env",
        "HT_ONE=1\nHT_OVER=from-one\nHT_SHARED=one\nHT_REF=${HT_DOTENV}-${HT_ONE}\nHT_SH=${HT_SHELL}\nHT_KEEP=from-file\nHT_REDEF=in-one\n",
    ),
    (
        "two.env",
        "HT_BEFORE=${HT_REDEF}\nHT_SHARED=two\nHT_CHAIN=${HT_KEEP}+${HT_LIST}\nHT_MISSING=${HT_UNSET_IN_ENV_FILE}\nHT_REDEF=first\nHT_AFTER=${HT_REDEF}\nexport HT_QUOTED=\"a b\" # comment\n",
    ),
    ("sub/three.env", "HT_THREE=3\n"),
];

#[test]
fn environment_and_env_file_mean_what_compose_config_says() {
    let dir = temp_with(ENVIRONMENT_STACK);
    let out = hub_levels(dir.path(), &[]);
    let plans = records(&out);
    // What a user relies on, written out once (compose agrees below).
    let a = plan(&plans, "a");
    let a = |key| var(a, key);
    assert_eq!(
        a("HT_SHELL"),
        Some("sh"),
        "a bare name takes the shell's value"
    );
    assert_eq!(a("HT_DOTENV"), Some("dot"), "… else .env's");
    assert_eq!(a("HT_BOTH"), Some("shell"), "the shell wins over .env");
    assert_eq!(a("HT_NOWHERE"), None, "found nowhere: unset");
    assert_eq!(a("HT_KEEP"), None, "a bare name overrides an env_file");
    assert_eq!(a("HT_OVER"), Some("from-environment"), "environment wins");
    assert_eq!(a("HT_SHARED"), Some("two"), "a later env_file wins");
    assert_eq!(a("HT_CHAIN"), Some("from-file+l"));
    assert_eq!(a("HT_AFTER"), Some("first"));
    assert_eq!(
        a("HT_BEFORE"),
        Some("in-one"),
        "above two.env's own HT_REDEF, one.env's is seen"
    );
    assert_eq!(a("HT_MISSING"), Some(""));
    assert_eq!(a("HT_QUOTED"), Some("a b"));
    assert_eq!(a("HT_REF"), Some("dot-1"));
    assert_eq!(var(plan(&plans, "b"), "HT_TEXT"), Some("x-dot"));
    // A container gets its environment from compose itself.
    assert!(plan(&plans, "d").environment.is_empty());
    // A variable read while set nowhere is warned about, naming the file, as compose warns.
    let root = dir.path().canonicalize().unwrap();
    let unset = [
        ("HT_UNSET_IN_DOTENV", root.join(".env")),
        ("HT_UNSET_IN_ENV_FILE", root.join("two.env")),
    ];
    let err = stderr(&out);
    for (name, file) in &unset {
        let line = format!("{}: the variable {name} is not set", file.display());
        assert_eq!(err.matches(&line).count(), 1, "{line} once in:\n{err}");
    }
    if !engine_or_skip("environment_and_env_file_mean_what_compose_config_says") {
        return;
    }
    let warned = Cmd::program(Path::new("docker"))
        .current_dir(dir.path())
        .args(["compose", "config", "-q"])
        .run();
    for (name, _) in &unset {
        assert!(
            stderr(&warned).contains(&format!("\\\"{name}\\\" variable is not set")),
            "compose warns about {name} too: {}",
            stderr(&warned)
        );
    }
    let mut compose = compose_config(dir.path(), &[]);
    compose["services"]
        .as_object_mut()
        .expect("services")
        .remove("d");
    assert_environments_match(&plans, &compose);

    // The resolve route: compose's own output, read from stdin, means the same.
    let mut yaml = Cmd::program(Path::new("docker"))
        .current_dir(dir.path())
        .args(["compose", "config"]);
    for (key, value) in SHELL {
        yaml = yaml.env(key, value);
    }
    let yaml = yaml.run().stdout;
    let mut piped = Cmd::new("hub-levels")
        .current_dir(dir.path())
        .args(["-f", "-"])
        .stdin(yaml);
    for (key, value) in SHELL {
        piped = piped.env(key, value);
    }
    assert_environments_match(&records(&piped.run()), &compose);
    // And so does --resolve, which runs compose itself.
    let resolved = records(&hub_levels(dir.path(), &["--resolve"]));
    assert_environments_match(&resolved, &compose);
}

#[test]
fn the_project_directory_is_where_local_services_run_and_env_files_are() {
    let dir = temp_with(&[
        (
            "stack/compose.yaml",
            "services:\n  a:\n    image: x\n    env_file: one.env\n    environment: [HT_DOTENV]\n    x-hub: { class: core, run: ./a.sh }\n  w:\n    image: x\n    working_dir: data\n    x-hub: { class: core, run: ./w.sh }\n  abs:\n    image: x\n    working_dir: /tmp\n    x-hub: { class: core, run: ./w.sh }\n",
        ),
        ("stack/one.env", "HT_WHERE=stack\n"),
        ("stack/.env", "HT_DOTENV=stack\n"),
        ("proj/one.env", "HT_WHERE=proj\n"),
        ("proj/.env", "HT_DOTENV=proj\n"),
        ("elsewhere/.keep", ""),
    ]);
    let root = dir.path().canonicalize().unwrap();
    let elsewhere = root.join("elsewhere");
    // By default: the first file's folder, wherever hub-levels runs.
    let plans = records(&hub_levels(&elsewhere, &["-f", "../stack/compose.yaml"]));
    let stack = root.join("stack");
    assert_eq!(working_dir(plan(&plans, "a")), stack.display().to_string());
    assert_eq!(var(plan(&plans, "a"), "HT_WHERE"), Some("stack"));
    assert_eq!(var(plan(&plans, "a"), "HT_DOTENV"), Some("stack"));
    assert_eq!(
        working_dir(plan(&plans, "w")),
        stack.join("data").display().to_string()
    );
    assert_eq!(working_dir(plan(&plans, "abs")), "/tmp");
    // --project-directory moves all of it, as in compose.
    let moved = [
        "-f",
        "../stack/compose.yaml",
        "--project-directory",
        "../proj",
    ];
    let plans = records(&hub_levels(&elsewhere, &moved));
    let proj = root.join("proj");
    assert_eq!(working_dir(plan(&plans, "a")), proj.display().to_string());
    assert_eq!(var(plan(&plans, "a"), "HT_WHERE"), Some("proj"));
    assert_eq!(var(plan(&plans, "a"), "HT_DOTENV"), Some("proj"));
    assert_eq!(
        working_dir(plan(&plans, "w")),
        proj.join("data").display().to_string()
    );
    // With no -f, the compose file is looked for in the project directory.
    let found = records(&hub_levels(
        &elsewhere,
        &["--project-directory", "../stack"],
    ));
    assert_eq!(working_dir(plan(&found, "a")), stack.display().to_string());
    // From stdin, the project directory is the current folder.
    let text = std::fs::read_to_string(stack.join("compose.yaml")).unwrap();
    let piped = Cmd::new("hub-levels")
        .current_dir(&stack)
        .args(["-f", "-"])
        .stdin(text)
        .run();
    assert_eq!(
        working_dir(plan(&records(&piped), "w")),
        stack.join("data").display().to_string()
    );
    Cmd::new("hub-levels")
        .current_dir(&elsewhere)
        .args([
            "--project-directory",
            "../nope",
            "-f",
            "../stack/compose.yaml",
        ])
        .stderr_contains("--project-directory ../nope: not a folder")
        .status(2);
    if !engine_or_skip("the_project_directory_is_where_local_services_run_and_env_files_are") {
        return;
    }
    let compose = compose_config(&elsewhere, &moved);
    assert_environments_match(&plans, &compose);
    // --resolve: compose is told the project directory, and the plans run in it.
    let resolved = records(&hub_levels(
        &elsewhere,
        &[&moved[..], &["--resolve"]].concat(),
    ));
    assert_environments_match(&resolved, &compose);
    for service in ["a", "w", "abs"] {
        assert_eq!(
            working_dir(plan(&resolved, service)),
            working_dir(plan(&plans, service)),
            "{service}"
        );
    }
}

/// A project that includes two others: `lib/` by path, and `lib/seed.yaml` with `proj/` as its
/// project directory. Each one-shot job writes where it ran and what it was given.
const INCLUDE_STACK: &[(&str, &str)] = &[
    (
        "main/compose.yaml",
        r#"include:
  - ../lib/compose.yaml
  - path: ../lib/seed.yaml
    project_directory: ../proj
services:
  app:
    image: x
    depends_on:
      migrate: { condition: service_completed_successfully }
      tool: { condition: service_completed_successfully }
      seed: { condition: service_completed_successfully }
    x-hub: { class: core, run: ./job.sh, health: { completed: true }, retry: { attempts: 1 } }
"#,
    ),
    (
        "lib/compose.yaml",
        r#"services:
  migrate:
    image: x
    env_file: lib.env
    x-hub: { class: core, run: ./job.sh, retry: { attempts: 1 } }
  tool:
    image: x
    working_dir: tools
    env_file: [lib.env]
    x-hub: { class: core, run: [./job.sh], retry: { attempts: 1 } }
"#,
    ),
    (
        "lib/seed.yaml",
        r#"services:
  seed:
    image: x
    env_file: seed.env
    x-hub: { class: core, run: ./job.sh, retry: { attempts: 1 } }
"#,
    ),
    ("lib/lib.env", "HT_FROM=lib.env\n"),
    ("lib/seed.env", "HT_FROM=the wrong seed.env\n"),
    ("proj/seed.env", "HT_FROM=proj/seed.env\n"),
    ("elsewhere/.keep", ""),
];

#[test]
fn an_included_service_runs_in_its_own_project_directory() {
    const JOB: &str = "#!/bin/sh\n{ pwd; echo \"from=$HT_FROM\"; } > ran.out\n";
    let dir = temp_with(INCLUDE_STACK);
    let root = dir.path().canonicalize().unwrap();
    let _cleanup = KillPidsOnDrop(root.join(".hub"));
    let folders = [
        ("app", root.join("main")),
        ("migrate", root.join("lib")),
        ("tool", root.join("lib/tools")),
        ("seed", root.join("proj")),
    ];
    for (_, folder) in &folders {
        std::fs::create_dir_all(folder).unwrap();
        std::fs::write(folder.join("job.sh"), JOB).unwrap();
        make_executable(&folder.join("job.sh"));
    }
    let elsewhere = root.join("elsewhere");
    let args = ["-f", "../main/compose.yaml"];
    let plans = records(&hub_levels(&elsewhere, &args));
    for (service, folder) in &folders {
        assert_eq!(
            working_dir(plan(&plans, service)),
            folder.display().to_string(),
            "{service}"
        );
    }
    assert_eq!(var(plan(&plans, "seed"), "HT_FROM"), Some("proj/seed.env"));
    assert_eq!(var(plan(&plans, "tool"), "HT_FROM"), Some("lib.env"));
    // The env files compose reads for them are the ones hub reads.
    if engine_or_skip("an_included_service_runs_in_its_own_project_directory") {
        assert_environments_match(&plans, &compose_config(&elsewhere, &args));
    }
    // And the processes run there: `./job.sh` is each one's own.
    let deploy_args = [
        "-f",
        "../main/compose.yaml",
        "--state-dir",
        "../.hub",
        "--events",
        "/dev/stdout",
    ];
    let deploy = Running::spawn_script("hub-deploy", &deploy_args, &elsewhere, &[]);
    let (status, _, err) = deploy.finish();
    assert_eq!(status, Some(0), "{err}");
    for (service, folder) in &folders {
        let expected_from = match *service {
            "app" => String::new(),
            "seed" => "proj/seed.env".to_owned(),
            _ => "lib.env".to_owned(),
        };
        assert_eq!(
            std::fs::read_to_string(folder.join("ran.out")).unwrap(),
            format!("{}\nfrom={expected_from}\n", folder.display()),
            "{service}"
        );
    }
}

#[test]
fn a_compose_healthcheck_probes_a_local_service() {
    let dir = temp_with(&[(
        "compose.yaml",
        r#"services:
  shell-string:
    image: x
    healthcheck: { test: "test -f ready", interval: 2s, timeout: 5s, start_period: 10s, retries: 4 }
    x-hub: { class: core, run: ./s.sh }
  cmd:
    image: x
    healthcheck: { test: ["CMD", "./check.sh", "--quick"] }
    x-hub: { class: core, start: ./s.sh }
  cmd-shell:
    image: x
    healthcheck: { test: ["CMD-SHELL", "curl -f http://127.0.0.1:1/ || exit 1"], interval: 1s, retries: 2 }
    x-hub: { class: core, run: ./s.sh, timeout: 7s }
  none:
    image: x
    healthcheck: { test: ["NONE"] }
    x-hub: { class: core, run: ./s.sh }
  disabled:
    image: x
    healthcheck: { test: ["CMD", "true"], disable: true }
    x-hub: { class: core, run: ./s.sh }
  own-health:
    image: x
    healthcheck: { test: ["CMD", "false"] }
    x-hub: { class: core, run: ./s.sh, health: { tcp: "127.0.0.1:1" } }
  no-healthcheck:
    image: x
    x-hub: { class: core, run: ./s.sh }
  job:
    image: x
    healthcheck: { test: ["CMD", "true"], interval: 1s, retries: 2 }
    x-hub: { class: core, run: ./migrate.sh }
  after-job:
    image: x
    depends_on: { job: { condition: service_completed_successfully } }
    x-hub: { class: core, run: ./s.sh }
"#,
    )]);
    let out = Cmd::new("hub-levels")
        .current_dir(dir.path())
        .env("TIMEOUT_CMD", "3s")
        .run();
    let plans = records(&out);
    let health = |name: &str| plan(&plans, name).health.clone();
    let timeout = |name: &str| plan(&plans, name).timeout_ms;
    let kind = |name: &str| health(name).check;
    assert_eq!(
        health("shell-string"),
        HealthSpec {
            check: Check::Cmd {
                cmd: CommandSpec::Shell("test -f ready".into())
            },
            interval_ms: 2000,
            probe_timeout_ms: 5000,
            start_period_ms: 10_000
        }
    );
    // start_period + retries × interval: when compose would call it unhealthy.
    assert_eq!(timeout("shell-string"), 18_000);
    assert_eq!(
        health("cmd"),
        HealthSpec {
            check: Check::Cmd {
                cmd: CommandSpec::Argv(vec!["./check.sh".into(), "--quick".into()])
            },
            interval_ms: 500,
            probe_timeout_ms: 30_000,
            start_period_ms: 0
        }
    );
    assert_eq!(timeout("cmd"), 3000, "TIMEOUT_<SERVICE> still wins");
    assert_eq!(
        kind("cmd-shell"),
        Check::Cmd {
            cmd: CommandSpec::Shell("curl -f http://127.0.0.1:1/ || exit 1".into())
        }
    );
    assert_eq!(timeout("cmd-shell"), 7000, "x-hub.timeout still wins");
    assert_eq!(kind("none"), Check::None);
    assert_eq!(timeout("none"), 60_000);
    assert_eq!(kind("disabled"), Check::None);
    assert!(
        matches!(kind("own-health"), Check::Tcp { .. }),
        "x-hub.health wins"
    );
    assert_eq!(kind("no-healthcheck"), Check::None);
    // A one-shot job is judged by its exit, as compose does: its healthcheck and the deadline
    // that came with it do not apply.
    assert_eq!(kind("job"), Check::Completed);
    assert_eq!(timeout("job"), 60_000);
    if !engine_or_skip("a_compose_healthcheck_probes_a_local_service") {
        return;
    }
    // The test compose normalises is the one hub runs.
    let compose = compose_config(dir.path(), &[]);
    for (name, service) in compose["services"].as_object().unwrap() {
        if ["own-health", "no-healthcheck", "job", "after-job"].contains(&name.as_str()) {
            continue;
        }
        let check = &service["healthcheck"];
        let test: Vec<&str> = check["test"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let expected = match test.split_first() {
            _ if check["disable"] == true => Check::None,
            Some((&"NONE", _)) => Check::None,
            Some((&"CMD", rest)) => Check::Cmd {
                cmd: CommandSpec::Argv(rest.iter().map(|s| (*s).to_owned()).collect()),
            },
            Some((&"CMD-SHELL", rest)) => Check::Cmd {
                cmd: CommandSpec::Shell(rest.join(" ")),
            },
            other => panic!("{name}: unexpected compose test {other:?}"),
        };
        assert_eq!(kind(name), expected, "{name}");
    }
}

#[test]
fn what_hub_does_not_do_for_a_process_is_one_warning_per_service() {
    let dir = temp_with(&[(
        "compose.yaml",
        r#"services:
  api:
    image: x
    command: ["serve"]
    ports: ["8080:80"]
    volumes: ["./data:/data"]
    restart: always
    user: "1000"
    environment: [A=1]
    x-hub: { class: core, run: ./api.sh }
  quiet:
    image: x
    working_dir: /srv
    healthcheck: { test: ["CMD", "true"] }
    x-other: 1
    x-hub: { class: core, run: ./q.sh }
  no-test:
    image: x
    healthcheck: { interval: 1s }
    x-hub: { class: core, run: ./q.sh }
  container:
    image: x
    ports: ["80"]
  later:
    profiles: [later]
    ports: ["80"]
    x-hub: { class: core, run: ./q.sh }
"#,
    )]);
    let out = Cmd::new("hub-levels").current_dir(dir.path()).run();
    let err = stderr(&out);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("local process"))
        .collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].contains("service \"api\" runs as a local process (x-hub.run): hub does not apply ports, restart, user, volumes"),
        "{err}"
    );
    assert!(
        lines[1].contains("service \"no-test\"") && lines[1].contains("apply healthcheck"),
        "{err}"
    );
}

#[test]
fn env_file_and_healthcheck_mistakes_are_refused_by_name() {
    let cases = [
        (
            "env_file: nope.env",
            "env_file ",
            "nope.env not found; create it, fix the path (relative to the project directory), or mark it `required: false`",
        ),
        (
            "env_file: [{ path: a.env, format: raw }]",
            "env_file format \"raw\"",
            "drop `format`",
        ),
        (
            "env_file: [{ file: a.env }]",
            "unknown key `file` in an env_file entry",
            "allowed: path, required, format",
        ),
        (
            "healthcheck: { test: [\"RUN\", \"x\"] }",
            "healthcheck.test must be [\"CMD\", …]",
            "found [\"RUN\",\"x\"]",
        ),
        (
            "healthcheck: { test: \"x\", retries: many }",
            "healthcheck.retries: must be a whole number",
            "many",
        ),
        ("environment: [[A]]", "environment: list items must be", ""),
        ("working_dir: 3", "working_dir: must be a folder", ""),
    ];
    for (yaml, first, second) in cases {
        let dir = temp_with(&[
            (
                "compose.yaml",
                &format!("services:\n  svc:\n    {yaml}\n    x-hub: {{ run: ./x.sh }}\n"),
            ),
            ("a.env", "A=1\n"),
        ]);
        Cmd::new("hub-levels")
            .current_dir(dir.path())
            .stderr_contains("service \"svc\": ")
            .stderr_contains(first)
            .stderr_contains(second)
            .status(2);
    }
}

#[test]
fn an_env_file_is_read_only_for_an_active_service() {
    let dir = temp_with(&[(
        "compose.yaml",
        "services:\n  a:\n    image: x\n    x-hub: { run: ./a.sh }\n  later:\n    image: x\n    profiles: [later]\n    env_file: not-yet.env\n    x-hub: { run: ./b.sh }\n",
    )]);
    // As compose: `docker compose config` accepts it too, and fails with --profile later.
    Cmd::new("hub-levels")
        .current_dir(dir.path())
        .args(["--format", "text"])
        .stdout("Level 0: a\n")
        .run();
    Cmd::new("hub-levels")
        .current_dir(dir.path())
        .args(["--profile", "later"])
        .stderr_contains("not-yet.env not found")
        .status(2);
}

#[test]
fn a_launch_into_a_missing_working_dir_fails_naming_it() {
    let dir = temp_with(&[(
        "compose.yaml",
        "services:\n  svc:\n    working_dir: not-made\n    x-hub: { class: core, run: \"exec sleep 1000\", retry: { attempts: 1 } }\n",
    )]);
    let plans = Cmd::new("hub-levels").current_dir(dir.path()).run().stdout;
    let out = Cmd::new("hub-start")
        .current_dir(dir.path())
        .stdin(plans)
        .status(1);
    let failed = typed_records(&out)
        .into_iter()
        .find_map(|r| match r {
            Record::Failed(failed) => Some(failed),
            _ => None,
        })
        .expect("a failed record");
    assert_eq!(failed.reason, FailReason::LaunchFailed);
    let message = &failed.message;
    assert!(message.contains("not-made is not a folder"), "{message}");
}

/// A stack in `stack/` deployed from `elsewhere/`: a one-shot job and a service with relative
/// paths, env files, a working_dir, and a compose healthcheck that the test makes pass.
const DEPLOY_STACK: &[(&str, &str)] = &[
    (
        "stack/compose.yaml",
        r#"services:
  migrate:
    env_file: app.env
    x-hub: { class: core, run: ./migrate.sh, retry: { attempts: 1 } }
  api:
    depends_on:
      migrate: { condition: service_completed_successfully }
    working_dir: data
    env_file: [app.env]
    environment:
      - HT_GREETING=hello from environment
      - HT_UNSET_ME
    healthcheck:
      test: ["CMD-SHELL", "test -f ready && test \"$$HT_GREETING\" = 'hello from environment'"]
      interval: 50ms
      start_period: 1m
    x-hub: { class: core, run: ["./serve.sh"], stop: ./stop.sh, retry: { attempts: 1 } }
  web:
    depends_on:
      api: { condition: service_healthy }
    x-hub: { class: core, run: "exec sleep 1000", retry: { attempts: 1 } }
"#,
    ),
    (
        "stack/app.env",
        "HT_FROM_FILE=from app.env\nHT_UNSET_ME=from app.env\nHT_GREETING=overridden\n",
    ),
    (
        "stack/migrate.sh",
        "#!/bin/sh\n{ pwd; echo \"file=$HT_FROM_FILE\"; } > migrate.out\n",
    ),
    (
        "stack/data/serve.sh",
        "#!/bin/sh\n{ pwd; echo \"greeting=$HT_GREETING\"; echo \"file=$HT_FROM_FILE\"; echo \"inherited=$HT_INHERITED\"; echo \"unset=${HT_UNSET_ME-<unset>}\"; } > serve.out.tmp\nmv serve.out.tmp serve.out\nexec sleep 1000\n",
    ),
    ("stack/data/stop.sh", "#!/bin/sh\npwd > stopped\n"),
    ("elsewhere/.keep", ""),
];

/// The deploy ends with status 0, these services healthy in this order.
fn assert_deployed(deploy: Running, services: &[&str]) {
    let (status, records, err) = deploy.finish();
    assert_eq!(status, Some(0), "{err}");
    let healthy: Vec<&str> = records
        .iter()
        .filter(|r| r.kind() == "healthy")
        .filter_map(Record::service)
        .collect();
    assert_eq!(healthy, services, "{err}");
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_deploy_from_another_folder_runs_local_services_as_compose_would() {
    let dir = temp_with(DEPLOY_STACK);
    let root = dir.path().canonicalize().unwrap();
    // The state is under the root, so the guard also kills anything running in stack/.
    let _cleanup = KillPidsOnDrop(root.join(".hub"));
    let stack = root.join("stack");
    for script in ["migrate.sh", "data/serve.sh", "data/stop.sh"] {
        make_executable(&stack.join(script));
    }
    let elsewhere = root.join("elsewhere");
    let args = [
        "-f",
        "../stack/compose.yaml",
        "--state-dir",
        "../.hub",
        "--events",
        "/dev/stdout",
    ];
    let mut deploy =
        Running::spawn_script("hub-deploy", &args, &elsewhere, &[("HT_INHERITED", "yes")]);
    deploy.wait_for("api started", is("started", "api"));
    let serve_out = stack.join("data/serve.out");
    hub_tests::wait_until("serve.sh wrote what it was given", || serve_out.exists());
    // Its healthcheck cannot pass before `ready` exists: web waits.
    assert!(
        !deploy
            .seen_records()
            .iter()
            .any(|r| is("started", "web")(r) || is("healthy", "api")(r)),
        "{:#?}",
        deploy.seen
    );
    std::fs::write(stack.join("data/ready"), "").unwrap();
    assert_deployed(deploy, &["migrate", "api", "web"]);
    assert_eq!(
        std::fs::read_to_string(stack.join("migrate.out")).unwrap(),
        format!("{}\nfile=from app.env\n", stack.display())
    );
    assert_eq!(
        std::fs::read_to_string(&serve_out).unwrap(),
        format!(
            "{}\ngreeting=hello from environment\nfile=from app.env\ninherited=yes\nunset=<unset>\n",
            stack.join("data").display()
        )
    );
    // Teardown from elsewhere too: the stop command runs in the service's folder.
    Cmd::script("hub-down")
        .current_dir(&elsewhere)
        .args(["-f", "../stack/compose.yaml", "--state-dir", "../.hub"])
        .run();
    assert_eq!(
        std::fs::read_to_string(stack.join("data/stopped")).unwrap(),
        format!("{}\n", stack.join("data").display())
    );
}

#[test]
fn the_readme_example_is_the_example_stack_and_deploys_as_written() {
    let root = hub_tests::workspace_root();
    let example = root.join("examples/readme/compose.yaml");
    let text = std::fs::read_to_string(&example).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("```yaml\n{text}```\n")),
        "README's \"Describing a stack\" must show examples/readme/compose.yaml as it is"
    );
    let dir = temp_with(&[(".keep", "")]);
    let _cleanup = KillPidsOnDrop(dir.path().join(".hub"));
    let port = hub_tests::free_port().to_string();
    let file = example.display().to_string();
    let args = [
        "-f",
        &file,
        "--state-dir",
        ".hub",
        "--events",
        "/dev/stdout",
    ];
    let deploy = Running::spawn_script("hub-deploy", &args, dir.path(), &[("API_PORT", &port)]);
    assert_deployed(deploy, &["migrate", "api"]);
    let log = std::fs::read_to_string(dir.path().join(".hub/logs/migrate.log")).unwrap();
    assert!(
        log.contains(&format!(
            "run from {}",
            root.join("examples/readme").display()
        )),
        "{log}"
    );
    Cmd::script("hub-down")
        .current_dir(dir.path())
        .args(["-f", &file, "--state-dir", ".hub"])
        .run();
}
