//! A crate made by `chaosctl plugin new` builds without this repository: the released binary
//! alone, copied away from the checkout and run away from it, writes a crate that names no path
//! of the checkout and builds to a plugin.
//!
//! The build needs the `wasm32-wasip2` target and crates.io (or the local cargo cache). Its target
//! directory is a fixed one in the system's temporary directory, so that the dependencies
//! (wit-bindgen, serde) are compiled once and later runs build only the plugin and the SDK.

use std::path::{Path, PathBuf};
use std::process::Command;

const NAME: &str = "pod-census";

/// The checkout: where this test's crate is, one up.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("chaosctl lives in the workspace").to_path_buf()
}

/// Every file under `dir`, except the build's output.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && path.file_name() != Some("target".as_ref()) {
            found.extend(files_under(&path));
        } else if path.is_file() {
            found.push(path);
        }
    }
    found
}

/// Runs `program` in `dir`, panicking with its output when it fails.
fn run(program: &mut Command, dir: &Path) {
    let output = program.current_dir(dir).output().unwrap_or_else(|e| panic!("starting {program:?}: {e}"));
    assert!(
        output.status.success(),
        "{program:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_crate_made_by_the_binary_alone_builds_without_the_checkout() {
    let repository = repository();
    let away = tempfile::Builder::new().prefix("chaosctl-plugin-new-").tempdir().unwrap();
    let away = away.path().canonicalize().unwrap();
    assert!(!away.starts_with(&repository), "the temporary directory {} is in the checkout", away.display());

    // The binary, copied away from the checkout, makes the crate in a directory away from it.
    let chaosctl = away.join("bin").join("chaosctl");
    std::fs::create_dir_all(chaosctl.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_chaosctl"), &chaosctl).unwrap();
    let work = away.join("work");
    std::fs::create_dir_all(&work).unwrap();
    run(Command::new(&chaosctl).args(["plugin", "new", NAME]), &work);
    let made = work.join(NAME);

    // Nothing it wrote names the checkout (as given or resolved).
    let checkout_paths: Vec<String> =
        [repository.clone(), repository.canonicalize().unwrap()].iter().map(|p| p.display().to_string()).collect();
    let written = files_under(&made);
    assert!(written.len() > 10, "too few files written: {written:?}");
    for file in &written {
        let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
        for checkout in &checkout_paths {
            assert!(!text.contains(checkout.as_str()), "{} names the checkout {checkout}", file.display());
        }
    }

    // It builds, with nothing but the toolchain and the registry.
    let target = std::env::temp_dir().join("chaosctl-plugin-new-target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(
        Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("RUSTC_WRAPPER")
            .env_remove("RUSTC_WORKSPACE_WRAPPER"),
        &made,
    );
    let wasm = target.join("wasm32-wasip2/release").join(format!("{}.wasm", NAME.replace('-', "_")));
    let bytes = std::fs::read(&wasm).unwrap_or_else(|e| panic!("{}: {e}", wasm.display()));
    // And what it built is a plugin a worker would run.
    let inspection = chaos_def::plugin::inspect(&bytes).expect("a component of the plugin world");
    let (major, minor, patch) = chaos_def::plugin::WIT_VERSION;
    assert_eq!(inspection.interface_version, format!("{major}.{minor}.{patch}"));
}
