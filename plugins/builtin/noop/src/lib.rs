//! `noop`: runs until it is stopped and touches nothing. For dry runs of a scenario's
//! scheduling (where would it run, how do workers share it) and for benchmarks of the
//! orchestration itself (`chaos-bench pipeline`, `chaos-bench failover`).
//!
//! Config: `{}`. Capabilities: none.

use chaos_plugin_sdk as sdk;

sdk::capabilities!(r#"{"rules":[]}"#);

struct Noop;

impl sdk::Guest for Noop {
    fn run(_config: String) -> Result<String, sdk::Error> {
        while sdk::sleep_ms(3_600_000) {}
        sdk::summary(&serde_json::json!({"stopped": true}))
    }
}

sdk::export!(Noop);
