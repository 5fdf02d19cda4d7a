//! `process-signal` (a workflow fault): sends a signal to PID 1 — or to the processes named
//! `process`, found with `ps` — of the containers `target` picks, through `pods/exec`.
//!
//! - `SIGKILL`, `SIGTERM`, `SIGCONT`: sent once; the fault is then in place and the instance
//!   succeeds.
//! - `SIGSTOP`: each pod's stop is recorded on the pod first (an annotation carrying the
//!   scenario, the instance and the PIDs; see `chaos_megatest_logic::signal`), then sent; the
//!   fault holds until the instance is stopped, which continues every process it stopped and
//!   removes the records. A later attempt (its worker died) finds the records, and so does a
//!   cleanup run: nothing is left suspended.
//!
//! The targets are drawn with the instance's seed, so every attempt (and a replay) signals the
//! same pods of the same cluster.
//!
//! Config: `{"signal": "SIGSTOP", "process": "smoke-mini", "target": {...}}`.

use chaos_megatest::logic::config;
use chaos_megatest::logic::signal::{self, Suspended};
use chaos_megatest::{self as mt, STATE_INJECTED_AT, STATE_READY};
use chaos_def::builtin::Signal;
use chaos_def::select::Target;
use chaos_plugin_sdk::kube::{self, PatchType, Selectors};
use chaos_plugin_sdk::{self as sdk, Duration, Error, action, exec, log};
use serde_json::{Value, json};

sdk::capabilities!(
    r#"{"rules":[
        {"resources":["pods"],"verbs":["list","get","patch","exec"],"namespaces":["*"]}
    ]}"#
);

/// How long one `kill` or `ps` may take.
const EXEC_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a holding `SIGSTOP` wakes to see whether it was asked to stop (it wakes at once
/// when it is; this only bounds a sleep).
const HOLD: Duration = Duration::from_secs(3600);

struct ProcessSignal;

impl sdk::Guest for ProcessSignal {
    fn run(config: String) -> Result<String, Error> {
        let p = config::process_signal(&config).map_err(mt::config_error)?;
        let info = sdk::info();
        if p.signal == Signal::Stop {
            // A cleanup run (or one started already stopped) only continues what was stopped.
            if !sdk::cancelled() {
                suspend(&p, &info)?;
                sdk::report(&[], &json!({STATE_READY: true, STATE_INJECTED_AT: sdk::now_ms()}));
                while sdk::sleep(HOLD) {}
            }
            let resumed = resume(&p.target.namespaces, &info.instance)?;
            return sdk::summary(&json!({"signal": "SIGSTOP", "resumed": resumed}));
        }
        let targets = mt::pick_targets(&p.target, info.seed)?;
        let mut signalled = Vec::new();
        for target in &targets {
            for container in &target.containers {
                let pids = pids(&p.process, target, container)?;
                send(p.signal, target, container, &pids, "fault")?;
                signalled.push(format!("{}/{}/{container}", target.namespace, target.name));
            }
        }
        let state = json!({STATE_READY: true, STATE_INJECTED_AT: sdk::now_ms()});
        sdk::report(&[("signalled", signalled.len() as i64)], &state);
        sdk::summary(&json!({"signal": format!("SIG{}", p.signal.name()), "signalled": signalled}))
    }
}

/// Stops the targets' processes, recording each pod's stop on the pod before sending it.
fn suspend(p: &chaos_def::builtin::ProcessSignalParams, info: &sdk::InstanceInfo) -> Result<(), Error> {
    for target in mt::pick_targets(&p.target, info.seed)? {
        let mut record =
            Suspended { scenario: info.scenario.clone(), instance: info.instance.clone(), containers: Default::default() };
        for container in &target.containers {
            record.containers.insert(container.clone(), pids(&p.process, &target, container)?);
        }
        annotate(&target, &info.instance, Some(&record))?;
        for (container, pids) in &record.containers {
            send(Signal::Stop, &target, container, pids, "fault")?;
        }
    }
    Ok(())
}

/// Continues every process `instance` recorded as stopped in `namespaces` and removes the
/// records. Returns the pods it resumed.
fn resume(namespaces: &[String], instance: &str) -> Result<Vec<String>, Error> {
    let mut resumed = Vec::new();
    for namespace in namespaces {
        for pod in kube::list(kube::PODS, Some(namespace), &Selectors::all())? {
            let Some(record) = signal::record_of(pod.pointer("/metadata/annotations"), instance) else { continue };
            let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
            let target = Target { namespace: namespace.clone(), name, containers: Vec::new() };
            for (container, pids) in &record.containers {
                // The process may be gone (killed, restarted): there is nothing left to continue.
                if let Err(e) = send(Signal::Cont, &target, container, pids, "fault-undone") {
                    log::warn("could not continue", &[("pod", &target.name), ("error", &e.describe())]);
                }
            }
            annotate(&target, instance, None)?;
            resumed.push(format!("{}/{}", target.namespace, target.name));
        }
    }
    Ok(resumed)
}

/// Writes (or, with `None`, removes) `instance`'s record on the pod.
fn annotate(target: &Target, instance: &str, record: Option<&Suspended>) -> Result<(), Error> {
    let value = match record {
        Some(record) => Value::String(serde_json::to_string(record).map_err(Error::other)?),
        None => Value::Null,
    };
    let patch = json!({"metadata": {"annotations": {signal::annotation_key(instance): value}}});
    match kube::patch(kube::PODS, Some(&target.namespace), &target.name, PatchType::Merge, &patch) {
        Ok(_) => Ok(()),
        // The pod is gone, and its processes with it.
        Err(e) if e.is_not_found() && record.is_none() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The PIDs to signal in a container: those named `process`, or PID 1.
fn pids(process: &Option<String>, target: &Target, container: &str) -> Result<Vec<u32>, Error> {
    let Some(name) = process else { return Ok(vec![1]) };
    let ps = exec::run(&target.namespace, &target.name, Some(container), &["ps"], EXEC_TIMEOUT)?;
    if ps.exit_code != 0 {
        return Err(Error::other(format!("ps failed in {}/{container}: {}", target.name, ps.stderr.trim())));
    }
    Ok(signal::pids_named(&ps.stdout, name))
}

/// Sends `sig` to `pids` in a container with `kill`, as an action of the journal, with a
/// journal entry of `kind` (`fault`, or `fault-undone` for the continuation of a stop).
fn send(sig: Signal, target: &Target, container: &str, pids: &[u32], kind: &str) -> Result<(), Error> {
    if pids.is_empty() {
        log::info("no process to signal", &[("pod", &target.name), ("container", container)]);
        return Ok(());
    }
    let pid_list: Vec<String> = pids.iter().map(u32::to_string).collect();
    let flag = format!("-{}", sig.name());
    let mut command = vec!["kill", flag.as_str()];
    command.extend(pid_list.iter().map(String::as_str));
    let joined = pid_list.join(",");
    let params = [
        ("namespace", target.namespace.as_str()),
        ("pod", target.name.as_str()),
        ("container", container),
        ("signal", sig.name()),
        ("pids", joined.as_str()),
    ];
    action::action("signal", &params, || {
        let ran = exec::run(&target.namespace, &target.name, Some(container), &command, EXEC_TIMEOUT)?;
        if ran.exit_code != 0 {
            return Err(Error::other(format!("kill exited {}: {}", ran.exit_code, ran.stderr.trim())));
        }
        sdk::event(kind, &params);
        Ok(())
    })
}

sdk::export!(ProcessSignal);
