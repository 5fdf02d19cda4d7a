//! Kubernetes access: generic (any kind, objects as JSON) and typed (any [`Object`], such as the
//! kinds of [`crate::objects`]), plus waiting for an object to satisfy a predicate by watch, with a
//! timeout and cancellation. Every object created through this module carries the ownership
//! labels (scenario, instance).

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::bindings::chaos::plugin::kube as wit;
pub use crate::bindings::chaos::plugin::kube::{PatchType, WatchEvent};
pub use crate::meta::{
    Kind, NAMESPACES, NODES, Object, PODS, REPLICATED_STORAGE_CLASSES, REPLICATED_VOLUME_ATTACHMENTS,
    REPLICATED_VOLUME_REPLICAS, REPLICATED_VOLUMES, STORAGE_API_VERSION,
};
use crate::{Duration, Error};

/// The kind as the host takes it.
fn wit_kind(kind: Kind) -> wit::ObjectKind {
    wit::ObjectKind { api_version: kind.api_version.to_string(), kind: kind.kind.to_string() }
}

/// Label and field selectors, in the API's text form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selectors {
    pub labels: Option<String>,
    pub fields: Option<String>,
}

impl Selectors {
    pub fn all() -> Self {
        Self::default()
    }
    pub fn labels(s: impl Into<String>) -> Self {
        Selectors { labels: Some(s.into()), fields: None }
    }
    pub fn fields(s: impl Into<String>) -> Self {
        Selectors { labels: None, fields: Some(s.into()) }
    }
    /// The one object with this name.
    pub fn name(name: &str) -> Self {
        Self::fields(format!("metadata.name={name}"))
    }

    fn wit(&self) -> wit::Selectors {
        wit::Selectors { label_selector: self.labels.clone(), field_selector: self.fields.clone() }
    }
}

/// The objects a plugin acts on, as its config names them: the `namespace` and an optional
/// `labelSelector` (every object of the namespace when absent). A plugin's config takes it in
/// with `#[serde(flatten)]`, next to its own parameters:
///
/// ```ignore
/// #[derive(serde::Deserialize)]
/// #[serde(rename_all = "camelCase", deny_unknown_fields)]
/// struct Config {
///     #[serde(flatten)]
///     pods: kube::Selection,
///     #[serde(default)]
///     percent: u32,
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selection {
    pub namespace: String,
    #[serde(default)]
    pub label_selector: String,
}

impl Selection {
    /// The selected objects of `kind` (the list's `items`).
    pub fn list(&self, kind: Kind) -> Result<Vec<Value>, Error> {
        list(kind, Some(&self.namespace), &Selectors::labels(self.label_selector.clone()))
    }
}

fn parse(text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::Other(format!("bad JSON from the host: {e}")))
}

pub fn get(kind: Kind, namespace: Option<&str>, name: &str) -> Result<Value, Error> {
    parse(&wit::get(&wit_kind(kind), namespace, name)?)
}

/// Like [`get`], but a missing object is `None`.
pub fn try_get(kind: Kind, namespace: Option<&str>, name: &str) -> Result<Option<Value>, Error> {
    match get(kind, namespace, name) {
        Ok(v) => Ok(Some(v)),
        Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The matching objects (the list's `items`).
pub fn list(kind: Kind, namespace: Option<&str>, sel: &Selectors) -> Result<Vec<Value>, Error> {
    let mut list = parse(&wit::list(&wit_kind(kind), namespace, &sel.wit())?)?;
    match list.get_mut("items").map(Value::take) {
        Some(Value::Array(items)) => Ok(items),
        Some(Value::Null) | None => Ok(Vec::new()),
        Some(other) => Err(Error::Other(format!("list items is not an array: {other}"))),
    }
}

/// Adds the ownership labels to `metadata.labels`.
pub fn add_ownership_labels(obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let meta = map.entry("metadata").or_insert_with(|| Value::Object(Default::default()));
    if !meta.is_object() {
        *meta = Value::Object(Default::default());
    }
    let labels = meta
        .as_object_mut()
        .map(|m| m.entry("labels").or_insert_with(|| Value::Object(Default::default())))
        .and_then(Value::as_object_mut);
    if let Some(labels) = labels {
        for (k, v) in crate::ownership_labels() {
            labels.insert(k.to_string(), Value::String(v));
        }
    }
}

/// Creates the object (with the ownership labels added); returns it as stored.
pub fn create(kind: Kind, namespace: Option<&str>, mut obj: Value) -> Result<Value, Error> {
    add_ownership_labels(&mut obj);
    parse(&wit::create(&wit_kind(kind), namespace, &obj.to_string())?)
}

pub fn delete(kind: Kind, namespace: Option<&str>, name: &str) -> Result<(), Error> {
    wit::delete(&wit_kind(kind), namespace, name)
}

/// Deletes the object; false when it was already gone.
pub fn delete_if_exists(kind: Kind, namespace: Option<&str>, name: &str) -> Result<bool, Error> {
    match wit::delete(&wit_kind(kind), namespace, name) {
        Ok(()) => Ok(true),
        Err(Error::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn patch(
    kind: Kind,
    namespace: Option<&str>,
    name: &str,
    patch_type: PatchType,
    patch: &Value,
) -> Result<Value, Error> {
    parse(&wit::patch(&wit_kind(kind), namespace, name, patch_type, &patch.to_string())?)
}

/// A watch stream (it relists by itself after disconnects or expired versions).
#[derive(Debug)]
pub struct Watch(wit::Watch);

impl Watch {
    /// The next event, or None when `timeout` passes first; `Err(Cancelled)` on stop.
    pub fn next(&self, timeout: Duration) -> Result<Option<WatchEvent>, Error> {
        self.0.next(timeout.as_millis())
    }
}

pub fn watch(kind: Kind, namespace: Option<&str>, sel: &Selectors) -> Result<Watch, Error> {
    Ok(Watch(wit::open_watch(&wit_kind(kind), namespace, &sel.wit())?))
}

/// Waits, by watch, until the object named `name` satisfies `pred` (called with `None` while
/// the object does not exist, so `|o| o.is_none()` waits until it is gone). Returns the object
/// as last seen; `Err(Timeout)` after `timeout`, `Err(Cancelled)` when the instance stops.
pub fn wait_for(
    kind: Kind,
    namespace: Option<&str>,
    name: &str,
    timeout: Duration,
    mut pred: impl FnMut(Option<&Value>) -> bool,
) -> Result<Option<Value>, Error> {
    let deadline = crate::now_ms().saturating_add(timeout.as_millis());
    let w = watch(kind, namespace, &Selectors::name(name))?;
    let named = |v: &Value| v.pointer("/metadata/name").and_then(Value::as_str) == Some(name);
    // Whether the object was seen since the last (re)list began: after `synced`, not seen means
    // it does not exist.
    let mut current: Option<Value> = None;
    loop {
        let now = crate::now_ms();
        if now >= deadline {
            return Err(Error::Timeout(format!("{kind} {name}: not in the expected state after {timeout}")));
        }
        match w.next(Duration::from_millis(deadline - now))? {
            None => {}
            Some(WatchEvent::Restarted) => current = None,
            Some(WatchEvent::Applied(text)) => {
                let obj = parse(&text)?;
                if named(&obj) {
                    if pred(Some(&obj)) {
                        return Ok(Some(obj));
                    }
                    current = Some(obj);
                }
            }
            Some(WatchEvent::Deleted(text)) => {
                let obj = parse(&text)?;
                if named(&obj) {
                    current = None;
                    if pred(None) {
                        return Ok(None);
                    }
                }
            }
            Some(WatchEvent::Synced) if current.is_none() && pred(None) => return Ok(None),
            Some(WatchEvent::Synced) => {}
        }
    }
}

fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, Error> {
    serde_json::from_value(v).map_err(|e| Error::Other(format!("unexpected object shape: {e}")))
}

pub fn get_as<T: Object>(namespace: Option<&str>, name: &str) -> Result<T, Error> {
    from_value(get(T::KIND, namespace, name)?)
}

pub fn try_get_as<T: Object>(namespace: Option<&str>, name: &str) -> Result<Option<T>, Error> {
    try_get(T::KIND, namespace, name)?.map(from_value).transpose()
}

pub fn list_as<T: Object>(namespace: Option<&str>, sel: &Selectors) -> Result<Vec<T>, Error> {
    list(T::KIND, namespace, sel)?.into_iter().map(from_value).collect()
}

/// Creates the object in its `metadata.namespace` (with the ownership labels added).
pub fn create_as<T: Object>(obj: &T) -> Result<T, Error> {
    let mut v = serde_json::to_value(obj).map_err(|e| Error::Invalid(e.to_string()))?;
    if let Some(map) = v.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(api_version_of(T::KIND)));
        map.insert("kind".into(), Value::String(T::KIND.kind.to_string()));
    }
    let namespace = obj.metadata().namespace.clone();
    from_value(create(T::KIND, namespace.as_deref(), v)?)
}

fn api_version_of(kind: Kind) -> String {
    kind.api_version.to_string()
}

pub fn delete_as<T: Object>(namespace: Option<&str>, name: &str) -> Result<bool, Error> {
    delete_if_exists(T::KIND, namespace, name)
}

/// [`wait_for`], typed.
pub fn wait_until<T: Object>(
    namespace: Option<&str>,
    name: &str,
    timeout: Duration,
    mut pred: impl FnMut(Option<&T>) -> bool,
) -> Result<Option<T>, Error> {
    let found = wait_for(T::KIND, namespace, name, timeout, |v| match v {
        None => pred(None),
        Some(v) => match serde_json::from_value::<T>(v.clone()) {
            Ok(t) => pred(Some(&t)),
            Err(_) => false,
        },
    })?;
    found.map(from_value).transpose()
}
