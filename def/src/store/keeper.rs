//! Where lease keep-alives run: a thread of their own, with its own Tokio runtime and its own
//! etcd connection.
//!
//! A lease's refreshes have a deadline (its TTL, two seconds for a leader) that the process's
//! own work must not be able to push back. On the daemon's runtime they would be, in two ways:
//! a long synchronous step (a scheduler pass over 100,000 instances, the decoding of a large
//! watch response) holds a runtime thread, and with both of a two-core machine's threads held
//! the keep-alive task is not polled; and a shared HTTP/2 connection carries the refreshes
//! behind whatever else it is carrying (megabytes of listing pages). Here the refreshes have a
//! thread that sleeps between them, which the kernel's fair scheduler runs as soon as it wakes
//! even when every core is busy (a thread that used little CPU is owed it), and a connection
//! that carries nothing else.

use std::sync::OnceLock;

use tokio::runtime::Handle;

/// The keepers' runtime, started on first use and kept for the life of the process.
pub(super) fn runtime() -> &'static Handle {
    static KEEPER: OnceLock<Handle> = OnceLock::new();
    KEEPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("lease-keeper".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the lease keepers' runtime starts");
                let _ = tx.send(runtime.handle().clone());
                runtime.block_on(std::future::pending::<()>());
            })
            .expect("the lease keepers' thread starts");
        rx.recv().expect("the lease keepers' runtime hands over its handle")
    })
}
