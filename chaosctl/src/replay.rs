//! Replays: `chaosctl replay NAME --as NEW` applies a scenario again under a new name with its
//! seed, and `chaosctl report NEW --against NAME` compares the decisions the two runs made.
//!
//! A decision is what a plugin journals as `decision` (which targets it picked, of which
//! eligible pods) and the workflows' step outcomes, per instance or workflow step. Both runs
//! are read from their journals; instance ids are compared without their run prefix (the
//! scenario's name and uid), which is all that differs between a run and its replay. The first
//! decision (in the replay's order) that differs is named, with why: the cluster offered other
//! candidates, or the same candidates were drawn from differently.

use std::collections::BTreeMap;
use std::fmt;

use chaos_def::api::EventEntry;
use chaos_def::records::StoredScenario;
use serde_json::Value;

/// One decision of a run, in the order the run made them within its owner.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The instance id without its run prefix (`w-node-failure-0`, `t-agents`), or the
    /// workflow step (`workflow node-failure step 3`).
    pub owner: String,
    /// Its place among the owner's decisions (0-based).
    pub index: usize,
    pub what: String,
    /// The choice: targets picked, or a step's outcome.
    pub chosen: String,
    /// What it was chosen from (the eligible targets), when the decision says.
    pub from: Option<String>,
}

/// Where a replay first chose otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    pub original: Option<Decision>,
    pub replay: Option<Decision>,
}

/// The comparison of two runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub original: String,
    pub replay: String,
    pub compared: usize,
    pub first_divergence: Option<Divergence>,
}

/// The decisions of a run, from its journal (oldest first).
pub fn decisions(run: &StoredScenario, journal: &[EventEntry]) -> Vec<Decision> {
    let prefix = format!("{}-", run.run_prefix());
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for entry in journal {
        let e = &entry.event;
        let field = |name: &str| e.fields.get(name).and_then(Value::as_str).map(str::to_string);
        let (owner, what, chosen, from) = match e.kind.as_str() {
            "decision" => {
                let Some(instance) = &e.instance else { continue };
                let owner = instance.strip_prefix(&prefix).unwrap_or(instance).to_string();
                (owner, field("what").unwrap_or_default(), field("picked").unwrap_or_default(), field("eligible"))
            }
            "step-ended" => {
                let owner = format!(
                    "workflow {} step {}",
                    field("workflow").unwrap_or_default(),
                    field("key").unwrap_or_default()
                );
                (
                    owner,
                    format!("step {}", field("step").unwrap_or_default()),
                    field("outcome").unwrap_or_default(),
                    None,
                )
            }
            _ => continue,
        };
        let index = counts.entry(owner.clone()).or_default();
        out.push(Decision { owner, index: *index, what, chosen, from });
        *index += 1;
    }
    out
}

/// Compares a replay's decisions with the original's: each of the replay's, in its order,
/// against the original's decision of the same owner and place.
pub fn compare(original: &StoredScenario, a: &[Decision], replay: &StoredScenario, b: &[Decision]) -> Comparison {
    let key = |d: &Decision| (d.owner.clone(), d.index);
    let originals: BTreeMap<(String, usize), &Decision> = a.iter().map(|d| (key(d), d)).collect();
    let mut compared = 0;
    let mut first = None;
    for decision in b {
        compared += 1;
        match originals.get(&key(decision)) {
            Some(o) if o.chosen == decision.chosen && o.what == decision.what && o.from == decision.from => {}
            found => {
                first = Some(Divergence { original: found.map(|d| (*d).clone()), replay: Some(decision.clone()) });
                break;
            }
        }
    }
    // The original made a decision the replay has not (yet) made.
    if first.is_none() && a.len() > b.len() {
        let made: std::collections::BTreeSet<(String, usize)> = b.iter().map(key).collect();
        if let Some(missing) = a.iter().find(|d| !made.contains(&key(d))) {
            first = Some(Divergence { original: Some(missing.clone()), replay: None });
        }
    }
    Comparison {
        original: original.metadata.name.clone(),
        replay: replay.metadata.name.clone(),
        compared,
        first_divergence: first,
    }
}

impl Divergence {
    /// Why the runs chose otherwise.
    pub fn why(&self) -> String {
        match (&self.original, &self.replay) {
            (Some(o), Some(r)) if o.from.is_some() && o.from != r.from => {
                "the cluster answered differently: the eligible targets were not the same".into()
            }
            (Some(_), Some(r)) if r.what.starts_with("step ") => {
                "the step ended otherwise: what the probes saw (the cluster) differed".into()
            }
            (Some(_), Some(_)) => {
                "the same candidates were drawn from differently (another seed or plugin version)".into()
            }
            (None, Some(_)) => "the original never made this decision".into(),
            (Some(_), None) => "the replay has not made this decision".into(),
            (None, None) => String::new(),
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Replay {} against {}: {} decisions compared", self.replay, self.original, self.compared)?;
        let Some(d) = &self.first_divergence else {
            return writeln!(f, "No divergence: every decision of the replay matches the original's.");
        };
        let at = d.replay.as_ref().or(d.original.as_ref()).expect("a divergence names a decision");
        writeln!(f, "First divergence: {} (decision {} of it, {})", at.owner, at.index + 1, at.what)?;
        let show = |f: &mut fmt::Formatter<'_>, run: &str, d: &Option<Decision>| match d {
            Some(d) => {
                let from = d.from.as_ref().map(|from| format!(" of [{from}]")).unwrap_or_default();
                writeln!(f, "  {run:<9}{}{from}", if d.chosen.is_empty() { "nothing" } else { &d.chosen })
            }
            None => writeln!(f, "  {run:<9}(none)"),
        };
        show(f, "original", &d.original)?;
        show(f, "replay", &d.replay)?;
        writeln!(f, "Why: {}", d.why())
    }
}

#[cfg(test)]
mod tests {
    use chaos_def::records::JournalEvent;
    use serde_json::json;

    use super::*;

    fn stored(name: &str, uid: &str) -> StoredScenario {
        let text = format!(
            "apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: {name}}}\nspec:\n  seed: 5\n  tasks: [{{name: t, plugin: noop}}]\n"
        );
        let scenario = chaos_def::parse_scenarios(&text).unwrap().remove(0);
        StoredScenario::create(scenario, uid.into(), jiff::Timestamp::UNIX_EPOCH)
    }

    fn picked(run: &StoredScenario, instance: &str, eligible: &str, picked: &str) -> EventEntry {
        let fields = json!({"what": "targets", "eligible": eligible, "picked": picked});
        let Value::Object(fields) = fields else { unreachable!() };
        EventEntry {
            seq: 0,
            event: JournalEvent {
                time: jiff::Timestamp::UNIX_EPOCH,
                kind: "decision".into(),
                instance: Some(format!("{}-{instance}", run.run_prefix())),
                volume: None,
                fields,
            },
        }
    }

    #[test]
    fn a_calm_replay_matches_and_a_changed_cluster_is_named() {
        let (a, b) = (stored("calm", "11111111-x"), stored("calm-again", "22222222-x"));
        let journal_a = [picked(&a, "w-f-0", "ns/a,ns/b", "ns/a"), picked(&a, "w-f-2", "ns/a,ns/b", "ns/b")];
        let journal_b = [picked(&b, "w-f-0", "ns/a,ns/b", "ns/a"), picked(&b, "w-f-2", "ns/a,ns/b", "ns/b")];
        let same = compare(&a, &decisions(&a, &journal_a), &b, &decisions(&b, &journal_b));
        assert_eq!((same.compared, same.first_divergence.clone()), (2, None));
        assert!(same.to_string().contains("No divergence"));

        let changed = [picked(&b, "w-f-0", "ns/a,ns/b", "ns/a"), picked(&b, "w-f-2", "ns/b,ns/c", "ns/c")];
        let diverged = compare(&a, &decisions(&a, &journal_a), &b, &decisions(&b, &changed));
        let first = diverged.first_divergence.clone().expect("a divergence");
        assert_eq!(first.replay.as_ref().unwrap().owner, "w-f-2");
        assert!(first.why().starts_with("the cluster answered differently"));
        let text = diverged.to_string();
        assert!(text.contains("First divergence: w-f-2 (decision 1 of it, targets)"), "{text}");
        assert!(text.contains("original ns/b of [ns/a,ns/b]"), "{text}");
    }
}
