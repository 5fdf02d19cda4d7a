//! What the megatest plugins (plugins/builtin/*) share on the guest side: the seeded random
//! source for the pure decisions of `chaos-megatest-logic`, config errors, the storage nodes, and
//! attaching/detaching a volume with the waits of the original megatest (by watch, bounded, cut short by
//! cancellation).

use chaos_plugin_sdk::kube::{self, Selectors};
use chaos_plugin_sdk::objects::{
    ObjectMeta, ReplicatedVolume, ReplicatedVolumeAttachment, ReplicatedVolumeAttachmentSpec, condition,
};
use chaos_plugin_sdk::{self as sdk, Duration, Error, Range, action, log};

pub use chaos_def::records::{STATE_INJECTED_AT, STATE_READY};
use chaos_def::select::{Selector, Target, TargetSpec};
pub use chaos_megatest_logic as logic;
pub use logic::attacher::rva_name;

/// The label of storage nodes.
pub const STORAGE_NODE_LABEL: &str = "storage.deckhouse.io/sds-replicated-volume-node";

/// How long an attach may take before it is a failure (the storage needs seconds; a stuck one
/// is a finding, not a reason to block forever).
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a detach (and the node leaving `actuallyAttachedTo`) may take.
pub const DETACH_TIMEOUT: Duration = Duration::from_secs(300);

/// Reasons of `Attached=False` that will not resolve by waiting (the reference): fail fast.
pub const FATAL_ATTACH_REASONS: [&str; 2] = ["LocalityNotSatisfied", "UnableToProvideLocalVolumeAccess"];

/// The instance's seeded random stream, for the pure decisions.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostRandom;

impl logic::Random for HostRandom {
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        sdk::rand::range_u64(lo, hi)
    }
}

/// A config error: logged, and returned as `invalid` before the plugin touches anything.
pub fn config_error(why: String) -> Error {
    log::error("invalid config", &[("error", &why)]);
    Error::Invalid(why)
}

/// Sleeps a random time in `range`; false when cut short by cancellation.
pub fn wait_random(range: &Range<Duration>) -> bool {
    sdk::sleep(sdk::rand::duration(range))
}

/// The storage nodes' names, sorted.
pub fn storage_nodes() -> Result<Vec<String>, Error> {
    let nodes = kube::list(kube::NODES, None, &Selectors::labels(STORAGE_NODE_LABEL))?;
    let mut names: Vec<String> =
        nodes.iter().filter_map(|n| n.pointer("/metadata/name").and_then(|v| v.as_str()).map(str::to_string)).collect();
    names.sort();
    Ok(names)
}

/// The attachments of `rv` (all of them, whoever created them), not being deleted.
pub fn active_attachments(rv: &str) -> Result<Vec<ReplicatedVolumeAttachment>, Error> {
    let all = kube::list_as::<ReplicatedVolumeAttachment>(
        None,
        &Selectors::fields(format!("spec.replicatedVolumeName={rv}")),
    )?;
    Ok(all.into_iter().filter(|a| a.metadata.deletion_timestamp.is_none()).collect())
}

/// The nodes of [`active_attachments`], sorted.
pub fn attached_nodes(rv: &str) -> Result<Vec<String>, Error> {
    let mut nodes: Vec<String> = active_attachments(rv)?.into_iter().map(|a| a.spec.node_name).collect();
    nodes.sort();
    Ok(nodes)
}

/// The action "attach": creates `rva-<rv>-<node>` (adopting one that exists) and waits until it
/// is `Ready=True`; fails fast on the reasons that will not resolve.
pub fn attach(rv: &str, node: &str) -> Result<(), Error> {
    let name = rva_name(rv, node);
    action::action("attach", &[("rv", rv), ("node", node), ("rva", &name)], || {
        create_attachment(rv, node, &name)?;
        wait_attached(&name)
    })
}

fn create_attachment(rv: &str, node: &str, name: &str) -> Result<(), Error> {
    let rva = ReplicatedVolumeAttachment {
        metadata: ObjectMeta::named(name),
        spec: ReplicatedVolumeAttachmentSpec { replicated_volume_name: rv.to_string(), node_name: node.to_string() },
        status: None,
    };
    match kube::create_as(&rva) {
        Ok(_) => Ok(()),
        Err(Error::Conflict(_)) => {
            // It exists: adopt it, unless it is on its way out (a detach still running); then
            // wait until it is gone and attach anew.
            let existing = kube::try_get_as::<ReplicatedVolumeAttachment>(None, name)?;
            if existing.is_some_and(|a| a.metadata.deletion_timestamp.is_some()) {
                kube::wait_until::<ReplicatedVolumeAttachment>(None, name, DETACH_TIMEOUT, |a| a.is_none())?;
                kube::create_as(&rva).map(|_| ())
            } else {
                Ok(())
            }
        }
        Err(e) => Err(e),
    }
}

/// Waits until the attachment `name` is Ready (by watch).
pub fn wait_attached(name: &str) -> Result<(), Error> {
    let mut failure = None;
    kube::wait_until::<ReplicatedVolumeAttachment>(None, name, ATTACH_TIMEOUT, |a| match a {
        None => {
            failure = Some("the attachment was deleted while attaching".to_string());
            true
        }
        Some(a) if a.ready() => true,
        Some(a) => {
            let conditions = a.status.as_ref().map_or(&[][..], |s| &s.conditions[..]);
            match condition(conditions, "Attached") {
                Some(c)
                    if c.status == "False"
                        && c.reason.as_deref().is_some_and(|r| FATAL_ATTACH_REASONS.contains(&r)) =>
                {
                    failure = Some(format!(
                        "Attached=False reason {}: {}",
                        c.reason.as_deref().unwrap_or(""),
                        c.message.as_deref().unwrap_or("")
                    ));
                    true
                }
                _ => false,
            }
        }
    })?;
    match failure {
        None => Ok(()),
        Some(why) => Err(Error::other(why)),
    }
}

/// The action "detach": deletes `rva-<rv>-<node>` if it exists and waits until it is gone and
/// the node has left the volume's `actuallyAttachedTo`. The result says when there was nothing
/// to do (the original megatest logs every non-action too).
pub fn detach(rv: &str, node: &str) -> Result<(), Error> {
    let name = rva_name(rv, node);
    detach_named(rv, node, &name)
}

/// [`detach`] of an attachment whatever its name (one created by someone else).
pub fn detach_named(rv: &str, node: &str, name: &str) -> Result<(), Error> {
    let scope = action::Action::start("detach", &[("rv", rv), ("node", node), ("rva", name)]);
    let result = (|| -> Result<bool, Error> {
        let existed = kube::delete_if_exists(kube::REPLICATED_VOLUME_ATTACHMENTS, None, name)?;
        kube::wait_until::<ReplicatedVolumeAttachment>(None, name, DETACH_TIMEOUT, |a| a.is_none())?;
        kube::wait_until::<ReplicatedVolume>(None, rv, DETACH_TIMEOUT, |v| {
            v.is_none_or(|v| !v.attached_to().iter().any(|n| n == node))
        })?;
        Ok(existed)
    })();
    match result {
        Ok(true) => scope.ok("detached"),
        Ok(false) => scope.ok("nothing to do: no such attachment"),
        Err(e) => {
            scope.fail(&e.describe());
            return Err(e);
        }
    }
    Ok(())
}

/// Detaches every attachment of `rv` (the cleanup of volume-main and the attacher); the first
/// error, after trying them all.
pub fn detach_all(rv: &str) -> Result<usize, Error> {
    let all = kube::list_as::<ReplicatedVolumeAttachment>(
        None,
        &Selectors::fields(format!("spec.replicatedVolumeName={rv}")),
    )?;
    let mut first_error = None;
    for a in &all {
        if let Err(e) = detach_named(rv, &a.spec.node_name, &a.metadata.name) {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        None => Ok(all.len()),
        Some(e) => Err(e),
    }
}

/// The pods `target` picks now with `seed`: each namespace listed with the target's selectors,
/// then chaos-def's pure selection. The choice goes to the journal (`decision`, with the
/// candidates it was made from), so that a replay can say where it first chose otherwise.
pub fn pick_targets(target: &TargetSpec, seed: u64) -> Result<Vec<Target>, Error> {
    let selector = Selector::new(target.clone()).map_err(|e| Error::Invalid(format!("target.{}: {}", e.path, e.message)))?;
    let mut pods = Vec::new();
    for namespace in &target.namespaces {
        let sel = Selectors { labels: target.label_selector.clone(), fields: target.field_selector.clone() };
        pods.extend(kube::list(kube::PODS, Some(namespace), &sel)?);
    }
    let candidates = chaos_def::select::candidates_of(&pods);
    let picked = chaos_def::select::select(&selector, &candidates, seed);
    let names = |targets: &mut dyn Iterator<Item = String>| -> String {
        let mut all: Vec<String> = targets.collect();
        all.sort();
        let text = all.join(",");
        // Journal fields stay small; the count says how many there were.
        if text.len() > 2048 { format!("{}…", &text[..text.floor_char_boundary(2048)]) } else { text }
    };
    let eligible = selector.eligible(&candidates);
    let fields = [
        ("what", "targets".to_string()),
        ("mode", target.mode.as_str().to_string()),
        ("eligible", names(&mut eligible.iter().map(|t| format!("{}/{}", t.namespace, t.name)))),
        ("eligibleCount", eligible.len().to_string()),
        ("picked", names(&mut picked.iter().map(|t| format!("{}/{}", t.namespace, t.name)))),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    sdk::event("decision", &fields);
    Ok(picked)
}

/// The seed of a plugin's round `round` (1, 2, ...): the instance seed for the first (what
/// `--dry-run` shows), then a stable mix of it and the round, so that each round draws apart
/// and a replay draws the same.
pub fn round_seed(seed: u64, round: u64) -> u64 {
    if round <= 1 {
        return seed;
    }
    chaos_def::select::SplitMix64::new(seed ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}
