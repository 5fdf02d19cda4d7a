//! Test harness: a real `etcd` server (the Debian package `etcd-server`) on loopback ports
//! reserved for it ([`ports`]) with a temporary data directory, stopped when dropped.
//!
//! [`EtcdServer::shared`] gives every test of one test binary the same server (one etcd per
//! suite); each test then works under its own key prefix from [`unique_prefix`]. Tests that
//! restart, stop or compact etcd start their own with [`EtcdServer::start`].
//!
//! The etcd process gets `PR_SET_PDEATHSIG`, so it dies with the test process even when the
//! test panics or is killed and no destructor runs.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub mod ports;
pub use ports::Port;

/// A running etcd. Dropping it kills the process and removes its data directory.
#[derive(Debug)]
pub struct EtcdServer {
    child: Mutex<Option<Child>>,
    client_port: Port,
    peer_port: Port,
    data_dir: TempDir,
    /// More flags (`--max-request-bytes=N`).
    extra: Vec<String>,
    /// The member's name and, in a cluster, every member's `name=peer-url`.
    name: String,
    initial_cluster: Option<String>,
}

impl EtcdServer {
    /// Starts a new etcd and waits until it serves clients.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a new etcd with more flags (`--max-request-bytes=262144`).
    pub fn start_with(extra: &[&str]) -> Self {
        let data_dir = tempfile::Builder::new().prefix("chaos-etcd-").tempdir().expect("temporary directory for etcd");
        let extra = extra.iter().map(|s| s.to_string()).collect();
        let server = EtcdServer {
            child: Mutex::new(None),
            client_port: free_port(),
            peer_port: free_port(),
            data_dir,
            extra,
            name: "test".into(),
            initial_cluster: None,
        };
        server.spawn();
        server
    }

    /// The etcd shared by every test in this test binary.
    pub fn shared() -> &'static EtcdServer {
        static SHARED: OnceLock<EtcdServer> = OnceLock::new();
        SHARED.get_or_init(EtcdServer::start)
    }

    /// The client URL, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// Kills etcd (SIGKILL) without removing its data; [`EtcdServer::restart`] brings it back.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().expect("etcd child lock").take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data directory.
    pub fn restart(&self) {
        self.kill();
        self.spawn();
    }

    /// The member's name (`test`, or `m0`, `m1`, … in a cluster).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the process runs (not killed; a paused one runs).
    pub fn is_running(&self) -> bool {
        self.child.lock().expect("etcd child lock").is_some()
    }

    /// Pauses (SIGSTOP) or resumes (SIGCONT) the process: etcd stops answering but keeps its
    /// connections, as in a long GC pause or a partition.
    pub fn pause(&self, paused: bool) {
        if let Some(child) = self.child.lock().expect("etcd child lock").as_ref() {
            let signal = if paused { libc::SIGSTOP } else { libc::SIGCONT };
            let pid = i32::try_from(child.id()).expect("pid fits in i32");
            // SAFETY: kill(2) with a pid we own and a valid signal number.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    fn spawn(&self) {
        self.start_process();
        self.wait_ready(Duration::from_secs(30));
    }

    fn start_process(&self) {
        let binary = etcd_binary();
        let client_url = self.endpoint();
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let mut command = Command::new(&binary);
        command
            .arg(format!("--name={}", self.name))
            .arg(format!("--data-dir={}", self.data_dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!(
                "--initial-cluster={}",
                self.initial_cluster.clone().unwrap_or_else(|| format!("{}={peer_url}", self.name))
            ))
            // Shorter raft timers: leases can be as short as 1 s and a restart elects at once.
            .arg("--heartbeat-interval=50")
            .arg("--election-timeout=500")
            .arg("--log-level=error")
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        die_with_parent(&mut command);
        let spawned =
            spawn_on_keeper_thread(command).unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut child = spawned;
        // Keep etcd's stderr flowing (a full pipe would block it) and visible on failure.
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("[etcd] {line}");
                }
            });
        }
        *self.child.lock().expect("etcd child lock") = Some(child);
    }

    fn wait_ready(&self, limit: Duration) {
        let started = Instant::now();
        let addr: SocketAddr = ([127, 0, 0, 1], self.client_port.number()).into();
        while started.elapsed() < limit {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() && self.health_ok() {
                return;
            }
            if let Some(child) = self.child.lock().expect("etcd child lock").as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("etcd exited during start-up: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("etcd did not become ready on {} within {limit:?}", self.endpoint());
    }

    /// `GET /health` answers `"health":"true"` once etcd has a leader and serves requests.
    fn health_ok(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.client_port.number())) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let request =
            format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", self.client_port);
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.contains("\"health\":\"true\"")
    }
}

/// A cluster of etcd members on free loopback ports, each its own process and data directory.
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<EtcdServer>,
}

impl EtcdCluster {
    /// Starts `size` members (`m0`, `m1`, …) together and waits until each serves clients.
    pub fn start(size: usize) -> Self {
        let mut members: Vec<EtcdServer> = (0..size)
            .map(|i| EtcdServer {
                child: Mutex::new(None),
                client_port: free_port(),
                peer_port: free_port(),
                data_dir: tempfile::Builder::new().prefix("chaos-etcd-").tempdir().expect("temporary directory"),
                extra: Vec::new(),
                name: format!("m{i}"),
                initial_cluster: None,
            })
            .collect();
        let cluster: Vec<String> =
            members.iter().map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port)).collect();
        for member in &mut members {
            member.initial_cluster = Some(cluster.join(","));
        }
        // All at once: a member is healthy only once a quorum has elected a leader.
        for member in &members {
            member.start_process();
        }
        for member in &members {
            member.wait_ready(Duration::from_secs(30));
        }
        EtcdCluster { members }
    }

    pub fn members(&self) -> &[EtcdServer] {
        &self.members
    }

    pub fn member(&self, i: usize) -> &EtcdServer {
        &self.members[i]
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(EtcdServer::endpoint).collect()
    }

    /// The member that leads now (asked of the running members, over etcd's JSON gateway).
    pub fn leader(&self) -> Option<usize> {
        self.members.iter().position(|m| {
            let (leader, id) = (m.status_field("leader"), m.status_field("member_id"));
            m.is_running() && leader.is_some() && leader == id
        })
    }
}

impl EtcdServer {
    /// A field of `/v3/maintenance/status` (`leader`, `member_id` under `header`), as text.
    fn status_field(&self, field: &str) -> Option<String> {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", self.client_port.number())).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let request = format!(
            "POST /v3/maintenance/status HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 2\r\n\
             Connection: close\r\n\r\n{{}}",
            self.client_port
        );
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        let needle = format!("\"{field}\":\"");
        let start = response.find(&needle)? + needle.len();
        let end = response[start..].find('"')? + start;
        Some(response[start..end].to_string())
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A key prefix no other test uses, e.g. `/t-1f2e…`.
pub fn unique_prefix() -> String {
    format!("/t-{}", uuid::Uuid::new_v4().simple())
}

/// The `etcd` binary: `$ETCD_BIN`, else `etcd` on `PATH`. Panics with the install command
/// when there is none.
pub fn etcd_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ETCD_BIN") {
        return PathBuf::from(path);
    }
    find_on_path("etcd").unwrap_or_else(|| {
        panic!("etcd is not installed: run `scripts/bootstrap.sh` (or `apt-get install etcd-server`)")
    })
}

/// The first executable called `name` on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

/// A loopback port reserved for a server the caller starts, until the [`Port`] is dropped (see
/// [`ports`]).
pub fn free_port() -> Port {
    ports::reserve().expect("a free loopback port")
}

/// Makes the child receive SIGKILL when the thread that spawned it exits.
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// PDEATHSIG fires when the *thread* that forked the child ends, not the process; test threads
/// come and go, so every child is forked by one thread that lives as long as the process.
fn spawn_on_keeper_thread(command: Command) -> std::io::Result<Child> {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static KEEPER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let sender = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("child-keeper".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
                // The channel never closes (the sender is in a static): park for good.
                loop {
                    std::thread::park();
                }
            })
            .expect("child keeper thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    sender.lock().expect("keeper lock").send((command, reply_tx)).expect("keeper thread alive");
    reply_rx.recv().expect("keeper thread answers")
}

/// Spawns any command so that it dies with the test process (see [`EtcdServer`]).
pub fn spawn_tied(mut command: Command) -> std::io::Result<Child> {
    die_with_parent(&mut command);
    spawn_on_keeper_thread(command)
}
