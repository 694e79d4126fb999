//! `${VAR}` interpolation, as compose does it, so a compose file means to hub what it means to
//! compose: the values come from the environment, then from the project's `.env` file (read by
//! [`crate::dotenv`]).
//!
//! Syntax (compose's): `$VAR` and `${VAR}`; `${VAR:-default}` (unset or empty) and
//! `${VAR-default}` (unset); `${VAR:?message}` and `${VAR?message}` (an error); `${VAR:+other}`
//! and `${VAR+other}` (the other text when set); `$$` for a literal `$`. A default may itself
//! hold `${…}`. Every string value of the file is interpolated (keys are not), `x-hub`
//! included: write `$$` where a shell command wants a `$`.

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// Where variables come from: the environment first, then the `.env` file.
pub struct Variables<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    dotenv: HashMap<String, String>,
    /// Names read while unset (compose warns about each, once).
    pub unset: BTreeSet<String>,
    /// Warnings from the env files read on the way (an included project's), for stderr.
    pub env_file_warnings: Vec<String>,
}

impl<'a> Variables<'a> {
    /// Variables from `env`, then from `dotenv`.
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>, dotenv: HashMap<String, String>) -> Self {
        Variables {
            env,
            dotenv,
            unset: BTreeSet::new(),
            env_file_warnings: Vec::new(),
        }
    }

    /// A variable's value: the environment's, else the `.env` file's.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.env)(name).or_else(|| self.dotenv.get(name).cloned())
    }

    /// Interpolate every string in `value`. The error says what is wrong with which text.
    pub fn interpolate(&mut self, value: &mut Value) -> Result<(), String> {
        match value {
            Value::String(text) if text.contains('$') => {
                *text = self.substitute(text)?;
                Ok(())
            }
            Value::Array(items) => items.iter_mut().try_for_each(|item| self.interpolate(item)),
            Value::Object(map) => map.values_mut().try_for_each(|item| self.interpolate(item)),
            _ => Ok(()),
        }
    }

    /// One string, interpolated.
    pub fn substitute(&mut self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(inner) = after.strip_prefix('{') {
                let close = matching_brace(inner).ok_or_else(|| invalid(text))?;
                out.push_str(&self.braced(&inner[..close], text)?);
                rest = &inner[close + 1..];
            } else {
                // compose leaves a `$` that starts no name as it is (`$1`, `$(cmd)`, `a $`).
                let len = name_len(after);
                if len == 0 {
                    out.push('$');
                } else {
                    out.push_str(&self.value_of(&after[..len]));
                }
                rest = &after[len..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// A variable's value, or empty (and noted) when unset.
    fn value_of(&mut self, name: &str) -> String {
        self.get(name).unwrap_or_else(|| {
            self.unset.insert(name.to_owned());
            String::new()
        })
    }

    /// What `${inner}` stands for.
    fn braced(&mut self, inner: &str, whole: &str) -> Result<String, String> {
        let len = name_len(inner);
        if len == 0 {
            return Err(invalid(whole));
        }
        let (name, op) = inner.split_at(len);
        if op.is_empty() {
            return Ok(self.value_of(name));
        }
        let value = self.get(name);
        // With a colon, empty counts as unset.
        let (colon, op) = match op.strip_prefix(':') {
            Some(op) => (true, op),
            None => (false, op),
        };
        let present = value.as_deref().is_some_and(|v| !(colon && v.is_empty()));
        let mut chars = op.chars();
        let (kind, arg) = (chars.next(), chars.as_str());
        match kind {
            Some('-') if present => Ok(value.unwrap_or_default()),
            Some('-') => self.substitute(arg),
            Some('+') if present => self.substitute(arg),
            Some('+') => Ok(String::new()),
            Some('?') if present => Ok(value.unwrap_or_default()),
            Some('?') => {
                let why = if arg.is_empty() {
                    "it is required".to_owned()
                } else {
                    self.substitute(arg)?
                };
                Err(format!("variable {name} is not set: {why}"))
            }
            _ => Err(invalid(whole)),
        }
    }
}

/// The length of the variable name at the start of `text` (`[A-Za-z_][A-Za-z0-9_]*`).
fn name_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    if !bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    {
        return 0;
    }
    bytes
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count()
}

/// Where the `}` that closes a `${` opened just before `text` is, counting nested `${…}`.
fn matching_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn invalid(text: &str) -> String {
    format!("invalid interpolation in `{text}`; write $$ for a literal $")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(key: &str) -> Option<String> {
        match key {
            "PORT" => Some("5432".into()),
            "EMPTY" => Some(String::new()),
            "HOST" => Some("db".into()),
            _ => None,
        }
    }

    fn sub(text: &str) -> Result<String, String> {
        let dotenv = HashMap::from([("FROM_FILE".to_owned(), "file".to_owned())]);
        Variables::new(&env, dotenv).substitute(text)
    }

    #[test]
    fn names_braces_and_escapes() {
        assert_eq!(sub("$HOST:${PORT}").unwrap(), "db:5432");
        assert_eq!(sub("cost $$5, pid $$$$").unwrap(), "cost $5, pid $$");
        assert_eq!(sub("${FROM_FILE}").unwrap(), "file");
        assert_eq!(sub("no dollar").unwrap(), "no dollar");
    }

    #[test]
    fn defaults_alternatives_and_required() {
        assert_eq!(sub("${NOPE:-7}").unwrap(), "7");
        assert_eq!(sub("${EMPTY:-7}").unwrap(), "7");
        assert_eq!(sub("${EMPTY-7}").unwrap(), "");
        assert_eq!(sub("${NOPE-${HOST}:${PORT}}").unwrap(), "db:5432");
        assert_eq!(sub("${PORT:+set}|${NOPE:+set}").unwrap(), "set|");
        assert_eq!(sub("${PORT:?}").unwrap(), "5432");
        assert_eq!(
            sub("${NOPE:?set NOPE to the port}").unwrap_err(),
            "variable NOPE is not set: set NOPE to the port"
        );
        assert!(sub("${EMPTY:?}").is_err());
        assert_eq!(sub("${EMPTY?}").unwrap(), "");
    }

    #[test]
    fn unset_variables_are_empty_and_noted() {
        let mut vars = Variables::new(&env, HashMap::new());
        let mut value = json!({"a": "x${MISSING}y", "b": ["$OTHER", 3], "$KEY": "k"});
        vars.interpolate(&mut value).unwrap();
        assert_eq!(value, json!({"a": "xy", "b": ["", 3], "$KEY": "k"}));
        assert_eq!(
            vars.unset.iter().map(String::as_str).collect::<Vec<_>>(),
            ["MISSING", "OTHER"]
        );
    }

    #[test]
    fn invalid_templates_are_errors() {
        for text in ["${", "${}", "${PORT", "${PORT!x}"] {
            assert!(sub(text).is_err(), "{text}");
        }
        // As compose: a `$` that starts no name is kept.
        for text in ["$", "a $1", "$(cat x)", "x $ y"] {
            assert_eq!(sub(text).unwrap(), text);
        }
    }
}
