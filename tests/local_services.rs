//! Local services (`x-hub.start` / `x-hub.run`) run as compose would run their container: in
//! the project directory (or their `working_dir`), with compose's `environment` and `env_file`
//! variables, probed with their compose `healthcheck`, and with a warning for whatever compose
//! would do that hub does not. The plans are checked against `docker compose config` (the
//! oracle); a real deploy started from another folder proves the processes get it all.

use hub_tests::docker::engine_or_skip;
use hub_tests::{Cmd, KillPidsOnDrop, Running, records, stderr, temp_with};
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

fn plan<'a>(plans: &'a [Value], service: &str) -> &'a Value {
    plans
        .iter()
        .find(|p| p["service"] == service)
        .unwrap_or_else(|| panic!("no plan for {service}: {plans:#?}"))
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
fn assert_environments_match(plans: &[Value], compose: &Value) {
    let services = compose["services"].as_object().expect("services");
    for (name, service) in services {
        let expected = service
            .get("environment")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let got = plan(plans, name)
            .get("environment")
            .cloned()
            .unwrap_or_else(|| json!({}));
        assert_eq!(
            got, expected,
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
    (".env", "HT_DOTENV=dot\nHT_BOTH=dotenv\n"),
    (
        "one.env",
        "HT_ONE=1\nHT_OVER=from-one\nHT_SHARED=one\nHT_REF=${HT_DOTENV}-${HT_ONE}\nHT_SH=${HT_SHELL}\nHT_KEEP=from-file\nHT_REDEF=in-one\n",
    ),
    (
        "two.env",
        "HT_SHARED=two\nHT_CHAIN=${HT_KEEP}+${HT_LIST}\nHT_REDEF=first\nHT_AFTER=${HT_REDEF}\nexport HT_QUOTED=\"a b\" # comment\n",
    ),
    ("sub/three.env", "HT_THREE=3\n"),
];

#[test]
fn environment_and_env_file_mean_what_compose_config_says() {
    let dir = temp_with(ENVIRONMENT_STACK);
    let out = hub_levels(dir.path(), &[]);
    let plans = records(&out);
    // What a user relies on, written out once (compose agrees below).
    let a = &plan(&plans, "a")["environment"];
    assert_eq!(a["HT_SHELL"], "sh", "a bare name takes the shell's value");
    assert_eq!(a["HT_DOTENV"], "dot", "… else .env's");
    assert_eq!(a["HT_BOTH"], "shell", "the shell wins over .env");
    assert_eq!(a["HT_NOWHERE"], Value::Null, "found nowhere: unset");
    assert_eq!(
        a["HT_KEEP"],
        Value::Null,
        "a bare name overrides an env_file"
    );
    assert_eq!(a["HT_OVER"], "from-environment", "environment wins");
    assert_eq!(a["HT_SHARED"], "two", "a later env_file wins");
    assert_eq!(a["HT_CHAIN"], "from-file+l");
    assert_eq!(a["HT_AFTER"], "first");
    assert_eq!(a["HT_QUOTED"], "a b");
    assert_eq!(a["HT_REF"], "dot-1");
    assert_eq!(plan(&plans, "b")["environment"]["HT_TEXT"], "x-dot");
    // A container gets its environment from compose itself.
    assert!(plan(&plans, "d").get("environment").is_none());
    if !engine_or_skip("environment_and_env_file_mean_what_compose_config_says") {
        return;
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
    assert_eq!(
        plan(&plans, "a")["working_dir"],
        stack.display().to_string()
    );
    assert_eq!(plan(&plans, "a")["environment"]["HT_WHERE"], "stack");
    assert_eq!(plan(&plans, "a")["environment"]["HT_DOTENV"], "stack");
    assert_eq!(
        plan(&plans, "w")["working_dir"],
        stack.join("data").display().to_string()
    );
    assert_eq!(plan(&plans, "abs")["working_dir"], "/tmp");
    // --project-directory moves all of it, as in compose.
    let moved = [
        "-f",
        "../stack/compose.yaml",
        "--project-directory",
        "../proj",
    ];
    let plans = records(&hub_levels(&elsewhere, &moved));
    let proj = root.join("proj");
    assert_eq!(plan(&plans, "a")["working_dir"], proj.display().to_string());
    assert_eq!(plan(&plans, "a")["environment"]["HT_WHERE"], "proj");
    assert_eq!(plan(&plans, "a")["environment"]["HT_DOTENV"], "proj");
    assert_eq!(
        plan(&plans, "w")["working_dir"],
        proj.join("data").display().to_string()
    );
    // With no -f, the compose file is looked for in the project directory.
    let found = records(&hub_levels(
        &elsewhere,
        &["--project-directory", "../stack"],
    ));
    assert_eq!(
        plan(&found, "a")["working_dir"],
        stack.display().to_string()
    );
    // From stdin, the project directory is the current folder.
    let text = std::fs::read_to_string(stack.join("compose.yaml")).unwrap();
    let piped = Cmd::new("hub-levels")
        .current_dir(&stack)
        .args(["-f", "-"])
        .stdin(text)
        .run();
    assert_eq!(
        plan(&records(&piped), "w")["working_dir"],
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
            plan(&resolved, service)["working_dir"],
            plan(&plans, service)["working_dir"],
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
    let health = |name: &str| plan(&plans, name)["health"].clone();
    let timeout = |name: &str| plan(&plans, name)["timeout_ms"].clone();
    assert_eq!(
        health("shell-string"),
        json!({"kind": "cmd", "cmd": "test -f ready", "interval_ms": 2000, "probe_timeout_ms": 5000, "start_period_ms": 10_000})
    );
    // start_period + retries × interval: when compose would call it unhealthy.
    assert_eq!(timeout("shell-string"), 18_000);
    assert_eq!(
        health("cmd"),
        json!({"kind": "cmd", "cmd": ["./check.sh", "--quick"], "interval_ms": 500, "probe_timeout_ms": 30_000, "start_period_ms": 0})
    );
    assert_eq!(timeout("cmd"), 3000, "TIMEOUT_<SERVICE> still wins");
    assert_eq!(
        health("cmd-shell")["cmd"],
        "curl -f http://127.0.0.1:1/ || exit 1"
    );
    assert_eq!(timeout("cmd-shell"), 7000, "x-hub.timeout still wins");
    assert_eq!(health("none")["kind"], "none");
    assert_eq!(timeout("none"), 60_000);
    assert_eq!(health("disabled")["kind"], "none");
    assert_eq!(health("own-health")["kind"], "tcp", "x-hub.health wins");
    assert_eq!(health("no-healthcheck")["kind"], "none");
    // A one-shot job is judged by its exit, as compose does: its healthcheck and the deadline
    // that came with it do not apply.
    assert_eq!(health("job")["kind"], "completed");
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
            _ if check["disable"] == true => json!(null),
            Some((&"NONE", _)) => json!(null),
            Some((&"CMD", rest)) => json!(rest),
            Some((&"CMD-SHELL", rest)) => json!(rest.join(" ")),
            other => panic!("{name}: unexpected compose test {other:?}"),
        };
        let got = &health(name);
        match expected {
            Value::Null => assert_eq!(got["kind"], "none", "{name}"),
            cmd => assert_eq!(got["cmd"], cmd, "{name}"),
        }
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
    let failed = records(&out)
        .into_iter()
        .find(|r| r["type"] == "failed")
        .expect("a failed record");
    assert_eq!(failed["reason"], "launch_failed");
    let message = failed["message"].as_str().unwrap();
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
        .filter(|r| r["type"] == "healthy")
        .filter_map(|r| r["service"].as_str())
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
    deploy.wait_for("api started", |r| {
        r["type"] == "started" && r["service"] == "api"
    });
    let serve_out = stack.join("data/serve.out");
    hub_tests::wait_until("serve.sh wrote what it was given", || serve_out.exists());
    // Its healthcheck cannot pass before `ready` exists: web waits.
    assert!(
        !deploy
            .seen
            .iter()
            .any(|r| (r["type"] == "started" && r["service"] == "web")
                || (r["type"] == "healthy" && r["service"] == "api")),
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
