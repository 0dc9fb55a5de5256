//! Predicate tests on hand-built snapshots: each builds the ensemble state a
//! gate must recognise (quorum lost, two leaders, an unsynced follower,
//! pending syncs, lag) and asserts the verdict and the reported reasons.

use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::observe::conf::{Conf, Role, parse_server_line};
use crate::observe::ensemble::{
    EnsembleObservation, FailureKind, ObservationFailure, ServerEntry, ServerObservation, Source,
};
use crate::observe::mntr::Mntr;
use crate::observe::srvr::{Latency, Mode, Srvr};
use crate::observe::zxid::{Version, Zxid};

fn srvr(mode: Mode, zxid: Zxid) -> Srvr {
    Srvr {
        version: Version::parse("3.8.0").unwrap(),
        latency: Latency::default(),
        received: 0,
        sent: 0,
        connections: 1,
        outstanding: 0,
        zxid,
        mode,
        node_count: 5,
        proposal_sizes: None,
        read_only: false,
    }
}

fn leader_mntr(synced: u64, pending: u64) -> Mntr {
    let mut m = Mntr::default();
    for (k, v) in [
        ("zk_server_state", "leader".to_string()),
        ("zk_synced_followers", synced.to_string()),
        ("zk_pending_syncs", pending.to_string()),
    ] {
        m.entries.insert(k.to_string(), v);
    }
    m
}

fn serving(id: u64, mode: Mode, zxid: Zxid, mntr: Option<Mntr>) -> ServerEntry {
    ServerEntry {
        id,
        address: format!("10.0.0.{id}:2181"),
        outcome: Ok(ServerObservation {
            srvr: srvr(mode, zxid),
            source: Source::FourLetterWord,
            mntr,
            conf: None,
            problems: vec![],
            observed_at: SystemTime::UNIX_EPOCH,
        }),
    }
}

fn down(id: u64, kind: FailureKind) -> ServerEntry {
    ServerEntry {
        id,
        address: format!("10.0.0.{id}:2181"),
        outcome: Err(ObservationFailure {
            kind,
            message: format!("failed to connect to 10.0.0.{id}:2181: connection refused"),
        }),
    }
}

fn ensemble(servers: Vec<ServerEntry>) -> EnsembleObservation {
    EnsembleObservation {
        servers,
        observed_at: SystemTime::UNIX_EPOCH,
    }
}

fn z(epoch: u32, counter: u32) -> Zxid {
    Zxid::from_parts(epoch, counter)
}

/// Three voters, 3 leads, all synced, followers in the previous epoch as a
/// real ensemble looks right after its election (fixture zk-3.8.0).
fn healthy() -> EnsembleObservation {
    ensemble(vec![
        serving(1, Mode::Follower, z(0, 0), None),
        serving(2, Mode::Follower, z(0, 0), None),
        serving(3, Mode::Leader, z(1, 0), Some(leader_mntr(2, 0))),
    ])
}

#[test]
fn healthy_ensemble_passes_the_gate() {
    let obs = healthy();
    assert_eq!(obs.voters(), vec![1, 2, 3]);
    assert!(obs.has_quorum());
    assert_eq!(obs.leader_verdict(), LeaderVerdict::One(3));
    assert!(obs.all_voters_synced());
    assert_eq!(
        obs.zxid_lag(1),
        Some(0),
        "previous epoch, nothing written since"
    );
    assert_eq!(obs.max_lag(), Some(0));
    assert_eq!(obs.epoch(), Some(1));
    let report = quorum_gate(0).report(&obs);
    assert!(report.is_healthy(), "{report}");
    assert!(quorum_without(1).holds(&obs));
    assert!(quorum_without(3).holds(&obs));
}

#[test]
fn quorum_lost() {
    let obs = ensemble(vec![
        down(1, FailureKind::Unreachable),
        down(2, FailureKind::NotServing),
        serving(3, Mode::Follower, z(1, 0), None),
    ]);
    assert!(!obs.has_quorum());
    assert_eq!(obs.leader_verdict(), LeaderVerdict::None);
    assert!(!obs.all_voters_synced());
    let report = quorum_gate(0).report(&obs);
    let checks: Vec<(Check, Option<u64>)> = report
        .failures
        .iter()
        .map(|f| (f.check, f.server))
        .collect();
    assert_eq!(
        checks,
        vec![
            (Check::VoterServing, Some(1)),
            (Check::VoterServing, Some(2)),
            (Check::Quorum, None),
            (Check::OneLeader, None),
            (Check::VotersSynced, None),
        ]
    );
    let text = report.to_string();
    assert!(text.contains("server 1: observed unreachable"), "{text}");
    assert!(text.contains("server 2: observed not serving"), "{text}");
    assert!(text.contains("1 of 3 voters serving [3]"), "{text}");
}

#[test]
fn one_down_is_still_a_quorum_but_not_two() {
    let obs = ensemble(vec![
        down(1, FailureKind::Unreachable),
        serving(2, Mode::Follower, z(1, 0), None),
        serving(3, Mode::Leader, z(1, 0), Some(leader_mntr(1, 0))),
    ]);
    assert!(obs.has_quorum());
    assert!(
        !obs.all_voters_synced(),
        "leader sees 1 synced of 2 followers"
    );
    let f = all_voters_synced().failures(&obs);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].observed, "zk_synced_followers 1");
    assert_eq!(f[0].expected, "zk_synced_followers 2 (voters - 1)");
    assert!(
        !quorum_without(2).holds(&obs),
        "taking 2 down too would lose quorum"
    );
}

#[test]
fn pending_syncs_and_missing_leader_mntr() {
    let obs = ensemble(vec![
        serving(1, Mode::Follower, z(2, 5), None),
        serving(2, Mode::Follower, z(2, 5), None),
        serving(3, Mode::Leader, z(2, 5), Some(leader_mntr(2, 1))),
    ]);
    let f = all_voters_synced().failures(&obs);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].observed, "zk_pending_syncs 1");
    let mut obs = obs;
    if let Ok(o) = &mut obs.servers[2].outcome {
        o.mntr = None;
    }
    let f = all_voters_synced().failures(&obs);
    assert_eq!(f[0].observed, "no mntr from the leader");
}

#[test]
fn lag_counts_transactions_not_epochs() {
    let obs = ensemble(vec![
        serving(1, Mode::Follower, z(4, 90), None),
        serving(2, Mode::Follower, z(3, 7000), None),
        serving(3, Mode::Leader, z(4, 100), Some(leader_mntr(2, 0))),
    ]);
    assert_eq!(obs.zxid_lag(1), Some(10));
    assert_eq!(
        obs.zxid_lag(2),
        Some(100),
        "an older epoch misses this epoch's transactions"
    );
    assert_eq!(obs.zxid_lag(3), Some(0));
    assert_eq!(obs.max_lag(), Some(100));
    assert_eq!(lag(z(4, 100), z(4, 120)), 0, "ahead is not behind");
    assert_eq!(lag(z(4, 100), z(5, 0)), 0);
    let f = lag_within(10).failures(&obs);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].server, Some(2));
    assert_eq!(
        f[0].observed,
        "zxid 0x300001b58, 100 behind the leader's 0x400000064"
    );
    assert_eq!(lag_within(0).failures(&obs).len(), 2);
}

#[test]
fn two_leaders_the_newer_epoch_wins() {
    let obs = ensemble(vec![
        serving(1, Mode::Leader, z(4, 100), Some(leader_mntr(0, 0))),
        serving(2, Mode::Follower, z(4, 100), None),
        serving(3, Mode::Leader, z(5, 0), Some(leader_mntr(1, 0))),
    ]);
    assert_eq!(
        obs.leader_verdict(),
        LeaderVerdict::Resolved {
            leader: 3,
            stale: vec![1]
        }
    );
    assert_eq!(obs.leader(), Some(3));
    assert_eq!(obs.epoch(), Some(5));
    let f = exactly_one_leader().failures(&obs);
    assert_eq!(f[0].observed, "leader 3, and stale claimants [1]");
}

#[test]
fn two_leaders_in_one_epoch_or_without_quorum_conflict() {
    let obs = ensemble(vec![
        serving(1, Mode::Leader, z(5, 1), None),
        serving(2, Mode::Follower, z(5, 1), None),
        serving(3, Mode::Leader, z(5, 2), None),
    ]);
    assert!(matches!(
        obs.leader_verdict(),
        LeaderVerdict::Conflict { .. }
    ));
    assert_eq!(obs.leader(), None);

    let obs = ensemble(vec![
        serving(1, Mode::Leader, z(4, 1), None),
        down(2, FailureKind::Unreachable),
        serving(3, Mode::Leader, z(5, 0), None),
    ]);
    let LeaderVerdict::Conflict { reason, claimants } = obs.leader_verdict() else {
        panic!("{:?}", obs.leader_verdict())
    };
    assert_eq!(claimants, vec![(3, z(5, 0)), (1, z(4, 1))]);
    assert_eq!(reason, "only 1 of 3 voters back the newest claimant");
}

#[test]
fn a_lone_leader_behind_a_newer_epoch_is_stale() {
    let obs = ensemble(vec![
        serving(1, Mode::Leader, z(4, 1), None),
        serving(2, Mode::Follower, z(5, 3), None),
        down(3, FailureKind::Unreachable),
    ]);
    assert!(matches!(
        obs.leader_verdict(),
        LeaderVerdict::Conflict { .. }
    ));
}

#[test]
fn observers_are_not_voters() {
    let conf = Conf {
        servers: (1..=3)
            .map(|i| parse_server_line(i, &format!("10.0.0.{i}:2888:3888:participant")).unwrap())
            .chain([parse_server_line(4, "10.0.0.4:2888:3888:observer").unwrap()])
            .collect(),
        ..Conf::default()
    };
    let mut obs = ensemble(vec![
        serving(1, Mode::Follower, z(1, 0), None),
        serving(2, Mode::Follower, z(1, 0), None),
        serving(3, Mode::Leader, z(1, 0), Some(leader_mntr(2, 0))),
        down(4, FailureKind::Unreachable),
    ]);
    if let Ok(o) = &mut obs.servers[2].outcome {
        o.conf = Some(conf);
    }
    assert!(obs.is_observer(4));
    assert_eq!(obs.voters(), vec![1, 2, 3]);
    assert!(obs.all_voters_synced());
    assert!(
        quorum_gate(0).holds(&obs),
        "{}",
        quorum_gate(0).report(&obs)
    );
    assert_eq!(
        Role::Observer,
        obs.observation(3)
            .unwrap()
            .conf
            .as_ref()
            .unwrap()
            .server(4)
            .unwrap()
            .role
    );
}

#[test]
fn standalone_is_not_serving_as_a_voter() {
    let obs = ensemble(vec![
        serving(1, Mode::Standalone, z(0, 3), None),
        serving(2, Mode::Follower, z(1, 0), None),
        serving(3, Mode::Leader, z(1, 0), Some(leader_mntr(1, 0))),
    ]);
    let f = every_voter_serving().failures(&obs);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].server, f[0].observed.as_str()),
        (Some(1), "mode standalone")
    );
}

#[test]
fn grace_waits_out_a_short_overlap() {
    let t0 = Instant::now();
    let mut g = LeaderGrace::new(Duration::from_secs(2));
    let contested = LeaderVerdict::Resolved {
        leader: 3,
        stale: vec![1],
    };
    assert_eq!(
        g.judge(contested.clone(), t0),
        LeaderJudgement::Settling {
            remaining: Duration::from_secs(2)
        }
    );
    assert_eq!(
        g.judge(contested.clone(), t0 + Duration::from_millis(1500)),
        LeaderJudgement::Settling {
            remaining: Duration::from_millis(500)
        }
    );
    assert_eq!(
        g.judge(LeaderVerdict::One(3), t0 + Duration::from_secs(3)),
        LeaderJudgement::Leader(3)
    );
    // the clock restarts after agreement
    let t1 = t0 + Duration::from_secs(10);
    assert!(matches!(
        g.judge(contested.clone(), t1),
        LeaderJudgement::Settling { .. }
    ));
    assert_eq!(
        g.judge(contested.clone(), t1 + Duration::from_secs(2)),
        LeaderJudgement::Conflict(contested)
    );
    assert_eq!(g.judge(LeaderVerdict::None, t1), LeaderJudgement::NoLeader);
}

#[test]
fn conditions_compose_from_closures() {
    let never_leader_3 = |obs: &EnsembleObservation| {
        if obs.leader() == Some(3) {
            vec![Failure {
                check: Check::OneLeader,
                server: Some(3),
                observed: "leader 3".into(),
                expected: "any leader but 3".into(),
            }]
        } else {
            vec![]
        }
    };
    let gate = has_quorum().and(never_leader_3);
    let report = gate.report(&healthy());
    assert_eq!(report.failures.len(), 1);
    assert_eq!(
        report.to_string(),
        "server 3: observed leader 3; expected any leader but 3"
    );
}
