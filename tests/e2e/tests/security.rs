//! Security end to end: the real binaries, as `chaosctl up` runs them (etcd with client
//! certificates, the apiserver on HTTPS, token auth on). Tokens made with `chaosctl token
//! create` do what their roles allow; the audit trail names who did what; no log file of the
//! whole run holds a token.

use chaos_def::api::{AuditEntry, AuditList};
use chaos_e2e::{chaosctl, chaosctl_as, text};
use chaosctl::fleet::Fleet;

/// A token made through chaosctl (the secret alone on stdout).
fn token(fleet: &Fleet, name: &str, role: &str) -> String {
    let out = chaosctl(fleet, &["token", "create", name, "--role", role]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_names_who_did_what_and_no_log_holds_a_token() {
    let fleet = Fleet::start(1, 20, 2).await.expect("start the stack");
    assert!(fleet.stack.apiserver.starts_with("https://"), "{}", fleet.stack.apiserver);
    let alice = token(&fleet, "alice", "operator");
    let bob = token(&fleet, "bob", "viewer");

    let file = fleet.stack.state_dir.join("noop.yaml");
    std::fs::write(
        &file,
        "apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {name: noop}\nspec:\n  cluster: default\n  \
         tasks:\n    - {name: noop, plugin: noop, replicas: 2}\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let applied = chaosctl_as(&fleet, Some(&alice), &["apply", "-f", file]);
    assert!(applied.status.success(), "{}", text(&applied));
    let refused = chaosctl_as(&fleet, Some(&bob), &["apply", "-f", file]);
    assert!(text(&refused).contains("role viewer") && text(&refused).contains("(403)"), "{}", text(&refused));
    // Bad tokens, the path most likely to log one: refused, and (checked below) never written.
    let bogus = format!("chaos_{}", "0123456789abcdef".repeat(4));
    for token in [bogus.as_str(), "not a token at all, with spaces"] {
        let out = chaosctl_as(&fleet, Some(token), &["get", "scenarios"]);
        assert!(text(&out).contains("(401)") && !text(&out).contains(token), "{}", text(&out));
    }
    let stopped = chaosctl(&fleet, &["stop", "--all", "--reason", "drill"]);
    assert!(stopped.status.success(), "{}", text(&stopped));
    assert!(chaosctl(&fleet, &["resume"]).status.success());

    let out = chaosctl(&fleet, &["audit", "--since", "10m", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let trail: AuditList = serde_json::from_slice(&out.stdout).unwrap();
    let find = |who: &str, method: &str, path: &str| -> &AuditEntry {
        trail
            .items
            .iter()
            .find(|e| e.who == who && e.method == method && e.path == path)
            .unwrap_or_else(|| panic!("no {method} {path} by {who:?} in {:#?}", trail.items))
    };
    let made = find("bootstrap", "POST", "/v1/tokens");
    assert_eq!(made.status, 201);
    assert!(trail.items.iter().any(|e| e.path == "/v1/tokens" && e.target.as_deref() == Some("bob")));
    let apply = find("alice", "POST", "/v1/scenarios");
    assert_eq!(
        (apply.target.as_deref(), apply.status, apply.role),
        (Some("noop"), 201, Some(chaos_def::auth::Role::Operator))
    );
    let refusal = find("bob", "POST", "/v1/scenarios");
    assert_eq!(refusal.status, 403);
    assert!(refusal.result.contains("role viewer"), "{refusal:?}");
    let kill_switch = find("bootstrap", "POST", "/v1/stop-all");
    assert_eq!((kill_switch.status, kill_switch.result.as_str()), (200, "ok"));

    // Not one token in any log of the run: every daemon's, etcd's, kubesim's.
    let secrets = [fleet.stack.token.as_str(), &alice, &bob, &bogus];
    let mut logs = 0;
    for entry in std::fs::read_dir(&fleet.stack.state_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            logs += 1;
            let log = std::fs::read_to_string(&path).unwrap();
            for secret in secrets {
                assert!(!log.contains(secret), "{} holds a token", path.display());
            }
        }
    }
    assert!(logs >= 5, "{logs} log files");
    let trail = String::from_utf8_lossy(&out.stdout);
    assert!(secrets.iter().all(|s| !trail.contains(s)), "a token reached the audit trail");
}
