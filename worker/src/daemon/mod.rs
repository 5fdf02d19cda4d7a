//! `chaos-worker run`: the worker daemon (DESIGN §4, §7).
//!
//! ```text
//! loop {                                   ┌ registration: workers/<name> on a lease (+ usage)
//!   register under a new lease ───────────▶┤ assignments/<name>/ + instances/ watched into a Cache
//!   session until shutdown or lease lost   ├ decide() per instance → supervisor tasks (plugins)
//!   stop every plugin, wait for cleanup    └ status writer (batched, buffered, fenced) + journal
//! }
//! ```
//!
//! A session lasts as long as its lease. When the lease is lost (etcd away or this process
//! paused past the TTL) every assignment bound to it is gone and other workers may already run
//! its instances, so the worker fences itself: it drops every plugin at once, without their
//! cleanup (the next run adopts what they made), drops their pending status writes (they would
//! be refused anyway) and registers again under a new lease. Even before it notices, a plugin
//! can make no cluster call once the lease is not surely alive ([`crate::runtime::RunFence`]). On shutdown it
//! stops accepting, cancels the plugins, waits for their cleanup (bounded by `stop_grace`),
//! and revokes the lease, which removes the registration and the assignments at once.
//!
//! Modules: [`registration`] (record, lease, usage), [`assignments`] (cache and the pure
//! decision table), [`supervisor`] (one task per run, the sink), [`builtins`] and [`pushed`]
//! (where plugins come from), [`status`] (status writer),
//! [`journal`] (event journal), [`metrics`] (counters, `/healthz`, `/readyz`, `/metrics`).

pub mod assignments;
pub mod builtins;
pub mod journal;
pub mod metrics;
pub mod pushed;
pub mod registration;
pub mod status;
pub mod supervisor;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chaos_def::keys::Keys;
use chaos_def::records::{Assignment, Cordon, InstancePhase, TaskInstance};
use chaos_def::retry::{Backoff, retry};
use chaos_def::store::{Lease, Store, Versioned, WatchEvent};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::assignments::{Cache, DRAINED, Decision, RunState, WorkerState, decide, instance_id_of};
use self::builtins::BuiltinPlugins;
use self::journal::{Journal, JournalConfig};
use self::metrics::Metrics;
use self::pushed::PushedPlugins;
use self::status::{Fence, StatusWriter};
use self::supervisor::{Context, Run, supervise};
use crate::error::Result;
use crate::runtime::{KubeGateway, Runtime};

/// The daemon's settings.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub name: String,
    pub slots: u32,
    pub labels: BTreeMap<String, String>,
    pub clusters: Vec<String>,
    /// The registration lease's TTL (etcd rounds it up to its minimum).
    pub lease_ttl: Duration,
    /// How often the usage in the registration is refreshed.
    pub usage_interval: Duration,
    /// At most one status write per instance per this interval (finals go at once).
    pub status_interval: Duration,
    /// How long plugins may take to clean up at shutdown or after a lease loss.
    pub stop_grace: Duration,
    /// Plugins by name from local files (`--plugin-path NAME=PATH`), before the built-in ones.
    pub plugin_paths: BTreeMap<String, PathBuf>,
    pub journal: JournalConfig,
}

impl DaemonConfig {
    pub fn new(name: impl Into<String>) -> Self {
        DaemonConfig {
            name: name.into(),
            slots: 10,
            labels: BTreeMap::new(),
            clusters: vec!["default".into()],
            lease_ttl: Duration::from_secs(2),
            usage_interval: Duration::from_secs(3),
            status_interval: Duration::from_secs(1),
            stop_grace: Duration::from_secs(35),
            plugin_paths: BTreeMap::new(),
            journal: JournalConfig::default(),
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionEnd {
    Shutdown,
    LeaseLost,
}

/// The daemon: what lives across sessions.
#[derive(Debug)]
pub struct Daemon {
    store: Store,
    config: Arc<DaemonConfig>,
    ctx: Arc<Context>,
    metrics: Arc<Metrics>,
}

impl Daemon {
    pub fn new(store: Store, runtime: Runtime, kube: Option<KubeGateway>, config: DaemonConfig) -> Self {
        let metrics = Arc::new(Metrics::default());
        let writer = StatusWriter::new(store.clone(), config.status_interval, metrics.clone());
        let journal = Journal::new(store.clone(), &config.name, config.journal.clone(), metrics.clone());
        // Pushed plugins are kept on disk next to the compiled artifacts.
        let pushed = PushedPlugins::new(store.clone(), runtime.clone(), runtime.config().cache_dir.clone());
        let ctx = Arc::new(Context {
            worker: config.name.clone(),
            builtins: BuiltinPlugins::new(runtime.clone()),
            runtime,
            pushed,
            kube,
            plugin_paths: config.plugin_paths.clone(),
            writer,
            journal,
            metrics: metrics.clone(),
        });
        Daemon { store, config: Arc::new(config), ctx, metrics }
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Runs until `shutdown`, then stops gracefully.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let background = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(self.ctx.writer.clone().run(Duration::from_millis(100), background.clone()));
        tracker.spawn(self.ctx.journal.clone().run(Duration::from_millis(250), background.clone()));
        // In the background: the worker registers meanwhile, and is ready once they are done.
        let ctx = self.ctx.clone();
        tracker.spawn(async move {
            ctx.builtins.compile_all().await;
            ctx.metrics.plugins_compiled.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let started_at = jiff::Timestamp::now();
        let mut failures = 0;
        let mut sampler = registration::UsageSampler::default();
        while !shutdown.is_cancelled() {
            let record = registration::record(&self.config, started_at, sampler.sample(0));
            let lease = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = registration::register(&self.store, &self.config, &record) => r,
            };
            let lease = match lease {
                Ok(lease) => lease,
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, "cannot register; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(registration::retry_delay(failures)) => {}
                    }
                    continue;
                }
            };
            failures = 0;
            self.metrics.registrations.inc();
            self.metrics.set_registered(true);
            let end = self.session(&lease, started_at, &shutdown).await;
            self.metrics.set_registered(false);
            match end {
                SessionEnd::LeaseLost => {
                    self.metrics.leases_lost.inc();
                    tracing::warn!(lease = format!("{:x}", lease.id()), "lease lost: fenced; registering again");
                }
                SessionEnd::Shutdown => {
                    match tokio::time::timeout(self.store.call_timeout(), lease.revoke()).await {
                        Ok(Ok(())) => tracing::info!("lease revoked"),
                        Ok(Err(error)) => tracing::warn!(%error, "cannot revoke the lease; it runs out by itself"),
                        Err(_) => tracing::warn!("revoking the lease timed out; it runs out by itself"),
                    }
                    break;
                }
            }
        }
        background.cancel();
        tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
        tracing::info!("worker stopped");
        Ok(())
    }

    /// One lease's life: watch, decide, supervise; at its end stop every run and wait for them.
    async fn session(&self, lease: &Lease, started_at: jiff::Timestamp, shutdown: &CancellationToken) -> SessionEnd {
        let keys: &Keys = self.store.keys();
        let lost = lease.lost();
        let watch_cancel = CancellationToken::new();
        let session = CancellationToken::new();
        // Fired when the lease is lost: plugins are dropped at once, without their cleanup
        // (another worker may already run them and adopt what they made).
        let abort = CancellationToken::new();
        let authority = crate::runtime::RunFence { abort: abort.clone(), lease: Some(lease.clock()) };
        let tracker = TaskTracker::new();
        tracker.spawn(registration::refresh_usage(
            self.store.clone(),
            self.config.clone(),
            lease.id(),
            started_at,
            self.metrics.clone(),
            watch_cancel.clone(),
        ));
        let assignments_prefix = keys.worker_assignments_prefix(&self.config.name);
        let instances_prefix = keys.instances_prefix();
        let mut assignment_watch = self.store.watch::<Assignment>(&assignments_prefix);
        let mut instance_watch = self.store.watch::<TaskInstance>(&instances_prefix);
        // A prefix watch: `…/cordon/w-1` also sees `…/cordon/w-10`; only the exact key counts.
        let cordon_key = keys.cordon(&self.config.name);
        let mut cordon_watch = self.store.watch::<Cordon>(&cordon_key);
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
        let (fetched_tx, mut fetched_rx) = mpsc::unbounded_channel::<(String, Fetched)>();
        let mut st = SessionState {
            cache: Cache::default(),
            runs: BTreeMap::new(),
            cancel: session.clone(),
            done: done_tx,
            tracker: tracker.clone(),
            draining: false,
            authority,
            fetching: BTreeSet::new(),
            fetched: fetched_tx,
            absent: BTreeSet::new(),
        };

        let end = loop {
            let mut touched: BTreeSet<String> = BTreeSet::new();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break SessionEnd::Shutdown,
                _ = lost.cancelled() => break SessionEnd::LeaseLost,
                Some(id) = done_rx.recv() => {
                    // The final write deleted the assignment the run started from; forget it
                    // now rather than when the watch says so, or it would start again. A
                    // newer assignment of the same instance stays.
                    if let Some(run) = st.runs.remove(&id)
                        && st.cache.assignments.get(&id).is_some_and(|a| a.mod_revision == run.fence_revision)
                    {
                        st.cache.assignments.remove(&id);
                    }
                    self.metrics.running.set(st.runs.len() as u64);
                    // A slot is free: anything waiting may start.
                    touched.extend(st.cache.assignments.keys().cloned());
                }
                Some(event) = assignment_watch.next(&watch_cancel) => match event {
                    WatchEvent::Listed { items, .. } => {
                        touched.extend(st.cache.assignments.keys().cloned());
                        st.cache.assignments = items.into_iter()
                            .filter_map(|(k, v)| Keys::name_in(&assignments_prefix, &k).map(|id| (id.to_string(), v)))
                            .collect();
                        touched.extend(st.cache.assignments.keys().cloned());
                    }
                    WatchEvent::Put { key, item } => {
                        if let Some(id) = Keys::name_in(&assignments_prefix, &key) {
                            st.cache.assignments.insert(id.to_string(), item);
                            touched.insert(id.to_string());
                        }
                    }
                    WatchEvent::Deleted { key, .. } => {
                        if let Some(id) = Keys::name_in(&assignments_prefix, &key) {
                            st.cache.assignments.remove(id);
                            touched.insert(id.to_string());
                        }
                    }
                },
                Some((id, item)) = fetched_rx.recv() => {
                    st.fetching.remove(&id);
                    match item {
                        Some(item) => st.cache.put_instance(&id, item),
                        // Decided on as missing (finished at once), not read again.
                        None => {
                            st.absent.insert(id.clone());
                        }
                    }
                    touched.insert(id);
                }
                Some(event) = cordon_watch.next(&watch_cancel) => {
                    let draining = match event {
                        WatchEvent::Listed { items, .. } => {
                            items.iter().any(|(key, c)| *key == cordon_key && c.value.drain)
                        }
                        WatchEvent::Put { key, item } if key == cordon_key => item.value.drain,
                        WatchEvent::Deleted { key, .. } if key == cordon_key => false,
                        _ => st.draining,
                    };
                    if draining != st.draining {
                        tracing::info!(draining, "drain {}", if draining { "asked for" } else { "lifted" });
                        st.draining = draining;
                        touched.extend(st.cache.assignments.keys().cloned());
                        touched.extend(st.runs.keys().cloned());
                    }
                }
                Some(event) = instance_watch.next(&watch_cancel) => match event {
                    WatchEvent::Listed { items, .. } => {
                        // A relist (after a compaction) replaces the picture: what is missing
                        // from it was deleted meanwhile.
                        let listed: BTreeSet<String> =
                            items.iter().filter_map(|(key, _)| instance_id_of(&instances_prefix, key)).collect();
                        let gone: Vec<String> =
                            st.cache.instances.keys().filter(|id| !listed.contains(*id)).cloned().collect();
                        for id in gone {
                            st.cache.instances.remove(&id);
                            touched.insert(id);
                        }
                        for (key, item) in items {
                            st.note_instance(&instances_prefix, &key, item, &mut touched);
                        }
                    }
                    WatchEvent::Put { key, item } => st.note_instance(&instances_prefix, &key, item, &mut touched),
                    WatchEvent::Deleted { key, .. } => {
                        if let Some(id) = instance_id_of(&instances_prefix, &key)
                            && st.cache.instances.remove(&id).is_some()
                            && st.concerns(&id)
                        {
                            touched.insert(id);
                        }
                    }
                },
            }
            // The lease clock is the authority. Past it, an event may be the lease's own expiry
            // (its assignments deleted): taken as a withdrawal, its stop would run a cleanup
            // that the instance's next run, elsewhere, must not see. The keep-alive task
            // reports the loss too, but not necessarily before the watches wake.
            if st.authority.lease.as_ref().is_some_and(|clock| !clock.is_alive()) {
                break SessionEnd::LeaseLost;
            }
            for id in touched {
                self.reconcile(&id, &mut st).await;
            }
            self.metrics.running.set(st.runs.len() as u64);
        };

        // Fence or shut down: stop every run and let the plugins clean up.
        watch_cancel.cancel();
        let SessionState { mut runs, done, .. } = st;
        if end == SessionEnd::LeaseLost {
            // Abort first: dropping the pending writes cancels their runs, and a cancelled run
            // would start its cleanup.
            abort.cancel();
            self.metrics.self_fenced.add(runs.len() as u64);
            self.ctx.writer.fence_all();
        }
        tracing::info!(runs = runs.len(), ?end, "stopping every run");
        session.cancel();
        tracker.close();
        drop(done);
        let waited = async {
            while runs.values().next().is_some() {
                match done_rx.recv().await {
                    Some(id) => {
                        runs.remove(&id);
                        self.metrics.running.set(runs.len() as u64);
                    }
                    None => break,
                }
            }
            tracker.wait().await;
        };
        if tokio::time::timeout(self.config.stop_grace, waited).await.is_err() {
            tracing::warn!(grace = ?self.config.stop_grace, "plugins did not finish cleaning up in time");
        }
        end
    }

    /// Applies [`decide`] to one instance.
    async fn reconcile(&self, id: &str, st: &mut SessionState) {
        let SessionState { cache, runs, draining, fetching, fetched, absent, tracker, cancel, .. } = st;
        let draining = *draining;
        // An assignment whose instance record the instance watch has not brought yet (the two
        // watches deliver in their own time): read it, off the loop (a burst of assignments is
        // read concurrently), until an answer comes; the answer comes back as an event.
        if let Some(a) = cache.assignments.get(id)
            && !cache.instances.contains_key(id)
            && !runs.contains_key(id)
            && !absent.contains(id)
        {
            if fetching.insert(id.to_string()) {
                let (store, tx, id) = (self.store.clone(), fetched.clone(), id.to_string());
                let key = store.keys().instance(&a.value.scenario, &id);
                let session = cancel.clone();
                tracker.spawn(async move {
                    // Each try bounded well below a lease TTL; an overloaded etcd is tried again
                    // (nothing else would bring this instance back to the loop's attention).
                    let backoff = Backoff { attempts: u32::MAX, max: Duration::from_secs(2), ..Backoff::default() };
                    let read = retry(
                        backoff,
                        &session,
                        |_| true,
                        || async {
                            match tokio::time::timeout(Duration::from_secs(1), store.get::<TaskInstance>(&key)).await {
                                Ok(read) => read.map_err(|e| e.to_string()),
                                Err(_) => Err("timed out".to_string()),
                            }
                        },
                    );
                    match read.await {
                        Ok(item) => {
                            let _ = tx.send((id, item));
                        }
                        Err(error) => tracing::debug!(instance = %id, %error, "the instance was not read"),
                    }
                });
            }
            return;
        }
        let assignment = cache.assignments.get(id);
        let instance = cache.instances.get(id);
        let running = runs.get(id).map(|run| run.state);
        let worker = WorkerState { slot_free: runs.len() < self.config.slots as usize, draining };
        match decide(assignment.map(|a| &a.value), instance.map(|i| &i.value), running, worker) {
            Decision::Ignore => {}
            Decision::Drain => {
                tracing::info!(instance = id, "draining: stopping to hand it back");
                if let Some(run) = runs.get_mut(id) {
                    run.state = RunState::Stopping;
                    run.handover.cancel();
                    run.cancel.cancel();
                }
                self.ctx.writer.update(id, |s| {
                    s.phase = InstancePhase::Stopping;
                    s.reason = Some(DRAINED.into());
                });
            }
            Decision::Stop(reason) => {
                tracing::info!(instance = id, %reason, "stopping");
                if let Some(run) = runs.get_mut(id) {
                    run.state = RunState::Stopping;
                    run.cancel.cancel();
                }
                self.ctx.writer.update(id, |s| {
                    s.phase = InstancePhase::Stopping;
                    s.reason = Some(reason);
                });
            }
            decision @ (Decision::Start | Decision::Finish(..)) => {
                let (Some(a), Some(i)) = (assignment, instance) else {
                    // Finish without an instance record.
                    if let (Decision::Finish(phase, reason), Some(a)) = (&decision, assignment) {
                        let instance = placeholder_instance(&a.value);
                        let run = (id, a.clone(), instance, Some((*phase, reason.clone())));
                        self.spawn_run(run, st);
                    }
                    return;
                };
                let finish = match decision {
                    Decision::Finish(phase, reason) => Some((phase, reason)),
                    _ => None,
                };
                let run = (id, a.clone(), i.value.clone(), finish);
                self.spawn_run(run, st);
            }
        }
        if !st.concerns(id) {
            st.absent.remove(id);
        }
    }

    fn spawn_run(&self, run: NewRun<'_>, st: &mut SessionState) {
        let (id, assignment, instance, finish_now) = run;
        let cancel = st.cancel.child_token();
        let handover = CancellationToken::new();
        let state = if finish_now.is_some() { RunState::Stopping } else { RunState::Running };
        let fence_revision = assignment.mod_revision;
        let entry = RunEntry { state, cancel: cancel.clone(), handover: handover.clone(), fence_revision };
        st.runs.insert(id.to_string(), entry);
        let run = Run {
            instance,
            attempt: assignment.value.attempt,
            placement: assignment.value.placement,
            fence: Fence {
                key: self.store.keys().assignment(&self.config.name, id),
                mod_revision: assignment.mod_revision,
            },
            finish_now,
            cancel,
            handover,
            session: st.cancel.clone(),
            authority: st.authority.clone(),
        };
        st.tracker.spawn(supervise(self.ctx.clone(), run, st.done.clone()));
    }
}

/// The answer to reading an instance record an assignment names (`None`: there is none).
type Fetched = Option<Versioned<TaskInstance>>;

/// One run of this session.
struct RunEntry {
    state: RunState,
    /// The run's own token (a child of the session's).
    cancel: CancellationToken,
    /// Fired (before `cancel`) when the run is stopped to hand the instance back.
    handover: CancellationToken,
    /// The `mod_revision` of the assignment it started from.
    fence_revision: i64,
}

/// What a session holds while it runs.
struct SessionState {
    cache: Cache,
    /// The runs of this session, by instance id.
    runs: BTreeMap<String, RunEntry>,
    /// The session's token: every run's token is a child of it.
    cancel: CancellationToken,
    done: mpsc::UnboundedSender<String>,
    tracker: TaskTracker,
    /// An operator drains this worker (its cordon says `drain`).
    draining: bool,
    /// Every run's right to act: the session's abort and lease clock.
    authority: crate::runtime::RunFence,
    /// Instances being read (an assignment came before its instance record).
    fetching: BTreeSet<String>,
    fetched: mpsc::UnboundedSender<(String, Fetched)>,
    /// Instances read and found missing (their assignments are finished at once).
    absent: BTreeSet<String>,
}

impl SessionState {
    /// Whether this worker has anything to do with instance `id`: an assignment or a run.
    fn concerns(&self, id: &str) -> bool {
        self.cache.assignments.contains_key(id) || self.runs.contains_key(id)
    }

    /// Keeps an instance record the watch brought (every one: its assignment may come later);
    /// an instance this worker has to do with is to be reconsidered.
    fn note_instance(
        &mut self,
        prefix: &str,
        key: &str,
        item: Versioned<TaskInstance>,
        touched: &mut BTreeSet<String>,
    ) {
        if let Some(id) = instance_id_of(prefix, key) {
            self.cache.put_instance(&id, item);
            if self.concerns(&id) {
                touched.insert(id);
            }
        }
    }
}

/// A run to start: instance id, its assignment, its record, and a final status to write at
/// once instead of running it.
type NewRun<'a> = (&'a str, Versioned<Assignment>, TaskInstance, Option<(InstancePhase, String)>);

/// An instance record for an assignment whose instance is gone (only its id and scenario
/// matter: it is finished at once).
fn placeholder_instance(a: &Assignment) -> TaskInstance {
    TaskInstance {
        id: a.instance.clone(),
        scenario: a.scenario.clone(),
        cluster: String::new(),
        worker_selector: BTreeMap::new(),
        plugin: chaos_def::PluginRef::Name(String::new()),
        params: serde_json::Map::new(),
        seed: 0,
        volume: None,
        desired: chaos_def::records::DesiredState::Stop,
        attempt: a.attempt,
        created_at: a.assigned_at,
        role: Default::default(),
        stop_reason: None,
        failure: None,
    }
}
