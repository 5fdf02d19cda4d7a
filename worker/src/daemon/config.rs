//! The daemon's settings (a leaf: every part of the daemon reads it, it reads none of them).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::journal::JournalConfig;

/// The daemon's settings.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub name: String,
    pub slots: u32,
    pub labels: BTreeMap<String, String>,
    pub clusters: Vec<String>,
    /// The registration lease's TTL (etcd rounds it up to its minimum).
    pub lease_ttl: Duration,
    /// How often the usage in the registration is refreshed.
    pub usage_interval: Duration,
    /// At most one status write per instance per this interval (finals go at once).
    pub status_interval: Duration,
    /// How long plugins may take to clean up at shutdown or after a lease loss.
    pub stop_grace: Duration,
    /// Plugins by name from local files (`--plugin-path NAME=PATH`), before the built-in ones.
    pub plugin_paths: BTreeMap<String, PathBuf>,
    pub journal: JournalConfig,
    /// Where what this worker measured waits until etcd has it (`--state-dir`); None: memory.
    pub state_dir: Option<PathBuf>,
    /// Hosts probes may send HTTP to outside the cluster (`--probe-allow-host`).
    pub probe_allow_hosts: Vec<String>,
}

impl DaemonConfig {
    pub fn new(name: impl Into<String>) -> Self {
        DaemonConfig {
            name: name.into(),
            slots: 10,
            labels: BTreeMap::new(),
            clusters: vec!["default".into()],
            lease_ttl: Duration::from_secs(2),
            usage_interval: Duration::from_secs(3),
            status_interval: Duration::from_secs(1),
            stop_grace: Duration::from_secs(35),
            plugin_paths: BTreeMap::new(),
            journal: JournalConfig::default(),
            state_dir: None,
            probe_allow_hosts: Vec::new(),
        }
    }
}
