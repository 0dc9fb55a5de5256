//! The lab's Kubernetes API server: HTTPS (HTTP/1.1 and HTTP/2 by ALPN)
//! with a per-lab CA and bearer tokens, serving the kinds of
//! [`resources::RESOURCES`](super::resources::RESOURCES) from the
//! [`Store`] to the real kube client and kubectl.
//!
//! It sits in front of the store in the control-plane process: every
//! request is authenticated ([`auth`]), parsed into the attributes the real
//! server's `RequestInfoFactory` derives
//! (`k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`, here
//! [`routes`]), authorized, and dispatched to discovery, the resource
//! handlers, the watch stream or a subresource. Objects stay JSON end to
//! end; every write goes through `Store::write`, so admission and
//! resourceVersion checks are the store's, and patches are the pure
//! functions of [`super::patch`].
//!
//! # Layout
//!
//! - [`tls`]: the lab CA and server certificate, rustls config.
//! - [`auth`]: tokens, RBAC-like rules, 401/403, SelfSubjectAccessReview.
//! - [`routes`]: request attributes and dispatch.
//! - [`discovery`]: `/version`, `/api`, `/apis`, resource lists, OpenAPI.
//! - [`metrics`]: `/metrics`, the request counter.
//! - [`faults`]: failures and slowness injected by `zklab fault api`.
//! - [`handlers`]: get, list, create, update, delete, deletecollection.
//! - [`patching`]: PATCH (JSON, merge, strategic merge, apply).
//! - [`subresources`]: `scale` and `log`.
//! - [`watch`]: watch streams with selectors and bookmarks.
//! - [`selectors`]: label and field selectors.
//! - [`protobuf`]: reading kubectl's protobuf SelfSubjectAccessReview.
//! - [`http`]: bodies, query strings, JSON and Status responses.
//! - [`kubeconfig`]: the kubeconfig `zklab up` writes.

// `ApiError` is the Status every handler returns, large by design (it
// carries causes); boxing it everywhere would buy nothing here.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod discovery;
pub mod faults;
pub mod handlers;
pub mod http;
pub mod kubeconfig;
pub mod metrics;
pub mod patching;
pub mod protobuf;
pub mod routes;
pub mod selectors;
pub mod subresources;
pub mod tls;
pub mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch as signal;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::store::Store;

pub use auth::{Access, Rule, Tokens, User};
pub use kubeconfig::write_kubeconfig;
pub use tls::{Pki, PkiError, make_pki};

/// Finds the log file of a container: `(pod object, container, previous)`,
/// where `previous` asks for the run before the current one. The server
/// resolves the container first (the named one, or the Pod's only one;
/// several and none named is a 400), so it is always `Some` today. An
/// `Err` carries the message of the 400 the client gets (the kubelet's
/// wording: "is waiting to start", "previous terminated container ... not
/// found").
pub type LogLocator =
    Arc<dyn Fn(&serde_json::Value, Option<&str>, bool) -> Result<PathBuf, String> + Send + Sync>;

/// What the API server needs to start.
#[derive(Clone)]
pub struct ApiServerConfig {
    /// Where to listen (10.77.0.2:6443 in a lab; a 127.x address in tests).
    pub listen: SocketAddr,
    /// The server certificate and key (from [`make_pki`]).
    pub pki: Pki,
    pub tokens: Tokens,
    /// Where Pod logs are; without one, `pods/log` answers 400.
    pub log_locator: Option<LogLocator>,
    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// The `gitVersion` `/version` reports.
    pub git_version: String,
    /// The fault file `zklab fault api` writes (`Layout::api_fault_file`);
    /// none: nothing is ever injected.
    pub fault_file: Option<PathBuf>,
}

impl ApiServerConfig {
    /// A config with the defaults: bookmarks every 5 s, version v1.33.0.
    pub fn new(listen: SocketAddr, pki: Pki, tokens: Tokens) -> ApiServerConfig {
        ApiServerConfig {
            listen,
            pki,
            tokens,
            log_locator: None,
            bookmark_interval: Duration::from_secs(5),
            git_version: "v1.33.0".into(),
            fault_file: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiServerError {
    #[error("failed to bind the API server to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("failed to build the API server's TLS config: {0}")]
    Tls(#[from] PkiError),
}

/// Shared by every request (the store, the config, the stop signal, the
/// request counter, the injected fault).
pub struct Shared {
    pub store: Store,
    pub config: ApiServerConfig,
    pub metrics: metrics::RequestCounter,
    pub faults: faults::FaultSource,
    /// Closed when the server shuts down (ends watches and log follows).
    pub stopping: signal::Receiver<bool>,
}

/// A running API server.
pub struct ApiServer {
    addr: SocketAddr,
    stop: signal::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    /// Binds `config.listen` and serves in the background.
    pub async fn start(store: Store, config: ApiServerConfig) -> Result<ApiServer, ApiServerError> {
        let acceptor = TlsAcceptor::from(Arc::new(config.pki.server_config()?));
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ApiServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ApiServerError::Bind {
                addr: config.listen,
                source,
            })?;
        let (stop, stopping) = signal::channel(false);
        let shared = Arc::new(Shared {
            store,
            faults: faults::FaultSource::new(config.fault_file.clone()),
            config,
            metrics: metrics::RequestCounter::default(),
            stopping: stopping.clone(),
        });
        tracing::info!(%addr, "API server listening");
        let task = tokio::spawn(accept_loop(listener, acceptor, shared, stopping));
        Ok(ApiServer { addr, stop, task })
    }

    /// The address bound (with the real port when `listen` had port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://ADDR`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Stops accepting, ends every connection (watches included) and waits
    /// for the server's tasks.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Serves until `shutdown` completes.
pub async fn serve(
    store: Store,
    config: ApiServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ApiServerError> {
    let server = ApiServer::start(store, config).await?;
    shutdown.await;
    server.shutdown().await;
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut stopping: signal::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopping.changed() => break,
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "failed to accept a connection");
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let shared = shared.clone();
                connections.spawn(async move {
                    let tls = match acceptor.accept(tcp).await {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, std::convert::Infallible>(routes::handle(shared, req).await) }
                    });
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}
