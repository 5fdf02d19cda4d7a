//! `chaos-worker run`: the worker daemon (see docs/architecture.md).
//!
//! ```text
//! loop {                                   ┌ registration: workers/<name> on a lease (+ usage)
//!   register under a new lease ───────────▶┤ assignments/<name>/, instances/, cordon watched
//!   session until shutdown or lease lost   ├ Session::apply(change) → actions → supervisor tasks
//!   stop every plugin, wait for cleanup    └ status writer (batched, buffered, fenced) + journal
//! }
//! ```
//!
//! A session lasts as long as its lease. When the lease is lost (etcd away or this process
//! paused past the TTL) every assignment bound to it is gone and other workers may already run
//! its instances, so the worker fences itself: it drops every plugin at once, without their
//! cleanup (the next run adopts what they made), drops their pending status writes (they would
//! be refused anyway), revokes the lost lease (etcd may still hold it: a new etcd leader extends
//! every lease) so that its assignments go at once rather than outlive the fencing, and
//! registers again under a new lease. Even before it notices, a plugin
//! can make no cluster call once the lease is not surely alive ([`crate::runtime::RunFence`]).
//! On shutdown it stops accepting, cancels the plugins, waits for their cleanup (bounded by
//! `stop_grace`), and revokes the lease, which removes the registration and the assignments at
//! once.
//!
//! Modules: [`config`] (settings), [`registration`] (record, lease, usage), [`session`] (what a
//! session knows and decides, purely), [`lean`] (what it keeps of each instance record),
//! [`assignments`] (the decision table), [`observer`] (the clusters' conditions), [`dryrun`]
//! (answers to `--dry-run`), [`supervisor`] (one
//! task per run, the sink), [`builtins`] and [`pushed`] (where plugins come from), [`status`]
//! (status writer), [`journal`] (event journal), [`metrics`] (counters, `/healthz`, `/readyz`,
//! `/metrics`).

pub mod assignments;
pub mod builtins;
pub mod config;
pub mod dryrun;
pub mod journal;
pub mod lean;
pub mod metrics;
pub mod observer;
pub mod pushed;
pub mod registration;
pub mod session;
pub mod status;
pub mod supervisor;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chaos_daemon::{Feed, Watches};
use chaos_def::records::InstancePhase;
use chaos_def::retry::{Backoff, retry};
use chaos_def::store::{Lease, Store};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::assignments::DRAINED;
use self::builtins::BuiltinPlugins;
pub use self::config::DaemonConfig;
use self::journal::Journal;
use self::lean::LeanInstance;
use self::metrics::Metrics;
use self::pushed::PushedPlugins;
use self::session::{Action, Change, NewRun, Session};
use self::status::{Fence, StatusWriter};
use self::supervisor::{Context, Run, supervise};
use crate::availability::Accountant;
use crate::error::Result;
use crate::runtime::{HttpGateway, KubeGateway, ProbeSink, RunFence, Runtime};

/// The most changes one turn of a session takes before it acts.
const TURN: usize = 1024;

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
    accountant: Arc<Accountant>,
}

impl Daemon {
    /// Fails when the state directory cannot be opened.
    pub fn new(store: Store, runtime: Runtime, kube: Option<KubeGateway>, config: DaemonConfig) -> Result<Self> {
        let accountant = Accountant::new(&config.name, config.state_dir.as_deref())
            .map_err(|e| crate::Error::io(config.state_dir.as_deref().unwrap_or(std::path::Path::new(".")), e))?;
        let metrics = Arc::new(Metrics::default());
        let _ = metrics.availability.set(accountant.clone());
        let _ = metrics.etcd.set(store.clone());
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
            http: Some(HttpGateway::new(config.probe_allow_hosts.clone())),
            probes: Some(accountant.clone() as Arc<dyn ProbeSink>),
        });
        Ok(Daemon { store, config: Arc::new(config), ctx, metrics, accountant })
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
        tracker.spawn(self.accountant.clone().run(self.store.clone(), background.clone()));
        if let (Some(kube), Some(cluster)) = (self.ctx.kube.clone(), self.config.clusters.first().cloned()) {
            let mirror = crate::availability::downtimes::mirror(self.store.clone(), kube, cluster, background.clone());
            tracker.spawn(mirror);
        }
        if let Some(kube) = self.ctx.kube.clone() {
            let (name, clusters) = (self.config.name.clone(), self.config.clusters.clone());
            tracker.spawn(dryrun::answer_requests(self.store.clone(), kube, name, clusters, background.clone()));
        }
        // In the background: the worker registers meanwhile, and is ready once they are done.
        let ctx = self.ctx.clone();
        tracker.spawn(async move {
            ctx.builtins.compile_all().await;
            ctx.metrics.plugins_compiled.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let started_at = jiff::Timestamp::now();
        while let Some(lease) = registration::register_until(&self.store, &self.config, started_at, &shutdown).await {
            self.metrics.registrations.inc();
            self.metrics.set_registered(true);
            self.accountant.set_lease(Some(lease.id()));
            let end = self.session(&lease, started_at, &shutdown).await;
            self.accountant.set_lease(None);
            self.metrics.set_registered(false);
            if end == SessionEnd::Shutdown {
                registration::revoke(&self.store, lease).await;
                break;
            }
            self.metrics.leases_lost.inc();
            tracing::warn!(lease = format!("{:x}", lease.id()), "lease lost: fenced; registering again");
            registration::revoke_lost(&self.store, lease, &shutdown).await;
        }
        background.cancel();
        tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
        tracing::info!("worker stopped");
        Ok(())
    }

    /// One lease's life: watch, decide, act; at its end stop every run and wait for them.
    async fn session(&self, lease: &Lease, started_at: jiff::Timestamp, shutdown: &CancellationToken) -> SessionEnd {
        let mut tasks = SessionTasks::start(self, lease, started_at);
        let mut session = Session::new(self.store.keys(), &self.config.name, self.config.slots as usize);
        let lost = lease.lost();
        let end = loop {
            let change = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break SessionEnd::Shutdown,
                _ = lost.cancelled() => break SessionEnd::LeaseLost,
                Some(change) = tasks.watches.next() => change,
            };
            // What is queued is taken in one turn (a burst is decided at once), up to a bound, so
            // that the shutdown, the lease and the actions come round often.
            let mut actions = tasks.take(change, &mut session);
            for _ in 1..TURN {
                let Some(change) = tasks.watches.try_next() else { break };
                actions.extend(tasks.take(change, &mut session));
            }
            // The lease clock is the authority. Past it, an event may be the lease's own expiry
            // (its assignments deleted): taken as a withdrawal, its stop would run a cleanup
            // that the instance's next run, elsewhere, must not see. The keep-alive task
            // reports the loss too, but not necessarily before the watches wake.
            if tasks.authority.revoked() {
                break SessionEnd::LeaseLost;
            }
            for action in actions {
                self.act(action, &mut tasks);
            }
            self.metrics.running.set(session.running() as u64);
        };
        self.wind_down(end, tasks).await;
        end
    }

    /// Carries out one action of the session.
    fn act(&self, action: Action, tasks: &mut SessionTasks) {
        match action {
            Action::Fetch { id, scenario } => tasks.fetch(&self.store, id, &scenario),
            Action::Start(run) => self.spawn_run(run, tasks),
            Action::Stop { id, reason } => {
                if let Some(run) = tasks.runs.get(&id) {
                    run.cancel.cancel();
                }
                self.ctx.writer.update(&id, |s| {
                    s.phase = InstancePhase::Stopping;
                    s.reason = Some(reason);
                });
            }
            Action::Drain { id } => {
                if let Some(run) = tasks.runs.get(&id) {
                    run.handover.cancel();
                    run.cancel.cancel();
                }
                self.ctx.writer.update(&id, |s| {
                    s.phase = InstancePhase::Stopping;
                    s.reason = Some(DRAINED.into());
                });
            }
        }
    }

    fn spawn_run(&self, new: NewRun, tasks: &mut SessionTasks) {
        let NewRun { id, assignment, instance, finish_now } = new;
        let tokens = RunTokens { cancel: tasks.session.child_token(), handover: CancellationToken::new() };
        let run = Run {
            instance,
            attempt: assignment.value.attempt,
            placement: assignment.value.placement,
            fence: Fence {
                key: self.store.keys().assignment(&self.config.name, &id),
                mod_revision: assignment.mod_revision,
            },
            finish_now,
            cancel: tokens.cancel.clone(),
            handover: tokens.handover.clone(),
            session: tasks.session.clone(),
            authority: tasks.authority.clone(),
        };
        tasks.runs.insert(id.clone(), tokens);
        let (ctx, feed) = (self.ctx.clone(), tasks.feed.clone());
        tasks.tracker.spawn(async move {
            supervise(ctx, run).await;
            feed.send(Change::RunEnded(id)).await;
        });
    }

    /// Fence or shut down: stop every run and let the plugins clean up (bounded by the grace).
    async fn wind_down(&self, end: SessionEnd, tasks: SessionTasks) {
        let SessionTasks { tracker, session, authority, mut watches, feed, runs } = tasks;
        // The runs spawned and not ended (a run decided in the turn the lease was found lost
        // was never spawned).
        let mut left: BTreeSet<String> = runs.into_keys().collect();
        watches.stop_watching();
        if end == SessionEnd::LeaseLost {
            // Abort first: dropping the pending writes cancels their runs, and a cancelled run
            // would start its cleanup.
            authority.abort.cancel();
            self.metrics.self_fenced.add(left.len() as u64);
            self.ctx.writer.fence_all();
        }
        tracing::info!(runs = left.len(), ?end, "stopping every run");
        session.cancel();
        tracker.close();
        drop(feed);
        // Everything still sent is taken until every sender is gone (the watches stop, runs
        // and reads end), so that nothing waits on a full channel.
        let waited = async {
            while let Some(change) = watches.next().await {
                if let Change::RunEnded(id) = change {
                    left.remove(&id);
                    self.metrics.running.set(left.len() as u64);
                }
            }
            tracker.wait().await;
            watches.close().await;
        };
        if tokio::time::timeout(self.config.stop_grace, waited).await.is_err() {
            tracing::warn!(grace = ?self.config.stop_grace, "plugins did not finish cleaning up in time");
        }
    }
}

/// The tokens of one run.
struct RunTokens {
    /// The run's own token (a child of the session's).
    cancel: CancellationToken,
    /// Fired (before `cancel`) when the run is stopped to hand the instance back.
    handover: CancellationToken,
}

/// What carries a session's actions out: its tasks, tokens and changes.
struct SessionTasks {
    tracker: TaskTracker,
    /// The session's token: every run's token is a child of it, and it ends the usage refresh.
    session: CancellationToken,
    /// Every run's right to act: the session's abort and lease clock.
    authority: RunFence,
    /// Watch events, run ends and reads, in the order they came.
    watches: Watches<Change>,
    /// How runs and reads report back.
    feed: Feed<Change>,
    runs: BTreeMap<String, RunTokens>,
}

impl SessionTasks {
    /// Starts the session's watches and its usage refresh.
    fn start(daemon: &Daemon, lease: &Lease, started_at: jiff::Timestamp) -> Self {
        let (store, name) = (&daemon.store, &daemon.config.name);
        let keys = store.keys();
        let mut watches = Watches::new();
        watches.follow(store.watch(&keys.worker_assignments_prefix(name)), Change::Assignment);
        watches.follow(store.watch(&keys.instances_prefix()), Change::Instance);
        watches.follow(store.watch(&keys.cordon(name)), Change::Cordon);
        let tasks = SessionTasks {
            tracker: TaskTracker::new(),
            session: CancellationToken::new(),
            authority: RunFence { abort: CancellationToken::new(), lease: Some(lease.clock()) },
            feed: watches.feed(),
            watches,
            runs: BTreeMap::new(),
        };
        tasks.tracker.spawn(registration::refresh_usage(
            store.clone(),
            daemon.ctx.kube.clone(),
            daemon.config.clone(),
            lease.id(),
            started_at,
            daemon.metrics.clone(),
            tasks.session.clone(),
        ));
        tasks
    }

    /// Hands a change to the session; a run's end also drops its tokens.
    fn take(&mut self, change: Change, session: &mut Session) -> Vec<Action> {
        if let Change::RunEnded(id) = &change {
            self.runs.remove(id);
        }
        session.apply(change)
    }

    /// Reads an instance record, off the loop (a burst of assignments is read concurrently),
    /// until an answer comes: nothing else would bring the instance back to the loop's
    /// attention. Each try is bounded well below a lease TTL.
    fn fetch(&self, store: &Store, id: String, scenario: &str) {
        let (store, feed, session) = (store.clone(), self.feed.clone(), self.session.clone());
        let key = store.keys().instance(scenario, &id);
        let scenario = scenario.to_string();
        self.tracker.spawn(async move {
            let backoff = Backoff { attempts: u32::MAX, max: Duration::from_secs(2), ..Backoff::default() };
            let read = retry(
                backoff,
                &session,
                |_| true,
                || async {
                    match tokio::time::timeout(Duration::from_secs(1), store.get::<LeanInstance>(&key)).await {
                        Ok(read) => read.map_err(|e| e.to_string()),
                        Err(_) => Err("timed out".to_string()),
                    }
                },
            );
            match read.await {
                Ok(record) => {
                    let record = record.map(|record| (scenario, record));
                    feed.send(Change::Fetched { id, record }).await;
                }
                Err(error) => tracing::debug!(instance = %id, %error, "the instance was not read"),
            }
        });
    }
}
