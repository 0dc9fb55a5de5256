//! A StatefulSet member's identity, built from the set: Pod names and
//! ordinals, the Pod from the template, its claims, the revision hash and
//! the claims' owner references under the retention policy
//! (`pkg/controller/statefulset/stateful_set_utils.go`). Pure functions.

use std::ops::Range;

use serde_json::{Map, Value, json};

use crate::k8s::controllers::util::{label, owner_ref, uid_of};
use crate::k8s::resources;
use crate::k8s::store::{name_of, namespace_of};

/// `apps.StatefulSetPodNameLabel`.
pub const LABEL_POD_NAME: &str = "statefulset.kubernetes.io/pod-name";
/// `apps.PodIndexLabel` (on by default since 1.28, GA in 1.32).
pub const LABEL_POD_INDEX: &str = "apps.kubernetes.io/pod-index";
/// `apps.StatefulSetRevisionLabel` / `ControllerRevisionHashLabelKey`.
pub const LABEL_REVISION: &str = "controller-revision-hash";

/// `spec.replicas`, 1 when unset (as defaulting does).
pub fn replicas(set: &Value) -> i64 {
    set["spec"]["replicas"].as_i64().unwrap_or(1).max(0)
}

/// `spec.ordinals.start`, 0 when unset.
pub fn start_ordinal(set: &Value) -> i64 {
    set["spec"]["ordinals"]["start"]
        .as_i64()
        .unwrap_or(0)
        .max(0)
}

/// The ordinals the set should have Pods for.
pub fn ordinal_range(set: &Value) -> Range<i64> {
    let start = start_ordinal(set);
    start..start + replicas(set)
}

/// `<set>-<ordinal>` (`getPodName`).
pub fn pod_name(set: &Value, ordinal: i64) -> String {
    format!("{}-{ordinal}", name_of(set))
}

/// The ordinal of a Pod named `<set>-<n>` (`getParentNameAndOrdinal`),
/// `None` for any other name.
pub fn ordinal_of(set_name: &str, pod_name: &str) -> Option<i64> {
    let (parent, n) = pod_name.rsplit_once('-')?;
    if parent != set_name || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// `<template>-<set>-<ordinal>` (`getPersistentVolumeClaimName`).
pub fn claim_name(set: &Value, template: &Value, ordinal: i64) -> String {
    format!("{}-{}-{ordinal}", name_of(template), name_of(set))
}

/// The revision of the current template, as the ControllerRevision name the
/// real controller gives it: `<set>-<hash>`, the hash being FNV-1a 32 over
/// the JSON patch `{"spec":{"template":{...,"$patch":"replace"}}}` with
/// sorted keys, encoded with `rand.SafeEncodeString`
/// (`pkg/controller/history/controller_history.go` `HashControllerRevision`,
/// `stateful_set_utils.go` `getPatch`).
pub fn revision_name(set: &Value) -> String {
    let mut template = set["spec"]["template"].clone();
    if !template.is_object() {
        template = json!({});
    }
    template["$patch"] = json!("replace");
    let patch = json!({"spec": {"template": template}});
    let bytes = canonical_json(&patch);
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{}-{}", name_of(set), safe_encode(&hash.to_string()))
}

/// JSON with every object's keys sorted (Go's `json.Marshal` of a map).
fn canonical_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// `k8s.io/apimachinery/pkg/util/rand.SafeEncodeString`: no vowels, no
/// look-alikes, so a hash never spells a word.
fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// The claims of the member `ordinal` (`getPersistentVolumeClaims`): each
/// template with its name, the set's namespace, and the template's labels
/// plus the selector's `matchLabels`. Keyed by template name, in template
/// order.
pub fn claims(set: &Value, ordinal: i64) -> Vec<(String, Value)> {
    let empty = Vec::new();
    let templates = set["spec"]["volumeClaimTemplates"]
        .as_array()
        .unwrap_or(&empty);
    templates
        .iter()
        .map(|t| {
            let mut meta = Map::new();
            meta.insert("name".into(), json!(claim_name(set, t, ordinal)));
            meta.insert("namespace".into(), json!(namespace_of(set)));
            let mut labels = t["metadata"]["labels"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            if let Some(ml) = set["spec"]["selector"]["matchLabels"].as_object() {
                labels.extend(ml.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            if !labels.is_empty() {
                meta.insert("labels".into(), Value::Object(labels));
            }
            if let Some(a) = t["metadata"]["annotations"].as_object() {
                meta.insert("annotations".into(), Value::Object(a.clone()));
            }
            let claim = json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": meta,
                "spec": t["spec"],
            });
            (name_of(t).to_string(), claim)
        })
        .collect()
}

/// A new member (`newStatefulSetPod`): the template's labels, annotations
/// and spec, the set as controller, the identity (name, pod-name and
/// pod-index labels, hostname, subdomain), the claims as volumes, and the
/// revision label.
pub fn new_pod(set: &Value, ordinal: i64, revision: &str) -> Value {
    let template = &set["spec"]["template"];
    let name = pod_name(set, ordinal);
    let mut labels = template["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    labels.insert(LABEL_POD_NAME.into(), json!(name));
    labels.insert(LABEL_POD_INDEX.into(), json!(ordinal.to_string()));
    labels.insert(LABEL_REVISION.into(), json!(revision));
    let mut meta = json!({
        "name": name,
        "generateName": format!("{}-", name_of(set)),
        "namespace": namespace_of(set),
        "labels": labels,
        "ownerReferences": [owner_ref(resources::statefulsets(), set, true)],
    });
    for field in ["annotations", "finalizers"] {
        if let Some(v) = template["metadata"].get(field).filter(|v| !v.is_null()) {
            meta[field] = v.clone();
        }
    }
    let mut spec = template["spec"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    spec["hostname"] = json!(name);
    if let Some(svc) = set["spec"]["serviceName"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        spec["subdomain"] = json!(svc);
    }
    // updateStorage: the claims' volumes first, then the template's others.
    let claims = claims(set, ordinal);
    let mut volumes: Vec<Value> = claims
        .iter()
        .map(|(tname, claim)| {
            json!({"name": tname, "persistentVolumeClaim": {"claimName": name_of(claim)}})
        })
        .collect();
    if let Some(existing) = spec["volumes"].as_array() {
        volumes.extend(
            existing
                .iter()
                .filter(|v| !claims.iter().any(|(t, _)| v["name"].as_str() == Some(t)))
                .cloned(),
        );
    }
    if !volumes.is_empty() {
        spec["volumes"] = Value::Array(volumes);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

/// The identity labels are in place (`identityMatches`, for what can still
/// change on a running Pod).
pub fn identity_matches(set: &Value, pod: &Value, ordinal: i64) -> bool {
    label(pod, LABEL_POD_NAME) == Some(&pod_name(set, ordinal))
        && label(pod, LABEL_POD_INDEX) == Some(&ordinal.to_string())
}

/// `spec.persistentVolumeClaimRetentionPolicy` says `Delete` for `field`
/// (`whenDeleted` or `whenScaled`); `Retain` is the default.
fn policy_deletes(set: &Value, field: &str) -> bool {
    set["spec"]["persistentVolumeClaimRetentionPolicy"][field] == "Delete"
}

/// The owner references a member's claim should carry under the retention
/// policy (`updateClaimOwnerRefForSetAndPod`): the set when claims go with
/// the set (`whenDeleted: Delete`) and the member is in range; the Pod when
/// claims go on scale-down (`whenScaled: Delete`) and the member is
/// condemned. Other owners are kept.
pub fn claim_owner_refs(set: &Value, claim: &Value, pod: &Value, condemned: bool) -> Vec<Value> {
    let mut refs: Vec<Value> = claim["metadata"]["ownerReferences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (set_uid, pod_uid) = (uid_of(set), uid_of(pod));
    let when_deleted = policy_deletes(set, "whenDeleted");
    let when_scaled = policy_deletes(set, "whenScaled");
    let want_set = when_deleted && !(when_scaled && condemned);
    let want_pod = when_scaled && condemned;
    refs.retain(|r| {
        let uid = r["uid"].as_str().unwrap_or("");
        (uid != set_uid || want_set) && (uid != pod_uid || want_pod)
    });
    let has = |refs: &[Value], uid: &str| refs.iter().any(|r| r["uid"].as_str() == Some(uid));
    if want_set && !has(&refs, set_uid) {
        refs.push(owner_ref(resources::statefulsets(), set, false));
    }
    if want_pod && !has(&refs, pod_uid) {
        refs.push(owner_ref(resources::pods(), pod, false));
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> Value {
        json!({
            "metadata": {"name": "zk", "namespace": "db", "uid": "set-uid"},
            "spec": {
                "replicas": 3,
                "serviceName": "zk-hs",
                "selector": {"matchLabels": {"app": "zk"}},
                "template": {
                    "metadata": {"labels": {"app": "zk"}, "annotations": {"a": "b"}},
                    "spec": {
                        "containers": [{"name": "zk", "image": "zookeeper:3.8"}],
                        "volumes": [{"name": "conf", "configMap": {"name": "zk-conf"}}, {"name": "data", "emptyDir": {}}],
                    },
                },
                "volumeClaimTemplates": [{
                    "metadata": {"name": "data", "labels": {"tier": "storage"}},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }],
            },
        })
    }

    #[test]
    fn ordinals_parse_only_the_sets_own_names() {
        assert_eq!(ordinal_of("zk", "zk-0"), Some(0));
        assert_eq!(ordinal_of("zk", "zk-12"), Some(12));
        assert_eq!(ordinal_of("zk", "zk-web-1"), None);
        assert_eq!(ordinal_of("zk-web", "zk-web-1"), Some(1));
        assert_eq!(ordinal_of("zk", "zk-"), None);
        assert_eq!(ordinal_of("zk", "zk-1a"), None);
        let mut s = set();
        assert_eq!(ordinal_range(&s), 0..3);
        s["spec"]["ordinals"] = json!({"start": 1});
        assert_eq!(ordinal_range(&s), 1..4);
        s["spec"].as_object_mut().unwrap().remove("replicas");
        assert_eq!(ordinal_range(&s), 1..2, "replicas defaults to 1");
    }

    #[test]
    fn a_new_pod_carries_identity_claims_and_revision() {
        let s = set();
        let pod = new_pod(&s, 2, "zk-abc");
        assert_eq!(
            pod["metadata"],
            json!({
                "name": "zk-2",
                "generateName": "zk-",
                "namespace": "db",
                "labels": {"app": "zk", LABEL_POD_NAME: "zk-2", LABEL_POD_INDEX: "2", LABEL_REVISION: "zk-abc"},
                "annotations": {"a": "b"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "zk", "uid": "set-uid", "controller": true, "blockOwnerDeletion": true}],
            })
        );
        assert_eq!(pod["spec"]["hostname"], "zk-2");
        assert_eq!(pod["spec"]["subdomain"], "zk-hs");
        assert_eq!(
            pod["spec"]["volumes"],
            json!([
                {"name": "data", "persistentVolumeClaim": {"claimName": "data-zk-2"}},
                {"name": "conf", "configMap": {"name": "zk-conf"}},
            ]),
            "the claim replaces the template's volume of the same name"
        );
        assert!(identity_matches(&s, &pod, 2));
        assert!(!identity_matches(&s, &pod, 1));
    }

    #[test]
    fn claims_take_the_selector_labels() {
        let c = claims(&set(), 1);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, "data");
        assert_eq!(
            c[0].1["metadata"],
            json!({"name": "data-zk-1", "namespace": "db", "labels": {"tier": "storage", "app": "zk"}})
        );
        assert_eq!(c[0].1["spec"]["resources"]["requests"]["storage"], "1Gi");
    }

    #[test]
    fn the_revision_follows_the_template_only() {
        let a = set();
        let r = revision_name(&a);
        assert!(r.starts_with("zk-") && r.len() > 3, "{r}");
        assert!(
            r[3..]
                .bytes()
                .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
        );
        let mut scaled = a.clone();
        scaled["spec"]["replicas"] = json!(5);
        assert_eq!(revision_name(&scaled), r);
        let mut changed = a.clone();
        changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("zookeeper:3.9");
        assert_ne!(revision_name(&changed), r);
    }

    #[test]
    fn retention_policy_sets_claim_owners() {
        let mut s = set();
        let pod = json!({"metadata": {"name": "zk-2", "uid": "pod-uid"}});
        let claim =
            json!({"metadata": {"name": "data-zk-2", "ownerReferences": [{"uid": "other"}]}});
        let uids = |refs: Vec<Value>| -> Vec<String> {
            refs.iter()
                .map(|r| r["uid"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            uids(claim_owner_refs(&s, &claim, &pod, true)),
            ["other"],
            "Retain/Retain"
        );
        s["spec"]["persistentVolumeClaimRetentionPolicy"] =
            json!({"whenDeleted": "Delete", "whenScaled": "Retain"});
        assert_eq!(
            uids(claim_owner_refs(&s, &claim, &pod, false)),
            ["other", "set-uid"]
        );
        assert_eq!(
            uids(claim_owner_refs(&s, &claim, &pod, true)),
            ["other", "set-uid"]
        );
        s["spec"]["persistentVolumeClaimRetentionPolicy"] =
            json!({"whenDeleted": "Retain", "whenScaled": "Delete"});
        assert_eq!(uids(claim_owner_refs(&s, &claim, &pod, false)), ["other"]);
        assert_eq!(
            uids(claim_owner_refs(&s, &claim, &pod, true)),
            ["other", "pod-uid"]
        );
        s["spec"]["persistentVolumeClaimRetentionPolicy"] =
            json!({"whenDeleted": "Delete", "whenScaled": "Delete"});
        let owned = json!({"metadata": {"ownerReferences": [{"uid": "set-uid"}]}});
        assert_eq!(uids(claim_owner_refs(&s, &owned, &pod, true)), ["pod-uid"]);
        assert_eq!(uids(claim_owner_refs(&s, &owned, &pod, false)), ["set-uid"]);
    }
}
