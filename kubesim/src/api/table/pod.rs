//! A pod's row as the real server prints it: ready containers, the status word and restarts.
//!
//! The status word follows the real printer's reasoning: the pod's `reason` or phase, replaced by
//! the first init container that has not finished (`Init:ExitCode:1`, `Init:CrashLoopBackOff`,
//! `Init:0/2`), else by the reason of the last container that is waiting or terminated
//! (`CrashLoopBackOff`, `ContainerCreating`, `Error`, `ExitCode:137`); a pod whose containers
//! completed while one still runs is `Running` if Ready, `NotReady` otherwise; a pod being deleted
//! is `Terminating` (`Unknown` when its node was lost). Restarts read `3 (42s ago)` once a
//! container has restarted.

use serde_json::Value;

use super::human_age;

/// What a pod's row shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub ready: usize,
    pub reason: String,
    pub restarts: String,
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn non_empty(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}

/// `Signal:9`, `ExitCode:1`, or the terminated state's reason.
fn terminated_word(t: &Value) -> String {
    match non_empty(&t["reason"]) {
        Some(r) => r.to_string(),
        None => match t["signal"].as_i64().filter(|s| *s != 0) {
            Some(sig) => format!("Signal:{sig}"),
            None => format!("ExitCode:{}", t["exitCode"].as_i64().unwrap_or(0)),
        },
    }
}

fn condition_true(o: &Value, ty: &str) -> bool {
    list(&o["status"]["conditions"]).iter().any(|c| c["type"] == ty && c["status"] == "True")
}

/// Counts restarts and remembers the latest `finishedAt` of a container's last termination.
struct Restarts {
    count: i64,
    last: Option<String>,
}

impl Restarts {
    fn add(&mut self, c: &Value) {
        self.count += c["restartCount"].as_i64().unwrap_or(0);
        if let Some(at) = non_empty(&c["lastState"]["terminated"]["finishedAt"])
            && self.last.as_deref().is_none_or(|l| at > l)
        {
            self.last = Some(at.to_string());
        }
    }

    fn render(&self) -> String {
        match &self.last {
            Some(at) => format!("{} ({} ago)", self.count, human_age(at)),
            None => self.count.to_string(),
        }
    }
}

/// The first unfinished init container's word, if one is unfinished.
fn init_reason(o: &Value, restarts: &mut Restarts) -> Option<String> {
    let total = list(&o["spec"]["initContainers"]).len();
    for (i, c) in list(&o["status"]["initContainerStatuses"]).iter().enumerate() {
        restarts.add(c);
        let state = &c["state"];
        if state["terminated"].is_object() && state["terminated"]["exitCode"].as_i64() == Some(0) {
            continue;
        }
        return Some(if state["terminated"].is_object() {
            format!("Init:{}", terminated_word(&state["terminated"]))
        } else if let Some(r) = non_empty(&state["waiting"]["reason"]).filter(|r| *r != "PodInitializing") {
            format!("Init:{r}")
        } else {
            format!("Init:{i}/{total}")
        });
    }
    None
}

pub fn summary(o: &Value) -> Summary {
    let status = &o["status"];
    let mut reason = non_empty(&status["reason"]).or(non_empty(&status["phase"])).unwrap_or("Pending").to_string();
    let mut restarts = Restarts { count: 0, last: None };
    let mut ready = 0;
    let init = init_reason(o, &mut restarts);
    let initializing = init.is_some();
    if let Some(r) = init {
        reason = r;
    }
    if !initializing || condition_true(o, "Initialized") {
        let mut running = false;
        for c in list(&status["containerStatuses"]).iter().rev() {
            restarts.add(c);
            let state = &c["state"];
            if let Some(r) = non_empty(&state["waiting"]["reason"]) {
                reason = r.to_string();
            } else if state["terminated"].is_object() {
                reason = terminated_word(&state["terminated"]);
            } else if c["ready"] == true && state["running"].is_object() {
                running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && running {
            reason = if condition_true(o, "Ready") { "Running".into() } else { "NotReady".into() };
        }
    }
    let terminal = matches!(status["phase"].as_str(), Some("Succeeded" | "Failed"));
    if o["metadata"]["deletionTimestamp"].is_string() {
        if status["reason"] == "NodeLost" {
            reason = "Unknown".into();
        } else if !terminal {
            reason = "Terminating".into();
        }
    }
    Summary { ready, reason, restarts: restarts.render() }
}

/// `1/2` (gates whose condition is True / gates), or `<none>`.
pub fn readiness_gates(o: &Value) -> String {
    let gates = list(&o["spec"]["readinessGates"]);
    if gates.is_empty() {
        return "<none>".into();
    }
    let met = gates.iter().filter(|g| g["conditionType"].as_str().is_some_and(|t| condition_true(o, t))).count();
    format!("{met}/{}", gates.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(statuses: Value, ready: bool) -> Value {
        json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]},
               "status": {"phase": "Running", "containerStatuses": statuses,
                          "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    }

    #[test]
    fn crash_loops_and_restarts_show_as_on_a_real_cluster() {
        let finished = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() - 42).unwrap().to_string();
        let p = pod(
            json!([{"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                   {"name": "b", "ready": false, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": finished}}}]),
            false,
        );
        let s = summary(&p);
        assert_eq!((s.ready, s.reason.as_str(), s.restarts.as_str()), (1, "CrashLoopBackOff", "3 (42s ago)"));
    }

    #[test]
    fn running_but_not_ready_and_exit_codes() {
        let p = pod(
            json!([{"name": "a", "ready": false, "restartCount": 0, "state": {"running": {}}},
                   {"name": "b", "ready": false, "restartCount": 0, "state": {"running": {}}}]),
            false,
        );
        assert_eq!(summary(&p).reason, "Running", "the real printer says Running with 0/2 ready");
        let done = pod(
            json!([{"name": "a", "ready": true, "state": {"running": {}}},
                   {"name": "b", "ready": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]),
            false,
        );
        assert_eq!(summary(&done).reason, "NotReady");
        let killed = pod(json!([{"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]), false);
        assert_eq!(summary(&killed).reason, "Signal:9");
        let mut deleting = killed.clone();
        deleting["metadata"] = json!({"deletionTimestamp": "2020-01-01T00:00:00Z"});
        assert_eq!(summary(&deleting).reason, "Terminating");
    }

    #[test]
    fn init_containers_come_first() {
        let p = json!({"spec": {"initContainers": [{"name": "i"}, {"name": "j"}], "containers": [{"name": "a"}]},
                       "status": {"phase": "Pending", "initContainerStatuses": [
                           {"name": "i", "state": {"terminated": {"exitCode": 0}}},
                           {"name": "j", "state": {"running": {}}}]}});
        assert_eq!(summary(&p).reason, "Init:1/2");
    }
}
