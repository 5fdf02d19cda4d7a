//! The built-in plugins of this worker: compiled once, in the background at start, then handed
//! out by name. A run's start must not hash a whole component again to find its compiled code,
//! as [`Runtime::load`] does for bytes it is given.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::error::Result;
use crate::runtime::{Plugin, Runtime};

pub struct BuiltinPlugins {
    runtime: Runtime,
    loaded: Mutex<BTreeMap<&'static str, Plugin>>,
}

impl BuiltinPlugins {
    pub fn new(runtime: Runtime) -> Self {
        BuiltinPlugins { runtime, loaded: Mutex::default() }
    }

    /// The built-in plugin `name`, compiled on first use; `None` when there is none by that name.
    pub async fn load(&self, name: &str) -> Option<Result<Plugin>> {
        let (name, bytes) = crate::plugins::builtin_entry(name)?;
        if let Some(plugin) = self.loaded.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            return Some(Ok(plugin.clone()));
        }
        // Two first uses at once compile once: the runtime shares one compilation per digest.
        let loaded = self.runtime.load(bytes).await;
        if let Ok(plugin) = &loaded {
            self.loaded.lock().unwrap_or_else(|p| p.into_inner()).insert(name, plugin.clone());
        }
        Some(loaded)
    }

    /// Compiles every built-in plugin (on a worker's start, so that the first instance of each
    /// starts at once instead of waiting for its compilation).
    pub async fn compile_all(&self) {
        for name in crate::plugins::builtin_names() {
            if let Some(Err(error)) = self.load(name).await {
                tracing::warn!(plugin = name, %error, "cannot compile a built-in plugin");
            }
        }
        tracing::debug!("built-in plugins compiled");
    }
}
