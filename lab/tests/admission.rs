//! The lab API server's admission through the real store: every write goes
//! through `Store::write` with `LabAdmission`, and each rule shows as the
//! real API's 422 `Status` (its `details.causes[].field` and message), a
//! 400 where the real decoder refuses, or as the defaults and allocations a
//! client reads back.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};
use zklab::k8s::admission::LabAdmission;
use zklab::k8s::error::ApiError;
use zklab::k8s::resources::{self, RESOURCES, Resource};
use zklab::k8s::store::{DeleteOptions, Store};

fn store() -> Store {
    Store::new(Arc::new(
        LabAdmission::new("10.96.0.0/16").expect("valid CIDR"),
    ))
}

fn kind(group: &str, kind: &str) -> &'static Resource {
    resources::by_kind(group, kind).expect("served")
}

/// `(field, message)` of each cause of the 422's `Status`.
fn causes(e: &ApiError) -> Vec<(String, String)> {
    let status = e.to_status();
    assert_eq!(status["code"], 422, "not a 422: {status}");
    assert_eq!(status["reason"], "Invalid");
    status["details"]["causes"]
        .as_array()
        .expect("causes")
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap_or("").to_string(),
                c["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn fields(e: &ApiError) -> Vec<String> {
    causes(e).into_iter().map(|(f, _)| f).collect()
}

fn svc(name: &str, spec: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": spec})
}

fn create_svc(s: &Store, name: &str, spec: Value) -> Result<Value, ApiError> {
    s.create(resources::services(), "default", svc(name, spec))
}

fn client_port() -> Value {
    json!([{"name": "client", "port": 2181}])
}

#[test]
fn a_new_cluster_passes_its_own_admission() {
    let s = store();
    let ns = s
        .get(resources::namespaces(), "", "default")
        .expect("default namespace");
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert!(s.get(resources::namespaces(), "", "kube-system").is_ok());
    assert!(RESOURCES.len() > 5);
}

#[test]
fn services_are_defaulted_and_get_a_cluster_ip() {
    let s = store();
    let o = create_svc(
        &s,
        "zk-cs",
        json!({"selector": {"app": "zk"}, "ports": [{"port": 2181}]}),
    )
    .unwrap();
    let spec = &o["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["ports"][0]["protocol"], "TCP");
    assert_eq!(spec["ports"][0]["targetPort"], 2181);
    let ip: std::net::Ipv4Addr = spec["clusterIP"].as_str().unwrap().parse().unwrap();
    assert_eq!(spec["clusterIPs"], json!([ip.to_string()]));
    let o = ip.octets();
    assert_eq!((o[0], o[1]), (10, 96));
    assert!(
        o[2] >= 1,
        "dynamic addresses come from above the static band: {ip}"
    );
}

#[test]
fn cluster_ips_are_unique_across_many_services_and_namespaces() {
    let s = store();
    s.create(
        resources::namespaces(),
        "",
        json!({"metadata": {"name": "zk"}}),
    )
    .unwrap();
    let mut seen = HashSet::new();
    for i in 0..300 {
        let ns = if i % 2 == 0 { "default" } else { "zk" };
        let o = s
            .create(
                resources::services(),
                ns,
                svc(&format!("s-{i}"), json!({"ports": client_port()})),
            )
            .unwrap();
        let ip = o["spec"]["clusterIP"].as_str().unwrap().to_string();
        assert_ne!(ip, "10.96.0.1");
        assert!(seen.insert(ip.clone()), "{ip} allocated twice");
    }
}

#[test]
fn a_requested_cluster_ip_is_honoured_once() {
    let s = store();
    let o = create_svc(
        &s,
        "zk-1",
        json!({"clusterIP": "10.96.0.11", "ports": client_port()}),
    )
    .unwrap();
    assert_eq!(o["spec"]["clusterIP"], "10.96.0.11");
    assert_eq!(o["spec"]["clusterIPs"], json!(["10.96.0.11"]));
    // The kubernetes Service's address may be asked for explicitly.
    let k = create_svc(
        &s,
        "kubernetes",
        json!({"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443}]}),
    )
    .unwrap();
    assert_eq!(k["spec"]["clusterIP"], "10.96.0.1");

    let e = create_svc(
        &s,
        "zk-2",
        json!({"clusterIP": "10.96.0.11", "ports": client_port()}),
    )
    .unwrap_err();
    assert_eq!(
        causes(&e),
        [(
            "spec.clusterIPs".to_string(),
            "Invalid value: []string{\"10.96.0.11\"}: failed to allocate IP 10.96.0.11: provided IP is already allocated"
                .to_string()
        )]
    );
    assert_eq!(
        e.message,
        "Service \"zk-2\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.96.0.11\"}: failed to allocate IP 10.96.0.11: provided IP is already allocated"
    );
    let e = create_svc(
        &s,
        "zk-3",
        json!({"clusterIP": "10.0.0.5", "ports": client_port()}),
    )
    .unwrap_err();
    assert_eq!(
        causes(&e)[0].1,
        "Invalid value: []string{\"10.0.0.5\"}: failed to allocate IP 10.0.0.5: the provided IP (10.0.0.5) is not in the valid range. The range of valid IPs is 10.96.0.0/16"
    );
    let e = create_svc(
        &s,
        "zk-4",
        json!({"clusterIP": "10.96.255.255", "ports": client_port()}),
    )
    .unwrap_err();
    assert!(
        causes(&e)[0].1.contains("is not in the valid range"),
        "broadcast is not allocatable"
    );
    let e = create_svc(
        &s,
        "zk-5",
        json!({"clusterIP": "not-an-ip", "ports": client_port()}),
    )
    .unwrap_err();
    assert_eq!(fields(&e), ["spec.clusterIPs[0]"]);

    // Deleting the Service frees its address.
    s.delete(
        resources::services(),
        "default",
        "zk-1",
        &DeleteOptions::default(),
    )
    .unwrap();
    create_svc(
        &s,
        "zk-2",
        json!({"clusterIP": "10.96.0.11", "ports": client_port()}),
    )
    .unwrap();
}

#[test]
fn headless_services_get_no_address_and_need_no_ports() {
    let s = store();
    let o = create_svc(
        &s,
        "zk-hs",
        json!({"clusterIP": "None", "selector": {"app": "zk"}}),
    )
    .unwrap();
    assert_eq!(o["spec"]["clusterIP"], "None");
    assert_eq!(o["spec"]["clusterIPs"], json!(["None"]));
    let e = create_svc(&s, "zk-cs", json!({"selector": {"app": "zk"}})).unwrap_err();
    assert_eq!(
        causes(&e),
        [("spec.ports".to_string(), "Required value".to_string())]
    );
}

#[test]
fn the_cluster_ip_is_immutable_but_may_be_left_out_of_an_update() {
    let s = store();
    let r = resources::services();
    let o = create_svc(&s, "zk-1", json!({"ports": client_port()})).unwrap();
    let ip = o["spec"]["clusterIP"].as_str().unwrap().to_string();

    let mut changed = o.clone();
    changed["spec"]["clusterIP"] = json!("10.96.0.99");
    changed["spec"]["clusterIPs"] = json!(["10.96.0.99"]);
    let e = s.update(r, "default", "zk-1", None, changed).unwrap_err();
    assert_eq!(
        causes(&e),
        [(
            "spec.clusterIPs[0]".to_string(),
            "Invalid value: []string{\"10.96.0.99\"}: may not change once set".to_string()
        )]
    );

    // kubectl replace / apply of the original manifest: no clusterIP.
    let replaced = s
        .update(
            r,
            "default",
            "zk-1",
            None,
            svc("zk-1", json!({"ports": [{"name": "client", "port": 2182}]})),
        )
        .unwrap();
    assert_eq!(replaced["spec"]["clusterIP"], ip.as_str());
    assert_eq!(replaced["spec"]["ports"][0]["port"], 2182);
}

#[test]
fn service_ports_are_validated_as_the_real_api_does() {
    let s = store();
    let e = create_svc(
        &s,
        "zk-1",
        json!({"ports": [
            {"port": 2181},
            {"name": "client", "port": 2888},
            {"name": "client", "port": 3888, "protocol": "HTTP"},
            {"name": "Quorum_Port", "port": 0, "targetPort": "a--b"},
            {"name": "c2", "port": 2888}
        ]}),
    )
    .unwrap_err();
    let c = causes(&e);
    let f: Vec<&str> = c.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        f,
        [
            "spec.ports[0].name",
            "spec.ports[2].name",
            "spec.ports[2].protocol",
            "spec.ports[3].name",
            "spec.ports[3].port",
            "spec.ports[3].targetPort",
            "spec.ports[4]",
        ]
    );
    assert_eq!(c[0].1, "Required value");
    assert_eq!(c[1].1, "Duplicate value: \"client\"");
    assert_eq!(
        c[2].1,
        "Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
    );
    assert!(
        c[3].1
            .starts_with("Invalid value: \"Quorum_Port\": a lowercase RFC 1123 label must consist")
    );
    assert_eq!(
        c[4].1,
        "Invalid value: 0: must be between 1 and 65535, inclusive"
    );
    assert_eq!(
        c[5].1,
        "Invalid value: \"a--b\": must not contain consecutive hyphens"
    );
    assert!(
        c[6].1.starts_with("Duplicate value: core.ServicePort{"),
        "{}",
        c[6].1
    );
    assert!(
        e.message
            .starts_with("Service \"zk-1\" is invalid: spec.ports[0].name: Required value, ")
    );
}

#[test]
fn service_names_selectors_and_types() {
    let s = store();
    let e = create_svc(&s, "1zk", json!({"ports": client_port()})).unwrap_err();
    assert_eq!(fields(&e), ["metadata.name"]);
    assert!(
        causes(&e)[0]
            .1
            .contains("a DNS-1035 label must consist of lower case alphanumeric characters")
    );
    let e = create_svc(
        &s,
        "zk",
        json!({"ports": client_port(), "selector": {"app": "-zk"}, "type": "Magic"}),
    )
    .unwrap_err();
    assert_eq!(fields(&e), ["spec.selector", "spec.type"]);
    let e = create_svc(
        &s,
        "zk",
        json!({"ports": [{"port": 2181, "nodePort": 30001}]}),
    )
    .unwrap_err();
    assert_eq!(
        causes(&e),
        [(
            "spec.ports[0].nodePort".to_string(),
            "Forbidden: may not be used when `type` is 'ClusterIP'".to_string()
        )]
    );
    let np = create_svc(
        &s,
        "zk-np",
        json!({"type": "NodePort", "ports": client_port()}),
    )
    .unwrap();
    let port = np["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&port));
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    let e = create_svc(&s, "ext", json!({"type": "ExternalName"})).unwrap_err();
    assert_eq!(fields(&e), ["spec.externalName"]);
    let ext = create_svc(
        &s,
        "ext",
        json!({"type": "ExternalName", "externalName": "zk.example.com"}),
    )
    .unwrap();
    assert!(ext["spec"].get("clusterIP").is_none());
}

fn slice(name: &str, address_type: Value, addresses: &[&str]) -> Value {
    json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": "zk-1"}},
        "addressType": address_type,
        "endpoints": [{"addresses": addresses, "conditions": {"ready": true}}],
        "ports": [{"name": "client", "port": 2181}]
    })
}

#[test]
fn endpoint_slices_refuse_special_and_cluster_addresses() {
    let s = store();
    let r = kind("discovery.k8s.io", "EndpointSlice");
    let svc = create_svc(&s, "zk-1", json!({"ports": client_port()})).unwrap();
    let cluster_ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();

    let ok = s
        .create(
            r,
            "default",
            slice("zk-1-host", json!("IPv4"), &["10.77.0.11"]),
        )
        .unwrap();
    assert_eq!(ok["ports"][0]["protocol"], "TCP");

    for (addr, msg) in [
        (
            "127.0.0.1",
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ),
        (
            "169.254.169.254",
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ),
        (
            "224.0.0.1",
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ),
        ("0.0.0.0", "may not be unspecified (0.0.0.0)"),
    ] {
        let e = s
            .create(r, "default", slice("bad", json!("IPv4"), &[addr]))
            .unwrap_err();
        assert_eq!(
            causes(&e),
            [(
                "endpoints[0].addresses[0]".to_string(),
                format!("Invalid value: \"{addr}\": {msg}")
            )],
            "{addr}"
        );
        assert!(
            e.message
                .starts_with("EndpointSlice.discovery.k8s.io \"bad\" is invalid: ")
        );
    }
    let e = s
        .create(r, "default", slice("bad", json!("IPv4"), &[&cluster_ip]))
        .unwrap_err();
    assert_eq!(fields(&e), ["endpoints[0].addresses[0]"]);
    assert!(
        causes(&e)[0]
            .1
            .contains("may not be in the service CIDR (10.96.0.0/16)")
    );
}

#[test]
fn endpoint_slice_address_types_ports_and_labels() {
    let s = store();
    let r = kind("discovery.k8s.io", "EndpointSlice");
    let mut no_type = slice("a", json!("IPv4"), &["10.77.0.11"]);
    no_type.as_object_mut().unwrap().remove("addressType");
    let e = s.create(r, "default", no_type).unwrap_err();
    assert_eq!(
        causes(&e),
        [("addressType".to_string(), "Required value".to_string())]
    );
    let e = s
        .create(r, "default", slice("a", json!("IPv5"), &["10.77.0.11"]))
        .unwrap_err();
    assert_eq!(
        causes(&e)[0].1,
        "Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""
    );
    let e = s
        .create(r, "default", slice("a", json!("IPv4"), &[]))
        .unwrap_err();
    assert_eq!(
        causes(&e),
        [(
            "endpoints[0].addresses".to_string(),
            "Required value: must contain at least 1 address".to_string()
        )]
    );
    let mut bad = slice("a", json!("IPv4"), &["10.77.0.11"]);
    bad["ports"] = json!([{"name": "Client", "port": 2181}, {"name": "x", "port": 1}, {"name": "x", "port": 2}]);
    bad["metadata"]["labels"]["kubernetes.io/service-name"] = json!("zk 1");
    let e = s.create(r, "default", bad).unwrap_err();
    assert_eq!(
        fields(&e),
        ["metadata.labels", "ports[0].name", "ports[2].name"]
    );

    let o = s
        .create(r, "default", slice("a", json!("IPv4"), &["10.77.0.11"]))
        .unwrap();
    let mut changed = o.clone();
    changed["addressType"] = json!("FQDN");
    changed["endpoints"] = json!([{"addresses": ["zk.example.com"]}]);
    let e = s.update(r, "default", "a", None, changed).unwrap_err();
    assert_eq!(
        causes(&e),
        [(
            "addressType".to_string(),
            "Invalid value: \"FQDN\": field is immutable".to_string()
        )]
    );
    let mut moved = o;
    moved["endpoints"][0]["addresses"] = json!(["10.77.0.12"]);
    s.update(r, "default", "a", None, moved).unwrap();
}

fn pod(name: &str, spec: Value) -> Value {
    json!({"metadata": {"name": name, "labels": {"app": "zk"}}, "spec": spec})
}

fn zk_container() -> Value {
    json!({"name": "zk", "image": "zookeeper:3.8", "command": ["zkServer.sh", "start-foreground"]})
}

#[test]
fn pods_are_defaulted_and_start_pending() {
    let s = store();
    let o = s
        .create(
            resources::pods(),
            "default",
            pod(
                "zk-0",
                json!({"containers": [zk_container()], "volumes": [{"name": "scratch"}]}),
            ),
        )
        .unwrap();
    assert_eq!(
        o["status"],
        json!({"phase": "Pending", "qosClass": "BestEffort"})
    );
    let spec = &o["spec"];
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["enableServiceLinks"], true);
    assert_eq!(spec["volumes"][0]["emptyDir"], json!({}));
    let c = &spec["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(spec["tolerations"].as_array().map(Vec::len), Some(2));

    let g = s
        .create(
            resources::pods(),
            "default",
            pod(
                "zk-1",
                json!({"containers": [{"name": "zk", "image": "zookeeper", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}),
            ),
        )
        .unwrap();
    assert_eq!(g["status"]["qosClass"], "Guaranteed");
    assert_eq!(
        g["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "1"
    );
    assert_eq!(g["spec"]["containers"][0]["imagePullPolicy"], "Always");
}

#[test]
fn pod_specs_are_validated() {
    let s = store();
    let e = s
        .create(
            resources::pods(),
            "default",
            pod("p", json!({"containers": []})),
        )
        .unwrap_err();
    assert_eq!(
        causes(&e),
        [("spec.containers".to_string(), "Required value".to_string())]
    );

    let e = s
        .create(
            resources::pods(),
            "default",
            pod(
                "p",
                json!({
                    "restartPolicy": "Sometimes",
                    "volumes": [
                        {"name": "data", "emptyDir": {}, "configMap": {"name": "zk"}},
                        {"name": "conf", "configMap": {"name": "zk"}},
                        {"name": "conf", "emptyDir": {}}
                    ],
                    "containers": [
                        {"name": "zk", "image": "zookeeper", "ports": [{"containerPort": 2181, "name": "client"}, {"containerPort": 2888, "name": "client"}],
                         "volumeMounts": [{"name": "conf", "mountPath": "/conf"}, {"name": "datalog", "mountPath": "/conf"}],
                         "env": [{"name": "A=B", "value": "x"}],
                         "readinessProbe": {"periodSeconds": 5}},
                        {"name": "zk"}
                    ]
                }),
            ),
        )
        .unwrap_err();
    let c = causes(&e);
    let f: Vec<&str> = c.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        f,
        [
            "spec.volumes[0].configMap",
            "spec.volumes[2].name",
            "spec.containers[0].ports[1].name",
            "spec.containers[0].env[0].name",
            "spec.containers[0].volumeMounts[1].name",
            "spec.containers[0].volumeMounts[1].mountPath",
            "spec.containers[0].readinessProbe",
            "spec.containers[1].image",
            "spec.containers[1].name",
            "spec.restartPolicy",
        ]
    );
    assert_eq!(c[0].1, "Forbidden: may not specify more than 1 volume type");
    assert_eq!(c[1].1, "Duplicate value: \"conf\"");
    assert_eq!(c[4].1, "Not found: \"datalog\"");
    assert_eq!(c[5].1, "Invalid value: \"/conf\": must be unique");
    assert_eq!(c[6].1, "Required value: must specify a handler type");
    assert_eq!(c[8].1, "Duplicate value: \"zk\"");
    assert_eq!(
        c[9].1,
        "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
    );

    let e = s
        .create(
            resources::pods(),
            "default",
            pod("p", json!({"containers": [{"name": "zk", "image": "zookeeper", "resources": {"requests": {"cpu": "one"}}}]})),
        )
        .unwrap_err();
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
    assert!(
        e.message
            .contains("quantities must match the regular expression"),
        "{}",
        e.message
    );
    let e = s
        .create(
            resources::pods(),
            "default",
            pod("p", json!({"containers": [{"name": "zk", "image": "zookeeper", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]})),
        )
        .unwrap_err();
    assert_eq!(
        causes(&e),
        [(
            "spec.containers[0].resources.requests".to_string(),
            "Invalid value: \"2\": must be less than or equal to cpu limit of 1".to_string()
        )]
    );
    let e = s
        .create(
            resources::pods(),
            "default",
            pod("p", json!({"containers": "zk"})),
        )
        .unwrap_err();
    assert_eq!(
        e.code, 400,
        "a spec that does not fit the type is a decoding error"
    );
}

#[test]
fn a_pod_spec_is_fixed_but_for_images_and_binding() {
    let s = store();
    let r = resources::pods();
    let o = s
        .create(
            r,
            "default",
            pod("zk-0", json!({"containers": [zk_container()]})),
        )
        .unwrap();

    let mut bound = o.clone();
    bound["spec"]["nodeName"] = json!("lab");
    let bound = s.update(r, "default", "zk-0", None, bound).unwrap();
    assert_eq!(bound["spec"]["nodeName"], "lab");

    let mut image = bound.clone();
    image["spec"]["containers"][0]["image"] = json!("zookeeper:3.9");
    let image = s.update(r, "default", "zk-0", None, image).unwrap();

    let mut moved = image.clone();
    moved["spec"]["nodeName"] = json!("elsewhere");
    moved["spec"]["containers"][0]["command"] = json!(["sleep", "1"]);
    let e = s.update(r, "default", "zk-0", None, moved).unwrap_err();
    let c = causes(&e);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].0, "spec");
    assert!(
        c[0].1.starts_with(
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        ),
        "{}",
        c[0].1
    );
    let mut more = image.clone();
    more["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "busybox"}));
    let e = s.update(r, "default", "zk-0", None, more).unwrap_err();
    assert_eq!(
        causes(&e),
        [(
            "spec.containers".to_string(),
            "Forbidden: pod updates may not add or remove containers".to_string()
        )]
    );
    // Labels may change; the status stays.
    let mut labelled = image;
    labelled["metadata"]["labels"]["role"] = json!("leader");
    let labelled = s.update(r, "default", "zk-0", None, labelled).unwrap();
    assert_eq!(labelled["status"]["phase"], "Pending");
}

fn sts(name: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "serviceName": "zk-hs",
            "replicas": 3,
            "selector": {"matchLabels": {"app": "zk"}},
            "template": {"metadata": {"labels": {"app": "zk"}}, "spec": {"containers": [zk_container()]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        }
    })
}

#[test]
fn statefulsets_are_defaulted_and_validated() {
    let s = store();
    let r = kind("apps", "StatefulSet");
    let o = s.create(r, "default", sts("zk")).unwrap();
    let spec = &o["spec"];
    assert_eq!(spec["podManagementPolicy"], "OrderedReady");
    assert_eq!(spec["updateStrategy"]["rollingUpdate"]["partition"], 0);
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(
        spec["persistentVolumeClaimRetentionPolicy"]["whenScaled"],
        "Retain"
    );
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");
    assert_eq!(
        spec["volumeClaimTemplates"][0]["spec"]["volumeMode"],
        "Filesystem"
    );

    let mut bad = sts("zk.a");
    bad["spec"]["selector"] = json!({"matchLabels": {"app": "other"}});
    bad["spec"]["replicas"] = json!(-1);
    bad["spec"]["podManagementPolicy"] = json!("Random");
    bad["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    let e = s.create(r, "default", bad).unwrap_err();
    assert_eq!(
        causes(&e),
        [
            ("metadata.name".to_string(), "Invalid value: \"zk.a\": must not contain dots".to_string()),
            (
                "spec.podManagementPolicy".to_string(),
                "Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'".to_string()
            ),
            ("spec.replicas".to_string(), "Invalid value: -1: must be greater than or equal to 0".to_string()),
            (
                "spec.template.metadata.labels".to_string(),
                "Invalid value: map[string]string{\"app\":\"zk\"}: `selector` does not match template `labels`"
                    .to_string()
            ),
            (
                "spec.template.spec.restartPolicy".to_string(),
                "Unsupported value: \"Never\": supported values: \"Always\"".to_string()
            ),
        ]
    );
    assert!(
        e.message
            .starts_with("StatefulSet.apps \"zk.a\" is invalid: metadata.name: ")
    );
    let mut no_selector = sts("zk2");
    no_selector["spec"]
        .as_object_mut()
        .unwrap()
        .remove("selector");
    let e = s.create(r, "default", no_selector).unwrap_err();
    assert_eq!(
        fields(&e),
        ["spec.selector", "spec.template.metadata.labels"]
    );
}

#[test]
fn statefulset_updates_touch_only_the_mutable_fields() {
    let s = store();
    let r = kind("apps", "StatefulSet");
    let o = s.create(r, "default", sts("zk")).unwrap();
    let mut scaled = o.clone();
    scaled["spec"]["replicas"] = json!(5);
    scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("zookeeper:3.9");
    let scaled = s.update(r, "default", "zk", None, scaled).unwrap();
    assert_eq!(scaled["metadata"]["generation"], 2);

    let mut grown = scaled.clone();
    grown["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] =
        json!("2Gi");
    let e = s.update(r, "default", "zk", None, grown).unwrap_err();
    assert_eq!(
        causes(&e),
        [(
            "spec".to_string(),
            "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".to_string()
        )]
    );
    let mut renamed = scaled;
    renamed["spec"]["serviceName"] = json!("other");
    let e = s.update(r, "default", "zk", None, renamed).unwrap_err();
    assert_eq!(fields(&e), ["spec"]);
}

fn claim(name: &str, spec: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": spec})
}

#[test]
fn claims_are_validated_and_fixed_after_create() {
    let s = store();
    let r = resources::pvcs();
    let e = s
        .create(r, "default", claim("data-zk-0", json!({})))
        .unwrap_err();
    assert_eq!(
        causes(&e),
        [
            (
                "spec.accessModes".to_string(),
                "Required value: at least 1 access mode is required".to_string()
            ),
            (
                "spec.resources[storage]".to_string(),
                "Required value".to_string()
            ),
        ]
    );
    let e = s
        .create(
            r,
            "default",
            claim("c", json!({"accessModes": ["ReadWriteSometimes"], "resources": {"requests": {"storage": "0"}}})),
        )
        .unwrap_err();
    assert_eq!(fields(&e), ["spec.accessModes", "spec.resources[storage]"]);
    let e = s
        .create(
            r,
            "default",
            claim("c", json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1GB!"}}})),
        )
        .unwrap_err();
    assert_eq!(e.code, 400);

    let o = s
        .create(
            r,
            "default",
            claim("data-zk-0", json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}})),
        )
        .unwrap();
    assert_eq!(o["spec"]["volumeMode"], "Filesystem");
    assert_eq!(o["status"]["phase"], "Pending");
    let mut bound = o.clone();
    bound["spec"]["volumeName"] = json!("pv-data-zk-0");
    let bound = s.update(r, "default", "data-zk-0", None, bound).unwrap();
    let mut rebound = bound.clone();
    rebound["spec"]["volumeName"] = json!("pv-other");
    let e = s
        .update(r, "default", "data-zk-0", None, rebound)
        .unwrap_err();
    assert_eq!(fields(&e), ["spec"]);
    let mut bigger = bound;
    bigger["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
    let e = s
        .update(r, "default", "data-zk-0", None, bigger)
        .unwrap_err();
    assert!(
        causes(&e)[0]
            .1
            .starts_with("Forbidden: spec is immutable after create"),
        "not bound yet"
    );
}

#[test]
fn config_maps_namespaces_pdbs_leases_and_events() {
    let s = store();
    let e = s
        .create(
            resources::configmaps(),
            "default",
            json!({"metadata": {"name": "zk"}, "data": {"zoo.cfg": "x", "bad/key": "y"}}),
        )
        .unwrap_err();
    assert_eq!(fields(&e), ["data[bad/key]"]);
    let e = s
        .create(
            resources::configmaps(),
            "default",
            json!({"metadata": {"name": "big"}, "data": {"a": "x".repeat(1024 * 1024 + 1)}}),
        )
        .unwrap_err();
    assert_eq!(
        causes(&e),
        [(
            String::new(),
            "Too long: may not be more than 1048576 bytes".to_string()
        )]
    );
    let cm = s
        .create(
            resources::configmaps(),
            "default",
            json!({"metadata": {"name": "fixed"}, "immutable": true, "data": {"a": "1"}}),
        )
        .unwrap();
    let mut changed = cm;
    changed["data"]["a"] = json!("2");
    let e = s
        .update(resources::configmaps(), "default", "fixed", None, changed)
        .unwrap_err();
    assert_eq!(fields(&e), ["data"]);

    let e = s
        .create(
            resources::namespaces(),
            "",
            json!({"metadata": {"name": "Zk.Lab"}}),
        )
        .unwrap_err();
    assert_eq!(fields(&e), ["metadata.name"]);

    let pdb = kind("policy", "PodDisruptionBudget");
    let e = s
        .create(
            pdb,
            "default",
            json!({"metadata": {"name": "zk"}, "spec": {"minAvailable": 2, "maxUnavailable": "150%",
                "selector": {"matchLabels": {"app": "zk"}}}}),
        )
        .unwrap_err();
    assert_eq!(fields(&e), ["spec", "spec.maxUnavailable"]);
    assert_eq!(
        causes(&e)[1].1,
        "Invalid value: \"150%\": must not be greater than 100%"
    );
    s.create(
        pdb,
        "default",
        json!({"metadata": {"name": "zk"}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "zk"}}}}),
    )
    .unwrap();

    let lease = kind("coordination.k8s.io", "Lease");
    let e = s
        .create(
            lease,
            "default",
            json!({"metadata": {"name": "zkmigrate"}, "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}}),
        )
        .unwrap_err();
    assert_eq!(
        fields(&e),
        ["spec.leaseDurationSeconds", "spec.leaseTransitions"]
    );

    let e = s
        .create(
            resources::events(),
            "default",
            json!({"metadata": {"name": "zk-0.1"}, "involvedObject": {"kind": "Pod", "name": "zk-0", "namespace": "zk"}}),
        )
        .unwrap_err();
    assert_eq!(
        causes(&e),
        [(
            "involvedObject.namespace".to_string(),
            "Invalid value: \"zk\": does not match event.namespace".to_string()
        )]
    );
    s.create(
        resources::events(),
        "default",
        json!({"metadata": {"name": "zk-0.1"}, "involvedObject": {"kind": "Pod", "name": "zk-0", "namespace": "default"},
            "reason": "Started", "message": "Started container zk"}),
    )
    .unwrap();
}

#[test]
fn labels_and_annotations_are_checked_on_every_kind() {
    let s = store();
    let e = s
        .create(
            resources::configmaps(),
            "default",
            json!({"metadata": {"name": "zk", "labels": {"app.kubernetes.io/name": "zk", "a/b/c": "x"},
                "annotations": {"zkmigrate/step": "peers", "bad key": "y"}}}),
        )
        .unwrap_err();
    let c = causes(&e);
    assert_eq!(fields(&e), ["metadata.labels", "metadata.annotations"]);
    assert!(
        c[0].1
            .starts_with("Invalid value: \"a/b/c\": a qualified name must consist of"),
        "{}",
        c[0].1
    );
    assert!(
        c[1].1
            .starts_with("Invalid value: \"bad key\": name part must consist of"),
        "{}",
        c[1].1
    );
}

#[test]
fn writing_back_what_was_read_is_a_no_op_for_every_kind() {
    let s = store();
    let created = [
        (resources::services(), create_svc(&s, "zk-1", json!({"ports": client_port()})).unwrap()),
        (
            resources::pods(),
            s.create(resources::pods(), "default", pod("zk-0", json!({"containers": [zk_container()]})))
                .unwrap(),
        ),
        (kind("apps", "StatefulSet"), s.create(kind("apps", "StatefulSet"), "default", sts("zk")).unwrap()),
        (
            resources::pvcs(),
            s.create(
                resources::pvcs(),
                "default",
                claim("data", json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}})),
            )
            .unwrap(),
        ),
        (
            kind("discovery.k8s.io", "EndpointSlice"),
            s.create(kind("discovery.k8s.io", "EndpointSlice"), "default", slice("zk-1-a", json!("IPv4"), &["10.77.0.11"]))
                .unwrap(),
        ),
    ];
    for (r, o) in created {
        let name = o["metadata"]["name"].as_str().unwrap().to_string();
        let again = s.update(r, "default", &name, None, o.clone()).unwrap();
        assert_eq!(again, o, "{} {name}: defaulting must be idempotent", r.kind);
    }
}

#[test]
fn more_service_rules() {
    let s = store();
    let o = create_svc(
        &s,
        "sticky",
        json!({"ports": client_port(), "sessionAffinity": "ClientIP"}),
    )
    .unwrap();
    assert_eq!(
        o["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
        10800
    );
    let e = create_svc(
        &s,
        "loose",
        json!({"ports": client_port(), "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}),
    )
    .unwrap_err();
    assert_eq!(
        causes(&e),
        [(
            "spec.sessionAffinityConfig".to_string(),
            "Forbidden: must not be set when session affinity is None".to_string()
        )]
    );
    let e = create_svc(
        &s,
        "v6",
        json!({"ports": client_port(), "ipFamilies": ["IPv6"]}),
    )
    .unwrap_err();
    assert_eq!(
        causes(&e),
        [(
            "spec.ipFamilies[0]".to_string(),
            "Invalid value: \"IPv6\": not configured on this cluster".to_string()
        )]
    );
    // A Service turned into an ExternalName gives its address back.
    let mut ext = s.get(resources::services(), "default", "sticky").unwrap();
    let ip = ext["spec"]["clusterIP"].as_str().unwrap().to_string();
    ext["spec"]["type"] = json!("ExternalName");
    ext["spec"]["externalName"] = json!("zk.example.com");
    ext["spec"]
        .as_object_mut()
        .unwrap()
        .remove("sessionAffinityConfig");
    ext["spec"]["sessionAffinity"] = json!("None");
    let ext = s
        .update(resources::services(), "default", "sticky", None, ext)
        .unwrap();
    assert!(ext["spec"].get("clusterIP").is_none(), "{}", ext["spec"]);
    create_svc(
        &s,
        "again",
        json!({"clusterIP": ip, "ports": client_port()}),
    )
    .unwrap();
}

#[test]
fn more_pod_and_claim_rules() {
    let s = store();
    let r = resources::pods();
    let o = s
        .create(
            r,
            "default",
            pod("zk-0", json!({"containers": [zk_container()]})),
        )
        .unwrap();
    let mut fewer = o.clone();
    fewer["spec"]["tolerations"] = json!([]);
    let e = s.update(r, "default", "zk-0", None, fewer).unwrap_err();
    assert!(
        fields(&e).iter().all(|f| f == "spec.tolerations"),
        "{:?}",
        causes(&e)
    );
    let mut deadline = o;
    deadline["spec"]["activeDeadlineSeconds"] = json!(600);
    s.update(r, "default", "zk-0", None, deadline).unwrap();

    let e = s
        .create(
            r,
            "default",
            pod("p", json!({"containers": [{"name": "zk", "image": "zookeeper",
                "livenessProbe": {"exec": {"command": ["true"]}, "tcpSocket": {"port": 2181}, "successThreshold": 2}}]})),
        )
        .unwrap_err();
    assert_eq!(
        causes(&e),
        [
            (
                "spec.containers[0].livenessProbe.tcpSocket".to_string(),
                "Forbidden: may not specify more than 1 handler type".to_string()
            ),
            (
                "spec.containers[0].livenessProbe.successThreshold".to_string(),
                "Invalid value: 2: must be 1".to_string()
            ),
        ]
    );

    let e = s
        .create(
            resources::configmaps(),
            "default",
            json!({"metadata": {"name": "zk"}, "data": {"a": "1"}, "binaryData": {"a": "MQ=="}}),
        )
        .unwrap_err();
    assert_eq!(
        causes(&e),
        [(
            "binaryData[a]".to_string(),
            "Invalid value: \"a\": duplicate of key present in data".to_string()
        )]
    );
}
