//! Step `preflight` (DESIGN 5.1): read-only checks of the ensemble, the
//! hosts, the cluster and the network, before anything is changed.
//!
//! Every check has one function, [`run_check`], that observes and either
//! returns what it saw (one line) or refuses with what was observed, what
//! was expected and what to do ([`StepError::Refused`]). The step's four
//! functions are thin over it: `check` is always `Needed` (a check proves
//! nothing until it runs), `apply` runs it, `verify` returns what `apply`
//! saw, `undo` does nothing. `zkmigrate check` calls [`run_check`] for every
//! preflight action and prints a table, without the journal.
//!
//! Why `verify` returns a remembered line rather than looking again: the
//! network check creates and deletes a probe Pod, and a second round of
//! every check would double the step's time for no new fact. The memo is
//! keyed by plan and action id and lives for the process only.
//!
//! Layout: the ensemble-side checks (`ensemble`, `membership`, `version`,
//! `words`) and the cluster check are here; the hosts' files (`myid`,
//! `config`) in `hosts`; the probe Pod and the host-side network probes in
//! `network`.

mod manual;
pub use manual::{DATA_DIR, intro, manual};

mod hosts;
mod network;

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tracing::Instrument;

use crate::engine::action::Action;
use crate::engine::context::{Ctx, Observed, StepError};
use crate::k8s::{ObjectKind, required_permissions};
use crate::manifests::labels;
use crate::observe::health::{
    Condition, all_voters_synced, every_voter_serving, exactly_one_leader,
};
use crate::observe::{EnsembleObservation, ServerProbe, Source, Word};
use crate::plan::{StateBackend, TargetKind, ValidatedPlan};

pub use network::probe_pod_name;

/// What each passed check saw, for `verify` (see the module header).
static SEEN: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

fn memo_key(ctx: &Ctx, action: &Action) -> String {
    format!("{}:{}", ctx.plan.name, action.id())
}

pub async fn check(_ctx: &Ctx, _action: &Action) -> Result<Observed, StepError> {
    Ok(Observed::Needed)
}

pub async fn apply(ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    let seen = run_check(ctx, action).await?;
    SEEN.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(memo_key(ctx, action), seen);
    Ok(())
}

pub async fn verify(ctx: &Ctx, action: &Action) -> Result<String, StepError> {
    let remembered = SEEN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&memo_key(ctx, action))
        .cloned();
    match remembered {
        Some(seen) => Ok(seen),
        None => run_check(ctx, action).await,
    }
}

/// Preflight changes nothing, so there is nothing to take back.
pub async fn undo(_ctx: &Ctx, _action: &Action) -> Result<(), StepError> {
    Ok(())
}

/// Runs one preflight check: what it saw, or a refusal.
pub async fn run_check(ctx: &Ctx, action: &Action) -> Result<String, StepError> {
    let span = tracing::info_span!(
        "check",
        action = %action.id(),
        server_id = action.server().map(|s| s.get())
    );
    let result = dispatch(ctx, action).instrument(span).await;
    match &result {
        Ok(seen) => tracing::info!(action = %action.id(), seen = %seen, "preflight check passed"),
        Err(e) => tracing::warn!(action = %action.id(), error = %e, "preflight check failed"),
    }
    result
}

async fn dispatch(ctx: &Ctx, action: &Action) -> Result<String, StepError> {
    match action {
        Action::CheckEnsemble => check_ensemble(ctx, action).await,
        Action::CheckMembership => check_membership(ctx, action).await,
        Action::CheckVersion => check_version(ctx, action).await,
        Action::CheckWords => check_words(ctx, action).await,
        Action::CheckMyid { server } => hosts::check_myid(ctx, action, *server).await,
        Action::CheckConfig { server } => hosts::check_config(ctx, action, *server).await,
        Action::CheckCluster => check_cluster(ctx, action).await,
        Action::CheckNetwork { server } => network::check_network(ctx, action, *server).await,
        other => Err(StepError::Other(format!(
            "run {}: not a preflight action",
            other.id()
        ))),
    }
}

fn status_hint(ctx: &Ctx) -> String {
    format!(
        "see `zkmigrate status -f {}`, then run `zkmigrate check -f {}` again",
        ctx.plan_file.display(),
        ctx.plan_file.display()
    )
}

async fn check_ensemble(ctx: &Ctx, action: &Action) -> Result<String, StepError> {
    let obs = ctx.observe().await?;
    let report = every_voter_serving()
        .and(exactly_one_leader())
        .and(all_voters_synced())
        .report(&obs);
    if !report.is_healthy() {
        return Err(StepError::refused(
            action,
            report.to_string().replace('\n', "; "),
            "every server serving, exactly one leader, every voter synced",
            format!("bring the ensemble to health first; {}", status_hint(ctx)),
        ));
    }
    Ok(describe_ensemble(&obs))
}

fn describe_ensemble(obs: &EnsembleObservation) -> String {
    let leader = obs.leader().map_or("-".into(), |l| l.to_string());
    let synced = obs
        .leader_observation()
        .and_then(|o| o.mntr.as_ref())
        .and_then(|m| m.synced_followers())
        .map_or("-".into(), |n| n.to_string());
    format!(
        "{} servers serving, leader {leader}, {synced} followers synced",
        obs.serving_voters().len()
    )
}

async fn check_membership(ctx: &Ctx, action: &Action) -> Result<String, StepError> {
    let obs = ctx.observe().await?;
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for entry in &obs.servers {
        let Ok(o) = &entry.outcome else {
            problems.push(format!(
                "server {} at {} did not answer",
                entry.id, entry.address
            ));
            continue;
        };
        let Some(conf) = &o.conf else {
            problems.push(format!(
                "server {} at {} did not answer `conf` ({})",
                entry.id,
                entry.address,
                o.problems.join("; ")
            ));
            continue;
        };
        if let Some(sid) = conf.server_id
            && sid != entry.id
        {
            problems.push(format!(
                "the server at {} says serverId={sid}, the plan says {}",
                entry.address, entry.id
            ));
            continue;
        }
        let listed: Vec<hosts::Listed> = if conf.servers.is_empty() {
            // 3.4: `conf` has no membership; the host's zoo.cfg has it.
            let Some(id) = ctx
                .plan
                .servers
                .iter()
                .map(|s| s.id)
                .find(|s| u64::from(s.get()) == entry.id)
            else {
                continue;
            };
            match hosts::read_server_lines(ctx, action, id).await {
                Ok((lines, _)) => lines,
                Err(e) => {
                    problems.push(format!("server {}: {e}", entry.id));
                    continue;
                }
            }
        } else {
            conf.servers
                .iter()
                .map(|s| hosts::Listed {
                    id: s.id,
                    host: s.host.clone(),
                    quorum_port: s.quorum_port,
                    election_port: s.election_port,
                })
                .collect()
        };
        match hosts::compare_with_plan(&ctx.plan, &listed) {
            Ok(how) => seen.push(format!("server {}: {how}", entry.id)),
            Err(why) => problems.push(format!("server {}'s membership: {why}", entry.id)),
        }
    }
    if !problems.is_empty() {
        return Err(StepError::refused(
            action,
            problems.join("; "),
            format!(
                "every server's membership lists exactly {}",
                plan_members(&ctx.plan)
            ),
            format!(
                "correct the plan's ids and addresses (ensemble.servers in {}) to match the ensemble",
                ctx.plan_file.display()
            ),
        ));
    }
    Ok(seen.join("; "))
}

/// The plan's members as a line: `1=10.0.0.11, 2=10.0.0.12`.
fn plan_members(plan: &ValidatedPlan) -> String {
    plan.servers
        .iter()
        .map(|s| format!("{}={}", s.id, s.address))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn check_version(ctx: &Ctx, action: &Action) -> Result<String, StepError> {
    let obs = ctx.observe().await?;
    let versions: Vec<(u64, crate::observe::Version)> = obs
        .servers
        .iter()
        .filter_map(|e| {
            e.outcome
                .as_ref()
                .ok()
                .map(|o| (e.id, o.srvr.version.clone()))
        })
        .collect();
    if versions.is_empty() {
        return Err(StepError::refused(
            action,
            "no server answered `srvr`",
            "the version of every server",
            status_hint(ctx),
        ));
    }
    let shown: Vec<String> = versions
        .iter()
        .map(|(id, v)| format!("server {id}: {v}"))
        .collect();
    let affected: Vec<String> = versions
        .iter()
        .filter(|(_, v)| v.affected_by_zookeeper_3829())
        .map(|(id, v)| format!("server {id}: {v}"))
        .collect();
    if affected.is_empty() {
        return Ok(shown.join(", "));
    }
    if ctx.opts.force {
        tracing::warn!(servers = %affected.join(", "), "ZOOKEEPER-3829 versions allowed by --force");
        return Ok(format!(
            "{} (ZOOKEEPER-3829 range, allowed by --force)",
            shown.join(", ")
        ));
    }
    Err(StepError::refused(
        action,
        format!("{} (ZOOKEEPER-3829)", affected.join(", ")),
        "a version outside 3.5.0-3.5.8 and 3.6.0-3.6.1, where a rolling address change breaks the ensemble",
        format!(
            "upgrade to 3.5.9+ or 3.6.2+ first, or run with --force if you accept the risk: `zkmigrate step -f {} --force`",
            ctx.plan_file.display()
        ),
    ))
}

/// The AdminServer port a host's zoo.cfg sets (default 8080), or `None`
/// when it disables the AdminServer or the file cannot be read.
async fn admin_port(ctx: &Ctx, action: &Action, id: crate::plan::ServerId) -> Option<u16> {
    let config = hosts::read_config(ctx, action, id).await.ok()?;
    if config.cfg.get("admin.enableServer").map(str::trim) == Some("false") {
        return None;
    }
    Some(
        config
            .cfg
            .get("admin.serverPort")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(8080),
    )
}

async fn check_words(ctx: &Ctx, action: &Action) -> Result<String, StepError> {
    let targets = ctx.targets().await?;
    let mut problems = Vec::new();
    let mut via_admin = Vec::new();
    for (target, server) in targets.iter().zip(&ctx.plan.servers) {
        let mut probe = ServerProbe::new(target.client.clone(), Duration::from_secs(3));
        if let Some(port) = admin_port(ctx, action, server.id).await {
            let host = target
                .client
                .rsplit_once(':')
                .map_or(target.client.as_str(), |(h, _)| h);
            probe = probe.with_admin(format!("{host}:{port}"));
        }
        let answers = [
            (Word::Srvr, probe.srvr().await.map(|(_, s)| s)),
            (Word::Mntr, probe.mntr().await.map(|(_, s)| s)),
            (Word::Conf, probe.conf().await.map(|(_, s)| s)),
            (Word::Cons, probe.cons().await.map(|(_, s)| s)),
        ];
        for (word, answer) in answers {
            match answer {
                Ok(Source::FourLetterWord) => {}
                Ok(Source::AdminServer) => via_admin.push(format!("server {}: {word}", server.id)),
                Err(e) => problems.push(format!("server {}: {e}", server.id)),
            }
        }
    }
    if !problems.is_empty() {
        return Err(StepError::refused(
            action,
            problems.join("; "),
            "srvr, mntr, conf and cons answered by every server (4lw.commands.whitelist, or the AdminServer)",
            "add `4lw.commands.whitelist=srvr,mntr,conf,cons,ruok,stat` to every host's zoo.cfg (takes a rolling restart), or enable the AdminServer",
        ));
    }
    Ok(if via_admin.is_empty() {
        "srvr, mntr, conf, cons answered as four-letter words by every server".into()
    } else {
        format!(
            "every word answered; through the AdminServer: {}",
            via_admin.join(", ")
        )
    })
}

/// Every name zkmigrate will create, by kind (the preflight's foreign-object
/// check; pure).
pub fn created_names(plan: &ValidatedPlan) -> Vec<(ObjectKind, String)> {
    let mut names = Vec::new();
    for s in &plan.servers {
        names.push((ObjectKind::Service, plan.service_name(s.id)));
        names.push((
            ObjectKind::EndpointSlice,
            labels::host_slice_name(plan, s.id),
        ));
    }
    names.push((ObjectKind::Service, labels::governing_service_name(plan)));
    names.push((ObjectKind::ConfigMap, labels::config_map_name(plan)));
    let target = &plan.kubernetes.target;
    match target.kind {
        TargetKind::StatefulSet => {
            names.push((
                ObjectKind::ConfigMap,
                labels::ordinals_config_map_name(plan),
            ));
            names.push((ObjectKind::StatefulSet, target.name.clone()));
        }
        TargetKind::PerServer => {
            for s in &plan.servers {
                names.push((ObjectKind::StatefulSet, target.statefulset_name(s.id)));
            }
        }
    }
    names.push((ObjectKind::PodDisruptionBudget, labels::pdb_name(plan)));
    names.push((ObjectKind::Pod, probe_pod_name(plan)));
    if plan.state == StateBackend::Kubernetes {
        names.push((ObjectKind::ConfigMap, plan.state_object_name()));
        names.push((ObjectKind::Lease, plan.state_object_name()));
    }
    names
}

async fn check_cluster(ctx: &Ctx, action: &Action) -> Result<String, StepError> {
    let ns = ctx.cluster.namespace().to_string();
    let version = ctx.cluster.server_version().await.map_err(|e| {
        StepError::refused(
            action,
            format!("the API server did not answer: {e}"),
            "the kubeconfig's cluster reachable",
            "check the kubeconfig (KUBECONFIG, kubernetes.context in the plan) and the network to the API server",
        )
    })?;
    if !ctx.cluster.namespace_exists().await? {
        return Err(StepError::refused(
            action,
            format!("no namespace {ns}"),
            format!("namespace {ns} to exist (zkmigrate never creates it)"),
            format!("create it: `kubectl create namespace {ns}`"),
        ));
    }
    // The permission table's rows this plan needs: the same the Role of
    // `zkmigrate rbac` grants (the kubernetes backend's rows only with it).
    let needed = required_permissions(&ctx.plan);
    let missing = ctx.cluster.missing_permissions(&needed).await?;
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(ToString::to_string).collect();
        return Err(StepError::refused(
            action,
            format!("not allowed in namespace {ns}: {}", list.join(", ")),
            "every verb zkmigrate uses allowed",
            format!(
                "grant them to the credentials in use (check with `kubectl auth can-i -n {ns} {}`)",
                list[0]
            ),
        ));
    }
    let foreign = ctx
        .cluster
        .foreign_objects(&created_names(&ctx.plan))
        .await?;
    if !foreign.is_empty() {
        let list: Vec<String> = foreign.iter().map(ToString::to_string).collect();
        return Err(StepError::refused(
            action,
            format!("names already taken in namespace {ns}: {}", list.join(", ")),
            "every name zkmigrate creates free or already zkmigrate's",
            "remove those objects, or change kubernetes.serviceName / kubernetes.target.name in the plan",
        ));
    }
    Ok(format!(
        "API server {version}, namespace {ns}, {} permissions allowed, no foreign object",
        needed.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab_plan() -> ValidatedPlan {
        crate::plan::testing::three_servers("PerServer")
    }

    #[test]
    fn created_names_cover_every_object_of_a_per_server_target() {
        let plan = lab_plan();
        let names: Vec<String> = created_names(&plan)
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        for expected in [
            "Service zk-1",
            "EndpointSlice zk-3-host",
            "Service zk-hs",
            "ConfigMap zk-config",
            "StatefulSet zk-2",
            "PodDisruptionBudget zk-pdb",
            "Pod zkmigrate-probe-orders",
        ] {
            assert!(
                names.contains(&expected.to_string()),
                "{expected} in {names:?}"
            );
        }
        assert!(!names.iter().any(|n| n.starts_with("Lease")), "{names:?}");
    }
}
