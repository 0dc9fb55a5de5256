//! The preflight's cluster questions: may zkmigrate do what it will do, and
//! is any name it will create already taken by someone else.
//!
//! Permissions are asked with SelfSubjectAccessReview, the API's own answer
//! for the credentials in use (what `kubectl auth can-i` asks), rather than
//! by trying: a migration that finds a missing verb halfway through
//! `replace` has a server down. What is asked is the table of
//! `permissions` ([`super::GRANTS`]), the same one `zkmigrate rbac` prints
//! as a Role.
//!
//! A foreign object is one that exists under a name zkmigrate will create
//! but was not created by zkmigrate (no `app.kubernetes.io/managed-by:
//! zkmigrate`). Server-side apply would happily merge into it, so preflight
//! refuses instead (DESIGN section 5.1).

use std::fmt;

use futures::future::try_join_all;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::PostParams;

use super::error::K8sError;
use super::permissions::{Permission, Scope};
use super::{Cluster, FIELD_MANAGER, MANAGED_BY_LABEL, NamespacedObject, SLICE_MANAGED_BY_LABEL};

/// A kind of object zkmigrate creates under a name of its choosing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Service,
    EndpointSlice,
    Pod,
    ConfigMap,
    StatefulSet,
    PersistentVolumeClaim,
    PodDisruptionBudget,
    Lease,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// An object that holds a name zkmigrate will create, but is not
/// zkmigrate's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignObject {
    pub kind: ObjectKind,
    pub name: String,
    /// Its `app.kubernetes.io/managed-by` label, if any.
    pub managed_by: Option<String>,
}

impl fmt::Display for ForeignObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.managed_by {
            Some(manager) => write!(f, "{} {} (managed by {manager})", self.kind, self.name),
            None => write!(
                f,
                "{} {} (not labelled {MANAGED_BY_LABEL}={FIELD_MANAGER})",
                self.kind, self.name
            ),
        }
    }
}

impl Cluster {
    /// Whether the credentials in use may `verb` the `resource` (with
    /// `subresource`, `""` for none) of API `group` in the plan's namespace.
    pub async fn can_i(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        subresource: &str,
    ) -> Result<bool, K8sError> {
        self.review(verb, group, resource, subresource, None).await
    }

    /// Whether the credentials in use hold `permission`; the plan's own
    /// Namespace is asked about by name, as the Role grants it
    /// (`resourceNames`).
    pub async fn holds(&self, permission: &Permission) -> Result<bool, K8sError> {
        let name = match permission.scope {
            Scope::OwnNamespace => Some(self.namespace.as_str()),
            Scope::Namespace | Scope::ClusterDefault(_) => None,
        };
        self.review(
            permission.verb,
            permission.group,
            permission.resource,
            permission.subresource,
            name,
        )
        .await
    }

    async fn review(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        subresource: &str,
        name: Option<&str>,
    ) -> Result<bool, K8sError> {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(self.namespace.clone()),
                    verb: Some(verb.to_string()),
                    group: Some(group.to_string()),
                    resource: Some(resource.to_string()),
                    subresource: (!subresource.is_empty()).then(|| subresource.to_string()),
                    name: name.map(str::to_string),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let params = PostParams::default();
        let what = format!("{verb} {resource}");
        let answer = self
            .retrying("create", "SelfSubjectAccessReview", &what, || {
                api.create(&params, &review)
            })
            .await
            .map_err(|source| self.api_error("create", "SelfSubjectAccessReview", &what, source))?;
        let allowed = answer.status.is_some_and(|s| s.allowed);
        tracing::debug!(verb, group, resource, subresource, allowed, "access review");
        Ok(allowed)
    }

    /// The permissions of `needed` that the credentials lack, in order
    /// (usually [`super::required_permissions`] of the plan).
    pub async fn missing_permissions(
        &self,
        needed: &[Permission],
    ) -> Result<Vec<Permission>, K8sError> {
        let answers = try_join_all(needed.iter().map(|p| self.holds(p))).await?;
        Ok(needed
            .iter()
            .zip(answers)
            .filter(|(_, allowed)| !allowed)
            .map(|(p, _)| *p)
            .collect())
    }

    /// The objects among `names` that exist but are not zkmigrate's.
    pub async fn foreign_objects(
        &self,
        names: &[(ObjectKind, String)],
    ) -> Result<Vec<ForeignObject>, K8sError> {
        let mut foreign = Vec::new();
        for (kind, name) in names {
            let labels = match kind {
                ObjectKind::Service => self.labels_of::<Service>(name).await?,
                ObjectKind::EndpointSlice => self.labels_of::<EndpointSlice>(name).await?,
                ObjectKind::Pod => self.labels_of::<Pod>(name).await?,
                ObjectKind::ConfigMap => self.labels_of::<ConfigMap>(name).await?,
                ObjectKind::StatefulSet => self.labels_of::<StatefulSet>(name).await?,
                ObjectKind::PersistentVolumeClaim => {
                    self.labels_of::<PersistentVolumeClaim>(name).await?
                }
                ObjectKind::PodDisruptionBudget => {
                    self.labels_of::<PodDisruptionBudget>(name).await?
                }
                ObjectKind::Lease => self.labels_of::<Lease>(name).await?,
            };
            let Some(labels) = labels else { continue };
            let label = |key: &str| labels.get(key).cloned();
            let ours = label(MANAGED_BY_LABEL).as_deref() == Some(FIELD_MANAGER)
                || (*kind == ObjectKind::EndpointSlice
                    && label(SLICE_MANAGED_BY_LABEL).as_deref() == Some(FIELD_MANAGER));
            if !ours {
                foreign.push(ForeignObject {
                    kind: *kind,
                    name: name.clone(),
                    managed_by: label(MANAGED_BY_LABEL),
                });
            }
        }
        Ok(foreign)
    }

    /// The labels of object `name` (metadata only), `None` if it does not
    /// exist.
    async fn labels_of<K: NamespacedObject>(
        &self,
        name: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, K8sError> {
        let kind = K::kind(&());
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        let meta = self
            .retrying("get", &kind, name, || api.get_metadata_opt(name))
            .await
            .map_err(|source| self.api_error("get", &kind, name, source))?;
        Ok(meta.map(|m| m.metadata.labels.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_object_says_who_manages_it() {
        let helm = ForeignObject {
            kind: ObjectKind::Service,
            name: "zk-1".into(),
            managed_by: Some("Helm".into()),
        };
        assert_eq!(helm.to_string(), "Service zk-1 (managed by Helm)");
        let bare = ForeignObject {
            managed_by: None,
            ..helm
        };
        assert_eq!(
            bare.to_string(),
            "Service zk-1 (not labelled app.kubernetes.io/managed-by=zkmigrate)"
        );
    }
}
