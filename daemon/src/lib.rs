//! Process plumbing every chaos daemon shares: the common flags (etcd endpoints, key prefix,
//! log format), logging set-up, and shutdown on SIGINT/SIGTERM (a second signal forces exit).

pub mod probes;

use chaos_def::consts::{DEFAULT_ETCD, DEFAULT_PREFIX, ENV_ETCD, ENV_PREFIX};
use chaos_def::retry::Backoff;
use std::path::PathBuf;

use chaos_def::store::{EtcdTls, Leadership, Store, StoreError, WatchEvent, Watcher};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// `--etcd`, `--prefix`: where the state lives.
#[derive(Debug, Clone, clap::Args)]
pub struct EtcdArgs {
    /// etcd endpoints, comma-separated.
    #[arg(long = "etcd", env = ENV_ETCD, default_value = DEFAULT_ETCD, value_delimiter = ',')]
    pub endpoints: Vec<String>,
    /// Key prefix under which all state lives.
    #[arg(long, env = ENV_PREFIX, default_value = DEFAULT_PREFIX)]
    pub prefix: String,
    /// The CA of etcd's certificates (PEM): talk to etcd over TLS (`https://` endpoints).
    #[arg(long, env = "CHAOS_ETCD_CA", value_name = "FILE")]
    pub etcd_ca: Option<PathBuf>,
    /// This process's client certificate (PEM), for an etcd that checks clients.
    #[arg(long, env = "CHAOS_ETCD_CERT", value_name = "FILE", requires_all = ["etcd_key", "etcd_ca"])]
    pub etcd_cert: Option<PathBuf>,
    /// The key of `--etcd-cert` (PEM).
    #[arg(long, env = "CHAOS_ETCD_KEY", value_name = "FILE", requires = "etcd_cert")]
    pub etcd_key: Option<PathBuf>,
}

impl EtcdArgs {
    pub async fn connect(&self) -> Result<Store, StoreError> {
        let tls = self.tls().map_err(|why| StoreError::Etcd(etcd_client::Error::InvalidArgs(why)))?;
        Store::connect_with(&self.endpoints, &self.prefix, tls.as_ref()).await
    }

    /// The TLS material the flags name, read; an error says which file or flag is wrong.
    /// `https://` endpoints need a CA, and a CA needs `https://` endpoints (a plain endpoint
    /// would silently skip TLS).
    pub fn tls(&self) -> Result<Option<EtcdTls>, String> {
        let https = self.endpoints.iter().filter(|e| e.starts_with("https://")).count();
        match (&self.etcd_ca, https) {
            (None, 0) => return Ok(None),
            (None, _) => return Err("the etcd endpoints are https:// but no --etcd-ca was given".into()),
            (Some(_), n) if n < self.endpoints.len() => {
                return Err("--etcd-ca is given, so every --etcd endpoint must be https://".into());
            }
            (Some(_), _) => {}
        }
        let read = |path: &PathBuf| std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()));
        let ca = read(self.etcd_ca.as_ref().expect("checked above"))?;
        let identity = match (&self.etcd_cert, &self.etcd_key) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            _ => None,
        };
        Ok(Some(EtcdTls { ca, identity }))
    }
}

/// `--name`, `--lease-ttl`: how a replica of an elected daemon (controller, scheduler) takes
/// part in its election.
#[derive(Debug, Clone, clap::Args)]
pub struct ElectionArgs {
    /// This replica's name in the leader election (default: host name and process id).
    #[arg(long, env = "CHAOS_NAME")]
    pub name: Option<String>,
    /// Leadership lease TTL in seconds: how long a crashed leader blocks the next one.
    #[arg(long, default_value_t = 2)]
    pub lease_ttl: u64,
}

impl ElectionArgs {
    pub fn identity(&self) -> String {
        self.name.clone().unwrap_or_else(default_identity)
    }

    pub fn lease_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lease_ttl)
    }
}

/// `--log-format`: how log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log line format.
    #[arg(long, env = "CHAOS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Installs the global subscriber. The level comes from `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).init(),
    }
}

/// A token cancelled by the first SIGINT or SIGTERM; a second one exits the process at once
/// (status 130), for when a graceful shutdown hangs.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down (send the signal again to force)");
        trigger.cancel();
        wait_for_signal().await;
        tracing::warn!("forced exit");
        std::process::exit(130);
    });
    token
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// A name for this process when none is given: `<host>-<pid>`.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}-{}", std::process::id())
}

/// Runs `lead` for as long as this process is the elected leader of `role`, campaigning again
/// whenever a term ends, until `cancel`. `lead` gets the term's [`Leadership`] and must return
/// it once the term's `lost()` token fires (or `cancel` does); on `cancel` the leader resigns
/// at once so that a standby takes over without waiting out the lease.
pub async fn run_elected<F, Fut>(
    store: &Store,
    role: &str,
    identity: &str,
    lease_ttl: std::time::Duration,
    cancel: &CancellationToken,
    mut lead: F,
) where
    F: FnMut(Leadership) -> Fut,
    Fut: std::future::Future<Output = Leadership>,
{
    // Each failure waits a little longer (etcd may be restarting), up to two seconds. Not
    // `retry`: the two steps (lease, campaign) share one count of failures in a row.
    let backoff = Backoff {
        initial: std::time::Duration::from_millis(500),
        max: std::time::Duration::from_secs(2),
        factor: 2,
        attempts: u32::MAX,
    };
    let mut failures = 0;
    while !cancel.is_cancelled() {
        let lease = match store.grant_lease(lease_ttl).await {
            Ok(lease) => lease,
            Err(error) => {
                tracing::warn!(%error, "cannot get a lease from etcd; retrying");
                failures += 1;
                sleep_or_cancel(backoff.delay(failures), cancel).await;
                continue;
            }
        };
        let leadership = match store.campaign(role, identity, &lease, cancel).await {
            Ok(leadership) => leadership,
            Err(StoreError::Cancelled) => break,
            Err(error) => {
                tracing::warn!(%error, "campaign failed; retrying");
                failures += 1;
                sleep_or_cancel(backoff.delay(failures), cancel).await;
                continue;
            }
        };
        failures = 0;
        tracing::info!(%role, %identity, "leading");
        probes::set_leading(true);
        let leadership = lead(leadership).await;
        probes::set_leading(false);
        if cancel.is_cancelled() {
            let _ = leadership.resign().await;
            let _ = lease.revoke().await;
            break;
        }
        tracing::warn!(%role, %identity, "leadership lost; campaigning again");
    }
}

/// Sleeps for `duration` or until `cancel`, whichever comes first.
pub async fn sleep_or_cancel(duration: std::time::Duration, cancel: &CancellationToken) {
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::time::sleep(duration) => {}
    }
}

/// What every daemon does first: logging, the shutdown token, the etcd connection.
pub async fn boot(etcd: &EtcdArgs, log: &LogArgs) -> Result<(Store, CancellationToken), StoreError> {
    init_logging(log.log_format);
    let shutdown = shutdown_token();
    let store = etcd.connect().await?;
    Ok((store, shutdown))
}

/// What an elected daemon (controller, scheduler) does first: [`boot`], then its probes on
/// `--listen`. Returns the store, the shutdown token and the probes' address.
pub async fn boot_elected(
    etcd: &EtcdArgs,
    log: &LogArgs,
    probes: &probes::ProbeArgs,
    role: &'static str,
) -> std::io::Result<(Store, CancellationToken, std::net::SocketAddr)> {
    let (store, shutdown) = boot(etcd, log).await.map_err(std::io::Error::other)?;
    let address = probes::start(probes, role, &store, &shutdown)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("listening on {}: {e}", probes.listen)))?;
    Ok((store, shutdown, address))
}

/// The flags of an elected daemon (controller, scheduler), besides its own.
#[derive(Debug, Clone, clap::Args)]
pub struct ElectedDaemonArgs {
    #[command(flatten)]
    pub etcd: EtcdArgs,
    #[command(flatten)]
    pub election: ElectionArgs,
    #[command(flatten)]
    pub probes: probes::ProbeArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// What an elected daemon's loop is started with.
#[derive(Debug)]
pub struct Elected {
    pub store: Store,
    /// This replica's name in the election.
    pub identity: String,
    pub lease_ttl: std::time::Duration,
    pub shutdown: CancellationToken,
}

impl ElectedDaemonArgs {
    /// An elected daemon's whole life: [`boot_elected`], then `run` until it returns (after
    /// shutdown), with a log line at either end.
    pub async fn serve<F, Fut>(&self, role: &'static str, run: F) -> std::io::Result<()>
    where
        F: FnOnce(Elected) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let (store, shutdown, probes) = boot_elected(&self.etcd, &self.log, &self.probes, role).await?;
        let identity = self.election.identity();
        tracing::info!(%role, %identity, prefix = %self.etcd.prefix, %probes, "{role} started");
        run(Elected { store, identity, lease_ttl: self.election.lease_ttl(), shutdown }).await;
        tracing::info!(%role, "{role} stopped");
        Ok(())
    }
}

/// Changes queued between two turns of a [`Watches`] loop before the watches wait.
pub const WATCHES_QUEUE: usize = 16_384;

/// Several watches followed through one channel, for a loop that keeps a cache of several
/// prefixes: it takes their events in batches, and knows when every watch has listed once
/// (before that, its picture is incomplete and it must not act on it). Other sources of the
/// loop's changes (tasks reporting back) send through a [`Feed`] into the same channel, so the
/// loop takes everything in the order it came.
pub struct Watches<C> {
    tracker: TaskTracker,
    stop: CancellationToken,
    tx: Option<tokio::sync::mpsc::Sender<(C, bool)>>,
    rx: tokio::sync::mpsc::Receiver<(C, bool)>,
    watches: usize,
    listed: usize,
}

impl<C: Send + 'static> Default for Watches<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Send + 'static> Watches<C> {
    pub fn new() -> Self {
        // Room for the changes of a whole burst (a scenario of thousands of instances, and their
        // statuses): the loop takes all that is queued at each turn, so a small channel would
        // cut a burst into many turns, each a full pass over the cache.
        let (tx, rx) = tokio::sync::mpsc::channel(WATCHES_QUEUE);
        Watches { tracker: TaskTracker::new(), stop: CancellationToken::new(), tx: Some(tx), rx, watches: 0, listed: 0 }
    }

    /// Follows `watcher`, wrapping its events with `wrap`.
    pub fn follow<T>(&mut self, mut watcher: Watcher<T>, wrap: fn(WatchEvent<T>) -> C)
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        let Some(tx) = self.tx.clone() else { return };
        let stop = self.stop.clone();
        self.watches += 1;
        self.tracker.spawn(async move {
            while let Some(event) = watcher.next(&stop).await {
                let listing = matches!(event, WatchEvent::Listed { .. });
                if tx.send((wrap(event), listing)).await.is_err() {
                    break;
                }
            }
        });
    }

    /// Whether every watch has delivered its first listing.
    pub fn all_listed(&self) -> bool {
        self.listed >= self.watches
    }

    /// Waits for changes until `wake` (or `until` completes); hands every change queued by
    /// then to `apply`. Returns false once `until` has completed: time to stop.
    pub async fn wait(
        &mut self,
        wake: tokio::time::Instant,
        until: impl std::future::Future<Output = ()>,
        mut apply: impl FnMut(C),
    ) -> bool {
        tokio::select! {
            _ = until => return false,
            change = self.next() => {
                let Some(change) = change else { return false };
                apply(change);
                while let Some(change) = self.try_next() {
                    apply(change);
                }
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
        true
    }

    /// A sender of changes from elsewhere than the watches.
    pub fn feed(&self) -> Feed<C> {
        Feed(self.tx.clone())
    }

    /// The next change, waiting for one; `None` once every watch and feed has gone.
    pub async fn next(&mut self) -> Option<C> {
        let (change, listing) = self.rx.recv().await?;
        self.listed += usize::from(listing);
        Some(change)
    }

    /// The next change if one is queued.
    pub fn try_next(&mut self) -> Option<C> {
        let (change, listing) = self.rx.try_recv().ok()?;
        self.listed += usize::from(listing);
        Some(change)
    }

    /// Stops the watches; what the feeds still send keeps coming through [`Watches::next`].
    pub fn stop_watching(&mut self) {
        self.tx = None;
        self.stop.cancel();
    }

    /// Stops every watch and waits for their tasks.
    pub async fn close(mut self) {
        self.stop_watching();
        // A watch blocked on a full channel gives up at once instead of holding the close.
        self.rx.close();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Sends changes into a [`Watches`] channel from another task (a run reporting its end, a read
/// answering). Cheap to clone.
#[derive(Debug)]
pub struct Feed<C>(Option<tokio::sync::mpsc::Sender<(C, bool)>>);

impl<C> Clone for Feed<C> {
    fn clone(&self) -> Self {
        Feed(self.0.clone())
    }
}

impl<C> Feed<C> {
    /// Sends `change`; false once the loop has gone.
    pub async fn send(&self, change: C) -> bool {
        match &self.0 {
            Some(tx) => tx.send((change, false)).await.is_ok(),
            None => false,
        }
    }
}

/// Completes when either token is cancelled.
pub async fn either_cancelled(a: &CancellationToken, b: &CancellationToken) {
    tokio::select! {
        _ = a.cancelled() => {}
        _ = b.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(endpoints: &[&str], ca: Option<&std::path::Path>) -> EtcdArgs {
        EtcdArgs {
            endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
            prefix: "/chaos".into(),
            etcd_ca: ca.map(PathBuf::from),
            etcd_cert: None,
            etcd_key: None,
        }
    }

    #[test]
    fn tls_needs_https_endpoints_and_a_ca_together() {
        assert!(args(&["http://a:2379"], None).tls().unwrap().is_none());
        let error = args(&["https://a:2379"], None).tls().unwrap_err();
        assert!(error.contains("no --etcd-ca"), "{error}");
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let error = args(&["https://a:2379", "http://b:2379"], Some(&ca)).tls().unwrap_err();
        assert!(error.contains("must be https://"), "{error}");
        let tls = args(&["https://a:2379"], Some(&ca)).tls().unwrap().unwrap();
        assert!(tls.identity.is_none());
        let error = args(&["https://a:2379"], Some(&dir.path().join("missing.pem"))).tls().unwrap_err();
        assert!(error.contains("missing.pem"), "{error}");
    }
}
