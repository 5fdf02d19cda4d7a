//! The runtime's settings (a leaf: the engine and the runtime read it, it reads nothing of theirs).

use std::path::PathBuf;
use std::time::Duration;

use chaos_def::limits::ChannelLimits;

/// How the runtime is set up. `Default` is what a worker runs with.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Linear memory per instance (default 64 MiB); growing past it traps.
    pub memory_limit: usize,
    /// Guest CPU time allowed between two host calls (default 10 s); past it the instance is
    /// stopped. Measured in epoch ticks, so it is approximate to a tick.
    pub cpu_budget: Duration,
    /// How long a cancelled instance may take to clean up and return (default 30 s).
    pub cancel_grace: Duration,
    /// Instances alive at once (the pooling allocator's size; default 10,000).
    pub max_instances: u32,
    /// Use the pooling allocator when the host allows it (default true).
    pub pooling: bool,
    /// Where compiled plugins are kept across restarts (None: memory only).
    pub cache_dir: Option<PathBuf>,
    /// At most one report per instance per interval reaches the sink (default 1 s).
    pub report_interval: Duration,
    /// The epoch tick: the CPU budget's resolution and the longest a spinning guest runs
    /// before yielding to other tasks (default 10 ms).
    pub epoch_tick: Duration,
    /// What each instance may send through the host (a scenario may tighten them).
    pub limits: ChannelLimits,
    /// Kubernetes requests per second of all instances together, and at once above it.
    pub kube_qps: u64,
    pub kube_burst: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            memory_limit: 64 << 20,
            cpu_budget: Duration::from_secs(10),
            cancel_grace: Duration::from_secs(30),
            max_instances: 10_000,
            pooling: true,
            cache_dir: None,
            report_interval: Duration::from_secs(1),
            epoch_tick: Duration::from_millis(10),
            limits: ChannelLimits::default(),
            // Room for a thousand probes a second beside the chaos plugins.
            kube_qps: 2_000,
            kube_burst: 4_000,
        }
    }
}
