//! Compiled plugins, once per digest: in memory for the process's life and on disk (when a cache
//! directory is set) under a directory named by the engine's compatibility hash, so that a
//! worker restart or an upgrade never loads an artifact compiled for another engine.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::{Error, Result};

/// The directory for this engine's artifacts inside `root`.
pub(crate) fn engine_dir(engine: &Engine, root: &Path) -> PathBuf {
    // SipHash with fixed keys: stable for a given Rust std, which is part of the build anyway.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    root.join(format!("{:016x}", h.finish()))
}

/// Compiles `wasm` (digest `digest`), going through the disk cache when there is one.
pub(crate) fn compile(engine: &Engine, digest: &str, wasm: &[u8], cache: Option<&Path>) -> Result<Component> {
    let fail = |e: wasmtime::Error| Error::Plugin { digest: digest.to_string(), message: format!("{e:#}") };
    let Some(root) = cache else {
        return Component::new(engine, wasm).map_err(fail);
    };
    let dir = engine_dir(engine, root);
    let path = dir.join(format!("{digest}.cwasm"));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    // One compilation per digest among every worker sharing the directory (the workers of a
    // local stack start together): the others wait for it, then read the artifact. The lock
    // goes with the file handle, also when the process dies.
    let lock_path = dir.join(format!(".{digest}.lock"));
    let lock = std::fs::File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;
    if path.exists() {
        match deserialize_file(engine, &path) {
            Ok(c) => return Ok(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = format!("{e:#}"), "unusable cached artifact; compiling again");
            }
        }
    }
    let bytes = engine.precompile_component(wasm).map_err(fail)?;
    write_atomically(&path, &bytes).map_err(|e| Error::io(&path, e))?;
    deserialize_file(engine, &path).map_err(fail)
}

/// Writes `path` through a temporary file and a rename, so that a reader never sees (or maps)
/// half a file. The temporary name is unique to the process and the call: two writers of one
/// path, in one process or two, never write into the same file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[allow(unsafe_code)]
fn deserialize_file(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: deserializing runs native code from the file, so it must be an artifact this very
    // engine produced. It is: the file lives under a directory keyed by this engine's
    // compatibility hash, named by the sha256 of the source the worker compiled itself, and it
    // is only ever written by `compile` above (never taken from users, who push `.wasm`);
    // wasmtime also checks the artifact's header against the engine and refuses a mismatch.
    unsafe { Component::deserialize_file(engine, path) }
}
