//! `hub-report`: turn a deploy's event stream into what an operator reads after the deploy
//! (text, Markdown, a self-contained HTML timeline), what scripts and monitoring read (JSON,
//! Prometheus metrics), and, from a history of runs, what a team watches over weeks (`trend`).
//!
//! The input is streamed: one small state per service of the run being reported, so a file of
//! a million records costs what its services cost.

pub mod cli;
pub mod format;
pub mod html;
pub mod model;
pub mod prometheus;
pub mod status;
pub mod text;
pub mod trend;

use hub::jsonl::{self, Policy};
use hub::records::Line;
use hub::{Error, Result, log};
use model::{Report, RunState};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::Path;

pub use cli::{Cli, Format};

/// Run `hub-report`.
pub fn run(args: Cli) -> Result<u8> {
    match args.command {
        Some(cli::Command::Trend(trend)) => return trend::run(&trend),
        Some(cli::Command::Status(status)) => return status::run(&status),
        None => {}
    }
    let policy = Policy {
        strict: args.strict.strict,
        report_limit: 0,
    };
    let wanted = args.run.as_deref();
    let input = read_run(&args.files, policy, wanted)?;
    if args.list_runs {
        let mut out = String::new();
        for run in &input.runs {
            out.push_str(&format!(
                "{}\t{}\t{} records\n",
                run.id.as_deref().unwrap_or("-"),
                run.first_ts
                    .map(model::rfc3339_millis)
                    .unwrap_or_else(|| "-".into()),
                run.records
            ));
        }
        write_output(&out, None)?;
        return Ok(hub::error::exit::OK);
    }
    let state = input.state.ok_or_else(|| match wanted {
        Some(id) => {
            let known: Vec<&str> = input.runs.iter().filter_map(|r| r.id.as_deref()).collect();
            let suggestion = hub::similar::closest(id, known.iter().copied())
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default();
            Error::input(format!(
                "no run {id} in the input{suggestion}; list the runs with --list-runs"
            ))
        }
        None => Error::input(
            "no records in the input; pass the events file hub-start wrote (hub-start … | tee events.jsonl)",
        ),
    })?;
    let report = state.report();
    if let Some(history) = &args.history {
        append_history(history, &report)?;
    }
    let output = args.output.as_deref();
    let color = args
        .common
        .color
        .enabled(output.is_none() && std::io::stdout().is_terminal());
    let rendered = match args.format {
        Format::Json => format::json(&report)?,
        Format::Markdown => format::markdown(&report),
        Format::Html => html::report(&report),
        Format::Prometheus => {
            prometheus::exposition(&report, last_success_ms(&report, args.history.as_deref()))
        }
        Format::Text => text::report(&report, color),
    };
    write_output(&rendered, output)?;
    if args.check && !report.ok {
        return Ok(hub::error::exit::NO);
    }
    Ok(hub::error::exit::OK)
}

/// One run seen in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSeen {
    /// Its id (None for records without one).
    pub id: Option<String>,
    /// Its earliest `ts`.
    pub first_ts: Option<u64>,
    /// How many records it has.
    pub records: u64,
}

/// What reading the input gave: every run seen, and the fold of the chosen one.
#[derive(Debug)]
pub struct Input {
    /// The runs, in the order of their first record.
    pub runs: Vec<RunSeen>,
    /// The chosen run's fold (None when it never appeared).
    pub state: Option<RunState>,
}

/// Stream the sources, folding only the chosen run: `wanted`, else the run whose first record
/// comes last (a newer run replaces the one being folded, so memory stays one run's worth).
pub fn read_run(sources: &[String], policy: Policy, wanted: Option<&str>) -> Result<Input> {
    let mut runs: Vec<RunSeen> = Vec::new();
    // Run id → its place in `runs`; looked up by &str, so a record costs no allocation.
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut no_id: Option<usize> = None;
    let mut last: Option<usize> = None;
    let mut state: Option<RunState> = None;
    let tally = jsonl::read_sources(sources, policy, |line, _place| {
        let line = Line::decode(line)?;
        let run_id = line.run_id.as_deref();
        // A run's records mostly come together: the previous record's run is checked before
        // the index.
        let known = match run_id {
            _ if last.is_some_and(|at: usize| runs[at].id.as_deref() == run_id) => last,
            Some(id) => index.get(id).copied(),
            None => no_id,
        };
        let position = match known {
            Some(position) => position,
            None => {
                let position = runs.len();
                match run_id {
                    Some(id) => {
                        index.insert(id.to_owned(), position);
                    }
                    None => no_id = Some(position),
                }
                runs.push(RunSeen {
                    id: run_id.map(str::to_owned),
                    first_ts: None,
                    records: 0,
                });
                if wanted.is_none_or(|wanted| run_id == Some(wanted)) {
                    let run_id = run_id.map(str::to_owned);
                    match state.as_mut() {
                        Some(state) => state.restart(run_id),
                        None => state = Some(RunState::new(run_id)),
                    }
                }
                position
            }
        };
        last = Some(position);
        let seen = &mut runs[position];
        seen.records += 1;
        if let Some(ts) = line.ts {
            seen.first_ts = Some(seen.first_ts.map_or(ts, |first| first.min(ts)));
        }
        if let Some(state) = state.as_mut()
            && state.run_id() == run_id
        {
            state.apply(&line);
        }
        Ok(())
    })?;
    tally.report(policy);
    if tally.malformed > 0 {
        log::warn(&format!(
            "{} malformed line{} skipped",
            tally.malformed,
            if tally.malformed == 1 { "" } else { "s" }
        ));
    }
    Ok(Input { runs, state })
}

/// The run id of the history file's last line (read from its last 1 MiB), if any.
fn last_history_run(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(1 << 20)))
        .ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let tail = String::from_utf8_lossy(&tail);
    let last = tail.trim_end().rsplit('\n').next()?;
    let value: serde_json::Value = serde_json::from_str(last).ok()?;
    value.get("run_id")?.as_str().map(str::to_owned)
}

/// When the project's last ok deploy ended, ms since the epoch: this run's end when it is ok,
/// else the latest ok run of the same project in the history file (when there is one).
fn last_success_ms(report: &Report, history: Option<&Path>) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Line {
        ok: bool,
        #[serde(default)]
        project: Option<String>,
        started_at: Option<String>,
        duration_ms: u64,
    }
    let end = |started_at: Option<&str>, duration_ms: u64| {
        let start = humantime::parse_rfc3339(started_at?).ok()?;
        let ms = start
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_millis();
        u64::try_from(ms).ok().map(|ms| ms + duration_ms)
    };
    if report.ok {
        return end(report.started_at.as_deref(), report.duration_ms);
    }
    let history = history?.display().to_string();
    let mut latest: Option<u64> = None;
    let lenient = Policy {
        strict: false,
        report_limit: 0,
    };
    jsonl::read_sources(&[history], lenient, |line, _| {
        if let Ok(run) = serde_json::from_str::<Line>(line)
            && run.ok
            && run.project == report.project
            && let Some(ms) = end(run.started_at.as_deref(), run.duration_ms)
        {
            latest = latest.max(Some(ms));
        }
        Ok(())
    })
    .ok()?;
    latest
}

/// Append the run's JSON summary as one line (one `write`, so concurrent appenders do not
/// interleave lines on a local file system).
///
/// A run the history's last line already holds is not appended again, so `hub-deploy` can
/// pass `--history` to each report it writes of one run.
fn append_history(path: &Path, report: &Report) -> Result<()> {
    if report.run_id.is_some() && last_history_run(path) == report.run_id {
        return Ok(());
    }
    let mut line = format::json(report)?;
    if !line.ends_with('\n') {
        line.push('\n');
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(format!("opening the history file {}", path.display()), &e))?;
    file.write_all(line.as_bytes())
        .map_err(|e| Error::io(format!("appending to {}", path.display()), &e))
}

/// Write to stdout, or to `path` atomically: a temp file beside it, fsync, rename, fsync the
/// folder, so a reader (node_exporter's textfile collector) never sees half a file.
pub fn write_output(content: &str, path: Option<&Path>) -> Result<()> {
    let Some(path) = path else {
        return hub::output::RecordWriter::stdout().text(content);
    };
    // A device or a pipe (`-o /dev/null`, a FIFO) is written into, never renamed over: a rename
    // would replace it with a regular file (as root, /dev/null itself).
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
        && !meta.is_dir()
    {
        return std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut file| file.write_all(content.as_bytes()))
            .map_err(|e| Error::io(format!("writing {}", path.display()), &e));
    }
    hub::atomic::write_file(path, content.as_bytes())
        .map_err(|e| Error::io(format!("writing {}", path.display()), &e))
}
