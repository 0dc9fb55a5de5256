//! The runbook's layout and logic, from a plan and computed plans (pure).

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::*;
use crate::engine::build::{self, MigrationPlan};
use crate::engine::world::World;
use crate::observe::EnsembleObservation;
use crate::observe::ensemble::{ServerEntry, ServerObservation, Source};
use crate::observe::srvr::{Latency, Mode, Srvr};
use crate::observe::zxid::{Version, Zxid};
use crate::plan::{ServerId, testing};

fn id(n: u8) -> ServerId {
    ServerId::try_from(n).unwrap()
}

fn computed(plan: &ValidatedPlan) -> MigrationPlan {
    build::build(
        plan,
        &World {
            ensemble: EnsembleObservation {
                servers: Vec::new(),
                observed_at: SystemTime::UNIX_EPOCH,
            },
            hosts: BTreeMap::new(),
        },
    )
}

/// The action ids of the runbook's `<!-- action: ID -->` markers, in order.
fn action_order(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix("<!-- action: "))
        .map(|l| l.trim_end_matches(" -->").to_string())
        .collect()
}

#[test]
fn every_action_is_there_in_the_engines_order() {
    let plan = testing::three_servers("StatefulSet");
    let m = computed(&plan);
    let md = render(&plan, "plan.yaml", &m);
    let engine: Vec<String> = m
        .steps
        .iter()
        .flat_map(|s| s.actions.iter().map(|a| a.id.clone()))
        .collect();
    assert_eq!(action_order(&md), engine);
}

/// A serving server as `srvr` shows it (leader or follower).
fn serving(id: u64, mode: Mode) -> ServerEntry {
    ServerEntry {
        id,
        address: format!("10.0.0.1{id}:2181"),
        outcome: Ok(ServerObservation {
            srvr: Srvr {
                version: Version::parse("3.8.4").expect("a version"),
                latency: Latency::default(),
                received: 0,
                sent: 0,
                connections: 1,
                outstanding: 0,
                zxid: Zxid::from_parts(1, 5),
                mode,
                node_count: 5,
                proposal_sizes: None,
                read_only: false,
            },
            source: Source::FourLetterWord,
            mntr: None,
            conf: None,
            problems: vec![],
            observed_at: SystemTime::UNIX_EPOCH,
        }),
    }
}

#[test]
fn the_leader_goes_last_when_it_is_known() {
    // build() with an observation where server 1 leads: the runbook keeps
    // the engine's order, followers first and the leader last.
    let plan = testing::three_servers("PerServer");
    let world = World {
        ensemble: EnsembleObservation {
            servers: vec![
                serving(1, Mode::Leader),
                serving(2, Mode::Follower),
                serving(3, Mode::Follower),
            ],
            observed_at: SystemTime::UNIX_EPOCH,
        },
        hosts: BTreeMap::new(),
    };
    let m = build::build(&plan, &world);
    assert_eq!(m.leader, Some(id(1)));
    let md = render(&plan, "plan.yaml", &m);
    let disruptive: Vec<String> = action_order(&md)
        .into_iter()
        .filter(|a| a.starts_with("peers/restart/") || a.starts_with("replace/fence/"))
        .collect();
    assert_eq!(
        disruptive,
        [
            "peers/restart/2",
            "peers/restart/3",
            "peers/restart/1",
            "replace/fence/2",
            "replace/fence/3",
            "replace/fence/1"
        ]
    );
    assert!(md.contains("server 1 led, so the order is 2, 3, 1"), "{md}");
    assert!(
        md.contains("When this runbook was written server 1 led."),
        "{md}"
    );
}

#[test]
fn without_a_leader_the_runbook_says_how_to_find_it() {
    let plan = testing::three_servers("StatefulSet");
    let md = render(&plan, "plan.yaml", &computed(&plan));
    assert!(md.contains("**followers first, the leader last**"));
    assert!(md.contains("zk_leader"));
    // StatefulSet: the ordinals are pinned with each possible leader last.
    let ordinals = blocks_of(&md, "replace/ordinals");
    let (_, run) = ordinals.iter().find(|(r, _)| r == "run").unwrap();
    assert!(
        run.contains("  1) # ordinals 0..2: servers 2, 3, 1"),
        "{run}"
    );
    assert!(
        run.contains("  3) # ordinals 0..2: servers 1, 2, 3"),
        "{run}"
    );
}

#[test]
fn only_disruptive_actions_have_a_gate() {
    let plan = testing::three_servers("StatefulSet");
    let m = computed(&plan);
    let md = render(&plan, "plan.yaml", &m);
    for step in &m.steps {
        for a in &step.actions {
            let gated = blocks_of(&md, &a.id).iter().any(|(r, _)| r == "gate");
            assert_eq!(gated, a.action.disrupts(), "{}", a.id);
        }
    }
    let gate = blocks_of(&md, "replace/fence/2");
    assert_eq!(gate[0].0, "gate", "the gate comes before the run");
    assert!(
        gate[0].1.contains("zk_await 120 zk_quorum_ok"),
        "{}",
        gate[0].1
    );
}

#[test]
fn a_servers_blocks_can_be_picked_out() {
    let plan = testing::three_servers("StatefulSet");
    let md = render(&plan, "plan.yaml", &computed(&plan));
    let restart = blocks_of(&md, "peers/restart/2");
    let roles: Vec<&str> = restart.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(roles, ["gate", "run", "verify", "undo"]);
    assert_eq!(restart[1].1, "ip netns exec h2 sh -c c\n");
    // Not server 2's other actions, nor server 12's if there were one.
    assert!(blocks_of(&md, "peers/restart/").is_empty());
}

#[test]
fn the_commands_parse_as_shell() {
    // Every block is valid POSIX sh (syntax only: `sh -n`).
    for kind in ["StatefulSet", "PerServer"] {
        let plan = testing::three_servers(kind);
        let m = computed(&plan);
        let md = render(&plan, "plan.yaml", &m);
        let mut ids: Vec<String> = vec!["setup".into()];
        ids.extend(
            m.steps
                .iter()
                .flat_map(|s| s.actions.iter().map(|a| a.id.clone())),
        );
        for id in ids {
            for (role, body) in blocks_of(&md, &id) {
                let out = std::process::Command::new("sh")
                    .args(["-n", "-c", &body])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{kind} {id} {role}: {}\n{body}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

#[test]
fn the_helpers_parse_and_judge_as_the_gate_does() {
    let plan = testing::three_servers("StatefulSet");
    let sh = Shell::new(&plan, "plan.yaml");
    let helpers = sh.helpers();
    let out = std::process::Command::new("sh")
        .args(["-n", "-c", &helpers])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // zk_quorum_ok against canned replies: the function is real shell;
    // `nc` and `zk_addr` stand in for three servers and the cluster.
    let judge = |leader_synced: &str, zxid3: &str| {
        let script = format!(
            r#"{helpers}
zk_addr() {{ echo "10.0.0.1$1"; }}
# nc stands in for the servers: the word on stdin, the address in $3.
nc() {{
  case "$3:$(cat)" in
    10.0.0.11:srvr) printf 'Zookeeper version: 3.8.4\nZxid: 0x100000005\nMode: leader\n' ;;
    10.0.0.12:srvr) printf 'Zxid: 0x100000005\nMode: follower\n' ;;
    10.0.0.13:srvr) printf 'Zxid: {zxid3}\nMode: follower\n' ;;
    10.0.0.11:mntr) printf 'zk_synced_followers\t{leader_synced}\nzk_pending_syncs\t0\n' ;;
  esac
}}
zk_quorum_ok"#
        );
        std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap()
    };
    let ok = judge("2", "0x100000005");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(
        !judge("1", "0x100000005").status.success(),
        "one follower not synced"
    );
    let lag = judge("2", "0x100000004");
    assert!(!lag.status.success());
    assert!(
        String::from_utf8_lossy(&lag.stdout).contains("server 3: Zxid 0x100000004, lag 1 behind"),
        "{}",
        String::from_utf8_lossy(&lag.stdout)
    );
    // A voter that is ahead of the leader's earlier reading is not behind;
    // after an election with no write, the previous epoch is not behind.
    assert!(judge("2", "0x100000009").status.success());
    let script = format!(
        "{helpers}
zk_lag 0x200000000 0x100000007; zk_lag 0x200000003 0x100000007; zk_lag 0x100000005 0x100000002"
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n3\n3\n");
}
