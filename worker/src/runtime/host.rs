//! The host side of the WIT world: the per-instance state a `Store` holds and the imports
//! (`chaos:plugin/host`, `chaos:plugin/kube`, since 0.1.1 `chaos:plugin/http` and
//! `chaos:plugin/probe`, since 0.1.2 `chaos:plugin/exec`) implemented on it.
//!
//! Every blocking import is async and parks the guest's fiber: a sleeping plugin costs no
//! thread. Calls that were in flight when the instance is asked to stop end at once (`sleep`
//! returns false, kube calls and `watch.next` return `cancelled`); calls made after the stop —
//! the plugin's cleanup — run normally until the grace period ends and the instance is dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio_util::sync::CancellationToken;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings;
use super::bindings::WatchHandle;
use super::capabilities::{Capabilities, KindRef, Verb};
use super::gate::Gate;
use super::kube::{KubeGateway, Resolved};
use super::sink::{Level, Record, Sink, Tags};

use bindings::chaos::plugin::exec::{Output as ExecOutput, Request as ExecRequest};
use bindings::chaos::plugin::http::{Request as HttpRequest, Response as HttpResponse, Target as HttpTarget};
use bindings::chaos::plugin::kube::{ObjectKind, PatchType, Selectors, WatchEvent};
use bindings::chaos::plugin::probe::State as WitProbeState;
use bindings::chaos::plugin::types::{Error as WitError, InstanceInfo, Level as WitLevel};
use chaos_availability::ProbeState;

/// Raised from the epoch callback when a plugin computes past its CPU budget without calling
/// the host.
#[derive(Debug, thiserror::Error)]
#[error("CPU budget exceeded: ran {budget:?} without a host call")]
pub struct CpuBudgetExceeded {
    pub budget: Duration,
}

/// Raised when the plugin's linear memory would grow past the limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit exceeded: growing to {desired} bytes, the limit is {limit} bytes")]
pub struct MemoryLimitExceeded {
    pub desired: usize,
    pub limit: usize,
}

/// Limits one instance's memories and tables (its `ResourceLimiter`).
pub(crate) struct Limits {
    pub memory: usize,
    pub table_elements: usize,
}

impl wasmtime::ResourceLimiter for Limits {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory {
            // An error (not `Ok(false)`) traps at once with a reason we can name, instead of
            // `memory.grow` returning -1 and the guest aborting with an allocation message.
            return Err(wasmtime::Error::new(MemoryLimitExceeded { desired, limit: self.memory }));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }
}

/// Tracks guest CPU time between host calls, in epoch ticks.
pub(crate) struct CpuMeter {
    pub ticks: u64,
    pub budget_ticks: u64,
    pub budget: Duration,
}

/// Reports are batched: the latest wins, delivered at most once per interval.
pub(crate) struct ReportBatch {
    interval: Duration,
    last_sent: Option<Instant>,
    pending: Option<Record>,
}

impl ReportBatch {
    pub fn new(interval: Duration) -> Self {
        ReportBatch { interval, last_sent: None, pending: None }
    }

    /// When the pending report is due, if there is one.
    fn due(&self) -> Option<Instant> {
        self.pending.as_ref()?;
        Some(self.last_sent.map_or_else(Instant::now, |t| t + self.interval))
    }
}

/// An action started and not yet ended: name, params, start.
pub(crate) type OpenAction = (String, Vec<(String, String)>, Instant);

/// Everything an instance shares with its runtime and its stdio streams.
pub(crate) struct Shared {
    pub tags: Tags,
    pub sink: Arc<dyn Sink>,
    pub info: InstanceInfo,
    /// What the instance may send through the host.
    pub gate: Gate,
}

/// The data of one instance's `Store`.
pub struct InstanceState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: Limits,
    pub(crate) cpu: CpuMeter,
    pub(crate) shared: Arc<Shared>,
    pub(crate) stop: CancellationToken,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) caps: Option<Arc<Capabilities>>,
    pub(crate) kube: Option<KubeGateway>,
    pub(crate) http: Option<super::http::HttpGateway>,
    /// The probe this instance samples and where its samples go.
    pub(crate) probe: Option<(super::probe::ProbeTag, Arc<dyn super::probe::ProbeSink>)>,
    pub(crate) fence: super::fence::RunFence,
    pub(crate) actions: HashMap<u64, OpenAction>,
    pub(crate) next_action: u64,
    pub(crate) reports: ReportBatch,
    /// Watches the plugin holds (capped by the gate).
    pub(crate) open_watches: u64,
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

pub(crate) fn rng_for(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

impl InstanceState {
    fn emit(&self, record: Record) {
        self.shared.sink.record(&self.shared.tags, jiff::Timestamp::now(), record);
    }

    /// A host log line about the plugin (e.g. a refused call).
    /// Through the log's gate: the message carries what the plugin asked for.
    fn host_log(&self, level: Level, message: String, mut fields: Vec<(String, String)>) {
        fields.push(("source".into(), "host".into()));
        self.shared.gate.log_line(level, message, fields);
    }

    /// Every import starts here: the guest is out of its compute loop, so its CPU slice restarts.
    fn enter(&mut self) {
        self.cpu.ticks = 0;
    }

    pub(crate) fn flush_report(&mut self) {
        if let Some(r) = self.reports.pending.take() {
            self.reports.last_sent = Some(Instant::now());
            self.emit(r);
        }
    }

    /// Awaits `fut` with the guest parked. When `interruptible` and the stop comes while it
    /// waits, returns None. Delivers a batched report, and what the gate has to tell, when they
    /// fall due meanwhile.
    async fn park<T>(&mut self, fut: impl Future<Output = T>, interruptible: bool) -> Option<T> {
        let stop = self.stop.clone();
        // Calls made after the stop are cleanup: they are not cut short.
        let interruptible = interruptible && !stop.is_cancelled();
        tokio::pin!(fut);
        loop {
            let due = [self.reports.due(), self.shared.gate.next_note()].into_iter().flatten().min();
            tokio::select! {
                v = &mut fut => return Some(v),
                _ = stop.cancelled(), if interruptible => return None,
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now).into()), if due.is_some() => {
                    if self.reports.due().is_some_and(|at| at <= Instant::now()) {
                        self.flush_report();
                    }
                    self.shared.gate.note(Instant::now(), false);
                }
            }
        }
    }

    /// Resolves and checks a kube call: capability pre-check (no network), discovery, full check.
    async fn authorize(
        &mut self,
        verb: Verb,
        of: &ObjectKind,
        namespace: Option<&str>,
    ) -> Result<(KubeGateway, Resolved), WitError> {
        if self.fence.revoked() {
            return Err(WitError::Cancelled);
        }
        let group = of.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let none = Capabilities::default();
        let caps = self.caps.clone();
        let caps = caps.as_deref().unwrap_or(&none);
        if let Err(why) = caps.precheck(verb, group, namespace) {
            return Err(self.refuse(verb, of, namespace, why));
        }
        let Some(kube) = self.kube.clone() else {
            return Err(WitError::Other("this worker has no cluster configured".into()));
        };
        // Before discovery, which asks the cluster again for a kind it does not know.
        if self.kube_turn().await.is_none() {
            return Err(WitError::Cancelled);
        }
        let resolved = match self.park(kube.resolve(&of.api_version, &of.kind), true).await {
            Some(r) => r?,
            None => return Err(WitError::Cancelled),
        };
        let k = KindRef {
            group: &resolved.resource.group,
            kind: &resolved.resource.kind,
            plural: &resolved.resource.plural,
            namespaced: resolved.namespaced,
        };
        if let Err(why) = caps.check(verb, &k, namespace) {
            return Err(self.refuse(verb, of, namespace, why));
        }
        Ok((kube, resolved))
    }

    fn refuse(&self, verb: Verb, of: &ObjectKind, namespace: Option<&str>, why: String) -> WitError {
        let mut fields = vec![
            ("verb".to_string(), verb.as_str().to_string()),
            ("apiVersion".to_string(), of.api_version.clone()),
            ("kind".to_string(), of.kind.clone()),
        ];
        if let Some(ns) = namespace {
            fields.push(("namespace".to_string(), ns.to_string()));
        }
        self.host_log(Level::Warn, format!("kube call refused: {why}"), fields);
        WitError::Forbidden(why)
    }

    /// Waits, parked, for the instance's turn at the kube rate limits; None when stopped meanwhile.
    async fn kube_turn(&mut self) -> Option<()> {
        let shared = self.shared.clone();
        self.park(async move { shared.gate.kube_turn().await }, true).await
    }

    /// Runs an authorized kube call, parked and interruptible.
    async fn call<T>(&mut self, fut: impl Future<Output = Result<T, WitError>>) -> Result<T, WitError> {
        self.park(fut, true).await.unwrap_or(Err(WitError::Cancelled))
    }

    /// One kube import: checked against the capabilities ([`Self::authorize`]), then made with
    /// the guest parked ([`Self::call`]).
    async fn kube_call<T, F, Fut>(
        &mut self,
        verb: Verb,
        of: &ObjectKind,
        namespace: Option<&str>,
        call: F,
    ) -> wasmtime::Result<Result<T, WitError>>
    where
        F: FnOnce(KubeGateway, Resolved) -> Fut,
        Fut: Future<Output = Result<T, WitError>>,
    {
        self.enter();
        match self.authorize(verb, of, namespace).await {
            Ok((kube, resolved)) => Ok(self.call(call(kube, resolved)).await),
            Err(refused) => Ok(Err(refused)),
        }
    }
}

impl bindings::chaos::plugin::types::Host for InstanceState {}

impl bindings::chaos::plugin::host::Host for InstanceState {
    async fn info(&mut self) -> wasmtime::Result<InstanceInfo> {
        self.enter();
        Ok(self.shared.info.clone())
    }

    async fn sleep(&mut self, ms: u64) -> wasmtime::Result<bool> {
        self.enter();
        if self.stop.is_cancelled() {
            return Ok(false);
        }
        let slept = self.park(tokio::time::sleep(Duration::from_millis(ms)), true).await;
        Ok(slept.is_some())
    }

    async fn cancelled(&mut self) -> wasmtime::Result<bool> {
        self.enter();
        Ok(self.stop.is_cancelled())
    }

    async fn now(&mut self) -> wasmtime::Result<u64> {
        self.enter();
        Ok(u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0))
    }

    async fn random(&mut self) -> wasmtime::Result<u64> {
        self.enter();
        Ok(self.rng.next_u64())
    }

    async fn log(&mut self, level: WitLevel, message: String, fields: Vec<(String, String)>) -> wasmtime::Result<()> {
        self.enter();
        let level = match level {
            WitLevel::Trace => Level::Trace,
            WitLevel::Debug => Level::Debug,
            WitLevel::Info => Level::Info,
            WitLevel::Warn => Level::Warn,
            WitLevel::Error => Level::Error,
        };
        self.shared.gate.log_line(level, message, fields);
        Ok(())
    }

    async fn action_start(&mut self, name: String, params: Vec<(String, String)>) -> wasmtime::Result<u64> {
        self.enter();
        self.next_action += 1;
        let id = self.next_action;
        self.shared.gate.journal_entry(Record::ActionStart { id, name: name.clone(), params: params.clone() });
        // Bounded: a plugin that starts actions without ending them must not grow the host.
        if self.actions.len() < 1024 {
            self.actions.insert(id, (name, params, Instant::now()));
        }
        Ok(id)
    }

    async fn action_end(&mut self, id: u64, outcome: Result<String, String>) -> wasmtime::Result<()> {
        self.enter();
        let (name, params, duration) = match self.actions.remove(&id) {
            Some((name, params, started)) => (name, params, started.elapsed()),
            None => (format!("#{id}"), Vec::new(), Duration::ZERO),
        };
        let (ok, result) = match outcome {
            Ok(detail) => (true, detail),
            Err(message) => (false, message),
        };
        self.shared.gate.journal_entry(Record::ActionEnd { id, name, params, ok, result, duration });
        Ok(())
    }

    async fn report(&mut self, counters: Vec<(String, i64)>, state: String) -> wasmtime::Result<()> {
        self.enter();
        if !self.shared.gate.report_fits(&counters, &state) {
            return Ok(());
        }
        let state = serde_json::from_str(&state).unwrap_or(serde_json::Value::String(state));
        self.reports.pending = Some(Record::Report { counters, state });
        if self.reports.due().is_some_and(|due| due <= Instant::now()) {
            self.flush_report();
        }
        Ok(())
    }

    async fn event(&mut self, kind: String, fields: Vec<(String, String)>) -> wasmtime::Result<()> {
        self.enter();
        self.shared.gate.journal_entry(Record::Event { event: kind, fields });
        Ok(())
    }
}

impl bindings::chaos::plugin::kube::Host for InstanceState {
    async fn get(
        &mut self,
        of: ObjectKind,
        namespace: Option<String>,
        name: String,
    ) -> wasmtime::Result<Result<String, WitError>> {
        let ns = namespace.as_deref();
        self.kube_call(Verb::Get, &of, ns, |kube, r| async move { kube.get(&r, ns, &name).await }).await
    }

    async fn list(
        &mut self,
        of: ObjectKind,
        namespace: Option<String>,
        sel: Selectors,
    ) -> wasmtime::Result<Result<String, WitError>> {
        let ns = namespace.as_deref();
        self.kube_call(Verb::List, &of, ns, |kube, r| async move {
            kube.list(&r, ns, sel.label_selector, sel.field_selector).await
        })
        .await
    }

    async fn create(
        &mut self,
        of: ObjectKind,
        namespace: Option<String>,
        body: String,
    ) -> wasmtime::Result<Result<String, WitError>> {
        let ns = namespace.as_deref();
        self.kube_call(Verb::Create, &of, ns, |kube, r| async move { kube.create(&r, ns, &body).await }).await
    }

    async fn delete(
        &mut self,
        of: ObjectKind,
        namespace: Option<String>,
        name: String,
    ) -> wasmtime::Result<Result<(), WitError>> {
        let ns = namespace.as_deref();
        self.kube_call(Verb::Delete, &of, ns, |kube, r| async move { kube.delete(&r, ns, &name).await }).await
    }

    async fn patch(
        &mut self,
        of: ObjectKind,
        namespace: Option<String>,
        name: String,
        patch_type: PatchType,
        body: String,
    ) -> wasmtime::Result<Result<String, WitError>> {
        let ns = namespace.as_deref();
        self.kube_call(
            Verb::Patch,
            &of,
            ns,
            |kube, r| async move { kube.patch(&r, ns, &name, patch_type, &body).await },
        )
        .await
    }

    async fn open_watch(
        &mut self,
        of: ObjectKind,
        namespace: Option<String>,
        sel: Selectors,
    ) -> wasmtime::Result<Result<Resource<WatchHandle>, WitError>> {
        self.enter();
        let ns = namespace.as_deref();
        let (kube, r) = match self.authorize(Verb::Watch, &of, ns).await {
            Ok(x) => x,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(refused) = self.shared.gate.watch_allowed(self.open_watches) {
            return Ok(Err(WitError::Other(refused)));
        }
        // The watcher ends with the instance at the latest (dropped store => dropped handle).
        let handle = kube.watch(&r, ns, sel.label_selector, sel.field_selector, &CancellationToken::new());
        let handle = self.table.push(handle)?;
        self.open_watches += 1;
        Ok(Ok(handle))
    }
}

impl bindings::chaos::plugin::kube::HostWatch for InstanceState {
    async fn next(
        &mut self,
        watch: Resource<WatchHandle>,
        timeout_ms: u64,
    ) -> wasmtime::Result<Result<Option<WatchEvent>, WitError>> {
        self.enter();
        if self.fence.revoked() {
            return Ok(Err(WitError::Cancelled));
        }
        let rx = self.table.get(&watch)?.rx.clone();
        let wait = async move {
            let mut rx = rx.lock().await;
            tokio::time::timeout(Duration::from_millis(timeout_ms), rx.recv()).await
        };
        Ok(match self.park(wait, true).await {
            None => Err(WitError::Cancelled),
            Some(Err(_elapsed)) => Ok(None),
            Some(Ok(Some(item))) => item.map(Some),
            Some(Ok(None)) => Err(WitError::Other("the watch ended".into())),
        })
    }

    async fn drop(&mut self, watch: Resource<WatchHandle>) -> wasmtime::Result<()> {
        self.table.delete(watch)?;
        self.open_watches = self.open_watches.saturating_sub(1);
        Ok(())
    }
}

impl bindings::chaos::plugin::http::Host for InstanceState {
    async fn send(&mut self, req: HttpRequest) -> wasmtime::Result<Result<HttpResponse, WitError>> {
        self.enter();
        if self.fence.revoked() {
            return Ok(Err(WitError::Cancelled));
        }
        let timeout = Duration::from_millis(req.timeout_ms);
        let (target, plural) = match req.target {
            HttpTarget::Url(url) => {
                // Outside the cluster only for probes (the allow list is the operator's, for
                // them), and at the rate every cluster call goes.
                let (Some(http), true) = (self.http.clone(), self.probe.is_some()) else {
                    let why = "HTTP outside the cluster is for probes, to the hosts the worker allows";
                    return Ok(Err(WitError::Forbidden(why.into())));
                };
                if self.kube_turn().await.is_none() {
                    return Ok(Err(WitError::Cancelled));
                }
                let method = req.method;
                return Ok(self.call(async move { http.fetch(&method, &url, timeout).await }).await);
            }
            HttpTarget::Service(target) => (target, "services"),
            HttpTarget::Pod(target) => (target, "pods"),
        };
        let kind = ObjectKind { api_version: "v1".into(), kind: plural.into() };
        let (kube, _) = match self.authorize(Verb::Proxy, &kind, Some(&target.namespace)).await {
            Ok(granted) => granted,
            Err(refused) => return Ok(Err(refused)),
        };
        if self.kube_turn().await.is_none() {
            return Ok(Err(WitError::Cancelled));
        }
        let (method, path) = (req.method, req.path);
        Ok(self.call(async move { super::http::proxy(&kube, plural, &target, &method, &path, timeout).await }).await)
    }
}

impl bindings::chaos::plugin::exec::Host for InstanceState {
    async fn run(&mut self, req: ExecRequest) -> wasmtime::Result<Result<ExecOutput, WitError>> {
        self.enter();
        if let Err(invalid) = super::exec::check(&req) {
            return Ok(Err(invalid));
        }
        let pods = ObjectKind { api_version: "v1".into(), kind: "pods".into() };
        let (kube, _) = match self.authorize(Verb::Exec, &pods, Some(&req.namespace)).await {
            Ok(granted) => granted,
            Err(refused) => return Ok(Err(refused)),
        };
        if self.kube_turn().await.is_none() {
            return Ok(Err(WitError::Cancelled));
        }
        // On a task of its own: the WebSocket session's futures are deep, and the guest's fiber
        // stack is small (they overflowed it). Dropping the handle (a cancelled call) ends it.
        let session =
            tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move { super::exec::run(&kube, req).await }));
        let joined =
            async move { session.await.unwrap_or_else(|e| Err(WitError::Other(format!("the exec task ended: {e}")))) };
        Ok(self.call(joined).await)
    }
}

impl bindings::chaos::plugin::probe::Host for InstanceState {
    async fn bound(&mut self) -> wasmtime::Result<bool> {
        self.enter();
        Ok(self.probe.is_some())
    }

    async fn sample(&mut self, state: WitProbeState, detail: String) -> wasmtime::Result<()> {
        self.enter();
        let Some((tag, sink)) = &self.probe else { return Ok(()) };
        let state = match state {
            WitProbeState::Up => ProbeState::Up,
            WitProbeState::Down => ProbeState::Down,
            WitProbeState::Unknown => ProbeState::Unknown,
        };
        sink.sample(tag, state, super::probe::cut_detail(&detail), jiff::Timestamp::now().as_millisecond());
        Ok(())
    }
}
