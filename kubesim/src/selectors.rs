//! Label and field selectors: parsing the query-string syntax and matching objects.
//!
//! Label selectors support the full equality- and set-based syntax (`a=b`, `a==b`, `a!=b`,
//! `a in (x,y)`, `a notin (x,y)`, `a`, `!a`). Field selectors support `=`, `==` and `!=` on any
//! dotted path whose value is a string, number or bool (`metadata.name`, `metadata.namespace`,
//! `spec.nodeName`, `spec.replicatedVolumeName`, `status.phase`, ...); a path that is absent
//! compares as the empty string, as the real server does for known fields.

use serde_json::Value;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<LabelReq>);

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Result<Vec<&str>> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(Error::BadRequest(format!("unable to parse requirement: unbalanced ')' in {s:?}")));
                }
            }
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(Error::BadRequest(format!("unable to parse requirement: unbalanced '(' in {s:?}")));
    }
    out.push(&s[start..]);
    Ok(out)
}

fn check_key(key: &str, whole: &str) -> Result<String> {
    let ok = !key.is_empty()
        && key.len() <= 317
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(key.to_string())
    } else {
        Err(Error::BadRequest(format!("unable to parse requirement: invalid label key {key:?} in {whole:?}")))
    }
}

fn check_value(value: &str, whole: &str) -> Result<String> {
    let ok = value.len() <= 63 && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(value.to_string())
    } else {
        Err(Error::BadRequest(format!("unable to parse requirement: invalid label value {value:?} in {whole:?}")))
    }
}

fn parse_set(rest: &str, whole: &str) -> Result<Vec<String>> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| Error::BadRequest(format!("unable to parse requirement: expected '(values)' in {whole:?}")))?;
    inner.split(',').map(str::trim).filter(|v| !v.is_empty()).map(|v| check_value(v, whole)).collect()
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self(reqs));
        }
        for part in split_top_level(s)? {
            let p = part.trim();
            if p.is_empty() {
                continue;
            }
            let req = if let Some(key) = p.strip_prefix('!') {
                LabelReq::NotExists(check_key(key.trim(), s)?)
            } else if let Some((k, v)) = p.split_once("!=") {
                LabelReq::NotEq(check_key(k.trim(), s)?, check_value(v.trim(), s)?)
            } else if let Some((k, v)) = p.split_once("==") {
                LabelReq::Eq(check_key(k.trim(), s)?, check_value(v.trim(), s)?)
            } else if let Some((k, v)) = p.split_once('=') {
                LabelReq::Eq(check_key(k.trim(), s)?, check_value(v.trim(), s)?)
            } else if let Some((k, rest)) = split_word(p, "notin") {
                LabelReq::NotIn(check_key(k, s)?, parse_set(rest, s)?)
            } else if let Some((k, rest)) = split_word(p, "in") {
                LabelReq::In(check_key(k, s)?, parse_set(rest, s)?)
            } else {
                LabelReq::Exists(check_key(p, s)?)
            };
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first `key=value` requirement, if any (the store looks it up in its index).
    pub fn first_equality(&self) -> Option<(&str, &str)> {
        self.0.iter().find_map(|r| match r {
            LabelReq::Eq(k, v) => Some((k.as_str(), v.as_str())),
            LabelReq::In(k, vs) if vs.len() == 1 => Some((k.as_str(), vs[0].as_str())),
            _ => None,
        })
    }

    /// Matches an object's `metadata.labels`.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
        })
    }
}

/// `key in (..)` / `key notin (..)`: the key, then the operator word followed by a space or '('.
fn split_word<'a>(p: &'a str, word: &str) -> Option<(&'a str, &'a str)> {
    let mut search = 0;
    while let Some(pos) = p[search..].find(word) {
        let at = search + pos;
        let before_ok = at > 0 && p[..at].ends_with(char::is_whitespace);
        let after = &p[at + word.len()..];
        let after_ok = after.starts_with(char::is_whitespace) || after.starts_with('(');
        if before_ok && after_ok {
            return Some((p[..at].trim(), after));
        }
        search = at + word.len();
    }
    None
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldReq {
    path: String,
    value: String,
    negate: bool,
}

/// A parsed field selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<FieldReq>);

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (path, value, negate) = if let Some((k, v)) = part.split_once("!=") {
                (k, v, true)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, v, false)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, v, false)
            } else {
                return Err(Error::BadRequest(format!("invalid selector: '{s}'; can't understand '{part}'")));
            };
            reqs.push(FieldReq { path: path.trim().to_string(), value: value.trim().to_string(), negate });
        }
        Ok(Self(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value a `path=value` requirement pins, if any.
    pub fn pinned(&self, path: &str) -> Option<&str> {
        self.0.iter().find(|r| r.path == path && !r.negate).map(|r| r.value.as_str())
    }

    /// If the selector pins `metadata.name`, that name (lets the store skip a scan).
    pub fn pinned_name(&self) -> Option<&str> {
        self.0.iter().find(|r| r.path == "metadata.name" && !r.negate).map(|r| r.value.as_str())
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|r| {
            let mut cur = obj;
            for seg in r.path.split('.') {
                cur = &cur[seg];
            }
            let actual = match cur {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => String::new(),
            };
            (actual == r.value) != r.negate
        })
    }
}

/// Both selectors of a request.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Self> {
        Ok(Self {
            labels: LabelSelector::parse(labels.unwrap_or_default())?,
            fields: FieldSelector::parse(fields.unwrap_or_default())?,
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": labels}, "spec": {"nodeName": "node-1"}})
    }

    #[test]
    fn equality_and_set_based_label_selectors() {
        let o = obj(json!({"app": "agent", "tier": "storage"}));
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&o);
        assert!(m("app=agent"));
        assert!(m("app==agent,tier"));
        assert!(!m("app!=agent"));
        assert!(m("app in (agent, controller)"));
        assert!(!m("app notin (agent,controller)"));
        assert!(m("tier,!missing"));
        assert!(!m("!tier"));
        assert!(m("missing notin (x)"));
        assert!(!m("missing in (x)"));
        assert!(m("app in (agent),tier in (storage)"));
        assert!(m(""));
    }

    #[test]
    fn rejects_malformed_label_selectors() {
        assert!(LabelSelector::parse("app in (a").is_err());
        assert!(LabelSelector::parse("a b=c").is_err());
        assert!(LabelSelector::parse("app=a$b").is_err());
    }

    #[test]
    fn field_selectors_on_nested_paths() {
        let o = obj(json!({}));
        let m = |s: &str| FieldSelector::parse(s).unwrap().matches(&o);
        assert!(m("metadata.name=a,metadata.namespace=ns"));
        assert!(m("spec.nodeName==node-1"));
        assert!(!m("spec.nodeName!=node-1"));
        assert!(m("spec.replicatedVolumeName="));
        assert!(FieldSelector::parse("nonsense").is_err());
        assert_eq!(FieldSelector::parse("metadata.name=x").unwrap().pinned_name(), Some("x"));
    }
}
