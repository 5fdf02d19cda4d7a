//! The etcd I/O thread: a thread of its own, with its own Tokio runtime, on which every etcd
//! connection's tasks (balancer, HTTP/2 connections, endpoint probes) and every lease
//! keep-alive run. The daemon's runtime only hands requests over and takes answers.
//!
//! A lease's refreshes have a deadline (its TTL, two seconds for a leader) that the process's
//! own work must not be able to push back. On the daemon's runtime it would: a long synchronous
//! step (a scheduler pass over 100,000 instances, the decoding of a large watch response) holds
//! a runtime thread, and with both of a two-core machine's threads held neither the keep-alive
//! task nor the connection it writes to is polled. Here they have a thread that sleeps between
//! refreshes and reads, which the kernel's fair scheduler runs as soon as it wakes even when
//! every core is busy (a thread that used little CPU is owed it). The keep-alives use the
//! store's own connection and endpoint health, so that they move between members exactly as
//! its other calls do. (A second connection of their own, tried first, moved on its own
//! schedule and lost leases across a leader's pause and death that the shared one kept.)

use std::sync::OnceLock;

use tokio::runtime::Handle;

/// The etcd I/O runtime, started on first use and kept for the life of the process.
pub(super) fn runtime() -> &'static Handle {
    static IO_RUNTIME: OnceLock<Handle> = OnceLock::new();
    IO_RUNTIME.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("etcd-io".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the etcd I/O runtime starts");
                let _ = tx.send(runtime.handle().clone());
                runtime.block_on(std::future::pending::<()>());
            })
            .expect("the etcd I/O thread starts");
        rx.recv().expect("the etcd I/O runtime hands over its handle")
    })
}
