//! jq filters for HTTP probes, with jaq (the Rust jq): compiled once at apply time to check them
//! (so a typo is refused with its field path and line), and again by the probe plugin that runs
//! them against each answer. A probe is up when its filter yields `true` as its first output.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

/// The longest filter accepted.
pub const MAX_FILTER: usize = 4 << 10;

/// A compiled filter.
pub struct Filter {
    filter: jaq_core::Filter<data::JustLut<Val>>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Filter")
    }
}

/// Compiles `code` with jq's standard library; the error says where it fails.
pub fn compile(code: &str) -> Result<Filter, String> {
    if code.len() > MAX_FILTER {
        return Err(format!("the filter is {} bytes long; the limit is {MAX_FILTER}", code.len()));
    }
    let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
    let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader.load(&arena, File { code, path: () }).map_err(|errors| load_error(code, &errors))?;
    let filter = Compiler::default().with_funs(funs).compile(modules).map_err(|errors| {
        let names: Vec<String> =
            errors.iter().flat_map(|(_, undefined)| undefined.iter().map(|(name, _)| name.to_string())).collect();
        format!("not a valid jq filter: undefined {}", names.join(", "))
    })?;
    Ok(Filter { filter })
}

/// Describes a parse failure by the column where the filter stops making sense.
fn load_error(code: &str, errors: &jaq_core::load::Errors<&str, ()>) -> String {
    use jaq_core::load::Error;
    let rest = errors.iter().find_map(|(_, error)| match error {
        Error::Lex(lex) => lex.first().map(|(_, rest)| *rest),
        Error::Parse(parse) => parse.first().map(|(_, rest)| *rest),
        Error::Io(_) => None,
    });
    match rest {
        Some("") => "not a valid jq filter: it ends too early".to_string(),
        Some(rest) => {
            let column = code.len().saturating_sub(rest.len()) + 1;
            let near: String = rest.chars().take(20).collect();
            format!("not a valid jq filter: unexpected {near:?} at column {column}")
        }
        None => "not a valid jq filter".to_string(),
    }
}

impl Filter {
    /// Runs the filter on a JSON body: `Ok(true)` when its first output is `true`, `Ok(false)`
    /// for any other first output (or none), `Err` when the body is not JSON or the filter fails.
    pub fn test(&self, body: &[u8]) -> Result<bool, String> {
        let input = jaq_json::read::parse_single(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let first = self.filter.id.run((ctx, input)).map(unwrap_valr).next();
        match first {
            None => Ok(false),
            Some(Ok(value)) => Ok(value == Val::from(true)),
            Some(Err(e)) => Err(format!("the filter failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_tests_a_body() {
        let filter = compile(r#".status == "ok""#).unwrap();
        assert_eq!(filter.test(br#"{"status": "ok"}"#), Ok(true));
        assert_eq!(filter.test(br#"{"status": "error"}"#), Ok(false));
        assert!(filter.test(b"not json").unwrap_err().contains("not JSON"));
        let any = compile(r#"[.volumes[] | select(. == "rw")] | length > 0"#).unwrap();
        assert_eq!(any.test(br#"{"volumes": ["ro", "rw"]}"#), Ok(true));
        // Only `true` counts: a truthy string is not up.
        assert_eq!(compile(".status").unwrap().test(br#"{"status": "ok"}"#), Ok(false));
    }

    #[test]
    fn bad_filters_say_where() {
        let error = compile(".status ==").unwrap_err();
        assert!(error.contains("ends too early"), "{error}");
        let error = compile(".a | ) ").unwrap_err();
        assert!(error.contains("column"), "{error}");
        let error = compile("nosuchfunction(1)").unwrap_err();
        assert!(error.contains("undefined") && error.contains("nosuchfunction"), "{error}");
        assert!(compile(&"a".repeat(MAX_FILTER + 1)).unwrap_err().contains("limit"));
    }
}
