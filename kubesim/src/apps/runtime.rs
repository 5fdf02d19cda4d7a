//! The container runtime of the simulated cluster: which containers of which pods run, their
//! process tables, restarts, readiness and logs.
//!
//! The kubelet (the workloads simulation) starts a pod's containers with [`Runtime::start_pod`],
//! moves time on with [`Runtime::advance`] (restarts after back-off, liveness kills) and reads
//! [`Runtime::view`] to write the pod's status. The API reaches the same containers from the
//! other side: `exec` signals processes, the proxy asks whether an application answers, `log`
//! reads what a container printed. Every change bumps one version counter ([`Runtime::changes`]),
//! so a waiter re-checks its condition after any change and never misses one; the kubelet also
//! gets the pod's key on a channel, to write the new status at once.
//!
//! Rules, as the kubelet applies them:
//! - a container whose PID 1 ends is Exited; with restart policy `Always` (or `OnFailure` and a
//!   non-zero code) it starts again after a back-off of 10 s × 2^n story seconds (n: restarts
//!   since it last ran 10 minutes), capped at 5 minutes, and its `restartCount` grows;
//! - a container is Ready while running, unless it has a readiness probe and its PID 1 has been
//!   stopped for `periodSeconds × failureThreshold`; without a probe a stopped container stays
//!   Ready, as in Kubernetes;
//! - a liveness probe fails the same way, and then the kubelet kills the container (exit 137)
//!   and restarts it by the policy.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::images::App;
use super::process::{Delivery, Process, ProcessTable, Signal, SignalError};
use crate::error::{Error, Result, Target};

/// Milliseconds of real time since the runtime started.
pub type Millis = u64;

/// Lines kept per container instance; older ones are dropped (as log rotation would).
pub const LOG_LINES: usize = 1_000;
const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// A container that ran this long before exiting starts its back-off afresh.
const BACKOFF_RESET: Duration = Duration::from_secs(600);

/// A pod, by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
}

impl PodKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self { namespace: namespace.to_string(), name: name.to_string() }
    }
}

/// One line of a container's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// RFC 3339 with nanoseconds, as `kubectl logs --timestamps` prints.
    pub at: String,
    pub text: String,
}

/// A probe's timing (story time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub period: Duration,
    pub failure_threshold: u32,
}

impl Probe {
    /// Reads a container's `readinessProbe`/`livenessProbe` with Kubernetes' defaults.
    pub fn from_spec(probe: &Value) -> Option<Self> {
        if !probe.is_object() {
            return None;
        }
        let period = probe["periodSeconds"].as_u64().filter(|p| *p > 0).unwrap_or(10);
        let failure_threshold = probe["failureThreshold"].as_u64().filter(|t| *t > 0).unwrap_or(3);
        Some(Self {
            period: Duration::from_secs(period.min(3_600)),
            failure_threshold: failure_threshold.min(1_000) as u32,
        })
    }

    fn window(self) -> Duration {
        self.period * self.failure_threshold
    }
}

/// What a container is started from (read from the pod's spec).
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// `command` + `args`, if the pod gives them.
    pub command_line: Option<String>,
    pub ports: Vec<u16>,
    pub readiness: Option<Probe>,
    pub liveness: Option<Probe>,
}

impl ContainerSpec {
    /// The containers of a pod's spec (at most 16 are read).
    pub fn from_pod(pod: &Value) -> Vec<Self> {
        let Some(containers) = pod["spec"]["containers"].as_array() else { return Vec::new() };
        containers.iter().take(16).map(Self::from_container).collect()
    }

    fn from_container(c: &Value) -> Self {
        let words: Vec<&str> = ["command", "args"]
            .iter()
            .flat_map(|f| c[f].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        let ports = c["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["containerPort"].as_u64())
            .filter_map(|p| u16::try_from(p).ok())
            .collect();
        Self {
            name: c["name"].as_str().unwrap_or_default().to_string(),
            image: c["image"].as_str().unwrap_or_default().to_string(),
            command_line: (!words.is_empty()).then(|| words.join(" ")),
            ports,
            readiness: Probe::from_spec(&c["readinessProbe"]),
            liveness: Probe::from_spec(&c["livenessProbe"]),
        }
    }
}

/// When a container restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

/// A pod annotation (`"true"`): once its application's process ends, every restart crashes at
/// once (exit code 1), so the container stays in CrashLoopBackOff — an application that does
/// not come back, for tests of recovery. The pod stays (its controller does not replace it, as
/// with any crash loop). It may be set on a running pod.
pub const CRASH_KNOB: &str = "kubesim.dev/crash-on-restart";

/// Whether a pod's object sets [`CRASH_KNOB`].
pub fn crashes_on_restart(pod: &Value) -> bool {
    pod["metadata"]["annotations"][CRASH_KNOB].as_str() == Some("true")
}

impl RestartPolicy {
    pub fn from_pod(pod: &Value) -> Self {
        match pod["spec"]["restartPolicy"].as_str() {
            Some("OnFailure") => Self::OnFailure,
            Some("Never") => Self::Never,
            _ => Self::Always,
        }
    }

    fn restarts(self, exit_code: i32) -> bool {
        match self {
            Self::Always => true,
            Self::OnFailure => exit_code != 0,
            Self::Never => false,
        }
    }
}

/// A moment, in the runtime's clock and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub at: Millis,
    pub rfc3339: String,
}

/// How a container instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    pub exit_code: i32,
    /// `Error`, `Completed` — the kubelet's reasons.
    pub reason: &'static str,
    pub started: Stamp,
    pub finished: Stamp,
}

/// A container's state, as the kubelet reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Running {
        started: Stamp,
        ready: bool,
        stopped: bool,
    },
    /// Exited and waiting for its back-off to pass.
    BackOff {
        last: Termination,
        restart_at: Millis,
    },
    /// Exited for good (restart policy).
    Terminated {
        last: Termination,
    },
}

/// What the kubelet reads to write a container's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    pub restart_count: u32,
    pub state: ContainerState,
    /// The previous instance's end, once it restarted.
    pub last_termination: Option<Termination>,
}

/// What the proxy finds when it tries to reach an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// A container listens on the port and runs: it answers as this application.
    Serving { app: App },
    /// The container listening on the port is stopped: the connection is accepted, no answer
    /// comes until it is continued.
    Stopped,
    /// Nothing listens there (no such port, or the container is not running).
    Refused,
}

#[derive(Debug)]
struct Container {
    spec: ContainerSpec,
    app: App,
    restart_count: u32,
    /// Restarts since the container last ran [`BACKOFF_RESET`]; sets the next back-off.
    crash_streak: u32,
    phase: Phase,
    last_termination: Option<Termination>,
    log: VecDeque<LogLine>,
    previous_log: VecDeque<LogLine>,
}

#[derive(Debug)]
enum Phase {
    Running { table: ProcessTable, started: Stamp, stopped_since: Option<Millis> },
    Exited { last: Termination, restart_at: Option<Millis> },
}

#[derive(Debug)]
struct PodRt {
    uid: String,
    policy: RestartPolicy,
    /// Restarts crash at once ([`CRASH_KNOB`]).
    crash_on_restart: bool,
    containers: Vec<Container>,
    /// Grows with every change of the pod's containers, so that the kubelet re-reads only what
    /// changed.
    version: u64,
}

/// The runtime of every simulated pod. Shared by the kubelet and the API.
#[derive(Debug)]
pub struct Runtime {
    pods: Mutex<BTreeMap<PodKey, PodRt>>,
    start: Instant,
    speed: f64,
    version: watch::Sender<u64>,
    kubelet: mpsc::UnboundedSender<PodKey>,
}

impl Runtime {
    /// A runtime whose story time runs `speed` times faster than real time, and the channel on
    /// which it names pods whose containers changed by themselves (a signal from `exec`).
    pub fn new(speed: f64) -> (Self, mpsc::UnboundedReceiver<PodKey>) {
        let (kubelet, rx) = mpsc::unbounded_channel();
        let speed = if speed.is_finite() && speed > 0.0 { speed } else { 1.0 };
        let rt = Self {
            pods: Mutex::new(BTreeMap::new()),
            start: Instant::now(),
            speed,
            version: watch::Sender::new(0),
            kubelet,
        };
        (rt, rx)
    }

    /// Real milliseconds since the runtime started.
    pub fn now(&self) -> Millis {
        self.start.elapsed().as_millis() as Millis
    }

    /// The moment of the runtime's clock `at`, for timers.
    pub fn instant(&self, at: Millis) -> Instant {
        self.start + Duration::from_millis(at)
    }

    /// The real duration of a story duration.
    pub fn real_duration(&self, story: Duration) -> Duration {
        story.div_f64(self.speed)
    }

    fn after(&self, now: Millis, story: Duration) -> Millis {
        now + self.real_duration(story).as_millis() as Millis
    }

    fn stamp(&self, at: Millis) -> Stamp {
        Stamp { at, rfc3339: crate::store::now_rfc3339() }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<PodKey, PodRt>> {
        self.pods.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A counter that grows on every change of any container; `changed()` on it wakes waiters.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// Starts a pod's containers (once per pod uid; a pod of the same name with another uid is a
    /// new pod and starts afresh).
    pub fn start_pod(&self, key: &PodKey, uid: &str, policy: RestartPolicy, specs: Vec<ContainerSpec>) {
        let now = self.now();
        let mut pods = self.lock();
        if pods.get(key).is_some_and(|p| p.uid == uid) {
            return;
        }
        let containers = specs.into_iter().map(|spec| Container::start(spec, self.stamp(now))).collect();
        pods.insert(
            key.clone(),
            PodRt { uid: uid.to_string(), policy, crash_on_restart: false, containers, version: 0 },
        );
        drop(pods);
        self.bump();
    }

    /// Sets a running pod's [`CRASH_KNOB`] (from its next restart on).
    pub fn set_crash_on_restart(&self, key: &PodKey, crash: bool) {
        if let Some(pod) = self.lock().get_mut(key) {
            pod.crash_on_restart = crash;
        }
    }

    /// Forgets a pod (it was deleted): its processes are gone.
    pub fn remove_pod(&self, key: &PodKey) {
        if self.lock().remove(key).is_some() {
            self.bump();
        }
    }

    /// The pods the runtime runs: key, uid and the version of their containers.
    pub fn pods(&self) -> Vec<(PodKey, String, u64)> {
        self.lock().iter().map(|(k, p)| (k.clone(), p.uid.clone(), p.version)).collect()
    }

    /// The version of a pod's containers (it grows with every change).
    pub fn pods_version(&self, key: &PodKey) -> Option<u64> {
        self.lock().get(key).map(|p| p.version)
    }

    /// Moves a pod's containers on to `now`: restarts whose back-off passed, liveness kills.
    /// Returns when something will next change by itself.
    pub fn advance(&self, key: &PodKey) -> Option<Millis> {
        let now = self.now();
        let mut pods = self.lock();
        let pod = pods.get_mut(key)?;
        let (policy, crash) = (pod.policy, pod.crash_on_restart);
        let mut changed = false;
        let mut wake: Option<Millis> = None;
        for c in &mut pod.containers {
            let (did, next) = self.advance_container(c, policy, crash, now);
            changed |= did;
            wake = earliest(wake, next);
        }
        if changed {
            pod.version += 1;
        }
        drop(pods);
        if changed {
            self.bump();
        }
        wake
    }

    fn advance_container(
        &self,
        c: &mut Container,
        policy: RestartPolicy,
        crash: bool,
        now: Millis,
    ) -> (bool, Option<Millis>) {
        match &c.phase {
            Phase::Exited { restart_at: Some(at), .. } if *at <= now => {
                c.restart(self.stamp(now));
                if crash {
                    c.say("the application crashed on start (kubesim.dev/crash-on-restart)");
                    return (true, self.end(c, policy, 1, now));
                }
                (true, None)
            }
            Phase::Exited { restart_at, .. } => (false, *restart_at),
            Phase::Running { stopped_since: Some(since), .. } => {
                let Some(liveness) = c.spec.liveness else { return (false, self.readiness_wake(c, *since, now)) };
                let due = self.after(*since, liveness.window());
                if due > now {
                    return (false, earliest(Some(due), self.readiness_wake(c, *since, now)));
                }
                c.say("Liveness probe failed: the container does not answer; killing it");
                let wake = self.end(c, policy, 137, now);
                (true, wake)
            }
            Phase::Running { .. } => (false, None),
        }
    }

    fn readiness_wake(&self, c: &Container, stopped_since: Millis, now: Millis) -> Option<Millis> {
        let at = self.after(stopped_since, c.spec.readiness?.window());
        (at > now).then_some(at)
    }

    /// Ends a running container's instance; returns when it restarts, if it does.
    fn end(&self, c: &mut Container, policy: RestartPolicy, exit_code: i32, now: Millis) -> Option<Millis> {
        let Phase::Running { started, .. } = &c.phase else { return None };
        let started = started.clone();
        let ran = Duration::from_millis(now.saturating_sub(started.at)).mul_f64(self.speed);
        if ran >= BACKOFF_RESET {
            c.crash_streak = 0;
        }
        let reason = if exit_code == 0 { "Completed" } else { "Error" };
        let last = Termination { exit_code, reason, started, finished: self.stamp(now) };
        c.say(&format!("exited with code {exit_code}"));
        let restart_at = policy.restarts(exit_code).then(|| {
            let backoff = BACKOFF_START.saturating_mul(1 << c.crash_streak.min(8)).min(BACKOFF_CAP);
            c.crash_streak += 1;
            self.after(now, backoff)
        });
        c.phase = Phase::Exited { last, restart_at };
        restart_at
    }

    /// The kubelet's view of a pod's containers, and when it next changes by itself.
    pub fn view(&self, key: &PodKey) -> Option<(Vec<ContainerView>, Option<Millis>)> {
        let now = self.now();
        let pods = self.lock();
        let pod = pods.get(key)?;
        let mut wake = None;
        let views = pod
            .containers
            .iter()
            .map(|c| {
                let state = match &c.phase {
                    Phase::Running { started, stopped_since, .. } => {
                        let ready = match (stopped_since, c.spec.readiness) {
                            (Some(since), Some(probe)) => {
                                let due = self.after(*since, probe.window());
                                if due > now {
                                    wake = earliest(wake, Some(due));
                                }
                                due > now
                            }
                            _ => true,
                        };
                        ContainerState::Running { started: started.clone(), ready, stopped: stopped_since.is_some() }
                    }
                    Phase::Exited { last, restart_at: Some(at) } => {
                        wake = earliest(wake, Some(*at));
                        ContainerState::BackOff { last: last.clone(), restart_at: *at }
                    }
                    Phase::Exited { last, restart_at: None } => ContainerState::Terminated { last: last.clone() },
                };
                ContainerView {
                    name: c.spec.name.clone(),
                    image: c.spec.image.clone(),
                    restart_count: c.restart_count,
                    state,
                    last_termination: c.last_termination.clone(),
                }
            })
            .collect();
        Some((views, wake))
    }

    fn with_container<T>(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        f: impl FnOnce(&mut Container, RestartPolicy) -> Result<T>,
    ) -> Result<T> {
        let mut pods = self.lock();
        let rt =
            pods.get_mut(&PodKey::new(namespace, pod)).ok_or_else(|| Error::NotFound(Target::new("", "pods", pod)))?;
        let policy = rt.policy;
        let c = match container {
            None => rt.containers.first_mut(),
            Some(name) => rt.containers.iter_mut().find(|c| c.spec.name == name),
        };
        let c = c.ok_or_else(|| {
            Error::BadRequest(format!("container {} is not valid for pod {pod}", container.unwrap_or_default()))
        })?;
        f(c, policy)
    }

    /// The processes of a pod's container (`None`: its first container).
    pub fn processes(&self, namespace: &str, pod: &str, container: Option<&str>) -> Result<Vec<Process>> {
        self.with_container(namespace, pod, container, |c, _| match &c.phase {
            Phase::Running { table, .. } => Ok(table.processes().to_vec()),
            Phase::Exited { .. } => Err(not_running(&c.spec.name, pod)),
        })
    }

    /// Delivers a signal to a process of a running container; the inner result is the
    /// process-level outcome.
    pub fn signal(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        pid: u32,
        signal: Signal,
    ) -> Result<Result<Delivery, SignalError>> {
        let now = self.now();
        let outcome = self.with_container(namespace, pod, container, |c, policy| {
            let Phase::Running { table, stopped_since, .. } = &mut c.phase else {
                return Err(not_running(&c.spec.name, pod));
            };
            let delivery = match table.signal(pid, signal) {
                Ok(d) => d,
                Err(e) => return Ok(Err(e)),
            };
            match delivery {
                Delivery::Stopped if pid == 1 => *stopped_since = Some(now),
                Delivery::Continued if pid == 1 => *stopped_since = None,
                _ => {}
            }
            c.say(&format!("{signal} delivered to PID {pid}"));
            if let Delivery::ContainerExited { exit_code } = delivery {
                self.end(c, policy, exit_code, now);
            }
            Ok(Ok(delivery))
        })?;
        let key = PodKey::new(namespace, pod);
        if let Some(rt) = self.lock().get_mut(&key) {
            rt.version += 1;
        }
        self.bump();
        let _ = self.kubelet.send(key);
        Ok(outcome)
    }

    /// A container's log (its current or previous instance), oldest first.
    pub fn log(&self, namespace: &str, pod: &str, container: Option<&str>, previous: bool) -> Result<Vec<LogLine>> {
        self.with_container(namespace, pod, container, |c, _| {
            if previous && c.restart_count == 0 {
                return Err(Error::BadRequest(format!(
                    "previous terminated container \"{}\" in pod \"{pod}\" not found",
                    c.spec.name
                )));
            }
            let log = if previous { &c.previous_log } else { &c.log };
            Ok(log.iter().cloned().collect())
        })
    }

    /// What answers on a pod's port (`None`: the first container's first port).
    pub fn reach(&self, key: &PodKey, port: Option<u16>) -> Reach {
        let pods = self.lock();
        let Some(pod) = pods.get(key) else { return Reach::Refused };
        let listening = pod.containers.iter().find(|c| match port {
            None => true,
            Some(p) => c.listens_on(p),
        });
        match listening.map(|c| (c, &c.phase)) {
            Some((_, Phase::Running { table, .. })) if table.main_stopped() => Reach::Stopped,
            Some((c, Phase::Running { .. })) => Reach::Serving { app: c.app },
            _ => Reach::Refused,
        }
    }
}

impl Container {
    fn start(spec: ContainerSpec, started: Stamp) -> Self {
        let app = App::from_image(&spec.image);
        let phase = Self::running(app, &spec, started);
        let mut c = Self {
            app,
            spec,
            restart_count: 0,
            crash_streak: 0,
            phase,
            last_termination: None,
            log: VecDeque::new(),
            previous_log: VecDeque::new(),
        };
        c.say_started();
        c
    }

    fn running(app: App, spec: &ContainerSpec, started: Stamp) -> Phase {
        let commands = app.processes(&spec.image, spec.command_line.as_deref());
        Phase::Running { table: ProcessTable::start(&commands), started, stopped_since: None }
    }

    /// Starts the next instance of an exited container.
    fn restart(&mut self, started: Stamp) {
        if let Phase::Exited { last, .. } = &self.phase {
            self.last_termination = Some(last.clone());
        }
        self.restart_count += 1;
        self.previous_log = std::mem::take(&mut self.log);
        self.phase = Self::running(self.app, &self.spec, started);
        self.say_started();
    }

    fn say_started(&mut self) {
        let program = match &self.phase {
            Phase::Running { table, .. } => table.processes().first().map(|p| p.command.clone()).unwrap_or_default(),
            Phase::Exited { .. } => return,
        };
        self.say(&format!("started {program} (restart {})", self.restart_count));
    }

    /// Appends a line the simulation writes on the container's behalf (starts, signals, exits).
    fn say(&mut self, text: &str) {
        if self.log.len() >= LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(LogLine { at: jiff::Timestamp::now().to_string(), text: format!("[kubesim] {text}") });
    }

    fn listens_on(&self, port: u16) -> bool {
        self.spec.ports.contains(&port) || self.app.default_port() == Some(port)
    }
}

fn not_running(container: &str, pod: &str) -> Error {
    Error::BadRequest(format!("container {container} is not running in pod {pod}"))
}

fn earliest(a: Option<Millis>, b: Option<Millis>) -> Option<Millis> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A smoke-mini pod whose readiness probe gives up after 2 × 5 s; speed 10.
    fn runtime_with_pod(liveness: bool) -> (Runtime, PodKey) {
        let (rt, _rx) = Runtime::new(10.0);
        let mut container = json!({"name": "app", "image": "kubesim/smoke-mini",
            "readinessProbe": {"periodSeconds": 5, "failureThreshold": 2}});
        if liveness {
            container["livenessProbe"] = json!({"periodSeconds": 10, "failureThreshold": 3});
        }
        let pod = json!({"spec": {"containers": [container]}});
        let key = PodKey::new("default", "p-0");
        rt.start_pod(&key, "uid-1", RestartPolicy::from_pod(&pod), ContainerSpec::from_pod(&pod));
        (rt, key)
    }

    fn state(rt: &Runtime, key: &PodKey) -> ContainerState {
        rt.view(key).expect("the pod runs").0.remove(0).state
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_container_turns_unready_after_its_probe_window_and_back_when_continued() {
        let (rt, key) = runtime_with_pod(false);
        let before = rt.pods_version(&key).unwrap();
        rt.signal("default", "p-0", None, 1, Signal::Stop).unwrap().unwrap();
        assert!(rt.pods_version(&key).unwrap() > before, "the kubelet must see the change");
        assert!(matches!(state(&rt, &key), ContainerState::Running { ready: true, stopped: true, .. }));
        assert_eq!(rt.reach(&key, Some(8080)), Reach::Stopped);
        // 2 × 5 s of story at speed 10: 1 s.
        let wake = rt.view(&key).unwrap().1.expect("readiness changes by itself");
        assert_eq!(wake, rt.now() + 1_000);
        tokio::time::advance(Duration::from_millis(1_001)).await;
        assert!(matches!(state(&rt, &key), ContainerState::Running { ready: false, .. }));
        rt.signal("default", "p-0", None, 1, Signal::Cont).unwrap().unwrap();
        assert!(matches!(state(&rt, &key), ContainerState::Running { ready: true, stopped: false, .. }));
        assert!(matches!(rt.reach(&key, Some(8080)), Reach::Serving { app: App::SmokeMini, .. }));
        assert_eq!(rt.reach(&key, Some(9999)), Reach::Refused);
    }

    #[tokio::test(start_paused = true)]
    async fn a_killed_container_restarts_after_its_back_off_with_restart_count_plus_one() {
        let (rt, key) = runtime_with_pod(false);
        let out = rt.signal("default", "p-0", None, 1, Signal::Kill).unwrap();
        assert_eq!(out, Ok(Delivery::ContainerExited { exit_code: 137 }));
        let ContainerState::BackOff { last, restart_at } = state(&rt, &key) else { panic!("not in back-off") };
        assert_eq!((last.exit_code, last.reason), (137, "Error"));
        assert!(rt.processes("default", "p-0", None).is_err(), "an exited container has no processes");
        assert_eq!(rt.advance(&key), Some(restart_at));
        tokio::time::advance(Duration::from_millis(1_000)).await; // 10 s of story
        assert_eq!(rt.advance(&key), None);
        let view = rt.view(&key).unwrap().0.remove(0);
        assert_eq!(view.restart_count, 1);
        assert_eq!(view.last_termination.map(|t| t.exit_code), Some(137));
        let previous = rt.log("default", "p-0", None, true).unwrap();
        assert!(previous.iter().any(|l| l.text.contains("SIGKILL delivered to PID 1")), "{previous:?}");
        // The second crash waits twice as long.
        rt.signal("default", "p-0", None, 1, Signal::Term).unwrap().unwrap();
        let ContainerState::BackOff { restart_at, .. } = state(&rt, &key) else { panic!("not in back-off") };
        assert_eq!(restart_at, rt.now() + 2_000);
    }

    #[tokio::test(start_paused = true)]
    async fn the_crash_knob_keeps_a_killed_application_in_a_crash_loop() {
        let (rt, key) = runtime_with_pod(false);
        let pod = json!({"metadata": {"annotations": {CRASH_KNOB: "true"}}});
        rt.set_crash_on_restart(&key, crashes_on_restart(&pod));
        rt.signal("default", "p-0", None, 1, Signal::Kill).unwrap().unwrap();
        for _ in 0..3 {
            let ContainerState::BackOff { restart_at, .. } = state(&rt, &key) else { panic!("not in back-off") };
            tokio::time::advance(Duration::from_millis(restart_at - rt.now() + 1)).await;
            rt.advance(&key);
        }
        let ContainerState::BackOff { last, .. } = state(&rt, &key) else { panic!("not coming back") };
        assert_eq!(last.exit_code, 1, "it crashed on start");
        assert_eq!(rt.view(&key).unwrap().0[0].restart_count, 3);
        assert_eq!(rt.reach(&key, Some(8080)), Reach::Refused);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_liveness_probe_gets_the_container_killed_and_restarted() {
        let (rt, key) = runtime_with_pod(true);
        rt.signal("default", "p-0", None, 1, Signal::Stop).unwrap().unwrap();
        tokio::time::advance(Duration::from_millis(3_000)).await; // 3 × 10 s of story
        assert!(rt.advance(&key).is_some(), "the restart is scheduled");
        let ContainerState::BackOff { last, .. } = state(&rt, &key) else { panic!("not killed") };
        assert_eq!(last.exit_code, 137);
        assert!(
            rt.log("default", "p-0", None, false).unwrap().iter().any(|l| l.text.contains("Liveness probe failed"))
        );
    }

    #[test]
    fn never_restarting_pods_stay_terminated_and_unknown_containers_are_named() {
        let (rt, _rx) = Runtime::new(1.0);
        let pod = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "job", "image": "busybox"}]}});
        let key = PodKey::new("ns", "job-1");
        rt.start_pod(&key, "u", RestartPolicy::from_pod(&pod), ContainerSpec::from_pod(&pod));
        assert_eq!(rt.processes("ns", "job-1", None).unwrap()[0].command, "busybox");
        rt.signal("ns", "job-1", Some("job"), 1, Signal::Term).unwrap().unwrap();
        assert!(matches!(state(&rt, &key), ContainerState::Terminated { .. }));
        let err = rt.processes("ns", "job-1", Some("other")).unwrap_err();
        assert!(err.to_string().contains("container other is not valid for pod job-1"), "{err}");
        assert!(matches!(rt.processes("ns", "nope", None), Err(Error::NotFound(_))));
    }
}
