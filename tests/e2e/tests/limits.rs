//! A plugin cannot hurt its neighbours: the hostile test plugin, pushed like any custom plugin,
//! floods one host channel at a time beside three well-behaved neighbours on one worker. For
//! each flood: the neighbours' statuses and journal entries keep arriving, the limit hit shows
//! in the flooder's status, the scenario reaches Stopped within 10 s of `stop`, the worker's
//! resident memory stays under 512 MiB and etcd's database under 64 MiB; the Kubernetes flood
//! stays at its rate (±20%).

use std::collections::BTreeMap;
use std::time::Duration;

use chaos_def::records::{InstancePhase, InstanceStatus, ScenarioPhase};
use chaos_e2e::{chaosctl, eventually, test_plugin, text};
use chaosctl::fleet::Fleet;
use chaosctl::stack::StackOptions;
use tokio::time::Instant;

const LIMIT: Duration = Duration::from_secs(60);
/// The flooder's Kubernetes rate in this test (the scenario tightens the worker's 50/100).
const KUBE_QPS: f64 = 20.0;
const KUBE_BURST: f64 = 20.0;
const OPEN_WATCHES: i64 = 4;

/// Each flood and the channel whose limit it hits.
const FLOODS: [(&str, &str); 7] = [
    ("huge-report", "report"),
    ("huge-events", "event"),
    ("event-flood", "action"),
    ("log-flood", "log"),
    ("kube-flood", "kube"),
    ("leak-watches", "watch"),
    ("huge-summary", "summary"),
];

fn scenario(name: &str, mode: &str) -> String {
    format!(
        "apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: {name}}}\nspec:\n  cluster: default\n  \
         tasks:\n    - name: flooder\n      plugin: hostile@1\n      params: {{mode: {mode}}}\n      \
         limits: {{kubeQps: {KUBE_QPS}, kubeBurst: {KUBE_BURST}, openWatches: {OPEN_WATCHES}}}\n    \
         - {{name: neighbour, plugin: hostile@1, params: {{mode: heartbeat}}, replicas: 3}}\n"
    )
}

/// The statuses of scenario `name`'s instances: the flooder's, and the neighbours' by id.
async fn statuses(fleet: &Fleet, name: &str) -> (Option<InstanceStatus>, BTreeMap<String, InstanceStatus>) {
    let items = fleet.client.instances(Some(name)).await.expect("list instances").items;
    let mut flooder = None;
    let mut neighbours = BTreeMap::new();
    for item in items {
        let Some(status) = item.status else { continue };
        if item.instance.id.contains("-flooder") {
            flooder = Some(status);
        } else {
            neighbours.insert(item.instance.id, status);
        }
    }
    (flooder, neighbours)
}

/// Beats journaled so far by each neighbour.
async fn journaled_beats(fleet: &Fleet, name: &str) -> BTreeMap<String, usize> {
    let mut beats = BTreeMap::new();
    for event in fleet.journal(name).await.expect("read the journal") {
        if event.kind == "beat" {
            *beats.entry(event.instance.unwrap_or_default()).or_default() += 1;
        }
    }
    beats
}

/// The resident memory of a process, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// etcd's database size, from its metrics.
async fn etcd_db_bytes(fleet: &Fleet) -> f64 {
    let http = fleet.stack.http().unwrap();
    let text = http.get(format!("{}/metrics", fleet.stack.etcd)).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("etcd_mvcc_db_total_size_in_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .expect("etcd_mvcc_db_total_size_in_bytes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_host_channel_is_bounded_and_the_neighbours_go_on() {
    let state = tempfile::Builder::new().prefix("chaos-fleet-").tempdir().unwrap();
    let options =
        StackOptions { workers: 1, slots: 10, apps: Vec::new(), ..StackOptions::new(state.path().join("stack")) };
    let fleet = Fleet::start_with(options, state).await.expect("start the stack");
    let hostile = test_plugin("chaos_test_hostile");
    let pushed =
        chaosctl(&fleet, &["plugin", "push", hostile.to_str().unwrap(), "--name", "hostile", "--version", "1"]);
    assert!(pushed.status.success(), "{}", text(&pushed));
    let worker = fleet.stack.pid("worker-0").expect("the worker runs");

    for (mode, channel) in FLOODS {
        let name = format!("limits-{mode}");
        let applied = chaos_def::parse_scenarios(&scenario(&name, mode)).unwrap().remove(0);
        fleet.client.apply(&applied).await.expect("apply");

        // The neighbours beat; the flooder hits its limit.
        let before = eventually(LIMIT, &format!("{name}: the neighbours to beat"), || async {
            let (_, neighbours) = statuses(&fleet, &name).await;
            let beats: Vec<i64> = neighbours.values().filter_map(|s| s.counters.get("beats").copied()).collect();
            (beats.len() == 3).then_some(neighbours)
        })
        .await;
        let journaled = journaled_beats(&fleet, &name).await;
        let flooder = eventually(LIMIT, &format!("{name}: the {channel} limit in the flooder's status"), || async {
            statuses(&fleet, &name).await.0.filter(|s| s.limited.get(channel).is_some_and(|h| h.count > 0))
        })
        .await;
        check_flood(&fleet, &name, mode, &flooder).await;

        // Meanwhile the neighbours' statuses and journal entries kept arriving.
        eventually(LIMIT, &format!("{name}: the neighbours' beats to keep arriving"), || async {
            let (_, now) = statuses(&fleet, &name).await;
            let statuses_moved = before.iter().all(|(id, was)| {
                now.get(id)
                    .is_some_and(|s| s.counters.get("beats") >= was.counters.get("beats").map(|b| b + 4).as_ref())
            });
            let journal = journaled_beats(&fleet, &name).await;
            let journal_moved = before.keys().all(|id| journal.get(id) >= journaled.get(id).map(|n| n + 2).as_ref());
            (statuses_moved && journal_moved).then_some(())
        })
        .await;

        let rss = rss_bytes(worker);
        assert!(rss < 512 << 20, "{name}: the worker holds {} MiB", rss >> 20);
        let stopping = Instant::now();
        fleet.client.stop(&name, None).await.expect("stop");
        eventually(Duration::from_secs(10), &format!("{name}: Stopped within 10 s of stop"), || async {
            let view = fleet.client.scenario(&name).await.ok()?;
            (view.status.phase == ScenarioPhase::Stopped).then_some(())
        })
        .await;
        eprintln!("{name}: Stopped {:?} after stop; worker RSS {} MiB", stopping.elapsed(), rss >> 20);
        let db = etcd_db_bytes(&fleet).await;
        assert!(db < (64 << 20) as f64, "{name}: etcd's database is {} MiB", db as u64 >> 20);
    }

    // The journal flood is accounted for in the report, and every limit in the metrics.
    let report = fleet.client.report("limits-event-flood").await.expect("the report");
    assert!(report.journal_dropped > 0, "{report:?}");
    let flood = report.actions.iter().find(|a| a.action == "flood-action").expect("the flood's actions");
    assert!(flood.unseen > 0, "{flood:?}");
    let probes = fleet.stack.probes.iter().find(|(n, _)| n == "worker-0").expect("the worker's probes").1.clone();
    let metrics = reqwest::get(format!("{probes}/metrics")).await.unwrap().text().await.unwrap();
    for (_, channel) in FLOODS {
        let series = format!("chaos_worker_plugin_limited_total{{plugin=\"hostile\",channel=\"{channel}\"}} ");
        let line = metrics.lines().find(|l| l.starts_with(&series));
        let count: u64 = line.and_then(|l| l[series.len()..].parse().ok()).unwrap_or(0);
        assert!(count > 0, "no {series} in\n{metrics}");
    }
}

/// What each flood must show beyond its limit in the status.
async fn check_flood(fleet: &Fleet, name: &str, mode: &str, flooder: &InstanceStatus) {
    match mode {
        "kube-flood" => {
            // Long enough a window for the rate to show over the burst.
            let status = eventually(LIMIT, "the kube flood to run 5 s", || async {
                statuses(fleet, name).await.0.filter(|s| s.counters.get("elapsedMs").is_some_and(|ms| *ms >= 5_000))
            })
            .await;
            let calls = status.counters["calls"] as f64;
            let seconds = status.counters["elapsedMs"] as f64 / 1000.0;
            let most = KUBE_BURST + KUBE_QPS * seconds;
            assert!(calls <= most * 1.2, "{calls} calls in {seconds:.1} s; at most {most:.0}");
            assert!(calls >= KUBE_QPS * seconds * 0.8, "{calls} calls in {seconds:.1} s: far below the rate");
            eprintln!("{name}: {calls} calls in {seconds:.1} s (at most {most:.0} allowed)");
        }
        "leak-watches" => {
            let status = eventually(LIMIT, "the leaked watches to be counted", || async {
                statuses(fleet, name).await.0.filter(|s| s.counters.contains_key("opened"))
            })
            .await;
            assert_eq!(status.counters["opened"], OPEN_WATCHES);
            let error = status.state["error"].as_str().unwrap_or_default();
            assert!(error.contains(&format!("openWatches is {OPEN_WATCHES}")), "{error}");
        }
        "huge-summary" => {
            let status = eventually(LIMIT, "the flooder to finish", || async {
                statuses(fleet, name).await.0.filter(|s| s.phase.is_finished())
            })
            .await;
            assert_eq!(status.phase, InstancePhase::Succeeded, "{status:?}");
            let dropped = status.state["summary"]["dropped"].as_str().unwrap_or_default();
            assert_eq!(dropped, "a summary of 4.0 MiB; summaryBytes is 64.0 KiB");
        }
        "huge-report" => {
            // Too large to be written, so no report of the flooder ever reached etcd; and
            // `describe` says why.
            assert!(!flooder.counters.contains_key("sent"), "{flooder:?}");
            let described = chaosctl(fleet, &["describe", "scenario", name]);
            let said = text(&described);
            assert!(said.contains("Limits hit:") && said.contains("reportBytes is 64.0 KiB"), "{said}");
        }
        _ => {}
    }
}
