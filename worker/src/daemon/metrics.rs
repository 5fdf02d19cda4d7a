//! The worker's numbers and its HTTP endpoints: `/healthz` (the process answers), `/readyz`
//! (registered under a live lease, and the built-in plugins compiled, so that an instance
//! assigned now starts at once), `/metrics` (Prometheus text format).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chaos_def::store::endpoints;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A number that only goes up.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A number that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Everything `/metrics` shows.
#[derive(Debug, Default)]
pub struct Metrics {
    pub running: Gauge,
    pub started: Counter,
    pub finished: Counter,
    pub reports: Counter,
    pub status_writes: Counter,
    pub status_write_errors: Counter,
    pub fenced_writes: Counter,
    pub buffered_statuses: Gauge,
    pub buffered_reports: Gauge,
    pub journal_events: Counter,
    pub journal_dropped: Counter,
    pub buffered_events: Gauge,
    pub registrations: Counter,
    pub leases_lost: Counter,
    pub self_fenced: Counter,
    pub registered: AtomicBool,
    pub plugins_compiled: AtomicBool,
    pub buffered_event_bytes: Gauge,
    /// The store, for which etcd members answer (`/readyz`, `/metrics`).
    pub etcd: std::sync::OnceLock<chaos_def::store::Store>,
    /// The availability accounting, for its counters.
    pub availability: std::sync::OnceLock<Arc<crate::availability::Accountant>>,
    /// Items held back by the plugin limits, by plugin and channel (not by instance: with
    /// thousands of instances that would be thousands of series).
    limited: Mutex<BTreeMap<(String, String), u64>>,
}

impl Metrics {
    pub fn is_registered(&self) -> bool {
        self.registered.load(Ordering::Relaxed)
    }

    pub fn set_registered(&self, registered: bool) {
        self.registered.store(registered, Ordering::Relaxed);
    }

    /// Counts `n` items of `plugin` held back on `channel`.
    pub fn plugin_limited(&self, plugin: &str, channel: &str, n: u64) {
        let mut limited = self.limited.lock().unwrap_or_else(|p| p.into_inner());
        *limited.entry((plugin.to_string(), channel.to_string())).or_default() += n;
    }

    /// What [`Self::plugin_limited`] counted, by (plugin, channel).
    pub fn plugin_limited_counts(&self) -> BTreeMap<(String, String), u64> {
        self.limited.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut one = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP chaos_worker_{name} {help}\n# TYPE chaos_worker_{name} {kind}");
            let _ = writeln!(out, "chaos_worker_{name} {value}");
        };
        one("running_instances", "gauge", "Plugin instances running now.", self.running.get());
        one("instances_started_total", "counter", "Instances started.", self.started.get());
        one("instances_finished_total", "counter", "Instances finished.", self.finished.get());
        one("reports_total", "counter", "Reports received from plugins.", self.reports.get());
        one("status_writes_total", "counter", "Status transactions committed.", self.status_writes.get());
        one(
            "status_write_errors_total",
            "counter",
            "Status writes that failed (retried).",
            self.status_write_errors.get(),
        );
        one("fenced_writes_total", "counter", "Status writes refused by the fence.", self.fenced_writes.get());
        one("buffered_statuses", "gauge", "Statuses waiting to be written.", self.buffered_statuses.get());
        one("buffered_reports", "gauge", "Reports not yet delivered to etcd.", self.buffered_reports.get());
        one("journal_events_total", "counter", "Journal events written.", self.journal_events.get());
        one("journal_dropped_total", "counter", "Journal events dropped (cap).", self.journal_dropped.get());
        one("buffered_events", "gauge", "Journal events waiting to be written.", self.buffered_events.get());
        one("registrations_total", "counter", "Registrations under a new lease.", self.registrations.get());
        one("leases_lost_total", "counter", "Leases lost (self-fencing).", self.leases_lost.get());
        one("registered", "gauge", "1 while registered under a live lease.", u64::from(self.is_registered()));
        one("buffered_event_bytes", "gauge", "Bytes of journal events waiting.", self.buffered_event_bytes.get());
        if let Some(accountant) = self.availability.get() {
            let m = &accountant.metrics;
            let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
            one("probe_samples_total", "counter", "Probe samples taken.", get(&m.samples));
            one("probe_episodes_total", "counter", "30-second episodes finished.", get(&m.episodes));
            one("probe_pages_written_total", "counter", "Episode pages written to etcd.", get(&m.pages_written));
            one("probe_write_failures_total", "counter", "Page writes etcd did not take.", get(&m.write_failures));
            one("probe_pending_pages", "gauge", "Episode pages waiting for etcd.", get(&m.pending_pages));
        }
        let _ = writeln!(
            out,
            "# HELP chaos_worker_plugin_limited_total Items plugins sent past their limits (dropped; kube: delayed).\n\
             # TYPE chaos_worker_plugin_limited_total counter"
        );
        for ((plugin, channel), n) in self.plugin_limited_counts() {
            let plugin = plugin.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(out, "chaos_worker_plugin_limited_total{{plugin=\"{plugin}\",channel=\"{channel}\"}} {n}");
        }
        // After the family above: a family's samples follow its own HELP and TYPE lines.
        if let Some(store) = self.etcd.get() {
            out.push_str(&chaos_def::store::endpoints::metrics("worker", &store.endpoint_health()));
        }
        out
    }
}

/// Serves the three endpoints on `listener` until `cancel` (a minimal HTTP/1.1 server: one
/// request per connection).
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, cancel: CancellationToken) {
    loop {
        let (mut socket, _) = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    tracing::debug!(%error, "accept failed");
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // The request head, read until its blank line (or 8 KiB, or 5 s).
            let mut buf = Vec::with_capacity(1024);
            let read_head = async {
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            };
            if tokio::time::timeout(std::time::Duration::from_secs(5), read_head).await.is_err() {
                return;
            }
            let request = String::from_utf8_lossy(&buf);
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let (code, body) = match path {
                "/healthz" => ("200 OK", "ok\n".to_string()),
                "/readyz" => {
                    let (code, state) =
                        match (metrics.is_registered(), metrics.plugins_compiled.load(Ordering::Relaxed)) {
                            (true, true) => ("200 OK", "ready"),
                            (false, _) => ("503 Service Unavailable", "not registered"),
                            (true, false) => ("503 Service Unavailable", "compiling the built-in plugins"),
                        };
                    let members = metrics.etcd.get().map(|s| endpoints::describe(&s.endpoint_health()));
                    (code, format!("{state}\n{}", members.unwrap_or_default()))
                }
                "/metrics" => ("200 OK", metrics.render()),
                _ => ("404 Not Found", "not found\n".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {code}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}
