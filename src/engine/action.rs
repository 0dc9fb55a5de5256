//! The actions of every step, as data (STYLE: "steps are data").
//!
//! An [`Action`] names what is done and to which server; its [`Action::id`]
//! (`peers/restart/2`) is the journal's key and never changes meaning, so a
//! journal written by one version is read by the next. Whether an action
//! disrupts the ensemble is a property of the action, not of the step: the
//! engine gates exactly those ([`Action::disrupts`]).

use serde::{Deserialize, Serialize};

use crate::plan::ServerId;
use crate::steps::StepName;

/// One action of the migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    // preflight: read-only checks.
    /// Every server answers, exactly one leads, every voter is synced.
    CheckEnsemble,
    /// The live server list (`conf`) has the plan's ids and addresses.
    CheckMembership,
    /// The host's myid file holds the server's id.
    CheckMyid { server: ServerId },
    /// The host's zoo.cfg (or dynamic file) lists the plan's servers.
    CheckConfig { server: ServerId },
    /// The version allows a rolling address change (ZOOKEEPER-3829).
    CheckVersion,
    /// `srvr`, `mntr`, `conf`, `cons` whitelisted, or the AdminServer answers.
    CheckWords,
    /// Context reachable, namespace present, every verb allowed, no foreign
    /// object holding zkmigrate's names.
    CheckCluster,
    /// From the host: a Service name resolves, a ClusterIP answers, a Pod IP
    /// is reachable.
    CheckNetwork { server: ServerId },

    // services
    /// The per-server ClusterIP Service, without selector.
    ApplyService { server: ServerId },
    /// The hand-managed EndpointSlice pointing at the host.
    ApplyHostSlice { server: ServerId },
    /// Through the ClusterIP, `conf` reports the server's id.
    VerifyRoute { server: ServerId },

    // clients
    /// Print the new connection string.
    ShowConnectionString,
    /// Who is connected where (`cons`, grouped by client address).
    ClientInventory,
    /// Wait for the operator's `--confirm clients`.
    AwaitClientsConfirmed,

    // peers
    /// From every host, every Service name resolves to its ClusterIP and
    /// answers with its id.
    VerifyResolution,
    /// Back up the host's config and rewrite its server lines to the
    /// Service names, with `quorumListenOnAllIPs=true`.
    RewriteConfig { server: ServerId },
    /// Restart the host's ZooKeeper; await serving and synced.
    RestartServer { server: ServerId },

    // replace
    /// StatefulSet target: the ordinal -> myid map, the current leader last.
    PinOrdinals,
    /// The Pods' zoo.cfg ConfigMap (and the governing Service).
    ApplyPodConfig,
    /// maxUnavailable 1.
    ApplyDisruptionBudget,
    /// Stop and disable the host's ZooKeeper, ports closed, myid moved aside.
    FenceHost { server: ServerId },
    /// The Service selects the Pod; the controller's slice is awaited and
    /// zkmigrate's host slice deleted.
    SwitchServiceToPod { server: ServerId },
    /// Scale the StatefulSet (or create the per-server one) so the Pod runs.
    StartPod { server: ServerId },
    /// The Pod serves as a voting follower and the leader counts it synced.
    AwaitPodSynced { server: ServerId },

    // finalize
    /// All Pods, healthy, synced; no hand-made slice; hosts disabled.
    VerifyEndState,
}

impl Action {
    /// The step the action belongs to.
    pub fn step(&self) -> StepName {
        use Action::*;
        match self {
            CheckEnsemble
            | CheckMembership
            | CheckMyid { .. }
            | CheckConfig { .. }
            | CheckVersion
            | CheckWords
            | CheckCluster
            | CheckNetwork { .. } => StepName::Preflight,
            ApplyService { .. } | ApplyHostSlice { .. } | VerifyRoute { .. } => StepName::Services,
            ShowConnectionString | ClientInventory | AwaitClientsConfirmed => StepName::Clients,
            VerifyResolution | RewriteConfig { .. } | RestartServer { .. } => StepName::Peers,
            PinOrdinals
            | ApplyPodConfig
            | ApplyDisruptionBudget
            | FenceHost { .. }
            | SwitchServiceToPod { .. }
            | StartPod { .. }
            | AwaitPodSynced { .. } => StepName::Replace,
            VerifyEndState => StepName::Finalize,
        }
    }

    /// The server the action is about, if one.
    pub fn server(&self) -> Option<ServerId> {
        use Action::*;
        match self {
            CheckMyid { server }
            | CheckConfig { server }
            | CheckNetwork { server }
            | ApplyService { server }
            | ApplyHostSlice { server }
            | VerifyRoute { server }
            | RewriteConfig { server }
            | RestartServer { server }
            | FenceHost { server }
            | SwitchServiceToPod { server }
            | StartPod { server }
            | AwaitPodSynced { server } => Some(*server),
            _ => None,
        }
    }

    /// The short name within the step (`restart`, `fence`, ...).
    fn verb(&self) -> &'static str {
        use Action::*;
        match self {
            CheckEnsemble => "ensemble",
            CheckMembership => "membership",
            CheckMyid { .. } => "myid",
            CheckConfig { .. } => "config",
            CheckVersion => "version",
            CheckWords => "words",
            CheckCluster => "cluster",
            CheckNetwork { .. } => "network",
            ApplyService { .. } => "service",
            ApplyHostSlice { .. } => "slice",
            VerifyRoute { .. } => "route",
            ShowConnectionString => "connection-string",
            ClientInventory => "inventory",
            AwaitClientsConfirmed => "confirm",
            VerifyResolution => "resolve",
            RewriteConfig { .. } => "rewrite",
            RestartServer { .. } => "restart",
            PinOrdinals => "ordinals",
            ApplyPodConfig => "pod-config",
            ApplyDisruptionBudget => "pdb",
            FenceHost { .. } => "fence",
            SwitchServiceToPod { .. } => "switch",
            StartPod { .. } => "pod",
            AwaitPodSynced { .. } => "synced",
            VerifyEndState => "end-state",
        }
    }

    /// The stable journal id: `step/verb[/server]`, e.g. `peers/restart/2`.
    pub fn id(&self) -> String {
        match self.server() {
            Some(id) => format!("{}/{}/{}", self.step(), self.verb(), id),
            None => format!("{}/{}", self.step(), self.verb()),
        }
    }

    /// Whether the action stops, restarts or replaces a server: the engine
    /// runs the quorum-first gate before it (DESIGN 2).
    pub fn disrupts(&self) -> bool {
        matches!(
            self,
            Action::RestartServer { .. } | Action::FenceHost { .. }
        )
    }

    /// The reason of the Event recorded on the server's Service once the
    /// action is done (UpperCamelCase, as Kubernetes reasons are): what
    /// `kubectl describe svc` lists as the migration's history.
    pub fn done_reason(&self) -> &'static str {
        use Action::*;
        match self {
            CheckEnsemble => "EnsembleChecked",
            CheckMembership => "MembershipChecked",
            CheckMyid { .. } => "MyidChecked",
            CheckConfig { .. } => "ConfigChecked",
            CheckVersion => "VersionChecked",
            CheckWords => "WordsChecked",
            CheckCluster => "ClusterChecked",
            CheckNetwork { .. } => "NetworkChecked",
            ApplyService { .. } => "ServiceApplied",
            ApplyHostSlice { .. } => "HostSliceApplied",
            VerifyRoute { .. } => "RouteVerified",
            ShowConnectionString => "ConnectionStringShown",
            ClientInventory => "ClientsListed",
            AwaitClientsConfirmed => "ClientsConfirmed",
            VerifyResolution => "ResolutionVerified",
            RewriteConfig { .. } => "PeersConfigRewritten",
            RestartServer { .. } => "PeersServerRestarted",
            PinOrdinals => "OrdinalsPinned",
            ApplyPodConfig => "PodConfigApplied",
            ApplyDisruptionBudget => "DisruptionBudgetApplied",
            FenceHost { .. } => "HostFenced",
            SwitchServiceToPod { .. } => "SwitchedToPod",
            StartPod { .. } => "PodStarted",
            AwaitPodSynced { .. } => "PodSynced",
            VerifyEndState => "EndStateVerified",
        }
    }

    /// The reason of the Event recorded when a rollback undid the action.
    pub fn undone_reason(&self) -> &'static str {
        use Action::*;
        match self {
            ApplyService { .. } => "ServiceDeleted",
            ApplyHostSlice { .. } => "HostSliceDeleted",
            RewriteConfig { .. } => "PeersConfigRestored",
            RestartServer { .. } => "RestartedOnOldConfig",
            PinOrdinals => "OrdinalsUnpinned",
            ApplyPodConfig => "PodConfigDeleted",
            ApplyDisruptionBudget => "DisruptionBudgetDeleted",
            FenceHost { .. } => "HostRestored",
            SwitchServiceToPod { .. } => "SwitchedToHost",
            StartPod { .. } => "PodStopped",
            _ => "ActionUndone",
        }
    }

    /// One line for the operator.
    pub fn describe(&self) -> String {
        use Action::*;
        match self {
            CheckEnsemble => {
                "every server answers, exactly one leads, every voter is synced".into()
            }
            CheckMembership => "the live server list matches the plan's ids and addresses".into(),
            CheckMyid { server } => format!("host of server {server}: myid file holds {server}"),
            CheckConfig { server } => {
                format!("host of server {server}: zoo.cfg lists the plan's servers")
            }
            CheckVersion => {
                "the ZooKeeper version allows a rolling address change (ZOOKEEPER-3829)".into()
            }
            CheckWords => {
                "srvr, mntr, conf, cons are whitelisted (or the AdminServer answers)".into()
            }
            CheckCluster => {
                "cluster reachable, namespace present, every verb allowed, names free".into()
            }
            CheckNetwork { server } => format!(
                "from the host of server {server}: Service names resolve, ClusterIPs and Pod IPs answer"
            ),
            ApplyService { server } => {
                format!("apply the Service of server {server} (ClusterIP, no selector)")
            }
            ApplyHostSlice { server } => {
                format!("apply the EndpointSlice pointing at the host of server {server}")
            }
            VerifyRoute { server } => {
                format!("through its ClusterIP, `conf` reports serverId={server}")
            }
            ShowConnectionString => "print the clients' new connection string".into(),
            ClientInventory => "list the connected clients per server (cons)".into(),
            AwaitClientsConfirmed => {
                "wait until the operator confirms the clients moved (--confirm clients)".into()
            }
            VerifyResolution => {
                "from every host, every Service name resolves and answers with its id".into()
            }
            RewriteConfig { server } => format!(
                "host of server {server}: back up zoo.cfg, rewrite server lines to the Service names, add quorumListenOnAllIPs=true"
            ),
            RestartServer { server } => {
                format!("restart server {server}; wait until it serves and is synced")
            }
            PinOrdinals => {
                "fix the StatefulSet's ordinal -> myid map (the current leader last)".into()
            }
            ApplyPodConfig => "apply the Pods' zoo.cfg ConfigMap and the governing Service".into(),
            ApplyDisruptionBudget => "apply the PodDisruptionBudget (maxUnavailable 1)".into(),
            FenceHost { server } => format!(
                "host of server {server}: stop and disable ZooKeeper, ports closed, myid moved aside"
            ),
            SwitchServiceToPod { server } => format!(
                "point the Service of server {server} at its Pod; delete the host's EndpointSlice"
            ),
            StartPod { server } => format!("start the Pod of server {server}"),
            AwaitPodSynced { server } => {
                format!("wait until the Pod of server {server} follows and is synced")
            }
            VerifyEndState => {
                "every server runs in a Pod, synced; no hand-made slice; hosts disabled".into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ServerId {
        ServerId::try_from(n).unwrap()
    }

    #[test]
    fn ids_are_stable_and_carry_their_step() {
        assert_eq!(
            Action::RestartServer { server: id(2) }.id(),
            "peers/restart/2"
        );
        assert_eq!(Action::FenceHost { server: id(3) }.id(), "replace/fence/3");
        assert_eq!(Action::CheckEnsemble.id(), "preflight/ensemble");
        assert_eq!(Action::AwaitClientsConfirmed.id(), "clients/confirm");
    }

    #[test]
    fn only_stopping_restarting_or_replacing_is_gated() {
        assert!(Action::RestartServer { server: id(1) }.disrupts());
        assert!(Action::FenceHost { server: id(1) }.disrupts());
        assert!(!Action::ApplyService { server: id(1) }.disrupts());
        assert!(!Action::StartPod { server: id(1) }.disrupts());
    }

    /// One of each kind of action.
    fn every_kind() -> Vec<Action> {
        use Action::*;
        let s = id(1);
        vec![
            CheckEnsemble,
            CheckMembership,
            CheckMyid { server: s },
            CheckConfig { server: s },
            CheckVersion,
            CheckWords,
            CheckCluster,
            CheckNetwork { server: s },
            ApplyService { server: s },
            ApplyHostSlice { server: s },
            VerifyRoute { server: s },
            ShowConnectionString,
            ClientInventory,
            AwaitClientsConfirmed,
            VerifyResolution,
            RewriteConfig { server: s },
            RestartServer { server: s },
            PinOrdinals,
            ApplyPodConfig,
            ApplyDisruptionBudget,
            FenceHost { server: s },
            SwitchServiceToPod { server: s },
            StartPod { server: s },
            AwaitPodSynced { server: s },
            VerifyEndState,
        ]
    }

    #[test]
    fn each_kind_of_action_has_its_own_event_reason_in_upper_camel_case() {
        let kinds = every_kind();
        let reasons: std::collections::BTreeSet<&str> =
            kinds.iter().map(Action::done_reason).collect();
        assert_eq!(reasons.len(), kinds.len(), "{reasons:?}");
        for reason in kinds
            .iter()
            .flat_map(|a| [a.done_reason(), a.undone_reason()])
        {
            assert!(
                reason.starts_with(|c: char| c.is_ascii_uppercase())
                    && reason.chars().all(|c| c.is_ascii_alphanumeric())
                    && reason.len() <= 128,
                "{reason}"
            );
        }
    }

    #[test]
    fn actions_serialize_with_a_kind_tag() {
        let json = serde_json::to_string(&Action::StartPod { server: id(2) }).unwrap();
        assert_eq!(json, r#"{"action":"start-pod","server":2}"#);
    }
}
