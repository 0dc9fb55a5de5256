//! The runbook is true (issue 7): in a 3-server lab under the workload,
//! zkmigrate does steps 1-3, then server 1's actions are done BY HAND from
//! the blocks of `zkmigrate runbook` (its peers rewrite and restart, the
//! replace step's step-wide actions and its fence, switch, Pod and sync),
//! each block run as the runbook says (`sh -e`, in the operator machine,
//! the helper file sourced), every `gate` and `verify` block required to
//! exit 0; zkmigrate does the rest. zkmigrate must observe the hand-done
//! actions as already done (its journal says `already: ...`), the end state
//! must be that of a run by `step` alone, and the workload must lose no
//! write.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{FINISH, Lab, text};
use zklab::layout::Machine;
use zklab::topology::Target;
use zkmigrate::runbook::blocks_of;

/// Runs one block of the runbook as a script following it would: `sh -e`
/// on the operator machine, with the lab's kubeconfig, in `dir`.
fn run_block(lab: &Lab, dir: &Path, action: &str, role: &str, body: &str) -> Output {
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.layout.ns(Machine::Ops)])
        .arg("env")
        .arg(format!("KUBECONFIG={}", lab.state.kubeconfig))
        .args(["sh", "-e", "-c", body])
        .current_dir(dir)
        .output()
        .unwrap();
    eprintln!(
        "== {action} {role}: exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every block of `action` but `undo`, in order; each must exit 0.
fn follow(lab: &Lab, dir: &Path, runbook: &str, action: &str) {
    let blocks = blocks_of(runbook, action);
    assert!(
        blocks
            .iter()
            .any(|(role, _)| role == "run" || role == "setup"),
        "{action} has commands in the runbook"
    );
    for (role, body) in blocks.iter().filter(|(role, _)| role != "undo") {
        let out = run_block(lab, dir, action, role, body);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{action} {role}:\n{body}\n{}",
            text(&out)
        );
    }
}

/// The journal's detail of `id` (zkmigrate's note of how it completed).
fn detail(lab: &Lab, id: &str) -> String {
    lab.journal()["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["actions"].as_array().into_iter().flatten())
        .find(|a| a["id"] == id)
        .and_then(|a| a["detail"].as_str().map(String::from))
        .unwrap_or_default()
}

/// The replace step's actions done by hand: the step-wide ones, then
/// server 1 from fence to synced.
const REPLACE_BY_HAND: [&str; 7] = [
    "replace/ordinals",
    "replace/pod-config",
    "replace/pdb",
    "replace/fence/1",
    "replace/switch/1",
    "replace/pod/1",
    "replace/synced/1",
];

#[test]
fn server_1_migrated_by_hand_from_the_runbook_then_zkmigrate_finishes() {
    let name = format!("rbk{}", std::process::id() % 100_000);
    let lab = Lab::up(&name, Target::StatefulSet);
    // Server 3 leads: server 1 is a follower, taken first in both steps
    // and pinned at ordinal 0.
    lab.zklab(&["fault", "elect", "--server", "3"]);
    assert_eq!(lab.leader_on_hosts(), Some(3));
    lab.zklab(&["load", "start"]);

    // Steps 1-3 by zkmigrate, the workload moved to the Service names.
    lab.through_clients_moving_the_workload();
    let out = lab.step(&[
        "--until",
        "clients",
        "--resume",
        "--yes",
        "--confirm",
        "clients",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let plan = lab.plan();
    let out = lab.zkmigrate(&["runbook", "-f", &plan]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let runbook = String::from_utf8(out.stdout).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("runbook.md"), &runbook).unwrap();

    follow(&lab, dir.path(), &runbook, "setup");
    // peers: the resolution check, then server 1's rewrite and restart.
    for action in ["peers/resolve", "peers/rewrite/1", "peers/restart/1"] {
        follow(&lab, dir.path(), &runbook, action);
    }
    let out = lab.step(&["--until", "peers", "--resume", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for id in ["peers/rewrite/1", "peers/restart/1"] {
        let d = detail(&lab, id);
        assert!(
            d.starts_with("already: "),
            "{id} observed as done by hand: {d:?}"
        );
    }

    // replace: the step-wide actions, then server 1 from fence to synced.
    for action in REPLACE_BY_HAND {
        follow(&lab, dir.path(), &runbook, action);
    }
    let out = lab.step(&FINISH);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for id in REPLACE_BY_HAND {
        let d = detail(&lab, id);
        assert!(
            d.starts_with("already: "),
            "{id} observed as done by hand: {d:?}"
        );
    }

    lab.assert_migrated();
    let report = lab.final_report();
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["ephemeral_survived"], true, "{report}");
    assert_eq!(report["sessions_expired"], 0, "{report}");
    eprintln!("runbook by hand for server 1, zkmigrate for the rest: {report}");
}
