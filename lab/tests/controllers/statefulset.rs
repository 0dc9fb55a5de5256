//! StatefulSets: ordered creation, identity, claims bound with their
//! directories, replacement only once the old Pod is gone, ordered
//! scale-down, parallel management, rolling update, and garbage collection
//! of Pods (not claims) when the set is deleted.

use super::*;

fn uid(v: &Value) -> String {
    v["metadata"]["uid"].as_str().unwrap().to_string()
}

impl Cluster {
    fn set_status_of(&self, name: &str) -> Value {
        self.get(resources::statefulsets(), name).unwrap()["status"].clone()
    }

    /// Waits until the StatefulSet controller has handled every event
    /// before this call: a set sorting after the others gets its Pod (one
    /// task handles keys in order).
    async fn statefulsets_settled(&self) {
        static N: AtomicU8 = AtomicU8::new(0);
        let name = format!("zz-barrier-{}", N.fetch_add(1, Ordering::SeqCst));
        let mut set = statefulset(&name, 1, "Parallel");
        set["spec"]
            .as_object_mut()
            .unwrap()
            .remove("volumeClaimTemplates");
        self.create(resources::statefulsets(), set);
        let pod = format!("{name}-0");
        self.wait_for("the barrier's pod", || self.pod(&pod)).await;
        self.store
            .delete(
                resources::statefulsets(),
                "default",
                &name,
                &DeleteOptions::default(),
            )
            .unwrap();
    }

    fn bound_dir(&self, claim: &str) -> Option<std::path::PathBuf> {
        bound_claim_dir(self.volumes.path(), &self.get(resources::pvcs(), claim)?)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_ready_creates_replaces_and_scales_down_one_at_a_time() {
    let c = Cluster::start();
    let set = c.create(
        resources::statefulsets(),
        statefulset("zk", 3, "OrderedReady"),
    );

    let zk0 = c.wait_for("zk-0", || c.pod("zk-0")).await;
    let dir0 = c
        .wait_for("data-zk-0 bound", || c.bound_dir("data-zk-0"))
        .await;
    assert!(dir0.is_dir(), "the claim has its directory");
    c.wait_for("status with one replica", || {
        (c.set_status_of("zk")["replicas"] == 1).then_some(())
    })
    .await;
    assert!(
        c.pod("zk-1").is_none(),
        "zk-1 waits for zk-0 to be Running and Ready"
    );

    let status = c.set_status_of("zk");
    let revision = status["updateRevision"].as_str().unwrap().to_string();
    assert!(revision.starts_with("zk-"));
    assert_eq!(
        zk0["metadata"]["labels"],
        json!({"app": "zk", "statefulset.kubernetes.io/pod-name": "zk-0", "apps.kubernetes.io/pod-index": "0",
               "controller-revision-hash": revision})
    );
    assert_eq!(
        zk0["metadata"]["ownerReferences"],
        json!([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "zk", "uid": uid(&set),
                "controller": true, "blockOwnerDeletion": true}])
    );
    assert_eq!(
        (
            zk0["spec"]["hostname"].clone(),
            zk0["spec"]["subdomain"].clone()
        ),
        (json!("zk-0"), json!("zk-hs"))
    );
    assert_eq!(
        zk0["spec"]["volumes"],
        json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data-zk-0"}}])
    );
    let claim0 = c.get(resources::pvcs(), "data-zk-0").unwrap();
    assert_eq!(
        claim0["metadata"]["labels"],
        json!({"app": "zk"}),
        "the selector's labels"
    );
    assert!(
        claim0["metadata"].get("ownerReferences").is_none(),
        "Retain: claims have no owner"
    );

    c.run_pod("zk-0", false);
    c.wait_for("status seeing zk-0 not ready", || {
        let s = c.set_status_of("zk");
        (s["replicas"] == 1 && s.get("readyReplicas").is_none()).then_some(())
    })
    .await;
    c.statefulsets_settled().await;
    assert!(
        c.pod("zk-1").is_none(),
        "Running but not Ready is not enough"
    );
    c.run_pod("zk-0", true);
    c.wait_for("zk-1", || c.pod("zk-1")).await;
    c.statefulsets_settled().await;
    assert!(c.pod("zk-2").is_none());
    c.run_pod("zk-1", true);
    c.wait_for("zk-2", || c.pod("zk-2")).await;
    c.run_pod("zk-2", true);
    let status = c
        .wait_for("three ready replicas", || {
            let s = c.set_status_of("zk");
            (s["readyReplicas"] == 3).then_some(s)
        })
        .await;
    assert_eq!(
        status,
        json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "availableReplicas": 3,
               "currentReplicas": 3, "updatedReplicas": 3, "currentRevision": revision,
               "updateRevision": revision, "collisionCount": 0})
    );

    let stored = c.get(resources::statefulsets(), "zk").unwrap();
    let entries = stored["metadata"]["managedFields"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["manager"] == "statefulset-controller" && e["subresource"] == "status"),
        "{entries:?}"
    );

    // A deleted member comes back with the same claim, but only once the
    // kubelet has finished the old one.
    let dir1 = c
        .wait_for("data-zk-1 bound", || c.bound_dir("data-zk-1"))
        .await;
    std::fs::write(dir1.join("myid"), "2").unwrap();
    let claim1 = c.get(resources::pvcs(), "data-zk-1").unwrap();
    let old1 = c.pod("zk-1").unwrap();
    c.delete(resources::pods(), "zk-1");
    c.wait_for("the set seeing zk-1 terminate", || {
        (c.set_status_of("zk")["currentReplicas"] == 2).then_some(())
    })
    .await;
    let still = c.pod("zk-1").unwrap();
    assert_eq!(
        uid(&still),
        uid(&old1),
        "the terminating zk-1 is not replaced"
    );
    assert!(still["metadata"]["deletionTimestamp"].is_string());
    c.finish("zk-1");
    let new1 = c
        .wait_for("a new zk-1", || {
            c.pod("zk-1").filter(|p| uid(p) != uid(&old1))
        })
        .await;
    assert_eq!(
        new1["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "data-zk-1"
    );
    assert_eq!(
        uid(&c.get(resources::pvcs(), "data-zk-1").unwrap()),
        uid(&claim1),
        "the same claim"
    );
    assert_eq!(
        std::fs::read_to_string(dir1.join("myid")).unwrap(),
        "2",
        "with its data"
    );
    c.run_pod("zk-1", true);
    c.wait_for("three ready again", || {
        (c.set_status_of("zk")["readyReplicas"] == 3).then_some(())
    })
    .await;

    // Scale to 1 (what the scale subresource writes): zk-2 first, then zk-1.
    c.edit(resources::statefulsets(), "zk", None, |s| {
        s["spec"]["replicas"] = json!(1)
    });
    c.wait_for("zk-2 terminating", || {
        c.pod("zk-2")
            .filter(|p| p["metadata"]["deletionTimestamp"].is_string())
    })
    .await;
    c.statefulsets_settled().await;
    assert!(
        c.pod("zk-1").unwrap()["metadata"]["deletionTimestamp"].is_null(),
        "one at a time, highest first"
    );
    c.finish("zk-2");
    c.wait_for("zk-1 terminating", || {
        c.pod("zk-1")
            .filter(|p| p["metadata"]["deletionTimestamp"].is_string())
    })
    .await;
    c.finish("zk-1");
    let status = c
        .wait_for("one replica", || {
            let s = c.set_status_of("zk");
            (s["replicas"] == 1 && s["observedGeneration"] == 2).then_some(s)
        })
        .await;
    assert_eq!(status["readyReplicas"], 1);
    assert!(c.pod("zk-0").unwrap()["metadata"]["deletionTimestamp"].is_null());
    for claim in ["data-zk-0", "data-zk-1", "data-zk-2"] {
        assert!(
            c.get(resources::pvcs(), claim).is_some(),
            "{claim} is retained"
        );
    }
    assert!(dir1.join("myid").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_creates_all_replaces_failed_and_deletion_keeps_claims() {
    let c = Cluster::start();
    c.create(resources::statefulsets(), statefulset("web", 3, "Parallel"));
    c.wait_for("three pods at once", || {
        ["web-0", "web-1", "web-2"]
            .iter()
            .all(|n| c.pod(n).is_some())
            .then_some(())
    })
    .await;
    for n in ["web-0", "web-1", "web-2"] {
        c.run_pod(n, true);
    }
    c.wait_for("three bound claims", || {
        ["data-web-0", "data-web-1", "data-web-2"]
            .iter()
            .all(|n| c.bound_dir(n).is_some())
            .then_some(())
    })
    .await;

    // A Failed Pod is deleted, and replaced once gone.
    let failed = c.pod("web-1").unwrap();
    c.set_status("web-1", "Failed", false, "10.244.0.99");
    c.wait_for("web-1 deleted for replacement", || {
        c.pod("web-1")
            .filter(|p| p["metadata"]["deletionTimestamp"].is_string())
    })
    .await;
    c.finish("web-1");
    c.wait_for("a new web-1", || {
        c.pod("web-1").filter(|p| uid(p) != uid(&failed))
    })
    .await;
    c.run_pod("web-1", true);

    // Deleting the set: the garbage collector deletes its Pods (the kubelet
    // finishes them); the claims stay.
    c.delete(resources::statefulsets(), "web");
    for n in ["web-0", "web-1", "web-2"] {
        c.wait_for("pod terminating", || {
            c.pod(n)
                .filter(|p| p["metadata"]["deletionTimestamp"].is_string())
        })
        .await;
        c.finish(n);
    }
    let (pods, _) = c.store.list(resources::pods(), Some("default"));
    assert!(pods.is_empty(), "no Pod comes back: {pods:?}");
    for n in ["data-web-0", "data-web-1", "data-web-2"] {
        assert!(
            c.bound_dir(n).unwrap().is_dir(),
            "{n} and its data are kept"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_deleted_delete_takes_the_claims_and_their_data_with_the_set() {
    let c = Cluster::start();
    let mut set = statefulset("tmp", 1, "OrderedReady");
    set["spec"]["persistentVolumeClaimRetentionPolicy"] =
        json!({"whenDeleted": "Delete", "whenScaled": "Retain"});
    let set = c.create(resources::statefulsets(), set);
    c.wait_for("tmp-0", || c.pod("tmp-0")).await;
    let dir = c
        .wait_for("data-tmp-0 bound", || c.bound_dir("data-tmp-0"))
        .await;
    let claim = c.get(resources::pvcs(), "data-tmp-0").unwrap();
    assert_eq!(
        claim["metadata"]["ownerReferences"][0]["uid"],
        set["metadata"]["uid"]
    );
    c.run_pod("tmp-0", true);
    c.delete(resources::statefulsets(), "tmp");
    c.wait_for("the claim deleted", || {
        c.get(resources::pvcs(), "data-tmp-0")
            .is_none()
            .then_some(())
    })
    .await;
    assert!(dir.is_dir(), "the data stays while the Pod uses it");
    c.wait_for("tmp-0 terminating", || {
        c.pod("tmp-0")
            .filter(|p| p["metadata"]["deletionTimestamp"].is_string())
    })
    .await;
    c.finish("tmp-0");
    c.wait_for("the data removed", || (!dir.exists()).then_some(()))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_change_rolls_from_the_highest_ordinal() {
    let c = Cluster::start();
    c.create(
        resources::statefulsets(),
        statefulset("zk", 2, "OrderedReady"),
    );
    c.wait_for("zk-0", || c.pod("zk-0")).await;
    c.run_pod("zk-0", true);
    c.wait_for("zk-1", || c.pod("zk-1")).await;
    c.run_pod("zk-1", true);
    let old = c
        .wait_for("two ready", || {
            let s = c.set_status_of("zk");
            (s["readyReplicas"] == 2).then(|| s["currentRevision"].as_str().unwrap().to_string())
        })
        .await;

    c.edit(resources::statefulsets(), "zk", None, |s| {
        s["spec"]["template"]["spec"]["containers"][0]["image"] = json!("zookeeper:3.9");
    });
    c.wait_for("zk-1 terminating", || {
        c.pod("zk-1")
            .filter(|p| p["metadata"]["deletionTimestamp"].is_string())
    })
    .await;
    assert!(
        c.pod("zk-0").unwrap()["metadata"]["deletionTimestamp"].is_null(),
        "zk-0 waits"
    );
    c.finish("zk-1");
    let new1 = c.wait_for("a new zk-1", || c.pod("zk-1")).await;
    let new = new1["metadata"]["labels"]["controller-revision-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new, old);
    assert_eq!(new1["spec"]["containers"][0]["image"], "zookeeper:3.9");
    let mid = c.set_status_of("zk");
    assert_eq!(
        (
            mid["currentRevision"].as_str(),
            mid["updateRevision"].as_str()
        ),
        (Some(old.as_str()), Some(new.as_str()))
    );
    c.statefulsets_settled().await;
    assert!(
        c.pod("zk-0").unwrap()["metadata"]["deletionTimestamp"].is_null(),
        "zk-0 waits for zk-1 to be Ready"
    );
    c.run_pod("zk-1", true);
    c.wait_for("zk-0 terminating", || {
        c.pod("zk-0")
            .filter(|p| p["metadata"]["deletionTimestamp"].is_string())
    })
    .await;
    c.finish("zk-0");
    c.wait_for("a new zk-0", || c.pod("zk-0")).await;
    c.run_pod("zk-0", true);
    c.wait_for("the update revision current", || {
        let s = c.set_status_of("zk");
        (s["currentRevision"] == new.as_str()
            && s["updatedReplicas"] == 2
            && s["readyReplicas"] == 2)
            .then_some(())
    })
    .await;
}
