//! Watch streams: newline-delimited JSON events (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`,
//! `ERROR`) for one resource, optionally one namespace and selectors.
//!
//! A stream starts from the store's snapshot or history ([`crate::store::WatchStart`]) and goes
//! on with the store's broadcast. Events for objects entering or leaving a selector's selection
//! become `ADDED` / `DELETED`, as the real server sends them. Ready events are written in batches
//! (one HTTP chunk for everything already queued), which is what keeps hundreds of streams cheap.
//! A too-old start version and a watcher that fell behind both end in an `ERROR` event carrying a
//! `410 Expired` Status, after which clients relist. Streams end on `timeoutSeconds`, on server
//! shutdown, or when the client goes away.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::table::{self, IncludeObject};
use crate::error::Error;
use crate::resources::ResourceInfo;
use crate::selectors::Selectors;
use crate::store::{Event, EventType, ObjRef, Store, WatchStart};

/// How a stream renders objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    Object,
    /// A one-row Table per event (`kubectl get -w`).
    Table(IncludeObject),
}

#[derive(Debug, Clone)]
pub struct WatchRequest {
    pub res: Arc<ResourceInfo>,
    pub namespace: Option<String>,
    pub selectors: Selectors,
    pub resource_version: Option<u64>,
    pub send_initial_events: bool,
    pub bookmarks: bool,
    pub timeout: Option<Duration>,
    pub render: Render,
}

struct State {
    req: WatchRequest,
    key: String,
    pending: VecDeque<Bytes>,
    receiver: Option<broadcast::Receiver<Arc<Event>>>,
    /// Live events at or below this version are already covered by the start.
    after_rv: u64,
    last_rv: u64,
    bookmark_every: Duration,
    next_bookmark: Instant,
    deadline: Option<Instant>,
    cancel: CancellationToken,
    done: bool,
}

/// Most events written in one chunk.
const BATCH: usize = 256;

fn line(kind: &str, object: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(object.len() + 32);
    b.put_slice(b"{\"type\":\"");
    b.put_slice(kind.as_bytes());
    b.put_slice(b"\",\"object\":");
    b.put_slice(object);
    b.put_slice(b"}\n");
    b.freeze()
}

fn error_line(err: &Error) -> Bytes {
    line("ERROR", &serde_json::to_vec(&err.to_status()).unwrap_or_default())
}

impl State {
    fn render(&self, kind: EventType, obj: &ObjRef) -> Bytes {
        match self.req.render {
            Render::Object => line(kind.as_str(), obj.json()),
            Render::Table(include) => {
                let t = table::table(&self.req.res, std::slice::from_ref(obj), include, None);
                line(kind.as_str(), &serde_json::to_vec(&t).unwrap_or_default())
            }
        }
    }

    fn bookmark(&self, initial_end: bool) -> Bytes {
        let mut obj = json!({
            "kind": self.req.res.kind,
            "apiVersion": self.req.res.api_version(),
            "metadata": {"resourceVersion": self.last_rv.to_string()},
        });
        if initial_end {
            obj["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line("BOOKMARK", &serde_json::to_vec(&obj).unwrap_or_default())
    }

    fn in_scope(&self, obj: &ObjRef) -> bool {
        self.req.namespace.as_deref().is_none_or(|ns| obj.namespace() == ns)
    }

    /// The event as this watcher sees it, if at all.
    fn translate(&self, ev: &Event) -> Option<Bytes> {
        if *ev.resource != *self.key || !self.in_scope(&ev.object) {
            return None;
        }
        let sel = &self.req.selectors;
        if sel.labels.is_empty() && sel.fields.is_empty() {
            return Some(self.render(ev.kind, &ev.object));
        }
        let now = sel.matches(&ev.object.value);
        let before = ev.old.as_ref().is_some_and(|o| sel.matches(&o.value));
        let kind = match (ev.kind, before, now) {
            (EventType::Added, _, true) => EventType::Added,
            (EventType::Modified, true, true) => EventType::Modified,
            (EventType::Modified, false, true) => EventType::Added,
            (EventType::Modified, true, false) => EventType::Deleted,
            (EventType::Deleted, b, n) if b || n => EventType::Deleted,
            _ => return None,
        };
        Some(self.render(kind, &ev.object))
    }

    fn take_event(&mut self, ev: &Event, out: &mut BytesMut) {
        if ev.rv <= self.after_rv {
            return;
        }
        self.last_rv = self.last_rv.max(ev.rv);
        if let Some(b) = self.translate(ev) {
            out.put_slice(&b);
        }
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if !self.pending.is_empty() {
                let mut out = BytesMut::new();
                for b in self.pending.drain(..self.pending.len().min(BATCH)) {
                    out.put_slice(&b);
                }
                return Some(out.freeze());
            }
            if self.done {
                return None;
            }
            let receiver = self.receiver.as_mut()?;
            let deadline = self.deadline;
            let bookmarks = self.req.bookmarks && matches!(self.req.render, Render::Object);
            let next_bookmark = self.next_bookmark;
            let received = tokio::select! {
                _ = self.cancel.cancelled() => return None,
                _ = async { tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)).await }, if deadline.is_some() => return None,
                _ = tokio::time::sleep_until(next_bookmark), if bookmarks => None,
                r = receiver.recv() => Some(r),
            };
            let mut out = BytesMut::new();
            match received {
                None => {
                    self.next_bookmark = Instant::now() + self.bookmark_every;
                    return Some(self.bookmark(false));
                }
                Some(Ok(ev)) => {
                    self.take_event(&ev, &mut out);
                    // Drain what is already queued into the same chunk.
                    for _ in 0..BATCH {
                        let Some(rx) = self.receiver.as_mut() else {
                            break;
                        };
                        match rx.try_recv() {
                            Ok(ev) => self.take_event(&ev, &mut out),
                            Err(TryRecvError::Lagged(_)) => {
                                self.fell_behind(&mut out);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                }
                Some(Err(RecvError::Lagged(_))) => self.fell_behind(&mut out),
                Some(Err(RecvError::Closed)) => return None,
            }
            if !out.is_empty() {
                return Some(out.freeze());
            }
        }
    }

    fn fell_behind(&mut self, out: &mut BytesMut) {
        out.put_slice(&error_line(&Error::Gone { requested: self.last_rv, oldest: self.last_rv + 1 }));
        self.done = true;
        self.receiver = None;
    }
}

/// Builds the body stream of a watch response.
pub fn stream(
    store: &Store,
    req: WatchRequest,
    bookmark_every: Duration,
    cancel: CancellationToken,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let from = if req.send_initial_events { None } else { req.resource_version };
    let key = req.res.key();
    let deadline = req.timeout.map(|t| Instant::now() + t);
    let mut state = State {
        key,
        pending: VecDeque::new(),
        receiver: None,
        after_rv: 0,
        last_rv: 0,
        bookmark_every,
        next_bookmark: Instant::now() + bookmark_every,
        deadline,
        cancel,
        done: false,
        req,
    };
    match store.watch(&state.req.res, from) {
        Err(e) => {
            state.pending.push_back(error_line(&e));
            state.done = true;
        }
        Ok(init) => {
            state.after_rv = init.rv;
            state.last_rv = init.rv;
            match init.start {
                WatchStart::Snapshot(objs) => {
                    let lines: Vec<Bytes> = objs
                        .iter()
                        .filter(|o| state.in_scope(o) && state.req.selectors.matches(&o.value))
                        .map(|o| state.render(EventType::Added, o))
                        .collect();
                    state.pending.extend(lines);
                    if state.req.send_initial_events {
                        let b = state.bookmark(true);
                        state.pending.push_back(b);
                    }
                }
                WatchStart::Backlog(events) => {
                    state.after_rv = from.unwrap_or(0);
                    for ev in &events {
                        let mut out = BytesMut::new();
                        state.take_event(ev, &mut out);
                        if !out.is_empty() {
                            state.pending.push_back(out.freeze());
                        }
                    }
                    state.after_rv = init.rv;
                    state.last_rv = init.rv;
                }
            }
            state.receiver = Some(init.receiver);
        }
    }
    futures::stream::unfold(state, |mut state| async move { state.next_chunk().await.map(|b| (Ok(b), state)) })
}

/// The metadata-only form of an object (`as=PartialObjectMetadata`).
pub fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"].clone()})
}
