//! Pushed plugins on the worker, against a real etcd: fetched by digest once, checked against
//! it, kept on disk so that the next worker process needs no fetch, and refused when damaged.

use chaos_def::PluginRef;
use chaos_def::plugin::sha256_hex;
use chaos_def::records::PluginMeta;
use chaos_def::store::Store;
use chaos_harness::{EtcdServer, unique_prefix};
use chaos_worker::daemon::pushed::PushedPlugins;
use chaos_worker::runtime::{Runtime, RuntimeConfig};

fn hostile() -> Vec<u8> {
    std::fs::read(chaos_worker::plugins::testing("hostile").expect("the hostile test plugin")).unwrap()
}

async fn push(store: &Store, name: &str, version: &str, bytes: &[u8]) -> String {
    let digest = sha256_hex(bytes);
    store.write_blob(&digest, bytes).await.unwrap();
    let meta = PluginMeta {
        name: name.into(),
        version: version.into(),
        digest: digest.clone(),
        size: bytes.len() as u64,
        capabilities: serde_json::Value::Null,
        interface_version: "0.1.0".into(),
        pushed_at: jiff::Timestamp::now(),
    };
    store.put(&store.keys().plugin(name, version), &meta).await.unwrap();
    digest
}

fn runtime(cache: &std::path::Path) -> Runtime {
    Runtime::new(RuntimeConfig { cache_dir: Some(cache.to_path_buf()), ..RuntimeConfig::default() }).unwrap()
}

/// A worker's pushed plugins, keeping them on disk in `cache` (as a fresh worker process would).
fn worker_plugins(store: &Store, cache: &std::path::Path) -> PushedPlugins {
    PushedPlugins::new(store.clone(), runtime(cache), Some(cache.to_path_buf()))
}

/// A store on a fresh prefix, a cache directory, and the test plugin pushed as `mine@1.0.0`:
/// its bytes and digest.
async fn pushed_fixture() -> (Store, tempfile::TempDir, Vec<u8>, String) {
    let store = Store::connect(&[EtcdServer::shared().endpoint()], &unique_prefix()).await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let bytes = hostile();
    let digest = push(&store, "mine", "1.0.0", &bytes).await;
    (store, cache, bytes, digest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_plugin_is_fetched_once_and_kept_on_disk() {
    let (store, cache, bytes, digest) = pushed_fixture().await;

    let pushed = worker_plugins(&store, cache.path());
    let by_version = PluginRef::Version { name: "mine".into(), version: "1.0.0".into() };
    // Every way of naming it gives the same plugin.
    for reference in [by_version.clone(), PluginRef::Name("mine".into()), PluginRef::Digest(digest.clone())] {
        assert_eq!(pushed.load(&reference).await.unwrap().digest(), digest);
    }
    let kept = cache.path().join("blobs").join(format!("{digest}.wasm"));
    assert_eq!(std::fs::read(&kept).unwrap(), bytes);

    // A restarted worker finds it on disk: it loads even with the blob gone from etcd.
    store.delete_prefix(&store.keys().blob_prefix(&digest)).await.unwrap();
    let restarted = worker_plugins(&store, cache.path());
    assert_eq!(restarted.load(&PluginRef::Digest(digest.clone())).await.unwrap().digest(), digest);

    // A damaged file on disk is not trusted: it is fetched again (and here, gone from etcd, fails).
    std::fs::write(&kept, b"not the plugin").unwrap();
    let third = worker_plugins(&store, cache.path());
    let error = third.load(&PluginRef::Digest(digest.clone())).await.unwrap_err().to_string();
    assert!(error.contains("is not stored"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_bytes_and_unknown_references_are_refused_with_the_reason() {
    let (store, cache, bytes, digest) = pushed_fixture().await;
    let mut damaged = bytes.clone();
    damaged[100] ^= 1;
    store.write_blob(&digest, &damaged).await.unwrap();

    let pushed = PushedPlugins::new(store.clone(), runtime(cache.path()), None);
    let error = pushed.load(&PluginRef::Digest(digest.clone())).await.unwrap_err().to_string();
    assert!(error.contains(&format!("plugin sha256:{digest} is corrupted in etcd")), "{error}");
    let missing = PluginRef::Version { name: "mine".into(), version: "2.0.0".into() };
    assert_eq!(pushed.load(&missing).await.unwrap_err().to_string(), "plugin mine@2.0.0 is not pushed");
    let unknown = pushed.load(&PluginRef::Name("nobody".into())).await.unwrap_err().to_string();
    assert_eq!(unknown, "plugin nobody is neither built in nor pushed");
}
