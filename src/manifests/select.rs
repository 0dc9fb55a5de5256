//! Which objects each step has: what `zkmigrate manifests` prints, for
//! review or GitOps, and what the engine applies.
//!
//! - `services`: every per-server Service and its host EndpointSlice.
//! - `replace`: the governing Service, the zoo.cfg ConfigMap, the ordinals
//!   ConfigMap (StatefulSet target), the StatefulSet(s) at the end of the
//!   step, the PodDisruptionBudget. With a server: the whole picture right
//!   after that server's switch: Services of the servers replaced so far
//!   select their Pods and have no host slice, the others still point at
//!   their hosts, and the StatefulSet counts the replaced ones.
//! - `finalize`: the end state: every Service selects its Pod, no host
//!   slice, every Pod.
//! - `preflight`, `clients`, `peers`: no objects.
//! - no step: the objects of `services`, then those of `replace`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::podconfig::{HostConfig, pod_config_map, pod_zoo_cfg, synthesized_host_config};
use super::services::{
    governing_service, host_slice, per_server_service, per_server_service_on_pod,
};
use super::workload::{pdb, per_server_statefulset, statefulset};
use super::{ManifestsError, Object, Ordinals, ordinals_config_map};
use crate::plan::{ServerId, TargetKind, ValidatedPlan};
use crate::steps::StepName;

/// What the objects depend on beyond the plan, observed by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestInputs {
    /// Each server's host address as IPv4 (the plan's, resolved if it is a
    /// name); needed where host slices are built.
    pub host_addresses: BTreeMap<ServerId, Ipv4Addr>,
    /// The hosts' config; `None` builds the Pods' config from a stand-in
    /// synthesized from the plan, and says so.
    pub host_config: Option<HostConfig>,
    /// Ordinal to myid, as fixed when the replace step started; `None`
    /// uses id order, and says so.
    pub ordinals: Option<Vec<u8>>,
}

/// The objects, in the order they are applied, and what a reader of them
/// must know (rendered as YAML comments).
#[derive(Debug, Clone, PartialEq)]
pub struct Manifests {
    /// Notes about how the objects were built.
    pub notes: Vec<String>,
    /// The objects.
    pub objects: Vec<Object>,
}

/// The objects of `step` (all steps when `None`); with `server`, only for
/// the replace step, the state right after that server's switch.
pub fn manifests_for(
    plan: &ValidatedPlan,
    step: Option<StepName>,
    server: Option<ServerId>,
    inputs: &ManifestInputs,
) -> Result<Manifests, ManifestsError> {
    if server.is_some() && step != Some(StepName::Replace) {
        return Err(ManifestsError::ServerWithoutReplace);
    }
    let mut out = Manifests {
        notes: Vec::new(),
        objects: Vec::new(),
    };
    let ordinals = match &inputs.ordinals {
        Some(raw) => Ordinals::new(plan, raw)?,
        None => Ordinals::by_id(plan),
    };
    let all = plan.servers.len();
    match step {
        None => {
            services_step(plan, inputs, &mut out)?;
            replace_step(plan, inputs, &ordinals, all, &mut out)?;
        }
        Some(StepName::Services) => services_step(plan, inputs, &mut out)?,
        Some(StepName::Replace) => {
            let replaced = match server {
                Some(id) => {
                    let ordinal = ordinals
                        .ordinal_of(id)
                        .ok_or(ManifestsError::UnknownServer { id: id.get() })?;
                    switched_services(plan, inputs, &ordinals, ordinal + 1, &mut out)?;
                    ordinal + 1
                }
                None => all,
            };
            replace_step(plan, inputs, &ordinals, replaced, &mut out)?;
        }
        Some(StepName::Finalize) => {
            switched_services(plan, inputs, &ordinals, all, &mut out)?;
            replace_step(plan, inputs, &ordinals, all, &mut out)?;
        }
        Some(other @ (StepName::Preflight | StepName::Clients | StepName::Peers)) => {
            out.notes
                .push(format!("the {other} step creates no Kubernetes objects"));
        }
    }
    Ok(out)
}

fn address(
    inputs: &ManifestInputs,
    plan: &ValidatedPlan,
    id: ServerId,
) -> Result<Ipv4Addr, ManifestsError> {
    if let Some(address) = inputs.host_addresses.get(&id) {
        return Ok(*address);
    }
    let server = plan
        .server(id)
        .ok_or(ManifestsError::UnknownServer { id: id.get() })?;
    server
        .address
        .parse()
        .map_err(|_| ManifestsError::NoIpv4Address {
            id,
            address: server.address.clone(),
        })
}

fn services_step(
    plan: &ValidatedPlan,
    inputs: &ManifestInputs,
    out: &mut Manifests,
) -> Result<(), ManifestsError> {
    for server in &plan.servers {
        out.objects
            .push(Object::Service(per_server_service(plan, server.id)?));
        let address = address(inputs, plan, server.id)?;
        out.objects
            .push(Object::EndpointSlice(host_slice(plan, server.id, address)?));
    }
    Ok(())
}

/// Every per-server Service once the first `replaced` servers (by ordinal)
/// have been switched to their Pods; the others keep their host slice.
fn switched_services(
    plan: &ValidatedPlan,
    inputs: &ManifestInputs,
    ordinals: &Ordinals,
    replaced: usize,
    out: &mut Manifests,
) -> Result<(), ManifestsError> {
    for server in &plan.servers {
        let on_pod = ordinals
            .ordinal_of(server.id)
            .is_some_and(|ordinal| ordinal < replaced);
        if on_pod {
            out.objects.push(Object::Service(per_server_service_on_pod(
                plan, server.id, ordinals,
            )?));
        } else {
            out.objects
                .push(Object::Service(per_server_service(plan, server.id)?));
            let address = address(inputs, plan, server.id)?;
            out.objects
                .push(Object::EndpointSlice(host_slice(plan, server.id, address)?));
        }
    }
    Ok(())
}

fn replace_step(
    plan: &ValidatedPlan,
    inputs: &ManifestInputs,
    ordinals: &Ordinals,
    replaced: usize,
    out: &mut Manifests,
) -> Result<(), ManifestsError> {
    let host = match &inputs.host_config {
        Some(host) => host.clone(),
        None => {
            out.notes.push(
                "the Pods' zoo.cfg is synthesized from the plan (this command reads no host): \
                 tickTime, initLimit, syncLimit and every other setting of the hosts' zoo.cfg \
                 are unknown here; `zkmigrate step` derives it from the hosts' own file"
                    .to_string(),
            );
            synthesized_host_config(plan)
        }
    };
    let config = pod_zoo_cfg(&host, plan)?;
    for secret in &config.secret_paths {
        out.notes.push(format!(
            "{} = {} is a file on the hosts: mount it into the Pods (e.g. from a Secret) at the same path",
            secret.key, secret.path
        ));
    }
    out.notes.extend(config.warnings.iter().cloned());
    if inputs.ordinals.is_none() {
        out.notes.push(
            "servers are replaced in id order here; the replace step fixes the order when it \
             starts (followers first, the then-current leader last)"
                .to_string(),
        );
    }
    out.objects.push(Object::Service(governing_service(plan)));
    out.objects
        .push(Object::ConfigMap(pod_config_map(plan, &config.zoo_cfg)));
    match plan.kubernetes.target.kind {
        TargetKind::StatefulSet => {
            out.objects
                .push(Object::ConfigMap(ordinals_config_map(plan, ordinals)));
            out.objects
                .push(Object::StatefulSet(statefulset(plan, replaced)?));
        }
        TargetKind::PerServer => {
            for &id in ordinals.ids().iter().take(replaced) {
                out.objects
                    .push(Object::StatefulSet(per_server_statefulset(plan, id)?));
            }
        }
    }
    out.objects.push(Object::PodDisruptionBudget(pdb(plan)));
    Ok(())
}
