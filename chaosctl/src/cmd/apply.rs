//! `apply -f FILE`: reads scenarios from a file or standard input, validates them here (so a
//! broken file is reported with its lines before anything is sent), then applies each.

use std::io::Read as _;

use chaos_def::scenario::SpecErrors;
use chaosctl::client::Client;
use chaosctl::output::{Format, structured};

/// Applies every scenario in `file` (`-` reads standard input), printing what each apply did.
pub async fn apply(client: &Client, file: &str, output: Format) -> anyhow::Result<()> {
    let text = read_input(file)?;
    let shown = if file == "-" { "<stdin>" } else { file };
    let scenarios =
        chaos_def::parse_scenarios(&text).map_err(|errors| anyhow::anyhow!("{}", located(&errors, shown)))?;
    let mut responses = Vec::new();
    for scenario in &scenarios {
        let response =
            client.apply(scenario).await.map_err(|e| anyhow::anyhow!("scenario/{}: {e}", scenario.metadata.name))?;
        if output == Format::Table {
            println!("scenario/{} {}", scenario.metadata.name, response.result.as_str());
        }
        responses.push(response);
    }
    if let Some(text) = structured(output, &responses) {
        print!("{text}");
    }
    Ok(())
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
