//! `probe`: samples one probe of `spec.probes` every `interval` and tells the host what it saw
//! (`probe::sample`); the worker turns the samples into 30-second availability episodes. The
//! controller starts one instance per vantage point, with the probe's spec as its config.
//!
//! What counts as what:
//! - `http`: up when the answer's status is expected and the jq filter (if any) yields `true`;
//!   down on any other answer, a refused connection or a timeout; unknown when the host refuses
//!   the call itself (its limits, its capabilities) — the probe could not ask.
//! - `kube`: up when every matching object has the condition (or enough pods are Ready); down
//!   when none matches or one lacks it; unknown when the API server does not answer (it is not
//!   what this probe measures).
//! - `controlPlane`: up when the API calls succeed; down otherwise — the API is what it measures.
//!
//! What a probe says about an answer is its status and whether the filter held, never the body:
//! the live state is read by every viewer.
//!
//! The worker gives each instance only what its kind needs (the capabilities below are the
//! most any probe gets). `namespace` and `basic-functionality` create objects, labelled with the
//! scenario and instance like everything plugins create, and delete what an earlier run left.

use chaos_def::jq;
use chaos_def::probe::{ControlPlaneCheck, HttpProbe, KubeProbe, ProbeSpec};
use chaos_plugin_sdk::bindings::chaos::plugin::kube as wit_kube;
use chaos_plugin_sdk::http::{self, Target};
use chaos_plugin_sdk::kube::{self, Selectors};
use chaos_plugin_sdk::probe::{self, State};
use chaos_plugin_sdk::{self as sdk, Error, LABEL_INSTANCE, log};
use serde_json::{Value, json};

sdk::capabilities!(
    r#"{"rules":[
        {"resources":["services","pods"],"verbs":["proxy"],"namespaces":["*"]},
        {"resources":["*"],"verbs":["get","list"],"namespaces":["*"]},
        {"resources":["namespaces"],"verbs":["get","list","create","delete"]},
        {"resources":["configmaps"],"verbs":["get","list","create","delete"],"namespaces":["default"]}
    ]}"#
);

/// What one check found.
type Outcome = (State, String);

struct Probe;

impl sdk::Guest for Probe {
    fn run(config: String) -> Result<String, Error> {
        let spec: ProbeSpec = sdk::parse_config(&config)?;
        let check = Check::new(&spec)?;
        check.sweep();
        let interval = spec.interval.as_millis();
        let (mut up, mut down, mut unknown) = (0i64, 0i64, 0i64);
        let mut last: Option<State> = None;
        while !sdk::cancelled() {
            let started = sdk::now_ms();
            let (state, detail) = check.run();
            probe::sample(state, &detail);
            match state {
                State::Up => up += 1,
                State::Down => down += 1,
                State::Unknown => unknown += 1,
            }
            // The instance's status changes only when the state does: a report a second per
            // probe would cost etcd a write a second (the samples themselves go to the
            // availability accounting, a page a minute).
            if last != Some(state) {
                last = Some(state);
                sdk::report(&[("up", up), ("down", down), ("unknown", unknown)], &json!({"state": detail}));
            }
            let spent = sdk::now_ms().saturating_sub(started);
            if !sdk::sleep_ms(interval.saturating_sub(spent)) {
                break;
            }
        }
        check.sweep();
        sdk::summary(&json!({"probe": spec.name, "group": spec.group, "up": up, "down": down, "unknown": unknown}))
    }
}

sdk::export!(Probe);

/// One probe's check, prepared once.
struct Check<'a> {
    spec: &'a ProbeSpec,
    filter: Option<jq::Filter>,
    timeout_ms: u64,
    instance: String,
}

impl<'a> Check<'a> {
    fn new(spec: &'a ProbeSpec) -> Result<Self, Error> {
        let filter = match spec.http.as_ref().and_then(|h| h.jq.as_deref()) {
            Some(code) => Some(jq::compile(code).map_err(Error::invalid)?),
            None => None,
        };
        Ok(Check { spec, filter, timeout_ms: spec.timeout().as_millis(), instance: sdk::info().instance })
    }

    fn run(&self) -> Outcome {
        if let Some(h) = &self.spec.http {
            self.http(h)
        } else if let Some(k) = &self.spec.kube {
            kube_check(k)
        } else if let Some(c) = self.spec.control_plane {
            self.control_plane(c)
        } else {
            (State::Unknown, "a volumes probe is sampled by the volume's checker".into())
        }
    }

    fn http(&self, h: &HttpProbe) -> Outcome {
        let target = match (&h.service, &h.pod, &h.url) {
            (Some(t), _, _) => Target::Service(http::proxy_target(&t.namespace, &t.name, t.port.as_ref().map(|p| p.to_string()))),
            (_, Some(t), _) => Target::Pod(http::proxy_target(&t.namespace, &t.name, t.port.as_ref().map(|p| p.to_string()))),
            (_, _, Some(url)) => Target::Url(url.clone()),
            _ => return (State::Unknown, "no target".into()),
        };
        match http::send(h.method.as_str(), target, &h.path, self.timeout_ms) {
            Ok(answer) if !h.expect_status.contains(&answer.status) => {
                (State::Down, format!("answered {}", answer.status))
            }
            Ok(answer) => match &self.filter {
                None => (State::Up, format!("answered {}", answer.status)),
                Some(_) if answer.truncated => (State::Down, "the body is too large to filter".into()),
                Some(filter) => match filter.test(&answer.body) {
                    Ok(true) => (State::Up, format!("answered {}, the filter holds", answer.status)),
                    Ok(false) => (State::Down, format!("answered {}, the filter does not hold", answer.status)),
                    Err(why) => (State::Down, why),
                },
            },
            Err(e @ (Error::Forbidden(_) | Error::Invalid(_) | Error::Cancelled)) => (State::Unknown, e.describe()),
            Err(e) => (State::Down, e.describe()),
        }
    }

    fn control_plane(&self, check: ControlPlaneCheck) -> Outcome {
        let result = match check {
            ControlPlaneCheck::Access => kube::get(kube::NAMESPACES, None, "default").map(|_| ()),
            ControlPlaneCheck::Namespace => self.round_trip(kube::NAMESPACES, None),
            ControlPlaneCheck::BasicFunctionality => self.round_trip(CONFIG_MAPS, Some("default")),
        };
        match result {
            Ok(()) => (State::Up, "the API answered".into()),
            Err(Error::Cancelled) => (State::Unknown, "stopping".into()),
            Err(e) => (State::Down, e.describe()),
        }
    }

    /// Creates an object, reads it back and deletes it.
    fn round_trip(&self, kind: kube::Kind, namespace: Option<&str>) -> Result<(), Error> {
        let name = format!("chaos-probe-{}", sdk::rand::name_suffix(8));
        let body = json!({"apiVersion": kind.api_version, "kind": kind.kind, "metadata": {"name": name}});
        kube::create(kind, namespace, body)?;
        let read = kube::get(kind, namespace, &name).map(|_| ());
        let deleted = kube::delete(kind, namespace, &name);
        read.and(deleted)
    }

    /// Deletes what an earlier run of this instance created and did not delete (it died between
    /// the create and the delete).
    fn sweep(&self) {
        let (kind, namespace) = match self.spec.control_plane {
            Some(ControlPlaneCheck::Namespace) => (kube::NAMESPACES, None),
            Some(ControlPlaneCheck::BasicFunctionality) => (CONFIG_MAPS, Some("default")),
            _ => return,
        };
        let selector = Selectors::labels(format!("{LABEL_INSTANCE}={}", self.instance));
        let Ok(left) = kube::list(kind, namespace, &selector) else { return };
        for object in left {
            if let Some(name) = object.pointer("/metadata/name").and_then(Value::as_str) {
                if let Err(e) = kube::delete_if_exists(kind, namespace, name) {
                    log::warn("could not delete what an earlier run left", &[("name", name), ("error", &e.describe())]);
                }
            }
        }
    }
}

const CONFIG_MAPS: kube::Kind = kube::Kind::new("v1", "ConfigMap");

fn kube_check(k: &KubeProbe) -> Outcome {
    let kind = wit_kube::ObjectKind { api_version: k.api_version.clone(), kind: k.kind.clone() };
    let namespace = k.namespace.as_deref();
    let objects = match (&k.name, &k.label_selector) {
        (Some(name), _) => match wit_kube::get(&kind, namespace, name) {
            Ok(text) => serde_json::from_str::<Value>(&text).map(|o| vec![o]).map_err(|e| e.to_string()),
            Err(Error::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e.describe()),
        },
        (None, selector) => {
            let sel = wit_kube::Selectors { label_selector: selector.clone(), field_selector: None };
            match wit_kube::list(&kind, namespace, &sel) {
                Ok(text) => serde_json::from_str::<Value>(&text)
                    .map(|l| l["items"].as_array().cloned().unwrap_or_default())
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.describe()),
            }
        }
    };
    let objects = match objects {
        Ok(objects) => objects,
        Err(why) => return (State::Unknown, why),
    };
    if let Some(min) = k.min_ready_pods {
        let ready = objects.iter().filter(|pod| condition_is(pod, "Ready", "True")).count();
        let state = if ready >= min as usize { State::Up } else { State::Down };
        return (state, format!("{ready} of {} pods Ready, {min} wanted", objects.len()));
    }
    let Some(condition) = &k.condition else { return (State::Unknown, "no check".into()) };
    if objects.is_empty() {
        return (State::Down, format!("no {} matches", k.kind));
    }
    let failing: Vec<&str> = objects
        .iter()
        .filter(|o| !condition_is(o, &condition.kind, &condition.status))
        .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
        .collect();
    if failing.is_empty() {
        (State::Up, format!("{} is {} on {} objects", condition.kind, condition.status, objects.len()))
    } else {
        (State::Down, format!("{} is not {} on {}", condition.kind, condition.status, failing.join(", ")))
    }
}

fn condition_is(object: &Value, kind: &str, status: &str) -> bool {
    object["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"].as_str() == Some(kind) && c["status"].as_str() == Some(status)))
}
