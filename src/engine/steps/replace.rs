//! Step `replace` (DESIGN 5.5): one server at a time, the host fenced for
//! good and replaced by a Pod with the same myid and server list, behind the
//! same Service; the next server only once the Pod is synced.
//!
//! Actions, in the order the engine's loop runs them:
//!
//! - `ordinals` (StatefulSet target): the ordinal -> myid ConfigMap, pinned
//!   once with the followers first and the leader *of that moment* last. A
//!   pinned map is never changed: Pods read their myid from it, and a Pod
//!   whose ordinal changed meaning would start as another server.
//! - `pod-config`: the Pods' zoo.cfg, derived from a host's own (after
//!   `peers`, its server lines name the Services), and the governing
//!   Service. Host files the config names (keystores, JAAS) cannot follow:
//!   refused until they are mounted in the target StatefulSet(s), or with
//!   `--force`.
//! - `pdb`: maxUnavailable 1.
//! - per server: `fence` (module [`host`]), `switch`, `pod`, `synced`
//!   (module [`pod`], whose header explains why this order never splits a
//!   Service's traffic between a host and a Pod).
//!
//! Every `check` observes the world (hosts, cluster, ensemble); nothing
//! here trusts the journal. Each completed per-server action records an
//! Event on the server's Service (best effort).

mod manual;
pub use manual::{intro, manual};

mod host;
mod pod;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use crate::engine::action::Action;
use crate::engine::build::order_followers_first;
use crate::engine::context::{Ctx, Observed, StepError};
use crate::manifests::{self, HostConfig, Ordinals, SecretPath, labels};
use crate::plan::{ServerId, TargetKind};
use crate::zoocfg::ZooCfg;

pub use host::{FENCED_SUFFIX, FenceState, fence_state};

/// The key of the Pods' zoo.cfg in its ConfigMap (manifests' `ZOO_CFG_KEY`).
const POD_ZOO_CFG_KEY: &str = "zoo.cfg";

pub async fn check(ctx: &Ctx, action: &Action) -> Result<Observed, StepError> {
    match action {
        Action::PinOrdinals => check_ordinals(ctx).await,
        Action::ApplyPodConfig => check_pod_config(ctx).await,
        Action::ApplyDisruptionBudget => Ok(match pdb_in_place(ctx).await? {
            Some(seen) => Observed::Done(seen),
            None => Observed::Needed,
        }),
        Action::FenceHost { server } => {
            let state = host::fence_state(ctx, *server).await?;
            Ok(if state.is_fenced() {
                Observed::Done(state.describe())
            } else {
                Observed::Needed
            })
        }
        Action::SwitchServiceToPod { server } => {
            Ok(match pod::switched(ctx, action, *server).await? {
                Some(seen) => Observed::Done(seen),
                None => Observed::Needed,
            })
        }
        Action::StartPod { server } => check_pod(ctx, action, *server).await,
        Action::AwaitPodSynced { server } => check_synced(ctx, action, *server).await,
        other => Err(not_mine(other)),
    }
}

pub async fn apply(ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    match action {
        Action::PinOrdinals => pin_ordinals(ctx, action).await,
        Action::ApplyPodConfig => apply_pod_config(ctx, action).await,
        Action::ApplyDisruptionBudget => {
            ctx.cluster.apply(&manifests::pdb(&ctx.plan)).await?;
            Ok(())
        }
        Action::FenceHost { server } => {
            host::fence(ctx, action, *server).await?;
            Ok(())
        }
        Action::SwitchServiceToPod { server } => {
            pod::switch_service_to_pod(ctx, action, *server).await?;
            Ok(())
        }
        Action::StartPod { server } => {
            pod::start_pod(ctx, action, *server).await?;
            Ok(())
        }
        Action::AwaitPodSynced { server } => {
            pod::await_pod_published(ctx, action, *server).await?;
            ctx.await_synced(*server).await?;
            Ok(())
        }
        other => Err(not_mine(other)),
    }
}

pub async fn verify(ctx: &Ctx, action: &Action) -> Result<String, StepError> {
    let not_there = |what: &str| {
        StepError::refused(
            action,
            format!("after apply: {what}"),
            action.describe(),
            format!(
                "Look at the cluster and the host, then `zkmigrate step -f {} --resume`.",
                ctx.plan_file.display()
            ),
        )
    };
    match action {
        Action::PinOrdinals => match check_ordinals(ctx).await? {
            Observed::Done(seen) => Ok(seen),
            Observed::Needed => Err(not_there("no ordinals ConfigMap")),
        },
        Action::ApplyPodConfig => match check_pod_config(ctx).await? {
            Observed::Done(seen) => Ok(seen),
            Observed::Needed => Err(not_there("the Pods' config differs from the host's")),
        },
        Action::ApplyDisruptionBudget => pdb_in_place(ctx)
            .await?
            .ok_or_else(|| not_there("no PodDisruptionBudget with maxUnavailable 1")),
        Action::FenceHost { server } => {
            let state = host::fence_state(ctx, *server).await?;
            if !state.is_fenced() {
                return Err(not_there(&state.describe()));
            }
            Ok(format!(
                "{}; disabled by `{}` (trusted; the ports are checked again before the Pod starts)",
                state.describe(),
                ctx.plan.ensemble.service.disable
            ))
        }
        Action::SwitchServiceToPod { server } => {
            pod::switched(ctx, action, *server).await?.ok_or_else(|| {
                not_there("the Service does not select the Pod, or the host slice remains")
            })
        }
        Action::StartPod { server } => {
            let (name, ip) = pod::await_pod_published(ctx, action, *server).await?;
            Ok(format!(
                "Pod {name} at {ip}; the controller's slice of Service {} holds it",
                ctx.plan.service_name(*server)
            ))
        }
        Action::AwaitPodSynced { server } => match check_synced(ctx, action, *server).await? {
            Observed::Done(seen) => Ok(seen),
            Observed::Needed => Err(not_there("the Pod is not a synced voting member")),
        },
        other => Err(not_mine(other)),
    }
}

/// Rollback (DESIGN 5.7). The engine undoes in reverse: `synced` (nothing),
/// `pod` (Pod gone), `switch` (Service back at the host), `fence` (host
/// back, synced); then `pdb`, `pod-config`, `ordinals` once no Pod is left.
pub async fn undo(ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    match action {
        Action::AwaitPodSynced { .. } => Ok(()),
        Action::StartPod { server } => pod::stop_pod(ctx, action, *server).await,
        Action::SwitchServiceToPod { server } => {
            pod::switch_service_to_host(ctx, action, *server).await?;
            Ok(())
        }
        Action::FenceHost { server } => {
            let ordinals = ctx.ordinals().await?;
            let name = manifests::pod_name_for(&ctx.plan, *server, &ordinals)?;
            // Terminating counts: its process may still run.
            if ctx.cluster.get_opt::<Pod>(&name).await?.is_some() {
                return Err(StepError::refused(
                    action,
                    format!("Pod {name} of server {server} exists"),
                    "no Pod with this myid before the host starts again (one identity, one process)",
                    format!(
                        "Roll back replace/pod/{server} first: `zkmigrate rollback -f {}`.",
                        ctx.plan_file.display()
                    ),
                ));
            }
            host::unfence(ctx, *server).await?;
            ctx.await_synced(*server).await?;
            Ok(())
        }
        Action::ApplyDisruptionBudget => {
            ctx.cluster
                .delete::<PodDisruptionBudget>(&labels::pdb_name(&ctx.plan))
                .await?;
            Ok(())
        }
        Action::ApplyPodConfig | Action::PinOrdinals => {
            refuse_while_pods(ctx, action).await?;
            if matches!(action, Action::PinOrdinals) {
                ctx.cluster
                    .delete::<ConfigMap>(&labels::ordinals_config_map_name(&ctx.plan))
                    .await?;
            } else {
                ctx.cluster
                    .delete::<ConfigMap>(&labels::config_map_name(&ctx.plan))
                    .await?;
                ctx.cluster
                    .delete::<Service>(&labels::governing_service_name(&ctx.plan))
                    .await?;
            }
            Ok(())
        }
        other => Err(not_mine(other)),
    }
}

fn not_mine(action: &Action) -> StepError {
    StepError::Other(format!(
        "run {}: it is not an action of step replace",
        action.id()
    ))
}

/// Undoing what every Pod runs on (ordinals, config) waits for the Pods to
/// be gone: a Pod restarting without its ConfigMaps would not start, and
/// one restarting with a re-pinned map would run another myid.
async fn refuse_while_pods(ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    let running: Vec<String> = target_statefulsets(ctx)
        .await?
        .into_iter()
        .filter(|s| s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1) > 0)
        .filter_map(|s| s.metadata.name)
        .collect();
    if running.is_empty() {
        return Ok(());
    }
    Err(StepError::refused(
        action,
        format!("StatefulSet(s) {} still run Pods", running.join(", ")),
        "every server back on its host first",
        format!(
            "Roll back the servers of step replace first: `zkmigrate rollback -f {}`.",
            ctx.plan_file.display()
        ),
    ))
}

// ---- ordinals -------------------------------------------------------------

fn describe_ordinals(ordinals: &Ordinals) -> String {
    ordinals
        .ids()
        .iter()
        .enumerate()
        .map(|(ordinal, id)| format!("{ordinal}->server {id}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn check_ordinals(ctx: &Ctx) -> Result<Observed, StepError> {
    if ctx.plan.kubernetes.target.kind == TargetKind::PerServer {
        return Ok(Observed::Done(
            "PerServer target: no ordinals to pin".into(),
        ));
    }
    let name = labels::ordinals_config_map_name(&ctx.plan);
    if ctx.cluster.get_opt::<ConfigMap>(&name).await?.is_none() {
        return Ok(Observed::Needed);
    }
    let ordinals = ctx.ordinals().await?;
    Ok(Observed::Done(format!(
        "pinned in ConfigMap {name}: {}",
        describe_ordinals(&ordinals)
    )))
}

/// Pins the ordinals: followers in id order, the leader observed now last.
/// Never overwrites a map that exists (another run may have pinned it).
async fn pin_ordinals(ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    if let Observed::Done(_) = check_ordinals(ctx).await? {
        return Ok(());
    }
    let observation = ctx.observe().await?;
    let Some(leader) = observation
        .leader()
        .and_then(|l| u8::try_from(l).ok())
        .and_then(|l| ServerId::try_from(l).ok())
    else {
        return Err(StepError::refused(
            action,
            "no single leader agreed by a quorum",
            "one leader, to give it the last ordinal (replaced last)",
            format!(
                "Nothing was changed. Once the ensemble has a leader, `zkmigrate step -f {} --resume`.",
                ctx.plan_file.display()
            ),
        ));
    };
    let order = order_followers_first(&ctx.plan, Some(leader));
    let raw: Vec<u8> = order.iter().map(|id| id.get()).collect();
    let ordinals = Ordinals::new(&ctx.plan, &raw)?;
    ctx.cluster
        .apply(&manifests::ordinals_config_map(&ctx.plan, &ordinals))
        .await?;
    tracing::info!(leader = %leader, ordinals = %describe_ordinals(&ordinals), "ordinals pinned");
    Ok(())
}

// ---- the Pods' config -----------------------------------------------------

/// The hosts' config, from the first host that can be read.
async fn read_host_config(ctx: &Ctx) -> Result<HostConfig, StepError> {
    let mut errors = Vec::new();
    for server in &ctx.plan.servers {
        match read_host_config_of(ctx, server.id).await {
            Ok(config) => return Ok(config),
            Err(e) => errors.push(format!("server {}: {e}", server.id)),
        }
    }
    Err(StepError::Other(format!(
        "read the hosts' zoo.cfg: no host could be read ({})",
        errors.join("; ")
    )))
}

async fn read_host_config_of(ctx: &Ctx, id: ServerId) -> Result<HostConfig, StepError> {
    let session = ctx.session(id).await?;
    let result = async {
        let path = &ctx.plan.ensemble.config_path;
        let text = session
            .read_file(path)
            .await?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .ok_or_else(|| StepError::Other(format!("read {path}: no such file")))?;
        let cfg =
            ZooCfg::parse(&text).map_err(|e| StepError::Other(format!("parse {path}: {e}")))?;
        let dynamic = match cfg.dynamic_config_file() {
            Some(dynamic_path) => session
                .read_file(dynamic_path)
                .await?
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
            None => None,
        };
        Ok(HostConfig {
            zoo_cfg: text,
            dynamic,
        })
    }
    .await;
    let _ = session.close().await;
    result
}

/// The StatefulSet(s) of the target that exist now.
async fn target_statefulsets(ctx: &Ctx) -> Result<Vec<StatefulSet>, StepError> {
    let target = &ctx.plan.kubernetes.target;
    let names: Vec<String> = match target.kind {
        TargetKind::StatefulSet => vec![target.name.clone()],
        TargetKind::PerServer => ctx
            .plan
            .servers
            .iter()
            .map(|s| target.statefulset_name(s.id))
            .collect(),
    };
    let mut found = Vec::new();
    for name in names {
        if let Some(sts) = ctx.cluster.get_opt::<StatefulSet>(&name).await? {
            found.push(sts);
        }
    }
    Ok(found)
}

/// The secret paths not mounted in every one of `statefulsets` (all of
/// them when there is none yet): a path is mounted when a volume mount of
/// the ZooKeeper container is the path or one of its parent directories.
pub fn unmounted_secret_paths(
    paths: &[SecretPath],
    statefulsets: &[StatefulSet],
) -> Vec<SecretPath> {
    let mounted_in = |sts: &StatefulSet, path: &str| {
        sts.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(|p| p.containers.iter())
            .into_iter()
            .flatten()
            .flat_map(|c| c.volume_mounts.iter().flatten())
            .any(|m| {
                let dir = m.mount_path.trim_end_matches('/');
                path == dir || path.starts_with(&format!("{dir}/"))
            })
    };
    paths
        .iter()
        .filter(|p| statefulsets.is_empty() || !statefulsets.iter().all(|s| mounted_in(s, &p.path)))
        .cloned()
        .collect()
}

async fn check_pod_config(ctx: &Ctx) -> Result<Observed, StepError> {
    let name = labels::config_map_name(&ctx.plan);
    let Some(existing) = ctx.cluster.get_opt::<ConfigMap>(&name).await? else {
        return Ok(Observed::Needed);
    };
    let governing = labels::governing_service_name(&ctx.plan);
    if ctx.cluster.get_opt::<Service>(&governing).await?.is_none() {
        return Ok(Observed::Needed);
    }
    let applied = existing
        .data
        .and_then(|d| d.get(POD_ZOO_CFG_KEY).cloned())
        .unwrap_or_default();
    let host = match read_host_config(ctx).await {
        Ok(host) => host,
        Err(e) => {
            // Once every host is fenced and gone, the ConfigMap is what
            // there is; say so rather than fail a resume.
            return Ok(Observed::Done(format!(
                "ConfigMap {name} and Service {governing} exist (not compared with a host: {e})"
            )));
        }
    };
    let wanted = manifests::pod_zoo_cfg(&host, &ctx.plan)?;
    if wanted.zoo_cfg == applied {
        Ok(Observed::Done(format!(
            "ConfigMap {name} holds the Pods' zoo.cfg derived from the hosts'; Service {governing} exists"
        )))
    } else {
        Ok(Observed::Needed)
    }
}

async fn apply_pod_config(ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    let host = read_host_config(ctx).await?;
    let config = manifests::pod_zoo_cfg(&host, &ctx.plan)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let unmounted = unmounted_secret_paths(&config.secret_paths, &target_statefulsets(ctx).await?);
    if !unmounted.is_empty() {
        let listed: Vec<String> = unmounted
            .iter()
            .map(|p| format!("{} = {}", p.key, p.path))
            .collect();
        if ctx.opts.force {
            tracing::warn!(paths = %listed.join(", "), "host files named by zoo.cfg are not mounted in the Pods; going on (--force)");
        } else {
            return Err(StepError::refused(
                action,
                format!("the hosts' zoo.cfg names host files: {}", listed.join(", ")),
                "every host file the config names mounted in the Pods at the same path (e.g. from a Secret)",
                format!(
                    "Nothing was changed. Mount them in the StatefulSet `{}` (`zkmigrate manifests -f {} --step replace` shows it), or, if the Pods do not need them, run again with --force.",
                    ctx.plan.kubernetes.target.name,
                    ctx.plan_file.display()
                ),
            ));
        }
    }
    ctx.cluster
        .apply(&manifests::pod_config_map(&ctx.plan, &config.zoo_cfg))
        .await?;
    ctx.cluster
        .apply(&manifests::governing_service(&ctx.plan))
        .await?;
    Ok(())
}

// ---- disruption budget ----------------------------------------------------

async fn pdb_in_place(ctx: &Ctx) -> Result<Option<String>, StepError> {
    let name = labels::pdb_name(&ctx.plan);
    let Some(stored) = ctx.cluster.get_opt::<PodDisruptionBudget>(&name).await? else {
        return Ok(None);
    };
    let want = manifests::pdb(&ctx.plan).spec;
    let have = stored.spec;
    let same = have.as_ref().map(|s| (&s.max_unavailable, &s.selector))
        == want.as_ref().map(|s| (&s.max_unavailable, &s.selector));
    Ok(same.then(|| format!("PodDisruptionBudget {name}: maxUnavailable 1")))
}

// ---- Pods -----------------------------------------------------------------

async fn check_pod(ctx: &Ctx, action: &Action, id: ServerId) -> Result<Observed, StepError> {
    let ordinals = pod::pinned_ordinals(ctx, action).await?;
    let name = pod::pod_name(&ordinals, ctx, id)?;
    Ok(match pod::live_pod(ctx, &name).await? {
        Some(_) => Observed::Done(format!("Pod {name} exists")),
        None => Observed::Needed,
    })
}

/// How many observations the check of `replace/synced/N` takes, a poll
/// interval apart, looking for server N at the leader's zxid.
const SYNCED_CHECK_SAMPLES: u32 = 10;

/// The server is asked at its Pod's IP, serves as a voting member, and
/// either the leader counts every voter synced, or (see below) the server
/// itself is at the leader's zxid.
async fn check_synced(ctx: &Ctx, action: &Action, id: ServerId) -> Result<Observed, StepError> {
    let ordinals = pod::pinned_ordinals(ctx, action).await?;
    let name = pod::pod_name(&ordinals, ctx, id)?;
    let Some(pod) = pod::live_pod(ctx, &name).await? else {
        return Ok(Observed::Needed);
    };
    let Some(ip) = pod.status.and_then(|s| s.pod_ip) else {
        return Ok(Observed::Needed);
    };
    let key = u64::from(id.get());
    for sample in 1..=SYNCED_CHECK_SAMPLES {
        let observation = ctx.observe().await?;
        let asked_at_pod = observation
            .servers
            .iter()
            .any(|e| e.id == key && e.address.starts_with(&format!("{ip}:")));
        let voting = observation
            .observation(key)
            .is_some_and(|o| o.srvr.mode.is_voting_member());
        let Some(leader) = observation.leader() else {
            return Ok(Observed::Needed);
        };
        if !(asked_at_pod && voting) {
            return Ok(Observed::Needed);
        }
        let mode = observation
            .observation(key)
            .map(|o| o.srvr.mode.as_str().to_string())
            .unwrap_or_default();
        if observation.all_voters_synced() {
            return Ok(Observed::Done(format!(
                "server {id} serves as {mode} in Pod {name} ({ip}); leader {leader} counts every voter synced"
            )));
        }
        // Checked again on a resume after the next server's replacement
        // began (its host fenced, its Pod not yet synced), not every voter
        // can be synced, and waiting for that here would wait forever. This
        // action is about server `id`: its own sync with the leader is its
        // effect. The next disruptive action still passes the quorum-first
        // gate, which asks for every voter synced (DESIGN section 2). Under
        // load the servers' zxids are read a moment apart, so a synced
        // follower can look a few transactions behind: look again.
        if observation.zxid_lag(key) == Some(0) {
            return Ok(Observed::Done(format!(
                "server {id} serves as {mode} in Pod {name} ({ip}) with leader {leader}'s zxid; \
                 not every voter is synced now, which the next disruptive action's gate waits for"
            )));
        }
        if sample < SYNCED_CHECK_SAMPLES {
            tokio::time::sleep(ctx.plan.policy.poll_interval).await;
        }
    }
    Ok(Observed::Needed)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::StatefulSet;

    use super::*;

    fn sts_with_mounts(paths: &[&str]) -> StatefulSet {
        let mounts: Vec<serde_json::Value> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| serde_json::json!({"name": format!("v{i}"), "mountPath": p}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "zk"},
            "spec": {
                "selector": {},
                "serviceName": "zk-hs",
                "template": {"spec": {"containers": [{"name": "zookeeper", "volumeMounts": mounts}]}}
            }
        }))
        .unwrap()
    }

    fn secret(path: &str) -> SecretPath {
        SecretPath {
            key: "ssl.keyStore.location".into(),
            path: path.into(),
        }
    }

    #[test]
    fn secret_paths_are_unmounted_until_a_statefulset_mounts_them() {
        let paths = vec![secret("/etc/zk/tls/keystore.jks")];
        assert_eq!(unmounted_secret_paths(&paths, &[]), paths);
        assert_eq!(
            unmounted_secret_paths(&paths, &[sts_with_mounts(&["/data"])]),
            paths
        );
        assert!(unmounted_secret_paths(&paths, &[sts_with_mounts(&["/etc/zk/tls/"])]).is_empty());
        assert!(
            unmounted_secret_paths(&paths, &[sts_with_mounts(&["/etc/zk/tls/keystore.jks"])])
                .is_empty()
        );
        // A sibling directory with a common prefix is not a parent.
        assert_eq!(
            unmounted_secret_paths(&paths, &[sts_with_mounts(&["/etc/zk/tl"])]),
            paths
        );
        // Every StatefulSet (PerServer) must mount it.
        assert_eq!(
            unmounted_secret_paths(
                &paths,
                &[
                    sts_with_mounts(&["/etc/zk/tls"]),
                    sts_with_mounts(&["/data"])
                ]
            ),
            paths
        );
    }

    #[test]
    fn no_secret_paths_nothing_to_mount() {
        assert!(unmounted_secret_paths(&[], &[]).is_empty());
    }
}
