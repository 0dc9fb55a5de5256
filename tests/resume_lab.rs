//! zkmigrate killed outright (SIGKILL) in the middle of `peers` and of
//! `replace`, then `step --resume`: the migration completes with the same
//! end state and nothing lost (issue 5's second acceptance). The kill lands
//! right after the journal records an action's intent, i.e. while the action
//! runs: the resumed loop must re-observe the world, not trust the journal.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
    fn up(name: &str) -> Lab {
        let layout = Layout::new(name).unwrap();
        let _ = topology::down(&layout);
        let state = topology::up(&layout, 3, Target::StatefulSet).expect("zklab up");
        Lab { layout, state }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.layout.ns(Machine::Ops)])
            .arg("env")
            .arg(format!("KUBECONFIG={}", self.state.kubeconfig))
            .arg("ZKMIGRATE_LOG=warn")
            .arg(env!("CARGO_BIN_EXE_zkmigrate"))
            .args(args);
        c
    }

    fn zkmigrate(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
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

    fn journal(&self) -> serde_json::Value {
        let path = self
            .layout
            .root
            .join("state")
            .join(format!("{}.json", self.layout.name));
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// Whether the journal shows `action` in `status`.
    fn action_is(&self, action: &str, status: &str) -> bool {
        self.journal()["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["actions"].as_array().into_iter().flatten())
            .any(|a| a["id"] == action && a["status"] == status)
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Starts `step --all` and SIGKILLs it once `action` is journaled as
/// intended (running). The child is `ip netns exec` exec'ing `env` exec'ing
/// zkmigrate: one process, so its pid is zkmigrate's.
fn kill_during(lab: &Lab, plan: &str, action: &str) {
    let mut child: Child = lab
        .command(&[
            "step",
            "-f",
            plan,
            "--all",
            "--yes",
            "--resume",
            "--confirm",
            "clients",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(240);
    while !lab.action_is(action, "intent") {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("zkmigrate ended ({status}) before {action} started");
        }
        assert!(Instant::now() < deadline, "{action} never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

fn migrate_with_a_kill_during(name: &str, action: &str) {
    let lab = Lab::up(name);
    let plan = lab.state.plan.clone();
    lab.zklab(&["load", "start"]);
    let out = lab.zkmigrate(&["step", "-f", &plan, "--until", "clients", "--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let services: Vec<String> = (1..=3)
        .map(|id| format!("zk-{id}.zookeeper.svc.cluster.local:2181"))
        .collect();
    lab.zklab(&["load", "reconnect", "--connect", &services.join(",")]);

    kill_during(&lab, &plan, action);

    // Without --resume, the interrupted step is refused.
    let out = lab.zkmigrate(&["step", "-f", &plan, "--all", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--resume"),
        "{}",
        text(&out)
    );

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

    // The same end state as an uninterrupted run.
    let status = lab.zkmigrate(&["status", "-f", &plan, "-o", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    for step in status["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "done", "{status}");
    }
    for server in status["servers"].as_array().unwrap() {
        assert_eq!(server["location"], "pod", "{status}");
        assert!(
            server["mode"] == "leader" || server["mode"] == "follower",
            "{status}"
        );
    }
    assert_eq!(status["allVotersSynced"], true, "{status}");
    lab.zklab(&["load", "stop"]);
    let report: serde_json::Value = serde_json::from_str(&lab.zklab(&["load", "report"])).unwrap();
    assert_eq!(report["lost"], 0, "{report}");
}

#[test]
fn a_kill_during_a_peers_restart_resumes_to_the_same_end_state() {
    migrate_with_a_kill_during(
        &format!("rp{}", std::process::id() % 100_000),
        "peers/restart/2",
    );
}

#[test]
fn a_kill_during_a_replace_pod_start_resumes_to_the_same_end_state() {
    migrate_with_a_kill_during(
        &format!("rr{}", std::process::id() % 100_000),
        "replace/pod/1",
    );
}
