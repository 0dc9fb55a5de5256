//! The lab API server's storage: every object as JSON, one global
//! resourceVersion counter, and a bounded history of changes for watches.
//!
//! It plays etcd plus the generic registry of the real API server
//! (`k8s.io/apiserver/pkg/registry/generic/registry/store.go`): it stamps
//! `uid`, `creationTimestamp`, `resourceVersion` and `generation`, refuses a
//! stale `resourceVersion` with 409, keeps `status` apart from the rest for
//! kinds with a status subresource, runs admission (defaulting, validation,
//! ClusterIP allocation) on every write, and gives Pods graceful deletion
//! (`deletionTimestamp` first; the kubelet removes the object once the
//! container is gone), so a replacement Pod of the same name never starts
//! while the old process lives.
//!
//! Every write goes through [`Store::write`], one read-modify-write under
//! the lock; create, update, patch and apply are built on it by the HTTP
//! layer and by the in-process controllers alike, so both see the same rules.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::error::ApiError;
use super::resources::{self, Resource};

/// How many past events a watch may resume from.
const HISTORY: usize = 20_000;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    /// The watch wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    pub kind: EventType,
    pub resource: &'static Resource,
    /// The object after the change (before it, for a deletion, with the
    /// deletion's resourceVersion).
    pub object: Value,
    pub rv: u64,
}

/// Create or update, as admission sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
}

/// Defaulting and validation run on every write, with a read-only view of
/// the store (for allocation and cross-object checks).
pub trait Admission: Send + Sync {
    fn admit(
        &self,
        resource: &'static Resource,
        op: Op,
        new: &mut Value,
        old: Option<&Value>,
        view: &StoreView<'_>,
    ) -> Result<(), ApiError>;
}

/// Admission that accepts everything (for tests of the store itself).
pub struct AcceptAll;

impl Admission for AcceptAll {
    fn admit(
        &self,
        _: &'static Resource,
        _: Op,
        _: &mut Value,
        _: Option<&Value>,
        _: &StoreView<'_>,
    ) -> Result<(), ApiError> {
        Ok(())
    }
}

type Key = (&'static str, &'static str, String, String); // group, plural, namespace, name

struct State {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<WatchEvent>,
}

/// A read-only view of the store during admission.
pub struct StoreView<'a> {
    state: &'a State,
}

impl StoreView<'_> {
    /// Objects of `resource` (in `namespace`, or all).
    pub fn list(&self, resource: &Resource, namespace: Option<&str>) -> Vec<&Value> {
        list_in(self.state, resource, namespace)
    }

    /// One object.
    pub fn get(&self, resource: &Resource, namespace: &str, name: &str) -> Option<&Value> {
        self.state.objects.get(&key(resource, namespace, name))
    }
}

/// How a delete asks to go.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`; for Pods, `None` means the Pod's own
    /// `terminationGracePeriodSeconds` (default 30).
    pub grace_period_seconds: Option<i64>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
}

/// The object store. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Store {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<WatchEvent>,
    admission: Arc<dyn Admission>,
}

fn key(resource: &Resource, namespace: &str, name: &str) -> Key {
    (
        resource.group,
        resource.plural,
        if resource.namespaced {
            namespace.to_string()
        } else {
            String::new()
        },
        name.to_string(),
    )
}

fn list_in<'a>(state: &'a State, resource: &Resource, namespace: Option<&str>) -> Vec<&'a Value> {
    state
        .objects
        .iter()
        .filter(|((g, p, ns, _), _)| {
            *g == resource.group
                && *p == resource.plural
                && namespace.is_none_or(|want| !resource.namespaced || ns == want)
        })
        .map(|(_, v)| v)
        .collect()
}

/// RFC 3339 with seconds, UTC, as Kubernetes writes timestamps.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// A random RFC 4122-shaped uid.
pub fn new_uid() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        *w = h.finish();
    }
    let hex = format!("{:016x}{:016x}", words[0], words[1]);
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// `metadata.name` (empty when missing).
pub fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or("")
}

/// `metadata.namespace` (empty when missing).
pub fn namespace_of(obj: &Value) -> &str {
    obj["metadata"]["namespace"].as_str().unwrap_or("")
}

/// Everything but `metadata` and `status`: a change here bumps
/// `metadata.generation`.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(map) = v.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
        map.remove("apiVersion");
        map.remove("kind");
    }
    v
}

impl Store {
    /// An empty store with the `default` namespace (as a new cluster has).
    pub fn new(admission: Arc<dyn Admission>) -> Store {
        let (events, _) = broadcast::channel(8192);
        let store = Store {
            state: Arc::new(Mutex::new(State {
                rv: 1,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
            })),
            events,
            admission,
        };
        for ns in ["default", "kube-system"] {
            let _ = store.create(
                resources::namespaces(),
                "",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            );
        }
        store
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a bug in the lab; the state is
        // still consistent (writes are whole), so go on with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// One object.
    pub fn get(&self, resource: &Resource, namespace: &str, name: &str) -> Result<Value, ApiError> {
        self.lock()
            .objects
            .get(&key(resource, namespace, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(resource.plural, resource.group, name))
    }

    /// Objects of `resource` in `namespace` (or all), and the
    /// resourceVersion the list is consistent at.
    pub fn list(&self, resource: &Resource, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let state = self.lock();
        (
            list_in(&state, resource, namespace)
                .into_iter()
                .cloned()
                .collect(),
            state.rv,
        )
    }

    /// Creates an object; `namespace` is ignored for cluster-scoped kinds.
    pub fn create(
        &self,
        resource: &'static Resource,
        namespace: &str,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        if name_of(&obj).is_empty()
            && let Some(prefix) = obj["metadata"]["generateName"].as_str()
        {
            let suffix: String = new_uid()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .take(5)
                .collect();
            obj["metadata"]["name"] = json!(format!("{prefix}{suffix}"));
        }
        let name = name_of(&obj).to_string();
        let (v, created) = self.write(resource, namespace, &name, None, |old| match old {
            Some(_) => Err(ApiError::already_exists(
                resource.plural,
                resource.group,
                &name,
            )),
            None => Ok(obj),
        })?;
        debug_assert!(created);
        Ok(v)
    }

    /// Replaces an object (PUT). A `metadata.resourceVersion` in `obj` that
    /// is not the stored one is a 409.
    pub fn update(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        subresource: Option<&str>,
        obj: Value,
    ) -> Result<Value, ApiError> {
        self.write(resource, namespace, name, subresource, |old| match old {
            Some(_) => Ok(obj),
            None => Err(ApiError::not_found(resource.plural, resource.group, name)),
        })
        .map(|(v, _)| v)
    }

    /// The one write path: `f` gets the stored object (or `None`) and
    /// returns the desired one; the store checks the resourceVersion
    /// precondition, keeps what callers may not change, runs admission,
    /// stamps metadata, stores and emits the event. Returns the stored
    /// object and whether it was created.
    ///
    /// With `subresource == Some("status")` only `status` is taken from the
    /// result; otherwise, for kinds with a status subresource, `status` is
    /// kept from the stored object (on create it is taken as given).
    pub fn write(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        subresource: Option<&str>,
        f: impl FnOnce(Option<&Value>) -> Result<Value, ApiError>,
    ) -> Result<(Value, bool), ApiError> {
        self.write_inner(resource, namespace, name, subresource, f, false)
    }

    /// [`Store::write`] for `dryRun=All`: every check and admission runs,
    /// and the object that would be stored is returned (without a
    /// resourceVersion), but nothing is stored and no event is sent.
    pub fn write_dry_run(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        subresource: Option<&str>,
        f: impl FnOnce(Option<&Value>) -> Result<Value, ApiError>,
    ) -> Result<(Value, bool), ApiError> {
        self.write_inner(resource, namespace, name, subresource, f, true)
    }

    fn write_inner(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        subresource: Option<&str>,
        f: impl FnOnce(Option<&Value>) -> Result<Value, ApiError>,
        dry_run: bool,
    ) -> Result<(Value, bool), ApiError> {
        let mut state = self.lock();
        if resource.namespaced
            && !state
                .objects
                .contains_key(&key(resources::namespaces(), "", namespace))
        {
            return Err(ApiError::not_found("namespaces", "", namespace));
        }
        let k = key(resource, namespace, name);
        let old = state.objects.get(&k).cloned();
        let mut new = f(old.as_ref())?;
        if !new.is_object() {
            return Err(ApiError::bad_request("the object is not a JSON object"));
        }
        if !new["metadata"].is_object() {
            new["metadata"] = json!({});
        }
        let given_name = name_of(&new).to_string();
        if given_name.is_empty() {
            new["metadata"]["name"] = json!(name);
        } else if given_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({given_name}) does not match the name on the URL ({name})"
            )));
        }
        if resource.namespaced {
            match new["metadata"]["namespace"].as_str() {
                Some(ns) if ns != namespace => {
                    return Err(ApiError::bad_request(format!(
                        "the namespace of the object ({ns}) does not match the namespace on the URL ({namespace})"
                    )));
                }
                _ => new["metadata"]["namespace"] = json!(namespace),
            }
        } else if let Some(m) = new["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        new["apiVersion"] = json!(resource.api_version());
        new["kind"] = json!(resource.kind);
        let op = match &old {
            None => {
                if subresource.is_some() {
                    return Err(ApiError::not_found(resource.plural, resource.group, name));
                }
                let m = &mut new["metadata"];
                m["uid"] = json!(new_uid());
                m["creationTimestamp"] = json!(now_rfc3339());
                m["generation"] = json!(1);
                if let Some(m) = m.as_object_mut() {
                    m.remove("resourceVersion");
                    m.remove("deletionTimestamp");
                }
                // As the real registry's PrepareForCreate: status is the
                // system's to write, not the creator's.
                if resource.has_status()
                    && let Some(m) = new.as_object_mut()
                {
                    m.remove("status");
                }
                Op::Create
            }
            Some(old) => {
                if let Some(rv) = new["metadata"]["resourceVersion"].as_str()
                    && !rv.is_empty()
                    && Some(rv) != old["metadata"]["resourceVersion"].as_str()
                {
                    return Err(ApiError::conflict(
                        resource.plural,
                        resource.group,
                        name,
                        "the object has been modified; please apply your changes to the latest version and try again",
                    ));
                }
                if subresource == Some("status") {
                    // Only status changes, but the writer's managedFields
                    // entry (`subresource: status`) is kept.
                    let status = new["status"].take();
                    let managed = new["metadata"]["managedFields"].take();
                    new = old.clone();
                    new["status"] = status;
                    if !managed.is_null() {
                        new["metadata"]["managedFields"] = managed;
                    }
                } else if resource.has_status() {
                    new["status"] = old["status"].clone();
                }
                for field in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                ] {
                    match old["metadata"].get(field) {
                        Some(v) => new["metadata"][field] = v.clone(),
                        None => {
                            if let Some(m) = new["metadata"].as_object_mut() {
                                m.remove(field);
                            }
                        }
                    }
                }
                let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
                let changed = spec_part(&new) != spec_part(old);
                new["metadata"]["generation"] =
                    json!(if changed { generation + 1 } else { generation });
                Op::Update
            }
        };
        if new["status"].is_null()
            && let Some(m) = new.as_object_mut()
        {
            m.remove("status");
        }
        self.admission.admit(
            resource,
            op,
            &mut new,
            old.as_ref(),
            &StoreView { state: &state },
        )?;
        // An update that changes nothing is not a new version (as the real
        // API does: no event, same resourceVersion).
        if let Some(old) = &old {
            let mut same = new.clone();
            same["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
            if &same == old {
                return Ok((old.clone(), false));
            }
        }
        if dry_run {
            return Ok((new, old.is_none()));
        }
        state.rv += 1;
        let rv = state.rv;
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        state.objects.insert(k, new.clone());
        let kind = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.emit(&mut state, kind, resource, new.clone(), rv);
        Ok((new, old.is_none()))
    }

    /// Deletes an object. Pods are deleted gracefully: the first delete sets
    /// `deletionTimestamp` and the object stays until the kubelet (or a
    /// delete with grace 0) removes it. Deleting a Namespace deletes what is
    /// in it.
    pub fn delete(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let k = key(resource, namespace, name);
        let Some(old) = state.objects.get(&k).cloned() else {
            return Err(ApiError::not_found(resource.plural, resource.group, name));
        };
        if let Some(rv) = &opts.resource_version
            && old["metadata"]["resourceVersion"].as_str() != Some(rv)
        {
            return Err(ApiError::conflict(
                resource.plural,
                resource.group,
                name,
                "the ResourceVersion in the precondition does not match the ResourceVersion in record. The object might have been modified",
            ));
        }
        if let Some(uid) = &opts.uid
            && old["metadata"]["uid"].as_str() != Some(uid)
        {
            return Err(ApiError::conflict(
                resource.plural,
                resource.group,
                name,
                "the UID in the precondition does not match the UID in record. The object might have been modified",
            ));
        }
        if resource == resources::pods() {
            let grace = opts.grace_period_seconds.unwrap_or_else(|| {
                old["spec"]["terminationGracePeriodSeconds"]
                    .as_i64()
                    .unwrap_or(30)
            });
            // Not yet running anywhere (no node), or asked for 0: gone now.
            let scheduled = old["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| !n.is_empty());
            if grace > 0 && scheduled {
                if old["metadata"]["deletionTimestamp"].is_string() {
                    return Ok(old);
                }
                let mut new = old.clone();
                new["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
                new["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                state.rv += 1;
                let rv = state.rv;
                new["metadata"]["resourceVersion"] = json!(rv.to_string());
                state.objects.insert(k, new.clone());
                self.emit(&mut state, EventType::Modified, resource, new.clone(), rv);
                return Ok(new);
            }
        }
        if resource == resources::namespaces() {
            let inside: Vec<Key> = state
                .objects
                .keys()
                .filter(|(_, _, ns, _)| ns == name)
                .cloned()
                .collect();
            for k in inside {
                self.remove(&mut state, &k);
            }
        }
        Ok(self.remove(&mut state, &k).unwrap_or(old))
    }

    fn remove(&self, state: &mut State, k: &Key) -> Option<Value> {
        let mut obj = state.objects.remove(k)?;
        let resource = resources::RESOURCES
            .iter()
            .find(|r| r.group == k.0 && r.plural == k.1)?;
        state.rv += 1;
        let rv = state.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.emit(state, EventType::Deleted, resource, obj.clone(), rv);
        Some(obj)
    }

    fn emit(
        &self,
        state: &mut State,
        kind: EventType,
        resource: &'static Resource,
        object: Value,
        rv: u64,
    ) {
        let event = WatchEvent {
            kind,
            resource,
            object,
            rv,
        };
        state.history.push_back(event.clone());
        while state.history.len() > HISTORY {
            state.history.pop_front();
        }
        // No receiver is fine: nobody watches.
        let _ = self.events.send(event);
    }

    /// Starts a watch of `resource` (in `namespace`, or all) from
    /// resourceVersion `since`: the events after it that are still in the
    /// history, then every later one through the receiver (which also
    /// carries other resources' events: filter with [`WatchEvent::matches`]).
    /// `since == None` (or 0) starts with an ADDED event per existing object,
    /// as a watch without a resourceVersion does. A `since` older than the
    /// history is 410 Gone: the client lists again.
    pub fn watch(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        since: Option<u64>,
    ) -> Result<(Vec<WatchEvent>, broadcast::Receiver<WatchEvent>), ApiError> {
        let state = self.lock();
        let receiver = self.events.subscribe();
        let backlog = match since {
            None | Some(0) => list_in(&state, resource, namespace)
                .into_iter()
                .map(|o| WatchEvent {
                    kind: EventType::Added,
                    resource,
                    object: o.clone(),
                    rv: o["metadata"]["resourceVersion"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                })
                .collect(),
            Some(rv) => {
                let oldest = state.history.front().map(|e| e.rv).unwrap_or(state.rv + 1);
                if rv + 1 < oldest && rv < state.rv {
                    return Err(ApiError::gone(format!(
                        "too old resource version: {rv} ({})",
                        oldest - 1
                    )));
                }
                state
                    .history
                    .iter()
                    .filter(|e| e.rv > rv && e.matches(resource, namespace))
                    .cloned()
                    .collect()
            }
        };
        Ok((backlog, receiver))
    }
}

impl WatchEvent {
    /// Whether the event is about `resource` in `namespace` (or any).
    pub fn matches(&self, resource: &Resource, namespace: Option<&str>) -> bool {
        self.resource == resource
            && namespace.is_none_or(|ns| !resource.namespaced || namespace_of(&self.object) == ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::new(Arc::new(AcceptAll))
    }

    fn cm(name: &str, v: &str) -> Value {
        json!({"metadata": {"name": name}, "data": {"k": v}})
    }

    #[test]
    fn create_stamps_metadata_and_refuses_duplicates() {
        let s = store();
        let o = s
            .create(resources::configmaps(), "default", cm("a", "1"))
            .unwrap();
        assert_eq!(o["metadata"]["namespace"], "default");
        assert_eq!(o["apiVersion"], "v1");
        assert_eq!(o["kind"], "ConfigMap");
        assert!(o["metadata"]["uid"].as_str().unwrap().len() == 36);
        assert!(o["metadata"]["resourceVersion"].is_string());
        let e = s
            .create(resources::configmaps(), "default", cm("a", "2"))
            .unwrap_err();
        assert_eq!(e.code, 409);
        assert_eq!(e.reason, "AlreadyExists");
        let e = s
            .create(resources::configmaps(), "nope", cm("a", "1"))
            .unwrap_err();
        assert_eq!(e.code, 404);
    }

    #[test]
    fn a_stale_resource_version_is_a_conflict() {
        let s = store();
        let o = s
            .create(resources::configmaps(), "default", cm("a", "1"))
            .unwrap();
        let mut first = o.clone();
        first["data"]["k"] = json!("2");
        s.update(resources::configmaps(), "default", "a", None, first)
            .unwrap();
        let mut stale = o;
        stale["data"]["k"] = json!("3");
        let e = s
            .update(resources::configmaps(), "default", "a", None, stale)
            .unwrap_err();
        assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
        assert_eq!(
            s.get(resources::configmaps(), "default", "a").unwrap()["data"]["k"],
            "2"
        );
    }

    #[test]
    fn status_is_written_only_through_its_subresource() {
        let s = store();
        let r = resources::statefulsets();
        s.create(
            r,
            "default",
            json!({"metadata": {"name": "zk"}, "spec": {"replicas": 1}}),
        )
        .unwrap();
        let mut o = s.get(r, "default", "zk").unwrap();
        o["status"] = json!({"replicas": 7});
        o["spec"]["replicas"] = json!(2);
        let o = s.update(r, "default", "zk", None, o).unwrap();
        assert!(
            o["status"].is_null(),
            "status must not change through the main resource"
        );
        assert_eq!(o["metadata"]["generation"], 2);
        let mut o2 = o.clone();
        o2["status"] = json!({"replicas": 2});
        o2["spec"]["replicas"] = json!(9);
        let o2 = s.update(r, "default", "zk", Some("status"), o2).unwrap();
        assert_eq!(o2["status"]["replicas"], 2);
        assert_eq!(
            o2["spec"]["replicas"], 2,
            "spec must not change through status"
        );
        assert_eq!(o2["metadata"]["generation"], 2);
    }

    #[test]
    fn watch_resumes_from_a_resource_version_and_sees_later_events() {
        let s = store();
        let r = resources::configmaps();
        let (_, rv) = s.list(r, Some("default"));
        s.create(r, "default", cm("a", "1")).unwrap();
        s.delete(r, "default", "a", &DeleteOptions::default())
            .unwrap();
        let (backlog, mut rx) = s.watch(r, Some("default"), Some(rv)).unwrap();
        let kinds: Vec<EventType> = backlog.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventType::Added, EventType::Deleted]);
        s.create(r, "default", cm("b", "1")).unwrap();
        let e = rx.try_recv().unwrap();
        assert_eq!((e.kind, name_of(&e.object)), (EventType::Added, "b"));
    }

    #[test]
    fn pods_on_a_node_are_deleted_gracefully() {
        let s = store();
        let r = resources::pods();
        s.create(
            r,
            "default",
            json!({"metadata": {"name": "p"}, "spec": {"nodeName": "lab", "containers": []}}),
        )
        .unwrap();
        let o = s
            .delete(r, "default", "p", &DeleteOptions::default())
            .unwrap();
        assert!(o["metadata"]["deletionTimestamp"].is_string());
        assert!(
            s.get(r, "default", "p").is_ok(),
            "stays until the kubelet is done"
        );
        s.delete(
            r,
            "default",
            "p",
            &DeleteOptions {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.get(r, "default", "p").unwrap_err().code, 404);
    }
}
