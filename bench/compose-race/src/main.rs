//! compose-race: one compose project with a healthcheck chain (s0 <- s1 <- s2, each
//! `depends_on: {condition: service_healthy}`), brought up alternately by
//! `docker compose up -d --wait` and by hub's container backend (each service started with
//! `up -d --no-deps` the moment its dependency is healthy), torn down between rounds.
//!
//! It measures what users feel: wall time from "go" to "every service healthy". Results go to
//! docs/benchmarks.md. Needs a Docker engine and compose v2 (.ci/setup.d/50-docker.sh),
//! and gcc for the static test server (tests/docker/server.c).
//!
//! Usage: compose-race [--rounds N] [--interval DURATION] [--ready-after MS] [--services N]
//!                     [--modes compose,hub-exec,hub-engine]

use hub::command::CommandSpec;
use hub::container::{self, ComposeCmd, ContainerCheck, Outcome, WaitOptions};
use hub::records::ComposeRef;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "hub-bench-server:race";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// `docker compose up -d --wait`.
    Compose,
    /// hub: `up -d --no-deps` per service, health by `docker exec` of the healthcheck test.
    HubExec,
    /// hub: `up -d --no-deps` per service, health from the engine's healthcheck via events.
    HubEngine,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Compose => "compose up --wait",
            Mode::HubExec => "hub (x-hub.health.exec)",
            Mode::HubEngine => "hub (engine health, events)",
        }
    }

    fn parse(text: &str) -> Result<Mode, String> {
        match text {
            "compose" => Ok(Mode::Compose),
            "hub-exec" => Ok(Mode::HubExec),
            "hub-engine" => Ok(Mode::HubEngine),
            other => Err(format!(
                "unknown mode {other}: use compose, hub-exec, hub-engine"
            )),
        }
    }
}

struct Options {
    rounds: usize,
    interval: String,
    ready_after_ms: u64,
    services: usize,
    modes: Vec<Mode>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        rounds: 5,
        interval: "1s".into(),
        ready_after_ms: 1000,
        services: 3,
        modes: vec![Mode::Compose, Mode::HubExec, Mode::HubEngine],
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--rounds" => {
                options.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?
            }
            "--interval" => options.interval = value()?,
            "--ready-after" => {
                options.ready_after_ms = value()?
                    .parse()
                    .map_err(|e| format!("--ready-after: {e}"))?
            }
            "--services" => {
                options.services = value()?.parse().map_err(|e| format!("--services: {e}"))?
            }
            "--modes" => {
                options.modes = value()?
                    .split(',')
                    .map(Mode::parse)
                    .collect::<Result<_, _>>()?
            }
            "-h" | "--help" => {
                println!(
                    "compose-race [--rounds N] [--interval DURATION] [--ready-after MS] [--services N] [--modes compose,hub-exec,hub-engine]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}; see --help")),
        }
    }
    if options.services == 0 || options.rounds == 0 || options.modes.is_empty() {
        return Err("--services, --rounds and --modes must not be empty".into());
    }
    Ok(options)
}

fn service(i: usize) -> String {
    format!("s{i}")
}

fn compose_yaml(options: &Options) -> String {
    let mut yaml = String::from("services:\n");
    for i in 0..options.services {
        yaml.push_str(&format!(
            "  {name}:\n    image: {IMAGE}\n    environment:\n      READY_AFTER_MS: \"{ready}\"\n    \
             healthcheck:\n      test: [\"CMD\", \"/server\", \"check\"]\n      interval: {interval}\n      \
             timeout: 2s\n      retries: 100\n",
            name = service(i),
            ready = options.ready_after_ms,
            interval = options.interval,
        ));
        if i > 0 {
            yaml.push_str(&format!(
                "    depends_on:\n      {}:\n        condition: service_healthy\n",
                service(i - 1)
            ));
        }
    }
    yaml
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn build_image(work: &Path) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    run(
        Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(work.join("server"))
            .arg(root.join("tests/docker/server.c")),
        "gcc -static tests/docker/server.c",
    )?;
    std::fs::copy(
        root.join("tests/docker/Dockerfile"),
        work.join("Dockerfile"),
    )
    .map_err(|e| format!("copy Dockerfile: {e}"))?;
    run(
        Command::new("docker")
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", IMAGE])
            .arg(work),
        "docker build",
    )
}

fn down(compose: &ComposeRef) -> Result<(), String> {
    let mut cmd = Command::new("docker");
    cmd.args(["compose", "-p"])
        .arg(compose.project.as_deref().unwrap_or("race"));
    for file in &compose.files {
        cmd.args(["-f", file]);
    }
    cmd.args(["down", "-v", "--remove-orphans", "--timeout", "2"]);
    run(&mut cmd, "docker compose down")
}

/// One bring-up: the wall time from go to every service healthy, and the time spent inside
/// `up -d --no-deps` calls (hub modes only), for the chain's floor.
fn bring_up(
    mode: Mode,
    options: &Options,
    compose: &ComposeRef,
) -> Result<(Duration, Duration), String> {
    let cmd = ComposeCmd::from_words("docker compose", "bench").map_err(|e| e.to_string())?;
    let go = Instant::now();
    let mut in_up = Duration::ZERO;
    match mode {
        Mode::Compose => {
            let mut up = cmd.compose_command(compose);
            up.args(["up", "-d", "--wait", "--wait-timeout", "300"]);
            run(&mut up, "docker compose up -d --wait")?;
        }
        Mode::HubExec | Mode::HubEngine => {
            let check = if mode == Mode::HubExec {
                // The plan's defaults for an exec check: interval 500 ms, probe timeout 2 s.
                ContainerCheck::Exec {
                    test: CommandSpec::Argv(vec!["/server".into(), "check".into()]),
                    interval: Duration::from_millis(500),
                    probe_timeout: Duration::from_secs(2),
                }
            } else {
                ContainerCheck::Engine {
                    grace: Duration::from_secs(10),
                }
            };
            let wait = WaitOptions {
                check,
                timeout: Duration::from_secs(300),
                log_lines: 10,
            };
            // A chain: each service starts the moment the one before is healthy.
            for i in 0..options.services {
                let name = service(i);
                let up_started = Instant::now();
                let id = container::up(&cmd, compose, &name).map_err(|e| e.to_string())?;
                in_up += up_started.elapsed();
                match container::wait_healthy(&cmd, &id, &wait).map_err(|e| e.to_string())? {
                    Outcome::Healthy { .. } => {}
                    other => return Err(format!("{name}: {other:?}")),
                }
            }
        }
    }
    Ok((go.elapsed(), in_up))
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2
    }
}

fn main() {
    if let Err(e) = race() {
        eprintln!("compose-race: {e}");
        std::process::exit(2);
    }
}

fn race() -> Result<(), String> {
    let options = parse_args()?;
    let work = std::env::temp_dir().join(format!("compose-race-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("mkdir {}: {e}", work.display()))?;
    build_image(&work)?;
    let file: PathBuf = work.join("compose.yaml");
    std::fs::write(&file, compose_yaml(&options)).map_err(|e| format!("write compose: {e}"))?;
    let compose = ComposeRef {
        files: vec![file.display().to_string()],
        project: Some(format!("race{}", std::process::id())),
    };
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); options.modes.len()];
    // The chain's floor per hub round: time inside `up` calls + each service's own ready delay.
    let mut floors: Vec<Duration> = Vec::new();
    let result = (|| {
        for round in 0..options.rounds {
            // Alternate: each round starts with the next mode, so no mode always goes first.
            for k in 0..options.modes.len() {
                let m = (round + k) % options.modes.len();
                let mode = options.modes[m];
                down(&compose)?;
                let (took, in_up) = bring_up(mode, &options, &compose)?;
                if mode == Mode::HubExec {
                    let ready = Duration::from_millis(options.ready_after_ms);
                    floors.push(in_up + ready * u32::try_from(options.services).unwrap_or(1));
                }
                eprintln!(
                    "round {} {:<30} {:>6.2}s",
                    round + 1,
                    mode.name(),
                    took.as_secs_f64()
                );
                times[m].push(took);
            }
        }
        down(&compose)
    })();
    let _ = down(&compose);
    let _ = run(Command::new("docker").args(["rmi", IMAGE]), "docker rmi");
    let _ = std::fs::remove_dir_all(&work);
    result?;

    let medians: Vec<Duration> = times.iter_mut().map(|t| median(t)).collect();
    let base = options
        .modes
        .iter()
        .position(|m| *m == Mode::Compose)
        .map(|i| medians[i]);
    println!(
        "chain of {} services, each ready {} ms after start, healthcheck interval {}, {} rounds per mode",
        options.services, options.ready_after_ms, options.interval, options.rounds
    );
    println!("| mode | median | min | max | ratio to compose |");
    println!("|------|-------:|----:|----:|-----------------:|");
    for (m, mode) in options.modes.iter().enumerate() {
        let ratio = base.map_or("-".to_owned(), |b| {
            format!("{:.2}", medians[m].as_secs_f64() / b.as_secs_f64())
        });
        println!(
            "| {} | {:.2} s | {:.2} s | {:.2} s | {} |",
            mode.name(),
            medians[m].as_secs_f64(),
            times[m].first().map_or(0.0, Duration::as_secs_f64),
            times[m].last().map_or(0.0, Duration::as_secs_f64),
            ratio
        );
    }
    if !floors.is_empty() {
        println!(
            "\nfloor (time inside `up -d --no-deps` + {} x {} ms ready delay), median over the hub-exec rounds: {:.2} s",
            options.services,
            options.ready_after_ms,
            median(&mut floors).as_secs_f64()
        );
    }
    Ok(())
}
