//! Watch: a chunked stream of `{"type":..., "object":...}` JSON lines, as
//! `k8s.io/apiserver/pkg/endpoints/handlers/watch.go` writes them.
//!
//! The events come from [`Store::watch`](crate::k8s::store::Store::watch):
//! from `resourceVersion` (or every current object as ADDED without one);
//! a version older than the store's history is an ERROR event with a 410
//! `Expired` Status, after which the client lists again. With selectors,
//! the stream shows what the watcher's view of the filtered set needs, as
//! the watch cache does (`storage/cacher/cache_watcher.go`,
//! `convertToWatchEvent`): an object that starts matching is ADDED, one
//! that stops matching is DELETED. `allowWatchBookmarks=true` adds a
//! BOOKMARK every `bookmark_interval` carrying the store's current
//! resourceVersion (sent after every earlier event, so a client resuming
//! from it misses nothing); `sendInitialEvents=true` ends the initial
//! ADDED events with the `k8s.io/initial-events-end` bookmark;
//! `timeoutSeconds` ends the stream (default 30 min, the real server's
//! `minRequestTimeout`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Response;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::mpsc;

use super::Shared;
use super::handlers::list_scope;
use super::http::{self, Body};
use super::routes::Ctx;
use super::selectors::Selectors;
use crate::k8s::error::ApiError;
use crate::k8s::resources::Resource;
use crate::k8s::store::{EventType, WatchEvent, name_of, namespace_of};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// One watch line.
fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(resource: &Resource, rv: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": resource.kind, "apiVersion": resource.api_version(), "metadata": metadata}),
    )
}

/// `GET ...?watch=true` or `/watch/...`.
pub fn watch(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let resource = ctx.resource();
    let mut selectors = Selectors::from_query(resource, &ctx.query)?;
    if !ctx.name().is_empty() {
        // `/watch/namespaces/NS/PLURAL/NAME`: a watch of one object.
        let by_name = format!("metadata.name={}", ctx.name());
        selectors.fields = super::selectors::FieldSelector::parse(resource, &by_name)?;
    }
    let since = match ctx.query.get("resourceVersion") {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {v:?}")))?,
        ),
    };
    let initial_events = ctx.query.flag("sendInitialEvents");
    let since = if initial_events { None } else { since };
    let timeout = ctx
        .query
        .int("timeoutSeconds")?
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64))
        .unwrap_or(DEFAULT_TIMEOUT);
    let namespace = list_scope(ctx).map(str::to_string);
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let stream = Stream {
        shared: ctx.shared.clone(),
        resource,
        namespace,
        selectors,
        matching: HashSet::new(),
        last_rv: since.unwrap_or(0),
        bookmarks: ctx.query.flag("allowWatchBookmarks"),
        initial_events,
        tx,
    };
    tokio::spawn(stream.run(since, timeout));
    let mut r = Response::new(http::streamed(rx));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

struct Stream {
    shared: Arc<Shared>,
    resource: &'static Resource,
    namespace: Option<String>,
    selectors: Selectors,
    /// Objects (namespace, name) the client's filtered view holds.
    matching: HashSet<(String, String)>,
    last_rv: u64,
    bookmarks: bool,
    initial_events: bool,
    tx: mpsc::Sender<Bytes>,
}

/// Why a stream stopped sending.
struct Closed;

impl Stream {
    async fn send(&self, bytes: Bytes) -> Result<(), Closed> {
        self.tx.send(bytes).await.map_err(|_| Closed)
    }

    /// What the filtered view makes of an event (`None`: nothing to send).
    fn convert(&mut self, e: &WatchEvent) -> Option<&'static str> {
        if self.selectors.is_empty() {
            return Some(e.kind.as_str());
        }
        let key = (
            namespace_of(&e.object).to_string(),
            name_of(&e.object).to_string(),
        );
        let now = self.selectors.matches(&e.object);
        let before = self.matching.contains(&key);
        match (e.kind, before, now) {
            (EventType::Deleted, true, _) | (EventType::Deleted, false, true) => {
                self.matching.remove(&key);
                Some("DELETED")
            }
            (EventType::Deleted, false, false) => None,
            (_, true, true) => Some("MODIFIED"),
            (_, false, true) => {
                self.matching.insert(key);
                Some("ADDED")
            }
            (_, true, false) => {
                self.matching.remove(&key);
                Some("DELETED")
            }
            (_, false, false) => None,
        }
    }

    async fn deliver(&mut self, e: &WatchEvent) -> Result<(), Closed> {
        if !e.matches(self.resource, self.namespace.as_deref())
            || e.rv <= self.last_rv && e.kind != EventType::Added
        {
            return Ok(());
        }
        self.last_rv = self.last_rv.max(e.rv);
        if let Some(kind) = self.convert(e) {
            self.send(line(kind, &e.object)).await?;
        }
        Ok(())
    }

    /// The client's view at `since`: with selectors, which objects
    /// matched then. Objects the backlog does not touch are as they are
    /// now; one the backlog creates did not exist; for one it changes, the
    /// state at `since` is its last event up to `since` in the store's
    /// history (the watch cache keeps the previous object for this; the
    /// store keeps the history) — when that is trimmed, its current state
    /// stands in.
    fn seed(&mut self, since: u64, backlog: &[WatchEvent]) {
        if self.selectors.is_empty() {
            return;
        }
        let key_of = |o: &Value| (namespace_of(o).to_string(), name_of(o).to_string());
        let mut first: HashMap<(String, String), EventType> = HashMap::new();
        for e in backlog
            .iter()
            .filter(|e| e.matches(self.resource, self.namespace.as_deref()))
        {
            first.entry(key_of(&e.object)).or_insert(e.kind);
        }
        let store = &self.shared.store;
        let (items, _) = store.list(self.resource, self.namespace.as_deref());
        for o in &items {
            if !first.contains_key(&key_of(o)) && self.selectors.matches(o) {
                self.matching.insert(key_of(o));
            }
        }
        let changed: HashSet<(String, String)> = first
            .iter()
            .filter(|(_, kind)| **kind != EventType::Added)
            .map(|(k, _)| k.clone())
            .collect();
        if changed.is_empty() {
            return;
        }
        // The object at `since` (`None`: deleted by then).
        let mut then: HashMap<(String, String), Option<&Value>> = HashMap::new();
        let history = store.watch(self.resource, self.namespace.as_deref(), Some(1));
        match &history {
            Ok((events, _)) => {
                for e in events.iter().filter(|e| e.rv <= since) {
                    let k = key_of(&e.object);
                    if changed.contains(&k) {
                        then.insert(k, (e.kind != EventType::Deleted).then_some(&e.object));
                    }
                }
            }
            Err(_) => {
                for o in &items {
                    if changed.contains(&key_of(o)) {
                        then.insert(key_of(o), Some(o));
                    }
                }
            }
        }
        for (k, o) in then {
            if o.is_some_and(|o| self.selectors.matches(o)) {
                self.matching.insert(k);
            }
        }
    }

    /// A BOOKMARK at the store's current version, after every event up to
    /// it (they are all in the channel once the store says that version:
    /// events are sent under its lock).
    async fn bookmark_now(
        &mut self,
        rx: &mut tokio::sync::broadcast::Receiver<WatchEvent>,
        initial_end: bool,
    ) -> Result<(), Closed> {
        let rv = self.shared.store.resource_version();
        loop {
            match rx.try_recv() {
                Ok(e) => self.deliver(&e).await?,
                Err(TryRecvError::Lagged(_)) => self.resume(rx).await?,
                Err(_) => break,
            }
        }
        self.last_rv = self.last_rv.max(rv);
        self.send(bookmark(self.resource, self.last_rv, initial_end))
            .await
    }

    /// After falling behind the live channel: the missed events from the
    /// store's history and a fresh receiver (or a 410 ERROR and the end).
    async fn resume(
        &mut self,
        rx: &mut tokio::sync::broadcast::Receiver<WatchEvent>,
    ) -> Result<(), Closed> {
        let store = self.shared.store.clone();
        match store.watch(
            self.resource,
            self.namespace.as_deref(),
            Some(self.last_rv.max(1)),
        ) {
            Ok((backlog, fresh)) => {
                *rx = fresh;
                for e in &backlog {
                    self.deliver(e).await?;
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.send(line("ERROR", &e.to_status())).await;
                Err(Closed)
            }
        }
    }

    async fn run(mut self, since: Option<u64>, timeout: Duration) {
        let store = self.shared.store.clone();
        let (backlog, mut rx) = match store.watch(self.resource, self.namespace.as_deref(), since) {
            Ok(w) => w,
            Err(e) => {
                let _ = self.send(line("ERROR", &e.to_status())).await;
                return;
            }
        };
        if since.is_some_and(|rv| rv > 0) {
            self.seed(since.unwrap_or(0), &backlog);
        } else {
            self.last_rv = 0;
        }
        for e in &backlog {
            if self.deliver(e).await.is_err() {
                return;
            }
        }
        if self.initial_events && self.bookmark_now(&mut rx, true).await.is_err() {
            return;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let interval = self.shared.config.bookmark_interval;
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        let mut stopping = self.shared.stopping.clone();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = self.tx.closed() => return,
                _ = stopping.changed() => return,
                _ = ticker.tick(), if self.bookmarks => {
                    if self.bookmark_now(&mut rx, false).await.is_err() {
                        return;
                    }
                }
                received = rx.recv() => match received {
                    Ok(e) => {
                        if self.deliver(&e).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        if self.resume(&mut rx).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }
}
