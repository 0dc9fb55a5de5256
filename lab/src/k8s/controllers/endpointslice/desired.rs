//! The slices a Service should have, from the Service and its Pods: the
//! pure half of the EndpointSlice controller
//! (`staging/src/k8s.io/endpointslice/utils.go`: `podToEndpoint`,
//! `getEndpointPorts`, `findPort`, `setEndpointSliceLabels`, `ownedBy`).

use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use super::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME, MANAGED_BY};
use crate::k8s::controllers::util::{self, uid_of};
use crate::k8s::store::{name_of, namespace_of};

/// `v1.IsHeadlessService`.
const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// `--max-endpoints-per-slice` default.
const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// The Service's selector, when the controller manages its slices: not
/// ExternalName, and a non-empty selector (an empty map is stored as none
/// by the real API server).
pub(super) fn selector(svc: &Value) -> Option<&Map<String, Value>> {
    if svc["spec"]["type"] == "ExternalName" {
        return None;
    }
    svc["spec"]["selector"]
        .as_object()
        .filter(|m| !m.is_empty())
}

/// The Service owns the slice (`ownedBy`).
pub(super) fn owned_by(slice: &Value, svc_uid: &str) -> bool {
    slice["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r["uid"].as_str() == Some(svc_uid)
                    && r["kind"] == "Service"
                    && r["apiVersion"] == "v1"
            })
        })
}

/// The slices' labels (`setEndpointSliceLabels`): the Service's own, minus
/// the reserved keys, plus service-name, managed-by and headless.
pub(super) fn slice_labels(svc: &Value) -> Map<String, Value> {
    let mut labels: Map<String, Value> = svc["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| {
                    ![LABEL_SERVICE_NAME, LABEL_MANAGED_BY, LABEL_HEADLESS].contains(&k.as_str())
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let cluster_ip = svc["spec"]["clusterIP"].as_str().unwrap_or("");
    if cluster_ip.is_empty() || cluster_ip == "None" {
        labels.insert(LABEL_HEADLESS.into(), json!(""));
    }
    labels.insert(LABEL_SERVICE_NAME.into(), json!(name_of(svc)));
    labels.insert(LABEL_MANAGED_BY.into(), json!(MANAGED_BY));
    labels
}

/// The slices the Service should have: per distinct resolved port list,
/// its endpoints (sorted by Pod name) in chunks of at most 100; one empty
/// placeholder when there is no endpoint at all.
pub fn desired_slices(svc: &Value, pods: &[&Value]) -> Vec<(Value, Vec<Value>)> {
    let mut groups: Vec<(Value, Vec<(String, Value)>)> = Vec::new();
    for pod in pods {
        if util::is_terminal(pod) {
            continue;
        }
        let Some(endpoint) = pod_to_endpoint(pod, svc) else {
            continue;
        };
        let ports = endpoint_ports(svc, pod);
        let entry = (name_of(pod).to_string(), endpoint);
        match groups.iter_mut().find(|(p, _)| *p == ports) {
            Some((_, eps)) => eps.push(entry),
            None => groups.push((ports, vec![entry])),
        }
    }
    let mut slices = Vec::new();
    for (ports, mut eps) in groups {
        eps.sort_by(|a, b| a.0.cmp(&b.0));
        let eps: Vec<Value> = eps.into_iter().map(|(_, e)| e).collect();
        for chunk in eps.chunks(MAX_ENDPOINTS_PER_SLICE) {
            slices.push((ports.clone(), chunk.to_vec()));
        }
    }
    if slices.is_empty() {
        slices.push((json!([]), Vec::new()));
    }
    slices
}

/// One Pod's endpoint (`podToEndpoint`), or `None` without an IPv4
/// address.
fn pod_to_endpoint(pod: &Value, svc: &Value) -> Option<Value> {
    let mut addresses: Vec<String> = pod["status"]["podIPs"]
        .as_array()
        .map(|ips| {
            ips.iter()
                .filter_map(|ip| ip["ip"].as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if addresses.is_empty() {
        addresses.extend(pod["status"]["podIP"].as_str().map(str::to_string));
    }
    addresses.retain(|a| a.parse::<Ipv4Addr>().is_ok());
    if addresses.is_empty() {
        return None;
    }
    let serving = util::is_pod_ready(pod);
    let terminating = util::is_terminating(pod);
    let ready = svc["spec"]["publishNotReadyAddresses"] == true || (serving && !terminating);
    let mut ep = json!({
        "addresses": addresses,
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
        "targetRef": {
            "kind": "Pod",
            "namespace": namespace_of(pod),
            "name": name_of(pod),
            "uid": uid_of(pod),
        },
    });
    if let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        ep["nodeName"] = json!(node);
    }
    let hostname = pod["spec"]["hostname"].as_str().unwrap_or("");
    if !hostname.is_empty()
        && pod["spec"]["subdomain"].as_str() == Some(name_of(svc))
        && namespace_of(pod) == namespace_of(svc)
    {
        ep["hostname"] = json!(hostname);
    }
    Some(ep)
}

/// The Service's ports as this Pod serves them (`getEndpointPorts`): a
/// numeric targetPort as is, a named one looked up in the Pod's container
/// ports (same protocol); a port that does not resolve is left out.
fn endpoint_ports(svc: &Value, pod: &Value) -> Value {
    let empty = Vec::new();
    let ports = svc["spec"]["ports"].as_array().unwrap_or(&empty);
    let mut out = Vec::new();
    for sp in ports {
        let protocol = sp["protocol"].as_str().unwrap_or("TCP");
        let number = match &sp["targetPort"] {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => match s.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => find_named_port(pod, s, protocol),
            },
            _ => sp["port"].as_i64(),
        };
        let Some(number) = number else {
            continue;
        };
        let mut p = json!({
            "name": sp["name"].as_str().unwrap_or(""),
            "port": number,
            "protocol": protocol,
        });
        if let Some(app) = sp["appProtocol"].as_str() {
            p["appProtocol"] = json!(app);
        }
        out.push(p);
    }
    Value::Array(out)
}

/// `findPort` for a named targetPort: containers, then sidecars
/// (restartable init containers).
fn find_named_port(pod: &Value, name: &str, protocol: &str) -> Option<i64> {
    let empty = Vec::new();
    let containers = pod["spec"]["containers"].as_array().unwrap_or(&empty);
    let sidecars = pod["spec"]["initContainers"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter(|c| c["restartPolicy"] == "Always");
    containers.iter().chain(sidecars).find_map(|c| {
        c["ports"].as_array()?.iter().find_map(|p| {
            (p["name"].as_str() == Some(name)
                && p["protocol"].as_str().unwrap_or("TCP") == protocol)
                .then(|| p["containerPort"].as_i64())
                .flatten()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(extra: Value) -> Value {
        let mut s = json!({
            "metadata": {"name": "zk", "namespace": "default", "uid": "svc-uid", "labels": {"app": "zk", LABEL_MANAGED_BY: "x"}},
            "spec": {
                "clusterIP": "None",
                "selector": {"app": "zk"},
                "ports": [
                    {"name": "client", "port": 2181, "targetPort": 2181, "protocol": "TCP"},
                    {"name": "quorum", "port": 2888, "targetPort": "quorum", "protocol": "TCP"},
                ],
            },
        });
        for (k, v) in extra.as_object().unwrap() {
            s["spec"][k] = v.clone();
        }
        s
    }

    fn pod(name: &str, ip: Option<&str>, ready: bool) -> Value {
        let mut p = json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {"app": "zk"}},
            "spec": {
                "nodeName": "lab",
                "hostname": name,
                "subdomain": "zk",
                "containers": [{"name": "zk", "ports": [{"name": "quorum", "containerPort": 2888}]}],
            },
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        });
        if let Some(ip) = ip {
            p["status"]["podIP"] = json!(ip);
            p["status"]["podIPs"] = json!([{"ip": ip}]);
        }
        p
    }

    #[test]
    fn endpoints_carry_conditions_hostname_and_target() {
        let s = svc(json!({}));
        let ready = pod("zk-0", Some("10.244.0.5"), true);
        let ep = pod_to_endpoint(&ready, &s).unwrap();
        assert_eq!(
            ep,
            json!({
                "addresses": ["10.244.0.5"],
                "conditions": {"ready": true, "serving": true, "terminating": false},
                "targetRef": {"kind": "Pod", "namespace": "default", "name": "zk-0", "uid": "uid-zk-0"},
                "nodeName": "lab",
                "hostname": "zk-0",
            })
        );
        let not_ready = pod_to_endpoint(&pod("zk-1", Some("10.244.0.6"), false), &s).unwrap();
        assert_eq!(
            not_ready["conditions"],
            json!({"ready": false, "serving": false, "terminating": false})
        );
        let mut dying = pod("zk-2", Some("10.244.0.7"), true);
        dying["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        let dying = pod_to_endpoint(&dying, &s).unwrap();
        assert_eq!(
            dying["conditions"],
            json!({"ready": false, "serving": true, "terminating": true})
        );
        assert!(
            pod_to_endpoint(&pod("zk-3", None, true), &s).is_none(),
            "no IP, no endpoint"
        );
        let mut other = pod("zk-0", Some("10.244.0.5"), true);
        other["spec"]["subdomain"] = json!("elsewhere");
        assert!(
            pod_to_endpoint(&other, &s)
                .unwrap()
                .get("hostname")
                .is_none()
        );
    }

    #[test]
    fn publish_not_ready_addresses_reports_every_pod_ready() {
        let s = svc(json!({"publishNotReadyAddresses": true}));
        let ep = pod_to_endpoint(&pod("zk-1", Some("10.244.0.6"), false), &s).unwrap();
        assert_eq!(
            ep["conditions"],
            json!({"ready": true, "serving": false, "terminating": false})
        );
    }

    #[test]
    fn ports_resolve_named_target_ports_per_pod() {
        let s = svc(json!({}));
        assert_eq!(
            endpoint_ports(&s, &pod("zk-0", None, true)),
            json!([
                {"name": "client", "port": 2181, "protocol": "TCP"},
                {"name": "quorum", "port": 2888, "protocol": "TCP"},
            ])
        );
        let mut bare = pod("zk-1", None, true);
        bare["spec"]["containers"][0]["ports"] = json!([]);
        assert_eq!(
            endpoint_ports(&s, &bare),
            json!([{"name": "client", "port": 2181, "protocol": "TCP"}]),
            "an unresolved named port is left out"
        );
    }

    #[test]
    fn desired_slices_group_by_ports_skip_terminal_pods_and_keep_a_placeholder() {
        let s = svc(json!({}));
        let a = pod("zk-1", Some("10.244.0.6"), true);
        let b = pod("zk-0", Some("10.244.0.5"), false);
        let mut failed = pod("zk-2", Some("10.244.0.7"), true);
        failed["status"]["phase"] = json!("Failed");
        let mut bare = pod("zk-3", Some("10.244.0.8"), true);
        bare["spec"]["containers"][0]["ports"] = json!([]);
        let slices = desired_slices(&s, &[&a, &b, &failed, &bare]);
        assert_eq!(slices.len(), 2);
        let names: Vec<&str> = slices[0]
            .1
            .iter()
            .map(|e| e["targetRef"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["zk-0", "zk-1"], "sorted by Pod name");
        assert_eq!(slices[1].1[0]["targetRef"]["name"], "zk-3");
        assert_eq!(desired_slices(&s, &[]), vec![(json!([]), vec![])]);
    }

    #[test]
    fn labels_come_from_the_service_with_the_reserved_ones_forced() {
        let l = slice_labels(&svc(json!({})));
        assert_eq!(
            Value::Object(l),
            json!({"app": "zk", LABEL_HEADLESS: "", LABEL_SERVICE_NAME: "zk", LABEL_MANAGED_BY: MANAGED_BY})
        );
        let l = slice_labels(&svc(json!({"clusterIP": "10.96.0.10"})));
        assert!(!l.contains_key(LABEL_HEADLESS));
    }

    #[test]
    fn services_without_selector_or_external_name_are_not_managed() {
        assert!(selector(&svc(json!({}))).is_some());
        assert!(selector(&svc(json!({"selector": {}}))).is_none());
        assert!(selector(&svc(json!({"selector": null}))).is_none());
        assert!(selector(&svc(json!({"type": "ExternalName"}))).is_none());
    }
}
