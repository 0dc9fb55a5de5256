//! The Kubernetes objects of the migration, built from the plan: the
//! per-server Services and their hand-made EndpointSlices (DESIGN 5.2), and
//! the Pods' side of the replace step (5.5): the Pods' `zoo.cfg` and the
//! ordinals in ConfigMaps, the StatefulSet(s), their governing Service, the
//! PodDisruptionBudget, and the selector a Service switches to.
//!
//! Pure: no I/O. The engine applies these objects (server-side apply, field
//! manager `zkmigrate`), `zkmigrate manifests` prints them, and `plan` and
//! the runbook show them, so every one of them renders the same objects
//! (DESIGN 2, "plan and act agree"). What needs the world (the hosts'
//! `zoo.cfg`, an address resolved to IPv4, the ordinals fixed when the
//! replace step starts) comes in as arguments, already observed.
//!
//! Objects are k8s-openapi types: the field names and nesting are the API's
//! own, checked by the compiler, and they serialize in a stable order
//! (`apiVersion`, `kind`, `metadata`, `spec`, fields alphabetical, label
//! maps sorted), which the snapshot tests rely on.
//!
//! # Layout
//!
//! - `labels`: the names and labels every object carries.
//! - `services`: per-server Service, host EndpointSlice, governing Service,
//!   and the Pod selector of the Service switch.
//! - `podconfig`: the hosts' `zoo.cfg` made fit for a Pod, and the
//!   ConfigMaps that carry it and the ordinals.
//! - `workload`: the StatefulSet(s) and the PodDisruptionBudget.
//! - `select`: which objects each step has ([`manifests_for`]).
//! - `rbac`: the ServiceAccount, Role and RoleBinding zkmigrate itself
//!   runs as (`zkmigrate rbac`), from the permission table of `k8s`.
//! - `render`: multi-document YAML.

pub mod labels;
mod podconfig;
mod rbac;
mod render;
mod select;
mod services;
mod workload;

#[cfg(test)]
mod tests;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::Serialize;

use crate::plan::{ServerId, ValidatedPlan};
use crate::zoocfg::ZooCfgError;

pub use podconfig::{
    HostConfig, POD_DATA_DIR, POD_DATA_LOG_DIR, PodConfig, SecretPath, ZOO_CFG_KEY,
    ordinals_config_map, pod_config_map, pod_zoo_cfg, synthesized_host_config,
};
pub use rbac::{Rbac, RbacObject, not_granted, rbac, rbac_name, rule_comments};
pub use render::{render_documents, render_yaml};
pub use select::{ManifestInputs, Manifests, manifests_for};
pub use services::{
    governing_service, host_slice, per_server_service, per_server_service_on_pod, pod_name_for,
    service_selector_for_pod,
};
pub use workload::{pdb, per_server_statefulset, statefulset};

/// Why objects could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ManifestsError {
    /// The plan has no such server.
    #[error("failed to build the objects of server {id}: the plan has no server {id}")]
    UnknownServer {
        /// The id asked for.
        id: u8,
    },
    /// An EndpointSlice needs an IPv4 address and none was given.
    #[error(
        "failed to build the EndpointSlice of server {id}: its address {address} is not an IPv4 address; resolve it to one first (EndpointSlices of zkmigrate are IPv4)"
    )]
    NoIpv4Address {
        /// The server.
        id: ServerId,
        /// The plan's address.
        address: String,
    },
    /// The ordinal map is not a permutation of the plan's ids.
    #[error("failed to use the ordinals {ordinals:?}: {reason}")]
    InvalidOrdinals {
        /// Ordinal to myid, as given.
        ordinals: Vec<u8>,
        /// What is wrong.
        reason: String,
    },
    /// A replica count outside 0..=servers.
    #[error(
        "failed to build the StatefulSet: {replicas} replicas, but the plan has {servers} servers"
    )]
    InvalidReplicas {
        /// Asked for.
        replicas: usize,
        /// Servers in the plan.
        servers: usize,
    },
    /// The hosts' config could not be read or rewritten.
    #[error("failed to derive the Pods' zoo.cfg from the hosts' config: {0}")]
    HostConfig(#[from] ZooCfgError),
    /// The hosts' zoo.cfg names a dynamic file whose text was not given.
    #[error(
        "failed to derive the Pods' zoo.cfg: the hosts' zoo.cfg sets dynamicConfigFile={path}, and that file's text was not given"
    )]
    MissingDynamicConfig {
        /// The `dynamicConfigFile` value.
        path: String,
    },
    /// The server lines do not name the plan's servers.
    #[error(
        "failed to derive the Pods' zoo.cfg: its server lines name ids {in_config:?}, the plan names {in_plan:?}"
    )]
    ServerMismatch {
        /// Ids of the config's server lines.
        in_config: Vec<u32>,
        /// Ids of the plan.
        in_plan: Vec<u8>,
    },
    /// `--server` given with a step other than `replace`.
    #[error("failed to select the objects: --server N is only meaningful with --step replace")]
    ServerWithoutReplace,
    /// The YAML serializer failed.
    #[error("failed to render the objects as YAML: {0}")]
    Render(String),
}

impl ManifestsError {
    /// Whether the request itself is at fault (an id the plan does not
    /// have, `--server` without `--step replace`): the CLI's exit code 2.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ManifestsError::UnknownServer { .. } | ManifestsError::ServerWithoutReplace
        )
    }
}

/// One object zkmigrate creates, of the kinds it creates.
// A few dozen objects, built once per command: boxing would cost more
// reading than the bytes it saves.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Object {
    /// A per-server Service or the governing headless Service.
    Service(Service),
    /// zkmigrate's own slice pointing at a host.
    EndpointSlice(EndpointSlice),
    /// The Pods' zoo.cfg, or the ordinal map.
    ConfigMap(ConfigMap),
    /// The Pods.
    StatefulSet(StatefulSet),
    /// The disruption budget of the Pods.
    PodDisruptionBudget(PodDisruptionBudget),
}

impl Object {
    /// The object's kind, as the API spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Service(_) => "Service",
            Object::EndpointSlice(_) => "EndpointSlice",
            Object::ConfigMap(_) => "ConfigMap",
            Object::StatefulSet(_) => "StatefulSet",
            Object::PodDisruptionBudget(_) => "PodDisruptionBudget",
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        let meta = match self {
            Object::Service(o) => &o.metadata,
            Object::EndpointSlice(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::StatefulSet(o) => &o.metadata,
            Object::PodDisruptionBudget(o) => &o.metadata,
        };
        meta.name.as_deref().unwrap_or_default()
    }
}

/// Which StatefulSet ordinal runs which myid (StatefulSet target): index is
/// the ordinal, value the server. Fixed when the replace step starts so
/// that the then-current leader gets the last ordinal and is replaced last
/// (a StatefulSet scales up in ordinal order). For a PerServer target the
/// same list is the order servers are replaced in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordinals(Vec<ServerId>);

impl Ordinals {
    /// Checks that `ordinal_to_myid` names every server of the plan once.
    pub fn new(plan: &ValidatedPlan, ordinal_to_myid: &[u8]) -> Result<Ordinals, ManifestsError> {
        let invalid = |reason: String| ManifestsError::InvalidOrdinals {
            ordinals: ordinal_to_myid.to_vec(),
            reason,
        };
        let mut ids = Vec::with_capacity(ordinal_to_myid.len());
        for &raw in ordinal_to_myid {
            let id = plan
                .servers
                .iter()
                .map(|s| s.id)
                .find(|id| id.get() == raw)
                .ok_or_else(|| invalid(format!("the plan has no server {raw}")))?;
            if ids.contains(&id) {
                return Err(invalid(format!("server {raw} appears twice")));
            }
            ids.push(id);
        }
        if ids.len() != plan.servers.len() {
            return Err(invalid(format!(
                "{} servers mapped, the plan has {}",
                ids.len(),
                plan.servers.len()
            )));
        }
        Ok(Ordinals(ids))
    }

    /// The ordinals in id order (ordinal 0 is the lowest id): what is
    /// rendered when the leader is not known, before the replace step.
    pub fn by_id(plan: &ValidatedPlan) -> Ordinals {
        Ordinals(plan.servers.iter().map(|s| s.id).collect())
    }

    /// The ordinal of server `id`.
    pub fn ordinal_of(&self, id: ServerId) -> Option<usize> {
        self.0.iter().position(|&x| x == id)
    }

    /// The servers by ordinal: the order they are replaced in.
    pub fn ids(&self) -> &[ServerId] {
        &self.0
    }
}
