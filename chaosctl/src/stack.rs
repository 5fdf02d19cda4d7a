//! A whole local stack as child processes (`chaosctl up`): the real etcd (from PATH), kubesim
//! (unless a real cluster is named), the apiserver, a controller, a scheduler and N workers.
//! Each logs to a file in the state directory. Stopping goes in reverse order of start, with
//! SIGTERM and a grace period before SIGKILL, so that workers clean up while etcd still runs.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// What to start.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub workers: u32,
    /// A real cluster instead of kubesim.
    pub kubeconfig: Option<PathBuf>,
    pub state_dir: PathBuf,
    /// kubesim's speed factor (every delay of the simulated storage divided by it).
    pub speed: f64,
    /// kubesim's storage nodes.
    pub nodes: u32,
    /// kubesim's seed.
    pub seed: u64,
    /// kubesim's `--fault-quorum-stuck` probability.
    pub fault_quorum_stuck: f64,
    pub slots: u32,
}

struct Process {
    name: String,
    child: Child,
}

/// A running stack.
pub struct Stack {
    processes: Vec<Process>,
    pub etcd: String,
    pub apiserver: String,
    /// The Kubernetes API the workers use (kubesim's URL), if kubesim runs.
    pub kube_url: Option<String>,
    pub state_dir: PathBuf,
}

/// A binary of this project: next to the running `chaosctl` (cargo puts them together).
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating chaosctl")?;
    let path = exe.parent().map(|dir| dir.join(name)).unwrap_or_else(|| PathBuf::from(name));
    if !path.is_file() {
        bail!("{name} is not next to chaosctl ({}); build everything with `cargo build --workspace`", path.display());
    }
    Ok(path)
}

fn on_path(name: &str, install: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("{name} is not installed: {install}"))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Stack {
    /// Starts everything and waits until it is ready. On failure, whatever was started is
    /// stopped again.
    pub async fn start(options: &StackOptions) -> anyhow::Result<Stack> {
        std::fs::create_dir_all(&options.state_dir)
            .with_context(|| format!("creating the state directory {}", options.state_dir.display()))?;
        let etcd_port = free_port()?;
        let peer_port = free_port()?;
        let mut stack = Stack {
            processes: Vec::new(),
            etcd: format!("http://127.0.0.1:{etcd_port}"),
            apiserver: String::new(),
            kube_url: None,
            state_dir: options.state_dir.clone(),
        };
        match stack.start_all(options, peer_port).await {
            Ok(()) => Ok(stack),
            Err(error) => {
                stack.stop().await;
                Err(error)
            }
        }
    }

    async fn start_all(&mut self, options: &StackOptions, peer_port: u16) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let etcd = on_path("etcd", "run scripts/bootstrap.sh, or apt-get install etcd-server")?;
        let peer = format!("http://127.0.0.1:{peer_port}");
        self.spawn(
            "etcd",
            &etcd,
            &[
                "--name=chaos".into(),
                format!("--data-dir={}", self.state_dir.join("etcd").display()),
                format!("--listen-client-urls={}", self.etcd),
                format!("--advertise-client-urls={}", self.etcd),
                format!("--listen-peer-urls={peer}"),
                format!("--initial-advertise-peer-urls={peer}"),
                format!("--initial-cluster=chaos={peer}"),
                "--log-level=error".into(),
            ],
        )?;
        wait_http(&http, &format!("{}/health", self.etcd), "etcd").await?;

        let kube_args = match &options.kubeconfig {
            Some(path) => vec!["--kubeconfig".to_string(), path.display().to_string()],
            None => {
                let port = free_port()?;
                let url = format!("http://127.0.0.1:{port}");
                self.spawn(
                    "kubesim",
                    &sibling("kubesim")?,
                    &[
                        format!("--listen=127.0.0.1:{port}"),
                        format!("--nodes={}", options.nodes),
                        format!("--speed={}", options.speed),
                        format!("--seed={}", options.seed),
                        format!("--fault-quorum-stuck={}", options.fault_quorum_stuck),
                    ],
                )?;
                wait_http(&http, &format!("{url}/version"), "kubesim").await?;
                self.kube_url = Some(url.clone());
                vec!["--kube-url".to_string(), url]
            }
        };

        let api_port = free_port()?;
        self.apiserver = format!("http://127.0.0.1:{api_port}");
        let etcd_flag = format!("--etcd={}", self.etcd);
        self.spawn(
            "apiserver",
            &sibling("chaos-apiserver")?,
            &[etcd_flag.clone(), format!("--listen=127.0.0.1:{api_port}")],
        )?;
        wait_http(&http, &format!("{}/readyz", self.apiserver), "the apiserver").await?;
        self.spawn("controller", &sibling("chaos-controller")?, &[etcd_flag.clone(), "--name=controller-0".into()])?;
        self.spawn("scheduler", &sibling("chaos-scheduler")?, &[etcd_flag.clone(), "--name=scheduler-0".into()])?;
        let worker = sibling("chaos-worker")?;
        for i in 0..options.workers {
            let mut args = vec![
                "run".to_string(),
                etcd_flag.clone(),
                format!("--name=worker-{i}"),
                format!("--slots={}", options.slots),
                "--cluster=default".into(),
                format!("--listen=127.0.0.1:{}", free_port()?),
            ];
            args.extend(kube_args.iter().cloned());
            self.spawn(&format!("worker-{i}"), &worker, &args)?;
        }
        self.wait_workers(&http, options.workers).await?;
        // The controller and scheduler have no port of their own to probe: check they are up.
        for process in &mut self.processes {
            if let Some(status) = process.child.try_wait()? {
                bail!(
                    "{} exited at start ({status}); see {}",
                    process.name,
                    self.state_dir.join(format!("{}.log", process.name)).display()
                );
            }
        }
        Ok(())
    }

    fn spawn(&mut self, name: &str, program: &Path, args: &[String]) -> anyhow::Result<()> {
        let log = std::fs::File::create(self.state_dir.join(format!("{name}.log")))
            .with_context(|| format!("creating the log file of {name}"))?;
        let child = Command::new(program)
            .args(args)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        self.processes.push(Process { name: name.to_string(), child });
        Ok(())
    }

    async fn wait_workers(&self, http: &reqwest::Client, count: u32) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("{}/v1/workers", self.apiserver);
        loop {
            let registered = match http.get(&url).send().await {
                Ok(response) => response.json::<chaos_def::api::WorkerList>().await.map(|l| l.items.len()).unwrap_or(0),
                Err(_) => 0,
            };
            if registered >= count as usize {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "only {registered} of {count} workers registered within 60 s; see the worker logs in {}",
                    self.state_dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The processes and their pids, for people.
    pub fn processes(&self) -> Vec<(String, Option<u32>)> {
        self.processes.iter().map(|p| (p.name.clone(), p.child.id())).collect()
    }

    /// Stops everything, last started first: SIGTERM, up to 15 s to finish (workers clean up
    /// their plugins' objects), then SIGKILL.
    pub async fn stop(&mut self) {
        while let Some(mut process) = self.processes.pop() {
            if let Some(pid) = process.child.id().and_then(|pid| i32::try_from(pid).ok()) {
                // SAFETY: kill(2) with the pid of a child we spawned and have not reaped yet
                // (so the pid cannot have been reused) and a valid signal number.
                #[allow(unsafe_code)]
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            match tokio::time::timeout(Duration::from_secs(15), process.child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    eprintln!("{} did not stop within 15 s; killing it", process.name);
                    let _ = process.child.kill().await;
                }
            }
        }
    }
}

async fn wait_http(http: &reqwest::Client, url: &str, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = http.get(url).timeout(Duration::from_secs(1)).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} did not become ready at {url} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
