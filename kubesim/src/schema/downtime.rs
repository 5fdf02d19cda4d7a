//! The `openAPIV3Schema` of Deckhouse upmeter's `deckhouse.io/v1alpha1` `Downtime`, as the CRD
//! that kubesim creates declares it. Unlike most kinds, its `spec` is an array: one item per
//! downtime window. kubesim only stores and serves Downtimes; nothing in it reacts to them.

use serde_json::{Value, json};

/// The values of a window's `type`.
pub const TYPES: [&str; 4] = ["Accident", "Maintenance", "InfrastructureMaintenance", "InfrastructureAccident"];

fn downtime() -> Value {
    json!({
        "type": "object",
        "description": "Downtime incident records: windows during which upmeter does not count the affected groups' availability.",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "array",
                "description": "The downtime windows.",
                "items": {
                    "type": "object",
                    "description": "One downtime window.",
                    "properties": {
                        "startDate": {"type": "string", "format": "date-time",
                                      "description": "Start of the downtime (RFC 3339, e.g. 2020-09-07T17:24:55Z)."},
                        "endDate": {"type": "string", "format": "date-time",
                                    "description": "End of the downtime (RFC 3339, e.g. 2020-09-07T18:24:55Z)."},
                        "type": {"type": "string", "description": "Type of the downtime incident.", "enum": TYPES},
                        "description": {"type": "string", "description": "Human-readable incident information."},
                        "affected": {"type": "array", "description": "The affected groups.",
                                     "items": {"type": "string", "description": "An affected group."}},
                    },
                },
            },
        },
    })
}

/// The schema of `Downtime`, if `kind` is it.
pub fn open_api_v3_schema(kind: &str) -> Option<Value> {
    (kind == "Downtime").then(downtime)
}
