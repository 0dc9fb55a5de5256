//! The harness itself, against real ZooKeeper: ensembles come up with one
//! leader, two run side by side without clashing, a stopped leader is
//! replaced, and dropping an ensemble leaves no JVM behind.

use std::time::Duration;

use zklab::testkit::{Ensemble, EnsembleOptions};

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; reaped children do not. The harness
    // waits for its children, so a stopped server has no entry at all.
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn two_ensembles_side_by_side_each_elect_one_leader() {
    let a = Ensemble::start(3).expect("first ensemble");
    let b = Ensemble::start(3).expect("second ensemble");
    assert_ne!(a.server(1).addr, b.server(1).addr, "blocks must differ");
    for ens in [&a, &b] {
        let leader = ens.leader().expect("exactly one leader");
        for s in ens.servers() {
            let mode = ens.mode(s.id).expect("serving");
            let expected = if s.id == leader { "leader" } else { "follower" };
            assert_eq!(mode, expected, "server {}", s.id);
            // The server reports the myid the harness wrote.
            let conf = ens.four_letter_word(s.id, "conf").unwrap();
            assert!(conf.contains(&format!("serverId={}", s.id)), "{conf}");
        }
    }
}

#[test]
fn a_stopped_leader_is_replaced_and_drop_stops_every_server() {
    let mut ens = Ensemble::start(3).expect("ensemble");
    let pids: Vec<u32> = ens.servers().iter().filter_map(|s| s.pid()).collect();
    assert_eq!(pids.len(), 3);
    let old = ens.leader().expect("leader");
    ens.stop(old).unwrap();
    assert!(
        ens.four_letter_word(old, "srvr").is_err(),
        "stopped server must not answer"
    );
    let new = ens
        .wait_quorum(Duration::from_secs(30))
        .expect("new quorum");
    assert_ne!(new, old);
    ens.start_server(old).unwrap();
    assert_eq!(
        ens.wait_serving(old, Duration::from_secs(30)).unwrap(),
        "follower"
    );
    let pids: Vec<u32> = ens.servers().iter().filter_map(|s| s.pid()).collect();
    drop(ens);
    for pid in pids {
        assert!(!alive(pid), "server pid {pid} outlived its ensemble");
    }
}

#[test]
fn dynamic_config_ensemble_serves_with_its_server_lines_in_the_dynamic_file() {
    let ens = Ensemble::start_with(EnsembleOptions {
        servers: 3,
        dynamic: true,
        ..EnsembleOptions::default()
    })
    .expect("dynamic ensemble");
    let conf = ens.four_letter_word(1, "conf").unwrap();
    assert!(conf.contains("membership:"), "{conf}");
    assert!(
        conf.contains(&format!(";{}:{}", ens.server(2).addr, ens.client_port())),
        "{conf}"
    );
    let cfg = std::fs::read_to_string(&ens.server(1).config_path).unwrap();
    assert!(cfg.contains("dynamicConfigFile="), "{cfg}");
}
