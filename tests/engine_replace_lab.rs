//! Step `replace` (and `finalize`) in the lab, real everything, through
//! `zkmigrate step` on the operator machine.
//!
//! - A whole migration under the workload: every server ends in a Pod with
//!   its original myid (asked through the Pod's IP with `conf`, and read
//!   from the Pod's volume), the ordinals put the leader of when `replace`
//!   began last, every host is fenced (service disabled, myid moved aside),
//!   no hand-made slice is left, and the workload lost nothing.
//! - "One identity, one process" broken on purpose: a host whose service
//!   will not stop makes `replace/fence/N` refuse, and no Pod of that server
//!   (nor any other) is created; the host keeps serving with its myid.
//!
//! Each test builds its own lab (unique name) and tears it down on drop,
//! even when an assertion fails. Needs root, as every lab test does.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

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
    fn up(tag: &str) -> Lab {
        let name = format!("e{}x{tag}", std::process::id() % 100_000);
        let layout = Layout::new(&name).unwrap();
        let _ = topology::down(&layout);
        let started = Instant::now();
        let state = topology::up(&layout, 3, Target::StatefulSet).expect("zklab up");
        eprintln!("lab {name} up in {:.1} s", started.elapsed().as_secs_f64());
        let lab = Lab { layout, state };
        // zkmigrate never creates the namespace: the operator does.
        lab.create_namespace("zookeeper");
        lab
    }

    fn plan(&self) -> &str {
        &self.state.plan
    }

    /// zkmigrate on the operator machine, with the lab's kubeconfig.
    fn zkmigrate(&self, args: &[&str]) -> Output {
        let started = Instant::now();
        let out = Command::new("ip")
            .args(["netns", "exec", &self.layout.ns(Machine::Ops)])
            .arg("env")
            .arg(format!("KUBECONFIG={}", self.state.kubeconfig))
            .arg(env!("CARGO_BIN_EXE_zkmigrate"))
            .args(args)
            .output()
            .unwrap();
        eprintln!(
            "zkmigrate {args:?}: exit {:?} in {:.1} s",
            out.status.code(),
            started.elapsed().as_secs_f64()
        );
        out
    }

    fn zklab(&self, args: &[&str]) -> Output {
        Command::new(zklab_bin())
            .args(args)
            .args(["--name", &self.layout.name])
            .output()
            .unwrap()
    }

    fn zklab_ok(&self, args: &[&str]) -> String {
        let out = self.zklab(args);
        assert!(out.status.success(), "zklab {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A shell command on host `k`.
    fn on_host(&self, k: u8, command: &str) -> Output {
        Command::new(zklab_bin())
            .args([
                "run",
                "--name",
                &self.layout.name,
                "--on",
                &format!("host{k}"),
                "--",
            ])
            .args(["sh", "-c", command])
            .output()
            .unwrap()
    }

    /// `kubectl create` speaks protobuf, which the lab's API server does
    /// not: a server-side apply of JSON instead.
    fn create_namespace(&self, name: &str) {
        let file = self.layout.root.join(format!("namespace-{name}.json"));
        let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        std::fs::write(&file, body.to_string()).unwrap();
        let file = file.to_string_lossy().into_owned();
        self.kubectl_json(&["apply", "--server-side", "-f", &file]);
    }

    fn kubectl_json(&self, args: &[&str]) -> serde_json::Value {
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

    /// A four-letter word from the operator machine.
    fn word(&self, addr: &str, word: &'static str) -> Option<String> {
        let addr: SocketAddr = addr.parse().unwrap();
        zklab::netns::four_letter_word(&self.layout.ns(Machine::Ops), addr, word)
    }

    /// The leader among the hosts, by `srvr`.
    fn host_leader(&self) -> Option<u8> {
        (1..=3).find(|&k| {
            self.word(&format!("{}:2181", Machine::Host(k).addr()), "srvr")
                .is_some_and(|s| s.contains("Mode: leader"))
        })
    }

    /// Sets the plan's policy (outside the plan hash: DESIGN 6).
    fn set_progress_deadline(&self, value: &str) {
        let text = std::fs::read_to_string(self.plan()).unwrap();
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("progressDeadline:"))
            .expect("the lab plan has a progressDeadline")
            .to_string();
        let indent = &line[..line.len() - line.trim_start().len()];
        let text = text.replace(&line, &format!("{indent}progressDeadline: {value}"));
        std::fs::write(self.plan(), text).unwrap();
    }
}

fn zklab_bin() -> PathBuf {
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

/// `serverId=N` of a `conf` answer.
fn server_id(conf: &str) -> Option<u8> {
    conf.lines()
        .find_map(|l| l.strip_prefix("serverId="))
        .and_then(|v| v.trim().parse().ok())
}

/// The myid file on the volume of claim `claim` (the lab keeps claims as
/// directories under `<root>/volumes/<namespace>/<claim>`).
/// The myid file on a claim's volume: the lab binds each claim to
/// `<root>/volumes/<namespace>/<claim>/pvc-<uid>/` (one directory, the
/// bound volume).
fn volume_myid(root: &Path, namespace: &str, claim: &str) -> Option<String> {
    let dir = root.join("volumes").join(namespace).join(claim);
    let volume = std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("pvc-"))?
        .path();
    std::fs::read_to_string(volume.join("myid"))
        .ok()
        .map(|s| s.trim().to_string())
}

#[test]
fn every_server_ends_in_a_pod_with_its_myid_and_the_hosts_fenced() {
    let lab = Lab::up("a");
    let plan = lab.plan().to_string();
    lab.zklab_ok(&["load", "start"]);

    let out = lab.zkmigrate(&[
        "step",
        "-f",
        &plan,
        "--until",
        "peers",
        "--yes",
        "--confirm",
        "clients",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let leader_before_replace = lab.host_leader().expect("a leader after peers");
    // The clients moved to the Service names (the operator's part of the
    // clients step): the host addresses stop answering during replace.
    let services: Vec<String> = (1..=3)
        .map(|id| format!("zk-{id}.zookeeper.svc.cluster.local:2181"))
        .collect();
    lab.zklab_ok(&["load", "reconnect", "--connect", &services.join(",")]);

    let out = lab.zkmigrate(&[
        "step",
        "-f",
        &plan,
        "--all",
        "--yes",
        "--confirm",
        "clients",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("zkmigrate manifests -f"),
        "finalize prints the manifests command:\n{stderr}"
    );

    // The ordinals: followers first, the leader of when replace began last.
    let ordinals = lab.kubectl_json(&["get", "configmap", "zk-ordinals", "-n", "zookeeper"]);
    let myid_of = |ordinal: usize| -> u8 {
        ordinals["data"][ordinal.to_string()]
            .as_str()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(myid_of(2), leader_before_replace, "{ordinals}");

    // Every Pod runs its pinned myid: `conf` through its IP, and the myid
    // file on its volume.
    let pods = lab.kubectl_json(&["get", "pods", "-n", "zookeeper"]);
    let pods = pods["items"].as_array().unwrap();
    assert_eq!(pods.len(), 3, "{pods:?}");
    for ordinal in 0..3 {
        let name = format!("zk-{ordinal}");
        let pod = pods
            .iter()
            .find(|p| p["metadata"]["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no Pod {name}"));
        let ip = pod["status"]["podIP"].as_str().expect("a Pod IP");
        let conf = lab
            .word(&format!("{ip}:2181"), "conf")
            .expect("conf from the Pod");
        assert_eq!(server_id(&conf), Some(myid_of(ordinal)), "{name}: {conf}");
        let srvr = lab.word(&format!("{ip}:2181"), "srvr").unwrap();
        assert!(
            srvr.contains("Mode: follower") || srvr.contains("Mode: leader"),
            "{name}: {srvr}"
        );
        assert_eq!(
            volume_myid(&lab.layout.root, "zookeeper", &format!("data-{name}")),
            Some(myid_of(ordinal).to_string()),
            "the myid on {name}'s volume"
        );
    }

    // Every host: disabled, ports closed, myid moved aside.
    for k in 1..=3u8 {
        let out = lab.on_host(k, "/usr/local/sbin/zookeeper-service is-enabled");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "disabled",
            "host{k}"
        );
        let out = lab.on_host(
            k,
            "test ! -e /var/lib/zookeeper/myid && cat /var/lib/zookeeper/myid.zkmigrate-fenced",
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            k.to_string(),
            "host{k}: {}",
            text(&out)
        );
        assert!(
            lab.word(&format!("{}:2181", Machine::Host(k).addr()), "srvr")
                .is_none(),
            "host{k} still answers on 2181"
        );
    }

    // Every Service selects its Pod; no hand-made slice is left.
    for id in 1..=3 {
        let svc = lab.kubectl_json(&["get", "service", &format!("zk-{id}"), "-n", "zookeeper"]);
        let selected = svc["spec"]["selector"]["statefulset.kubernetes.io/pod-name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let ordinal = (0..3).find(|&o| myid_of(o) == id).unwrap();
        assert_eq!(selected, format!("zk-{ordinal}"), "{svc}");
    }
    let slices = lab.kubectl_json(&[
        "get",
        "endpointslices",
        "-n",
        "zookeeper",
        "-l",
        "endpointslice.kubernetes.io/managed-by=zkmigrate",
    ]);
    assert_eq!(slices["items"].as_array().unwrap().len(), 0, "{slices}");

    // Resuming a finished migration changes nothing.
    let out = lab.zkmigrate(&["step", "-f", &plan, "--all", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    lab.zklab_ok(&["load", "stop"]);
    let report: serde_json::Value =
        serde_json::from_str(&lab.zklab_ok(&["load", "report"])).unwrap();
    eprintln!("workload: {report}");
    assert_eq!(report["lost"], 0, "{report}");
}

#[test]
fn a_host_that_will_not_stop_gets_no_pod() {
    let lab = Lab::up("b");
    let plan = lab.plan().to_string();
    // The fence waits this long for the ports to close.
    lab.set_progress_deadline("10s");

    let out = lab.zkmigrate(&[
        "step",
        "-f",
        &plan,
        "--until",
        "peers",
        "--yes",
        "--confirm",
        "clients",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The first server replace takes: the lowest id that does not lead.
    let leader = lab.host_leader().expect("a leader after peers");
    let victim = (1..=3u8).find(|&k| k != leader).unwrap();
    let script = lab.layout.root.join(format!(
        "hosts/host{victim}/usr-local-sbin/zookeeper-service"
    ));
    let original = std::fs::read_to_string(&script).unwrap();
    let broken = original.replace("  stop) stop ;;", "  stop) echo \"zookeeper stopped\" ;;");
    assert_ne!(
        broken, original,
        "the lab's service script has a stop branch"
    );
    std::fs::write(&script, broken).unwrap();

    let out = lab.zkmigrate(&[
        "step",
        "-f",
        &plan,
        "--all",
        "--yes",
        "--confirm",
        "clients",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("replace/fence/{victim}")) && stderr.contains("still listening"),
        "the refusal names the action and what was seen:\n{stderr}"
    );

    // No Pod at all, and no StatefulSet to make one.
    let pods = lab.kubectl_json(&["get", "pods", "-n", "zookeeper"]);
    assert_eq!(pods["items"].as_array().unwrap().len(), 0, "{pods}");
    let sets = lab.kubectl_json(&["get", "statefulsets", "-n", "zookeeper"]);
    assert_eq!(sets["items"].as_array().unwrap().len(), 0, "{sets}");

    // The host still serves as server `victim`, with its myid in place, and
    // its Service still points at it.
    let addr = format!("{}:2181", Machine::Host(victim).addr());
    let srvr = lab.word(&addr, "srvr").expect("the host still answers");
    assert!(
        srvr.contains("Mode: follower") || srvr.contains("Mode: leader"),
        "{srvr}"
    );
    let out = lab.on_host(victim, "cat /var/lib/zookeeper/myid");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        victim.to_string(),
        "{}",
        text(&out)
    );
    let slice = lab.kubectl_json(&[
        "get",
        "endpointslice",
        &format!("zk-{victim}-host"),
        "-n",
        "zookeeper",
    ]);
    assert_eq!(
        slice["endpoints"][0]["addresses"][0],
        Machine::Host(victim).addr().to_string(),
        "{slice}"
    );
    let svc = lab.kubectl_json(&["get", "service", &format!("zk-{victim}"), "-n", "zookeeper"]);
    assert!(svc["spec"]["selector"].is_null(), "{svc}");

    // Resuming does not get past the fence either.
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
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let pods = lab.kubectl_json(&["get", "pods", "-n", "zookeeper"]);
    assert_eq!(pods["items"].as_array().unwrap().len(), 0, "{pods}");
}
