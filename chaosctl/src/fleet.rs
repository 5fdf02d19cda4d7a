//! A local stack driven from code: the [`Stack`] of real binaries with a client of its
//! apiserver and of its etcd, scenarios of `noop` task replicas, and a board that follows every
//! instance's status through an etcd watch and notes when each was first seen Running where.
//! `chaos-bench pipeline|failover` and the end-to-end tests are built on it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::Client;
use crate::stack::{Stack, StackOptions};
use anyhow::Context as _;
use chaos_def::Keys;
use chaos_def::records::{InstancePhase, InstanceStatus, JournalEvent};
use chaos_def::store::{Store, WatchEvent};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A running stack with a client of its apiserver and of its etcd.
pub struct Fleet {
    pub stack: Stack,
    pub store: Store,
    pub client: Client,
    /// Removed on drop, unless `CHAOS_KEEP_STATE` is set (to read the logs after a failure).
    _state: Option<tempfile::TempDir>,
}

impl Fleet {
    /// Starts a stack with `workers` workers of `slots` slots in a temporary directory.
    pub async fn start(workers: u32, slots: u32, lease_ttl: u64) -> anyhow::Result<Fleet> {
        Self::start_on(workers, slots, lease_ttl, 1).await
    }

    /// The same on an etcd of `etcd_members` members, every daemon given all of them.
    pub async fn start_on(workers: u32, slots: u32, lease_ttl: u64, etcd_members: u32) -> anyhow::Result<Fleet> {
        let state = tempfile::Builder::new().prefix("chaos-fleet-").tempdir()?;
        // No applications: the fleet's tests measure the orchestrator, not kubesim's workloads.
        let options = StackOptions {
            workers,
            slots,
            worker_lease_ttl: lease_ttl,
            apps: Vec::new(),
            etcd_members,
            ..StackOptions::new(state.path())
        };
        Self::start_with(options, state).await
    }

    /// Starts a stack as `options` say; `state` (which holds `options.state_dir`) is removed
    /// when the fleet is dropped.
    pub async fn start_with(options: StackOptions, state: tempfile::TempDir) -> anyhow::Result<Fleet> {
        let stack = Stack::start(&options).await.context("starting the stack")?;
        let endpoints: Vec<String> = stack.etcd_members.iter().map(|(_, url)| url.clone()).collect();
        let store =
            Store::connect_with(&endpoints, chaos_def::consts::DEFAULT_PREFIX, stack.etcd_tls()?.as_ref()).await?;
        let client = stack.client();
        let state = match std::env::var_os("CHAOS_KEEP_STATE") {
            Some(_) => {
                eprintln!("keeping the stack's state and logs in {}", state.keep().display());
                None
            }
            None => Some(state),
        };
        Ok(Fleet { stack, store, client, _state: state })
    }

    /// Applies a scenario `name` of `replicas` instances of the `noop` plugin.
    pub async fn apply_noop(&self, name: &str, replicas: u32) -> anyhow::Result<()> {
        let text = format!(
            "apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: {name}}}\nspec:\n  cluster: default\n  \
             tasks:\n    - {{name: noop, plugin: noop, replicas: {replicas}}}\n"
        );
        let scenario = chaos_def::scenario::parse_scenarios(&text).map_err(|e| anyhow::anyhow!("{e}"))?.remove(0);
        self.client.apply(&scenario).await?;
        Ok(())
    }

    /// The journal of scenario `name`.
    pub async fn journal(&self, name: &str) -> anyhow::Result<Vec<JournalEvent>> {
        let prefix = self.store.keys().scenario_events_prefix(name);
        Ok(self.store.list::<JournalEvent>(&prefix).await?.items.into_iter().map(|(_, v)| v.value).collect())
    }

    /// Waits until the journal of scenario `name` shows a run of each of `count` instances
    /// (journals reach etcd a little after the runs start).
    pub async fn journaled_runs(&self, name: &str, count: usize, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let runs = crate::runs::runs(&self.journal(name).await?);
            let instances: std::collections::BTreeSet<&str> = runs.iter().map(|r| r.instance.as_str()).collect();
            if instances.len() >= count {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the journal of {name} shows {} of {count} instances",
                instances.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// etcd's own count of keys written (puts and deletes, inside transactions or not).
    pub async fn etcd_writes(&self) -> anyhow::Result<f64> {
        let text = self.stack.http()?.get(format!("{}/metrics", self.stack.etcd)).send().await?.text().await?;
        let sum = |name: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(name) && !l.starts_with('#'))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        Ok(sum("etcd_mvcc_put_total") + sum("etcd_mvcc_delete_total"))
    }
}

/// Every instance's latest status, and when it was first seen Running on each worker.
#[derive(Default)]
pub struct Board {
    pub latest: BTreeMap<String, InstanceStatus>,
    /// (instance, worker) → first seen Running there.
    pub running_on: BTreeMap<(String, String), Instant>,
    pub first_running: Option<Instant>,
}

impl Board {
    /// Instances whose latest status is Running.
    pub fn running(&self) -> usize {
        self.latest.values().filter(|s| s.phase == InstancePhase::Running).count()
    }
}

/// Follows `status/` into a shared [`Board`] until `cancel`.
pub fn follow(store: &Store, cancel: CancellationToken) -> Arc<Mutex<Board>> {
    let board = Arc::new(Mutex::new(Board::default()));
    let shared = board.clone();
    let store = store.clone();
    tokio::spawn(async move {
        let prefix = store.keys().statuses_prefix();
        let mut watch = store.watch::<InstanceStatus>(&prefix);
        while let Some(event) = watch.next(&cancel).await {
            let now = Instant::now();
            let mut board = shared.lock().unwrap_or_else(|p| p.into_inner());
            let note = |board: &mut Board, key: &str, status: InstanceStatus| {
                let Some(id) = Keys::name_in(&prefix, key) else { return };
                if status.phase == InstancePhase::Running
                    && let Some(worker) = &status.worker
                {
                    board.running_on.entry((id.to_string(), worker.clone())).or_insert(now);
                    board.first_running.get_or_insert(now);
                }
                board.latest.insert(id.to_string(), status);
            };
            match event {
                WatchEvent::Listed { items, .. } => {
                    for (key, item) in items {
                        note(&mut board, &key, item.value);
                    }
                }
                WatchEvent::Put { key, item } => note(&mut board, &key, item.value),
                WatchEvent::Deleted { key, .. } => {
                    if let Some(id) = Keys::name_in(&prefix, &key) {
                        board.latest.remove(id);
                    }
                }
            }
        }
    });
    board
}

/// Polls `check` on the board every 20 ms until it holds; fails after `limit`.
pub async fn wait_board(
    board: &Mutex<Board>,
    limit: Duration,
    what: &str,
    check: impl Fn(&Board) -> bool,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + limit;
    loop {
        if check(&board.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(Instant::now());
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
