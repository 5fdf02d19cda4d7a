//! Criterion benches of the plugin runtime's parts: instantiation from `InstancePre`, and a whole
//! short instance (start, run, summary). The system-level figures are `chaos-bench runtime`.

use std::sync::Arc;

use chaos_worker::runtime::{InstanceSpec, NullSink, Runtime, RuntimeConfig, Services};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio_util::sync::CancellationToken;

fn runtime_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (runtime, plugin) = rt.block_on(async {
        let runtime = Runtime::new(RuntimeConfig { max_instances: 256, ..RuntimeConfig::default() }).unwrap();
        let path = chaos_worker::plugins::testing("hostile").unwrap();
        let plugin = runtime.load_file(path).await.unwrap();
        (runtime, plugin)
    });
    c.bench_function("instantiate", |b| b.to_async(&rt).iter(|| async { plugin.instantiate_only().await.unwrap() }));
    c.bench_function("instance_ok", |b| {
        b.to_async(&rt).iter(|| async {
            plugin
                .start(
                    InstanceSpec {
                        instance_id: "b".into(),
                        config_json: r#"{"mode":"ok"}"#.into(),
                        ..InstanceSpec::default()
                    },
                    Services::new(Arc::new(NullSink), None),
                    CancellationToken::new(),
                )
                .wait()
                .await
        })
    });
    drop(runtime);
}

criterion_group!(benches, runtime_benches);
criterion_main!(benches);
