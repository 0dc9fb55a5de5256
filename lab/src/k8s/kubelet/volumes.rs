//! A Pod's volumes as directories on the host, which the sandbox binds at
//! each container's mount paths: `emptyDir` (one directory per Pod),
//! `persistentVolumeClaim` (the claim's directory, kept across Pods) and
//! `configMap` (the ConfigMap's data projected as files, kept up to date).
//!
//! Where it sits: the kubelet prepares volumes after the network and before
//! the first container ("MountVolume.SetUp"), and re-projects ConfigMaps
//! every few seconds while the Pod lives. ConfigMap files are written the
//! way `pkg/volume/util/atomic_writer.go` writes them: a timestamped
//! directory, a `..data` symlink swapped atomically by rename, and
//! user-visible symlinks `key -> ..data/key`, so a reader in the container
//! sees either the old or the new set, never a mix. Projection follows
//! `pkg/volume/configmap/configmap.go` (`MakePayload`: `items`, modes,
//! `optional`). `binaryData` is not projected.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMapVolumeSource, PodSpec};
use serde_json::Value;

use crate::k8s::controllers::pvc::bound_claim_dir;
use crate::k8s::resources;
use crate::k8s::store::Store;

/// Why a volume cannot be set up; the Pod's containers wait in
/// `ContainerCreating` with this message, as after a `FailedMount` event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MountVolume.SetUp failed for volume \"{volume}\" : {message}")]
pub struct VolumeError {
    pub volume: String,
    pub message: String,
}

/// Files of a projection: relative path -> (content, mode).
pub type Payload = BTreeMap<String, (Vec<u8>, u32)>;

/// The files a `configMap` volume shows for `cm` (`None`: the ConfigMap
/// does not exist).
pub fn configmap_payload(
    src: &ConfigMapVolumeSource,
    cm: Option<&Value>,
) -> Result<Payload, String> {
    let optional = src.optional == Some(true);
    let default_mode = src.default_mode.unwrap_or(0o644) as u32 & 0o777;
    let Some(cm) = cm else {
        return if optional {
            Ok(Payload::new())
        } else {
            Err(format!("configmap \"{}\" not found", src.name))
        };
    };
    let data = cm["data"].as_object().cloned().unwrap_or_default();
    let mut out = Payload::new();
    match &src.items {
        Some(items) if !items.is_empty() => {
            for item in items {
                match data.get(&item.key).and_then(Value::as_str) {
                    Some(v) => {
                        let mode = item.mode.map(|m| m as u32 & 0o777).unwrap_or(default_mode);
                        out.insert(item.path.clone(), (v.as_bytes().to_vec(), mode));
                    }
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "configmap references non-existent config key: {}",
                            item.key
                        ));
                    }
                }
            }
        }
        _ => {
            for (k, v) in &data {
                out.insert(
                    k.clone(),
                    (v.as_str().unwrap_or("").as_bytes().to_vec(), default_mode),
                );
            }
        }
    }
    Ok(out)
}

/// A relative path with no `..`, as validation demands of `items[].path`.
fn safe_relative(p: &str) -> bool {
    !p.is_empty()
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> String {
    move |e| format!("failed to {what}: {e}")
}

/// What `dir/..data` holds now, as a payload (empty when never written).
fn current(dir: &Path) -> Payload {
    let mut out = Payload::new();
    fn walk(base: &Path, rel: &Path, out: &mut Payload) {
        let Ok(entries) = std::fs::read_dir(base.join(rel)) else {
            return;
        };
        for e in entries.flatten() {
            let r = rel.join(e.file_name());
            let p = base.join(&r);
            if p.is_dir() {
                walk(base, &r, out);
            } else if let (Ok(bytes), Ok(meta)) = (std::fs::read(&p), std::fs::metadata(&p)) {
                out.insert(
                    r.to_string_lossy().into_owned(),
                    (bytes, meta.permissions().mode() & 0o777),
                );
            }
        }
    }
    walk(&dir.join("..data"), Path::new(""), &mut out);
    out
}

/// Writes `payload` into `dir` atomically; returns whether anything
/// changed. Idempotent.
pub fn write_atomic(dir: &Path, payload: &Payload) -> Result<bool, String> {
    if let Some(bad) = payload.keys().find(|p| !safe_relative(p)) {
        return Err(format!("invalid path {bad:?} in projection"));
    }
    std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    let data_link = dir.join("..data");
    let had_data = std::fs::symlink_metadata(&data_link).is_ok();
    if had_data && &current(dir) == payload {
        return Ok(false);
    }
    let old_target = std::fs::read_link(&data_link).ok();
    let stamp = humantime::format_rfc3339_nanos(std::time::SystemTime::now())
        .to_string()
        .replace(['-', ':', 'T'], "_")
        .replace(['.', 'Z'], "");
    let ts_name = format!("..{stamp}");
    let ts_dir = dir.join(&ts_name);
    std::fs::create_dir(&ts_dir).map_err(io(format!("create {}", ts_dir.display())))?;
    for (rel, (bytes, mode)) in payload {
        let p = ts_dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(io(format!("create {}", parent.display())))?;
        }
        std::fs::write(&p, bytes).map_err(io(format!("write {}", p.display())))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))
            .map_err(io(format!("chmod {}", p.display())))?;
    }
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(&ts_name, &tmp_link)
        .map_err(io(format!("link {}", tmp_link.display())))?;
    std::fs::rename(&tmp_link, &data_link).map_err(io(format!("swap {}", data_link.display())))?;
    // User-visible names: one symlink per top-level component.
    let tops: std::collections::BTreeSet<String> = payload
        .keys()
        .filter_map(|p| p.split('/').next().map(String::from))
        .collect();
    for top in &tops {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(top), &link)
                .map_err(io(format!("link {}", link.display())))?;
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("..") && !tops.contains(&name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    if let Some(old) = old_target
        && old != Path::new(&ts_name)
    {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(true)
}

/// Where one Pod's volumes live on the host, by volume name.
pub type VolumeDirs = BTreeMap<String, VolumeDir>;

/// One prepared volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeDir {
    pub path: PathBuf,
    /// ConfigMap volumes are always mounted read-only.
    pub read_only: bool,
}

/// Sets up every volume of `spec`: directories for `emptyDir` (under
/// `pod_dir/volumes`), the directories of Bound claims (under
/// `volumes_dir`), projections of ConfigMaps. Safe to repeat: ConfigMaps
/// are re-projected only when they changed, so this is also the refresh.
pub fn prepare(
    spec: &PodSpec,
    namespace: &str,
    pod_dir: &Path,
    volumes_dir: &Path,
    store: &Store,
) -> Result<VolumeDirs, VolumeError> {
    let mut out = VolumeDirs::new();
    for v in spec.volumes.iter().flatten() {
        let err = |message: String| VolumeError {
            volume: v.name.clone(),
            message,
        };
        let mkdir = |p: &Path, mode: Option<u32>| -> Result<(), VolumeError> {
            std::fs::create_dir_all(p)
                .map_err(io(format!("create {}", p.display())))
                .map_err(err)?;
            if let Some(mode) = mode {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
                    .map_err(io(format!("chmod {}", p.display())))
                    .map_err(err)?;
            }
            Ok(())
        };
        let dir = if v.empty_dir.is_some() {
            // The real kubelet makes emptyDir world-writable.
            let p = pod_dir.join("volumes/empty-dir").join(&v.name);
            mkdir(&p, Some(0o777))?;
            VolumeDir {
                path: p,
                read_only: false,
            }
        } else if let Some(pvc) = &v.persistent_volume_claim {
            let claim = store
                .get(resources::pvcs(), namespace, &pvc.claim_name)
                .map_err(|_| {
                    err(format!(
                        "persistentvolumeclaim \"{}\" not found",
                        pvc.claim_name
                    ))
                })?;
            let p = bound_claim_dir(volumes_dir, &claim).ok_or_else(|| {
                err(format!(
                    "error processing PVC {namespace}/{}: PVC is not bound",
                    pvc.claim_name
                ))
            })?;
            mkdir(&p, None)?;
            VolumeDir {
                path: p,
                read_only: pvc.read_only == Some(true),
            }
        } else if let Some(src) = &v.config_map {
            let p = pod_dir.join("volumes/configmap").join(&v.name);
            let cm = store
                .get(resources::configmaps(), namespace, &src.name)
                .ok();
            let payload = configmap_payload(src, cm.as_ref()).map_err(err)?;
            write_atomic(&p, &payload).map_err(err)?;
            VolumeDir {
                path: p,
                read_only: true,
            }
        } else {
            return Err(err(
                "volume type not supported by the lab's kubelet (emptyDir, persistentVolumeClaim and configMap are)".into(),
            ));
        };
        out.insert(v.name.clone(), dir);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn src(v: Value) -> ConfigMapVolumeSource {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn payload_honours_items_modes_and_optional() {
        let cm = json!({"data": {"zoo.cfg": "tickTime=2000\n", "other": "x"}});
        let all = configmap_payload(&src(json!({"name": "c"})), Some(&cm)).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all["zoo.cfg"], (b"tickTime=2000\n".to_vec(), 0o644));
        let picked = configmap_payload(
            &src(json!({"name": "c", "defaultMode": 0o600,
                "items": [{"key": "zoo.cfg", "path": "conf/zoo.cfg"},
                          {"key": "other", "path": "o", "mode": 0o755}]})),
            Some(&cm),
        )
        .unwrap();
        assert_eq!(picked["conf/zoo.cfg"].1, 0o600);
        assert_eq!(picked["o"].1, 0o755);
        let missing_key = src(json!({"name": "c", "items": [{"key": "nope", "path": "n"}]}));
        assert!(configmap_payload(&missing_key, Some(&cm)).is_err());
        assert_eq!(
            configmap_payload(&src(json!({"name": "c"})), None).unwrap_err(),
            "configmap \"c\" not found"
        );
        let optional = src(json!({"name": "c", "optional": true}));
        assert!(configmap_payload(&optional, None).unwrap().is_empty());
    }

    #[test]
    fn atomic_writes_swap_data_and_keep_user_links() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cm");
        let mut p = Payload::new();
        p.insert("zoo.cfg".into(), (b"a=1\n".to_vec(), 0o644));
        p.insert("sub/x".into(), (b"x".to_vec(), 0o600));
        assert!(write_atomic(&dir, &p).unwrap());
        assert!(!write_atomic(&dir, &p).unwrap(), "unchanged: no write");
        assert_eq!(
            std::fs::read_to_string(dir.join("zoo.cfg")).unwrap(),
            "a=1\n"
        );
        assert_eq!(std::fs::read_to_string(dir.join("sub/x")).unwrap(), "x");
        assert_eq!(
            std::fs::read_link(dir.join("zoo.cfg")).unwrap(),
            Path::new("..data/zoo.cfg")
        );
        p.remove("sub/x");
        p.insert("zoo.cfg".into(), (b"a=2\n".to_vec(), 0o644));
        assert!(write_atomic(&dir, &p).unwrap());
        assert_eq!(
            std::fs::read_to_string(dir.join("zoo.cfg")).unwrap(),
            "a=2\n"
        );
        assert!(
            std::fs::symlink_metadata(dir.join("sub")).is_err(),
            "stale link removed"
        );
        let stamped = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with("..") && n != "..data"
            })
            .count();
        assert_eq!(stamped, 1, "the old data directory is removed");
        let mut bad = Payload::new();
        bad.insert("../escape".into(), (vec![], 0o644));
        assert!(write_atomic(&dir, &bad).is_err());
    }
}
