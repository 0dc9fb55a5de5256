//! The one computation of the migration plan (DESIGN 2, "plan and act
//! agree"): from the validated plan and one observation of the world, every
//! step's actions in order, with what each will change (zoo.cfg diffs).
//! Pure: `plan`, `runbook`, `manifests` and `step` all render its result.
//!
//! Order: in `peers` and `replace`, followers go first in id order and the
//! server that leads now goes last, so the whole migration costs the
//! method's minimum of two elections (DESIGN 5.4). Leadership can move: the
//! engine observes it again before each action and may take the remaining
//! servers in another order; the ids of the actions do not change.

use serde::Serialize;

use super::action::Action;
use super::world::{HostFacts, World};
use crate::plan::{ServerId, ValidatedPlan};
use crate::steps::StepName;
use crate::zoocfg::{self, ClientAddrRewrite, ZooCfg};

/// One planned action and what it will change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedAction {
    pub id: String,
    #[serde(flatten)]
    pub action: Action,
    pub description: String,
    /// A unified diff of what the action writes, when it writes a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// One step's actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepPlan {
    pub name: StepName,
    pub actions: Vec<PlannedAction>,
}

/// The whole computed plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationPlan {
    pub plan: String,
    pub hash: String,
    /// The leader when the plan was computed.
    pub leader: Option<ServerId>,
    /// The order of `peers` and `replace`: followers, then the leader.
    pub order: Vec<ServerId>,
    pub steps: Vec<StepPlan>,
    /// What the operator should read before running it.
    pub warnings: Vec<String>,
}

/// Computes the plan.
pub fn build(plan: &ValidatedPlan, world: &World) -> MigrationPlan {
    let mut warnings: Vec<String> = plan.warnings.iter().map(ToString::to_string).collect();
    let leader = world.leader();
    if leader.is_none() {
        warnings.push(
            "no single leader was observed: the order below is by id; zkmigrate observes the leader again before each action"
                .into(),
        );
    }
    let order = order_followers_first(plan, leader);
    let ids: Vec<ServerId> = plan.servers.iter().map(|s| s.id).collect();

    let mut steps = Vec::new();
    let mut preflight = vec![
        Action::CheckEnsemble,
        Action::CheckMembership,
        Action::CheckVersion,
        Action::CheckWords,
    ];
    preflight.extend(ids.iter().map(|&server| Action::CheckMyid { server }));
    preflight.extend(ids.iter().map(|&server| Action::CheckConfig { server }));
    preflight.push(Action::CheckCluster);
    preflight.extend(ids.iter().map(|&server| Action::CheckNetwork { server }));
    steps.push(step(StepName::Preflight, preflight, |_| None));

    let mut services = Vec::new();
    for &server in &ids {
        services.push(Action::ApplyService { server });
        services.push(Action::ApplyHostSlice { server });
        services.push(Action::VerifyRoute { server });
    }
    steps.push(step(StepName::Services, services, |_| None));

    steps.push(step(
        StepName::Clients,
        vec![
            Action::ShowConnectionString,
            Action::ClientInventory,
            Action::AwaitClientsConfirmed,
        ],
        |_| None,
    ));

    let mut peers = vec![Action::VerifyResolution];
    for &server in &order {
        peers.push(Action::RewriteConfig { server });
        peers.push(Action::RestartServer { server });
    }
    steps.push(step(StepName::Peers, peers, |a| match a {
        Action::RewriteConfig { server } => {
            let facts = world.hosts.get(server).cloned().unwrap_or_default();
            match peer_config_diff(plan, &facts) {
                Ok(diff) => Some(diff),
                Err(why) => {
                    warnings.push(format!("server {server}: {why}"));
                    None
                }
            }
        }
        _ => None,
    }));

    let mut replace = Vec::new();
    if plan.kubernetes.target.kind == crate::plan::TargetKind::StatefulSet {
        replace.push(Action::PinOrdinals);
    }
    replace.push(Action::ApplyPodConfig);
    replace.push(Action::ApplyDisruptionBudget);
    for &server in &order {
        replace.push(Action::FenceHost { server });
        replace.push(Action::SwitchServiceToPod { server });
        replace.push(Action::StartPod { server });
        replace.push(Action::AwaitPodSynced { server });
    }
    steps.push(step(StepName::Replace, replace, |_| None));
    steps.push(step(
        StepName::Finalize,
        vec![Action::VerifyEndState],
        |_| None,
    ));

    for (id, facts) in &world.hosts {
        if let Some(e) = &facts.error {
            warnings.push(format!("server {id}: its host could not be read: {e}"));
        }
    }
    MigrationPlan {
        plan: plan.name.clone(),
        hash: plan.hash(),
        leader,
        order,
        steps,
        warnings,
    }
}

fn step(
    name: StepName,
    actions: Vec<Action>,
    mut diff: impl FnMut(&Action) -> Option<String>,
) -> StepPlan {
    StepPlan {
        name,
        actions: actions
            .into_iter()
            .map(|action| PlannedAction {
                id: action.id(),
                description: action.describe(),
                diff: diff(&action),
                action,
            })
            .collect(),
    }
}

/// Followers in id order, then `leader` (when known).
pub fn order_followers_first(plan: &ValidatedPlan, leader: Option<ServerId>) -> Vec<ServerId> {
    let mut order: Vec<ServerId> = plan
        .servers
        .iter()
        .map(|s| s.id)
        .filter(|&id| Some(id) != leader)
        .collect();
    if let Some(l) = leader.filter(|l| plan.server(*l).is_some()) {
        order.push(l);
    }
    order
}

/// The files the `peers` rewrite writes on one host, as
/// `(path, old text, new text)`: zoo.cfg always (the flag), and the dynamic
/// file when the server lines live there (DESIGN 7).
pub fn peer_config_files(
    plan: &ValidatedPlan,
    facts: &HostFacts,
) -> Result<Vec<(String, String, String)>, String> {
    let text = facts
        .config
        .as_deref()
        .ok_or_else(|| format!("{} could not be read", plan.ensemble.config_path))?;
    let cfg = ZooCfg::parse(text).map_err(|e| e.to_string())?;
    let new_host = |id: u32| {
        u8::try_from(id)
            .ok()
            .and_then(|id| ServerId::try_from(id).ok())
            .filter(|id| plan.server(*id).is_some())
            .map(|id| plan.service_host(id))
    };
    let rewritten = cfg
        .rewrite_for_services(new_host)
        .map_err(|e| e.to_string())?;
    let mut files = vec![(
        plan.ensemble.config_path.clone(),
        text.to_string(),
        rewritten.render(),
    )];
    if let Some((path, dynamic)) = &facts.dynamic {
        let d = ZooCfg::parse(dynamic).map_err(|e| e.to_string())?;
        let new = d
            .rewrite_servers(new_host, ClientAddrRewrite::Keep)
            .map_err(|e| e.to_string())?;
        files.push((path.clone(), dynamic.clone(), new.render()));
    }
    Ok(files)
}

fn peer_config_diff(plan: &ValidatedPlan, facts: &HostFacts) -> Result<String, String> {
    let files = peer_config_files(plan, facts)?;
    Ok(files
        .iter()
        .map(|(path, old, new)| {
            zoocfg::diff(
                old,
                new,
                &format!("{path} (now)"),
                &format!("{path} (after peers)"),
            )
        })
        .collect::<Vec<_>>()
        .join(""))
}

/// The plan as text for `zkmigrate plan`.
pub fn render_text(p: &MigrationPlan) -> String {
    let mut out = format!(
        "plan {} (hash {})\n",
        p.plan,
        &p.hash[..12.min(p.hash.len())]
    );
    match p.leader {
        Some(l) => out.push_str(&format!("leader now: server {l}\n")),
        None => out.push_str("leader now: none observed\n"),
    }
    let order: Vec<String> = p.order.iter().map(ToString::to_string).collect();
    let why = if p.leader.is_some() {
        "followers first, the leader last"
    } else {
        "by id: no leader observed"
    };
    out.push_str(&format!(
        "order of peers and replace: {} ({why})\n",
        order.join(", ")
    ));
    for s in &p.steps {
        out.push_str(&format!("\n{}\n", s.name));
        for a in &s.actions {
            let gate = if a.action.disrupts() { " [gated]" } else { "" };
            out.push_str(&format!("  {:<26} {}{gate}\n", a.id, a.description));
            if let Some(diff) = &a.diff {
                for line in diff.lines() {
                    out.push_str(&format!("      {line}\n"));
                }
            }
        }
    }
    for w in &p.warnings {
        out.push_str(&format!("\nwarning: {w}"));
    }
    if !p.warnings.is_empty() {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::SystemTime;

    use super::*;
    use crate::observe::EnsembleObservation;

    fn plan() -> ValidatedPlan {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/three-node-systemd.yaml"),
        )
        .unwrap();
        crate::plan::parse(&text, "three-node-systemd.yaml").unwrap()
    }

    fn world(hosts: BTreeMap<ServerId, HostFacts>) -> World {
        World {
            ensemble: EnsembleObservation {
                servers: Vec::new(),
                observed_at: SystemTime::UNIX_EPOCH,
            },
            hosts,
        }
    }

    fn id(n: u8) -> ServerId {
        ServerId::try_from(n).unwrap()
    }

    #[test]
    fn followers_go_first_and_the_leader_last() {
        let p = plan();
        assert_eq!(
            order_followers_first(&p, Some(id(1))),
            [id(2), id(3), id(1)]
        );
        assert_eq!(
            order_followers_first(&p, Some(id(3))),
            [id(1), id(2), id(3)]
        );
        assert_eq!(order_followers_first(&p, None), [id(1), id(2), id(3)]);
    }

    #[test]
    fn every_step_is_planned_in_order_with_unique_ids() {
        let m = build(&plan(), &world(BTreeMap::new()));
        let names: Vec<StepName> = m.steps.iter().map(|s| s.name).collect();
        assert_eq!(names, StepName::ALL);
        let mut ids: Vec<&str> = m
            .steps
            .iter()
            .flat_map(|s| s.actions.iter().map(|a| a.id.as_str()))
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "action ids are unique");
        // Without a leader observed, the plan says so.
        assert!(m.warnings.iter().any(|w| w.contains("no single leader")));
    }

    #[test]
    fn the_peers_rewrite_shows_its_diff() {
        let cfg = "tickTime=2000\ndataDir=/var/lib/zookeeper\nclientPort=2181\n\
                   server.1=10.0.0.11:2888:3888\nserver.2=10.0.0.12:2888:3888\nserver.3=10.0.0.13:2888:3888\n";
        let facts = HostFacts {
            config: Some(cfg.into()),
            ..HostFacts::default()
        };
        let hosts: BTreeMap<ServerId, HostFacts> = [
            (id(1), facts.clone()),
            (id(2), facts.clone()),
            (id(3), facts),
        ]
        .into();
        let m = build(&plan(), &world(hosts));
        let peers = m.steps.iter().find(|s| s.name == StepName::Peers).unwrap();
        let rewrite = peers
            .actions
            .iter()
            .find(|a| a.id == "peers/rewrite/2")
            .unwrap();
        let diff = rewrite.diff.as_deref().unwrap();
        assert!(diff.contains("-server.2=10.0.0.12:2888:3888"), "{diff}");
        assert!(
            diff.contains("+server.2=zk-2.zookeeper.svc.cluster.local:2888:3888"),
            "{diff}"
        );
        assert!(diff.contains("+quorumListenOnAllIPs=true"), "{diff}");
        assert!(
            diff.contains("\n tickTime=2000\n"),
            "unchanged lines are context: {diff}"
        );
        assert!(
            !diff.contains("-tickTime") && !diff.contains("+tickTime"),
            "{diff}"
        );
    }
}
