//! What several controllers share: label selectors, owner references, Pod
//! predicates and the managedFields stamp. Pure functions of JSON objects.

use serde_json::{Map, Value, json};

use crate::k8s::patch;
use crate::k8s::resources::Resource;

/// `metadata.uid` (empty when missing).
pub fn uid_of(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or("")
}

/// A label's value.
pub fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["labels"][key].as_str()
}

/// Whether a map selector (a Service's `spec.selector`) matches `labels`:
/// every pair present. An empty selector matches everything; callers decide
/// what "no selector" means for them.
pub fn map_selector_matches(selector: &Map<String, Value>, labels: &Value) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
}

/// Whether a `metav1.LabelSelector` matches `labels`
/// (`k8s.io/apimachinery/pkg/apis/meta/v1/helpers.go`
/// `LabelSelectorAsSelector`): `null` matches nothing, `{}` everything;
/// `matchLabels` and every `matchExpressions` entry must hold. An unknown
/// operator matches nothing (the real conversion fails).
pub fn label_selector_matches(selector: &Value, labels: &Value) -> bool {
    if selector.is_null() {
        return false;
    }
    if let Some(ml) = selector["matchLabels"].as_object()
        && !map_selector_matches(ml, labels)
    {
        return false;
    }
    let empty = Vec::new();
    let exprs = selector["matchExpressions"].as_array().unwrap_or(&empty);
    exprs.iter().all(|e| {
        let key = e["key"].as_str().unwrap_or("");
        let value = labels.get(key).and_then(Value::as_str);
        let values: Vec<&str> = e["values"]
            .as_array()
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match e["operator"].as_str() {
            Some("In") => value.is_some_and(|v| values.contains(&v)),
            Some("NotIn") => value.is_none_or(|v| !values.contains(&v)),
            Some("Exists") => value.is_some(),
            Some("DoesNotExist") => value.is_none(),
            _ => false,
        }
    })
}

/// The owner reference with `controller: true`, if any.
pub fn controller_ref(obj: &Value) -> Option<&Value> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
}

/// Whether `obj`'s controller is the object with `uid`.
pub fn controlled_by(obj: &Value, uid: &str) -> bool {
    controller_ref(obj).is_some_and(|r| r["uid"].as_str() == Some(uid))
}

/// An owner reference to `owner` (`metav1.NewControllerRef` when
/// `controller`).
pub fn owner_ref(resource: &Resource, owner: &Value, controller: bool) -> Value {
    let mut r = json!({
        "apiVersion": resource.api_version(),
        "kind": resource.kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    });
    if controller {
        r["controller"] = json!(true);
        r["blockOwnerDeletion"] = json!(true);
    }
    r
}

/// `status.phase` (empty when missing).
pub fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("")
}

/// The Pod's Ready condition is True (`podutil.IsPodReady`).
pub fn is_pod_ready(pod: &Value) -> bool {
    ready_condition(pod).is_some_and(|c| c["status"] == "True")
}

/// The Ready condition.
pub fn ready_condition(pod: &Value) -> Option<&Value> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
}

/// Running with Ready true (`isRunningAndReady` in
/// `pkg/controller/statefulset/stateful_set_utils.go`).
pub fn is_running_and_ready(pod: &Value) -> bool {
    phase(pod) == "Running" && is_pod_ready(pod)
}

/// Being deleted (`deletionTimestamp` set).
pub fn is_terminating(obj: &Value) -> bool {
    obj["metadata"]["deletionTimestamp"].is_string()
}

/// Succeeded or Failed: its containers will not run again.
pub fn is_terminal(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Records a controller's write in `metadata.managedFields`, as the real
/// server's field manager does for any client (operation `Update`, with
/// the subresource for a status write).
pub fn record_write(
    resource: &Resource,
    subresource: Option<&str>,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
) {
    match subresource {
        Some(sub) => patch::record_subresource_update(resource, sub, old, new, manager),
        None => patch::record_update(resource, old, new, manager, "Update"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_follow_the_metav1_rules() {
        let labels = json!({"app": "zk", "tier": "db"});
        assert!(!label_selector_matches(&Value::Null, &labels));
        assert!(label_selector_matches(&json!({}), &labels));
        assert!(label_selector_matches(
            &json!({"matchLabels": {"app": "zk"}}),
            &labels
        ));
        assert!(!label_selector_matches(
            &json!({"matchLabels": {"app": "web"}}),
            &labels
        ));
        let expr = |op: &str, values: Value| json!({"matchExpressions": [{"key": "tier", "operator": op, "values": values}]});
        assert!(label_selector_matches(
            &expr("In", json!(["db", "x"])),
            &labels
        ));
        assert!(!label_selector_matches(
            &expr("NotIn", json!(["db"])),
            &labels
        ));
        assert!(label_selector_matches(&expr("Exists", json!([])), &labels));
        assert!(!label_selector_matches(
            &expr("DoesNotExist", json!([])),
            &labels
        ));
        assert!(!label_selector_matches(&expr("Bogus", json!([])), &labels));
        let missing =
            json!({"matchExpressions": [{"key": "nope", "operator": "NotIn", "values": ["a"]}]});
        assert!(label_selector_matches(&missing, &labels));
    }

    #[test]
    fn map_selectors_need_every_pair() {
        let sel = json!({"app": "zk", "statefulset.kubernetes.io/pod-name": "zk-0"});
        let sel = sel.as_object().unwrap();
        assert!(map_selector_matches(
            sel,
            &json!({"app": "zk", "statefulset.kubernetes.io/pod-name": "zk-0", "x": "y"})
        ));
        assert!(!map_selector_matches(sel, &json!({"app": "zk"})));
    }

    #[test]
    fn readiness_needs_running_and_the_ready_condition() {
        let pod = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(is_running_and_ready(&pod));
        let pending = json!({"status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(!is_running_and_ready(&pending));
        let not_ready = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}});
        assert!(!is_running_and_ready(&not_ready));
    }
}
