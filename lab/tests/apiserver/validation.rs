//! Every validation rule issue 4 names, through the real kube client over
//! HTTPS against the lab's API server with its real admission: each write
//! is refused with a 422 `Status` whose cause names the field, and a valid
//! neighbour of each is accepted (so the test would fail if a rule were
//! missing or over-eager).

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use zklab::k8s::admission::LabAdmission;

use crate::harness::{Lab, kube_err};

/// Creates `obj` through `api` and returns the 422's causes' fields.
async fn refused<K>(api: &Api<K>, obj: Value) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(obj).unwrap();
    let status = kube_err(api.create(&PostParams::default(), &obj).await);
    assert_eq!(status.code, 422, "{status:?}");
    assert_eq!(status.reason, "Invalid");
    status
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect()
}

async fn accepted<K>(api: &Api<K>, obj: Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(obj).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap()
}

fn svc(name: &str, ports: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": {"ports": ports}})
}

fn slice(name: &str, address_type: Option<&str>, address: &str, port_name: &str) -> Value {
    let mut v = json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": "zk-1"}},
        "endpoints": [{"addresses": [address]}],
        "ports": [{"name": port_name, "port": 2181, "protocol": "TCP"}]
    });
    if let Some(t) = address_type {
        v["addressType"] = json!(t);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_named_validation_rule_is_a_422_naming_the_field() {
    let lab = Lab::start_with(3, Arc::new(LabAdmission::new("10.96.0.0/16").unwrap())).await;
    let c = lab.client.clone();
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let svcs: Api<Service> = Api::namespaced(c.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(c.clone(), "default");
    let sts: Api<StatefulSet> = Api::namespaced(c.clone(), "default");

    // DNS-1123 names.
    let f = refused(&cms, json!({"metadata": {"name": "Bad_Name"}})).await;
    assert!(f.contains(&"metadata.name".to_string()), "{f:?}");
    accepted(&cms, json!({"metadata": {"name": "good-name"}})).await;

    // Label keys and values.
    let f = refused(
        &cms,
        json!({"metadata": {"name": "l1", "labels": {"bad key!": "v"}}}),
    )
    .await;
    assert!(f.iter().any(|f| f.starts_with("metadata.labels")), "{f:?}");
    let f = refused(
        &cms,
        json!({"metadata": {"name": "l2", "labels": {"k": "-bad-"}}}),
    )
    .await;
    assert!(f.iter().any(|f| f.starts_with("metadata.labels")), "{f:?}");
    accepted(
        &cms,
        json!({"metadata": {"name": "l3", "labels": {"zkmigrate/server-id": "1"}}}),
    )
    .await;

    // Service port names: unique, valid, required with several ports.
    let f = refused(
        &svcs,
        svc(
            "d1",
            json!([{"name": "client", "port": 2181}, {"name": "client", "port": 2888}]),
        ),
    )
    .await;
    assert!(f.contains(&"spec.ports[1].name".to_string()), "{f:?}");
    let f = refused(
        &svcs,
        svc("d2", json!([{"name": "Client_Port", "port": 2181}])),
    )
    .await;
    assert!(f.contains(&"spec.ports[0].name".to_string()), "{f:?}");
    let f = refused(&svcs, svc("d3", json!([{"port": 2181}, {"port": 2888}]))).await;
    assert!(f.iter().any(|f| f.starts_with("spec.ports[")), "{f:?}");
    let made = accepted(
        &svcs,
        svc(
            "zk-1",
            json!([{"name": "client", "port": 2181}, {"name": "quorum", "port": 2888}]),
        ),
    )
    .await;

    // clusterIP is immutable.
    let ip = made.spec.unwrap().cluster_ip.unwrap();
    let other = if ip == "10.96.200.200" {
        "10.96.200.201"
    } else {
        "10.96.200.200"
    };
    let status = kube_err(
        svcs.patch(
            "zk-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"clusterIP": other, "clusterIPs": [other]}})),
        )
        .await,
    );
    assert_eq!(status.code, 422, "{status:?}");
    assert!(
        status
            .details
            .unwrap()
            .causes
            .iter()
            .any(|c| c.field.starts_with("spec.clusterIP"))
    );

    // EndpointSlice: addressType required; addresses valid; port names valid.
    let f = refused(&slices, slice("s1", None, "10.77.0.11", "client")).await;
    assert!(f.contains(&"addressType".to_string()), "{f:?}");
    for bad in ["127.0.0.1", "169.254.0.5", ip.as_str()] {
        let f = refused(&slices, slice("s2", Some("IPv4"), bad, "client")).await;
        assert!(
            f.iter().any(|f| f.starts_with("endpoints[0].addresses")),
            "{bad}: {f:?}"
        );
    }
    let f = refused(&slices, slice("s3", Some("IPv4"), "10.77.0.11", "Bad_Port")).await;
    assert!(f.iter().any(|f| f.starts_with("ports[0].name")), "{f:?}");
    accepted(
        &slices,
        slice("zk-1-host", Some("IPv4"), "10.77.0.11", "client"),
    )
    .await;

    // StatefulSet: immutable fields.
    let set = json!({
        "metadata": {"name": "zk"},
        "spec": {
            "serviceName": "zk-hs", "replicas": 1,
            "selector": {"matchLabels": {"app": "zk"}},
            "template": {"metadata": {"labels": {"app": "zk"}},
                         "spec": {"containers": [{"name": "zookeeper", "image": "zookeeper:3.8"}]}}
        }
    });
    accepted(&sts, set).await;
    let status = kube_err(
        sts.patch(
            "zk",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"serviceName": "other"}})),
        )
        .await,
    );
    assert_eq!(status.code, 422, "{status:?}");
    assert!(
        status
            .details
            .unwrap()
            .causes
            .iter()
            .any(|c| c.field == "spec")
    );
    // replicas may change.
    sts.patch(
        "zk",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .unwrap();
    lab.stop().await;
}
