//! `.env` files read exactly as compose reads them (compose-go's `dotenv` package), because a
//! `.env` value that means one thing to compose and another to hub silently changes the plan:
//! `COMPOSE_PROFILES=${DB:-postgres}` picks which services exist at all.
//!
//! The rules, each checked against `docker compose config` v2.40.3 (see the tests):
//! - a statement is `KEY=VALUE`, `KEY: VALUE`, or a bare `KEY` (its value taken from the
//!   environment when set there, else no entry); `export ` before the key is dropped; keys are
//!   letters, digits, `_ . - [ ]`; a key with a space inside is an error;
//! - `#` at the start of a statement begins a comment up to the end of the line;
//! - an unquoted value ends at the end of the line or at ` #` (an inline comment), trailing
//!   spaces trimmed, and is interpolated;
//! - a single-quoted value is literal (only `\'` is unescaped) and may span lines;
//! - a double-quoted value may span lines; `\n \t \r \a \b \f \v \" \\ \$` and `\0NNN` (octal)
//!   are unescaped, then it is interpolated; `\$` stays a literal `$`;
//! - interpolation (`${VAR:-default}` and the rest of [`crate::interpolate`]) looks a name up
//!   in the environment first, then in the entries above it: those of the same file, over the
//!   starting entries a chain of files brings ([`parse_onto`]: compose reads its env files into
//!   one map, so a `${VAR}` above this file's own `VAR=` sees an earlier file's `VAR`); a name
//!   found nowhere reads as empty and is noted, for compose's "not set" warning;
//! - text after a closing quote on the same line is a new statement (so `" # note"` is a
//!   comment).

use crate::interpolate::Variables;
use crate::{Error, Result};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// What a chain of env files gives: the entries in order (a key set again keeps its first place
/// and takes its last value), and the names read while unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The entries, in file order.
    pub entries: Vec<(String, String)>,
    /// Names a `$NAME`/`${NAME}` read while set nowhere (they read as empty).
    pub unset: BTreeSet<String>,
}

/// compose's warning for a variable an env file reads while it is set nowhere.
pub fn unset_warning(file: &Path, name: &str) -> String {
    format!(
        "{}: the variable {name} is not set: it reads as an empty string (set it, or write ${{{name}:-default}})",
        crate::compose::clean(file).display()
    )
}

/// Read the env files `paths` as one chain, as compose reads `--env-file`s and a service's
/// `env_file`s: each file parsed onto the entries of the ones before ([`parse_onto`]), a
/// missing one skipped when `required` says it may be. Unset names are warned about into
/// `warnings`, one line per file and name.
pub fn read_chain(
    paths: &[(std::path::PathBuf, bool)],
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Vec<(String, String)>> {
    read_chain_onto(paths, lookup, Vec::new(), warnings)
}

/// As [`read_chain`], onto entries the chain starts with (a service's `environment`, which
/// compose's map holds before its first env file).
pub fn read_chain_onto(
    paths: &[(std::path::PathBuf, bool)],
    lookup: &dyn Fn(&str) -> Option<String>,
    mut entries: Vec<(String, String)>,
    warnings: &mut Vec<String>,
) -> Result<Vec<(String, String)>> {
    for (path, required) in paths {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::input(format!(
                    "{}: no such env file; create it or fix the path",
                    path.display()
                )));
            }
            Err(e) => {
                return Err(Error::input(format!(
                    "{}: cannot read the env file: {e}",
                    path.display()
                )));
            }
        };
        let parsed = parse_onto(&text, lookup, entries)
            .map_err(|e| Error::input(format!("{}: {}", path.display(), e.message())))?;
        for name in &parsed.unset {
            let warning = unset_warning(path, name);
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
        entries = parsed.entries;
    }
    Ok(entries)
}

/// Parse the text of a `.env` file (see the module's rules). Errors name the line.
pub fn parse(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<(String, String)>> {
    parse_onto(text, lookup, Vec::new()).map(|parsed| parsed.entries)
}

/// As [`parse`], onto the entries earlier files of a chain gave (`start`): they count as the
/// entries above this file's first line, and come back with this file's set over them.
pub fn parse_onto(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    start: Vec<(String, String)>,
) -> Result<Parsed> {
    let index = start
        .iter()
        .enumerate()
        .map(|(at, (key, _))| (key.clone(), at))
        .collect();
    let mut parser = Parser {
        line: 1,
        entries: start,
        index,
        unset: BTreeSet::new(),
    };
    parser.run(text.strip_prefix('\u{feff}').unwrap_or(text), lookup)?;
    Ok(Parsed {
        entries: parser.entries,
        unset: parser.unset,
    })
}

struct Parser {
    line: usize,
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
    unset: BTreeSet<String>,
}

/// Blanks inside a line (compose's `isSpace`: not the line break).
fn is_blank(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

impl Parser {
    fn run(&mut self, mut rest: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<()> {
        loop {
            rest = self.statement_start(rest);
            if rest.is_empty() {
                return Ok(());
            }
            let (key, after, inherited) = self.key(rest)?;
            if inherited {
                if let Some(value) = lookup(&key) {
                    self.set(key, value);
                }
                rest = after;
                continue;
            }
            let (value, after) = self.value(after, lookup)?;
            self.set(key, value);
            rest = after;
        }
    }

    fn set(&mut self, key: String, value: String) {
        match self.index.get(&key) {
            Some(&at) => self.entries[at].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }

    /// The text from the next statement on: blanks, empty lines and comment lines skipped.
    fn statement_start<'t>(&mut self, mut text: &'t str) -> &'t str {
        loop {
            let Some(at) = text.find(|c: char| !c.is_whitespace()) else {
                return "";
            };
            self.line += text[..at].matches('\n').count();
            text = &text[at..];
            if !text.starts_with('#') {
                return text;
            }
            match text.find('\n') {
                Some(end) => text = &text[end..],
                None => return "",
            }
        }
    }

    /// The key at the start of `text`, the text after its `=`/`:` (blanks trimmed), and whether
    /// it stood alone on its line (its value then comes from the environment).
    fn key<'t>(&mut self, mut text: &'t str) -> Result<(String, &'t str, bool)> {
        if let Some(tail) = text.strip_prefix("export")
            && tail.starts_with(|c: char| c.is_whitespace())
        {
            text = tail.trim_start_matches(is_blank);
        }
        let mut end = None;
        for (i, c) in text.char_indices() {
            if is_blank(c) {
                continue;
            }
            match c {
                '=' | ':' | '\n' => {
                    end = Some((i, c == '\n'));
                    break;
                }
                '_' | '.' | '-' | '[' | ']' => {}
                c if c.is_alphanumeric() => {}
                c => {
                    let first = text.lines().next().unwrap_or_default();
                    return Err(Error::input(format!(
                        "line {}: unexpected character {c:?} in variable name {first:?}; a line reads KEY=VALUE",
                        self.line
                    )));
                }
            }
        }
        // A last line with a bare key and no line break stands alone too.
        let (at, inherited) = end.unwrap_or((text.len(), true));
        let key = text[..at].trim_end();
        if key.contains(|c: char| c.is_whitespace()) {
            return Err(Error::input(format!(
                "line {}: key cannot contain a space: {key:?}",
                self.line
            )));
        }
        if inherited {
            self.line += 1;
        }
        let after = text.get(at + 1..).unwrap_or_default();
        Ok((
            key.to_owned(),
            after.trim_start_matches(is_blank),
            inherited,
        ))
    }

    /// The value at the start of `text` and the text after it.
    fn value<'t>(
        &mut self,
        text: &'t str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(String, &'t str)> {
        let quote = match text.chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => {
                let (line, rest) = text.split_once('\n').unwrap_or((text, ""));
                self.line += 1;
                let value = line.split_once(" #").map_or(line, |(v, _)| v).trim_end();
                return Ok((self.interpolate(value, lookup)?, rest));
            }
        };
        let mut chars = String::new();
        let mut escaped = false;
        for (i, c) in text.char_indices().skip(1) {
            if c == '\n' {
                self.line += 1;
            }
            if c != quote {
                if !escaped && c == '\\' {
                    escaped = true;
                    continue;
                }
                if escaped {
                    escaped = false;
                    chars.push('\\');
                }
                chars.push(c);
                continue;
            }
            if escaped {
                escaped = false;
                chars.push(c);
                continue;
            }
            let rest = &text[i + 1..];
            if quote == '\'' {
                return Ok((chars, rest));
            }
            return Ok((self.interpolate(&unescape(&chars), lookup)?, rest));
        }
        let first = text.lines().next().unwrap_or_default();
        Err(Error::input(format!(
            "line {}: unterminated quoted value {first}; close the quote",
            self.line
        )))
    }

    /// `${…}` in `value`: the environment first, then the entries above.
    fn interpolate(
        &mut self,
        value: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String> {
        if !value.contains('$') {
            return Ok(value.to_owned());
        }
        let (entries, index) = (&self.entries, &self.index);
        let earlier =
            |name: &str| lookup(name).or_else(|| index.get(name).map(|&at| entries[at].1.clone()));
        let mut variables = Variables::new(&earlier, HashMap::new());
        let out = variables
            .substitute(value)
            .map_err(|e| Error::input(format!("line {}: {e}", self.line)))?;
        self.unset.append(&mut variables.unset);
        Ok(out)
    }
}

/// Double-quoted escapes, as compose's `expandEscapes`: `\$` becomes `$$` (a literal `$` to
/// the interpolation that follows); unknown escapes stay as written.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let mut chars = after.chars();
        let (replacement, used): (Option<String>, usize) = match chars.next() {
            Some('a') => (Some("\u{7}".into()), 1),
            Some('b') => (Some("\u{8}".into()), 1),
            Some('f') => (Some("\u{c}".into()), 1),
            Some('n') => (Some("\n".into()), 1),
            Some('r') => (Some("\r".into()), 1),
            Some('t') => (Some("\t".into()), 1),
            Some('v') => (Some("\u{b}".into()), 1),
            Some('"') => (Some("\"".into()), 1),
            Some('\\') => (Some("\\".into()), 1),
            Some('$') => (Some("$$".into()), 1),
            Some('0') => {
                // `\0` and up to three digits; Go reads exactly three octal digits or nothing.
                let digits = after[1..]
                    .bytes()
                    .take(3)
                    .take_while(u8::is_ascii_digit)
                    .count();
                let octal = &after[1..1 + digits];
                let decoded = (digits == 3)
                    .then(|| u8::from_str_radix(octal, 8).ok())
                    .flatten()
                    .map(|b| char::from(b).to_string());
                match decoded {
                    Some(c) => (Some(c), 1 + digits),
                    None => (None, 1 + digits),
                }
            }
            _ => (None, 0),
        };
        match replacement {
            Some(text) => out.push_str(&text),
            None => {
                out.push('\\');
                out.push_str(&after[..used]);
            }
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    //! Every expectation here was observed once from `docker compose config` v2.40.3 on the
    //! same `.env` text (the compose file echoing each variable into `environment:`).
    use super::*;

    fn env(key: &str) -> Option<String> {
        match key {
            "FROM_ENV" => Some("env".into()),
            "A" => Some("2".into()),
            "INHERITED" => Some("inh".into()),
            _ => None,
        }
    }

    fn parsed(text: &str) -> Vec<(String, String)> {
        parse(text, &env).unwrap()
    }

    fn get(text: &str, key: &str) -> String {
        parsed(text)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .unwrap_or_else(|| format!("<{key} unset>"))
    }

    #[test]
    fn quotes_and_inline_comments() {
        assert_eq!(get("Q=\"hello world\" # c\n", "Q"), "hello world");
        assert_eq!(get("U=un quoted # comment\n", "U"), "un quoted");
        assert_eq!(get("W=a#b\n", "W"), "a#b");
        assert_eq!(get("S='$B lit'\n", "S"), "$B lit");
        assert_eq!(get("S='it\\'s'\n", "S"), "it's");
        assert_eq!(get("E=\n", "E"), "");
        assert_eq!(get("T=  padded   \n", "T"), "padded");
    }

    #[test]
    fn double_quote_escapes() {
        assert_eq!(
            get("D=\"tab\\there \\\"q\\\" $A\"\n", "D"),
            "tab\there \"q\" 2"
        );
        assert_eq!(get("D=\"a\\nb\\\\c\"\n", "D"), "a\nb\\c");
        assert_eq!(get("D=\"cost \\$5\"\n", "D"), "cost $5");
        assert_eq!(get("D=\"\\q\"\n", "D"), "\\q");
        assert_eq!(get("D=\"\\0101\"\n", "D"), "A");
    }

    #[test]
    fn multi_line_values() {
        let text = "M=\"line1\nline2\"\nN='one\ntwo'\nAFTER=x\n";
        assert_eq!(get(text, "M"), "line1\nline2");
        assert_eq!(get(text, "N"), "one\ntwo");
        assert_eq!(get(text, "AFTER"), "x");
    }

    #[test]
    fn export_yaml_style_and_bare_keys() {
        assert_eq!(get("export E=ex\n", "E"), "ex");
        assert_eq!(get("export B = two words # note\n", "B"), "two words");
        assert_eq!(get("K: yamlstyle\n", "K"), "yamlstyle");
        assert_eq!(get("INHERITED\nX=1\n", "INHERITED"), "inh");
        assert_eq!(get("NOT_IN_ENV\nX=1\n", "NOT_IN_ENV"), "<NOT_IN_ENV unset>");
        assert_eq!(get("# only\n\n  # comments\n", "X"), "<X unset>");
    }

    #[test]
    fn interpolation_reads_the_environment_then_earlier_entries() {
        let text = "A=1\nB=${A}-x\nBASE=demo\nNAME=${BASE}-app\nP=${VECTOR:-weaviate},${DB:-postgresql}\nN=${NOPE:-def}\nL=pa$1word\n";
        // The environment's A=2 wins over the file's A=1 inside the file too.
        assert_eq!(get(text, "B"), "2-x");
        assert_eq!(get(text, "A"), "1");
        assert_eq!(get(text, "NAME"), "demo-app");
        assert_eq!(get(text, "P"), "weaviate,postgresql");
        assert_eq!(get(text, "N"), "def");
        assert_eq!(get(text, "L"), "pa$1word");
        assert_eq!(get("LATER=${AFTER}\nAFTER=x\n", "LATER"), "");
    }

    #[test]
    fn a_chain_of_files_reads_as_one_map() {
        // `--env-file one --env-file two` (and a service's env_file list) in compose: a
        // `${V}` above two's own `V=` sees one's `V`; below it, two's.
        let one = parse_onto("V=from-one\nW=w1\n", &env, Vec::new()).unwrap();
        let two = parse_onto("A=${V}-${NOPE}\nV=from-two\nB=${V}\n", &env, one.entries).unwrap();
        let get = |key: &str| {
            two.entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("A"), Some("from-one-"));
        assert_eq!(get("B"), Some("from-two"));
        assert_eq!(get("V"), Some("from-two"));
        assert_eq!(get("W"), Some("w1"));
        // Read while set nowhere: compose warns "The \"NOPE\" variable is not set".
        assert_eq!(two.unset, BTreeSet::from(["NOPE".to_owned()]));
        // A default or an earlier entry is no unset read.
        let quiet = parse_onto("X=${NOPE:-d}\nY=$X\n", &env, Vec::new()).unwrap();
        assert!(quiet.unset.is_empty(), "{:?}", quiet.unset);
    }

    #[test]
    fn a_chain_warns_once_per_file_and_name_and_skips_what_may_be_missing() {
        let dir = tempfile_dir();
        // A byte-order mark is skipped, as compose skips it.
        std::fs::write(dir.join("one.env"), "\u{feff}V=1\nU=$NOPE$NOPE\n").unwrap();
        std::fs::write(dir.join("two.env"), "W=${V}${NOPE}\n").unwrap();
        let files = [
            (dir.join("one.env"), true),
            (dir.join("missing.env"), false),
            (dir.join("two.env"), true),
        ];
        let mut warnings = Vec::new();
        let entries = read_chain(&files, &env, &mut warnings).unwrap();
        assert_eq!(entries[0], ("V".to_owned(), "1".to_owned()));
        assert_eq!(entries.last(), Some(&("W".to_owned(), "1".to_owned())));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with(&format!(
            "{}: the variable NOPE is not set",
            dir.join("one.env").display()
        )));
        assert!(warnings[1].contains("two.env: the variable NOPE"));
        let required = [(dir.join("missing.env"), true)];
        let err = read_chain(&required, &env, &mut warnings).unwrap_err();
        assert!(
            err.message().contains("missing.env: no such env file"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn order_is_file_order_and_a_repeated_key_keeps_its_last_value() {
        let entries = parsed("Z=1\nA=2\nZ=3\n");
        assert_eq!(
            entries,
            [
                ("Z".to_owned(), "3".to_owned()),
                ("A".to_owned(), "2".to_owned())
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("A=1\nB C=2\n", &env).unwrap_err();
        assert!(err.message().contains("line 2"), "{err}");
        let err = parse("A=1\n\nB=\"open\n", &env).unwrap_err();
        assert!(err.message().contains("unterminated"), "{err}");
        let err = parse("A=1\nb@d=2\n", &env).unwrap_err();
        assert!(err.message().contains("line 2"), "{err}");
        assert!(parse("R=${NEED:?set it}\n", &env).is_err());
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hub-dotenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
