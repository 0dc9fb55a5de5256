//! [`observe_ensemble`]: one snapshot of every expected server, taken
//! concurrently, each server under its own deadline, into an
//! [`EnsembleObservation`] that is plain data. Health predicates
//! ([`super::health`]) are pure functions of that snapshot, so every gate
//! decision can be tested on a hand-built one and printed from the same data.
//!
//! A server that cannot be observed is not an error of the whole call: it is
//! an entry with an [`ObservationFailure`] (unreachable, not serving, other),
//! because "server 2 is down" is an observation a gate must report, not an
//! exception that hides the other servers.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use futures::future::join_all;

use super::ObserveError;
use super::conf::Conf;
use super::mntr::Mntr;
use super::probe::ServerProbe;
pub use super::probe::Source;
use super::srvr::Srvr;

/// One server the ensemble is expected to have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The myid.
    pub id: u64,
    /// The client port address, `host:port`.
    pub client: String,
    /// The AdminServer address, `host:port`, for the fallback.
    pub admin: Option<String>,
}

impl Target {
    /// A server reached on its client port only.
    pub fn new(id: u64, client: impl Into<String>) -> Self {
        Self {
            id,
            client: client.into(),
            admin: None,
        }
    }

    /// Adds the AdminServer address.
    pub fn with_admin(mut self, admin: impl Into<String>) -> Self {
        self.admin = Some(admin.into());
        self
    }
}

impl From<(u64, SocketAddr)> for Target {
    fn from((id, addr): (u64, SocketAddr)) -> Self {
        Target::new(id, addr.to_string())
    }
}

impl From<(u64, &str)> for Target {
    fn from((id, addr): (u64, &str)) -> Self {
        Target::new(id, addr)
    }
}

impl From<(u64, String)> for Target {
    fn from((id, addr): (u64, String)) -> Self {
        Target::new(id, addr)
    }
}

/// What to ask and how long to wait.
#[derive(Debug, Clone)]
pub struct ObserveOptions {
    /// Deadline of each exchange (each word on each server).
    pub timeout: Duration,
    /// Ask `mntr` of every serving server (the leader's is what gates need;
    /// followers' give `zk_peer_state`).
    pub mntr: bool,
    /// Ask `conf` of every serving server (membership, `serverId`).
    pub conf: bool,
}

impl Default for ObserveOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3),
            mntr: true,
            conf: true,
        }
    }
}

/// What one serving server reported.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerObservation {
    pub srvr: Srvr,
    /// Which path answered `srvr`.
    pub source: Source,
    /// `None` when not asked or when it failed (then see `problems`).
    pub mntr: Option<Mntr>,
    /// `None` when not asked or when it failed (then see `problems`).
    pub conf: Option<Conf>,
    /// Failures of the words after `srvr`, as printed errors.
    pub problems: Vec<String>,
    pub observed_at: SystemTime,
}

/// Why a server could not be observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Nothing answered: refused, timed out, unresolvable.
    Unreachable,
    /// The process answered "not currently serving requests" (no quorum,
    /// still starting or syncing).
    NotServing,
    /// Anything else (a refusal by whitelist with no fallback, a bad reply).
    Other,
}

/// A server that could not be observed, and the error as printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservationFailure {
    pub kind: FailureKind,
    pub message: String,
}

impl From<&ObserveError> for ObservationFailure {
    fn from(e: &ObserveError) -> Self {
        let kind = if e.is_not_serving() {
            FailureKind::NotServing
        } else if e.is_unreachable() {
            FailureKind::Unreachable
        } else {
            FailureKind::Other
        };
        Self {
            kind,
            message: e.to_string(),
        }
    }
}

/// One expected server and what became of observing it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerEntry {
    pub id: u64,
    /// The client address asked.
    pub address: String,
    pub outcome: Result<ServerObservation, ObservationFailure>,
}

/// A snapshot of the ensemble: one entry per expected server, in the order
/// given. Predicates live in [`super::health`].
#[derive(Debug, Clone, PartialEq)]
pub struct EnsembleObservation {
    pub servers: Vec<ServerEntry>,
    pub observed_at: SystemTime,
}

/// Observes every target at once. Never fails as a whole: each server's
/// failure is recorded in its entry.
pub async fn observe_ensemble(targets: &[Target], opts: &ObserveOptions) -> EnsembleObservation {
    let started = SystemTime::now();
    let servers = join_all(targets.iter().map(|t| observe_server(t, opts))).await;
    EnsembleObservation {
        servers,
        observed_at: started,
    }
}

/// Observes one server: `srvr` first (it decides whether the server serves),
/// then `mntr` and `conf` together.
pub async fn observe_server(target: &Target, opts: &ObserveOptions) -> ServerEntry {
    let mut probe = ServerProbe::new(target.client.clone(), opts.timeout);
    probe.admin = target.admin.clone();
    let entry = |outcome| ServerEntry {
        id: target.id,
        address: target.client.clone(),
        outcome,
    };
    let (srvr, source) = match probe.srvr().await {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(server_id = target.id, error = %e, "server not observed");
            return entry(Err(ObservationFailure::from(&e)));
        }
    };
    let observed_at = SystemTime::now();
    let (mntr, conf) = tokio::join!(
        async {
            if opts.mntr {
                Some(probe.mntr().await.map(|(m, _)| m))
            } else {
                None
            }
        },
        async {
            if opts.conf {
                Some(probe.conf().await.map(|(c, _)| c))
            } else {
                None
            }
        }
    );
    let mut problems = Vec::new();
    let mntr = keep(mntr, &mut problems);
    let conf = keep(conf, &mut problems);
    entry(Ok(ServerObservation {
        srvr,
        source,
        mntr,
        conf,
        problems,
        observed_at,
    }))
}

/// Keeps a word's value, or records its failure among the server's problems.
fn keep<T>(r: Option<Result<T, ObserveError>>, problems: &mut Vec<String>) -> Option<T> {
    match r? {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    }
}
