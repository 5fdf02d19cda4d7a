//! `volume-replica-creator` (a megatest plugin): every random `period` creates an Access or TieBreaker
//! replica of the RV, named `<rv>-<8 random>` (never Diskful: nothing removes surplus diskful
//! replicas). It does not wait: the storage places it. On stop (it is stopped after the volume
//! is deleted), if the volume is gone, it deletes what it created that is still there: a
//! replica created while the volume was being deleted would outlive it. Replicas of a volume
//! that still exists are the volume's, and stay.
//!
//! Config: `{"volume", "period": {"min", "max"}}`.

use chaos_megatest::logic::config;
use chaos_megatest::logic::replicas::{replica_name, replica_type};
use chaos_megatest::{self as mt};
use chaos_plugin_sdk::kube::{self, Selectors};
use chaos_plugin_sdk::objects::{ObjectMeta, ReplicatedVolumeReplica, ReplicatedVolumeReplicaSpec};
use chaos_plugin_sdk::{self as sdk, Error, action, log};
use serde_json::json;

sdk::capabilities!(
    r#"{"rules":[
        {"resources":["storage.deckhouse.io/replicatedvolumereplicas"],"verbs":["create","list","delete"]},
        {"resources":["storage.deckhouse.io/replicatedvolumes"],"verbs":["get"]}
    ]}"#
);

struct Creator;

impl sdk::Guest for Creator {
    fn run(config: String) -> Result<String, Error> {
        let cfg = config::replica_creator(&config, sdk::info().volume.as_deref()).map_err(mt::config_error)?;
        let rv = cfg.volume;
        let mut created = Vec::new();
        while mt::wait_random(&cfg.params.period) {
            let kind = replica_type(sdk::rand::next_u64());
            let name = replica_name(&rv, &sdk::rand::name_suffix(8));
            let replica = ReplicatedVolumeReplica {
                metadata: ObjectMeta::named(&name),
                spec: ReplicatedVolumeReplicaSpec {
                    replicated_volume_name: rv.clone(),
                    node_name: None,
                    type_: kind.to_string(),
                },
                status: None,
            };
            let params = [("rv", rv.as_str()), ("replica", name.as_str()), ("type", kind)];
            match action::action("create-replica", &params, || kube::create_as(&replica)) {
                Ok(_) => created.push(json!({"name": name, "type": kind})),
                Err(Error::Cancelled) => break,
                Err(e) => log::warn("create failed", &[("rv", &rv), ("error", &e.describe())]),
            }
            sdk::report(&[("created", created.len() as i64)], &json!({}));
        }
        // Cleanup of orphans only, by this instance's own labels (nothing of anyone else).
        let volume_gone = matches!(kube::get(kube::REPLICATED_VOLUMES, None, &rv), Err(Error::NotFound(_)));
        let left = if volume_gone {
            kube::list(kube::REPLICATED_VOLUME_REPLICAS, None, &Selectors::labels(sdk::owned_selector()))?
        } else {
            Vec::new()
        };
        let mut removed = 0;
        for replica in &left {
            if let Some(name) = replica.pointer("/metadata/name").and_then(serde_json::Value::as_str)
                && kube::delete_if_exists(kube::REPLICATED_VOLUME_REPLICAS, None, name)?
            {
                removed += 1;
            }
        }
        if removed > 0 {
            log::info("removed replicas left after the volume", &[("rv", &rv), ("count", &removed.to_string())]);
        }
        sdk::summary(&json!({"volume": rv, "created": created, "removedAtStop": removed}))
    }
}

sdk::export!(Creator);
