//! Commands in containers (WIT 0.1.2): `pods/exec` through the API server. The plugin declares
//! verb `exec` on `pods` (in the namespaces it acts in) in its capabilities. No shell is implied:
//! run `sh -c` when you need one. The host bounds the output it reads and the wait.

use crate::bindings::chaos::plugin::exec as wit;
use crate::{Duration, Error};

pub use wit::Output;

/// Runs `command` in `container` (the pod's first when `None`) of `pod` and waits for its exit,
/// at most `timeout`. A command that ran and failed is `Ok` with its exit code.
pub fn run(namespace: &str, pod: &str, container: Option<&str>, command: &[&str], timeout: Duration) -> Result<Output, Error> {
    wit::run(&wit::Request {
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        container: container.map(str::to_string),
        command: command.iter().map(|w| w.to_string()).collect(),
        timeout_ms: timeout.as_millis().max(1),
    })
}
