//! What every step's actions run with: the plan, the three I/O boundaries
//! (hosts, Kubernetes, ZooKeeper), progress, and the operator's options;
//! and the one error type of the steps, which decides the exit code.
//!
//! Each step module exposes the same four functions over [`Action`]s
//! (DESIGN 5): `check` (observe: is the effect already there?), `apply`
//! (idempotent), `verify`, `undo`. They take a `&Ctx` and never touch the
//! journal: the loop in [`super::run`] does.

use std::path::PathBuf;

use super::action::Action;
use super::gate::{self, GateHalt, GatePassed, GateSpec};
use crate::exit::Exit;
use crate::hosts::{HostAccess, HostError, HostSession};
use crate::k8s::{Cluster, K8sError};
use crate::manifests::{self, Ordinals};
use crate::observe::{EnsembleObservation, ObserveOptions, Target, observe_ensemble};
use crate::plan::{Server, ServerId, ValidatedPlan};
use crate::progress::Progress;
use crate::steps::StepName;

/// What the operator allowed on the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--yes`: do not ask before disruptive actions.
    pub yes: bool,
    /// `--confirm STEP` (repeatable).
    pub confirm: Vec<StepName>,
    /// `--force`: pass refusals the operator may override (ZOOKEEPER-3829).
    pub force: bool,
    /// `--resume`: continue an interrupted step.
    pub resume: bool,
}

/// The outcome of an action's `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// The effect is already there (what shows it); the loop skips apply.
    Done(String),
    /// The action must run.
    Needed,
}

/// Why an action or a step stopped.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A safety gate or a wait ran out (exit 3; resumable).
    #[error(transparent)]
    Halted(#[from] Box<GateHalt>),
    /// The step waits for `--confirm STEP` (exit 4).
    #[error(
        "step {step} waits for the operator: {what}; then run `zkmigrate step -f {plan} --resume --confirm {step}`"
    )]
    AwaitingConfirm {
        step: StepName,
        what: String,
        plan: String,
    },
    /// A check found the world not as the migration needs it; nothing was
    /// changed by this action (exit 1).
    #[error("failed {action}: observed {observed}; expected {expected}. {next}")]
    Refused {
        action: String,
        observed: String,
        expected: String,
        /// What the operator can do.
        next: String,
    },
    /// An action failed on the way (a host command, an API request, an
    /// unexpected answer); the journal records it failed (exit 1).
    #[error("failed {action}: {reason}. {next}")]
    ActionFailed {
        action: String,
        reason: String,
        /// What the operator can do.
        next: String,
    },
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Kubernetes(#[from] K8sError),
    #[error(transparent)]
    Manifests(#[from] manifests::ManifestsError),
    #[error("failed to {0}")]
    Other(String),
}

impl From<GateHalt> for StepError {
    fn from(h: GateHalt) -> StepError {
        StepError::Halted(Box::new(h))
    }
}

impl StepError {
    /// The exit code of DESIGN section 4.
    pub fn exit(&self) -> Exit {
        match self {
            StepError::Halted(_) => Exit::Halted,
            StepError::AwaitingConfirm { .. } => Exit::AwaitingConfirm,
            _ => Exit::Error,
        }
    }

    /// A refusal of `action`.
    pub fn refused(
        action: &Action,
        observed: impl Into<String>,
        expected: impl Into<String>,
        next: impl Into<String>,
    ) -> StepError {
        StepError::Refused {
            action: action.id(),
            observed: observed.into(),
            expected: expected.into(),
            next: next.into(),
        }
    }
}

/// Everything an action runs with.
pub struct Ctx {
    pub plan: ValidatedPlan,
    /// The plan file, for the commands halts print.
    pub plan_file: PathBuf,
    pub hosts: HostAccess,
    pub cluster: Cluster,
    pub progress: Progress,
    pub opts: RunOptions,
}

impl Ctx {
    /// The server `id` of the plan (ids in actions come from the plan).
    pub fn server(&self, id: ServerId) -> &Server {
        self.plan
            .server(id)
            .expect("actions are built from the plan's servers")
    }

    /// A session on the host of server `id`.
    pub async fn session(&self, id: ServerId) -> Result<HostSession, StepError> {
        Ok(self.hosts.connect(self.server(id)).await?)
    }

    /// The ordinal map of a StatefulSet target as pinned by the `replace`
    /// step (the `<target>-ordinals` ConfigMap), or by id when not pinned
    /// yet (and always for PerServer).
    pub async fn ordinals(&self) -> Result<Ordinals, StepError> {
        pinned_ordinals(&self.plan, &self.cluster).await
    }

    /// Where to ask each server now (see [`targets_for`]).
    pub async fn targets(&self) -> Result<Vec<Target>, StepError> {
        targets_for(&self.plan, &self.cluster).await
    }

    /// One observation of the ensemble where it runs now.
    pub async fn observe(&self) -> Result<EnsembleObservation, StepError> {
        Ok(observe_ensemble(&self.targets().await?, &ObserveOptions::default()).await)
    }

    /// The quorum-first gate before a disruptive action on `server`
    /// (DESIGN 2); `fencing` adds the equal-zxid rule (DESIGN 9).
    pub async fn gate(&self, server: ServerId, fencing: bool) -> Result<GatePassed, StepError> {
        let id = u64::from(server.get());
        let spec = if fencing {
            GateSpec::before_fencing(id)
        } else {
            GateSpec::before_touching(id)
        };
        let targets = self.targets().await?;
        Ok(gate::await_gate(
            &targets,
            &spec,
            &self.plan.policy,
            &self.plan_file,
            &self.progress,
        )
        .await?)
    }

    /// Waits until server `id` serves, follows (or leads) and is synced.
    pub async fn await_synced(&self, server: ServerId) -> Result<GatePassed, StepError> {
        let targets = self.targets().await?;
        Ok(gate::await_synced(
            &targets,
            u64::from(server.get()),
            &self.plan.policy,
            &self.plan_file,
            &self.progress,
        )
        .await?)
    }
}

/// The ordinal map pinned in the cluster, or by id when none is.
pub async fn pinned_ordinals(
    plan: &ValidatedPlan,
    cluster: &Cluster,
) -> Result<Ordinals, StepError> {
    use k8s_openapi::api::core::v1::ConfigMap;
    let name = manifests::labels::ordinals_config_map_name(plan);
    let pinned: Option<ConfigMap> = cluster.get_opt(&name).await?;
    let Some(data) = pinned.and_then(|cm| cm.data) else {
        return Ok(Ordinals::by_id(plan));
    };
    let mut ids = Vec::new();
    for ordinal in 0..data.len() {
        let id: u8 = data
            .get(&ordinal.to_string())
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| {
                StepError::Other(format!("read ordinal {ordinal} of ConfigMap {name}"))
            })?;
        ids.push(id);
    }
    Ordinals::new(plan, &ids).map_err(StepError::from)
}

/// Where to ask each server now: its Pod's IP once its Pod runs (and is not
/// terminating), else the host address; the client port is the plan's in
/// both places.
///
/// Known limit: this assumes the machine zkmigrate runs on routes Pod IPs
/// (true in the lab, and when zkmigrate runs in the cluster). From an
/// operator machine that does not, the Service's ClusterIP (with kube-proxy
/// there) would be the fallback; not built yet.
pub async fn targets_for(
    plan: &ValidatedPlan,
    cluster: &Cluster,
) -> Result<Vec<Target>, StepError> {
    use k8s_openapi::api::core::v1::Pod;
    let ordinals = pinned_ordinals(plan, cluster).await?;
    let mut targets = Vec::new();
    for s in &plan.servers {
        let pod_name = manifests::pod_name_for(plan, s.id, &ordinals)?;
        let pod: Option<Pod> = cluster.get_opt(&pod_name).await?;
        let ip = pod
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .and_then(|p| p.status)
            .and_then(|st| st.pod_ip);
        let endpoint = match ip {
            Some(ip) => format!("{ip}:{}", plan.ensemble.client_port),
            None => plan.client_endpoint(s),
        };
        targets.push(Target::new(u64::from(s.id.get()), endpoint));
    }
    Ok(targets)
}
