//! Shared defaults: the one place where a port, a prefix or a limit is spelled.

/// Default etcd endpoint (`--etcd`, `CHAOS_ETCD`).
pub const DEFAULT_ETCD: &str = "http://127.0.0.1:2379";
/// Default key prefix (`--prefix`, `CHAOS_PREFIX`).
pub const DEFAULT_PREFIX: &str = "/chaos";
/// Default apiserver listen address (`chaos-apiserver --listen`).
pub const DEFAULT_APISERVER_LISTEN: &str = "127.0.0.1:7070";
/// Default apiserver URL for clients (`chaosctl --server`, `CHAOS_SERVER`).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7070";
/// Default kubesim listen address.
pub const DEFAULT_KUBESIM_LISTEN: &str = "127.0.0.1:6443";

pub const ENV_ETCD: &str = "CHAOS_ETCD";
pub const ENV_PREFIX: &str = "CHAOS_PREFIX";
pub const ENV_SERVER: &str = "CHAOS_SERVER";

/// etcd's default `--max-txn-ops`: operations (and compares) per transaction.
pub const ETCD_MAX_TXN_OPS: usize = 128;
/// Transactions of an unordered batch sent at once: enough for etcd to fold them into one disk
/// sync, few enough that another component's write does not queue behind a long burst (measured
/// with `chaos-bench pipeline`: 2–8 give the same throughput, and apply → first Running grows
/// with the number).
pub const BATCH_CHUNKS_IN_FLIGHT: usize = 4;
/// Largest request body the apiserver accepts.
pub const MAX_REQUEST_BODY: usize = 1 << 20;
/// Largest plugin the apiserver stores unless told otherwise (`--plugin-max-bytes`).
pub const DEFAULT_PLUGIN_MAX_BYTES: usize = 16 << 20;
/// Plugin bytes are stored in etcd in chunks of this size (etcd refuses requests over 1.5 MiB).
pub const BLOB_CHUNK_BYTES: usize = 512 << 10;

/// Labels every Kubernetes object a plugin creates carries: a restarted plugin adopts what they mark, a sweep finds it.
/// Spelled in `chaos-plugin-types`, which the plugin SDK shares.
pub use chaos_plugin_types::labels::{LABEL_INSTANCE, LABEL_SCENARIO};

/// What a Pending status says of an instance a drained worker handed back (the worker writes it,
/// the scheduler then places the instance elsewhere).
pub const DRAINED_REASON: &str = "drained from its worker; waiting to be placed on another";
