//! The whole migration in the lab, real everything (issue 5's first
//! acceptance): `zkmigrate step --all --yes --confirm clients` from the
//! operator machine, under the workload. Every server ends as a Pod with its
//! original myid, host services disabled, no hand-made slice left, nothing
//! lost, at most two leader elections; `status` says every step is done.

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

impl Lab {
    fn up(name: &str, target: Target) -> Lab {
        let layout = Layout::new(name).unwrap();
        let _ = topology::down(&layout);
        let state = topology::up(&layout, 3, target).expect("zklab up");
        Lab { layout, state }
    }

    /// zkmigrate on the operator machine, with the lab's kubeconfig.
    fn zkmigrate(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.layout.ns(Machine::Ops)])
            .arg("env")
            .arg(format!("KUBECONFIG={}", self.state.kubeconfig))
            .arg(env!("CARGO_BIN_EXE_zkmigrate"))
            .args(args)
            .output()
            .unwrap()
    }

    fn zklab(&self, args: &[&str]) -> String {
        let out = Command::new(zklab_bin())
            .args(args)
            .args(["--name", &self.layout.name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "zklab {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn kubectl_json(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.layout.ns(Machine::Ops)])
            .args(["kubectl", "--kubeconfig", &self.state.kubeconfig])
            .args(args)
            .args(["-o", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// The zklab binary beside this test binary (built by `cargo test --workspace`).
fn zklab_bin() -> std::path::PathBuf {
    let me = std::env::current_exe().unwrap();
    let bin = me.parent().unwrap().join("../zklab");
    assert!(bin.exists(), "build zklab first: cargo build -p zklab");
    bin
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

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
    let plan = lab.state.plan.clone();

    // The clients step stops for the operator (exit 4) ...
    let out = lab.zkmigrate(&["step", "-f", &plan, "--until", "clients", "--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    // ... who moves the clients to the Service names, then confirms.
    let services: Vec<String> = (1..=3)
        .map(|id| format!("zk-{id}.zookeeper.svc.cluster.local:2181"))
        .collect();
    lab.zklab(&["load", "reconnect", "--connect", &services.join(",")]);
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

    // Every server is a Pod with its original myid, serving.
    let pods = lab.kubectl_json(&["get", "pods", "-n", "zookeeper"]);
    let pods = pods["items"].as_array().unwrap();
    assert_eq!(pods.len(), 3, "{pods:?}");
    // Host services disabled and stopped.
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
            .args(["/usr/local/sbin/zookeeper-service", "is-enabled"])
            .output()
            .unwrap();
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
