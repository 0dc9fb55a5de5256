//! The Services of the migration and the EndpointSlice that points a
//! per-server Service at its host (DESIGN 5.2), the headless Service that
//! governs the StatefulSet(s), and the selector a per-server Service gets
//! when its server moves into a Pod (5.5).
//!
//! A per-server Service has no selector until the switch, so the
//! EndpointSlice controller leaves it alone and zkmigrate's slice is its
//! only one. `publishNotReadyAddresses` is set on every Service: a Pod
//! becomes Ready only after it has joined the quorum through these very
//! Services (DESIGN 9).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels;
use super::{ManifestsError, Ordinals};
use crate::plan::{ServerId, TargetKind, ValidatedPlan};

/// The three ports of a ZooKeeper server, by the names the Services, the
/// slices and the containers use.
pub(super) fn named_ports(plan: &ValidatedPlan) -> [(&'static str, u16); 3] {
    let e = &plan.ensemble;
    [
        ("client", e.client_port),
        ("quorum", e.quorum_port),
        ("election", e.election_port),
    ]
}

fn service_ports(plan: &ValidatedPlan) -> Vec<ServicePort> {
    named_ports(plan)
        .into_iter()
        .map(|(name, port)| ServicePort {
            name: Some(name.into()),
            port: i32::from(port),
            protocol: Some("TCP".into()),
            target_port: Some(IntOrString::Int(i32::from(port))),
            ..ServicePort::default()
        })
        .collect()
}

fn check_server(plan: &ValidatedPlan, id: ServerId) -> Result<(), ManifestsError> {
    match plan.server(id) {
        Some(_) => Ok(()),
        None => Err(ManifestsError::UnknownServer { id: id.get() }),
    }
}

/// Server `id`'s Service, as the services step creates it: ClusterIP, no
/// selector, ports `client`, `quorum`, `election`.
pub fn per_server_service(plan: &ValidatedPlan, id: ServerId) -> Result<Service, ManifestsError> {
    check_server(plan, id)?;
    Ok(Service {
        metadata: ObjectMeta {
            name: Some(plan.service_name(id)),
            namespace: Some(plan.kubernetes.namespace.clone()),
            labels: Some(labels::for_server(plan, id)),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            ports: Some(service_ports(plan)),
            publish_not_ready_addresses: Some(true),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

/// Server `id`'s Service after the switch of the replace step: the same
/// Service, selecting the Pod that runs `id`.
pub fn per_server_service_on_pod(
    plan: &ValidatedPlan,
    id: ServerId,
    ordinals: &Ordinals,
) -> Result<Service, ManifestsError> {
    let mut service = per_server_service(plan, id)?;
    if let Some(spec) = service.spec.as_mut() {
        spec.selector = Some(service_selector_for_pod(plan, id, ordinals)?);
    }
    Ok(service)
}

/// zkmigrate's own EndpointSlice for server `id`'s Service: one endpoint,
/// the host's address, always ready. `address` is the plan's address,
/// resolved to IPv4 by the caller if the plan holds a name.
pub fn host_slice(
    plan: &ValidatedPlan,
    id: ServerId,
    address: Ipv4Addr,
) -> Result<EndpointSlice, ManifestsError> {
    check_server(plan, id)?;
    let service = plan.service_name(id);
    let mut slice_labels = labels::for_server(plan, id);
    slice_labels.insert(labels::SLICE_SERVICE_NAME.into(), service);
    slice_labels.insert(labels::SLICE_MANAGED_BY.into(), labels::MANAGER.into());
    Ok(EndpointSlice {
        metadata: ObjectMeta {
            name: Some(labels::host_slice_name(plan, id)),
            namespace: Some(plan.kubernetes.namespace.clone()),
            labels: Some(slice_labels),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".into(),
        endpoints: vec![Endpoint {
            addresses: vec![address.to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(true),
                serving: Some(true),
                terminating: Some(false),
            }),
            ..Endpoint::default()
        }],
        ports: Some(
            named_ports(plan)
                .into_iter()
                .map(|(name, port)| EndpointPort {
                    name: Some(name.into()),
                    port: Some(i32::from(port)),
                    protocol: Some("TCP".into()),
                    ..EndpointPort::default()
                })
                .collect(),
        ),
    })
}

/// The headless Service that governs the StatefulSet(s) (`serviceName`),
/// giving each Pod a stable DNS name. Clients and peers do not use it:
/// they use the per-server Services.
pub fn governing_service(plan: &ValidatedPlan) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(labels::governing_service_name(plan)),
            namespace: Some(plan.kubernetes.namespace.clone()),
            labels: Some(labels::common(plan)),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            ports: Some(service_ports(plan)),
            publish_not_ready_addresses: Some(true),
            selector: Some(labels::selector(plan)),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The name of the Pod that runs server `id`: `<name>-<ordinal>` for a
/// StatefulSet target, `<name>-<id>-0` for PerServer.
pub fn pod_name_for(
    plan: &ValidatedPlan,
    id: ServerId,
    ordinals: &Ordinals,
) -> Result<String, ManifestsError> {
    check_server(plan, id)?;
    let target = &plan.kubernetes.target;
    match target.kind {
        TargetKind::StatefulSet => {
            let ordinal = ordinals
                .ordinal_of(id)
                .ok_or(ManifestsError::UnknownServer { id: id.get() })?;
            Ok(format!("{}-{ordinal}", target.name))
        }
        TargetKind::PerServer => Ok(format!("{}-0", target.statefulset_name(id))),
    }
}

/// The selector server `id`'s Service switches to: the StatefulSet
/// controller's pod-name label of the Pod that runs `id` (unique in the
/// namespace, so no other label is needed).
pub fn service_selector_for_pod(
    plan: &ValidatedPlan,
    id: ServerId,
    ordinals: &Ordinals,
) -> Result<BTreeMap<String, String>, ManifestsError> {
    Ok(BTreeMap::from([(
        labels::POD_NAME.to_string(),
        pod_name_for(plan, id, ordinals)?,
    )]))
}
