//! kubectl (1.32) against the lab's API server: discovery with its
//! aggregated-discovery and OpenAPI v3 probes, create/get/apply
//! --server-side/describe/scale/logs/delete, errors, `auth can-i`.

use super::harness::Lab;

const MANIFESTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: zk-config
  labels: {app: zk}
data:
  k: one
---
apiVersion: v1
kind: Service
metadata:
  name: zk
spec:
  clusterIP: None
  selector: {app: zk}
  ports:
  - name: client
    port: 2181
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: zk
spec:
  replicas: 3
  serviceName: zk
  selector:
    matchLabels: {app: zk}
  template:
    metadata:
      labels: {app: zk}
    spec:
      containers:
      - name: zookeeper
        image: zookeeper:3.8
---
apiVersion: v1
kind: Pod
metadata:
  name: zk-0
  labels: {app: zk}
spec:
  containers:
  - name: zookeeper
    image: zookeeper:3.8
"#;

fn ok(r: (bool, String, String), what: &str) -> String {
    assert!(
        r.0,
        "kubectl {what} failed:\nstdout: {}\nstderr: {}",
        r.1, r.2
    );
    r.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_creates_gets_applies_describes_scales_logs_and_deletes() {
    let lab = Lab::start(20).await;
    let out = ok(
        lab.kubectl(&["create", "-f", "-"], Some(MANIFESTS)).await,
        "create",
    );
    for line in [
        "configmap/zk-config created",
        "service/zk created",
        "statefulset.apps/zk created",
        "pod/zk-0 created",
    ] {
        assert!(out.contains(line), "{out}");
    }
    let out = ok(
        lab.kubectl(
            &[
                "get",
                "configmaps,services,statefulsets,pods",
                "-l",
                "app=zk",
                "-o",
                "name",
            ],
            None,
        )
        .await,
        "get -o name",
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["configmap/zk-config", "pod/zk-0"],
        "the Service and the StatefulSet have no labels"
    );
    let out = ok(lab.kubectl(&["get", "pods"], None).await, "get pods");
    assert!(out.starts_with("NAME") && out.contains("zk-0"), "{out}");
    let out = ok(
        lab.kubectl(
            &["get", "sts", "zk", "-o", "jsonpath={.spec.replicas}"],
            None,
        )
        .await,
        "get sts",
    );
    assert_eq!(out, "3");

    // Server-side apply of a change: `data.k` belongs to kubectl-create,
    // so it conflicts, as on a real cluster, until forced.
    let changed = MANIFESTS.replace("k: one", "k: two");
    let (success, _, err) = lab
        .kubectl(&["apply", "--server-side", "-f", "-"], Some(&changed))
        .await;
    assert!(!success);
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"kubectl-create\"")
            && err.contains(".data.k"),
        "{err}"
    );
    let out = ok(
        lab.kubectl(
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            Some(&changed),
        )
        .await,
        "apply --server-side --force-conflicts",
    );
    assert!(
        out.contains("configmap/zk-config serverside-applied"),
        "{out}"
    );
    let out = ok(
        lab.kubectl(
            &["get", "cm", "zk-config", "-o", "jsonpath={.data.k}"],
            None,
        )
        .await,
        "get cm",
    );
    assert_eq!(out, "two");

    for what in [
        ["statefulset", "zk"],
        ["service", "zk"],
        ["pod", "zk-0"],
        ["configmap", "zk-config"],
    ] {
        let out = ok(
            lab.kubectl(&["describe", what[0], what[1]], None).await,
            "describe",
        );
        assert!(out.contains("Name:") && out.contains(what[1]), "{out}");
    }

    let out = ok(
        lab.kubectl(&["scale", "statefulset", "zk", "--replicas=5"], None)
            .await,
        "scale",
    );
    assert!(out.contains("statefulset.apps/zk scaled"), "{out}");
    let out = ok(
        lab.kubectl(
            &["get", "sts", "zk", "-o", "jsonpath={.spec.replicas}"],
            None,
        )
        .await,
        "get sts",
    );
    assert_eq!(out, "5");

    std::fs::write(
        lab.log_path("default", "zk-0", "zookeeper"),
        "starting\nserving\n",
    )
    .unwrap();
    let out = ok(lab.kubectl(&["logs", "zk-0"], None).await, "logs");
    assert_eq!(out, "starting\nserving\n");
    let out = ok(
        lab.kubectl(&["logs", "zk-0", "--tail=1"], None).await,
        "logs --tail",
    );
    assert_eq!(out, "serving\n");

    let (success, _, err) = lab.kubectl(&["get", "cm", "nope"], None).await;
    assert!(!success);
    assert!(
        err.contains("Error from server (NotFound): configmaps \"nope\" not found"),
        "{err}"
    );
    let out = ok(
        lab.kubectl(&["auth", "can-i", "delete", "pods"], None)
            .await,
        "auth can-i",
    );
    assert_eq!(out.trim(), "yes");

    let out = ok(
        lab.kubectl(&["delete", "-f", "-"], Some(MANIFESTS)).await,
        "delete",
    );
    for line in [
        "configmap \"zk-config\" deleted",
        "service \"zk\" deleted",
        "statefulset.apps \"zk\" deleted",
        "pod \"zk-0\" deleted",
    ] {
        assert!(out.contains(line), "{out}");
    }
    let out = ok(
        lab.kubectl(&["get", "all", "-o", "name"], None).await,
        "get all",
    );
    assert_eq!(out.trim(), "", "everything is gone");
    lab.stop().await;
}
