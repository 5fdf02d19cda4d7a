//! `apply -f FILE`: reads scenarios and upmeter `Downtime` documents, mixed, from a file or
//! standard input, validates them all here (so a broken file is reported with its lines before
//! anything is sent), then applies each in the file's order.

use std::io::Read as _;

use chaos_def::availability::Document;
use chaos_def::scenario::SpecErrors;
use chaosctl::client::Client;
use chaosctl::output::{Format, structured};

/// Applies every document in `file` (`-` reads standard input), printing what each apply did.
pub async fn apply(client: &Client, file: &str, dry_run: bool, output: Format) -> anyhow::Result<()> {
    let text = read_input(file)?;
    let shown = if file == "-" { "<stdin>" } else { file };
    let documents = chaos_def::availability::parse_documents(&text)
        .map_err(|errors| anyhow::anyhow!("{}", located(&errors, shown)))?;
    let mut responses = Vec::new();
    for document in &documents {
        let (object, result, response) = apply_one(client, document, dry_run).await?;
        if output == Format::Table {
            println!("{object} {result}");
            print_details(&response);
        }
        responses.push(response);
    }
    if let Some(text) = structured(output, &responses) {
        print!("{text}");
    }
    Ok(())
}

/// Applies one document: what it is (`scenario/NAME`), what the apply did, and the answer.
async fn apply_one(
    client: &Client,
    document: &Document,
    dry_run: bool,
) -> anyhow::Result<(String, String, serde_json::Value)> {
    match document {
        Document::Scenario(scenario) => {
            let object = format!("scenario/{}", scenario.metadata.name);
            let answer = if dry_run { client.dry_run(scenario).await } else { client.apply(scenario).await };
            let response = answer.map_err(|e| anyhow::anyhow!("{object}: {e}"))?;
            Ok((object, response.result.as_str().to_string(), serde_json::to_value(&response)?))
        }
        Document::Downtime(downtime) if dry_run => Ok((
            format!("downtime/{}", downtime.metadata.name),
            "valid (dry run: nothing stored)".into(),
            serde_json::json!({}),
        )),
        Document::Downtime(downtime) => {
            let object = format!("downtime/{}", downtime.metadata.name);
            let response = client.apply_downtime(downtime).await.map_err(|e| anyhow::anyhow!("{object}: {e}"))?;
            Ok((object, response.result.clone(), serde_json::to_value(&response)?))
        }
    }
}

/// A scenario's warnings, and a dry run's targets: one row per fault step.
fn print_details(response: &serde_json::Value) {
    let Ok(answer) = serde_json::from_value::<chaos_def::api::ApplyResponse>(response.clone()) else { return };
    for warning in &answer.warnings {
        eprintln!("warning: {warning}");
    }
    if answer.targets.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = answer
        .targets
        .iter()
        .map(|pick| {
            let targets: Vec<String> = pick
                .targets
                .iter()
                .map(|t| format!("{}/{} [{}]", t.namespace, t.name, t.containers.join(",")))
                .collect();
            let picked = match (&pick.error, targets.is_empty(), pick.more) {
                (Some(error), _, _) => format!("- ({error})"),
                (None, true, 0) => "none".into(),
                (None, true, more) => format!("{more} pods (too many to list)"),
                (None, false, 0) => targets.join(" "),
                (None, false, more) => format!("{} and {more} more", targets.join(" ")),
            };
            vec![pick.workflow.clone(), pick.step.clone(), pick.cluster.clone(), pick.eligible.to_string(), picked]
        })
        .collect();
    print!("{}", chaosctl::output::table(&["WORKFLOW", "STEP", "CLUSTER", "ELIGIBLE", "WOULD PICK"], &rows));
}

fn read_input(file: &str) -> anyhow::Result<String> {
    if file == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {file}: {e}"))
    }
}

/// One line per problem, as compilers write them: `FILE:LINE: PATH: message`.
fn located(errors: &SpecErrors, shown: &str) -> String {
    let lines: Vec<String> = errors
        .0
        .iter()
        .map(|e| {
            let at = e.line.map(|l| format!("{shown}:{l}: ")).unwrap_or_else(|| format!("{shown}: "));
            let path = if e.path.is_empty() { String::new() } else { format!("{}: ", e.path) };
            format!("{at}{path}{}", e.message)
        })
        .collect();
    lines.join("\n")
}
