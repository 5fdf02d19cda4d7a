//! A test plugin that misbehaves on request (`{"mode": ...}`), to prove the worker contains it:
//! `spin` (endless loop, no host calls), `grow` (allocates without end), `forbidden` (a kube call
//! outside its capabilities), `panic`, `ignore-cancel` (never returns after a stop). Well-behaved
//! modes for neighbours and benchmarks: `ok`, `sleep` (until stopped, then cleans up), `random` (seeded draws), `reports` (`n` reports in a row), `calls`
//! (`n` no-op host calls).

use chaos_plugin_sdk::{self as sdk, Error, kube};

// Read-only access to pods in one namespace: anything else is refused by the host.
sdk::capabilities!(r#"{"rules":[{"resources":["pods"],"verbs":["get","list"],"namespaces":["default"]}]}"#);

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
            "calls" => {
                for _ in 0..cfg.n {
                    std::hint::black_box(sdk::cancelled());
                }
                sdk::summary(&cfg.n)
            }
            other => Err(Error::invalid(format!("unknown mode {other:?}"))),
        }
    }
}

sdk::export!(Hostile);
