//! The gate's decision on hand-built observations with injected time: when
//! it passes, what counts as progress, which deadline fires, how the leader
//! overlap is waited out, and the operator's message byte for byte.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::observe::ensemble::{
    FailureKind, ObservationFailure, ServerEntry, ServerObservation, Source,
};
use crate::observe::health::Check;
use crate::observe::mntr::Mntr;
use crate::observe::srvr::{Latency, Mode, Srvr};
use crate::observe::zxid::{Version, Zxid};

fn z(epoch: u32, counter: u32) -> Zxid {
    Zxid::from_parts(epoch, counter)
}

fn serving(id: u64, mode: Mode, zxid: Zxid, synced: Option<(u64, u64)>) -> ServerEntry {
    let mntr = synced.map(|(synced, pending)| {
        let mut m = Mntr::default();
        for (k, v) in [
            ("zk_server_state", "leader".to_string()),
            ("zk_synced_followers", synced.to_string()),
            ("zk_pending_syncs", pending.to_string()),
        ] {
            m.entries.insert(k.to_string(), v);
        }
        m
    });
    ServerEntry {
        id,
        address: format!("10.0.0.{id}:2181"),
        outcome: Ok(ServerObservation {
            srvr: Srvr {
                version: Version::parse("3.8.0").expect("a version"),
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
            },
            source: Source::FourLetterWord,
            mntr,
            conf: None,
            problems: vec![],
            observed_at: SystemTime::UNIX_EPOCH,
        }),
    }
}

fn follower(id: u64, zxid: Zxid) -> ServerEntry {
    serving(id, Mode::Follower, zxid, None)
}

fn leader(id: u64, zxid: Zxid, synced: u64, pending: u64) -> ServerEntry {
    serving(id, Mode::Leader, zxid, Some((synced, pending)))
}

fn down(id: u64, kind: FailureKind) -> ServerEntry {
    let message = match kind {
        FailureKind::NotServing => format!(
            "failed to get `srvr` from 10.0.0.{id}:2181: this ZooKeeper instance is not currently serving requests"
        ),
        _ => format!("failed to connect to 10.0.0.{id}:2181: connection refused"),
    };
    ServerEntry {
        id,
        address: format!("10.0.0.{id}:2181"),
        outcome: Err(ObservationFailure { kind, message }),
    }
}

fn obs(servers: Vec<ServerEntry>) -> EnsembleObservation {
    EnsembleObservation {
        servers,
        observed_at: SystemTime::UNIX_EPOCH,
    }
}

fn healthy() -> EnsembleObservation {
    obs(vec![
        follower(1, z(1, 7)),
        follower(2, z(1, 7)),
        leader(3, z(1, 7), 2, 0),
    ])
}

/// Follower 1 stopped; 3 leads and counts one follower synced.
fn one_follower_down(kind: FailureKind) -> EnsembleObservation {
    obs(vec![
        down(1, kind),
        follower(2, z(1, 7)),
        leader(3, z(1, 7), 1, 0),
    ])
}

const DEADLINES: Deadlines = Deadlines {
    sync_timeout: Duration::from_secs(10),
    progress_deadline: Duration::from_secs(2),
    leader_grace: Duration::from_secs(3),
};

fn history(awaited: Awaited, t0: Instant) -> History {
    History::new(awaited, DEADLINES, t0)
}

fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

fn keys(report: &HealthReport) -> Vec<(Check, Option<u64>)> {
    report
        .failures
        .iter()
        .map(|f| (f.check, f.server))
        .collect()
}

#[test]
fn a_healthy_ensemble_passes_at_once() {
    let t0 = Instant::now();
    let mut h = history(Awaited::Gate(GateSpec::before_fencing(1)), t0);
    assert_eq!(judge(&mut h, &healthy(), t0), Verdict::Pass { leader: 3 });
    let mut h = history(Awaited::Synced { server: 2 }, t0);
    assert_eq!(judge(&mut h, &healthy(), t0), Verdict::Pass { leader: 3 });
}

#[test]
fn the_gate_about_another_follower_waits_then_halts_on_the_progress_deadline() {
    let t0 = Instant::now();
    let mut h = history(Awaited::Gate(GateSpec::before_touching(2)), t0);
    let o = one_follower_down(FailureKind::Unreachable);
    let Verdict::Wait {
        report, message, ..
    } = judge(&mut h, &o, t0)
    else {
        panic!("the first look waits");
    };
    assert_eq!(
        keys(&report),
        vec![
            (Check::VoterServing, Some(1)),
            (Check::VotersSynced, Some(3)),
            (Check::QuorumWithout, Some(2)),
        ]
    );
    assert_eq!(message, "server 1: unreachable (+2 more)");
    assert!(matches!(
        judge(&mut h, &o, at(t0, 1999)),
        Verdict::Wait { .. }
    ));
    let Verdict::Halt { report, deadline } = judge(&mut h, &o, at(t0, 2000)) else {
        panic!("no progress for 2 s halts");
    };
    assert_eq!(
        deadline,
        Deadline::ProgressDeadline {
            limit: Duration::from_secs(2)
        }
    );
    assert_eq!(report.failures.len(), 3);
}

#[test]
fn the_gate_about_a_server_that_is_down_asks_every_other_voter_serving_and_synced() {
    // Server 1's restart failed; the operator fixed its host and resumes:
    // restarting it takes nothing more down.
    let t0 = Instant::now();
    for kind in [FailureKind::Unreachable, FailureKind::NotServing] {
        let mut h = history(Awaited::Gate(GateSpec::before_touching(1)), t0);
        assert_eq!(
            judge(&mut h, &one_follower_down(kind), t0),
            Verdict::Pass { leader: 3 }
        );
    }
    // Still: the others must be synced...
    let mut h = history(Awaited::Gate(GateSpec::before_touching(1)), t0);
    let unsynced = obs(vec![
        down(1, FailureKind::Unreachable),
        follower(2, z(1, 7)),
        leader(3, z(1, 7), 0, 1),
    ]);
    let Verdict::Wait { report, .. } = judge(&mut h, &unsynced, t0) else {
        panic!("a follower not synced waits");
    };
    assert!(keys(&report).contains(&(Check::VotersSynced, Some(3))));
    // ...and a second server down is no quorum to touch anything with.
    let mut h = history(Awaited::Gate(GateSpec::before_touching(1)), t0);
    let two_down = obs(vec![
        down(1, FailureKind::Unreachable),
        down(2, FailureKind::Unreachable),
        leader(3, z(1, 7), 0, 0),
    ]);
    assert!(matches!(judge(&mut h, &two_down, t0), Verdict::Wait { .. }));
}

#[test]
fn a_check_clearing_into_a_new_state_is_progress_and_flapping_is_not() {
    let t0 = Instant::now();
    let mut h = history(Awaited::Gate(GateSpec::before_touching(2)), t0);
    let unreachable = one_follower_down(FailureKind::Unreachable);
    let starting = one_follower_down(FailureKind::NotServing);
    judge(&mut h, &unreachable, t0);
    // The process answers: `unreachable` cleared into `not serving`.
    let Verdict::Wait {
        progressed,
        message,
        ..
    } = judge(&mut h, &starting, at(t0, 1500))
    else {
        panic!("waits");
    };
    assert_eq!(
        progressed.as_deref(),
        Some("cleared: VoterServing of server 1 (unreachable)")
    );
    assert_eq!(message, "server 1: not serving yet (+2 more)");
    assert_eq!(h.last_progress(), at(t0, 1500));
    // Back and forth between two states already seen: no progress.
    for (i, o) in [&unreachable, &starting, &unreachable]
        .into_iter()
        .enumerate()
    {
        let t = at(t0, 2000 + 500 * i as u64);
        let Verdict::Wait { progressed, .. } = judge(&mut h, o, t) else {
            panic!("still within the deadline");
        };
        assert_eq!(progressed, None, "flap {i}");
    }
    assert!(matches!(
        judge(&mut h, &starting, at(t0, 3500)),
        Verdict::Halt {
            deadline: Deadline::ProgressDeadline { .. },
            ..
        }
    ));
}

#[test]
fn a_new_low_of_lag_is_progress_an_oscillating_lag_is_not() {
    let t0 = Instant::now();
    let mut h = history(Awaited::Synced { server: 1 }, t0);
    let lagging = |counter| {
        obs(vec![
            follower(1, z(1, counter)),
            follower(2, z(1, 2000)),
            leader(3, z(1, 2000), 2, 0),
        ])
    };
    let Verdict::Wait { message, .. } = judge(&mut h, &lagging(797), t0) else {
        panic!("waits");
    };
    assert_eq!(message, "server 1: zxid lag 1203");
    let progressed = |v: Verdict| match v {
        Verdict::Wait { progressed, .. } => progressed,
        other => panic!("expected a wait, got {other:?}"),
    };
    assert_eq!(
        progressed(judge(&mut h, &lagging(1500), at(t0, 1000))),
        Some("zxid lag 1203 -> 500".to_string())
    );
    assert_eq!(
        progressed(judge(&mut h, &lagging(1400), at(t0, 1500))),
        None
    );
    assert_eq!(
        progressed(judge(&mut h, &lagging(1500), at(t0, 2000))),
        None,
        "back to the floor is not a new low"
    );
    assert!(matches!(
        judge(&mut h, &lagging(1450), at(t0, 3000)),
        Verdict::Halt {
            deadline: Deadline::ProgressDeadline { .. },
            ..
        }
    ));
}

#[test]
fn getting_worse_is_not_progress() {
    let t0 = Instant::now();
    let mut h = history(Awaited::Gate(GateSpec::before_touching(3)), t0);
    judge(&mut h, &one_follower_down(FailureKind::Unreachable), t0);
    let worse = obs(vec![
        down(1, FailureKind::Unreachable),
        down(2, FailureKind::Unreachable),
        follower(3, z(1, 7)),
    ]);
    let Verdict::Wait { progressed, .. } = judge(&mut h, &worse, at(t0, 500)) else {
        panic!("waits");
    };
    assert_eq!(progressed, None);
}

#[test]
fn the_sync_timeout_fires_even_while_progressing() {
    let t0 = Instant::now();
    let mut h = history(Awaited::Synced { server: 1 }, t0);
    let mut last = None;
    for step in 0..=10u32 {
        let o = obs(vec![
            follower(1, z(1, 100 * step)),
            follower(2, z(1, 5000)),
            leader(3, z(1, 5000), 2, 0),
        ]);
        last = Some(judge(&mut h, &o, at(t0, 1000 * u64::from(step))));
    }
    assert!(matches!(
        last,
        Some(Verdict::Halt {
            deadline: Deadline::SyncTimeout { .. },
            ..
        })
    ));
}

#[test]
fn a_short_leader_overlap_is_waited_out_a_long_one_halts() {
    let t0 = Instant::now();
    let mut h = history(Awaited::Gate(GateSpec::before_touching(1)), t0);
    // 3 led epoch 1; 2 leads epoch 2 backed by 1; 3 has not noticed yet.
    let overlap = obs(vec![
        follower(1, z(2, 0)),
        leader(2, z(2, 0), 1, 0),
        leader(3, z(1, 9), 1, 0),
    ]);
    let Verdict::Wait { message, .. } = judge(&mut h, &overlap, t0) else {
        panic!("an overlap is waited out");
    };
    assert!(
        message.starts_with("leadership settling (3s of grace left)"),
        "{message}"
    );
    // Past the progress deadline but within the grace: still waiting.
    assert!(matches!(
        judge(&mut h, &overlap, at(t0, 2500)),
        Verdict::Wait { .. }
    ));
    assert!(matches!(
        judge(&mut h, &overlap, at(t0, 3000)),
        Verdict::Halt {
            deadline: Deadline::LeaderConflict { .. },
            ..
        }
    ));
    // Settled in time: the new leader passes.
    let mut h = history(Awaited::Gate(GateSpec::before_touching(1)), t0);
    judge(&mut h, &overlap, t0);
    let settled = obs(vec![
        follower(1, z(2, 0)),
        leader(2, z(2, 0), 2, 0),
        follower(3, z(1, 9)),
    ]);
    assert_eq!(
        judge(&mut h, &settled, at(t0, 1200)),
        Verdict::Pass { leader: 2 }
    );
}

#[test]
fn before_fencing_every_other_voter_has_the_leaders_zxid() {
    let t0 = Instant::now();
    let spec = GateSpec {
        max_lag: 100,
        ..GateSpec::before_fencing(1)
    };
    let behind = obs(vec![
        follower(1, z(3, 40)),
        follower(2, z(3, 41)),
        leader(3, z(3, 42), 2, 0),
    ]);
    let Verdict::Wait { report, .. } =
        judge(&mut history(Awaited::Gate(spec.clone()), t0), &behind, t0)
    else {
        panic!("a voter one write behind blocks fencing");
    };
    assert_eq!(keys(&report), vec![(Check::Lag, Some(2))]);
    // Without the DESIGN 9 rule, lag 1 is within max_lag.
    let plain = GateSpec {
        require_equal_zxid: false,
        ..spec.clone()
    };
    assert_eq!(
        judge(&mut history(Awaited::Gate(plain), t0), &behind, t0),
        Verdict::Pass { leader: 3 }
    );
    // Right after an election with no write, followers of the old epoch are equal.
    let fresh = obs(vec![
        follower(1, z(3, 42)),
        follower(2, z(3, 42)),
        leader(3, z(4, 0), 2, 0),
    ]);
    assert_eq!(
        judge(&mut history(Awaited::Gate(spec), t0), &fresh, t0),
        Verdict::Pass { leader: 3 }
    );
}

#[test]
fn synced_headlines_follow_the_recovery() {
    let t0 = Instant::now();
    let mut h = history(Awaited::Synced { server: 1 }, t0);
    let message = |h: &mut History, o: &EnsembleObservation, ms| match judge(h, o, at(t0, ms)) {
        Verdict::Wait { message, .. } => message,
        other => panic!("expected a wait, got {other:?}"),
    };
    assert_eq!(
        message(&mut h, &one_follower_down(FailureKind::NotServing), 0),
        "server 1: not serving yet (+1 more)"
    );
    let joining = obs(vec![
        follower(1, z(1, 7)),
        follower(2, z(1, 7)),
        leader(3, z(1, 7), 1, 1),
    ]);
    assert_eq!(
        message(&mut h, &joining, 100),
        "leader: 1 of 2 followers synced, 1 pending syncs (+1 more)"
    );
}

#[test]
fn the_halt_tells_what_was_seen_expected_and_what_to_run() {
    let t0 = Instant::now();
    let awaited = Awaited::Gate(GateSpec::before_touching(2));
    let mut h = history(awaited.clone(), t0);
    let o = one_follower_down(FailureKind::Unreachable);
    judge(&mut h, &o, t0);
    let Verdict::Halt { report, deadline } = judge(&mut h, &o, at(t0, 2100)) else {
        panic!("halts");
    };
    let halt = GateHalt {
        awaited,
        report,
        observation: o,
        deadline,
        elapsed: Duration::from_millis(2100),
        plan_file: PathBuf::from("plans/prod.yaml"),
    };
    assert_eq!(halt.exit(), crate::exit::Exit::Halted);
    assert_eq!(
        halt.to_string(),
        "\
failed to pass the gate before touching server 2: halted after 2s 100ms by the progress deadline: no progress for 2s (policy.progressDeadline)
observed:
  server 1 at 10.0.0.1:2181: failed to connect to 10.0.0.1:2181: connection refused
  server 2 at 10.0.0.2:2181: follower, zxid 0x100000007, lag 0
  server 3 at 10.0.0.3:2181: leader, zxid 0x100000007, lag 0
failing (observed; expected):
  server 1: observed unreachable (failed to connect to 10.0.0.1:2181: connection refused); expected serving as leader or follower
  server 3: observed zk_synced_followers 1; expected zk_synced_followers 2 (voters - 1)
  server 2: observed without it, 1 of 3 voters serving [3]; expected more than 1 remaining
nothing was changed by this wait; once the ensemble is healthy, continue with:
  zkmigrate step -f plans/prod.yaml --resume
or roll back with:
  zkmigrate rollback -f plans/prod.yaml"
    );
}
