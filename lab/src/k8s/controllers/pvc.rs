//! Claim binding: every pending PersistentVolumeClaim gets a volume of its
//! own, a directory under [`ControllerConfig::volumes_dir`], and is marked
//! Bound, as the PV controller (`pkg/controller/volume/persistentvolume`)
//! does once a dynamic provisioner has made a volume. The lab has no
//! PersistentVolume objects: the volume is only a name (`pvc-<claim uid>`,
//! the name real provisioners give) and a directory.
//!
//! The directory is per claim *uid*, so a claim deleted and created again
//! under the same name starts empty, as a new volume would. A deleted
//! claim's directory is removed once no Pod names the claim any more (the
//! `kubernetes.io/pvc-protection` finalizer's rule, applied to the data
//! instead of the object).
//!
//! [`ControllerConfig::volumes_dir`]: super::ControllerConfig::volumes_dir

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::ControllerError;
use super::runner::{Outcome, Reconciler};
use super::util::{self, uid_of};
use crate::k8s::error::ApiError;
use crate::k8s::resources;
use crate::k8s::store::{EventType, Store, WatchEvent, name_of, namespace_of};

/// The field manager of the binder's writes.
pub const MANAGER: &str = "persistentvolume-controller";

/// Where the volume `volume_name` of claim `claim_name` keeps its data:
/// `<volumes_dir>/<namespace>/<claim>/<volume>`. The kubelet mounts it for
/// a Pod volume naming the claim, once the claim is Bound (see
/// [`bound_claim_dir`]).
pub fn pvc_dir(
    volumes_dir: &Path,
    namespace: &str,
    claim_name: &str,
    volume_name: &str,
) -> PathBuf {
    volumes_dir
        .join(namespace)
        .join(claim_name)
        .join(volume_name)
}

/// The directory of a claim object, when it is Bound.
pub fn bound_claim_dir(volumes_dir: &Path, claim: &Value) -> Option<PathBuf> {
    let volume = claim["spec"]["volumeName"]
        .as_str()
        .filter(|v| !v.is_empty())?;
    (claim["status"]["phase"] == "Bound")
        .then(|| pvc_dir(volumes_dir, namespace_of(claim), name_of(claim), volume))
}

/// What the binder looks at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PvcKey {
    /// One claim, to bind.
    Claim { namespace: String, name: String },
    /// One namespace's directories, to remove those of deleted claims.
    Sweep { namespace: String },
}

/// Binds claims; removes the directories of deleted ones.
pub struct PvcBinder {
    volumes_dir: PathBuf,
}

impl PvcBinder {
    pub fn new(volumes_dir: PathBuf) -> PvcBinder {
        PvcBinder { volumes_dir }
    }

    fn bind(&self, store: &Store, ns: &str, name: &str) -> Result<Outcome, ControllerError> {
        let claim = match store.get(resources::pvcs(), ns, name) {
            Ok(c) => c,
            Err(e) if e.code == 404 => return self.sweep(store, ns),
            Err(e) => {
                return Err(ControllerError::api(
                    "get",
                    "PersistentVolumeClaim",
                    ns,
                    name,
                )(e));
            }
        };
        if util::is_terminating(&claim) {
            return Ok(Outcome::Done);
        }
        let uid = uid_of(&claim).to_string();
        let volume = claim["spec"]["volumeName"]
            .as_str()
            .filter(|v| !v.is_empty())
            .map_or_else(|| format!("pvc-{uid}"), str::to_string);
        let dir = pvc_dir(&self.volumes_dir, ns, name, &volume);
        std::fs::create_dir_all(&dir).map_err(|source| ControllerError::Io {
            action: "create the volume directory",
            path: dir.clone(),
            source,
        })?;
        if claim["status"]["phase"] == "Bound" && claim["spec"]["volumeName"] == volume.as_str() {
            return Ok(Outcome::Done);
        }
        let api = ControllerError::api;
        // As the PV controller: the claim's volumeName first, then status.
        store
            .write(resources::pvcs(), ns, name, None, |old| {
                let old = same_claim(old, &uid, name)?;
                let mut new = old.clone();
                new["spec"]["volumeName"] = json!(volume);
                new["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] = json!("yes");
                new["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] =
                    json!("yes");
                util::record_write(resources::pvcs(), None, Some(old), &mut new, MANAGER);
                Ok(new)
            })
            .map_err(api("bind", "PersistentVolumeClaim", ns, name))?;
        store
            .write(resources::pvcs(), ns, name, Some("status"), |old| {
                let old = same_claim(old, &uid, name)?;
                let mut new = old.clone();
                let mut status = json!({"phase": "Bound"});
                if let Some(modes) = old["spec"]["accessModes"].as_array() {
                    status["accessModes"] = json!(modes);
                }
                if let Some(size) = old["spec"]["resources"]["requests"]["storage"].as_str() {
                    status["capacity"] = json!({"storage": size});
                }
                new["status"] = status;
                util::record_write(
                    resources::pvcs(),
                    Some("status"),
                    Some(old),
                    &mut new,
                    MANAGER,
                );
                Ok(new)
            })
            .map_err(api("update status of", "PersistentVolumeClaim", ns, name))?;
        tracing::info!(namespace = ns, claim = name, volume, dir = %dir.display(), "bound claim");
        Ok(Outcome::Done)
    }

    /// Removes the directories of a namespace whose claim is gone (or has
    /// another volume now) and that no Pod names.
    fn sweep(&self, store: &Store, ns: &str) -> Result<Outcome, ControllerError> {
        let ns_dir = self.volumes_dir.join(ns);
        let Ok(claim_dirs) = std::fs::read_dir(&ns_dir) else {
            return Ok(Outcome::Done);
        };
        let (claims, _) = store.list(resources::pvcs(), Some(ns));
        let live: BTreeMap<String, String> = claims
            .iter()
            .map(|c| {
                let volume = c["spec"]["volumeName"]
                    .as_str()
                    .filter(|v| !v.is_empty())
                    .map_or_else(|| format!("pvc-{}", uid_of(c)), str::to_string);
                (name_of(c).to_string(), volume)
            })
            .collect();
        let (pods, _) = store.list(resources::pods(), Some(ns));
        let in_use: BTreeSet<&str> = pods.iter().flat_map(claims_of_pod).collect();
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| ControllerError::Io {
                action,
                path,
                source,
            }
        };
        for claim_dir in claim_dirs.flatten() {
            let claim = claim_dir.file_name().to_string_lossy().into_owned();
            let path = claim_dir.path();
            let volumes = match std::fs::read_dir(&path) {
                Ok(v) => v,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("read", &path)(e)),
            };
            for volume in volumes.flatten() {
                let volume_name = volume.file_name().to_string_lossy().into_owned();
                if live.get(&claim) == Some(&volume_name) || in_use.contains(claim.as_str()) {
                    continue;
                }
                let vpath = volume.path();
                match std::fs::remove_dir_all(&vpath) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io("remove", &vpath)(e));
                    }
                    _ => {}
                }
                tracing::info!(
                    namespace = ns,
                    claim,
                    volume = volume_name,
                    "removed volume of a deleted claim"
                );
            }
            // Only succeeds once empty; a claim's directory is otherwise kept.
            let _ = std::fs::remove_dir(&path);
        }
        let _ = std::fs::remove_dir(&ns_dir);
        Ok(Outcome::Done)
    }
}

/// The claim must still be the one (same uid) the binder looked at.
fn same_claim<'a>(old: Option<&'a Value>, uid: &str, name: &str) -> Result<&'a Value, ApiError> {
    old.filter(|o| uid_of(o) == uid)
        .ok_or_else(|| ApiError::not_found("persistentvolumeclaims", "", name))
}

/// The claims a Pod's volumes name.
fn claims_of_pod(pod: &Value) -> Vec<&str> {
    pod["spec"]["volumes"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

impl Reconciler for PvcBinder {
    type Key = PvcKey;
    const NAME: &'static str = "pvc-binder";

    fn keys_for_event(&self, _: &Store, event: &WatchEvent, keys: &mut Vec<PvcKey>) {
        let namespace = namespace_of(&event.object).to_string();
        if event.resource == resources::pvcs() {
            if event.kind == EventType::Deleted {
                keys.push(PvcKey::Sweep { namespace });
            } else {
                keys.push(PvcKey::Claim {
                    namespace,
                    name: name_of(&event.object).to_string(),
                });
            }
        } else if event.resource == resources::pods() {
            if event.kind == EventType::Deleted && !claims_of_pod(&event.object).is_empty() {
                keys.push(PvcKey::Sweep { namespace });
            }
        } else if event.resource == resources::namespaces() && event.kind == EventType::Deleted {
            keys.push(PvcKey::Sweep {
                namespace: name_of(&event.object).to_string(),
            });
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<PvcKey> {
        let (claims, _) = store.list(resources::pvcs(), None);
        let mut keys: Vec<PvcKey> = claims
            .iter()
            .map(|c| PvcKey::Claim {
                namespace: namespace_of(c).to_string(),
                name: name_of(c).to_string(),
            })
            .collect();
        if let Ok(dirs) = std::fs::read_dir(&self.volumes_dir) {
            keys.extend(dirs.flatten().map(|d| PvcKey::Sweep {
                namespace: d.file_name().to_string_lossy().into_owned(),
            }));
        }
        keys
    }

    fn reconcile(&self, store: &Store, key: &PvcKey) -> Result<Outcome, ControllerError> {
        match key {
            PvcKey::Claim { namespace, name } => self.bind(store, namespace, name),
            PvcKey::Sweep { namespace } => self.sweep(store, namespace),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::store::{AcceptAll, DeleteOptions};
    use std::sync::Arc;

    fn claim(name: &str) -> Value {
        json!({
            "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        })
    }

    #[test]
    fn a_pending_claim_is_bound_to_a_directory_of_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(Arc::new(AcceptAll));
        let binder = PvcBinder::new(tmp.path().to_path_buf());
        let c = store
            .create(resources::pvcs(), "default", claim("data-zk-0"))
            .unwrap();
        binder.bind(&store, "default", "data-zk-0").unwrap();
        let c2 = store
            .get(resources::pvcs(), "default", "data-zk-0")
            .unwrap();
        let volume = format!("pvc-{}", uid_of(&c));
        assert_eq!(c2["spec"]["volumeName"], volume.as_str());
        assert_eq!(
            c2["status"],
            json!({"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}})
        );
        let dir = bound_claim_dir(tmp.path(), &c2).unwrap();
        assert_eq!(dir, tmp.path().join("default/data-zk-0").join(&volume));
        assert!(dir.is_dir());
        let rv = c2["metadata"]["resourceVersion"].clone();
        binder.bind(&store, "default", "data-zk-0").unwrap();
        let c3 = store
            .get(resources::pvcs(), "default", "data-zk-0")
            .unwrap();
        assert_eq!(
            c3["metadata"]["resourceVersion"], rv,
            "binding twice changes nothing"
        );
    }

    #[test]
    fn a_deleted_claims_directory_goes_once_no_pod_names_it() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(Arc::new(AcceptAll));
        let binder = PvcBinder::new(tmp.path().to_path_buf());
        store
            .create(resources::pvcs(), "default", claim("data-zk-0"))
            .unwrap();
        binder.bind(&store, "default", "data-zk-0").unwrap();
        let bound = store
            .get(resources::pvcs(), "default", "data-zk-0")
            .unwrap();
        let dir = bound_claim_dir(tmp.path(), &bound).unwrap();
        std::fs::write(dir.join("myid"), "1").unwrap();
        store
            .create(
                resources::pods(),
                "default",
                json!({"metadata": {"name": "zk-0"}, "spec": {"containers": [], "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-zk-0"}}]}}),
            )
            .unwrap();
        store
            .delete(
                resources::pvcs(),
                "default",
                "data-zk-0",
                &DeleteOptions::default(),
            )
            .unwrap();
        binder.sweep(&store, "default").unwrap();
        assert!(
            dir.join("myid").is_file(),
            "kept while a Pod names the claim"
        );
        store
            .delete(
                resources::pods(),
                "default",
                "zk-0",
                &DeleteOptions::default(),
            )
            .unwrap();
        binder.sweep(&store, "default").unwrap();
        assert!(!dir.exists());
        assert!(!tmp.path().join("default").exists(), "empty parents go too");
    }
}
