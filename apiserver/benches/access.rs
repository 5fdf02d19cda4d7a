//! What the access layer costs a request: `GET /v1/workers` through a real apiserver (plain
//! HTTP on loopback, a real etcd) with authentication off and with a bearer token (one etcd read
//! of the token's record, the decision, the rate limiter). Criterion's figures, then a JSON line
//! of medians from the two interleaved, so that their ratio comes from one stretch of time.

use std::time::{Duration, Instant};

use chaos_apiserver::{AppState, RateLimit, ServeOptions};
use chaos_def::store::Store;
use chaos_harness::{EtcdServer, unique_prefix};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio_util::sync::CancellationToken;

struct Server {
    url: String,
    token: Option<String>,
}

async fn start(etcd: &EtcdServer, options: ServeOptions, shutdown: &CancellationToken) -> Server {
    let store = Store::connect(&[etcd.endpoint()], &unique_prefix()).await.unwrap();
    let token = (options.auth == chaos_apiserver::AuthMode::Token).then(chaos_def::auth::generate_token);
    if let Some(token) = &token {
        chaos_apiserver::tokens::install_bootstrap(&store, token, "bench").await.unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/workers", listener.local_addr().unwrap());
    tokio::spawn(chaos_apiserver::serve(listener, AppState::new(store, options), shutdown.clone()));
    Server { url, token }
}

async fn get(http: &reqwest::Client, server: &Server) {
    let mut request = http.get(&server.url);
    if let Some(token) = &server.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.bytes().await.unwrap();
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e6
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let etcd = EtcdServer::start();
    let shutdown = CancellationToken::new();
    let unlimited = RateLimit { per_second: 1_000_000, burst: 1_000_000 };
    let (open, tokens) = runtime.block_on(async {
        let open = start(&etcd, ServeOptions::open(), &shutdown).await;
        let secure = ServeOptions { rate: unlimited, unauthenticated_rate: unlimited, ..ServeOptions::secure() };
        (open, start(&etcd, secure, &shutdown).await)
    });
    let http = reqwest::Client::new();
    c.bench_function("GET /v1/workers, --auth none", |b| b.iter(|| runtime.block_on(get(&http, &open))));
    c.bench_function("GET /v1/workers, a bearer token", |b| b.iter(|| runtime.block_on(get(&http, &tokens))));

    let (mut none, mut token) = (Vec::new(), Vec::new());
    runtime.block_on(async {
        for _ in 0..2_000 {
            let started = Instant::now();
            get(&http, &open).await;
            none.push(started.elapsed());
            let started = Instant::now();
            get(&http, &tokens).await;
            token.push(started.elapsed());
        }
    });
    let (none, token) = (median(none), median(token));
    println!(
        "{}",
        serde_json::json!({
            "request_us_auth_none": (none * 10.0).round() / 10.0,
            "request_us_token": (token * 10.0).round() / 10.0,
            "token_overhead_us": ((token - none) * 10.0).round() / 10.0,
            "ratio": ((token / none) * 1000.0).round() / 1000.0,
        })
    );
    shutdown.cancel();
}

criterion_group!(benches, bench);
criterion_main!(benches);
