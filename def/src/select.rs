//! Target selection: which pods (and which of their containers) a fault acts on.
//!
//! Every plugin that picks pods uses [`select`], one pure, seeded function, so that the same seed
//! and the same cluster pick the same targets — in a run, in its replay, and in `--dry-run`.
//! The format is the one Chaos Mesh's users know (docs/workflows.md):
//!
//! ```yaml
//! target:
//!   namespaces: [smoke-mini]          # where to look (required)
//!   labelSelector: app=smoke-mini     # the API server filters by these two
//!   fieldSelector: status.phase=Running
//!   nameRegex: '^smoke-mini-a-'       # then the pod's name must match (a search; anchor it)
//!   containerRegex: ['^smoke']        # and its containers: those matching any (all if none)
//!   mode: fixed-percent               # one | all | fixed | fixed-percent | random-max-percent
//!   value: 50                         # N for fixed, P (0–100) for the percentages
//! ```
//!
//! How many are picked from `n` candidates:
//! - `one`: 1; `all`: n; `fixed`: min(N, n);
//! - `fixed-percent`: ⌊n·P/100⌋, at least 1 when P > 0 (eris' "pod affected percentage");
//! - `random-max-percent`: uniform in 1..=max(1, ⌊n·P/100⌋) when P > 0, none when P = 0.
//!
//! Candidates are sorted by namespace and name first, so the order the API server lists them
//! in does not matter; then the draw is a partial Fisher–Yates shuffle with [`SplitMix64`]
//! seeded from the caller's seed. The generator is spelled out here (not borrowed from a crate
//! whose stream may change between versions): a stored run must replay identically after an
//! upgrade.

use serde::{Deserialize, Serialize};

use crate::validation::{SpecError, check_dns_label};

/// Namespaces one target may name.
pub const MAX_NAMESPACES: usize = 32;
/// Container patterns one target may give.
pub const MAX_CONTAINER_PATTERNS: usize = 8;
/// The longest pattern or selector accepted.
pub const MAX_PATTERN: usize = 512;
/// The most targets `fixed` may ask for.
pub const MAX_FIXED: u32 = 10_000;
/// Compiled patterns are bounded, so that a hostile one cannot take the worker's memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Which pods a fault acts on, as the user writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetSpec {
    /// Namespaces to look in (at least one).
    pub namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selector: Option<String>,
    /// A regular expression the pod's name must match (a search: anchor it with `^...$`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_regex: Option<String>,
    /// The containers acted on: those matching any of these (every container when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_regex: Vec<String>,
    #[serde(default)]
    pub mode: SelectMode,
    /// N for `fixed`, P (0–100) for `fixed-percent` and `random-max-percent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<u32>,
}

/// How many of the candidates are picked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SelectMode {
    #[default]
    One,
    All,
    Fixed,
    FixedPercent,
    RandomMaxPercent,
}

/// A pod the cluster offers: where it is and its containers' names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Candidate {
    pub namespace: String,
    pub name: String,
    pub containers: Vec<String>,
}

/// A picked pod and the containers of it to act on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Target {
    pub namespace: String,
    pub name: String,
    pub containers: Vec<String>,
}

/// A target spec with its patterns compiled: made once per run, used every round.
#[derive(Debug, Clone)]
pub struct Selector {
    spec: TargetSpec,
    name: Option<regex::Regex>,
    containers: Vec<regex::Regex>,
}

impl Selector {
    /// Compiles the patterns; an error names the field (`nameRegex`, `containerRegex[1]`).
    pub fn new(spec: TargetSpec) -> Result<Self, SpecError> {
        let name = spec.name_regex.as_deref().map(|p| compile("nameRegex", p)).transpose()?;
        let containers = spec
            .container_regex
            .iter()
            .enumerate()
            .map(|(i, p)| compile(&format!("containerRegex[{i}]"), p))
            .collect::<Result<_, _>>()?;
        Ok(Selector { spec, name, containers })
    }

    pub fn spec(&self) -> &TargetSpec {
        &self.spec
    }

    /// The candidates this selector accepts, each with the containers it acts on, sorted by
    /// namespace and name. A pod outside the namespaces, not matching `nameRegex`, or with no
    /// container matching `containerRegex` is not one.
    pub fn eligible(&self, candidates: &[Candidate]) -> Vec<Target> {
        self.eligible_indices(candidates).into_iter().map(|i| self.target(&candidates[i])).collect()
    }

    /// The eligible candidates' places in `candidates`, sorted by namespace and name, each pod
    /// once: what is drawn from, without copying a name.
    fn eligible_indices(&self, candidates: &[Candidate]) -> Vec<usize> {
        let mut eligible: Vec<usize> = (0..candidates.len())
            .filter(|i| {
                let c = &candidates[*i];
                self.spec.namespaces.contains(&c.namespace)
                    && self.name.as_ref().is_none_or(|re| re.is_match(&c.name))
                    && c.containers.iter().any(|name| self.accepts_container(name))
            })
            .collect();
        let key = |i: &usize| (&candidates[*i].namespace, &candidates[*i].name);
        eligible.sort_by(|a, b| key(a).cmp(&key(b)));
        eligible.dedup_by(|a, b| key(a) == key(b));
        eligible
    }

    fn accepts_container(&self, name: &str) -> bool {
        self.containers.is_empty() || self.containers.iter().any(|re| re.is_match(name))
    }

    /// A candidate as a target: its containers the patterns accept.
    fn target(&self, c: &Candidate) -> Target {
        let containers = c.containers.iter().filter(|name| self.accepts_container(name)).cloned().collect();
        Target { namespace: c.namespace.clone(), name: c.name.clone(), containers }
    }
}

fn compile(field: &str, pattern: &str) -> Result<regex::Regex, SpecError> {
    if pattern.len() > MAX_PATTERN {
        return Err(SpecError::new(field, format!("at most {MAX_PATTERN} bytes, found {}", pattern.len())));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| SpecError::new(field, format!("invalid regular expression: {}", one_line(&e.to_string()))))
}

fn one_line(text: &str) -> String {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// How many of `n` eligible candidates `mode` picks (`draw` gives a uniform number in
/// `lo..=hi` for `random-max-percent`).
pub fn how_many(mode: SelectMode, value: Option<u32>, n: usize, draw: &mut impl FnMut(u64, u64) -> u64) -> usize {
    let value = value.unwrap_or(0) as usize;
    let share = |p: usize| n * p.min(100) / 100;
    let count = match mode {
        SelectMode::One => 1,
        SelectMode::All => n,
        SelectMode::Fixed => value,
        SelectMode::FixedPercent if value == 0 => 0,
        SelectMode::FixedPercent => share(value).max(1),
        SelectMode::RandomMaxPercent if value == 0 => 0,
        SelectMode::RandomMaxPercent => draw(1, share(value).max(1) as u64) as usize,
    };
    count.min(n)
}

/// Picks the targets among `candidates` with `seed`: pure, so the same seed and the same
/// candidates (in any order) give the same targets.
pub fn select(selector: &Selector, candidates: &[Candidate], seed: u64) -> Vec<Target> {
    let mut eligible = selector.eligible_indices(candidates);
    let mut rng = SplitMix64::new(seed);
    let spec = selector.spec();
    let count = how_many(spec.mode, spec.value, eligible.len(), &mut |lo, hi| rng.range(lo, hi));
    // Partial Fisher–Yates: the first `count` places get a uniform draw of the rest.
    for i in 0..count {
        let j = rng.range(i as u64, eligible.len() as u64 - 1) as usize;
        eligible.swap(i, j);
    }
    let mut picked: Vec<Target> = eligible[..count].iter().map(|i| selector.target(&candidates[*i])).collect();
    picked.sort();
    picked
}

impl TargetSpec {
    /// Every problem with the target, with paths under `path`.
    pub fn validate(&self, path: &str) -> Vec<SpecError> {
        let mut errors = Vec::new();
        let mut error = |field: &str, message: String| errors.push(SpecError::new(format!("{path}.{field}"), message));
        if self.namespaces.is_empty() {
            error("namespaces", "must name at least one namespace".into());
        }
        if self.namespaces.len() > MAX_NAMESPACES {
            error("namespaces", format!("at most {MAX_NAMESPACES}, found {}", self.namespaces.len()));
        }
        for (i, namespace) in self.namespaces.iter().enumerate() {
            if let Err(why) = check_dns_label(namespace) {
                error(&format!("namespaces[{i}]"), format!("{namespace:?} is not a valid namespace: {why}"));
            }
        }
        for (field, selector) in [("labelSelector", &self.label_selector), ("fieldSelector", &self.field_selector)] {
            if selector.as_ref().is_some_and(|s| s.len() > MAX_PATTERN) {
                error(field, format!("at most {MAX_PATTERN} bytes"));
            }
        }
        if self.container_regex.len() > MAX_CONTAINER_PATTERNS {
            error("containerRegex", format!("at most {MAX_CONTAINER_PATTERNS} patterns"));
        }
        if let Err(e) = Selector::new(self.clone()) {
            error(&e.path, e.message);
        }
        match (self.mode, self.value) {
            (SelectMode::One | SelectMode::All, Some(_)) => {
                error("value", format!("mode {} takes no value", self.mode.as_str()));
            }
            (SelectMode::Fixed, None) => error("value", "mode fixed needs a value: how many pods".into()),
            (SelectMode::Fixed, Some(n)) if n == 0 || n > MAX_FIXED => {
                error("value", format!("must be between 1 and {MAX_FIXED}, found {n}"));
            }
            (SelectMode::FixedPercent | SelectMode::RandomMaxPercent, None) => {
                error("value", format!("mode {} needs a value: a percentage (0–100)", self.mode.as_str()));
            }
            (SelectMode::FixedPercent | SelectMode::RandomMaxPercent, Some(p)) if p > 100 => {
                error("value", format!("a percentage is at most 100, found {p}"));
            }
            _ => {}
        }
        errors
    }
}

impl SelectMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SelectMode::One => "one",
            SelectMode::All => "all",
            SelectMode::Fixed => "fixed",
            SelectMode::FixedPercent => "fixed-percent",
            SelectMode::RandomMaxPercent => "random-max-percent",
        }
    }
}

/// A small seeded generator with a stream fixed by this code (SplitMix64).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `lo..=hi` (`lo` when `hi <= lo`), without modulo bias.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let n = (hi - lo).saturating_add(1);
        if n == 0 {
            return self.next_u64();
        }
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return lo + v % n;
            }
        }
    }
}

/// The candidates of a pod list as the API server returns it (`{"items": [...]}` items).
pub fn candidates_of(pods: &[serde_json::Value]) -> Vec<Candidate> {
    pods.iter()
        .filter_map(|pod| {
            let meta = pod.get("metadata")?;
            let containers = pod
                .pointer("/spec/containers")
                .and_then(serde_json::Value::as_array)
                .map(|cs| cs.iter().filter_map(|c| c.get("name")?.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            Some(Candidate {
                namespace: meta.get("namespace")?.as_str()?.to_string(),
                name: meta.get("name")?.as_str()?.to_string(),
                containers,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn spec(mode: SelectMode, value: Option<u32>) -> TargetSpec {
        TargetSpec {
            namespaces: vec!["a".into(), "b".into()],
            label_selector: None,
            field_selector: None,
            name_regex: None,
            container_regex: Vec::new(),
            mode,
            value,
        }
    }

    fn pods(n: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                namespace: if i % 3 == 0 { "b" } else { "a" }.into(),
                name: format!("pod-{i}"),
                containers: vec!["app".into(), "sidecar".into()],
            })
            .collect()
    }

    #[test]
    fn counts_follow_chaos_mesh_modes() {
        let mut never = |_: u64, _: u64| -> u64 { unreachable!("no draw for this mode") };
        assert_eq!(how_many(SelectMode::One, None, 7, &mut never), 1);
        assert_eq!(how_many(SelectMode::One, None, 0, &mut never), 0);
        assert_eq!(how_many(SelectMode::All, None, 7, &mut never), 7);
        assert_eq!(how_many(SelectMode::Fixed, Some(3), 7, &mut never), 3);
        assert_eq!(how_many(SelectMode::Fixed, Some(30), 7, &mut never), 7);
        assert_eq!(how_many(SelectMode::FixedPercent, Some(50), 7, &mut never), 3, "rounded down");
        assert_eq!(how_many(SelectMode::FixedPercent, Some(10), 7, &mut never), 1, "at least one when P > 0");
        assert_eq!(how_many(SelectMode::FixedPercent, Some(0), 7, &mut never), 0);
        assert_eq!(how_many(SelectMode::FixedPercent, Some(100), 7, &mut never), 7);
        let mut top = |_: u64, hi: u64| hi;
        assert_eq!(how_many(SelectMode::RandomMaxPercent, Some(50), 10, &mut top), 5);
    }

    #[test]
    fn name_and_container_patterns_filter() {
        let mut s = spec(SelectMode::All, None);
        s.name_regex = Some("^pod-1".into());
        s.container_regex = vec!["^side".into(), "^nope$".into()];
        let picked = select(&Selector::new(s).unwrap(), &pods(12), 1);
        let names: Vec<&str> = picked.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["pod-1", "pod-10", "pod-11"]);
        assert!(picked.iter().all(|t| t.containers == ["sidecar"]));
    }

    #[test]
    fn invalid_patterns_and_values_are_named() {
        let mut s = spec(SelectMode::FixedPercent, Some(120));
        s.name_regex = Some("smoke-(".into());
        s.container_regex = vec!["ok".into(), "[".into()];
        let errors = s.validate("spec.workflows[0].steps[1].fault.target");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["spec.workflows[0].steps[1].fault.target.nameRegex", "spec.workflows[0].steps[1].fault.target.value"]
        );
        assert!(errors[0].message.contains("invalid regular expression"), "{}", errors[0].message);
        assert!(errors[1].message.contains("at most 100"));
        let mut only_containers = spec(SelectMode::One, None);
        only_containers.container_regex = vec!["ok".into(), "[".into()];
        assert_eq!(only_containers.validate("t")[0].path, "t.containerRegex[1]");
        assert_eq!(spec(SelectMode::Fixed, None).validate("t")[0].path, "t.value");
    }

    fn mode() -> impl Strategy<Value = (SelectMode, Option<u32>)> {
        prop_oneof![
            Just((SelectMode::One, None)),
            Just((SelectMode::All, None)),
            (1u32..20).prop_map(|n| (SelectMode::Fixed, Some(n))),
            (0u32..=100).prop_map(|p| (SelectMode::FixedPercent, Some(p))),
            (0u32..=100).prop_map(|p| (SelectMode::RandomMaxPercent, Some(p))),
        ]
    }

    proptest! {
        /// Selection never picks outside the candidates (nor a container a pod does not have or
        /// the patterns exclude), picks as many as its mode says, and the same seed picks the
        /// same targets whatever order the cluster lists the pods in.
        #[test]
        fn picks_within_the_candidates_and_replays(
            n in 0usize..40,
            (mode, value) in mode(),
            seed in any::<u64>(),
            name_filter in proptest::option::of("pod-[0-9]"),
            container_filter in proptest::collection::vec(prop_oneof![Just("^app$"), Just("car"), Just("x")], 0..3),
            rotate in 0usize..40,
        ) {
            let mut s = spec(mode, value);
            s.name_regex = name_filter.clone();
            s.container_regex = container_filter.iter().map(|p| p.to_string()).collect();
            let selector = Selector::new(s).unwrap();
            let candidates = pods(n);
            let picked = select(&selector, &candidates, seed);

            let eligible = selector.eligible(&candidates);
            for target in &picked {
                let source = candidates.iter().find(|c| c.namespace == target.namespace && c.name == target.name);
                let source = source.expect("a picked pod is a candidate");
                prop_assert!(target.containers.iter().all(|c| source.containers.contains(c)));
                prop_assert!(!target.containers.is_empty());
                if let Some(filter) = &name_filter {
                    prop_assert!(target.name.contains(filter.as_str()) || regex::Regex::new(filter).unwrap().is_match(&target.name));
                }
            }
            let distinct: BTreeSet<_> = picked.iter().map(|t| (&t.namespace, &t.name)).collect();
            prop_assert_eq!(distinct.len(), picked.len(), "no pod twice");
            let m = eligible.len();
            match mode {
                SelectMode::One => prop_assert_eq!(picked.len(), m.min(1)),
                SelectMode::All => prop_assert_eq!(picked.len(), m),
                SelectMode::Fixed => prop_assert_eq!(picked.len(), (value.unwrap() as usize).min(m)),
                SelectMode::FixedPercent => {
                    let p = value.unwrap() as usize;
                    let want = if p == 0 { 0 } else { (m * p / 100).max(1).min(m) };
                    prop_assert_eq!(picked.len(), want);
                }
                SelectMode::RandomMaxPercent => {
                    let p = value.unwrap() as usize;
                    prop_assert!(picked.len() <= (m * p / 100).max(usize::from(p > 0)).min(m));
                    prop_assert!(p == 0 || m == 0 || !picked.is_empty());
                }
            }

            let mut shuffled = candidates.clone();
            if !shuffled.is_empty() {
                let k = rotate % shuffled.len();
                shuffled.rotate_left(k);
                shuffled.reverse();
            }
            prop_assert_eq!(select(&selector, &shuffled, seed), picked);
        }
    }

    #[test]
    fn different_seeds_spread_over_the_candidates() {
        let selector = Selector::new(spec(SelectMode::One, None)).unwrap();
        let candidates = pods(10);
        let hit: BTreeSet<String> =
            (0..200).flat_map(|seed| select(&selector, &candidates, seed)).map(|t| t.name).collect();
        assert_eq!(hit.len(), 10, "every pod is picked by some seed");
    }
}
