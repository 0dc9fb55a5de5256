//! The lab's Kubernetes for real (issue 4's acceptance): kubectl from the
//! operator machine against the lab's API server; a selector-less Service
//! with a hand-made EndpointSlice reaching a host's ZooKeeper through its
//! ClusterIP, its name resolving everywhere; a StatefulSet of the zookeeper
//! image forming a real ensemble in Pods that keeps its data across a Pod's
//! deletion. Needs root, as every lab does.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use zklab::layout::{Layout, Machine};
use zklab::netns;
use zklab::topology::{self, LabState, Target};

struct TestLab {
    layout: Layout,
    state: LabState,
}

impl TestLab {
    fn up() -> TestLab {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "c{}x{}",
            std::process::id() % 100_000,
            N.fetch_add(1, Ordering::SeqCst)
        );
        let layout = Layout::new(&name).unwrap();
        let _ = topology::down(&layout);
        let state = topology::up(&layout, 3, Target::StatefulSet).expect("zklab up");
        TestLab { layout, state }
    }

    /// `zklab run --on MACHINE -- ARGS`: (success, stdout, stderr).
    fn run_on(&self, on: &str, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_zklab"))
            .args(["run", "--name", &self.layout.name, "--on", on, "--"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// kubectl from the operator machine; panics with its stderr on failure.
    fn kubectl(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.kubectl_result(args);
        assert!(ok, "kubectl {args:?}: {err}");
        out
    }

    fn kubectl_result(&self, args: &[&str]) -> (bool, String, String) {
        let mut all = vec!["kubectl", "--kubeconfig", &self.state.kubeconfig];
        all.extend_from_slice(args);
        self.run_on("ops", &all)
    }

    fn apply(&self, yaml: &str) {
        let path = self.layout.root.join(format!("apply-{}.yaml", yaml.len()));
        std::fs::write(&path, yaml).unwrap();
        self.kubectl(&["apply", "-f", path.to_str().unwrap()]);
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&all)).unwrap()
    }

    /// A four-letter word from a lab machine to `ip:port`.
    fn word(&self, from: Machine, ip: &str, port: u16, word: &'static str) -> Option<String> {
        netns::four_letter_word(
            &self.layout.ns(from),
            format!("{ip}:{port}").parse().unwrap(),
            word,
        )
    }

    /// Polls `f` until it returns `Some`, at most `secs` seconds.
    fn wait<T>(&self, what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let _ = topology::down(&self.layout);
    }
}

const HOST_SERVICE: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: zookeeper}
---
apiVersion: v1
kind: Service
metadata: {name: zk-1, namespace: zookeeper}
spec:
  publishNotReadyAddresses: true
  ports:
  - {name: client, port: 2181}
  - {name: quorum, port: 2888}
  - {name: election, port: 3888}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: zk-1-host
  namespace: zookeeper
  labels:
    kubernetes.io/service-name: zk-1
    endpointslice.kubernetes.io/managed-by: zkmigrate
addressType: IPv4
endpoints:
- addresses: [10.77.0.11]
  conditions: {ready: true}
ports:
- {name: client, port: 2181, protocol: TCP}
- {name: quorum, port: 2888, protocol: TCP}
- {name: election, port: 3888, protocol: TCP}
"#;

#[test]
fn a_selectorless_service_reaches_host1_through_its_clusterip_and_resolves_everywhere() {
    let lab = TestLab::up();
    lab.apply(HOST_SERVICE);
    let svc = lab.json(&["get", "service", "zk-1", "-n", "zookeeper"]);
    let ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.96."), "{svc}");

    // From another host's namespace, through the ClusterIP, to host 1.
    let conf = lab.wait("conf through the ClusterIP", 10, || {
        lab.word(Machine::Host(2), &ip, 2181, "conf")
    });
    assert!(conf.contains("serverId=1"), "{conf}");

    // The name resolves to the ClusterIP from every lab machine.
    let fqdn = "zk-1.zookeeper.svc.cluster.local";
    for on in ["ops", "client", "cp", "host1", "host2", "host3"] {
        let (ok, out, err) = lab.run_on(on, &["getent", "hosts", fqdn]);
        assert!(ok, "{on}: {err}");
        assert_eq!(out.split_whitespace().next(), Some(ip.as_str()), "{on}");
    }
    // kubectl sees both objects, and describe works.
    let described = lab.kubectl(&["describe", "service", "zk-1", "-n", "zookeeper"]);
    assert!(described.contains(&ip), "{described}");
    let slices = lab.json(&[
        "get",
        "endpointslices",
        "-n",
        "zookeeper",
        "-l",
        "kubernetes.io/service-name=zk-1",
    ]);
    assert_eq!(slices["items"].as_array().unwrap().len(), 1);
}

const ENSEMBLE: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: zk}
---
apiVersion: v1
kind: Service
metadata: {name: zk-hs, namespace: zk}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {app: zk}
  ports:
  - {name: client, port: 2181}
  - {name: quorum, port: 2888}
  - {name: election, port: 3888}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: zk, namespace: zk}
spec:
  serviceName: zk-hs
  replicas: 3
  podManagementPolicy: Parallel
  selector:
    matchLabels: {app: zk}
  template:
    metadata:
      labels: {app: zk}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: zookeeper
        image: zookeeper:3.8
        command: ["bash", "-c", "export ZOO_MY_ID=$(( ${HOSTNAME##*-} + 1 )); exec /docker-entrypoint.sh zkServer.sh start-foreground"]
        env:
        - {name: ZOO_TICK_TIME, value: "500"}
        - {name: ZOO_4LW_COMMANDS_WHITELIST, value: "srvr,mntr,conf,ruok"}
        - {name: ZK_SERVER_HEAP, value: "128"}
        - name: ZOO_SERVERS
          value: "server.1=zk-0.zk-hs.zk.svc.cluster.local:2888:3888;2181 server.2=zk-1.zk-hs.zk.svc.cluster.local:2888:3888;2181 server.3=zk-2.zk-hs.zk.svc.cluster.local:2888:3888;2181"
        ports:
        - {name: client, containerPort: 2181}
        readinessProbe:
          exec:
            command: ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/2181; printf ruok >&3; grep -q imok <&3"]
          periodSeconds: 1
        volumeMounts:
        - {name: data, mountPath: /data}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"#;

/// The Pods' (name -> IP) once all three are Ready.
fn ready_pods(lab: &TestLab) -> Option<Vec<(String, String, String)>> {
    let pods = lab.json(&["get", "pods", "-n", "zk", "-l", "app=zk"]);
    let items = pods["items"].as_array()?;
    let ready: Vec<(String, String, String)> = items
        .iter()
        .filter(|p| {
            p["metadata"]["deletionTimestamp"].is_null()
                && p["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                p["status"]["podIP"].as_str().unwrap_or("").to_string(),
                p["metadata"]["uid"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    (ready.len() == 3).then_some(ready)
}

fn modes(lab: &TestLab, pods: &[(String, String, String)]) -> Option<Vec<String>> {
    pods.iter()
        .map(|(_, ip, _)| {
            let srvr = lab.word(Machine::Ops, ip, 2181, "srvr")?;
            srvr.lines()
                .find_map(|l| l.strip_prefix("Mode: "))
                .map(|m| m.trim().to_string())
        })
        .collect()
}

#[test]
fn a_statefulset_of_the_zookeeper_image_forms_an_ensemble_and_a_deleted_pod_returns_with_its_data()
{
    let lab = TestLab::up();
    lab.apply(ENSEMBLE);
    let pods = lab.wait("three Ready Pods", 120, || ready_pods(&lab));
    let modes_now = lab.wait("one leader and two followers", 60, || {
        let m = modes(&lab, &pods)?;
        let leaders = m.iter().filter(|m| *m == "leader").count();
        let followers = m.iter().filter(|m| *m == "follower").count();
        (leaders == 1 && followers == 2).then_some(m)
    });
    assert_eq!(modes_now.len(), 3);

    // Labels and the claim as the StatefulSet contract says.
    let zk1 = lab.json(&["get", "pod", "zk-1", "-n", "zk"]);
    assert_eq!(
        zk1["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
        "zk-1"
    );
    assert_eq!(
        zk1["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
        "1"
    );
    let claim = lab.json(&["get", "pvc", "data-zk-1", "-n", "zk"]);
    assert_eq!(claim["status"]["phase"], "Bound");
    let claim_uid = claim["metadata"]["uid"].as_str().unwrap().to_string();
    let dir = lab
        .layout
        .root
        .join("volumes/zk/data-zk-1")
        .join(claim["spec"]["volumeName"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(dir.join("myid")).unwrap().trim(),
        "2"
    );
    let epoch_file = dir.join("version-2/currentEpoch");
    let epoch_before = std::fs::read_to_string(&epoch_file).expect("server 2 wrote its epoch");

    // kubectl logs of a Pod's container.
    let logs = lab.kubectl(&["logs", "zk-0", "-n", "zk", "--tail", "200"]);
    assert!(!logs.is_empty(), "zk-0 has logs");

    // Delete zk-1: it comes back as a new Pod with the same claim and data.
    let old_uid = pods.iter().find(|p| p.0 == "zk-1").unwrap().2.clone();
    lab.kubectl(&["delete", "pod", "zk-1", "-n", "zk", "--wait=false"]);
    let pods = lab.wait("zk-1 back and all Ready", 120, || {
        ready_pods(&lab).filter(|p| p.iter().any(|(n, _, uid)| n == "zk-1" && *uid != old_uid))
    });
    let claim = lab.json(&["get", "pvc", "data-zk-1", "-n", "zk"]);
    assert_eq!(
        claim["metadata"]["uid"],
        claim_uid.as_str(),
        "the same claim"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("myid")).unwrap().trim(),
        "2"
    );
    let epoch_after = std::fs::read_to_string(&epoch_file).unwrap();
    assert!(
        epoch_after.trim().parse::<u64>().unwrap() >= epoch_before.trim().parse::<u64>().unwrap(),
        "the data survived: epoch {epoch_before} -> {epoch_after}"
    );
    let m = lab.wait("the ensemble whole again", 60, || {
        let m = modes(&lab, &pods)?;
        (m.iter().filter(|m| *m == "leader").count() == 1
            && m.iter().filter(|m| *m == "follower").count() == 2)
            .then_some(m)
    });
    assert_eq!(m.len(), 3);

    // create and delete through kubectl.
    let cm = lab.layout.root.join("cm.yaml");
    std::fs::write(
        &cm,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe, namespace: zk}\ndata: {k: v}\n",
    )
    .unwrap();
    lab.kubectl(&["create", "-f", cm.to_str().unwrap()]);
    assert_eq!(
        lab.json(&["get", "configmap", "probe", "-n", "zk"])["data"]["k"],
        "v"
    );
    lab.kubectl(&["delete", "configmap", "probe", "-n", "zk"]);
    let (ok, _, err) = lab.kubectl_result(&["get", "configmap", "probe", "-n", "zk"]);
    assert!(!ok && err.contains("NotFound"), "{err}");
}
