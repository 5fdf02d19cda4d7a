//! A test plugin that calls every import of `chaos:plugin` once or more and returns, as its
//! summary, what each call gave (`{"checks": {name: "ok" | "FAILED: why"}, ...}`), so that the
//! worker's test can assert on each. Needs a cluster with the storage kinds (kubesim).
//!
//! Config: `{"storage_class": "rsc-a", "wait_for_cancel": bool}`. With `wait_for_cancel`, it
//! sleeps after the checks until stopped, then proves that cleanup calls still work.

use std::collections::BTreeMap;

use chaos_plugin_sdk::kube::{self, PatchType, Selectors, WatchEvent};
use chaos_plugin_sdk::objects::{ObjectMeta, ReplicatedVolume, ReplicatedVolumeSpec};
use chaos_plugin_sdk::{self as sdk, Duration, Error, Level, action, log};
use serde_json::json;

sdk::capabilities!(
    r#"{"rules":[
        {"resources":["storage.deckhouse.io/*"],"verbs":["*"]},
        {"resources":["nodes"],"verbs":["get","list"]},
        {"resources":["pods"],"verbs":["get","list","watch"],"namespaces":["*"]}
    ]}"#
);

#[derive(serde::Deserialize)]
struct Config {
    #[serde(default = "default_class")]
    storage_class: String,
    #[serde(default)]
    wait_for_cancel: bool,
}

fn default_class() -> String {
    "rsc-a".into()
}

#[derive(Default)]
struct Checks(BTreeMap<String, String>);

impl Checks {
    fn record(&mut self, name: &str, result: Result<(), String>) {
        let value = match result {
            Ok(()) => "ok".to_string(),
            Err(why) => format!("FAILED: {why}"),
        };
        self.0.insert(name.to_string(), value);
    }

    fn expect(&mut self, name: &str, ok: bool, why: impl FnOnce() -> String) {
        self.record(name, if ok { Ok(()) } else { Err(why()) });
    }
}

struct Exerciser;

impl sdk::Guest for Exerciser {
    fn run(config: String) -> Result<String, Error> {
        let cfg: Config = sdk::parse_config(&config)?;
        let mut c = Checks::default();
        let info = sdk::info();

        // --- host ---
        c.expect("info", !info.instance.is_empty() && !info.scenario.is_empty(), || format!("{info:?}"));
        let now = sdk::now_ms();
        c.expect("now", now > 1_600_000_000_000, || format!("now = {now}"));
        let (r1, r2) = (sdk::rand::next_u64(), sdk::rand::next_u64());
        c.expect("random", r1 != r2, || "two equal draws".into());
        let picks: Vec<u64> = (0..20).map(|_| sdk::rand::range_u64(3, 5)).collect();
        c.expect("random_range", picks.iter().all(|p| (3..=5).contains(p)), || format!("{picks:?}"));
        c.expect("cancelled", !sdk::cancelled(), || "cancelled at start".into());
        c.expect("sleep", sdk::sleep(Duration::from_millis(5)), || "sleep returned false".into());
        for level in [Level::Trace, Level::Debug, Level::Info, Level::Warn, Level::Error] {
            log::log(level, "exerciser log line", &[("level", &format!("{level:?}"))]);
        }
        println!("a line on stdout");
        eprintln!("a line on stderr");
        sdk::report(&[("checks", 1), ("volumes", 0)], &json!({"phase": "running"}));
        sdk::event("exercised", &[("what", "event")]);
        let failed =
            action::action("failing-action", &[("why", "on purpose")], || Err::<(), _>(Error::other("deliberate")));
        c.expect("action_failed", failed.is_err(), || "should fail".into());

        // --- kube ---
        let nodes = kube::list(kube::NODES, None, &Selectors::all());
        c.expect("kube_list_nodes", nodes.as_ref().is_ok_and(|n| !n.is_empty()), || format!("{nodes:?}"));
        let name = format!("ex-{}", sdk::rand::name_suffix(6));
        let rv = ReplicatedVolume {
            metadata: ObjectMeta::named(&name),
            spec: ReplicatedVolumeSpec {
                size: "100Mi".into(),
                replicated_storage_class_name: cfg.storage_class.clone(),
            },
            status: None,
        };
        let created = action::action("create-volume", &[("name", &name)], || kube::create_as(&rv));
        c.record("kube_create", created.as_ref().map(|_| ()).map_err(|e| e.describe()));
        if let Ok(created) = &created {
            let labels = &created.metadata.labels;
            c.expect(
                "ownership_labels",
                labels.get(sdk::LABEL_INSTANCE) == Some(&info.instance)
                    && labels.get(sdk::LABEL_SCENARIO) == Some(&info.scenario),
                || format!("{labels:?}"),
            );
        }
        let dup = kube::create_as(&rv);
        c.expect("error_conflict", matches!(dup, Err(Error::Conflict(_))), || format!("{dup:?}"));
        let got = kube::get_as::<ReplicatedVolume>(None, &name);
        c.record("kube_get", got.map(|_| ()).map_err(|e| e.describe()));
        let missing = kube::get(kube::REPLICATED_VOLUMES, None, "no-such-volume");
        c.expect("error_not_found", matches!(missing, Err(Error::NotFound(_))), || format!("{missing:?}"));
        let owned = kube::list_as::<ReplicatedVolume>(None, &Selectors::labels(sdk::owned_selector()));
        c.expect("kube_list_by_label", owned.as_ref().is_ok_and(|l| l.iter().any(|v| v.metadata.name == name)), || {
            format!("{owned:?}")
        });
        let ready = kube::wait_until::<ReplicatedVolume>(None, &name, Duration::from_secs(20), |v| {
            v.is_some_and(|v| v.ready())
        });
        c.record("watch_wait_ready", ready.map(|_| ()).map_err(|e| e.describe()));
        let merged = kube::patch(
            kube::REPLICATED_VOLUMES,
            None,
            &name,
            PatchType::Merge,
            &json!({"metadata": {"annotations": {"exerciser": "merge"}}}),
        );
        c.expect(
            "kube_patch_merge",
            merged.as_ref().is_ok_and(|o| o.pointer("/metadata/annotations/exerciser") == Some(&json!("merge"))),
            || format!("{merged:?}"),
        );
        let jsonp = kube::patch(
            kube::REPLICATED_VOLUMES,
            None,
            &name,
            PatchType::Json,
            &json!([{"op": "replace", "path": "/metadata/annotations/exerciser", "value": "json"}]),
        );
        c.expect(
            "kube_patch_json",
            jsonp.as_ref().is_ok_and(|o| o.pointer("/metadata/annotations/exerciser") == Some(&json!("json"))),
            || format!("{jsonp:?}"),
        );
        let bad = kube::patch(kube::REPLICATED_VOLUMES, None, &name, PatchType::Json, &json!({"not": "a list"}));
        c.expect("error_invalid", matches!(bad, Err(Error::Invalid(_))), || format!("{bad:?}"));
        let never = kube::wait_for(kube::REPLICATED_VOLUMES, None, &name, Duration::from_millis(300), |_| false);
        c.expect("error_timeout", matches!(never, Err(Error::Timeout(_))), || format!("{never:?}"));
        let forbidden = kube::delete(kube::NODES, None, "node-1");
        c.expect("error_forbidden", matches!(forbidden, Err(Error::Forbidden(_))), || format!("{forbidden:?}"));
        // A watch on pods: the initial list arrives as restarted, applied…, synced.
        let pods = kube::watch(kube::PODS, Some("d8-sds-replicated-volume"), &Selectors::labels("app=agent"));
        let mut seen = Vec::new();
        match pods {
            Ok(w) => {
                while let Ok(Some(ev)) = w.next(Duration::from_secs(5)) {
                    let kind = match ev {
                        WatchEvent::Restarted => "restarted",
                        WatchEvent::Applied(_) => "applied",
                        WatchEvent::Deleted(_) => "deleted",
                        WatchEvent::Synced => "synced",
                    };
                    seen.push(kind);
                    if kind == "synced" {
                        break;
                    }
                }
                c.expect(
                    "watch_open_next",
                    seen.first() == Some(&"restarted") && seen.last() == Some(&"synced") && seen.contains(&"applied"),
                    || format!("{seen:?}"),
                );
                let quiet = w.next(Duration::from_millis(50));
                c.expect("watch_next_timeout", matches!(quiet, Ok(None) | Ok(Some(_))), || format!("{quiet:?}"));
            }
            Err(e) => c.record("watch_open_next", Err(e.describe())),
        }
        let deleted = kube::delete_as::<ReplicatedVolume>(None, &name);
        c.record("kube_delete", deleted.map(|_| ()).map_err(|e| e.describe()));
        let gone = kube::wait_until::<ReplicatedVolume>(None, &name, Duration::from_secs(20), |v| v.is_none());
        c.record("watch_wait_gone", gone.map(|_| ()).map_err(|e| e.describe()));

        let mut cleanup = json!(null);
        if cfg.wait_for_cancel {
            sdk::report(&[("checks", c.0.len() as i64)], &json!({"phase": "waiting"}));
            let woke_early = !sdk::sleep(Duration::from_secs(3600));
            c.expect("sleep_cut_by_cancel", woke_early && sdk::cancelled(), || "sleep was not cut short".into());
            // After the stop: cleanup calls still work.
            let after = kube::list(kube::NODES, None, &Selectors::all());
            c.record("kube_after_cancel", after.map(|_| ()).map_err(|e| e.describe()));
            cleanup = json!("done");
        }
        sdk::summary(&json!({"checks": c.0, "volume": name, "cleanup": cleanup}))
    }
}

sdk::export!(Exerciser);
