//! Which outside parts this machine has, probed once when the tests are built, so a test that
//! needs one it lacks is compiled as `#[ignore]`d and cargo's summary counts it as ignored, not
//! passed: `#[cfg_attr(not(have_docker), ignore = "needs …")]`.
//!
//! `HUB_REQUIRE_DOCKER=1`, `HUB_REQUIRE_COMPOSE=1`, `HUB_REQUIRE_SWARM=1`, `HUB_REQUIRE_SERVERS=1` and `CI` (for
//! Chromium and man) turn the probe off: the part counts as present, the tests run, and a
//! missing part fails them, as CI wants. A part installed later is seen after `touch
//! tests/support/probe.rs` (or with its `HUB_REQUIRE_*`): the probe reruns when those variables or
//! `PATH` change, not on every build.

use std::process::{Command, Stdio};

fn answers(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

fn required(vars: &[&str]) -> bool {
    vars.iter()
        .any(|v| std::env::var(v).is_ok_and(|value| !value.is_empty() && value != "0"))
}

/// The engine is in a swarm and is a manager (it can deploy stacks): tests/swarm.rs.
fn swarm_manager() -> bool {
    Command::new("docker")
        .args([
            "info",
            "--format",
            "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| {
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "active true"
        })
}

fn postgres() -> bool {
    std::fs::read_dir("/usr/lib/postgresql").is_ok_and(|versions| {
        versions
            .flatten()
            .any(|v| v.path().join("bin/postgres").is_file())
    })
}

fn main() {
    for var in [
        "HUB_REQUIRE_DOCKER",
        "HUB_REQUIRE_COMPOSE",
        "HUB_REQUIRE_SWARM",
        "HUB_REQUIRE_SERVERS",
        "CI",
        "PATH",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    println!("cargo::rerun-if-changed=tests/support/probe.rs");
    let compose = required(&["HUB_REQUIRE_DOCKER", "HUB_REQUIRE_COMPOSE"])
        || answers("docker", &["compose", "version"]);
    let parts = [
        (
            "have_docker",
            required(&["HUB_REQUIRE_DOCKER"])
                || (answers("docker", &["info"]) && answers("docker", &["compose", "version"])),
        ),
        ("have_compose", compose),
        (
            "have_swarm",
            required(&["HUB_REQUIRE_SWARM"]) || (compose && swarm_manager()),
        ),
        (
            "have_servers",
            required(&["HUB_REQUIRE_SERVERS"])
                || (postgres()
                    && ["redis-server", "redis-cli", "nginx", "python3"]
                        .iter()
                        .all(|p| on_path(p))),
        ),
        (
            "have_chromium",
            required(&["CI"]) || on_path("chromium") || on_path("chromium-browser"),
        ),
        (
            "have_man",
            required(&["CI"]) || (on_path("man") && on_path("groff")),
        ),
    ];
    for (cfg, present) in parts {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if present {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
