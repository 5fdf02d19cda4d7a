//! `pod-destroyer` (a megatest plugin): every random `period` lists the pods of `namespace` matching
//! `labelSelector`, shuffles them (their status is not looked at) and deletes the first
//! `rand(pods.min..=pods.max)`. It does not wait for the deletions.
//!
//! Config: `{"namespace", "labelSelector", "pods": {"min", "max"}, "period": {"min", "max"}}`.
//! The namespace is the user's choice, so the capability covers pods in every namespace.

use chaos_megatest::logic::{config, pods::victims};
use chaos_megatest::{self as mt, HostRandom};
use chaos_plugin_sdk::kube::{self, Selectors};
use chaos_plugin_sdk::{self as sdk, Error, action, log};
use serde_json::{Value, json};

sdk::capabilities!(
    r#"{"rules":[
        {"resources":["pods"],"verbs":["list","delete"],"namespaces":["*"]}
    ]}"#
);

struct PodDestroyer;

impl sdk::Guest for PodDestroyer {
    fn run(config: String) -> Result<String, Error> {
        let p = config::pod_destroyer(&config).map_err(mt::config_error)?;
        let mut deleted = Vec::new();
        while mt::wait_random(&p.period) {
            let pods = kube::list(kube::PODS, Some(&p.namespace), &Selectors::labels(p.label_selector.clone()))?;
            let names: Vec<String> = pods
                .iter()
                .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string))
                .collect();
            let picked = victims(names, &p.pods, &mut HostRandom);
            if picked.is_empty() {
                log::info("no pod to delete", &[("namespace", &p.namespace), ("labelSelector", &p.label_selector)]);
                continue;
            }
            for name in picked {
                let params = [("namespace", p.namespace.as_str()), ("pod", name.as_str())];
                match action::action("delete-pod", &params, || {
                    kube::delete_if_exists(kube::PODS, Some(&p.namespace), &name)
                }) {
                    Ok(_) => deleted.push(name),
                    Err(Error::Cancelled) => break,
                    Err(e) => log::warn("delete failed", &[("pod", &name), ("error", &e.describe())]),
                }
            }
            sdk::report(&[("deleted", deleted.len() as i64)], &json!({}));
        }
        sdk::summary(&json!({"namespace": p.namespace, "labelSelector": p.label_selector, "deleted": deleted}))
    }
}

sdk::export!(PodDestroyer);
