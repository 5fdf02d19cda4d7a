//! The whole system under failure (issue 8): the real binaries run megatests on kubesim.
//!
//! - `chaosctl demo` ends with a report that flags as Broken exactly the volumes kubesim's
//!   planted bug hit, and leaves nothing behind.
//! - A megatest goes on while the controller, the scheduler, the apiserver and a worker are
//!   each killed with SIGKILL in turn: no volume is lost, no instance ran twice at once, nothing
//!   is left after the stop, and the report counts the RVs kubesim saw.
//! - `stop --all` stops every scenario and refuses new ones until `resume`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chaos_def::records::ScenarioPhase;
use chaos_e2e::{RVS, duplicates, eventually, megatest, nothing_left, phase, reqwest_get};
use chaosctl::fleet::Fleet;
use chaosctl::stack::StackOptions;
use serde_json::Value;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_flags_exactly_the_volumes_the_planted_bug_hit_and_leaves_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let state = tempfile::tempdir().unwrap();
    let chaosctl = chaosctl::stack::sibling("chaosctl").unwrap();
    let out = tokio::process::Command::new(chaosctl)
        .args(["demo", "--run-for", "60s", "--fault-replica-loss", "0.5", "--state-dir"])
        .arg(state.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("nothing labelled chaos.dev/scenario=demo is left"), "{stdout}");
    assert!(stdout.contains("dashboard: https://127.0.0.1:") && stdout.contains("/ui  (sign in"), "{stdout}");
    assert!(
        stdout
            .contains("Every volume the bug hit is flagged Broken, and no other; each shows down in its volume probe."),
        "{stdout}"
    );
    // The availability the demo measured: the report's table and the timeline.
    assert!(stdout.contains("PROBE") && stdout.contains("synthetic/disk"), "{stdout}");
    assert!(stdout.contains("Availability during the run"), "{stdout}");
    let hits: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Planted bug hit ")?.split_whitespace().next()?.parse().ok())
        .expect("the demo says how many volumes the bug hit");
    assert!(hits >= 1, "the planted bug hit nothing: the demo shows no Broken volume\n{stdout}");
    assert!(stdout.contains("VERDICT") && stdout.contains("Broken"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megatest_survives_each_component_killed_in_turn() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let state = tempfile::tempdir().unwrap();
    let options = StackOptions { workers: 3, speed: 30.0, ..StackOptions::new(state.path()) };
    let mut fleet = Fleet::start_with(options, state).await.expect("start the stack");
    fleet.client.apply(&megatest("survivor")).await.unwrap();

    // Every RV kubesim ever holds for the scenario, polled while the test runs.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::<String>::new()));
    let selector = "chaos.dev/scenario%3Dsurvivor";
    let poll = {
        let (seen, kube) = (seen.clone(), fleet.stack.kube_url.clone().unwrap());
        tokio::spawn(async move {
            loop {
                let list = reqwest_get(&format!("{kube}/{RVS}?labelSelector={selector}")).await;
                for rv in list["items"].as_array().into_iter().flatten() {
                    if let Some(name) = rv.pointer("/metadata/name").and_then(Value::as_str) {
                        seen.lock().unwrap().insert(name.to_string());
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    let done = |fleet: &Fleet| {
        let client = fleet.client.clone();
        async move { Some(client.scenario("survivor").await.ok()?.status.volumes.done) }
    };
    eventually(Duration::from_secs(90), "a first volume through its life", || async {
        done(&fleet).await.filter(|d| *d >= 1)
    })
    .await;

    let mut dead = BTreeMap::new();
    for victim in ["controller", "scheduler", "apiserver", "worker-0"] {
        let before = done(&fleet).await.unwrap_or(0);
        fleet.stack.kill(victim).await.unwrap();
        if victim == "worker-0" {
            dead.insert(victim.to_string(), jiff::Timestamp::now());
        } else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            fleet.stack.restart(victim).unwrap();
        }
        // The run goes on: another volume finishes its whole life.
        eventually(Duration::from_secs(90), &format!("a volume done after {victim} was killed"), || async {
            done(&fleet).await.filter(|d| *d > before)
        })
        .await;
    }

    fleet.client.stop("survivor", None).await.unwrap();
    eventually(Duration::from_secs(120), "the scenario stopped", || async {
        (phase(&fleet, "survivor").await == Some(ScenarioPhase::Stopped)).then_some(())
    })
    .await;
    poll.abort();
    let status = fleet.client.scenario("survivor").await.unwrap().status;
    assert_eq!(status.volumes.done, status.volumes.started, "{status:?}");
    assert_eq!(status.volumes.failed, 0, "{status:?}");
    nothing_left(&fleet, "survivor").await;
    assert_eq!(duplicates(&fleet, "survivor", &dead).await, Vec::<String>::new());

    // The report counts what kubesim saw.
    let report = fleet.client.report("survivor").await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(report.rvs_created as usize, seen.len(), "report {report:?}\nkubesim saw {seen:?}");
    assert_eq!(report.volumes.started, status.volumes.started);
    let checked: BTreeSet<String> = report.checks.iter().map(|c| c.rv.clone()).collect();
    assert!(checked.is_subset(&seen), "checked {checked:?}, kubesim saw {seen:?}");
    fleet.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_all_stops_every_scenario_and_refuses_new_ones_until_resume() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut fleet = Fleet::start(2, 40, 2).await.expect("start the stack");
    fleet.apply_noop("first", 3).await.unwrap();
    fleet.apply_noop("second", 3).await.unwrap();
    fleet.client.stop_all(Some("maintenance".into())).await.unwrap();
    for name in ["first", "second"] {
        eventually(Duration::from_secs(60), &format!("{name} stopped"), || async {
            (phase(&fleet, name).await == Some(ScenarioPhase::Stopped)).then_some(())
        })
        .await;
    }
    let refused = fleet.apply_noop("third", 1).await.expect_err("a new scenario during stop --all");
    assert!(refused.to_string().contains("stop"), "{refused}");
    fleet.client.resume().await.unwrap();
    fleet.apply_noop("third", 1).await.unwrap();
    eventually(Duration::from_secs(60), "third running", || async {
        (phase(&fleet, "third").await == Some(ScenarioPhase::Running)).then_some(())
    })
    .await;
    fleet.stack.stop().await;
}
