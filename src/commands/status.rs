//! `zkmigrate status`: where the migration stands, and a live table of the
//! ensemble (id, address, where it runs, mode, zxid, lag, connections).
//!
//! The live part observes every server of the plan at once (four-letter
//! words, AdminServer fallback) where it runs now (its Pod's IP once it has
//! one, when the cluster is reachable; else the host address), and never
//! fails as a whole: a server that does not answer is a row saying why. The
//! journal part reads the journal without its lock (it works while a step
//! runs); with no journal every step is `pending`.

use std::path::Path;

use serde::Serialize;

use super::CommandError;
use crate::cli::OutputFormat;
use crate::exit::Exit;
use crate::observe::{
    EnsembleObservation, ObserveOptions, Source, Target, health::lag, observe_ensemble,
};
use crate::output::{Printer, Table};
use crate::plan::{self, StateBackend, ValidatedPlan};
use crate::steps::StepName;

/// `status -o json` (DESIGN section 4: at least `steps` and `servers`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub plan: String,
    pub journal: JournalState,
    pub steps: Vec<StepStatus>,
    pub servers: Vec<ServerStatus>,
    /// The leader by quorum agreement, when there is one.
    pub leader: Option<u64>,
    /// The leader's `zk_synced_followers`.
    pub synced_followers: Option<u64>,
    /// The leader's `zk_pending_syncs`.
    pub pending_syncs: Option<u64>,
    pub has_quorum: bool,
    pub all_voters_synced: bool,
    /// The current epoch (high 32 bits of the leader's zxid).
    pub epoch: Option<u32>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalState {
    pub backend: &'static str,
    pub path: Option<String>,
    pub exists: bool,
}

#[derive(Debug, Serialize)]
pub struct StepStatus {
    pub name: StepName,
    pub status: &'static str,
    pub actions: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct ServerStatus {
    pub id: u64,
    /// The plan's address of the server (its client port is the plan's).
    pub address: String,
    /// `host` or `pod`.
    pub location: &'static str,
    /// `leader`, `follower`, ... or null when it does not serve.
    pub mode: Option<String>,
    /// `0x...`, or null.
    pub zxid: Option<String>,
    /// Transactions behind the leader (see `observe::health::lag`).
    pub lag: Option<u64>,
    /// Client connections, not counting zkmigrate's own probe.
    pub connections: Option<u64>,
    /// Why it could not be observed.
    pub error: Option<String>,
}

pub async fn run(path: &Path, output: OutputFormat) -> Result<Exit, CommandError> {
    let plan = plan::load(path)?;
    // Without the lock: works while a step runs. Bounded, best effort, as
    // the cluster lookup below (the kubernetes backend reads a ConfigMap).
    let journal = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        crate::journal::JournalStore::from_plan(&plan).read(&plan, None),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .flatten();
    let mut targets: Vec<Target> = plan
        .servers
        .iter()
        .map(|s| Target::new(u64::from(s.id.get()), plan.client_endpoint(s)))
        .collect();
    // Once anything ran, Pods may hold some servers: ask the cluster where
    // (bounded, best effort: status must answer even without a cluster).
    let mut in_pods = Vec::new();
    if journal.is_some() {
        let located = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let cluster = crate::k8s::connect(&plan.kubernetes).await.ok()?;
            crate::engine::context::targets_for(&plan, &cluster)
                .await
                .ok()
        })
        .await
        .ok()
        .flatten();
        if let Some(located) = located {
            for (t, host) in located.iter().zip(&targets) {
                if t.client != host.client {
                    in_pods.push(t.id);
                }
            }
            targets = located;
        }
    }
    let observation = observe_ensemble(
        &targets,
        &ObserveOptions {
            conf: false,
            ..ObserveOptions::default()
        },
    )
    .await;
    let mut report = build_report(&plan, &observation);
    for server in &mut report.servers {
        if in_pods.contains(&server.id) {
            server.location = "pod";
        }
    }
    if let Some(j) = &journal {
        report.journal.exists = true;
        report.steps = j
            .steps
            .iter()
            .map(|s| StepStatus {
                name: s.name,
                status: s.status.as_str(),
                actions: s
                    .actions
                    .iter()
                    .map(|a| serde_json::to_value(a).unwrap_or_default())
                    .collect(),
            })
            .collect();
    }
    let printer = Printer;
    match output {
        OutputFormat::Json => printer.json(&report)?,
        OutputFormat::Text => printer.text(&render_text(&report))?,
    }
    Ok(Exit::Done)
}

/// The report from a plan and one observation (pure).
pub fn build_report(plan: &ValidatedPlan, obs: &EnsembleObservation) -> StatusReport {
    let journal = match &plan.state {
        StateBackend::File { .. } => {
            let path = plan.state_file();
            JournalState {
                backend: "file",
                exists: path.as_ref().is_some_and(|p| p.exists()),
                path: path.map(|p| p.display().to_string()),
            }
        }
        StateBackend::Kubernetes => JournalState {
            backend: "kubernetes",
            path: None,
            exists: false,
        },
    };
    let address_of = |id: u64| {
        plan.servers
            .iter()
            .find(|s| u64::from(s.id.get()) == id)
            .map(|s| s.address.clone())
            .unwrap_or_default()
    };
    let leader = obs.leader();
    let leader_zxid = obs.leader_observation().map(|o| o.srvr.zxid);
    let leader_mntr = obs.leader_observation().and_then(|o| o.mntr.as_ref());
    let servers = obs
        .servers
        .iter()
        .map(|entry| match &entry.outcome {
            Ok(o) => ServerStatus {
                id: entry.id,
                address: address_of(entry.id),
                location: "host",
                mode: Some(o.srvr.mode.to_string()),
                zxid: Some(o.srvr.zxid.to_string()),
                lag: leader_zxid.map(|l| lag(l, o.srvr.zxid)),
                // A 4lw answer counts the probe's own connection.
                connections: Some(match o.source {
                    Source::FourLetterWord => o.srvr.connections.saturating_sub(1),
                    Source::AdminServer => o.srvr.connections,
                }),
                error: None,
            },
            Err(f) => ServerStatus {
                id: entry.id,
                address: address_of(entry.id),
                location: "host",
                mode: None,
                zxid: None,
                lag: None,
                connections: None,
                error: Some(f.message.clone()),
            },
        })
        .collect();
    StatusReport {
        plan: plan.name.clone(),
        journal,
        steps: StepName::ALL
            .into_iter()
            .map(|name| StepStatus {
                name,
                status: "pending",
                actions: Vec::new(),
            })
            .collect(),
        servers,
        leader,
        synced_followers: leader_mntr.and_then(|m| m.synced_followers()),
        pending_syncs: leader_mntr.and_then(|m| m.pending_syncs()),
        has_quorum: obs.has_quorum(),
        all_voters_synced: obs.all_voters_synced(),
        epoch: obs.epoch(),
    }
}

fn dash<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string)
}

/// The text form of the report.
pub fn render_text(r: &StatusReport) -> String {
    let mut out = format!("plan {}\n\nSTEPS\n", r.plan);
    let mut steps = Table::new(["STEP", "STATUS"]);
    for s in &r.steps {
        steps.row([s.name.to_string(), s.status.to_string()]);
    }
    out.push_str(&steps.render());
    if !r.journal.exists {
        out.push_str("(no journal yet: nothing has run)\n");
    }
    out.push_str("\nSERVERS\n");
    let mut servers = Table::new([
        "ID",
        "ADDRESS",
        "WHERE",
        "MODE",
        "ZXID",
        "LAG",
        "CONNECTIONS",
    ]);
    for s in &r.servers {
        servers.row([
            s.id.to_string(),
            s.address.clone(),
            s.location.to_string(),
            s.mode.clone().unwrap_or_else(|| "down".into()),
            dash(&s.zxid),
            dash(&s.lag),
            dash(&s.connections),
        ]);
    }
    out.push_str(&servers.render());
    for s in r.servers.iter().filter(|s| s.error.is_some()) {
        out.push_str(&format!("server {}: {}\n", s.id, dash(&s.error)));
    }
    out.push_str(&format!(
        "\nleader: {}  synced followers: {}  pending syncs: {}  quorum: {}  all synced: {}\n",
        dash(&r.leader),
        dash(&r.synced_followers),
        dash(&r.pending_syncs),
        if r.has_quorum { "yes" } else { "no" },
        if r.all_voters_synced { "yes" } else { "no" },
    ));
    out
}
