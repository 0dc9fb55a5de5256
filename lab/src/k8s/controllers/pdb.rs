//! PodDisruptionBudget status (`pkg/controller/disruption`,
//! `disruption.go` `getExpectedPodCount`, `countHealthyPods`,
//! `updatePdbStatus`, `failSafe`): how many selected Pods are healthy, how
//! many must be, and so how many may be disrupted now. The eviction API
//! itself is not served by the lab; the status is what `kubectl get pdb`
//! and zkmigrate's checks read.
//!
//! With `maxUnavailable` or a percentage `minAvailable`, the expected count
//! is the sum of the selected Pods' controllers' replicas (StatefulSets are
//! the only scalable kind the lab serves); a selected Pod without such a
//! controller fails the sync safe: no disruption allowed, condition
//! `SyncFailed`.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::ControllerError;
use super::runner::{Outcome, Reconciler};
use super::util::{self, controller_ref, uid_of};
use crate::k8s::error::ApiError;
use crate::k8s::resources::{self, Resource};
use crate::k8s::store::{Store, WatchEvent, name_of, namespace_of};

/// The field manager of the controller's writes.
pub const MANAGER: &str = "disruption-controller";

fn pdbs() -> &'static Resource {
    resources::by_kind("policy", "PodDisruptionBudget").expect("served")
}

/// Keys are (namespace, PodDisruptionBudget name).
pub struct DisruptionController;

impl Reconciler for DisruptionController {
    type Key = (String, String);
    const NAME: &'static str = "disruption";

    fn keys_for_event(&self, store: &Store, event: &WatchEvent, keys: &mut Vec<Self::Key>) {
        let ns = namespace_of(&event.object).to_string();
        if event.resource == pdbs() {
            keys.push((ns, name_of(&event.object).to_string()));
        } else if event.resource == resources::pods() || event.resource == resources::statefulsets()
        {
            let (budgets, _) = store.list(pdbs(), Some(&ns));
            keys.extend(budgets.iter().map(|b| (ns.clone(), name_of(b).to_string())));
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<Self::Key> {
        let (budgets, _) = store.list(pdbs(), None);
        budgets
            .iter()
            .map(|b| (namespace_of(b).to_string(), name_of(b).to_string()))
            .collect()
    }

    fn reconcile(&self, store: &Store, key: &Self::Key) -> Result<Outcome, ControllerError> {
        let (ns, name) = (key.0.as_str(), key.1.as_str());
        let pdb = match store.get(pdbs(), ns, name) {
            Ok(p) => p,
            Err(e) if e.code == 404 => return Ok(Outcome::Done),
            Err(e) => return Err(ControllerError::api("get", "PodDisruptionBudget", ns, name)(e)),
        };
        let (pods, _) = store.list(resources::pods(), Some(ns));
        let pods: Vec<&Value> = pods
            .iter()
            .filter(|p| {
                util::label_selector_matches(&pdb["spec"]["selector"], &p["metadata"]["labels"])
            })
            .collect();
        let status = compute_status(&pdb, &pods, |pod| expected_scale_of(store, pod));
        let uid = uid_of(&pdb).to_string();
        let result = store.write(pdbs(), ns, name, Some("status"), |old| {
            let old = old
                .filter(|o| uid_of(o) == uid)
                .ok_or_else(|| ApiError::not_found("poddisruptionbudgets", "policy", name))?;
            let mut new = old.clone();
            new["status"] = keep_transition_times(&old["status"], status);
            util::record_write(pdbs(), Some("status"), Some(old), &mut new, MANAGER);
            Ok(new)
        });
        match result {
            Ok(_) => Ok(Outcome::Done),
            Err(e) if e.code == 404 => Ok(Outcome::Done),
            Err(e) => Err(ControllerError::api(
                "update status of",
                "PodDisruptionBudget",
                ns,
                name,
            )(e)),
        }
    }
}

/// The controller of a Pod and its replicas: (uid, replicas).
fn expected_scale_of(store: &Store, pod: &Value) -> Result<(String, i64), String> {
    let missing = || format!("found no controllers for pod {:?}", name_of(pod));
    let r = controller_ref(pod).ok_or_else(missing)?;
    if r["kind"] != "StatefulSet" {
        return Err(missing());
    }
    let set = store
        .get(
            resources::statefulsets(),
            namespace_of(pod),
            r["name"].as_str().unwrap_or(""),
        )
        .map_err(|_| missing())?;
    if uid_of(&set) != r["uid"].as_str().unwrap_or("") {
        return Err(missing());
    }
    Ok((
        uid_of(&set).to_string(),
        set["spec"]["replicas"].as_i64().unwrap_or(1),
    ))
}

/// An int-or-percent scaled to `total`, rounded up
/// (`intstr.GetScaledValueFromIntOrPercent(v, total, true)`).
fn scaled(v: &Value, total: i64) -> Result<i64, String> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("invalid value {v}")),
        Value::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            Ok((pct * total + 99).div_euclid(100))
        }
        _ => Err(format!("invalid value {v}")),
    }
}

/// The status for `pdb` over its selected Pods; `scale_of` finds a Pod's
/// controller and its replicas.
pub fn compute_status(
    pdb: &Value,
    pods: &[&Value],
    scale_of: impl Fn(&Value) -> Result<(String, i64), String>,
) -> Value {
    let expected_scale = || -> Result<i64, String> {
        let mut seen: Vec<(String, i64)> = Vec::new();
        for pod in pods {
            let (uid, replicas) = scale_of(pod)?;
            if !seen.iter().any(|(u, _)| *u == uid) {
                seen.push((uid, replicas));
            }
        }
        Ok(seen.iter().map(|(_, r)| r).sum())
    };
    let counts = (|| -> Result<(i64, i64), String> {
        let spec = &pdb["spec"];
        if !spec["maxUnavailable"].is_null() {
            let expected = expected_scale()?;
            let max_unavailable = scaled(&spec["maxUnavailable"], expected)?;
            Ok((expected, (expected - max_unavailable).max(0)))
        } else if let Some(n) = spec["minAvailable"].as_i64() {
            Ok((pods.len() as i64, n))
        } else if !spec["minAvailable"].is_null() {
            let expected = expected_scale()?;
            Ok((expected, scaled(&spec["minAvailable"], expected)?))
        } else {
            Ok((pods.len() as i64, 0))
        }
    })();
    let current_healthy = pods
        .iter()
        .filter(|p| !util::is_terminating(p) && util::is_pod_ready(p))
        .count() as i64;
    let generation = pdb["metadata"]["generation"].clone();
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    match counts {
        Ok((expected, desired)) => {
            let allowed = (current_healthy - desired).max(0);
            let (cond, reason) = if allowed > 0 {
                ("True", "SufficientPods")
            } else {
                ("False", "InsufficientPods")
            };
            json!({
                "observedGeneration": generation,
                "disruptionsAllowed": allowed,
                "currentHealthy": current_healthy,
                "desiredHealthy": desired,
                "expectedPods": expected,
                "conditions": [{
                    "type": "DisruptionAllowed", "status": cond, "reason": reason, "message": "",
                    "observedGeneration": generation, "lastTransitionTime": now,
                }],
            })
        }
        Err(message) => {
            let mut status = pdb["status"].clone();
            if !status.is_object() {
                status = json!({});
            }
            status["disruptionsAllowed"] = json!(0);
            status["conditions"] = json!([{
                "type": "DisruptionAllowed", "status": "False", "reason": "SyncFailed", "message": message,
                "observedGeneration": status["observedGeneration"], "lastTransitionTime": now,
            }]);
            status
        }
    }
}

/// `meta.SetStatusCondition`: a condition whose status did not change keeps
/// its lastTransitionTime (so an unchanged status is no new write).
fn keep_transition_times(old: &Value, mut new: Value) -> Value {
    if let Some(conds) = new["conditions"].as_array_mut() {
        for c in conds {
            let prev = old["conditions"]
                .as_array()
                .and_then(|a| a.iter().find(|o| o["type"] == c["type"]));
            if let Some(prev) = prev.filter(|p| p["status"] == c["status"]) {
                c["lastTransitionTime"] = prev["lastTransitionTime"].clone();
            }
        }
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ready: bool) -> Value {
        json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    fn sts(_: &Value) -> Result<(String, i64), String> {
        Ok(("set".into(), 3))
    }

    #[test]
    fn max_unavailable_counts_against_the_controllers_replicas() {
        let pdb = json!({"metadata": {"generation": 1}, "spec": {"maxUnavailable": 1}});
        let (a, b, c) = (pod(true), pod(true), pod(true));
        let s = compute_status(&pdb, &[&a, &b, &c], sts);
        assert_eq!(
            (
                s["expectedPods"].clone(),
                s["desiredHealthy"].clone(),
                s["currentHealthy"].clone(),
                s["disruptionsAllowed"].clone()
            ),
            (json!(3), json!(2), json!(3), json!(1))
        );
        assert_eq!(s["conditions"][0]["reason"], "SufficientPods");
        let d = pod(false);
        let s = compute_status(&pdb, &[&a, &b, &d], sts);
        assert_eq!(s["disruptionsAllowed"], 0);
        assert_eq!(s["conditions"][0]["status"], "False");
    }

    #[test]
    fn min_available_as_number_and_percentage() {
        let (a, b) = (pod(true), pod(true));
        let s = compute_status(&json!({"spec": {"minAvailable": 1}}), &[&a, &b], sts);
        assert_eq!(
            (s["expectedPods"].clone(), s["disruptionsAllowed"].clone()),
            (json!(2), json!(1))
        );
        let s = compute_status(&json!({"spec": {"minAvailable": "50%"}}), &[&a, &b], sts);
        assert_eq!(s["desiredHealthy"], 2, "50% of 3 rounds up");
    }

    #[test]
    fn a_pod_without_controller_fails_safe() {
        let a = pod(true);
        let s = compute_status(&json!({"spec": {"maxUnavailable": 1}}), &[&a], |_| {
            Err("found no controllers".into())
        });
        assert_eq!(s["disruptionsAllowed"], 0);
        assert_eq!(s["conditions"][0]["reason"], "SyncFailed");
    }

    #[test]
    fn unchanged_conditions_keep_their_transition_time() {
        let old = json!({"conditions": [{"type": "DisruptionAllowed", "status": "True", "lastTransitionTime": "t0"}]});
        let new = json!({"conditions": [{"type": "DisruptionAllowed", "status": "True", "lastTransitionTime": "t1"}]});
        assert_eq!(
            keep_transition_times(&old, new)["conditions"][0]["lastTransitionTime"],
            "t0"
        );
    }
}
