//! A whole local stack as child processes (`chaosctl up`): the real etcd (from PATH), kubesim
//! (unless a real cluster is named), the apiserver, a controller, a scheduler and N workers.
//! Each logs to a file in the state directory. Stopping goes in reverse order of start, with
//! SIGTERM and a grace period before SIGKILL, so that workers clean up while etcd still runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use chaos_harness::Port;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::pki::Pki;

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
    /// kubesim's `--fault-replica-loss` probability (the demo's planted bug).
    pub fault_replica_loss: f64,
    pub slots: u32,
    /// The workers' registration lease TTL in seconds.
    pub worker_lease_ttl: u64,
    /// The controller's and the scheduler's leadership lease TTL in seconds.
    pub leader_lease_ttl: u64,
    /// More flags for the apiserver (`--plugin-policy FILE`, `--plugin-max-bytes N`).
    pub apiserver_args: Vec<String>,
    /// The clusters: a kubesim each, and `workers` workers reaching each (`default` alone by
    /// default; with a kubeconfig, exactly one).
    pub clusters: Vec<String>,
    /// Applications kubesim deploys at start (`smoke-mini`); none when empty.
    pub apps: Vec<String>,
    /// More flags for every worker (`--limit-events-per-second N`).
    pub worker_args: Vec<String>,
    /// etcd members to run (1, or 3 as in production; each its own process, `etcd-<i>`).
    pub etcd_members: u32,
    /// How many of the members' addresses each daemon is given (None: all); the others are
    /// learned from the member list.
    pub etcd_given: Option<usize>,
    /// TLS everywhere data crosses a process boundary: etcd (clients with certificates, and
    /// peers) and the apiserver (HTTPS), from a throwaway CA made in `<state>/tls/`.
    pub tls: bool,
    /// Every process of the stack is killed by the kernel when the thread that started it
    /// exits (`PR_SET_PDEATHSIG`): for a stack that must not outlive its owner even when the
    /// owner is killed with SIGKILL (a benchmark run under `timeout -s KILL`). The kernel ties
    /// it to the starting thread, not the process: only for owners that start the stack from
    /// threads living as long as they do (a Tokio runtime's worker threads; not
    /// `spawn_blocking`, whose threads end when idle).
    pub die_with_parent: bool,
}

impl StackOptions {
    /// Defaults for a quick local stack in `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        StackOptions {
            workers: 3,
            kubeconfig: None,
            state_dir: state_dir.into(),
            speed: 10.0,
            nodes: 5,
            seed: 1,
            fault_quorum_stuck: 0.0,
            fault_replica_loss: 0.0,
            slots: 200,
            worker_lease_ttl: 2,
            leader_lease_ttl: 2,
            apiserver_args: Vec::new(),
            apps: vec!["smoke-mini".to_string()],
            clusters: vec![DEFAULT_CLUSTER.to_string()],
            worker_args: Vec::new(),
            etcd_members: 1,
            etcd_given: None,
            tls: true,
            die_with_parent: false,
        }
    }
}

struct Process {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    child: Child,
}

/// A running stack.
pub struct Stack {
    processes: Vec<Process>,
    /// Every port the stack's processes listen on, reserved for as long as the stack lives.
    ports: Vec<Port>,
    /// The first etcd member's client URL.
    pub etcd: String,
    /// Every etcd member's client URL, by member (process `etcd` alone, else `etcd-<i>`).
    pub etcd_members: Vec<(String, String)>,
    /// What the daemons get to reach etcd: `--etcd` and the TLS flags.
    etcd_args: Vec<String>,
    /// The stack's CA and certificates, when it runs with TLS.
    pub pki: Option<Pki>,
    pub apiserver: String,
    /// The stack's admin token (the apiserver's bootstrap token).
    pub token: String,
    /// A chaosctl config file with one context, `chaos-local`, for this stack
    /// (`export CHAOSCTL_CONFIG=...`).
    pub context_file: PathBuf,
    /// The Kubernetes API the workers use (kubesim's URL), if kubesim runs: the first cluster's.
    pub kube_url: Option<String>,
    /// Each cluster's kubesim URL, in the order of [`StackOptions::clusters`].
    pub kube_urls: Vec<(String, String)>,
    /// The applications kubesim deployed.
    pub apps: Vec<String>,
    pub state_dir: PathBuf,
    options: StackOptions,
    /// The next worker's number, per cluster.
    next_worker: BTreeMap<String, u32>,
    /// How each cluster's workers reach it (`--kube-url URL` or `--kubeconfig PATH`).
    kube_args: Vec<(String, Vec<String>)>,
    /// The probe endpoints (`/healthz`, `/readyz`, `/metrics`) of the controller, the scheduler and
    /// each worker.
    pub probes: Vec<(String, String)>,
}

/// The cluster a stack has when no other is named.
pub const DEFAULT_CLUSTER: &str = "default";

/// A binary of this project: next to the running executable (cargo puts them together), or
/// one level up (a test executable lives in `target/<profile>/deps/`).
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running executable")?;
    let dir = exe.parent().context("the running executable has no directory")?;
    let candidates = [dir.join(name), dir.parent().map(|up| up.join(name)).unwrap_or_default()];
    candidates.iter().find(|path| path.is_file()).cloned().with_context(|| {
        format!("{name} is not next to {}; build everything with `cargo build --workspace`", exe.display())
    })
}

fn on_path(name: &str, install: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("{name} is not installed: {install}"))
}

/// A loopback port reserved until the stack is dropped: nothing else is handed it before its
/// process binds it, nor between a process's kill and its restart.
fn reserve_port(reserved: &mut Vec<Port>) -> anyhow::Result<u16> {
    let port = chaos_harness::ports::reserve().context("reserving a loopback port")?;
    let number = port.number();
    reserved.push(port);
    Ok(number)
}

impl Stack {
    /// Starts everything and waits until it is ready. On failure, whatever was started is
    /// stopped again.
    pub async fn start(options: &StackOptions) -> anyhow::Result<Stack> {
        std::fs::create_dir_all(&options.state_dir)
            .with_context(|| format!("creating the state directory {}", options.state_dir.display()))?;
        let pki = options.tls.then(|| Pki::create(&options.state_dir.join("tls"))).transpose()?;
        let scheme = if pki.is_some() { "https" } else { "http" };
        let members = options.etcd_members.max(1);
        let mut etcd_members = Vec::new();
        let mut peers = Vec::new();
        let mut ports = Vec::new();
        for i in 0..members {
            let name = if members == 1 { "etcd".to_string() } else { format!("etcd-{i}") };
            etcd_members.push((name.clone(), format!("{scheme}://127.0.0.1:{}", reserve_port(&mut ports)?)));
            peers.push((name, format!("{scheme}://127.0.0.1:{}", reserve_port(&mut ports)?)));
        }
        let given = options.etcd_given.unwrap_or(etcd_members.len()).clamp(1, etcd_members.len());
        let etcd_flag = etcd_members[..given].iter().map(|(_, url)| url.as_str()).collect::<Vec<_>>().join(",");
        let mut etcd_args = vec![format!("--etcd={etcd_flag}")];
        if let Some(pki) = &pki {
            etcd_args.extend([
                format!("--etcd-ca={}", pki.ca.display()),
                format!("--etcd-cert={}", pki.client_cert.display()),
                format!("--etcd-key={}", pki.client_key.display()),
            ]);
        }
        let mut stack = Stack {
            processes: Vec::new(),
            ports,
            etcd: etcd_members[0].1.clone(),
            etcd_members,
            etcd_args,
            pki,
            apiserver: String::new(),
            token: chaos_def::auth::generate_token(),
            context_file: options.state_dir.join("chaosctl.yaml"),
            kube_url: None,
            kube_urls: Vec::new(),
            apps: Vec::new(),
            state_dir: options.state_dir.clone(),
            options: options.clone(),
            next_worker: BTreeMap::new(),
            kube_args: Vec::new(),
            probes: Vec::new(),
        };
        match stack.start_all(options, &peers).await {
            Ok(()) => Ok(stack),
            Err(error) => {
                stack.stop().await;
                Err(error)
            }
        }
    }

    async fn start_all(&mut self, options: &StackOptions, peers: &[(String, String)]) -> anyhow::Result<()> {
        let http = self.http()?;
        let etcd = on_path("etcd", "run scripts/bootstrap.sh, or apt-get install etcd-server")?;
        let cluster: Vec<String> = peers.iter().map(|(name, peer)| format!("{name}={peer}")).collect();
        // Every member first: one is healthy only once a quorum has elected a leader.
        for ((name, client), (_, peer)) in self.etcd_members.clone().iter().zip(peers) {
            let data = if self.etcd_members.len() == 1 { "etcd".to_string() } else { name.clone() };
            self.spawn(
                name,
                &etcd,
                &[
                    format!("--name={name}"),
                    format!("--data-dir={}", self.state_dir.join(data).display()),
                    format!("--listen-client-urls={client}"),
                    format!("--advertise-client-urls={client}"),
                    format!("--listen-peer-urls={peer}"),
                    format!("--initial-advertise-peer-urls={peer}"),
                    format!("--initial-cluster={}", cluster.join(",")),
                    "--log-level=error".into(),
                ]
                .into_iter()
                .chain(self.etcd_tls_flags())
                .collect::<Vec<_>>(),
            )?;
        }
        for (name, client) in self.etcd_members.clone() {
            if let Err(error) = wait_http(&http, &format!("{client}/health"), &name).await {
                // etcd says why it did not start (a port taken, a data directory in use).
                return Err(error.context(self.log_tail(&name, 20)));
            }
        }

        let kube_args = self.start_clusters(options, &http).await?;

        let api_port = reserve_port(&mut self.ports)?;
        self.apiserver =
            format!("{scheme}://127.0.0.1:{api_port}", scheme = if self.pki.is_some() { "https" } else { "http" });
        let token_file = self.state_dir.join("admin.token");
        crate::pki::write(&token_file, &self.token, 0o600)?;
        let mut api_args = self.etcd_args.clone();
        api_args.extend([
            format!("--listen=127.0.0.1:{api_port}"),
            format!("--bootstrap-token-file={}", token_file.display()),
        ]);
        if let Some(pki) = &self.pki {
            api_args.push(format!("--tls-cert={}", pki.server_cert.display()));
            api_args.push(format!("--tls-key={}", pki.server_key.display()));
        }
        self.spawn("apiserver", &sibling("chaos-apiserver")?, &[&api_args[..], &options.apiserver_args].concat())?;
        wait_http(&http, &format!("{}/readyz", self.apiserver), "the apiserver").await?;
        self.context().save(&self.context_file)?;
        for role in ["controller", "scheduler"] {
            let port = reserve_port(&mut self.ports)?;
            let mut args = self.etcd_args.clone();
            args.extend([
                format!("--name={role}-0"),
                format!("--listen=127.0.0.1:{port}"),
                format!("--lease-ttl={}", options.leader_lease_ttl),
            ]);
            self.spawn(role, &sibling(&format!("chaos-{role}"))?, &args)?;
            wait_http(&http, &format!("http://127.0.0.1:{port}/readyz"), &format!("the {role}")).await?;
            self.probes.push((role.to_string(), format!("http://127.0.0.1:{port}")));
        }
        self.kube_args = kube_args;
        let mut started = Vec::new();
        for cluster in &options.clusters {
            for _ in 0..options.workers {
                started.push(self.spawn_worker(cluster)?);
            }
        }
        self.wait_workers(&http, started.len() as u32, &started).await?;
        // Nothing exited meanwhile.
        let everything: Vec<String> = self.processes.iter().map(|p| p.name.clone()).collect();
        self.fail_if_exited(&everything)
    }

    /// An error naming the first of `names` that has exited, with its status and its log's end.
    fn fail_if_exited(&mut self, names: &[String]) -> anyhow::Result<()> {
        for process in self.processes.iter_mut().filter(|p| names.contains(&p.name)) {
            if let Some(status) = process.child.try_wait()? {
                let name = process.name.clone();
                bail!("{name} exited at start ({status}); {}", self.log_tail(&name, 10));
            }
        }
        Ok(())
    }

    /// The clusters: a kubesim each (named `kubesim` when there is one, `kubesim-<cluster>` when
    /// there are several), or the kubeconfig's one; returns how each one's workers reach it.
    async fn start_clusters(
        &mut self,
        options: &StackOptions,
        http: &reqwest::Client,
    ) -> anyhow::Result<Vec<(String, Vec<String>)>> {
        anyhow::ensure!(!options.clusters.is_empty(), "a stack needs at least one cluster");
        if let Some(path) = &options.kubeconfig {
            anyhow::ensure!(options.clusters.len() == 1, "with --kubeconfig the stack has one cluster");
            let args = vec!["--kubeconfig".to_string(), path.display().to_string()];
            return Ok(vec![(options.clusters[0].clone(), args)]);
        }
        let mut kube_args = Vec::new();
        for (index, cluster) in options.clusters.iter().enumerate() {
            let port = reserve_port(&mut self.ports)?;
            let url = format!("http://127.0.0.1:{port}");
            let mut args = vec![
                format!("--listen=127.0.0.1:{port}"),
                format!("--nodes={}", options.nodes),
                format!("--speed={}", options.speed),
                // Each cluster its own story.
                format!("--seed={}", options.seed + index as u64),
                format!("--fault-quorum-stuck={}", options.fault_quorum_stuck),
                format!("--fault-replica-loss={}", options.fault_replica_loss),
            ];
            if !options.apps.is_empty() {
                args.push(format!("--apps={}", options.apps.join(",")));
            }
            let name = self.kubesim_name(cluster);
            self.spawn(&name, &sibling("kubesim")?, &args)?;
            wait_http(http, &format!("{url}/version"), &name).await?;
            self.kube_urls.push((cluster.clone(), url.clone()));
            kube_args.push((cluster.clone(), vec!["--kube-url".to_string(), url]));
        }
        self.kube_url = self.kube_urls.first().map(|(_, url)| url.clone());
        self.apps = options.apps.clone();
        Ok(kube_args)
    }

    /// The process name of a cluster's kubesim.
    pub fn kubesim_name(&self, cluster: &str) -> String {
        if self.options.clusters.len() == 1 { "kubesim".to_string() } else { format!("kubesim-{cluster}") }
    }

    /// A cluster's kubesim URL.
    pub fn kube_url_of(&self, cluster: &str) -> Option<&str> {
        self.kube_urls.iter().find(|(c, _)| c == cluster).map(|(_, url)| url.as_str())
    }

    /// Starts one more worker of `cluster` (`worker-<n>`, or `worker-<cluster>-<n>` when the
    /// stack has several clusters); returns its name.
    fn spawn_worker(&mut self, cluster: &str) -> anyhow::Result<String> {
        let counter = self.next_worker.entry(cluster.to_string()).or_default();
        let number = *counter;
        *counter += 1;
        let name = if self.options.clusters.len() == 1 {
            format!("worker-{number}")
        } else {
            format!("worker-{cluster}-{number}")
        };
        let kube_args = self.kube_args.iter().find(|(c, _)| c == cluster).map(|(_, a)| a.clone()).unwrap_or_default();
        let port = reserve_port(&mut self.ports)?;
        let mut args = vec!["run".to_string()];
        args.extend(self.etcd_args.iter().cloned());
        args.extend([
            format!("--name={name}"),
            format!("--slots={}", self.options.slots),
            format!("--lease-ttl={}", self.options.worker_lease_ttl),
            format!("--cluster={cluster}"),
            format!("--listen=127.0.0.1:{port}"),
            // Shared: a plugin is compiled once for all the workers of the stack.
            format!("--cache-dir={}", self.state_dir.join("plugin-cache").display()),
            // What its probes measure waits here until etcd has it (a restart delivers it).
            format!("--state-dir={}", self.state_dir.join(&name).display()),
        ]);
        args.extend(kube_args);
        args.extend(self.options.worker_args.iter().cloned());
        self.spawn(&name, &sibling("chaos-worker")?, &args)?;
        self.probes.push((name.clone(), format!("http://127.0.0.1:{port}")));
        Ok(name)
    }

    /// Starts one more worker and waits until it has registered and is ready; returns its name.
    pub async fn add_worker(&mut self) -> anyhow::Result<String> {
        let http = self.http()?;
        let registered = self.registered_workers(&http).await;
        let first = self.options.clusters.first().cloned().unwrap_or_else(|| DEFAULT_CLUSTER.to_string());
        let name = self.spawn_worker(&first)?;
        self.wait_workers(&http, registered as u32 + 1, std::slice::from_ref(&name)).await?;
        Ok(name)
    }

    /// The etcd member that leads now (`etcd-<i>`), asked of each running member.
    pub async fn etcd_leader(&self) -> Option<String> {
        let http = self.http().ok()?;
        for (name, url) in &self.etcd_members {
            let request = http.post(format!("{url}/v3/maintenance/status")).timeout(Duration::from_millis(500));
            let status: serde_json::Value = match request.body("{}").send().await {
                Ok(response) => response.json().await.unwrap_or_default(),
                Err(_) => continue,
            };
            let (leader, me) = (&status["leader"], &status["header"]["member_id"]);
            if !leader.is_null() && leader == me {
                return Some(name.clone());
            }
        }
        None
    }

    /// The pid of a process of the stack, by name (`etcd`, `controller`, `worker-0`, ...).
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.processes.iter().find(|p| p.name == name).and_then(|p| p.child.id())
    }

    /// Sends `signal` to a process of the stack (SIGSTOP, SIGCONT, SIGKILL, ...).
    pub fn signal(&self, name: &str, signal: i32) -> anyhow::Result<()> {
        let pid = self.pid(name).with_context(|| format!("no running process named {name}"))?;
        send_signal(pid, signal);
        Ok(())
    }

    /// SIGKILLs a process of the stack and waits until it is gone.
    pub async fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        let process =
            self.processes.iter_mut().find(|p| p.name == name).with_context(|| format!("no process named {name}"))?;
        process.child.kill().await?;
        Ok(())
    }

    /// Starts a killed (or exited) process again with the same arguments.
    pub fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        let index =
            self.processes.iter().position(|p| p.name == name).with_context(|| format!("no process named {name}"))?;
        let old = self.processes.remove(index);
        let child = self.command(&old.name, &old.program, &old.args, true)?;
        self.processes.insert(index, Process { child, ..old });
        Ok(())
    }

    /// The last `lines` lines of a process's log, to explain a failure.
    fn log_tail(&self, name: &str, lines: usize) -> String {
        let log = std::fs::read_to_string(self.state_dir.join(format!("{name}.log"))).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(lines).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("the end of {name}'s log:\n{}", tail.join("\n"))
    }

    fn spawn(&mut self, name: &str, program: &Path, args: &[String]) -> anyhow::Result<()> {
        let child = self.command(name, program, args, false)?;
        self.processes.push(Process {
            name: name.to_string(),
            program: program.to_path_buf(),
            args: args.to_vec(),
            child,
        });
        Ok(())
    }

    fn command(&self, name: &str, program: &Path, args: &[String], append: bool) -> anyhow::Result<Child> {
        let path = self.state_dir.join(format!("{name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&path)
            .with_context(|| format!("creating the log file of {name}"))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        if self.options.die_with_parent {
            let parent = std::process::id();
            // SAFETY: between fork and exec only `prctl` and `getppid` run, both
            // async-signal-safe.
            #[allow(unsafe_code)]
            unsafe {
                command.pre_exec(move || {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // The parent died before the request took hold: nobody would signal. (No
                    // allocation here: an errno is all that reaches the parent anyway.)
                    if u32::try_from(libc::getppid()).ok() != Some(parent) {
                        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                    }
                    Ok(())
                });
            }
        }
        let child = command.spawn().with_context(|| format!("starting {}", program.display()))?;
        Ok(child)
    }

    /// Where the web dashboard is, and how to sign in (the token is read from its file, never
    /// printed: the output may end up in a log).
    pub fn dashboard_hint(&self) -> String {
        let trust = match &self.pki {
            Some(pki) => format!("; the browser must trust {} or accept its certificate", pki.ca.display()),
            None => String::new(),
        };
        format!(
            "dashboard: {}/ui  (sign in with the admin token in {}{trust})",
            self.apiserver,
            self.state_dir.join("admin.token").display()
        )
    }

    /// A client of the stack's apiserver, as its admin.
    pub fn client(&self) -> crate::client::Client {
        let http = self.http().expect("the stack's TLS material was readable when it started");
        crate::client::Client::with_http(&self.apiserver, Some(&self.token), http)
    }

    /// An HTTP client for the stack's endpoints: with TLS, one that trusts the stack's CA only
    /// and shows the daemons' client certificate (etcd asks for it).
    pub fn http(&self) -> anyhow::Result<reqwest::Client> {
        match &self.pki {
            Some(pki) => pki.http(),
            None => Ok(reqwest::Client::new()),
        }
    }

    /// What a client needs to reach the stack's etcd: TLS settings when it runs with TLS.
    pub fn etcd_tls(&self) -> anyhow::Result<Option<chaos_def::store::EtcdTls>> {
        self.pki.as_ref().map(Pki::etcd_tls).transpose()
    }

    /// etcd's TLS flags: clients must show a certificate of the stack's CA; members talk to
    /// each other over TLS too.
    fn etcd_tls_flags(&self) -> Vec<String> {
        let Some(pki) = &self.pki else { return Vec::new() };
        let (ca, cert, key) = (pki.ca.display(), pki.server_cert.display(), pki.server_key.display());
        vec![
            format!("--cert-file={cert}"),
            format!("--key-file={key}"),
            format!("--trusted-ca-file={ca}"),
            "--client-cert-auth".into(),
            format!("--peer-cert-file={cert}"),
            format!("--peer-key-file={key}"),
            format!("--peer-trusted-ca-file={ca}"),
            "--peer-client-cert-auth".into(),
        ]
    }

    /// A chaosctl config whose one context, `chaos-local`, is this stack (and current).
    pub fn context(&self) -> crate::config::Config {
        crate::config::Config {
            current_context: Some(LOCAL_CONTEXT.into()),
            contexts: vec![crate::config::Context {
                name: LOCAL_CONTEXT.into(),
                server: self.apiserver.clone(),
                token: Some(self.token.clone()),
                ca: self.pki.as_ref().map(|pki| pki.ca.clone()),
            }],
        }
    }

    async fn registered_workers(&self, http: &reqwest::Client) -> usize {
        match http.get(format!("{}/v1/workers", self.apiserver)).bearer_auth(&self.token).send().await {
            Ok(response) => response.json::<chaos_def::api::WorkerList>().await.map(|l| l.items.len()).unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// Waits until `count` workers are registered and each of `started` is ready.
    async fn wait_workers(&mut self, http: &reqwest::Client, count: u32, started: &[String]) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // A worker that cannot start (its port taken, a bad flag) says why at once.
            self.fail_if_exited(started)?;
            let registered = self.registered_workers(http).await;
            // Ready: registered, and its built-in plugins compiled (a worker still compiling
            // would start its first instances late, and take the CPU from everyone else).
            let mut ready = 0;
            for (_, url) in self.probes.iter().filter(|(name, _)| started.contains(name)) {
                let answer = http.get(format!("{url}/readyz")).timeout(Duration::from_secs(2)).send().await;
                ready += usize::from(answer.is_ok_and(|r| r.status().is_success()));
            }
            if registered >= count as usize && ready == started.len() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{registered} of {count} workers registered, {ready} of the {} started ready within 60 s; \
                     see the worker logs in {}",
                    started.len(),
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
            if let Some(pid) = process.child.id() {
                // A stopped process must run again to handle SIGTERM.
                send_signal(pid, libc::SIGCONT);
                send_signal(pid, libc::SIGTERM);
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

/// The name of the context `up` and `demo` write for their stack.
pub const LOCAL_CONTEXT: &str = "chaos-local";

/// kill(2) on a child of the stack (`Child::id` is None once it is reaped, so the pid cannot
/// have been reused).
fn send_signal(pid: u32, signal: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) takes no pointers; the pid is a live child of this process.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(pid, signal);
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
