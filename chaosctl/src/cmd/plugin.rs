//! `plugin new|push|list|describe`: a new plugin crate from the template (written by
//! [`chaosctl::plugin::scaffold`]), and the plugins pushed to the apiserver.

use std::path::{Path, PathBuf};

use chaosctl::client::Client;
use chaosctl::output::{Format, structured};
use jiff::Timestamp;

use super::print_rows;
use crate::cli::PluginAction;

/// Runs one `plugin` subcommand.
pub async fn run(client: &Client, action: PluginAction) -> anyhow::Result<()> {
    match action {
        PluginAction::New { name, dir, sdk } => new(&name, dir, sdk.as_deref()),
        PluginAction::Push { file, name, version, output } => push(client, &file, &name, &version, output).await,
        PluginAction::List { output } => list(client, output).await,
        PluginAction::Describe { plugin, output } => describe(client, &plugin, output).await,
    }
}

/// `plugin new NAME`: writes the crate, then says how to build, test and push it.
fn new(name: &str, dir: Option<PathBuf>, sdk: Option<&Path>) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let made = chaosctl::plugin::scaffold(name, &dir, sdk)?;
    let wasm = format!("target/wasm32-wasip2/release/{}.wasm", name.replace('-', "_"));
    println!("plugin crate {name} created in {}", made.display());
    println!();
    println!("  cd {}", made.display());
    println!("  cargo build --release --target wasm32-wasip2");
    println!("  cargo test        # against kubesim (kubesim and chaos-worker on PATH, or CHAOS_BIN_DIR)");
    println!("  chaosctl plugin push {wasm} --name {name} --version 0.1.0");
    Ok(())
}

/// `plugin push FILE --name N --version V`
async fn push(client: &Client, file: &Path, name: &str, version: &str, output: Format) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let digest = chaos_def::plugin::sha256_hex(&bytes);
    let response = client
        .push_plugin(name, version, bytes, &digest)
        .await
        .map_err(|e| anyhow::anyhow!("plugin {name}@{version}: {e}"))?;
    if let Some(text) = structured(output, &response) {
        print!("{text}");
    } else {
        let p = &response.plugin;
        let result = response.result.as_str();
        println!("plugin/{}@{} {result} (sha256:{}, {} bytes)", p.name, p.version, p.digest, p.size);
    }
    Ok(())
}

/// `plugin list`, and `get plugins`.
pub async fn list(client: &Client, output: Format) -> anyhow::Result<()> {
    let items = client.plugins().await?.items;
    if let Some(text) = structured(output, &items) {
        print!("{text}");
        return Ok(());
    }
    let rows = chaosctl::plugin::table_rows(&items, Timestamp::now());
    print_rows(&["NAME", "VERSION", "DIGEST", "SIZE", "CAPABILITIES", "AGE"], &rows, "plugins");
    Ok(())
}

/// `plugin describe NAME[@VERSION]`: without a version, the most recently pushed one.
async fn describe(client: &Client, plugin: &str, output: Format) -> anyhow::Result<()> {
    let meta = match plugin.split_once('@') {
        Some((name, version)) => client.plugin(name, version).await?,
        None => client
            .plugins()
            .await?
            .items
            .into_iter()
            .filter(|p| p.name == plugin)
            .max_by_key(|p| p.pushed_at)
            .ok_or_else(|| anyhow::anyhow!("no plugin {plugin:?} is pushed (chaosctl plugin list)"))?,
    };
    match structured(output, &meta) {
        Some(text) => print!("{text}"),
        None => print!("{}", chaosctl::plugin::describe(&meta)),
    }
    Ok(())
}
