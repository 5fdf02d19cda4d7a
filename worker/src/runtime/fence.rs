//! A run's right to act (a leaf: the host checks it before every cluster call, the daemon
//! revokes it).

use tokio_util::sync::CancellationToken;

/// What revokes a run's right to touch the cluster, unlike cancellation (which lets the
/// plugin clean up): `abort` drops the instance at once, without its cleanup; and once the
/// worker's lease is no longer surely alive, every cluster call is refused, even before the
/// worker has noticed (a paused process resumed past its TTL makes no call: another worker
/// may already run the instance).
#[derive(Debug, Clone, Default)]
pub struct RunFence {
    pub abort: CancellationToken,
    pub lease: Option<chaos_def::store::LeaseClock>,
}

impl RunFence {
    pub fn revoked(&self) -> bool {
        self.abort.is_cancelled() || self.lease.as_ref().is_some_and(|l| !l.is_alive())
    }
}
