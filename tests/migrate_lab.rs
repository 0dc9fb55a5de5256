//! The whole migration in the lab, real everything (issue 5's first
//! acceptance): `zkmigrate step --all --yes --confirm clients` from the
//! operator machine, under the workload. Every server ends as a Pod with its
//! original myid, host services disabled, no hand-made slice left, nothing
//! lost, at most two leader elections; `status` says every step is done.

mod common;

use common::{Lab, text};
use zklab::topology::Target;

#[test]
fn a_three_server_lab_migrates_completely_under_load() {
    migrate_completely(
        &format!("mg{}", std::process::id() % 100_000),
        Target::StatefulSet,
    );
}

#[test]
fn a_three_server_lab_migrates_completely_into_per_server_statefulsets() {
    migrate_completely(
        &format!("mp{}", std::process::id() % 100_000),
        Target::PerServer,
    );
}

fn migrate_completely(name: &str, target: Target) {
    let lab = Lab::up(name, target);
    lab.zklab(&["load", "start"]);
    let plan = lab.plan();

    // The clients step stops for the operator (exit 4), who moves the
    // clients to the Service names, then confirms.
    lab.through_clients_moving_the_workload();
    let out = lab.zkmigrate(&[
        "step",
        "-f",
        &plan,
        "--all",
        "--yes",
        "--resume",
        "--confirm",
        "clients",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let status = lab.zkmigrate(&["status", "-f", &plan, "-o", "json"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    for step in status["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "done", "{status}");
    }
    for server in status["servers"].as_array().unwrap() {
        assert_eq!(server["location"], "pod", "{status}");
    }

    // Every server is a Pod, with its original myid.
    let pods = lab.kubectl_json(&["get", "pods", "-n", "zookeeper"]);
    let pods = pods["items"].as_array().unwrap();
    assert_eq!(pods.len(), 3, "{pods:?}");
    for server in status["servers"].as_array().unwrap() {
        let id = server["id"].as_u64().unwrap();
        let conf = zklab::netns::four_letter_word(
            &lab.layout.ns(zklab::layout::Machine::Ops),
            format!("{}:2181", pod_ip_of(pods, id, &lab))
                .parse()
                .unwrap(),
            "conf",
        )
        .expect("conf from the Pod");
        assert!(conf.contains(&format!("serverId={id}")), "{conf}");
    }
    // Host services disabled.
    for k in 1..=3 {
        let out = lab.on_host(k, &["/usr/local/sbin/zookeeper-service", "is-enabled"]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "disabled",
            "host{k}"
        );
    }
    // No hand-made slice left.
    let slices = lab.kubectl_json(&[
        "get",
        "endpointslices",
        "-n",
        "zookeeper",
        "-l",
        "endpointslice.kubernetes.io/managed-by=zkmigrate",
    ]);
    assert_eq!(slices["items"].as_array().unwrap().len(), 0, "{slices}");

    lab.zklab(&["load", "stop"]);
    let report: serde_json::Value = serde_json::from_str(&lab.zklab(&["load", "report"])).unwrap();
    assert_eq!(report["lost"], 0, "{report}");
    assert!(report["elections"].as_u64().unwrap() <= 2, "{report}");
}

/// The Pod IP of server `id`: its Service selects its Pod by name.
fn pod_ip_of(pods: &[serde_json::Value], id: u64, lab: &Lab) -> String {
    let svc = lab.kubectl_json(&["get", "service", &format!("zk-{id}"), "-n", "zookeeper"]);
    let pod_name = svc["spec"]["selector"]["statefulset.kubernetes.io/pod-name"]
        .as_str()
        .unwrap_or_else(|| panic!("Service zk-{id} selects its Pod: {svc}"));
    pods.iter()
        .find(|p| p["metadata"]["name"] == pod_name)
        .and_then(|p| p["status"]["podIP"].as_str())
        .unwrap_or_else(|| panic!("Pod {pod_name} has an IP"))
        .to_string()
}
