//! What a scenario did, read from its journal: `report NAME` (the closing statistics, made by
//! the apiserver) and `events NAME` (the journal itself, oldest first, optionally followed).

use chaosctl::client::Client;
use chaosctl::output::{Format, structured};
use chaosctl::replay;

/// `report NAME`
pub async fn report(client: &Client, name: &str, output: Format) -> anyhow::Result<()> {
    let report = client.report(name).await?;
    match structured(output, &report) {
        Some(text) => print!("{text}"),
        None => print!("{}", chaosctl::report::render(&report)),
    }
    Ok(())
}

/// `report NAME --against ORIGINAL`: where the decisions of `name` first diverged from
/// `original`'s.
pub async fn compare(client: &Client, original: &str, name: &str, output: Format) -> anyhow::Result<()> {
    let (a, b) = (client.scenario(original).await?.stored, client.scenario(name).await?.stored);
    let (mut after_a, mut after_b) = (0, 0);
    let journal_a = client.events_since(original, &mut after_a).await?;
    let journal_b = client.events_since(name, &mut after_b).await?;
    let (decided_a, decided_b) = (replay::decisions(&a, &journal_a), replay::decisions(&b, &journal_b));
    let comparison = replay::compare(&a, &decided_a, &b, &decided_b);
    let summary = serde_json::json!({
        "original": comparison.original,
        "replay": comparison.replay,
        "compared": comparison.compared,
        "diverged": comparison.first_divergence.is_some(),
        "text": comparison.to_string(),
    });
    match structured(output, &summary) {
        Some(text) => print!("{text}"),
        None => print!("{comparison}"),
    }
    Ok(())
}

/// `events NAME`: pages through the journal; with `follow`, polls for more until Ctrl-C.
/// Structured output is one JSON object a line, so that it can be followed too.
pub async fn events(client: &Client, name: &str, follow: bool, output: Format) -> anyhow::Result<()> {
    let mut after = 0;
    loop {
        for entry in client.events_since(name, &mut after).await? {
            match output {
                Format::Table => println!("{}", chaosctl::report::event_line(&entry)),
                _ => println!("{}", serde_json::to_string(&entry)?),
            }
        }
        if !follow {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
}
