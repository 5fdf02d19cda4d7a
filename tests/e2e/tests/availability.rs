//! Availability end to end: the real binaries with kubesim's smoke-mini application, one probe
//! sampling a smoke-mini pod through the API server's proxy every second, and what the range
//! API says afterwards about each of these moments:
//!
//! - the application is stopped (SIGSTOP) for 40 s: about 40 s down, in the cells of the outage,
//!   and up before it;
//! - a Maintenance Downtime over the outage mutes it; an Accident does not; a request that mutes
//!   nothing sees it down;
//! - etcd is killed for 90 s and started again: the probes stop with the workers' leases (no
//!   data, not down), and the episode finished just before, waiting on disk through the outage,
//!   is delivered;
//! - the worker running the probe is SIGKILLed in the second half of a minute, then started
//!   again on the same state directory: the time until the probe runs elsewhere is no data (not
//!   down), and the episode it finished just before the kill — in its write-ahead store only,
//!   its minute's page not yet written — is delivered by the restarted worker.
//!
//! The results are read once at the end: every moment's cells are in etcd by then.

use std::time::Duration;

use chaos_availability::range::{ProbeRange, StepCell};
use chaos_availability::{DowntimeType, ProbeState};
use chaos_def::availability::LiveState;
use chaos_e2e::eventually;
use chaosctl::client::RangeRequest;
use chaosctl::fleet::Fleet;
use chaosctl::stack::StackOptions;

const NAMESPACE: &str = "smoke-mini";
const POD: &str = "smoke-mini-b-0";
const LIMIT: Duration = Duration::from_secs(120);

fn scenario() -> chaos_def::Scenario {
    let text = format!(
        "apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: avail}}\nspec:\n  probes:\n    \
         - name: app\n      group: synthetic\n      http:\n        pod: {{namespace: {NAMESPACE}, name: {POD}, port: 8080}}\n        \
         path: /\n"
    );
    chaos_def::parse_scenarios(&text).expect("the scenario parses").remove(0)
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// What the probe shows now, from its live states in etcd (most optimistic).
async fn live(fleet: &Fleet) -> Option<ProbeState> {
    let prefix = fleet.store.keys().availability_probe_live_prefix("synthetic", "app");
    let states = fleet.store.list::<LiveState>(&prefix).await.ok()?;
    let states: Vec<ProbeState> = states.items.into_iter().map(|(_, v)| v.value.state).collect();
    [ProbeState::Up, ProbeState::Unknown, ProbeState::Down].into_iter().find(|s| states.contains(s))
}

async fn wait_live(fleet: &Fleet, wanted: ProbeState, what: &str) {
    eventually(LIMIT, what, || async { (live(fleet).await == Some(wanted)).then_some(()) }).await;
}

/// `kubectl exec` in the application's pod.
fn signal_app(fleet: &Fleet, signal: &str) {
    let kube = fleet.stack.kube_url.clone().expect("kubesim runs");
    let out = std::process::Command::new("kubectl")
        .args(["--server", &kube, "exec", "-n", NAMESPACE, POD, "--", "kill", signal, "1"])
        .output()
        .expect("kubectl runs (scripts/bootstrap.sh installs it)");
    assert!(out.status.success(), "kill {signal}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Sleeps into the second half of a minute (35–55 s into it) whose start `ok` accepts: that
/// minute's first episode is finished (it ends at :30, with 3 s of grace) but its page is not
/// written (the second half is open). Now, when it qualifies; else a later minute.
async fn second_half_of_a_minute(ok: impl Fn(i64) -> bool) {
    loop {
        let t = now();
        let minute = t - t.rem_euclid(60);
        if (35..55).contains(&(t - minute)) && ok(minute) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The worker the probe instance is assigned to.
async fn probe_worker(fleet: &Fleet) -> Option<String> {
    let held = chaos_e2e::assignments(fleet).await;
    held.into_iter().find(|(_, ids)| ids.iter().any(|id| id.contains("-p-app"))).map(|(worker, _)| worker)
}

async fn range(fleet: &Fleet, from: i64, to: i64, mute: Option<Vec<DowntimeType>>) -> ProbeRange {
    let request = RangeRequest {
        from,
        to,
        step: 30,
        group: Some("synthetic".into()),
        probe: Some("app".into()),
        scenario: None,
        mute,
    };
    let mut answer = fleet.client.availability_range(&request).await.expect("the range API answers");
    assert_eq!(answer.probes.len(), 1, "one probe: {answer:?}");
    answer.probes.remove(0)
}

/// The cells lying wholly within `[from, to)`.
fn within(probe: &ProbeRange, from: i64, to: i64) -> Vec<&StepCell> {
    probe.steps.iter().filter(|c| c.start >= from && c.end <= to).collect()
}

/// The cell holding the instant `at`.
fn cell_at(probe: &ProbeRange, at: i64) -> &StepCell {
    probe.steps.iter().find(|c| c.start <= at && at < c.end).expect("a cell")
}

fn downtime(kind: &str, from: i64, to: i64) -> chaos_def::availability::DowntimeDocument {
    let stamp = |s: i64| jiff::Timestamp::from_second(s).unwrap().to_string();
    let text = format!(
        "apiVersion: deckhouse.io/v1alpha1\nkind: Downtime\nmetadata: {{name: app-outage}}\nspec:\n  \
         - {{startDate: \"{}\", endDate: \"{}\", type: {kind}, affected: [synthetic]}}\n",
        stamp(from),
        stamp(to)
    );
    match chaos_def::availability::parse_documents(&text).expect("the Downtime parses").remove(0) {
        chaos_def::availability::Document::Downtime(d) => d,
        other => panic!("not a Downtime: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_downtimes_a_killed_worker_and_a_lost_etcd_are_counted_as_upmeter_does() {
    let state = tempfile::Builder::new().prefix("chaos-availability-").tempdir().unwrap();
    let options = StackOptions {
        workers: 2,
        slots: 10,
        worker_lease_ttl: 2,
        apps: vec!["smoke-mini".into()],
        ..StackOptions::new(state.path())
    };
    let mut fleet = Fleet::start_with(options, state).await.expect("the stack starts");
    fleet.client.apply(&scenario()).await.expect("applied");
    wait_live(&fleet, ProbeState::Up, "the probe up").await;
    let measured_from = now();
    // Up for at least one whole 30-second cell before the outage.
    let whole_cell_ends = (measured_from + 1).div_euclid(30) * 30 + 60;
    tokio::time::sleep(Duration::from_secs((whole_cell_ends + 2 - now()) as u64)).await;

    // The application stops for 40 s.
    signal_app(&fleet, "-STOP");
    let stopped = now();
    wait_live(&fleet, ProbeState::Down, "the probe down while the application is stopped").await;
    tokio::time::sleep(Duration::from_secs((stopped + 40 - now()).max(0) as u64)).await;
    signal_app(&fleet, "-CONT");
    let continued = now();
    wait_live(&fleet, ProbeState::Up, "the probe up again").await;

    // etcd goes for 90 s, in the second half of a minute (the probe ran through its first half).
    second_half_of_a_minute(|_| true).await;
    let etcd_lost = now();
    fleet.stack.kill("etcd").await.unwrap();
    tokio::time::sleep(Duration::from_secs(90)).await;
    fleet.stack.restart("etcd").unwrap();
    let etcd_back = now();
    wait_live(&fleet, ProbeState::Up, "the probe up after etcd came back").await;
    let running_again = now();

    // The worker running the probe dies in the second half of a minute whose first half it
    // measured for 10 s at least, and comes back on the same state directory.
    second_half_of_a_minute(|minute| running_again <= minute + 20).await;
    let victim = probe_worker(&fleet).await.expect("the probe is placed");
    let killed = now();
    fleet.stack.kill(&victim).await.unwrap();
    let moved = eventually(LIMIT, "the probe placed on the other worker", || async {
        probe_worker(&fleet).await.filter(|w| *w != victim).map(|_| now())
    })
    .await;
    fleet.stack.restart(&victim).unwrap();

    // Every moment's pages in: the first halves of the minutes etcd went and the worker died,
    // each delivered from a write-ahead store once etcd (or the worker) was back.
    let first_half = |at: i64| at - at.rem_euclid(60) + 1;
    let measured = |c: &StepCell| c.up + c.down + c.unknown;
    let probe = eventually(Duration::from_secs(150), "the pages of the etcd outage and the kill", || async {
        let probe = range(&fleet, measured_from, now(), None).await;
        let delivered = measured(cell_at(&probe, first_half(etcd_lost))) >= 25
            && measured(cell_at(&probe, first_half(killed))) >= 10;
        delivered.then_some(probe)
    })
    .await;
    let show = |cells: &[&StepCell]| {
        cells.iter().map(|c| format!("{}:{}/{}/{}", c.start % 3600, c.up, c.down, c.nodata)).collect::<Vec<_>>()
    };
    // For the record (and for reading a failure): every cell, up/down/no data, and the moments.
    let all: Vec<&StepCell> = probe.steps.iter().collect();
    eprintln!(
        "cells (second of the hour: up/down/nodata): {:?}\nstopped {} continued {} killed {} moved {} etcd lost {} back {}",
        show(&all),
        stopped % 3600,
        continued % 3600,
        killed % 3600,
        moved % 3600,
        etcd_lost % 3600,
        etcd_back % 3600
    );

    // The outage: about 40 s down, in its own cells; up before it.
    let around = within(&probe, stopped - 30, continued + 60);
    let down: u32 = around.iter().map(|c| c.down).sum();
    assert!((36..=46).contains(&down), "{down} s down for a 40 s outage: {:?}", show(&around));
    for cell in within(&probe, stopped + 1, continued - 1) {
        assert!(cell.down >= 28, "a cell inside the outage: {:?}", show(&[cell]));
    }
    let before = within(&probe, measured_from + 1, stopped - 1);
    assert!(!before.is_empty() && before.iter().all(|c| c.down == 0 && c.up >= 28), "{:?}", show(&before));

    // etcd lost: no data, not down; the episode finished before it was delivered afterwards.
    let lost = within(&probe, etcd_lost + 5, etcd_back);
    assert!(lost.iter().all(|c| c.down == 0), "down while etcd was away: {:?}", show(&lost));
    assert!(lost.iter().any(|c| c.nodata >= 28), "no data while etcd was away: {:?}", show(&lost));
    let before_etcd = cell_at(&probe, first_half(etcd_lost));
    assert!(measured(before_etcd) >= 25, "the episode before etcd went: {:?}", show(&[before_etcd]));

    // The killed worker: no data until the probe ran elsewhere, never down; the episode it
    // finished just before (only in its state directory then) was delivered after its restart.
    for cell in within(&probe, killed, moved + 1) {
        assert_eq!(cell.down, 0, "down while no worker ran the probe: {:?}", show(&[cell]));
    }
    let before_kill = cell_at(&probe, first_half(killed));
    assert!(
        measured(before_kill) >= 10 && before_kill.down == 0,
        "the episode before the kill: {:?}",
        show(&[before_kill])
    );
    assert!(probe.total.availability.is_some_and(|a| a < 1.0), "the outage counts: {:?}", probe.total);

    // A Maintenance Downtime over the outage mutes it (by default); muting nothing does not.
    let applied = fleet.client.apply_downtime(&downtime("Maintenance", stopped, continued + 1)).await.unwrap();
    assert_eq!(applied.result, "created");
    let muted = range(&fleet, stopped - 30, continued + 60, None).await;
    let (m_down, m_muted): (u32, u32) = (muted.steps.iter().map(|c| c.down).sum(), muted.total.muted);
    assert!(m_down <= 2 && m_muted + 2 >= down, "muted {m_muted}, still down {m_down}, of {down}");
    assert!(muted.total.availability.is_some_and(|a| a > 0.97), "{:?}", muted.total);
    assert!(cell_at(&muted, stopped + 20).downtimes.iter().any(|d| d.name == "app-outage"));
    let unmuted = range(&fleet, stopped - 30, continued + 60, Some(Vec::new())).await;
    assert_eq!(unmuted.total.muted, 0);
    assert_eq!(unmuted.steps.iter().map(|c| c.down).sum::<u32>(), down);

    // The same window as an Accident is not muted.
    let replaced = fleet.client.apply_downtime(&downtime("Accident", stopped, continued + 1)).await.unwrap();
    assert_eq!(replaced.result, "configured");
    let accident = range(&fleet, stopped - 30, continued + 60, None).await;
    assert_eq!((accident.total.muted, accident.steps.iter().map(|c| c.down).sum::<u32>()), (0, down));

    // The report of the run shows the probe's availability.
    let report = fleet.client.report("avail").await.expect("the report");
    let row = report.availability.iter().find(|r| r.probe == "app").expect("the probe in the report");
    assert!(row.down >= 36 && row.availability.is_some_and(|a| a < 1.0), "{row:?}");
    fleet.stack.stop().await;
}
