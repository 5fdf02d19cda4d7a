//! `chaosctl certs create`: the material it makes works where `deploy/kubernetes/` puts it —
//! a real etcd serves TLS with it and takes the components' client certificate (and refuses a
//! client without one), and the apiserver serves HTTPS that its CA vouches for.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chaos_apiserver::{AppState, ServeOptions};
use chaos_def::store::{EtcdTls, Store};
use chaos_harness::{EtcdServer, free_port, spawn_tied, unique_prefix};
use tokio_util::sync::CancellationToken;

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployment_certificates_serve_etcd_and_the_apiserver() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let out = Command::new(env!("CARGO_BIN_EXE_chaosctl"))
        .args(["certs", "create", certs.to_str().unwrap(), "--namespace", "chaos-test"])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for secret in ["chaos-etcd-tls", "chaos-etcd-client", "chaos-apiserver-tls"] {
        assert!(printed.contains("kubectl -n chaos-test create secret") && printed.contains(secret), "{printed}");
    }
    for key in ["ca.key", "etcd-server.key", "etcd-client.key", "apiserver.key"] {
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(certs.join(key)).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }

    // etcd with the server certificate, checking clients against the CA (as 10-etcd.yaml runs it).
    let (client, peer) = (free_port(), free_port());
    let mut etcd = Command::new(chaos_harness::etcd_binary());
    etcd.args([
        "--name=m0".to_string(),
        format!("--data-dir={}", dir.path().join("etcd").display()),
        format!("--listen-client-urls=https://127.0.0.1:{client}"),
        format!("--advertise-client-urls=https://127.0.0.1:{client}"),
        format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
        format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
        format!("--initial-cluster=m0=http://127.0.0.1:{peer}"),
        format!("--cert-file={}", certs.join("etcd-server.crt").display()),
        format!("--key-file={}", certs.join("etcd-server.key").display()),
        format!("--trusted-ca-file={}", certs.join("ca.crt").display()),
        "--client-cert-auth".into(),
        "--log-level=error".into(),
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut etcd = spawn_tied(etcd).unwrap();
    let endpoint = vec![format!("https://127.0.0.1:{client}")];
    let components = EtcdTls {
        ca: read(&certs, "ca.crt"),
        identity: Some((read(&certs, "etcd-client.crt"), read(&certs, "etcd-client.key"))),
    };
    let prefix = unique_prefix();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(store) = Store::connect_with(&endpoint, &prefix, Some(&components)).await
            && store.put("/k", &1u64).await.is_ok()
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "etcd never took the components' certificate");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The same CA but no client certificate: refused.
    let anonymous = EtcdTls { ca: read(&certs, "ca.crt"), identity: None };
    let store = Store::connect_with(&endpoint, &prefix, Some(&anonymous)).await.unwrap();
    assert!(store.put("/k", &2u64).await.is_err(), "etcd took a client without a certificate");
    etcd.kill().unwrap();
    etcd.wait().unwrap();

    // The apiserver's certificate, for its Service's names and localhost.
    let store = Store::connect(&[EtcdServer::shared().endpoint()], &unique_prefix()).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let pem = (read(&certs, "apiserver.crt"), read(&certs, "apiserver.key"));
    let state = AppState::new(store, ServeOptions::secure());
    tokio::spawn(chaos_apiserver::serve_tls(listener, state, pem, shutdown.clone()));
    let trusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&read(&certs, "ca.crt")).unwrap())
        .build()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let answer = loop {
        match trusting.get(format!("https://localhost:{port}/healthz")).send().await {
            Ok(answer) => break answer,
            Err(error) => {
                assert!(tokio::time::Instant::now() < deadline, "{error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(answer.status(), 200);
    // A client that does not trust the CA refuses the connection.
    let stranger = reqwest::Client::builder().tls_built_in_root_certs(false).build().unwrap();
    assert!(stranger.get(format!("https://localhost:{port}/healthz")).send().await.is_err());
    shutdown.cancel();
}
