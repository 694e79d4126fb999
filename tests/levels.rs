//! hub-levels: compose files in, dependency levels out.

use hub::command::CommandSpec;
use hub::records::{Backend, Check, Class, HealthSpec, Plan, Record, RetrySpec};
use hub_tests::{Cmd, fixture, lines, stderr, temp_with};

/// The `plan` records of an output (every record must be one).
fn plans(output: &std::process::Output) -> Vec<Plan> {
    lines(output)
        .into_iter()
        .map(|line| match line.record {
            Record::Plan(plan) => *plan,
            other => panic!("not a plan record: {other:?}"),
        })
        .collect()
}

fn by_name<'a>(recs: &'a [Plan], name: &str) -> &'a Plan {
    recs.iter()
        .find(|r| r.service == name)
        .unwrap_or_else(|| panic!("no plan for {name}"))
}

/// A health check's `kind`, as records spell it.
fn kind(health: &HealthSpec) -> &'static str {
    health.check.kind()
}

/// A retry policy.
fn retry(attempts: u32, delay_ms: u64, max_delay_ms: u64) -> RetrySpec {
    RetrySpec {
        attempts,
        delay_ms,
        max_delay_ms,
    }
}

/// A container service's compose project.
fn project(plan: &Plan) -> Option<&str> {
    plan.compose.as_ref()?.project.as_deref()
}

/// A shell command.
fn shell(text: &str) -> Option<CommandSpec> {
    Some(CommandSpec::Shell(text.into()))
}

#[test]
fn seed_stack_levels_as_text() {
    Cmd::new("hub-levels")
        .arg("-f")
        .arg(fixture("levels/seed-hub.yml"))
        .args(["--class-label", "dive.service.class", "--format", "text"])
        .stdout(
            "Level 0: mongodb opa postgres redis redis-blacklist\n\
             Level 1: kas keycloak\n\
             Level 2: backend\n\
             Level 3: authzforce frontend otel-collector\n",
        )
        .run();
}

#[test]
fn seed_stack_plan_records() {
    let out = Cmd::new("hub-levels")
        .arg("-f")
        .arg(fixture("levels/seed-hub.yml"))
        .args(["--class-label", "dive.service.class", "--run-id", "run-1"])
        .run();
    let lines = lines(&out);
    assert!(
        lines
            .iter()
            .all(|l| l.run_id.as_deref() == Some("run-1") && l.ts.is_some())
    );
    let recs = plans(&out);
    assert_eq!(recs.len(), 11);
    let order: Vec<(u64, &str)> = recs
        .iter()
        .map(|r| (u64::from(r.level), r.service.as_str()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "records are ordered by level, then name");

    let backend = by_name(&recs, "backend");
    assert_eq!(
        backend.deps,
        ["keycloak", "opa", "redis", "redis-blacklist"]
    );
    assert_eq!(backend.soft_deps, ["kas"]);
    assert_eq!(backend.level, 2);
    assert_eq!(backend.backend, Backend::Container);
    assert_eq!(kind(&backend.health), "container");
    let compose = backend.compose.as_ref().unwrap();
    assert_eq!(compose.project.as_deref(), Some("dive-hub"));
    assert!(compose.files[0].ends_with("seed-hub.yml"));
    // Labels in both forms; class values are case-insensitive; unlabelled takes the default.
    assert_eq!(by_name(&recs, "redis").class, Class::Core);
    assert_eq!(by_name(&recs, "mongodb").class, Class::Core);
    assert_eq!(by_name(&recs, "kas").class, Class::Stretch);
    assert_eq!(by_name(&recs, "otel-collector").class, Class::Core);
    assert_eq!(
        by_name(&recs, "postgres").healthcheck.as_ref().unwrap()["test"][0],
        "CMD-SHELL"
    );
    assert_eq!(by_name(&recs, "postgres").timeout_ms, 60_000);
    assert_eq!(by_name(&recs, "postgres").retry, retry(3, 2000, 30000));
}

#[test]
fn default_class_and_default_class_label() {
    let out = Cmd::new("hub-levels")
        .arg("-f")
        .arg(fixture("levels/seed-hub.yml"))
        .args(["--default-class", "stretch"])
        .run();
    // With the default label key (hub.class) nothing is labelled: all take the default.
    assert!(plans(&out).iter().all(|r| r.class == Class::Stretch));
}

#[test]
fn x_hub_fields_are_resolved() {
    let out = Cmd::new("hub-levels")
        .arg("-f")
        .arg(fixture("levels/processes.yaml"))
        .run();
    let recs = plans(&out);
    let db = by_name(&recs, "db");
    assert_eq!(db.backend, Backend::Run);
    assert_eq!(
        db.run,
        Some(CommandSpec::Argv(vec!["sleep".into(), "1000".into()]))
    );
    assert_eq!(
        db.health,
        HealthSpec {
            check: Check::Tcp {
                address: "127.0.0.1:5432".into()
            },
            interval_ms: 200,
            probe_timeout_ms: 2000,
            start_period_ms: 0
        }
    );
    assert_eq!(db.timeout_ms, 90_000);
    assert_eq!(db.retry, retry(5, 1000, 10000));
    let cache = by_name(&recs, "cache");
    assert_eq!(cache.backend, Backend::Start);
    assert_eq!(cache.start, shell("redis-server --daemonize yes"));
    assert_eq!(cache.stop, shell("redis-cli shutdown"));
    assert_eq!(cache.class, Class::Optional);
    assert_eq!(kind(&cache.health), "cmd");
    assert_eq!(cache.health.start_period_ms, 2000);
    assert_eq!(cache.health.interval_ms, 500);
    let api = by_name(&recs, "api");
    assert_eq!(api.class, Class::Core);
    assert_eq!(api.timeout_ms, 45_000, "label hub.timeout, bare seconds");
    assert_eq!(kind(&api.health), "http");
    let Check::Http { status, body, .. } = &api.health.check else {
        panic!("not an http check: {:?}", api.health);
    };
    assert_eq!(
        (status.as_str(), body.as_deref()),
        ("200-299", Some("Directory"))
    );
    assert_eq!(api.health.interval_ms, 100);
    assert_eq!(api.level, 1);
    assert!(
        api.compose.is_none(),
        "no compose ref for a process service"
    );
}

#[test]
fn environment_overrides_timeouts_and_retry_defaults() {
    let out = Cmd::new("hub-levels")
        .arg("-f")
        .arg(fixture("levels/processes.yaml"))
        .env("TIMEOUT_API", "2m")
        .env("TIMEOUT_DB", "15")
        .env("RETRY_MAX_ATTEMPTS", "7")
        .env("RETRY_BASE_DELAY", "1")
        .env("RETRY_MAX_DELAY", "1m")
        .run();
    let recs = plans(&out);
    assert_eq!(by_name(&recs, "api").timeout_ms, 120_000);
    assert_eq!(by_name(&recs, "db").timeout_ms, 15_000);
    // cache has no x-hub.retry: the seed's variables set its policy; db's own policy wins.
    assert_eq!(by_name(&recs, "cache").retry, retry(7, 1000, 60000));
    assert_eq!(by_name(&recs, "db").retry.attempts, 5);
}

#[test]
fn a_dashed_service_name_maps_to_its_timeout_variable() {
    let dir = temp_with(&[(
        "compose.yaml",
        "services:\n  redis-blacklist.v2:\n    x-hub: { run: \"true\" }\n",
    )]);
    let out = Cmd::new("hub-levels")
        .current_dir(dir.path())
        .env("TIMEOUT_REDIS_BLACKLIST_V2", "5s")
        .run();
    assert_eq!(plans(&out)[0].timeout_ms, 5000);
}

#[test]
fn invalid_environment_values_are_errors() {
    Cmd::new("hub-levels")
        .arg("-f")
        .arg(fixture("levels/processes.yaml"))
        .env("TIMEOUT_DB", "soon")
        .stderr_contains("TIMEOUT_DB=soon: invalid duration")
        .status(2);
    Cmd::new("hub-levels")
        .arg("-f")
        .arg(fixture("levels/processes.yaml"))
        .env("RETRY_MAX_ATTEMPTS", "three")
        .stderr_contains("RETRY_MAX_ATTEMPTS=three: not a whole number")
        .status(2);
}

#[test]
fn profiles_filter_services() {
    let names = |out: &std::process::Output| -> Vec<String> {
        plans(out).iter().map(|r| r.service.clone()).collect()
    };
    let out = Cmd::new("hub-levels")
        .arg("-f")
        .arg(fixture("levels/profiles.yaml"))
        .run();
    assert_eq!(names(&out), ["app"]);
    assert_eq!(
        plans(&out)[0].soft_deps,
        Vec::<String>::new(),
        "a soft dep left out by profiles is dropped"
    );
    let out = Cmd::new("hub-levels")
        .arg("-f")
        .arg(fixture("levels/profiles.yaml"))
        .args(["--profile", "debug"])
        .run();
    assert_eq!(names(&out), ["debug-tools", "metrics", "app"]);
    assert_eq!(by_name(&plans(&out), "app").soft_deps, ["debug-tools"]);
    let out = Cmd::new("hub-levels")
        .arg("-f")
        .arg(fixture("levels/profiles.yaml"))
        .env("COMPOSE_PROFILES", "monitoring")
        .run();
    assert_eq!(names(&out), ["app", "metrics"]);
    let out = Cmd::new("hub-levels")
        .arg("-f")
        .arg(fixture("levels/profiles.yaml"))
        .args(["--profile", "*"])
        .run();
    assert_eq!(names(&out).len(), 3);
}

#[test]
fn hard_dependency_on_a_profiled_out_service_is_an_error() {
    Cmd::new("hub-levels")
        .arg("-f")
        .arg(fixture("levels/profile-hard-dep.yaml"))
        .stderr_contains("service \"app\": depends on \"debug-tools\", which is left out by its profiles (debug); activate one with --profile")
        .status(2);
    Cmd::new("hub-levels")
        .arg("-f")
        .arg(fixture("levels/profile-hard-dep.yaml"))
        .args(["--profile", "debug"])
        .run();
}

#[test]
fn cycles_are_printed() {
    let out = Cmd::new("hub-levels")
        .arg("-f")
        .arg(fixture("levels/cycle.yaml"))
        .status(2);
    let err = stderr(&out);
    assert!(err.contains("dependency cycle: a -> b -> c -> a"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(out.stdout.is_empty(), "nothing on stdout on error");
}

fn compose_error(yaml: &str, expected: &str) {
    let dir = temp_with(&[("compose.yaml", yaml)]);
    let out = Cmd::new("hub-levels")
        .current_dir(dir.path())
        .stderr_contains(expected)
        .status(2);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("hub-levels: "), "{err}");
}

#[test]
fn self_dependency() {
    compose_error(
        "services:\n  a:\n    depends_on: [a]\n",
        "compose.yaml: service \"a\": depends on itself",
    );
}

#[test]
fn unknown_dependency_suggests_a_close_name() {
    compose_error(
        "services:\n  postgres: {}\n  app:\n    depends_on: [postgre]\n",
        "service \"app\": depends on \"postgre\", which is not defined (did you mean \"postgres\"?); define it or remove it from depends_on",
    );
    compose_error(
        "services:\n  app:\n    depends_on: [kafka]\n",
        "depends on \"kafka\", which is not defined; define it",
    );
}

#[test]
fn invalid_service_name() {
    compose_error(
        "services:\n  \"-bad name\": {}\n",
        "service \"-bad name\": invalid service name",
    );
}

#[test]
fn malformed_yaml_names_line_and_column() {
    compose_error(
        "services:\n  a:\n    image: x\n   bad: [\n",
        "compose.yaml: malformed YAML:",
    );
    let dir = temp_with(&[("compose.yaml", "services:\n  a: {image: x\n")]);
    let out = Cmd::new("hub-levels").current_dir(dir.path()).status(2);
    assert!(stderr(&out).contains("line "), "{}", stderr(&out));
    assert!(stderr(&out).contains("column"), "{}", stderr(&out));
}

#[test]
fn malformed_json_names_line_and_column() {
    Cmd::new("hub-levels")
        .args(["-f", "-"])
        .stdin("{\"services\": {\n  \"a\": {,}\n}}\n")
        .stderr_contains("-: malformed JSON at line 2 column")
        .status(2);
}

#[test]
fn yaml_alias_bombs_are_refused() {
    let mut text = String::from(
        "x-a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let refs = vec![format!("*{}", pair[0]); 9].join(",");
        text.push_str(&format!("x-{}: &{} [{refs}]\n", pair[1], pair[1]));
    }
    text.push_str("services:\n  a: {}\n");
    Cmd::new("hub-levels")
        .args(["-f", "-"])
        .stdin(text)
        .stderr_contains("malformed YAML")
        .status(2);
}

#[test]
fn invalid_x_hub_values() {
    compose_error(
        "services:\n  a:\n    x-hub: { timeout: soon }\n",
        "service \"a\": x-hub.timeout: invalid duration `soon`",
    );
    compose_error(
        "services:\n  a:\n    x-hub: { class: critical }\n",
        "service \"a\": x-hub.class: \"critical\" is not a class; use core, optional or stretch",
    );
    compose_error(
        "services:\n  a:\n    x-hub: { timout: 5s }\n",
        "unknown key `timout` in x-hub; did you mean `timeout`?",
    );
    compose_error(
        "services:\n  a:\n    x-hub: { start: a, run: b }\n",
        "give `start` (returns once launched) or `run` (long-running), not both",
    );
    compose_error(
        "services:\n  a:\n    x-hub: { run: x, health: { tcp: nowhere } }\n",
        "x-hub.health.tcp: must be HOST:PORT",
    );
    compose_error(
        "services:\n  a:\n    x-hub: { run: x, health: { http: \"http://h/\", status: teapot } }\n",
        "x-hub.health.status:",
    );
    compose_error(
        "services:\n  a:\n    x-hub: { run: x, health: { interval: 1s } }\n",
        "needs exactly one of cmd, http, tcp, exec: true, completed: true (found none)",
    );
    compose_error(
        "services:\n  a:\n    x-hub: { run: x, retry: { attempts: -1 } }\n",
        "x-hub.retry.attempts: must be a whole number",
    );
    compose_error(
        "services:\n  a:\n    x-hub: { run: x, health: { exec: true } }\n",
        "only a container service can be checked with docker exec",
    );
    compose_error(
        "services:\n  a:\n    x-hub: { health: { exec: true } }\n",
        "x-hub.health.exec needs the service's compose `healthcheck.test`",
    );
}

#[test]
fn unknown_class_label_warns_and_takes_the_default() {
    let dir = temp_with(&[(
        "compose.yaml",
        "services:\n  a:\n    labels: [hub.class=gold]\n",
    )]);
    let out = Cmd::new("hub-levels")
        .current_dir(dir.path())
        .stderr_contains("label hub.class=gold is not core, optional or stretch; using core")
        .run();
    assert_eq!(plans(&out)[0].class, Class::Core);
}

#[test]
fn core_on_non_core_hard_dependency_warns() {
    let dir = temp_with(&[(
        "compose.yaml",
        "services:\n  cache:\n    labels: [hub.class=optional]\n  api:\n    labels: [hub.class=core]\n    depends_on: [cache]\n",
    )]);
    Cmd::new("hub-levels")
        .current_dir(dir.path())
        .stderr_contains("service \"api\" is CORE but hard-depends on \"cache\", which is OPTIONAL")
        .run();
}

#[test]
fn exec_health_uses_the_compose_healthcheck() {
    let dir = temp_with(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    healthcheck: { test: [\"CMD\", \"/server\", \"check\"], interval: 30s }\n    x-hub: { health: { exec: true, interval: 50ms } }\n",
    )]);
    let out = Cmd::new("hub-levels").current_dir(dir.path()).run();
    let health = &plans(&out)[0].health;
    assert_eq!(
        health.check,
        Check::Exec {
            test: CommandSpec::Argv(vec!["/server".into(), "check".into()])
        }
    );
    assert_eq!(health.interval_ms, 50);
}

#[test]
fn later_files_override_earlier_ones() {
    let dir = temp_with(&[
        (
            "base.yaml",
            "services:\n  a:\n    labels: [hub.class=core]\n  b:\n    depends_on: [a]\n",
        ),
        (
            "override.yaml",
            "services:\n  a:\n    labels: [hub.class=stretch]\n  c:\n    depends_on: [b]\n",
        ),
    ]);
    let out = Cmd::new("hub-levels")
        .current_dir(dir.path())
        .args(["-f", "base.yaml", "-f", "override.yaml"])
        .run();
    let recs = plans(&out);
    assert_eq!(by_name(&recs, "a").class, Class::Stretch);
    assert_eq!(by_name(&recs, "c").level, 2);
}

#[test]
fn reads_stdin_and_json() {
    let out = Cmd::new("hub-levels")
        .args(["-f", "-", "--format", "text"])
        .stdin(r#"{"services": {"b": {"depends_on": {"a": {"condition": "service_healthy"}}}, "a": {}}}"#)
        .stdout("Level 0: a\nLevel 1: b\n")
        .run();
    assert!(out.stderr.is_empty());
}

#[test]
fn finds_the_default_compose_file_or_says_how_to_give_one() {
    let dir = temp_with(&[("docker-compose.yml", "services:\n  only: {}\n")]);
    Cmd::new("hub-levels")
        .current_dir(dir.path())
        .args(["--format", "text"])
        .stdout("Level 0: only\n")
        .run();
    let empty = temp_with(&[]);
    Cmd::new("hub-levels")
        .current_dir(empty.path())
        .stderr_contains("no compose file: none of compose.yaml")
        .status(2);
    Cmd::new("hub-levels")
        .args(["-f", "/nonexistent/compose.yaml"])
        .stderr_contains("/nonexistent/compose.yaml: cannot read the compose file")
        .status(2);
}

#[test]
fn reverse_level_and_count() {
    let seed = fixture("levels/seed-hub.yml");
    Cmd::new("hub-levels")
        .arg("-f")
        .arg(&seed)
        .arg("--count")
        .stdout("4\n")
        .run();
    Cmd::new("hub-levels")
        .arg("-f")
        .arg(&seed)
        .args(["--reverse", "--format", "text"])
        .stdout(
            "Level 3: authzforce frontend otel-collector\n\
             Level 2: backend\n\
             Level 1: kas keycloak\n\
             Level 0: mongodb opa postgres redis redis-blacklist\n",
        )
        .run();
    Cmd::new("hub-levels")
        .arg("-f")
        .arg(&seed)
        .args(["--level", "1", "--format", "text"])
        .stdout("Level 1: kas keycloak\n")
        .run();
    let out = Cmd::new("hub-levels")
        .arg("-f")
        .arg(&seed)
        .args(["--level", "0"])
        .run();
    assert_eq!(plans(&out).len(), 5);
}

#[test]
fn dot_output() {
    let out = Cmd::new("hub-levels")
        .arg("-f")
        .arg(fixture("levels/seed-hub.yml"))
        .args(["--class-label", "dive.service.class", "--format", "dot"])
        .run();
    let dot = String::from_utf8(out.stdout).unwrap();
    assert!(dot.starts_with("digraph hub {"));
    assert!(dot.contains("\"keycloak\" -> \"backend\";"));
    assert!(dot.contains("\"kas\" -> \"backend\" [style=dashed];"));
    assert!(dot.contains("\"postgres\" [fillcolor=\"#f8c8c8\""));
    assert!(dot.trim_end().ends_with('}'));
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let mut text = String::from("services:\n");
    for i in 0..5000 {
        text.push_str(&format!("  s{i}: {{}}\n"));
    }
    let dir = temp_with(&[("compose.yaml", &text)]);
    let mut child = std::process::Command::new(hub_tests::bin("hub-levels"))
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line, then close our end.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn help_documents_exit_codes() {
    let out = Cmd::new("hub-levels").arg("--help").run();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("Exit status: 0 ok"), "{help}");
    Cmd::new("hub-levels").arg("--bogus").status(2);
}

#[test]
fn table_shows_what_would_start_and_how() {
    let out = Cmd::new("hub-levels")
        .arg("-f")
        .arg(fixture("levels/processes.yaml"))
        .args(["--format", "table"])
        .run();
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("LEVEL  SERVICE  CLASS"), "{table}");
    assert!(
        lines[2].contains("db")
            && lines[2].contains("run: sleep 1000")
            && lines[2].contains("tcp 127.0.0.1:5432")
            && lines[2].contains("5× from 1.0s"),
        "{table}"
    );
    assert!(
        lines[3].contains("http http://127.0.0.1:8080/ (200-299)")
            && lines[3].ends_with("cache db"),
        "{table}"
    );
}

#[test]
fn an_override_file_merges_into_x_hub_and_depends_on() {
    let dir = temp_with(&[
        (
            "base.yaml",
            "services:\n  a:\n    x-hub: { run: \"exec sleep 1\", health: { tcp: \"127.0.0.1:1\" } }\n  b:\n    depends_on: { a: { condition: service_healthy } }\n    x-hub: { run: \"exec sleep 1\" }\n  c:\n    x-hub: { run: \"exec sleep 1\" }\n",
        ),
        (
            "override.yaml",
            "services:\n  a:\n    x-hub: { timeout: 5s }\n  b:\n    depends_on: { c: { condition: service_started } }\n",
        ),
    ]);
    let out = Cmd::new("hub-levels")
        .current_dir(dir.path())
        .args(["-f", "base.yaml", "-f", "override.yaml"])
        .run();
    let recs = plans(&out);
    let a = by_name(&recs, "a");
    assert_eq!((a.backend, a.timeout_ms), (Backend::Run, 5000));
    assert_eq!(kind(&a.health), "tcp");
    assert_eq!(by_name(&recs, "b").deps, ["a", "c"]);
}

#[test]
fn yaml_anchors_and_merge_keys_share_a_template() {
    let dir = temp_with(&[(
        "compose.yaml",
        r#"
x-python: &python
  x-hub: &hub { class: core, run: "exec sleep 1000", timeout: 30s }
  labels: { team: platform }
services:
  a:
    <<: *python
  b:
    <<: *python
    x-hub: { <<: *hub, class: stretch }
    depends_on: [a]
"#,
    )]);
    let out = Cmd::new("hub-levels").current_dir(dir.path()).run();
    let plans = plans(&out);
    let (a, b) = (by_name(&plans, "a"), by_name(&plans, "b"));
    assert_eq!(
        (a.class, a.timeout_ms, &a.run),
        (Class::Core, 30_000, &shell("exec sleep 1000"))
    );
    assert_eq!(
        (b.class, b.timeout_ms, b.level),
        (Class::Stretch, 30_000, 1)
    );
    assert_eq!(b.labels["team"], "platform");
}

#[test]
fn duplicate_keys_are_an_error_as_in_compose() {
    compose_error(
        "services:\n  a:\n    image: x\n    image: y\n",
        "compose.yaml: malformed YAML: the key \"image\" is defined twice in one mapping; remove one at line 4",
    );
}

#[test]
fn a_service_depended_on_to_complete_is_a_one_shot_job() {
    let dir = temp_with(&[(
        "compose.yaml",
        r#"
services:
  db: { x-hub: { run: "exec sleep 1000" } }
  migrate:
    depends_on: [db]
    x-hub: { run: "./migrate.sh" }
  seed:
    image: seed
  api:
    depends_on:
      db: { condition: service_healthy }
      migrate: { condition: service_completed_successfully }
      seed: { condition: service_completed_successfully }
    x-hub: { run: "exec sleep 1000" }
  batch: { x-hub: { run: "./batch.sh", health: { completed: true } } }
"#,
    )]);
    let out = Cmd::new("hub-levels").current_dir(dir.path()).run();
    let plans = plans(&out);
    for job in ["migrate", "seed", "batch"] {
        assert_eq!(kind(&by_name(&plans, job).health), "completed", "{job}");
    }
    for service in ["db", "api"] {
        assert_eq!(kind(&by_name(&plans, service).health), "none", "{service}");
    }
    let table = Cmd::new("hub-levels")
        .current_dir(dir.path())
        .args(["--format", "table"])
        .run();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("completed (a one-shot job: exit 0)"),
        "{table}"
    );
}

#[test]
fn a_one_shot_job_needs_an_exit_hub_can_see() {
    compose_error(
        "services:\n  job: { x-hub: { start: \"true\" } }\n  api:\n    depends_on: { job: { condition: service_completed_successfully } }\n    x-hub: { run: x }\n",
        "service \"job\": a one-shot job (x-hub.health.completed, or a dependent's `condition: service_completed_successfully`) needs `x-hub.run` or a container",
    );
    compose_error(
        "services:\n  job: { x-hub: { run: x, health: { tcp: \"h:1\" } } }\n  api:\n    depends_on: { job: { condition: service_completed_successfully } }\n    x-hub: { run: x }\n",
        "service \"job\": \"api\" waits for it to complete (`condition: service_completed_successfully`), but its x-hub.health checks it while it runs; make that `completed: true`, or change the condition",
    );
}

#[test]
fn an_override_file_adds_dependencies_in_either_form_as_compose_does() {
    let dir = temp_with(&[
        (
            "base.yaml",
            "services:\n  a: {}\n  b: {}\n  c: {}\n  api:\n    depends_on: [a]\n    profiles: [web]\n",
        ),
        (
            "override.yaml",
            "services:\n  api:\n    depends_on: [b]\n    profiles: [api]\n  more:\n    depends_on: [api]\n",
        ),
        (
            "more.yaml",
            "services:\n  api:\n    depends_on: { c: { condition: service_healthy } }\n",
        ),
    ]);
    let out = Cmd::new("hub-levels")
        .current_dir(dir.path())
        .args(["-f", "base.yaml", "-f", "override.yaml", "-f", "more.yaml"])
        .args(["--profile", "web"])
        .run();
    let recs = plans(&out);
    assert_eq!(by_name(&recs, "api").deps, ["a", "b", "c"]);
    assert_eq!(by_name(&recs, "api").profiles, ["web", "api"]);
}

#[test]
fn variables_are_interpolated_from_the_environment_then_the_dotenv_file() {
    let dir = temp_with(&[
        (
            "compose.yaml",
            r#"
services:
  db:
    x-hub:
      run: "exec sleep 1000"
      health: { tcp: "${DB_HOST:-127.0.0.1}:${DB_PORT}" }
      timeout: ${DB_TIMEOUT}
  api:
    depends_on: [db]
    x-hub: { run: "echo $$PATH; exec api --db $DB_HOST$MISSING" }
"#,
        ),
        (
            ".env",
            "DB_PORT=5432\nDB_TIMEOUT=45s\nDB_HOST=from-dotenv\n",
        ),
    ]);
    let out = Cmd::new("hub-levels")
        .current_dir(dir.path())
        .env("DB_HOST", "db.internal")
        .stderr_contains("the variable MISSING is not set")
        .run();
    let recs = plans(&out);
    let db = by_name(&recs, "db");
    assert_eq!(
        db.health.check,
        Check::Tcp {
            address: "db.internal:5432".into()
        }
    );
    assert_eq!(db.timeout_ms, 45_000);
    assert_eq!(
        by_name(&recs, "api").run,
        shell("echo $PATH; exec api --db db.internal")
    );
}

#[test]
fn a_required_variable_or_a_bad_template_is_an_error() {
    compose_error(
        "services:\n  a:\n    x-hub: { run: \"exec app ${TOKEN:?set TOKEN to the API token}\" }\n",
        "compose.yaml: variable TOKEN is not set: set TOKEN to the API token",
    );
    compose_error(
        "services:\n  a:\n    x-hub: { run: \"exec app ${}\" }\n",
        "compose.yaml: invalid interpolation in `exec app ${}`; write $$ for a literal $",
    );
}

#[test]
fn the_dotenv_file_also_sets_compose_profiles_and_project_name() {
    let dir = temp_with(&[
        (
            "compose.yaml",
            "services:\n  web:\n    image: nginx\n    profiles: [web]\n  db:\n    image: postgres\n",
        ),
        (".env", "COMPOSE_PROFILES=web\nCOMPOSE_PROJECT_NAME=shop\n"),
    ]);
    let out = Cmd::new("hub-levels").current_dir(dir.path()).run();
    let recs = plans(&out);
    assert_eq!(project(by_name(&recs, "web")), Some("shop"));
    // The environment still wins over the file.
    let out = Cmd::new("hub-levels")
        .current_dir(dir.path())
        .env("COMPOSE_PROFILES", "none")
        .run();
    assert_eq!(plans(&out).len(), 1);
}

#[test]
fn dotenv_values_refer_to_earlier_entries_and_lose_their_quotes() {
    let dir = temp_with(&[
        (
            "compose.yaml",
            "services:\n  web:\n    image: nginx\n    depends_on: [db]\n    profiles: [web]\n    labels: [\"greeting=${Q}\", \"name=${NAME}\"]\n  db:\n    image: postgres\n    profiles: [postgresql]\n",
        ),
        (
            ".env",
            "export BASE=demo\nNAME=${BASE}-app\nQ=\"hello world\" # c\nCOMPOSE_PROFILES=${WEB:-web},${DB_TYPE:-postgresql}\n",
        ),
    ]);
    let out = Cmd::new("hub-levels").current_dir(dir.path()).run();
    let recs = plans(&out);
    assert_eq!(recs.len(), 2, "{recs:?}");
    let web = by_name(&recs, "web");
    assert_eq!(web.level, 1);
    assert_eq!(web.labels["greeting"], "hello world");
    assert_eq!(web.labels["name"], "demo-app");
}

#[test]
fn a_flow_sequence_may_close_at_its_key_indentation() {
    let dir = temp_with(&[(
        "compose.yaml",
        "services:\n  web:\n    command: [\n      \"a\", \"b\"\n    ]\n    image: x\n    depends_on: [\n      db\n    ]\n  db:\n    image: y\n",
    )]);
    let out = Cmd::new("hub-levels").current_dir(dir.path()).run();
    assert_eq!(by_name(&plans(&out), "web").level, 1);
}

#[test]
fn an_empty_or_comment_only_override_overrides_nothing() {
    let dir = temp_with(&[
        ("compose.yaml", "services:\n  web:\n    image: x\n"),
        ("empty.yaml", ""),
        ("comments.yaml", "# nothing to override today\n"),
        ("volumes.yaml", "volumes:\n  data: {}\n"),
    ]);
    let out = Cmd::new("hub-levels")
        .current_dir(dir.path())
        .args([
            "-f",
            "compose.yaml",
            "-f",
            "empty.yaml",
            "-f",
            "comments.yaml",
        ])
        .args(["-f", "volumes.yaml"])
        .run();
    assert_eq!(plans(&out).len(), 1);
    // Alone, an empty file is no compose file.
    Cmd::new("hub-levels")
        .current_dir(dir.path())
        .args(["-f", "comments.yaml"])
        .stderr_contains("comments.yaml: not a compose file")
        .status(2);
}

#[test]
fn a_container_name_shared_by_two_active_services_is_an_error() {
    let yaml = "services:\n  a:\n    image: x\n    container_name: same\n  b:\n    image: x\n    container_name: same\n    profiles: [extra]\n";
    let dir = temp_with(&[("compose.yaml", yaml)]);
    // Not while one of them is left out by its profile, as compose.
    let out = Cmd::new("hub-levels").current_dir(dir.path()).run();
    assert_eq!(plans(&out).len(), 1);
    Cmd::new("hub-levels")
        .current_dir(dir.path())
        .args(["--profile", "extra"])
        .stderr_contains("service \"b\": container_name \"same\" is already used by service \"a\"")
        .status(2);
}

#[test]
fn include_and_extends_bring_services_and_their_dependencies() {
    let dir = temp_with(&[
        (
            "compose.yaml",
            "include:\n  - infra/compose.yaml\nservices:\n  web:\n    extends: { service: app, file: common.yaml }\n  worker:\n    extends: web\n    depends_on: [queue]\n",
        ),
        (
            "common.yaml",
            "services:\n  app:\n    image: app\n    depends_on: [db]\n",
        ),
        (
            "infra/compose.yaml",
            "services:\n  db:\n    image: ${DB_IMAGE}\n  queue:\n    image: q\n    depends_on: [db]\n",
        ),
        ("infra/.env", "DB_IMAGE=postgres\n"),
    ]);
    let out = Cmd::new("hub-levels").current_dir(dir.path()).run();
    let recs = plans(&out);
    assert_eq!(recs.len(), 4, "{recs:?}");
    assert_eq!(by_name(&recs, "web").level, 1);
    assert_eq!(by_name(&recs, "worker").level, 2);
    assert_eq!(by_name(&recs, "worker").deps, ["db", "queue"]);
    assert!(
        stderr(&out).is_empty(),
        "the included .env sets DB_IMAGE: {}",
        stderr(&out)
    );
}

#[test]
fn include_and_extends_mistakes_are_named() {
    compose_error(
        "services:\n  a:\n    extends: b\n  b:\n    extends: a\n",
        "compose.yaml: extends cycle: a extends b extends a",
    );
    compose_error(
        "services:\n  a:\n    extends: { service: nope }\n",
        "compose.yaml: service \"a\": extends: service \"nope\" not found in",
    );
    compose_error(
        "include:\n  - oci://registry/stack:1\nservices:\n  a:\n    image: x\n",
        "include of the remote file oci://registry/stack:1 is not supported by hub",
    );
    compose_error(
        "include:\n  - compose.yaml\nservices:\n  a:\n    image: x\n",
        "include cycle",
    );
}

#[test]
fn compose_finds_the_override_file_and_compose_file_and_so_does_hub() {
    let dir = temp_with(&[
        ("compose.yaml", "services:\n  web:\n    image: x\n"),
        (
            "compose.override.yml",
            "services:\n  web:\n    depends_on: [db]\n  db:\n    image: y\n",
        ),
        ("other.yaml", "services:\n  solo:\n    image: z\n"),
        ("sub/.keep", ""),
    ]);
    let out = Cmd::new("hub-levels")
        .current_dir(dir.path().join("sub"))
        .run();
    assert_eq!(
        by_name(&plans(&out), "web").level,
        1,
        "found above, with its override"
    );
    std::fs::write(dir.path().join(".env"), "COMPOSE_FILE=other.yaml\n").unwrap();
    let out = Cmd::new("hub-levels").current_dir(dir.path()).run();
    let recs = plans(&out);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].service, "solo");
}

#[test]
fn resolved_input_is_not_filtered_by_profile_again() {
    // What `docker compose --profile web config` prints: db (profile worker) left out, web kept
    // with its profile and its `required: false` dependency on db.
    let resolved = "name: shop\nservices:\n  web:\n    image: x\n    profiles: [web]\n    command: [echo, $$HOME]\n    depends_on:\n      db:\n        condition: service_started\n        required: false\n";
    let out = Cmd::new("hub-levels")
        .args(["-f", "-", "--resolved"])
        .stdin(resolved)
        .run();
    let recs = plans(&out);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].soft_deps, Vec::<String>::new());
    assert!(
        stderr(&out).contains("its `required: false` dependency \"db\" is not active"),
        "{}",
        stderr(&out)
    );
    // Read as a plain file, the same text is refused with a pointer to --resolved.
    Cmd::new("hub-levels")
        .args(["-f", "-", "--profile", "web"])
        .stdin(resolved)
        .stderr_contains("read it with --resolved")
        .status(2);
}

/// `--env-file` (and `COMPOSE_ENV_FILES`) as compose has them: read instead of `.env`, relative
/// to the current folder, a missing one an error, and passed on to compose for containers. What
/// they select is compared with compose's in `compose_oracle` (the `env-files` stack).
#[test]
fn env_files_replace_dotenv_relative_to_the_current_folder() {
    let dir = temp_with(&[
        (
            "stack/compose.yaml",
            "services:\n  db:\n    image: x\n  extra:\n    image: x\n    profiles: [extra]\n",
        ),
        ("stack/.env", "COMPOSE_PROFILES=nothing\n"),
        ("stack/prod.env", "COMPOSE_PROFILES=nothing\n"),
        ("prod.env", "COMPOSE_PROFILES=extra\n"),
    ]);
    let root = dir.path().canonicalize().unwrap();
    let text = |args: &[&str], env: Option<&str>| {
        let mut cmd = Cmd::new("hub-levels")
            .current_dir(&root)
            .args(["-f", "stack/compose.yaml", "--format", "text"])
            .args(args);
        if let Some(files) = env {
            cmd = cmd.env("COMPOSE_ENV_FILES", files);
        }
        String::from_utf8(cmd.run().stdout).unwrap()
    };
    assert_eq!(text(&[], None), "Level 0: db\n");
    assert_eq!(
        text(&["--env-file", "prod.env"], None),
        "Level 0: db extra\n"
    );
    assert_eq!(text(&[], Some("prod.env")), "Level 0: db extra\n");
    assert_eq!(
        text(&["--env-file", "stack/prod.env"], Some("prod.env")),
        "Level 0: db\n",
        "--env-file wins over COMPOSE_ENV_FILES"
    );
    // The containers' compose calls read the same files.
    let out = Cmd::new("hub-levels")
        .current_dir(&root)
        .args(["-f", "stack/compose.yaml", "--env-file", "prod.env"])
        .run();
    assert_eq!(
        by_name(&plans(&out), "db")
            .compose
            .as_ref()
            .unwrap()
            .env_files,
        [root.join("prod.env").display().to_string()]
    );
    Cmd::new("hub-levels")
        .current_dir(root.join("stack"))
        .args(["--env-file", "nope.env"])
        .stderr_contains(&format!(
            "{}: no such env file",
            root.join("stack/nope.env").display()
        ))
        .status(2);
    // hub-deploy and hub-down pass them on.
    for script in ["hub-deploy", "hub-down"] {
        Cmd::script(script)
            .current_dir(&root)
            .args(["-f", "stack/compose.yaml", "--env-file", "missing.env"])
            .stderr_contains("missing.env: no such env file")
            .status(2);
    }
    let table = Cmd::script("hub-deploy")
        .current_dir(&root)
        .args([
            "-f",
            "stack/compose.yaml",
            "--env-file",
            "prod.env",
            "--dry-run",
        ])
        .run()
        .stdout;
    assert!(String::from_utf8_lossy(&table).contains("extra"));
}

/// Several YAML documents in one file merge as compose merges them (compared with compose in
/// `compose_oracle`, the `multi-document` stack); an empty one is refused by name, as compose
/// refuses it.
#[test]
fn an_empty_yaml_document_among_several_is_refused_naming_its_line() {
    let dir = temp_with(&[(
        "compose.yaml",
        "services:\n  a:\n    image: x\n---\n# nothing\n---\nservices:\n  b:\n    depends_on: [a]\n",
    )]);
    Cmd::new("hub-levels")
        .current_dir(dir.path())
        .stderr_contains("compose.yaml: the YAML document at line 4 is empty")
        .status(2);
}

/// compose requires `condition` in the long form of `depends_on` (checked once the files are
/// merged; the `refused` stack of `compose_oracle` compares this with compose).
#[test]
fn a_long_form_dependency_without_a_condition_is_refused_by_name() {
    let dir = temp_with(&[(
        "compose.yaml",
        "services:\n  db:\n    image: x\n  api:\n    image: x\n    depends_on:\n      db: { required: false }\n",
    )]);
    Cmd::new("hub-levels")
        .current_dir(dir.path())
        .stderr_contains("service \"api\": depends_on.db: `condition` is missing")
        .status(2);
}

#[test]
fn a_service_with_no_class_is_core_as_compose_requires_every_service() {
    let dir = temp_with(&[("compose.yaml", "services:\n  a:\n    image: nginx\n")]);
    let out = Cmd::new("hub-levels").current_dir(dir.path()).run();
    assert_eq!(plans(&out)[0].class, Class::Core);
    let help = Cmd::new("hub-levels").arg("--help").run();
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("[default: core]"),
        "--help says what the default is"
    );
}
