//! The kubelet against real namespaces, bubblewrap and ZooKeeper (needs
//! root). Each test builds a small lab of its own (`harness::Lab`) and
//! tears it down on drop, also when the test fails: `topology::down` finds
//! the lab's namespaces by name and kills every process in them, Pods
//! included.

#[path = "kubelet/harness.rs"]
mod harness;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use harness::{Lab, alive, cstatus, ready};
use serde_json::json;
use zklab::k8s::resources;
use zklab::k8s::store::{DeleteOptions, EventType};
use zklab::netns;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_zookeeper_pod_runs_standalone_is_probed_and_is_deleted_gracefully() {
    let lab = Lab::start().await;
    lab.create(
        resources::pvcs(),
        json!({"metadata": {"name": "data-zk-0"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}}),
    );
    lab.create(
        resources::pods(),
        json!({"metadata": {"name": "zk-0"}, "spec": {
            "hostname": "zk-0", "subdomain": "zk-hs",
            "containers": [{"name": "zookeeper", "image": "zookeeper:3.8",
                "env": [{"name": "ZOO_MY_ID", "value": "1"},
                        {"name": "ZOO_4LW_COMMANDS_WHITELIST", "value": "srvr,ruok"}],
                "ports": [{"name": "client", "containerPort": 2181}],
                "readinessProbe": {"tcpSocket": {"port": "client"}, "periodSeconds": 1},
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-zk-0"}}]}}),
    );
    let pod = lab
        .wait_pod("zk-0", 90, |p| {
            ready(p) && p["status"]["phase"] == "Running"
        })
        .await;
    assert_eq!(pod["spec"]["nodeName"], "lab", "bound by the kubelet");
    let ip = pod["status"]["podIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.244."), "{ip}");
    assert_eq!(pod["status"]["hostIP"], "10.77.0.2");
    let cs = cstatus(&pod);
    assert_eq!(
        (
            cs["ready"].as_bool(),
            cs["started"].as_bool(),
            cs["restartCount"].as_u64()
        ),
        (Some(true), Some(true), Some(0))
    );
    assert!(cs["state"]["running"]["startedAt"].is_string());
    assert_eq!(cs["image"], "docker.io/library/zookeeper:3.8");

    // A tcpSocket probe passes once the port is open, which is before the
    // server serves (`srvr` then says "not currently serving requests").
    let srvr = lab
        .srvr_serving(&ip, 2181)
        .expect("srvr answers from the client machine");
    assert!(srvr.contains("Mode: standalone"), "{srvr}");

    let claim = lab
        .store
        .get(resources::pvcs(), "default", "data-zk-0")
        .unwrap();
    let dir: PathBuf =
        zklab::k8s::controllers::bound_claim_dir(&lab.cfg.volumes_dir, &claim).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("myid")).unwrap(), "1\n");
    assert!(
        dir.join("version-2").is_dir(),
        "the server's data is in the claim"
    );
    let log = lab.log(&pod, "zookeeper", false);
    assert!(log.contains("binding to port"), "{log}");

    // Graceful deletion: SIGTERM reaches the JVM (PID 1 of its sandbox),
    // then the network goes, then the object.
    let ns = lab.pod_namespaces();
    assert_eq!(ns.len(), 1, "{ns:?}");
    let hosts = std::fs::read_to_string(format!("/etc/netns/{}/hosts", ns[0])).unwrap();
    assert!(
        hosts.contains(&format!("{ip}\tzk-0.zk-hs.default.svc.cluster.local\tzk-0")),
        "{hosts}"
    );
    let pids = netns::pids(&ns[0]).unwrap();
    assert!(!pids.is_empty());
    let started = Instant::now();
    let (_, mut rx) = lab
        .store
        .watch(resources::pods(), Some("default"), None)
        .unwrap();
    lab.store
        .delete(
            resources::pods(),
            "default",
            "zk-0",
            &DeleteOptions::default(),
        )
        .unwrap();
    lab.wait_pod("zk-0", 40, |p| p.is_null()).await;
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the JVM stops on SIGTERM"
    );
    assert!(
        pids.iter().all(|p| !alive(p)),
        "every process of the Pod is gone"
    );
    assert!(lab.pod_namespaces().is_empty());
    assert!(!std::path::Path::new(&format!("/etc/netns/{}", ns[0])).exists());
    let mut deleted = false;
    while let Ok(e) = rx.try_recv() {
        deleted |= e.kind == EventType::Deleted;
    }
    assert!(deleted, "the kubelet removed the object");
    assert!(dir.join("myid").exists(), "the claim outlives the Pod");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mounted_zoo_cfg_wins_and_command_and_args_override_the_image() {
    let lab = Lab::start().await;
    let cfg = "dataDir=/data\nclientPort=2182\ntickTime=500\ninitLimit=5\nsyncLimit=2\n\
               4lw.commands.whitelist=srvr\nadmin.enableServer=false\nstandaloneEnabled=true\n";
    lab.create(
        resources::configmaps(),
        json!({"metadata": {"name": "zk-conf"}, "data": {"zoo.cfg": cfg, "note": "one"}}),
    );
    lab.create(
        resources::pods(),
        json!({"metadata": {"name": "mounted"}, "spec": {
            "containers": [{"name": "zk", "image": "docker.io/library/zookeeper:3.8.4",
                // Runs inside the container: its own mount and PID namespaces.
                "readinessProbe": {"exec": {"command": ["zkServer.sh", "status"]},
                    "periodSeconds": 1, "timeoutSeconds": 5},
                "volumeMounts": [{"name": "conf", "mountPath": "/conf"},
                                 {"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "conf", "configMap": {"name": "zk-conf"}},
                        {"name": "data", "emptyDir": {}}]}}),
    );
    let args_only = json!({"metadata": {"name": "print-cmd"}, "spec": {"restartPolicy": "Never",
        "containers": [{"name": "zk", "image": "zookeeper", "args": ["zkServer.sh", "print-cmd"]}]}});
    lab.create(resources::pods(), args_only);
    lab.create(
        resources::pods(),
        json!({"metadata": {"name": "shell"}, "spec": {"restartPolicy": "Never",
            "containers": [{"name": "sh", "image": "zookeeper", "workingDir": "/tmp",
                "env": [{"name": "GREETING", "value": "world"},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                "command": ["bash", "-c"],
                "args": ["echo hello $(GREETING) from $HOSTNAME at $POD_IP in $(pwd); cat /etc/resolv.conf; \
                          echo pid $$$$; ls /conf | wc -l; exit 3"]}]}}),
    );

    let pod = lab.wait_pod("mounted", 90, ready).await;
    let ip = pod["status"]["podIP"].as_str().unwrap().to_string();
    let srvr = lab
        .srvr_serving(&ip, 2182)
        .expect("the mounted zoo.cfg's clientPort");
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    assert!(lab.srvr(&ip, 2181).is_none(), "no zoo.cfg was generated");
    let log = lab.log(&pod, "zk", false);
    assert!(log.contains("Using config: /conf/zoo.cfg"), "{log}");

    // ConfigMap volumes follow their ConfigMap.
    let mut cm = lab
        .store
        .get(resources::configmaps(), "default", "zk-conf")
        .unwrap();
    cm["data"]["note"] = json!("two");
    lab.store
        .update(resources::configmaps(), "default", "zk-conf", None, cm)
        .unwrap();
    let note = zklab::k8s::kubelet::logs::pod_dir(
        &lab.cfg.pods_dir,
        "default",
        "mounted",
        pod["metadata"]["uid"].as_str().unwrap(),
    )
    .join("volumes/configmap/conf/note");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&note).unwrap_or_default() != "two" {
        assert!(Instant::now() < deadline, "the projection was not updated");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let pod = lab
        .wait_pod("print-cmd", 60, |p| p["status"]["phase"] == "Succeeded")
        .await;
    let log = lab.log(&pod, "zk", false);
    assert!(
        log.contains("QuorumPeerMain") && log.contains("/conf/zoo.cfg"),
        "{log}"
    );

    let pod = lab
        .wait_pod("shell", 60, |p| p["status"]["phase"] == "Failed")
        .await;
    let term = &cstatus(&pod)["state"]["terminated"];
    assert_eq!(
        (term["exitCode"].as_i64(), term["reason"].as_str()),
        (Some(3), Some("Error"))
    );
    let ip = pod["status"]["podIP"].as_str().unwrap();
    let log = lab.log(&pod, "sh", false);
    assert!(
        log.contains(&format!("hello world from shell at {ip} in /tmp")),
        "{log}"
    );
    assert!(
        log.contains("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{log}"
    );
    assert!(log.contains("nameserver 10.77.0.2"), "{log}");
    assert!(
        log.contains("pid 1\n"),
        "the command is PID 1 of its sandbox: {log}"
    );
    assert!(
        log.contains("\n0\n"),
        "the image's /conf is empty and fresh: {log}"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_image_fails_to_pull_and_never_runs() {
    let lab = Lab::start().await;
    let (_, mut rx) = lab
        .store
        .watch(resources::pods(), Some("default"), None)
        .unwrap();
    lab.create(
        resources::pods(),
        json!({"metadata": {"name": "bad"}, "spec": {"containers": [{"name": "c",
            "image": "busybox:1.36", "command": ["sleep", "1000"]}]}}),
    );
    let pod = lab
        .wait_pod("bad", 30, |p| {
            cstatus(p)["state"]["waiting"]["reason"] == "ImagePullBackOff"
        })
        .await;
    assert_eq!(
        cstatus(&pod)["state"]["waiting"]["message"],
        "Back-off pulling image \"busybox:1.36\""
    );
    assert_eq!(pod["status"]["phase"], "Pending");
    let mut reasons = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let Some(r) = cstatus(&e.object)["state"]["waiting"]["reason"].as_str() {
            reasons.push(r.to_string());
        }
    }
    let pulled_first = reasons.iter().position(|r| r == "ErrImagePull");
    let backoff = reasons.iter().position(|r| r == "ImagePullBackOff");
    assert!(
        pulled_first.is_some() && pulled_first < backoff,
        "{reasons:?}"
    );
    // The next pull fails again, after the back-off.
    lab.wait_pod("bad", 30, |p| {
        cstatus(p)["state"]["waiting"]["reason"] == "ErrImagePull"
    })
    .await;
    let ns = lab.pod_namespaces();
    assert_eq!(ns.len(), 1);
    assert!(netns::pids(&ns[0]).unwrap().is_empty(), "nothing ever ran");
    assert!(
        lab.cfg
            .log_locator()
            .locate(&pod, Some("c"), false)
            .is_err(),
        "no log to show"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashing_container_backs_off_and_an_exec_probe_gates_readiness() {
    let lab = Lab::start().await;
    lab.create(
        resources::pods(),
        json!({"metadata": {"name": "crash"}, "spec": {"containers": [{"name": "c",
            "image": "zookeeper", "command": ["sh", "-c", "echo run; exit 1"]}]}}),
    );
    lab.create(
        resources::pods(),
        json!({"metadata": {"name": "slow"}, "spec": {"terminationGracePeriodSeconds": 2,
            "containers": [{"name": "c", "image": "zookeeper",
                "command": ["bash", "-c", "sleep 2; touch /tmp/ready; while :; do sleep 1; done"],
                "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1}}]}}),
    );
    let pod = lab
        .wait_pod("crash", 60, |p| {
            cstatus(p)["restartCount"].as_u64() >= Some(2)
                && cstatus(p)["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        })
        .await;
    let cs = cstatus(&pod);
    assert!(
        cs["state"]["waiting"]["message"]
            .as_str()
            .unwrap()
            .contains("s restarting failed container=c pod=crash_default("),
        "{cs}"
    );
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(cs["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(pod["status"]["phase"], "Running", "Always: still running");
    assert_eq!(lab.log(&pod, "c", false), "run\n");
    assert_eq!(lab.log(&pod, "c", true), "run\n", "the previous run's log");

    // Not ready before the file exists (the probe runs in the container's
    // own /tmp), ready after.
    let pod = lab
        .wait_pod("slow", 30, |p| cstatus(p)["state"]["running"].is_object())
        .await;
    assert_eq!(cstatus(&pod)["ready"], false);
    lab.wait_pod("slow", 30, ready).await;

    // A shell ignores SIGTERM as PID 1: killed after the grace period.
    let started = Instant::now();
    lab.store
        .delete(
            resources::pods(),
            "default",
            "slow",
            &DeleteOptions::default(),
        )
        .unwrap();
    lab.wait_pod("slow", 30, |p| p.is_null()).await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_pods_with_zoo_servers_form_a_quorum() {
    let lab = Lab::start().await;
    for id in 1..=3 {
        lab.create(
            resources::pods(),
            json!({"metadata": {"name": format!("zk-{id}")}, "spec": {"containers": [{
                "name": "zookeeper", "image": "zookeeper:3.8",
                "env": [{"name": "ZOO_MY_ID", "value": id.to_string()},
                        {"name": "ZOO_TICK_TIME", "value": "500"},
                        {"name": "ZOO_4LW_COMMANDS_WHITELIST", "value": "srvr"},
                        // Waits (CreateContainerConfigError) until the test
                        // knows the Pod IPs and writes the ConfigMap.
                        {"name": "ZOO_SERVERS", "valueFrom": {"configMapKeyRef":
                            {"name": "ensemble", "key": "servers"}}}]}]}}),
        );
    }
    let mut ips = Vec::new();
    for id in 1..=3 {
        let pod = lab
            .wait_pod(&format!("zk-{id}"), 30, |p| {
                p["status"]["podIP"].is_string()
                    && cstatus(p)["state"]["waiting"]["reason"] == "CreateContainerConfigError"
            })
            .await;
        ips.push(pod["status"]["podIP"].as_str().unwrap().to_string());
    }
    let servers: Vec<String> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| format!("server.{}={ip}:2888:3888;2181", i + 1))
        .collect();
    lab.create(
        resources::configmaps(),
        json!({"metadata": {"name": "ensemble"}, "data": {"servers": servers.join(" ")}}),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let modes: Vec<String> = ips
            .iter()
            .map(|ip| {
                lab.srvr(ip, 2181)
                    .and_then(|s| {
                        s.lines()
                            .find_map(|l| l.strip_prefix("Mode: ").map(String::from))
                    })
                    .unwrap_or_default()
            })
            .collect();
        let leaders = modes.iter().filter(|m| *m == "leader").count();
        let followers = modes.iter().filter(|m| *m == "follower").count();
        if leaders == 1 && followers == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no quorum: {modes:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_kubelet_kills_what_a_crashed_one_left_and_runs_the_pods_again() {
    let mut lab = Lab::start().await;
    lab.create(
        resources::pods(),
        json!({"metadata": {"name": "zk"}, "spec": {"containers": [{"name": "zookeeper",
            "image": "zookeeper", "readinessProbe": {"tcpSocket": {"port": 2181}, "periodSeconds": 1}}]}}),
    );
    let before = lab.wait_pod("zk", 90, ready).await;
    let old_ns = lab.pod_namespaces();
    let old_pids = netns::pids(&old_ns[0]).unwrap();
    assert!(!old_pids.is_empty());

    let (_, mut rx) = lab
        .store
        .watch(resources::pods(), Some("default"), None)
        .unwrap();
    lab.crash_and_restart_kubelet().await;
    // The new kubelet reports the Pod as it finds it: starting again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = tokio::time::timeout(left, rx.recv())
            .await
            .expect("a status of the new kubelet")
            .unwrap();
        if e.kind == EventType::Modified && !ready(&e.object) {
            break;
        }
    }
    let after = lab
        .wait_pod("zk", 90, |p| ready(p) && !old_pids.iter().any(|p| alive(p)))
        .await;
    assert_eq!(
        after["metadata"]["uid"], before["metadata"]["uid"],
        "the same Pod"
    );
    let ip = after["status"]["podIP"].as_str().unwrap();
    let srvr = lab.srvr_serving(ip, 2181).expect("the Pod serves again");
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    assert_eq!(
        lab.pod_namespaces().len(),
        1,
        "no namespace of the old kubelet is left"
    );
    lab.stop().await;
}
