//! YAML (and JSON, which YAML parses too) into `serde_json::Value` documents that remember the
//! line of every field, so that an error found later — by serde or by validation — can name
//! the line a user has to fix. Also the reverse: any JSON value printed as YAML.
//!
//! Paths are spelled as `serde_path_to_error` spells them (`spec.tasks[0].name`), so both
//! kinds of error look up lines the same way.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::{Yaml, YamlEmitter};

/// One parsed document with the line of each path in it.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    pub lines: LineIndex,
}

/// Path (`spec.volumes.step.min`) → 1-based line where that field's key (or sequence item)
/// starts. The document itself is the path `""`.
#[derive(Debug, Clone, Default)]
pub struct LineIndex(BTreeMap<String, usize>);

impl LineIndex {
    /// The line of `path`, or of its nearest ancestor that has one (a missing field is
    /// reported at the mapping that should hold it).
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(line) = self.0.get(path) {
                return Some(*line);
            }
            if path.is_empty() {
                return None;
            }
            // Up one level; a top-level field's parent is the document itself ("").
            path = &path[..path.rfind(['.', '[']).unwrap_or(0)];
        }
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses every document of a YAML or JSON stream. Empty documents are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| SyntaxError {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_string(),
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.documents)
}

/// Builds values from parser events; a stack of open containers, each with its path.
#[derive(Default)]
struct Builder {
    documents: Vec<Document>,
    stack: Vec<Open>,
    lines: LineIndex,
    anchors: BTreeMap<usize, Value>,
    error: Option<SyntaxError>,
}

enum Open {
    Seq { path: String, items: Vec<Value>, anchor: usize },
    Map { path: String, map: Map<String, Value>, pending_key: Option<String>, anchor: usize },
}

impl Builder {
    /// The path the next value will have, given the innermost open container.
    fn next_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Open::Seq { path, items, .. }) => format!("{path}[{}]", items.len()),
            Some(Open::Map { path, pending_key, .. }) => match pending_key {
                Some(key) if path.is_empty() => key.clone(),
                Some(key) => format!("{path}.{key}"),
                None => path.clone(),
            },
        }
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Open::Map { pending_key: None, .. }))
    }

    fn fail(&mut self, mark: Marker, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { line: mark.line(), column: mark.col() + 1, message: message.into() });
        }
    }

    /// Places a finished value into its parent (or finishes the document).
    fn push_value(&mut self, value: Value, mark: Marker) {
        match self.stack.last_mut() {
            None => {
                let lines = std::mem::take(&mut self.lines);
                // An empty document (a trailing `---`) holds nothing to apply.
                if !value.is_null() {
                    self.documents.push(Document { value, lines });
                }
            }
            Some(Open::Seq { items, .. }) => items.push(value),
            Some(Open::Map { map, pending_key, .. }) => {
                let key = pending_key.take().expect("a value follows a key");
                if map.contains_key(&key) {
                    let message = format!("duplicate key {key:?}");
                    self.fail(mark, message);
                    return;
                }
                map.insert(key, value);
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                if self.expecting_key() {
                    let path = match self.stack.last() {
                        Some(Open::Map { path, .. }) if path.is_empty() => text.clone(),
                        Some(Open::Map { path, .. }) => format!("{path}.{text}"),
                        _ => unreachable!("expecting_key checked the map"),
                    };
                    self.lines.0.insert(path, mark.line());
                    if let Some(Open::Map { pending_key, .. }) = self.stack.last_mut() {
                        *pending_key = Some(text);
                    }
                    return;
                }
                let path = self.next_path();
                self.lines.0.entry(path).or_insert(mark.line());
                let value = match scalar_value(&text, style, tag.as_ref()) {
                    Ok(value) => value,
                    Err(message) => return self.fail(mark, message),
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                self.push_value(value, mark);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.expecting_key() {
                    return self.fail(mark, "a mapping key must be a plain value, not a list or mapping");
                }
                let path = self.next_path();
                self.lines.0.entry(path.clone()).or_insert(mark.line());
                self.stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Open::Seq { path, items: Vec::new(), anchor }
                } else {
                    Open::Map { path, map: Map::new(), pending_key: None, anchor }
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor) = match self.stack.pop() {
                    Some(Open::Seq { items, anchor, .. }) => (Value::Array(items), anchor),
                    Some(Open::Map { map, anchor, .. }) => (Value::Object(map), anchor),
                    None => return,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                self.push_value(value, mark);
            }
            Event::Alias(anchor) => {
                if self.expecting_key() {
                    return self.fail(mark, "an alias cannot be a mapping key");
                }
                match self.anchors.get(&anchor).cloned() {
                    Some(value) => self.push_value(value, mark),
                    None => self.fail(mark, "alias to an unknown anchor"),
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd => {}
        }
    }
}

/// Resolves a scalar by the YAML 1.2 core schema: quoted text is always a string; plain text
/// is null, a boolean, an integer or a float when it reads as one, else a string.
fn scalar_value(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if tag.is_some_and(|tag| tag.suffix == "str") || style != TScalarStyle::Plain {
        return Ok(Value::String(text.to_string()));
    }
    if text.is_empty() {
        return Ok(Value::Null);
    }
    Ok(match Yaml::from_str(text) {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Integer(i) => Value::Number(i.into()),
        // Integers beyond i64 (a u64 seed, say) are read as floats by the YAML layer; keep
        // them exact.
        Yaml::Real(r) if r.bytes().all(|b| b.is_ascii_digit()) => match r.parse::<u64>() {
            Ok(n) => Value::Number(n.into()),
            Err(_) => Value::String(r),
        },
        Yaml::Real(r) => match r.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Value::Number(n),
            // .inf and .nan have no JSON form; keep the text so the field's type check names it.
            None => Value::String(r),
        },
        _ => Value::String(text.to_string()),
    })
}

/// Prints a JSON value as a YAML document (block style, keys in their order).
pub fn to_yaml_string(value: &Value) -> String {
    let yaml = to_yaml(value);
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    // The emitter only fails on fmt::Write errors, which a String never gives.
    let _ = emitter.dump(&yaml);
    let body = out.strip_prefix("---\n").unwrap_or(&out).to_string();
    let mut text = String::with_capacity(body.len() + 1);
    let _ = writeln!(text, "{body}");
    text
}

fn to_yaml(value: &Value) -> Yaml {
    match value {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(items) => Yaml::Array(items.iter().map(to_yaml).collect()),
        Value::Object(map) => Yaml::Hash(map.iter().map(|(k, v)| (Yaml::String(k.clone()), to_yaml(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_and_lines_of_a_nested_document() {
        let text = "a: 1\nb:\n  c: x\n  d: [1, 2]\n  e:\n    - f: true\n      g: '5'\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].value, json!({"a": 1, "b": {"c": "x", "d": [1, 2], "e": [{"f": true, "g": "5"}]}}));
        let lines = &docs[0].lines;
        assert_eq!(lines.line_of("a"), Some(1));
        assert_eq!(lines.line_of("b.c"), Some(3));
        assert_eq!(lines.line_of("b.e[0].g"), Some(7));
        assert_eq!(lines.line_of("b.e[0].missing"), Some(6));
        assert_eq!(lines.line_of("b.nope"), Some(2));
        assert_eq!(lines.line_of("missing"), Some(1));
    }

    #[test]
    fn several_documents_each_with_own_lines() {
        let docs = parse_documents("a: 1\n---\nb: 2\n---\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].value, json!({"b": 2}));
        assert_eq!(docs[1].lines.line_of("b"), Some(3));
    }

    #[test]
    fn integers_beyond_i64_stay_exact() {
        let docs = parse_documents("seed: 18446744073709551615\nf: 1.5\n").unwrap();
        assert_eq!(docs[0].value, json!({"seed": u64::MAX, "f": 1.5}));
    }

    #[test]
    fn json_parses_too() {
        let docs = parse_documents("{\n \"a\": {\"b\": [1, \"x\"]}\n}").unwrap();
        assert_eq!(docs[0].value, json!({"a": {"b": [1, "x"]}}));
    }

    #[test]
    fn syntax_errors_and_duplicate_keys_name_the_line() {
        let err = parse_documents("a: 1\nb: [1, 2\n").unwrap_err();
        assert!(err.line >= 2, "{err}");
        let err = parse_documents("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("duplicate key"));
    }

    #[test]
    fn yaml_output_reads_back_the_same() {
        let value = json!({"name": "x", "n": 3, "list": [{"a": "30s"}, "b"], "empty": {}, "f": 1.5});
        let text = to_yaml_string(&value);
        assert_eq!(parse_documents(&text).unwrap()[0].value, value);
    }
}
