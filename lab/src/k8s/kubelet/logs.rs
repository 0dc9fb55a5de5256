//! Container logs, laid out as the real kubelet lays them out
//! (`/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restartCount>.log`,
//! `pkg/kubelet/kuberuntime/helpers.go` `BuildContainerLogsDirectory`),
//! under the kubelet's `pods_dir`.
//!
//! Where it sits: the sandbox sends a container's stdout and stderr straight
//! to its file (no pipe through the kubelet, so a container never blocks on
//! a busy kubelet); the API server's `pods/log` finds the file through
//! [`LogLocator`]. One file per restart; the one before the current is kept
//! for `--previous`, older ones are removed. Files hold the raw output (not
//! CRI's timestamped lines): `kubectl logs --timestamps` is not supported.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The directory of one Pod: `<pods_dir>/<namespace>_<pod>_<uid>`.
pub fn pod_dir(pods_dir: &Path, namespace: &str, pod: &str, uid: &str) -> PathBuf {
    pods_dir.join(format!("{namespace}_{pod}_{uid}"))
}

/// The log file of one run of a container.
pub fn log_path(
    pods_dir: &Path,
    namespace: &str,
    pod: &str,
    uid: &str,
    container: &str,
    restart_count: u32,
) -> PathBuf {
    pod_dir(pods_dir, namespace, pod, uid)
        .join(container)
        .join(format!("{restart_count}.log"))
}

/// Removes a container's log files older than the previous run.
pub fn prune(container_dir: &Path, restart_count: u32) {
    let Ok(entries) = std::fs::read_dir(container_dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let old = name
            .strip_suffix(".log")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n + 1 < restart_count);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Why a log cannot be served; messages as the API server's
/// (`pkg/registry/core/pod/strategy.go` `LogLocation`) and kubelet's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// 400: several containers and none named.
    #[error("a container name must be specified for pod {pod}, choose one of: [{choices}]")]
    ContainerRequired { pod: String, choices: String },
    /// 400: the named container is not in the Pod.
    #[error("container {container} is not valid for pod {pod}")]
    NoSuchContainer { pod: String, container: String },
    /// 400: the container has not started (yet) or has no previous run.
    #[error("{0}")]
    NotAvailable(String),
}

/// Finds log files for the API server's `pods/log`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LogLocator {
    pods_dir: PathBuf,
}

impl LogLocator {
    pub fn new(pods_dir: impl Into<PathBuf>) -> LogLocator {
        LogLocator {
            pods_dir: pods_dir.into(),
        }
    }

    /// The file holding the log of `container` (or the Pod's only one) of
    /// `pod` (the stored object): the current run, or with `previous` the
    /// one before it.
    pub fn locate(
        &self,
        pod: &Value,
        container: Option<&str>,
        previous: bool,
    ) -> Result<PathBuf, LogError> {
        let pod_name = pod["metadata"]["name"].as_str().unwrap_or("");
        let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("");
        let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
        let names = |field: &str| -> Vec<String> {
            pod["spec"][field]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c["name"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let containers = names("containers");
        let init = names("initContainers");
        let name = match container {
            Some(c) if containers.iter().chain(&init).any(|n| n == c) => c.to_string(),
            Some(c) => {
                return Err(LogError::NoSuchContainer {
                    pod: pod_name.into(),
                    container: c.into(),
                });
            }
            None if containers.len() == 1 => containers[0].clone(),
            None => {
                return Err(LogError::ContainerRequired {
                    pod: pod_name.into(),
                    choices: containers.join(" "),
                });
            }
        };
        let status = ["containerStatuses", "initContainerStatuses"]
            .iter()
            .filter_map(|f| pod["status"][f].as_array())
            .flatten()
            .find(|s| s["name"] == name.as_str());
        let restarts = status.and_then(|s| s["restartCount"].as_u64()).unwrap_or(0) as u32;
        // As the kubelet's `validateContainerLogStatus`: while a container
        // waits to restart, both the current and the previous log are its
        // last run's (its `lastState`).
        let waiting = status.is_none_or(|s| s["state"]["waiting"].is_object());
        let has_last = status.is_some_and(|s| s["lastState"]["terminated"].is_object());
        let run = if previous {
            if !has_last {
                return Err(LogError::NotAvailable(format!(
                    "previous terminated container \"{name}\" in pod \"{pod_name}\" not found"
                )));
            }
            if waiting {
                restarts
            } else {
                restarts.saturating_sub(1)
            }
        } else {
            if waiting && !has_last {
                let reason = status
                    .and_then(|s| s["state"]["waiting"]["reason"].as_str())
                    .unwrap_or("ContainerCreating");
                let why = match reason {
                    "ErrImagePull" => "image can't be pulled",
                    "ImagePullBackOff" => "trying and failing to pull image",
                    other => other,
                };
                return Err(LogError::NotAvailable(format!(
                    "container \"{name}\" in pod \"{pod_name}\" is waiting to start: {why}"
                )));
            }
            restarts
        };
        Ok(log_path(
            &self.pods_dir,
            namespace,
            pod_name,
            uid,
            &name,
            run,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(statuses: Value) -> Value {
        json!({
            "metadata": {"name": "zk-0", "namespace": "default", "uid": "u1"},
            "spec": {"containers": [{"name": "zk"}, {"name": "side"}]},
            "status": {"containerStatuses": statuses},
        })
    }

    #[test]
    fn paths_follow_the_kubelet_layout() {
        assert_eq!(
            log_path(Path::new("/p"), "default", "zk-0", "u1", "zk", 2),
            Path::new("/p/default_zk-0_u1/zk/2.log")
        );
    }

    #[test]
    fn locate_picks_current_and_previous_runs() {
        let l = LogLocator::new("/p");
        let p = pod(
            json!([{"name": "zk", "restartCount": 3, "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 1}}}]),
        );
        assert_eq!(
            l.locate(&p, Some("zk"), false).unwrap(),
            Path::new("/p/default_zk-0_u1/zk/3.log")
        );
        assert_eq!(
            l.locate(&p, Some("zk"), true).unwrap(),
            Path::new("/p/default_zk-0_u1/zk/2.log")
        );
        let crashing = pod(json!([{"name": "zk", "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1}}}]));
        for previous in [false, true] {
            assert_eq!(
                l.locate(&crashing, Some("zk"), previous).unwrap(),
                Path::new("/p/default_zk-0_u1/zk/3.log"),
                "the last run, which died"
            );
        }
    }

    #[test]
    fn locate_refuses_what_the_api_server_refuses() {
        let l = LogLocator::new("/p");
        let p = pod(json!([{"name": "zk", "restartCount": 0, "state": {"running": {}}}]));
        assert!(matches!(
            l.locate(&p, None, false),
            Err(LogError::ContainerRequired { .. })
        ));
        assert!(matches!(
            l.locate(&p, Some("nope"), false),
            Err(LogError::NoSuchContainer { .. })
        ));
        assert!(matches!(
            l.locate(&p, Some("zk"), true),
            Err(LogError::NotAvailable(_))
        ));
        let waiting = pod(json!([{"name": "zk", "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff"}}}]));
        let e = l.locate(&waiting, Some("zk"), false).unwrap_err();
        assert!(
            e.to_string().ends_with("trying and failing to pull image"),
            "{e}"
        );
    }
}
