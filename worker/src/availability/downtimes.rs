//! Downtimes declared in the cluster: the worker reads upmeter's `deckhouse.io/v1alpha1`
//! `Downtime` objects from the cluster it reaches and mirrors them into etcd under
//! `downtimes/cluster.<name>/`, where the range API reads them beside users' own. Every worker of
//! a cluster does it; they write the same records, and only what changed.

use std::collections::BTreeMap;
use std::time::Duration;

use chaos_def::availability::{DowntimeWindow, StoredDowntime, cluster_source};
use chaos_def::store::Store;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::runtime::KubeGateway;

/// How often the cluster's Downtimes are read.
pub const EVERY: Duration = Duration::from_secs(15);
/// At most this many Downtimes are mirrored from one cluster.
pub const MAX_DOWNTIMES: usize = 1_000;

/// Mirrors the cluster's Downtimes every [`EVERY`] until `cancel`.
pub async fn mirror(store: Store, kube: KubeGateway, cluster: String, cancel: CancellationToken) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(why) = sync(&store, &kube, &cluster).await {
            tracing::debug!(%why, "cluster Downtimes not mirrored this time");
        }
    }
}

/// One sync: what the cluster has is put (when it differs), what it no longer has is deleted.
pub async fn sync(store: &Store, kube: &KubeGateway, cluster: &str) -> Result<(), String> {
    let resolved = kube.resolve("deckhouse.io/v1alpha1", "Downtime").await.map_err(|e| format!("{e:?}"))?;
    let list = kube.list(&resolved, None, None, None).await.map_err(|e| format!("{e:?}"))?;
    let list: Value = serde_json::from_str(&list).map_err(|e| e.to_string())?;
    let source = cluster_source(cluster);
    let found = from_list(&list, &source);
    let prefix = store.keys().source_downtimes_prefix(&source);
    let stored: BTreeMap<String, StoredDowntime> = store
        .list::<StoredDowntime>(&prefix)
        .await
        .map_err(|e| e.to_string())?
        .items
        .into_iter()
        .map(|(_, v)| (v.value.name.clone(), v.value))
        .collect();
    for (name, downtime) in &found {
        if stored.get(name) != Some(downtime) {
            store.put(&store.keys().downtime(&source, name), downtime).await.map_err(|e| e.to_string())?;
        }
    }
    for name in stored.keys().filter(|name| !found.contains_key(*name)) {
        store.delete(&store.keys().downtime(&source, name)).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The Downtimes of a list answer; objects whose windows do not parse are skipped with a warning
/// (the cluster's validation is not ours).
pub fn from_list(list: &Value, source: &str) -> BTreeMap<String, StoredDowntime> {
    let mut found = BTreeMap::new();
    for item in list["items"].as_array().into_iter().flatten().take(MAX_DOWNTIMES) {
        let Some(name) = item.pointer("/metadata/name").and_then(Value::as_str) else { continue };
        match serde_json::from_value::<Vec<DowntimeWindow>>(item["spec"].clone()) {
            Ok(windows) => {
                let windows = windows.into_iter().take(chaos_availability::downtime::MAX_WINDOWS).collect();
                found.insert(name.to_string(), StoredDowntime { name: name.into(), source: source.into(), windows });
            }
            Err(e) => tracing::warn!(downtime = name, error = %e, "skipping a Downtime whose windows do not parse"),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downtimes_are_read_from_a_list_and_bad_ones_skipped() {
        let list = serde_json::json!({"items": [
            {"metadata": {"name": "upgrade"}, "spec": [{"startDate": "2026-01-01T10:00:00Z",
              "endDate": "2026-01-01T11:00:00Z", "type": "Maintenance", "affected": ["synthetic"]}]},
            {"metadata": {"name": "broken"}, "spec": [{"startDate": "soon", "type": "Maintenance"}]},
        ]});
        let found = from_list(&list, "cluster.default");
        assert_eq!(found.keys().collect::<Vec<_>>(), ["upgrade"]);
        assert_eq!(found["upgrade"].source, "cluster.default");
        assert_eq!(found["upgrade"].windows[0].affected, ["synthetic"]);
    }
}
