//! `pods/exec` and `pods/log` with real clients: kube-rs's `Api::<Pod>::exec` (WebSocket,
//! v5.channel.k8s.io), a raw v4.channel.k8s.io session as the Python client speaks it, and
//! `logs` / `log_stream`, against a bare `kubesim/smoke-mini` pod.

mod common;

use common::WAIT;
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Client;
use kube::api::{Api, AttachParams, LogParams, PostParams};
use kubesim::{Config, KubeSim};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

const POD: &str = "smoke-0";

/// kubesim with one running smoke-mini pod in `default`.
async fn start() -> (KubeSim, Client, Api<Pod>) {
    let (sim, client) = common::start(Config::for_tests()).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = serde_json::from_value(json!({
        "metadata": {"name": POD},
        "spec": {"containers": [{"name": "app", "image": "kubesim/smoke-mini"}]},
    }))
    .expect("a pod");
    pods.create(&PostParams::default(), &pod).await.expect("pod created");
    common::wait_for(&pods, POD, "running", |p: Option<&Pod>| {
        let running = |p: &Pod| {
            let statuses = p.status.as_ref()?.container_statuses.as_ref()?;
            Some(statuses.first()?.state.as_ref()?.running.is_some())
        };
        p.and_then(running).unwrap_or(false)
    })
    .await;
    (sim, client, pods)
}

/// What an exec printed and its status.
struct Ran {
    stdout: String,
    stderr: String,
    status: Status,
}

impl Ran {
    /// The exit code as kubectl reads it from the status.
    fn exit_code(&self) -> i32 {
        if self.status.status.as_deref() == Some("Success") {
            return 0;
        }
        assert_eq!(self.status.reason.as_deref(), Some("NonZeroExitCode"), "{:?}", self.status);
        let causes = self.status.details.as_ref().and_then(|d| d.causes.as_ref()).expect("causes");
        let cause = causes.iter().find(|c| c.reason.as_deref() == Some("ExitCode")).expect("an ExitCode cause");
        cause.message.as_deref().and_then(|m| m.parse().ok()).expect("a numeric exit code")
    }

    /// The STAT column of PID 1 in `ps` output.
    fn pid1_stat(&self) -> String {
        let row = self.stdout.lines().find(|l| l.split_whitespace().next() == Some("1"));
        let row = row.unwrap_or_else(|| panic!("no PID 1 in {:?}", self.stdout));
        row.split_whitespace().nth(3).expect("a STAT column").to_string()
    }
}

async fn exec(pods: &Api<Pod>, command: &[&str]) -> Ran {
    let run = async {
        let mut p = pods.exec(POD, command.to_vec(), &AttachParams::default()).await.expect("exec starts");
        let (mut out, mut err) = (p.stdout().expect("stdout"), p.stderr().expect("stderr"));
        let status = p.take_status().expect("a status");
        let (mut stdout, mut stderr) = (String::new(), String::new());
        let (o, e) = tokio::join!(out.read_to_string(&mut stdout), err.read_to_string(&mut stderr));
        o.and(e).expect("output read");
        let status = status.await.expect("the status arrives");
        p.join().await.expect("the session ends cleanly");
        Ran { stdout, stderr, status }
    };
    tokio::time::timeout(WAIT, run).await.unwrap_or_else(|_| panic!("exec {command:?} did not end within {WAIT:?}"))
}

#[tokio::test]
async fn ps_shows_pid_1_running_the_images_program() {
    let (_sim, _c, pods) = start().await;
    let ran = exec(&pods, &["ps"]).await;
    assert_eq!(ran.exit_code(), 0, "{}", ran.stderr);
    assert_eq!(
        ran.stdout.lines().next().map(|h| h.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["PID", "USER", "TIME", "STAT", "COMMAND"])
    );
    let pid1 = ran.stdout.lines().find(|l| l.split_whitespace().next() == Some("1")).expect("PID 1");
    assert!(pid1.contains("/smoke-mini"), "{pid1}");
    assert_eq!(ran.pid1_stat(), "S");
}

#[tokio::test]
async fn kill_stop_shows_t_in_ps_and_cont_resumes() {
    let (_sim, _c, pods) = start().await;
    let stop = exec(&pods, &["kill", "-STOP", "1"]).await;
    assert_eq!((stop.exit_code(), stop.stdout.as_str(), stop.stderr.as_str()), (0, "", ""));
    assert_eq!(exec(&pods, &["ps"]).await.pid1_stat(), "T");
    let cont = exec(&pods, &["sh", "-c", "kill -s CONT 1 && ps"]).await;
    assert_eq!(cont.exit_code(), 0, "{}", cont.stderr);
    assert_eq!(cont.pid1_stat(), "S");
    let missing = exec(&pods, &["kill", "-9", "4242"]).await;
    assert_eq!((missing.exit_code(), missing.stderr.as_str()), (1, "kill: (4242) - No such process\n"));
}

#[tokio::test]
async fn exit_codes_reach_the_status() {
    let (_sim, _c, pods) = start().await;
    let ran = exec(&pods, &["false"]).await;
    assert_eq!(ran.status.status.as_deref(), Some("Failure"));
    assert_eq!(ran.exit_code(), 1);
    assert_eq!(exec(&pods, &["true"]).await.exit_code(), 0);
    assert_eq!(exec(&pods, &["sh", "-c", "echo out; echo err-ish && exit 3"]).await.exit_code(), 3);
}

#[tokio::test]
async fn unknown_commands_exit_127_with_command_not_found() {
    let (_sim, _c, pods) = start().await;
    let ran = exec(&pods, &["curl", "localhost"]).await;
    assert_eq!(ran.exit_code(), 127);
    assert!(ran.stderr.contains("exec: \"curl\": executable file not found in $PATH"), "{}", ran.stderr);
    let ran = exec(&pods, &["/bin/sh", "-c", "curl localhost || echo fallback"]).await;
    assert_eq!((ran.exit_code(), ran.stdout.as_str()), (0, "fallback\n"));
    assert_eq!(ran.stderr, "sh: curl: command not found\n");
}

#[tokio::test]
async fn sh_reads_a_script_from_stdin_until_the_client_closes_it() {
    let (_sim, _c, pods) = start().await;
    let run = async {
        let ap = AttachParams::default().stdin(true).stderr(false);
        let mut p = pods.exec(POD, vec!["sh"], &ap).await.expect("exec starts");
        let mut stdin = p.stdin().expect("stdin");
        stdin.write_all(b"echo from-stdin\nkill -0 1 && echo alive\n").await.unwrap();
        // The end of stdin: kube-rs sends v5's close of channel 0.
        stdin.shutdown().await.unwrap();
        let mut out = String::new();
        p.stdout().expect("stdout").read_to_string(&mut out).await.unwrap();
        let status = p.take_status().expect("a status").await.expect("the status arrives");
        (out, status)
    };
    let (out, status) = tokio::time::timeout(WAIT, run).await.expect("the script ends");
    assert_eq!(out, "from-stdin\nalive\n");
    assert_eq!(status.status.as_deref(), Some("Success"));
}

#[tokio::test]
async fn bad_requests_are_refused_before_the_upgrade() {
    let (sim, client, pods) = start().await;
    let err = pods.exec("no-such-pod", vec!["ps"], &AttachParams::default()).await.err().expect("refused");
    assert!(err.to_string().contains("404") || err.to_string().contains("not found"), "{err}");
    let err = pods.exec(POD, vec!["ps"], &AttachParams::default().container("nope")).await.err().expect("refused");
    assert!(err.to_string().contains("400") || err.to_string().contains("not valid"), "{err}");

    // A WebSocket upgrade that offers none of the channel protocols gets a 400 Status.
    let url = format!("{}/api/v1/namespaces/default/pods/{POD}/exec?command=ps&stdout=true", sim.url());
    let req = http::Request::get(url)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", "channel.k8s.io")
        .body(Vec::new())
        .unwrap();
    let resp = client.send(req.map(Into::into)).await.expect("an answer");
    assert_eq!(resp.status(), 400);
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    let status: Status = serde_json::from_slice(&body).expect("a Status");
    assert!(status.message.unwrap_or_default().contains("v5.channel.k8s.io"), "names what it speaks");
}

/// The Python client's way: GET, `v4.channel.k8s.io` only, binary frames; it reads until the
/// server closes.
#[tokio::test]
async fn a_v4_client_gets_its_streams_and_the_status() {
    let (sim, _c, _pods) = start().await;
    let url = format!(
        "{}/api/v1/namespaces/default/pods/{POD}/exec?command=sh&command=-c&command=echo%20hi%3B%20nope&stdout=True&stderr=1",
        sim.url().replace("http://", "ws://")
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("sec-websocket-protocol", "v4.channel.k8s.io".parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.expect("the upgrade succeeds");
    assert_eq!(resp.headers()["sec-websocket-protocol"], "v4.channel.k8s.io");
    let mut channels: [Vec<u8>; 4] = Default::default();
    let read = async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Binary(data)) if !data.is_empty() && data[0] < 4 => {
                    channels[data[0] as usize].extend_from_slice(&data[1..])
                }
                Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => break,
                Ok(_) => {}
                Err(e) => panic!("the session broke: {e}"),
            }
        }
        let _ = ws.close(None).await;
    };
    tokio::time::timeout(WAIT, read).await.expect("the server closes the session");
    assert_eq!(channels[1], b"hi\n");
    assert_eq!(channels[2], b"sh: nope: command not found\n");
    let status: serde_json::Value = serde_json::from_slice(&channels[3]).expect("a JSON status");
    assert_eq!(status["details"]["causes"][0], json!({"reason": "ExitCode", "message": "127"}));
}

#[tokio::test]
async fn logs_tell_the_containers_story_and_follow_ends_with_it() {
    let (_sim, _c, pods) = start().await;
    let log = pods.logs(POD, &LogParams::default()).await.expect("the log");
    assert!(log.contains("started /smoke-mini"), "{log}");
    exec(&pods, &["kill", "-STOP", "1"]).await;
    let log =
        pods.logs(POD, &LogParams { timestamps: true, tail_lines: Some(1), ..LogParams::default() }).await.unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    let (stamp, text) = log.trim_end().split_once(' ').expect("a timestamp, then the line");
    assert!(stamp.parse::<jiff::Timestamp>().is_ok(), "{stamp}");
    assert!(text.contains("SIGSTOP delivered to PID 1"), "{text}");

    let mut lines = pods.log_stream(POD, &LogParams { follow: true, ..LogParams::default() }).await.unwrap().lines();
    let mut seen = Vec::new();
    let follow = async {
        while let Some(line) = lines.try_next().await.expect("the stream reads") {
            if line.contains("SIGSTOP delivered") && !seen.iter().any(|l: &String| l.contains("SIGSTOP")) {
                exec(&pods, &["kill", "-KILL", "1"]).await;
            }
            seen.push(line);
        }
    };
    tokio::time::timeout(WAIT, follow).await.expect("follow ends when the container ends");
    assert!(seen.iter().any(|l| l.contains("SIGKILL delivered to PID 1")), "{seen:#?}");
}
