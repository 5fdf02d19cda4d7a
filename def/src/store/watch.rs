//! A resumable watch over a key prefix, written as an explicit state machine (after kube-rs's
//! `watcher`): `Empty` → list → `Listed { revision }` → watch from the next revision →
//! `Watching`. A broken stream resumes from the last revision seen, and so does one that stays
//! silent past [`SILENCE`] and a progress request (a paused member), and every stream when an
//! endpoint is taken out of use (it may be on that member); a revision etcd has
//! compacted away sends the watcher back to `Empty`, and the next event is a full relist that
//! replaces whatever the consumer had cached.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::time::Duration;

use etcd_client::{EventType, WatchOptions, WatchStream};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::{Result, Store, StoreError, Versioned, decode};
use crate::retry::Backoff;

/// What a watcher reports.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent<T> {
    /// The full set of items under the prefix at `revision`: replace any cache with it.
    Listed { items: Vec<(String, Versioned<T>)>, revision: i64 },
    /// `key` was created or changed.
    Put { key: String, item: Versioned<T> },
    /// `key` was deleted at `revision`.
    Deleted { key: String, revision: i64 },
}

enum State {
    /// Nothing known: list next.
    Empty,
    /// Everything up to `revision` is known: open a watch from `revision + 1`.
    Listed { revision: i64 },
    /// Following a live stream; `revision` is the last one delivered. `removals` changes when
    /// an endpoint is taken out of use (the stream may be on it).
    Watching { stream: WatchStream, revision: i64, removals: tokio::sync::watch::Receiver<u64> },
}

/// How long a watch stream may stay silent before the watcher asks etcd for a progress
/// notification; no answer within as long again means the member is gone or paused (a paused
/// member raises no error), and the watch resumes on another.
pub const SILENCE: Duration = Duration::from_secs(2);

/// The stream's next message. A quiet prefix is normal, so silence first asks for progress.
async fn next_message(stream: &mut WatchStream) -> Result<Option<etcd_client::WatchResponse>> {
    if let Ok(message) = tokio::time::timeout(SILENCE, stream.message()).await {
        return message.map_err(StoreError::from);
    }
    stream.request_progress().await?;
    match tokio::time::timeout(SILENCE, stream.message()).await {
        Ok(message) => message.map_err(StoreError::from),
        Err(_) => Err(StoreError::Timeout(SILENCE * 2)),
    }
}

/// Follows every change under a prefix. Call [`Watcher::next`] in a loop.
pub struct Watcher<T> {
    store: Store,
    prefix: String,
    state: State,
    pending: VecDeque<WatchEvent<T>>,
    failures: u32,
    _items: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Watcher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").field("prefix", &self.prefix).field("revision", &self.revision()).finish()
    }
}

impl<T> Watcher<T> {
    /// The last revision delivered (0 before the first listing); pass it to
    /// [`Store::watch_from`] to resume after a restart.
    pub fn revision(&self) -> i64 {
        match &self.state {
            State::Empty => 0,
            State::Listed { revision } | State::Watching { revision, .. } => *revision,
        }
    }
}

impl<T: DeserializeOwned> Watcher<T> {
    pub(super) fn new(store: Store, prefix: &str) -> Self {
        Self::with_state(store, prefix, State::Empty)
    }

    pub(super) fn resume(store: Store, prefix: &str, revision: i64) -> Self {
        Self::with_state(store, prefix, State::Listed { revision })
    }

    fn with_state(store: Store, prefix: &str, state: State) -> Self {
        Watcher { store, prefix: prefix.to_string(), state, pending: VecDeque::new(), failures: 0, _items: PhantomData }
    }

    /// The next event, or `None` once `cancel` fires. etcd being away is not an error here:
    /// the watcher retries with backoff until it is back.
    pub async fn next(&mut self, cancel: &CancellationToken) -> Option<WatchEvent<T>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if cancel.is_cancelled() {
                return None;
            }
            let step = tokio::select! {
                _ = cancel.cancelled() => return None,
                step = self.step() => step,
            };
            match step {
                Ok(()) => self.failures = 0,
                Err(error) => {
                    self.failures = self.failures.saturating_add(1);
                    // Not `retry`: the state machine hands out events between tries, so it keeps
                    // its own count and takes only the delays from the one backoff.
                    let delay = Backoff::default().delay(self.failures);
                    tracing::debug!(prefix = %self.prefix, %error, ?delay, "watch interrupted; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return None,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Advances the state machine by one transition, queueing what it learned.
    async fn step(&mut self) -> Result<()> {
        match &mut self.state {
            State::Empty => {
                let listing = self.store.list::<T>(&self.prefix).await?;
                self.state = State::Listed { revision: listing.revision };
                self.pending.push_back(WatchEvent::Listed { items: listing.items, revision: listing.revision });
            }
            State::Listed { revision } => {
                let revision = *revision;
                let options =
                    WatchOptions::new().with_prefix().with_start_revision(revision + 1).with_progress_notify();
                let removals = self.store.endpoint_removals();
                let mut client = self.store.client();
                let deadline = tokio::time::Instant::now() + self.store.call_timeout;
                let stream = self.store.once(deadline, client.watch(self.prefix.as_str(), Some(options))).await?;
                self.state = State::Watching { stream, revision, removals };
            }
            State::Watching { stream, revision, removals } => {
                let last = *revision;
                let message = tokio::select! {
                    message = next_message(stream) => message,
                    _ = super::endpoints::member_left(removals) => {
                        // Resuming costs one watch request; waiting out a paused member's
                        // silence would cost seconds.
                        tracing::debug!(prefix = %self.prefix, revision = last, "an etcd member left; resuming the watch");
                        self.state = State::Listed { revision: last };
                        return Ok(());
                    }
                };
                let response = match message {
                    Ok(Some(response)) => response,
                    Ok(None) => {
                        self.state = State::Listed { revision: last };
                        return Err(StoreError::Etcd(etcd_client::Error::WatchError("watch stream ended".into())));
                    }
                    Err(error) => {
                        self.state = State::Listed { revision: last };
                        self.store.suspect_endpoints();
                        return Err(error);
                    }
                };
                if response.compact_revision() > 0 {
                    tracing::info!(prefix = %self.prefix, revision = last, compacted = response.compact_revision(),
                        "watch revision was compacted; listing again");
                    self.state = State::Empty;
                    return Ok(());
                }
                if response.canceled() {
                    self.state = State::Listed { revision: last };
                    return Err(StoreError::Etcd(etcd_client::Error::WatchError(format!(
                        "watch cancelled by etcd: {}",
                        response.cancel_reason()
                    ))));
                }
                let mut newest = last;
                for event in response.events() {
                    let Some(kv) = event.kv() else { continue };
                    let key = String::from_utf8_lossy(kv.key()).into_owned();
                    newest = newest.max(kv.mod_revision());
                    match event.event_type() {
                        EventType::Put => match decode::<T>(&key, kv) {
                            Ok(item) => self.pending.push_back(WatchEvent::Put { key, item }),
                            // A value this version cannot read is skipped, not fatal: the
                            // rest of the prefix still matters.
                            Err(error) => {
                                tracing::warn!(%key, %error, "skipping undecodable value")
                            }
                        },
                        EventType::Delete => {
                            self.pending.push_back(WatchEvent::Deleted { key, revision: kv.mod_revision() })
                        }
                    }
                }
                // Progress notifications carry no events but move the revision forward, so a
                // resume after a quiet hour does not replay from an old (maybe compacted) point.
                // (Not the creation response: its header is the revision at creation, and
                // older events from the start revision may still be on their way.)
                if let Some(header) = response.header()
                    && response.events().is_empty()
                    && !response.created()
                {
                    newest = newest.max(header.revision());
                }
                if let State::Watching { revision, .. } = &mut self.state {
                    *revision = newest;
                }
            }
        }
        Ok(())
    }
}
