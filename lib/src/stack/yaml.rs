//! YAML to JSON values, read the way compose reads a compose file.
//!
//! hub builds the values itself from yaml-rust2's event stream rather than through a serde
//! YAML crate, for two reasons. Speed: on a 10,000-service file the events come three times
//! faster than serde-saphyr's (bench/levels.sh, docs/benchmarks.md). Safety: aliases are
//! copied here, so here is where their expansion is counted and a YAML bomb is refused.
//!
//! What it implements, after compose's go-yaml v3:
//! - the YAML 1.2 core schema for plain scalars: `null`/`~`/empty, `true`/`false` (so `yes`,
//!   `on` and `y` stay strings), decimal, `0o` octal and `0x` hex integers, floats; a decimal
//!   with a leading zero (`0755`) stays a string, as compose keeps it;
//! - the tags `!!str`, `!!int`, `!!float`, `!!bool`, `!!null`; compose's `!reset` (the value is
//!   dropped, and what earlier files or an extended service set there is cleared) and
//!   `!override` (the value replaces, not merges), returned as [`Reset`]s for the merge to
//!   honour; other tags are read as if untagged;
//! - anchors, aliases and merge keys (`<<: *base`, `<<: [*a, *b]`), explicit keys winning;
//! - several documents (`---`) in one file, each returned on its own for the caller to merge
//!   as compose merges them (like override files, anchors reaching across them); a duplicate
//!   key is an error, as in compose;
//! - no indentation rule inside a flow collection (`[`…`]`, `{`…`}`), as go-yaml: the
//!   `vendor/yaml-rust2` copy of the crate drops the scanner's checks there.

use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::fmt;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// How many nodes aliases may copy in one document, in all. A YAML bomb (aliases of aliases)
/// passes it after a few levels; a compose file's `<<: *defaults` stays far below it.
pub const ALIAS_NODE_BUDGET: usize = 1_000_000;

/// A YAML document that could not be read: what, and where (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// What is wrong.
    pub message: String,
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1.
    pub column: usize,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {}, column {}",
            self.message, self.line, self.column
        )
    }
}

impl YamlError {
    fn at(mark: Marker, message: impl Into<String>) -> YamlError {
        YamlError {
            message: message.into(),
            line: mark.line(),
            column: mark.col() + 1,
        }
    }
}

/// Read one YAML document into a JSON value (`null` for an empty stream).
pub fn to_json(text: &str) -> Result<Value, YamlError> {
    to_document(text).map(|doc| doc.value)
}

/// A node tagged `!reset` or `!override`: where (the mapping keys from the top; merge keys
/// left out, as compose does), and whether its value stays (`!override`) or was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset {
    /// The keys leading to the node.
    pub path: Vec<String>,
    /// True for `!override`: the value stays, replacing whatever was there.
    pub keep: bool,
}

/// A document with its `!reset`/`!override` nodes (the `!reset` ones already dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The document.
    pub value: Value,
    /// Its `!reset` and `!override` nodes, for the merge with earlier files to honour.
    pub resets: Vec<Reset>,
}

/// Read a file of one YAML document, with its `!reset` and `!override` nodes (an empty stream
/// is `null`); a second document is an error ([`to_documents`] reads them all).
pub fn to_document(text: &str) -> Result<Document, YamlError> {
    let mut documents = to_documents(text)?.into_iter();
    let first = documents.next().map_or(
        Document {
            value: Value::Null,
            resets: Vec::new(),
        },
        |(doc, _)| doc,
    );
    match documents.next() {
        Some((_, line)) => Err(YamlError {
            message: "a second YAML document (`---`) where one is read".to_owned(),
            line,
            column: 1,
        }),
        None => Ok(first),
    }
}

/// Read every YAML document of a stream (none for an empty one), each with the line (from 1)
/// where it starts.
pub fn to_documents(text: &str) -> Result<Vec<(Document, usize)>, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder::default();
    loop {
        let (event, mark) = parser
            .next_token()
            .map_err(|e| YamlError::at(*e.marker(), e.info()))?;
        match event {
            Event::StreamEnd => return Ok(builder.documents),
            Event::DocumentStart => builder.start = mark.line(),
            Event::DocumentEnd => {
                let document = Document {
                    value: builder.document.take().unwrap_or(Value::Null),
                    resets: std::mem::take(&mut builder.resets),
                };
                builder.documents.push((document, builder.start));
            }
            event => builder.event(event, mark)?,
        }
    }
}

/// Remove the value at `path` (mapping keys) from `map`, if it is there.
pub fn remove_in(map: &mut Map<String, Value>, path: &[String]) {
    match path {
        [] => {}
        [last] => {
            map.remove(last);
        }
        [first, rest @ ..] => {
            if let Some(Value::Object(inner)) = map.get_mut(first) {
                remove_in(inner, rest);
            }
        }
    }
}

/// A collection being built, with the anchor it will be stored under and its size in nodes.
struct Open {
    kind: OpenKind,
    anchor: usize,
    nodes: usize,
    /// Tagged `!reset`: built, then dropped from its parent.
    discard: bool,
}

enum OpenKind {
    Sequence(Vec<Value>),
    Mapping {
        map: Map<String, Value>,
        /// The key read, waiting for its value.
        key: Option<Key>,
        /// Mappings named by `<<`, in order: the first one wins a key they share.
        merges: Vec<Map<String, Value>>,
    },
}

enum Key {
    Merge,
    Name(String),
}

/// Builds values from events: a stack of open collections, the anchors seen, the budget used.
#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    anchors: HashMap<usize, (Value, usize)>,
    alias_nodes: usize,
    document: Option<Value>,
    /// The documents read, with the line each starts at.
    documents: Vec<(Document, usize)>,
    /// Where the current document starts.
    start: usize,
    resets: Vec<Reset>,
}

impl Builder {
    fn event(&mut self, event: Event, mark: Marker) -> Result<(), YamlError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                if self.expects_key() {
                    return self.key(scalar_key(text, style, tag.as_ref(), mark)?, mark);
                }
                if self.note_reset(tag.as_ref()) {
                    self.drop_value();
                    return Ok(());
                }
                let value = scalar(text, style, tag.as_ref(), mark)?;
                self.complete(value, 1, anchor, mark)?;
            }
            Event::Alias(anchor) => {
                let Some((value, nodes)) = self.anchors.get(&anchor) else {
                    return Err(YamlError::at(mark, "an alias to an unknown anchor"));
                };
                let (value, nodes) = (value.clone(), *nodes);
                if self.expects_key() {
                    let Value::String(name) = value else {
                        return Err(YamlError::at(
                            mark,
                            "an alias used as a key must name a string; write the key out",
                        ));
                    };
                    return self.key(Key::Name(name), mark);
                }
                self.alias_nodes += nodes;
                if self.alias_nodes > ALIAS_NODE_BUDGET {
                    return Err(YamlError::at(
                        mark,
                        format!(
                            "aliases expand to more than {ALIAS_NODE_BUDGET} nodes (a YAML bomb?); write the repeated parts out or anchor smaller ones"
                        ),
                    ));
                }
                self.complete(value, nodes, 0, mark)?;
            }
            Event::SequenceStart(anchor, tag) => {
                let discard = self.note_reset(tag.as_ref());
                self.open(OpenKind::Sequence(Vec::new()), anchor, discard, mark)?
            }
            Event::MappingStart(anchor, tag) => {
                let discard = self.note_reset(tag.as_ref());
                self.open(
                    OpenKind::Mapping {
                        map: Map::new(),
                        key: None,
                        merges: Vec::new(),
                    },
                    anchor,
                    discard,
                    mark,
                )?
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(open) = self.stack.pop() else {
                    return Err(YamlError::at(mark, "a collection ends that never began"));
                };
                let value = match open.kind {
                    OpenKind::Sequence(items) => Value::Array(items),
                    OpenKind::Mapping {
                        mut map, merges, ..
                    } => {
                        for merged in merges {
                            for (key, value) in merged {
                                map.entry(key).or_insert(value);
                            }
                        }
                        Value::Object(map)
                    }
                };
                if open.discard {
                    self.drop_value();
                } else {
                    self.complete(value, open.nodes, open.anchor, mark)?;
                }
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
        Ok(())
    }

    /// Note a value tagged `!reset` or `!override` at the keys leading to it, and say whether
    /// to drop it (`!reset`: compose drops the node wherever it is). Below a sequence the path
    /// is not noted: compose's paths there never match an earlier file's.
    fn note_reset(&mut self, tag: Option<&Tag>) -> bool {
        let Some(tag) = tag.filter(|t| t.handle == "!") else {
            return false;
        };
        let keep = match tag.suffix.as_str() {
            "reset" => false,
            "override" => true,
            _ => return false,
        };
        // Inside a node being dropped already: compose does not look further.
        if self.stack.iter().any(|open| open.discard) {
            return false;
        }
        let mut path = Vec::with_capacity(self.stack.len());
        for open in &self.stack {
            match &open.kind {
                OpenKind::Mapping {
                    key: Some(Key::Name(name)),
                    ..
                } => path.push(name.clone()),
                OpenKind::Mapping { .. } => {}
                OpenKind::Sequence(_) => return !keep,
            }
        }
        self.resets.push(Reset { path, keep });
        !keep
    }

    /// A dropped (`!reset`) value: its key, if any, goes with it.
    fn drop_value(&mut self) {
        match self.stack.last_mut() {
            Some(Open {
                kind: OpenKind::Mapping { key, .. },
                ..
            }) => *key = None,
            Some(_) => {}
            None => self.document = Some(Value::Null),
        }
    }

    /// True when the innermost open collection is a mapping waiting for a key.
    fn expects_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Open {
                kind: OpenKind::Mapping { key: None, .. },
                ..
            })
        )
    }

    fn key(&mut self, key: Key, mark: Marker) -> Result<(), YamlError> {
        if let Some(Open {
            kind: OpenKind::Mapping { map, key: slot, .. },
            ..
        }) = self.stack.last_mut()
        {
            if let Key::Name(name) = &key
                && map.contains_key(name)
            {
                return Err(YamlError::at(
                    mark,
                    format!("the key \"{name}\" is defined twice in one mapping; remove one"),
                ));
            }
            *slot = Some(key);
        }
        Ok(())
    }

    fn open(
        &mut self,
        kind: OpenKind,
        anchor: usize,
        discard: bool,
        mark: Marker,
    ) -> Result<(), YamlError> {
        if self.expects_key() {
            return Err(YamlError::at(
                mark,
                "a collection used as a mapping key; compose keys are strings",
            ));
        }
        self.stack.push(Open {
            kind,
            anchor,
            nodes: 1,
            discard,
        });
        Ok(())
    }

    /// A value is complete: remember its anchor, then put it where it belongs.
    fn complete(
        &mut self,
        value: Value,
        nodes: usize,
        anchor: usize,
        mark: Marker,
    ) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchors.insert(anchor, (value.clone(), nodes));
        }
        let Some(parent) = self.stack.last_mut() else {
            self.document = Some(value);
            return Ok(());
        };
        parent.nodes += nodes;
        match &mut parent.kind {
            OpenKind::Sequence(items) => items.push(value),
            OpenKind::Mapping { map, key, merges } => match key.take() {
                Some(Key::Name(name)) => {
                    map.insert(name, value);
                }
                Some(Key::Merge) => match value {
                    Value::Object(merged) => merges.push(merged),
                    Value::Array(list) if list.iter().all(Value::is_object) => {
                        merges.extend(list.into_iter().filter_map(|item| match item {
                            Value::Object(merged) => Some(merged),
                            _ => None,
                        }));
                    }
                    _ => {
                        return Err(YamlError::at(
                            mark,
                            "a merge key (`<<`) takes a mapping or a list of mappings",
                        ));
                    }
                },
                None => {
                    return Err(YamlError::at(mark, "a value with no key in a mapping"));
                }
            },
        }
        Ok(())
    }
}

/// A scalar in key position: its text, except a plain `<<`, which is a merge key.
fn scalar_key(
    text: String,
    style: TScalarStyle,
    tag: Option<&Tag>,
    mark: Marker,
) -> Result<Key, YamlError> {
    if style == TScalarStyle::Plain && tag.is_none() && text == "<<" {
        return Ok(Key::Merge);
    }
    // A key is a string in JSON; a tagged key is still checked against its tag.
    if let Some(tag) = tag {
        scalar(text.clone(), style, Some(tag), mark)?;
    }
    Ok(Key::Name(text))
}

/// The tag's name when it is one of YAML's own (`!!int` → `int`).
fn core_tag(tag: Option<&Tag>) -> Option<&str> {
    tag.filter(|t| t.handle == "tag:yaml.org,2002:" || t.handle == "!!")
        .map(|t| t.suffix.as_str())
}

/// A scalar's value under the YAML 1.2 core schema (plain) or as the string it is (quoted,
/// literal, folded), unless a core tag says otherwise.
fn scalar(
    text: String,
    style: TScalarStyle,
    tag: Option<&Tag>,
    mark: Marker,
) -> Result<Value, YamlError> {
    let wrong = |kind: &str, text: &str| {
        YamlError::at(
            mark,
            format!("`{text}` is tagged !!{kind} but is not one; fix the value or drop the tag"),
        )
    };
    match core_tag(tag) {
        Some("str") => Ok(Value::String(text)),
        Some("null") => match null(&text) {
            true => Ok(Value::Null),
            false => Err(wrong("null", &text)),
        },
        Some("bool") => boolean(&text)
            .map(Value::Bool)
            .ok_or_else(|| wrong("bool", &text)),
        Some("int") => integer(&text)
            .map(Value::Number)
            .ok_or_else(|| wrong("int", &text)),
        Some("float") => float(&text)
            .or_else(|| integer(&text))
            .map(Value::Number)
            .ok_or_else(|| wrong("float", &text)),
        _ if style != TScalarStyle::Plain => Ok(Value::String(text)),
        _ => Ok(plain(text)),
    }
}

/// A plain scalar under the core schema.
fn plain(text: String) -> Value {
    if redundant_leading_zero(&text) {
        return Value::String(text);
    }
    if null(&text) {
        return Value::Null;
    }
    if let Some(b) = boolean(&text) {
        return Value::Bool(b);
    }
    match integer(&text).or_else(|| float(&text)) {
        Some(number) => Value::Number(number),
        None => Value::String(text),
    }
}

fn null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn boolean(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// `[-+]?[0-9]+` (without a redundant leading zero), `0o[0-7]+`, `0x[0-9a-fA-F]+`.
fn integer(text: &str) -> Option<Number> {
    if let Some(octal) = text.strip_prefix("0o") {
        return radix(octal, 8);
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return radix(hex, 16);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if redundant_leading_zero(text) {
        return None;
    }
    let text = text.strip_prefix('+').unwrap_or(text);
    if let Ok(n) = text.parse::<i64>() {
        return Some(n.into());
    }
    text.parse::<u64>().ok().map(Number::from)
}

/// `0755`, `-007`: compose keeps such a number as written (a file mode, a zip code); so does
/// hub, rather than reading it as 755 or as octal.
fn redundant_leading_zero(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

fn radix(digits: &str, base: u32) -> Option<Number> {
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(digits, base).ok().map(Number::from)
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`. Infinity and NaN have no JSON
/// form, so `.inf` and `.nan` stay strings.
fn float(text: &str) -> Option<Number> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (mantissa, None),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = all_digits(whole)
        && fraction.is_none_or(all_digits)
        && (!whole.is_empty() || fraction.is_some_and(|f| !f.is_empty()));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    if !mantissa_ok || !exponent_ok {
        return None;
    }
    text.parse::<f64>().ok().and_then(Number::from_f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(text: &str) -> Value {
        to_json(text).unwrap()
    }

    fn error(text: &str) -> String {
        to_json(text).unwrap_err().to_string()
    }

    #[test]
    fn flow_collections_may_close_at_or_below_their_key_indentation() {
        // go-yaml (compose) and PyYAML read these the same (checked once with both).
        assert_eq!(
            read("web:\n  command: [\n    \"a\", \"b\"\n  ]\n  image: x\n"),
            json!({"web": {"command": ["a", "b"], "image": "x"}})
        );
        assert_eq!(
            read("web:\n  command: [\na, \"b\"\n]\n  env: {\nA: \"x\n  y\"\n }\n"),
            json!({"web": {"command": ["a", "b"], "env": {"A": "x y"}}})
        );
        // Block indentation is still checked.
        assert!(to_json("web:\n    a: 1\n  b: 2\n").is_err());
    }

    #[test]
    fn plain_scalars_follow_the_core_schema() {
        let value = read(
            "a: yes\nb: on\nc: true\nd: FALSE\ne: ~\nf:\ng: 0755\nh: 0o755\ni: 0x1F\nj: -12\nk: 1.5\nl: 1e3\nm: .inf\nn: 1.2.3\no: +7\np: 18446744073709551615\n",
        );
        assert_eq!(
            value,
            json!({"a": "yes", "b": "on", "c": true, "d": false, "e": null, "f": null,
                   "g": "0755", "h": 493, "i": 31, "j": -12, "k": 1.5, "l": 1000.0,
                   "m": ".inf", "n": "1.2.3", "o": 7, "p": 18446744073709551615u64})
        );
    }

    #[test]
    fn quoted_and_block_scalars_are_strings() {
        assert_eq!(
            read("a: \"true\"\nb: '12'\nc: |\n  x\n  y\nd: >-\n  p\n  q\n"),
            json!({"a": "true", "b": "12", "c": "x\ny\n", "d": "p q"})
        );
    }

    #[test]
    fn core_tags_decide_the_type() {
        assert_eq!(
            read("a: !!str 12\nb: !!int \"12\"\nc: !!float 2\nd: !custom []\n"),
            json!({"a": "12", "b": 12, "c": 2.0, "d": []})
        );
        assert!(error("a: !!int twelve\n").contains("tagged !!int"));
    }

    #[test]
    fn reset_and_override_are_dropped_or_kept_and_noted() {
        // `docker compose config` (2.40.3) on the same service: command [x], no labels.
        let doc = to_document(
            "services:\n  a:\n    profiles: !reset []\n    depends_on: !override { b: {} }\n    command: [x, !reset y, !reset [z]]\n    labels: !reset { a: !reset b }\n",
        )
        .unwrap();
        assert_eq!(
            doc.value,
            json!({"services": {"a": {"depends_on": {"b": {}}, "command": ["x"]}}})
        );
        let path = |keys: &[&str]| keys.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            doc.resets,
            [
                Reset {
                    path: path(&["services", "a", "profiles"]),
                    keep: false
                },
                Reset {
                    path: path(&["services", "a", "depends_on"]),
                    keep: true
                },
                Reset {
                    path: path(&["services", "a", "labels"]),
                    keep: false
                },
            ]
        );
    }

    #[test]
    fn keys_are_strings() {
        assert_eq!(
            read("1: a\ntrue: b\n~: c\n"),
            json!({"1": "a", "true": "b", "~": "c"})
        );
        assert!(error("? [a, b]\n: c\n").contains("mapping key"));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let value = read(
            "x-base: &base {restart: always, labels: {a: \"1\"}}\nx-more: &more {restart: never, user: me}\nservices:\n  one:\n    <<: *base\n    image: one\n  two:\n    image: two\n    restart: no\n    <<: [*base, *more]\n  three: *base\n",
        );
        assert_eq!(
            value["services"],
            json!({
                "one": {"restart": "always", "labels": {"a": "1"}, "image": "one"},
                "two": {"image": "two", "restart": "no", "labels": {"a": "1"}, "user": "me"},
                "three": {"restart": "always", "labels": {"a": "1"}}
            })
        );
        assert!(error("a: &a 1\nb:\n  <<: *a\n").contains("merge key"));
    }

    #[test]
    fn alias_bombs_are_refused_before_they_grow() {
        let mut text = String::from("a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n");
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for pair in names.windows(2) {
            let refs = vec![format!("*{}", pair[0]); 9].join(",");
            text.push_str(&format!("{}: &{} [{refs}]\n", pair[1], pair[1]));
        }
        assert!(error(&text).contains("YAML bomb"), "{}", error(&text));
    }

    #[test]
    fn deep_nesting_is_refused_by_the_parser() {
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(error(&text).contains("recursion limit"), "{}", error(&text));
    }

    #[test]
    fn errors_name_line_and_column() {
        let message = error("services:\n  a: [1, 2\n");
        assert!(message.contains("line 3, column 1"), "{message}");
        assert!(error("a: 1\na: 2\n").contains("\"a\" is defined twice"));
        assert!(error("a: 1\n---\nb: 2\n").contains("second YAML document"));
        assert!(error("a: 1\n---\nb: 2\n").contains("line 2"));
        assert!(error("a: *nowhere\n").contains("line 1"));
    }

    #[test]
    fn documents_come_one_by_one_with_their_resets_and_anchors_reach_across() {
        let docs = to_documents(
            "---\nx: &b { image: x }\na: 1\n---\n# nothing\n---\nc: *b\nd: !reset 1\n",
        )
        .unwrap();
        let values: Vec<(&Value, usize)> = docs.iter().map(|(d, line)| (&d.value, *line)).collect();
        assert_eq!(
            values,
            [
                (&json!({"x": {"image": "x"}, "a": 1}), 1),
                (&Value::Null, 4),
                (&json!({"c": {"image": "x"}}), 6)
            ]
        );
        assert!(docs[0].0.resets.is_empty());
        assert_eq!(docs[2].0.resets.len(), 1);
        assert!(to_documents("# only a comment\n").unwrap().is_empty());
    }

    #[test]
    fn an_empty_stream_is_null_and_a_bare_document_is_allowed() {
        assert_eq!(read(""), Value::Null);
        assert_eq!(read("# only a comment\n"), Value::Null);
        assert_eq!(read("---\na: 1\n...\n"), json!({"a": 1}));
    }
}
