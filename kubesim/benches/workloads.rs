//! kubesim running applications: 100 Deployments of 20 `kubesim/http-echo` replicas, each with a
//! Service (2,000 pods), the server and simulation confined to one core (a current-thread runtime
//! on its own thread); the clients run on another thread.
//!
//! `cargo bench -p kubesim --bench workloads` prints the setup (how long until every Endpoints
//! lists 20 ready addresses, and the server thread's CPU while the cluster is quiet), criterion's
//! figures, and one JSON line with the medians of the timed batches:
//! - listing all pods, and one service's pods by label;
//! - a turn of the controllers after one change: a Deployment scaled 20→19→20, timed until its
//!   Endpoints list 19 and then 20 ready addresses (and, before the setup, the same with a
//!   Deployment of the same shape alone in the cluster); and the pure planner's turn over the cluster cut to 20,
//!   500, 1,000 and 2,000 pods (what every turn of the workloads task costs);
//! - requests per second through the API server's service proxy from 16 concurrent clients;
//! - exec round trips per second (`Api::<Pod>::exec` running `true`: connect, run, status,
//!   close), one at a time and 8 at once.

use std::collections::BTreeMap;
use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::api::{Api, AttachParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use kubesim::apps::Runtime;
use kubesim::selectors::Selectors;
use kubesim::sim::objects::STORAGE_NAMESPACE;
use kubesim::sim::workloads::plan::{self, Kind, Memory, Objects, PodContainers, World};
use kubesim::sim::workloads::{KINDS, resource_of};
use kubesim::{Config, KubeSim, Store};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

const APPS: usize = 100;
const REPLICAS: usize = 20;
const PODS: usize = APPS * REPLICAS;
const NS: &str = "default";
const SPEED: f64 = 1_000.0;
const PROXY_CLIENTS: usize = 16;
/// Requests each proxy client sends per timed iteration.
const PROXY_PER_CLIENT: usize = 25;
const EXEC_CONCURRENT: usize = 8;
/// Every wait of the setup and of the scaling bench gives up (and fails the bench) after this.
const DEADLINE: Duration = Duration::from_secs(300);
/// The name of the server's thread, to find its CPU time in `/proc`.
const SERVER_THREAD: &str = "kubesim-server";

fn app(i: usize) -> String {
    format!("app-{i:03}")
}

/// The index of the application an object belongs to, from its name (`app-042`, `app-042-...`).
fn app_index(name: &str) -> Option<usize> {
    name.strip_prefix("app-")?.get(..3)?.parse().ok()
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "kubesim/http-echo", "ports": [{"containerPort": 5678}]}]},
            },
        },
    }))
    .expect("a valid Deployment")
}

fn service(name: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 5678}]},
    }))
    .expect("a valid Service")
}

fn ready_addresses(ep: &Endpoints) -> usize {
    ep.subsets.iter().flatten().map(|s| s.addresses.as_ref().map_or(0, Vec::len)).sum()
}

/// The server and the simulation on their own thread and current-thread runtime: one core.
struct Server {
    url: String,
    cancel: tokio_util::sync::CancellationToken,
    store: Arc<Store>,
    runtime: Arc<Runtime>,
    thread: std::thread::JoinHandle<()>,
}

impl Server {
    fn start() -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(SERVER_THREAD.into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    let sim = KubeSim::start(Config { speed: SPEED, ..Config::for_tests() }).await.expect("kubesim");
                    let parts = (sim.url(), sim.cancellation_token(), sim.store().clone(), sim.runtime().clone());
                    tx.send(parts).expect("send the server's parts");
                    sim.stopped().await;
                });
            })
            .expect("the server thread");
        let (url, cancel, store, runtime) = rx.recv().expect("kubesim started");
        Self { url, cancel, store, runtime, thread }
    }

    fn stop(self) {
        self.cancel.cancel();
        let _ = self.thread.join();
    }
}

/// CPU time (user + system) the server thread has used, from `/proc` (Linux; ticks of 10 ms).
fn server_cpu() -> Option<Duration> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != SERVER_THREAD {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
        // The fields after the command's closing parenthesis; utime and stime are 14 and 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        return Some(Duration::from_millis(ticks * 10));
    }
    None
}

/// The share of a core the server thread used over the next `period` (`None` off Linux).
fn server_cpu_over(period: Duration) -> Option<f64> {
    let before = server_cpu()?;
    std::thread::sleep(period);
    Some((server_cpu()? - before).as_secs_f64() / period.as_secs_f64() * 100.0)
}

/// Criterion's warm-up before each benchmark's samples.
const WARM_UP: Duration = Duration::from_secs(1);

/// The time per iteration of each timed batch after the warm-up, by figure, for the JSON summary.
#[derive(Default)]
struct Figures(Mutex<BTreeMap<&'static str, Batches>>);

struct Batches {
    first: Instant,
    per_iteration: Vec<f64>,
}

impl Figures {
    /// Records a batch that started at `started`. Criterion warms up by running batches for
    /// [`WARM_UP`] before it samples, so batches that start earlier than that are left out.
    fn record(&self, key: &'static str, started: Instant, iters: u64, took: Duration) {
        let mut all = self.0.lock().expect("figures");
        let batches = all.entry(key).or_insert_with(|| Batches { first: started, per_iteration: Vec::new() });
        if started.duration_since(batches.first) >= WARM_UP {
            batches.per_iteration.push(took.as_secs_f64() / iters.max(1) as f64);
        }
    }

    /// The median seconds per iteration of a figure's sampled batches.
    fn median(&self, key: &str) -> f64 {
        let mut v = self.0.lock().expect("figures").get(key).map(|b| b.per_iteration.clone()).unwrap_or_default();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }
}

/// Runs `op` `iters` times in a row and records the time under `key`.
async fn timed<F, Fut, T>(figures: &Figures, key: &'static str, iters: u64, mut op: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let t = Instant::now();
    for _ in 0..iters {
        black_box(op().await);
    }
    let took = t.elapsed();
    figures.record(key, t, iters, took);
    took
}

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, fut).await.unwrap_or_else(|_| panic!("{what}: not within {DEADLINE:?}"))
}

/// Creates the Deployments and Services and waits until every Endpoints lists all its replicas
/// as ready addresses.
async fn setup(client: &Client) {
    let deployments = Api::<Deployment>::namespaced(client.clone(), NS);
    let services = Api::<Service>::namespaced(client.clone(), NS);
    futures::stream::iter(0..APPS)
        .map(|i| {
            let (deployments, services) = (&deployments, &services);
            async move {
                deployments.create(&PostParams::default(), &deployment(&app(i))).await.expect("Deployment created");
                services.create(&PostParams::default(), &service(&app(i))).await.expect("Service created");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let endpoints = Api::<Endpoints>::namespaced(client.clone(), NS);
    within("every Endpoints lists its replicas", async {
        loop {
            let list = endpoints.list(&ListParams::default()).await.expect("list endpoints");
            let full = list
                .items
                .iter()
                .filter(|e| app_index(&e.name_any()).is_some())
                .filter(|e| ready_addresses(e) == REPLICAS)
                .count();
            if full == APPS {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
}

/// Keeps the number of ready addresses of one service's Endpoints, from a watch (which ends when
/// the handle is aborted).
fn watch_ready_addresses(client: &Client, name: &str) -> (Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let count = Arc::new(AtomicUsize::new(0));
    let endpoints = Api::<Endpoints>::namespaced(client.clone(), NS);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let seen = count.clone();
    let task = tokio::spawn(async move {
        let mut events = watcher(endpoints, config).applied_objects().boxed();
        while let Ok(Some(ep)) = events.try_next().await {
            seen.store(ready_addresses(&ep), Ordering::SeqCst);
        }
    });
    (count, task)
}

/// The scale round trip of one Deployment alone in the cluster, for comparison with the same
/// round trip among 2,000 pods: the median of 5, in seconds. The Deployment and its Service are
/// deleted afterwards, and their pods waited for.
async fn lone_scale_round_trip(client: &Client) -> f64 {
    const LONE: &str = "lone";
    let deployments = Api::<Deployment>::namespaced(client.clone(), NS);
    let services = Api::<Service>::namespaced(client.clone(), NS);
    deployments.create(&PostParams::default(), &deployment(LONE)).await.expect("Deployment created");
    services.create(&PostParams::default(), &service(LONE)).await.expect("Service created");
    let (count, watch) = watch_ready_addresses(client, LONE);
    wait_count(&count, REPLICAS).await;
    let mut took = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        scale_round_trip(&deployments, LONE, &count).await;
        took.push(t.elapsed().as_secs_f64());
    }
    watch.abort();
    took.sort_by(f64::total_cmp);
    deployments.delete(LONE, &Default::default()).await.expect("Deployment deleted");
    services.delete(LONE, &Default::default()).await.expect("Service deleted");
    let pods = Api::<Pod>::namespaced(client.clone(), NS);
    within("the lone Deployment's pods are gone", async {
        while !pods.list(&ListParams::default().labels(&format!("app={LONE}"))).await.expect("list").items.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    took[took.len() / 2]
}

async fn wait_count(count: &AtomicUsize, want: usize) {
    within("the Endpoints follow the scale", async {
        while count.load(Ordering::SeqCst) != want {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    })
    .await
}

/// Scales a Deployment to 19 and back to 20, each time until its Endpoints follow.
async fn scale_round_trip(deployments: &Api<Deployment>, name: &str, count: &AtomicUsize) {
    for replicas in [REPLICAS - 1, REPLICAS] {
        let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
        deployments.patch(name, &PatchParams::default(), &patch).await.expect("scaled");
        wait_count(count, replicas).await;
    }
}

/// The workloads task's view of the cluster, cut to the first `apps` applications (objects of
/// no application, such as nodes, are kept), as its cache holds it.
fn world_of(store: &Store, runtime: &Runtime, apps: usize) -> World {
    let keep = |name: &str| app_index(name).is_none_or(|i| i < apps);
    let mut world = World { speed: SPEED, now: runtime.now(), ..World::default() };
    for kind in KINDS {
        let res = resource_of(store, kind).expect("a served kind");
        let (items, _) = store.list(&res, None, &Selectors::default());
        let objects: Objects = items
            .into_iter()
            .filter(|o| keep(o.name()) && !(kind == Kind::Pod && o.namespace() == STORAGE_NAMESPACE))
            .map(|o| ((o.namespace().to_string(), o.name().to_string()), o))
            .collect();
        world.objects.insert(kind, objects);
    }
    for (read, (key, uid, version)) in runtime.pods().into_iter().enumerate() {
        if let Some((views, wake_at)) = runtime.view(&key).filter(|_| keep(&key.name)) {
            world.containers.insert(key, PodContainers { uid, views, version, read: read as u64, wake_at });
        }
    }
    world
}

/// One GET through a service's proxy; whether it answered 200.
async fn proxy_get(client: &Client, path: &str) -> bool {
    let req = http::Request::get(path).body(kube::client::Body::from(Vec::new())).expect("a request");
    let Ok(resp) = client.send(req).await else { return false };
    let ok = resp.status() == 200;
    ok && resp.into_body().collect_bytes().await.is_ok()
}

/// `true` in a pod: connect, run, read the status, close. Panics unless it succeeded.
async fn exec_true(pods: &Api<Pod>, pod: &str) {
    let mut p = pods.exec(pod, vec!["true"], &AttachParams::default()).await.expect("exec starts");
    let (mut out, mut err) = (p.stdout().expect("stdout"), p.stderr().expect("stderr"));
    let status = p.take_status().expect("a status");
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let (ro, re) = tokio::join!(out.read_to_end(&mut o), err.read_to_end(&mut e));
    ro.and(re).expect("output read");
    let status = status.await.expect("the status arrives");
    assert_eq!(status.status.as_deref(), Some("Success"), "{status:?}");
    p.join().await.expect("the session ends cleanly");
}

fn main() {
    let server = Server::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let _guard = rt.enter();
    let config = |retry: bool| {
        let mut c = kube::Config::new(server.url.parse().expect("url"));
        // The proxy's 503 must count as a failure here, not be retried.
        c.default_retry = retry;
        Client::try_from(c).expect("client")
    };
    let client = config(true);

    let lone_scale_s = rt.block_on(within("the lone Deployment", lone_scale_round_trip(&client)));
    println!(
        "one Deployment of {REPLICAS} alone in the cluster: scaled 20-19-20 in {:.1} ms (median of 5)",
        lone_scale_s * 1e3
    );
    let started = Instant::now();
    rt.block_on(within("setup", setup(&client)));
    let setup_s = started.elapsed().as_secs_f64();
    let pods = Api::<Pod>::namespaced(client.clone(), NS);
    let listed = rt.block_on(pods.list(&ListParams::default().labels("app"))).expect("list pods").items.len();
    assert_eq!(listed, PODS, "every pod listed");
    println!(
        "setup: {APPS} Deployments of {REPLICAS} http-echo replicas and {APPS} Services; every Endpoints lists \
         {REPLICAS} ready addresses after {setup_s:.2} s (one server core, speed {SPEED})"
    );
    let settling_cpu_pct = server_cpu_over(Duration::from_secs(2));
    let quiet_cpu_pct = server_cpu_over(Duration::from_secs(5));
    println!(
        "quiet cluster: the server thread used {} % of a core in the 2 s after the setup, then {} % over 5 s",
        settling_cpu_pct.map_or("?".into(), |p| format!("{p:.1}")),
        quiet_cpu_pct.map_or("?".into(), |p| format!("{p:.1}")),
    );

    let figures = Figures::default();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(WARM_UP)
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();

    let mut group = c.benchmark_group("pods");
    group.throughput(Throughput::Elements(PODS as u64));
    let all = format!("/api/v1/namespaces/{NS}/pods");
    group.bench_function("list all 2000 pods", |b| {
        b.to_async(&rt).iter_custom(|iters| timed(&figures, "list_all", iters, || list_text(&client, &all)))
    });
    group.throughput(Throughput::Elements(REPLICAS as u64));
    let one = format!("/api/v1/namespaces/{NS}/pods?labelSelector=app%3D{}", app(42));
    group.bench_function("list one service's 20 pods by label", |b| {
        b.to_async(&rt).iter_custom(|iters| timed(&figures, "list_one", iters, || list_text(&client, &one)))
    });
    group.finish();

    let mut group = c.benchmark_group("controllers");
    let (count, _watch) = watch_ready_addresses(&client, &app(0));
    rt.block_on(wait_count(&count, REPLICAS));
    let deployments = Api::<Deployment>::namespaced(client.clone(), NS);
    group.bench_function("scale one Deployment 20-19-20 until its Endpoints follow", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| timed(&figures, "scale", iters, || scale_round_trip(&deployments, "app-000", &count)))
    });
    for apps in [1, APPS / 4, APPS / 2, APPS] {
        let world = world_of(&server.store, &server.runtime, apps);
        let mut mem = Memory::new(0);
        // What a turn decides right after the scaling bench (its Deployment's last status, at most).
        let pending = plan::plan(&world, &mut mem).actions.len();
        println!("planner over {} pods: {pending} actions to take", apps * REPLICAS);
        let key = match apps {
            1 => "planner_20",
            25 => "planner_500",
            50 => "planner_1000",
            _ => "planner_2000",
        };
        group.bench_function(format!("planner turn, {} pods", apps * REPLICAS), |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(plan::plan(&world, &mut mem));
                }
                let took = t.elapsed();
                figures.record(key, t, iters, took);
                took
            })
        });
    }
    group.finish();

    let proxy_clients: Vec<Client> = (0..PROXY_CLIENTS).map(|_| config(false)).collect();
    let failed = AtomicU64::new(0);
    let mut group = c.benchmark_group("proxy");
    group.throughput(Throughput::Elements((PROXY_CLIENTS * PROXY_PER_CLIENT) as u64));
    group.bench_function("16 clients through the service proxy", |b| {
        b.to_async(&rt).iter_custom(|iters| timed(&figures, "proxy", iters, || proxy_round(&proxy_clients, &failed)))
    });
    group.finish();

    let targets: Vec<String> = rt
        .block_on(pods.list(&ListParams::default().labels(&format!("app={}", app(7)))))
        .expect("list pods")
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    let mut group = c.benchmark_group("exec");
    group.throughput(Throughput::Elements(1));
    let next = AtomicUsize::new(0);
    let pick = || &targets[next.fetch_add(1, Ordering::Relaxed) % targets.len()];
    group.bench_function("true, one at a time", |b| {
        b.to_async(&rt).iter_custom(|iters| timed(&figures, "exec_one", iters, || exec_true(&pods, pick())))
    });
    group.throughput(Throughput::Elements(EXEC_CONCURRENT as u64));
    group.bench_function("true, 8 at once", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            timed(&figures, "exec_eight", iters, || {
                futures::future::join_all((0..EXEC_CONCURRENT).map(|_| exec_true(&pods, pick())))
            })
        })
    });
    group.finish();
    c.final_summary();

    let proxy_failed = failed.load(Ordering::Relaxed);
    println!("proxy: {proxy_failed} requests did not answer 200");
    let summary = json!({
        "pods": PODS,
        "services": APPS,
        "setup_s": round(setup_s, 2),
        "settling_server_cpu_pct": settling_cpu_pct.map(|p| round(p, 1)),
        "quiet_server_cpu_pct": quiet_cpu_pct.map(|p| round(p, 1)),
        "list_all_pods_ms": round(figures.median("list_all") * 1e3, 2),
        "list_one_service_pods_us": round(figures.median("list_one") * 1e6, 1),
        "scale_20_19_20_ms": round(figures.median("scale") * 1e3, 2),
        "lone_scale_20_19_20_ms": round(lone_scale_s * 1e3, 2),
        "planner_turn_ms": {
            "20": round(figures.median("planner_20") * 1e3, 3),
            "500": round(figures.median("planner_500") * 1e3, 3),
            "1000": round(figures.median("planner_1000") * 1e3, 3),
            "2000": round(figures.median("planner_2000") * 1e3, 3),
        },
        "proxy_clients": PROXY_CLIENTS,
        "proxy_rps": round((PROXY_CLIENTS * PROXY_PER_CLIENT) as f64 / figures.median("proxy"), 0),
        "proxy_failed": proxy_failed,
        "exec_sequential_per_s": round(1.0 / figures.median("exec_one"), 1),
        "exec_concurrent": EXEC_CONCURRENT,
        "exec_concurrent_per_s": round(EXEC_CONCURRENT as f64 / figures.median("exec_eight"), 1),
    });
    println!("{summary}");
    server.stop();
}

fn round(x: f64, digits: i32) -> Value {
    let scale = 10f64.powi(digits);
    json!((x * scale).round() / scale)
}

async fn list_text(client: &Client, path: &str) -> String {
    let req = http::Request::get(path).body(Vec::new()).expect("a request");
    client.request_text(req).await.expect("list")
}

/// Every proxy client sends its share of requests, one after another, all clients at once; the
/// requests go round the services.
async fn proxy_round(clients: &[Client], failed: &AtomicU64) {
    futures::future::join_all(clients.iter().enumerate().map(|(n, client)| proxy_share(n, client, failed))).await;
}

async fn proxy_share(n: usize, client: &Client, failed: &AtomicU64) {
    for r in 0..PROXY_PER_CLIENT {
        let svc = app((n * PROXY_PER_CLIENT + r) % APPS);
        let path = format!("/api/v1/namespaces/{NS}/services/{svc}:http/proxy/bench");
        if !proxy_get(client, &path).await {
            failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}
