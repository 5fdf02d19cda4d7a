//! The state layer's contract, against a real etcd: compare-and-swap, batches over etcd's
//! 128-operation limit, paged listing, resumable watches, relisting after compaction, leases
//! and leader election.

use std::time::Duration;

use chaos_def::retry::{Backoff, retry};
use chaos_def::store::{Batch, Store, StoreError, WatchEvent};
use chaos_harness::{EtcdServer, unique_prefix};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    n: u32,
}

async fn store_on(etcd: &EtcdServer) -> Store {
    Store::connect(&[etcd.endpoint()], &unique_prefix()).await.expect("connect to etcd")
}

async fn next_event<T: serde::de::DeserializeOwned>(watcher: &mut chaos_def::store::Watcher<T>) -> WatchEvent<T> {
    let cancel = CancellationToken::new();
    tokio::time::timeout(Duration::from_secs(10), watcher.next(&cancel))
        .await
        .expect("a watch event within 10 s")
        .expect("watcher not cancelled")
}

#[tokio::test]
async fn compare_and_swap_refuses_a_stale_revision() {
    let store = store_on(EtcdServer::shared()).await;
    let key = store.keys().scenario("cas");
    store.create(&key, &Item { n: 1 }).await.unwrap();
    assert!(matches!(store.create(&key, &Item { n: 9 }).await, Err(StoreError::AlreadyExists { .. })));

    let read = store.get::<Item>(&key).await.unwrap().unwrap();
    assert_eq!(read.value, Item { n: 1 });
    store.update(&key, &Item { n: 2 }, read.mod_revision).await.unwrap();
    // A second writer holding the same (now stale) read loses.
    let stale = store.update(&key, &Item { n: 3 }, read.mod_revision).await;
    assert!(matches!(stale, Err(StoreError::Conflict { .. })), "{stale:?}");
    assert_eq!(store.get::<Item>(&key).await.unwrap().unwrap().value, Item { n: 2 });

    let current = store.get::<Item>(&key).await.unwrap().unwrap();
    assert!(matches!(store.delete_if(&key, read.mod_revision).await, Err(StoreError::Conflict { .. })));
    store.delete_if(&key, current.mod_revision).await.unwrap();
    assert!(store.get::<Item>(&key).await.unwrap().is_none());
}

/// What the scheduler relies on: an assignment is created only if the status it was decided
/// from is unchanged (a final status written meanwhile refuses it).
#[tokio::test]
async fn a_create_guarded_by_another_key_fails_once_that_key_changed() {
    let store = store_on(EtcdServer::shared()).await;
    let keys = store.keys();
    let lease = store.grant_lease(Duration::from_secs(5)).await.unwrap();
    let (status, assignment) = (keys.status("i-1"), keys.assignment("w", "i-1"));
    let seen = store.put(&status, &Item { n: 1 }).await.unwrap();

    // The status moved on after it was read: nothing is created.
    store.put(&status, &Item { n: 2 }).await.unwrap();
    let mut stale = Batch::new();
    stale.create_with_lease_if(&assignment, &Item { n: 7 }, lease.id(), (status.clone(), seen)).unwrap();
    let outcome = stale.commit(&store).await.unwrap();
    assert_eq!((outcome.committed, outcome.conflicts), (0, 1));
    assert!(store.get::<Item>(&assignment).await.unwrap().is_none());

    // Decided from the current status: created, on the lease.
    let current = store.get::<Item>(&status).await.unwrap().unwrap().mod_revision;
    let mut fresh = Batch::new();
    fresh.create_with_lease_if(&assignment, &Item { n: 7 }, lease.id(), (status.clone(), current)).unwrap();
    assert!(fresh.commit(&store).await.unwrap().all_committed());
    assert_eq!(store.get::<Item>(&assignment).await.unwrap().unwrap().lease, lease.id());

    // An absent key is revision 0.
    let mut absent = Batch::new();
    absent
        .create_with_lease_if(keys.assignment("w", "i-2"), &Item { n: 8 }, lease.id(), (keys.status("i-2"), 0))
        .unwrap();
    assert!(absent.commit(&store).await.unwrap().all_committed());
}

#[tokio::test]
async fn a_batch_over_the_transaction_limit_commits_in_chunks_and_lists_in_pages() {
    let store = store_on(EtcdServer::shared()).await;
    let prefix = store.keys().instances_prefix();
    let mut batch = Batch::new();
    for n in 0..700u32 {
        batch.create(store.keys().instance("big", &format!("i{n:04}")), &Item { n }).unwrap();
    }
    let outcome = batch.commit(&store).await.unwrap();
    assert!(outcome.all_committed(), "{outcome:?}");
    assert_eq!(outcome.committed, 700usize.div_ceil(128));

    // 700 items is more than one page of a listing.
    let listing = store.list::<Item>(&prefix).await.unwrap();
    assert_eq!(listing.items.len(), 700);
    let numbers: Vec<u32> = listing.items.iter().map(|(_, v)| v.value.n).collect();
    assert_eq!(numbers, (0..700).collect::<Vec<_>>());
    assert!(listing.revision >= outcome.revision);

    // Creating again conflicts chunk by chunk, and nothing is overwritten.
    let mut again = Batch::new();
    again.create(store.keys().instance("big", "i0000"), &Item { n: 99 }).unwrap();
    again.create(store.keys().instance("big", "new"), &Item { n: 1 }).unwrap();
    let outcome = again.commit(&store).await.unwrap();
    assert_eq!(outcome.conflicts, 1);
    assert_eq!(outcome.rejected_keys.len(), 2);
    assert!(store.get::<Item>(&store.keys().instance("big", "new")).await.unwrap().is_none());
    assert_eq!(store.delete_prefix(&prefix).await.unwrap(), 700);
}

#[tokio::test]
async fn an_unordered_batch_lands_every_chunk_and_reports_each_keys_revision() {
    let store = store_on(EtcdServer::shared()).await;
    let key = |n: u32| store.keys().instance("unordered", &format!("i{n:04}"));
    // One key taken beforehand: the chunk holding its create fails as a unit, the others land.
    store.put(&key(450), &Item { n: 0 }).await.unwrap();
    let mut batch = Batch::new().unordered(4);
    for n in 0..1000u32 {
        batch.create(key(n), &Item { n }).unwrap();
    }
    let outcome = batch.commit(&store).await.unwrap();
    let chunks = 1000usize.div_ceil(128);
    assert_eq!((outcome.committed, outcome.conflicts), (chunks - 1, 1), "{outcome:?}");
    assert!(outcome.rejected_keys.contains(&key(450)));
    assert_eq!(outcome.written.len() + outcome.rejected_keys.len(), 1000);

    // Each written key is stored at the revision the outcome gives for it; the rejected
    // chunk's keys are absent, and the taken key kept its value.
    let listing = store.list::<Item>(&store.keys().scenario_instances_prefix("unordered")).await.unwrap();
    let stored: std::collections::BTreeMap<&str, i64> =
        listing.items.iter().map(|(k, v)| (k.as_str(), v.mod_revision)).collect();
    for (key, revision) in &outcome.written {
        assert_eq!(stored.get(key.as_str()), Some(revision), "{key}");
    }
    assert_eq!(listing.items.len(), outcome.written.len() + 1);
    assert_eq!(store.get::<Item>(&key(450)).await.unwrap().unwrap().value, Item { n: 0 });
    assert_eq!(outcome.revision, outcome.written.iter().map(|(_, r)| *r).max().unwrap());
    store.delete_prefix(&store.keys().scenario_instances_prefix("unordered")).await.unwrap();
}

/// A batch that writes `Item { n }` at `key`, fenced by `fence_key` at `create_revision`.
fn fenced_put(fence_key: &str, create_revision: i64, key: String, n: u32) -> Batch {
    let mut batch = Batch::new();
    batch.fence(fence_key, create_revision);
    batch.put(key, &Item { n }).unwrap();
    batch
}

#[tokio::test]
async fn a_fenced_batch_fails_once_the_fence_key_changed() {
    let store = store_on(EtcdServer::shared()).await;
    let fence_key = store.keys().election("test-fence");
    let rev = store.put(&fence_key, &"term-1").await.unwrap();
    let write = |n: u32| fenced_put(&fence_key, rev, store.keys().scenario("fenced"), n);
    assert!(write(1).commit(&store).await.unwrap().all_committed());
    // Another term begins: the key is deleted and created again.
    store.delete(&fence_key).await.unwrap();
    store.put(&fence_key, &"term-2").await.unwrap();
    let outcome = write(2).commit(&store).await.unwrap();
    assert!(!outcome.all_committed());
    assert_eq!(store.get::<Item>(&store.keys().scenario("fenced")).await.unwrap().unwrap().value, Item { n: 1 });
}

#[tokio::test]
async fn a_watch_lists_then_follows_and_resumes_after_a_restart() {
    let store = store_on(EtcdServer::shared()).await;
    let prefix = store.keys().scenarios_prefix();
    store.put(&store.keys().scenario("a"), &Item { n: 1 }).await.unwrap();

    let mut watcher = store.watch::<Item>(&prefix);
    match next_event(&mut watcher).await {
        WatchEvent::Listed { items, .. } => {
            assert_eq!(items.len(), 1);
            assert_eq!(items[0].1.value, Item { n: 1 });
        }
        other => panic!("expected the listing first, got {other:?}"),
    }
    store.put(&store.keys().scenario("b"), &Item { n: 2 }).await.unwrap();
    match next_event(&mut watcher).await {
        WatchEvent::Put { key, item } => {
            assert_eq!(key, store.keys().scenario("b"));
            assert_eq!(item.value, Item { n: 2 });
        }
        other => panic!("expected a put, got {other:?}"),
    }
    // The watcher "restarts": it is dropped, changes happen meanwhile, and a new one resumes
    // from the revision the old one had reached.
    let revision = watcher.revision();
    drop(watcher);
    store.delete(&store.keys().scenario("a")).await.unwrap();
    store.put(&store.keys().scenario("c"), &Item { n: 3 }).await.unwrap();

    let mut resumed = store.watch_from::<Item>(&prefix, revision);
    match next_event(&mut resumed).await {
        WatchEvent::Deleted { key, .. } => assert_eq!(key, store.keys().scenario("a")),
        other => panic!("expected the delete made while no watcher ran, got {other:?}"),
    }
    match next_event(&mut resumed).await {
        WatchEvent::Put { key, item } => {
            assert_eq!(key, store.keys().scenario("c"));
            assert_eq!(item.value.n, 3);
        }
        other => panic!("expected the later put, got {other:?}"),
    }
}

#[tokio::test]
async fn a_watch_resumed_from_a_compacted_revision_lists_again() {
    // Compaction affects every user of a server: this test has its own.
    let etcd = EtcdServer::start();
    let store = store_on(&etcd).await;
    let prefix = store.keys().scenarios_prefix();
    store.put(&store.keys().scenario("old"), &Item { n: 1 }).await.unwrap();
    let mut watcher = store.watch::<Item>(&prefix);
    let WatchEvent::Listed { revision, .. } = next_event(&mut watcher).await else { panic!("listing first") };
    drop(watcher);

    store.delete(&store.keys().scenario("old")).await.unwrap();
    let latest = store.put(&store.keys().scenario("new"), &Item { n: 2 }).await.unwrap();
    store.client().compact(latest, None).await.unwrap();

    let mut resumed = store.watch_from::<Item>(&prefix, revision);
    match next_event(&mut resumed).await {
        WatchEvent::Listed { items, revision } => {
            let keys: Vec<_> = items.iter().map(|(k, _)| k.clone()).collect();
            assert_eq!(keys, [store.keys().scenario("new")]);
            assert!(revision >= latest);
        }
        other => panic!("expected a relist after compaction, got {other:?}"),
    }
    store.put(&store.keys().scenario("later"), &Item { n: 3 }).await.unwrap();
    assert!(matches!(next_event(&mut resumed).await, WatchEvent::Put { .. }));
}

#[tokio::test]
async fn a_watch_survives_an_etcd_restart() {
    let etcd = EtcdServer::start();
    let store = store_on(&etcd).await;
    let prefix = store.keys().scenarios_prefix();
    let mut watcher = store.watch::<Item>(&prefix);
    assert!(matches!(next_event(&mut watcher).await, WatchEvent::Listed { .. }));

    etcd.restart();
    // The first call after a restart may meet the broken connection; clients retry.
    let key = store.keys().scenario("after-restart");
    retry(Backoff::default(), &CancellationToken::new(), StoreError::is_transient, || store.put(&key, &Item { n: 7 }))
        .await
        .expect("put after the restart");
    match next_event(&mut watcher).await {
        WatchEvent::Put { key, .. } => assert_eq!(key, store.keys().scenario("after-restart")),
        other => panic!("expected the put made after the restart, got {other:?}"),
    }
}

#[tokio::test]
async fn keys_on_a_lease_live_while_it_is_kept_alive_and_go_when_it_is_not() {
    let store = store_on(EtcdServer::shared()).await;
    let lease = store.grant_lease(Duration::from_secs(1)).await.unwrap();
    let key = store.keys().worker("w1");
    store.put_with_lease(&key, &Item { n: 1 }, lease.id()).await.unwrap();

    // Kept alive: the key outlives several TTLs.
    tokio::time::sleep(lease.ttl() * 3).await;
    assert!(store.get::<Item>(&key).await.unwrap().is_some(), "key lost while its lease was kept alive");
    assert!(!lease.is_lost());

    // No longer kept alive (the process "died"): the key goes within about one TTL.
    let ttl = lease.ttl();
    drop(lease);
    let deadline = tokio::time::Instant::now() + ttl + Duration::from_secs(5);
    while store.get::<Item>(&key).await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "key still there {ttl:?} + 5 s after its lease stopped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Revoking removes keys at once.
    let lease = store.grant_lease(Duration::from_secs(30)).await.unwrap();
    store.put_with_lease(&key, &Item { n: 2 }, lease.id()).await.unwrap();
    lease.revoke().await.unwrap();
    assert!(store.get::<Item>(&key).await.unwrap().is_none());
}

#[tokio::test]
async fn a_lease_outlives_its_ttl_while_the_runtime_that_took_it_is_held_by_synchronous_work() {
    // The runtime has one thread, and a long synchronous step (a pass over 100,000 records)
    // holds it: the keep-alive must not need it.
    let store = store_on(EtcdServer::shared()).await;
    let lease = store.grant_lease(Duration::from_secs(2)).await.unwrap();
    let key = store.keys().worker("busy");
    store.put_with_lease(&key, &Item { n: 1 }, lease.id()).await.unwrap();
    std::thread::sleep(lease.ttl() * 3);
    assert!(!lease.is_lost(), "the lease was lost while its holder was busy");
    assert!(lease.clock().is_alive());
    assert!(store.get::<Item>(&key).await.unwrap().is_some(), "etcd let the lease expire");
}

#[tokio::test]
async fn a_lease_that_cannot_be_refreshed_within_its_ttl_reports_itself_lost() {
    let etcd = EtcdServer::start();
    let store = store_on(&etcd).await;
    let lease = store.grant_lease(Duration::from_secs(1)).await.unwrap();
    let lost = lease.lost();
    etcd.pause(true);
    let fired = tokio::time::timeout(lease.ttl() + Duration::from_secs(3), lost.cancelled()).await;
    etcd.pause(false);
    assert!(fired.is_ok(), "lost did not fire within the TTL while etcd was unreachable");
}

#[tokio::test]
async fn one_leader_among_two_candidates_and_the_other_takes_over() {
    let etcd = EtcdServer::shared();
    let prefix = unique_prefix();
    let first = Store::connect(&[etcd.endpoint()], &prefix).await.unwrap();
    let second = Store::connect(&[etcd.endpoint()], &prefix).await.unwrap();
    let cancel = CancellationToken::new();
    let lease_a = first.grant_lease(Duration::from_secs(2)).await.unwrap();
    let lease_b = second.grant_lease(Duration::from_secs(2)).await.unwrap();

    let leader_a = first.campaign("controller", "a", &lease_a, &cancel).await.unwrap();
    assert_eq!(first.leader("controller").await.unwrap().as_deref(), Some("a"));

    // The second candidate waits while the first leads.
    let campaign_b = {
        let second = second.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move { second.campaign("controller", "b", &lease_b, &cancel).await.map(|l| (l, lease_b)) })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!campaign_b.is_finished(), "two leaders at once");

    // A's writes are fenced by its term.
    let (fence_key, fence_rev) = leader_a.fence();
    let fenced_write = |n: u32| fenced_put(&fence_key, fence_rev, first.keys().scenario("leader-write"), n);
    assert!(fenced_write(1).commit(&first).await.unwrap().all_committed());

    // A's lease ends (as when its process dies): B takes over, and A's late writes fail.
    let lost_a = leader_a.lost();
    lease_a.revoke().await.unwrap();
    let (leader_b, _lease_b) = tokio::time::timeout(Duration::from_secs(10), campaign_b)
        .await
        .expect("B elected within 10 s")
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), lost_a.cancelled()).await.expect("A learns its term ended");
    assert_eq!(second.leader("controller").await.unwrap().as_deref(), Some("b"));
    assert!(!fenced_write(2).commit(&first).await.unwrap().all_committed(), "a deposed leader wrote");
    assert_eq!(first.get::<Item>(&first.keys().scenario("leader-write")).await.unwrap().unwrap().value.n, 1);
    leader_b.resign().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_campaign_withdraws_its_candidacy() {
    let etcd = EtcdServer::shared();
    let store = Store::connect(&[etcd.endpoint()], &unique_prefix()).await.unwrap();
    let lease_a = store.grant_lease(Duration::from_secs(5)).await.unwrap();
    let lease_b = store.grant_lease(Duration::from_secs(5)).await.unwrap();
    let never = CancellationToken::new();
    let leader = store.campaign("scheduler", "a", &lease_a, &never).await.unwrap();

    let give_up = CancellationToken::new();
    let waiting = {
        let store = store.clone();
        let give_up = give_up.clone();
        tokio::spawn(async move { store.campaign("scheduler", "b", &lease_b, &give_up).await.map(|_| ()) })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    give_up.cancel();
    assert!(matches!(waiting.await.unwrap(), Err(StoreError::Cancelled)));

    // With A gone, nobody leads: B's abandoned candidacy did not silently win.
    leader.resign().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.leader("scheduler").await.unwrap(), None);
}
