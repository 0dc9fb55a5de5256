//! The whole migration in the lab, real everything (issue 5's first
//! acceptance, issue 6's end-to-end tests): `zkmigrate step --all --yes
//! --confirm clients` from the operator machine, under the workload, for 3
//! and 5 servers, StatefulSet and PerServer targets, with the leader at the
//! lowest and at the highest id when the migration starts. The four cases
//! cover every pair of those choices (servers x target, servers x leader,
//! target x leader). Each ends with every server a Pod with its original
//! myid, host services disabled, no hand-made slice left, `status` all done;
//! and the workload's report: nothing lost, the ephemeral znode kept, no
//! session expired, at most two leader elections; and `kubectl describe
//! svc zk-N` lists an Event for each of that server's actions.

mod common;

use common::{FINISH, Lab, text};
use zklab::topology::Target;

fn name(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id() % 100_000)
}

#[test]
fn three_servers_into_a_statefulset_with_the_leader_at_the_lowest_id() {
    migrate_completely(&name("m3s"), 3, Target::StatefulSet, 1);
}

#[test]
fn three_servers_into_per_server_statefulsets_with_the_leader_at_the_highest_id() {
    migrate_completely(&name("m3p"), 3, Target::PerServer, 3);
}

#[test]
fn five_servers_into_a_statefulset_with_the_leader_at_the_highest_id() {
    migrate_completely(&name("m5s"), 5, Target::StatefulSet, 5);
}

#[test]
fn five_servers_into_per_server_statefulsets_with_the_leader_at_the_lowest_id() {
    migrate_completely(&name("m5p"), 5, Target::PerServer, 1);
}

fn migrate_completely(name: &str, servers: u8, target: Target, leader: u8) {
    let lab = Lab::up_with(name, servers, target);
    lab.zklab(&["fault", "elect", "--server", &leader.to_string()]);
    assert_eq!(lab.leader_on_hosts(), Some(leader));
    lab.zklab(&["load", "start"]);

    // The clients step stops for the operator (exit 4), who moves the
    // clients to the Service names, then confirms.
    lab.through_clients_moving_the_workload();
    let out = lab.step(&FINISH);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    lab.assert_migrated();
    // `kubectl describe svc zk-N` tells each server's migration, action
    // by action (issue 7, item 6).
    for id in 1..=servers {
        lab.assert_history(
            id,
            &[
                "StepStarted",
                "ServiceApplied",
                "HostSliceApplied",
                "RouteVerified",
                "ClientsConfirmed",
                "ResolutionVerified",
                "PeersConfigRewritten",
                "PeersServerRestarted",
                "PodConfigApplied",
                "HostFenced",
                "SwitchedToPod",
                "PodStarted",
                "PodSynced",
                "EndStateVerified",
                "StepDone",
            ],
        );
    }
    let report = lab.final_report();
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["ephemeral_survived"], true, "{report}");
    assert_eq!(report["sessions_expired"], 0, "{report}");
    assert!(report["elections"].as_u64().unwrap() <= 2, "{report}");
    eprintln!("{servers} servers, {target:?}, leader {leader}: {report}");
}
