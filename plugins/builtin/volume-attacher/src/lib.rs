//! `volume-attacher` (a megatest plugin): emulates CSI publishing a volume on different nodes through
//! ReplicatedVolumeAttachments. Every random `period` it draws a storage node and, by the number
//! of active attachments, runs a cycle (see `chaos_megatest_logic::attacher`): from 0 a normal
//! attach-wait-detach or, in 10%, an attach only; from 1 a migration or a detach; from 2 the
//! detach of a random one. Each attach waits for `Ready=True` (failing fast on the reasons that
//! will not resolve), each detach until the node leaves `actuallyAttachedTo`. On stop it detaches
//! every attachment of the volume and waits.
//!
//! Config: `{"volume", "period": {"min", "max"}}`.

use std::collections::BTreeMap;

use chaos_megatest::logic::attacher::{Cycle, decide_with};
use chaos_megatest::logic::config;
use chaos_megatest::{self as mt, HostRandom};
use chaos_plugin_sdk::{self as sdk, Duration, Error, Range, log};
use serde_json::json;

sdk::capabilities!(
    r#"{"rules":[
        {"resources":["storage.deckhouse.io/replicatedvolumeattachments"],"verbs":["get","list","watch","create","delete"]},
        {"resources":["storage.deckhouse.io/replicatedvolumes"],"verbs":["get","list","watch"]},
        {"resources":["nodes"],"verbs":["list"]}
    ]}"#
);

struct Attacher;

impl sdk::Guest for Attacher {
    fn run(config: String) -> Result<String, Error> {
        let cfg = config::attacher(&config, sdk::info().volume.as_deref()).map_err(mt::config_error)?;
        let rv = cfg.volume;
        let period = cfg.params.period;
        let mut cycles: BTreeMap<&'static str, i64> = BTreeMap::new();
        let mut failures = 0i64;
        while mt::wait_random(&period) {
            let nodes = mt::storage_nodes()?;
            let Some(wanted) = sdk::rand::choose(&nodes).cloned() else {
                log::warn("no storage node: nothing to do", &[("rv", &rv)]);
                continue;
            };
            let active = mt::attached_nodes(&rv)?;
            let cycle = decide_with(&active, &wanted, &mut HostRandom);
            log::info(
                "cycle",
                &[("rv", &rv), ("active", &active.join(",")), ("wanted", &wanted), ("cycle", cycle.name())],
            );
            *cycles.entry(cycle.name()).or_default() += 1;
            match run_cycle(&rv, &cycle, &period) {
                Ok(()) => {}
                Err(Error::Cancelled) => break,
                // The action logged it; the next cycle starts from whatever state it left.
                Err(e) => {
                    failures += 1;
                    log::warn("cycle failed", &[("rv", &rv), ("cycle", cycle.name()), ("error", &e.describe())]);
                }
            }
            let counters: Vec<(&str, i64)> = cycles.iter().map(|(k, v)| (*k, *v)).collect();
            sdk::report(&counters, &json!({"failures": failures}));
        }
        // Stopped: leave the volume without attachments.
        let detached = mt::detach_all(&rv)?;
        sdk::summary(&json!({"volume": rv, "cycles": cycles, "failures": failures, "detachedOnStop": detached}))
    }
}

fn run_cycle(rv: &str, cycle: &Cycle, period: &Range<Duration>) -> Result<(), Error> {
    match cycle {
        Cycle::Normal { node } => {
            mt::attach(rv, node)?;
            pause(period)?;
            detach_node(rv, node)
        }
        Cycle::AttachOnly { node } => mt::attach(rv, node),
        Cycle::Migration { from, to } => {
            mt::attach(rv, to)?;
            detach_node(rv, from)?;
            pause(period)?;
            detach_node(rv, to)
        }
        Cycle::Detach { node } => detach_node(rv, node),
    }
}

fn pause(period: &Range<Duration>) -> Result<(), Error> {
    if mt::wait_random(period) { Ok(()) } else { Err(Error::Cancelled) }
}

/// Detaches `node`: the attachment of the volume on that node, whatever its name (volume-main's
/// or another's), else `rva-<rv>-<node>` (logged as nothing to do when it does not exist).
fn detach_node(rv: &str, node: &str) -> Result<(), Error> {
    let name = mt::active_attachments(rv)?
        .into_iter()
        .find(|a| a.spec.node_name == node)
        .map_or_else(|| mt::rva_name(rv, node), |a| a.metadata.name);
    mt::detach_named(rv, node, &name)
}

sdk::export!(Attacher);
