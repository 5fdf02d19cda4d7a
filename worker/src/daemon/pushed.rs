//! Pushed plugins on the worker: a reference (`name`, `name@version`, `sha256:…`) resolved to
//! a digest through `plugins/`, the bytes fetched from `blobs/<digest>/` once per digest, their
//! sha256 checked, kept on disk (`<cache-dir>/blobs/<digest>.wasm`) so that a restarted worker
//! does not fetch them again, and compiled once by the runtime.
//!
//! Concurrent first uses of one digest share one fetch: a burst of a thousand instances of a
//! new plugin reads its blob once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chaos_def::PluginRef;
use chaos_def::plugin::sha256_hex;
use chaos_def::records::PluginMeta;
use chaos_def::store::Store;
use tokio::sync::OnceCell;

use crate::error::{Error, Result};
use crate::runtime::cache::write_atomically;
use crate::runtime::{Plugin, Runtime};

pub struct PushedPlugins {
    store: Store,
    runtime: Runtime,
    cache_dir: Option<PathBuf>,
    /// Loaded plugins by digest; a failed load leaves its cell empty for the next try.
    loaded: Mutex<HashMap<String, Arc<OnceCell<Plugin>>>>,
    /// `name@version` → digest: immutable once pushed, so never read twice.
    versions: Mutex<HashMap<(String, String), String>>,
}

impl PushedPlugins {
    pub fn new(store: Store, runtime: Runtime, cache_dir: Option<PathBuf>) -> Self {
        PushedPlugins { store, runtime, cache_dir, loaded: Mutex::default(), versions: Mutex::default() }
    }

    /// The compiled plugin a reference names.
    pub async fn load(&self, plugin: &PluginRef) -> Result<Plugin> {
        let digest = self.digest_of(plugin).await?;
        let cell = {
            let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
            loaded.entry(digest.clone()).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            let bytes = self.fetch(&digest).await?;
            self.runtime.load(bytes).await
        })
        .await
        .cloned()
    }

    async fn digest_of(&self, plugin: &PluginRef) -> Result<String> {
        let unavailable = |source| Error::PluginUnreadable { plugin: plugin.to_string(), source };
        match plugin {
            PluginRef::Digest(digest) => Ok(digest.clone()),
            PluginRef::Version { name, version } => {
                let id = (name.clone(), version.clone());
                if let Some(digest) = self.versions.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
                    return Ok(digest.clone());
                }
                let key = self.store.keys().plugin(name, version);
                let meta = self.store.get::<PluginMeta>(&key).await.map_err(unavailable)?;
                let digest = meta.ok_or_else(|| Error::NotPushed { plugin: plugin.to_string() })?.value.digest;
                self.versions.lock().unwrap_or_else(|e| e.into_inner()).insert(id, digest.clone());
                Ok(digest)
            }
            // A bare name means its most recently pushed version.
            PluginRef::Name(name) => {
                let prefix = self.store.keys().plugin_versions_prefix(name);
                let listing = self.store.list::<PluginMeta>(&prefix).await.map_err(unavailable)?;
                listing
                    .items
                    .into_iter()
                    .map(|(_, v)| v.value)
                    .max_by_key(|meta| meta.pushed_at)
                    .map(|meta| meta.digest)
                    .ok_or_else(|| Error::UnknownPlugin { name: name.clone() })
            }
        }
    }

    /// The bytes of `digest`: from the disk cache if they are there and intact, else from etcd.
    async fn fetch(&self, digest: &str) -> Result<Vec<u8>> {
        let cached = self.cache_dir.as_ref().map(|dir| dir.join("blobs").join(format!("{digest}.wasm")));
        if let Some(path) = &cached
            && let Ok(bytes) = tokio::fs::read(path).await
        {
            if sha256_hex(&bytes) == digest {
                return Ok(bytes);
            }
            tracing::warn!(path = %path.display(), "cached plugin does not match its digest; fetching it again");
        }
        let bytes = self
            .store
            .read_blob(digest)
            .await
            .map_err(|source| Error::PluginUnreadable { plugin: format!("sha256:{digest}"), source })?
            .ok_or_else(|| Error::BlobMissing { digest: digest.to_string() })?;
        let actual = sha256_hex(&bytes);
        if actual != digest {
            return Err(Error::BlobCorrupt { digest: digest.to_string(), size: bytes.len(), actual });
        }
        tracing::info!(%digest, size = bytes.len(), "plugin fetched");
        if let Some(path) = cached {
            let (kept, copy) = (path.clone(), bytes.clone());
            let written = tokio::task::spawn_blocking(move || write_atomically(&kept, &copy)).await;
            if let Err(error) = written.map_err(std::io::Error::other).and_then(|r| r) {
                // The worker runs without it; the next start fetches again.
                tracing::warn!(path = %path.display(), %error, "cannot keep the plugin on disk");
            }
        }
        Ok(bytes)
    }
}
