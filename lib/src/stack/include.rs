//! compose's two ways for a file to take services from elsewhere, `include:` and `extends:`,
//! done as compose-go's loader does them (`loader/include.go`, `loader/extends.go`), so that a
//! stack split over files means to hub what it means to compose.
//!
//! - `include:` (top level) lists files, as paths or as `{path, project_directory, env_file}`.
//!   Each is loaded as a project of its own (its first path the main file, the others its
//!   overrides; its own includes and extends applied), interpolated from the including
//!   project's variables and then its own `.env` (or `env_file`), and its services imported;
//!   a service the including file defines differently too is refused, as compose 2.40 does.
//!   Includes come first, so a service may extend an included one.
//! - `extends:` (a service's) names a service, of the same file or of `file:`, recursively;
//!   the base is merged under the service by the same rules as an override file.
//!
//! Relative paths hub reads (`env_file`) in an included or extended file are made absolute
//! against that file's folder, as compose resolves them; a service imported by `include:` runs,
//! as a local process, in its own project's folder. Remote includes (`git`, `oci`, URLs) are
//! refused by name.

use crate::compose::{merge_service, read_documents, reset_services, service_resets};
use crate::interpolate::Variables;
use crate::yaml::Reset;
use crate::{Error, Result};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Interpolate a parsed file and apply its `include:` and its services' `extends:`, honouring
/// its `!reset`/`!override` nodes (`resets`) over what those bring in. `dir` is
/// where its relative paths start (the project folder for the files given with `-f`);
/// `included` is the chain of files including this one, to refuse a cycle.
pub fn resolve_file(
    mut value: Value,
    resets: &[Reset],
    name: &str,
    dir: &Path,
    vars: &mut Variables<'_>,
    included: &mut Vec<PathBuf>,
) -> Result<Value> {
    vars.interpolate(&mut value)
        .map_err(|e| Error::input(format!("{name}: {e}")))?;
    let Value::Object(top) = &mut value else {
        return Ok(value);
    };
    if let Some(list) = top.remove("include") {
        include(top, list, name, dir, vars, included)?;
    }
    if let Some(Value::Object(services)) = top.get_mut("services") {
        apply_extends(services, resets, name, dir, vars)?;
    }
    Ok(value)
}

/// One `include:` entry, spelled out.
struct Entry {
    paths: Vec<PathBuf>,
    project_dir: PathBuf,
    env_files: Option<Vec<String>>,
}

fn include(
    top: &mut Map<String, Value>,
    list: Value,
    name: &str,
    dir: &Path,
    vars: &mut Variables<'_>,
    included: &mut Vec<PathBuf>,
) -> Result<()> {
    let items = match list {
        Value::Null => return Ok(()),
        Value::Array(items) => items,
        other => {
            return Err(Error::input(format!(
                "{name}: `include` must be a list of paths or of {{path, project_directory, env_file}}, found {other}"
            )));
        }
    };
    for item in items {
        let entry = include_entry(item, name, dir)?;
        let main = &entry.paths[0];
        if included.contains(main) {
            let chain: Vec<String> = included.iter().map(|p| p.display().to_string()).collect();
            return Err(Error::input(format!(
                "{name}: include cycle: {} includes {}; remove one of these includes",
                chain.join(" includes "),
                main.display()
            )));
        }
        // The including project's variables first, then the included one's env files.
        let (dotenv, warnings) = include_env(&entry, name, dir, vars)?;
        vars.env_file_warnings.extend(warnings);
        let parent = &*vars;
        let lookup = |key: &str| parent.get(key);
        let mut inner = Variables::new(&lookup, dotenv);
        included.push(main.clone());
        let services = load_project(&entry, &mut inner, included)?;
        included.pop();
        let unset = std::mem::take(&mut inner.unset);
        let warnings = std::mem::take(&mut inner.env_file_warnings);
        drop(inner);
        vars.unset.extend(unset);
        vars.env_file_warnings.extend(warnings);
        import(top, services, name, main, &entry.project_dir)?;
    }
    Ok(())
}

fn include_entry(item: Value, name: &str, dir: &Path) -> Result<Entry> {
    let bad = |what: String| {
        Error::input(format!(
            "{name}: include: {what}; an entry is a path or {{path, project_directory, env_file}}"
        ))
    };
    let (paths, project_dir, env_files) = match item {
        Value::String(path) => (vec![path], None, None),
        Value::Object(mut map) => {
            let paths = strings(map.remove("path"))
                .ok_or_else(|| bad("`path` (a path or a list of paths) is required".into()))?;
            let project_dir = match map.remove("project_directory") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) => Some(p),
                Some(other) => {
                    return Err(bad(format!(
                        "project_directory must be a path, found {other}"
                    )));
                }
            };
            let env_files = match map.remove("env_file") {
                None | Some(Value::Null) => None,
                some => Some(
                    strings(some)
                        .ok_or_else(|| bad("env_file must be a path or a list of paths".into()))?,
                ),
            };
            if let Some(key) = map.keys().next() {
                return Err(bad(format!("unknown key `{key}`")));
            }
            (paths, project_dir, env_files)
        }
        other => return Err(bad(format!("found {other}"))),
    };
    if paths.is_empty() {
        return Err(bad("`path` is empty".into()));
    }
    if let Some(remote) = paths.iter().find(|p| is_remote(p)) {
        return Err(Error::input(format!(
            "{name}: include of the remote file {remote} is not supported by hub; fetch it and include the local copy, or pipe `docker compose config` into `hub-levels --resolved`"
        )));
    }
    let paths: Vec<PathBuf> = paths.iter().map(|p| dir.join(p)).collect();
    let project_dir = match project_dir {
        Some(p) => dir.join(p),
        None => paths[0]
            .parent()
            .map_or_else(|| dir.to_path_buf(), Path::to_path_buf),
    };
    Ok(Entry {
        paths,
        project_dir,
        env_files,
    })
}

/// A string or a list of strings, as a list.
fn strings(value: Option<Value>) -> Option<Vec<String>> {
    match value? {
        Value::String(s) => Some(vec![s]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn is_remote(path: &str) -> bool {
    path.contains("://") || path.starts_with("git@")
}

/// The variables an included project adds: its `env_file`s (relative to the including
/// folder, each one required, read as one chain), else the `.env` in its project folder if
/// there is one; and the warnings for what they read while unset.
fn include_env(
    entry: &Entry,
    name: &str,
    dir: &Path,
    vars: &Variables<'_>,
) -> Result<(HashMap<String, String>, Vec<String>)> {
    let files: Vec<(PathBuf, bool)> = match &entry.env_files {
        None => vec![(entry.project_dir.join(".env"), false)],
        Some(files) => files
            .iter()
            .filter(|f| *f != "/dev/null")
            .map(|f| (dir.join(f), true))
            .collect(),
    };
    let lookup = |key: &str| vars.get(key);
    let mut warnings = Vec::new();
    let entries = crate::dotenv::read_chain(&files, &lookup, &mut warnings)
        .map_err(|e| Error::input(format!("{name}: include: {}", e.message())))?;
    Ok((entries.into_iter().collect(), warnings))
}

/// An included project's services: its files merged in order, each resolved.
fn load_project(
    entry: &Entry,
    vars: &mut Variables<'_>,
    included: &mut Vec<PathBuf>,
) -> Result<Map<String, Value>> {
    let mut services = Map::new();
    let several = entry.paths.len() > 1;
    let names = entry.paths.iter().map(|path| path.display().to_string());
    for (name, (value, resets)) in read_documents(names)? {
        if value.is_null() && several {
            continue;
        }
        reset_services(&mut services, &resets);
        let value = resolve_file(value, &resets, &name, &entry.project_dir, vars, included)?;
        let Value::Object(mut top) = value else {
            return Err(Error::input(format!(
                "{name}: not a compose file: the top level must be a mapping"
            )));
        };
        let Some(Value::Object(file_services)) = top.remove("services") else {
            continue;
        };
        for (service, body) in file_services {
            let mut body = mapping(body, &name, &service)?;
            absolute_paths(&mut body, &entry.project_dir);
            merge_in(&mut services, service, body);
        }
    }
    Ok(services)
}

/// Import included services. A service the including file defines too is refused unless both
/// definitions are the same, as compose 2.40 (compose-go 2.9) refuses it ("conflicts with
/// imported resource"); newer compose merges them, so hub refuses rather than guess. Each one
/// imported runs, as a local process, in its own project's folder (`project_dir`:
/// [`run_in_project`]).
fn import(
    top: &mut Map<String, Value>,
    imported: Map<String, Value>,
    name: &str,
    main: &Path,
    project_dir: &Path,
) -> Result<()> {
    let services = top
        .entry("services")
        .or_insert_with(|| Value::Object(Map::new()));
    if services.is_null() {
        *services = Value::Object(Map::new());
    }
    let Value::Object(services) = services else {
        // Not a mapping: left for the caller to name.
        return Ok(());
    };
    for (service, body) in imported {
        match services.get(&service) {
            Some(local) if *local != body => {
                return Err(Error::input(format!(
                    "{name}: services.{service} conflicts with the one included from {}; define it in one place (compose refuses this too), or override it in a file given with -f",
                    main.display()
                )));
            }
            _ => {
                let mut body = body;
                if let Value::Object(map) = &mut body {
                    run_in_project(map, project_dir);
                }
                services.insert(service, body);
            }
        }
    }
    Ok(())
}

/// hub's rule for a local process: it runs in the project directory of the file that defines
/// it, and a relative `working_dir` starts there. compose resolves an included file's relative
/// paths against its own project directory, and the including project's directory is no
/// place for that file's `./migrate.sh`, so an imported service gets its folder written out:
/// its relative `working_dir` made absolute, or that folder as its `working_dir`. (A container
/// is unaffected: compose, not this, starts it.) Done after the conflict check, which compares
/// what the files wrote.
fn run_in_project(body: &mut Map<String, Value>, project_dir: &Path) {
    let dir = crate::compose::clean(project_dir);
    match body.get_mut("working_dir") {
        Some(Value::String(path)) if !path.is_empty() => {
            if Path::new(path.as_str()).is_relative() {
                *path = crate::compose::clean(&dir.join(path.as_str()))
                    .display()
                    .to_string();
            }
        }
        // Anything else is left for validation to name.
        Some(_) => {}
        None => {
            body.insert(
                "working_dir".to_owned(),
                Value::String(dir.display().to_string()),
            );
        }
    }
}

/// A later definition of `service` merged over the one in `services`, as a later file's.
fn merge_in(services: &mut Map<String, Value>, service: String, body: Map<String, Value>) {
    match services.get_mut(&service) {
        Some(Value::Object(existing)) => merge_service(existing, body),
        _ => {
            services.insert(service, Value::Object(body));
        }
    }
}

/// A service's definition as a mapping (`null` is an empty one).
fn mapping(body: Value, file: &str, service: &str) -> Result<Map<String, Value>> {
    match body {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        _ => Err(Error::input(format!(
            "{file}: service \"{service}\": its definition must be a mapping"
        ))),
    }
}

/// Make the relative `env_file` paths of a service absolute against `dir`.
fn absolute_paths(body: &mut Map<String, Value>, dir: &Path) {
    let absolute = |path: &mut String| {
        if Path::new(path.as_str()).is_relative() {
            *path = dir.join(path.as_str()).display().to_string();
        }
    };
    match body.get_mut("env_file") {
        Some(Value::String(path)) => absolute(path),
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(path) => absolute(path),
                    Value::Object(entry) => {
                        if let Some(Value::String(path)) = entry.get_mut("path") {
                            absolute(path);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// Apply `extends:` to every service of one file.
fn apply_extends(
    services: &mut Map<String, Value>,
    resets: &[Reset],
    file: &str,
    dir: &Path,
    vars: &mut Variables<'_>,
) -> Result<()> {
    let extending: Vec<String> = services
        .iter()
        .filter(|(_, body)| body.get("extends").is_some())
        .map(|(name, _)| name.clone())
        .collect();
    let mut done: HashMap<String, Value> = HashMap::new();
    for name in extending {
        let merged = extend(
            &name,
            (services, resets),
            file,
            dir,
            vars,
            &mut Vec::new(),
            &mut done,
        )?;
        services.insert(name, merged);
    }
    Ok(())
}

/// One service with its `extends:` chain merged in. `chain` holds the (file, service) pairs
/// being extended, to refuse a cycle; `done` the services of `file` already resolved.
fn extend(
    name: &str,
    (services, resets): (&Map<String, Value>, &[Reset]),
    file: &str,
    dir: &Path,
    vars: &mut Variables<'_>,
    chain: &mut Vec<(String, String)>,
    done: &mut HashMap<String, Value>,
) -> Result<Value> {
    if let Some(value) = done.get(name) {
        return Ok(value.clone());
    }
    let Some(body) = services.get(name) else {
        return Err(Error::input(format!(
            "{file}: service \"{name}\" is not defined"
        )));
    };
    let mut body = mapping(body.clone(), file, name)?;
    let Some(extends) = body.remove("extends") else {
        return Ok(Value::Object(body));
    };
    let place = format!("{file}: service \"{name}\": extends");
    let (base_name, base_file) = match extends {
        Value::String(service) => (service, None),
        Value::Object(mut map) => {
            let Some(Value::String(service)) = map.remove("service") else {
                return Err(Error::input(format!(
                    "{place}: `service` (the name of the service to extend) is required"
                )));
            };
            let other = match map.remove("file") {
                None | Some(Value::Null) => None,
                Some(Value::String(f)) => Some(f),
                Some(other) => {
                    return Err(Error::input(format!(
                        "{place}: `file` must be a path, found {other}"
                    )));
                }
            };
            if let Some(key) = map.keys().next() {
                return Err(Error::input(format!(
                    "{place}: unknown key `{key}`; use service and file"
                )));
            }
            (service, other)
        }
        other => {
            return Err(Error::input(format!(
                "{place}: must be a service name or {{service, file}}, found {other}"
            )));
        }
    };
    let here = (file.to_owned(), name.to_owned());
    if chain.contains(&here) {
        let mut path: Vec<String> = chain.iter().map(|(_, s)| s.clone()).collect();
        path.push(name.to_owned());
        return Err(Error::input(format!(
            "{file}: extends cycle: {}; remove one of these extends",
            path.join(" extends ")
        )));
    }
    chain.push(here);
    let base = match base_file {
        None => {
            if !services.contains_key(&base_name) {
                return Err(Error::input(format!(
                    "{place}: service \"{base_name}\" not found in {file}; define it or fix the name"
                )));
            }
            extend(&base_name, (services, resets), file, dir, vars, chain, done)?
        }
        Some(other) => {
            let path = dir.join(&other);
            let other_name = path.display().to_string();
            // Its documents merged first, as compose reads a file of several.
            let mut other_services: Option<Map<String, Value>> = None;
            let mut other_resets = Vec::new();
            for (_, (mut value, resets)) in read_documents(std::iter::once(other_name.clone()))? {
                vars.interpolate(&mut value)
                    .map_err(|e| Error::input(format!("{other_name}: {e}")))?;
                let merged = other_services.get_or_insert_with(Map::new);
                reset_services(merged, &resets);
                if let Some(Value::Object(services)) = value.get_mut("services").map(Value::take) {
                    for (service, body) in services {
                        let body = mapping(body, &other_name, &service)?;
                        merge_in(merged, service, body);
                    }
                }
                other_resets.extend(resets);
            }
            let Some(other_services) = other_services.filter(|s| !s.is_empty()) else {
                return Err(Error::input(format!(
                    "{place}: {other_name} has no `services:` mapping"
                )));
            };
            if !other_services.contains_key(&base_name) {
                return Err(Error::input(format!(
                    "{place}: service \"{base_name}\" not found in {other_name}; define it or fix the name"
                )));
            }
            let other_dir = path
                .parent()
                .map_or_else(|| dir.to_path_buf(), Path::to_path_buf);
            let mut base = extend(
                &base_name,
                (&other_services, &other_resets),
                &other_name,
                &other_dir,
                vars,
                chain,
                &mut HashMap::new(),
            )?;
            if let Value::Object(map) = &mut base {
                absolute_paths(map, &other_dir);
            }
            base
        }
    };
    chain.pop();
    let Value::Object(mut merged) = base else {
        return Ok(Value::Object(body));
    };
    // `!reset`/`!override` in the extending service clear what the base set there.
    for (service, keys) in service_resets(resets) {
        if service == name && !keys.is_empty() {
            crate::yaml::remove_in(&mut merged, keys);
        }
    }
    merge_service(&mut merged, body);
    let merged = Value::Object(merged);
    done.insert(name.to_owned(), merged.clone());
    Ok(merged)
}
