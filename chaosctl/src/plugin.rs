//! `chaosctl plugin …`: a new plugin crate from the template (`chaosctl/template/`), and the
//! table and description of pushed plugins.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chaos_def::records::PluginMeta;
use chaos_def::scenario::check_dns_label;

use crate::output::age;

/// The template's files: path in the new crate, text with `{{name}}`, `{{crate}}`, `{{sdk}}`, and
/// `{{example}}` where the plugin's code goes (the SDK's example, see [`example_plugin`]).
const TEMPLATE: [(&str, &str); 5] = [
    ("Cargo.toml", include_str!("../template/Cargo.toml.tmpl")),
    ("src/lib.rs", include_str!("../template/src/lib.rs.tmpl")),
    ("tests/against_kubesim.rs", include_str!("../template/tests/against_kubesim.rs.tmpl")),
    ("README.md", include_str!("../template/README.md.tmpl")),
    (".gitignore", include_str!("../template/gitignore.tmpl")),
];

/// The plugin a new crate starts with: the SDK's example, so that the example is what the
/// template's users build (and what the test of `plugin new` builds).
const EXAMPLE: &str = include_str!("../../plugins/sdk/examples/pod-lister.rs");

/// The SDK this chaosctl carries (`SDK_FILES`: the SDK, the types crate it uses and the WIT
/// package, as paths in the new crate and texts) and where it lands (`SDK_PATH`); see build.rs.
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));
}
pub use embedded::{SDK_FILES, SDK_PATH};

/// The versions the SDK was last built and tested with: the new crate starts from them, so that
/// it builds as the SDK does (cargo drops what it does not use).
const LOCKFILE: &str = include_str!("../../plugins/Cargo.lock");

/// Writes a new plugin crate named `name` into `dir` (which must not exist or be empty). The
/// crate depends on the SDK by a relative path, `sdk/chaos-plugin-sdk`, where the SDK this
/// chaosctl carries is written; or, given `sdk` (an SDK developer's checkout), on that directory.
/// Returns the crate's directory.
pub fn scaffold(name: &str, dir: &Path, sdk: Option<&Path>) -> anyhow::Result<PathBuf> {
    check_dns_label(name).map_err(|why| anyhow::anyhow!("plugin name {name:?}: {why}"))?;
    let sdk_path = match sdk {
        Some(sdk) => checked_sdk(sdk)?.display().to_string(),
        None => SDK_PATH.to_string(),
    };
    if dir.exists() && dir.read_dir().with_context(|| format!("reading {}", dir.display()))?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    let crate_name = name.replace('-', "_");
    for (path, text) in TEMPLATE {
        let text = text
            .replace("{{example}}", example_plugin().trim_end())
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{sdk}}", &sdk_path);
        write_file(&dir.join(path), &text)?;
    }
    if sdk.is_none() {
        for (path, text) in SDK_FILES {
            write_file(&dir.join(path), text)?;
        }
    }
    write_file(&dir.join("Cargo.lock"), LOCKFILE)?;
    Ok(dir.to_path_buf())
}

/// The SDK's example plugin without its module docs (the template has its own).
fn example_plugin() -> &'static str {
    let docs: usize = EXAMPLE.lines().take_while(|line| line.starts_with("//!")).map(|line| line.len() + 1).sum();
    &EXAMPLE[docs..]
}

/// The SDK directory given with `--sdk`, resolved: it must hold a crate.
fn checked_sdk(sdk: &Path) -> anyhow::Result<PathBuf> {
    if !sdk.join("Cargo.toml").exists() {
        bail!(
            "no plugin SDK at {} (--sdk names the directory of a chaos-plugin-sdk crate, such as plugins/sdk \
             of the chaos repository; without --sdk the SDK chaosctl carries is written into the crate)",
            sdk.display()
        );
    }
    sdk.canonicalize().with_context(|| format!("resolving {}", sdk.display()))
}

fn write_file(target: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(target, text).with_context(|| format!("writing {}", target.display()))
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

    fn read(path: impl AsRef<Path>) -> String {
        std::fs::read_to_string(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
    }

    /// The text of the file the SDK writes at `path`.
    fn carried(path: &str) -> &'static str {
        SDK_FILES.iter().find(|(p, _)| *p == path).unwrap_or_else(|| panic!("chaosctl carries no {path}")).1
    }

    /// `major.minor.patch` from the first line of `text` that starts with `prefix`.
    fn version_after(text: &str, prefix: &str) -> (u64, u64, u64) {
        let line = text.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("no {prefix:?}"));
        let numbers: Vec<u64> =
            line.trim_end_matches([';', '"']).split('.').map(|n| n.parse().expect("a version number")).collect();
        (numbers[0], numbers[1], numbers[2])
    }

    #[test]
    fn the_template_is_rendered_with_the_names_and_the_sdk_it_carries() {
        let dir = tempfile::tempdir().unwrap();
        let made = scaffold("pod-census", &dir.path().join("pod-census"), None).unwrap();
        let manifest = read(made.join("Cargo.toml"));
        assert!(manifest.contains("name = \"pod-census\""), "{manifest}");
        assert!(manifest.contains("path = \"sdk/chaos-plugin-sdk\""), "{manifest}");
        let test = read(made.join("tests/against_kubesim.rs"));
        assert!(test.contains("\"pod_census.wasm\""));
        // The plugin's code is the SDK's example, under the template's docs.
        let lib = read(made.join("src/lib.rs"));
        assert!(lib.starts_with("//! `pod-census`: a chaos plugin."), "{lib}");
        assert!(lib.ends_with(example_plugin()) && lib.contains("sdk::export!("), "{lib}");
        assert!(!lib.contains("--example"), "the example's own docs are left out:\n{lib}");
        assert!(made.join("Cargo.lock").exists());
        for (path, _) in TEMPLATE {
            assert!(!read(made.join(path)).contains("{{"), "{path} has a placeholder left");
        }
        // The SDK, the types it uses and the WIT package, written next to the crate, the SDK's
        // manifest naming the types where they are.
        for (path, text) in SDK_FILES {
            assert_eq!(read(made.join(path)), *text, "{path}");
        }
        for path in [
            "sdk/chaos-plugin-sdk/src/lib.rs",
            "sdk/chaos-plugin-sdk/wit/plugin.wit",
            "sdk/chaos-plugin-types/Cargo.toml",
            "sdk/chaos-plugin-types/src/units.rs",
        ] {
            assert!(made.join(path).is_file(), "{path} was not written");
        }
        let sdk_manifest = read(made.join("sdk/chaos-plugin-sdk/Cargo.toml"));
        assert!(sdk_manifest.contains("path = \"../chaos-plugin-types\""), "{sdk_manifest}");
        // Not over an existing crate, not with a bad name.
        assert!(scaffold("pod-census", &made, None).unwrap_err().to_string().contains("not empty"));
        assert!(scaffold("Pod_Census", &dir.path().join("x"), None).is_err());
    }

    #[test]
    fn an_sdk_named_with_the_option_is_used_where_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk");
        let made = scaffold("pod-census", &dir.path().join("pod-census"), Some(&sdk)).unwrap();
        let manifest = read(made.join("Cargo.toml"));
        let sdk = sdk.canonicalize().unwrap();
        assert!(manifest.contains(&format!("path = \"{}\"", sdk.display())), "{manifest}");
        assert!(!made.join("sdk").exists(), "the carried SDK is not written when one is named");
        let no_sdk = scaffold("x", &dir.path().join("y"), Some(dir.path())).unwrap_err().to_string();
        assert!(no_sdk.contains("--sdk"), "{no_sdk}");
    }

    #[test]
    fn the_sdk_has_the_major_and_minor_version_of_the_wit_package_it_binds() {
        let wit = version_after(carried("sdk/chaos-plugin-sdk/wit/plugin.wit"), "package chaos:plugin@");
        assert_eq!(wit, chaos_def::plugin::WIT_VERSION, "plugin.wit and chaos-def disagree");
        let sdk = version_after(carried("sdk/chaos-plugin-sdk/Cargo.toml"), "version = \"");
        assert_eq!((sdk.0, sdk.1), (wit.0, wit.1), "the SDK's major.minor must be the WIT package's");
        // The types crate is released with the SDK, under the same version, and the SDK asks for it.
        let types = version_after(carried("sdk/chaos-plugin-types/Cargo.toml"), "version = \"");
        assert_eq!(types, sdk, "the types crate and the SDK are released together");
        let (major, minor, patch) = types;
        let wanted = format!(
            "chaos-plugin-types = {{ path = \"../chaos-plugin-types\", version = \"{major}.{minor}.{patch}\" }}"
        );
        assert!(carried("sdk/chaos-plugin-sdk/Cargo.toml").contains(&wanted), "the SDK must depend on {wanted}");
    }
}
