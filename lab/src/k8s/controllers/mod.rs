//! The lab control plane's controllers, run in-process against the
//! [`Store`]: what kube-controller-manager does for the kinds zkmigrate
//! touches.
//!
//! They sit between the API (which stores and admits objects) and the
//! kubelet (which runs Pods and writes their status): every controller
//! watches the store, reconciles one key at a time from the *current*
//! objects (level-based, as `k8s.io/client-go/util/workqueue` controllers
//! do: an event only says which key to look at), and writes back through
//! the store's ordinary write path, so admission and resourceVersions apply
//! to them as to any client.
//!
//! # Layout
//!
//! - [`runner`]: the one reconcile loop (watch, work queue, retry with
//!   back-off, resync on lag and periodically) every controller runs in.
//! - [`endpointslice`]: EndpointSlices for Services with a selector
//!   (`pkg/controller/endpointslice`).
//! - [`statefulset`]: ordinals, identity, claims, scale, rolling update and
//!   status (`pkg/controller/statefulset`).
//! - [`pvc`]: binds claims to a directory per volume (the PV controller and
//!   a hostPath provisioner in one).
//! - [`gc`]: deletes objects whose owners are gone (the garbage collector,
//!   background propagation).
//! - [`pdb`]: PodDisruptionBudget status (`pkg/controller/disruption`).
//! - [`util`]: label selectors, owner references, Pod predicates.
//!
//! # Starting them
//!
//! ```ignore
//! let store = Store::new(admission);
//! let cfg = ControllerConfig::new(layout.root.join("volumes"));
//! tokio::spawn(run_controllers(store.clone(), cfg, shutdown_signal));
//! ```

pub mod endpointslice;
pub mod gc;
pub mod pdb;
pub mod pvc;
pub mod runner;
pub mod statefulset;
pub mod util;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::task::JoinSet;

use super::error::ApiError;
use super::store::Store;

pub use pvc::{bound_claim_dir, pvc_dir};

/// What the controllers need to know of the lab.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Where each bound claim gets its directory (see [`pvc_dir`]); the
    /// kubelet mounts it.
    pub volumes_dir: PathBuf,
    /// Every key is reconciled again this often, as an informer's resync
    /// period does, so a missed event or a failed write heals by itself.
    pub resync: Duration,
}

impl ControllerConfig {
    /// The defaults, with claims' directories under `volumes_dir`.
    pub fn new(volumes_dir: impl Into<PathBuf>) -> ControllerConfig {
        ControllerConfig {
            volumes_dir: volumes_dir.into(),
            resync: Duration::from_secs(30),
        }
    }
}

/// Errors of one reconcile; the runner logs them and retries the key with
/// back-off.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("failed to {action} {kind} {namespace}/{name}: {source}")]
    Api {
        action: &'static str,
        kind: &'static str,
        namespace: String,
        name: String,
        source: ApiError,
    },
    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not an error of the controller: a precondition it waits on (a claim
    /// still being deleted, say); retried like an error.
    #[error("waiting: {0}")]
    Waiting(String),
}

impl ControllerError {
    pub(crate) fn api(
        action: &'static str,
        kind: &'static str,
        namespace: &str,
        name: &str,
    ) -> impl FnOnce(ApiError) -> ControllerError {
        let (namespace, name) = (namespace.to_string(), name.to_string());
        move |source| ControllerError::Api {
            action,
            kind,
            namespace,
            name,
            source,
        }
    }
}

/// Runs every controller until `shutdown` completes (or forever). Each
/// runs in its own task; a panic in one is logged and leaves the others
/// running.
pub async fn run_controllers(store: Store, cfg: ControllerConfig, shutdown: impl Future) {
    let mut tasks = JoinSet::new();
    let resync = cfg.resync;
    tasks.spawn(runner::run(
        endpointslice::EndpointSliceController,
        store.clone(),
        resync,
    ));
    tasks.spawn(runner::run(
        statefulset::StatefulSetController,
        store.clone(),
        resync,
    ));
    tasks.spawn(runner::run(
        pvc::PvcBinder::new(cfg.volumes_dir.clone()),
        store.clone(),
        resync,
    ));
    tasks.spawn(runner::run(gc::GarbageCollector, store.clone(), resync));
    tasks.spawn(runner::run(pdb::DisruptionController, store, resync));
    let supervise = async {
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "a controller task ended");
            }
        }
    };
    tokio::select! {
        _ = supervise => {}
        _ = shutdown => {}
    }
    // Dropping the set aborts the tasks: a reconcile holds no state
    // between store writes, so stopping between two of them is safe.
}
