//! The Kubernetes side of `replace` for one server: the Service switch, the
//! Pod, and their rollback.
//!
//! # The order of the switch (no moment with traffic split)
//!
//! The host is fenced before anything here runs (`fence/N`: ports closed,
//! myid moved aside), so its endpoint is dead. Then:
//!
//! 1. `switch/N`: the Service gets the Pod selector, and zkmigrate's host
//!    slice is deleted at once. The controller's slice exists from now on
//!    but is empty (no Pod yet): the Service has no live endpoint at all,
//!    which is what it had a moment ago (the fenced host).
//! 2. `pod/N`: re-check the fence (one identity, one process), then create
//!    the Pod (scale the StatefulSet, or create the per-server one), await
//!    its IP, and await the controller's slice holding exactly that IP.
//! 3. `synced/N`: the Pod serves as a voting member and the leader counts it
//!    synced.
//!
//! So the Service never has a host endpoint and a Pod endpoint at once
//! (kube-proxy merges every slice of a Service: a live host beside a live
//! Pod would split traffic), and the Pod's endpoint is published as soon as
//! it has an IP (`publishNotReadyAddresses`), which it needs to join.
//!
//! # Rollback (DESIGN 5.7, docs/engine.md)
//!
//! In reverse: `pod/N` undo scales the Pod away and awaits it gone;
//! `switch/N` undo removes the selector, deletes the controller's slices
//! (the controller never deletes them when a selector goes, #91072) and
//! applies the host slice again; `fence/N` undo (in `host`) moves myid
//! back, enables and starts the host and awaits it synced.

use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::host;
use crate::engine::action::Action;
use crate::engine::context::{Ctx, StepError};
use crate::manifests::{self, Ordinals, labels};
use crate::plan::{ServerId, TargetKind};

/// The label selector of the EndpointSlice controller's slices of `service`.
pub fn controller_slices_selector(service: &str) -> String {
    format!(
        "{}={service},{}={}",
        labels::SLICE_SERVICE_NAME,
        labels::SLICE_MANAGED_BY,
        crate::k8s::SLICE_CONTROLLER
    )
}

/// The ordinals a Pod name needs. For a StatefulSet target they must be
/// pinned (`replace/ordinals`), or a Pod would run the wrong myid.
pub async fn pinned_ordinals(ctx: &Ctx, action: &Action) -> Result<Ordinals, StepError> {
    if ctx.plan.kubernetes.target.kind == TargetKind::StatefulSet {
        use k8s_openapi::api::core::v1::ConfigMap;
        let name = labels::ordinals_config_map_name(&ctx.plan);
        if ctx.cluster.get_opt::<ConfigMap>(&name).await?.is_none() {
            return Err(StepError::refused(
                action,
                format!("no ConfigMap {name}"),
                "the ordinal -> myid map pinned by replace/ordinals",
                format!(
                    "Run the replace step from its start: `zkmigrate step -f {} --resume`.",
                    ctx.plan_file.display()
                ),
            ));
        }
    }
    ctx.ordinals().await
}

/// The server's Pod, unless it does not exist or is terminating.
pub async fn live_pod(ctx: &Ctx, name: &str) -> Result<Option<Pod>, StepError> {
    let pod: Option<Pod> = ctx.cluster.get_opt(name).await?;
    Ok(pod.filter(|p| p.metadata.deletion_timestamp.is_none()))
}

fn pod_ip(pod: &Pod) -> Option<String> {
    pod.status.as_ref().and_then(|s| s.pod_ip.clone())
}

/// The Service's selector as stored.
async fn service_selector(
    ctx: &Ctx,
    id: ServerId,
) -> Result<Option<std::collections::BTreeMap<String, String>>, StepError> {
    let svc: Option<Service> = ctx.cluster.get_opt(&ctx.plan.service_name(id)).await?;
    Ok(svc.and_then(|s| s.spec).and_then(|s| s.selector))
}

/// Whether the Service selects the Pod and zkmigrate's host slice is gone.
pub async fn switched(
    ctx: &Ctx,
    action: &Action,
    id: ServerId,
) -> Result<Option<String>, StepError> {
    let ordinals = pinned_ordinals(ctx, action).await?;
    let want = manifests::service_selector_for_pod(&ctx.plan, id, &ordinals)?;
    let selector = service_selector(ctx, id).await?;
    let slice_name = labels::host_slice_name(&ctx.plan, id);
    let host_slice: Option<EndpointSlice> = ctx.cluster.get_opt(&slice_name).await?;
    if selector.as_ref() == Some(&want) && host_slice.is_none() {
        let pod = want.values().next().cloned().unwrap_or_default();
        return Ok(Some(format!(
            "Service {} selects Pod {pod}; no host slice {slice_name}",
            ctx.plan.service_name(id)
        )));
    }
    Ok(None)
}

/// `switch/N` (see the module header): selector, then the host slice
/// deleted. Refuses unless the host is fenced.
pub async fn switch_service_to_pod(
    ctx: &Ctx,
    action: &Action,
    id: ServerId,
) -> Result<(), StepError> {
    let fence = host::fence_state(ctx, id).await?;
    if !fence.is_fenced() {
        return Err(not_fenced(ctx, action, id, &fence));
    }
    let ordinals = pinned_ordinals(ctx, action).await?;
    let service = manifests::per_server_service_on_pod(&ctx.plan, id, &ordinals)?;
    ctx.cluster.apply(&service).await?;
    let slice_name = labels::host_slice_name(&ctx.plan, id);
    ctx.cluster.delete::<EndpointSlice>(&slice_name).await?;
    ctx.cluster
        .await_deleted::<EndpointSlice>(&slice_name, ctx.plan.policy.sync_timeout)
        .await?;
    tracing::info!(server_id = %id, service = %ctx.plan.service_name(id), "Service selects the Pod; host slice deleted");
    Ok(())
}

fn not_fenced(ctx: &Ctx, action: &Action, id: ServerId, fence: &host::FenceState) -> StepError {
    StepError::refused(
        action,
        format!("host of server {id}: {}", fence.describe()),
        "the host fenced: ZooKeeper ports closed and myid moved aside (one identity, one process)",
        format!(
            "Nothing was changed by this action. Fence the host first (replace/fence/{id}): `zkmigrate step -f {} --resume`.",
            ctx.plan_file.display()
        ),
    )
}

/// The replicas the StatefulSet has now (0 when it does not exist).
async fn statefulset_replicas(ctx: &Ctx) -> Result<Option<usize>, StepError> {
    let sts: Option<StatefulSet> = ctx
        .cluster
        .get_opt(&ctx.plan.kubernetes.target.name)
        .await?;
    Ok(sts.map(|s| {
        s.spec
            .and_then(|s| s.replicas)
            .and_then(|r| usize::try_from(r).ok())
            .unwrap_or(1)
    }))
}

/// The Pod's name.
pub fn pod_name(ordinals: &Ordinals, ctx: &Ctx, id: ServerId) -> Result<String, StepError> {
    Ok(manifests::pod_name_for(&ctx.plan, id, ordinals)?)
}

/// `pod/N`: the fence and the switch re-checked, then the Pod created.
pub async fn start_pod(ctx: &Ctx, action: &Action, id: ServerId) -> Result<(), StepError> {
    // One identity, one process: the host's ports are checked again right
    // before the Pod can start, whatever the journal says.
    let fence = host::fence_state(ctx, id).await?;
    if !fence.is_fenced() {
        return Err(not_fenced(ctx, action, id, &fence));
    }
    if switched(ctx, action, id).await?.is_none() {
        return Err(StepError::refused(
            action,
            format!(
                "Service {} does not select the Pod yet, or the host slice is still there",
                ctx.plan.service_name(id)
            ),
            "the Service switched to the Pod (replace/switch) before the Pod starts",
            format!(
                "Nothing was changed. Continue with `zkmigrate step -f {} --resume`.",
                ctx.plan_file.display()
            ),
        ));
    }
    let ordinals = pinned_ordinals(ctx, action).await?;
    match ctx.plan.kubernetes.target.kind {
        TargetKind::StatefulSet => {
            let ordinal = ordinals
                .ordinal_of(id)
                .ok_or(manifests::ManifestsError::UnknownServer { id: id.get() })?;
            let current = statefulset_replicas(ctx).await?.unwrap_or(0);
            if current > ordinal {
                // Already counts this ordinal; never scale down here.
                return Ok(());
            }
            if current < ordinal {
                // Scaling to ordinal + 1 would also create the Pods of the
                // ordinals in between, whose hosts are not fenced.
                let missing: Vec<String> = ordinals.ids()[current..ordinal]
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                return Err(StepError::refused(
                    action,
                    format!(
                        "StatefulSet {} has {current} replicas; server {id} has ordinal {ordinal}",
                        ctx.plan.kubernetes.target.name
                    ),
                    format!(
                        "servers {} (the lower ordinals) replaced first: a StatefulSet grows in ordinal order",
                        missing.join(", ")
                    ),
                    format!(
                        "Nothing was changed. Continue with `zkmigrate step -f {} --resume`, which takes the servers in ordinal order.",
                        ctx.plan_file.display()
                    ),
                ));
            }
            ctx.cluster
                .apply(&manifests::statefulset(&ctx.plan, ordinal + 1)?)
                .await?;
        }
        TargetKind::PerServer => {
            ctx.cluster
                .apply(&manifests::per_server_statefulset(&ctx.plan, id)?)
                .await?;
        }
    }
    tracing::info!(server_id = %id, "Pod requested");
    Ok(())
}

/// Awaits the Pod's IP and the controller's slice holding it; returns
/// (Pod name, IP).
pub async fn await_pod_published(
    ctx: &Ctx,
    action: &Action,
    id: ServerId,
) -> Result<(String, String), StepError> {
    let ordinals = pinned_ordinals(ctx, action).await?;
    let name = pod_name(&ordinals, ctx, id)?;
    let timeout = ctx.plan.policy.sync_timeout;
    let bar = ctx
        .progress
        .wait(&format!("Pod {name} of server {id}: an IP"));
    let pod = ctx
        .cluster
        .await_condition::<Pod>(
            &name,
            |p| p.is_some_and(|p| p.metadata.deletion_timestamp.is_none() && pod_ip(p).is_some()),
            timeout,
        )
        .await;
    let pod = match pod {
        Ok(p) => p,
        Err(e) => {
            bar.abandon("no IP");
            return Err(e.into());
        }
    };
    let ip = pod.as_ref().and_then(pod_ip).unwrap_or_default();
    bar.finish(format!("at {ip}"));
    let service = ctx.plan.service_name(id);
    let bar = ctx.progress.wait(&format!(
        "Service {service}: the controller's slice with {ip}"
    ));
    let slice = ctx.cluster.await_controller_slice(&service, timeout).await;
    let slice = match slice {
        Ok(s) => s,
        Err(e) => {
            bar.abandon("no slice");
            return Err(e.into());
        }
    };
    let addresses: Vec<String> = slice
        .endpoints
        .iter()
        .flat_map(|e| e.addresses.iter().cloned())
        .collect();
    if addresses != [ip.clone()] {
        bar.abandon(format!("slice holds {}", addresses.join(", ")));
        return Err(StepError::refused(
            action,
            format!(
                "the controller's slice of Service {service} holds {}",
                addresses.join(", ")
            ),
            format!("exactly the Pod's address {ip}"),
            format!(
                "Look at `kubectl get endpointslices -n {} -l {}={service}`, then `zkmigrate step -f {} --resume`.",
                ctx.plan.kubernetes.namespace,
                labels::SLICE_SERVICE_NAME,
                ctx.plan_file.display()
            ),
        ));
    }
    bar.finish("published");
    Ok((name, ip))
}

/// Rollback of `pod/N`: the Pod scaled away (StatefulSet: only the highest
/// ordinal can go) and awaited gone.
pub async fn stop_pod(ctx: &Ctx, action: &Action, id: ServerId) -> Result<(), StepError> {
    let ordinals = ctx.ordinals().await?;
    let name = pod_name(&ordinals, ctx, id)?;
    match ctx.plan.kubernetes.target.kind {
        TargetKind::StatefulSet => {
            let ordinal = ordinals
                .ordinal_of(id)
                .ok_or(manifests::ManifestsError::UnknownServer { id: id.get() })?;
            match statefulset_replicas(ctx).await? {
                None => {}
                Some(current) if current <= ordinal => {}
                Some(current) if current == ordinal + 1 => {
                    if ordinal == 0 {
                        ctx.cluster
                            .delete::<StatefulSet>(&ctx.plan.kubernetes.target.name)
                            .await?;
                    } else {
                        ctx.cluster
                            .apply(&manifests::statefulset(&ctx.plan, ordinal)?)
                            .await?;
                    }
                }
                Some(current) => {
                    let later: Vec<String> = ordinals.ids()[ordinal + 1..current]
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    return Err(StepError::refused(
                        action,
                        format!(
                            "StatefulSet {} runs {current} Pods; server {id} has ordinal {ordinal}",
                            ctx.plan.kubernetes.target.name
                        ),
                        format!(
                            "servers {} (higher ordinals) rolled back first",
                            later.join(", ")
                        ),
                        format!(
                            "Roll back in reverse order: `zkmigrate rollback -f {}`.",
                            ctx.plan_file.display()
                        ),
                    ));
                }
            }
        }
        TargetKind::PerServer => {
            ctx.cluster
                .delete::<StatefulSet>(&ctx.plan.kubernetes.target.statefulset_name(id))
                .await?;
        }
    }
    let bar = ctx
        .progress
        .wait(&format!("Pod {name} of server {id} gone"));
    match ctx
        .cluster
        .await_deleted::<Pod>(&name, ctx.plan.policy.sync_timeout)
        .await
    {
        Ok(()) => bar.finish("gone"),
        Err(e) => {
            bar.abandon("still there");
            return Err(e.into());
        }
    }
    Ok(())
}

/// The host's address as IPv4 (resolved when the plan names a host).
async fn host_ipv4(ctx: &Ctx, id: ServerId) -> Result<Ipv4Addr, StepError> {
    let address = &ctx.server(id).address;
    if let Ok(ip) = address.parse::<Ipv4Addr>() {
        return Ok(ip);
    }
    let resolved = tokio::net::lookup_host((address.as_str(), 0))
        .await
        .map_err(|e| StepError::Other(format!("resolve {address} (server {id}): {e}")))?;
    resolved
        .filter_map(|a| match a.ip() {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        })
        .next()
        .ok_or_else(|| {
            StepError::Other(format!(
                "resolve {address} (server {id}) to an IPv4 address"
            ))
        })
}

/// Rollback of `switch/N`: the selector removed, the controller's slices
/// deleted, the host slice applied again. Refuses while the Pod exists.
pub async fn switch_service_to_host(
    ctx: &Ctx,
    action: &Action,
    id: ServerId,
) -> Result<(), StepError> {
    let ordinals = ctx.ordinals().await?;
    let name = pod_name(&ordinals, ctx, id)?;
    let pod: Option<Pod> = ctx.cluster.get_opt(&name).await?;
    if pod.is_some() {
        return Err(StepError::refused(
            action,
            format!("Pod {name} of server {id} still exists"),
            "the Pod gone before the Service points at the host again",
            format!(
                "Roll back replace/pod/{id} first: `zkmigrate rollback -f {}`.",
                ctx.plan_file.display()
            ),
        ));
    }
    let service_name = ctx.plan.service_name(id);
    // Applying the Service without the selector removes the field
    // zkmigrate owns (server-side apply drops what the manager no longer
    // sets); a merge patch makes sure where an API server does not.
    ctx.cluster
        .apply(&manifests::per_server_service(&ctx.plan, id)?)
        .await?;
    if service_selector(ctx, id).await?.is_some() {
        let api: kube::Api<Service> =
            kube::Api::namespaced(ctx.cluster.client().clone(), ctx.cluster.namespace());
        let patch = serde_json::json!({"spec": {"selector": null}});
        api.patch(
            &service_name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .map_err(|e| {
            StepError::Other(format!(
                "remove the selector of Service {service_name}: {e}"
            ))
        })?;
    }
    let slices: Vec<EndpointSlice> = ctx
        .cluster
        .list(&controller_slices_selector(&service_name))
        .await?;
    for slice in slices {
        if let Some(slice_name) = slice.metadata.name {
            ctx.cluster.delete::<EndpointSlice>(&slice_name).await?;
        }
    }
    let address = host_ipv4(ctx, id).await?;
    ctx.cluster
        .apply(&manifests::host_slice(&ctx.plan, id, address)?)
        .await?;
    tracing::info!(server_id = %id, service = %service_name, "Service points at the host again");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controller_slices_are_selected_by_service_and_manager() {
        assert_eq!(
            controller_slices_selector("zk-1"),
            "kubernetes.io/service-name=zk-1,endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io"
        );
    }
}
