//! kubesim: a simulated Kubernetes cluster with the replicated-volume storage system.
//!
//! A real HTTP server that speaks enough of the Kubernetes REST API for `kubectl` and kube-rs to
//! work against it unchanged, backed by an in-memory store and a simulator of the Deckhouse
//! sds-replicated-volume storage system (see `README.md` for what is and is not supported).
//!
//! Embedding it in a test:
//!
//! ```no_run
//! # async fn demo() -> Result<(), kubesim::Error> {
//! let sim = kubesim::KubeSim::start(kubesim::Config::for_tests()).await?;
//! let url = sim.url(); // e.g. http://127.0.0.1:41234 — give it to kube::Config::new or kubectl --server
//! # let _ = url;
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Modules: [`apps`] (what runs in containers), [`store`] (objects, versions, history, fan-out), [`api`] (HTTP), [`resources`] (the
//! kinds served), [`schema`] (their OpenAPI schemas and field validation), [`selectors`], [`validation`], [`quantity`], [`sim`] (the simulated cluster),
//! [`error`] (the one error type).

pub mod api;
pub mod apps;
pub mod error;
pub mod quantity;
pub mod resources;
pub mod schema;
pub mod selectors;
pub mod sim;
pub mod store;
pub mod validation;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::{Error, Result};
pub use resources::{Registry, ResourceInfo};
pub use sim::StorageClassSpec;
pub use sim::plan::{Faults, Timings};
pub use sim::workloads::layout::Layout;
pub use store::{Store, StoreLimits};

/// Everything a kubesim instance is started with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen (plain HTTP). Port 0 picks a free port; see [`KubeSim::url`].
    pub listen: SocketAddr,
    /// Storage nodes (`node-1` .. `node-N`).
    pub nodes: usize,
    pub storage_classes: Vec<StorageClassSpec>,
    /// Every simulated delay is divided by this.
    pub speed: f64,
    /// Seeds every random choice (names, placement, delays, faults).
    pub seed: u64,
    pub faults: Faults,
    pub timings: Timings,
    /// Kinds to serve beyond the built-in ones.
    pub resources: Vec<ResourceInfo>,
    pub limits: StoreLimits,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// Run the simulated cluster (nodes, pods, storage system). Off: a bare API server.
    pub simulate: bool,
    /// Applications to deploy at start (`--apps smoke-mini`).
    pub apps: Vec<Layout>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 6443)),
            nodes: 5,
            storage_classes: StorageClassSpec::defaults(),
            speed: 1.0,
            seed: 0,
            faults: Faults::default(),
            timings: Timings::default(),
            resources: Vec::new(),
            limits: StoreLimits::default(),
            bookmark_interval: Duration::from_secs(10),
            simulate: true,
            apps: Vec::new(),
        }
    }
}

impl Config {
    /// A free port on 127.0.0.1 and a fast clock (speed 100: a 10 s story delay takes 100 ms).
    pub fn for_tests() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 0)), speed: 100.0, ..Self::default() }
    }
}

/// Creates the `kubernetes` service and the applications asked for, on the first replicated
/// storage class (one with replication other than None, else the first).
fn deploy_apps(store: &Store, config: &Config) -> Result<()> {
    let reg = store.registry();
    let find = |plural: &str| {
        reg.all()
            .into_iter()
            .find(|r| r.plural == plural && (r.group.is_empty() || r.group == "apps"))
            .ok_or_else(|| Error::Internal(format!("{plural} is not registered")))
    };
    store.create(
        &*find("services")?,
        Some("default"),
        sim::workloads::layout::kubernetes_service(),
        Default::default(),
    )?;
    let classes = &config.storage_classes;
    let class = classes.iter().find(|c| c.replication != "None").or(classes.first()).map(|c| c.name.as_str());
    for layout in &config.apps {
        let class = class.ok_or_else(|| Error::Internal(format!("{} needs a storage class", layout.name())))?;
        for (plural, namespace, object) in layout.objects(class) {
            store.create(&*find(plural)?, namespace, object, Default::default())?;
        }
    }
    Ok(())
}

/// A running kubesim: the API server and the simulation. Dropping it stops both.
#[derive(Debug)]
pub struct KubeSim {
    addr: SocketAddr,
    store: Arc<Store>,
    runtime: Arc<apps::Runtime>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl KubeSim {
    /// Builds the cluster, binds the listener and starts serving on the current Tokio runtime.
    pub async fn start(config: Config) -> Result<Self> {
        let registry = Arc::new(Registry::with_builtins());
        for info in &config.resources {
            registry.register(info.clone());
        }
        let store = Arc::new(Store::new(registry, config.seed, config.limits));
        let (runtime, kubelet_rx) = apps::Runtime::new(config.speed);
        let runtime = Arc::new(runtime);
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let simulation = if config.simulate {
            // The workloads subscribe before the storage simulation creates the nodes, so that
            // their cache misses nothing.
            let workloads =
                sim::workloads::Workloads::new(store.clone(), runtime.clone(), kubelet_rx, config.seed, config.speed)?;
            let cfg = sim::SimConfig {
                nodes: config.nodes,
                storage_classes: config.storage_classes.clone(),
                plan: sim::plan::PlanConfig {
                    seed: config.seed,
                    speed: config.speed,
                    timings: config.timings,
                    faults: config.faults,
                },
            };
            let storage = sim::Simulation::new(store.clone(), cfg)?;
            deploy_apps(&store, &config)?;
            Some((storage, workloads))
        } else {
            None
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind { addr: config.listen.to_string(), source })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind { addr: config.listen.to_string(), source })?;
        let state = Arc::new(api::AppState {
            store: store.clone(),
            cancel: cancel.clone(),
            bookmark_interval: config.bookmark_interval,
            server_address: addr.to_string(),
            runtime: runtime.clone(),
            proxy_waiting: tokio::sync::Semaphore::new(api::proxy::MAX_WAITING),
            catalog: schema::CatalogCache::default(),
        });
        let app = api::router(state);
        // Small responses and watch events must not wait for Nagle's algorithm.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let shutdown = cancel.clone();
        tracker.spawn(async move {
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await {
                tracing::error!(error = %e, "the API server stopped");
            }
        });
        if let Some((storage, workloads)) = simulation {
            tracker.spawn(storage.run(cancel.clone()));
            tracker.spawn(workloads.run(cancel.clone()));
        }
        tracker.close();
        tracing::info!(%addr, nodes = config.nodes, speed = config.speed, seed = config.seed, "kubesim is serving");
        Ok(Self { addr, store, runtime, cancel, tracker })
    }

    /// `http://ADDR` — the server URL for kubectl `--server` or `kube::Config::new`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The object store, for in-process inspection and writes.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The containers of the simulated pods, for in-process inspection and signals.
    pub fn runtime(&self) -> &Arc<apps::Runtime> {
        &self.runtime
    }

    /// Serves another kind from now on.
    pub fn register(&self, info: ResourceInfo) {
        self.store.registry().register(info);
    }

    /// Cancelling this token stops the server and the simulation.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Resolves once the instance has stopped (after cancellation).
    pub async fn stopped(&self) {
        self.tracker.wait().await;
    }

    /// Stops accepting, ends open watches, stops the simulation and waits for all of it.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.wait().await;
    }
}

impl Drop for KubeSim {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
