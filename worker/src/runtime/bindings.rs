//! The generated bindings of the plugin interface (`plugins/wit/plugin.wit`), and the host
//! types its resources stand for. Everything else in the runtime imports the WIT types from here.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::DropGuard;

use self::chaos::plugin::kube::WatchEvent;
use self::chaos::plugin::types::Error as WitError;

wasmtime::component::bindgen!({
    path: "../plugins/wit",
    world: "plugin",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "chaos:plugin/kube.watch": crate::runtime::bindings::WatchHandle,
    },
});

/// The host side of a WIT `watch` resource: the events of one cluster watch, in order.
pub struct WatchHandle {
    pub(crate) rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Result<WatchEvent, WitError>>>>,
    /// Stops the watch's task when the plugin drops the resource.
    pub(crate) _stop: DropGuard,
}
