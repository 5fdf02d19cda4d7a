//! `--dry-run`: which targets each fault step of a scenario would pick now, without storing
//! anything. Only workers reach clusters, so the apiserver asks one of the cluster's workers
//! through etcd: it writes a request under `dry-run/requests/<id>` on a short lease, a worker
//! that declares the cluster answers under `dry-run/answers/<id>` (create-only on the same
//! lease: the first answer stands), and etcd forgets both when the lease runs out.
//!
//! A fault's targets are what chaos-def's selection picks among the pods the cluster lists now,
//! with the seed its instance will get (the scenario's seed and the step's key): what the
//! fault's first selection will pick if the cluster does not change by then.

use serde::{Deserialize, Serialize};

use crate::select::{Candidate, Selector, Target, TargetSpec, select};

/// How long a request and its answer live in etcd.
pub const TTL: std::time::Duration = std::time::Duration::from_secs(30);
/// How long the apiserver waits for an answer.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// Fault steps one request may ask about.
pub const MAX_FAULTS: usize = 256;
/// Targets an answer lists per fault step; the rest are counted ([`Pick::more`]).
pub const MAX_TARGETS_SHOWN: usize = 100;
/// The most an answer may weigh: it goes through etcd (1.5 MiB per request by default) and
/// back to the client whole.
pub const MAX_ANSWER_BYTES: usize = 512 * 1024;

/// `dry-run/requests/<id>`: the fault steps of one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub cluster: String,
    /// The lease the answer goes on.
    pub lease: i64,
    pub faults: Vec<FaultQuery>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultQuery {
    pub workflow: String,
    pub step: String,
    pub key: String,
    pub target: TargetSpec,
    pub seed: u64,
}

/// `dry-run/answers/<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub worker: String,
    pub picks: Vec<Pick>,
}

/// What one fault step would pick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pick {
    pub workflow: String,
    pub step: String,
    pub cluster: String,
    /// Pods the target accepts now, of which `targets` are picked.
    pub eligible: usize,
    pub targets: Vec<Target>,
    /// Targets it would pick beyond those listed: lists stop at 100 targets a step, and
    /// shorter when the answer would weigh too much.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more: usize,
    /// Why nothing could be picked (no worker answered, the cluster refused the listing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The worker that listed the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Answer {
    /// `worker`'s answer, cut to a bounded size: at most [`MAX_TARGETS_SHOWN`] targets listed
    /// per step, and while it would weigh more than [`MAX_ANSWER_BYTES`], the last steps' lists
    /// counted instead of listed. Every pick keeps its count: `targets` plus `more`.
    pub fn new(worker: String, mut picks: Vec<Pick>) -> Answer {
        for pick in &mut picks {
            pick.list_at_most(MAX_TARGETS_SHOWN);
        }
        let weight = |pick: &Pick| serde_json::to_vec(pick).map_or(0, |bytes| bytes.len() + 1);
        let mut total: usize = worker.len() + picks.iter().map(weight).sum::<usize>();
        for pick in picks.iter_mut().rev() {
            if total <= MAX_ANSWER_BYTES {
                break;
            }
            let before = weight(pick);
            pick.list_at_most(0);
            total -= before - weight(pick);
        }
        Answer { worker, picks }
    }
}

impl Pick {
    /// Lists at most `n` targets, counting the others in `more`.
    fn list_at_most(&mut self, n: usize) {
        if self.targets.len() > n {
            self.more += self.targets.len() - n;
            self.targets.truncate(n);
        }
    }
}

impl FaultQuery {
    /// The pick among `candidates` (the pods of the target's namespaces and selectors).
    pub fn pick(&self, cluster: &str, candidates: &[Candidate]) -> Pick {
        let mut pick = Pick {
            workflow: self.workflow.clone(),
            step: self.step.clone(),
            cluster: cluster.to_string(),
            eligible: 0,
            targets: Vec::new(),
            more: 0,
            error: None,
            worker: None,
        };
        match Selector::new(self.target.clone()) {
            Ok(selector) => {
                pick.eligible = selector.eligible(candidates).len();
                pick.targets = select(&selector, candidates, self.seed);
            }
            Err(e) => pick.error = Some(format!("target.{}: {}", e.path, e.message)),
        }
        pick
    }

    /// The pick when the cluster could not be asked.
    pub fn failed(&self, cluster: &str, why: impl Into<String>) -> Pick {
        Pick { error: Some(why.into()), ..self.pick(cluster, &[]) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(step: usize, targets: usize, name_len: usize) -> Pick {
        let targets = (0..targets)
            .map(|i| Target { namespace: "ns".into(), name: format!("{i:0name_len$}"), containers: vec!["app".into()] })
            .collect::<Vec<_>>();
        Pick {
            workflow: "w".into(),
            step: format!("s{step}"),
            cluster: "c".into(),
            eligible: targets.len(),
            targets,
            more: 0,
            error: None,
            worker: None,
        }
    }

    fn counted(answer: &Answer) -> Vec<usize> {
        answer.picks.iter().map(|p| p.targets.len() + p.more).collect()
    }

    #[test]
    fn an_answer_lists_at_most_a_hundred_targets_a_step_and_counts_the_rest() {
        let answer = Answer::new("w-0".into(), vec![pick(0, 3, 4), pick(1, 250, 4)]);
        assert_eq!(answer.picks[0].targets.len(), 3);
        assert_eq!(answer.picks[0].more, 0);
        assert_eq!(answer.picks[1].targets.len(), MAX_TARGETS_SHOWN);
        assert_eq!(answer.picks[1].more, 150);
        assert_eq!(counted(&answer), vec![3, 250]);
        // The first hundred of the pick, in its order.
        assert_eq!(answer.picks[1].targets[99].name, "0099");
    }

    #[test]
    fn an_answer_too_heavy_counts_the_last_steps_instead_of_listing_them() {
        // 256 steps of 100 targets with 253-character names: about 7 MB listed.
        let picks: Vec<Pick> = (0..MAX_FAULTS).map(|s| pick(s, 100, 253)).collect();
        let answer = Answer::new("w-0".into(), picks);
        let weight = serde_json::to_vec(&answer).unwrap().len();
        assert!(weight <= MAX_ANSWER_BYTES, "{weight}");
        assert_eq!(counted(&answer), vec![100; MAX_FAULTS], "every step keeps its count");
        // The first steps stay listed; the cut is at the end.
        assert_eq!(answer.picks[0].targets.len(), 100);
        assert!(answer.picks[MAX_FAULTS - 1].targets.is_empty());
        let listed = answer.picks.iter().take_while(|p| !p.targets.is_empty()).count();
        assert!(answer.picks[listed..].iter().all(|p| p.targets.is_empty()), "cut from the end only");
        // The unlisted Pick omits nothing it had to say.
        let back: Answer = serde_json::from_slice(&serde_json::to_vec(&answer).unwrap()).unwrap();
        assert_eq!(back, answer);
    }
}
