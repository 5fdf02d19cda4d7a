//! The real `kubectl` (1.32, `/usr/bin/kubectl`, or `$KUBECTL`) against kubesim: get, apply,
//! delete, `-o yaml`, and `get -w` printing changes as they happen.

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use common::WAIT;
use kubesim::{Config, KubeSim};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

struct Kubectl {
    bin: PathBuf,
    server: String,
    dir: tempfile::TempDir,
}

impl Kubectl {
    /// `$KUBECTL`, else `kubectl` on PATH. Missing kubectl fails the test: `scripts/bootstrap.sh`
    /// (run by the test command) installs it.
    fn new(sim: &KubeSim) -> Self {
        let bin = std::env::var_os("KUBECTL").map(PathBuf::from).or_else(|| chaos_harness::find_on_path("kubectl"));
        let bin = bin.unwrap_or_else(|| panic!("kubectl is not installed: run scripts/bootstrap.sh"));
        let dir = tempfile::tempdir().expect("a temp dir");
        // An empty kubeconfig, so that no user configuration is read.
        std::fs::write(dir.path().join("config"), "").expect("write kubeconfig");
        Self { bin, server: sim.url(), dir }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env("KUBECONFIG", self.dir.path().join("config"))
            .env("HOME", self.dir.path())
            .arg("--server")
            .arg(&self.server)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, args: &[&str]) -> String {
        let out = self.command(args).output().await.expect("kubectl runs");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "kubectl {args:?} failed: {}{}", stdout, String::from_utf8_lossy(&out.stderr));
        stdout
    }

    fn write(&self, name: &str, content: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write manifest");
        path.display().to_string()
    }
}

const MANIFEST: &str = "\
apiVersion: storage.deckhouse.io/v1alpha1
kind: ReplicatedVolume
metadata:
  name: mgt-3f2a9c
  labels: {chaos.dev/scenario: demo}
spec: {size: 100Mi, replicatedStorageClassName: rsc-a}
---
apiVersion: storage.deckhouse.io/v1alpha1
kind: ReplicatedVolumeAttachment
metadata: {name: rva-mgt-3f2a9c-node-2}
spec: {replicatedVolumeName: mgt-3f2a9c, nodeName: node-2}
";

#[tokio::test]
async fn kubectl_works_unchanged() {
    let sim = KubeSim::start(Config { speed: 20.0, ..Config::for_tests() }).await.unwrap();
    let k = Kubectl::new(&sim);

    let nodes = k.run(&["get", "nodes"]).await;
    assert!(nodes.starts_with("NAME"), "{nodes}");
    for i in 1..=5 {
        assert!(nodes.contains(&format!("node-{i}")), "{nodes}");
    }
    assert_eq!(nodes.matches(" Ready ").count(), 5, "{nodes}");

    let agents = k.run(&["get", "pods", "-n", "d8-sds-replicated-volume", "-l", "app=agent"]).await;
    assert_eq!(agents.lines().filter(|l| l.starts_with("agent-") && l.contains("Running")).count(), 5, "{agents}");

    // `get rv -w` started before the volume exists prints it as it changes.
    let mut watch = k.command(&["get", "rv", "-w"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let file = k.write("rv.yaml", MANIFEST);
    let applied = k.run(&["apply", "--validate=false", "-f", &file]).await;
    assert!(applied.contains("replicatedvolume.storage.deckhouse.io/mgt-3f2a9c created"), "{applied}");

    let mut printed = Vec::new();
    tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let cols: Vec<&str> = line.split_whitespace().collect();
            printed.push(line.clone());
            // NAME SIZE IOREADY QUORUM ATTACHED AGE
            if cols.first() == Some(&"mgt-3f2a9c") && cols.get(2) == Some(&"True") && cols.get(3) == Some(&"True") {
                break;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("kubectl get -w did not show the volume getting ready: {printed:#?}"));
    assert!(printed.len() >= 2, "several changes were printed: {printed:#?}");
    assert!(printed.iter().any(|l| l.contains("False")), "the not-ready state was printed too: {printed:#?}");
    let _ = watch.kill().await;

    let rv = k.run(&["get", "rv"]).await;
    assert!(
        rv.lines().next().unwrap().split_whitespace().eq(["NAME", "SIZE", "IOREADY", "QUORUM", "ATTACHED", "AGE"]),
        "{rv}"
    );
    assert!(rv.contains("mgt-3f2a9c"), "{rv}");

    let yaml = common::poll("the attachment attached", || {
        let k = &k;
        async move {
            let y = k.run(&["get", "rva", "-o", "yaml"]).await;
            y.contains("phase: Attached").then_some(y)
        }
    })
    .await;
    assert!(yaml.contains("kind: ReplicatedVolumeAttachment") && yaml.contains("type: Ready"), "{yaml}");

    let again = k.run(&["apply", "--validate=false", "-f", &file]).await;
    assert!(again.contains("unchanged"), "{again}");

    // Ordinary manifests too: a namespace and a config map, applied and then changed.
    let cm = "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n---\n\
              apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: demo}\ndata: {a: \"1\"}\n";
    let cm_file = k.write("cm.yaml", cm);
    let out = k.run(&["apply", "--validate=false", "-f", &cm_file]).await;
    assert!(out.contains("configmap/cfg created"), "{out}");
    k.write("cm.yaml", &cm.replace("a: \"1\"", "a: \"2\", b: \"3\""));
    let out = k.run(&["apply", "--validate=false", "-f", &cm_file]).await;
    assert!(out.contains("configmap/cfg configured"), "{out}");
    let data = k.run(&["get", "cm", "cfg", "-n", "demo", "-o", "jsonpath={.data}"]).await;
    assert_eq!(data, r#"{"a":"2","b":"3"}"#);

    let pod = k.run(&["get", "pods", "-n", "d8-sds-replicated-volume", "-l", "app=controller", "-o", "name"]).await;
    let pod = pod.lines().next().unwrap().trim_start_matches("pod/").to_string();
    let deleted = k.run(&["delete", "pod", &pod, "-n", "d8-sds-replicated-volume"]).await;
    assert!(deleted.contains(&format!("pod \"{pod}\" deleted")), "{deleted}");

    let removed = k.run(&["delete", "-f", &file]).await;
    assert!(removed.contains("deleted"), "{removed}");
    let left = k.run(&["get", "rv,rva,rvr", "-o", "name"]).await;
    assert!(left.trim().is_empty(), "kubectl delete waited until everything was gone: {left}");
    sim.shutdown().await;
}

/// `deploy/kubernetes/` (the manifests for a real cluster) is accepted as a whole, and every
/// object is there afterwards.
#[tokio::test]
async fn the_deploy_manifests_apply_cleanly() {
    let sim = KubeSim::start(Config::for_tests()).await.expect("kubesim starts");
    let k = Kubectl::new(&sim);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/kubernetes");
    let out = k.run(&["apply", "--validate=false", "-f", dir]).await;
    for object in [
        "namespace/chaos-system",
        "statefulset.apps/chaos-etcd",
        "clusterrole.rbac.authorization.k8s.io/chaos-worker",
        "deployment.apps/chaos-apiserver",
        "deployment.apps/chaos-controller",
        "deployment.apps/chaos-scheduler",
        "deployment.apps/chaos-worker",
    ] {
        assert!(out.contains(&format!("{object} created")), "{object} missing from:\n{out}");
    }
    let workers =
        k.run(&["get", "deployment", "chaos-worker", "-n", "chaos-system", "-o", "jsonpath={.spec.replicas}"]).await;
    assert_eq!(workers.trim(), "3");
    // Applying again changes nothing.
    let again = k.run(&["apply", "--validate=false", "-f", dir]).await;
    assert!(!again.contains("created"), "{again}");
}

/// `kubectl exec` (WebSocket, v5.channel.k8s.io) and `kubectl logs` against a smoke-mini pod:
/// the exit code of the remote command becomes kubectl's.
#[tokio::test]
async fn kubectl_exec_signals_processes_and_logs_tell_it() {
    let sim = KubeSim::start(Config::for_tests()).await.unwrap();
    let k = Kubectl::new(&sim);
    let manifest = k.write(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: smoke-0}\nspec:\n  containers: [{name: app, image: kubesim/smoke-mini}]\n",
    );
    k.run(&["apply", "--validate=false", "-f", &manifest]).await;
    k.run(&["wait", "--for=jsonpath={.status.phase}=Running", "pod/smoke-0", "--timeout=20s"]).await;

    let out = k.command(&["exec", "smoke-0", "--", "kill", "-STOP", "1"]).output().await.expect("kubectl runs");
    assert!(out.status.success(), "kill -STOP 1 failed: {}", String::from_utf8_lossy(&out.stderr));
    let ps = k.run(&["exec", "smoke-0", "--", "ps"]).await;
    let pid1 = ps.lines().find(|l| l.split_whitespace().next() == Some("1")).expect("PID 1 in ps");
    assert_eq!(pid1.split_whitespace().nth(3), Some("T"), "{ps}");

    let out = k.command(&["exec", "smoke-0", "--", "false"]).output().await.expect("kubectl runs");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let out = k.command(&["exec", "smoke-0", "--", "sh", "-c", "nope"]).output().await.expect("kubectl runs");
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sh: nope: command not found"));

    let out = k.command(&["exec", "no-such-pod", "--", "ps"]).output().await.expect("kubectl runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"), "{}", String::from_utf8_lossy(&out.stderr));

    let log = k.run(&["logs", "smoke-0"]).await;
    assert!(log.contains("started /smoke-mini") && log.contains("SIGSTOP delivered to PID 1"), "{log}");
}
