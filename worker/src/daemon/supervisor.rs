//! The instance supervisor: one task per run. It resolves the plugin, starts it through the
//! runtime with a sink that feeds the status writer and the journal, waits for it to return,
//! and writes the final status together with the assignment's deletion (fenced).
//!
//! Two tokens stop a run: the instance's own (a Stop decision, or its writes were refused) and
//! the session's (shutdown, lease lost). A run ended by the session, or after the worker lost
//! its right to run it, writes no final status: its assignment is (or is about to be) gone with
//! the lease, and the scheduler places the instance again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chaos_def::PluginRef;
use chaos_def::records::{InstancePhase, InstanceStatus, JournalEvent, TaskInstance};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::builtins::BuiltinPlugins;
use super::journal::Journal;
use super::metrics::Metrics;
use super::pushed::PushedPlugins;
use super::status::{Fence, FinalWrite, StatusWriter, initial_status, with_summary};
use crate::runtime::{
    Capabilities, HttpGateway, InstanceSpec, KubeGateway, Outcome, Plugin, ProbeSink, Record, RunFence, Runtime,
    Services, Sink, Tags,
};
use chaos_def::builtin::BuiltinPlugin;
use chaos_def::probe::ProbeSpec;

/// What every run of this worker shares.
pub struct Context {
    pub worker: String,
    pub runtime: Runtime,
    pub builtins: BuiltinPlugins,
    pub pushed: PushedPlugins,
    pub kube: Option<KubeGateway>,
    pub plugin_paths: BTreeMap<String, PathBuf>,
    pub writer: Arc<StatusWriter>,
    pub journal: Arc<Journal>,
    pub metrics: Arc<Metrics>,
    /// HTTP outside the cluster for probes, to the hosts the operator allows.
    pub http: Option<HttpGateway>,
    /// The availability accounting probe samples go to.
    pub probes: Option<Arc<dyn ProbeSink>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("worker", &self.worker).finish_non_exhaustive()
    }
}

impl Context {
    /// The plugin a reference names: a file given with `--plugin-path NAME=PATH`, a built-in
    /// plugin, else a pushed one (fetched from etcd by digest on first use).
    async fn resolve(&self, plugin: &PluginRef) -> crate::error::Result<Plugin> {
        if let Some(path) = self.plugin_paths.get(plugin.name()) {
            return self.runtime.load_file(path).await;
        }
        if let PluginRef::Name(name) = plugin
            && let Some(builtin) = self.builtins.load(name).await
        {
            return builtin;
        }
        self.pushed.load(plugin).await
    }
}

/// One run to supervise.
#[derive(Debug)]
pub struct Run {
    pub instance: TaskInstance,
    pub attempt: u32,
    pub placement: u32,
    pub fence: Fence,
    /// Set when the run is not to start: the final status to write at once.
    pub finish_now: Option<(InstancePhase, String)>,
    /// The instance's own token (a child of `session`).
    pub cancel: CancellationToken,
    /// Fired before `cancel` when the run stops to hand the instance back (a drain): its final
    /// status is then Pending, so that the scheduler places it elsewhere.
    pub handover: CancellationToken,
    pub session: CancellationToken,
    /// The session's abort and lease clock: past them the plugin may not touch the cluster.
    pub authority: RunFence,
}

/// Runs `run` to its end: starts its plugin (or only writes its final status), waits for it,
/// and writes how it ended.
pub async fn supervise(ctx: Arc<Context>, run: Run) {
    let ctx = ctx.as_ref();
    if let Some((phase, reason)) = run.finish_now.clone() {
        let worker = ctx.worker.clone();
        let (attempt, placement) = (run.attempt, run.placement);
        let written = write_final(ctx, &run, |s| {
            *s = initial_status(&worker, attempt, placement);
            s.started_at = None;
            s.phase = phase;
            s.reason = Some(reason);
        })
        .await;
        tracing::info!(instance = %run.instance.id, phase = phase.as_str(), ?written, "finished without starting");
        return;
    }
    // Running is reported once the plugin is compiled and about to start, not before.
    let resolved = ctx.resolve(&run.instance.plugin).await;
    let mut status = initial_status(&ctx.worker, run.attempt, run.placement);
    if run.cancel.is_cancelled() {
        // Stopped before its status was opened (a cleanup run starts stopped): say so at once.
        status.phase = InstancePhase::Stopping;
        let why = run.instance.stop_reason.as_deref().unwrap_or("stop requested");
        status.reason = Some(format!("a cleanup run ({why})"));
    }
    ctx.writer.open(&run.instance.id, run.fence.clone(), status, run.cancel.clone());
    let outcome = match resolved {
        Err(error) => Outcome::Failed(error.to_string()),
        Ok(plugin) => run_plugin(ctx, &run, plugin).await,
    };
    ctx.metrics.finished.inc();
    // The session's end and the loss of the right to run the instance (the abort comes just
    // before the session's end, and the supervisor may see it first) are one case: the
    // assignment is gone with the lease, and a final write would be refused.
    if run.session.is_cancelled() || run.authority.revoked() {
        tracing::info!(instance = %run.instance.id, ?outcome, "stopped with the session; no final status");
        ctx.writer.close(&run.instance.id);
        return;
    }
    finish(ctx, &run, outcome).await;
}

/// The built-in `probe` plugin reaches only what its probe's kind needs, not everything the
/// component declares (it serves every kind).
fn probe_capabilities(instance: &TaskInstance) -> Option<Arc<Capabilities>> {
    if instance.plugin.builtin() != Some(BuiltinPlugin::Probe) {
        return None;
    }
    // Params that do not parse (the apiserver checked them) give nothing rather than everything.
    let caps = serde_json::from_value::<ProbeSpec>(Value::Object(instance.params.clone()))
        .map(|spec| spec.capabilities())
        .unwrap_or_default();
    Some(Arc::new(caps))
}

/// Starts the plugin, waits for it, and journals the run's start and end.
async fn run_plugin(ctx: &Context, run: &Run, plugin: Plugin) -> Outcome {
    let Run { instance, attempt, placement, .. } = run;
    let (attempt, placement) = (*attempt, *placement);
    let spec = InstanceSpec {
        instance_id: instance.id.clone(),
        scenario: instance.scenario.clone(),
        volume: instance.volume.as_ref().map(|v| v.name.clone()),
        plugin: instance.plugin.name().to_string(),
        config_json: Value::Object(instance.params.clone()).to_string(),
        seed: instance.seed,
        // The run number the plugin sees (see `Assignment`).
        attempt: attempt + placement.saturating_sub(1),
        limits: ctx.runtime.config().limits.tightened(&instance.limits),
        probe: instance.probe.clone(),
        capabilities: probe_capabilities(instance),
    };
    let sink =
        Arc::new(DaemonSink { writer: ctx.writer.clone(), journal: ctx.journal.clone(), metrics: ctx.metrics.clone() });
    tracing::info!(instance = %instance.id, plugin = %instance.plugin.name(), attempt, placement, "starting");
    ctx.metrics.started.inc();
    ctx.journal.push_run(&instance.scenario, run_event(ctx, instance, "run-started", attempt, placement));
    let services = Services {
        sink,
        kube: ctx.kube.clone(),
        fence: run.authority.clone(),
        http: ctx.http.clone(),
        probes: ctx.probes.clone(),
    };
    let outcome = plugin.start(spec, services, run.cancel.clone()).wait().await;
    let mut ended = run_event(ctx, instance, "run-ended", attempt, placement);
    ended.fields.insert("ok".into(), matches!(outcome, Outcome::Succeeded(_)).into());
    if let Outcome::Failed(error) = &outcome {
        ended.fields.insert("error".into(), error.clone().into());
    }
    if run.handover.is_cancelled() {
        ended.fields.insert("drained".into(), true.into());
    }
    if let Some(lease) = run.authority.lease.as_ref().filter(|_| run.authority.revoked()) {
        // The run lost its right to act before it ended: say until when it had it.
        let past = tokio::time::Instant::now().saturating_duration_since(lease.alive_until());
        let until = ended.time - jiff::SignedDuration::try_from(past).unwrap_or_default();
        ended.fields.insert("activeUntil".into(), until.to_string().into());
    }
    ctx.journal.push_run(&instance.scenario, ended);
    outcome
}

/// Writes the final status of a run that ended with `outcome`.
async fn finish(ctx: &Context, run: &Run, outcome: Outcome) {
    let handed_back = run.handover.is_cancelled();
    let (phase, error, summary) = match outcome {
        // Handed back: whatever the plugin returned, the instance is not finished.
        Outcome::Succeeded(_) if handed_back => (InstancePhase::Pending, None, None),
        Outcome::Failed(reason) if handed_back => (InstancePhase::Pending, Some(reason), None),
        Outcome::Succeeded(summary) => (InstancePhase::Succeeded, None, Some(summary)),
        Outcome::Failed(reason) => (InstancePhase::Failed, Some(reason), None),
    };
    let written = write_final(ctx, run, |s| {
        s.phase = phase;
        if phase == InstancePhase::Pending {
            s.reason = Some(super::assignments::DRAINED.into());
        }
        if let Some(error) = error {
            s.last_error = Some(error);
        }
        if let Some(summary) = summary {
            with_summary(&mut s.state, summary);
        }
    })
    .await;
    let id = &run.instance.id;
    if written == FinalWrite::Fenced {
        tracing::warn!(instance = %id, phase = phase.as_str(), "final status refused: the run was fenced");
    } else {
        tracing::info!(instance = %id, phase = phase.as_str(), "finished");
    }
}

/// The run's final status, with its assignment's deletion, fenced (see [`StatusWriter::finish`]).
async fn write_final(ctx: &Context, run: &Run, change: impl FnOnce(&mut InstanceStatus)) -> FinalWrite {
    ctx.writer.finish(&run.instance.id, run.fence.clone(), change, &run.session).await
}

/// A journal entry about one run of an instance on this worker (`run-started`, `run-ended`):
/// from these, anyone can check that no instance ever ran on two workers at once.
fn run_event(ctx: &Context, instance: &TaskInstance, kind: &str, attempt: u32, placement: u32) -> JournalEvent {
    let mut fields = Map::new();
    fields.insert("worker".into(), ctx.worker.clone().into());
    fields.insert("attempt".into(), attempt.into());
    fields.insert("placement".into(), placement.into());
    JournalEvent {
        time: jiff::Timestamp::now(),
        kind: kind.into(),
        instance: Some(instance.id.clone()),
        volume: instance.volume.as_ref().map(|v| v.name.clone()),
        fields,
    }
}

/// Where a daemon's instance output goes: reports to the status writer, actions and events to
/// the journal, log lines to this process's log.
struct DaemonSink {
    writer: Arc<StatusWriter>,
    journal: Arc<Journal>,
    metrics: Arc<Metrics>,
}

fn fields_map(fields: &[(String, String)]) -> Map<String, Value> {
    fields.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()
}

impl Sink for DaemonSink {
    fn record(&self, tags: &Tags, at: jiff::Timestamp, record: Record) {
        let event = |kind: &str, mut fields: Map<String, Value>| {
            fields.insert("plugin".into(), tags.plugin.clone().into());
            JournalEvent {
                time: at,
                kind: kind.to_string(),
                instance: Some(tags.instance.clone()),
                volume: tags.volume.clone(),
                fields,
            }
        };
        match record {
            Record::Log { level, message, fields } => {
                let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                tracing::info!(instance = %tags.instance, plugin = %tags.plugin, level = level.as_str(),
                    "plugin: {message} {}", fields.join(" "));
            }
            Record::Report { counters, state } => self.writer.report(&tags.instance, counters, state),
            Record::ActionStart { id, name, params } => {
                let mut fields = fields_map(&params);
                fields.insert("action".into(), name.into());
                fields.insert("id".into(), id.into());
                self.journal.push(&tags.scenario, event("action-start", fields));
            }
            Record::ActionEnd { id, name, params, ok, result, duration } => {
                let mut fields = fields_map(&params);
                fields.insert("action".into(), name.into());
                fields.insert("id".into(), id.into());
                fields.insert("ok".into(), ok.into());
                fields.insert("result".into(), result.into());
                fields.insert("durationMs".into(), u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).into());
                self.journal.push(&tags.scenario, event("action-end", fields));
            }
            Record::Event { event: kind, fields } => {
                let mut map = fields_map(&fields);
                map.insert("event".into(), kind.clone().into());
                self.journal.push(&tags.scenario, event(&kind, map));
            }
            Record::Limited { channel, count, new, reason } => {
                self.metrics.plugin_limited(&tags.plugin, &channel, new);
                self.writer.limited(&tags.instance, channel, count, reason);
            }
            Record::JournalDropped { entries, actions } => {
                // The worker's own entry: what the report could not see of this instance.
                let mut fields = Map::new();
                fields.insert("entries".into(), entries.into());
                let actions: Map<String, Value> = actions.into_iter().map(|(name, n)| (name, n.into())).collect();
                fields.insert("actions".into(), actions.into());
                self.journal.push_note(&tags.scenario, event("journal-dropped", fields));
            }
        }
    }
}
