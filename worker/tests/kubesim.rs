//! The exerciser plugin calls every import against a real kubesim over HTTP; each call's result
//! is checked, and what the host recorded (logs, actions, reports, events, stdio) is too.

mod common;

use std::time::Duration;

use chaos_worker::runtime::{KubeGateway, Level, MemorySink, Outcome, Record};
use common::*;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exerciser_calls_every_import_against_kubesim() {
    let sim = kubesim::KubeSim::start(kubesim::Config::for_tests()).await.expect("kubesim");
    let kube = KubeGateway::from_url(&sim.url()).expect("gateway");
    let rt = runtime();
    let plugin = load(&rt, "exerciser").await;
    let sink = MemorySink::new();
    let handle = start(&plugin, "ex-1", json!({"wait_for_cancel": true}), &sink, Some(kube));

    // It reports "waiting" once every check is done, then sleeps until stopped.
    eventually(LIMIT, "the exerciser to finish its checks", || {
        sink.of("ex-1").iter().any(|r| matches!(r, Record::Report { state, .. } if state["phase"] == "waiting"))
    })
    .await;
    handle.cancel();
    let summary = match finish(handle, LIMIT).await {
        Outcome::Succeeded(s) => s,
        Outcome::Failed(why) => panic!("the exerciser failed: {why}"),
    };
    let checks = summary["checks"].as_object().expect("checks");
    let failed: Vec<_> = checks.iter().filter(|(_, v)| *v != "ok").collect();
    assert!(failed.is_empty(), "failed checks: {failed:?}");
    for name in [
        "info",
        "now",
        "random",
        "random_range",
        "cancelled",
        "sleep",
        "action_failed",
        "kube_list_nodes",
        "kube_create",
        "ownership_labels",
        "error_conflict",
        "kube_get",
        "error_not_found",
        "kube_list_by_label",
        "watch_wait_ready",
        "kube_patch_merge",
        "kube_patch_json",
        "error_invalid",
        "error_timeout",
        "error_forbidden",
        "watch_open_next",
        "watch_next_timeout",
        "kube_delete",
        "watch_wait_gone",
        "sleep_cut_by_cancel",
        "kube_after_cancel",
    ] {
        assert_eq!(checks.get(name), Some(&json!("ok")), "check {name} missing");
    }
    assert_eq!(summary["cleanup"], "done");

    let records = sink.of("ex-1");
    let levels: Vec<Level> = records
        .iter()
        .filter_map(|r| match r {
            Record::Log { level, message, .. } if message == "exerciser log line" => Some(*level),
            _ => None,
        })
        .collect();
    assert_eq!(levels, [Level::Trace, Level::Debug, Level::Info, Level::Warn, Level::Error]);
    let stream_of = |text: &str| {
        records.iter().find_map(|r| match r {
            Record::Log { message, fields, .. } if message == text => Some(fields.clone()),
            _ => None,
        })
    };
    assert_eq!(stream_of("a line on stdout"), Some(vec![("stream".into(), "stdout".into())]));
    assert_eq!(stream_of("a line on stderr"), Some(vec![("stream".into(), "stderr".into())]));
    let create = records.iter().find_map(|r| match r {
        Record::ActionEnd { name, ok, .. } if name == "create-volume" => Some(*ok),
        _ => None,
    });
    assert_eq!(create, Some(true));
    let failing = records.iter().find_map(|r| match r {
        Record::ActionEnd { name, ok, result, .. } if name == "failing-action" => Some((*ok, result.clone())),
        _ => None,
    });
    assert_eq!(failing, Some((false, "deliberate".into())));
    assert!(records.iter().any(|r| matches!(r, Record::ActionStart { name, params, .. }
        if name == "failing-action" && params == &[("why".to_string(), "on purpose".to_string())])));
    assert!(records.iter().any(|r| matches!(r, Record::Event { event, .. } if event == "exercised")));
    assert!(
        records.iter().any(|r| matches!(r, Record::Log { message, .. } if message.starts_with("kube call refused")))
    );

    // The exerciser deleted its volume and waited until it was gone: nothing of it remains.
    let volume = summary["volume"].as_str().unwrap();
    let leftover = KubeGateway::from_url(&sim.url()).unwrap();
    let rv = leftover.resolve("storage.deckhouse.io/v1alpha1", "ReplicatedVolume").await.unwrap();
    let err = leftover.get(&rv, None, volume).await.unwrap_err();
    assert!(matches!(err, chaos_worker::runtime::bindings::chaos::plugin::types::Error::NotFound(_)), "{err:?}");
    sim.shutdown().await;
}
