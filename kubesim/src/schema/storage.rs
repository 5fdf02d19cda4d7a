//! The `openAPIV3Schema` of the four `storage.deckhouse.io/v1alpha1` kinds: the fields the
//! simulation reads from `spec` and writes to `status` (see `docs/kubesim.md`), as the CRDs that
//! kubesim creates declare them. OpenAPI and field validation read them from those CRDs, or from
//! here when no CRD object exists (`--no-simulation`).

use serde_json::{Value, json};

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn enumeration(description: &str, values: &[&str]) -> Value {
    json!({"type": "string", "description": description, "enum": values})
}

fn strings(description: &str) -> Value {
    json!({"type": "array", "description": description, "items": {"type": "string"}})
}

/// The standard condition list (`metav1.Condition`), keyed by `type`.
fn conditions() -> Value {
    json!({
        "type": "array",
        "description": "The latest observations of the object's state.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["type", "status"],
            "properties": {
                "type": string("The condition's type, e.g. Ready or IOReady."),
                "status": enumeration("True, False or Unknown.", &["True", "False", "Unknown"]),
                "reason": string("A CamelCase reason for the condition's last transition."),
                "message": string("A human-readable message about the transition."),
                "lastTransitionTime": {"type": "string", "format": "date-time",
                                        "description": "When the condition last changed its status."},
                "observedGeneration": {"type": "integer", "format": "int64",
                                       "description": "The object's generation the condition was set for."},
            },
        },
    })
}

fn root(description: &str, spec: Value, status: Value) -> Value {
    json!({
        "type": "object",
        "description": description,
        "properties": {"spec": spec, "status": status},
    })
}

fn object(description: &str, required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "description": description, "required": required, "properties": properties})
}

fn volume() -> Value {
    root(
        "A replicated block volume: replicas on several nodes kept in sync.",
        object(
            "The volume's desired size and storage class.",
            &["size", "replicatedStorageClassName"],
            json!({
                "size": string("The volume's size, a quantity (e.g. 100Mi). It can grow, never shrink."),
                "replicatedStorageClassName": string("The ReplicatedStorageClass that decides replication and placement."),
            }),
        ),
        object(
            "The volume's observed state.",
            &[],
            json!({
                "conditions": conditions(),
                "phase": string("A summary of the volume's lifecycle (e.g. Terminating)."),
                "actualSize": string("The size the replicas provide."),
                "actuallyAttachedTo": strings("The nodes the volume is attached to."),
                "desiredAttachTo": strings("The nodes attachments ask for."),
                "diskfulReplicaCount": string("Diskful replicas that exist / that the class asks for."),
                "diskfulReplicasInSync": string("Diskful replicas in sync / that the class asks for."),
                "attachedAndIOReadyCount": string("Attached nodes whose replica is IOReady / attached nodes."),
            }),
        ),
    )
}

fn replica() -> Value {
    root(
        "One replica of a ReplicatedVolume on one node.",
        object(
            "The replica's volume, node and type.",
            &["replicatedVolumeName"],
            json!({
                "replicatedVolumeName": string("The volume this replica belongs to. Immutable."),
                "nodeName": string("The node the replica is placed on (chosen by the controller when empty)."),
                "type": enumeration("Diskful holds data, TieBreaker only votes, Access serves I/O without data.",
                                    &["Diskful", "Access", "TieBreaker"]),
            }),
        ),
        object(
            "The replica's observed state.",
            &[],
            json!({
                "conditions": conditions(),
                "actualType": string("The type the replica currently runs as."),
                "syncProgress": string("How far a diskful replica has synced (e.g. 100%)."),
                "phase": string("A summary of the replica's lifecycle."),
            }),
        ),
    )
}

fn attachment() -> Value {
    root(
        "A request to attach a ReplicatedVolume to a node.",
        object(
            "The volume and the node. Both are immutable.",
            &["replicatedVolumeName", "nodeName"],
            json!({
                "replicatedVolumeName": string("The volume to attach. Immutable."),
                "nodeName": string("The node to attach it to. Immutable."),
            }),
        ),
        object(
            "The attachment's observed state.",
            &[],
            json!({
                "conditions": conditions(),
                "phase": enumeration("Pending, Attaching, Attached or Detaching.",
                                     &["Pending", "Attaching", "Attached", "Detaching"]),
            }),
        ),
    )
}

fn storage_class() -> Value {
    root(
        "How volumes of this class are replicated and placed.",
        object(
            "The class's replication, access and placement rules.",
            &[],
            json!({
                "storagePool": string("The storage pool replicas are carved from."),
                "reclaimPolicy": enumeration("What happens to a volume when its claim is deleted.", &["Delete", "Retain"]),
                "replication": enumeration("None: 1 diskful replica; Availability: 2 diskful + 1 tie-breaker; ConsistencyAndAvailability: 3 diskful.",
                                           &["None", "Availability", "ConsistencyAndAvailability"]),
                "volumeAccess": enumeration("Where a volume may be attached relative to its diskful replicas.",
                                            &["Local", "EventuallyLocal", "PreferablyLocal", "Any"]),
                "topology": enumeration("How replicas are spread over zones.", &["TransZonal", "Zonal", "Ignored"]),
                "zones": strings("The zones replicas may be placed in."),
            }),
        ),
        object(
            "The class's observed state.",
            &[],
            json!({"phase": string("Whether the class is usable."), "reason": string("Why the class is in its phase.")}),
        ),
    )
}

/// The schema of a storage kind, if `kind` is one.
pub fn open_api_v3_schema(kind: &str) -> Option<Value> {
    match kind {
        "ReplicatedVolume" => Some(volume()),
        "ReplicatedVolumeReplica" => Some(replica()),
        "ReplicatedVolumeAttachment" => Some(attachment()),
        "ReplicatedStorageClass" => Some(storage_class()),
        _ => None,
    }
}
