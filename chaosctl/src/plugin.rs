//! `chaosctl plugin …`: a new plugin crate from the template (`chaosctl/template/`), and the
//! table and description of pushed plugins.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chaos_def::records::PluginMeta;
use chaos_def::scenario::check_dns_label;

use crate::output::age;

/// The template's files: path in the new crate, text with `{{name}}`, `{{crate}}`, `{{sdk}}`.
const TEMPLATE: [(&str, &str); 5] = [
    ("Cargo.toml", include_str!("../template/Cargo.toml.tmpl")),
    ("src/lib.rs", include_str!("../template/src/lib.rs.tmpl")),
    ("tests/against_kubesim.rs", include_str!("../template/tests/against_kubesim.rs.tmpl")),
    ("README.md", include_str!("../template/README.md.tmpl")),
    (".gitignore", include_str!("../template/gitignore.tmpl")),
];

/// The versions the SDK was last built and tested with: the new crate starts from them, so that
/// it builds as the SDK does (cargo drops what it does not use).
const LOCKFILE: &str = include_str!("../../plugins/Cargo.lock");

/// The SDK of the source tree this chaosctl was built from, if it is still there.
pub fn default_sdk() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk");
    sdk.join("Cargo.toml").exists().then(|| sdk.canonicalize().unwrap_or(sdk))
}

/// Writes a new plugin crate named `name` into `dir` (which must not exist or be empty), with
/// the SDK at `sdk`. Returns the crate's directory.
pub fn scaffold(name: &str, dir: &Path, sdk: &Path) -> anyhow::Result<PathBuf> {
    check_dns_label(name).map_err(|why| anyhow::anyhow!("plugin name {name:?}: {why}"))?;
    if !sdk.join("Cargo.toml").exists() {
        bail!(
            "no plugin SDK at {} (give its directory with --sdk: plugins/sdk of the chaos repository)",
            sdk.display()
        );
    }
    if dir.exists() && dir.read_dir().with_context(|| format!("reading {}", dir.display()))?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    let sdk = sdk.canonicalize().with_context(|| format!("resolving {}", sdk.display()))?;
    let crate_name = name.replace('-', "_");
    for (path, text) in TEMPLATE {
        let text = text
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{sdk}}", &sdk.display().to_string());
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
    }
    std::fs::write(dir.join("Cargo.lock"), LOCKFILE).with_context(|| format!("writing {}", dir.display()))?;
    Ok(dir.to_path_buf())
}

/// `plugin list` as a table.
pub fn table_rows(items: &[PluginMeta], now: jiff::Timestamp) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.version.clone(),
                format!("sha256:{}", &p.digest[..p.digest.len().min(12)]),
                size_text(p.size),
                capabilities_text(&p.capabilities),
                age(p.pushed_at, now),
            ]
        })
        .collect()
}

/// `plugin describe` as text.
pub fn describe(meta: &PluginMeta) -> String {
    let mut out = String::new();
    out.push_str(&format!("Name:        {}\n", meta.name));
    out.push_str(&format!("Version:     {}\n", meta.version));
    out.push_str(&format!("Digest:      sha256:{}\n", meta.digest));
    out.push_str(&format!("Size:        {} ({} bytes)\n", size_text(meta.size), meta.size));
    out.push_str(&format!("Interface:   chaos:plugin@{}\n", meta.interface_version));
    out.push_str(&format!("Pushed:      {}\n", meta.pushed_at));
    out.push_str(&format!("Use it as:   {}@{} or sha256:{}\n", meta.name, meta.version, meta.digest));
    out.push_str("Capabilities:\n");
    match meta.capabilities.get("rules").and_then(|r| r.as_array()) {
        Some(rules) if !rules.is_empty() => {
            for rule in rules {
                let list = |field: &str| {
                    rule.get(field)
                        .and_then(|v| v.as_array())
                        .map(|v| v.iter().filter_map(|s| s.as_str()).collect::<Vec<_>>().join(","))
                        .unwrap_or_default()
                };
                let namespaces = list("namespaces");
                let place = match namespaces.as_str() {
                    "" => "(cluster-scoped only)".to_string(),
                    "*" => "in every namespace".to_string(),
                    some => format!("in {some}"),
                };
                out.push_str(&format!("  {} {} {place}\n", list("verbs"), list("resources")));
            }
        }
        _ => out.push_str("  none (it may make no Kubernetes call)\n"),
    }
    out
}

fn capabilities_text(capabilities: &serde_json::Value) -> String {
    let count = capabilities.get("rules").and_then(|r| r.as_array()).map_or(0, Vec::len);
    match count {
        0 => "none".into(),
        1 => "1 rule".into(),
        n => format!("{n} rules"),
    }
}

fn size_text(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1}Mi", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.0}Ki", (bytes as f64 / 1024.0).ceil())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_rendered_with_the_names_and_the_sdk() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = default_sdk().expect("the source tree's SDK");
        let made = scaffold("pod-census", &dir.path().join("pod-census"), &sdk).unwrap();
        let manifest = std::fs::read_to_string(made.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"pod-census\""), "{manifest}");
        assert!(manifest.contains(&format!("path = \"{}\"", sdk.display())), "{manifest}");
        let test = std::fs::read_to_string(made.join("tests/against_kubesim.rs")).unwrap();
        assert!(test.contains("\"pod_census.wasm\""));
        assert!(made.join("Cargo.lock").exists());
        for (path, _) in TEMPLATE {
            let text = std::fs::read_to_string(made.join(path)).unwrap();
            assert!(!text.contains("{{"), "{path} has a placeholder left");
        }
        // Not over an existing crate, not with a bad name, not without an SDK.
        assert!(scaffold("pod-census", &made, &sdk).unwrap_err().to_string().contains("not empty"));
        assert!(scaffold("Pod_Census", &dir.path().join("x"), &sdk).is_err());
        let no_sdk = scaffold("x", &dir.path().join("y"), dir.path()).unwrap_err().to_string();
        assert!(no_sdk.contains("--sdk"), "{no_sdk}");
    }
}
