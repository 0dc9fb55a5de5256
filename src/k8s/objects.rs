//! Writing and reading objects: server-side apply, get, list, delete.
//!
//! Apply is the only write besides delete, because it is idempotent by
//! construction (DESIGN section 2, "check, then act"): sending the same
//! object twice changes nothing the second time, not even the
//! resourceVersion. It is never forced by default: a 409 conflict means
//! someone else (an operator's `kubectl edit`, a GitOps controller) owns a
//! field zkmigrate wants to set, and taking it over silently would start a
//! tug of war. The conflict comes back as [`K8sError::Conflict`] naming the
//! manager and the fields; a caller that decides to take them calls
//! [`Cluster::apply_forced`].
//!
//! Absence is an answer, not an error: `get_opt` returns `None` and
//! `delete` reports whether the object was there, treating 404 as done
//! (kubectl drain's rule), so rollback and resume can run twice.

use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};

use super::error::{K8sError, field_conflicts};
use super::{Cluster, FIELD_MANAGER, NamespacedObject};

impl Cluster {
    fn api<K: NamespacedObject>(&self) -> Api<K> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Server-side applies `obj` (field manager `zkmigrate`, not forced)
    /// and returns the object as stored. `obj` is the desired state as
    /// built, without `managedFields` or a `resourceVersion`.
    ///
    /// A field another manager owns fails with [`K8sError::Conflict`].
    pub async fn apply<K: NamespacedObject>(&self, obj: &K) -> Result<K, K8sError> {
        self.apply_with(obj, false).await
    }

    /// Server-side applies `obj` taking over every field it sets from any
    /// other manager. Only for a caller that has decided to (after a
    /// conflict was shown to the operator); [`Cluster::apply`] is the
    /// default.
    pub async fn apply_forced<K: NamespacedObject>(&self, obj: &K) -> Result<K, K8sError> {
        self.apply_with(obj, true).await
    }

    async fn apply_with<K: NamespacedObject>(&self, obj: &K, force: bool) -> Result<K, K8sError> {
        let kind = K::kind(&()).to_string();
        let Some(name) = obj.meta().name.clone() else {
            return Err(K8sError::NoName {
                kind,
                namespace: self.namespace.clone(),
            });
        };
        let api = self.api::<K>();
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = force;
        let patch = Patch::Apply(obj);
        let result = self
            .retrying("apply", &kind, &name, || api.patch(&name, &params, &patch))
            .await;
        match result {
            Ok(stored) => {
                tracing::debug!(
                    kind,
                    name,
                    namespace = %self.namespace,
                    force,
                    resource_version = stored.meta().resource_version.as_deref().unwrap_or(""),
                    "applied"
                );
                Ok(stored)
            }
            Err(source) => match field_conflicts(&source) {
                Some(conflicts) => Err(K8sError::Conflict {
                    kind,
                    name,
                    namespace: self.namespace.clone(),
                    conflicts,
                }),
                None => Err(self.api_error("apply", &kind, &name, source)),
            },
        }
    }

    /// The object `name`, or `None` when it does not exist.
    pub async fn get_opt<K: NamespacedObject>(&self, name: &str) -> Result<Option<K>, K8sError> {
        let kind = K::kind(&());
        let api = self.api::<K>();
        self.retrying("get", &kind, name, || api.get_opt(name))
            .await
            .map_err(|source| self.api_error("get", &kind, name, source))
    }

    /// Every object of kind `K` whose labels match `label_selector`
    /// (`key=value,...`), e.g. what zkmigrate created for a plan.
    pub async fn list<K: NamespacedObject>(
        &self,
        label_selector: &str,
    ) -> Result<Vec<K>, K8sError> {
        let kind = K::kind(&());
        let api = self.api::<K>();
        let params = ListParams::default().labels(label_selector);
        let list = self
            .retrying("list", &kind, label_selector, || api.list(&params))
            .await
            .map_err(|source| self.api_error("list", &kind, label_selector, source))?;
        Ok(list.items)
    }

    /// Deletes `name`; `Ok(true)` when this call found it, `Ok(false)`
    /// when it was already gone (404 is done, not an error). The object may
    /// still be terminating when this returns: [`Cluster::await_deleted`]
    /// waits until it is gone.
    pub async fn delete<K: NamespacedObject>(&self, name: &str) -> Result<bool, K8sError> {
        let kind = K::kind(&());
        let api = self.api::<K>();
        let params = DeleteParams::default();
        match self
            .retrying("delete", &kind, name, || api.delete(name, &params))
            .await
        {
            Ok(_) => {
                tracing::debug!(kind = %kind, name, namespace = %self.namespace, "deleted");
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(source) => Err(self.api_error("delete", &kind, name, source)),
        }
    }
}
