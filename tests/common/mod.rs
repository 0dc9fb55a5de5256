//! What the lab tests of zkmigrate share: a lab of their own, torn down on
//! drop (also when the test fails), and zkmigrate, zklab and kubectl run
//! where an operator would run them (zkmigrate and kubectl on the lab's
//! operator machine, with the lab's kubeconfig).
#![allow(dead_code)] // each test binary uses a part of it

use std::process::{Command, Output};

use zklab::layout::{Layout, Machine};
use zklab::topology::{self, LabState, Target};

/// The `step` arguments that finish a migration from wherever it stands
/// (the clients step confirmed).
pub const FINISH: [&str; 5] = ["--all", "--yes", "--resume", "--confirm", "clients"];

pub struct Lab {
    pub layout: Layout,
    pub state: LabState,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = topology::down(&self.layout);
    }
}

/// The zklab binary beside the test binary (built by `cargo test --workspace`).
pub fn zklab_bin() -> std::path::PathBuf {
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join("../zklab");
    assert!(bin.exists(), "build zklab first: cargo build -p zklab");
    bin
}

/// Exit code and stderr, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Lab {
    /// A 3-host lab named `name` (any leftover of that name is removed first).
    pub fn up(name: &str, target: Target) -> Lab {
        Lab::up_with(name, 3, target)
    }

    /// A lab of `servers` hosts named `name`.
    pub fn up_with(name: &str, servers: u8, target: Target) -> Lab {
        let layout = Layout::new(name).unwrap();
        let _ = topology::down(&layout);
        let state = topology::up(&layout, servers, target).expect("zklab up");
        Lab { layout, state }
    }

    /// The lab's plan file.
    pub fn plan(&self) -> String {
        self.state.plan.clone()
    }

    /// `zkmigrate ARGS` on the operator machine, logs at warn.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_logging("warn", args)
    }

    /// `zkmigrate ARGS` on the operator machine, logs at `level`.
    pub fn command_logging(&self, level: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.layout.ns(Machine::Ops)])
            .arg("env")
            .arg(format!("KUBECONFIG={}", self.state.kubeconfig))
            .arg(format!("ZKMIGRATE_LOG={level}"))
            .arg(env!("CARGO_BIN_EXE_zkmigrate"))
            .args(args);
        c
    }

    pub fn zkmigrate(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `zkmigrate step -f PLAN ARGS`.
    pub fn step(&self, args: &[&str]) -> Output {
        self.step_command(args).output().unwrap()
    }

    /// The command of `zkmigrate step -f PLAN ARGS`, to run or to spawn.
    pub fn step_command(&self, args: &[&str]) -> Command {
        let plan = self.plan();
        let mut all = vec!["step", "-f", &plan];
        all.extend_from_slice(args);
        self.command(&all)
    }

    /// Starts `step` with [`FINISH`] and SIGKILLs it as soon as `seen`
    /// finds what it looks for in the lab (polled every 20 ms, at most
    /// 300 s); returns that. The child is `ip netns exec` exec'ing `env`
    /// exec'ing zkmigrate: one process, so the signal is zkmigrate's.
    pub fn kill_step_once<T>(&self, what: &str, mut seen: impl FnMut(&Lab) -> Option<T>) -> T {
        use std::time::{Duration, Instant};
        let mut child = self
            .step_command(&FINISH)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(300);
        let found = loop {
            if let Some(found) = seen(self) {
                break found;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("zkmigrate ended ({status}) before {what}");
            }
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(20));
        };
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        found
    }

    /// `zklab ARGS --name LAB`, asserting success; its stdout.
    pub fn zklab(&self, args: &[&str]) -> String {
        let out = Command::new(zklab_bin())
            .args(args)
            .args(["--name", &self.layout.name])
            .output()
            .unwrap();
        assert!(out.status.success(), "zklab {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A command on host `k` (`zklab run --on hostK -- ARGS`).
    pub fn on_host(&self, k: u8, args: &[&str]) -> Output {
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

    /// `kubectl ARGS -o json` on the operator machine.
    pub fn kubectl_json(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.layout.ns(Machine::Ops)])
            .args(["kubectl", "--kubeconfig", &self.state.kubeconfig])
            .args(args)
            .args(["-o", "json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `kubectl describe service zk-ID`, as an operator reads the
    /// migration's history of that server (its Events).
    pub fn describe_service(&self, id: u8) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.layout.ns(Machine::Ops)])
            .args(["kubectl", "--kubeconfig", &self.state.kubeconfig])
            .args([
                "describe",
                "service",
                &format!("zk-{id}"),
                "-n",
                "zookeeper",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "kubectl describe: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Asserts that `kubectl describe service zk-ID` lists an Event with
    /// each of `reasons` (the Events table's Reason column).
    pub fn assert_history(&self, id: u8, reasons: &[&str]) {
        let described = self.describe_service(id);
        let events = described
            .split_once("Events:")
            .map(|(_, events)| events)
            .unwrap_or_else(|| panic!("no Events in describe of zk-{id}:\n{described}"));
        let listed: Vec<&str> = events
            .lines()
            .filter_map(|line| line.split_whitespace().nth(1))
            .collect();
        for reason in reasons {
            assert!(
                listed.contains(reason),
                "zk-{id}: no {reason} Event in `kubectl describe`:\n{described}"
            );
        }
    }

    /// The journal as it is on disk now (null when absent or mid-write).
    pub fn journal(&self) -> serde_json::Value {
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

    /// Journaled actions with `status`, in journal order.
    pub fn actions_with(&self, status: &str) -> Vec<String> {
        self.journal()["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["actions"].as_array().into_iter().flatten())
            .filter(|a| a["status"] == status)
            .filter_map(|a| a["id"].as_str().map(String::from))
            .collect()
    }

    /// Runs the steps up to `clients` (exit 4), then moves the workload's
    /// clients to the Service names, as the operator does at that step.
    pub fn through_clients_moving_the_workload(&self) {
        let plan = self.plan();
        let out = self.zkmigrate(&["step", "-f", &plan, "--until", "clients", "--yes"]);
        assert_eq!(out.status.code(), Some(4), "{}", text(&out));
        self.move_the_workload_to_the_services();
    }

    /// What the operator does at the clients step: the workload's
    /// connection string becomes the Service names.
    pub fn move_the_workload_to_the_services(&self) {
        let services: Vec<String> = (1..=self.state.servers)
            .map(|id| format!("zk-{id}.zookeeper.svc.cluster.local:2181"))
            .collect();
        self.zklab(&["load", "reconnect", "--connect", &services.join(",")]);
    }

    /// The end state of a complete migration, whatever way it was reached:
    /// `status` says every step is done and every server serves from a
    /// Pod with all voters synced; each Pod's server has its original myid;
    /// every host's service is disabled; no hand-made EndpointSlice is left.
    pub fn assert_migrated(&self) {
        let plan = self.plan();
        let out = self.zkmigrate(&["status", "-f", &plan, "-o", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for step in status["steps"].as_array().unwrap() {
            assert_eq!(step["status"], "done", "{status}");
        }
        let servers = status["servers"].as_array().unwrap();
        assert_eq!(servers.len(), usize::from(self.state.servers), "{status}");
        for server in servers {
            assert_eq!(server["location"], "pod", "{status}");
            assert!(
                server["mode"] == "leader" || server["mode"] == "follower",
                "{status}"
            );
        }
        assert_eq!(status["allVotersSynced"], true, "{status}");

        let pods = self.kubectl_json(&["get", "pods", "-n", "zookeeper"]);
        let pods = pods["items"].as_array().unwrap();
        assert_eq!(pods.len(), servers.len(), "{pods:?}");
        for server in servers {
            let id = server["id"].as_u64().unwrap();
            let ip = self.pod_ip_of(pods, id);
            let conf = zklab::netns::four_letter_word(
                &self.layout.ns(Machine::Ops),
                format!("{ip}:2181").parse().unwrap(),
                "conf",
            )
            .expect("conf from the Pod");
            assert!(conf.contains(&format!("serverId={id}")), "{conf}");
        }
        for k in 1..=self.state.servers {
            let out = self.on_host(k, &["/usr/local/sbin/zookeeper-service", "is-enabled"]);
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "disabled",
                "host{k}"
            );
        }
        let slices = self.kubectl_json(&[
            "get",
            "endpointslices",
            "-n",
            "zookeeper",
            "-l",
            "endpointslice.kubernetes.io/managed-by=zkmigrate",
        ]);
        assert_eq!(slices["items"].as_array().unwrap().len(), 0, "{slices}");
    }

    /// The Pod IP of server `id`: its Service selects its Pod by name.
    pub fn pod_ip_of(&self, pods: &[serde_json::Value], id: u64) -> String {
        let svc = self.kubectl_json(&["get", "service", &format!("zk-{id}"), "-n", "zookeeper"]);
        let pod_name = svc["spec"]["selector"]["statefulset.kubernetes.io/pod-name"]
            .as_str()
            .unwrap_or_else(|| panic!("Service zk-{id} selects its Pod: {svc}"));
        pods.iter()
            .find(|p| p["metadata"]["name"] == pod_name)
            .and_then(|p| p["status"]["podIP"].as_str())
            .unwrap_or_else(|| panic!("Pod {pod_name} has an IP"))
            .to_string()
    }

    /// Stops the workload and returns its report (DESIGN section 8).
    pub fn final_report(&self) -> serde_json::Value {
        self.zklab(&["load", "stop"]);
        serde_json::from_str(&self.zklab(&["load", "report"])).unwrap()
    }

    /// The server that leads now, from `srvr` on each host.
    pub fn leader_on_hosts(&self) -> Option<u8> {
        (1..=self.state.servers).find(|&k| {
            self.srvr_on_host(k)
                .is_some_and(|s| s.contains("Mode: leader"))
        })
    }

    /// `srvr` from the operator machine to server `k` on its host.
    pub fn srvr_on_host(&self, k: u8) -> Option<String> {
        zklab::netns::four_letter_word(
            &self.layout.ns(Machine::Ops),
            std::net::SocketAddr::new(Machine::Host(k).addr().into(), 2181),
            "srvr",
        )
    }
}
