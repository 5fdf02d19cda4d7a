//! A plugin's declared capabilities: which kinds, verbs and namespaces it may touch. Declared in
//! the component's `chaos:capabilities` custom section (JSON, written by the SDK's
//! `capabilities!` macro) and read with `wasmparser` alone (feature `component`), so that the
//! apiserver reads it at push time without wasmtime. The worker checks every kube call against
//! it before the call is made; the apiserver checks it against the operator's policy
//! ([`Capabilities::not_granted_by`]) before a plugin is stored.

use serde::{Deserialize, Serialize};

/// The custom section's name.
pub const SECTION: &str = "chaos:capabilities";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// One grant, RBAC style: every listed verb on every listed resource in every listed namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// `plural` or `Kind` (core group), `group/plural` or `group/Kind`, `group/*`, or `*`.
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
    /// Namespaces for namespaced kinds (`*` for all). Cluster-scoped kinds ignore it; a rule
    /// without namespaces grants no namespaced access.
    #[serde(default)]
    pub namespaces: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Delete,
    Patch,
    /// HTTP through the API server's proxy to a service's or pod's port (RBAC's `services/proxy`
    /// and `pods/proxy`), granted on `services` or `pods`.
    Proxy,
    /// A command in a container (RBAC's `pods/exec`), granted on `pods`.
    Exec,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Delete => "delete",
            Verb::Patch => "patch",
            Verb::Proxy => "proxy",
            Verb::Exec => "exec",
        }
    }
}

const VERBS: [&str; 9] = ["get", "list", "watch", "create", "delete", "patch", "proxy", "exec", "*"];

/// A kind as the cluster knows it (after discovery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindRef<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub plural: &'a str,
    pub namespaced: bool,
}

fn split(entry: &str) -> (&str, &str) {
    match entry.rsplit_once('/') {
        Some((g, n)) => (g, n),
        None => ("", entry),
    }
}

impl Rule {
    fn has_verb(&self, verb: Verb) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb.as_str())
    }

    fn has_namespace(&self, namespace: Option<&str>) -> bool {
        match namespace {
            Some(ns) => self.namespaces.iter().any(|n| n == "*" || n == ns),
            // All namespaces at once.
            None => self.namespaces.iter().any(|n| n == "*"),
        }
    }

    fn has_group(&self, group: &str) -> bool {
        self.resources.iter().any(|r| r == "*" || split(r).0 == group)
    }

    fn has_kind(&self, k: &KindRef<'_>) -> bool {
        self.resources.iter().any(|r| {
            if r == "*" {
                return true;
            }
            let (g, n) = split(r);
            g == k.group && (n == "*" || n == k.plural || n == k.kind)
        })
    }
}

impl Capabilities {
    /// Parses and validates the JSON of the custom section.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let caps: Capabilities = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        for (i, rule) in caps.rules.iter().enumerate() {
            if let Some(v) = rule.verbs.iter().find(|v| !VERBS.contains(&v.as_str())) {
                return Err(format!("rules[{i}]: unknown verb {v:?} (expected one of {})", VERBS.join(", ")));
            }
            if rule.resources.is_empty() || rule.verbs.is_empty() {
                return Err(format!("rules[{i}]: needs resources and verbs"));
            }
        }
        Ok(caps)
    }

    #[cfg(feature = "component")]
    /// Reads the capabilities from a component's bytes: `None` when the section is absent (the
    /// plugin may make no kube call at all).
    pub fn read(wasm: &[u8]) -> Result<Option<Self>, String> {
        let mut found: Option<Vec<u8>> = None;
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            let payload = payload.map_err(|e| format!("not a WebAssembly component: {e}"))?;
            if let wasmparser::Payload::CustomSection(reader) = payload
                && reader.name() == SECTION
            {
                if found.is_some() {
                    return Err(format!("more than one {SECTION} section"));
                }
                found = Some(reader.data().to_vec());
            }
        }
        found.map(|json| Self::parse(&json)).transpose()
    }

    /// The check that needs no discovery: some rule grants the verb, the group and (when a
    /// namespace is named) the namespace. Refusing here means no request reaches the cluster.
    pub fn precheck(&self, verb: Verb, group: &str, namespace: Option<&str>) -> Result<(), String> {
        let ok = self
            .rules
            .iter()
            .any(|r| r.has_verb(verb) && r.has_group(group) && namespace.is_none_or(|ns| r.has_namespace(Some(ns))));
        if ok { Ok(()) } else { Err(self.refusal(verb, group, None, namespace)) }
    }

    /// The full check, once the kind is known.
    pub fn check(&self, verb: Verb, k: &KindRef<'_>, namespace: Option<&str>) -> Result<(), String> {
        let ok = self
            .rules
            .iter()
            .any(|r| r.has_verb(verb) && r.has_kind(k) && (!k.namespaced || r.has_namespace(namespace)));
        if ok {
            Ok(())
        } else {
            let namespace = if k.namespaced { namespace } else { None };
            Err(self.refusal(verb, k.group, Some(k.plural), namespace))
        }
    }

    fn refusal(&self, verb: Verb, group: &str, plural: Option<&str>, ns: Option<&str>) -> String {
        let what = match (group, plural) {
            ("", Some(p)) => p.to_string(),
            (g, Some(p)) => format!("{g}/{p}"),
            ("", None) => "core resources".to_string(),
            (g, None) => format!("resources of group {g}"),
        };
        let place = match ns {
            Some(ns) => format!(" in namespace {ns}"),
            None => String::new(),
        };
        format!("the plugin did not declare {verb} on {what}{place} in its capabilities", verb = verb.as_str())
    }
}

/// Whether an operator's `granted` entry (resource, verb or namespace) covers a requested one.
/// Wildcards are only covered by wildcards at least as wide: `*` by `*`, `group/*` by `group/*`
/// or `*`.
fn covers(granted: &str, requested: &str, grouped: bool) -> bool {
    if granted == "*" || granted == requested {
        return true;
    }
    match granted.strip_suffix("/*") {
        Some(group) if grouped => requested != "*" && split(requested).0 == group,
        _ => false,
    }
}

impl Capabilities {
    /// What this plugin asks for that `policy` does not grant, one line per verb, resource and
    /// namespace (empty: everything is granted). Resources are compared as written, so a policy
    /// that grants `pods` does not grant `Pod`: operators list the forms their plugins use.
    pub fn not_granted_by(&self, policy: &Capabilities) -> Vec<String> {
        let mut missing = Vec::new();
        for rule in &self.rules {
            // A rule without namespaces only reaches cluster-scoped kinds.
            let namespaces: Vec<Option<&str>> = if rule.namespaces.is_empty() {
                vec![None]
            } else {
                rule.namespaces.iter().map(|n| Some(n.as_str())).collect()
            };
            for resource in &rule.resources {
                for verb in &rule.verbs {
                    for namespace in &namespaces {
                        let granted = policy.rules.iter().any(|p| {
                            p.resources.iter().any(|r| covers(r, resource, true))
                                && p.verbs.iter().any(|v| covers(v, verb, false))
                                && namespace.is_none_or(|ns| p.namespaces.iter().any(|n| covers(n, ns, false)))
                        });
                        if !granted {
                            let place = match namespace {
                                Some("*") => " in every namespace".to_string(),
                                Some(ns) => format!(" in namespace {ns}"),
                                None => String::new(),
                            };
                            let line = format!("{verb} on {resource}{place}");
                            if !missing.contains(&line) {
                                missing.push(line);
                            }
                        }
                    }
                }
            }
        }
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(json: &str) -> Capabilities {
        Capabilities::parse(json.as_bytes()).unwrap()
    }

    const POD: KindRef<'static> = KindRef { group: "", kind: "Pod", plural: "pods", namespaced: true };
    const RV: KindRef<'static> = KindRef {
        group: "storage.deckhouse.io",
        kind: "ReplicatedVolume",
        plural: "replicatedvolumes",
        namespaced: false,
    };

    #[test]
    fn grants_what_is_declared_and_nothing_else() {
        let c = caps(
            r#"{"rules":[
                {"resources":["pods"],"verbs":["list","delete"],"namespaces":["d8"]},
                {"resources":["storage.deckhouse.io/*"],"verbs":["*"]}
            ]}"#,
        );
        assert!(c.check(Verb::Delete, &POD, Some("d8")).is_ok());
        assert!(c.check(Verb::Delete, &POD, Some("default")).is_err());
        assert!(c.check(Verb::Get, &POD, Some("d8")).is_err());
        assert!(c.check(Verb::List, &POD, None).is_err(), "all namespaces needs *");
        assert!(c.check(Verb::Create, &RV, None).is_ok());
        assert!(c.precheck(Verb::Delete, "", Some("kube-system")).is_err());
        assert!(c.precheck(Verb::Get, "apps", None).is_err());
        assert!(c.precheck(Verb::Watch, "storage.deckhouse.io", None).is_ok());
    }

    #[test]
    fn kinds_match_by_kind_or_plural() {
        let c = caps(r#"{"rules":[{"resources":["Pod"],"verbs":["get"],"namespaces":["*"]}]}"#);
        assert!(c.check(Verb::Get, &POD, Some("any")).is_ok());
        assert!(c.check(Verb::Get, &POD, None).is_ok());
    }

    #[test]
    fn the_refusal_names_verb_resource_and_namespace() {
        let c = caps(r#"{"rules":[]}"#);
        let msg = c.check(Verb::Delete, &POD, Some("kube-system")).unwrap_err();
        assert_eq!(msg, "the plugin did not declare delete on pods in namespace kube-system in its capabilities");
    }

    #[test]
    fn malformed_capabilities_are_rejected() {
        assert!(Capabilities::parse(br#"{"rules":[{"resources":["pods"],"verbs":["nuke"]}]}"#).is_err());
        assert!(Capabilities::parse(br#"{"rulez":[]}"#).is_err());
        assert!(Capabilities::parse(b"not json").is_err());
    }

    #[test]
    fn the_policy_grants_only_what_it_lists() {
        let policy = caps(
            r#"{"rules":[
                {"resources":["pods"],"verbs":["get","list","delete"],"namespaces":["default","d8"]},
                {"resources":["storage.deckhouse.io/*"],"verbs":["*"]}
            ]}"#,
        );
        let fine = caps(
            r#"{"rules":[{"resources":["pods"],"verbs":["list","delete"],"namespaces":["d8"]},
                         {"resources":["storage.deckhouse.io/replicatedvolumes"],"verbs":["create"]}]}"#,
        );
        assert_eq!(fine.not_granted_by(&policy), Vec::<String>::new());
        let greedy = caps(
            r#"{"rules":[{"resources":["pods"],"verbs":["delete","patch"],"namespaces":["d8","kube-system"]},
                         {"resources":["*"],"verbs":["get"],"namespaces":["*"]}]}"#,
        );
        assert_eq!(
            greedy.not_granted_by(&policy),
            vec![
                "delete on pods in namespace kube-system",
                "patch on pods in namespace d8",
                "patch on pods in namespace kube-system",
                "get on * in every namespace",
            ]
        );
        // `group/*` is covered by the same or by `*`, and covers the group's kinds only.
        let wide = caps(r#"{"rules":[{"resources":["storage.deckhouse.io/*","apps/deployments"],"verbs":["get"]}]}"#);
        assert_eq!(wide.not_granted_by(&policy), vec!["get on apps/deployments"]);
        let everything = caps(r#"{"rules":[{"resources":["*"],"verbs":["*"],"namespaces":["*"]}]}"#);
        assert!(greedy.not_granted_by(&everything).is_empty());
    }
}
