//! `pod-destroyer` (a megatest plugin, also a workflow fault): every random `period` it picks
//! pods and deletes them, without waiting for the deletions. Which pods: `target` (chaos-def's
//! target selection: namespaces, selectors, name and container patterns, a mode), or, as the
//! original megatest wrote it, `rand(pods.min..=pods.max)` pods matching `labelSelector` in
//! `namespace`. Each round's draw is seeded from the instance seed and the round's number, so a
//! replay deletes the same pods of the same cluster. After its first round it reports its fault
//! in place (`ready`), which a workflow's fault step waits for.
//!
//! Config: `{"namespace", "labelSelector", "pods": {"min", "max"}, "target", "period": {"min", "max"}}`.
//! The namespace is the user's choice, so the capability covers pods in every namespace.

use chaos_megatest::logic::Random;
use chaos_megatest::logic::config;
use chaos_megatest::{self as mt, HostRandom, STATE_INJECTED_AT, STATE_READY};
use chaos_plugin_sdk::kube;
use chaos_plugin_sdk::{self as sdk, Error, action, log};
use serde_json::json;

sdk::capabilities!(
    r#"{"rules":[
        {"resources":["pods"],"verbs":["list","delete"],"namespaces":["*"]}
    ]}"#
);

struct PodDestroyer;

impl sdk::Guest for PodDestroyer {
    fn run(config: String) -> Result<String, Error> {
        let p = config::pod_destroyer(&config).map_err(mt::config_error)?;
        let seed = sdk::info().seed;
        let mut deleted = Vec::new();
        let mut round: u64 = 0;
        let mut injected_at: Option<u64> = None;
        while mt::wait_random(&p.period) {
            round += 1;
            let count = HostRandom.range(u64::from(p.pods.min), u64::from(p.pods.max)) as u32;
            let target = p.round_target(count);
            let picked = mt::pick_targets(&target, mt::round_seed(seed, round))?;
            if picked.is_empty() {
                log::info("no pod to delete", &[("namespaces", &target.namespaces.join(","))]);
            }
            for pod in picked {
                let params = [("namespace", pod.namespace.as_str()), ("pod", pod.name.as_str())];
                match action::action("delete-pod", &params, || {
                    kube::delete_if_exists(kube::PODS, Some(&pod.namespace), &pod.name)
                }) {
                    Ok(_) => deleted.push(format!("{}/{}", pod.namespace, pod.name)),
                    Err(Error::Cancelled) => break,
                    Err(e) => log::warn("delete failed", &[("pod", &pod.name), ("error", &e.describe())]),
                }
            }
            let state = json!({STATE_READY: true, STATE_INJECTED_AT: injected_at.get_or_insert_with(sdk::now_ms)});
            sdk::report(&[("deleted", deleted.len() as i64)], &state);
        }
        sdk::summary(&json!({"deleted": deleted}))
    }
}

sdk::export!(PodDestroyer);
