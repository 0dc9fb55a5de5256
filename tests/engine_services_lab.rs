//! The first three steps in the lab, real everything: `zkmigrate check`
//! (preflight alone) passes on a fresh lab and refuses a plan whose ids and
//! addresses disagree with the ensemble without changing anything; `step
//! --until services` creates the per-server Services and host slices, each
//! ClusterIP answers `conf` with its server's id, and a second run changes
//! nothing; the clients step waits for `--confirm clients` (exit 4).
//! zkmigrate runs on the lab's operator machine. Needs root.

use std::collections::BTreeMap;
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
    fn up(name: &str) -> Lab {
        let layout = Layout::new(name).unwrap();
        let _ = topology::down(&layout);
        let state = topology::up(&layout, 3, Target::StatefulSet).expect("zklab up");
        let lab = Lab { layout, state };
        // zkmigrate never creates the namespace: the operator does.
        let ns = std::env::temp_dir().join(format!("{name}-namespace.json"));
        std::fs::write(
            &ns,
            r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"zookeeper"}}"#,
        )
        .unwrap();
        let out = lab.in_ops(
            &[
                "kubectl",
                "--kubeconfig",
                &lab.state.kubeconfig,
                "create",
                "-f",
            ],
            &[ns.to_str().unwrap()],
        );
        // (A lab that already made it is fine.)
        assert!(
            out.status.success() || String::from_utf8_lossy(&out.stderr).contains("AlreadyExists"),
            "{}",
            text(&out)
        );
        lab
    }

    fn in_ops(&self, cmd: &[&str], args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.layout.ns(Machine::Ops)])
            .args(cmd)
            .args(args)
            .output()
            .unwrap()
    }

    /// zkmigrate on the operator machine, with the lab's kubeconfig.
    fn zkmigrate(&self, args: &[&str]) -> Output {
        let kubeconfig = format!("KUBECONFIG={}", self.state.kubeconfig);
        self.in_ops(&["env", &kubeconfig, env!("CARGO_BIN_EXE_zkmigrate")], args)
    }

    fn kubectl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-n", "zookeeper", "-o", "json"]);
        let out = self.in_ops(&["kubectl", "--kubeconfig", &self.state.kubeconfig], &all);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A file on host K, as the host sees it (`zklab run --on hostK`).
    fn host_file(&self, k: u8, path: &str) -> String {
        let out = Command::new(topology::zklab_exe().unwrap())
            .args([
                "run",
                "--name",
                &self.layout.name,
                "--on",
                &format!("host{k}"),
            ])
            .args(["--", "cat", path])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `conf` through `ip:2181`, from the operator machine.
    fn conf_through(&self, ip: &str) -> String {
        let script = "exec 3<>/dev/tcp/$0/2181 && printf conf >&3 && cat <&3";
        let out = self.in_ops(&["timeout", "5", "bash", "-c", script], &[ip]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// name -> resourceVersion of the plan's Services and EndpointSlices.
fn versions(lab: &Lab) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for kind in ["services", "endpointslices"] {
        let list = lab.kubectl_json(&["get", kind, "-l", "app.kubernetes.io/managed-by=zkmigrate"]);
        for item in list["items"].as_array().unwrap() {
            out.insert(
                format!("{kind}/{}", item["metadata"]["name"].as_str().unwrap()),
                item["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    out
}

#[test]
fn preflight_services_and_clients_in_the_lab() {
    let lab = Lab::up(&format!("sl{}", std::process::id() % 100_000));
    let plan = lab.state.plan.clone();

    // check passes on a fresh lab, and lists every preflight check.
    let started = std::time::Instant::now();
    let out = lab.zkmigrate(&["check", "-f", &plan, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    eprintln!("check: {:?}", started.elapsed());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed"], true, "{report}");
    let ids: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let mut expected = vec![
        "preflight/ensemble",
        "preflight/membership",
        "preflight/version",
        "preflight/words",
    ];
    let per_server = ["myid", "config"]
        .iter()
        .flat_map(|v| (1..=3).map(move |n| format!("preflight/{v}/{n}")))
        .chain(std::iter::once("preflight/cluster".to_string()))
        .chain((1..=3).map(|n| format!("preflight/network/{n}")))
        .collect::<Vec<_>>();
    expected.extend(per_server.iter().map(String::as_str));
    assert_eq!(ids, expected, "{report}");
    let pods = lab.kubectl_json(&["get", "pods"]);
    assert_eq!(
        pods["items"].as_array().unwrap().len(),
        0,
        "the probe Pod is gone: {pods}"
    );

    // A plan with servers 1 and 2's addresses swapped is refused, by check
    // and by step, and nothing changes.
    let zoo_cfg_before: Vec<String> = (1..=3)
        .map(|k| lab.host_file(k, "/etc/zookeeper/conf/zoo.cfg"))
        .collect();
    let original = std::fs::read_to_string(&plan).unwrap();
    let swapped = original
        .replace("address: 10.77.0.11", "address: 10.77.0.XX")
        .replace("address: 10.77.0.12", "address: 10.77.0.11")
        .replace("address: 10.77.0.XX", "address: 10.77.0.12")
        .replace(".json", "-swapped.json");
    assert_ne!(swapped, original);
    let swapped_plan = format!("{plan}.swapped.yaml");
    std::fs::write(&swapped_plan, swapped).unwrap();
    let out = lab.zkmigrate(&["check", "-f", &swapped_plan, "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["result"] == "fail")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    for id in [
        "preflight/membership",
        "preflight/config/1",
        "preflight/config/2",
    ] {
        assert!(failed.contains(&id), "{id} fails: {report}");
    }
    let out = lab.zkmigrate(&["step", "-f", &swapped_plan, "--until", "services", "--yes"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected"),
        "the refusal says what was expected: {}",
        text(&out)
    );
    let services = lab.kubectl_json(&["get", "services"]);
    assert_eq!(services["items"].as_array().unwrap().len(), 0, "{services}");
    for (k, before) in (1..=3).zip(&zoo_cfg_before) {
        assert_eq!(&lab.host_file(k, "/etc/zookeeper/conf/zoo.cfg"), before);
    }

    // services: three Services and host slices; each ClusterIP routes to
    // its own server.
    let started = std::time::Instant::now();
    let out = lab.zkmigrate(&["step", "-f", &plan, "--until", "services", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    eprintln!("step --until services: {:?}", started.elapsed());
    for id in 1..=3 {
        let svc = lab.kubectl_json(&["get", "service", &format!("zk-{id}")]);
        assert!(svc["spec"].get("selector").is_none(), "{svc}");
        assert_eq!(svc["spec"]["publishNotReadyAddresses"], true);
        let slice = lab.kubectl_json(&["get", "endpointslice", &format!("zk-{id}-host")]);
        assert_eq!(
            slice["endpoints"][0]["addresses"][0],
            format!("10.77.0.1{id}"),
            "{slice}"
        );
        assert_eq!(
            slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
            "zkmigrate"
        );
        let ip = svc["spec"]["clusterIP"].as_str().unwrap();
        let conf = lab.conf_through(ip);
        assert!(conf.contains(&format!("serverId={id}\n")), "{conf}");
    }

    // Again: nothing changes.
    let before = versions(&lab);
    assert_eq!(before.len(), 6, "{before:?}");
    let out = lab.zkmigrate(&["step", "-f", &plan, "--until", "services", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(versions(&lab), before);

    // clients: waits for the operator (exit 4), then completes.
    let out = lab.zkmigrate(&["step", "-f", &plan, "--until", "clients", "--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("zk-1.zookeeper.svc.cluster.local:2181,zk-2.zookeeper.svc.cluster.local:2181,zk-3.zookeeper.svc.cluster.local:2181"),
        "{stderr}"
    );
    let out = lab.zkmigrate(&[
        "step",
        "-f",
        &plan,
        "--until",
        "clients",
        "--yes",
        "--resume",
        "--confirm",
        "clients",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
