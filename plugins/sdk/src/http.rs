//! HTTP for probes (WIT 0.1.1): a GET or HEAD to a service or pod through the cluster's API proxy
//! (the plugin declares verb `proxy` on `services` or `pods` in its capabilities), or to a URL on
//! a host the worker's operator allows. The host bounds the answer's size and the wait.

use crate::Error;
use crate::bindings::chaos::plugin::http as wit;

pub use wit::{ProxyTarget, Response, Target};

/// Sends `method` to `target` (with `path` for proxy targets) and waits at most `timeout_ms`.
pub fn send(method: &str, target: Target, path: &str, timeout_ms: u64) -> Result<Response, Error> {
    wit::send(&wit::Request { method: method.to_string(), target, path: path.to_string(), timeout_ms })
}

/// A proxy target.
pub fn proxy_target(namespace: &str, name: &str, port: Option<String>) -> ProxyTarget {
    ProxyTarget { namespace: namespace.to_string(), name: name.to_string(), port }
}
