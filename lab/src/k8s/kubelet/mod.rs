//! The lab's kubelet (and scheduler): it runs every Pod of the store for
//! real, on the single node `lab`.
//!
//! Pipeline: watch Pods -> bind unbound ones to the node (the scheduler's
//! part: claims must exist) -> one worker per Pod (`worker`), which builds
//! the Pod's network (`network`), sets up its volumes (`volumes`), resolves
//! the image (`image`), computes each container's argv and environment
//! (`container`), runs it in a bubblewrap sandbox (`sandbox`) with its
//! output in a log file (`logs`), probes it (`probes`), restarts it with
//! back-off, reports status (`status`), and on deletion stops it gracefully,
//! tears the network down and removes the object.
//!
//! Why it is shaped so: reconciliation is level-based, as the real kubelet's
//! pod workers are: every change of a Pod and a periodic tick drive one
//! `sync` that compares what runs with what the Pod asks for. A kubelet
//! that starts kills what an earlier one left (every Pod namespace of the
//! lab, found by name), so restarting the control plane restarts its Pods
//! and no JVM survives its kubelet unnoticed; shutting down kills them too.

// The store's closures return `ApiError` (a whole Status): large, by design.
#![allow(clippy::result_large_err)]

mod backoff;
pub mod container;
pub mod image;
pub mod logs;
pub mod network;
pub mod probes;
mod runtime;
pub mod sandbox;
pub mod status;
pub mod volumes;
mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use super::resources;
use super::store::{EventType, Store, name_of, namespace_of, now_rfc3339};
use crate::LabError;
use crate::layout::{Layout, Machine};

pub use logs::{LogError, LogLocator, log_path};

/// How the kubelet runs.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    pub layout: Layout,
    /// The node's name: Pods without `spec.nodeName` are bound to it.
    pub node_name: String,
    /// The bridge in `layout.bridge_ns()`.
    pub bridge: String,
    /// Per-Pod files: logs, emptyDirs, ConfigMap projections.
    pub pods_dir: PathBuf,
    /// Claims' directories (`<volumes_dir>/<namespace>/<claim>`).
    pub volumes_dir: PathBuf,
    /// Where the image's scripts are written.
    pub image_dir: PathBuf,
    /// `status.hostIP`: the node's address.
    pub host_ip: Ipv4Addr,
    /// The Pods' DNS server.
    pub nameserver: Ipv4Addr,
    pub cluster_domain: String,
    /// First delay of CrashLoopBackOff and ImagePullBackOff; doubles up to
    /// `backoff_max`. The real kubelet's are 10 s and 5 min; tests scale
    /// them down.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How often ConfigMap volumes are re-projected.
    pub configmap_refresh: Duration,
    /// How often every Pod is reconciled without a change.
    pub resync: Duration,
}

impl KubeletConfig {
    /// The kubelet of lab `layout`, with the real kubelet's back-off.
    pub fn for_lab(layout: &Layout) -> KubeletConfig {
        let kubelet = layout.root.join("kubelet");
        KubeletConfig {
            layout: layout.clone(),
            node_name: "lab".into(),
            bridge: "br0".into(),
            pods_dir: kubelet.join("pods"),
            volumes_dir: layout.root.join("volumes"),
            image_dir: kubelet.join("image"),
            host_ip: Machine::ControlPlane.addr(),
            nameserver: Machine::ControlPlane.addr(),
            cluster_domain: "cluster.local".into(),
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            configmap_refresh: Duration::from_secs(2),
            resync: Duration::from_secs(2),
        }
    }

    /// The locator the API server's `pods/log` uses.
    pub fn log_locator(&self) -> LogLocator {
        LogLocator::new(self.pods_dir.clone())
    }
}

/// Errors that stop the kubelet.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("failed to find {0}: the kubelet needs bubblewrap, iproute2 and nsenter")]
    MissingTool(&'static str),
    #[error("failed to prepare the kubelet: {0}")]
    Setup(#[from] LabError),
    #[error("failed to watch Pods: {0}")]
    Watch(String),
    #[error(
        "failed to start the kubelet: it runs in a mount namespace of its own (started by `ip netns exec`?), where the Pod namespaces it creates would be invisible to `zklab down`; enter only the network namespace (`nsenter --net=/run/netns/NS`)"
    )]
    PrivateMounts,
}

/// What every worker shares.
pub(crate) struct Ctx {
    pub store: Store,
    pub cfg: KubeletConfig,
    pub alloc: Mutex<network::Allocator>,
    pub root: Vec<sandbox::RootEntry>,
}

struct Worker {
    tx: watch::Sender<Option<Value>>,
    task: JoinHandle<()>,
}

impl Drop for Worker {
    /// A kubelet that is dropped (aborted) takes its workers with it; its
    /// Pods' processes are the next kubelet's leftovers to kill.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs the kubelet until `shutdown` completes; then kills every Pod's
/// processes and removes their namespaces (the objects stay in the store).
pub async fn run_kubelet(
    store: Store,
    cfg: KubeletConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), KubeletError> {
    for tool in ["/usr/bin/bwrap", "/usr/sbin/ip", "/usr/bin/nsenter"] {
        if !std::path::Path::new(tool).exists() {
            return Err(KubeletError::MissingTool(tool));
        }
    }
    if in_slave_mounts() {
        return Err(KubeletError::PrivateMounts);
    }
    clean_leftovers(&cfg).await?;
    image::install(&cfg.image_dir)?;
    let ctx = Arc::new(Ctx {
        store,
        root: sandbox::host_root()?,
        alloc: Mutex::new(network::Allocator::default()),
        cfg,
    });
    tracing::info!(lab = %ctx.cfg.layout.name, node = %ctx.cfg.node_name, "kubelet started");
    let mut workers: HashMap<String, Worker> = HashMap::new();
    tokio::pin!(shutdown);
    'watch: loop {
        let (backlog, mut rx) = ctx
            .store
            .watch(resources::pods(), None, None)
            .map_err(|e| KubeletError::Watch(e.to_string()))?;
        for e in backlog {
            observe(&ctx, &mut workers, e.kind, e.object);
        }
        let mut tick = tokio::time::interval(ctx.cfg.resync);
        loop {
            tokio::select! {
                _ = &mut shutdown => break 'watch,
                ev = rx.recv() => match ev {
                    Ok(e) if e.matches(resources::pods(), None) => observe(&ctx, &mut workers, e.kind, e.object),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => continue 'watch,
                    Err(broadcast::error::RecvError::Closed) => break 'watch,
                },
                _ = tick.tick() => resync(&ctx, &mut workers),
            }
        }
    }
    tracing::info!(lab = %ctx.cfg.layout.name, pods = workers.len(), "kubelet stopping: killing its Pods");
    workers.clear();
    clean_leftovers(&ctx.cfg).await?;
    Ok(())
}

/// Whether this process runs in a slave mount namespace (what `ip netns
/// exec` makes), where `ip netns add` would mount new namespaces for this
/// process only.
fn in_slave_mounts() -> bool {
    slave_mounts(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

/// Whether `/` or `/run/netns` has a `master:` tag in `mountinfo`.
fn slave_mounts(mountinfo: &str) -> bool {
    mountinfo.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let mut optional = fields.iter().skip(6).take_while(|f| **f != "-");
        matches!(fields.get(4), Some(&"/") | Some(&"/run/netns"))
            && optional.any(|f| f.starts_with("master:"))
    })
}

/// Kills and removes every Pod namespace of the lab and the Pod files.
async fn clean_leftovers(cfg: &KubeletConfig) -> Result<(), KubeletError> {
    let layout = cfg.layout.clone();
    let pods_dir = cfg.pods_dir.clone();
    tokio::task::spawn_blocking(move || -> Result<(), LabError> {
        for ns in network::leftover_pod_namespaces(&layout)? {
            tracing::info!(ns = %ns, "removing a Pod namespace left by an earlier kubelet");
            network::teardown(&ns)?;
        }
        if pods_dir.exists() {
            std::fs::remove_dir_all(&pods_dir).map_err(|source| LabError::Io {
                what: format!("remove {}", pods_dir.display()),
                source,
            })?;
        }
        Ok(())
    })
    .await
    .map_err(|e| KubeletError::Setup(LabError::Stuck(e.to_string())))??;
    Ok(())
}

fn uid_of(pod: &Value) -> String {
    pod["metadata"]["uid"].as_str().unwrap_or("").to_string()
}

/// One watch event: bind, start a worker, or pass the new object on.
fn observe(ctx: &Arc<Ctx>, workers: &mut HashMap<String, Worker>, kind: EventType, pod: Value) {
    let uid = uid_of(&pod);
    if kind == EventType::Deleted {
        if let Some(w) = workers.get(&uid) {
            let _ = w.tx.send(None);
        }
        return;
    }
    let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
    if node.is_empty() {
        if pod["metadata"]["deletionTimestamp"].is_null() {
            bind(ctx, &pod);
        }
        return;
    }
    if node != ctx.cfg.node_name {
        return;
    }
    match workers.get(&uid) {
        Some(w) => {
            let _ = w.tx.send(Some(pod));
        }
        None => {
            let (tx, rx) = watch::channel(Some(pod));
            let task = tokio::spawn(worker::run(ctx.clone(), rx));
            workers.insert(uid, Worker { tx, task });
        }
    }
}

/// Level-based pass over every Pod: binds what is unbound, starts missing
/// workers, tells workers of Pods gone from the store, forgets finished
/// workers.
fn resync(ctx: &Arc<Ctx>, workers: &mut HashMap<String, Worker>) {
    workers.retain(|_, w| !w.task.is_finished());
    let (pods, _) = ctx.store.list(resources::pods(), None);
    let live: std::collections::HashSet<String> = pods.iter().map(uid_of).collect();
    for (uid, w) in workers.iter() {
        if !live.contains(uid) {
            let _ = w.tx.send(None);
        }
    }
    for pod in pods {
        let uid = uid_of(&pod);
        let known = workers.contains_key(&uid);
        if !known || pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty() {
            observe(ctx, workers, EventType::Modified, pod);
        }
    }
}

/// The scheduler's part: binds `pod` to the node if every claim it uses
/// exists and is Bound (the VolumeBinding plugin's rule for claims of
/// immediate binding); otherwise marks it unschedulable. `spec.nodeName` is set as `pods/binding` sets it.
fn bind(ctx: &Ctx, pod: &Value) {
    let (ns, name) = (namespace_of(pod), name_of(pod));
    let mut missing: Vec<String> = Vec::new();
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() else {
            continue;
        };
        match ctx.store.get(resources::pvcs(), ns, claim) {
            Err(_) => missing.push(format!("persistentvolumeclaim \"{claim}\" not found")),
            Ok(c) if c["status"]["phase"] != "Bound" => {
                missing.push("pod has unbound immediate PersistentVolumeClaims".into())
            }
            Ok(_) => {}
        }
    }
    missing.dedup();
    let now = now_rfc3339();
    let uid = uid_of(pod);
    let condition = if missing.is_empty() {
        let node = ctx.cfg.node_name.clone();
        let bound = ctx
            .store
            .write(resources::pods(), ns, name, None, |old| match old {
                Some(o) if uid_of(o) == uid => {
                    let mut o = o.clone();
                    o["spec"]["nodeName"] = json!(node);
                    Ok(o)
                }
                _ => Err(super::error::ApiError::conflict(
                    "pods",
                    "",
                    name,
                    "the Pod changed",
                )),
            });
        if let Err(e) = bound {
            tracing::warn!(pod = name, namespace = ns, error = %e, "failed to bind a Pod");
            return;
        }
        tracing::info!(pod = name, namespace = ns, node = %ctx.cfg.node_name, "bound");
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now})
    } else {
        json!({"type": "PodScheduled", "status": "False", "lastProbeTime": null,
            "lastTransitionTime": now, "reason": "Unschedulable",
            "message": format!("0/1 nodes are available: {}.", missing.join(", "))})
    };
    let _ = ctx.store.write(
        resources::pods(),
        ns,
        name,
        Some("status"),
        |old| match old {
            Some(o) if uid_of(o) == uid => {
                let mut o = o.clone();
                let same = o["status"]["conditions"]
                    .as_array()
                    .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled"))
                    .is_some_and(|c| {
                        c["status"] == condition["status"] && c["message"] == condition["message"]
                    });
                if !same {
                    o["status"]["phase"] = json!("Pending");
                    o["status"]["conditions"] = json!([condition]);
                }
                Ok(o)
            }
            _ => Err(super::error::ApiError::conflict(
                "pods",
                "",
                name,
                "the Pod changed",
            )),
        },
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_slave_mount_namespace_is_recognised() {
        let root = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                    42 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw\n";
        let netns_exec = "93 92 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                    147 93 254:0 /run/netns /run/netns rw,relatime master:1 - ext4 /dev/vda rw\n";
        assert!(!super::slave_mounts(root));
        assert!(super::slave_mounts(netns_exec));
    }
}
