//! The EndpointSlice controller: for each Service with a selector, slices
//! listing the matching Pods (`pkg/controller/endpointslice` and its
//! reconciler in `staging/src/k8s.io/endpointslice`).
//!
//! It follows the real controller where zkmigrate can tell the difference:
//!
//! - it only ever lists, updates or deletes slices labelled
//!   `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`;
//!   a hand-made slice (zkmigrate's, managed-by `zkmigrate`) is invisible to
//!   it, so when a Service gains a selector the hand-made slice stays and
//!   kube-proxy merges both (Kubernetes #91072: zkmigrate deletes its own);
//! - a Service without a selector (or of type ExternalName) is skipped
//!   entirely, *leaving* the slices it had (`syncService` returns early;
//!   #91072, #118376, #123471: nothing cleans them up when a selector is
//!   removed); a deleted Service's slices go through the garbage collector,
//!   via their owner reference;
//! - each Pod with an IP that is not Succeeded/Failed is an endpoint
//!   (`ShouldPodBeInEndpoints(pod, true)`), with `serving` = the Pod's Ready
//!   condition, `terminating` = a deletionTimestamp, and `ready` = serving
//!   and not terminating, or true for every Pod when
//!   `publishNotReadyAddresses` (`podToEndpoint`);
//! - `hostname` when the Pod's `spec.hostname` is set and its
//!   `spec.subdomain` is the Service's name (`ShouldSetHostname`);
//! - ports resolved per Pod (`findPort`): Pods that resolve a named
//!   targetPort differently land in different slices; at most 100 endpoints
//!   per slice; an empty placeholder slice when there is no endpoint.
//!
//! Not modelled: Nodes and zones (the lab has one node and no Node
//! objects), topology hints, IPv6 (the lab is IPv4 only).
mod desired;

use serde_json::{Map, Value, json};

use super::ControllerError;
use super::runner::{Outcome, Reconciler};
use super::util::{self, label, owner_ref, uid_of};
use crate::k8s::resources;
use crate::k8s::store::{DeleteOptions, Store, WatchEvent, name_of, namespace_of};
use desired::{owned_by, selector, slice_labels};

pub use desired::desired_slices;

/// The controller's name, in the managed-by label and as field manager.
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// `discovery.LabelServiceName`.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// `discovery.LabelManagedBy`.
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";

/// Keys are (namespace, Service name).
pub struct EndpointSliceController;

impl Reconciler for EndpointSliceController {
    type Key = (String, String);
    const NAME: &'static str = "endpointslice";

    fn keys_for_event(&self, store: &Store, event: &WatchEvent, keys: &mut Vec<Self::Key>) {
        let ns = namespace_of(&event.object);
        if event.resource == resources::services() {
            keys.push((ns.to_string(), name_of(&event.object).to_string()));
        } else if event.resource == resources::pods() {
            // The event carries only the Pod as it is now; a label change
            // may have taken it out of a Service, so every selecting
            // Service of the namespace looks again.
            let (services, _) = store.list(resources::services(), Some(ns));
            keys.extend(
                services
                    .iter()
                    .filter(|s| selector(s).is_some())
                    .map(|s| (ns.to_string(), name_of(s).to_string())),
            );
        } else if event.resource == resources::endpointslices()
            && let Some(svc) = label(&event.object, LABEL_SERVICE_NAME)
        {
            keys.push((ns.to_string(), svc.to_string()));
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<Self::Key> {
        let (services, _) = store.list(resources::services(), None);
        services
            .iter()
            .map(|s| (namespace_of(s).to_string(), name_of(s).to_string()))
            .collect()
    }

    fn reconcile(&self, store: &Store, key: &Self::Key) -> Result<Outcome, ControllerError> {
        let (ns, name) = (key.0.as_str(), key.1.as_str());
        let svc = match store.get(resources::services(), ns, name) {
            Ok(svc) => svc,
            // The garbage collector removes its slices (owner reference).
            Err(e) if e.code == 404 => return Ok(Outcome::Done),
            Err(e) => return Err(ControllerError::api("get", "Service", ns, name)(e)),
        };
        let Some(sel) = selector(&svc) else {
            return Ok(Outcome::Done);
        };
        let (pods, _) = store.list(resources::pods(), Some(ns));
        let pods: Vec<&Value> = pods
            .iter()
            .filter(|p| util::map_selector_matches(sel, &p["metadata"]["labels"]))
            .collect();
        let (slices, _) = store.list(resources::endpointslices(), Some(ns));
        let mut owned = Vec::new();
        let mut stale = Vec::new();
        for s in slices.iter().filter(|s| {
            label(s, LABEL_SERVICE_NAME) == Some(name)
                && label(s, LABEL_MANAGED_BY) == Some(MANAGED_BY)
                && !util::is_terminating(s)
        }) {
            if owned_by(s, uid_of(&svc)) && s["addressType"] == "IPv4" {
                owned.push(s);
            } else {
                // Ours by label but of an older Service of the same name,
                // or of an address type the Service no longer has.
                stale.push(s);
            }
        }
        owned.sort_by(|a, b| name_of(a).cmp(name_of(b)));
        let labels = slice_labels(&svc);
        let mut used = vec![false; owned.len()];
        for (ports, endpoints) in desired_slices(&svc, &pods) {
            let reuse = owned
                .iter()
                .enumerate()
                .position(|(i, s)| !used[i] && s["ports"] == ports);
            match reuse {
                Some(i) => {
                    used[i] = true;
                    update_slice(store, owned[i], &labels, ports, endpoints)?;
                }
                None => create_slice(store, &svc, &labels, ports, endpoints)?,
            }
        }
        let unused = owned
            .iter()
            .zip(&used)
            .filter(|(_, used)| !**used)
            .map(|(s, _)| *s);
        for s in stale.into_iter().chain(unused) {
            delete_slice(store, s)?;
        }
        Ok(Outcome::Done)
    }
}

fn create_slice(
    store: &Store,
    svc: &Value,
    labels: &Map<String, Value>,
    ports: Value,
    endpoints: Vec<Value>,
) -> Result<(), ControllerError> {
    let ns = namespace_of(svc);
    let mut slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": format!("{}-", name_of(svc)),
            "namespace": ns,
            "labels": labels,
            "ownerReferences": [owner_ref(resources::services(), svc, true)],
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    });
    util::record_write(
        resources::endpointslices(),
        None,
        None,
        &mut slice,
        MANAGED_BY,
    );
    let created = store
        .create(resources::endpointslices(), ns, slice)
        .map_err(ControllerError::api(
            "create",
            "EndpointSlice",
            ns,
            name_of(svc),
        ))?;
    tracing::info!(
        namespace = ns,
        service = name_of(svc),
        slice = name_of(&created),
        "created endpointslice"
    );
    Ok(())
}

fn update_slice(
    store: &Store,
    slice: &Value,
    labels: &Map<String, Value>,
    ports: Value,
    endpoints: Vec<Value>,
) -> Result<(), ControllerError> {
    let (ns, name) = (namespace_of(slice), name_of(slice));
    let uid = uid_of(slice).to_string();
    let mut want = slice.clone();
    want["metadata"]["labels"] = Value::Object(labels.clone());
    want["addressType"] = json!("IPv4");
    want["endpoints"] = Value::Array(endpoints);
    want["ports"] = ports;
    if &want == slice {
        return Ok(());
    }
    store
        .write(resources::endpointslices(), ns, name, None, |old| {
            let Some(old) = old.filter(|o| uid_of(o) == uid) else {
                return Err(crate::k8s::error::ApiError::not_found(
                    "endpointslices",
                    "discovery.k8s.io",
                    name,
                ));
            };
            let mut new = old.clone();
            for field in ["addressType", "endpoints", "ports"] {
                new[field] = want[field].take();
            }
            new["metadata"]["labels"] = want["metadata"]["labels"].take();
            util::record_write(
                resources::endpointslices(),
                None,
                Some(old),
                &mut new,
                MANAGED_BY,
            );
            Ok(new)
        })
        .map_err(ControllerError::api("update", "EndpointSlice", ns, name))?;
    Ok(())
}

fn delete_slice(store: &Store, slice: &Value) -> Result<(), ControllerError> {
    let (ns, name) = (namespace_of(slice), name_of(slice));
    let opts = DeleteOptions {
        uid: Some(uid_of(slice).to_string()),
        ..Default::default()
    };
    match store.delete(resources::endpointslices(), ns, name, &opts) {
        Ok(_) => {
            tracing::info!(namespace = ns, slice = name, "deleted endpointslice");
            Ok(())
        }
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(ControllerError::api("delete", "EndpointSlice", ns, name)(e)),
    }
}
