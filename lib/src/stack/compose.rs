//! Reading compose files (YAML or JSON): `${VAR}` interpolation ([`crate::interpolate`]) and
//! compose's multi-file merge for what hub reads.
//!
//! hub reads the compose file itself so that a stack needs no extra manifest; `include` and
//! `extends` are [`crate::include`]'s. What it does not do is merge the lists hub does not read
//! (`ports`, `volumes`) by their keys: for those, `hub-levels --resolve` hands hub the file
//! compose itself resolved.

use crate::yaml::Reset;
use crate::{Error, Result};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The file names compose looks for, in its order of preference (compose-go's).
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// The override files compose adds beside the default file when no file is named.
pub const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// One service's mapping, with the file its last definition came from.
#[derive(Debug, Clone)]
pub struct ServiceSource {
    /// The file (or `-`) that defined it last.
    pub file: String,
    /// Its mapping.
    pub body: Map<String, Value>,
}

/// The services of one or more compose files, merged.
#[derive(Debug, Clone, Default)]
pub struct ComposeDoc {
    /// The files read, in order.
    pub files: Vec<String>,
    /// The top-level `name:` of the last file that has one.
    pub project: Option<String>,
    /// Services by name.
    pub services: BTreeMap<String, ServiceSource>,
    /// Warnings for stderr: variables read while unset.
    pub warnings: Vec<String>,
    /// The project's `.env` file, which also sets compose's own `COMPOSE_PROFILES` and
    /// `COMPOSE_PROJECT_NAME` when the environment does not.
    pub dotenv: HashMap<String, String>,
    /// The project directory, absolute: relative paths (`env_file`, `working_dir`, local
    /// commands) are relative to it, as compose has them.
    pub project_dir: PathBuf,
    /// `--project-directory` as given (made absolute), for compose calls on containers.
    pub project_directory: Option<String>,
    /// The env files given instead of `.env` (`--env-file`, `COMPOSE_ENV_FILES`), absolute,
    /// for compose calls on containers.
    pub env_files: Vec<String>,
}

impl ComposeDoc {
    /// An empty document for `files`, in the project directory compose would choose.
    fn of(files: &[String], project_directory: Option<&Path>) -> Result<ComposeDoc> {
        let project_dir = project_dir(files, project_directory)?;
        Ok(ComposeDoc {
            files: files.to_vec(),
            project_directory: project_directory.map(|_| project_dir.display().to_string()),
            project_dir,
            ..ComposeDoc::default()
        })
    }
}

/// Parse a document as JSON (if it starts with `{`) or YAML, into a JSON value.
///
/// YAML goes through [`crate::yaml`], which reads it as compose does and refuses alias bombs
/// rather than expanding them. Errors name the file, the line and the column.
pub fn parse_document(text: &str, name: &str) -> Result<Value> {
    parse_with_resets(text, name).map(|(value, _)| value)
}

/// As [`parse_document`], with the document's `!reset`/`!override` nodes ([`crate::yaml`]).
/// A file of several YAML documents is refused by name: the compose files hub loads
/// ([`parse_file`]) merge them; this reads compose's own output, which is one.
pub fn parse_with_resets(text: &str, name: &str) -> Result<(Value, Vec<Reset>)> {
    let mut documents = parse_file(text, name)?;
    if documents.len() > 1 {
        return Err(Error::input(format!(
            "{name}: {} YAML documents (`---`) where hub reads one (compose's own output); give it one",
            documents.len()
        )));
    }
    Ok(documents.pop().unwrap_or((Value::Null, Vec::new())))
}

/// One YAML document of a compose file: its value and its `!reset`/`!override` nodes.
pub(crate) type YamlDocument = (Value, Vec<Reset>);

/// Each document of each file (or stdin, `-`), in order, as compose merges them, with the name
/// of its file.
pub(crate) fn read_documents(
    names: impl Iterator<Item = String>,
) -> Result<Vec<(String, YamlDocument)>> {
    let mut documents = Vec::new();
    for name in names {
        let text = read_source(&name)?;
        let parsed = parse_file(&text, &name)?;
        documents.extend(parsed.into_iter().map(|doc| (name.clone(), doc)));
    }
    Ok(documents)
}

/// A compose file's documents, each with its `!reset`/`!override` nodes: JSON (if it starts
/// with `{`) is one, YAML may hold several (`---`), which compose merges in order as if each
/// were a file of its own, and so do [`load_in`] and `include`. An empty file is one `null`
/// document; an empty document among several is refused, as compose refuses it ("top-level
/// object must be a mapping").
pub(crate) fn parse_file(text: &str, name: &str) -> Result<Vec<YamlDocument>> {
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map(|value| vec![(value, Vec::new())]).map_err(|e| {
            Error::input(format!(
                "{name}: malformed JSON at line {} column {}: {e}; fix the file or check it with `docker compose config`",
                e.line(),
                e.column()
            ))
        });
    }
    let documents = crate::yaml::to_documents(text).map_err(|e| {
        Error::input(format!(
            "{name}: malformed YAML: {e}; fix the file or check it with `docker compose config`"
        ))
    })?;
    if documents.len() > 1
        && let Some((_, line)) = documents.iter().find(|(doc, _)| doc.value.is_null())
    {
        return Err(Error::input(format!(
            "{name}: the YAML document at line {line} is empty; remove its `---` (compose refuses it too: \"top-level object must be a mapping\")"
        )));
    }
    if documents.is_empty() {
        return Ok(vec![(Value::Null, Vec::new())]);
    }
    Ok(documents
        .into_iter()
        .map(|(doc, _)| (doc.value, doc.resets))
        .collect())
}

/// The `!reset`/`!override` nodes under `services.NAME`: the service's name and the keys
/// below it (none: the whole service). What they name is cleared from the earlier definitions
/// before a merge, as compose does.
pub(crate) fn service_resets(resets: &[Reset]) -> impl Iterator<Item = (&str, &[String])> {
    resets
        .iter()
        .filter_map(|reset| match reset.path.as_slice() {
            [top, name, rest @ ..] if top == "services" => Some((name.as_str(), rest)),
            _ => None,
        })
}

/// Clear what `resets` name in the service mappings of `services`.
pub(crate) fn reset_services(services: &mut Map<String, Value>, resets: &[Reset]) {
    for (name, keys) in service_resets(resets) {
        if keys.is_empty() {
            services.remove(name);
        } else if let Some(Value::Object(body)) = services.get_mut(name) {
            crate::yaml::remove_in(body, keys);
        }
    }
}

/// Read a file, or standard input for `-`.
pub(crate) fn read_source(name: &str) -> Result<String> {
    let mut text = String::new();
    if name == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::io("reading the compose file from stdin", &e))?;
    } else {
        text = std::fs::read_to_string(name).map_err(|e| {
            Error::input(format!(
                "{name}: cannot read the compose file: {e}; check the path given to -f"
            ))
        })?;
    }
    Ok(text)
}

/// The files compose reads when none is named with `-f`, as compose finds them:
/// `COMPOSE_FILE` (from `env`, else from the project's env files, [`project_env_files`]; split on
/// `COMPOSE_PATH_SEPARATOR`, `:` by default), else the default file in `dir` or the nearest
/// folder above it with one, followed by the override file beside it if there is one. `None`
/// when there is none.
pub fn default_files(
    dir: &Path,
    env_file_args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Vec<String>>> {
    let dotenv: HashMap<String, String> = match env("COMPOSE_FILE") {
        Some(_) => HashMap::new(),
        // Their warnings are given when the project is loaded.
        None => crate::dotenv::read_chain(
            &project_env_files(env_file_args, dir, env)?,
            env,
            &mut Vec::new(),
        )?
        .into_iter()
        .collect(),
    };
    let var = |key: &str| env(key).or_else(|| dotenv.get(key).cloned());
    if let Some(list) = var("COMPOSE_FILE").filter(|l| !l.trim().is_empty()) {
        let separator = var("COMPOSE_PATH_SEPARATOR").unwrap_or_else(|| ":".into());
        return Ok(Some(
            list.split(separator.as_str())
                .filter(|f| !f.is_empty())
                .map(|f| dir.join(f).display().to_string())
                .collect(),
        ));
    }
    for folder in dir.ancestors() {
        let Some(main) = first_file(folder, &DEFAULT_FILES) else {
            continue;
        };
        let mut files = vec![main];
        files.extend(first_file(folder, &OVERRIDE_FILES));
        return Ok(Some(files));
    }
    Ok(None)
}

/// The env files that set the project's variables, as compose picks them: the `--env-file`s
/// given (`args`), else those `COMPOSE_ENV_FILES` lists (comma-separated), each required and
/// relative to the current folder; else the project directory's `.env`, if there is one.
/// Several are read in order, a later one winning.
pub fn project_env_files(
    args: &[String],
    project_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(PathBuf, bool)>> {
    let listed: Vec<String> = if args.is_empty() {
        env("COMPOSE_ENV_FILES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect()
    } else {
        args.to_vec()
    };
    if listed.is_empty() {
        return Ok(vec![(project_dir.join(".env"), false)]);
    }
    listed
        .iter()
        .map(|file| {
            std::path::absolute(file)
                .map(|path| (clean(&path), true))
                .map_err(|e| Error::io(format!("finding the env file {file}"), &e))
        })
        .collect()
}

fn first_file(dir: &Path, names: &[&str]) -> Option<String> {
    names
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .map(|path| path.display().to_string())
}

/// Load, interpolate and merge compose files, as compose does: `${VAR}` from `env`, then from
/// the `.env` file in the project folder (the first file's, or the current one for stdin);
/// then a later file overrides an earlier one per service ([`merge_service`]).
pub fn load(files: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<ComposeDoc> {
    load_in(files, None, &[], env)
}

/// As [`load`], in compose's `--project-directory` when one is given (the folder `.env` is
/// read from and local services run in), and with compose's `--env-file`s (`env_file_args`)
/// read instead of `.env` when any is given ([`project_env_files`]).
pub fn load_in(
    files: &[String],
    project_directory: Option<&Path>,
    env_file_args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ComposeDoc> {
    let mut doc = ComposeDoc::of(files, project_directory)?;
    let project_dir = doc.project_dir.clone();
    let chosen = project_env_files(env_file_args, &project_dir, env)?;
    let mut warnings = Vec::new();
    let dotenv: HashMap<String, String> = crate::dotenv::read_chain(&chosen, env, &mut warnings)
        .map_err(|e| Error::input(format!("{e}; fix the env file or remove it")))?
        .into_iter()
        .collect();
    doc.dotenv = dotenv.clone();
    // Given ones go to compose too, so that a container is interpolated as its plan was.
    doc.env_files = chosen
        .iter()
        .filter(|(_, required)| *required)
        .map(|(path, _)| path.display().to_string())
        .collect();
    let mut variables = crate::interpolate::Variables::new(env, dotenv);
    // `include` and `extends` paths start from the project folder, made absolute so that the
    // paths they bring in (env_file) stay right from any folder.
    let cwd = std::env::current_dir().map_err(|e| Error::io("finding the current folder", &e))?;
    let base = cwd.join(&project_dir);
    for (name, (value, resets)) in read_documents(files.iter().cloned())? {
        let name = name.as_str();
        // An empty or comment-only file overrides nothing, as compose reads it; alone it
        // is no compose file at all.
        if value.is_null() && files.len() > 1 {
            continue;
        }
        for (service, keys) in service_resets(&resets) {
            if keys.is_empty() {
                doc.services.remove(service);
            } else if let Some(source) = doc.services.get_mut(service) {
                crate::yaml::remove_in(&mut source.body, keys);
            }
        }
        // The file itself heads its include chain, so including it again is a cycle.
        let mut chain: Vec<std::path::PathBuf> =
            (name != "-").then(|| cwd.join(name)).into_iter().collect();
        let value =
            crate::include::resolve_file(value, &resets, name, &base, &mut variables, &mut chain)?;
        merge_value(&mut doc, value, name)?;
    }
    if doc.services.is_empty() {
        return Err(Error::input(format!(
            "{}: no services: a compose file needs a top-level `services:` mapping",
            files.join(", ")
        )));
    }
    warnings.append(&mut variables.env_file_warnings);
    doc.warnings = warnings;
    doc.warnings.extend(variables.unset.iter().map(|var| {
            format!(
            "the variable {var} is not set: it reads as an empty string (set it, write ${{{var}:-default}}, or write $${var} to leave it to the command's shell)"
        )
    }));
    Ok(doc)
}

/// A document compose resolved (`docker compose config` output, named `name`), for a plan of
/// `files` in `project_directory` (as for [`load_in`]): no `.env`, no include or extends left;
/// its `$$` read back as `$`.
pub fn load_resolved(
    text: &str,
    name: &str,
    files: &[String],
    project_directory: Option<&Path>,
) -> Result<ComposeDoc> {
    let mut doc = ComposeDoc::of(files, project_directory)?;
    let mut value = parse_document(text, name)?;
    crate::interpolate::Variables::new(&|_| None, HashMap::new())
        .interpolate(&mut value)
        .map_err(|e| Error::input(format!("{name}: {e}")))?;
    merge_value(&mut doc, value, name)?;
    Ok(doc)
}

/// The project directory, absolute, as compose chooses it: `--project-directory`, else the
/// first file's folder, else (stdin only) the current one.
fn project_dir(files: &[String], explicit: Option<&Path>) -> Result<PathBuf> {
    let dir = match explicit {
        Some(dir) if !dir.is_dir() => {
            return Err(Error::input(format!(
                "--project-directory {}: not a folder; give the folder the stack's paths are relative to",
                dir.display()
            )));
        }
        Some(dir) => dir.to_path_buf(),
        None => files
            .iter()
            .find(|f| *f != "-")
            .and_then(|f| Path::new(f).parent())
            .map_or_else(PathBuf::new, Path::to_path_buf),
    };
    // `absolute` of an empty path fails: the current folder is "".
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    std::path::absolute(&dir)
        .map(|dir| clean(&dir))
        .map_err(|e| Error::io(format!("finding the folder {}", dir.display()), &e))
}

/// `path` with `.` and `..` folded away without asking the file system, as compose's paths
/// are (Go's `filepath.Clean`): `/srv/app/../stack` is `/srv/stack`.
pub fn clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // Above the root is the root.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(part),
            },
            other => out.push(other),
        }
    }
    out
}

/// Merge a later file's definition of a service into the earlier one, with compose's rules for
/// what hub reads: `depends_on`, `labels` and `environment` merge in their mapping form
/// whichever form each file wrote (compose merges "the expanded form"), `profiles` append,
/// `env_file` lists append (a path named again replaced in place), and the rest follows
/// [`merge_mapping`]. Other lists (`ports`, `volumes`; hub does not read them) are replaced.
pub(crate) fn merge_service(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        let value = match (key.as_str(), base.remove(&key)) {
            (_, None) => value,
            ("env_file", Some(earlier)) => env_files(earlier, value),
            ("depends_on" | "labels" | "environment", Some(earlier)) => {
                merged(expanded(&key, earlier), expanded(&key, value))
            }
            ("profiles", Some(Value::Array(mut earlier))) => match value {
                Value::Array(later) => {
                    for profile in later {
                        if !earlier.contains(&profile) {
                            earlier.push(profile);
                        }
                    }
                    Value::Array(earlier)
                }
                later => later,
            },
            (_, Some(earlier)) => merged(earlier, value),
        };
        base.insert(key, value);
    }
}

/// `env_file` lists appended, a path named again keeping its first place and its last entry
/// (compose's `envFileIndexer`).
fn env_files(earlier: Value, later: Value) -> Value {
    let as_list = |value: Value| match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    let path = |item: &Value| match item {
        Value::Object(entry) => entry.get("path").cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    let mut out: Vec<Value> = as_list(earlier);
    for item in as_list(later) {
        match out.iter().position(|e| path(e) == path(&item)) {
            Some(at) => out[at] = item,
            None => out.push(item),
        }
    }
    Value::Array(out)
}

/// The mapping form of a list-form `depends_on` (`[a]` → `{a: {condition: service_started}}`,
/// as compose expands it) or `labels` (`["k=v"]` → `{k: v}`). Anything else is returned as is,
/// for validation to name.
fn expanded(key: &str, value: Value) -> Value {
    let Value::Array(items) = value else {
        return value;
    };
    if !items.iter().all(Value::is_string) {
        return Value::Array(items);
    }
    let entries = items.into_iter().filter_map(|item| match item {
        Value::String(text) => Some(text),
        _ => None,
    });
    Value::Object(if key == "depends_on" {
        entries
            .map(|name| (name, serde_json::json!({"condition": "service_started"})))
            .collect()
    } else if key == "environment" {
        // `NAME` alone takes its value from the environment: null in the mapping form.
        entries
            .map(|text| match text.split_once('=') {
                Some((k, v)) => (k.to_owned(), Value::String(v.to_owned())),
                None => (text, Value::Null),
            })
            .collect()
    } else {
        entries
            .map(|text| match text.split_once('=') {
                Some((k, v)) => (k.to_owned(), Value::String(v.to_owned())),
                None => (text, Value::String(String::new())),
            })
            .collect()
    })
}

/// An earlier value with a later one merged in: two mappings merge ([`merge_mapping`]),
/// otherwise the later value wins.
fn merged(earlier: Value, later: Value) -> Value {
    match (earlier, later) {
        (Value::Object(mut earlier), Value::Object(later)) => {
            merge_mapping(&mut earlier, later);
            Value::Object(earlier)
        }
        (_, later) => later,
    }
}

/// Merge `overlay` into `base`: where both hold a mapping, merge it; else the overlay wins.
/// This is compose's rule for mappings.
fn merge_mapping(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(inner)), Value::Object(more)) => merge_mapping(inner, more),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Merge one document's text into `doc`.
pub fn merge_text(doc: &mut ComposeDoc, text: &str, name: &str) -> Result<()> {
    merge_value(doc, parse_document(text, name)?, name)
}

/// Merge one parsed (and interpolated) document into `doc`.
fn merge_value(doc: &mut ComposeDoc, value: Value, name: &str) -> Result<()> {
    let Value::Object(mut top) = value else {
        return Err(Error::input(format!(
            "{name}: not a compose file: the top level must be a mapping with a `services:` key"
        )));
    };
    if let Some(project) = top.get("name").and_then(Value::as_str) {
        doc.project = Some(project.to_owned());
    }
    let services = match top.remove("services") {
        Some(Value::Object(services)) => services,
        // One file may hold no services (an override of volumes); [`load`] checks that some
        // file had them.
        Some(Value::Null) | None => Map::new(),
        Some(_) => {
            return Err(Error::input(format!(
                "{name}: `services` must be a mapping of service names to their definitions"
            )));
        }
    };
    for (service, body) in services {
        let body = match body {
            Value::Object(body) => body,
            Value::Null => Map::new(),
            _ => {
                return Err(Error::input(format!(
                    "{name}: service \"{service}\": its definition must be a mapping"
                )));
            }
        };
        match doc.services.get_mut(&service) {
            Some(existing) => {
                merge_service(&mut existing.body, body);
                existing.file = name.to_owned();
                check_depends_on(&existing.body, name, &service)?;
            }
            None => {
                check_depends_on(&body, name, &service)?;
                doc.services.insert(
                    service,
                    ServiceSource {
                        file: name.to_owned(),
                        body,
                    },
                );
            }
        }
    }
    Ok(())
}

/// compose validates the project as merged so far after each file: an entry of `depends_on`'s
/// long form must be a mapping with a `condition` (a later file cannot complete an earlier
/// one's, but may complete its own on top of an earlier one).
fn check_depends_on(body: &Map<String, Value>, file: &str, service: &str) -> Result<()> {
    let Some(Value::Object(deps)) = body.get("depends_on") else {
        return Ok(());
    };
    for (dep, spec) in deps {
        let problem = match spec {
            Value::Object(spec) if spec.contains_key("condition") => continue,
            Value::Object(_) => "`condition` is missing; write condition: service_started (or service_healthy, service_completed_successfully), as compose requires".to_owned(),
            other => format!("must be a mapping (condition, required, restart), found {other}"),
        };
        return Err(Error::input(format!(
            "{file}: service \"{service}\": depends_on.{dep}: {problem}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_files_override_per_key() {
        let mut doc = ComposeDoc::default();
        merge_text(
            &mut doc,
            "services:\n  a:\n    image: x\n    labels: [k=v]\n",
            "one.yaml",
        )
        .unwrap();
        merge_text(
            &mut doc,
            "services:\n  a:\n    image: y\n  b: {}\n",
            "two.yaml",
        )
        .unwrap();
        let a = &doc.services["a"];
        assert_eq!(a.body["image"], "y");
        assert_eq!(
            a.body["labels"],
            serde_json::json!(["k=v"]),
            "kept when not overridden"
        );
        assert!(a.body.contains_key("labels"));
        assert_eq!(a.file, "two.yaml");
        assert!(doc.services.contains_key("b"));
    }

    #[test]
    fn mappings_merge_at_every_depth_and_profiles_append() {
        let mut doc = ComposeDoc::default();
        let base = "services:\n  a:\n    x-hub: { run: x, health: { tcp: \"h:1\", interval: 1s } }\n    depends_on: { b: { condition: service_healthy } }\n    profiles: [one]\n";
        let overlay = "services:\n  a:\n    x-hub: { timeout: 5s, health: { interval: 2s } }\n    depends_on: { b: { required: false }, c: { condition: service_started } }\n    profiles: [two]\n";
        merge_text(&mut doc, base, "base.yaml").unwrap();
        merge_text(&mut doc, overlay, "override.yaml").unwrap();
        let a = &doc.services["a"].body;
        assert_eq!(
            a["x-hub"],
            serde_json::json!({"run": "x", "timeout": "5s", "health": {"tcp": "h:1", "interval": "2s"}})
        );
        assert_eq!(
            a["depends_on"],
            serde_json::json!({"b": {"condition": "service_healthy", "required": false}, "c": {"condition": "service_started"}})
        );
        assert_eq!(a["profiles"], serde_json::json!(["one", "two"]));
    }

    #[test]
    fn depends_on_and_labels_merge_whichever_form_each_file_wrote() {
        let mut doc = ComposeDoc::default();
        let base = "services:\n  a:\n    depends_on: [b]\n    labels: [hub.class=core, team=db]\n    x-hub: { run: [sleep, \"1\"] }\n";
        let overlay = "services:\n  a:\n    depends_on: { c: { condition: service_completed_successfully } }\n    labels: { hub.class: stretch }\n    x-hub: { run: [sleep, \"2\"] }\n";
        merge_text(&mut doc, base, "base.yaml").unwrap();
        merge_text(&mut doc, overlay, "override.yaml").unwrap();
        let a = &doc.services["a"].body;
        assert_eq!(
            a["depends_on"],
            serde_json::json!({
                "b": {"condition": "service_started"},
                "c": {"condition": "service_completed_successfully"}
            })
        );
        assert_eq!(
            a["labels"],
            serde_json::json!({"hub.class": "stretch", "team": "db"})
        );
        // A command is replaced, never appended.
        assert_eq!(a["x-hub"]["run"], serde_json::json!(["sleep", "2"]));
    }

    #[test]
    fn paths_are_cleaned_as_compose_cleans_them() {
        assert_eq!(
            clean(Path::new("/srv/app/../stack/./data")),
            Path::new("/srv/stack/data")
        );
        assert_eq!(clean(Path::new("/..")), Path::new("/"));
        assert_eq!(clean(Path::new("../a/../../b")), Path::new("../../b"));
    }

    #[test]
    fn malformed_yaml_names_line_and_column() {
        let err = parse_document("services:\n  a: [1, 2\n", "bad.yaml").unwrap_err();
        assert!(
            err.message().starts_with("bad.yaml: malformed YAML:"),
            "{err}"
        );
        assert!(err.message().contains("line 3, column 1"), "{err}");
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let err = parse_document("{\"services\": {\n  \"a\": }\n}", "bad.json").unwrap_err();
        assert!(err.message().contains("line 2 column"), "{err}");
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for pair in names.windows(2) {
            let refs = vec![format!("*{}", pair[0]); 9].join(",");
            text.push_str(&format!("{}: &{} [{refs}]\n", pair[1], pair[1]));
        }
        assert!(parse_document(&text, "bomb.yaml").is_err());
    }
}
