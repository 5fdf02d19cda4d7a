//! The real `kubectl` (1.32, `/usr/bin/kubectl`, or `$KUBECTL`) against kubesim: get, apply
//! (with kubectl's default strict field validation), delete, `-o yaml`, `get -w` printing changes
//! as they happen, and `explain` reading the published OpenAPI schemas.

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

    /// Runs a command that must fail; returns its standard error.
    async fn fail(&self, args: &[&str]) -> String {
        let out = self.command(args).output().await.expect("kubectl runs");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "kubectl {args:?} succeeded: {}", String::from_utf8_lossy(&out.stdout));
        stderr
    }

    /// Runs a command that must succeed; returns standard output and standard error.
    async fn run_both(&self, args: &[&str]) -> (String, String) {
        let out = self.command(args).output().await.expect("kubectl runs");
        let (stdout, stderr) =
            (String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string());
        assert!(out.status.success(), "kubectl {args:?} failed: {stdout}{stderr}");
        (stdout, stderr)
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
    let applied = k.run(&["apply", "-f", &file]).await;
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

    let again = k.run(&["apply", "-f", &file]).await;
    assert!(again.contains("unchanged"), "{again}");

    // Ordinary manifests too: a namespace and a config map, applied and then changed.
    let cm = "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n---\n\
              apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: demo}\ndata: {a: \"1\"}\n";
    let cm_file = k.write("cm.yaml", cm);
    let out = k.run(&["apply", "-f", &cm_file]).await;
    assert!(out.contains("configmap/cfg created"), "{out}");
    k.write("cm.yaml", &cm.replace("a: \"1\"", "a: \"2\", b: \"3\""));
    let out = k.run(&["apply", "-f", &cm_file]).await;
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
    let out = k.run(&["apply", "-f", dir]).await;
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
    let again = k.run(&["apply", "-f", dir]).await;
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
    k.run(&["apply", "-f", &manifest]).await;
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

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: kubesim/http-echo}]}
";

/// `kubectl apply` validates fields by default (`--validate=strict`): kubesim publishes OpenAPI
/// with the `fieldValidation` parameter, so kubectl leaves the check to the server, which refuses
/// an unknown field by name; `--validate=warn` stores the object and prints the warning.
#[tokio::test]
async fn apply_validates_fields_on_the_server() {
    let sim = KubeSim::start(Config::for_tests()).await.expect("kubesim starts");
    let k = Kubectl::new(&sim);
    let file = k.write("all.yaml", &format!("{MANIFEST}---\n{DEPLOYMENT}"));
    let out = k.run(&["apply", "-f", &file]).await;
    for object in ["replicatedvolume.storage.deckhouse.io/mgt-3f2a9c", "deployment.apps/web"] {
        assert!(out.contains(&format!("{object} created")), "{object} missing from:\n{out}");
    }

    let bad = k.write("bad.yaml", &DEPLOYMENT.replace("  replicas: 2\n", "  replicas: 3\n  replicaz: 3\n"));
    let err = k.fail(&["apply", "-f", &bad]).await;
    assert!(err.contains("strict decoding error: unknown field \"spec.replicaz\""), "{err}");
    let replicas = k.run(&["get", "deploy", "web", "-n", "default", "-o", "jsonpath={.spec.replicas}"]).await;
    assert_eq!(replicas, "2", "the refused change was not stored");

    let bad_rv = k.write("bad-rv.yaml", &MANIFEST.replace("spec: {size: 100Mi,", "spec: {sise: 1Gi, size: 100Mi,"));
    let err = k.fail(&["apply", "-f", &bad_rv]).await;
    assert!(err.contains("unknown field \"spec.sise\""), "{err}");

    let (out, warnings) = k.run_both(&["apply", "--validate=warn", "-f", &bad]).await;
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    assert!(warnings.contains("unknown field \"spec.replicaz\""), "{warnings}");
    let spec = k.run(&["get", "deploy", "web", "-n", "default", "-o", "jsonpath={.spec}"]).await;
    assert!(spec.contains("\"replicas\":3") && !spec.contains("replicaz"), "the unknown field was dropped: {spec}");
    sim.shutdown().await;
}

/// upmeter's example Downtime: `spec` is a list of windows.
const DOWNTIME: &str = "\
apiVersion: deckhouse.io/v1alpha1
kind: Downtime
metadata:
  name: change-pod-cidr
spec:
  - startDate: \"2020-10-23T12:00:00Z\"
    endDate: \"2020-10-23T13:00:00Z\"
    type: Maintenance
    description: \"Change Pod's CIDR, ticket #33121\"
    affected: [synthetic, control-plane]
";

/// A `Downtime`, whose `spec` is a list: `apply` creates and then changes it, `get downtimes`
/// lists it, `explain` shows a window's fields, and an unknown field in a window is refused by
/// kubectl's default strict validation.
#[tokio::test]
async fn downtimes_are_applied_and_listed() {
    let sim = KubeSim::start(Config::for_tests()).await.expect("kubesim starts");
    let k = Kubectl::new(&sim);
    let file = k.write("downtime.yaml", DOWNTIME);
    let out = k.run(&["apply", "-f", &file]).await;
    assert!(out.contains("downtime.deckhouse.io/change-pod-cidr created"), "{out}");
    let list = k.run(&["get", "downtimes"]).await;
    let header: Vec<&str> = list.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NAME", "AGE"], "{list}");
    assert!(list.lines().any(|l| l.split_whitespace().next() == Some("change-pod-cidr")), "{list}");
    let window = ["get", "downtime", "change-pod-cidr", "-o", "jsonpath={.spec[0].type} {.spec[0].affected[1]}"];
    assert_eq!(k.run(&window).await, "Maintenance control-plane");

    let changed = k.write("downtime2.yaml", &DOWNTIME.replace("type: Maintenance", "type: Accident"));
    let out = k.run(&["apply", "-f", &changed]).await;
    assert!(out.contains("downtime.deckhouse.io/change-pod-cidr configured"), "{out}");
    assert_eq!(k.run(&window).await, "Accident control-plane");

    let explained = k.run(&["explain", "downtime.spec"]).await;
    assert!(explained.contains("KIND:       Downtime"), "{explained}");
    for field in ["startDate\t<string>", "type\t<string>", "affected\t<[]string>"] {
        assert!(explained.contains(field), "{field} missing from:\n{explained}");
    }

    let bad = k.write("bad.yaml", &DOWNTIME.replace("change-pod-cidr", "typo").replace("affected:", "afected:"));
    let err = k.fail(&["apply", "-f", &bad]).await;
    assert!(err.contains("strict decoding error: unknown field \"spec[0].afected\""), "{err}");
    let names = k.run(&["get", "downtimes", "-o", "name"]).await;
    assert_eq!(names.trim(), "downtime.deckhouse.io/change-pod-cidr", "the refused object was not stored");
    sim.shutdown().await;
}

/// `kubectl explain` reads the published schemas: the storage kinds' fields as their CRDs
/// declare them, the built-in kinds' upstream descriptions, and a CRD created at run time.
#[tokio::test]
async fn explain_shows_the_real_fields() {
    let sim = KubeSim::start(Config::for_tests()).await.expect("kubesim starts");
    let k = Kubectl::new(&sim);
    let rv = k.run(&["explain", "rv.spec"]).await;
    assert!(rv.contains("KIND:       ReplicatedVolume"), "{rv}");
    for field in ["replicatedStorageClassName\t<string> -required-", "size\t<string> -required-"] {
        assert!(rv.contains(field), "{field} missing from:\n{rv}");
    }
    let replicas = k.run(&["explain", "deployment.spec.replicas"]).await;
    assert!(
        replicas.contains("FIELD: replicas <integer>") && replicas.contains("Number of desired pods"),
        "{replicas}"
    );
    let status = k.run(&["explain", "rva.status.phase"]).await;
    assert!(status.contains("Attached"), "{status}");

    let crd = k.write(
        "crd.yaml",
        "\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              colour: {type: string, description: The widget's colour.}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
",
    );
    k.run(&["apply", "-f", &crd]).await;
    let widget = k.run(&["explain", "widget.spec"]).await;
    assert!(widget.contains("colour\t<string>") && widget.contains("The widget's colour."), "{widget}");
    let ok = k.write("w.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: default}\nspec: {colour: red, extra: {anything: 1}}\n");
    assert!(k.run(&["apply", "-f", &ok]).await.contains("widget.example.com/w created"));
    let bad = k.write(
        "w2.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2, namespace: default}\nspec: {color: red}\n",
    );
    let err = k.fail(&["apply", "-f", &bad]).await;
    assert!(err.contains("unknown field \"spec.color\""), "{err}");
    sim.shutdown().await;
}

/// A Deployment behind a Service as kubectl shows it: `rollout status` waits for it, `get
/// endpoints` lists its pods' addresses, `get pods` their readiness, and a change of image rolls.
#[tokio::test]
async fn rollout_status_and_endpoints_follow_a_deployment() {
    let sim = KubeSim::start(Config::for_tests()).await.expect("kubesim starts");
    let k = Kubectl::new(&sim);
    let service = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n\
                   spec: {selector: {app: web}, ports: [{port: 80, targetPort: 5678}]}\n";
    let file = k.write("web.yaml", &format!("{DEPLOYMENT}---\n{service}"));
    k.run(&["apply", "-f", &file]).await;
    let out = k.run(&["rollout", "status", "deployment/web", "--timeout=20s"]).await;
    assert!(out.contains("deployment \"web\" successfully rolled out"), "{out}");

    let endpoints = k.run(&["get", "endpoints", "web", "--no-headers"]).await;
    let addresses = endpoints.split_whitespace().nth(1).unwrap_or_default();
    assert_eq!(addresses.split(',').count(), 2, "{endpoints}");
    assert!(addresses.split(',').all(|a| a.starts_with("10.244.") && a.ends_with(":5678")), "{endpoints}");
    let pods = k.run(&["get", "pods", "-l", "app=web", "--no-headers"]).await;
    assert_eq!(pods.lines().filter(|l| l.contains("1/1") && l.contains("Running")).count(), 2, "{pods}");

    k.run(&["set", "image", "deployment/web", "web=nginx:1.27"]).await;
    let out = k.run(&["rollout", "status", "deployment/web", "--timeout=20s"]).await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let images = k.run(&["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].spec.containers[0].image}"]).await;
    assert_eq!(images.split_whitespace().collect::<Vec<_>>(), ["nginx:1.27", "nginx:1.27"], "{images}");
    let described = k.run(&["describe", "deployment", "web"]).await;
    assert!(described.contains("NewReplicaSetAvailable"), "{described}");

    // Applying a changed manifest patches it (the server checks the fields of what is sent).
    let changed = k.write("web2.yaml", &DEPLOYMENT.replace("replicas: 2", "replicas: 2\n  minReadySeconds: 0"));
    let out = k.run(&["apply", "-f", &changed]).await;
    assert!(out.contains("deployment.apps/web configured"), "{out}");

    // `kubectl scale` goes through the scale subresource.
    k.run(&["scale", "deployment/web", "--replicas=3"]).await;
    k.run(&["rollout", "status", "deployment/web", "--timeout=20s"]).await;
    let endpoints = k.run(&["get", "endpoints", "web", "--no-headers"]).await;
    assert_eq!(endpoints.split_whitespace().nth(1).unwrap_or_default().split(',').count(), 3, "{endpoints}");

    // Generators send protobuf, which kubesim does not read: a clear refusal, not a parse error.
    let err = k.fail(&["create", "deployment", "gen", "--image=kubesim/http-echo"]).await;
    assert!(err.contains("kubesim reads JSON only"), "{err}");
    sim.shutdown().await;
}

/// `rollout status` of a StatefulSet (the smoke-mini layout's), before and after a new image.
#[tokio::test]
async fn rollout_status_follows_a_statefulset() {
    let config = Config { apps: vec![kubesim::Layout::SmokeMini], ..Config::for_tests() };
    let sim = KubeSim::start(config).await.expect("kubesim starts");
    let k = Kubectl::new(&sim);
    let status = ["rollout", "status", "statefulset/smoke-mini-b", "-n", "smoke-mini", "--timeout=20s"];
    // The API server defaults `updateStrategy.rollingUpdate.partition: 0`, so kubectl reports a
    // partitioned roll out, as it does against a real cluster.
    let out = k.run(&status).await;
    assert!(out.contains("partitioned roll out complete: 1 new pods have been updated"), "{out}");
    k.run(&["set", "image", "statefulset/smoke-mini-b", "smoke-mini=kubesim/smoke-mini:v2", "-n", "smoke-mini"]).await;
    let out = k.run(&status).await;
    assert!(out.contains("partitioned roll out complete: 1 new pods have been updated"), "{out}");
    let image = k
        .run(&["get", "pod", "smoke-mini-b-0", "-n", "smoke-mini", "-o", "jsonpath={.spec.containers[0].image}"])
        .await;
    assert_eq!(image, "kubesim/smoke-mini:v2");
    sim.shutdown().await;
}
