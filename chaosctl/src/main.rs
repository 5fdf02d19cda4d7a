//! `chaosctl`: the command line of the chaos orchestrator, in kubectl's habits: `apply -f`,
//! `get`, `describe`, `delete`, `-o json|yaml`, tables for people. Every command talks to the
//! apiserver over its REST API; a scenario file is validated here first, so that a broken file
//! is reported (with its lines) before anything is sent.
//!
//! This file parses the command line ([`cli`]) and hands each command to its module in [`cmd`].
//! A command that fails prints `error: ...` on standard error and exits with 1; clap's own usage
//! errors exit with 2.

mod cli;
mod cmd;

use std::process::ExitCode;

use clap::Parser;

use chaosctl::client::Client;
use chaosctl::config;
use cli::{Cli, Command, Single};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            for line in format!("{error:#}").lines() {
                eprintln!("error: {line}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Commands that need no apiserver go first: a broken config must not stop `config` from
    // mending it, nor `up` from starting a stack.
    let command = match cli.command {
        Command::Config { action } => return cmd::config::run(action),
        Command::Certs { action: cli::CertsAction::Create { dir, namespace, days, apiserver_names } } => {
            return cmd::certs::create(&dir, &namespace, days, &apiserver_names);
        }
        Command::Up { stack, write_context } => return cmd::up::up(&stack.options(), write_context).await,
        Command::Demo { demo } => return chaosctl::demo::run(&demo.options()).await,
        Command::Completion { shell } => {
            cli::print_completion(shell);
            return Ok(());
        }
        command => command,
    };
    let overrides = config::Overrides {
        context: cli.context,
        server: cli.server,
        env_server: std::env::var(chaos_def::consts::ENV_SERVER).ok(),
        token: std::env::var(config::ENV_TOKEN).ok(),
        ca: cli.ca,
        env_ca: std::env::var_os(config::ENV_CA).filter(|v| !v.is_empty()).map(Into::into),
    };
    let target = config::resolve(&config::Config::load(&config::path())?, overrides)?;
    if let Some(warning) = target.cleartext_warning() {
        eprintln!("{warning}");
    }
    let client = Client::for_target(&target)?;
    match command {
        Command::Apply { file, dry_run, output } => cmd::apply::apply(&client, &file, dry_run, output).await,
        Command::Get { resource, name, scenario, output } => {
            cmd::get::get(&client, resource, name, scenario, output).await
        }
        Command::Describe { resource: Single::Scenario, name } => cmd::describe::describe(&client, &name).await,
        Command::Describe { resource: Single::Downtime, .. } => {
            anyhow::bail!("describe takes a scenario; `chaosctl get downtimes` lists the Downtimes")
        }
        Command::Stop { all: true, reason, .. } => cmd::lifecycle::stop_all(&client, reason).await,
        Command::Stop { name, reason, .. } => {
            let name = name.expect("clap requires a name without --all");
            cmd::lifecycle::stop(&client, &name, reason).await
        }
        Command::Resume => cmd::lifecycle::resume(&client).await,
        Command::Delete { resource: Single::Scenario, name } => cmd::lifecycle::delete(&client, &name).await,
        Command::Delete { resource: Single::Downtime, name } => {
            let done = client.delete_downtime(&name).await?;
            println!("downtime/{} {}", done.name, done.result.as_str());
            Ok(())
        }
        Command::Report { name, output, against: None } => cmd::journal::report(&client, &name, output).await,
        Command::Report { name, output, against: Some(original) } => {
            cmd::journal::compare(&client, &original, &name, output).await
        }
        Command::Replay { name, new_name } => cmd::lifecycle::replay(&client, &name, &new_name).await,
        Command::Events { name, follow, output } => cmd::journal::events(&client, &name, follow, output).await,
        Command::Availability { args } => cmd::availability::availability(&client, args).await,
        Command::Plugin { action } => cmd::plugin::run(&client, action).await,
        Command::Worker { action } => cmd::worker::run(&client, action).await,
        Command::Token { action } => cmd::security::token(&client, action).await,
        Command::Audit { since, who, limit, output } => {
            cmd::security::audit(&client, since, who.as_deref(), limit, output).await
        }
        Command::Config { .. }
        | Command::Certs { .. }
        | Command::Up { .. }
        | Command::Demo { .. }
        | Command::Completion { .. } => {
            unreachable!("handled before the client is made")
        }
    }
}
