//! The names and labels every object zkmigrate creates carries, in one
//! place, so that the builders, the rollback (delete by label) and the
//! Service switch agree on them.
//!
//! Two sets of labels: the recommended `app.kubernetes.io/*` labels, which
//! select the Pods (StatefulSet, governing Service, PodDisruptionBudget),
//! and zkmigrate's own (`zkmigrate/plan`, `zkmigrate/server-id`), which name
//! what belongs to which migration and which server.

use std::collections::BTreeMap;

use crate::plan::{ServerId, ValidatedPlan};

/// `app.kubernetes.io/managed-by`: always [`MANAGER`].
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// `app.kubernetes.io/name`: always [`APP_NAME`].
pub const NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/instance`: the plan's name.
pub const INSTANCE: &str = "app.kubernetes.io/instance";
/// The plan an object belongs to (rollback deletes by it).
pub const PLAN: &str = "zkmigrate/plan";
/// The server (myid) a per-server object belongs to.
pub const SERVER_ID: &str = "zkmigrate/server-id";
/// The label linking an EndpointSlice to its Service.
pub const SLICE_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// Who manages an EndpointSlice: zkmigrate, never the controller
/// (`endpointslice-controller.k8s.io`), which would otherwise take it over.
pub const SLICE_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// The label the StatefulSet controller puts on each of its Pods; the
/// Service switch selects on it.
pub const POD_NAME: &str = "statefulset.kubernetes.io/pod-name";

/// The value of [`MANAGED_BY`] and [`SLICE_MANAGED_BY`], and the field
/// manager of server-side apply.
pub const MANAGER: &str = "zkmigrate";
/// The value of [`NAME`].
pub const APP_NAME: &str = "zookeeper";

/// The labels of every object of the plan.
pub fn common(plan: &ValidatedPlan) -> BTreeMap<String, String> {
    let mut labels = selector(plan);
    labels.insert(MANAGED_BY.into(), MANAGER.into());
    labels.insert(PLAN.into(), plan.name.clone());
    labels
}

/// The labels of a per-server object (Service, EndpointSlice, PerServer
/// StatefulSet and its Pod).
pub fn for_server(plan: &ValidatedPlan, id: ServerId) -> BTreeMap<String, String> {
    let mut labels = common(plan);
    labels.insert(SERVER_ID.into(), id.to_string());
    labels
}

/// The selector of every Pod of the plan: the StatefulSet's (with the
/// server id added for PerServer), the governing Service's and the
/// PodDisruptionBudget's.
pub fn selector(plan: &ValidatedPlan) -> BTreeMap<String, String> {
    BTreeMap::from([
        (INSTANCE.to_string(), plan.name.clone()),
        (NAME.to_string(), APP_NAME.to_string()),
    ])
}

/// The headless Service that governs the StatefulSet(s): `<target>-hs`.
pub fn governing_service_name(plan: &ValidatedPlan) -> String {
    format!("{}-hs", plan.kubernetes.target.name)
}

/// The ConfigMap holding the Pods' `zoo.cfg`: `<target>-config`.
pub fn config_map_name(plan: &ValidatedPlan) -> String {
    format!("{}-config", plan.kubernetes.target.name)
}

/// The ConfigMap mapping StatefulSet ordinals to myids: `<target>-ordinals`.
pub fn ordinals_config_map_name(plan: &ValidatedPlan) -> String {
    format!("{}-ordinals", plan.kubernetes.target.name)
}

/// The PodDisruptionBudget: `<target>-pdb`.
pub fn pdb_name(plan: &ValidatedPlan) -> String {
    format!("{}-pdb", plan.kubernetes.target.name)
}

/// zkmigrate's own EndpointSlice of server `id`: `<service>-host`.
pub fn host_slice_name(plan: &ValidatedPlan, id: ServerId) -> String {
    format!("{}-host", plan.service_name(id))
}
