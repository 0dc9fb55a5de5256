//! A StatefulSet's status from its Pods (`computeReplicaStatus` and
//! `completeRollingUpdate` in `pkg/controller/statefulset/
//! stateful_set_control.go`), and Pod availability under
//! `minReadySeconds`. Pure functions.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::identity::LABEL_REVISION;
use crate::k8s::controllers::util::{self, label};

/// How long until a Pod counts as available: `None` while it is not
/// Running and Ready, zero once it has been Ready for `minReadySeconds`
/// (`isRunningAndAvailable`).
pub fn available_in(pod: &Value, min_ready_seconds: i64, now: SystemTime) -> Option<Duration> {
    if !util::is_running_and_ready(pod) {
        return None;
    }
    if min_ready_seconds <= 0 {
        return Some(Duration::ZERO);
    }
    let since = util::ready_condition(pod)
        .and_then(|c| c["lastTransitionTime"].as_str())
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok());
    let Some(since) = since else {
        // No transition time: the real check treats it as ready since long.
        return Some(Duration::ZERO);
    };
    let ready_for = now.duration_since(since).unwrap_or(Duration::ZERO);
    let need = Duration::from_secs(min_ready_seconds.unsigned_abs());
    Some(need.saturating_sub(ready_for))
}

/// The status of `set` given its Pods (those it owns, in range or not).
/// `currentRevision` moves to the update revision once a rolling update
/// has every Pod updated and ready.
pub fn compute(set: &Value, pods: &[&Value], update_revision: &str, now: SystemTime) -> Value {
    let min_ready = set["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let current_revision = set["status"]["currentRevision"]
        .as_str()
        .filter(|r| !r.is_empty())
        .unwrap_or(update_revision);
    let (mut replicas, mut ready, mut available, mut current, mut updated) = (0, 0, 0, 0, 0);
    for pod in pods {
        // Every stored Pod is "created" (the API server sets phase Pending
        // on create, so the real `isCreated` holds for all).
        replicas += 1;
        if util::is_running_and_ready(pod) {
            ready += 1;
            if available_in(pod, min_ready, now) == Some(Duration::ZERO) {
                available += 1;
            }
        }
        if !util::is_terminating(pod) {
            let rev = label(pod, LABEL_REVISION).unwrap_or("");
            if rev == current_revision {
                current += 1;
            }
            if rev == update_revision {
                updated += 1;
            }
        }
    }
    let mut current_revision = current_revision.to_string();
    let rolling = set["spec"]["updateStrategy"]["type"]
        .as_str()
        .unwrap_or("RollingUpdate")
        == "RollingUpdate";
    if rolling && updated == replicas && ready == replicas {
        current_revision = update_revision.to_string();
        current = updated;
    }
    let mut status = json!({
        "observedGeneration": set["metadata"]["generation"],
        "replicas": replicas,
        "availableReplicas": available,
        "currentRevision": current_revision,
        "updateRevision": update_revision,
        "collisionCount": 0,
    });
    // `omitempty` in `apps/v1` StatefulSetStatus.
    for (field, n) in [
        ("readyReplicas", ready),
        ("currentReplicas", current),
        ("updatedReplicas", updated),
    ] {
        if n > 0 {
            status[field] = json!(n);
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(rev: &str, phase: &str, ready: bool) -> Value {
        json!({
            "metadata": {"labels": {LABEL_REVISION: rev}},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}, "lastTransitionTime": "2025-01-01T00:00:00Z"}]},
        })
    }

    #[test]
    fn counts_follow_compute_replica_status() {
        let set = json!({"metadata": {"generation": 4}, "spec": {}, "status": {"currentRevision": "zk-old"}});
        let a = pod("zk-old", "Running", true);
        let b = pod("zk-new", "Running", true);
        let mut c = pod("zk-new", "Running", true);
        c["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        let d = pod("zk-old", "Pending", false);
        let s = compute(&set, &[&a, &b, &c, &d], "zk-new", SystemTime::now());
        assert_eq!(
            s,
            json!({
                "observedGeneration": 4, "replicas": 4, "readyReplicas": 3, "availableReplicas": 3,
                "currentReplicas": 2, "updatedReplicas": 1,
                "currentRevision": "zk-old", "updateRevision": "zk-new", "collisionCount": 0,
            })
        );
    }

    #[test]
    fn a_finished_rolling_update_makes_the_update_revision_current() {
        let set = json!({"metadata": {"generation": 2}, "spec": {}, "status": {"currentRevision": "zk-old"}});
        let a = pod("zk-new", "Running", true);
        let s = compute(&set, &[&a], "zk-new", SystemTime::now());
        assert_eq!(s["currentRevision"], "zk-new");
        assert_eq!(s["currentReplicas"], 1);
        let empty = compute(
            &json!({"metadata": {"generation": 1}, "spec": {}}),
            &[],
            "zk-a",
            SystemTime::now(),
        );
        assert_eq!(
            empty,
            json!({"observedGeneration": 1, "replicas": 0, "availableReplicas": 0, "currentRevision": "zk-a", "updateRevision": "zk-a", "collisionCount": 0})
        );
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let p = pod("r", "Running", true);
        let t = humantime::parse_rfc3339("2025-01-01T00:00:10Z").unwrap();
        assert_eq!(available_in(&p, 0, t), Some(Duration::ZERO));
        assert_eq!(available_in(&p, 30, t), Some(Duration::from_secs(20)));
        assert_eq!(available_in(&p, 5, t), Some(Duration::ZERO));
        assert_eq!(available_in(&pod("r", "Running", false), 0, t), None);
    }
}
