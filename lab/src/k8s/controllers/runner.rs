//! The reconcile loop every controller runs in: the lab's version of an
//! informer plus a rate-limited work queue
//! (`k8s.io/client-go/tools/cache`, `k8s.io/client-go/util/workqueue`).
//!
//! An event only names keys to look at; the reconcile reads the current
//! objects from the store. So a burst of events for one key is one
//! reconcile, and a lagging watch (the store's broadcast channel overflowed)
//! loses nothing: the loop re-lists every key, as an informer does after a
//! 410. A failed reconcile is retried with exponential back-off (5 ms
//! doubling to 10 s, as `DefaultControllerRateLimiter`'s per-item part);
//! a reconcile may also ask to be called again later (a Pod that becomes
//! available after `minReadySeconds`).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::ControllerError;
use crate::k8s::resources;
use crate::k8s::store::{Store, WatchEvent};

/// What a reconcile asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// In the desired state, or waiting for an event that will come.
    Done,
    /// Look again after this long even if nothing happens.
    RequeueAfter(Duration),
}

/// One controller: which keys an event touches, every key, and how to
/// reconcile one.
pub trait Reconciler: Send + 'static {
    type Key: Ord + Clone + Debug + Send;

    /// The name in logs.
    const NAME: &'static str;

    /// The keys an event may change the desired state of.
    fn keys_for_event(&self, store: &Store, event: &WatchEvent, keys: &mut Vec<Self::Key>);

    /// Every key (at start, after a lagging watch, and each resync).
    fn all_keys(&self, store: &Store) -> Vec<Self::Key>;

    /// Brings one key to its desired state, from the store's current
    /// objects.
    fn reconcile(&self, store: &Store, key: &Self::Key) -> Result<Outcome, ControllerError>;
}

const BACKOFF_BASE: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// The work queue: each key once, with the time it is due.
struct Queue<K> {
    due: BTreeMap<K, Instant>,
    failures: BTreeMap<K, u32>,
}

impl<K: Ord + Clone> Queue<K> {
    fn add(&mut self, key: K, at: Instant) {
        let slot = self.due.entry(key).or_insert(at);
        if at < *slot {
            *slot = at;
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.due.values().min().copied()
    }

    fn take_due(&mut self, now: Instant) -> Vec<K> {
        let keys: Vec<K> = self
            .due
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &keys {
            self.due.remove(k);
        }
        keys
    }

    fn backoff(&mut self, key: &K) -> Duration {
        let n = self.failures.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        BACKOFF_BASE
            .saturating_mul(1u32 << (*n - 1).min(20))
            .min(BACKOFF_MAX)
    }
}

/// Runs `controller` forever (the caller aborts the task to stop it).
pub async fn run<R: Reconciler>(controller: R, store: Store, resync: Duration) {
    let mut queue = Queue {
        due: BTreeMap::new(),
        failures: BTreeMap::new(),
    };
    // The store's receiver carries every kind's events; which resource the
    // watch is opened on only picks the backlog, and none is asked for.
    let mut events = match store.watch(
        resources::namespaces(),
        None,
        Some(store.resource_version()),
    ) {
        Ok((_, rx)) => rx,
        Err(e) => {
            tracing::error!(controller = R::NAME, error = %e, "failed to watch the store");
            return;
        }
    };
    let start = Instant::now();
    for k in controller.all_keys(&store) {
        queue.add(k, start);
    }
    let mut resync_at = start + resync;
    let mut keys = Vec::new();
    loop {
        let wake = queue.next_due().map_or(resync_at, |due| due.min(resync_at));
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => {
                    controller.keys_for_event(&store, &event, &mut keys);
                    // Take what else is waiting, so a burst is one pass.
                    while let Ok(event) = events.try_recv() {
                        controller.keys_for_event(&store, &event, &mut keys);
                    }
                    let now = Instant::now();
                    for k in keys.drain(..) {
                        queue.add(k, now);
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::info!(controller = R::NAME, missed, "watch lagged; re-listing");
                    let now = Instant::now();
                    for k in controller.all_keys(&store) {
                        queue.add(k, now);
                    }
                }
                Err(RecvError::Closed) => return,
            },
            _ = tokio::time::sleep_until(wake) => {}
        }
        let now = Instant::now();
        if now >= resync_at {
            for k in controller.all_keys(&store) {
                queue.add(k, now);
            }
            resync_at = now + resync;
        }
        for key in queue.take_due(now) {
            match controller.reconcile(&store, &key) {
                Ok(Outcome::Done) => {
                    queue.failures.remove(&key);
                }
                Ok(Outcome::RequeueAfter(after)) => {
                    queue.failures.remove(&key);
                    queue.add(key, now + after);
                }
                Err(ControllerError::Waiting(why)) => {
                    let after = queue.backoff(&key);
                    tracing::debug!(controller = R::NAME, ?key, why, "waiting");
                    queue.add(key, Instant::now() + after);
                }
                Err(e) => {
                    let after = queue.backoff(&key);
                    tracing::warn!(controller = R::NAME, ?key, error = %e, retry_in = ?after, "reconcile failed");
                    queue.add(key, Instant::now() + after);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_queued_once_at_its_earliest_time() {
        let mut q = Queue {
            due: BTreeMap::new(),
            failures: BTreeMap::new(),
        };
        let t0 = Instant::now();
        q.add("a", t0 + Duration::from_secs(5));
        q.add("a", t0);
        q.add("a", t0 + Duration::from_secs(9));
        q.add("b", t0 + Duration::from_secs(1));
        assert_eq!(q.next_due(), Some(t0));
        assert_eq!(q.take_due(t0), vec!["a"]);
        assert_eq!(q.take_due(t0), Vec::<&str>::new());
        assert_eq!(q.take_due(t0 + Duration::from_secs(1)), vec!["b"]);
    }

    #[test]
    fn back_off_doubles_up_to_a_cap() {
        let mut q: Queue<&str> = Queue {
            due: BTreeMap::new(),
            failures: BTreeMap::new(),
        };
        let steps: Vec<Duration> = (0..3).map(|_| q.backoff(&"a")).collect();
        assert_eq!(
            steps,
            [5, 10, 20].map(Duration::from_millis).to_vec(),
            "5 ms doubling"
        );
        for _ in 0..30 {
            q.backoff(&"a");
        }
        assert_eq!(q.backoff(&"a"), BACKOFF_MAX);
    }
}
