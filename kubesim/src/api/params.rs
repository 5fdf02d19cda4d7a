//! Query parameters, read the way the Kubernetes API server reads them.
//!
//! The API server decodes `?...` into Go's `url.Values` (every name keeps all its values, in
//! order) and converts single values with apimachinery's query-parameter conversions:
//!
//! - a boolean (`watch`, `allowWatchBookmarks`, `sendInitialEvents`, ...) is false when absent,
//!   `0`, or `false` in any letter case, and **true for anything else**, the empty string
//!   included (`?watch` and `?watch=yes` both start a watch). This is deliberately not Go's
//!   `strconv.ParseBool`: the real server accepts any spelling, so every client's spelling works;
//! - an integer (`limit`, `timeoutSeconds`) is parsed as a decimal `int64`; anything else is a
//!   `400 BadRequest` naming the parameter;
//! - a parameter given several times keeps every value ([`Params::all`]; exec's `command=`
//!   repeats), and single-valued readers take the first, as `url.Values.Get` does.
//!
//! Every handler reads its parameters through [`Params`], so no endpoint compares raw strings.
//! Sizes are bounded: a query of more than [`MAX_QUERY_BYTES`] or [`MAX_PARAMS`] pairs is refused.

use crate::error::{Error, Result};

/// The longest query string accepted (the real server is bounded by its header limits).
pub const MAX_QUERY_BYTES: usize = 64 * 1024;
/// The most `name=value` pairs accepted in one query.
pub const MAX_PARAMS: usize = 1024;

/// The decoded query of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

/// The API server's reading of a boolean parameter's value (see the module doc).
pub fn parse_bool(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("false"))
}

impl Params {
    /// Decodes a raw query string (`a=1&b=x%20y`; `+` is a space), keeping repeated names.
    pub fn parse(query: Option<&str>) -> Result<Self> {
        let query = query.unwrap_or_default();
        if query.len() > MAX_QUERY_BYTES {
            return Err(Error::BadRequest(format!("the query string is longer than {MAX_QUERY_BYTES} bytes")));
        }
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        if pairs.len() > MAX_PARAMS {
            return Err(Error::BadRequest(format!("the query has more than {MAX_PARAMS} parameters")));
        }
        Ok(Self { pairs })
    }

    /// The first value of `name`, as `url.Values.Get`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first value of `name` unless it is empty (absent and empty mean the same for most
    /// string parameters: `continue`, `resourceVersion`, selectors).
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Every value of `name`, in request order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// A boolean parameter; false when absent.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(parse_bool)
    }

    /// An integer parameter; `None` when absent or empty, `400` when not a decimal `int64`.
    pub fn int(&self, name: &str) -> Result<Option<i64>> {
        match self.non_empty(name) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                Error::BadRequest(format!("invalid value {v:?} for the query parameter {name}: not an integer"))
            }),
        }
    }

    /// A non-negative integer parameter (`limit`, `timeoutSeconds`): a negative value is a `400`.
    pub fn count(&self, name: &str) -> Result<Option<u64>> {
        match self.int(name)? {
            None => Ok(None),
            Some(n) => u64::try_from(n).map(Some).map_err(|_| {
                Error::BadRequest(format!("invalid value {n} for the query parameter {name}: must not be negative"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_read_as_the_api_server_reads_them() {
        for falsy in ["0", "false", "False", "FALSE", "fAlSe"] {
            assert!(!parse_bool(falsy), "{falsy}");
        }
        for truthy in ["1", "t", "T", "true", "True", "TRUE", "", "yes", "anything"] {
            assert!(parse_bool(truthy), "{truthy:?}");
        }
        let p = Params::parse(Some("watch&allowWatchBookmarks=True&sendInitialEvents=0")).unwrap();
        assert!(p.flag("watch"), "a bare name is true");
        assert!(p.flag("allowWatchBookmarks"));
        assert!(!p.flag("sendInitialEvents"));
        assert!(!p.flag("absent"));
    }

    #[test]
    fn integers_refuse_garbage_naming_the_parameter() {
        let p = Params::parse(Some("limit=500&timeoutSeconds=abc&neg=-1&empty=")).unwrap();
        assert_eq!(p.count("limit").unwrap(), Some(500));
        let err = p.count("timeoutSeconds").unwrap_err();
        assert_eq!(err.code().as_u16(), 400);
        assert!(err.to_string().contains("timeoutSeconds"), "{err}");
        assert!(p.count("neg").unwrap_err().to_string().contains("neg"));
        assert_eq!(p.int("neg").unwrap(), Some(-1));
        assert_eq!(p.count("empty").unwrap(), None);
        assert_eq!(p.count("absent").unwrap(), None);
    }

    #[test]
    fn repeated_parameters_keep_every_value_in_order() {
        let p = Params::parse(Some("command=sh&command=-c&command=echo+a%26b&stdout=1")).unwrap();
        assert_eq!(p.all("command").collect::<Vec<_>>(), ["sh", "-c", "echo a&b"]);
        assert_eq!(p.get("command"), Some("sh"));
        assert!(p.contains("stdout"));
    }

    #[test]
    fn oversized_queries_are_refused() {
        let long = "a=".to_string() + &"x".repeat(MAX_QUERY_BYTES);
        assert_eq!(Params::parse(Some(&long)).unwrap_err().code().as_u16(), 400);
        let many = vec!["a=1"; MAX_PARAMS + 1].join("&");
        assert_eq!(Params::parse(Some(&many)).unwrap_err().code().as_u16(), 400);
    }
}
