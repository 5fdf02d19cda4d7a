//! Registration: `workers/<name>` attached to the worker's own lease, with its slots, labels,
//! clusters, version, usage (CPU, memory, running instances) and its clusters' conditions
//! ([`super::observer`]), refreshed every few seconds.
//!
//! The lease is kept alive by [`chaos_def::store::Lease`]; when it cannot be refreshed within
//! its TTL its `lost` token fires and the daemon fences itself (see [`super`]).

use std::sync::Arc;
use std::time::Duration;

use chaos_def::records::{WorkerRecord, WorkerUsage};
use chaos_def::retry::{Backoff, retry};
use chaos_def::store::{Lease, Store, StoreError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::DaemonConfig;
use super::metrics::Metrics;
use crate::error::Result;
use crate::runtime::KubeGateway;

/// The record as this worker registers it.
pub fn record(config: &DaemonConfig, started_at: jiff::Timestamp, usage: WorkerUsage) -> WorkerRecord {
    WorkerRecord {
        name: config.name.clone(),
        slots: config.slots,
        labels: config.labels.clone(),
        clusters: config.clusters.clone(),
        probe_hosts: config.probe_allow_hosts.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        usage,
        cordoned: false,
        draining: false,
        assigned: None,
        conditions: Default::default(),
        started_at,
    }
}

/// Grants a lease and writes the registration under it.
pub async fn register(store: &Store, config: &DaemonConfig, record: &WorkerRecord) -> Result<Lease> {
    let lease = store.grant_lease(config.lease_ttl).await?;
    store.put_with_lease(&store.keys().worker(&config.name), record, lease.id()).await?;
    // Kept after the worker is gone: a scenario naming a cluster no worker ever declared is
    // probably a typo, and apply says so.
    for cluster in &config.clusters {
        let seen = serde_json::json!({"worker": config.name, "at": jiff::Timestamp::now()});
        store.put(&store.keys().cluster_seen(cluster), &seen).await?;
    }
    tracing::info!(worker = %config.name, lease = format!("{:x}", lease.id()), ttl = ?lease.ttl(), "registered");
    Ok(lease)
}

/// Samples this process's CPU and memory use from `/proc/self`.
#[derive(Debug, Default)]
pub struct UsageSampler {
    last: Option<(Instant, u64)>,
}

impl UsageSampler {
    /// CPU in millicores since the last sample (0 on the first), resident memory in bytes.
    pub fn sample(&mut self, running: u32) -> WorkerUsage {
        let now = Instant::now();
        let ticks = cpu_ticks().unwrap_or(0);
        let cpu_millis = match self.last {
            Some((at, before)) if now > at => {
                // Clock ticks are 100 per second on Linux.
                let cpu_ms = ticks.saturating_sub(before) * 10;
                let wall_ms = now.duration_since(at).as_millis().max(1) as u64;
                cpu_ms * 1000 / wall_ms
            }
            _ => 0,
        };
        self.last = Some((now, ticks));
        WorkerUsage { cpu_millis, memory_bytes: rss_bytes().unwrap_or(0), running, ..WorkerUsage::default() }
    }
}

fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Rewrites the registration with fresh usage and cluster conditions every `every` until
/// `cancel` (errors are logged: the lease, not this refresh, decides whether the worker is
/// alive).
pub async fn refresh_usage(
    store: Store,
    kube: Option<KubeGateway>,
    config: Arc<DaemonConfig>,
    lease_id: i64,
    started_at: jiff::Timestamp,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let mut sampler = UsageSampler::default();
    sampler.sample(0);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(config.usage_interval) => {}
        }
        let running = u32::try_from(metrics.running.get()).unwrap_or(u32::MAX);
        let mut usage = sampler.sample(running);
        // The members, not a fallback address (a Service in front of them) given at start.
        let etcd = store.endpoint_health().into_iter().filter(|(_, s)| !s.fallback);
        let (reachable, unreachable): (Vec<_>, Vec<_>) = etcd.partition(|(_, s)| s.healthy);
        usage.etcd_known = (reachable.len() + unreachable.len()) as u32;
        usage.etcd_reachable = reachable.len() as u32;
        usage.etcd_unreachable = unreachable.into_iter().map(|(e, _)| e).collect();
        let mut rec = record(&config, started_at, usage);
        rec.conditions = super::observer::conditions(kube.as_ref(), &config.clusters).await;
        if let Err(error) = store.put_with_lease(&store.keys().worker(&config.name), &rec, lease_id).await {
            tracing::debug!(%error, "cannot refresh the registration");
        }
    }
}

/// Registers (a new lease, the record under it), trying again with backoff until it works;
/// `None` once `shutdown` fires first.
pub async fn register_until(
    store: &Store,
    config: &DaemonConfig,
    started_at: jiff::Timestamp,
    shutdown: &CancellationToken,
) -> Option<Lease> {
    let backoff =
        Backoff { initial: Duration::from_millis(400), max: Duration::from_secs(3), factor: 2, attempts: u32::MAX };
    let mut sampler = UsageSampler::default();
    let registered = retry(
        backoff,
        shutdown,
        |_| true,
        || {
            let record = record(config, started_at, sampler.sample(0));
            async move {
                let registered = register(store, config, &record).await;
                if let Err(error) = &registered {
                    tracing::warn!(%error, "cannot register; retrying");
                }
                registered
            }
        },
    );
    registered.await.ok()
}

/// Revokes a lease this worker has counted as lost, until etcd says it is gone (or
/// `shutdown`). etcd may well still hold it: a new etcd leader extends every lease, and an
/// etcd that was away keeps them. Its assignments would then outlive the fencing: this worker,
/// registered again, would see them and run them once more, while the scheduler, once they
/// expire, places the same instances elsewhere. Revoked, they go at once and are placed again
/// from a clean slate.
pub async fn revoke_lost(store: &Store, lease: Lease, shutdown: &CancellationToken) {
    let id = lease.id();
    drop(lease); // stops its keep-alive
    let backoff = Backoff { max: Duration::from_secs(1), attempts: u32::MAX, ..Backoff::default() };
    match retry(backoff, shutdown, StoreError::another_member_may_answer, || store.revoke_lease(id)).await {
        Ok(()) => tracing::info!(lease = format!("{id:x}"), "the lost lease is revoked"),
        Err(error) => tracing::warn!(lease = format!("{id:x}"), %error, "cannot revoke the lost lease"),
    }
}

/// Ends the lease at shutdown, which removes the registration and every assignment at once.
pub async fn revoke(store: &Store, lease: Lease) {
    match tokio::time::timeout(store.call_timeout(), lease.revoke()).await {
        Ok(Ok(())) => tracing::info!("lease revoked"),
        Ok(Err(error)) => tracing::warn!(%error, "cannot revoke the lease; it runs out by itself"),
        Err(_) => tracing::warn!("revoking the lease timed out; it runs out by itself"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_reads_this_process() {
        let mut sampler = UsageSampler::default();
        let first = sampler.sample(3);
        assert_eq!(first.running, 3);
        assert_eq!(first.cpu_millis, 0);
        assert!(first.memory_bytes > 0);
    }
}
