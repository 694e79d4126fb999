//! `hub-levels`: read compose files and print their services in dependency levels.
//!
//! The first tool of the pipeline: its `plan` records carry everything the others need,
//! so nothing downstream reads the compose file again.

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use hub::container::{self, ComposeCmd};
use hub::records::ComposeRef;
use hub::records::{Class, Plan, Record};
use hub::service::{self, Options};
use hub::{Error, Result, compose, log, output::RecordWriter};

/// The command-line interface.
pub fn command() -> Command {
    let cmd = Command::new("hub-levels")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Read compose files and print their services in dependency levels")
        .long_about(
            "Read compose files and print their services in dependency levels.\n\n\
             Writes one JSON `plan` record per service (ordered by level, then name) for \
             hub-start, or a text or Graphviz view. A service's level is 0 with no dependencies, \
             else 1 + the highest level of its dependencies. A service that a dependent waits \
             for with `condition: service_completed_successfully` is a one-shot job (health \
             kind `completed`: done when it exits 0).\n\n\
             Multiple -f files merge per service as compose merges them (mappings such as x-hub merge key by key; depends_on and labels merge in either form; profiles append; commands and scalars from a later file replace the earlier ones), and so do the YAML documents (---) of one file; \
             string values are interpolated as compose does (${VAR}, ${VAR:-default}, $$ for $; from the \
             environment, then .env in the project directory or the --env-file files, read as compose reads them); include and extends \
             are applied as compose applies them. --resolve lets compose resolve the files itself \
             (`docker compose config`) and plans from its output.\n\n\
             A local service (x-hub.start or x-hub.run) runs as compose would run its container: \
             in the project directory (or its working_dir, relative to it), with its environment \
             and env_file variables (compose's precedence) over the inherited ones, and, with no \
             x-hub.health, probed with its compose healthcheck (CMD, CMD-SHELL, NONE, disable; \
             interval caps the probe gaps, timeout bounds a probe, start_period is kept, and \
             start_period + retries × interval is its deadline unless x-hub.timeout says). What \
             compose would do and hub does not for a process (ports, volumes, restart, …) is \
             warned about, one line per service.",
        )
        .after_help(
            "Exit status: 0 ok (warnings on stderr), 2 bad input (malformed file, unknown \
             dependency, cycle, invalid x-hub value, …).\n\n\
             Environment: COMPOSE_PROFILES (when no --profile; else from .env), COMPOSE_ENV_FILES (when no --env-file), TIMEOUT_<SERVICE> (overrides a \
             timeout), RETRY_MAX_ATTEMPTS / RETRY_BASE_DELAY / RETRY_MAX_DELAY (retry defaults), \
             HUB_RUN_ID (the run id put in every record).",
        )
        .arg(
            Arg::new("file")
                .short('f')
                .long("file")
                .value_name("FILE")
                .action(ArgAction::Append)
                .help("Compose file, YAML or JSON (repeatable; - reads stdin) [default: $COMPOSE_FILE, else compose.yaml, docker-compose.yml, … here or above, with compose.override.yml beside it]"),
        )
        .arg(
            Arg::new("project-directory")
                .long("project-directory")
                .value_name("DIR")
                .value_parser(value_parser!(std::path::PathBuf))
                .help("The project directory, as compose's: .env is read from it, local services run in it (and relative paths in their commands, working_dir and env_file start there), and with no -f the compose file is looked for in it [default: the first file's folder]"),
        )
        .arg(
            Arg::new("env-file")
                .long("env-file")
                .value_name("FILE")
                .action(ArgAction::Append)
                .help("An env file to read instead of the project's .env, as compose's --env-file (repeatable: read in order, a later one wins; relative to the current folder; passed on to compose for containers and --resolve) [default: $COMPOSE_ENV_FILES, comma-separated, else .env in the project directory]"),
        )
        .arg(
            Arg::new("profile")
                .long("profile")
                .value_name("PROFILE")
                .action(ArgAction::Append)
                .help("Activate a profile (repeatable; * activates all) [default: $COMPOSE_PROFILES]"),
        )
        .arg(
            Arg::new("resolve")
                .long("resolve")
                .action(ArgAction::SetTrue)
                .conflicts_with("resolved")
                .help("Let compose resolve the files first: run `COMPOSE -f FILE… [--profile P]… config` and plan from its output (every service it keeps is active; nothing is filtered again)"),
        )
        .arg(
            Arg::new("resolved")
                .long("resolved")
                .action(ArgAction::SetTrue)
                .help("The input is already `docker compose config` output (e.g. `-f -`): take every service in it as active, with no profile filtering again"),
        )
        .arg(
            Arg::new("compose-cmd")
                .long("compose-cmd")
                .value_name("CMD")
                .requires("resolve")
                .help("The compose command --resolve runs [default: $DOCKER_CMD, else `docker compose`, else `docker-compose`]"),
        )
        .arg(
            Arg::new("class-label")
                .long("class-label")
                .value_name("KEY")
                .default_value("hub.class")
                .help("The label that carries a service's class when x-hub.class is absent (e.g. dive.service.class)"),
        )
        .arg(
            Arg::new("default-class")
                .long("default-class")
                .value_name("CLASS")
                .default_value("core")
                .value_parser(["core", "optional", "stretch"])
                .help("The class of services with no class (x-hub.class, else the class label): core, as compose treats every service as required; `optional` is the seed's old default"),
        )
        .arg(
            Arg::new("format")
                .long("format")
                .value_name("FORMAT")
                .default_value("json")
                .value_parser(hub::cli::enum_parser::<Format>())
                .help("json: plan records; text: `Level 0: a b` lines; table: what would start and how (hub-deploy --dry-run); dot: Graphviz"),
        )
        .arg(
            Arg::new("swarm")
                .long("swarm")
                .value_name("STACK")
                .value_parser(|s: &str| hub::swarm::stack_name(s))
                .help("Deploy the container services onto Docker Swarm as stack STACK: their backend becomes `swarm` (released one by one with `docker stack deploy`, in dependency order; see docs/swarm.md)"),
        )
        .arg(Arg::new("reverse").long("reverse").action(ArgAction::SetTrue).help("Highest level first (teardown order)"))
        .arg(
            Arg::new("level")
                .long("level")
                .value_name("N")
                .value_parser(value_parser!(u32))
                .help("Only the services of level N"),
        )
        .arg(
            Arg::new("count")
                .long("count")
                .action(ArgAction::SetTrue)
                .conflicts_with_all(["level", "format", "reverse"])
                .help("Print the number of levels and nothing else"),
        )
        .arg(hub::cli::run_id_arg(
            "The run id put in every record [default: generated]",
        ));
    hub::cli::with_common_args(cmd)
}

hub::value_enum! {
    /// `--format`: what the plan is written as.
    pub enum Format {
        /// `plan` records.
        Json => "json",
        /// `Level 0: a b` lines.
        Text => "text",
        /// What would start and how (`hub-deploy --dry-run`).
        Table => "table",
        /// Graphviz.
        Dot => "dot",
    }
}

/// Run `hub-levels`.
pub fn run(matches: &ArgMatches) -> Result<u8> {
    let project_directory = matches
        .get_one::<std::path::PathBuf>("project-directory")
        .map(std::path::PathBuf::as_path);
    let env_files: Vec<String> = matches
        .get_many::<String>("env-file")
        .map(|values| values.cloned().collect())
        .unwrap_or_default();
    let files = input_files(matches, project_directory, &env_files)?;
    let resolve = matches.get_flag("resolve");
    let doc = if resolve {
        compose_config(matches, &files, project_directory, &env_files)?
    } else {
        compose::load_in(&files, project_directory, &env_files, &|key| {
            std::env::var(key).ok()
        })?
    };
    for warning in &doc.warnings {
        log::warn(warning);
    }
    let profiles: Vec<String> = match matches.get_many::<String>("profile") {
        Some(values) => values.cloned().collect(),
        None => std::env::var("COMPOSE_PROFILES")
            .ok()
            .or_else(|| doc.dotenv.get("COMPOSE_PROFILES").cloned())
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    let default_class = matches
        .get_one::<String>("default-class")
        .and_then(|c| Class::parse(c))
        .unwrap_or(Class::Core);
    let opts = Options {
        class_label: matches
            .get_one::<String>("class-label")
            .cloned()
            .unwrap_or_else(|| "hub.class".into()),
        default_class,
        profiles,
        env: Box::new(|key| std::env::var(key).ok()),
        resolved: resolve || matches.get_flag("resolved"),
    };
    let resolved = service::resolve(&doc, &opts)?;
    for warning in &resolved.warnings {
        log::warn(warning);
    }
    let mut plans = resolved.plans;
    if let Some(stack) = matches.get_one::<String>("swarm") {
        for warning in hub::swarm::to_swarm(&mut plans, stack) {
            log::warn(&warning);
        }
        // Plans for a deploy (not a table or a count): the engine must be able to take them.
        let for_deploy = matches
            .get_one::<Format>("format")
            .copied()
            .unwrap_or(Format::Json)
            == Format::Json
            && !matches.get_flag("count");
        if for_deploy
            && plans
                .iter()
                .any(|p| p.backend == hub::records::Backend::Swarm)
        {
            let cmd = ComposeCmd::detect(None)?;
            hub::swarm::require_manager(&cmd, stack)?;
        }
    }
    let mut out = RecordWriter::stdout();
    if matches.get_flag("count") {
        let count = plans.iter().map(|p| p.level + 1).max().unwrap_or(0);
        out.text(&format!("{count}\n"))?;
        return Ok(hub::error::exit::OK);
    }
    if let Some(level) = matches.get_one::<u32>("level") {
        plans.retain(|p| p.level == *level);
    }
    if matches.get_flag("reverse") {
        plans.sort_by(|a, b| (b.level, &a.service).cmp(&(a.level, &b.service)));
    }
    match matches
        .get_one::<Format>("format")
        .copied()
        .unwrap_or(Format::Json)
    {
        Format::Text => out.text(&text(&plans))?,
        Format::Table => out.text(&table(&plans))?,
        Format::Dot => out.text(&dot(&plans))?,
        Format::Json => {
            let run_id = matches
                .get_one::<String>("run-id")
                .cloned()
                .unwrap_or_else(hub::time::new_run_id);
            for plan in plans {
                out.emit(Some(&run_id), Record::Plan(Box::new(plan)))?;
            }
        }
    }
    Ok(hub::error::exit::OK)
}

/// `--resolve`: the project as compose resolves `files` with the `--profile`s given (else its
/// own `COMPOSE_PROFILES`), compose's warnings passed on.
fn compose_config(
    matches: &ArgMatches,
    files: &[String],
    project_directory: Option<&std::path::Path>,
    env_files: &[String],
) -> Result<compose::ComposeDoc> {
    if files.iter().any(|f| f == "-") {
        return Err(Error::input(
            "--resolve runs compose on files, not stdin; for `docker compose config` output on stdin use --resolved -f -",
        ));
    }
    let cmd = ComposeCmd::detect(matches.get_one::<String>("compose-cmd").map(String::as_str))?;
    let profiles: Vec<String> = matches
        .get_many::<String>("profile")
        .map(|values| values.cloned().collect())
        .unwrap_or_default();
    // Absolute, as compose resolves them, so the containers' compose calls find them too; the
    // optional project `.env` is compose's own default, not passed.
    let env_files: Vec<String> =
        compose::project_env_files(env_files, std::path::Path::new("."), &|key| {
            std::env::var(key).ok()
        })?
        .into_iter()
        .filter(|(_, given)| *given)
        .map(|(path, _)| path.display().to_string())
        .collect();
    let target = ComposeRef {
        files: files.to_vec(),
        project: None,
        project_directory: project_directory.map(|dir| dir.display().to_string()),
        env_files: env_files.clone(),
        stack: None,
    };
    let (yaml, stderr) = container::config(&cmd, &target, &profiles).map_err(|failure| {
        Error::input(format!("{failure}; fix what compose names, then rerun"))
    })?;
    for line in stderr.lines().map(str::trim).filter(|l| !l.is_empty()) {
        log::warn(&format!("compose: {line}"));
    }
    let mut doc = compose::load_resolved(&yaml, "docker compose config", files, project_directory)?;
    doc.env_files = env_files;
    Ok(doc)
}

/// The files to read: `-f` values, else the ones compose would read in the project directory,
/// else here ([`compose::default_files`]: `COMPOSE_FILE`, or the default file and its override).
fn input_files(
    matches: &ArgMatches,
    project_directory: Option<&std::path::Path>,
    env_files: &[String],
) -> Result<Vec<String>> {
    if let Some(files) = matches.get_many::<String>("file") {
        return Ok(files.cloned().collect());
    }
    let here = match project_directory {
        Some(dir) => dir.to_path_buf(),
        None => std::env::current_dir().map_err(|e| Error::io("finding the current folder", &e))?,
    };
    compose::default_files(&here, env_files, &|key| std::env::var(key).ok())?.ok_or_else(|| {
        Error::input(format!(
            "no compose file: none of {} in {}; pass one with -f FILE (or -f - for stdin)",
            compose::DEFAULT_FILES.join(", "),
            here.display()
        ))
    })
}

/// `Level 0: a b c` lines, in the order of `plans`.
fn text(plans: &[Plan]) -> String {
    let mut out = String::new();
    let mut current: Option<u32> = None;
    for plan in plans {
        if current != Some(plan.level) {
            if current.is_some() {
                out.push('\n');
            }
            out.push_str(&format!("Level {}:", plan.level));
            current = Some(plan.level);
        }
        out.push(' ');
        out.push_str(&plan.service);
    }
    if current.is_some() {
        out.push('\n');
    }
    out
}

/// One row per service: what would start, how, and how its health is judged.
fn table(plans: &[Plan]) -> String {
    use hub::records::{Backend, Check};
    let human = |ms: u64| hub::duration::human(std::time::Duration::from_millis(ms));
    let clip = |text: String| {
        if text.chars().count() > 40 {
            format!("{}…", text.chars().take(39).collect::<String>())
        } else {
            text
        }
    };
    let mut rows = vec![
        [
            "LEVEL",
            "SERVICE",
            "CLASS",
            "STARTS WITH",
            "HEALTH",
            "TIMEOUT",
            "RETRY",
            "AFTER",
        ]
        .map(String::from),
    ];
    for plan in plans {
        let how = match (plan.backend, &plan.start, &plan.run) {
            (Backend::Start, Some(cmd), _) => format!("start: {cmd}"),
            (Backend::Run, _, Some(cmd)) => format!("run: {cmd}"),
            (Backend::Swarm, _, _) => "docker stack deploy (this service alone)".to_owned(),
            _ => "compose up -d --no-deps".to_owned(),
        };
        let health = match &plan.health.check {
            Check::Cmd { cmd } => format!("cmd: {cmd}"),
            Check::Http { url, status, .. } => format!("http {url} ({status})"),
            Check::Tcp { address } => format!("tcp {address}"),
            Check::Container { grace_ms } => format!("container (grace {})", human(*grace_ms)),
            Check::Exec { test } => format!("docker exec: {test}"),
            Check::Completed => "completed (a one-shot job: exit 0)".to_owned(),
            Check::None => "none (started = healthy)".to_owned(),
        };
        let retry = match plan.retry.attempts {
            0 => format!("∞ from {}", human(plan.retry.delay_ms)),
            1 => "none".to_owned(),
            n => format!("{n}× from {}", human(plan.retry.delay_ms)),
        };
        let mut after: Vec<String> = plan.deps.clone();
        after.extend(plan.soft_deps.iter().map(|d| format!("{d}?")));
        rows.push([
            plan.level.to_string(),
            plan.service.clone(),
            plan.class.to_string(),
            clip(how),
            clip(health),
            human(plan.timeout_ms),
            retry,
            after.join(" "),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|c| hub::output::column_width(rows.iter().map(|r| r[c].chars().count()), ""))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Graphviz: an arrow from each dependency to its dependent (start order), soft ones dashed,
/// each level on one rank, nodes coloured by class.
fn dot(plans: &[Plan]) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::from(
        "digraph hub {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n",
    );
    let mut levels: Vec<u32> = plans.iter().map(|p| p.level).collect();
    levels.dedup();
    for level in levels {
        let members: Vec<String> = plans
            .iter()
            .filter(|p| p.level == level)
            .map(|p| quote(&p.service))
            .collect();
        out.push_str(&format!("  {{ rank=same; {}; }}\n", members.join("; ")));
    }
    for plan in plans {
        let colour = match plan.class {
            Class::Core => "#f8c8c8",
            Class::Optional => "#c8daf8",
            Class::Stretch => "#e0e0e0",
        };
        out.push_str(&format!(
            "  {} [fillcolor=\"{colour}\", label=\"{}\\n{} · level {}\"];\n",
            quote(&plan.service),
            plan.service.replace('"', "\\\""),
            plan.class,
            plan.level
        ));
    }
    for plan in plans {
        for dep in &plan.deps {
            out.push_str(&format!("  {} -> {};\n", quote(dep), quote(&plan.service)));
        }
        for dep in &plan.soft_deps {
            out.push_str(&format!(
                "  {} -> {} [style=dashed];\n",
                quote(dep),
                quote(&plan.service)
            ));
        }
    }
    out.push_str("}\n");
    out
}
