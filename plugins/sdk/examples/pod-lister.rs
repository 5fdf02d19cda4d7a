//! A complete plugin: lists the pods of `namespace` that match `labelSelector`, journals the
//! listing as an action, reports how many pods there are and returns their names. It is the
//! plugin `chaosctl plugin new` starts a crate with.
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 --example pod-lister
//! chaos-worker run-plugin target/wasm32-wasip2/release/examples/pod_lister.wasm \
//!   --kube-url http://127.0.0.1:6443 --config '{"namespace": "default"}'
//! ```
#![cfg(target_arch = "wasm32")]

use chaos_plugin_sdk::kube;
use chaos_plugin_sdk::{self as sdk, Error, action, log};
use serde_json::{Value, json};

// What the plugin may do in the cluster. The worker refuses any other call (`forbidden`), and the
// apiserver refuses a push asking for more than its operator's policy grants.
sdk::capabilities!(r#"{"rules":[{"resources":["pods"],"verbs":["get","list"],"namespaces":["*"]}]}"#);

/// The instance's config: the `params` of the scenario's task, as JSON.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    /// `namespace` and `labelSelector`: the pods to list.
    #[serde(flatten)]
    pods: kube::Selection,
}

struct PodLister;

impl sdk::Guest for PodLister {
    fn run(config: String) -> Result<String, Error> {
        let cfg: Config = sdk::parse_config(&config)?;
        let namespace = &cfg.pods.namespace;
        // An action is journaled (start, result, duration) and counted in the scenario's report.
        let pods = action::action("list-pods", &[("namespace", namespace)], || cfg.pods.list(kube::PODS))?;
        let names: Vec<&str> =
            pods.iter().filter_map(|pod| pod.pointer("/metadata/name").and_then(Value::as_str)).collect();
        log::info("pods found", &[("namespace", namespace), ("count", &names.len().to_string())]);
        // Counters and a small state for the instance's status.
        sdk::report(&[("pods", names.len() as i64)], &json!({}));
        sdk::summary(&json!({"namespace": namespace, "pods": names}))
    }
}

sdk::export!(PodLister);
