//! `pod-killer`: the plugin of the guide (docs/plugins.md), made from `chaosctl plugin new
//! pod-killer`. It picks pods the way chaos tools for Kubernetes do — by namespace, label selector and a
//! regular expression on the name — and kills a percentage of them, every `interval`, for
//! `rounds` rounds (one round when no interval is given).
//!
//! Config (the scenario task's `params`):
//! `{"namespace", "labelSelector"?, "nameRegex"?, "percent"? (1-100, default 50),
//!   "interval"? ("30s"), "rounds"?}`.
//!
//! To build it: the template's crate, this file as `src/lib.rs`, and one more dependency under
//! `[target.'cfg(target_arch = "wasm32")'.dependencies]`:
//! `regex = { version = "1", default-features = false, features = ["std"] }`.
#![cfg(target_arch = "wasm32")]

use chaos_plugin_sdk::kube;
use chaos_plugin_sdk::{self as sdk, Duration, Error, action, log};
use serde_json::{Value, json};

// The namespace is the user's choice: pods in every namespace, listed and deleted, nothing more.
sdk::capabilities!(r#"{"rules":[{"resources":["pods"],"verbs":["list","delete"],"namespaces":["*"]}]}"#);

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    /// `namespace` and `labelSelector`: the pods victims are picked from.
    #[serde(flatten)]
    pods: kube::Selection,
    #[serde(default)]
    name_regex: Option<String>,
    #[serde(default = "half")]
    percent: u32,
    #[serde(default)]
    interval: Option<Duration>,
    #[serde(default)]
    rounds: Option<u32>,
}

fn half() -> u32 {
    50
}

/// How many of `candidates` a round kills: `percent` of them, rounded up, so that a small
/// selection still loses a pod.
fn victims_count(candidates: usize, percent: u32) -> usize {
    (candidates * percent as usize).div_ceil(100)
}

struct PodKiller;

impl sdk::Guest for PodKiller {
    fn run(config: String) -> Result<String, Error> {
        let cfg: Config = sdk::parse_config(&config)?;
        if !(1..=100).contains(&cfg.percent) {
            return Err(Error::invalid(format!("percent: {} is not between 1 and 100", cfg.percent)));
        }
        let pattern = match &cfg.name_regex {
            Some(text) => Some(regex::Regex::new(text).map_err(|e| Error::invalid(format!("nameRegex: {e}")))?),
            None => None,
        };
        // Without an interval there is one round; with one, rounds go on until stopped.
        let rounds = cfg.rounds.unwrap_or(if cfg.interval.is_some() { u32::MAX } else { 1 });
        let mut killed: Vec<String> = Vec::new();
        for round in 0..rounds {
            if round > 0 && !cfg.interval.is_some_and(sdk::sleep) {
                break; // stopped while waiting
            }
            let pods = cfg.pods.list(kube::PODS)?;
            let mut candidates: Vec<String> = pods
                .iter()
                // A pod already going away is no victim.
                .filter(|pod| pod.pointer("/metadata/deletionTimestamp").is_none_or(Value::is_null))
                .filter_map(|pod| pod.pointer("/metadata/name").and_then(Value::as_str))
                .filter(|name| pattern.as_ref().is_none_or(|re| re.is_match(name)))
                .map(str::to_string)
                .collect();
            // Seeded by the instance: the same scenario seed picks the same victims.
            sdk::rand::shuffle(&mut candidates);
            let count = victims_count(candidates.len(), cfg.percent);
            log::info(
                "round",
                &[("round", &(round + 1).to_string()), ("candidates", &candidates.len().to_string()), ("killing", &count.to_string())],
            );
            for name in candidates.into_iter().take(count) {
                let namespace = cfg.pods.namespace.as_str();
                let params = [("namespace", namespace), ("pod", name.as_str())];
                match action::action("kill-pod", &params, || kube::delete_if_exists(kube::PODS, Some(namespace), &name)) {
                    Ok(_) => killed.push(name),
                    Err(Error::Cancelled) => break,
                    Err(e) => log::warn("kill failed", &[("pod", &name), ("error", &e.describe())]),
                }
            }
            sdk::report(&[("killed", killed.len() as i64), ("rounds", i64::from(round + 1))], &json!({}));
            if sdk::cancelled() {
                break;
            }
        }
        sdk::summary(&json!({"namespace": cfg.pods.namespace, "killed": killed}))
    }
}

sdk::export!(PodKiller);
