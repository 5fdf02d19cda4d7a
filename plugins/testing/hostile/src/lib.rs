//! A test plugin that misbehaves on request (`{"mode": ...}`), to prove the worker contains it:
//! `spin` (endless loop, no host calls), `grow` (allocates without end), `forbidden` (a kube call
//! outside its capabilities), `panic`, `ignore-cancel` (never returns after a stop). Floods of
//! every host channel, each until stopped: `huge-report` (a report state of `n` bytes, 4 MiB by
//! default), `huge-events` (journal entries with a field of `n` bytes), `event-flood` (events
//! and actions as fast as it can), `log-flood` (log lines as fast as it can, some of `n` bytes),
//! `kube-flood` (pod lists as fast as it can; counters `calls` and `elapsedMs`), `leak-watches`
//! (opens watches and never drops them; counter `opened`, state `error`), `huge-summary`
//! (returns a summary of `n` bytes). Well-behaved modes for neighbours and benchmarks: `ok`,
//! `sleep` (until stopped, then cleans up), `heartbeat` (a report with counter `beats` every
//! 250 ms and an event `beat` every other one, until stopped), `random` (seeded draws),
//! `reports` (`n` reports in a row), `calls` (`n` no-op host calls), `events` (`n` journal
//! entries in a row: past the rate limit, what a flood costs the worker per call).

use chaos_plugin_sdk::{self as sdk, Error, kube};

// Read access to pods in one namespace: anything else is refused by the host.
sdk::capabilities!(r#"{"rules":[{"resources":["pods"],"verbs":["get","list","watch"],"namespaces":["default"]}]}"#);

#[derive(serde::Deserialize)]
struct Config {
    mode: String,
    #[serde(default)]
    n: u64,
}

struct Hostile;

impl sdk::Guest for Hostile {
    fn run(config: String) -> Result<String, Error> {
        let cfg: Config = sdk::parse_config(&config)?;
        match cfg.mode.as_str() {
            "ok" => sdk::summary(&serde_json::json!({"mode": "ok"})),
            "spin" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    // Touch every page so the memory is really used.
                    hoard.push(vec![0xA5; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "forbidden" => {
                // Declared: get/list pods in `default`. Deleting in kube-system is not.
                kube::delete(kube::PODS, Some("kube-system"), "victim")?;
                sdk::summary(&"deleted")
            }
            "panic" => panic!("deliberate panic: the plugin gave up"),
            // What a plugin sees of its stop before it has waited on anything.
            "stopped-at-start" => sdk::summary(&serde_json::json!({"cancelled": sdk::cancelled()})),
            "ignore-cancel" => loop {
                let _ = sdk::sleep_ms(50);
            },
            "sleep" => {
                sdk::log::info("sleeping until stopped", &[]);
                while sdk::sleep_ms(3_600_000) {}
                sdk::log::info("stopping: cleaning up", &[]);
                sdk::summary(&serde_json::json!({"cleaned_up": true}))
            }
            "random" => {
                // The seeded stream and WASI's randomness (std's HashMap keys): both replay.
                let draws: Vec<u64> = (0..4).map(|_| sdk::rand::next_u64()).collect();
                let set: std::collections::HashMap<u32, ()> = (0..16).map(|i| (i, ())).collect();
                let order: Vec<u32> = set.keys().copied().collect();
                sdk::summary(&serde_json::json!({"draws": draws, "order": order}))
            }
            "reports" => {
                for i in 1..=cfg.n {
                    sdk::report(&[("done", i as i64)], &serde_json::json!({"at": i}));
                }
                sdk::summary(&cfg.n)
            }
            "events" => {
                for i in 0..cfg.n {
                    sdk::event("e", &[("i", &i.to_string())]);
                }
                sdk::summary(&cfg.n)
            }
            "calls" => {
                for _ in 0..cfg.n {
                    std::hint::black_box(sdk::cancelled());
                }
                sdk::summary(&cfg.n)
            }
            "heartbeat" => {
                let mut beats = 0i64;
                loop {
                    beats += 1;
                    sdk::report(&[("beats", beats)], &serde_json::json!({}));
                    if beats % 2 == 0 {
                        sdk::event("beat", &[("n", &beats.to_string())]);
                    }
                    if !sdk::sleep_ms(250) {
                        break sdk::summary(&beats);
                    }
                }
            }
            mode @ ("huge-report" | "huge-events" | "event-flood" | "log-flood") => {
                let rounds = flood(mode, blob(cfg.n));
                sdk::summary(&serde_json::json!({ "mode": mode, "rounds": rounds }))
            }
            "kube-flood" => {
                let start = sdk::now_ms();
                let mut calls = 0i64;
                while !sdk::cancelled() {
                    if kube::list(kube::PODS, Some("default"), &kube::Selectors::all()).is_err() {
                        break;
                    }
                    calls += 1;
                    let elapsed = (sdk::now_ms() - start) as i64;
                    sdk::report(&[("calls", calls), ("elapsedMs", elapsed)], &serde_json::json!({}));
                }
                sdk::summary(&calls)
            }
            "leak-watches" => {
                let mut held = Vec::new();
                let error = loop {
                    match kube::watch(kube::PODS, Some("default"), &kube::Selectors::all()) {
                        Ok(watch) => held.push(watch),
                        Err(e) => break e.describe(),
                    }
                    if held.len() >= 10_000 {
                        break "no limit".to_string();
                    }
                };
                sdk::report(&[("opened", held.len() as i64)], &serde_json::json!({ "error": error }));
                while sdk::sleep_ms(3_600_000) {}
                sdk::summary(&held.len())
            }
            "huge-summary" => sdk::summary(&serde_json::json!({ "blob": blob(cfg.n) })),
            other => Err(Error::invalid(format!("unknown mode {other:?}"))),
        }
    }
}

/// `n` bytes of text (4 MiB when `n` is 0).
fn blob(n: u64) -> String {
    "x".repeat(if n == 0 { 4 << 20 } else { n as usize })
}

/// Sends through one host channel until stopped: large items with a pause, or small ones
/// without one (with a large one now and then for the log). Returns how many rounds it sent
/// (`event-flood` sends three entries a round: an event, an action's start and its end).
fn flood(mode: &str, blob: String) -> u64 {
    let mut i = 0u64;
    while !sdk::cancelled() {
        i += 1;
        let n = i.to_string();
        match mode {
            "huge-report" => sdk::report(&[("sent", i as i64)], &serde_json::json!({ "blob": blob })),
            "huge-events" => sdk::event("huge", &[("blob", &blob)]),
            "event-flood" => {
                sdk::event("flood", &[("i", &n)]);
                sdk::action::Action::start("flood-action", &[("i", &n)]).ok("");
            }
            _ if i.is_multiple_of(100) => sdk::log::info(&blob, &[]),
            _ => sdk::log::info("flooding the log", &[("i", &n)]),
        }
        // Large items are sent a few times a second, small ones as fast as the host takes them.
        let pause = if matches!(mode, "huge-report" | "huge-events") { 100 } else { 0 };
        if (pause > 0 || i.is_multiple_of(1000)) && !sdk::sleep_ms(pause) {
            break;
        }
    }
    i
}

sdk::export!(Hostile);
