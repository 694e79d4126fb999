//! Compose is the oracle: for every stack under `tests/fixtures/compose-oracle/` and every case
//! in its `cases` file, `hub-levels` must see what `docker compose config --format json` sees:
//! the same active services, the same hard and soft edges, the same levels (computed here
//! from compose's output). Three routes are checked: hub reading the files itself, `--resolve`
//! (hub runs compose), and compose's YAML piped into `--resolved -f -`.
//!
//! A `cases` line is `[!] [NAME=VALUE…] ARGS`: the variables are set for both programs, the
//! ARGS given to both (`.` alone: none), and `!` means both must refuse it. Without compose the
//! test prints a loud SKIPPED line, unless HUB_REQUIRE_DOCKER=1 or HUB_REQUIRE_COMPOSE=1.

use hub_tests::{bin, fixture};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// One service as a route sees it: hard deps, soft deps, level.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    hard: BTreeSet<String>,
    soft: BTreeSet<String>,
    level: usize,
}

type Plan = BTreeMap<String, Node>;

/// The variables compose and hub read for themselves; a case sets them explicitly or not at all.
const OWN_VARIABLES: [&str; 6] = [
    "COMPOSE_PROFILES",
    "COMPOSE_ENV_FILES",
    "COMPOSE_FILE",
    "COMPOSE_PROJECT_NAME",
    "COMPOSE_PATH_SEPARATOR",
    "DOCKER_CMD",
];

fn compose_or_skip() -> bool {
    let works = Command::new("docker")
        .args(["compose", "version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return true;
    }
    let required = ["HUB_REQUIRE_DOCKER", "HUB_REQUIRE_COMPOSE"]
        .iter()
        .any(|v| std::env::var(v).as_deref() == Ok("1"));
    assert!(
        !required,
        "compose_oracle: HUB_REQUIRE_DOCKER/HUB_REQUIRE_COMPOSE=1 but `docker compose version` fails"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!!!! SKIPPED: no `docker compose`: compose_oracle did not compare hub with compose (.ci/setup.d/50-docker.sh installs it) !!!!!!!!!!"
    );
    false
}

struct Case {
    line: String,
    refused: bool,
    vars: Vec<(String, String)>,
    args: Vec<String>,
}

fn cases(stack: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(stack.join("cases")).expect("a cases file");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut words: Vec<&str> = line.split_whitespace().collect();
            let refused = words.first() == Some(&"!");
            if refused {
                words.remove(0);
            }
            let vars_end = words
                .iter()
                .position(|w| !w.contains('=') || w.starts_with('-'))
                .unwrap_or(words.len());
            let vars = words[..vars_end]
                .iter()
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let args = words[vars_end..]
                .iter()
                .filter(|w| **w != ".")
                .map(|w| (*w).to_owned())
                .collect();
            Case {
                line: line.to_owned(),
                refused,
                vars,
                args,
            }
        })
        .collect()
}

fn command(program: &Path, dir: &Path, case: &Case) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir);
    for var in OWN_VARIABLES {
        cmd.env_remove(var);
    }
    for (key, value) in &case.vars {
        cmd.env(key, value);
    }
    cmd.env("HUB_LOG", "warn");
    cmd
}

fn compose(dir: &Path, case: &Case, tail: &[&str]) -> Output {
    let mut cmd = command(Path::new("docker"), dir, case);
    cmd.arg("compose").args(&case.args).args(tail);
    cmd.stdin(Stdio::null())
        .output()
        .expect("running docker compose")
}

/// `hub-levels` with the case's ARGS and `extra`, or, given compose's output on `stdin`, with
/// `--resolved -f -` alone (no flag repeated).
fn hub(dir: &Path, case: &Case, extra: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = command(&bin("hub-levels"), dir, case);
    match stdin {
        Some(_) => cmd.args(["--resolved", "-f", "-"]),
        None => cmd.args(&case.args).args(extra),
    };
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running hub-levels");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input).expect("feeding hub-levels");
    }
    child.wait_with_output().expect("hub-levels output")
}

/// Levels as hub defines them (0 with no dependencies, else 1 + the highest of its deps).
fn levels(edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, usize> {
    fn level_of(
        name: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        memo: &mut BTreeMap<String, usize>,
    ) -> usize {
        if let Some(level) = memo.get(name) {
            return *level;
        }
        let level = edges[name]
            .iter()
            .map(|dep| level_of(dep, edges, memo) + 1)
            .max()
            .unwrap_or(0);
        memo.insert(name.to_owned(), level);
        level
    }
    let mut memo = BTreeMap::new();
    for name in edges.keys() {
        level_of(name, edges, &mut memo);
    }
    memo
}

/// compose's view: its services, their `depends_on` on services it kept (a `required: false`
/// one on a service it left out is ignored by `up`), levels computed here.
fn compose_plan(json: &[u8]) -> Plan {
    let doc: Value = serde_json::from_slice(json).expect("compose config JSON");
    let services = doc["services"].as_object().expect("services");
    let mut hard: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut soft: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, body) in services {
        let (h, s) = (
            hard.entry(name.clone()).or_default(),
            soft.entry(name.clone()).or_default(),
        );
        for (dep, how) in body["depends_on"].as_object().into_iter().flatten() {
            if !services.contains_key(dep) {
                assert_eq!(how["required"], false, "compose kept a required dep {dep}");
                continue;
            }
            if how["required"] == false {
                s.insert(dep.clone());
            } else {
                h.insert(dep.clone());
            }
        }
    }
    let all: BTreeMap<String, BTreeSet<String>> = hard
        .iter()
        .map(|(name, deps)| (name.clone(), deps.union(&soft[name]).cloned().collect()))
        .collect();
    let levels = levels(&all);
    hard.into_iter()
        .map(|(name, hard)| {
            let node = Node {
                soft: soft[&name].clone(),
                level: levels[&name],
                hard,
            };
            (name, node)
        })
        .collect()
}

fn hub_plan(out: &Output, route: &str, case: &Case) -> Plan {
    assert!(
        out.status.success(),
        "{route}: hub-levels {:?} failed where compose succeeded: {}",
        case.line,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| match hub_tests::line(line).record {
            hub::records::Record::Plan(plan) => *plan,
            other => panic!("not a plan record: {other:?}"),
        })
        .map(|plan| {
            let node = Node {
                hard: plan.deps.into_iter().collect(),
                soft: plan.soft_deps.into_iter().collect(),
                level: plan.level as usize,
            };
            (plan.service, node)
        })
        .collect()
}

fn check_stack(stack: &Path, compared: &mut usize) {
    let name = stack
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    for case in cases(stack) {
        let json = compose(stack, &case, &["config", "--format", "json"]);
        let direct = hub(stack, &case, &[], None);
        let resolve = hub(stack, &case, &["--resolve"], None);
        if case.refused {
            assert!(
                !json.status.success(),
                "{name}: compose accepts {:?}",
                case.line
            );
            for (route, out) in [("direct", &direct), ("--resolve", &resolve)] {
                assert_eq!(
                    out.status.code(),
                    Some(2),
                    "{name} {route}: hub-levels accepts {:?}, compose refuses it: {}",
                    case.line,
                    String::from_utf8_lossy(&json.stderr)
                );
            }
            *compared += 1;
            continue;
        }
        assert!(
            json.status.success(),
            "{name}: compose refuses {:?}: {}",
            case.line,
            String::from_utf8_lossy(&json.stderr)
        );
        let oracle = compose_plan(&json.stdout);
        let yaml = compose(stack, &case, &["config"]);
        assert!(yaml.status.success());
        let piped = hub(stack, &case, &[], Some(&yaml.stdout));
        for (route, out) in [
            ("direct", &direct),
            ("--resolve", &resolve),
            ("compose config | --resolved -f -", &piped),
        ] {
            let seen = hub_plan(out, route, &case);
            assert_eq!(
                seen.keys().collect::<Vec<_>>(),
                oracle.keys().collect::<Vec<_>>(),
                "{name} {route} {:?}: active services differ from compose's",
                case.line
            );
            for (service, expected) in &oracle {
                assert_eq!(
                    &seen[service], expected,
                    "{name} {route} {:?}: service {service} differs from compose's (hub, then compose)",
                    case.line
                );
            }
        }
        *compared += 1;
    }
}

#[test]
#[cfg_attr(not(have_compose), ignore = "needs `docker compose`")]
fn hub_levels_agrees_with_docker_compose_config_on_every_stack() {
    if !compose_or_skip() {
        return;
    }
    let root = fixture("compose-oracle");
    let mut stacks: Vec<_> = std::fs::read_dir(&root)
        .expect("the corpus")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.join("cases").is_file())
        .collect();
    stacks.sort();
    assert!(stacks.len() >= 5, "the corpus has {} stacks", stacks.len());
    let mut compared = 0;
    for stack in &stacks {
        check_stack(stack, &mut compared);
    }
    assert!(compared >= 25, "only {compared} cases compared");
}

#[test]
#[cfg_attr(not(have_compose), ignore = "needs `docker compose`")]
fn hub_deploy_passes_resolve_through_to_hub_levels() {
    if !compose_or_skip() {
        return;
    }
    let stack = fixture("compose-oracle").join("split-include");
    let out = hub_tests::Cmd::script("hub-deploy")
        .current_dir(&stack)
        .args(["--resolve", "--profile", "monitoring", "--dry-run"])
        .run();
    let table = String::from_utf8_lossy(&out.stdout);
    for service in ["gateway", "tracing", "notifications", "db"] {
        assert!(table.contains(service), "{service} missing from:\n{table}");
    }
    assert!(
        !table.contains("base-service"),
        "a templates service:\n{table}"
    );
}
