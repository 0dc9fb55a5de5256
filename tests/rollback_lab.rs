//! `rollback` from after `replace` of one server returns that server to its
//! host, healthy (issue 5's third acceptance): the Pod gone, the Service
//! back on the host's EndpointSlice, the host's ZooKeeper enabled, running
//! with its myid, and every voter synced.

mod common;

use common::{Lab, text};
use zklab::topology::Target;

#[test]
fn rollback_after_one_server_was_replaced_returns_it_to_its_host_healthy() {
    let lab = Lab::up(
        &format!("rb{}", std::process::id() % 100_000),
        Target::StatefulSet,
    );
    let plan = lab.plan();
    lab.zklab(&["load", "start"]);
    lab.through_clients_moving_the_workload();

    // Run on into replace and stop it once the first server is replaced.
    let replaced = lab.kill_step_once("a server was replaced", |lab| {
        lab.actions_with("done")
            .into_iter()
            .find(|id| id.starts_with("replace/synced/"))
    });
    let server: u8 = replaced.rsplit('/').next().unwrap().parse().unwrap();

    let out = lab.zkmigrate(&["rollback", "-f", &plan, "--to", "peers", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The server runs on its host again: enabled, its myid back.
    let out = lab.on_host(server, &["/usr/local/sbin/zookeeper-service", "is-enabled"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "enabled");
    let out = lab.on_host(server, &["cat", "/var/lib/zookeeper/myid"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        server.to_string()
    );
    // No Pod; the Service has no selector and only the host slice.
    let pods = lab.kubectl_json(&["get", "pods", "-n", "zookeeper"]);
    assert_eq!(pods["items"].as_array().map(Vec::len), Some(0), "{pods}");
    let svc = lab.kubectl_json(&["get", "service", &format!("zk-{server}"), "-n", "zookeeper"]);
    assert!(svc["spec"]["selector"].is_null(), "{svc}");
    let selector = format!("kubernetes.io/service-name=zk-{server}");
    let slices = lab.kubectl_json(&["get", "endpointslices", "-n", "zookeeper", "-l", &selector]);
    let items = slices["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the host slice: {slices}");
    assert_eq!(
        items[0]["endpoints"][0]["addresses"][0],
        format!("10.77.0.{}", 10 + server)
    );

    // The Service's Events tell the way back.
    lab.assert_history(server, &["PodStopped", "SwitchedToHost", "HostRestored"]);

    // Healthy: every voter on its host, synced.
    let status = lab.zkmigrate(&["status", "-f", &plan, "-o", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["allVotersSynced"], true, "{status}");
    for s in status["servers"].as_array().unwrap() {
        assert_eq!(s["location"], "host", "{status}");
    }
    // And the clients on the Service names lost nothing through it all.
    lab.zklab(&["load", "stop"]);
    let report: serde_json::Value = serde_json::from_str(&lab.zklab(&["load", "report"])).unwrap();
    assert_eq!(report["lost"], 0, "{report}");
}
