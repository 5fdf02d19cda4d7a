//! A scenario's end: `stop NAME`, the global kill switch (`stop --all`, lifted by `resume`) and
//! `delete scenario NAME`, and `replay NAME --as NEW` (a run again, with its seed). Each asks the
//! apiserver and says in one line what happened.

use chaos_def::api::ActionResult;
use chaosctl::client::Client;

/// `stop NAME`
pub async fn stop(client: &Client, name: &str, reason: Option<String>) -> anyhow::Result<()> {
    let response = client.stop(name, reason).await?;
    let said = if response.result == ActionResult::AlreadyStopping { "already stopping" } else { "stopping" };
    println!("scenario/{name} {said}");
    Ok(())
}

/// `stop --all`: every scenario stops and new ones are refused until `resume`.
pub async fn stop_all(client: &Client, reason: Option<String>) -> anyhow::Result<()> {
    let response = client.stop_all(reason).await?;
    for name in &response.stopped {
        println!("scenario/{name} stopping");
    }
    println!("all scenarios stopped; new ones are refused until `chaosctl resume`");
    Ok(())
}

/// `resume`: lifts `stop --all`.
pub async fn resume(client: &Client) -> anyhow::Result<()> {
    client.resume().await?;
    println!("resumed: new scenarios are accepted");
    Ok(())
}

/// `delete scenario NAME`: one with work left is stopped first and removed later.
pub async fn delete(client: &Client, name: &str) -> anyhow::Result<()> {
    let response = client.delete_scenario(name).await?;
    if response.result == ActionResult::Deleting {
        println!("scenario/{name} deleting (stopping first; removed once every instance has finished)");
    } else {
        println!("scenario/{name} deleted");
    }
    Ok(())
}

/// `replay NAME --as NEW`: `name`'s scenario applied again as `new_name`, with its seed (the
/// server stored the one it picked, if the user gave none), annotated with what it replays.
pub async fn replay(client: &Client, name: &str, new_name: &str) -> anyhow::Result<()> {
    let stored = client.scenario(name).await?.stored;
    let mut scenario = stored.scenario();
    scenario.metadata.name = new_name.to_string();
    scenario.metadata.annotations.insert(REPLAY_OF.into(), name.to_string());
    let seed = scenario.spec.seed.ok_or_else(|| anyhow::anyhow!("scenario {name} has no seed to replay"))?;
    let response = client.apply(&scenario).await.map_err(|e| anyhow::anyhow!("scenario/{new_name}: {e}"))?;
    println!("scenario/{new_name} {} (a replay of {name}, seed {seed})", response.result.as_str());
    println!("compare them with: chaosctl report {new_name} --against {name}");
    Ok(())
}

/// The annotation a replay carries: the scenario it replays.
pub const REPLAY_OF: &str = "chaosctl.dev/replay-of";
