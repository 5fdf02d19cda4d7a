//! The worker's one error type: what can fail while setting up the runtime, loading a plugin or
//! connecting to a cluster, and (daemon mode) talking to etcd. What goes wrong inside a running instance is not an error of the
//! worker but the instance's [`Outcome`](crate::runtime::Outcome).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The wasmtime engine or linker could not be built.
    #[error("wasm engine: {0}")]
    Engine(String),
    /// The bytes are not a plugin this worker can run.
    #[error("plugin {digest}: {message}")]
    Plugin { digest: String, message: String },
    /// The plugin's `chaos:capabilities` section is missing or malformed.
    #[error("plugin {digest}: capabilities: {message}")]
    Capabilities { digest: String, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("kubernetes client: {0}")]
    Kube(String),
    /// A plugin reference by name or version that nothing was pushed under.
    #[error("plugin {plugin} is not pushed")]
    NotPushed { plugin: String },
    /// A bare plugin name that is neither a built-in plugin nor pushed.
    #[error("plugin {name} is neither built in nor pushed")]
    UnknownPlugin { name: String },
    /// A pushed plugin's record or bytes could not be read from etcd.
    #[error("cannot read plugin {plugin} from etcd: {source}")]
    PluginUnreadable {
        plugin: String,
        #[source]
        source: chaos_def::store::StoreError,
    },
    /// A digest with no stored bytes.
    #[error("plugin sha256:{digest} is not stored (was it pushed?)")]
    BlobMissing { digest: String },
    /// Stored bytes that do not hash to their digest.
    #[error("plugin sha256:{digest} is corrupted in etcd: its {size} bytes hash to sha256:{actual}; push it again")]
    BlobCorrupt { digest: String, size: usize, actual: String },
    /// The state in etcd could not be read or written (daemon mode).
    #[error(transparent)]
    Store(#[from] chaos_def::store::StoreError),
    /// A daemon setting is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// The health/metrics listener could not be set up.
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
