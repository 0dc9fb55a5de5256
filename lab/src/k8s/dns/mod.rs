//! The lab's cluster DNS (the CoreDNS of a real cluster): answers
//! `*.svc.<zone>` from the store's Services, EndpointSlices and Pods, and
//! the lab machines' names, over UDP and TCP on one address (10.77.0.2:53
//! in the control-plane namespace; every lab namespace's `resolv.conf`
//! points there).
//!
//! Pipeline: store event (Service, EndpointSlice or Pod) -> debounce
//! (50 ms) -> [`records::Records::build`] (pure) -> swapped into the table
//! the [`server::Handler`] reads, so a change is answered within ~50 ms;
//! answers carry TTL 5 s ([`TTL`]), as CoreDNS's default.

pub mod records;
pub mod server;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::k8s::error::ApiError;
use crate::k8s::resources;
use crate::k8s::store::Store;
use crate::layout::Machine;

use records::Records;
use server::{Handler, SharedRecords};

/// TTL of every answer, seconds (CoreDNS kubernetes plugin default).
pub const TTL: u32 = 5;

/// The cluster domain.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// How long a burst of store changes is folded before the table is rebuilt.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// How long a TCP client may stay idle before the server closes it.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Errors of the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("failed to watch the store: {0}")]
    Watch(Box<ApiError>),
    #[error("failed to bind the dns server to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("failed to shut the dns server down: {0}")]
    Shutdown(String),
}

/// How the DNS server runs.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Where to listen (UDP and TCP).
    pub listen: SocketAddr,
    /// The cluster domain (`cluster.local`).
    pub domain: String,
    /// Names outside the zone that answer A (the lab machines).
    pub static_hosts: Vec<(String, Ipv4Addr)>,
}

impl DnsConfig {
    /// The lab's DNS: on the control plane's address, port 53, answering
    /// every machine's short name (`cp`, `ops`, `client`, `host1`...).
    pub fn for_lab(machines: &[Machine]) -> DnsConfig {
        DnsConfig {
            listen: SocketAddr::from((Machine::ControlPlane.addr(), 53)),
            domain: CLUSTER_DOMAIN.to_string(),
            static_hosts: machines.iter().map(|m| (m.short(), m.addr())).collect(),
        }
    }
}

fn build(store: &Store, cfg: &DnsConfig) -> Records {
    let (services, rv) = store.list(resources::services(), None);
    let (slices, _) = store.list(resources::endpointslices(), None);
    let (pods, _) = store.list(resources::pods(), None);
    let mut records = Records::build(&cfg.domain, &services, &slices, &pods, &cfg.static_hosts);
    records.serial = u32::try_from(rv % u64::from(u32::MAX)).unwrap_or(0);
    records
}

/// Serves DNS until `shutdown` completes (or the store is dropped).
pub async fn run_dns(
    store: Store,
    cfg: DnsConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DnsError> {
    let bind_err = |source| DnsError::Bind {
        addr: cfg.listen,
        source,
    };
    let udp = UdpSocket::bind(cfg.listen).await.map_err(bind_err)?;
    let tcp = TcpListener::bind(cfg.listen).await.map_err(bind_err)?;

    // Subscribe before the first build, so no change falls in between.
    let (_, mut events) = store
        .watch(resources::services(), None, Some(store.resource_version()))
        .map_err(|e| DnsError::Watch(Box::new(e)))?;
    let table: SharedRecords = Arc::new(RwLock::new(Arc::new(build(&store, &cfg))));
    let mut server = Server::new(Handler {
        records: table.clone(),
        ttl: TTL,
    });
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE, 64);
    info!(listen = %cfg.listen, domain = cfg.domain, "dns server started");

    let mut due: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            event = events.recv() => match event {
                Ok(e) if e.resource == resources::services()
                    || e.resource == resources::endpointslices()
                    || e.resource == resources::pods() => {
                    due.get_or_insert_with(|| Instant::now() + DEBOUNCE);
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    debug!(missed, "dns lagged behind the store; rebuilding");
                    due.get_or_insert_with(|| Instant::now() + DEBOUNCE);
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            () = async { match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            } } => {
                due = None;
                let records = Arc::new(build(&store, &cfg));
                debug!(serial = records.serial, "dns records rebuilt");
                *table.write().unwrap_or_else(|p| p.into_inner()) = records;
            }
        }
    }
    if let Err(error) = server.shutdown_gracefully().await {
        warn!(%error, "dns server did not stop cleanly");
        return Err(DnsError::Shutdown(error.to_string()));
    }
    info!("dns server stopped");
    Ok(())
}
