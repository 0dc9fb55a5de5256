//! The kubernetes state backend end to end (issue 7, item 4): a real
//! migration whose journal lives in a ConfigMap under a Lease, run from two
//! "machines" (two working directories, neither with local state).
//!
//! Process A runs `step --all` and is paused by a failpoint right after a
//! peers restart was applied; process B, same plan, is refused while A
//! holds the Lease, naming A, while `status` there reads the journal. A is
//! SIGKILLed. B without `--steal-lease` is refused while the Lease is live,
//! and again once it expired (told to use `--steal-lease`); B with
//! `--resume --steal-lease` takes it over and completes. The end state is a complete migration, no
//! write lost, and the ConfigMap's journal shows every step done.
//!
//! Needs the `failpoints` feature (the pause) and root, as every lab test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{FINISH, Lab, text};
use zklab::topology::Target;

/// The Lease's duration in the test plan: renewed every 3.3 s.
const LEASE_SECONDS: u64 = 10;

/// Where A pauses: a peers restart applied, not yet verified or journaled.
const PAUSE_AT: &str = "peers/restart/2@applied";

/// The lab's plan with `state: { backend: kubernetes }` and a short Lease,
/// written to `dir/plan.yaml`.
fn kubernetes_plan(lab: &Lab, dir: &Path) -> String {
    let text = std::fs::read_to_string(lab.plan()).unwrap();
    let state = text
        .find("\nstate:")
        .expect("the lab plan has a state section");
    let text = format!("{}\nstate:\n  backend: kubernetes\n", &text[..state]).replace(
        "  pollInterval: 200ms\n",
        &format!("  pollInterval: 200ms\n  leaseDuration: {LEASE_SECONDS}s\n"),
    );
    assert!(text.contains("leaseDuration"), "{text}");
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join("plan.yaml");
    std::fs::write(&file, text).unwrap();
    file.display().to_string()
}

/// `zkmigrate step -f PLAN ARGS` run from `dir` (its own machine).
fn step_from(lab: &Lab, dir: &Path, plan: &str, args: &[&str]) -> Command {
    let mut all = vec!["step", "-f", plan];
    all.extend_from_slice(args);
    let mut c = lab.command(&all);
    c.current_dir(dir);
    c
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The ConfigMap's and the Lease's name: `zkmigrate-<plan>` (the lab's
/// plan is named after the lab).
fn object(lab: &Lab) -> String {
    format!("zkmigrate-{}", lab.layout.name)
}

/// The plan's Lease as the API server has it.
fn lease(lab: &Lab) -> serde_json::Value {
    lab.kubectl_json(&["get", "lease", &object(lab), "-n", "zookeeper"])
}

fn holder(lab: &Lab) -> String {
    lease(lab)["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// When the Lease expires by its own fields: renewTime + duration.
fn lease_expiry(lab: &Lab) -> SystemTime {
    let lease = lease(lab);
    let renewed = lease["spec"]["renewTime"].as_str().expect("renewTime");
    let seconds = lease["spec"]["leaseDurationSeconds"].as_u64().unwrap();
    humantime::parse_rfc3339(renewed).unwrap() + Duration::from_secs(seconds)
}

/// The journal in the ConfigMap.
fn journal(lab: &Lab) -> serde_json::Value {
    let cm = lab.kubectl_json(&["get", "configmap", &object(lab), "-n", "zookeeper"]);
    serde_json::from_str(cm["data"]["journal.json"].as_str().unwrap()).unwrap()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_second_machine_is_refused_while_the_lease_is_held_and_steals_it_once_expired() {
    let mut lab = Lab::up(
        &format!("ls{}", std::process::id() % 100_000),
        Target::StatefulSet,
    );
    let work = tempfile::tempdir().unwrap();
    let (dir_a, dir_b): (PathBuf, PathBuf) = (work.path().join("a"), work.path().join("b"));
    let plan_a = kubernetes_plan(&lab, &dir_a);
    let plan_b = kubernetes_plan(&lab, &dir_b);
    // The lab's helpers (status, the clients step) use A's copy.
    lab.state.plan = plan_a.clone();
    lab.zklab(&["load", "start"]);

    // Up to the clients step, which halts for --confirm (exit 4): the
    // Lease is released on that way out too.
    lab.through_clients_moving_the_workload();
    assert_eq!(holder(&lab), "", "released when the run stopped");
    assert!(!dir_a.join(".zkmigrate").exists(), "no local state");

    // A: the rest, paused once a peers restart is applied.
    let pause = work.path().join("pause");
    let mut a = step_from(&lab, &dir_a, &plan_a, &FINISH)
        .env("ZKMIGRATE_PAUSE_AT", PAUSE_AT)
        .env("ZKMIGRATE_PAUSE_FILE", &pause)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&format!("A paused at {PAUSE_AT}"), || {
        if let Ok(Some(status)) = a.try_wait() {
            panic!("A ended ({status}) before {PAUSE_AT}");
        }
        pause.exists()
    });
    let a_identity = holder(&lab);
    assert!(
        a_identity.contains(&format!("/pid-{}/", a.id())),
        "the Lease names A: {a_identity}"
    );

    // B, from another directory, while A runs: refused, naming A, and
    // nothing written.
    let before = lab.kubectl_json(&["get", "configmap", &object(&lab), "-n", "zookeeper"]);
    let out = step_from(&lab, &dir_b, &plan_b, &FINISH).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let message = stderr(&out);
    eprintln!("B while A runs: {message}");
    assert!(message.contains(&a_identity), "{message}");
    assert!(message.contains(", expires "), "live: {message}");
    let after = lab.kubectl_json(&["get", "configmap", &object(&lab), "-n", "zookeeper"]);
    assert_eq!(
        before["metadata"]["resourceVersion"], after["metadata"]["resourceVersion"],
        "B wrote nothing"
    );
    assert!(!dir_b.join(".zkmigrate").exists(), "no local state");

    // `status` from B's machine reads the ConfigMap without the Lease,
    // while A runs.
    let mut status = lab.command(&["status", "-f", &plan_b, "-o", "json"]);
    let out = status.current_dir(&dir_b).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["journal"]["backend"], "kubernetes", "{report}");
    assert_eq!(report["journal"]["exists"], true, "{report}");
    let peers = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "peers")
        .cloned()
        .unwrap();
    assert_eq!(peers["status"], "running", "{report}");
    assert_eq!(holder(&lab), a_identity, "status took nothing");

    // A dies mid-run: its Lease stays until it expires.
    a.kill().unwrap(); // SIGKILL (ip netns exec and env exec into zkmigrate)
    a.wait().unwrap();
    std::fs::remove_file(&pause).unwrap();
    assert_eq!(holder(&lab), a_identity);
    assert!(
        journal(&lab)["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["status"] == "running"),
        "A was killed inside a step"
    );

    // B without --steal-lease while the Lease is live: refused (when it
    // could not have expired before B read it).
    let expiry = lease_expiry(&lab);
    let started = SystemTime::now();
    let out = step_from(&lab, &dir_b, &plan_b, &FINISH).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let message = stderr(&out);
    assert!(message.contains(&a_identity), "{message}");
    assert!(
        started < expiry,
        "the Lease was live when B started (expiry {expiry:?})"
    );
    eprintln!("B after A was killed: {message}");
    if SystemTime::now() < expiry {
        assert!(message.contains(", expires "), "live: {message}");
    }

    // Expired (by the Lease's own fields): still refused without
    // --steal-lease, and told to use it.
    wait_for("A's Lease expired", || {
        SystemTime::now() > lease_expiry(&lab)
    });
    let out = step_from(&lab, &dir_b, &plan_b, &FINISH).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let message = stderr(&out);
    eprintln!("B once the Lease expired: {message}");
    assert!(message.contains(&a_identity), "{message}");
    assert!(message.contains(", expired "), "{message}");
    assert!(message.contains("--steal-lease"), "{message}");
    assert_eq!(holder(&lab), a_identity, "a refusal changes nothing");
    let transitions = lease(&lab)["spec"]["leaseTransitions"]
        .as_i64()
        .unwrap_or(0);

    // B with --resume --steal-lease takes over and completes.
    let mut args = FINISH.to_vec();
    args.push("--steal-lease");
    let out = step_from(&lab, &dir_b, &plan_b, &args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let taken = lease(&lab);
    assert_eq!(
        taken["spec"]["leaseTransitions"].as_i64(),
        Some(transitions + 1)
    );
    assert_eq!(holder(&lab), "", "released at the end");

    lab.assert_migrated();
    let report = lab.final_report();
    assert_eq!(report["lost"], 0, "{report}");
    let journal = journal(&lab);
    for step in journal["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "done", "{journal}");
    }
    assert!(!dir_b.join(".zkmigrate").exists(), "no local state");
}
