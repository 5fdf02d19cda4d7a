//! `volume-checker` (a megatest plugin): watches one RV (a watch, not polling) and counts the transitions
//! of its IOReady and Quorum conditions, which must start True. Every change is logged with the
//! expected and observed status, reason, message and the replicas that are not ready, and
//! journaled as an event. On stop it returns, per condition, the transitions, the seconds spent
//! not True and the verdict: Stable (none), Recovered (even) or Broken (odd).
//!
//! A stop that finds the volume down does not judge it at once: the disturbance may still be
//! going on (an agent pod restarting, a replica being rebuilt), and a volume caught in it has
//! not stayed down. The checker keeps watching for up to [`SETTLE`] (within the worker's stop
//! grace) and gives its verdict as soon as every condition is True again, or at the end of
//! that time: a volume broken for good is still down then, and Broken.
//!
//! When the scenario measures its volumes (a `volumes` probe), the checker is also the volume's
//! probe: about once a second it samples up while IOReady is True, down otherwise, from what
//! its watch already shows (nothing is polled twice).
//!
//! Config: `{"volume"}` (CheckerParams takes nothing else).

use chaos_megatest::logic::checker::{CONDITIONS, Tracker};
use chaos_megatest::logic::config;
use chaos_megatest::{self as mt};
use chaos_plugin_sdk::kube::{self, Selectors, WatchEvent};
use chaos_plugin_sdk::objects::{ReplicatedVolume, ReplicatedVolumeReplica, condition, is_true};
use chaos_plugin_sdk::probe::{self, State};
use chaos_plugin_sdk::{self as sdk, Duration, Error, Level, log};
use serde_json::{Map, Value, json};

sdk::capabilities!(
    r#"{"rules":[
        {"resources":["storage.deckhouse.io/replicatedvolumes"],"verbs":["get","list","watch"]},
        {"resources":["storage.deckhouse.io/replicatedvolumereplicas"],"verbs":["list"]}
    ]}"#
);

struct Checker;

impl sdk::Guest for Checker {
    fn run(config: String) -> Result<String, Error> {
        let cfg = config::checker(&config, sdk::info().volume.as_deref()).map_err(mt::config_error)?;
        let rv = cfg.volume;
        if sdk::cancelled() {
            // Started stopped (a cleanup run): a checker leaves nothing behind, and having
            // watched nothing it has no verdict to give.
            return sdk::summary(&json!({"volume": rv, "observed": 0, "skipped": "started stopped"}));
        }
        let mut tracker = Tracker::default();
        let mut events = 0i64;
        let watch = kube::watch(kube::REPLICATED_VOLUMES, None, &Selectors::name(&rv))?;
        log::info("watching", &[("rv", &rv), ("expected", "IOReady=True,Quorum=True")]);
        // As a probe it samples about every second, between events too.
        let probing = probe::bound();
        let wait = Duration::from_secs(if probing { 1 } else { 5 });
        while !sdk::cancelled() {
            let next = watch.next(wait);
            if probing && events > 0 {
                sample(&tracker);
            }
            let event = match next {
                Ok(Some(e)) => e,
                Ok(None) => continue,
                Err(Error::Cancelled) => break,
                Err(e) => return Err(e),
            };
            match event {
                WatchEvent::Applied(text) => {
                    let Ok(volume) = serde_json::from_str::<ReplicatedVolume>(&text) else { continue };
                    if volume.metadata.name != rv {
                        continue;
                    }
                    events += 1;
                    observe(&rv, &volume, &mut tracker);
                }
                WatchEvent::Deleted(_) => log::warn("volume deleted", &[("rv", &rv)]),
                WatchEvent::Restarted | WatchEvent::Synced => {}
            }
            let counters: Vec<(String, i64)> =
                tracker.stats.iter().map(|(c, s)| (format!("{c}Transitions"), i64::from(s.transitions))).collect();
            let counters: Vec<(&str, i64)> = counters.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            sdk::report(&counters, &json!({"verdict": tracker.verdict(), "observed": events}));
        }

        settle(&rv, &watch, &mut tracker);
        let now = sdk::now_ms();
        let mut conditions = Map::new();
        for (name, result) in tracker.result(now) {
            log::info(
                "checker result",
                &[
                    ("rv", &rv),
                    ("condition", &name),
                    ("transitions", &result.transitions.to_string()),
                    ("secondsFalse", &format!("{:.1}", result.seconds_false)),
                    ("verdict", &format!("{:?}", result.verdict)),
                ],
            );
            conditions.insert(name, serde_json::to_value(result).unwrap_or(Value::Null));
        }
        sdk::summary(&json!({"volume": rv, "verdict": tracker.verdict(), "conditions": conditions}))
    }
}

/// The volume's probe: up while IOReady is True.
fn sample(tracker: &Tracker) {
    let io_ready = tracker.stats.iter().find(|(name, _)| name == "IOReady").map(|(_, s)| s.status.as_str());
    match io_ready {
        Some("True") => probe::sample(State::Up, "IOReady is True"),
        Some(status) => probe::sample(State::Down, &format!("IOReady is {status}")),
        None => probe::sample(State::Unknown, "IOReady not seen yet"),
    }
}

/// How long a checker stopped while its volume is down keeps watching for it to come back.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(20);

/// After the stop: while a condition is down, watches on (a cleanup call, which the stop does
/// not cut short) until every condition is True again or [`SETTLE`] has passed.
fn settle(rv: &str, watch: &kube::Watch, tracker: &mut Tracker) {
    if tracker.all_up() {
        return;
    }
    log::info("stopped while the volume is down: waiting for it to settle", &[("rv", rv)]);
    let until = sdk::now_ms() + SETTLE.as_millis() as u64;
    while !tracker.all_up() {
        let left = until.saturating_sub(sdk::now_ms());
        if left == 0 {
            log::warn("still down after the settling time", &[("rv", rv)]);
            return;
        }
        match watch.next(Duration::from_millis(left)) {
            Ok(Some(WatchEvent::Applied(text))) => {
                if let Ok(volume) = serde_json::from_str::<ReplicatedVolume>(&text)
                    && volume.metadata.name == rv
                {
                    observe(rv, &volume, tracker);
                }
            }
            // Gone: it will not come back.
            Ok(Some(WatchEvent::Deleted(_))) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Records the volume's conditions; logs and journals each change.
fn observe(rv: &str, volume: &ReplicatedVolume, tracker: &mut Tracker) {
    let conditions = volume.status.as_ref().map_or(&[][..], |s| &s.conditions[..]);
    for name in CONDITIONS {
        let c = condition(conditions, name);
        let status = c.map_or("Unknown", |c| c.status.as_str());
        let Some(t) = tracker.observe(name, status, sdk::now_ms()) else { continue };
        let reason = c.and_then(|c| c.reason.clone()).unwrap_or_default();
        let message = c.and_then(|c| c.message.clone()).unwrap_or_default();
        let not_ready = not_ready_replicas(rv);
        let transition = format!("{}->{}", t.from, t.to);
        let count = t.count.to_string();
        let fields = [
            ("rv", rv),
            ("condition", name),
            ("expected", "True"),
            ("observed", status),
            ("transition", transition.as_str()),
            ("reason", reason.as_str()),
            ("message", message.as_str()),
            ("transitions", count.as_str()),
            ("notReadyReplicas", not_ready.as_str()),
        ];
        let level = if status == "True" { Level::Info } else { Level::Warn };
        log::log(level, "condition changed", &fields);
        sdk::event("condition-transition", &fields);
    }
}

/// The replicas of the volume that are not Ready, as `name(type@node)`, comma-separated.
fn not_ready_replicas(rv: &str) -> String {
    let replicas =
        kube::list_as::<ReplicatedVolumeReplica>(None, &Selectors::fields(format!("spec.replicatedVolumeName={rv}")));
    match replicas {
        Ok(list) => list
            .iter()
            .filter(|r| !r.status.as_ref().is_some_and(|s| is_true(&s.conditions, "Ready")))
            .map(|r| format!("{}({}@{})", r.metadata.name, r.spec.type_, r.spec.node_name.as_deref().unwrap_or("-")))
            .collect::<Vec<_>>()
            .join(","),
        Err(e) => format!("unknown: {}", e.describe()),
    }
}

sdk::export!(Checker);
