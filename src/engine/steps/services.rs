//! Step `services` (DESIGN 5.2): per server, a selector-less ClusterIP
//! Service, zkmigrate's own EndpointSlice pointing it at the host, and a
//! proof that the route works (`conf` through the ClusterIP names the
//! server).
//!
//! Check, then act: a Service or slice that already is what would be
//! applied is `Done` and not sent again, so a second run leaves every
//! resourceVersion as it was. A Service that already selects a Pod is past
//! the replace step's switch: both actions are `Done` and touch nothing,
//! since re-applying the Service would drop its selector and a host slice
//! would split traffic between host and Pod (DESIGN 9).
//!
//! Undo (rollback, DESIGN 5.7) deletes what zkmigrate created, and only
//! that: an object without zkmigrate's labels for this plan is left alone.

mod manual;
pub use manual::{intro, manual};

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::engine::action::Action;
use crate::engine::context::{Ctx, Observed, StepError};
use crate::manifests::{self, labels};
use crate::observe::ServerProbe;
use crate::plan::{ServerId, ValidatedPlan};

/// How long the route may take to work after the slice is applied: the
/// proxy programs its rules within about a second; this leaves room for a
/// slow one.
const ROUTE_DEADLINE: Duration = Duration::from_secs(30);
/// One `conf` exchange through the ClusterIP.
const ROUTE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn check(ctx: &Ctx, action: &Action) -> Result<Observed, StepError> {
    match action {
        Action::ApplyService { server } => check_service(ctx, *server).await,
        Action::ApplyHostSlice { server } => check_slice(ctx, *server).await,
        Action::VerifyRoute { server } => match route_once(ctx, *server).await {
            Ok(seen) => Ok(Observed::Done(seen)),
            Err(_) => Ok(Observed::Needed),
        },
        other => Err(not_mine(other)),
    }
}

pub async fn apply(ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    match action {
        Action::ApplyService { server } => apply_service(ctx, action, *server).await,
        Action::ApplyHostSlice { server } => apply_slice(ctx, action, *server).await,
        Action::VerifyRoute { server } => {
            let seen = await_route(ctx, action, *server).await?;
            tracing::info!(server_id = server.get(), "{seen}");
            Ok(())
        }
        other => Err(not_mine(other)),
    }
}

pub async fn verify(ctx: &Ctx, action: &Action) -> Result<String, StepError> {
    match action {
        Action::ApplyService { server } => match check_service(ctx, *server).await? {
            Observed::Done(seen) => Ok(seen),
            Observed::Needed => Err(StepError::Other(format!(
                "verify {}: the Service is not as applied",
                action.id()
            ))),
        },
        Action::ApplyHostSlice { server } => match check_slice(ctx, *server).await? {
            Observed::Done(seen) => Ok(seen),
            Observed::Needed => Err(StepError::Other(format!(
                "verify {}: the EndpointSlice is not as applied",
                action.id()
            ))),
        },
        Action::VerifyRoute { server } => await_route(ctx, action, *server).await,
        other => Err(not_mine(other)),
    }
}

pub async fn undo(ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    match action {
        Action::ApplyService { server } => {
            let name = ctx.plan.service_name(*server);
            let svc: Option<Service> = ctx.cluster.get_opt(&name).await?;
            if svc.is_some_and(|s| is_ours(&ctx.plan, s.metadata.labels.as_ref())) {
                ctx.cluster.delete::<Service>(&name).await?;
                tracing::info!(server_id = server.get(), service = %name, "Service deleted");
            }
            Ok(())
        }
        Action::ApplyHostSlice { server } => {
            let name = labels::host_slice_name(&ctx.plan, *server);
            let slice: Option<EndpointSlice> = ctx.cluster.get_opt(&name).await?;
            if slice.is_some_and(|s| is_ours(&ctx.plan, s.metadata.labels.as_ref())) {
                ctx.cluster.delete::<EndpointSlice>(&name).await?;
                tracing::info!(server_id = server.get(), slice = %name, "EndpointSlice deleted");
            }
            Ok(())
        }
        Action::VerifyRoute { .. } => Ok(()),
        other => Err(not_mine(other)),
    }
}

fn not_mine(action: &Action) -> StepError {
    StepError::Other(format!(
        "run {}: not an action of step services",
        action.id()
    ))
}

/// Whether labels mark an object as zkmigrate's, for this plan.
fn is_ours(plan: &ValidatedPlan, l: Option<&std::collections::BTreeMap<String, String>>) -> bool {
    l.is_some_and(|l| {
        l.get(labels::MANAGED_BY).map(String::as_str) == Some(labels::MANAGER)
            && l.get(labels::PLAN) == Some(&plan.name)
    })
}

/// Whether every label of `want` is on `have`.
fn has_labels(
    have: Option<&std::collections::BTreeMap<String, String>>,
    want: Option<&std::collections::BTreeMap<String, String>>,
) -> bool {
    let (Some(have), Some(want)) = (have, want) else {
        return want.is_none_or(|w| w.is_empty());
    };
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

/// Whether the live Service selects a Pod (the replace step switched it).
fn selects_a_pod(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_some_and(|s| !s.is_empty())
}

/// Whether the live Service is what [`manifests::per_server_service`]
/// builds: ClusterIP, the same ports, no selector, not-ready addresses
/// published, zkmigrate's labels (pure).
pub fn service_matches(live: &Service, want: &Service) -> bool {
    let (Some(l), Some(w)) = (&live.spec, &want.spec) else {
        return false;
    };
    let ports = |s: &k8s_openapi::api::core::v1::ServiceSpec| {
        let mut p: Vec<(Option<String>, i32, String, Option<String>)> = s
            .ports
            .iter()
            .flatten()
            .map(|p| {
                (
                    p.name.clone(),
                    p.port,
                    p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    p.target_port.as_ref().map(|t| match t {
                        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => {
                            i.to_string()
                        }
                        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => {
                            s.clone()
                        }
                    }),
                )
            })
            .collect();
        p.sort();
        p
    };
    l.type_.as_deref().unwrap_or("ClusterIP") == w.type_.as_deref().unwrap_or("ClusterIP")
        && ports(l) == ports(w)
        && l.selector.as_ref().is_none_or(|s| s.is_empty())
        && l.publish_not_ready_addresses == w.publish_not_ready_addresses
        && has_labels(live.metadata.labels.as_ref(), want.metadata.labels.as_ref())
}

/// Whether the live slice is what [`manifests::host_slice`] builds: the
/// same single address, ports, address type and labels (pure).
pub fn slice_matches(live: &EndpointSlice, want: &EndpointSlice) -> bool {
    let addresses = |s: &EndpointSlice| -> Vec<String> {
        let mut a: Vec<String> = s
            .endpoints
            .iter()
            .flat_map(|e| e.addresses.clone())
            .collect();
        a.sort();
        a
    };
    let ports = |s: &EndpointSlice| {
        let mut p: Vec<(Option<String>, Option<i32>)> = s
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone(), p.port))
            .collect();
        p.sort();
        p
    };
    let ready = |s: &EndpointSlice| {
        s.endpoints
            .iter()
            .all(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
    };
    live.address_type == want.address_type
        && addresses(live) == addresses(want)
        && ports(live) == ports(want)
        && ready(live)
        && has_labels(live.metadata.labels.as_ref(), want.metadata.labels.as_ref())
}

/// The host address of server `id` as IPv4: the plan's address, or the
/// first IPv4 address its name resolves to.
pub async fn host_ipv4(plan: &ValidatedPlan, id: ServerId) -> Result<Ipv4Addr, StepError> {
    let server = plan
        .server(id)
        .ok_or_else(|| StepError::Other(format!("find server {id} in the plan")))?;
    if let Ok(ip) = server.address.parse::<Ipv4Addr>() {
        return Ok(ip);
    }
    let resolved = tokio::net::lookup_host((server.address.as_str(), 0))
        .await
        .map_err(|e| StepError::Other(format!("resolve {} (server {id}): {e}", server.address)))?;
    resolved
        .filter_map(|a| match a.ip() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .next()
        .ok_or_else(|| {
            StepError::Other(format!(
                "resolve {} (server {id}) to an IPv4 address: it has none",
                server.address
            ))
        })
}

async fn check_service(ctx: &Ctx, id: ServerId) -> Result<Observed, StepError> {
    let want = manifests::per_server_service(&ctx.plan, id)?;
    let name = ctx.plan.service_name(id);
    let Some(live) = ctx.cluster.get_opt::<Service>(&name).await? else {
        return Ok(Observed::Needed);
    };
    let ip = live
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.clone())
        .unwrap_or_default();
    if selects_a_pod(&live) && is_ours(&ctx.plan, live.metadata.labels.as_ref()) {
        return Ok(Observed::Done(format!(
            "Service {name} (ClusterIP {ip}) already selects its Pod: past the replace step, left as it is"
        )));
    }
    Ok(if service_matches(&live, &want) {
        Observed::Done(format!("Service {name} has ClusterIP {ip}"))
    } else {
        Observed::Needed
    })
}

async fn apply_service(ctx: &Ctx, action: &Action, id: ServerId) -> Result<(), StepError> {
    let name = ctx.plan.service_name(id);
    if let Some(live) = ctx.cluster.get_opt::<Service>(&name).await?
        && !is_ours(&ctx.plan, live.metadata.labels.as_ref())
    {
        return Err(StepError::refused(
            action,
            format!(
                "a Service {name} exists that zkmigrate did not create for plan {}",
                ctx.plan.name
            ),
            format!("no Service {name}, or zkmigrate's"),
            "remove it, or change kubernetes.serviceName in the plan",
        ));
    }
    let svc = ctx
        .cluster
        .apply(&manifests::per_server_service(&ctx.plan, id)?)
        .await?;
    let ip = svc
        .spec
        .and_then(|s| s.cluster_ip)
        .unwrap_or_else(|| "-".into());
    tracing::info!(server_id = id.get(), service = %name, cluster_ip = %ip, "Service applied");
    Ok(())
}

async fn check_slice(ctx: &Ctx, id: ServerId) -> Result<Observed, StepError> {
    let service = ctx.plan.service_name(id);
    if let Some(svc) = ctx.cluster.get_opt::<Service>(&service).await?
        && selects_a_pod(&svc)
        && is_ours(&ctx.plan, svc.metadata.labels.as_ref())
    {
        return Ok(Observed::Done(format!(
            "Service {service} selects its Pod: no host slice wanted (past the replace step)"
        )));
    }
    let address = host_ipv4(&ctx.plan, id).await?;
    let want = manifests::host_slice(&ctx.plan, id, address)?;
    let name = labels::host_slice_name(&ctx.plan, id);
    let Some(live) = ctx.cluster.get_opt::<EndpointSlice>(&name).await? else {
        return Ok(Observed::Needed);
    };
    Ok(if slice_matches(&live, &want) {
        Observed::Done(format!(
            "EndpointSlice {name} points {service} at {address}"
        ))
    } else {
        Observed::Needed
    })
}

async fn apply_slice(ctx: &Ctx, action: &Action, id: ServerId) -> Result<(), StepError> {
    let name = labels::host_slice_name(&ctx.plan, id);
    if let Some(live) = ctx.cluster.get_opt::<EndpointSlice>(&name).await?
        && !is_ours(&ctx.plan, live.metadata.labels.as_ref())
    {
        return Err(StepError::refused(
            action,
            format!(
                "an EndpointSlice {name} exists that zkmigrate did not create for plan {}",
                ctx.plan.name
            ),
            format!("no EndpointSlice {name}, or zkmigrate's"),
            "remove it, or change kubernetes.serviceName in the plan",
        ));
    }
    let address = host_ipv4(&ctx.plan, id).await?;
    ctx.cluster
        .apply(&manifests::host_slice(&ctx.plan, id, address)?)
        .await?;
    tracing::info!(server_id = id.get(), slice = %name, %address, "host EndpointSlice applied");
    Ok(())
}

/// The Service's ClusterIP and client port, `ip:port`.
async fn cluster_endpoint(ctx: &Ctx, id: ServerId) -> Result<String, StepError> {
    let name = ctx.plan.service_name(id);
    let ip = ctx
        .cluster
        .get_opt::<Service>(&name)
        .await?
        .and_then(|s| s.spec)
        .and_then(|s| s.cluster_ip)
        .filter(|ip| !ip.is_empty() && ip != "None")
        .ok_or_else(|| StepError::Other(format!("find the ClusterIP of Service {name}")))?;
    Ok(format!("{ip}:{}", ctx.plan.ensemble.client_port))
}

/// One `conf` through the ClusterIP: what it shows, or why not.
async fn route_once(ctx: &Ctx, id: ServerId) -> Result<String, String> {
    let endpoint = cluster_endpoint(ctx, id).await.map_err(|e| e.to_string())?;
    let probe = ServerProbe::new(endpoint.clone(), ROUTE_PROBE_TIMEOUT);
    match probe.conf().await {
        Ok((conf, _)) if conf.server_id == Some(u64::from(id.get())) => Ok(format!(
            "`conf` through {} ({endpoint}) reports serverId={id}",
            ctx.plan.service_name(id)
        )),
        Ok((conf, _)) => Err(format!(
            "`conf` through {endpoint} reports serverId={}",
            conf.server_id.map_or("none".into(), |s| s.to_string())
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Waits (bounded) until `conf` through the ClusterIP names server `id`.
async fn await_route(ctx: &Ctx, action: &Action, id: ServerId) -> Result<String, StepError> {
    let wait = ctx
        .progress
        .wait(&format!("the route to server {id} through its ClusterIP"));
    let deadline = Instant::now() + ROUTE_DEADLINE;
    loop {
        match route_once(ctx, id).await {
            Ok(seen) => {
                wait.finish(seen.clone());
                return Ok(seen);
            }
            Err(why) if Instant::now() >= deadline => {
                wait.abandon(why.clone());
                return Err(StepError::refused(
                    action,
                    format!("after {}s: {why}", ROUTE_DEADLINE.as_secs()),
                    format!(
                        "`conf` through the ClusterIP of {} reporting serverId={id}",
                        ctx.plan.service_name(id)
                    ),
                    format!(
                        "check that kube-proxy runs where zkmigrate runs and that the EndpointSlice {} points at server {id}'s host; then `zkmigrate step -f {} --resume`",
                        labels::host_slice_name(&ctx.plan, id),
                        ctx.plan_file.display()
                    ),
                ));
            }
            Err(why) => {
                wait.set_message(why);
                tokio::time::sleep(ctx.plan.policy.poll_interval).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> ValidatedPlan {
        crate::plan::testing::three_servers("StatefulSet")
    }

    fn id(n: u8) -> ServerId {
        ServerId::try_from(n).unwrap()
    }

    #[test]
    fn a_service_as_the_api_returns_it_matches_what_is_applied() {
        let p = plan();
        let want = manifests::per_server_service(&p, id(1)).unwrap();
        let mut live = want.clone();
        // What the API server adds.
        let spec = live.spec.as_mut().unwrap();
        spec.cluster_ip = Some("10.96.0.12".into());
        spec.session_affinity = Some("None".into());
        live.metadata.resource_version = Some("42".into());
        assert!(service_matches(&live, &want));

        let mut selected = live.clone();
        selected.spec.as_mut().unwrap().selector =
            Some([("a".to_string(), "b".to_string())].into());
        assert!(!service_matches(&selected, &want));
        let mut other_port = live.clone();
        other_port.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 2182;
        assert!(!service_matches(&other_port, &want));
        let mut unlabelled = live;
        unlabelled.metadata.labels = None;
        assert!(!service_matches(&unlabelled, &want));
    }

    #[test]
    fn a_slice_at_another_address_does_not_match() {
        let p = plan();
        let want = manifests::host_slice(&p, id(2), "10.0.0.12".parse().unwrap()).unwrap();
        assert!(slice_matches(&want.clone(), &want));
        let moved = manifests::host_slice(&p, id(2), "10.0.0.99".parse().unwrap()).unwrap();
        assert!(!slice_matches(&moved, &want));
    }

    #[test]
    fn only_this_plans_labelled_objects_are_ours() {
        let p = plan();
        let svc = manifests::per_server_service(&p, id(1)).unwrap();
        assert!(is_ours(&p, svc.metadata.labels.as_ref()));
        let mut other = svc.metadata.labels.clone().unwrap();
        other.insert(labels::PLAN.into(), "another".into());
        assert!(!is_ours(&p, Some(&other)));
        assert!(!is_ours(&p, None));
    }
}
