//! `volume-attacher`: which cycle to run, from the number of active attachments (the original megatest's table).
//!
//! | active | wanted node | cycle | attachments after |
//! |---|---|---|---|
//! | 0 | — | normal (attach, wait, detach), or with 10% attach-only | 0 (1) |
//! | 1 | another node | migration (attach new, detach old, wait, detach new) | 0 |
//! | 1 | the attached node | detach it | 0 |
//! | 2 (or more) | either | detach a random one | 1 |

/// Percent of cycles from 0 attachments that only attach (the original megatest: `rand(100) < 10`); without
/// them the volume would never get back to 1 or 2 attachments after the start.
pub const ATTACH_ONLY_PERCENT: u64 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cycle {
    /// Attach `node`, wait a random time, detach it.
    Normal { node: String },
    /// Attach `node` and leave it attached.
    AttachOnly { node: String },
    /// Attach `to`, detach `from`, wait a random time, detach `to`.
    Migration { from: String, to: String },
    /// Detach `node` (the one wanted, already attached; or a random one of two).
    Detach { node: String },
}

impl Cycle {
    pub fn name(&self) -> &'static str {
        match self {
            Cycle::Normal { .. } => "normal",
            Cycle::AttachOnly { .. } => "attach-only",
            Cycle::Migration { .. } => "migration",
            Cycle::Detach { .. } => "detach",
        }
    }
}

/// The cycle for `active` attachments (node names) when `wanted` was drawn; `roll` is a uniform
/// number in `0..100` and `pick` a uniform number used to choose among the attached nodes.
pub fn decide(active: &[String], wanted: &str, roll: u64, pick: u64) -> Cycle {
    match active {
        [] if roll < ATTACH_ONLY_PERCENT => Cycle::AttachOnly { node: wanted.to_string() },
        [] => Cycle::Normal { node: wanted.to_string() },
        [one] if one == wanted => Cycle::Detach { node: one.clone() },
        [one] => Cycle::Migration { from: one.clone(), to: wanted.to_string() },
        // Two (a controller that crashed and came back, says the original megatest): detach one, whichever was
        // drawn. More than two cannot be active, but the same answer brings it down.
        many => Cycle::Detach { node: many[(pick % many.len() as u64) as usize].clone() },
    }
}

/// [`decide`] drawing its numbers from `rng`.
pub fn decide_with(active: &[String], wanted: &str, rng: &mut impl crate::Random) -> Cycle {
    let roll = rng.range(0, 99);
    let pick = rng.range(0, u64::MAX - 1);
    decide(active, wanted, roll, pick)
}

/// The name of the attachment of `rv` to `node`, as the upstream megatest names it.
pub fn rva_name(rv: &str, node: &str) -> String {
    format!("rva-{rv}-{node}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Random, SplitMix64};

    fn nodes() -> Vec<String> {
        (1..=5).map(|i| format!("node-{i}")).collect()
    }

    #[test]
    fn attach_only_share_from_zero_is_ten_percent() {
        let mut rng = SplitMix64::new(0x5eed);
        let nodes = nodes();
        let n = 10_000;
        let mut attach_only = 0;
        for _ in 0..n {
            let wanted = &nodes[rng.index(nodes.len())];
            match decide_with(&[], wanted, &mut rng) {
                Cycle::AttachOnly { node } => {
                    assert_eq!(&node, wanted);
                    attach_only += 1;
                }
                Cycle::Normal { node } => assert_eq!(&node, wanted),
                other => panic!("from 0 attachments: {other:?}"),
            }
        }
        let share = attach_only as f64 / n as f64;
        println!("attach-only share over {n} decisions from 0 attachments: {share}");
        assert!((0.08..=0.12).contains(&share), "attach-only share {share}");
    }

    #[test]
    fn every_branch_of_the_table_is_taken_with_the_right_action() {
        let mut rng = SplitMix64::new(42);
        let nodes = nodes();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..10_000 {
            let wanted = nodes[rng.index(nodes.len())].clone();
            let count = rng.range(0, 2) as usize;
            let mut active = nodes.clone();
            rng.shuffle(&mut active);
            active.truncate(count);
            let cycle = decide_with(&active, &wanted, &mut rng);
            let branch = match (active.len(), &cycle) {
                (0, Cycle::Normal { node }) if *node == wanted => "0-normal",
                (0, Cycle::AttachOnly { node }) if *node == wanted => "0-attach-only",
                (1, Cycle::Migration { from, to }) if *from == active[0] && *to == wanted && *to != *from => {
                    "1-migration"
                }
                (1, Cycle::Detach { node }) if *node == wanted && active[0] == wanted => "1-detach",
                (2, Cycle::Detach { node }) if active.contains(node) => {
                    if active.contains(&wanted) {
                        "2-detach-wanted-attached"
                    } else {
                        "2-detach-wanted-not-attached"
                    }
                }
                _ => panic!("wrong action {cycle:?} for active {active:?}, wanted {wanted}"),
            };
            seen.insert(branch);
        }
        assert_eq!(seen.len(), 6, "{seen:?}");
    }

    #[test]
    fn from_two_either_attachment_may_be_detached() {
        let active = vec!["node-1".to_string(), "node-2".to_string()];
        assert_eq!(decide(&active, "node-3", 50, 0), Cycle::Detach { node: "node-1".into() });
        assert_eq!(decide(&active, "node-3", 50, 1), Cycle::Detach { node: "node-2".into() });
    }

    #[test]
    fn the_roll_boundary_is_ten() {
        assert_eq!(decide(&[], "n", 9, 0).name(), "attach-only");
        assert_eq!(decide(&[], "n", 10, 0).name(), "normal");
        assert_eq!(rva_name("mgt-1", "node-2"), "rva-mgt-1-node-2");
    }
}
