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
/// Transactions of an unordered batch sent at once: etcd folds concurrent ones into one disk
/// sync, and under load each takes hundreds of milliseconds to apply, so a burst's throughput
/// is this many transactions per apply time (measured with `chaos-bench pipeline`: at 10,000
/// instances 2–8 gave the same throughput; at 100,000 on ten workers the scheduler placed
/// 2,300–2,700 instances/s with 4 and 5,100 with 16).
pub const BATCH_CHUNKS_IN_FLIGHT: usize = 16;
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
