//! `hub-levels`: read compose files and print their services in dependency levels.
//!
//! The first tool of the pipeline: its `plan` records carry everything the others need,
//! so nothing downstream reads the compose file again.

use hub::container::{self, ComposeCmd};
use hub::records::ComposeRef;
use hub::records::{Class, Plan, Record};
use hub::service::{self, Options};
use hub::{Error, Result, compose, log, output::RecordWriter};

pub mod cli;
pub use cli::{Cli, Format};

/// Run `hub-levels`.
pub fn run(args: Cli) -> Result<u8> {
    let project_directory = args.project_directory.as_deref();
    let env_files = &args.env_file;
    let files = input_files(&args, project_directory, env_files)?;
    let resolve = args.resolve;
    let doc = if resolve {
        compose_config(&args, &files, project_directory, env_files)?
    } else {
        compose::load_in(&files, project_directory, env_files, &|key| {
            std::env::var(key).ok()
        })?
    };
    for warning in &doc.warnings {
        log::warn(warning);
    }
    let profiles: Vec<String> = match &args.profile {
        Some(values) => values.clone(),
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
    let opts = Options {
        class_label: args.class_label.clone(),
        default_class: args.default_class,
        profiles,
        env: Box::new(|key| std::env::var(key).ok()),
        resolved: resolve || args.resolved,
    };
    let resolved = service::resolve(&doc, &opts)?;
    for warning in &resolved.warnings {
        log::warn(warning);
    }
    let mut plans = resolved.plans;
    if let Some(stack) = &args.swarm {
        for warning in hub::swarm::to_swarm(&mut plans, stack) {
            log::warn(&warning);
        }
        // Plans for a deploy (not a table or a count): the engine must be able to take them.
        let for_deploy = args.format == Format::Json && !args.count;
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
    if args.count {
        let count = plans.iter().map(|p| p.level + 1).max().unwrap_or(0);
        out.text(&format!("{count}\n"))?;
        return Ok(hub::error::exit::OK);
    }
    if let Some(level) = args.level {
        plans.retain(|p| p.level == level);
    }
    if args.reverse {
        plans.sort_by(|a, b| (b.level, &a.service).cmp(&(a.level, &b.service)));
    }
    match args.format {
        Format::Text => out.text(&text(&plans))?,
        Format::Table => out.text(&table(&plans))?,
        Format::Dot => out.text(&dot(&plans))?,
        Format::Json => {
            let run_id = args.run_id.run_id.unwrap_or_else(hub::time::new_run_id);
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
    args: &Cli,
    files: &[String],
    project_directory: Option<&std::path::Path>,
    env_files: &[String],
) -> Result<compose::ComposeDoc> {
    if files.iter().any(|f| f == "-") {
        return Err(Error::input(
            "--resolve runs compose on files, not stdin; for `docker compose config` output on stdin use --resolved -f -",
        ));
    }
    let cmd = ComposeCmd::detect(args.compose.compose_cmd.as_deref())?;
    let profiles: Vec<String> = args.profile.clone().unwrap_or_default();
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
    args: &Cli,
    project_directory: Option<&std::path::Path>,
    env_files: &[String],
) -> Result<Vec<String>> {
    if let Some(files) = &args.file {
        return Ok(files.clone());
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
