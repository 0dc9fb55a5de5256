//! Server-side apply and managed-fields bookkeeping, checked against what
//! a real 1.33 server writes.

use serde_json::{Value, json};

use super::{apply_at, record_at};
use crate::k8s::resources::{self, Resource};

const T1: &str = "2025-01-01T00:00:00Z";
const T2: &str = "2025-01-01T00:01:00Z";
const T3: &str = "2025-01-01T00:02:00Z";

fn managed_fields(obj: &Value) -> String {
    obj["metadata"]["managedFields"].to_string()
}

/// The FieldsV1 of `manager`'s entry.
fn fields_of(obj: &Value, manager: &str) -> String {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["manager"] == manager))
        .map(|e| e["fieldsV1"].to_string())
        .unwrap_or_default()
}

fn managers(obj: &Value) -> Vec<String> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|e| {
                    format!(
                        "{}/{}",
                        e["manager"].as_str().unwrap_or(""),
                        e["operation"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn zk_service(labels: Value, ports: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "zk", "namespace": "default", "labels": labels},
        "spec": {"selector": {"app": "zk"}, "ports": ports},
    })
}

fn client_port() -> Value {
    json!({"name": "client", "port": 2181, "targetPort": 2181})
}

fn zk_sts(replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "zk", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "serviceName": "zk-hs",
            "selector": {"matchLabels": {"app": "zk"}},
            "template": {
                "metadata": {"labels": {"app": "zk"}},
                "spec": {"containers": [{
                    "name": "zookeeper", "image": "zookeeper:3.8",
                    "env": [{"name": "ZOO_MY_ID", "value": "1"}],
                }]},
            },
        },
    })
}

fn apply(r: &Resource, live: Option<&Value>, cfg: &Value, manager: &str, now: &str) -> Value {
    apply_at(r, live, cfg, manager, false, now).expect("apply succeeds")
}

#[test]
fn create_by_apply_encodes_service_ports_as_a_real_server() {
    let svc = resources::services();
    let cfg = zk_service(json!({"app": "zk"}), json!([client_port()]));
    let created = apply(svc, None, &cfg, "zkmigrate", T1);
    assert_eq!(
        managed_fields(&created),
        r#"[{"apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:ports":{"k:{\"port\":2181,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{},"f:targetPort":{}}},"f:selector":{}}},"manager":"zkmigrate","operation":"Apply","time":"2025-01-01T00:00:00Z"}]"#
    );
    let mut body = created.clone();
    body["metadata"]
        .as_object_mut()
        .map(|m| m.remove("managedFields"));
    assert_eq!(body, cfg);
}

#[test]
fn reapply_is_idempotent_and_keeps_defaulted_fields() {
    let svc = resources::services();
    let cfg = zk_service(json!({"app": "zk"}), json!([client_port()]));
    let mut live = apply(svc, None, &cfg, "zkmigrate", T1);
    // What admission adds (owned by nobody).
    live["spec"]["clusterIP"] = json!("10.96.0.10");
    live["spec"]["type"] = json!("ClusterIP");
    live["spec"]["ports"][0]["protocol"] = json!("TCP");
    let again = apply(svc, Some(&live), &cfg, "zkmigrate", T2);
    assert_eq!(again, live, "same object, same managedFields, same time");
}

#[test]
fn fields_the_applier_stops_setting_are_removed() {
    let svc = resources::services();
    let first = zk_service(
        json!({"app": "zk", "tier": "db"}),
        json!([client_port(), {"name": "quorum", "port": 2888}]),
    );
    let live = apply(svc, None, &first, "zkmigrate", T1);
    let second = zk_service(json!({"app": "zk"}), json!([client_port()]));
    let out = apply(svc, Some(&live), &second, "zkmigrate", T2);
    assert_eq!(out["metadata"]["labels"], json!({"app": "zk"}));
    assert_eq!(out["spec"]["ports"], json!([client_port()]));
    assert_eq!(
        fields_of(&out, "zkmigrate"),
        r#"{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:ports":{"k:{\"port\":2181,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{},"f:targetPort":{}}},"f:selector":{}}}"#
    );
    assert_eq!(out["metadata"]["managedFields"][0]["time"], T2);
}

#[test]
fn two_appliers_share_labels_and_conflict_on_different_values() {
    let svc = resources::services();
    let live = apply(
        svc,
        None,
        &zk_service(json!({"app": "zk"}), json!([client_port()])),
        "zkmigrate",
        T1,
    );
    let kubectl_cfg = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "zk", "namespace": "default", "labels": {"app": "zk", "team": "data"}}});
    let shared = apply(svc, Some(&live), &kubectl_cfg, "kubectl", T2);
    assert_eq!(
        shared["metadata"]["labels"],
        json!({"app": "zk", "team": "data"})
    );
    assert_eq!(
        fields_of(&shared, "kubectl"),
        r#"{"f:metadata":{"f:labels":{"f:app":{},"f:team":{}}}}"#
    );
    // zkmigrate stops setting labels: `app` stays, kubectl still owns it.
    let no_labels = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "zk", "namespace": "default"},
        "spec": {"selector": {"app": "zk"}, "ports": [client_port()]}});
    let out = apply(svc, Some(&shared), &no_labels, "zkmigrate", T3);
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "zk", "team": "data"})
    );
    assert!(!fields_of(&out, "zkmigrate").contains("labels"));
    // A different value for a shared label is a conflict with the owner.
    let mut other = kubectl_cfg.clone();
    other["metadata"]["labels"]["app"] = json!("zookeeper");
    let err = apply_at(svc, Some(&shared), &other, "kubectl", false, T3).expect_err("conflict");
    assert_eq!(
        err.message,
        r#"Apply failed with 1 conflict: conflict with "zkmigrate": .metadata.labels.app"#
    );
}

#[test]
fn replicas_changed_by_an_updater_conflict_until_forced() {
    let sts = resources::statefulsets();
    let live = apply(sts, None, &zk_sts(3), "zkmigrate", T1);
    // `kubectl edit` sets replicas to 5: an Update takes ownership.
    let mut edited = live.clone();
    edited["spec"]["replicas"] = json!(5);
    record_at(
        sts,
        Some(&live),
        &mut edited,
        "kubectl-edit",
        "Update",
        "",
        T2,
    );
    assert_eq!(
        fields_of(&edited, "kubectl-edit"),
        r#"{"f:spec":{"f:replicas":{}}}"#
    );
    assert!(!fields_of(&edited, "zkmigrate").contains("replicas"));

    let err =
        apply_at(sts, Some(&edited), &zk_sts(3), "zkmigrate", false, T3).expect_err("conflict");
    let status = err.to_status();
    assert_eq!(
        status.to_string(),
        r#"{"apiVersion":"v1","code":409,"details":{"causes":[{"field":".spec.replicas","message":"conflict with \"kubectl-edit\" using apps/v1","reason":"FieldManagerConflict"}]},"kind":"Status","message":"Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas","metadata":{},"reason":"Conflict","status":"Failure"}"#
    );

    let forced = apply_at(sts, Some(&edited), &zk_sts(3), "zkmigrate", true, T3).expect("force");
    assert_eq!(forced["spec"]["replicas"], 3);
    assert_eq!(managers(&forced), vec!["zkmigrate/Apply"]);
    assert!(fields_of(&forced, "zkmigrate").contains(r#""f:replicas":{}"#));
}

#[test]
fn apply_after_an_edit_keeps_the_editors_fields() {
    let sts = resources::statefulsets();
    let live = apply(sts, None, &zk_sts(3), "zkmigrate", T1);
    let mut edited = live.clone();
    edited["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .expect("env")
        .push(json!({"name": "EXTRA", "value": "1"}));
    record_at(
        sts,
        Some(&live),
        &mut edited,
        "kubectl-edit",
        "Update",
        "",
        T2,
    );
    assert_eq!(
        fields_of(&edited, "kubectl-edit"),
        r#"{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"zookeeper\"}":{"f:env":{"k:{\"name\":\"EXTRA\"}":{".":{},"f:name":{},"f:value":{}}}}}}}}}"#
    );
    let mut cfg = zk_sts(3);
    cfg["spec"]["template"]["spec"]["containers"][0]["image"] = json!("zookeeper:3.9");
    let out = apply(sts, Some(&edited), &cfg, "zkmigrate", T3);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "ZOO_MY_ID", "value": "1"}, {"name": "EXTRA", "value": "1"}])
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["image"],
        "zookeeper:3.9"
    );
    assert_eq!(
        managers(&out),
        vec!["zkmigrate/Apply", "kubectl-edit/Update"]
    );
}

#[test]
fn create_by_update_marks_new_objects_with_dot() {
    // `kubectl create` of a Service, as a real server records it.
    let svc = resources::services();
    let mut obj = zk_service(
        json!({"app": "zk"}),
        json!([{"name": "client", "port": 2181, "protocol": "TCP", "targetPort": 2181}]),
    );
    record_at(svc, None, &mut obj, "kubectl-create", "Update", "", T1);
    assert_eq!(
        managed_fields(&obj),
        r#"[{"apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:ports":{".":{},"k:{\"port\":2181,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{},"f:protocol":{},"f:targetPort":{}}},"f:selector":{}}},"manager":"kubectl-create","operation":"Update","time":"2025-01-01T00:00:00Z"}]"#
    );
    // An update that changes nothing leaves the entry (and its time) alone.
    let old = obj.clone();
    record_at(
        svc,
        Some(&old),
        &mut obj,
        "kubectl-create",
        "Update",
        "",
        T2,
    );
    assert_eq!(obj, old);
}

#[test]
fn endpoint_slice_lists_are_atomic() {
    let slices = resources::endpointslices();
    let mut slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "zk-abc", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "zk",
                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "zk", "uid": "u-1",
                                          "controller": true, "blockOwnerDeletion": true}]},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.0.5"], "conditions": {"ready": true}}],
        "ports": [{"name": "client", "port": 2181, "protocol": "TCP"}],
    });
    record_at(
        slices,
        None,
        &mut slice,
        "endpointslice-controller.k8s.io",
        "Update",
        "",
        T1,
    );
    assert_eq!(
        fields_of(&slice, "endpointslice-controller.k8s.io"),
        r#"{"f:addressType":{},"f:endpoints":{},"f:metadata":{"f:labels":{".":{},"f:endpointslice.kubernetes.io/managed-by":{},"f:kubernetes.io/service-name":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"u-1\"}":{}}},"f:ports":{}}"#
    );
}

#[test]
fn status_belongs_to_the_status_subresource() {
    let pods = resources::pods();
    let old = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "zk-0", "namespace": "default"},
        "spec": {"containers": [{"name": "zookeeper", "image": "zookeeper:3.8"}]},
        "status": {"phase": "Pending"}});
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"statefulset.kubernetes.io/pod-name": "zk-0"});
    new["status"]["phase"] = json!("Running");
    record_at(
        pods,
        Some(&old),
        &mut new,
        "statefulset-controller",
        "Update",
        "",
        T1,
    );
    assert_eq!(
        fields_of(&new, "statefulset-controller"),
        r#"{"f:metadata":{"f:labels":{".":{},"f:statefulset.kubernetes.io/pod-name":{}}}}"#
    );
    let before = new.clone();
    new["status"]["podIP"] = json!("10.244.0.5");
    new["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
    record_at(
        pods,
        Some(&before),
        &mut new,
        "kubelet",
        "Update",
        "status",
        T2,
    );
    assert_eq!(
        new["metadata"]["managedFields"][1].to_string(),
        r#"{"apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:status":{"f:conditions":{".":{},"k:{\"type\":\"Ready\"}":{".":{},"f:status":{},"f:type":{}}},"f:podIP":{}}},"manager":"kubelet","operation":"Update","subresource":"status","time":"2025-01-01T00:01:00Z"}"#
    );
}

#[test]
fn objects_nobody_tracked_belong_to_before_first_apply() {
    let sts = resources::statefulsets();
    let live = zk_sts(1);
    let err = apply_at(sts, Some(&live), &zk_sts(3), "zkmigrate", false, T1).expect_err("conflict");
    assert_eq!(
        err.message,
        r#"Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas"#
    );
    let out = apply_at(sts, Some(&live), &zk_sts(3), "zkmigrate", true, T1).expect("forced");
    assert_eq!(
        managers(&out),
        vec!["zkmigrate/Apply", "before-first-apply/Update"]
    );
}

#[test]
fn malformed_applies_are_refused() {
    let sts = resources::statefulsets();
    let mut wrong_kind = zk_sts(1);
    wrong_kind["kind"] = json!("Deployment");
    let e = apply_at(sts, None, &wrong_kind, "zkmigrate", false, T1).expect_err("kind");
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "invalid object type: apps/v1, Kind=Deployment")
    );
    let mut with_mf = zk_sts(1);
    with_mf["metadata"]["managedFields"] = json!([]);
    let e = apply_at(sts, None, &with_mf, "zkmigrate", false, T1).expect_err("managedFields");
    assert_eq!(e.message, "metadata.managedFields must be nil");
    let e = apply_at(sts, None, &zk_sts(1), "", false, T1).expect_err("manager");
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            422,
            r#"PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch"#
        )
    );
    let mut dup = zk_sts(1);
    dup["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]);
    let e = apply_at(sts, None, &dup, "zkmigrate", false, T1).expect_err("duplicate key");
    assert_eq!(e.code, 500);
    assert!(
        e.message.contains("duplicate entries for key [name=\"A\"]"),
        "{}",
        e.message
    );
}

#[test]
fn nested_fields_dropped_from_the_config_are_pruned_alone() {
    let sts = resources::statefulsets();
    let mut live = apply(sts, None, &zk_sts(3), "zkmigrate", T1);
    // Defaulted by admission, owned by nobody: survives the prune.
    live["spec"]["podManagementPolicy"] = json!("OrderedReady");
    let mut cfg = zk_sts(3);
    cfg["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .map(|c| c.remove("env"));
    let out = apply(sts, Some(&live), &cfg, "zkmigrate", T2);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "zookeeper", "image": "zookeeper:3.8"}])
    );
    assert_eq!(out["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(out["metadata"]["managedFields"][0]["time"], T2);
}

#[test]
fn scale_and_status_writers_are_named_with_their_subresource() {
    let sts = resources::statefulsets();
    let live = apply(sts, None, &zk_sts(3), "zkmigrate", T1);
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(5);
    record_at(
        sts,
        Some(&live),
        &mut scaled,
        "kubectl-scale",
        "Update",
        "scale",
        T2,
    );
    let err =
        apply_at(sts, Some(&scaled), &zk_sts(3), "zkmigrate", false, T3).expect_err("conflict");
    assert_eq!(
        err.message,
        r#"Apply failed with 1 conflict: conflict with "kubectl-scale" with subresource "scale" using apps/v1: .spec.replicas"#
    );
    let status = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "zk", "namespace": "default"},
        "status": {"replicas": 3, "readyReplicas": 3}});
    let out =
        super::apply_subresource_at(sts, "status", Some(&live), &status, "sts-status", false, T2)
            .expect("status apply");
    assert_eq!(
        out["metadata"]["managedFields"][1].to_string(),
        r#"{"apiVersion":"apps/v1","fieldsType":"FieldsV1","fieldsV1":{"f:status":{"f:readyReplicas":{},"f:replicas":{}}},"manager":"sts-status","operation":"Apply","subresource":"status","time":"2025-01-01T00:01:00Z"}"#
    );
}
