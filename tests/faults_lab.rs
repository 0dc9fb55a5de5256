//! Faults during a migration (issue 6): a host whose ZooKeeper does not
//! come back after the peers restart, a Pod that never becomes ready, a
//! follower partitioned while the gate waits for sync, the API server
//! failing (500, 429, conflicts) for a while and for longer, an ssh
//! connection dropped in the middle of an action. In each, zkmigrate halts
//! or retries as DESIGN section 2 says, the quorum is kept, no acknowledged
//! write is lost, and resume or rollback then succeeds.
//!
//! The faults land at a chosen point with the `failpoints` feature's pause
//! (src/failpoint.rs): zkmigrate stops at a journaled boundary, the test
//! injects the fault, zkmigrate goes on.

mod common;

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{FINISH, Lab, text};
use zklab::topology::Target;

fn name(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id() % 100_000)
}

/// Runs `zkmigrate step -f PLAN ARGS` paused at `boundary`; while it is
/// paused, runs `fault`; then lets it go on. Returns its output.
fn step_with_fault_at(lab: &Lab, boundary: &str, args: &[&str], fault: impl FnOnce()) -> Output {
    let plan = lab.plan();
    let pause = lab.layout.root.join("pause");
    let mut all = vec!["step", "-f", &plan];
    all.extend_from_slice(args);
    let child = lab
        .command_logging("info", &all)
        .env("ZKMIGRATE_PAUSE_AT", boundary)
        .env("ZKMIGRATE_PAUSE_FILE", &pause)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !pause.exists() {
        assert!(
            Instant::now() < deadline,
            "zkmigrate never reached {boundary}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    fault();
    std::fs::remove_file(&pause).unwrap();
    child.wait_with_output().unwrap()
}

/// The servers on hosts that serve now (leader or follower), by `srvr`.
fn serving_hosts(lab: &Lab) -> Vec<u8> {
    (1..=lab.state.servers)
        .filter(|&k| {
            lab.srvr_on_host(k)
                .is_some_and(|s| s.contains("Mode: leader") || s.contains("Mode: follower"))
        })
        .collect()
}

fn assert_migrated_and_nothing_lost(lab: &Lab) {
    lab.assert_migrated();
    let report = lab.final_report();
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["ephemeral_survived"], true, "{report}");
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A lab with server 3 leading (so `peers` restarts 1, then 2, then 3),
/// the workload running, the clients moved to the Service names.
fn lab_through_clients(prefix: &str, target: Target) -> Lab {
    let lab = Lab::up(&name(prefix), target);
    lab.zklab(&["fault", "elect", "--server", "3"]);
    lab.zklab(&["load", "start"]);
    lab.through_clients_moving_the_workload();
    lab
}

#[test]
fn a_host_that_does_not_come_back_after_its_restart_halts_the_migration_then_it_resumes() {
    let lab = lab_through_clients("fh", Target::StatefulSet);
    lab.zklab(&["fault", "break-start", "host1"]);

    let out = lab.step(&FINISH);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("failed peers/restart/1"), "{err}");
    assert!(
        err.contains("--resume") && err.contains("rollback"),
        "{err}"
    );
    // Stopped at server 1: no other server was touched, and those two
    // still make a quorum.
    let touched: Vec<String> = lab
        .actions_with("done")
        .into_iter()
        .chain(lab.actions_with("intent"))
        .filter(|a| {
            (a.starts_with("peers/rewrite/") || a.starts_with("peers/restart/"))
                && !a.ends_with("/1")
        })
        .collect();
    assert_eq!(touched, Vec::<String>::new());
    assert_eq!(serving_hosts(&lab), vec![2, 3]);

    lab.zklab(&["fault", "fix-start", "host1"]);
    let out = lab.step(&FINISH);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_migrated_and_nothing_lost(&lab);
}

#[test]
fn a_pod_that_never_becomes_ready_halts_the_migration_and_rollback_restores_the_host() {
    let lab = lab_through_clients("fi", Target::PerServer);

    // Server 1's host is fenced and its Service switched; right before its
    // Pod is created, the registry loses the image (the preflight's probe
    // Pod pulled it fine: a plan with a bad image stops there).
    let out = step_with_fault_at(&lab, "replace/pod/1@intent", &FINISH, || {
        lab.zklab(&["fault", "image", "zookeeper:3.8"]);
    });
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("rollback"), "{err}");
    // Server 1 was fenced for its Pod, which never came: the other two
    // keep the quorum, and no other host was touched.
    assert_eq!(serving_hosts(&lab), vec![2, 3]);
    assert!(
        lab.actions_with("done")
            .iter()
            .all(|a| !a.starts_with("replace/fence/2") && !a.starts_with("replace/fence/3")),
        "{:?}",
        lab.actions_with("done")
    );

    let rolled = lab.zkmigrate(&["rollback", "-f", &lab.plan(), "--to", "peers", "--yes"]);
    assert_eq!(rolled.status.code(), Some(0), "{}", text(&rolled));
    assert_eq!(serving_hosts(&lab), vec![1, 2, 3]);
    let enabled = lab.on_host(1, &["/usr/local/sbin/zookeeper-service", "is-enabled"]);
    assert_eq!(String::from_utf8_lossy(&enabled.stdout).trim(), "enabled");
    let report = lab.final_report();
    assert_eq!(report["lost"], 0, "{report}");
}

#[test]
fn a_follower_partitioned_while_the_gate_waits_for_sync_halts_with_the_quorum_kept() {
    let lab = lab_through_clients("fp", Target::StatefulSet);

    // Server 1 has just been restarted; before it is seen synced, its
    // fellow follower 2 is cut off.
    let out = step_with_fault_at(&lab, "peers/restart/1@applied", &FINISH, || {
        lab.zklab(&["fault", "partition", "host2"]);
    });
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("server 2"), "{err}");
    assert!(err.contains("zk_synced_followers"), "{err}");
    // Servers 1 and 3 keep the quorum; nothing of server 2 or 3 was done.
    let serving = serving_hosts(&lab);
    assert!(serving.contains(&1) && serving.contains(&3), "{serving:?}");
    assert!(
        lab.actions_with("done")
            .iter()
            .all(|a| !a.starts_with("peers/restart/2") && !a.starts_with("peers/restart/3")),
        "{:?}",
        lab.actions_with("done")
    );

    lab.zklab(&["fault", "heal", "host2"]);
    let out = lab.step(&FINISH);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_migrated_and_nothing_lost(&lab);
}

#[test]
fn api_server_failures_are_retried_and_a_long_outage_halts_then_resumes() {
    let lab = Lab::up(&name("fa"), Target::StatefulSet);
    lab.zklab(&["load", "start"]);

    // 500s for a few seconds: preflight's requests are retried through them.
    lab.zklab(&["fault", "api", "--status", "500", "--for", "4"]);
    let out = lab.step(&["--until", "preflight", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stderr(&out).contains("500"), "{}", text(&out));

    // An outage longer than the retry budget, in the middle of the
    // services step: it stops with the API's words and how to go on.
    let out = step_with_fault_at(
        &lab,
        "services/service/2@intent",
        &["--until", "services", "--yes"],
        || {
            lab.zklab(&["fault", "api", "--status", "503", "--for", "300"]);
        },
    );
    lab.zklab(&["fault", "api", "--clear"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("503") && err.contains("zk-2"), "{err}");
    assert_eq!(serving_hosts(&lab), vec![1, 2, 3]);

    // Resumed under throttling (429 on every other request): retried.
    lab.zklab(&[
        "fault", "api", "--status", "429", "--every", "2", "--for", "600",
    ]);
    let out = lab.step(&["--until", "clients", "--yes", "--resume"]);
    lab.zklab(&["fault", "api", "--clear"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(stderr(&out).contains("429"), "{}", text(&out));
    lab.move_the_workload_to_the_services();

    // Optimistic-concurrency conflicts on every other write while the
    // rest runs: sent again.
    lab.zklab(&[
        "fault", "api", "--status", "409", "--every", "2", "--verbs", "patch", "--for", "600",
    ]);
    let out = lab.step(&FINISH);
    lab.zklab(&["fault", "api", "--clear"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stderr(&out).contains("409"), "{}", text(&out));
    assert_migrated_and_nothing_lost(&lab);
}

#[test]
fn an_ssh_connection_dropped_in_the_middle_of_an_action_is_reopened() {
    let lab = lab_through_clients("fs", Target::PerServer);

    // Rewriting host 1's zoo.cfg has begun (read, backed up) when every
    // ssh connection to host 1 drops; the action goes on over a new one.
    let point = "host/1/write /etc/zookeeper/conf/zoo.cfg";
    let out = step_with_fault_at(&lab, point, &FINISH, || {
        let dropped = lab.zklab(&["fault", "drop-ssh", "host1"]);
        assert!(!dropped.starts_with("host1: 0 "), "{dropped}");
    });
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out).contains("ssh master gone; reconnecting"),
        "{}",
        text(&out)
    );
    assert_migrated_and_nothing_lost(&lab);
}
