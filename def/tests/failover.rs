//! The state layer on a three-member etcd: a member killed or paused leaves the balancer, and
//! reads, compare-and-swap writes, watches and lease keep-alives carry on with the others; a
//! store given one member's address learns the rest from the member list.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chaos_def::store::{Store, WatchEvent, Watcher};
use chaos_harness::{EtcdCluster, unique_prefix};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(30);

/// What a polling client saw during a fault: requests made, and the errors among them.
#[derive(Debug, Default)]
struct Poll {
    requests: AtomicU64,
    errors: std::sync::Mutex<Vec<String>>,
}

/// Reads and compare-and-swap writes every 50 ms until `stop`: what a daemon does all day.
fn poll(store: Store, prefix: String, stop: CancellationToken) -> (Arc<Poll>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Poll::default());
    let s = seen.clone();
    let task = tokio::spawn(async move {
        let key = format!("{prefix}/counter");
        let mut n = 0u64;
        while !stop.is_cancelled() {
            n += 1;
            s.requests.fetch_add(1, Ordering::Relaxed);
            let step = async {
                let current = store.get::<u64>(&key).await?;
                match current {
                    Some(v) => store.update(&key, &n, v.mod_revision).await,
                    None => store.create(&key, &n).await,
                }
            };
            if let Err(error) = step.await {
                s.errors.lock().unwrap().push(error.to_string());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (seen, task)
}

/// Waits for a put of `key` on the watch.
async fn watched(watcher: &mut Watcher<u64>, key: &str, cancel: &CancellationToken) {
    tokio::time::timeout(LIMIT, async {
        loop {
            match watcher.next(cancel).await {
                Some(WatchEvent::Put { key: k, .. }) if k == key => return,
                Some(_) => continue,
                None => panic!("the watch ended"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the watch did not deliver {key}"));
}

/// Waits until the store has taken `endpoint` out of use (or back in).
async fn in_use(store: &Store, endpoint: &str, wanted: bool) {
    let started = Instant::now();
    while store.endpoint_health().get(endpoint).map(|s| s.in_use) != Some(wanted) {
        assert!(started.elapsed() < LIMIT, "{endpoint} in use: {wanted}? {:?}", store.endpoint_health());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_a_member_is_invisible_to_reads_writes_watches_and_leases() {
    let etcd = EtcdCluster::start(3);
    let prefix = unique_prefix();
    let store = Store::connect(&etcd.endpoints(), &prefix).await.unwrap();
    let lease = store.grant_lease(Duration::from_secs(2)).await.unwrap();
    // The TTL the docs advise where a change of etcd leader must not cost leases.
    let long_lease = store.grant_lease(Duration::from_secs(5)).await.unwrap();
    let cancel = CancellationToken::new();
    let mut watcher = store.watch::<u64>(&format!("{prefix}/w/"));
    // Listed (nothing yet) and watching before any fault.
    let listed = tokio::time::timeout(LIMIT, watcher.next(&cancel)).await.unwrap();
    assert!(matches!(listed, Some(WatchEvent::Listed { ref items, .. }) if items.is_empty()), "{listed:?}");
    store.put(&format!("{prefix}/w/before"), &0u64).await.unwrap();
    watched(&mut watcher, &format!("{prefix}/w/before"), &cancel).await;
    let stop = CancellationToken::new();
    let (seen, polling) = poll(store.clone(), prefix.clone(), stop.clone());

    // A follower killed: it leaves the balancer; nothing fails, the lease lives, the watch follows.
    let leader = etcd.leader().expect("a leader");
    let follower = (leader + 1) % 3;
    etcd.member(follower).kill();
    in_use(&store, &etcd.member(follower).endpoint(), false).await;
    store.put(&format!("{prefix}/w/after-kill"), &1u64).await.unwrap();
    watched(&mut watcher, &format!("{prefix}/w/after-kill"), &cancel).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!lease.is_lost(), "losing a follower cost the lease");
    etcd.member(follower).restart();
    in_use(&store, &etcd.member(follower).endpoint(), true).await;

    // The leader paused (it answers nothing and closes nothing): the same, once the others have
    // elected a new leader.
    let leader = etcd.leader().expect("a leader");
    etcd.member(leader).pause(true);
    in_use(&store, &etcd.member(leader).endpoint(), false).await;
    store.put(&format!("{prefix}/w/after-pause"), &2u64).await.unwrap();
    watched(&mut watcher, &format!("{prefix}/w/after-pause"), &cancel).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!long_lease.is_lost(), "a 5 s lease lost to a paused leader");
    etcd.member(leader).pause(false);
    in_use(&store, &etcd.member(leader).endpoint(), true).await;

    // The leader killed.
    let leader = etcd.leader().expect("a leader");
    etcd.member(leader).kill();
    in_use(&store, &etcd.member(leader).endpoint(), false).await;
    store.put(&format!("{prefix}/w/after-leader-kill"), &3u64).await.unwrap();
    watched(&mut watcher, &format!("{prefix}/w/after-leader-kill"), &cancel).await;

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!long_lease.is_lost(), "a 5 s lease lost to the leader's death");
    eprintln!("the 2 s lease through the leader's pause and loss: lost {}", lease.is_lost());

    stop.cancel();
    polling.await.unwrap();
    let errors = seen.errors.lock().unwrap().clone();
    let requests = seen.requests.load(Ordering::Relaxed);
    assert!(requests > 100, "{requests}");
    assert!(errors.is_empty(), "{} of {requests} polls failed: {errors:?}", errors.len());
    let health = store.endpoint_health();
    let failovers: u64 = health.values().map(|s| s.failovers).sum();
    // One per fault (a probe missed on a loaded machine may add one, never take one away).
    assert!(failovers >= 3, "{health:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_given_one_member_learns_the_others_and_survives_that_member() {
    let etcd = EtcdCluster::start(3);
    let prefix = unique_prefix();
    let store = Store::connect(&etcd.endpoints()[..1], &prefix).await.unwrap();
    let started = Instant::now();
    while store.endpoint_health().values().filter(|s| s.in_use).count() < 3 {
        assert!(started.elapsed() < LIMIT, "{:?}", store.endpoint_health());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stop = CancellationToken::new();
    let (seen, polling) = poll(store.clone(), prefix.clone(), stop.clone());
    etcd.member(0).kill();
    in_use(&store, &etcd.member(0).endpoint(), false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    polling.await.unwrap();
    let errors = seen.errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(store.get::<u64>(&format!("{prefix}/counter")).await.unwrap().map(|v| v.value > 0), Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_address_that_is_no_members_serves_only_while_no_member_answers() {
    let etcd = EtcdCluster::start(3);
    let prefix = unique_prefix();
    // A name for member 0 that is not its advertised URL, as a load-balanced Service is.
    let alias = etcd.member(0).endpoint().replace("127.0.0.1", "localhost");
    let store = Store::connect(std::slice::from_ref(&alias), &prefix).await.unwrap();
    let started = Instant::now();
    loop {
        let health = store.endpoint_health();
        let members_in_use = etcd.endpoints().iter().filter(|e| health.get(*e).is_some_and(|s| s.in_use)).count();
        let fallback = health.get(&alias).is_some_and(|s| s.fallback && !s.in_use);
        if members_in_use == 3 && fallback {
            break;
        }
        assert!(started.elapsed() < LIMIT, "{health:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.put(&format!("{prefix}/k"), &1u64).await.unwrap();
    assert_eq!(store.get::<u64>(&format!("{prefix}/k")).await.unwrap().map(|v| v.value), Some(1));
    assert_eq!(store.endpoint_health().get(&alias).map(|s| s.failovers), Some(0), "no fault, no failover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waits_through_an_election_longer_than_its_timeout() {
    let etcd = EtcdCluster::start(3);
    let prefix = unique_prefix();
    let store = Store::connect(&etcd.endpoints(), &prefix).await.unwrap();
    let (read_key, written_key) = (format!("{prefix}/read"), format!("{prefix}/written"));
    store.create(&read_key, &1u64).await.unwrap();
    let written = store.create(&written_key, &1u64).await.unwrap();
    // Two members paused: the third has no leader, and answers "no leader" to everything.
    let leader = etcd.leader().expect("a leader");
    let (kept, paused) = (leader, [(leader + 1) % 3, (leader + 2) % 3]);
    for i in paused {
        etcd.member(i).pause(true);
    }
    let started = Instant::now();
    let calls = async { tokio::join!(store.get::<u64>(&read_key), store.update(&written_key, &2u64, written)) };
    // One member comes back once the call timeout has run out: the calls, started in the
    // election, wait for its end rather than fail.
    let resume = async {
        tokio::time::sleep(store.call_timeout() + Duration::from_millis(500)).await;
        etcd.member(paused[0]).pause(false);
    };
    let ((read, updated), ()) = tokio::join!(calls, resume);
    let took = started.elapsed();
    eprintln!("a read and a compare-and-swap through a {took:?} election (member {kept} alone at first)");
    assert_eq!(read.expect("the read through the election").map(|v| v.value), Some(1));
    updated.expect("the compare-and-swap through the election");
    assert_eq!(store.get::<u64>(&written_key).await.unwrap().map(|v| v.value), Some(2));
    assert!(took > store.call_timeout(), "{took:?}: the calls answered before a quorum was back");
    etcd.member(paused[1]).pause(false);
}
