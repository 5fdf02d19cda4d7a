//! What a worker keeps of each instance record: [`LeanInstance`].
//!
//! A worker watches every instance record (an assignment usually comes after its instance's
//! record, and reading the record only then would cost etcd a read per run), so it holds
//! records of instances it will never run: at 100,000 instances and ten workers, nine in ten.
//! It keeps of each only what deciding about it and starting its run need, decoded straight
//! from the record's JSON (the rest is never allocated), with what is usually absent or empty
//! boxed behind one pointer. The budget: a worker that runs nothing grows by under 1 KiB per
//! instance record in all (map entries and allocator included), measured by `chaos-bench
//! pipeline` as `idle_worker_bytes_per_instance`; the record itself takes at most 176 bytes in
//! place, a third of the full record's (a test holds it there).
//!
//! Left out: `id` and `scenario` (the watch cache's key holds both), `workerSelector` (the
//! scheduler's), `failure` (the controller's).

use chaos_def::PluginRef;
use chaos_def::limits::PluginLimits;
use chaos_def::probe::ProbeBinding;
use chaos_def::records::{DesiredState, InstanceRole, TaskInstance, VolumeRef};
use jiff::Timestamp;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// An instance record as a worker keeps it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeanInstance {
    pub cluster: Box<str>,
    pub plugin: PluginRef,
    #[serde(default, deserialize_with = "boxed_unless_empty")]
    pub params: Option<Box<Map<String, Value>>>,
    pub seed: u64,
    #[serde(default)]
    pub volume: Option<Box<VolumeRef>>,
    pub desired: DesiredState,
    pub attempt: u32,
    pub created_at: Timestamp,
    #[serde(default)]
    pub role: InstanceRole,
    #[serde(default)]
    pub stop_reason: Option<Box<str>>,
    #[serde(default, deserialize_with = "boxed_limits")]
    pub limits: Option<Box<PluginLimits>>,
    #[serde(default)]
    pub cleanup: bool,
    #[serde(default)]
    pub probe: Option<Box<ProbeBinding>>,
}

impl LeanInstance {
    /// The full record of instance `id` of `scenario` for a run, with the fields a worker
    /// does not keep at their defaults.
    pub fn to_instance(&self, id: &str, scenario: &str) -> TaskInstance {
        TaskInstance {
            cluster: self.cluster.to_string(),
            params: self.params.as_deref().cloned().unwrap_or_default(),
            seed: self.seed,
            volume: self.volume.as_deref().cloned(),
            desired: self.desired,
            attempt: self.attempt,
            role: self.role,
            stop_reason: self.stop_reason.as_deref().map(str::to_string),
            limits: self.limits.as_deref().cloned().unwrap_or_default(),
            cleanup: self.cleanup,
            probe: self.probe.as_deref().cloned(),
            ..TaskInstance::new(id, scenario, self.plugin.clone(), self.created_at)
        }
    }
}

impl From<&TaskInstance> for LeanInstance {
    fn from(instance: &TaskInstance) -> Self {
        LeanInstance {
            cluster: instance.cluster.as_str().into(),
            plugin: instance.plugin.clone(),
            params: (!instance.params.is_empty()).then(|| Box::new(instance.params.clone())),
            seed: instance.seed,
            volume: instance.volume.clone().map(Box::new),
            desired: instance.desired,
            attempt: instance.attempt,
            created_at: instance.created_at,
            role: instance.role,
            stop_reason: instance.stop_reason.as_deref().map(Into::into),
            limits: (!instance.limits.is_empty()).then(|| Box::new(instance.limits.clone())),
            cleanup: instance.cleanup,
            probe: instance.probe.clone().map(Box::new),
        }
    }
}

fn boxed_unless_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<Map<String, Value>>>, D::Error> {
    let map = Map::deserialize(d)?;
    Ok((!map.is_empty()).then(|| Box::new(map)))
}

fn boxed_limits<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<PluginLimits>>, D::Error> {
    let limits = PluginLimits::deserialize(d)?;
    Ok((!limits.is_empty()).then(|| Box::new(limits)))
}

#[cfg(test)]
mod tests {
    use chaos_def::store::Versioned;

    use super::*;

    fn full() -> TaskInstance {
        let mut params = Map::new();
        params.insert("replicas".into(), 3.into());
        TaskInstance {
            cluster: "east".into(),
            params,
            seed: 42,
            volume: Some(VolumeRef { index: 2, name: "rv-2".into(), ends_at: Timestamp::UNIX_EPOCH }),
            desired: DesiredState::Stop,
            attempt: 3,
            role: InstanceRole::VolumeMain,
            stop_reason: Some("lifetime over".into()),
            cleanup: true,
            probe: Some(ProbeBinding { group: "g".into(), probe: "p".into(), interval_ms: 1000, timeout_ms: 500 }),
            ..TaskInstance::new("s-0001", "s", "noop".parse().unwrap(), Timestamp::UNIX_EPOCH)
        }
    }

    #[test]
    fn a_record_decoded_lean_gives_back_everything_a_run_uses() {
        for instance in [full(), TaskInstance::new("s-0002", "s", "noop".parse().unwrap(), Timestamp::UNIX_EPOCH)] {
            let json = serde_json::to_vec(&instance).unwrap();
            let lean: LeanInstance = serde_json::from_slice(&json).unwrap();
            assert_eq!(lean, LeanInstance::from(&instance));
            assert_eq!(lean.to_instance(&instance.id, &instance.scenario), instance);
        }
    }

    #[test]
    fn what_a_worker_does_not_use_is_not_kept() {
        let instance = TaskInstance {
            worker_selector: [("zone".to_string(), "a".to_string())].into(),
            failure: Some("retries exhausted".into()),
            ..full()
        };
        let lean: LeanInstance = serde_json::from_slice(&serde_json::to_vec(&instance).unwrap()).unwrap();
        let back = lean.to_instance(&instance.id, &instance.scenario);
        assert!(back.worker_selector.is_empty() && back.failure.is_none());
    }

    #[test]
    fn a_kept_record_stays_small_in_place() {
        // What a watch cache holds per record besides its key; the budget in the module doc.
        let size = std::mem::size_of::<Versioned<LeanInstance>>();
        assert!(size <= 176, "{size} bytes");
        assert!(size * 3 < std::mem::size_of::<Versioned<TaskInstance>>(), "no leaner than the full record");
    }
}
