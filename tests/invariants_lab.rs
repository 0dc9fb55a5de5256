//! DESIGN 2's "quorum first", broken on purpose: a follower partitioned
//! before `replace` makes the gate halt with exit 3, saying what it saw and
//! what to run, with nothing fenced and no Pod created; healed, `--resume`
//! completes. (The other invariants are tested beside their steps:
//! tests/engine_replace_lab.rs — a host that will not stop gets no Pod;
//! tests/engine_services_lab.rs — a plan that disagrees with the ensemble is
//! refused with nothing changed; tests/resume_lab.rs — check-then-act on
//! resume; tests/journal.rs — a changed plan is refused.)

mod common;

use common::{Lab, text};
use zklab::topology::Target;

#[test]
fn a_follower_partitioned_before_replace_halts_the_gate_with_exit_3_and_nothing_changes() {
    let lab = Lab::up(
        &format!("iq{}", std::process::id() % 100_000),
        Target::StatefulSet,
    );
    let plan = lab.plan();

    let out = lab.zkmigrate(&["step", "-f", &plan, "--until", "clients", "--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let out = lab.zkmigrate(&[
        "step",
        "-f",
        &plan,
        "--until",
        "peers",
        "--yes",
        "--resume",
        "--confirm",
        "clients",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Short waits for the test: policy is outside the plan hash, so an
    // operator may change it between runs, as here.
    let text_plan = std::fs::read_to_string(&plan).unwrap();
    let short = text_plan
        .replace("syncTimeout: 2m", "syncTimeout: 20s")
        .replace("progressDeadline: 1m", "progressDeadline: 4s");
    assert_ne!(short, text_plan, "the lab plan's policy lines changed");
    std::fs::write(&plan, short).unwrap();

    let status = lab.zkmigrate(&["status", "-f", &plan, "-o", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let leader = status["leader"].as_u64().expect("a leader");
    let follower = [2u64, 3].into_iter().find(|&id| id != leader).unwrap();
    lab.zklab(&["fault", "partition", &format!("host{follower}")]);

    let out = lab.zkmigrate(&["step", "-f", &plan, "--all", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "the gate halts: {}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("server {follower}")),
        "names what it saw: {stderr}"
    );
    assert!(
        stderr.contains("--resume"),
        "says how to continue: {stderr}"
    );

    // Nothing was fenced and no Pod was created.
    for k in 1..=3 {
        let out = lab.on_host(k, &["test", "-f", "/var/lib/zookeeper/myid"]);
        assert!(out.status.success(), "host{k} still holds its myid");
    }
    let pods = lab.kubectl_json(&["get", "pods", "-n", "zookeeper"]);
    assert_eq!(pods["items"].as_array().unwrap().len(), 0, "{pods}");

    // Healed, and with the lab's own timeouts again (the short ones were
    // for the halt; a Pod's start and sync takes longer than 4 s without a
    // visible step), the migration resumes and completes.
    lab.zklab(&["fault", "heal", &format!("host{follower}")]);
    std::fs::write(&plan, &text_plan).unwrap();
    let out = lab.zkmigrate(&["step", "-f", &plan, "--all", "--yes", "--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
