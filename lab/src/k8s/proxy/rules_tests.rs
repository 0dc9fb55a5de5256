//! Unit tests of the proxy's pure core: endpoint selection and the exact
//! ruleset text.

use super::*;
use serde_json::json;

fn svc(name: &str, ip: &str, ports: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "zk"},
           "spec": {"clusterIP": ip, "ports": ports}})
}

fn slice(name: &str, svc: &str, managed_by: &str, ports: Value, endpoints: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "zk",
                        "labels": {SERVICE_NAME_LABEL: svc,
                                   "endpointslice.kubernetes.io/managed-by": managed_by}},
           "addressType": "IPv4", "ports": ports, "endpoints": endpoints})
}

fn ep(ip: &str) -> Value {
    json!({"addresses": [ip]})
}

fn client_port() -> Value {
    json!([{"name": "client", "port": 2181, "protocol": "TCP"}])
}

#[test]
fn hand_made_and_controller_slices_are_merged() {
    let services = [svc("zk-1", "10.96.0.10", client_port())];
    let slices = [
        slice(
            "zk-1-abc",
            "zk-1",
            "endpointslice-controller.k8s.io",
            client_port(),
            json!([ep("10.244.0.5")]),
        ),
        slice(
            "zk-1-host",
            "zk-1",
            "zkmigrate",
            client_port(),
            json!([ep("10.77.0.11"), ep("10.244.0.5")]),
        ),
        // Another Service's slice and an IPv6 slice are not read.
        slice(
            "zk-2-x",
            "zk-2",
            "zkmigrate",
            client_port(),
            json!([ep("10.77.0.12")]),
        ),
    ];
    let ports = service_ports(&services, &slices);
    assert_eq!(ports.len(), 1);
    assert_eq!(
        ports[0].endpoints,
        [
            "10.77.0.11:2181".parse().unwrap(),
            "10.244.0.5:2181".parse().unwrap()
        ]
    );
}

#[test]
fn the_slice_port_is_matched_by_name_and_protocol() {
    let services = [svc(
        "zk-1",
        "10.96.0.10",
        json!([{"name": "client", "port": 2181},
               {"name": "quorum", "port": 2888, "protocol": "TCP"},
               {"name": "dns", "port": 53, "protocol": "UDP"}]),
    )];
    let slices = [slice(
        "s",
        "zk-1",
        "zkmigrate",
        json!([{"name": "quorum", "port": 12888}, {"name": "client", "port": 12181},
               {"name": "dns", "port": 5353, "protocol": "TCP"}]),
        json!([ep("10.77.0.11")]),
    )];
    let ports = service_ports(&services, &slices);
    let got: Vec<(String, u16, Vec<SocketAddrV4>)> = ports
        .iter()
        .map(|p| (p.port_name.clone(), p.port, p.endpoints.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "client".into(),
                2181,
                vec!["10.77.0.11:12181".parse().unwrap()]
            ),
            // No UDP port named dns in the slice: no endpoints.
            ("dns".into(), 53, vec![]),
            (
                "quorum".into(),
                2888,
                vec!["10.77.0.11:12888".parse().unwrap()]
            ),
        ]
    );
}

#[test]
fn ready_endpoints_first_then_serving_terminating_ones() {
    let services = [svc("a", "10.96.0.10", client_port())];
    let endpoints = json!([
        {"addresses": ["10.244.0.1"], "conditions": {"ready": false}},
        {"addresses": ["10.244.0.2"], "conditions": {"ready": true}},
        {"addresses": ["10.244.0.3"], "conditions": {}},
        {"addresses": ["10.244.0.4"], "conditions": {"ready": false, "serving": true, "terminating": true}},
    ]);
    let slices = [slice("s", "a", "x", client_port(), endpoints)];
    let ports = service_ports(&services, &slices);
    assert_eq!(
        ports[0].endpoints,
        [
            "10.244.0.2:2181".parse().unwrap(),
            "10.244.0.3:2181".parse().unwrap()
        ]
    );

    let endpoints = json!([
        {"addresses": ["10.244.0.1"], "conditions": {"ready": false}},
        {"addresses": ["10.244.0.4"], "conditions": {"ready": false, "serving": true, "terminating": true}},
        {"addresses": ["10.244.0.5"], "conditions": {"ready": false, "serving": false, "terminating": true}},
    ]);
    let slices = [slice("s", "a", "x", client_port(), endpoints)];
    let ports = service_ports(&services, &slices);
    assert_eq!(ports[0].endpoints, ["10.244.0.4:2181".parse().unwrap()]);
}

#[test]
fn headless_external_name_and_unallocated_services_get_no_rules() {
    let mut ext = svc("ext", "", client_port());
    ext["spec"]["type"] = json!("ExternalName");
    let services = [
        svc("headless", "None", client_port()),
        ext,
        svc("pending", "", client_port()),
    ];
    assert!(service_ports(&services, &[]).is_empty());
}

#[test]
fn the_ruleset_is_exactly_kube_proxy_shaped() {
    let services = [
        svc("zk-1", "10.96.0.10", client_port()),
        svc("zk-2", "10.96.0.11", client_port()),
    ];
    let slices = [slice(
        "zk-1",
        "zk-1",
        "zkmigrate",
        client_port(),
        json!([ep("10.77.0.11"), ep("10.77.0.12"), ep("10.77.0.13")]),
    )];
    let ports = service_ports(&services, &slices);
    let sp = &ports[0];
    let svc_chain = sp.svc_chain();
    let sep: Vec<String> = sp.endpoints.iter().map(|e| sp.sep_chain(*e)).collect();
    let stale = BTreeSet::from(["ZKLAB-SEP-OLD".to_string(), sep[0].clone()]);
    let mut decl = vec![
        "ZKLAB-SERVICES".to_string(),
        svc_chain.clone(),
        sep[0].clone(),
        sep[1].clone(),
        sep[2].clone(),
    ];
    decl.sort();
    decl.push("ZKLAB-SEP-OLD".into());
    let decl: String = decl.iter().map(|c| format!(":{c} - [0:0]\n")).collect();
    let want = format!(
        "*filter\n\
         :ZKLAB-SERVICES - [0:0]\n\
         -A ZKLAB-SERVICES -d 10.96.0.11/32 -p tcp -m comment --comment \"zk/zk-2:client has no endpoints\" -m tcp --dport 2181 -j REJECT --reject-with icmp-port-unreachable\n\
         COMMIT\n\
         *nat\n\
         {decl}\
         -A ZKLAB-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment \"zk/zk-1:client cluster IP\" -m tcp --dport 2181 -j {svc_chain}\n\
         -A {svc_chain} -m comment --comment \"zk/zk-1:client -> 10.77.0.11:2181\" -m statistic --mode random --probability 0.3333333333 -j {s0}\n\
         -A {svc_chain} -m comment --comment \"zk/zk-1:client -> 10.77.0.12:2181\" -m statistic --mode random --probability 0.5000000000 -j {s1}\n\
         -A {svc_chain} -m comment --comment \"zk/zk-1:client -> 10.77.0.13:2181\" -j {s2}\n\
         -A {s0} -m comment --comment \"zk/zk-1:client\" -p tcp -m tcp -j DNAT --to-destination 10.77.0.11:2181\n\
         -A {s1} -m comment --comment \"zk/zk-1:client\" -p tcp -m tcp -j DNAT --to-destination 10.77.0.12:2181\n\
         -A {s2} -m comment --comment \"zk/zk-1:client\" -p tcp -m tcp -j DNAT --to-destination 10.77.0.13:2181\n\
         -X ZKLAB-SEP-OLD\n\
         COMMIT\n",
        s0 = sep[0],
        s1 = sep[1],
        s2 = sep[2],
    );
    assert_eq!(render(&ports, &stale), want);
}

#[test]
fn chain_names_are_stable_and_fit_iptables() {
    let sp = ServicePort {
        namespace: "zk".into(),
        service: "zk-1".into(),
        port_name: "client".into(),
        protocol: Protocol::Tcp,
        cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
        port: 2181,
        endpoints: vec![],
    };
    // Fixed value: a name must not change between runs of the proxy.
    assert_eq!(
        sp.svc_chain(),
        format!("ZKLAB-SVC-{:016X}", fnv1a("zk/zk-1:clienttcp"))
    );
    assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    let sep = sp.sep_chain("10.77.0.11:2181".parse().unwrap());
    assert!(sp.svc_chain().len() <= 28 && sep.len() <= 28);
    assert_ne!(sep, sp.sep_chain("10.77.0.12:2181".parse().unwrap()));
}

#[test]
fn saved_chains_finds_only_the_proxys_own() {
    let save = "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:ZKLAB-SERVICES - [0:0]\n:ZKLAB-SVC-AB - [0:0]\n:KUBE-X - [0:0]\n-A OUTPUT -j ZKLAB-SERVICES\nCOMMIT\n";
    assert_eq!(
        saved_chains(save),
        BTreeSet::from(["ZKLAB-SERVICES".to_string(), "ZKLAB-SVC-AB".to_string()])
    );
}
