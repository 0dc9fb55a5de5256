//! The plan `zklab up` writes is a valid zkmigrate plan, and zkmigrate run
//! from the lab's operator machine observes the lab's real ensemble with it.
//! Needs root (network namespaces), as every lab test does.

use std::process::Command;

use zklab::layout::Layout;
use zklab::topology::{self, Target};

struct Lab(Layout);

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = topology::down(&self.0);
    }
}

#[test]
fn plan_and_status_from_the_operator_machine_see_the_lab_ensemble_and_its_hosts() {
    let layout = Layout::new(&format!("zp{}", std::process::id() % 100_000)).unwrap();
    let _ = topology::down(&layout);
    let state = topology::up(&layout, 3, Target::PerServer).expect("zklab up");
    let lab = Lab(layout);

    // `plan` observes the ensemble and reads every host over SSH: run it
    // where zkmigrate runs in the lab, on the operator machine.
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.0.ns(zklab::layout::Machine::Ops)])
        .arg(env!("CARGO_BIN_EXE_zkmigrate"))
        .args(["plan", "-f", &state.plan, "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let computed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        computed["warnings"].as_array().unwrap().len(),
        0,
        "{computed}"
    );
    let leader = computed["leader"].as_u64().expect("a leader was observed");
    let order: Vec<u64> = computed["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(
        order.last(),
        Some(&leader),
        "the leader goes last: {order:?}"
    );
    let peers = computed["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "peers")
        .unwrap();
    let rewrite = peers["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "peers/rewrite/1")
        .unwrap();
    let diff = rewrite["diff"]
        .as_str()
        .expect("the rewrite's diff, from host 1's real zoo.cfg");
    assert!(diff.contains("-server.1=10.77.0.11:2888:3888"), "{diff}");
    assert!(
        diff.contains("+server.1=zk-1.zookeeper.svc.cluster.local:2888:3888"),
        "{diff}"
    );
    assert!(diff.contains("+quorumListenOnAllIPs=true"), "{diff}");

    let out = Command::new("ip")
        .args(["netns", "exec", &lab.0.ns(zklab::layout::Machine::Ops)])
        .arg(env!("CARGO_BIN_EXE_zkmigrate"))
        .args(["status", "-f", &state.plan, "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let modes: Vec<&str> = status["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["mode"].as_str().unwrap_or("down"))
        .collect();
    assert_eq!(
        modes.iter().filter(|m| **m == "leader").count(),
        1,
        "{status}"
    );
    assert_eq!(
        modes.iter().filter(|m| **m == "follower").count(),
        2,
        "{status}"
    );
    assert_eq!(status["syncedFollowers"], 2, "{status}");
    assert_eq!(status["servers"][0]["address"], "10.77.0.11");
}
