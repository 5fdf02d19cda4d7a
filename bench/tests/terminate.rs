//! `chaos-bench` stopped by SIGTERM (as `timeout` does) takes its whole stack with it: no
//! etcd, daemon or kubesim of the run is left running.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The pids whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // After the command's closing parenthesis: state, then the parent's pid.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

/// Whether `pid` still runs (a zombie does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')).map(|zombie| !zombie)
        })
        .unwrap_or(false)
}

#[test]
fn sigterm_takes_the_stack_down_with_the_bench() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chaos-bench"));
    command
        .args(["pipeline", "--instances", "20", "--workers", "1", "--put-seconds", "1", "--steady-seconds", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut bench = chaos_harness::spawn_tied(command).unwrap();
    let mut lines = BufReader::new(bench.stderr.take().unwrap()).lines();
    // The steady state: the whole stack runs and the bench waits.
    for line in lines.by_ref() {
        if line.unwrap().contains("measuring the steady state") {
            break;
        }
    }
    let stack = children(bench.id());
    assert!(stack.len() >= 5, "the stack's processes: {stack:?}");
    // SAFETY: kill(2) on our own child with a valid signal.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(i32::try_from(bench.id()).unwrap(), libc::SIGTERM);
    }
    let status = bench.wait().unwrap();
    assert!(!status.success(), "stopped by SIGTERM, the bench reports no figures");
    let deadline = Instant::now() + Duration::from_secs(10);
    while stack.iter().any(|pid| alive(*pid)) {
        assert!(
            Instant::now() < deadline,
            "left running: {:?}",
            stack.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
