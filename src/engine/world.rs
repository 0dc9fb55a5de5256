//! What zkmigrate observes before it plans: the ensemble (four-letter
//! words) and each host's config and myid (over SSH or the exec prefix).
//! Plain data, so that [`super::build`] is a pure function of it and tests
//! build worlds by hand.

use std::collections::BTreeMap;

use crate::hosts::{HostAccess, HostError};
use crate::observe::{EnsembleObservation, ObserveOptions, Target, observe_ensemble};
use crate::plan::{ServerId, ValidatedPlan};

/// One host's files, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// `configPath` (zoo.cfg), when it exists.
    pub config: Option<String>,
    /// The 3.5+ dynamic file named by `dynamicConfigFile`: (path, text).
    pub dynamic: Option<(String, String)>,
    /// `<dataDir>/myid`, trimmed.
    pub myid: Option<String>,
    /// Why the host could not be read, when it could not.
    pub error: Option<String>,
}

/// Everything observed.
#[derive(Debug, Clone)]
pub struct World {
    pub ensemble: EnsembleObservation,
    pub hosts: BTreeMap<ServerId, HostFacts>,
}

impl World {
    /// The current leader's id, by quorum agreement.
    pub fn leader(&self) -> Option<ServerId> {
        self.ensemble
            .leader()
            .and_then(|id| u8::try_from(id).ok())
            .and_then(|id| ServerId::try_from(id).ok())
    }
}

/// The observation targets of a plan (client endpoint per server).
pub fn targets(plan: &ValidatedPlan) -> Vec<Target> {
    plan.servers
        .iter()
        .map(|s| Target::new(u64::from(s.id.get()), plan.client_endpoint(s)))
        .collect()
}

/// Observes the ensemble and reads every host. Never fails as a whole: a
/// host that cannot be read has its error in its facts.
pub async fn observe_world(plan: &ValidatedPlan, access: &HostAccess) -> World {
    let ensemble = observe_ensemble(&targets(plan), &ObserveOptions::default()).await;
    let mut hosts = BTreeMap::new();
    for server in &plan.servers {
        let facts = match read_host(plan, access, server).await {
            Ok(facts) => facts,
            Err(e) => HostFacts {
                error: Some(e.to_string()),
                ..HostFacts::default()
            },
        };
        hosts.insert(server.id, facts);
    }
    World { ensemble, hosts }
}

async fn read_host(
    plan: &ValidatedPlan,
    access: &HostAccess,
    server: &crate::plan::Server,
) -> Result<HostFacts, HostError> {
    let session = access.connect(server).await?;
    let text = |b: Option<Vec<u8>>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
    let config = text(session.read_file(&plan.ensemble.config_path).await?);
    let parsed = config
        .as_deref()
        .and_then(|c| crate::zoocfg::ZooCfg::parse(c).ok());
    let dynamic = match parsed.as_ref().and_then(|c| c.dynamic_config_file()) {
        Some(path) => text(session.read_file(path).await?).map(|t| (path.to_string(), t)),
        None => None,
    };
    let data_dir = parsed
        .as_ref()
        .and_then(|c| c.data_dir())
        .unwrap_or("/var/lib/zookeeper")
        .to_string();
    let myid =
        text(session.read_file(&format!("{data_dir}/myid")).await?).map(|s| s.trim().to_string());
    let _ = session.close().await;
    Ok(HostFacts {
        config,
        dynamic,
        myid,
        error: None,
    })
}
