//! The lab's API server against the real kube client (kube 5) and kubectl:
//! each test starts a server in-process on its own 127.101.x.y address
//! (port 0) with a fresh store, writes a kubeconfig, and talks to it as a
//! user of a real cluster would.

#[path = "apiserver/harness.rs"]
mod harness;
#[path = "apiserver/kubectl.rs"]
mod kubectl;
#[path = "apiserver/subresources.rs"]
mod subresources;
#[path = "apiserver/validation.rs"]
mod validation;
#[path = "apiserver/watch.rs"]
mod watch;

use std::collections::BTreeMap;

use harness::{Lab, cm, kube_err};
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_conflicts_and_not_found_through_the_kube_client() {
    let lab = Lab::start(1).await;
    let cms: Api<ConfigMap> = Api::namespaced(lab.client.clone(), "default");
    let made = cms
        .create(&PostParams::default(), &cm("a", &[("app", "zk")], "1"))
        .await
        .unwrap();
    assert!(made.metadata.uid.is_some());
    let rv = made.metadata.resource_version.clone().unwrap();
    let got = cms.get("a").await.unwrap();
    assert_eq!(got.data.unwrap()["k"], "1");

    let dup = kube_err(cms.create(&PostParams::default(), &cm("a", &[], "2")).await);
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));

    let mut first = made.clone();
    first.data = Some(BTreeMap::from([("k".into(), "2".into())]));
    let replaced = cms
        .replace("a", &PostParams::default(), &first)
        .await
        .unwrap();
    assert_ne!(replaced.metadata.resource_version.unwrap(), rv);
    let mut stale = made.clone();
    stale.data = Some(BTreeMap::from([("k".into(), "3".into())]));
    let e = kube_err(cms.replace("a", &PostParams::default(), &stale).await);
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(
        e.message.contains("the object has been modified"),
        "{}",
        e.message
    );

    let e = kube_err(cms.get("nope").await);
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    assert_eq!(e.message, "configmaps \"nope\" not found");

    // A Service; its delete returns the object.
    let svcs: Api<Service> = Api::namespaced(lab.client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "zk"},
        "spec": {"ports": [{"name": "client", "port": 2181}], "selector": {"app": "zk"}}
    }))
    .unwrap();
    svcs.create(&PostParams::default(), &svc).await.unwrap();
    let gone = svcs.delete("zk", &DeleteParams::default()).await.unwrap();
    assert!(gone.is_left());
    let gone = cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(gone.is_right(), "a ConfigMap delete answers a Status");
    assert_eq!(kube_err(cms.get("a").await).code, 404);

    // Namespaces are cluster-scoped; objects in a missing one are 404.
    let nss: Api<Namespace> = Api::all(lab.client.clone());
    let names: Vec<String> = nss
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_string()));
    let missing: Api<ConfigMap> = Api::namespaced(lab.client.clone(), "missing");
    let e = kube_err(
        missing
            .create(&PostParams::default(), &cm("a", &[], "1"))
            .await,
    );
    assert_eq!(e.code, 404);

    // Dry run: answered, not stored.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    cms.create(&dry, &cm("dry", &[], "1")).await.unwrap();
    assert_eq!(kube_err(cms.get("dry").await).code, 404);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_by_label_and_field_selectors() {
    let lab = Lab::start(2).await;
    lab.namespace("zookeeper").await;
    let client = lab.client.clone();
    let zk: Api<ConfigMap> = Api::namespaced(client.clone(), "zookeeper");
    let def: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    zk.create(&pp, &cm("a", &[("app", "zk"), ("tier", "db")], "1"))
        .await
        .unwrap();
    zk.create(&pp, &cm("b", &[("app", "zk"), ("tier", "web")], "1"))
        .await
        .unwrap();
    zk.create(&pp, &cm("c", &[("app", "other")], "1"))
        .await
        .unwrap();
    def.create(&pp, &cm("d", &[("app", "zk")], "1"))
        .await
        .unwrap();
    let names = |l: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        l.items
            .into_iter()
            .filter_map(|o| o.metadata.name)
            .collect()
    };
    let cases = [
        ("app=zk", vec!["a", "b"]),
        ("app!=zk", vec!["c"]),
        ("tier in (db,web)", vec!["a", "b"]),
        ("tier notin (db)", vec!["b", "c"]),
        ("tier", vec!["a", "b"]),
        ("!tier", vec!["c"]),
        ("app=zk,tier=web", vec!["b"]),
    ];
    for (sel, want) in cases {
        let got = names(zk.list(&ListParams::default().labels(sel)).await.unwrap());
        assert_eq!(got, want, "{sel}");
    }
    let got = names(
        zk.list(&ListParams::default().fields("metadata.name=c"))
            .await
            .unwrap(),
    );
    assert_eq!(got, ["c"]);
    let all: Api<ConfigMap> = Api::all(client.clone());
    let got = names(
        all.list(&ListParams::default().labels("app=zk").limit(1))
            .await
            .unwrap(),
    );
    assert_eq!(
        got,
        ["d", "a", "b"],
        "cluster-wide, ordered by namespace then name"
    );
    let e = kube_err(
        zk.list(&ListParams::default().fields("spec.nodeName=x"))
            .await,
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "field label not supported: spec.nodeName")
    );
    let pods: Api<Pod> = Api::all(client);
    assert!(
        pods.list(&ListParams::default().fields("status.phase=Running,spec.nodeName=lab"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_merge_json_and_apply_with_conflicts() {
    let lab = Lab::start(5).await;
    let cms: Api<ConfigMap> = Api::namespaced(lab.client.clone(), "default");
    cms.create(&PostParams::default(), &cm("p", &[("app", "zk")], "1"))
        .await
        .unwrap();
    let o = cms
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"x": "y"}})),
        )
        .await
        .unwrap();
    assert_eq!(o.data.as_ref().unwrap()["x"], "y");
    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/data/x", "value": "y"},
        {"op": "replace", "path": "/data/x", "value": "z"}
    ]))
    .unwrap();
    let o = cms
        .patch("p", &PatchParams::default(), &Patch::Json::<()>(jp))
        .await
        .unwrap();
    assert_eq!(o.data.as_ref().unwrap()["x"], "z");
    let bad: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/x", "value": "nope"}]))
            .unwrap();
    let e = kube_err(
        cms.patch("p", &PatchParams::default(), &Patch::Json::<()>(bad))
            .await,
    );
    assert!(e.code == 422 || e.code == 409, "{e:?}");
    let e = kube_err(
        cms.patch("missing", &PatchParams::default(), &Patch::Merge(json!({})))
            .await,
    );
    assert_eq!(e.code, 404);

    // Server-side apply: two managers, a conflict, then force.
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": {"owner": "alice", "a": "1"}});
    let o = cms
        .patch("s", &PatchParams::apply("alice"), &Patch::Apply(&applied))
        .await
        .unwrap();
    assert_eq!(o.data.as_ref().unwrap()["owner"], "alice");
    let managers: Vec<String> = o
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["alice"]);
    let bob = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": {"owner": "bob"}});
    let e = kube_err(
        cms.patch("s", &PatchParams::apply("bob"), &Patch::Apply(&bob))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"), "{e:?}");
    assert!(
        e.message.contains("alice"),
        "the conflict names the owner: {}",
        e.message
    );
    let o = cms
        .patch("s", &PatchParams::apply("bob").force(), &Patch::Apply(&bob))
        .await
        .unwrap();
    let data = o.data.unwrap();
    assert_eq!((data["owner"].as_str(), data["a"].as_str()), ("bob", "1"));
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_rules_and_self_subject_access_reviews() {
    let lab = Lab::start(7).await;
    lab.namespace("zookeeper").await;
    let bad = lab.client_with_token("wrong").await;
    let e = kube_err(
        Api::<ConfigMap>::namespaced(bad, "default")
            .list(&ListParams::default())
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (401, "Unauthorized"));

    let viewer = lab.client_with_token(harness::VIEWER_TOKEN).await;
    let zk: Api<ConfigMap> = Api::namespaced(viewer.clone(), "zookeeper");
    zk.list(&ListParams::default()).await.unwrap();
    let e = kube_err(
        Api::<Pod>::namespaced(viewer.clone(), "zookeeper")
            .list(&ListParams::default())
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        "pods is forbidden: User \"viewer\" cannot list resource \"pods\" in API group \"\" in the namespace \"zookeeper\""
    );
    let e = kube_err(zk.create(&PostParams::default(), &cm("x", &[], "1")).await);
    assert_eq!(e.code, 403);
    let e = kube_err(
        Api::<ConfigMap>::namespaced(viewer.clone(), "default")
            .get("x")
            .await,
    );
    assert_eq!(
        e.message,
        "configmaps \"x\" is forbidden: User \"viewer\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );

    let reviews: Api<SelfSubjectAccessReview> = Api::all(viewer);
    let ask = |verb: &str, resource: &str, ns: &str| -> SelfSubjectAccessReview {
        serde_json::from_value(json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "namespace": ns}}
        }))
        .unwrap()
    };
    let pp = PostParams::default();
    let r = reviews
        .create(&pp, &ask("list", "configmaps", "zookeeper"))
        .await
        .unwrap();
    assert!(r.status.unwrap().allowed);
    let r = reviews
        .create(&pp, &ask("delete", "configmaps", "zookeeper"))
        .await
        .unwrap();
    assert!(!r.status.unwrap().allowed);
    let admin: Api<SelfSubjectAccessReview> = Api::all(lab.client.clone());
    let r = admin
        .create(&pp, &ask("delete", "pods", "kube-system"))
        .await
        .unwrap();
    assert!(r.status.unwrap().allowed);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_serves_every_kind_with_its_subresources() {
    let lab = Lab::start(8).await;
    let v = lab.client.apiserver_version().await.unwrap();
    assert!(v.git_version.starts_with("v1.33."), "{}", v.git_version);
    let discovery = kube::Discovery::new(lab.client.clone())
        .run()
        .await
        .unwrap();
    let mut kinds = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            kinds.push(ar.kind.clone());
            if ar.kind == "StatefulSet" {
                let subs: Vec<String> = caps
                    .subresources
                    .iter()
                    .map(|(s, _)| s.plural.clone())
                    .collect();
                assert!(subs.contains(&"scale".to_string()), "{subs:?}");
            }
        }
    }
    for k in [
        "Namespace",
        "Service",
        "Pod",
        "ConfigMap",
        "EndpointSlice",
        "StatefulSet",
        "PodDisruptionBudget",
        "Lease",
        "Event",
        "PersistentVolumeClaim",
    ] {
        assert!(kinds.contains(&k.to_string()), "{k} in {kinds:?}");
    }
    // Unknown paths: a Status 404.
    let req = hyper_request("/apis/nope.example.com/v1/widgets");
    let e = lab
        .client
        .request::<serde_json::Value>(req)
        .await
        .unwrap_err();
    match e {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (404, "NotFound")),
        other => panic!("{other:?}"),
    }
    // A PUT on a collection: 405; a patch in an unknown format: 415.
    let put = hyper::Request::put("/api/v1/namespaces/default/configmaps")
        .header("content-type", "application/json")
        .body(b"{}".to_vec())
        .unwrap();
    let s = status_of(lab.client.request::<serde_json::Value>(put).await);
    assert_eq!((s.code, s.reason.as_str()), (405, "MethodNotAllowed"));
    let patch = hyper::Request::patch("/api/v1/namespaces/default/configmaps/x")
        .header("content-type", "text/plain")
        .body(b"{}".to_vec())
        .unwrap();
    let s = status_of(lab.client.request::<serde_json::Value>(patch).await);
    assert_eq!((s.code, s.reason.as_str()), (415, "UnsupportedMediaType"));
    lab.stop().await;
}

fn status_of(r: Result<serde_json::Value, kube::Error>) -> kube::core::Status {
    match r {
        Err(kube::Error::Api(s)) => *s,
        other => panic!("expected a Status, got {other:?}"),
    }
}

fn hyper_request(path: &str) -> hyper::Request<Vec<u8>> {
    hyper::Request::builder()
        .uri(path)
        .body(Vec::new())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_admission_allocates_and_rejects_through_http() {
    let admission = zklab::k8s::admission::LabAdmission::new("10.96.0.0/16").unwrap();
    let lab = Lab::start_with(10, std::sync::Arc::new(admission)).await;
    let svcs: Api<Service> = Api::namespaced(lab.client.clone(), "default");
    let svc = |name: &str, ports: serde_json::Value| -> Service {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"ports": ports}}))
            .unwrap()
    };
    let made = svcs
        .create(
            &PostParams::default(),
            &svc("zk", json!([{"name": "client", "port": 2181}])),
        )
        .await
        .unwrap();
    let ip = made.spec.unwrap().cluster_ip.unwrap();
    assert!(ip.starts_with("10.96."), "{ip}");
    let bad = svc(
        "bad",
        json!([{"name": "client", "port": 2181}, {"name": "client", "port": 2888}]),
    );
    let e = kube_err(svcs.create(&PostParams::default(), &bad).await);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(e.message.contains("spec.ports[1].name"), "{}", e.message);
    // Dry run runs admission too.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let e = kube_err(
        svcs.create(&dry, &svc("dry", json!([{"name": "Bad_Name", "port": 1}])))
            .await,
    );
    assert_eq!(e.code, 422);
    lab.stop().await;
}
