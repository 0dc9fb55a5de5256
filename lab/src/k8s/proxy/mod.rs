//! The lab's kube-proxy: ClusterIP DNAT in every lab namespace, from the
//! store's Services and EndpointSlices, as kube-proxy's iptables mode does
//! on every node (`pkg/proxy/iptables/proxier.go`). In the lab every
//! network namespace is a "node": hosts, ops, client, control plane and
//! each Pod get the same rules, so traffic to a ClusterIP is DNATed in the
//! sender's own namespace (`OUTPUT`).
//!
//! Pipeline: store event -> debounce (100 ms, folding bursts as
//! kube-proxy's `minSyncPeriod` does) -> [`rules::service_ports`] (pure) ->
//! per namespace, unless it already holds exactly these ports,
//! [`apply::apply`] (`iptables-restore --noflush` of the proxy's own
//! chains). The namespace list is polled every 500 ms (or at once when
//! [`ProxyConfig::wake`] is notified), so a namespace created after a
//! change gets the rules too. A failed apply is retried at the next poll.
//!
//! Rules stay in place when the proxy stops (as kube-proxy's do): traffic
//! keeps flowing across a control-plane restart, and the next proxy
//! replaces them (it reads the chains left behind with `iptables-save`).

pub mod apply;
pub mod rules;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::LabError;
use crate::k8s::error::ApiError;
use crate::k8s::resources;
use crate::k8s::store::{Store, WatchEvent};
use crate::layout::Layout;
use crate::netns;

use apply::Applied;
use rules::ServicePort;

/// Errors of the proxy.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("failed to watch the store: {0}")]
    Watch(Box<ApiError>),
    #[error("failed to run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("failed: `{command}` exited with {status:?}: {stderr}")]
    Command {
        command: String,
        status: Option<i32>,
        stderr: String,
    },
}

/// Lists the namespaces to program (blocking; run off the async threads).
pub type NamespaceLister = Arc<dyn Fn() -> Result<Vec<String>, LabError> + Send + Sync>;

/// How the proxy runs.
#[derive(Clone)]
pub struct ProxyConfig {
    /// The namespaces that get the rules, now.
    pub namespaces: NamespaceLister,
    /// How long a burst of changes is folded before the rules are computed.
    pub debounce: Duration,
    /// How often the namespace list is polled for new namespaces.
    pub poll: Duration,
    /// Notify to make the proxy look for new namespaces now (the kubelet
    /// may, after creating a Pod's namespace, instead of waiting for the
    /// poll).
    pub wake: Arc<Notify>,
}

impl ProxyConfig {
    /// A config with the given namespace lister and the default timings
    /// (debounce 100 ms, poll 500 ms).
    pub fn new(
        namespaces: impl Fn() -> Result<Vec<String>, LabError> + Send + Sync + 'static,
    ) -> ProxyConfig {
        ProxyConfig {
            namespaces: Arc::new(namespaces),
            debounce: Duration::from_millis(100),
            poll: Duration::from_millis(500),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Every namespace of lab `layout` (machines and Pods) but the bridge's.
    pub fn for_layout(layout: &Layout) -> ProxyConfig {
        let layout = layout.clone();
        ProxyConfig::new(move || {
            let bridge = layout.bridge_ns();
            Ok(netns::list()?
                .into_iter()
                .filter(|ns| layout.owns_ns(ns) && *ns != bridge)
                .collect())
        })
    }
}

/// Whether an event can change the rules.
fn relevant(e: &WatchEvent) -> bool {
    e.resource == resources::services() || e.resource == resources::endpointslices()
}

/// The service ports the store describes now.
fn compute(store: &Store) -> Vec<ServicePort> {
    let (services, _) = store.list(resources::services(), None);
    let (slices, _) = store.list(resources::endpointslices(), None);
    rules::service_ports(&services, &slices)
}

/// Runs the proxy until `shutdown` completes (or the store is dropped).
pub async fn run_proxy(
    store: Store,
    cfg: ProxyConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ProxyError> {
    // Subscribe before the first list, so no change falls in between.
    let (_, mut events) = store
        .watch(resources::services(), None, Some(store.resource_version()))
        .map_err(|e| ProxyError::Watch(Box::new(e)))?;
    let mut ports = Arc::new(compute(&store));
    let mut applied: HashMap<String, Applied> = HashMap::new();
    let mut due: Option<Instant> = None;
    let mut poll = tokio::time::interval(cfg.poll);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    info!(service_ports = ports.len(), "proxy started");
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            event = events.recv() => match event {
                Ok(e) if relevant(&e) => {
                    due.get_or_insert_with(|| Instant::now() + cfg.debounce);
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    debug!(missed, "proxy lagged behind the store; recomputing");
                    due.get_or_insert_with(|| Instant::now() + cfg.debounce);
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            () = sleep_until(due) => {
                due = None;
                ports = Arc::new(compute(&store));
                sync(&cfg, &ports, &mut applied).await;
            }
            _ = poll.tick() => sync(&cfg, &ports, &mut applied).await,
            () = cfg.wake.notified() => sync(&cfg, &ports, &mut applied).await,
        }
    }
    info!("proxy stopped");
    Ok(())
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Brings every listed namespace to `ports`, skipping those that have them.
async fn sync(
    cfg: &ProxyConfig,
    ports: &Arc<Vec<ServicePort>>,
    applied: &mut HashMap<String, Applied>,
) {
    let lister = cfg.namespaces.clone();
    let namespaces = match tokio::task::spawn_blocking(move || lister()).await {
        Ok(Ok(list)) => list,
        Ok(Err(error)) => {
            warn!(%error, "failed to list the lab's namespaces");
            return;
        }
        Err(error) => {
            warn!(%error, "the namespace lister panicked");
            return;
        }
    };
    applied.retain(|ns, _| namespaces.contains(ns));
    let mut jobs = JoinSet::new();
    for ns in namespaces {
        let before = applied.get(&ns).cloned();
        if before.as_ref().is_some_and(|a| a.ports == **ports) {
            continue;
        }
        let ports = ports.clone();
        jobs.spawn_blocking(move || {
            let started = std::time::Instant::now();
            let result = apply::apply(&ns, &ports, before.as_ref());
            (ns, result, started.elapsed())
        });
    }
    while let Some(done) = jobs.join_next().await {
        match done {
            Ok((ns, Ok(now), took)) => {
                debug!(
                    ns,
                    service_ports = now.ports.len(),
                    took_ms = took.as_millis() as u64,
                    "rules applied"
                );
                applied.insert(ns, now);
            }
            Ok((ns, Err(error), _)) => {
                // Also when the namespace vanished meanwhile; the next poll
                // no longer lists it.
                warn!(ns, %error, "failed to apply the proxy rules; retrying at the next poll");
                applied.remove(&ns);
            }
            Err(error) => warn!(%error, "a proxy apply task failed"),
        }
    }
}
