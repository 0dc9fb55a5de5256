//! zkmigrate killed outright (SIGKILL) in the middle of `peers` and of
//! `replace`, then `step --resume`: the migration completes with the same
//! end state and nothing lost (issue 5's second acceptance). The kill lands
//! right after the journal records an action's intent, i.e. while the action
//! runs: the resumed loop must re-observe the world, not trust the journal.

mod common;

use common::{FINISH, Lab, text};
use zklab::topology::Target;

/// Starts `step --all` and SIGKILLs it once `action` is journaled as
/// intended (running).
fn kill_during(lab: &Lab, action: &str) {
    lab.kill_step_once(&format!("{action} started"), |lab| {
        lab.actions_with("intent")
            .iter()
            .any(|a| a == action)
            .then_some(())
    });
}

fn migrate_with_a_kill_during(name: &str, action: &str) {
    let lab = Lab::up(name, Target::StatefulSet);
    let plan = lab.plan();
    lab.zklab(&["load", "start"]);
    lab.through_clients_moving_the_workload();

    kill_during(&lab, action);

    // Without --resume, the interrupted step is refused.
    let out = lab.zkmigrate(&["step", "-f", &plan, "--all", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--resume"),
        "{}",
        text(&out)
    );

    let out = lab.step(&FINISH);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The same end state as an uninterrupted run.
    lab.assert_migrated();
    let report = lab.final_report();
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
