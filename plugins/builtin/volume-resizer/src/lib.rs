//! `volume-resizer` (a megatest plugin): every random `period` grows the RV by a random `step`, never past
//! `maxSize`, and waits (by watch) until `status.actualSize` is at least the size requested; the
//! storage may round up, so more is success too.
//!
//! Config: `{"volume", "period": {"min", "max"}, "step": {"min", "max"}, "maxSize"}`.

use chaos_megatest::logic::config;
use chaos_megatest::logic::resizer::{next_size, settled};
use chaos_megatest::{self as mt};
use chaos_plugin_sdk::kube::{self, PatchType};
use chaos_plugin_sdk::objects::ReplicatedVolume;
use chaos_plugin_sdk::{self as sdk, Duration, Error, Quantity, action, log};
use serde_json::json;

sdk::capabilities!(
    r#"{"rules":[
        {"resources":["storage.deckhouse.io/replicatedvolumes"],"verbs":["get","list","watch","patch"]}
    ]}"#
);

/// How long a resize may take to settle.
const RESIZE_TIMEOUT: Duration = Duration::from_secs(300);

struct Resizer;

fn bytes(q: Option<&str>) -> Option<u64> {
    q.and_then(|q| q.parse::<Quantity>().ok()).map(|q| q.bytes())
}

impl sdk::Guest for Resizer {
    fn run(config: String) -> Result<String, Error> {
        let cfg = config::resizer(&config, sdk::info().volume.as_deref()).map_err(mt::config_error)?;
        let (rv, p) = (cfg.volume, cfg.params);
        let (mut resized, mut failures, mut last) = (0i64, 0i64, None::<u64>);
        while mt::wait_random(&p.period) {
            // A stop that comes during the read is a stop, not a failure.
            let volume = match kube::get_as::<ReplicatedVolume>(None, &rv) {
                Err(Error::Cancelled) => break,
                read => read?,
            };
            let current = bytes(Some(&volume.spec.size))
                .ok_or_else(|| Error::other(format!("spec.size {:?} is not a quantity", volume.spec.size)))?;
            let step = sdk::rand::quantity(&p.step);
            let Some(next) = next_size(current, step.bytes(), p.max_size.bytes()) else {
                log::info("at maxSize: nothing to do", &[("rv", &rv), ("size", &volume.spec.size)]);
                continue;
            };
            let to = Quantity::from_bytes(next);
            let params = [("rv", rv.as_str()), ("from", volume.spec.size.as_str()), ("to", to.as_str())];
            let outcome = action::action("resize", &params, || {
                kube::patch(
                    kube::REPLICATED_VOLUMES,
                    None,
                    &rv,
                    PatchType::Merge,
                    &json!({"spec": {"size": to.as_str()}}),
                )?;
                kube::wait_until::<ReplicatedVolume>(None, &rv, RESIZE_TIMEOUT, |v| {
                    v.is_some_and(|v| settled(bytes(v.status.as_ref().and_then(|s| s.actual_size.as_deref())), next))
                })
                .map(|_| ())
            });
            match outcome {
                Ok(()) => {
                    resized += 1;
                    last = Some(next);
                }
                Err(Error::Cancelled) => break,
                Err(e) => {
                    failures += 1;
                    log::warn("resize failed", &[("rv", &rv), ("error", &e.describe())]);
                }
            }
            sdk::report(&[("resized", resized), ("failures", failures)], &json!({"size": next}));
        }
        sdk::summary(&json!({"volume": rv, "resized": resized, "failures": failures, "lastSize": last}))
    }
}

sdk::export!(Resizer);
