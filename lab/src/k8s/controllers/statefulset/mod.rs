//! The StatefulSet controller (`pkg/controller/statefulset`,
//! `stateful_set_control.go` `updateStatefulSet`): one Pod per ordinal, each
//! with a stable name, hostname and claims, created, replaced and removed in
//! order.
//!
//! One reconcile runs three passes over the set's Pods, then writes status:
//!
//! 1. *members in range*: a missing member gets its claims, then its Pod (a
//!    terminating Pod is still there: its replacement waits until the
//!    kubelet has removed the object, so one identity never runs twice); a
//!    Failed or Succeeded Pod is deleted for replacement. Under
//!    `OrderedReady` the pass stops at the first member that is missing,
//!    terminating or not Running and Ready (available, with
//!    `minReadySeconds`); under `Parallel` it goes on.
//! 2. *condemned members* (ordinals out of range), from the highest: deleted
//!    one at a time, each gone before the next (`OrderedReady`), or all at
//!    once (`Parallel`).
//! 3. *rolling update*: unless `OnDelete`, from the highest ordinal down to
//!    `partition`, the first Pod of an older revision is deleted (and comes
//!    back from pass 1 with the new template) once all above it are
//!    healthy.
//!
//! Simplified: no ControllerRevision objects (the lab does not serve them),
//! so a Pod is always created from the current template (the real
//! controller recreates members below the partition from the old one);
//! orphan Pods with a member's name and matching labels are adopted, but
//! Pods whose labels stop matching are not released.

pub mod identity;
pub mod status;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::ControllerError;
use super::runner::{Outcome, Reconciler};
use super::util::{self, controller_ref, label, uid_of};
use crate::k8s::error::ApiError;
use crate::k8s::resources;
use crate::k8s::store::{DeleteOptions, Store, WatchEvent, name_of, namespace_of};
use identity::LABEL_REVISION;

/// The field manager of the controller's writes.
pub const MANAGER: &str = "statefulset-controller";

/// Keys are (namespace, StatefulSet name).
pub struct StatefulSetController;

impl Reconciler for StatefulSetController {
    type Key = (String, String);
    const NAME: &'static str = "statefulset";

    fn keys_for_event(&self, store: &Store, event: &WatchEvent, keys: &mut Vec<Self::Key>) {
        let ns = namespace_of(&event.object).to_string();
        if event.resource == resources::statefulsets() {
            keys.push((ns, name_of(&event.object).to_string()));
        } else if event.resource == resources::pods() {
            match controller_ref(&event.object) {
                Some(r) if r["kind"] == "StatefulSet" => {
                    keys.push((ns, r["name"].as_str().unwrap_or("").to_string()));
                }
                Some(_) => {}
                // An orphan may be adopted, or block a member's name.
                None => {
                    if let Some((parent, _)) = name_of(&event.object).rsplit_once('-') {
                        keys.push((ns, parent.to_string()));
                    }
                }
            }
        } else if event.resource == resources::pvcs() {
            // A member may be waiting for a claim that was being deleted.
            let (sets, _) = store.list(resources::statefulsets(), Some(&ns));
            keys.extend(sets.iter().map(|s| (ns.clone(), name_of(s).to_string())));
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<Self::Key> {
        let (sets, _) = store.list(resources::statefulsets(), None);
        sets.iter()
            .map(|s| (namespace_of(s).to_string(), name_of(s).to_string()))
            .collect()
    }

    fn reconcile(&self, store: &Store, key: &Self::Key) -> Result<Outcome, ControllerError> {
        let (ns, name) = (key.0.as_str(), key.1.as_str());
        let set = match store.get(resources::statefulsets(), ns, name) {
            Ok(set) => set,
            // Its Pods go through the garbage collector.
            Err(e) if e.code == 404 => return Ok(Outcome::Done),
            Err(e) => return Err(ControllerError::api("get", "StatefulSet", ns, name)(e)),
        };
        if util::is_terminating(&set) {
            return Ok(Outcome::Done);
        }
        let revision = identity::revision_name(&set);
        let members = claim_pods(store, &set)?;
        let outcome = sync_members(store, &set, &members, &revision);
        update_status(store, &set)?;
        outcome
    }
}

/// The set's Pods by ordinal: those it controls, plus orphans with a
/// member's name and matching labels, which it adopts (`ClaimPods`).
/// A member's name held by a Pod of another controller maps to `None`.
fn claim_pods(store: &Store, set: &Value) -> Result<BTreeMap<i64, Option<Value>>, ControllerError> {
    let (ns, set_name, set_uid) = (namespace_of(set), name_of(set), uid_of(set));
    let (pods, _) = store.list(resources::pods(), Some(ns));
    let mut members = BTreeMap::new();
    for pod in pods {
        let Some(ordinal) = identity::ordinal_of(set_name, name_of(&pod)) else {
            continue;
        };
        if util::controlled_by(&pod, set_uid) {
            members.insert(ordinal, Some(pod));
        } else if controller_ref(&pod).is_none()
            && !util::is_terminating(&pod)
            && util::label_selector_matches(&set["spec"]["selector"], &pod["metadata"]["labels"])
        {
            let adopted = write_pod(store, &pod, |p| {
                let mut refs = p["metadata"]["ownerReferences"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                refs.push(util::owner_ref(resources::statefulsets(), set, true));
                p["metadata"]["ownerReferences"] = Value::Array(refs);
            })?;
            tracing::info!(
                namespace = ns,
                pod = name_of(&adopted),
                "adopted orphan pod"
            );
            members.insert(ordinal, Some(adopted));
        } else {
            members.insert(ordinal, None);
        }
    }
    Ok(members)
}

/// Passes 1 to 3 of the module header.
fn sync_members(
    store: &Store,
    set: &Value,
    members: &BTreeMap<i64, Option<Value>>,
    revision: &str,
) -> Result<Outcome, ControllerError> {
    let ns = namespace_of(set);
    let range = identity::ordinal_range(set);
    let ordered = set["spec"]["podManagementPolicy"].as_str() != Some("Parallel");
    let min_ready = set["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let now = SystemTime::now();
    let healthy = |pod: &Value| {
        !util::is_terminating(pod)
            && status::available_in(pod, min_ready, now) == Some(Duration::ZERO)
    };
    // The lowest unhealthy member, in range first, then condemned: the only
    // condemned Pod that may be deleted while unhealthy.
    let first_unhealthy = members
        .iter()
        .filter(|(o, _)| range.contains(o))
        .chain(members.iter().filter(|(o, _)| !range.contains(o)))
        .find_map(|(o, p)| p.as_ref().filter(|p| !healthy(p)).map(|_| *o));

    // Pass 1: members in range.
    for ordinal in range.clone() {
        let pod = match members.get(&ordinal) {
            None => {
                create_member(store, set, ordinal, revision)?;
                if ordered {
                    return Ok(Outcome::Done);
                }
                continue;
            }
            Some(None) => {
                return Err(ControllerError::Waiting(format!(
                    "pod {ns}/{} exists and is not controlled by statefulset {}",
                    identity::pod_name(set, ordinal),
                    name_of(set)
                )));
            }
            Some(Some(pod)) => pod,
        };
        if util::is_terminal(pod) && !util::is_terminating(pod) {
            tracing::info!(
                namespace = ns,
                pod = name_of(pod),
                phase = util::phase(pod),
                "deleting finished pod for replacement"
            );
            delete_pod(store, pod)?;
            if ordered {
                return Ok(Outcome::Done);
            }
            continue;
        }
        if ordered {
            if util::is_terminating(pod) {
                return Ok(Outcome::Done);
            }
            match status::available_in(pod, min_ready, now) {
                None => return Ok(Outcome::Done),
                Some(wait) if !wait.is_zero() => return Ok(Outcome::RequeueAfter(wait)),
                Some(_) => {}
            }
        }
        if !util::is_terminating(pod) {
            if !identity::identity_matches(set, pod, ordinal) {
                let pod_name = identity::pod_name(set, ordinal);
                write_pod(store, pod, |p| {
                    p["metadata"]["labels"][identity::LABEL_POD_NAME] = json!(pod_name);
                    p["metadata"]["labels"][identity::LABEL_POD_INDEX] = json!(ordinal.to_string());
                })?;
            }
            update_claim_owners(store, set, pod, ordinal, false)?;
        }
    }

    // Pass 2: condemned members, highest first.
    for (&ordinal, pod) in members.iter().rev().filter(|(o, _)| !range.contains(o)) {
        let Some(pod) = pod else { continue };
        if util::is_terminating(pod) {
            if ordered {
                return Ok(Outcome::Done);
            }
            continue;
        }
        if ordered && !healthy(pod) && first_unhealthy != Some(ordinal) {
            return Ok(Outcome::Done);
        }
        update_claim_owners(store, set, pod, ordinal, true)?;
        tracing::info!(
            namespace = ns,
            pod = name_of(pod),
            "scaling down: deleting pod"
        );
        delete_pod(store, pod)?;
        if ordered {
            return Ok(Outcome::Done);
        }
    }

    // Pass 3: rolling update, highest first, one Pod at a time.
    if set["spec"]["updateStrategy"]["type"] == "OnDelete" {
        return Ok(Outcome::Done);
    }
    let partition = set["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
        .as_i64()
        .unwrap_or(0)
        .max(0);
    for ordinal in (range.start + partition..range.end).rev() {
        let Some(Some(pod)) = members.get(&ordinal) else {
            return Ok(Outcome::Done);
        };
        if label(pod, LABEL_REVISION) != Some(revision) && !util::is_terminating(pod) {
            tracing::info!(
                namespace = ns,
                pod = name_of(pod),
                revision,
                "rolling update: deleting pod"
            );
            delete_pod(store, pod)?;
            return Ok(Outcome::Done);
        }
        if !healthy(pod) {
            return Ok(Outcome::Done);
        }
    }
    Ok(Outcome::Done)
}

/// Creates a member's claims (those missing), then its Pod
/// (`createPersistentVolumeClaims`, `CreateStatefulPod`).
fn create_member(
    store: &Store,
    set: &Value,
    ordinal: i64,
    revision: &str,
) -> Result<(), ControllerError> {
    let ns = namespace_of(set);
    for (_, mut claim) in identity::claims(set, ordinal) {
        let claim_name = name_of(&claim).to_string();
        match store.get(resources::pvcs(), ns, &claim_name) {
            Ok(existing) if util::is_terminating(&existing) => {
                return Err(ControllerError::Waiting(format!(
                    "claim {ns}/{claim_name} is being deleted"
                )));
            }
            Ok(_) => {}
            Err(e) if e.code == 404 => {
                if set["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete" {
                    claim["metadata"]["ownerReferences"] =
                        json!([util::owner_ref(resources::statefulsets(), set, false)]);
                }
                util::record_write(resources::pvcs(), None, None, &mut claim, MANAGER);
                match store.create(resources::pvcs(), ns, claim) {
                    Ok(_) => tracing::info!(namespace = ns, claim = claim_name, "created claim"),
                    Err(e) if e.code == 409 => {}
                    Err(e) => {
                        return Err(ControllerError::api(
                            "create",
                            "PersistentVolumeClaim",
                            ns,
                            &claim_name,
                        )(e));
                    }
                }
            }
            Err(e) => {
                return Err(ControllerError::api(
                    "get",
                    "PersistentVolumeClaim",
                    ns,
                    &claim_name,
                )(e));
            }
        }
    }
    let mut pod = identity::new_pod(set, ordinal, revision);
    let pod_name = name_of(&pod).to_string();
    util::record_write(resources::pods(), None, None, &mut pod, MANAGER);
    store
        .create(resources::pods(), ns, pod)
        .map_err(ControllerError::api("create", "Pod", ns, &pod_name))?;
    tracing::info!(
        namespace = ns,
        statefulset = name_of(set),
        pod = pod_name,
        "created pod"
    );
    Ok(())
}

/// Brings a member's claims' owner references in line with the retention
/// policy.
fn update_claim_owners(
    store: &Store,
    set: &Value,
    pod: &Value,
    ordinal: i64,
    condemned: bool,
) -> Result<(), ControllerError> {
    let ns = namespace_of(set);
    for (_, want) in identity::claims(set, ordinal) {
        let claim_name = name_of(&want);
        let Ok(claim) = store.get(resources::pvcs(), ns, claim_name) else {
            continue;
        };
        let refs = identity::claim_owner_refs(set, &claim, pod, condemned);
        let current = claim["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if refs == current {
            continue;
        }
        let uid = uid_of(&claim).to_string();
        store
            .write(resources::pvcs(), ns, claim_name, None, |old| {
                let old = old
                    .filter(|o| uid_of(o) == uid)
                    .ok_or_else(|| ApiError::not_found("persistentvolumeclaims", "", claim_name))?;
                let mut new = old.clone();
                if refs.is_empty() {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove("ownerReferences");
                    }
                } else {
                    new["metadata"]["ownerReferences"] = Value::Array(refs);
                }
                util::record_write(resources::pvcs(), None, Some(old), &mut new, MANAGER);
                Ok(new)
            })
            .map_err(ControllerError::api(
                "update",
                "PersistentVolumeClaim",
                ns,
                claim_name,
            ))?;
    }
    Ok(())
}

/// Read-modify-writes one Pod (of the same uid) under the store's lock.
fn write_pod(
    store: &Store,
    pod: &Value,
    change: impl FnOnce(&mut Value),
) -> Result<Value, ControllerError> {
    let (ns, name, uid) = (namespace_of(pod), name_of(pod), uid_of(pod).to_string());
    store
        .write(resources::pods(), ns, name, None, |old| {
            let old = old
                .filter(|o| uid_of(o) == uid)
                .ok_or_else(|| ApiError::not_found("pods", "", name))?;
            let mut new = old.clone();
            change(&mut new);
            util::record_write(resources::pods(), None, Some(old), &mut new, MANAGER);
            Ok(new)
        })
        .map(|(v, _)| v)
        .map_err(ControllerError::api("update", "Pod", ns, name))
}

/// Deletes a Pod with its own grace period (the kubelet finishes it);
/// gone already is done.
fn delete_pod(store: &Store, pod: &Value) -> Result<(), ControllerError> {
    let (ns, name) = (namespace_of(pod), name_of(pod));
    let opts = DeleteOptions {
        uid: Some(uid_of(pod).to_string()),
        ..Default::default()
    };
    match store.delete(resources::pods(), ns, name, &opts) {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(ControllerError::api("delete", "Pod", ns, name)(e)),
    }
}

/// Writes the status computed from the Pods as they are now.
fn update_status(store: &Store, set: &Value) -> Result<(), ControllerError> {
    let (ns, name, uid) = (namespace_of(set), name_of(set), uid_of(set).to_string());
    let (pods, _) = store.list(resources::pods(), Some(ns));
    let owned: Vec<&Value> = pods
        .iter()
        .filter(|p| {
            util::controlled_by(p, &uid) && identity::ordinal_of(name, name_of(p)).is_some()
        })
        .collect();
    let result = store.write(resources::statefulsets(), ns, name, Some("status"), |old| {
        let old = old
            .filter(|o| uid_of(o) == uid)
            .ok_or_else(|| ApiError::not_found("statefulsets", "apps", name))?;
        let mut new = old.clone();
        // From the stored set: its generation, template and
        // currentRevision are the latest.
        let revision = identity::revision_name(old);
        new["status"] = status::compute(old, &owned, &revision, SystemTime::now());
        util::record_write(
            resources::statefulsets(),
            Some("status"),
            Some(old),
            &mut new,
            MANAGER,
        );
        Ok(new)
    });
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(ControllerError::api(
            "update status of",
            "StatefulSet",
            ns,
            name,
        )(e)),
    }
}
