//! List and watch throughput of kubesim holding 2,000 ready volumes (with their replicas) and
//! 500 open watches, the server and simulation confined to one core (a current-thread runtime on
//! its own thread); the clients run on another thread.
//!
//! `cargo bench -p kubesim` prints criterion's figures plus the setup's: how long the simulator
//! took to make 2,000 volumes ready, and that no watcher fell behind (no `410` errors).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use kube::Client;
use kubesim::{Config, KubeSim};
use serde_json::{Value, json};

const VOLUMES: usize = 2_000;
const WATCHERS: usize = 500;
const CHANGES: usize = 100;
const RVS: &str = "/apis/storage.deckhouse.io/v1alpha1/replicatedvolumes";
const RVRS: &str = "/apis/storage.deckhouse.io/v1alpha1/replicatedvolumereplicas";

fn get(path: &str) -> http::Request<Vec<u8>> {
    http::Request::get(path).body(Vec::new()).expect("a request")
}

async fn list(client: &Client, path: &str) -> Value {
    let text = client.request_text(get(path)).await.expect("list");
    serde_json::from_str(&text).expect("JSON")
}

fn ready(rv: &Value) -> bool {
    rv["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter().filter(|c| (c["type"] == "IOReady" || c["type"] == "Quorum") && c["status"] == "True").count() == 2
    })
}

async fn patch_label(client: &Client, name: &str, value: u64) {
    let body = serde_json::to_vec(&json!({"metadata": {"labels": {"bench": value.to_string()}}})).expect("JSON");
    let req = http::Request::patch(format!("{RVS}/{name}"))
        .header("content-type", "application/merge-patch+json")
        .body(body)
        .expect("a request");
    client.request_text(req).await.expect("patch");
}

fn main() {
    // The server and the simulation: one core.
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let sim = KubeSim::start(Config { speed: 1_000.0, ..Config::for_tests() }).await.expect("kubesim");
            tx.send((sim.url(), sim.cancellation_token())).expect("send url");
            sim.stopped().await;
        });
    });
    let (url, cancel) = rx.recv().expect("kubesim started");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let _guard = rt.enter();
    let client = Client::try_from(kube::Config::new(url.parse().expect("url"))).expect("client");

    // 2,000 volumes, made ready by the simulator.
    let started = Instant::now();
    rt.block_on(async {
        futures::stream::iter(0..VOLUMES)
            .map(|i| {
                let client = client.clone();
                async move {
                    let body = json!({"apiVersion": "storage.deckhouse.io/v1alpha1", "kind": "ReplicatedVolume",
                        "metadata": {"name": format!("bench-{i:04}")},
                        "spec": {"size": "100Mi", "replicatedStorageClassName": if i % 2 == 0 { "rsc-a" } else { "rsc-b" }}});
                    let req = http::Request::post(RVS)
                        .header("content-type", "application/json")
                        .body(serde_json::to_vec(&body).expect("JSON"))
                        .expect("a request");
                    client.request_text(req).await.expect("create")
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await;
        loop {
            let rvs = list(&client, RVS).await;
            let n = rvs["items"].as_array().map_or(0, |a| a.iter().filter(|rv| ready(rv)).count());
            if n == VOLUMES {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let replicas = rt.block_on(list(&client, RVRS))["items"].as_array().map_or(0, Vec::len);
    println!(
        "setup: {VOLUMES} volumes with {replicas} replicas created and ready in {:.2} s (one server core)",
        started.elapsed().as_secs_f64()
    );

    // 500 watches on the volumes, each counting the events it receives.
    let delivered = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let rv = list(&client, &format!("{RVS}?limit=1")).await["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .to_string();
        for _ in 0..WATCHERS {
            let stream =
                client.request_stream(get(&format!("{RVS}?watch=true&resourceVersion={rv}"))).await.expect("watch");
            let (delivered, errors) = (delivered.clone(), errors.clone());
            tokio::spawn(async move {
                let mut lines = Box::pin(stream).lines();
                while let Ok(Some(line)) = lines.try_next().await {
                    if line.starts_with("{\"type\":\"ERROR\"") {
                        errors.fetch_add(1, Ordering::Relaxed);
                    } else {
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();

    let mut group = c.benchmark_group("list");
    group.throughput(Throughput::Elements(VOLUMES as u64));
    group.bench_function("2000 volumes, 500 watches open", |b| {
        b.to_async(&rt).iter(|| async { client.request_text(get(RVS)).await.expect("list") })
    });
    group.throughput(Throughput::Elements(3));
    group.bench_function("replicas of one volume by label among all replicas", |b| {
        let path = format!("{RVRS}?labelSelector=sds-replicated-volume.deckhouse.io%2Freplicated-volume%3Dbench-0001");
        b.to_async(&rt).iter(|| async { client.request_text(get(&path)).await.expect("list") })
    });
    group.finish();

    let mut group = c.benchmark_group("watch fan-out");
    group.throughput(Throughput::Elements((CHANGES * WATCHERS) as u64));
    let round = AtomicU64::new(0);
    group.bench_function("100 changes to 500 watchers", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (client, delivered, round) = (client.clone(), delivered.clone(), &round);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let r = round.fetch_add(1, Ordering::Relaxed);
                    let before = delivered.load(Ordering::Relaxed);
                    let want = before + (CHANGES * WATCHERS) as u64;
                    let t = Instant::now();
                    futures::stream::iter(0..CHANGES)
                        .map(|i| {
                            let client = client.clone();
                            async move {
                                patch_label(&client, &format!("bench-{:04}", (i * 17 + r as usize) % VOLUMES), r).await
                            }
                        })
                        .buffer_unordered(16)
                        .collect::<Vec<_>>()
                        .await;
                    while delivered.load(Ordering::Relaxed) < want {
                        tokio::time::sleep(Duration::from_micros(200)).await;
                    }
                    total += t.elapsed();
                }
                total
            }
        })
    });
    group.finish();
    c.final_summary();
    println!(
        "watchers: {WATCHERS} open, {} events delivered, {} fell behind (410)",
        delivered.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed)
    );
    cancel.cancel();
    let _ = server.join();
}
