//! DESIGN 2's "quorum first", broken on purpose: a follower partitioned
//! before `replace` makes the gate halt with exit 3, saying what it saw and
//! what to run, with nothing fenced and no Pod created; healed, `--resume`
//! completes. (The other invariants are tested beside their steps:
//! tests/engine_replace_lab.rs — a host that will not stop gets no Pod;
//! tests/engine_services_lab.rs — a plan that disagrees with the ensemble is
//! refused with nothing changed; tests/resume_lab.rs — check-then-act on
//! resume; tests/journal.rs — a changed plan is refused.)

use std::process::{Command, Output};

use zklab::layout::{Layout, Machine};
use zklab::topology::{self, LabState, Target};

struct Lab {
    layout: Layout,
    state: LabState,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = topology::down(&self.layout);
    }
}

fn zklab_bin() -> std::path::PathBuf {
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join("../zklab");
    assert!(bin.exists(), "build zklab first: cargo build -p zklab");
    bin
}

impl Lab {
    fn zkmigrate(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.layout.ns(Machine::Ops)])
            .arg("env")
            .arg(format!("KUBECONFIG={}", self.state.kubeconfig))
            .arg("ZKMIGRATE_LOG=warn")
            .arg(env!("CARGO_BIN_EXE_zkmigrate"))
            .args(args)
            .output()
            .unwrap()
    }

    fn zklab(&self, args: &[&str]) -> Output {
        Command::new(zklab_bin())
            .args(args)
            .args(["--name", &self.layout.name])
            .output()
            .unwrap()
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_follower_partitioned_before_replace_halts_the_gate_with_exit_3_and_nothing_changes() {
    let layout = Layout::new(&format!("iq{}", std::process::id() % 100_000)).unwrap();
    let _ = topology::down(&layout);
    let state = topology::up(&layout, 3, Target::StatefulSet).expect("zklab up");
    let lab = Lab { layout, state };
    let plan = lab.state.plan.clone();

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
    let out = lab.zklab(&["fault", "partition", &format!("host{follower}")]);
    assert!(out.status.success(), "{}", text(&out));

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
        let out = Command::new(zklab_bin())
            .args([
                "run",
                "--name",
                &lab.layout.name,
                "--on",
                &format!("host{k}"),
                "--",
            ])
            .args(["test", "-f", "/var/lib/zookeeper/myid"])
            .output()
            .unwrap();
        assert!(out.status.success(), "host{k} still holds its myid");
    }
    let pods = Command::new("ip")
        .args(["netns", "exec", &lab.layout.ns(Machine::Ops)])
        .args([
            "kubectl",
            "--kubeconfig",
            &lab.state.kubeconfig,
            "get",
            "pods",
            "-n",
            "zookeeper",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let pods: serde_json::Value = serde_json::from_slice(&pods.stdout).unwrap();
    assert_eq!(pods["items"].as_array().unwrap().len(), 0, "{pods}");

    // Healed, the migration resumes and completes.
    let out = lab.zklab(&["fault", "heal", &format!("host{follower}")]);
    assert!(out.status.success(), "{}", text(&out));
    let out = lab.zkmigrate(&["step", "-f", &plan, "--all", "--yes", "--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
