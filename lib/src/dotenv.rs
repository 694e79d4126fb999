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
//!   in the environment first, then in the entries above it in the same file;
//! - text after a closing quote on the same line is a new statement (so `" # note"` is a
//!   comment).

use crate::interpolate::Variables;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// Read `path` as compose reads a `.env` file: its entries in file order (a key set twice keeps
/// its first place and its last value), values interpolated with `lookup` (the environment)
/// first, then the entries above. A missing file is an error; use [`read_optional`] where a
/// missing file means "no entries".
pub fn read(path: &Path, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<(String, String)>> {
    read_optional(path, lookup)?.ok_or_else(|| {
        Error::input(format!(
            "{}: no such env file; create it or fix the path",
            path.display()
        ))
    })
}

/// As [`read`], but a file that does not exist gives `None` (compose's optional project `.env`).
pub fn read_optional(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Vec<(String, String)>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::input(format!(
                "{}: cannot read the env file: {e}",
                path.display()
            )));
        }
    };
    parse(&text, lookup)
        .map(Some)
        .map_err(|e| Error::input(format!("{}: {}", path.display(), e.message())))
}

/// Parse the text of a `.env` file (see the module's rules). Errors name the line.
pub fn parse(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<(String, String)>> {
    let mut parser = Parser {
        line: 1,
        entries: Vec::new(),
        index: HashMap::new(),
    };
    parser.run(text.strip_prefix('\u{feff}').unwrap_or(text), lookup)?;
    Ok(parser.entries)
}

struct Parser {
    line: usize,
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
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
    fn interpolate(&self, value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String> {
        if !value.contains('$') {
            return Ok(value.to_owned());
        }
        let earlier = |name: &str| {
            lookup(name).or_else(|| self.index.get(name).map(|&at| self.entries[at].1.clone()))
        };
        Variables::new(&earlier, HashMap::new())
            .substitute(value)
            .map_err(|e| Error::input(format!("line {}: {e}", self.line)))
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

    #[test]
    fn a_missing_file_is_told_apart() {
        let dir = tempfile_dir();
        let missing = dir.join("missing.env");
        assert!(read_optional(&missing, &env).unwrap().is_none());
        assert!(
            read(&missing, &env)
                .unwrap_err()
                .message()
                .contains("no such env file")
        );
        let present = dir.join(".env");
        std::fs::write(&present, "\u{feff}A=1\n").unwrap();
        assert_eq!(
            read(&present, &env).unwrap(),
            [("A".to_owned(), "1".to_owned())]
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hub-dotenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
