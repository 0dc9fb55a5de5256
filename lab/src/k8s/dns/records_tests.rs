//! Unit tests of the DNS record table.

use super::*;
use serde_json::json;

const ZONE: &str = "cluster.local";

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn table() -> Records {
    let services = [
        json!({"metadata": {"name": "zk-1", "namespace": "zk"},
               "spec": {"clusterIP": "10.96.0.10",
                        "ports": [{"name": "client", "port": 2181}, {"port": 9}]}}),
        json!({"metadata": {"name": "zk-hs", "namespace": "zk"},
               "spec": {"clusterIP": "None",
                        "ports": [{"name": "quorum", "port": 2888}]}}),
        json!({"metadata": {"name": "all", "namespace": "zk"},
               "spec": {"clusterIP": "None", "publishNotReadyAddresses": true}}),
    ];
    let slices = [
        json!({"metadata": {"name": "zk-hs-1", "namespace": "zk",
                     "labels": {SERVICE_NAME_LABEL: "zk-hs"}},
        "addressType": "IPv4", "ports": [{"name": "quorum", "port": 2888}],
        "endpoints": [
            {"addresses": ["10.244.0.5"], "hostname": "zk-0", "conditions": {"ready": true}},
            {"addresses": ["10.244.0.6"], "conditions": {}},
            {"addresses": ["10.244.0.7"], "hostname": "zk-2", "conditions": {"ready": false}},
        ]}),
        json!({"metadata": {"name": "all-1", "namespace": "zk",
                            "labels": {SERVICE_NAME_LABEL: "all"}},
               "addressType": "IPv4",
               "endpoints": [{"addresses": ["10.244.0.9"], "conditions": {"ready": false}}]}),
        // Same name in another namespace: not ours.
        json!({"metadata": {"name": "zk-hs-x", "namespace": "other",
                            "labels": {SERVICE_NAME_LABEL: "zk-hs"}},
               "addressType": "IPv4",
               "endpoints": [{"addresses": ["10.244.1.1"]}]}),
    ];
    let pods = [
        json!({"metadata": {"name": "zk-1", "namespace": "zk"},
               "spec": {"hostname": "zk-1", "subdomain": "zk-hs"},
               "status": {"podIP": "10.244.0.8",
                          "conditions": [{"type": "Ready", "status": "True"}]}}),
        json!({"metadata": {"name": "nr", "namespace": "zk"},
               "spec": {"hostname": "nr", "subdomain": "zk-hs"},
               "status": {"podIP": "10.244.0.10",
                          "conditions": [{"type": "Ready", "status": "False"}]}}),
    ];
    let hosts = [("host1".to_string(), ip("10.77.0.11"))];
    Records::build(ZONE, &services, &slices, &pods, &hosts)
}

#[test]
fn a_service_name_answers_its_cluster_ip() {
    let t = table();
    assert_eq!(
        t.lookup("zk-1.zk.svc.cluster.local", QueryType::A),
        Answer::A(vec![ip("10.96.0.10")])
    );
    assert_eq!(
        t.lookup("ZK-1.zk.SVC.cluster.local.", QueryType::A),
        Answer::A(vec![ip("10.96.0.10")])
    );
    assert_eq!(
        t.lookup("zk-1.zk.svc.cluster.local", QueryType::Other),
        Answer::NoData
    );
}

#[test]
fn a_headless_service_answers_its_ready_endpoints() {
    let t = table();
    assert_eq!(
        t.lookup("zk-hs.zk.svc.cluster.local", QueryType::A),
        Answer::A(vec![ip("10.244.0.5"), ip("10.244.0.6")])
    );
    assert_eq!(
        t.lookup("all.zk.svc.cluster.local", QueryType::A),
        Answer::A(vec![ip("10.244.0.9")]),
        "publishNotReadyAddresses publishes every endpoint"
    );
}

#[test]
fn per_pod_names_come_from_endpoint_hostnames_and_pods() {
    let t = table();
    let a = |n: &str| t.lookup(n, QueryType::A);
    assert_eq!(
        a("zk-0.zk-hs.zk.svc.cluster.local"),
        Answer::A(vec![ip("10.244.0.5")])
    );
    assert_eq!(
        a("zk-1.zk-hs.zk.svc.cluster.local"),
        Answer::A(vec![ip("10.244.0.8")])
    );
    assert_eq!(
        a("10-244-0-6.zk-hs.zk.svc.cluster.local"),
        Answer::A(vec![ip("10.244.0.6")])
    );
    // Not ready, and the Service does not publish not-ready addresses.
    assert_eq!(a("zk-2.zk-hs.zk.svc.cluster.local"), Answer::NxDomain);
    assert_eq!(a("nr.zk-hs.zk.svc.cluster.local"), Answer::NxDomain);
}

#[test]
fn srv_records_for_named_ports() {
    let t = table();
    assert_eq!(
        t.lookup("_client._tcp.zk-1.zk.svc.cluster.local", QueryType::Srv),
        Answer::Srv(vec![Srv {
            weight: 100,
            port: 2181,
            target: "zk-1.zk.svc.cluster.local".into()
        }])
    );
    assert_eq!(
        t.lookup("_quorum._tcp.zk-hs.zk.svc.cluster.local", QueryType::Srv),
        Answer::Srv(vec![
            Srv {
                weight: 50,
                port: 2888,
                target: "10-244-0-6.zk-hs.zk.svc.cluster.local".into()
            },
            Srv {
                weight: 50,
                port: 2888,
                target: "zk-0.zk-hs.zk.svc.cluster.local".into()
            },
        ])
    );
}

#[test]
fn host_names_pod_names_and_the_rest() {
    let t = table();
    assert_eq!(
        t.lookup("host1.", QueryType::A),
        Answer::A(vec![ip("10.77.0.11")])
    );
    assert_eq!(
        t.lookup("10-1-2-3.zk.pod.cluster.local", QueryType::A),
        Answer::A(vec![ip("10.1.2.3")])
    );
    assert_eq!(
        t.lookup("zk.svc.cluster.local", QueryType::A),
        Answer::NoData
    );
    assert_eq!(t.lookup("svc.cluster.local", QueryType::A), Answer::NoData);
    assert_eq!(t.lookup("cluster.local", QueryType::A), Answer::NoData);
    assert_eq!(
        t.lookup("nope.zk.svc.cluster.local", QueryType::A),
        Answer::NxDomain
    );
    assert_eq!(t.lookup("example.com", QueryType::A), Answer::NxDomain);
    assert!(t.in_zone("a.b.cluster.local."));
    assert!(!t.in_zone("host1"));
    assert!(!t.in_zone("notcluster.local"));
}
