//! The plugins' configs, checked before anything happens: the controller passes a plugin's
//! `params` (def's built-in types, checked again here with def's own rules) plus `"volume"` for
//! the per-volume plugins; volume-main gets the volume itself.

use chaos_def::builtin::{
    AttacherParams, BuiltinPlugin, CheckerParams, PodDestroyerParams, ProcessSignalParams, ReplicaChurnParams,
    ResizerParams, validate_params,
};
use chaos_def::{Quantity, Range};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// `volume-main`'s config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeMainConfig {
    pub name: String,
    pub storage_class: String,
    pub size: Quantity,
    #[serde(default)]
    pub initial_attachments: u32,
}

/// A per-volume plugin's config: the volume and the typed params.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeConfig<P> {
    pub volume: String,
    pub params: P,
}

fn object(config: &str) -> Result<Map<String, Value>, String> {
    let text = if config.trim().is_empty() { "{}" } else { config };
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("config must be a JSON object, not {other}")),
        Err(e) => Err(format!("config is not valid JSON: {e}")),
    }
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    chaos_def::scenario::check_dns_label(name).map_err(|why| format!("{what} {name:?} is not a valid name: {why}"))
}

fn typed<P: DeserializeOwned>(plugin: BuiltinPlugin, params: Map<String, Value>) -> Result<P, String> {
    let errors = validate_params(plugin, &params, "config", None);
    if !errors.is_empty() {
        let text: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.path, e.message)).collect();
        return Err(text.join("; "));
    }
    serde_json::from_value(Value::Object(params)).map_err(|e| format!("config: {e}"))
}

/// A per-volume plugin's config: `"volume"` (or, when absent, the instance's volume) plus params.
pub fn volume_plugin<P: DeserializeOwned>(
    plugin: BuiltinPlugin,
    config: &str,
    instance_volume: Option<&str>,
) -> Result<VolumeConfig<P>, String> {
    let mut map = object(config)?;
    let volume = match map.remove("volume") {
        Some(Value::String(v)) => v,
        Some(other) => return Err(format!("config.volume must be a string, not {other}")),
        None => instance_volume
            .map(str::to_string)
            .ok_or_else(|| "config.volume is missing (and the instance has no volume)".to_string())?,
    };
    check_name("config.volume", &volume)?;
    Ok(VolumeConfig { volume, params: typed(plugin, map)? })
}

pub fn checker(config: &str, volume: Option<&str>) -> Result<VolumeConfig<CheckerParams>, String> {
    volume_plugin(BuiltinPlugin::VolumeChecker, config, volume)
}

pub fn attacher(config: &str, volume: Option<&str>) -> Result<VolumeConfig<AttacherParams>, String> {
    volume_plugin(BuiltinPlugin::VolumeAttacher, config, volume)
}

pub fn resizer(config: &str, volume: Option<&str>) -> Result<VolumeConfig<ResizerParams>, String> {
    volume_plugin(BuiltinPlugin::VolumeResizer, config, volume)
}

pub fn replica_destroyer(config: &str, volume: Option<&str>) -> Result<VolumeConfig<ReplicaChurnParams>, String> {
    volume_plugin(BuiltinPlugin::VolumeReplicaDestroyer, config, volume)
}

pub fn replica_creator(config: &str, volume: Option<&str>) -> Result<VolumeConfig<ReplicaChurnParams>, String> {
    volume_plugin(BuiltinPlugin::VolumeReplicaCreator, config, volume)
}

pub fn pod_destroyer(config: &str) -> Result<PodDestroyerParams, String> {
    typed(BuiltinPlugin::PodDestroyer, object(config)?)
}

pub fn process_signal(config: &str) -> Result<ProcessSignalParams, String> {
    typed(BuiltinPlugin::ProcessSignal, object(config)?)
}

pub fn volume_main(config: &str) -> Result<VolumeMainConfig, String> {
    let map = object(config)?;
    let cfg: VolumeMainConfig = serde_json::from_value(Value::Object(map)).map_err(|e| format!("config: {e}"))?;
    check_name("config.name", &cfg.name)?;
    if cfg.storage_class.trim().is_empty() {
        return Err("config.storageClass must name a ReplicatedStorageClass".into());
    }
    if cfg.size.bytes() == 0 {
        return Err("config.size must be larger than 0".into());
    }
    if cfg.initial_attachments > 2 {
        return Err(format!(
            "config.initialAttachments is {}: a volume attaches to at most 2 nodes",
            cfg.initial_attachments
        ));
    }
    Ok(cfg)
}

/// A uniform duration in `range` (milliseconds).
pub fn draw_ms(range: &Range<chaos_def::Duration>, rng: &mut impl crate::Random) -> u64 {
    rng.range(range.min.as_millis(), range.max.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_volume_configs_take_the_volume_and_checked_params() {
        let c = attacher(r#"{"volume":"mgt-1","period":{"min":"1s","max":"2s"}}"#, None).unwrap();
        assert_eq!(c.volume, "mgt-1");
        assert_eq!(c.params.period.max.as_millis(), 2000);
        let c = attacher("{}", Some("from-info")).unwrap();
        assert_eq!((c.volume.as_str(), c.params.period.min.as_millis()), ("from-info", 30_000));
        let e = attacher(r#"{"volume":"v","period":{"min":"5s","max":"2s"}}"#, None).unwrap_err();
        assert!(e.contains("config.period.min") && e.contains("greater than max"), "{e}");
        let e = attacher(r#"{"volume":"v","perod":"1s"}"#, None).unwrap_err();
        assert!(e.contains("perod"), "{e}");
        let e = attacher("{}", None).unwrap_err();
        assert!(e.contains("config.volume is missing"), "{e}");
        let e = replica_creator(r#"{"volume":"Bad_Name"}"#, None).unwrap_err();
        assert!(e.contains("config.volume"), "{e}");
        let e = resizer(r#"{"volume":"v"}"#, None).unwrap_err();
        assert!(e.contains("maxSize"), "{e}");
        assert!(checker(r#"{"volume":"v","x":1}"#, None).is_err());
        assert!(checker(r#"[]"#, None).unwrap_err().contains("JSON object"));
    }

    #[test]
    fn pod_destroyer_and_volume_main_configs() {
        let p = pod_destroyer(
            r#"{"namespace":"d8-sds-replicated-volume","labelSelector":"app=agent","pods":{"min":1,"max":2}}"#,
        )
        .unwrap();
        assert_eq!(p.pods.max, 2);
        assert!(pod_destroyer(r#"{"namespace":"ns","labelSelector":" "}"#).unwrap_err().contains("labelSelector"));
        let t = pod_destroyer(r#"{"target":{"namespaces":["ns"],"mode":"fixed-percent","value":50}}"#).unwrap();
        assert_eq!(t.round_target(9), t.target.clone().unwrap(), "a target decides the round alone");
        let old = p.round_target(2);
        assert_eq!(
            (old.namespaces, old.label_selector.as_deref(), old.value),
            (vec!["d8-sds-replicated-volume".to_string()], Some("app=agent"), Some(2))
        );
        let both = pod_destroyer(r#"{"namespace":"ns","labelSelector":"a=b","target":{"namespaces":["ns"]}}"#);
        assert!(both.unwrap_err().contains("config.target"));
        let v =
            volume_main(r#"{"name":"mgt-1","storageClass":"rsc-a","size":"100Mi","initialAttachments":2}"#).unwrap();
        assert_eq!((v.size.bytes(), v.initial_attachments), (100 << 20, 2));
        let e = volume_main(r#"{"name":"mgt-1","storageClass":"rsc-a","size":"100Mi","initialAttachments":3}"#)
            .unwrap_err();
        assert!(e.contains("at most 2"), "{e}");
        assert!(volume_main(r#"{"name":"mgt-1","storageClass":"rsc-a"}"#).unwrap_err().contains("size"));
        assert!(volume_main(r#"{"name":"mgt-1","storageClass":"rsc-a","size":"lots"}"#).is_err());
    }
}
