//! `config get-contexts|current-context|use-context|set-context|delete-context`: the contexts
//! file ([`chaosctl::config`]). Nothing here talks to an apiserver.

use anyhow::{Context as _, bail};
use chaosctl::config::{self, Config, Context};

use super::print_rows;
use crate::cli::ConfigAction;

/// Runs one `config` subcommand.
pub fn run(action: ConfigAction) -> anyhow::Result<()> {
    let path = config::path();
    let mut file = Config::load(&path)?;
    match action {
        ConfigAction::GetContexts => {
            let rows: Vec<Vec<String>> = file
                .contexts
                .iter()
                .map(|c| {
                    vec![
                        if file.current_context.as_ref() == Some(&c.name) { "*".into() } else { String::new() },
                        c.name.clone(),
                        c.server.clone(),
                        if c.token.is_some() { "token".into() } else { "none".into() },
                        c.ca.as_ref().map_or("-".into(), |p| p.display().to_string()),
                    ]
                })
                .collect();
            print_rows(&["CURRENT", "NAME", "SERVER", "AUTH", "CA"], &rows, &format!("contexts in {}", path.display()));
            return Ok(());
        }
        ConfigAction::CurrentContext => {
            let name = file.current_context.context("no current context; see `chaosctl config use-context`")?;
            println!("{name}");
            return Ok(());
        }
        ConfigAction::UseContext { name } => {
            if file.context(&name).is_none() {
                bail!("no context {name:?} in {}; make it with `chaosctl config set-context`", path.display());
            }
            file.current_context = Some(name.clone());
            println!("Switched to context {name:?}.");
        }
        ConfigAction::SetContext { name, server, token_file, certificate_authority, current } => {
            let mut context =
                file.context(&name).cloned().unwrap_or(Context { name: name.clone(), ..Context::default() });
            if let Some(server) = server {
                context.server = server;
            }
            if context.server.is_empty() {
                bail!("a new context needs --server URL");
            }
            if let Some(file) = token_file {
                context.token = Some(config::read_token(&file)?);
            }
            if let Some(ca) = certificate_authority {
                context.ca = Some(std::path::absolute(&ca).with_context(|| format!("{}", ca.display()))?);
            }
            file.upsert(context);
            if current || file.current_context.is_none() {
                file.current_context = Some(name.clone());
            }
            println!("Context {name:?} set in {}.", path.display());
        }
        ConfigAction::DeleteContext { name } => {
            if file.context(&name).is_none() {
                bail!("no context {name:?} in {}", path.display());
            }
            file.contexts.retain(|c| c.name != name);
            if file.current_context.as_ref() == Some(&name) {
                file.current_context = None;
            }
            println!("Context {name:?} deleted.");
        }
    }
    file.save(&path)
}
