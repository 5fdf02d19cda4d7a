//! `chaos-worker run-plugin` as a user runs it: log lines on stdout, the summary at the end,
//! SIGINT/SIGTERM cancel and wait for the plugin's cleanup, exit 0 on success.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn hostile() -> &'static str {
    chaos_worker::plugins::testing("hostile").expect("the hostile plugin was built").to_str().unwrap()
}

fn run_plugin(config: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chaos-worker"));
    cmd.args(["run-plugin", hostile(), "--config", config, "--kube-url", "http://127.0.0.1:9"])
        .args(["--cache-dir", concat!(env!("CARGO_TARGET_TMPDIR"), "/run-plugin-cache")])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Sends `signal` once the plugin says it sleeps; returns the exit code and stdout lines.
fn stop_with(signal: &str, extra: &[&str]) -> (Option<i32>, Vec<String>) {
    let mut child = chaos_harness::spawn_tied(run_plugin(r#"{"mode":"sleep"}"#, extra)).expect("spawn chaos-worker");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    loop {
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("the plugin to start sleeping");
        let started = line.contains("sleeping until stopped");
        lines.push(line);
        if started {
            break;
        }
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
    // Bounded wait for the exit.
    let mut status = None;
    for _ in 0..600 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = status.expect("chaos-worker exits after the signal");
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        lines.push(line);
    }
    (status.code(), lines)
}

#[test]
fn sigint_cancels_waits_for_cleanup_and_prints_the_summary() {
    let (code, lines) = stop_with("-INT", &[]);
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("INFO  stopping: cleaning up")), "{lines:#?}");
    assert_eq!(lines.last().map(String::as_str), Some(r#"{"cleaned_up":true}"#));
}

#[test]
fn sigterm_does_the_same_and_json_logs_are_one_object_per_line() {
    let (code, lines) = stop_with("-TERM", &["--log-format", "json"]);
    assert_eq!(code, Some(0), "{lines:#?}");
    let (summary, log) = lines.split_last().unwrap();
    assert_eq!(summary, r#"{"cleaned_up":true}"#);
    for line in log {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(v["kind"], "log");
        assert_eq!(v["instance"], "run-plugin-1");
        assert!(v["ts"].is_string());
    }
    assert!(log.iter().any(|l| l.contains(r#""message":"stopping: cleaning up""#)), "{log:#?}");
}

#[test]
fn a_failing_plugin_exits_1_with_the_reason() {
    let out = run_plugin(r#"{"mode":"panic"}"#, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: the plugin failed: panicked at"), "{stderr}");
    // The panic text also went through the log, as the plugin's stderr.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("deliberate panic") && stdout.contains("stream=stderr"), "{stdout}");
}
