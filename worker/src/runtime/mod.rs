//! The WASM plugin runtime (docs/architecture.md): one wasmtime engine per process, plugins compiled once
//! per digest and cached, and instances — each a fresh `Store` with a memory limit, a CPU
//! budget between host calls, WASI without filesystem or sockets, and the chaos imports —
//! started from a reused `InstancePre`, cancelled cooperatively and dropped after a grace period.
//!
//! ```text
//! Runtime::new(config) ─ load(bytes) ─▶ Plugin (cached by sha256) ─ start(spec, services, cancel) ─▶ InstanceHandle ─ wait() ─▶ Outcome
//! ```
//!
//! Modules: [`engine`] (engine, pooling, epoch ticker), [`cache`] (compiled artifacts),
//! [`capabilities`] (what a plugin may do in the cluster), [`bindings`] (the WIT types), [`host`] (the imports), [`gate`]
//! (what an instance may send through them), [`kube`] (the cluster gateway), [`sink`] (where instance output goes),
//! [`stdio`] (stdout/stderr capture).

pub mod bindings;
pub mod cache;
mod config;
pub mod engine;
pub mod exec;
mod fence;
pub mod gate;
pub mod host;
pub mod http;
pub mod kube;
pub mod probe;
pub mod sink;
pub mod stdio;

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, UpdateDeadline};

use self::bindings::chaos::plugin::types::{Error as WitError, InstanceInfo};
use self::bindings::{Plugin as PluginWorld, PluginPre};
pub use self::config::RuntimeConfig;
pub use self::fence::RunFence;
use self::gate::{Gate, WorkerKube};
use self::host::{CpuBudgetExceeded, CpuMeter, InstanceState, Limits, MemoryLimitExceeded, ReportBatch, Shared};
pub use self::http::HttpGateway;
pub use self::kube::KubeGateway;
pub use self::probe::{ProbeSink, ProbeTag};
pub use self::sink::{Level, MemorySink, NullSink, Record, Sink, Tags};
use self::stdio::{LogStream, StderrTail};
use crate::error::{Error, Result};
pub use chaos_def::limits::ChannelLimits;
pub use chaos_def::plugin::Capabilities;
pub use chaos_def::plugin::capabilities;
pub use chaos_def::plugin::sha256_hex;

/// The plugin runtime of one worker process. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    pooling: bool,
    linker: Linker<InstanceState>,
    config: RuntimeConfig,
    plugins: Mutex<HashMap<String, Arc<OnceCell<Plugin>>>>,
    tracker: TaskTracker,
    /// The worker's Kubernetes rate, shared by every instance.
    worker_kube: Arc<WorkerKube>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("pooling", &self.inner.pooling)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine and the linker (WASI p2 + the chaos imports) and starts the epoch
    /// ticker. Must be called inside a Tokio runtime.
    pub fn new(config: RuntimeConfig) -> Result<Self> {
        let (engine, pooling) = engine::build(&config)?;
        engine::start_ticker(&engine, config.epoch_tick);
        let mut linker: Linker<InstanceState> = Linker::new(&engine);
        let engine_err = |e: wasmtime::Error| Error::Engine(format!("{e:#}"));
        // All of WASI p2 is linked, but the context grants nothing: no preopened directory, no
        // network, no environment; stdio goes to the log.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_err)?;
        PluginWorld::add_to_linker::<InstanceState, HasSelf<InstanceState>>(&mut linker, |s| s).map_err(engine_err)?;
        tracing::debug!(pooling, "wasm runtime ready");
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                pooling,
                linker,
                plugins: Mutex::new(HashMap::new()),
                tracker: TaskTracker::new(),
                worker_kube: WorkerKube::new(config.kube_qps, config.kube_burst),
                config,
            }),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Whether instances come from the pooling allocator.
    pub fn pooling(&self) -> bool {
        self.inner.pooling
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Every instance task; wait on it (after cancelling) to shut down cleanly.
    pub fn tracker(&self) -> &TaskTracker {
        &self.inner.tracker
    }

    /// Loads a plugin from its component bytes: compiled once per sha256 digest (memory, then
    /// disk cache), its capabilities read, its imports and exports checked against the world.
    pub async fn load(&self, wasm: impl Into<Arc<[u8]>>) -> Result<Plugin> {
        let wasm: Arc<[u8]> = wasm.into();
        let digest = sha256_hex(&wasm);
        let cell = {
            let mut plugins = self.inner.plugins.lock().map_err(|_| Error::Engine("plugin cache poisoned".into()))?;
            plugins.entry(digest.clone()).or_default().clone()
        };
        cell.get_or_try_init(|| self.compile(digest, wasm)).await.cloned()
    }

    /// [`load`](Self::load) from a file.
    pub async fn load_file(&self, path: &Path) -> Result<Plugin> {
        let bytes = tokio::fs::read(path).await.map_err(|e| Error::io(path, e))?;
        self.load(bytes).await
    }

    async fn compile(&self, digest: String, wasm: Arc<[u8]>) -> Result<Plugin> {
        if Engine::detect_precompiled(&wasm).is_some() {
            // Precompiled artifacts are native code: only the worker's own are trusted.
            return Err(Error::Plugin {
                digest,
                message: "precompiled artifacts are not accepted; give the .wasm component".into(),
            });
        }
        let capabilities = Capabilities::read(&wasm)
            .map_err(|message| Error::Capabilities { digest: digest.clone(), message })?
            .map(Arc::new);
        let engine = self.inner.engine.clone();
        let cache = self.inner.config.cache_dir.clone();
        let d = digest.clone();
        // Compiling takes a while: keep it off the async threads.
        let component = tokio::task::spawn_blocking(move || cache::compile(&engine, &d, &wasm, cache.as_deref()))
            .await
            .map_err(|e| Error::Engine(format!("compile task: {e}")))??;
        let fail = |e: wasmtime::Error| Error::Plugin { digest: digest.clone(), message: format!("{e:#}") };
        // Memory images are made lazily on the first instantiation; make them now instead.
        component.initialize_copy_on_write_image().map_err(fail)?;
        let pre = self.inner.linker.instantiate_pre(&component).map_err(fail)?;
        let pre = PluginPre::new(pre).map_err(fail)?;
        tracing::debug!(%digest, "plugin compiled");
        Ok(Plugin { inner: Arc::new(PluginInner { digest, capabilities, pre, runtime: self.clone() }) })
    }
}

/// A compiled plugin, ready to start instances. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    digest: String,
    capabilities: Option<Arc<Capabilities>>,
    pre: PluginPre<InstanceState>,
    runtime: Runtime,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("digest", &self.inner.digest).finish_non_exhaustive()
    }
}

/// What one instance runs for.
#[derive(Debug, Clone, Default)]
pub struct InstanceSpec {
    pub instance_id: String,
    pub scenario: String,
    pub volume: Option<String>,
    /// The plugin's name as the scenario names it (for logs).
    pub plugin: String,
    /// The instance's config, JSON.
    pub config_json: String,
    pub seed: u64,
    pub attempt: u32,
    /// What the instance may send through the host.
    pub limits: ChannelLimits,
    /// The probe it samples, if any (`chaos:plugin/probe`).
    pub probe: Option<chaos_def::probe::ProbeBinding>,
    /// Replaces the component's declared capabilities: the worker narrows the built-in `probe`
    /// plugin to what its probe's kind needs.
    pub capabilities: Option<Arc<Capabilities>>,
}

/// What an instance talks to.
#[derive(Clone)]
pub struct Services {
    pub sink: Arc<dyn Sink>,
    /// The cluster; None: every kube call fails (after the capability check).
    pub kube: Option<KubeGateway>,
    /// What ends the run's right to act at all.
    pub fence: RunFence,
    /// HTTP outside the cluster, to the hosts the operator allows; None: none at all.
    pub http: Option<HttpGateway>,
    /// Where probe samples go; None: they are dropped.
    pub probes: Option<Arc<dyn ProbeSink>>,
}

impl Services {
    pub fn new(sink: Arc<dyn Sink>, kube: Option<KubeGateway>) -> Self {
        Services { sink, kube, fence: RunFence::default(), http: None, probes: None }
    }
}

/// How an instance ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `run` returned Ok: its summary (JSON; a non-JSON summary is kept as a string).
    Succeeded(serde_json::Value),
    /// `run` returned an error, trapped, ran out of a budget, or was dropped; the reason.
    Failed(String),
}

/// A running instance.
#[derive(Debug)]
pub struct InstanceHandle {
    id: String,
    cancel: CancellationToken,
    join: tokio::task::JoinHandle<Outcome>,
}

impl InstanceHandle {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Asks the instance to stop (it cleans up and returns, or is dropped after the grace).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Waits for the instance to end.
    pub async fn wait(self) -> Outcome {
        match self.join.await {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Failed(format!("the instance task failed: {e}")),
        }
    }
}

impl Plugin {
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.inner.capabilities.as_deref()
    }

    /// Starts an instance on the runtime's task tracker. `cancel` stops it (a child token is
    /// fine: the daemon cancels all of a worker's instances with one parent).
    pub fn start(&self, spec: InstanceSpec, services: Services, cancel: CancellationToken) -> InstanceHandle {
        let id = spec.instance_id.clone();
        let plugin = self.clone();
        let token = cancel.clone();
        let join = self.inner.runtime.inner.tracker.spawn(async move { plugin.run(spec, services, token).await });
        InstanceHandle { id, cancel, join }
    }

    /// A fresh store for one instance: its state, limits, CPU meter and WASI context.
    fn new_store(&self, spec: &InstanceSpec, services: Services, cancel: &CancellationToken) -> NewStore {
        let rt = &self.inner.runtime.inner;
        let config = &rt.config;
        let spec = spec.clone();
        let probe = match (spec.probe.clone(), services.probes.clone()) {
            (Some(binding), Some(sink)) => {
                let tag = ProbeTag { binding, scenario: spec.scenario.clone(), instance: spec.instance_id.clone() };
                Some((tag, sink))
            }
            _ => None,
        };
        let caps = spec.capabilities.clone().or_else(|| self.inner.capabilities.clone());
        let tags = Tags {
            scenario: spec.scenario.clone(),
            instance: spec.instance_id.clone(),
            volume: spec.volume.clone(),
            plugin: spec.plugin.clone(),
            attempt: spec.attempt,
        };
        let info = InstanceInfo {
            scenario: spec.scenario,
            instance: spec.instance_id,
            volume: spec.volume,
            plugin: spec.plugin,
            attempt: spec.attempt,
            seed: spec.seed,
        };
        let gate = Gate::new(spec.limits, rt.worker_kube.clone(), services.sink.clone(), tags.clone());
        let shared = Arc::new(Shared { tags, sink: services.sink, info, gate });
        let budget = LogStream::new_budget();
        let tail = StderrTail::default();
        let stdout = LogStream::stdout(shared.clone(), budget.clone());
        let stderr = LogStream::stderr(shared.clone(), budget, tail.clone());
        // WASI randomness comes from the seed as well: std's HashMap keys and anything else
        // the guest draws replay with the run.
        let wasi = wasmtime_wasi::WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .secure_random(SeededRng(host::rng_for(spec.seed ^ 0x5EC0_5EC0_5EC0_5EC0)))
            .insecure_random(SeededRng(host::rng_for(spec.seed ^ 0x1A5E_C0DE_1A5E_C0DE)))
            .insecure_random_seed(u128::from(spec.seed))
            .build();
        let tick = config.epoch_tick.as_nanos().max(1);
        let state = InstanceState {
            wasi,
            table: ResourceTable::new(),
            limits: Limits { memory: config.memory_limit, table_elements: engine::TABLE_ELEMENTS },
            cpu: CpuMeter {
                ticks: 0,
                budget_ticks: u64::try_from(config.cpu_budget.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX),
                budget: config.cpu_budget,
            },
            shared: shared.clone(),
            stop: cancel.clone(),
            rng: host::rng_for(spec.seed),
            caps,
            kube: services.kube,
            http: services.http,
            probe,
            fence: services.fence,
            actions: HashMap::new(),
            next_action: 0,
            reports: ReportBatch::new(config.report_interval),
            open_watches: 0,
        };
        let mut store = Store::new(&rt.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut cx| {
            let cpu = &mut cx.data_mut().cpu;
            cpu.ticks += 1;
            if cpu.ticks > cpu.budget_ticks {
                return Err(wasmtime::Error::new(CpuBudgetExceeded { budget: cpu.budget }));
            }
            // Let the other instances on this thread run: a spinning guest yields every tick.
            Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
        });

        NewStore { store, stdout, stderr, tail }
    }

    /// Instantiates the plugin in a fresh store and drops it without running it: what starting
    /// an instance costs before `run` is called (for benchmarks).
    pub async fn instantiate_only(&self) -> Result<Duration> {
        let services = Services::new(Arc::new(NullSink), None);
        let started = std::time::Instant::now();
        let mut new = self.new_store(&InstanceSpec::default(), services, &CancellationToken::new());
        self.inner.pre.instantiate_async(&mut new.store).await.map_err(|e| Error::Engine(format!("{e:#}")))?;
        Ok(started.elapsed())
    }

    async fn run(self, spec: InstanceSpec, services: Services, cancel: CancellationToken) -> Outcome {
        let fence = services.fence.clone();
        let abort = fence.abort.clone();
        // What the guest sees as its stop: passed on from `cancel` below only while the worker
        // still has the right to run the instance. Were the guest to see every stop, it could
        // wake on one, run its cleanup and finish before the check below is made.
        let guest_stop = CancellationToken::new();
        let NewStore { mut store, stdout, stderr, tail } = self.new_store(&spec, services, &guest_stop);
        let grace = self.inner.runtime.inner.config.cancel_grace;
        // Started already stopped (a cleanup run): the guest sees the stop from its first call,
        // not after its first wait, so that it undoes rather than sets up.
        if cancel.is_cancelled() && !fence.revoked() {
            guest_stop.cancel();
        }
        let result = {
            let pre = self.inner.pre.clone();
            let store = &mut store;
            let run = async move {
                let plugin = pre.instantiate_async(&mut *store).await?;
                plugin.call_run(&mut *store, &spec.config_json).await
            };
            tokio::pin!(run);
            // Biased: an abort wins over everything, even a run that could finish (its cleanup
            // must not run once another worker may own the instance).
            tokio::select! {
                biased;
                _ = abort.cancelled() => None,
                r = &mut run => Some(r),
                // A stop that comes once the worker has lost its right to run the instance (a
                // write refused after a long pause, say) is an abort too, whoever noticed first:
                // the cleanup could not touch the cluster, and the next run adopts what is there.
                _ = cancel.cancelled() => {
                    if fence.revoked() {
                        None
                    } else {
                        guest_stop.cancel();
                        tokio::select! {
                            biased;
                            _ = abort.cancelled() => None,
                            r = tokio::time::timeout(grace, &mut run) => r.ok(),
                        }
                    }
                }
            }
            // Dropping `run` here disposes of the guest's fiber if it did not finish.
        };
        stdout.finish();
        stderr.finish();
        store.data_mut().flush_report();
        if let Some((tag, sink)) = &store.data().probe {
            sink.ended(tag);
        }
        let gate = &store.data().shared.gate;
        let result = result.map(|r| r.map(|r| r.map(|summary| gate.summary(summary))));
        // Whatever the gate still holds back is told now, before the run's end is written.
        gate.note(std::time::Instant::now(), true);
        let outcome = match result {
            None if fence.revoked() => Outcome::Failed("aborted: the worker lost its right to run it".into()),
            None => Outcome::Failed(format!(
                "did not return within the grace period ({grace:?}) after cancellation; dropped"
            )),
            Some(Ok(Ok(summary))) => {
                Outcome::Succeeded(serde_json::from_str(&summary).unwrap_or(serde_json::Value::String(summary)))
            }
            Some(Ok(Err(e))) => Outcome::Failed(describe(&e)),
            Some(Err(e)) => Outcome::Failed(failure_reason(&e, &tail.text())),
        };
        match outcome {
            // The plugin's own error text is unbounded: cut before it reaches a status or a log.
            Outcome::Failed(mut reason) => {
                gate::cut(&mut reason, gate::MAX_REASON);
                tracing::debug!(instance = %spec.instance_id, %reason, "instance failed");
                Outcome::Failed(reason)
            }
            succeeded => succeeded,
        }
    }
}

struct NewStore {
    store: Store<InstanceState>,
    stdout: LogStream,
    stderr: LogStream,
    tail: StderrTail,
}

/// The plugin's own error, as a user reads it.
pub(crate) fn describe(e: &WitError) -> String {
    match e {
        WitError::NotFound(m) => format!("not found: {m}"),
        WitError::Conflict(m) => format!("conflict: {m}"),
        WitError::Forbidden(m) => format!("forbidden: {m}"),
        WitError::Invalid(m) => format!("invalid: {m}"),
        WitError::Timeout(m) => format!("timeout: {m}"),
        WitError::Cancelled => "cancelled".to_string(),
        WitError::Other(m) => m.clone(),
    }
}

/// Why a trap or host error ended the instance.
fn failure_reason(e: &wasmtime::Error, stderr: &str) -> String {
    if let Some(c) = e.downcast_ref::<CpuBudgetExceeded>() {
        return c.to_string();
    }
    if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
        return m.to_string();
    }
    if let Some(p) = e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        return format!("the worker is at capacity: {p}");
    }
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return format!("the plugin exited (status {}) instead of returning", exit.0);
    }
    if let Some(panic) = panic_message(stderr) {
        return panic;
    }
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        return match last {
            Some(line) => format!("trapped: {trap} (stderr: {line})"),
            None => format!("trapped: {trap}"),
        };
    }
    format!("{e:#}")
}

/// Rust's panic hook writes `thread '…' panicked at FILE:L:C:\nMESSAGE\nnote: …` to stderr
/// before aborting; turn that into `panicked at FILE:L:C: MESSAGE`.
fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.rfind("panicked at ")?;
    let rest = &stderr[start..];
    let (location, message) = rest.split_once('\n')?;
    let message: Vec<&str> = message.lines().take_while(|l| !l.starts_with("note: run with `RUST_BACKTRACE")).collect();
    Some(format!("{} {}", location.trim_end(), message.join(" ").trim()))
}

/// A ChaCha8 stream in the shape wasmtime-wasi's randomness wants (rand_core 0.10).
struct SeededRng(ChaCha8Rng);

impl rand_core_010::TryRng for SeededRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.0.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.0.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rust_panic_reads_as_its_message() {
        let stderr = "thread '<unnamed>' panicked at testing/hostile/src/lib.rs:52:25:\n\
                      deliberate panic: the plugin gave up\n\
                      note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            panic_message(stderr).as_deref(),
            Some("panicked at testing/hostile/src/lib.rs:52:25: deliberate panic: the plugin gave up")
        );
        assert_eq!(panic_message("just output\n"), None);
    }
}
