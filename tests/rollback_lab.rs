//! `rollback` from after `replace` of one server returns that server to its
//! host, healthy (issue 5's third acceptance): the Pod gone, the Service
//! back on the host's EndpointSlice, the host's ZooKeeper enabled, running
//! with its myid, and every voter synced.

use std::process::{Command, Output, Stdio};
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

    fn journal_action_done(&self, prefix: &str) -> Option<String> {
        let path = self
            .layout
            .root
            .join("state")
            .join(format!("{}.json", self.layout.name));
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        j["steps"]
            .as_array()?
            .iter()
            .flat_map(|s| s["actions"].as_array().into_iter().flatten())
            .find(|a| {
                a["id"].as_str().is_some_and(|id| id.starts_with(prefix)) && a["status"] == "done"
            })
            .and_then(|a| a["id"].as_str().map(String::from))
    }

    fn on_host(&self, k: u8, args: &[&str]) -> Output {
        Command::new(zklab_bin())
            .args([
                "run",
                "--name",
                &self.layout.name,
                "--on",
                &format!("host{k}"),
                "--",
            ])
            .args(args)
            .output()
            .unwrap()
    }

    fn kubectl_json(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.layout.ns(Machine::Ops)])
            .args(["kubectl", "--kubeconfig", &self.state.kubeconfig])
            .args(args)
            .args(["-o", "json"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_default()
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
fn rollback_after_one_server_was_replaced_returns_it_to_its_host_healthy() {
    let layout = Layout::new(&format!("rb{}", std::process::id() % 100_000)).unwrap();
    let _ = topology::down(&layout);
    let state = topology::up(&layout, 3, Target::StatefulSet).expect("zklab up");
    let lab = Lab { layout, state };
    let plan = lab.state.plan.clone();

    let out = lab.zkmigrate(&["step", "-f", &plan, "--until", "clients", "--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    // Run on into replace and stop it once the first server is replaced.
    let mut child = lab
        .command(&[
            "step",
            "-f",
            &plan,
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
    let deadline = Instant::now() + Duration::from_secs(300);
    let replaced = loop {
        if let Some(id) = lab.journal_action_done("replace/synced/") {
            break id;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("zkmigrate ended ({status}) before a server was replaced");
        }
        assert!(Instant::now() < deadline, "no server was replaced");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let server: u8 = replaced.rsplit('/').next().unwrap().parse().unwrap();

    let out = lab.zkmigrate(&["rollback", "-f", &plan, "--to", "peers", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The server runs on its host again: enabled, running, its myid back.
    let out = lab.on_host(server, &["/usr/local/sbin/zookeeper-service", "is-enabled"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "enabled");
    let out = lab.on_host(server, &["cat", "/var/lib/zookeeper/myid"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        server.to_string()
    );
    // No Pod; the Service has no selector and the host slice again.
    let pods = lab.kubectl_json(&["get", "pods", "-n", "zookeeper"]);
    assert_eq!(pods["items"].as_array().map(Vec::len), Some(0), "{pods}");
    let svc = lab.kubectl_json(&["get", "service", &format!("zk-{server}"), "-n", "zookeeper"]);
    assert!(svc["spec"]["selector"].is_null(), "{svc}");
    let slices = lab.kubectl_json(&[
        "get",
        "endpointslices",
        "-n",
        "zookeeper",
        "-l",
        &format!("kubernetes.io/service-name=zk-{server}"),
    ]);
    let items = slices["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the host slice: {slices}");
    assert_eq!(
        items[0]["endpoints"][0]["addresses"][0],
        format!("10.77.0.{}", 10 + server)
    );

    // Healthy: every voter on its host, synced.
    let status = lab.zkmigrate(&["status", "-f", &plan, "-o", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["allVotersSynced"], true, "{status}");
    for s in status["servers"].as_array().unwrap() {
        assert_eq!(s["location"], "host", "{status}");
    }
}
