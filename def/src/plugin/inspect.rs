//! Checks that a file is a plugin: a valid component whose imports the worker provides (the
//! `chaos:plugin` interfaces at a compatible version, WASI) and which exports `run`. Reads its
//! capabilities on the way. Pure: bytes in, verdict out.

use sha2::{Digest, Sha256};
use wasmparser::{Parser, Payload, Validator, WasmFeatures};

use super::{Capabilities, RUN_EXPORT, WIT_INTERFACES, WIT_PACKAGE, WIT_VERSION};

/// What a plugin file is, once it passed [`inspect`].
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// sha256 of the bytes, lowercase hex.
    pub digest: String,
    pub size: u64,
    /// `None`: the plugin declared none (it may make no Kubernetes call).
    pub capabilities: Option<Capabilities>,
    /// The `chaos:plugin` version it was built against (`0.1.0`).
    pub interface_version: String,
}

/// Why a file is not a plugin this build can run. The messages say what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginFileError {
    #[error("not a WebAssembly file (it does not start with \\0asm)")]
    NotWasm,
    #[error(
        "a core WebAssembly module, not a component: build the plugin for the wasm32-wasip2 target \
         (cargo build --release --target wasm32-wasip2), which makes a component"
    )]
    CoreModule,
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
    #[error(
        "a component of a different world: {0}; a plugin is a component of the world \
         {WIT_PACKAGE}/plugin (built with the chaos plugin SDK)"
    )]
    OtherWorld(String),
    #[error("built against {WIT_PACKAGE}@{found}, but this build serves {WIT_PACKAGE}@{serves}: {advice}")]
    IncompatibleVersion { found: String, serves: String, advice: &'static str },
    #[error("its capabilities (custom section chaos:capabilities) are malformed: {0}")]
    Capabilities(String),
}

/// sha256 of `bytes`, lowercase hex (the digest plugins are stored and named by).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `bytes` is a plugin and says what it is.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, PluginFileError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(PluginFileError::NotWasm);
    }
    if Parser::is_core_wasm(bytes) {
        return Err(PluginFileError::CoreModule);
    }
    if !Parser::is_component(bytes) {
        return Err(PluginFileError::Invalid("unknown WebAssembly encoding version".into()));
    }
    Validator::new_with_features(WasmFeatures::default())
        .validate_all(bytes)
        .map_err(|e| PluginFileError::Invalid(e.to_string()))?;

    // The outer component's own imports and exports; nested modules and components have theirs.
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| PluginFileError::Invalid(e.to_string()))? {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(|e| PluginFileError::Invalid(e.to_string()))?;
                    // Types the world uses (`use types.{error}`) are imported by name too; they
                    // need nothing from the host.
                    if !matches!(import.ty, wasmparser::ComponentTypeRef::Type(_)) {
                        imports.push(import.name.name.to_string());
                    }
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export = export.map_err(|e| PluginFileError::Invalid(e.to_string()))?;
                    exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    let interface_version = check_world(&imports, &exports)?;
    let capabilities = Capabilities::read(bytes).map_err(PluginFileError::Capabilities)?;
    Ok(Inspection { digest: sha256_hex(bytes), size: bytes.len() as u64, capabilities, interface_version })
}

/// The world check on the outer names: returns the `chaos:plugin` version imported (the host's
/// own when the plugin imports none of its interfaces).
fn check_world(imports: &[String], exports: &[String]) -> Result<String, PluginFileError> {
    if !exports.iter().any(|e| e == RUN_EXPORT) {
        let shown = if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") };
        return Err(PluginFileError::OtherWorld(format!("it exports {shown}, not the function {RUN_EXPORT}")));
    }
    let (major, minor, patch) = WIT_VERSION;
    let serves = format!("{major}.{minor}.{patch}");
    let mut found_version: Option<String> = None;
    for name in imports {
        // `namespace:package/interface@version`
        let (path, version) = name.split_once('@').unwrap_or((name, ""));
        let Some((package, interface)) = path.split_once('/') else {
            return Err(PluginFileError::OtherWorld(format!("it imports {name}, which no worker provides")));
        };
        if package == WIT_PACKAGE {
            if !WIT_INTERFACES.contains(&interface) {
                return Err(PluginFileError::OtherWorld(format!(
                    "it imports {name}, an interface {WIT_PACKAGE} does not have"
                )));
            }
            let parts: Vec<u64> = version.split(['.', '-', '+']).take(3).filter_map(|p| p.parse().ok()).collect();
            let found = match parts[..] {
                [a, b, c] => Some((a, b, c)),
                _ => None,
            };
            // Semver, where for 0.x the minor number is the breaking one; a newer patch (or
            // minor, past 1.0) may use what this build lacks.
            let compatible = found.is_some_and(|(a, b, c)| {
                a == major && if major == 0 { b == minor && c <= patch } else { (b, c) <= (minor, patch) }
            });
            if !compatible {
                let advice = if found > Some(WIT_VERSION) {
                    "it needs a newer worker and apiserver"
                } else {
                    "rebuild it with this release's SDK"
                };
                return Err(PluginFileError::IncompatibleVersion {
                    found: version.to_string(),
                    serves: serves.clone(),
                    advice,
                });
            }
            found_version = Some(version.to_string());
        } else if !package.starts_with("wasi:") {
            return Err(PluginFileError::OtherWorld(format!("it imports {name}, which no worker provides")));
        }
    }
    Ok(found_version.unwrap_or(serves))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_plugin_world_passes() {
        let imports = names(&["wasi:io/poll@0.2.6", "chaos:plugin/types@0.1.0", "chaos:plugin/host@0.1.0"]);
        assert_eq!(check_world(&imports, &names(&["run"])), Ok("0.1.0".to_string()));
        assert_eq!(check_world(&[], &names(&["run"])), Ok("0.1.2".to_string()));
        // A plugin built against 0.1.1 that uses the probe interfaces.
        let probe = names(&["chaos:plugin/host@0.1.1", "chaos:plugin/http@0.1.1", "chaos:plugin/probe@0.1.1"]);
        assert_eq!(check_world(&probe, &names(&["run"])), Ok("0.1.1".to_string()));
        // A plugin built against 0.1.2 that runs commands in containers.
        let exec = names(&["chaos:plugin/host@0.1.2", "chaos:plugin/exec@0.1.2"]);
        assert_eq!(check_world(&exec, &names(&["run"])), Ok("0.1.2".to_string()));
        // 0.1.3 may use what this build lacks.
        assert!(check_world(&names(&["chaos:plugin/host@0.1.3"]), &names(&["run"])).is_err());
    }

    #[test]
    fn other_worlds_and_versions_are_named() {
        let command = check_world(&names(&["wasi:cli/stdout@0.2.6"]), &names(&["wasi:cli/run@0.2.6"]));
        assert_eq!(
            command.unwrap_err().to_string(),
            "a component of a different world: it exports wasi:cli/run@0.2.6, not the function run; a plugin \
             is a component of the world chaos:plugin/plugin (built with the chaos plugin SDK)"
        );
        let foreign = check_world(&names(&["acme:db/query@1.0.0"]), &names(&["run"])).unwrap_err();
        assert!(foreign.to_string().contains("it imports acme:db/query@1.0.0, which no worker provides"), "{foreign}");
        let newer = check_world(&names(&["chaos:plugin/host@0.2.0"]), &names(&["run"])).unwrap_err();
        assert_eq!(
            newer.to_string(),
            "built against chaos:plugin@0.2.0, but this build serves chaos:plugin@0.1.2: it needs a newer worker \
             and apiserver"
        );
        let unknown = check_world(&names(&["chaos:plugin/disk@0.1.0"]), &names(&["run"])).unwrap_err();
        assert!(unknown.to_string().contains("an interface chaos:plugin does not have"), "{unknown}");
    }

    #[test]
    fn files_that_are_not_components_are_told_apart() {
        assert_eq!(inspect(b"hello"), Err(PluginFileError::NotWasm));
        // The smallest core module: magic and version 1.
        assert_eq!(inspect(b"\0asm\x01\0\0\0"), Err(PluginFileError::CoreModule));
        // The smallest component (magic, version 0xd, layer 1) exports nothing.
        let empty = inspect(b"\0asm\x0d\0\x01\0").unwrap_err();
        assert!(matches!(empty, PluginFileError::OtherWorld(_)), "{empty}");
        let mut truncated = b"\0asm\x0d\0\x01\0".to_vec();
        truncated.extend_from_slice(&[0x07, 0x10, 0x01]);
        assert!(matches!(inspect(&truncated), Err(PluginFileError::Invalid(_))));
    }
}
