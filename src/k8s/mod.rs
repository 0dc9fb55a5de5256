//! The Kubernetes boundary: everything zkmigrate asks of the API server
//! goes through a [`Cluster`].
//!
//! It sits at the edge of the pipeline (STYLE convention 1): the plan
//! builder and the step modules compute *which* objects should exist; this
//! module only makes them exist, observes them and waits for them, and is
//! tested against the lab's real API server (`tests/k8s_lab.rs`), never a
//! stub.
//!
//! - [`connect`]: one `kube::Client` from the kubeconfig (the plan's
//!   context, else the current one), or the in-cluster config when there is
//!   no kubeconfig at all.
//! - `objects`: server-side apply with field manager `zkmigrate`, never
//!   forced unless the caller says so ([`Cluster::apply_forced`]); get and
//!   delete where 404 is an answer, not an error (kubectl drain's rule).
//! - `wait`: waits by watch (kube-runtime's `watcher`), never by polling,
//!   each bounded by a timeout whose error says what was last seen.
//! - `permissions`: the one table of every permission zkmigrate uses
//!   ([`GRANTS`]): what preflight asks about and what `zkmigrate rbac`
//!   prints as a Role.
//! - `access`: the preflight's questions: may we (SelfSubjectAccessReview
//!   for every row of that table, [`REQUIRED_PERMISSIONS`]), and does
//!   someone else already own a name we will create ([`Cluster::foreign_objects`]).
//! - `events`: best-effort Events on the per-server Services, so that
//!   `kubectl describe svc zk-1` shows the migration's history.
//!
//! Retries: kube's own retry layer is switched off and one policy
//! (backon, bounded, each retry logged) retries what may succeed when sent
//! again: 429, 5xx and connection failures; never another 4xx. Apply is
//! idempotent and delete treats 404 as done, so a retried request whose
//! first attempt did land is harmless.

mod access;
mod error;
mod events;
mod objects;
mod permissions;
mod wait;

use std::fmt::Debug;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use kube::config::KubeConfigOptions;
use kube::{Client, Config, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::plan::Kubernetes;

pub use access::{ForeignObject, ObjectKind};
pub use error::{FieldConflict, K8sError, field_conflicts, is_transient};
pub use permissions::{
    GRANTS, Grant, Needed, Permission, REQUIRED_PERMISSIONS, Scope, grants_for,
    required_permissions,
};
pub use wait::{has_endpoints, pod_is_ready};

/// The field manager of every server-side apply zkmigrate sends.
pub const FIELD_MANAGER: &str = "zkmigrate";

/// The label that marks an object as created by zkmigrate.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The EndpointSlice label that names the slice's manager.
pub const SLICE_MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";

/// The manager the EndpointSlice controller writes into its slices.
pub const SLICE_CONTROLLER: &str = "endpointslice-controller.k8s.io";

/// A namespaced kind zkmigrate reads and writes with typed objects.
pub trait NamespacedObject:
    Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> NamespacedObject for K where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// A client bound to the plan's namespace.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    namespace: String,
    retry: ExponentialBuilder,
}

impl Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Installs ring as the process's rustls crypto provider, once. kube
/// builds its TLS config with the process default; ring is the only
/// provider in the tree (Cargo.toml), and installing it explicitly keeps a
/// second one, should a dependency ever bring it, from making kube panic.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another part of the process installed one already.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The kubeconfig files kube would read: `$KUBECONFIG` (a path list), else
/// `~/.kube/config`.
fn kubeconfig_paths() -> Vec<PathBuf> {
    if let Some(list) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        return std::env::split_paths(&list).collect();
    }
    std::env::var_os("HOME")
        .map(|home| vec![PathBuf::from(home).join(".kube").join("config")])
        .unwrap_or_default()
}

/// Connects to the cluster of the plan's `kubernetes` section: the
/// kubeconfig's `context` (the current one when the plan sets none), or,
/// with no kubeconfig and no context, the in-cluster service account.
/// Builds the client only; [`Cluster::server_version`] is the first
/// request.
pub async fn connect(k: &Kubernetes) -> Result<Cluster, K8sError> {
    install_crypto_provider();
    let has_kubeconfig = kubeconfig_paths().iter().any(|p| p.exists());
    let mut config = if has_kubeconfig || k.context.is_some() {
        let options = KubeConfigOptions {
            context: k.context.clone(),
            ..KubeConfigOptions::default()
        };
        Config::from_kubeconfig(&options)
            .await
            .map_err(|source| K8sError::Kubeconfig {
                context: k.context.clone(),
                source,
            })?
    } else {
        Config::incluster().map_err(|source| K8sError::NoConfig { source })?
    };
    // One retry policy, ours, which logs each retry (module header).
    config.default_retry = false;
    let cluster_url = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|source| K8sError::Client {
        cluster_url: cluster_url.clone(),
        source: Box::new(source),
    })?;
    tracing::debug!(%cluster_url, context = ?k.context, namespace = %k.namespace, "kubernetes client ready");
    Ok(Cluster::new(client, &k.namespace))
}

impl Cluster {
    /// A cluster over an existing client, bound to `namespace`.
    pub fn new(client: Client, namespace: &str) -> Cluster {
        Cluster {
            client,
            namespace: namespace.to_string(),
            retry: ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(6)
                .with_jitter(),
        }
    }

    /// The same cluster with another retry policy (tests use a short one).
    pub fn with_retry(mut self, retry: ExponentialBuilder) -> Cluster {
        self.retry = retry;
        self
    }

    /// The namespace every object lives in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The underlying client, for what this boundary does not wrap.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The API server's version (`/version`): the preflight's "context
    /// reachable" check, and the first request a [`connect`] makes.
    pub async fn server_version(&self) -> Result<String, K8sError> {
        let info = self
            .retrying("get", "version", "/version", || {
                self.client.apiserver_version()
            })
            .await
            .map_err(|source| self.api_error("get", "APIServer", "/version", source))?;
        Ok(info.git_version)
    }

    /// Whether the plan's namespace exists (zkmigrate never creates it).
    pub async fn namespace_exists(&self) -> Result<bool, K8sError> {
        use k8s_openapi::api::core::v1::Namespace;
        let api: kube::Api<Namespace> = kube::Api::all(self.client.clone());
        let found = self
            .retrying("get", "Namespace", &self.namespace, || {
                api.get_opt(&self.namespace)
            })
            .await
            .map_err(|source| self.api_error("get", "Namespace", &self.namespace, source))?;
        Ok(found.is_some())
    }

    /// Runs `op` under the retry policy: transient failures
    /// ([`is_transient`]) are retried, a bounded number of times, each
    /// retry logged.
    pub(crate) async fn retrying<T, F, Fut>(
        &self,
        action: &'static str,
        kind: &str,
        name: &str,
        op: F,
    ) -> Result<T, kube::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        self.retrying_if(action, kind, name, is_transient, op).await
    }

    /// [`Cluster::retrying`] with another test of what is worth sending
    /// again, e.g. one that never retries a 409 of an update sent with a
    /// `resourceVersion` (the journal's ConfigMap and Lease).
    pub(crate) async fn retrying_if<T, F, Fut>(
        &self,
        action: &'static str,
        kind: &str,
        name: &str,
        retry_if: fn(&kube::Error) -> bool,
        op: F,
    ) -> Result<T, kube::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        op.retry(self.retry)
            .when(retry_if)
            .notify(|err, delay| {
                tracing::warn!(
                    action,
                    kind,
                    name,
                    namespace = %self.namespace,
                    delay_ms = delay.as_millis() as u64,
                    error = %error::describe(err),
                    "kubernetes request failed; retrying"
                );
            })
            .await
    }

    /// The error of a failed request about object `kind/name`.
    pub(crate) fn api_error(
        &self,
        action: &'static str,
        kind: &str,
        name: &str,
        source: kube::Error,
    ) -> K8sError {
        K8sError::Api {
            action,
            kind: kind.to_string(),
            name: name.to_string(),
            namespace: self.namespace.clone(),
            detail: error::describe(&source),
            source: Box::new(source),
        }
    }
}
