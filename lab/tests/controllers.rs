//! The controllers against an in-process store: EndpointSlices for
//! selecting Services (and never a hand-made slice), StatefulSets (ordered
//! and parallel, claims, replacement, scale-down, rolling update), claim
//! binding with directories, and garbage collection.
//!
//! The tests play the kubelet: they take a Pod (`spec.nodeName`), mark it
//! Running and Ready with a Pod IP, and finish a graceful deletion with a
//! delete of grace 0, as the real kubelet does once the container is gone.
//! Every wait is on a condition, re-checked on each store event (and every
//! 20 ms, for directories), with a deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::time::Instant;

use zklab::k8s::admission::LabAdmission;
use zklab::k8s::controllers::{ControllerConfig, bound_claim_dir, run_controllers};
use zklab::k8s::resources;
use zklab::k8s::store::{DeleteOptions, Store};

/// A store with the controllers running; they stop when it is dropped.
struct Cluster {
    // Dropped first: the controllers stop before the volumes go.
    _stop: oneshot::Sender<()>,
    store: Store,
    volumes: tempfile::TempDir,
    next_ip: AtomicU8,
}

impl Cluster {
    fn start() -> Cluster {
        // The controllers' logs, shown when a test fails.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_max_level(tracing::Level::INFO)
            .try_init();
        let store = Store::new(Arc::new(LabAdmission::new("10.96.0.0/16").unwrap()));
        let volumes = tempfile::tempdir().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(run_controllers(
            store.clone(),
            ControllerConfig::new(volumes.path()),
            async move {
                let _ = stopped.await;
            },
        ));
        Cluster {
            _stop: stop,
            store,
            volumes,
            next_ip: AtomicU8::new(10),
        }
    }

    fn get(&self, r: &'static resources::Resource, name: &str) -> Option<Value> {
        self.store.get(r, "default", name).ok()
    }

    fn pod(&self, name: &str) -> Option<Value> {
        self.get(resources::pods(), name)
    }

    fn create(&self, r: &'static resources::Resource, obj: Value) -> Value {
        self.store.create(r, "default", obj).unwrap()
    }

    /// Read-modify-write of one object (the store's own error type).
    #[allow(clippy::result_large_err)]
    fn edit(
        &self,
        r: &'static resources::Resource,
        name: &str,
        sub: Option<&str>,
        f: impl FnOnce(&mut Value),
    ) {
        self.store
            .write(r, "default", name, sub, |old| {
                let mut new = old.cloned().expect("exists");
                f(&mut new);
                Ok(new)
            })
            .unwrap();
    }

    /// The kubelet takes the Pod and reports it Running, Ready or not, with
    /// an IP.
    fn run_pod(&self, name: &str, ready: bool) -> String {
        let ip = format!("10.244.0.{}", self.next_ip.fetch_add(1, Ordering::SeqCst));
        self.edit(resources::pods(), name, None, |p| {
            p["spec"]["nodeName"] = json!("lab")
        });
        self.set_status(name, "Running", ready, &ip);
        ip
    }

    fn set_status(&self, name: &str, phase: &str, ready: bool, ip: &str) {
        self.edit(resources::pods(), name, Some("status"), |p| {
            p["status"] = json!({
                "phase": phase,
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                                "lastTransitionTime": "2025-01-01T00:00:00Z"}],
            });
        });
    }

    /// The kubelet is done with a terminating Pod.
    fn finish(&self, name: &str) {
        let pod = self.pod(name).expect("pod exists");
        assert!(
            pod["metadata"]["deletionTimestamp"].is_string(),
            "{name} is not terminating"
        );
        let opts = DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        self.store
            .delete(resources::pods(), "default", name, &opts)
            .unwrap();
    }

    fn delete(&self, r: &'static resources::Resource, name: &str) {
        self.store
            .delete(r, "default", name, &DeleteOptions::default())
            .unwrap();
    }

    /// Waits until `check` gives a value, re-checking on every store event
    /// and every 20 ms, for at most 10 s.
    async fn wait_for<T>(&self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        let (_, mut events) = self
            .store
            .watch(
                resources::namespaces(),
                None,
                Some(self.store.resource_version()),
            )
            .unwrap();
        loop {
            if let Some(v) = check() {
                return v;
            }
            if Instant::now() >= deadline {
                panic!("timed out waiting for {what}");
            }
            let tick = Instant::now() + Duration::from_millis(20);
            let _ = tokio::time::timeout_at(tick.min(deadline), events.recv()).await;
        }
    }

    /// The controller-managed slices of a Service.
    fn managed_slices(&self, svc: &str) -> Vec<Value> {
        let (slices, _) = self
            .store
            .list(resources::endpointslices(), Some("default"));
        slices
            .into_iter()
            .filter(|s| {
                s["metadata"]["labels"]["kubernetes.io/service-name"] == svc
                    && s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]
                        == "endpointslice-controller.k8s.io"
            })
            .collect()
    }

    /// Waits until the EndpointSlice controller has handled every event
    /// before this call: a Service sorting after the others gets its
    /// placeholder slice (one task handles keys in order).
    async fn endpointslices_settled(&self) {
        static N: AtomicU8 = AtomicU8::new(0);
        let name = format!("zz-barrier-{}", N.fetch_add(1, Ordering::SeqCst));
        self.create(
            resources::services(),
            json!({"metadata": {"name": name}, "spec": {"selector": {"none": "none"}, "ports": [{"port": 1}]}}),
        );
        self.wait_for("the barrier's slice", || {
            (!self.managed_slices(&name).is_empty()).then_some(())
        })
        .await;
        self.delete(resources::services(), &name);
    }
}

fn web_pod(name: &str) -> Value {
    json!({
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "zookeeper:3.8", "ports": [{"name": "http", "containerPort": 8080}]}]},
    })
}

/// One endpoint per Pod name, as (ready, serving, terminating).
fn conditions_by_pod(slice: &Value) -> Vec<(String, bool, bool, bool)> {
    let mut v: Vec<_> = slice["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let c = &e["conditions"];
            (
                e["targetRef"]["name"].as_str().unwrap().to_string(),
                c["ready"] == true,
                c["serving"] == true,
                c["terminating"] == true,
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selecting_service_gets_a_managed_slice_of_its_pods() {
    let c = Cluster::start();
    for name in ["web-a", "web-b", "web-c"] {
        c.create(resources::pods(), web_pod(name));
    }
    c.create(
        resources::pods(),
        json!({"metadata": {"name": "other", "labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "zookeeper:3.8"}]}}),
    );
    let ip_a = c.run_pod("web-a", true);
    c.run_pod("web-b", false);
    c.run_pod("other", true);
    // web-c has no IP yet: not an endpoint.
    let svc = c.create(
        resources::services(),
        json!({"metadata": {"name": "web", "labels": {"tier": "front"}}, "spec": {
            "clusterIP": "10.96.0.20", "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}),
    );
    let slice = c
        .wait_for("web's slice with two endpoints", || {
            c.managed_slices("web")
                .into_iter()
                .find(|s| s["endpoints"].as_array().is_some_and(|e| e.len() == 2))
        })
        .await;
    assert!(
        slice["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("web-")
    );
    assert_eq!(
        slice["metadata"]["name"].as_str().unwrap().len(),
        "web-".len() + 5
    );
    assert_eq!(
        slice["metadata"]["labels"]["tier"], "front",
        "the Service's labels are copied"
    );
    assert_eq!(
        slice["metadata"]["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": svc["metadata"]["uid"],
                "controller": true, "blockOwnerDeletion": true}])
    );
    assert_eq!(slice["addressType"], "IPv4");
    let managers: Vec<&str> = slice["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["endpointslice-controller.k8s.io"]);
    assert_eq!(
        slice["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        conditions_by_pod(&slice),
        [
            ("web-a".into(), true, true, false),
            ("web-b".into(), false, false, false)
        ]
    );
    let a = slice["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["targetRef"]["name"] == "web-a")
        .unwrap();
    assert_eq!(a["addresses"], json!([ip_a]));
    assert_eq!(a["nodeName"], "lab");

    // A Pod being deleted stays, serving but not ready, until it is gone.
    c.delete(resources::pods(), "web-a");
    c.wait_for("web-a terminating in the slice", || {
        let s = c.managed_slices("web").pop()?;
        conditions_by_pod(&s)
            .contains(&("web-a".into(), false, true, true))
            .then_some(())
    })
    .await;
    c.finish("web-a");
    c.wait_for("web-a out of the slice", || {
        let s = c.managed_slices("web").pop()?;
        (conditions_by_pod(&s) == [("web-b".into(), false, false, false)]).then_some(())
    })
    .await;

    // publishNotReadyAddresses: every Pod is reported ready.
    c.edit(resources::services(), "web", None, |s| {
        s["spec"]["publishNotReadyAddresses"] = json!(true)
    });
    c.wait_for("web-b ready under publishNotReadyAddresses", || {
        let s = c.managed_slices("web").pop()?;
        (conditions_by_pod(&s) == [("web-b".into(), true, false, false)]).then_some(())
    })
    .await;

    // The Service's deletion takes its slices (garbage collector).
    c.delete(resources::services(), "web");
    c.wait_for("web's slices gone", || {
        c.managed_slices("web").is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_made_slice_is_never_touched_when_the_service_gains_a_selector() {
    let c = Cluster::start();
    c.create(
        resources::services(),
        json!({"metadata": {"name": "zk-1"}, "spec": {"clusterIP": "10.96.0.11", "publishNotReadyAddresses": true,
               "ports": [{"name": "client", "port": 2181, "targetPort": 2181, "protocol": "TCP"}]}}),
    );
    let hand_made = c.create(
        resources::endpointslices(),
        json!({"metadata": {"name": "zk-1-host", "labels": {
                    "kubernetes.io/service-name": "zk-1", "endpointslice.kubernetes.io/managed-by": "zkmigrate"}},
               "addressType": "IPv4",
               "endpoints": [{"addresses": ["10.77.0.11"], "conditions": {"ready": true}}],
               "ports": [{"name": "client", "port": 2181, "protocol": "TCP"}]}),
    );
    c.create(
        resources::pods(),
        json!({"metadata": {"name": "zk-0", "labels": {"statefulset.kubernetes.io/pod-name": "zk-0"}},
               "spec": {"containers": [{"name": "zk", "image": "zookeeper:3.8"}]}}),
    );
    let ip = c.run_pod("zk-0", false);
    c.endpointslices_settled().await;
    assert!(
        c.managed_slices("zk-1").is_empty(),
        "no selector, no managed slice"
    );

    c.edit(resources::services(), "zk-1", None, |s| {
        s["spec"]["selector"] = json!({"statefulset.kubernetes.io/pod-name": "zk-0"});
    });
    let slice = c
        .wait_for("the controller's slice for zk-1", || {
            c.managed_slices("zk-1")
                .into_iter()
                .find(|s| s["endpoints"].as_array().is_some_and(|e| e.len() == 1))
        })
        .await;
    assert_eq!(slice["endpoints"][0]["addresses"], json!([ip]));
    assert_eq!(
        slice["endpoints"][0]["conditions"]["ready"], true,
        "publishNotReadyAddresses"
    );
    c.endpointslices_settled().await;
    assert_eq!(
        c.get(resources::endpointslices(), "zk-1-host")
            .expect("the hand-made slice stays"),
        hand_made,
        "the hand-made slice is not modified"
    );

    // As the real controller (Kubernetes #91072, #118376): once the
    // selector is gone the Service is no longer synced, and its slices are
    // left as they were, not deleted and not updated.
    c.edit(resources::services(), "zk-1", None, |s| {
        s["spec"].as_object_mut().unwrap().remove("selector");
    });
    c.endpointslices_settled().await;
    c.set_status("zk-0", "Running", true, &ip);
    c.endpointslices_settled().await;
    let left = c.managed_slices("zk-1");
    assert_eq!(left.len(), 1, "the controller's slice is left behind");
    assert_eq!(
        left[0]["metadata"]["resourceVersion"], slice["metadata"]["resourceVersion"],
        "and no longer updated"
    );
    assert_eq!(
        c.get(resources::endpointslices(), "zk-1-host").unwrap(),
        hand_made
    );
}

fn statefulset(name: &str, replicas: i64, policy: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": format!("{name}-hs"),
            "podManagementPolicy": policy,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "zk", "image": "zookeeper:3.8"}]},
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }],
        },
    })
}

#[path = "controllers/statefulset.rs"]
mod statefulset;
