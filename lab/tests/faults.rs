//! `zklab fault` for real, each test on a lab of its own (names starting
//! with `fx`, torn down on drop even when the test fails): `elect` makes
//! the server asked for the leader of 3 and 5 hosts; a Pod's partition
//! cuts its traffic and `heal` restores it; the API server fails with the
//! real Status objects, slows down, expires its fault on time, and counts
//! every request on `/metrics`; `break-start` makes a host's service fail
//! to start until `fix-start`. Needs root, as every lab does.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use zklab::layout::{Layout, Machine};
use zklab::netns;
use zklab::topology::{self, LabState, Target};

/// A lab for one test, torn down on drop.
struct FaultLab {
    layout: Layout,
    state: LabState,
}

impl Drop for FaultLab {
    fn drop(&mut self) {
        let _ = topology::down(&self.layout);
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

impl FaultLab {
    /// A lab of `servers` hosts named `fx<tag><pid><n>`.
    fn up(tag: &str, servers: u8) -> FaultLab {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "fx{tag}{}x{}",
            std::process::id() % 100_000,
            N.fetch_add(1, Ordering::SeqCst)
        );
        let layout = Layout::new(&name).unwrap();
        let _ = topology::down(&layout);
        let state = topology::up(&layout, servers, Target::StatefulSet).expect("zklab up");
        FaultLab { layout, state }
    }

    /// `zklab ARGS --name LAB`.
    fn zklab(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_zklab"))
            .args(args)
            .args(["--name", &self.layout.name])
            .output()
            .unwrap()
    }

    /// `zklab ARGS --name LAB`, asserting success; its stdout.
    fn zklab_ok(&self, args: &[&str]) -> String {
        let out = self.zklab(args);
        assert!(out.status.success(), "zklab {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `zklab run --on MACHINE -- ARGS`.
    fn run_on(&self, on: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_zklab"))
            .args(["run", "--name", &self.layout.name, "--on", on, "--"])
            .args(args)
            .output()
            .unwrap()
    }

    /// kubectl on the operator machine.
    fn kubectl(&self, args: &[&str]) -> Output {
        let mut all = vec!["kubectl", "--kubeconfig", &self.state.kubeconfig];
        all.extend_from_slice(args);
        self.run_on("ops", &all)
    }

    /// A request to the API server with curl from the operator machine,
    /// with the admin token: (status code, lower-case headers, body).
    fn api(&self, method: &str, path: &str, body: Option<(&str, &str)>) -> (u16, String, String) {
        let token = zklab::k8s::controlplane::admin_token(&self.layout).unwrap();
        let ca = self.layout.root.join("pki/ca.crt");
        let auth = format!("Authorization: Bearer {token}");
        let url = format!("https://{}:6443{path}", Machine::ControlPlane.addr());
        let mut args = vec![
            "curl",
            "-sS",
            "-i",
            "--cacert",
            ca.to_str().unwrap(),
            "-H",
            &auth,
            "-X",
            method,
        ];
        let content_type;
        if let Some((media, data)) = body {
            content_type = format!("Content-Type: {media}");
            args.extend(["-H", &content_type, "--data-binary", data]);
        }
        args.push(&url);
        let out = self.run_on("ops", &args);
        assert!(out.status.success(), "curl {method} {path}: {}", text(&out));
        let raw = String::from_utf8_lossy(&out.stdout).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (code, head.to_lowercase(), body.to_string())
    }

    /// `apiserver_request_total` by (verb, resource, code), as scraped by
    /// `kubectl get --raw /metrics`.
    fn request_counts(&self) -> BTreeMap<(String, String, String), u64> {
        let out = self.kubectl(&["get", "--raw", "/metrics"]);
        assert!(out.status.success(), "get --raw /metrics: {}", text(&out));
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut counts = BTreeMap::new();
        for line in body.lines().filter(|l| !l.starts_with('#')) {
            let (series, n) = line.rsplit_once(' ').unwrap();
            let labels = series
                .strip_prefix("apiserver_request_total{")
                .and_then(|s| s.strip_suffix('}'))
                .unwrap_or_else(|| panic!("not a request counter: {line}"));
            let label = |key: &str| {
                labels
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or_else(|| panic!("no {key} in {line}"))
                    .to_string()
            };
            counts.insert(
                (label("verb"), label("resource"), label("code")),
                n.parse().unwrap(),
            );
        }
        counts
    }

    /// `Mode:` of every host, by `srvr` from the operator machine.
    fn modes(&self) -> Vec<Option<String>> {
        (1..=self.state.servers)
            .map(|k| topology::host_mode(&self.layout, k))
            .collect()
    }

    /// Asserts that host `leader` leads and every other host follows.
    fn assert_leader(&self, leader: u8) {
        let modes = self.modes();
        for (i, mode) in modes.iter().enumerate() {
            let k = i as u8 + 1;
            let want = if k == leader { "leader" } else { "follower" };
            assert_eq!(mode.as_deref(), Some(want), "host{k} in {modes:?}");
        }
    }
}

/// Polls `f` until it returns `Some`, at most `secs` seconds.
fn wait<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn elect_makes_the_server_asked_for_the_leader_of_three_and_of_five() {
    let lab = FaultLab::up("e", 3);
    for target in [1u8, 3] {
        let out = lab.zklab_ok(&["fault", "elect", "--server", &target.to_string()]);
        assert_eq!(
            out,
            format!("leader: server {target} (host{target})\n"),
            "elect prints the leader"
        );
        lab.assert_leader(target);
    }
    // Asking for the leader that already leads changes nothing.
    lab.zklab_ok(&["fault", "elect", "--server", "3"]);
    lab.assert_leader(3);
    let out = lab.zklab(&["fault", "elect", "--server", "4"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--server 4: the lab's servers are 1 to 3"),
        "{}",
        text(&out)
    );
    drop(lab);

    let lab = FaultLab::up("f", 5);
    let leader = topology::wait_quorum(&lab.layout, 5, Duration::from_secs(60)).unwrap();
    let target = if leader == 1 { 2 } else { 1 };
    lab.zklab_ok(&["fault", "elect", "--server", &target.to_string()]);
    lab.assert_leader(target);
}

const SOLO_POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: zk-solo, namespace: zookeeper}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: zookeeper
    image: zookeeper:3.8
    env:
    - {name: ZOO_4LW_COMMANDS_WHITELIST, value: \"srvr,ruok\"}
    - {name: ZK_SERVER_HEAP, value: \"128\"}
";

#[test]
fn a_partitioned_pod_answers_no_one_until_healed() {
    let lab = FaultLab::up("p", 3);
    // No such Pod yet: a clear error, nothing done.
    let out = lab.zklab(&["fault", "partition", "pod/zk-solo"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no Pod zookeeper/zk-solo runs in lab"),
        "{}",
        text(&out)
    );

    let manifest = lab.layout.root.join("zk-solo.yaml");
    std::fs::write(&manifest, SOLO_POD).unwrap();
    let out = lab.kubectl(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let ip = wait("the Pod's IP", 60, || {
        let out = lab.kubectl(&["get", "pod", "zk-solo", "-n", "zookeeper", "-o", "json"]);
        let pod: Value = serde_json::from_slice(&out.stdout).ok()?;
        pod["status"]["podIP"].as_str().map(String::from)
    });
    let ruok = || {
        netns::four_letter_word(
            &lab.layout.ns(Machine::Ops),
            format!("{ip}:2181").parse().unwrap(),
            "ruok",
        )
    };
    wait("the Pod's ZooKeeper to answer", 120, || {
        ruok().filter(|r| r == "imok")
    });

    lab.zklab_ok(&[
        "fault",
        "partition",
        "pod/zk-solo",
        "--namespace",
        "zookeeper",
    ]);
    assert_eq!(ruok(), None, "a partitioned Pod must not answer");
    // From its other side too: the Pod reaches no lab machine.
    let pod_ns = zklab::fault::pod_netns(&lab.layout, "zookeeper", "zk-solo").unwrap();
    assert!(zklab::fault::is_partitioned_ns(&pod_ns));
    assert_eq!(
        netns::four_letter_word(&pod_ns, (Machine::Host(1).addr(), 2181).into(), "ruok"),
        None
    );
    lab.zklab_ok(&["fault", "heal", "pod/zk-solo"]);
    assert_eq!(ruok().as_deref(), Some("imok"), "healed, it answers again");
    assert!(!zklab::fault::is_partitioned_ns(&pod_ns));
    // Host partitions keep working beside Pod ones.
    lab.zklab_ok(&["fault", "partition", "host1"]);
    assert_eq!(topology::host_mode(&lab.layout, 1), None);
    lab.zklab_ok(&["fault", "heal", "host1"]);
    wait("host1 to serve again", 60, || {
        topology::host_mode(&lab.layout, 1)
    });
}

#[test]
fn the_api_server_fails_slows_and_counts_as_told() {
    let lab = FaultLab::up("a", 3);
    let cm = "/api/v1/namespaces/zookeeper/configmaps";
    let probe = format!("{cm}/probe");
    let (code, _, body) = lab.api(
        "POST",
        cm,
        Some((
            "application/json",
            r#"{"metadata":{"name":"probe"},"data":{"k":"v"}}"#,
        )),
    );
    assert_eq!(code, 201, "{body}");

    // 500: kubectl fails with the Status message; cleared, it works.
    lab.zklab_ok(&["fault", "api", "--status", "500", "--for", "30"]);
    let out = lab.kubectl(&["get", "configmaps", "-n", "zookeeper", "-v=6"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(err.contains("500 Internal Server Error"), "{err}");
    assert!(
        err.contains(
            "Error from server (InternalError): Internal error occurred: zklab fault api: injected failure"
        ),
        "{err}"
    );
    // Discovery and /metrics are never failed.
    assert_eq!(lab.api("GET", "/apis", None).0, 200);
    lab.request_counts();
    lab.zklab_ok(&["fault", "api", "--clear"]);
    let out = lab.kubectl(&["get", "configmap", "probe", "-n", "zookeeper"]);
    assert!(out.status.success(), "{}", text(&out));

    // 409 as the real optimistic-concurrency conflict.
    lab.zklab_ok(&["fault", "api", "--status", "409", "--for", "30"]);
    let out = lab.kubectl(&[
        "patch",
        "configmap",
        "probe",
        "-n",
        "zookeeper",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"k":"v2"}}"#,
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "Error from server (Conflict): Operation cannot be fulfilled on configmaps \"probe\": the object has been modified; please apply your changes to the latest version and try again"
        ),
        "{}",
        text(&out)
    );
    let (code, _, body) = lab.api("GET", &probe, None);
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(code, 409);
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(status["details"]["name"], "probe");
    assert_eq!(status["details"]["kind"], "configmaps");

    // 429 with Retry-After, as API Priority and Fairness answers.
    lab.zklab_ok(&["fault", "api", "--status", "429", "--for", "30"]);
    let (code, head, body) = lab.api("GET", cm, None);
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(code, 429, "{head}{body}");
    assert!(head.contains("\r\nretry-after: 1"), "{head}");
    assert_eq!(status["reason"], "TooManyRequests");
    assert_eq!(status["details"]["retryAfterSeconds"], 1);

    // Slow: a request takes at least the delay.
    lab.zklab_ok(&["fault", "api", "--slow", "300", "--for", "30"]);
    let started = Instant::now();
    let (code, _, _) = lab.api("GET", &probe, None);
    let took = started.elapsed();
    assert_eq!(code, 200);
    assert!(took >= Duration::from_millis(300), "took {took:?}");

    // A fault ends on its own when its time is up.
    lab.zklab_ok(&["fault", "api", "--status", "503", "--for", "2"]);
    let injected = Instant::now();
    assert_eq!(lab.api("GET", &probe, None).0, 503);
    wait("the 503 fault to expire", 20, || {
        (lab.api("GET", &probe, None).0 == 200).then_some(())
    });
    assert!(
        injected.elapsed() >= Duration::from_secs(1),
        "expired early"
    );

    // /metrics counts exactly the requests made, by verb, resource, code.
    let before = lab.request_counts();
    lab.zklab_ok(&[
        "fault", "api", "--status", "500", "--for", "30", "--every", "2", "--verbs", "get",
    ]);
    for _ in 0..4 {
        lab.api("GET", &probe, None);
    }
    lab.api("GET", cm, None);
    lab.zklab_ok(&[
        "fault", "api", "--status", "409", "--for", "30", "--verbs", "patch",
    ]);
    let (code, _, _) = lab.api(
        "PATCH",
        &probe,
        Some(("application/merge-patch+json", r#"{"data":{"k":"v3"}}"#)),
    );
    assert_eq!(code, 409);
    let (code, _, _) = lab.api(
        "PATCH",
        &format!("{probe}?fieldManager=fx"),
        Some((
            "application/apply-patch+yaml",
            "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"probe\"}}",
        )),
    );
    assert_eq!(code, 409);
    lab.zklab_ok(&["fault", "api", "--clear"]);
    let after = lab.request_counts();
    let delta: BTreeMap<(String, String, String), u64> = after
        .iter()
        .filter(|((_, resource, _), _)| !resource.is_empty())
        .map(|(k, n)| (k.clone(), n - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let key = |v: &str, c: &str| (v.to_string(), "configmaps".to_string(), c.to_string());
    let want = BTreeMap::from([
        (key("GET", "200"), 2),
        (key("GET", "500"), 2),
        (key("LIST", "200"), 1),
        (key("PATCH", "409"), 1),
        (key("APPLY", "409"), 1),
    ]);
    assert_eq!(delta, want, "before {before:?}\nafter {after:?}");
}

#[test]
fn a_broken_start_fails_restart_until_fixed_and_the_server_rejoins() {
    let lab = FaultLab::up("s", 3);
    let leader = topology::wait_quorum(&lab.layout, 3, Duration::from_secs(60)).unwrap();
    let k = (1..=3).find(|&k| k != leader).unwrap();
    let host = format!("host{k}");
    let service = "/usr/local/sbin/zookeeper-service";
    lab.zklab_ok(&["fault", "break-start", &host]);
    assert!(zklab::fault::is_start_broken(&lab.layout, k));

    let out = lab.run_on(&host, &[service, "restart"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("zookeeper failed to start"),
        "{}",
        text(&out)
    );
    let out = lab.run_on(&host, &[service, "status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("zookeeper is stopped"),
        "{}",
        text(&out)
    );
    assert_eq!(topology::host_mode(&lab.layout, k), None, "nothing started");
    let out = lab.run_on(&host, &[service, "start"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "start fails too: {}",
        text(&out)
    );
    assert_eq!(topology::host_mode(&lab.layout, k), None);

    lab.zklab_ok(&["fault", "fix-start", &host]);
    assert!(!zklab::fault::is_start_broken(&lab.layout, k));
    let out = lab.run_on(&host, &[service, "start"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        topology::wait_quorum(&lab.layout, 3, Duration::from_secs(60)).unwrap(),
        leader,
        "the server rejoins under the same leader"
    );

    let out = lab.zklab(&["fault", "break-start", "host4"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has hosts host1 to host3, not host4"),
        "{}",
        text(&out)
    );
}
