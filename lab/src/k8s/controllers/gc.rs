//! The garbage collector (`pkg/controller/garbagecollector`, background
//! propagation): an object whose every owner reference names an owner that
//! no longer exists (no object of that kind and name, or one with another
//! uid) is deleted; one with some owners left loses only the dangling
//! references (`attemptToDeleteItem`). Deleting a StatefulSet so deletes its
//! Pods (gracefully: the kubelet finishes them), a Service its
//! EndpointSlices, and a Pod the claims a `whenScaled: Delete` retention
//! policy handed to it. An owner of a kind the lab does not serve cannot be
//! checked and counts as present.
//!
//! The lab's store has no finalizers, so foreground and orphan propagation
//! are not modelled.

use serde_json::Value;

use super::ControllerError;
use super::runner::{Outcome, Reconciler};
use super::util::{self, uid_of};
use crate::k8s::error::ApiError;
use crate::k8s::resources::{self, RESOURCES, Resource};
use crate::k8s::store::{DeleteOptions, EventType, Store, WatchEvent, name_of, namespace_of};

/// The field manager of the collector's writes.
pub const MANAGER: &str = "generic-garbage-collector";

/// Keys are (index in [`RESOURCES`], namespace, name).
pub struct GarbageCollector;

fn resource_index(resource: &Resource) -> Option<usize> {
    RESOURCES.iter().position(|r| r == resource)
}

fn owner_refs(obj: &Value) -> &[Value] {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .map_or(&[], Vec::as_slice)
}

/// Every stored object with owner references, as keys.
fn dependents(store: &Store, owner_uid: Option<&str>) -> Vec<(usize, String, String)> {
    let mut keys = Vec::new();
    for (i, r) in RESOURCES.iter().enumerate() {
        let (objects, _) = store.list(r, None);
        keys.extend(
            objects
                .iter()
                .filter(|o| {
                    let refs = owner_refs(o);
                    !refs.is_empty()
                        && owner_uid
                            .is_none_or(|uid| refs.iter().any(|r| r["uid"].as_str() == Some(uid)))
                })
                .map(|o| (i, namespace_of(o).to_string(), name_of(o).to_string())),
        );
    }
    keys
}

/// Whether the owner a reference names exists (with that uid); an owner
/// of a kind the lab does not serve is taken to exist.
fn owner_exists(store: &Store, namespace: &str, r: &Value) -> bool {
    let api_version = r["apiVersion"].as_str().unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let Some(resource) = resources::by_kind(group, r["kind"].as_str().unwrap_or("")) else {
        return true;
    };
    let ns = if resource.namespaced { namespace } else { "" };
    match store.get(resource, ns, r["name"].as_str().unwrap_or("")) {
        Ok(owner) => uid_of(&owner) == r["uid"].as_str().unwrap_or(""),
        Err(e) => e.code != 404,
    }
}

impl Reconciler for GarbageCollector {
    type Key = (usize, String, String);
    const NAME: &'static str = "garbage-collector";

    fn keys_for_event(&self, store: &Store, event: &WatchEvent, keys: &mut Vec<Self::Key>) {
        if event.kind == EventType::Deleted {
            keys.extend(dependents(store, Some(uid_of(&event.object))));
        } else if !owner_refs(&event.object).is_empty()
            && let Some(i) = resource_index(event.resource)
        {
            keys.push((
                i,
                namespace_of(&event.object).to_string(),
                name_of(&event.object).to_string(),
            ));
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<Self::Key> {
        dependents(store, None)
    }

    fn reconcile(&self, store: &Store, key: &Self::Key) -> Result<Outcome, ControllerError> {
        let Some(resource) = RESOURCES.get(key.0) else {
            return Ok(Outcome::Done);
        };
        let (ns, name) = (key.1.as_str(), key.2.as_str());
        let Ok(obj) = store.get(resource, ns, name) else {
            return Ok(Outcome::Done);
        };
        let refs = owner_refs(&obj);
        if refs.is_empty() || util::is_terminating(&obj) {
            return Ok(Outcome::Done);
        }
        let (solid, dangling): (Vec<&Value>, Vec<&Value>) =
            refs.iter().partition(|r| owner_exists(store, ns, r));
        if dangling.is_empty() {
            return Ok(Outcome::Done);
        }
        let uid = uid_of(&obj).to_string();
        if solid.is_empty() {
            let opts = DeleteOptions {
                uid: Some(uid),
                ..Default::default()
            };
            return match store.delete(resource, ns, name, &opts) {
                Ok(_) => {
                    tracing::info!(
                        kind = resource.kind,
                        namespace = ns,
                        name,
                        "deleted: its owners are gone"
                    );
                    Ok(Outcome::Done)
                }
                Err(e) if e.code == 404 || e.code == 409 => Ok(Outcome::Done),
                Err(e) => Err(ControllerError::api("delete", resource.kind, ns, name)(e)),
            };
        }
        let keep: Vec<Value> = solid.into_iter().cloned().collect();
        store
            .write(resource, ns, name, None, |old| {
                let old = old
                    .filter(|o| uid_of(o) == uid)
                    .ok_or_else(|| ApiError::not_found(resource.plural, resource.group, name))?;
                let mut new = old.clone();
                new["metadata"]["ownerReferences"] = Value::Array(keep);
                util::record_write(resource, None, Some(old), &mut new, MANAGER);
                Ok(new)
            })
            .map_err(ControllerError::api(
                "remove dangling owner references of",
                resource.kind,
                ns,
                name,
            ))?;
        Ok(Outcome::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::store::AcceptAll;
    use serde_json::json;
    use std::sync::Arc;

    fn reconcile_all(store: &Store) {
        for k in GarbageCollector.all_keys(store) {
            GarbageCollector.reconcile(store, &k).unwrap();
        }
    }

    #[test]
    fn orphans_are_deleted_and_dangling_references_dropped() {
        let s = Store::new(Arc::new(AcceptAll));
        let cm =
            |name: &str, refs: Value| json!({"metadata": {"name": name, "ownerReferences": refs}});
        let owner = s
            .create(resources::configmaps(), "default", cm("owner", json!([])))
            .unwrap();
        let to_owner = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid_of(&owner)});
        let gone = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "gone", "uid": "x"});
        let stale_uid =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "older"});
        let unserved =
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "y"});
        s.create(
            resources::configmaps(),
            "default",
            cm("kept", json!([to_owner])),
        )
        .unwrap();
        s.create(
            resources::configmaps(),
            "default",
            cm("orphan", json!([gone, stale_uid])),
        )
        .unwrap();
        s.create(
            resources::configmaps(),
            "default",
            cm("mixed", json!([to_owner, gone])),
        )
        .unwrap();
        s.create(
            resources::configmaps(),
            "default",
            cm("foreign", json!([unserved])),
        )
        .unwrap();
        reconcile_all(&s);
        let get = |n: &str| s.get(resources::configmaps(), "default", n);
        assert!(get("kept").is_ok());
        assert_eq!(get("orphan").unwrap_err().code, 404);
        assert_eq!(
            get("mixed").unwrap()["metadata"]["ownerReferences"],
            json!([to_owner])
        );
        assert!(
            get("foreign").is_ok(),
            "an owner of an unserved kind counts as present"
        );
        s.delete(
            resources::configmaps(),
            "default",
            "owner",
            &DeleteOptions::default(),
        )
        .unwrap();
        reconcile_all(&s);
        assert_eq!(get("kept").unwrap_err().code, 404);
        assert_eq!(get("mixed").unwrap_err().code, 404);
    }
}
