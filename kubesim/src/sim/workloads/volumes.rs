//! Claims and their volumes: every PersistentVolumeClaim is bound to a PersistentVolume of its
//! own (`pvc-<claim uid>`), as a dynamic provisioner does. A claim whose storage class is a
//! ReplicatedStorageClass also gets a ReplicatedVolume of the same name, which the storage
//! simulation then manages like any other; its PersistentVolume names it as the CSI volume
//! handle. When a claim goes, its PersistentVolume and ReplicatedVolume go too (reclaim policy
//! Delete).

use serde_json::{Value, json};

use super::plan::{Action, Kind, Plan, World, obj};
use crate::store::ObjRef;

/// The CSI driver of replicated volumes.
pub const REPLICATED_DRIVER: &str = "replicated.csi.storage.deckhouse.io";
/// On a ReplicatedVolume made for a claim: `namespace/name` of the claim.
pub const CLAIM_ANNOTATION: &str = "kubesim.dev/claim";

pub fn bind_claims(world: &World, plan: &mut Plan) {
    for claim in world.of(Kind::Claim).filter(|c| !obj::deleting(c)) {
        bind(world, claim, plan);
    }
    release(world, plan);
}

fn bind(world: &World, claim: &ObjRef, plan: &mut Plan) {
    let volume_name = format!("pvc-{}", obj::uid(claim));
    let class = claim.value["spec"]["storageClassName"].as_str().unwrap_or_default();
    let size = claim.value["spec"]["resources"]["requests"]["storage"].as_str().unwrap_or("1Gi").to_string();
    let replicated = world.get(Kind::StorageClass, "", class).is_some();
    if replicated && world.get(Kind::Volume, "", &volume_name).is_none() {
        let object = json!({
            "apiVersion": "storage.deckhouse.io/v1alpha1", "kind": "ReplicatedVolume",
            "metadata": {
                "name": volume_name,
                "annotations": {CLAIM_ANNOTATION: format!("{}/{}", claim.namespace(), claim.name())},
            },
            "spec": {"size": size, "replicatedStorageClassName": class},
        });
        plan.push(Action::Create { kind: Kind::Volume, namespace: String::new(), object });
    }
    let access_modes = claim.value["spec"]["accessModes"].clone();
    match world.get(Kind::PersistentVolume, "", &volume_name) {
        None => plan.push(Action::Create {
            kind: Kind::PersistentVolume,
            namespace: String::new(),
            object: persistent_volume(claim, &volume_name, class, &size, replicated),
        }),
        Some(pv) => plan.set_status(Kind::PersistentVolume, pv, json!({"phase": "Bound"})),
    }
    if claim.value["spec"]["volumeName"].as_str() != Some(volume_name.as_str()) {
        plan.set(Kind::Claim, claim, vec![(vec!["spec", "volumeName"], json!(volume_name))]);
    }
    let status = json!({"phase": "Bound", "accessModes": access_modes, "capacity": {"storage": size}});
    plan.set_status(Kind::Claim, claim, status);
}

fn persistent_volume(claim: &ObjRef, name: &str, class: &str, size: &str, replicated: bool) -> Value {
    let mut pv = json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": claim.value["spec"]["accessModes"].clone(),
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": class,
            "volumeMode": "Filesystem",
            "claimRef": {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "namespace": claim.namespace(), "name": claim.name(), "uid": obj::uid(claim),
            },
        },
    });
    if replicated {
        pv["spec"]["csi"] = json!({"driver": REPLICATED_DRIVER, "volumeHandle": name, "fsType": "ext4"});
    } else {
        pv["spec"]["hostPath"] = json!({"path": format!("/var/lib/kubesim/volumes/{name}")});
    }
    pv
}

/// Deletes the volumes of claims that are gone.
fn release(world: &World, plan: &mut Plan) {
    for pv in world.of(Kind::PersistentVolume).filter(|pv| !obj::deleting(pv)) {
        let claim_ref = &pv.value["spec"]["claimRef"];
        let (Some(ns), Some(name)) = (claim_ref["namespace"].as_str(), claim_ref["name"].as_str()) else { continue };
        let alive = world.get(Kind::Claim, ns, name).is_some_and(|c| Some(obj::uid(c)) == claim_ref["uid"].as_str());
        if alive || pv.value["spec"]["persistentVolumeReclaimPolicy"] != "Delete" {
            continue;
        }
        plan.delete(Kind::PersistentVolume, pv);
        if let Some(rv) = replicated_volume_name(pv).and_then(|n| world.get(Kind::Volume, "", n)) {
            plan.delete(Kind::Volume, rv);
        }
    }
}

/// The ReplicatedVolume behind a PersistentVolume, if it is a replicated one.
pub fn replicated_volume_name(pv: &ObjRef) -> Option<&str> {
    let csi = &pv.value["spec"]["csi"];
    (csi["driver"] == REPLICATED_DRIVER).then(|| csi["volumeHandle"].as_str()).flatten()
}

/// Whether a pod's volumes can be used: every claim it names is bound, and every replicated
/// volume behind them is IOReady. `Err` names the first that is not. `get` looks objects up (the
/// kubelet's cache, or the store for a running application).
pub fn pod_volumes_ready(pod: &Value, get: impl Fn(Kind, &str, &str) -> Option<ObjRef>) -> Result<Vec<String>, String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let mut ready = Vec::new();
    for volume in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let Some(claim_name) = volume["persistentVolumeClaim"]["claimName"].as_str() else { continue };
        let name = volume["name"].as_str().unwrap_or(claim_name);
        let claim = get(Kind::Claim, ns, claim_name)
            .ok_or_else(|| format!("persistentvolumeclaim \"{claim_name}\" not found"))?;
        let pv_name = claim.value["spec"]["volumeName"].as_str().filter(|_| claim.value["status"]["phase"] == "Bound");
        let pv_name = pv_name.ok_or_else(|| format!("persistentvolumeclaim \"{claim_name}\" is not bound"))?;
        let pv = get(Kind::PersistentVolume, "", pv_name)
            .ok_or_else(|| format!("persistentvolume \"{pv_name}\" not found"))?;
        if let Some(rv_name) = replicated_volume_name(&pv) {
            let io_ready = get(Kind::Volume, "", rv_name).is_some_and(|rv| {
                rv.value["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["type"] == "IOReady" && c["status"] == "True"))
            });
            if !io_ready {
                return Err(format!("volume {name} (replicatedvolume {rv_name}) is not IOReady"));
            }
        }
        ready.push(name.to_string());
    }
    Ok(ready)
}
