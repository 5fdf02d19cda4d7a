//! What a scenario did, read from its journal: `report NAME` (the closing statistics, made by
//! the apiserver) and `events NAME` (the journal itself, oldest first, optionally followed).

use chaosctl::client::Client;
use chaosctl::output::{Format, structured};

/// `report NAME`
pub async fn report(client: &Client, name: &str, output: Format) -> anyhow::Result<()> {
    let report = client.report(name).await?;
    match structured(output, &report) {
        Some(text) => print!("{text}"),
        None => print!("{}", chaosctl::report::render(&report)),
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
