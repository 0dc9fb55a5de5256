//! Defaulting, the first step of admission, done on the stored JSON as the
//! real API server's defaulters do on decoding
//! (`pkg/apis/core/v1/defaults.go`, `pkg/apis/apps/v1/defaults.go`,
//! `pkg/apis/discovery/v1/defaults.go`) plus what the create strategies and
//! default admission plugins add (`PrepareForCreate` statuses, Priority,
//! DefaultTolerationSeconds), so what a client reads back looks like what a
//! real cluster returns.
//!
//! Every helper tolerates odd shapes (a `spec` that is a string, say): it
//! skips what is not an object, never panics, and leaves the rejection to
//! the typed decoding that follows.

use serde_json::{Map, Value, json};

type Obj = Map<String, Value>;

/// `m[k]` as an object, created when missing or null; `None` when `m[k]`
/// holds something else.
fn child<'a>(m: &'a mut Obj, k: &str) -> Option<&'a mut Obj> {
    let slot = m.entry(k.to_string()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = json!({});
    }
    slot.as_object_mut()
}

/// `m[k]` as an object if it is one (never created).
fn existing<'a>(m: &'a mut Obj, k: &str) -> Option<&'a mut Obj> {
    m.get_mut(k).and_then(Value::as_object_mut)
}

/// Sets `m[k]` when missing or null.
fn set_default(m: &mut Obj, k: &str, v: Value) {
    let slot = m.entry(k.to_string()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = v;
    }
}

/// The objects of the array `m[k]`.
fn each<'a>(m: &'a mut Obj, k: &str) -> impl Iterator<Item = &'a mut Obj> {
    m.get_mut(k)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn str_of<'a>(m: &'a Obj, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

/// `SetDefaults_Service` (and the `ServicePort` defaults).
pub fn service(obj: &mut Value) {
    let Some(spec) = obj.as_object_mut().and_then(|o| child(o, "spec")) else {
        return;
    };
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    if str_of(spec, "sessionAffinity") == "ClientIP"
        && let Some(cfg) = child(spec, "sessionAffinityConfig").and_then(|c| child(c, "clientIP"))
    {
        set_default(cfg, "timeoutSeconds", json!(10800));
    }
    for port in each(spec, "ports") {
        set_default(port, "protocol", json!("TCP"));
        let unset = match port.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if unset && let Some(p) = port.get("port").filter(|p| p.is_number()).cloned() {
            port.insert("targetPort".into(), p);
        }
    }
    let kind = str_of(spec, "type").to_string();
    if kind == "NodePort" || kind == "LoadBalancer" {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if kind != "ExternalName" {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if kind == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
}

/// `SetDefaults_PodSpec` and what it recurses into (containers, probes,
/// volumes). `is_pod` adds `SetDefaults_Pod`'s share (service links,
/// requests from limits), which templates do not get.
pub fn pod_spec(spec: &mut Obj, is_pod: bool) {
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    if is_pod {
        set_default(spec, "enableServiceLinks", json!(true));
    }
    for list in ["initContainers", "containers"] {
        for c in each(spec, list) {
            container(c, is_pod);
        }
    }
    for v in each(spec, "volumes") {
        volume(v);
    }
}

/// `SetDefaults_Container`: termination message, pull policy from the tag,
/// port protocols, probe timings.
fn container(c: &mut Obj, is_pod: bool) {
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    if c.get("imagePullPolicy").is_none_or(Value::is_null) {
        let policy = if image_tag(str_of(c, "image")) == Some("latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    set_default(c, "resources", json!({}));
    if is_pod
        && let Some(res) = existing(c, "resources")
        && let Some(limits) = res.get("limits").and_then(Value::as_object).cloned()
        && let Some(requests) = child(res, "requests")
    {
        for (k, v) in limits {
            requests.entry(k).or_insert(v);
        }
    }
    for p in each(c, "ports") {
        set_default(p, "protocol", json!("TCP"));
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = existing(c, probe) {
            set_default(p, "timeoutSeconds", json!(1));
            set_default(p, "periodSeconds", json!(10));
            set_default(p, "successThreshold", json!(1));
            set_default(p, "failureThreshold", json!(3));
            http_get(p);
        }
    }
    if let Some(lc) = existing(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = existing(lc, hook) {
                http_get(h);
            }
        }
    }
    for e in each(c, "env") {
        if let Some(fr) = existing(e, "valueFrom").and_then(|vf| existing(vf, "fieldRef")) {
            set_default(fr, "apiVersion", json!("v1"));
        }
    }
}

/// `SetDefaults_HTTPGetAction`.
fn http_get(handler: &mut Obj) {
    if let Some(h) = existing(handler, "httpGet") {
        set_default(h, "path", json!("/"));
        set_default(h, "scheme", json!("HTTP"));
    }
}

/// The tag `parsers.ParseImageName` finds: `latest` when there is neither
/// tag nor digest, `None` with a digest only.
fn image_tag(image: &str) -> Option<&str> {
    let (name, digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, tag)) => Some(tag),
        None if digest => None,
        None => Some("latest"),
    }
}

/// The volume sources of `core/v1.VolumeSource`, for `SetDefaults_Volume`.
pub const VOLUME_SOURCES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "hostPath",
    "image",
    "iscsi",
    "nfs",
    "persistentVolumeClaim",
    "photonPersistentDisk",
    "portworxVolume",
    "projected",
    "quobyte",
    "rbd",
    "scaleIO",
    "secret",
    "storageos",
    "vsphereVolume",
];

/// `SetDefaults_Volume` (no source: an emptyDir) and the file modes of
/// the projected kinds (0644).
fn volume(v: &mut Obj) {
    if !VOLUME_SOURCES
        .iter()
        .any(|s| v.get(*s).is_some_and(|x| !x.is_null()))
    {
        v.insert("emptyDir".into(), json!({}));
    }
    for src in ["configMap", "secret", "downwardAPI", "projected"] {
        if let Some(s) = existing(v, src) {
            set_default(s, "defaultMode", json!(420));
        }
    }
    if let Some(h) = existing(v, "hostPath") {
        set_default(h, "type", json!(""));
    }
}

/// What a new Pod gets besides its spec defaults: the Priority and
/// DefaultTolerationSeconds admission plugins' fields.
pub fn pod_create(obj: &mut Value) {
    let Some(spec) = obj.as_object_mut().and_then(|o| child(o, "spec")) else {
        return;
    };
    set_default(spec, "priority", json!(0));
    set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    if let Some(tolerations) = spec
        .entry("tolerations")
        .or_insert(json!([]))
        .as_array_mut()
    {
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            let tolerated = tolerations.iter().any(|t| {
                let op = t["operator"].as_str().unwrap_or("Equal");
                let effect = t["effect"].as_str().unwrap_or("");
                (effect.is_empty() || effect == "NoExecute")
                    && ((op == "Exists" && t["key"].as_str().unwrap_or("").is_empty())
                        || t["key"].as_str() == Some(key))
            });
            if !tolerated {
                tolerations.push(json!({
                    "key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300
                }));
            }
        }
    }
}

/// A Pod: its spec's defaults.
pub fn pod(obj: &mut Value) {
    if let Some(spec) = obj.as_object_mut().and_then(|o| child(o, "spec")) {
        pod_spec(spec, true);
    }
}

/// `SetDefaults_StatefulSet`, the template's PodSpec defaults and the
/// claim templates' PVC defaults.
pub fn statefulset(obj: &mut Value) {
    let Some(spec) = obj.as_object_mut().and_then(|o| child(o, "spec")) else {
        return;
    };
    set_default(spec, "podManagementPolicy", json!("OrderedReady"));
    if let Some(strategy) = child(spec, "updateStrategy") {
        if strategy.get("type").is_none_or(Value::is_null) {
            strategy.insert("type".into(), json!("RollingUpdate"));
            set_default(strategy, "rollingUpdate", json!({}));
        }
        if str_of(strategy, "type") == "RollingUpdate"
            && let Some(ru) = existing(strategy, "rollingUpdate")
        {
            set_default(ru, "partition", json!(0));
        }
    }
    if let Some(policy) = child(spec, "persistentVolumeClaimRetentionPolicy") {
        set_default(policy, "whenDeleted", json!("Retain"));
        set_default(policy, "whenScaled", json!("Retain"));
    }
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    if let Some(pod) = child(spec, "template").and_then(|t| child(t, "spec")) {
        pod_spec(pod, false);
    }
    for pvc in each(spec, "volumeClaimTemplates") {
        set_default(pvc, "apiVersion", json!("v1"));
        set_default(pvc, "kind", json!("PersistentVolumeClaim"));
        if let Some(s) = child(pvc, "spec") {
            set_default(s, "volumeMode", json!("Filesystem"));
        }
        if let Some(st) = child(pvc, "status") {
            set_default(st, "phase", json!("Pending"));
        }
    }
}

/// `SetDefaults_PersistentVolumeClaimSpec`; on create also the initial
/// `status.phase: Pending` (`SetDefaults_PersistentVolumeClaim`).
pub fn pvc(obj: &mut Value, create: bool) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    if let Some(spec) = child(o, "spec") {
        set_default(spec, "volumeMode", json!("Filesystem"));
    }
    if create && let Some(st) = child(o, "status") {
        set_default(st, "phase", json!("Pending"));
    }
}

/// `SetDefaults_EndpointPort` (discovery/v1): name `""`, protocol TCP.
pub fn endpointslice(obj: &mut Value) {
    if let Some(o) = obj.as_object_mut() {
        for p in each(o, "ports") {
            set_default(p, "name", json!(""));
            set_default(p, "protocol", json!("TCP"));
        }
    }
}

/// A new Namespace: the `kubernetes` finalizer and phase Active
/// (`pkg/registry/core/namespace/strategy.go` `PrepareForCreate`).
pub fn namespace_create(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    if let Some(spec) = child(o, "spec") {
        set_default(spec, "finalizers", json!(["kubernetes"]));
    }
    if let Some(st) = child(o, "status") {
        set_default(st, "phase", json!("Active"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(image_tag("zookeeper"), Some("latest"));
        assert_eq!(image_tag("zookeeper:3.8"), Some("3.8"));
        assert_eq!(image_tag("registry:5000/zookeeper"), Some("latest"));
        assert_eq!(image_tag("zookeeper@sha256:abc"), None);
        let mut p = json!({"spec": {"containers": [
            {"name": "a", "image": "zookeeper"},
            {"name": "b", "image": "zookeeper:3.8", "ports": [{"containerPort": 2181}]}
        ]}});
        pod(&mut p);
        assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            p["spec"]["containers"][1]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(p["spec"]["containers"][1]["ports"][0]["protocol"], "TCP");
        assert_eq!(p["spec"]["restartPolicy"], "Always");
        assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 30);
        assert_eq!(p["spec"]["enableServiceLinks"], true);
    }

    #[test]
    fn service_ports_get_protocol_and_target_port() {
        let mut s =
            json!({"spec": {"ports": [{"port": 2181}, {"port": 2888, "targetPort": "quorum"}]}});
        service(&mut s);
        assert_eq!(s["spec"]["type"], "ClusterIP");
        assert_eq!(s["spec"]["sessionAffinity"], "None");
        assert_eq!(s["spec"]["internalTrafficPolicy"], "Cluster");
        assert_eq!(s["spec"]["ports"][0]["protocol"], "TCP");
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 2181);
        assert_eq!(s["spec"]["ports"][1]["targetPort"], "quorum");
    }

    #[test]
    fn statefulsets_get_their_defaults() {
        let mut s = json!({"spec": {"template": {"spec": {"containers": [{"name": "zk", "image": "zookeeper:3.8"}],
            "volumes": [{"name": "scratch"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]}});
        statefulset(&mut s);
        let spec = &s["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert!(spec["template"]["spec"].get("enableServiceLinks").is_none());
        assert_eq!(
            spec["template"]["spec"]["volumes"][0]["emptyDir"],
            json!({})
        );
        assert_eq!(
            spec["volumeClaimTemplates"][0]["spec"]["volumeMode"],
            "Filesystem"
        );
        assert_eq!(
            spec["volumeClaimTemplates"][0]["status"]["phase"],
            "Pending"
        );
    }

    #[test]
    fn odd_shapes_do_not_panic() {
        for mut v in [
            json!({"spec": "x"}),
            json!([]),
            json!({"spec": {"ports": "x", "containers": [1]}}),
        ] {
            service(&mut v);
            pod(&mut v);
            pod_create(&mut v);
            statefulset(&mut v);
            pvc(&mut v, true);
            endpointslice(&mut v);
            namespace_create(&mut v);
        }
    }

    #[test]
    fn new_pods_tolerate_not_ready_nodes_once() {
        let mut p = json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]}});
        pod_create(&mut p);
        assert_eq!(p["spec"]["tolerations"].as_array().map(Vec::len), Some(2));
        assert_eq!(p["spec"]["priority"], 0);
    }
}
