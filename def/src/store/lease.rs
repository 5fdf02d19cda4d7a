//! Leases kept alive in the background, on the etcd I/O thread ([`super::io_thread`]).
//!
//! A [`Lease`] refreshes itself every third of its TTL (at least every second). If it cannot be
//! refreshed before the TTL runs out (etcd away, process paused), or etcd says it expired (a
//! refresh answered "gone", confirmed by asking again: a member can say so during a change of
//! leader), its `lost` token fires: whatever depended on the lease (a worker's registration, a
//! leader's term) must stop, since etcd has deleted or will delete the keys attached to it.
//! Refreshes move to another member when theirs does not answer in time or is taken out of use.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::budget::Budget;
use super::{Result, Store, StoreError};

#[derive(Debug)]
pub struct Lease {
    id: i64,
    ttl: Duration,
    lost: CancellationToken,
    stop: CancellationToken,
    clock: LeaseClock,
    store: Store,
}

/// Until when a lease is surely alive, as its keep-alive last learned it: a check that needs no
/// task to run, so a process resumed after a pause (SIGSTOP) sees at once that its lease may
/// be gone, before its `lost` token has had a chance to fire.
#[derive(Debug, Clone)]
pub struct LeaseClock(Arc<Mutex<Instant>>);

impl LeaseClock {
    fn new(until: Instant) -> Self {
        LeaseClock(Arc::new(Mutex::new(until)))
    }

    pub fn alive_until(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_alive(&self) -> bool {
        Instant::now() < self.alive_until()
    }

    fn set(&self, until: Instant) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = until;
    }
}

impl Lease {
    pub fn id(&self) -> i64 {
        self.id
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Fires when the lease is gone or can no longer be trusted to be alive.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// Until when the lease is surely alive.
    pub fn clock(&self) -> LeaseClock {
        self.clock.clone()
    }

    /// Stops refreshing and revokes the lease, deleting every key attached to it at once
    /// (rather than after the TTL).
    pub async fn revoke(self) -> Result<()> {
        self.stop.cancel();
        self.store.revoke_lease(self.id).await
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Without revoke the lease simply runs out; stop refreshing it.
        self.stop.cancel();
    }
}

impl Store {
    /// Revokes lease `id`, deleting every key attached to it; a lease etcd no longer has counts
    /// as revoked. Tried again on another member like any call safe to repeat: revoking twice
    /// finds nothing the second time.
    pub async fn revoke_lease(&self, id: i64) -> Result<()> {
        let client = self.client();
        let revoked = self
            .idempotent(|| {
                let mut client = client.clone();
                async move { client.lease_revoke(id).await }
            })
            .await;
        match revoked {
            Err(StoreError::Etcd(etcd_client::Error::GRpcStatus(status))) if status.code() == tonic::Code::NotFound => {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    /// Grants a lease of `ttl` that nobody keeps alive: the keys attached to it are deleted
    /// when it runs out (a record with an end of its own, such as a dashboard session).
    pub async fn grant_expiring(&self, ttl: Duration) -> Result<i64> {
        let mut client = self.client();
        let requested = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        Ok(self.bounded(client.lease_grant(requested, None)).await?.id())
    }

    /// Grants a lease of `ttl` (etcd rounds up to its minimum, about 2 s by default) and keeps
    /// it alive until it is revoked or dropped.
    pub async fn grant_lease(&self, ttl: Duration) -> Result<Lease> {
        let mut client = self.client();
        let requested = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let granted = self.bounded(client.lease_grant(requested, None)).await?;
        let ttl = Duration::from_secs(u64::try_from(granted.ttl()).unwrap_or(1).max(1));
        let lease = Lease {
            id: granted.id(),
            ttl,
            lost: CancellationToken::new(),
            stop: CancellationToken::new(),
            clock: LeaseClock::new(Instant::now() + ttl),
            store: self.clone(),
        };
        let tokens = (lease.lost.clone(), lease.stop.clone());
        // Refreshed on the etcd I/O thread: the daemon's own work cannot hold the refreshes back.
        super::io_thread::runtime().spawn(keep_alive(self.clone(), lease.id, ttl, tokens, lease.clock.clone()));
        Ok(lease)
    }
}

/// Refreshes the lease until `stop`; fires `lost` when it expired or could not be refreshed
/// within its TTL.
async fn keep_alive(
    store: Store,
    id: i64,
    ttl: Duration,
    (lost, stop): (CancellationToken, CancellationToken),
    clock: LeaseClock,
) {
    // Every third of the TTL as etcd's own clients do, but at least every second: what is left
    // of the lease when its leader dies is what the election and the move to another member
    // must fit in, and a renewal costs the leader no raft round.
    let period = (ttl / 3).min(MAX_REFRESH_PERIOD);
    // The lease is surely alive until this instant; refreshes move it forward.
    let mut alive_until = clock.alive_until();
    loop {
        let outcome = tokio::select! {
            _ = stop.cancelled() => return,
            outcome = refresh_stream(&store, id, period, (&mut alive_until, &clock), &stop) => outcome,
        };
        match outcome {
            Ok(()) => return, // stopped
            // etcd answered that the lease is gone while it should still live: a member can
            // say so in the middle of a change of leader, so ask the leader before believing it.
            Err(StoreError::LeaseLost { .. })
                if Instant::now() < alive_until && still_alive(&store, id, alive_until).await =>
            {
                tracing::debug!(lease = format!("{id:x}"), "a refresh said the lease was gone; etcd still has it");
                // Not at once: the member that said so may say it again.
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep_until((Instant::now() + Duration::from_millis(100)).min(alive_until)) => {}
                }
            }
            Err(StoreError::LeaseLost { .. }) => {
                tracing::warn!(lease = format!("{id:x}"), "lease lost");
                lost.cancel();
                return;
            }
            Err(error) if Instant::now() >= alive_until => {
                tracing::warn!(lease = format!("{id:x}"), %error, "lease lost: not refreshed within its TTL");
                lost.cancel();
                return;
            }
            Err(error) => {
                tracing::debug!(lease = format!("{id:x}"), %error, "lease keep-alive interrupted; retrying");
                store.suspect_endpoints();
                // Soon, but after the probes had a moment to take a silent member out.
                let retry_at = (Instant::now() + Duration::from_millis(100)).min(alive_until);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep_until(retry_at) => {}
                }
            }
        }
    }
}

/// Whether etcd still has lease `id`, asked until `alive_until` (past it, or without an
/// answer, it counts as gone: the lease can no longer be trusted to be alive). Asked again on
/// another member while the answer is "no leader" or none, and asked again while the answer is
/// "gone": the "gone" being checked typically comes in the middle of a change of leader, when
/// a member can say so of a live lease (seen right after a leader's death, from the members
/// electing the next one), and a single try would meet the same election. Until
/// `alive_until` nothing is lost by asking: etcd does not expire a lease before then (it was
/// refreshed at most a TTL before), so only a revocation can have ended it early.
async fn still_alive(store: &Store, id: i64, alive_until: Instant) -> bool {
    let client = store.client();
    loop {
        let answer = store
            .idempotent_within(&Budget::fixed(alive_until), || {
                let mut client = client.clone();
                async move { client.lease_time_to_live(id, None).await }
            })
            .await;
        if matches!(answer, Ok(ref answer) if answer.ttl() > 0) {
            return true;
        }
        let next = Instant::now() + STILL_ALIVE_AGAIN;
        if next >= alive_until {
            return false;
        }
        match answer {
            Ok(answer) => tracing::debug!(
                lease = format!("{id:x}"),
                ttl = answer.ttl(),
                "etcd says the lease is gone; asking again"
            ),
            Err(error) => {
                tracing::debug!(lease = format!("{id:x}"), %error, "etcd did not say whether the lease lives; asking again")
            }
        }
        tokio::time::sleep_until(next).await;
    }
}

/// How soon a lease said to be gone is asked about again.
const STILL_ALIVE_AGAIN: Duration = Duration::from_millis(200);

/// The longest gap between two refreshes, whatever the TTL.
const MAX_REFRESH_PERIOD: Duration = Duration::from_secs(1);

/// How long a refresh's answer is waited for before the stream is given up for a new one
/// (which may go to another member): at least this, or three quarters of the refresh period
/// if longer (a retry then still has most of the TTL left). A member can hold a refresh without being away
/// (a follower forwards it to a leader that just died and waits out etcd's request timeout,
/// longer than any TTL here), and a stream answers its refreshes in order, so one held refresh
/// would hold them all.
const REFRESH_ANSWER: Duration = Duration::from_millis(500);

/// One keep-alive stream: a refresh every `period` until an error, expiry or `stop`. Each step
/// waits for its answer at most [`REFRESH_ANSWER`] (or 3/4 of `period`, if longer), never
/// past `alive_until` (after which the lease counts as lost), and not at all once an endpoint
/// is taken out of use meanwhile (the stream may be on that member, which holds it silently
/// when paused).
async fn refresh_stream(
    store: &Store,
    id: i64,
    period: Duration,
    (alive_until, clock): (&mut Instant, &LeaseClock),
    stop: &CancellationToken,
) -> Result<()> {
    async fn before<T>(
        (store, id, answer_within): (&Store, i64, Duration),
        alive_until: Instant,
        call: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        let deadline = (Instant::now() + answer_within).min(alive_until);
        match store.once(deadline, call).await {
            Err(StoreError::Timeout(_)) if deadline >= alive_until => Err(StoreError::LeaseLost { id }),
            Err(StoreError::Timeout(_)) => Err(StoreError::Timeout(answer_within)),
            // etcd-client's word for a lease etcd no longer has, when a stream opens.
            Err(StoreError::Etcd(etcd_client::Error::LeaseKeepAliveError(message)))
                if message.contains("not found") =>
            {
                Err(StoreError::LeaseLost { id })
            }
            other => other,
        }
    }
    let call = (store, id, REFRESH_ANSWER.max(period * 3 / 4));
    // A member taken out of use while the stream waits for its next refresh may be the one
    // the stream is on: the next refresh goes out on a new stream.
    let mut removals = store.endpoint_removals();
    let mut client = store.client();
    let (mut keeper, mut responses) = before(call, *alive_until, client.lease_keep_alive(id)).await?;
    loop {
        let sent_at = Instant::now();
        before(call, *alive_until, keeper.keep_alive()).await?;
        let response = before(call, *alive_until, responses.message())
            .await?
            .ok_or_else(|| StoreError::Etcd(etcd_client::Error::LeaseKeepAliveError("stream closed".into())))?;
        if response.ttl() <= 0 {
            return Err(StoreError::LeaseLost { id });
        }
        // Measured from when the refresh was sent: the server's clock started no earlier.
        *alive_until = sent_at + Duration::from_secs(u64::try_from(response.ttl()).unwrap_or(1));
        clock.set(*alive_until);
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(period) => {}
            _ = super::endpoints::member_left(&mut removals) => return Err(StoreError::MemberLeft),
        }
    }
}
