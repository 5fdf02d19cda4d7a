//! `token create|list|revoke` and `audit`: who may use the API, and what was done through it.

use chaos_def::auth::TokenRequest;
use chaosctl::client::Client;
use chaosctl::output::{Format, age, structured};
use jiff::Timestamp;

use super::print_rows;
use crate::cli::TokenAction;

/// Runs one `token` subcommand.
pub async fn token(client: &Client, action: TokenAction) -> anyhow::Result<()> {
    match action {
        TokenAction::Create { name, role, clusters, expires, output } => {
            let request = TokenRequest { name, role, clusters, expires_in: expires };
            let created = client.create_token(&request).await?;
            match structured(output, &created) {
                Some(text) => print!("{text}"),
                None => {
                    // The secret alone on stdout, so that `chaosctl token create ... > FILE` works;
                    // what it is goes to stderr.
                    println!("{}", created.token);
                    eprintln!(
                        "token/{} created (role {}{}); it is shown this once",
                        created.record.name,
                        created.record.role,
                        scope(&created.record.clusters)
                    );
                }
            }
            Ok(())
        }
        TokenAction::List { output } => {
            let list = client.tokens().await?;
            if let Some(text) = structured(output, &list) {
                print!("{text}");
                return Ok(());
            }
            let now = Timestamp::now();
            let rows: Vec<Vec<String>> = list
                .items
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.role.to_string(),
                        if t.clusters.is_empty() { "*".into() } else { t.clusters.join(",") },
                        t.expires
                            .map_or("never".into(), |at| if at <= now { "expired".into() } else { at.to_string() }),
                        t.created_by.clone(),
                        t.last_used.map_or("-".into(), |at| format!("{} ago", age(at, now))),
                        age(t.created, now),
                    ]
                })
                .collect();
            print_rows(&["NAME", "ROLE", "CLUSTERS", "EXPIRES", "CREATED-BY", "LAST-USED", "AGE"], &rows, "tokens");
            Ok(())
        }
        TokenAction::Revoke { name } => {
            let response = client.revoke_token(&name).await?;
            println!("token/{name} {}", response.result.as_str());
            Ok(())
        }
    }
}

fn scope(clusters: &[String]) -> String {
    if clusters.is_empty() { String::new() } else { format!(", clusters {}", clusters.join(",")) }
}

/// `audit`: the trail, oldest first.
pub async fn audit(
    client: &Client,
    since: std::time::Duration,
    who: Option<&str>,
    limit: usize,
    output: Format,
) -> anyhow::Result<()> {
    let since = chaos_def::Duration::from(since).to_string();
    let list = client.audit(&since, who, limit).await?;
    if let Some(text) = structured(output, &list) {
        print!("{text}");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .items
        .iter()
        .map(|e| {
            vec![
                e.time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                if e.who.is_empty() { "-".into() } else { e.who.clone() },
                e.role.map_or("-".into(), |r| r.to_string()),
                format!("{} {}", e.method, e.path),
                e.target.clone().unwrap_or_else(|| "-".into()),
                e.result.clone(),
                e.source.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_rows(&["TIME", "WHO", "ROLE", "REQUEST", "TARGET", "RESULT", "FROM"], &rows, "audit records");
    if list.truncated {
        eprintln!("(only the newest {limit}; use --limit or --since to see others)");
    }
    Ok(())
}
