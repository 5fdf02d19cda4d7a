//! `volume-replica-destroyer` (a megatest plugin): every random `period` deletes a random replica of the
//! RV. It does not wait for anything: healing is the storage's business, judged by the checker.
//!
//! Config: `{"volume", "period": {"min", "max"}}`.

use chaos_megatest::logic::config;
use chaos_megatest::logic::replicas::victim;
use chaos_megatest::{self as mt, HostRandom};
use chaos_plugin_sdk::kube::{self, Selectors};
use chaos_plugin_sdk::objects::ReplicatedVolumeReplica;
use chaos_plugin_sdk::{self as sdk, Error, action, log};
use serde_json::json;

sdk::capabilities!(
    r#"{"rules":[
        {"resources":["storage.deckhouse.io/replicatedvolumereplicas"],"verbs":["list","delete"]}
    ]}"#
);

struct Destroyer;

impl sdk::Guest for Destroyer {
    fn run(config: String) -> Result<String, Error> {
        let cfg = config::replica_destroyer(&config, sdk::info().volume.as_deref()).map_err(mt::config_error)?;
        let rv = cfg.volume;
        let mut deleted = Vec::new();
        while mt::wait_random(&cfg.params.period) {
            let replicas = kube::list_as::<ReplicatedVolumeReplica>(
                None,
                &Selectors::fields(format!("spec.replicatedVolumeName={rv}")),
            )?;
            let mut live: Vec<&ReplicatedVolumeReplica> =
                replicas.iter().filter(|r| r.metadata.deletion_timestamp.is_none()).collect();
            live.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            let names: Vec<String> = live.iter().map(|r| r.metadata.name.clone()).collect();
            let Some(name) = victim(&names, &mut HostRandom).cloned() else {
                log::info("no replica to delete", &[("rv", &rv)]);
                continue;
            };
            let replica = live.iter().find(|r| r.metadata.name == name).copied();
            let kind = replica.map_or("", |r| r.spec.type_.as_str());
            let node = replica.and_then(|r| r.spec.node_name.as_deref()).unwrap_or("");
            let params = [("rv", rv.as_str()), ("replica", name.as_str()), ("type", kind), ("node", node)];
            match action::action("delete-replica", &params, || {
                kube::delete_if_exists(kube::REPLICATED_VOLUME_REPLICAS, None, &name)
            }) {
                Ok(_) => deleted.push(name),
                Err(Error::Cancelled) => break,
                Err(e) => log::warn("delete failed", &[("rv", &rv), ("error", &e.describe())]),
            }
            sdk::report(&[("deleted", deleted.len() as i64)], &json!({}));
        }
        sdk::summary(&json!({"volume": rv, "deleted": deleted}))
    }
}

sdk::export!(Destroyer);
