//! The Kubernetes boundary against the lab's real API server, controllers
//! and kubelet: server-side apply and its conflicts, 404 semantics, waits
//! by watch on objects the controllers and the kubelet change, access
//! reviews for an admin and a restricted token, foreign objects, Events,
//! and the journal's kubernetes backend (a ConfigMap under a Lease).
//! Needs root, as every lab test does; each outer test builds its own lab
//! and tears it down on drop, even when an assertion fails.
//!
//! The API server listens on 10.77.0.2, reachable only from the lab's
//! namespaces, so the outer tests run the inner ones (`inside_ops_*`,
//! ignored on their own) as a child of this same binary under `ip netns
//! exec <ops>`, with `KUBECONFIG` naming the lab's kubeconfig, exactly as
//! zkmigrate runs in `zklab run --on ops`. `connect` reads the kubeconfig
//! as it would in production: no test-only client path.
//!
//! The restricted token is written to `<lab>/tokens/` before `up`, because
//! the control plane reads its tokens once, at start.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use zklab::layout::{Layout, Machine};
use zklab::topology::{self, Target};
use zkmigrate::k8s::{self, Cluster, K8sError, ObjectKind, REQUIRED_PERMISSIONS};
use zkmigrate::plan;

/// Names the lab to the inner tests.
const LAB_ENV: &str = "ZKMIGRATE_K8S_LAB";

/// The restricted user's token: may read Services and nothing else.
const RESTRICTED_TOKEN: &str = "zkm-test-restricted-token";

/// How long any wait on the lab may take before the test fails.
const WAIT: Duration = Duration::from_secs(60);

/// A lab for one test, torn down on drop.
struct Lab {
    layout: Layout,
    kubeconfig: PathBuf,
}

impl Lab {
    fn up(tag: &str) -> Lab {
        let name = format!("kb{tag}{}", std::process::id() % 100_000);
        let layout = Layout::new(&name).unwrap();
        let _ = topology::down(&layout);
        write_restricted_token(&layout);
        let state = match topology::up(&layout, 3, Target::StatefulSet) {
            Ok(state) => state,
            Err(e) => {
                let _ = topology::down(&layout);
                panic!("zklab up: {e}");
            }
        };
        let lab = Lab {
            kubeconfig: PathBuf::from(&state.kubeconfig),
            layout,
        };
        lab.write_restricted_kubeconfig();
        lab
    }

    /// The lab's kubeconfig (JSON) with the restricted token in place of
    /// the admin's.
    fn write_restricted_kubeconfig(&self) {
        let text = std::fs::read_to_string(&self.kubeconfig).unwrap();
        let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
        config["users"][0]["user"]["token"] = json!(RESTRICTED_TOKEN);
        std::fs::write(
            self.restricted_kubeconfig(),
            serde_json::to_string_pretty(&config).unwrap(),
        )
        .unwrap();
    }

    fn restricted_kubeconfig(&self) -> PathBuf {
        self.layout.root.join("kubeconfig-restricted")
    }

    /// Runs inner test `name` of this binary inside the operator machine,
    /// with `kubeconfig` as `KUBECONFIG`.
    fn run_inside_ops(&self, name: &str, kubeconfig: &PathBuf) {
        let started = Instant::now();
        let out = Command::new("ip")
            .args(["netns", "exec", &self.layout.ns(Machine::Ops)])
            .arg(std::env::current_exe().unwrap())
            .args([
                name,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(LAB_ENV, &self.layout.name)
            .env("KUBECONFIG", kubeconfig)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{name} inside the operator machine failed:\n{stdout}\n{stderr}"
        );
        eprint!("{stderr}");
        eprintln!("{name}: {:.1} s", started.elapsed().as_secs_f64());
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = topology::down(&self.layout);
    }
}

/// `<lab>/tokens/restricted.json`: get/list/watch Services in `zookeeper`.
fn write_restricted_token(layout: &Layout) {
    let dir = layout.root.join("tokens");
    std::fs::create_dir_all(&dir).unwrap();
    let token = json!({
        "token": RESTRICTED_TOKEN,
        "user": "zkm-restricted",
        "rules": [{"verbs": ["get", "list", "watch"], "apiGroups": [""],
                   "resources": ["services"], "namespaces": ["zookeeper"]}],
    });
    std::fs::write(dir.join("restricted.json"), token.to_string()).unwrap();
}

#[test]
fn the_kubernetes_boundary_works_against_the_labs_api_server() {
    let lab = Lab::up("a");
    let admin = lab.kubeconfig.clone();
    for inner in [
        "inside_ops_apply_is_idempotent_and_never_forces",
        "inside_ops_absence_is_an_answer",
        "inside_ops_waits_follow_the_controllers_and_the_kubelet",
        "inside_ops_access_foreign_objects_and_events",
        "inside_ops_the_journal_lives_in_a_config_map_under_a_lease",
    ] {
        lab.run_inside_ops(inner, &admin);
    }
    lab.run_inside_ops(
        "inside_ops_a_restricted_token_is_told_what_it_lacks",
        &lab.restricted_kubeconfig(),
    );
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Connects as zkmigrate does, from the lab's plan (namespace
/// `zookeeper`), and makes sure the namespace exists (zkmigrate itself
/// never creates it).
async fn inner_cluster() -> Cluster {
    let name = std::env::var(LAB_ENV)
        .unwrap_or_else(|_| panic!("run by the outer test of k8s_lab.rs, which sets {LAB_ENV}"));
    let layout = Layout::new(&name).unwrap();
    let plan = plan::load(&layout.plan_file()).expect("the lab's plan");
    let cluster = k8s::connect(&plan.kubernetes).await.expect("connect");
    assert_eq!(cluster.namespace(), "zookeeper");
    assert_eq!(cluster.server_version().await.unwrap(), "v1.33.0");
    if !cluster.namespace_exists().await.unwrap() {
        let namespaces: Api<Namespace> = Api::all(cluster.client().clone());
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": "zookeeper"}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }
    assert!(cluster.namespace_exists().await.unwrap());
    cluster
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A per-server Service as DESIGN 5.2 has it (no selector).
fn server_service(name: &str, id: &str) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": {
            "app.kubernetes.io/managed-by": "zkmigrate", "zkmigrate/plan": "lab",
            "zkmigrate/server-id": id}},
        "spec": {"type": "ClusterIP", "publishNotReadyAddresses": true, "ports": [
            {"name": "client", "port": 2181, "targetPort": 2181},
            {"name": "quorum", "port": 2888, "targetPort": 2888},
            {"name": "election", "port": 3888, "targetPort": 3888}]}
    }))
    .unwrap()
}

#[test]
#[ignore = "run by the outer test inside the lab's operator machine"]
fn inside_ops_apply_is_idempotent_and_never_forces() {
    block_on(async {
        let cluster = inner_cluster().await;
        let svc = server_service("zk-1", "1");
        let first = cluster.apply(&svc).await.unwrap();
        let second = cluster.apply(&svc).await.unwrap();
        assert_eq!(
            first.metadata.resource_version, second.metadata.resource_version,
            "applying the same object twice changes nothing"
        );
        let cluster_ip = second.spec.as_ref().and_then(|s| s.cluster_ip.clone());
        assert!(cluster_ip.is_some_and(|ip| ip.starts_with("10.96.")));

        // Another manager takes a label over (as `kubectl edit` would).
        let services: Api<Service> = Api::namespaced(cluster.client().clone(), "zookeeper");
        let other = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "zk-1", "labels": {"zkmigrate/server-id": "9"}}});
        services
            .patch(
                "zk-1",
                &PatchParams::apply("other-tool").force(),
                &Patch::Apply(&other),
            )
            .await
            .unwrap();
        let err = cluster.apply(&svc).await.unwrap_err();
        let K8sError::Conflict { conflicts, .. } = &err else {
            panic!("expected a conflict: {err}");
        };
        assert_eq!(conflicts.len(), 1, "{err}");
        assert_eq!(conflicts[0].manager, "other-tool");
        assert_eq!(conflicts[0].field, ".metadata.labels.zkmigrate/server-id");
        assert!(
            err.to_string().starts_with(
                "failed to apply Service zk-1 in namespace zookeeper: 1 field is managed by \
                 another field manager: .metadata.labels.zkmigrate/server-id (managed by \"other-tool\")"
            ),
            "{err}"
        );
        let live: Service = cluster.get_opt("zk-1").await.unwrap().unwrap();
        assert_eq!(
            live.metadata.labels.unwrap()["zkmigrate/server-id"],
            "9",
            "not forced"
        );

        // Forced only when asked.
        let forced = cluster.apply_forced(&svc).await.unwrap();
        assert_eq!(forced.metadata.labels.unwrap()["zkmigrate/server-id"], "1");

        // The API's refusal names the object and keeps the server's words.
        let mut bad = server_service("zk-bad", "2");
        bad.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 0;
        let err = cluster.apply(&bad).await.unwrap_err();
        assert_eq!(err.status_code(), Some(422), "{err}");
        assert!(
            err.to_string()
                .starts_with("failed to apply Service zk-bad in namespace zookeeper: "),
            "{err}"
        );
        assert!(err.to_string().ends_with("(Invalid, 422)"), "{err}");

        let mut nameless = server_service("x", "3");
        nameless.metadata.name = None;
        let err = cluster.apply(&nameless).await.unwrap_err();
        assert!(matches!(err, K8sError::NoName { .. }), "{err}");
    });
}

#[test]
#[ignore = "run by the outer test inside the lab's operator machine"]
fn inside_ops_absence_is_an_answer() {
    block_on(async {
        let cluster = inner_cluster().await;
        assert!(
            cluster
                .get_opt::<ConfigMap>("nothing")
                .await
                .unwrap()
                .is_none()
        );
        assert!(!cluster.delete::<ConfigMap>("nothing").await.unwrap());

        let cm: ConfigMap = serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "zk-ordinals", "labels": {"app.kubernetes.io/managed-by": "zkmigrate"}},
            "data": {"0": "2"}}))
        .unwrap();
        // A wait that starts before the object exists ends when it appears.
        let (seen, applied) = tokio::join!(
            cluster.await_condition::<ConfigMap>(
                "zk-ordinals",
                |cm| cm.is_some_and(|cm| cm.data.as_ref().is_some_and(|d| d.contains_key("0"))),
                WAIT,
            ),
            cluster.apply(&cm),
        );
        applied.unwrap();
        assert!(seen.unwrap().is_some());
        let listed: Vec<ConfigMap> = cluster
            .list("app.kubernetes.io/managed-by=zkmigrate")
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);

        assert!(cluster.delete::<ConfigMap>("zk-ordinals").await.unwrap());
        cluster
            .await_deleted::<ConfigMap>("zk-ordinals", WAIT)
            .await
            .unwrap();
        assert!(
            cluster
                .get_opt::<ConfigMap>("zk-ordinals")
                .await
                .unwrap()
                .is_none()
        );
        assert!(!cluster.delete::<ConfigMap>("zk-ordinals").await.unwrap());

        // A condition that never holds ends in a timeout that says what
        // was seen.
        let err = cluster
            .await_condition::<ConfigMap>("zk-never", |cm| cm.is_some(), Duration::from_millis(500))
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert_eq!(
            err.to_string(),
            "failed to see ConfigMap zk-never in the awaited state in namespace zookeeper \
             within 500ms; last seen: no such ConfigMap"
        );
    });
}

/// A tiny Pod the lab's kubelet runs for real.
fn sleeper(name: &str, image: &str) -> Pod {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [
            {"name": "main", "image": image, "command": ["sleep", "3600"]}]}}))
    .unwrap()
}

#[test]
#[ignore = "run by the outer test inside the lab's operator machine"]
fn inside_ops_waits_follow_the_controllers_and_the_kubelet() {
    block_on(async {
        let cluster = inner_cluster().await;
        let mut svc = server_service("zk-7", "7");
        svc.spec.as_mut().unwrap().selector = Some(labels(&[("app", "probe")]));
        cluster.apply(&svc).await.unwrap();
        cluster
            .apply(&sleeper("probe", "zookeeper:3.8"))
            .await
            .unwrap();

        let pod = cluster.await_pod_ready("probe", WAIT).await.unwrap();
        let pod_ip = pod.status.and_then(|s| s.pod_ip).unwrap();
        assert!(pod_ip.starts_with("10.244."), "{pod_ip}");

        let slice = cluster.await_controller_slice("zk-7", WAIT).await.unwrap();
        let slice_labels = slice.metadata.labels.clone().unwrap();
        assert_eq!(
            slice_labels["endpointslice.kubernetes.io/managed-by"],
            "endpointslice-controller.k8s.io"
        );
        assert_eq!(slice.endpoints[0].addresses, vec![pod_ip]);

        // A hand-made slice of the same Service is never taken for the
        // controller's.
        let own: EndpointSlice = serde_json::from_value(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "zk-8-zkmigrate", "labels": {
                "kubernetes.io/service-name": "zk-8",
                "endpointslice.kubernetes.io/managed-by": "zkmigrate"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.77.0.11"]}],
            "ports": [{"name": "client", "port": 2181, "protocol": "TCP"}]}))
        .unwrap();
        cluster.apply(&server_service("zk-8", "8")).await.unwrap();
        cluster.apply(&own).await.unwrap();
        let err = cluster
            .await_controller_slice("zk-8", Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");

        // An image the lab cannot pull: the timeout says so.
        cluster
            .apply(&sleeper("unpullable", "busybox:1"))
            .await
            .unwrap();
        let err = cluster
            .await_pod_ready("unpullable", Duration::from_secs(3))
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(
                "failed to see Pod unpullable ready in namespace zookeeper within 3s; last seen: phase Pending, container main waiting: "
            ) && (message.contains("ErrImagePull") || message.contains("ImagePullBackOff")),
            "{message}"
        );

        for pod in ["probe", "unpullable"] {
            assert!(cluster.delete::<Pod>(pod).await.unwrap());
            cluster.await_deleted::<Pod>(pod, WAIT).await.unwrap();
        }
        for svc in ["zk-7", "zk-8"] {
            assert!(cluster.delete::<Service>(svc).await.unwrap());
        }
    });
}

#[test]
#[ignore = "run by the outer test inside the lab's operator machine"]
fn inside_ops_access_foreign_objects_and_events() {
    block_on(async {
        let cluster = inner_cluster().await;
        assert!(cluster.can_i("create", "", "services", "").await.unwrap());
        assert!(
            cluster
                .can_i("patch", "apps", "statefulsets", "")
                .await
                .unwrap()
        );
        assert_eq!(
            cluster
                .missing_permissions(&REQUIRED_PERMISSIONS)
                .await
                .unwrap(),
            vec![]
        );

        // zk-1 is zkmigrate's; a ConfigMap of Helm's and an unlabelled
        // Service hold names zkmigrate wants.
        cluster.apply(&server_service("zk-1", "1")).await.unwrap();
        let helm: ConfigMap =
            serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "zk-config", "labels": {"app.kubernetes.io/managed-by": "Helm"}}}))
            .unwrap();
        let services: Api<Service> = Api::namespaced(cluster.client().clone(), "zookeeper");
        let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client().clone(), "zookeeper");
        configmaps
            .create(&PostParams::default(), &helm)
            .await
            .unwrap();
        let mut bare = server_service("zk-2", "2");
        bare.metadata.labels = None;
        services
            .create(&PostParams::default(), &bare)
            .await
            .unwrap();
        let names = [
            (ObjectKind::Service, "zk-1".to_string()),
            (ObjectKind::Service, "zk-2".to_string()),
            (ObjectKind::Service, "zk-3".to_string()),
            (ObjectKind::ConfigMap, "zk-config".to_string()),
            (ObjectKind::StatefulSet, "zk".to_string()),
            (ObjectKind::PodDisruptionBudget, "zk".to_string()),
        ];
        let foreign: Vec<String> = cluster
            .foreign_objects(&names)
            .await
            .unwrap()
            .iter()
            .map(|f| f.to_string())
            .collect();
        assert_eq!(
            foreign,
            vec![
                "Service zk-2 (not labelled app.kubernetes.io/managed-by=zkmigrate)",
                "ConfigMap zk-config (managed by Helm)",
            ]
        );

        // Events: on the Service, found as `kubectl describe` finds them.
        assert!(
            cluster
                .record_event("zk-1", "ServiceCreated", "zk-1 points at host1")
                .await
        );
        assert!(
            cluster
                .record_warning("zk-1", "GateWaiting", "server 2 lags by 12")
                .await
        );
        assert!(
            !cluster
                .record_event("zk-none", "Nothing", "no such Service")
                .await
        );
        let uid = services.get("zk-1").await.unwrap().metadata.uid.unwrap();
        let events: Api<Event> = Api::namespaced(cluster.client().clone(), "zookeeper");
        let selector = format!(
            "involvedObject.name=zk-1,involvedObject.namespace=zookeeper,involvedObject.kind=Service,involvedObject.uid={uid}"
        );
        let listed = events
            .list(&ListParams::default().fields(&selector))
            .await
            .unwrap();
        let mut seen: Vec<(String, String)> = listed
            .items
            .iter()
            .map(|e| (e.type_.clone().unwrap(), e.reason.clone().unwrap()))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            vec![
                ("Normal".to_string(), "ServiceCreated".to_string()),
                ("Warning".to_string(), "GateWaiting".to_string()),
            ]
        );
        let kubeconfig = std::env::var("KUBECONFIG").unwrap();
        let describe = Command::new("kubectl")
            .args([
                "--kubeconfig",
                &kubeconfig,
                "describe",
                "svc",
                "zk-1",
                "-n",
                "zookeeper",
            ])
            .output();
        match describe {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(text.contains("ServiceCreated"), "{text}");
                assert!(text.contains("zk-1 points at host1"), "{text}");
                assert!(text.contains("GateWaiting"), "{text}");
            }
            other => eprintln!("kubectl describe not checked: {other:?}"),
        }
        for svc in ["zk-1", "zk-2"] {
            assert!(cluster.delete::<Service>(svc).await.unwrap());
        }
        assert!(cluster.delete::<ConfigMap>("zk-config").await.unwrap());
    });
}

#[test]
#[ignore = "run by the outer test inside the lab's operator machine, with the restricted kubeconfig"]
fn inside_ops_a_restricted_token_is_told_what_it_lacks() {
    block_on(async {
        let name = std::env::var(LAB_ENV).unwrap();
        let layout = Layout::new(&name).unwrap();
        let plan = plan::load(&layout.plan_file()).unwrap();
        let cluster = k8s::connect(&plan.kubernetes).await.unwrap();
        assert!(cluster.can_i("get", "", "services", "").await.unwrap());
        assert!(cluster.can_i("watch", "", "services", "").await.unwrap());
        assert!(!cluster.can_i("create", "", "services", "").await.unwrap());
        assert!(!cluster.can_i("get", "", "pods", "log").await.unwrap());
        let missing: Vec<String> = cluster
            .missing_permissions(&REQUIRED_PERMISSIONS)
            .await
            .unwrap()
            .iter()
            .map(|p| p.to_string())
            .collect();
        // The token reads Services (get, list, watch): of those, the table
        // holds `get services` only; every other permission is missing.
        assert_eq!(missing.len(), REQUIRED_PERMISSIONS.len() - 1, "{missing:?}");
        assert!(missing.contains(&"patch statefulsets.apps".to_string()));
        assert!(missing.contains(&"get namespaces".to_string()));
        assert!(!missing.contains(&"get services".to_string()));

        // A write it may not do: refused at once (403 is not retried),
        // named.
        let started = Instant::now();
        let err = cluster
            .apply(&server_service("zk-1", "1"))
            .await
            .unwrap_err();
        assert!(err.is_forbidden(), "{err}");
        assert!(
            err.to_string()
                .starts_with("failed to apply Service zk-1 in namespace zookeeper: "),
            "{err}"
        );
        assert!(err.to_string().ends_with("(Forbidden, 403)"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2), "not retried");

        // A wait it may not watch ends at once, not at its timeout.
        let started = Instant::now();
        let err = cluster.await_pod_ready("zk-0", WAIT).await.unwrap_err();
        assert!(matches!(err, K8sError::Watch { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10), "{err}");
        assert_eq!(
            err.to_string(),
            "failed to watch for Pod zk-0 ready in namespace zookeeper: pods is forbidden: User \
             \"zkm-restricted\" cannot list resource \"pods\" in API group \"\" in the namespace \
             \"zookeeper\" (Forbidden, 403)"
        );
    });
}

/// The lab's plan with `state: { backend: kubernetes }` and a 3 s Lease,
/// written into `dir`.
fn kubernetes_backend_plan(dir: &std::path::Path) -> plan::ValidatedPlan {
    let name = std::env::var(LAB_ENV).unwrap();
    let layout = Layout::new(&name).unwrap();
    let text = std::fs::read_to_string(layout.plan_file()).unwrap();
    let state = text
        .find("\nstate:")
        .expect("the lab plan has a state section");
    let text = format!("{}\nstate:\n  backend: kubernetes\n", &text[..state]).replace(
        "  pollInterval: 200ms\n",
        "  pollInterval: 200ms\n  leaseDuration: 3s\n",
    );
    let file = dir.join("plan.yaml");
    std::fs::write(&file, text).unwrap();
    let plan = plan::load(&file).unwrap();
    assert_eq!(plan.policy.lease_duration, Duration::from_secs(3));
    plan
}

#[test]
#[ignore = "run by the outer test inside the lab's operator machine"]
fn inside_ops_the_journal_lives_in_a_config_map_under_a_lease() {
    use k8s_openapi::api::coordination::v1::Lease;
    use zkmigrate::journal::{JOURNAL_KEY, JournalError, JournalStore, LockOptions, StepStatus};
    use zkmigrate::steps::StepName;

    block_on(async {
        let cluster = inner_cluster().await;
        let dir = tempfile::tempdir().unwrap();
        let plan = kubernetes_backend_plan(dir.path());
        let store = JournalStore::from_plan(&plan);
        let name = plan.state_object_name();
        let config_maps: Api<ConfigMap> = Api::namespaced(cluster.client().clone(), "zookeeper");
        let leases: Api<Lease> = Api::namespaced(cluster.client().clone(), "zookeeper");
        let holder = |lease: &Lease| {
            lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.clone())
                .unwrap_or_default()
        };
        let open = |steal_lease: bool| {
            let options = LockOptions {
                steal_lease,
                ..LockOptions::default()
            };
            store.open_locked(&plan, Some(&cluster), options)
        };

        // Round trip: created under the Lease, labelled, read back whole by
        // a reader without the Lease.
        assert!(store.read(&plan, Some(&cluster)).await.unwrap().is_none());
        let mut a = open(false).await.expect("the first runner takes the Lease");
        let a_id = a.lease_identity().unwrap().to_string();
        assert!(
            a_id.contains(&format!("/pid-{}/", std::process::id())),
            "{a_id}"
        );
        let lease = leases.get(&name).await.unwrap();
        assert_eq!(holder(&lease), a_id);
        assert_eq!(lease.spec.as_ref().unwrap().lease_duration_seconds, Some(3));
        a.set_step_status(StepName::Preflight, StepStatus::Running)
            .await
            .unwrap();
        a.record_intent("preflight/check/cluster").await.unwrap();
        let cm = config_maps.get(&name).await.unwrap();
        let cm_labels = cm.metadata.labels.clone().unwrap();
        assert_eq!(cm_labels["app.kubernetes.io/managed-by"], "zkmigrate");
        assert_eq!(cm_labels["zkmigrate/plan"], plan.name);
        let stored = zkmigrate::journal::parse(
            std::path::Path::new("cm"),
            cm.data.as_ref().unwrap()[JOURNAL_KEY].as_bytes(),
        )
        .unwrap();
        assert_eq!(&stored, a.journal(), "durable before the call returned");
        let read = store.read(&plan, Some(&cluster)).await.unwrap().unwrap();
        assert_eq!(&read, a.journal());

        // A second runner is refused while the first holds the Lease, and
        // changes nothing. It stays refused across renewals (3 s Lease,
        // renewed every second).
        for _ in 0..2 {
            let err = open(false).await.unwrap_err();
            let JournalError::LeaseHeld { holder: h, .. } = &err else {
                panic!("refused for the Lease: {err}");
            };
            assert_eq!(h.identity, a_id);
            assert!(!h.expired, "{err}");
            let message = err.to_string();
            assert!(
                message.contains(&a_id) && message.contains("expires"),
                "{message}"
            );
            assert!(!message.contains("nothing was"), "{message}");
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        let renewed = leases.get(&name).await.unwrap();
        assert_ne!(
            renewed.spec.as_ref().unwrap().renew_time,
            lease.spec.as_ref().unwrap().renew_time,
            "renewed in the background"
        );
        assert_eq!(
            config_maps
                .get(&name)
                .await
                .unwrap()
                .metadata
                .resource_version,
            cm.metadata.resource_version
        );
        // Renewed: writes still go through after a full duration.
        a.record_done("preflight/check/cluster", None)
            .await
            .unwrap();

        // 409: someone else writes the ConfigMap behind the runner's back;
        // the runner's next write fails closed and memory stays as stored.
        let mut theirs = config_maps.get(&name).await.unwrap();
        theirs.metadata.annotations = Some(labels(&[("edited-by", "someone")]));
        config_maps
            .replace(&name, &PostParams::default(), &theirs)
            .await
            .unwrap();
        let before = a.journal().clone();
        let err = a
            .set_step_status(StepName::Preflight, StepStatus::Done)
            .await
            .unwrap_err();
        assert!(matches!(err, JournalError::Conflict { .. }), "{err}");
        assert!(err.to_string().contains("409"), "{err}");
        assert_eq!(a.journal(), &before);

        // Release clears the holder; the next runner takes the free Lease
        // and reads the journal back.
        a.release().await;
        assert_eq!(holder(&leases.get(&name).await.unwrap()), "");
        let mut b = open(false).await.expect("a released Lease is free");
        assert_eq!(
            b.journal()
                .action("preflight/check/cluster")
                .unwrap()
                .status,
            zkmigrate::journal::ActionStatus::Done
        );

        // The Lease taken behind the runner's back (as a stealer would):
        // the renewal finds it and the next write says the lease was lost.
        let mut stolen = leases.get(&name).await.unwrap();
        stolen.spec.as_mut().unwrap().holder_identity = Some("intruder/pid-1/0".into());
        leases
            .replace(&name, &PostParams::default(), &stolen)
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let err = loop {
            match b
                .set_step_status(StepName::Preflight, StepStatus::Running)
                .await
            {
                Err(e) => break e,
                Ok(()) => {
                    assert!(std::time::Instant::now() < deadline, "never lost");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        assert!(matches!(err, JournalError::LeaseLost { .. }), "{err}");
        assert!(err.to_string().contains("the lease was lost"), "{err}");
        assert!(err.to_string().contains("intruder/pid-1/0"), "{err}");
        b.release().await;
        assert_eq!(
            holder(&leases.get(&name).await.unwrap()),
            "intruder/pid-1/0",
            "release never clears another's hold"
        );

        // The intruder's Lease expired (renewed an hour ago): refused
        // without --steal-lease, taken over with it.
        let mut ghost = leases.get(&name).await.unwrap();
        let hour_ago = k8s_openapi::jiff::Timestamp::now()
            - k8s_openapi::jiff::SignedDuration::from_secs(3600);
        let spec = ghost.spec.as_mut().unwrap();
        spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            hour_ago,
        ));
        let transitions = spec.lease_transitions.unwrap_or(0);
        leases
            .replace(&name, &PostParams::default(), &ghost)
            .await
            .unwrap();
        let err = open(false).await.unwrap_err();
        assert!(
            matches!(&err, JournalError::LeaseHeld { holder, .. } if holder.expired),
            "{err}"
        );
        assert!(err.to_string().contains("--steal-lease"), "{err}");
        assert!(err.to_string().contains("intruder/pid-1/0"), "{err}");
        let c = open(true)
            .await
            .expect("--steal-lease takes an expired Lease");
        let taken = leases.get(&name).await.unwrap();
        assert_eq!(holder(&taken), c.lease_identity().unwrap());
        assert_eq!(
            taken.spec.as_ref().unwrap().lease_transitions,
            Some(transitions + 1)
        );
        c.release().await;

        // Two runners racing for the free Lease: one wins, the other is
        // refused naming the winner.
        let (x, y) = tokio::join!(open(false), open(false));
        let (winner, loser) = match (x, y) {
            (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
            (x, y) => panic!(
                "exactly one wins: {:?} / {:?}",
                x.map(|_| ()),
                y.map(|_| ())
            ),
        };
        let JournalError::LeaseHeld { holder: h, .. } = &loser else {
            panic!("the loser is refused for the Lease: {loser}");
        };
        assert_eq!(h.identity, winner.lease_identity().unwrap());
        winner.release().await;
        config_maps
            .delete(&name, &Default::default())
            .await
            .unwrap();
        leases.delete(&name, &Default::default()).await.unwrap();
    });
}
