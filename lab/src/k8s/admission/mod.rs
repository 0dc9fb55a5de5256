//! Admission for the lab's API server: defaulting, validation as the real
//! API does it, and ClusterIP allocation, run by [`Store::write`] on every
//! create and update, under the store's lock, after the store stamped the
//! metadata and before it stores the object.
//!
//! Each kind goes through the stages of the real registry
//! (`k8s.io/apiserver/pkg/registry/rest/create.go`, `update.go`):
//!
//! 1. decode: the JSON must fit the kind's type (k8s-openapi 1.33), or the
//!    request is a 400 as the real decoder makes it;
//! 2. default (`defaults`): the `SetDefaults_*` functions and the create
//!    strategies' initial status;
//! 3. validate (`ValidateXxx`, `ValidateXxxUpdate`): every failure becomes a
//!    [`Cause`](crate::k8s::error::Cause) with the real field path and
//!    message, all of them in one 422;
//! 4. allocate (Services): a ClusterIP from the service CIDR, or the
//!    requested one when it is in range and free.
//!
//! Kinds the lab does not validate pass through untouched. Everything here is
//! a pure function of the object, the old object and the store's view, and
//! costs a few decodes of one object (the store lock is held meanwhile).
//!
//! # Layout
//!
//! - `field`: field errors rendered as apimachinery renders them.
//! - `names`: DNS-1123/1035 names, qualified names, label values, port names.
//! - `meta`: `metadata` and label selectors.
//! - `quantity`: resource quantities.
//! - `defaults`: the defaulters.
//! - `clusterip`: the service CIDR and its allocator.
//! - `service` (+ `serviceips`), `endpointslice`, `pod` (+ `podspec`,
//!   `container`), `statefulset`, `others` (Namespace, ConfigMap, PVC, PDB,
//!   Lease, Event): one kind's admission each.
//!
//! [`Store::write`]: crate::k8s::store::Store::write

mod clusterip;
mod container;
mod defaults;
mod endpointslice;
mod field;
mod meta;
mod names;
mod others;
mod pod;
mod podspec;
mod quantity;
mod service;
mod serviceips;
mod statefulset;

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use clusterip::{CidrError, ServiceCidr};
pub use names::{
    NameRule, is_config_map_key, is_dns1035_label, is_dns1123_label, is_dns1123_subdomain,
    is_label_value, is_qualified_name, is_valid_port_name,
};

use super::error::ApiError;
use super::resources::Resource;
use super::store::{Admission, Op, StoreView};
use field::FieldErrors;

/// The lab's admission chain for every served kind.
#[derive(Debug, Clone)]
pub struct LabAdmission {
    service_cidr: ServiceCidr,
}

impl LabAdmission {
    /// Admission allocating ClusterIPs from `service_cidr` (the lab uses
    /// `10.96.0.0/16`).
    pub fn new(service_cidr: &str) -> Result<LabAdmission, CidrError> {
        Ok(LabAdmission {
            service_cidr: ServiceCidr::parse(service_cidr)?,
        })
    }

    /// The CIDR ClusterIPs come from.
    pub fn service_cidr(&self) -> ServiceCidr {
        self.service_cidr
    }
}

impl Admission for LabAdmission {
    fn admit(
        &self,
        resource: &'static Resource,
        op: Op,
        new: &mut Value,
        old: Option<&Value>,
        view: &StoreView<'_>,
    ) -> Result<(), ApiError> {
        let old = match op {
            Op::Create => None,
            Op::Update => old,
        };
        let result = match (resource.group, resource.kind) {
            ("", "Service") => service::admit(&self.service_cidr, resource, new, old, view),
            ("", "Pod") => pod::admit(resource, new, old),
            ("", "Namespace") => others::namespace(resource, new, old),
            ("", "ConfigMap") => others::configmap(resource, new, old),
            ("", "PersistentVolumeClaim") => others::pvc(resource, new, old),
            ("", "Event") => others::event(resource, new, old),
            ("discovery.k8s.io", "EndpointSlice") => {
                endpointslice::admit(&self.service_cidr, resource, new, old)
            }
            ("apps", "StatefulSet") => statefulset::admit(resource, new, old),
            ("policy", "PodDisruptionBudget") => others::pdb(resource, new, old),
            ("coordination.k8s.io", "Lease") => others::lease(resource, new, old),
            _ => Ok(()),
        };
        if let Err(e) = &result {
            tracing::debug!(
                kind = resource.kind,
                name = new["metadata"]["name"].as_str().unwrap_or(""),
                code = e.code,
                error = %e.message,
                "admission refused a write"
            );
        }
        result
    }
}

/// Decodes `v` as the kind's type; a mismatch is the real decoder's 400.
fn decode<T: DeserializeOwned>(resource: &Resource, v: &Value) -> Result<T, ApiError> {
    serde_json::from_value(v.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}",
            kind = resource.kind,
            version = resource.version
        ))
    })
}

/// Ok when nothing was found, else the one 422 listing every cause.
fn verdict(resource: &Resource, obj: &Value, errs: FieldErrors) -> Result<(), ApiError> {
    if errs.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        resource.kind,
        resource.group,
        obj["metadata"]["name"].as_str().unwrap_or(""),
        errs.into_causes(),
    ))
}

/// A quantity that does not parse is a decoding error in the real API.
fn bad_quantity(resource: &Resource, why: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{kind} in version \"{version}\" cannot be handled as a {kind}: {why}",
        kind = resource.kind,
        version = resource.version
    ))
}
