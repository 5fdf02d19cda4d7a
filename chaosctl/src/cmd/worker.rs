//! `worker cordon|uncordon|drain NAME`: whether a worker gets new instances, and moving what it
//! runs elsewhere (the drain waits until it runs nothing, or its timeout).

use std::time::Duration;

use chaosctl::client::Client;

use crate::cli::WorkerAction;

/// How often a drain asks how much the worker still runs.
const DRAIN_POLL: Duration = Duration::from_millis(250);

/// Runs one `worker` subcommand.
pub async fn run(client: &Client, action: WorkerAction) -> anyhow::Result<()> {
    match action {
        WorkerAction::Cordon { name } => cordon(client, &name, true).await,
        WorkerAction::Uncordon { name } => cordon(client, &name, false).await,
        WorkerAction::Drain { name, timeout } => drain(client, &name, timeout).await,
    }
}

/// `cordon` (`on`) or `uncordon`: prints what the apiserver did (`worker/NAME cordoned`).
async fn cordon(client: &Client, name: &str, on: bool) -> anyhow::Result<()> {
    let response = client.cordon(name, on).await?;
    println!("worker/{name} {}", response.result.as_str());
    Ok(())
}

/// `drain`: asks for the drain, then waits until nothing is assigned to the worker.
async fn drain(client: &Client, name: &str, timeout: Duration) -> anyhow::Result<()> {
    client.drain(name).await?;
    println!("worker/{name} draining");
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    loop {
        let left = still_assigned(client, name).await?;
        if left == 0 {
            println!("worker/{name} drained");
            return Ok(());
        }
        if last != Some(left) {
            println!("worker/{name}: {left} instance(s) still stopping");
            last = Some(left);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "worker/{name} still holds {left} instance(s) after {}; the drain goes on (see `chaosctl get workers`)",
                chaos_def::units::Duration::from(timeout)
            );
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// How many instances worker `name` still holds.
async fn still_assigned(client: &Client, name: &str) -> anyhow::Result<u32> {
    let workers = client.workers().await?.items;
    Ok(match workers.iter().find(|w| w.name == name) {
        // Gone (stopped meanwhile): its assignments went with its lease.
        None => 0,
        Some(worker) => worker.assigned.unwrap_or(worker.usage.running),
    })
}
