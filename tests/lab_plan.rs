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
fn the_lab_plan_validates_and_status_sees_the_lab_ensemble_from_the_operator_machine() {
    let layout = Layout::new(&format!("zp{}", std::process::id() % 100_000)).unwrap();
    let _ = topology::down(&layout);
    let state = topology::up(&layout, 3, Target::PerServer).expect("zklab up");
    let lab = Lab(layout);

    let out = Command::new(env!("CARGO_BIN_EXE_zkmigrate"))
        .args(["plan", "-f", &state.plan])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

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
