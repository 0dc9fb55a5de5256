//! `observe` against real ZooKeeper 3.8 servers (zklab's testkit): every
//! word parses, the health predicates see what the servers do, and the
//! AdminServer path agrees with the four-letter path.
//!
//! Waiting is for a condition (re-observe until it holds, bounded), never a
//! fixed sleep.

use std::time::{Duration, Instant};

use zklab::testkit::{Ensemble, EnsembleOptions};
use zkmigrate::observe::health::{
    Check, Condition, LeaderVerdict, all_voters_synced, every_voter_serving, quorum_gate,
    quorum_without,
};
use zkmigrate::observe::srvr::parse_stat;
use zkmigrate::observe::{
    EnsembleObservation, FailureKind, Mode, ObserveError, ObserveOptions, Role, ServerProbe,
    Source, Target, Word, admin, four_letter_word, observe_ensemble,
};

const TIMEOUT: Duration = Duration::from_secs(3);

fn start(options: EnsembleOptions) -> Ensemble {
    tokio::task::block_in_place(|| Ensemble::start_with(options)).expect("start the ensemble")
}

fn targets(ens: &Ensemble) -> Vec<Target> {
    ens.servers()
        .iter()
        .map(|s| {
            Target::new(u64::from(s.id), s.client_addr().to_string())
                .with_admin(s.admin_addr().to_string())
        })
        .collect()
}

/// Re-observes until `holds` is true, for at most `within`.
async fn observe_until(
    targets: &[Target],
    within: Duration,
    what: &str,
    holds: impl Fn(&EnsembleObservation) -> bool,
) -> EnsembleObservation {
    let deadline = Instant::now() + within;
    let opts = ObserveOptions {
        timeout: TIMEOUT,
        ..ObserveOptions::default()
    };
    loop {
        let obs = observe_ensemble(targets, &opts).await;
        if holds(&obs) {
            return obs;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not seen within {within:?}: {obs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_observed_by_both_paths_and_a_follower_stopped() {
    let mut ens = start(EnsembleOptions::default());
    let targets = targets(&ens);
    let leader = ens.leader().expect("the testkit waited for one leader");

    // Every word parses on every server.
    for s in ens.servers() {
        let probe = ServerProbe::new(s.client_addr().to_string(), TIMEOUT);
        let (srvr, source) = probe.srvr().await.unwrap();
        assert_eq!(source, Source::FourLetterWord);
        let expected_mode = if s.id == leader {
            Mode::Leader
        } else {
            Mode::Follower
        };
        assert_eq!(srvr.mode, expected_mode, "server {}", s.id);
        assert_eq!(srvr.version.to_string(), "3.8.0");

        let (mntr, _) = probe.mntr().await.unwrap();
        assert_eq!(mntr.server_state(), Some(expected_mode.clone()));
        assert_eq!(mntr.quorum_size(), Some(3));

        let (conf, _) = probe.conf().await.unwrap();
        assert_eq!(conf.server_id, Some(u64::from(s.id)));
        assert_eq!(conf.voter_ids(), vec![1, 2, 3]);
        for peer in ens.servers() {
            let line = conf.server(u64::from(peer.id)).unwrap();
            assert_eq!(line.host, peer.addr.to_string());
            assert_eq!(
                (line.quorum_port, line.election_port),
                (peer.quorum_port, peer.election_port)
            );
            assert_eq!(line.role, Role::Participant);
        }

        let (cons, _) = probe.cons().await.unwrap();
        assert!(!cons.connections.is_empty(), "cons lists the probe itself");
        probe.ruok().await.unwrap();
        let stat = four_letter_word(&s.client_addr().to_string(), Word::Stat, TIMEOUT)
            .await
            .unwrap();
        let stat = parse_stat(&stat).unwrap();
        assert_eq!(stat.srvr.mode, expected_mode);
        assert!(!stat.clients.is_empty());

        // The AdminServer says the same.
        let admin_addr = s.admin_addr().to_string();
        let via_admin = admin::admin_srvr(&admin_addr, TIMEOUT).await.unwrap();
        let again = probe.srvr().await.unwrap().0;
        assert_eq!(
            (via_admin.mode.clone(), via_admin.zxid),
            (again.mode, again.zxid)
        );
        let m = admin::admin_mntr(&admin_addr, TIMEOUT).await.unwrap();
        assert_eq!(m.server_state(), Some(expected_mode));
        let c = admin::admin_conf(&admin_addr, TIMEOUT).await.unwrap();
        assert_eq!(
            (c.server_id, c.voter_ids()),
            (Some(u64::from(s.id)), vec![1, 2, 3])
        );
        admin::admin_cons(&admin_addr, TIMEOUT).await.unwrap();
        admin::admin_ruok(&admin_addr, TIMEOUT).await.unwrap();
    }

    // The snapshot: one leader, both followers synced, the gate open.
    let obs = observe_until(&targets, Duration::from_secs(20), "all synced", |o| {
        o.all_voters_synced()
    })
    .await;
    assert_eq!(obs.leader_verdict(), LeaderVerdict::One(u64::from(leader)));
    let leader_mntr = obs.leader_observation().unwrap().mntr.as_ref().unwrap();
    assert_eq!(leader_mntr.synced_followers(), Some(2));
    assert_eq!(leader_mntr.pending_syncs(), Some(0));
    assert_eq!(obs.max_lag(), Some(0));
    assert!(obs.epoch().unwrap() >= 1);
    let gate = quorum_gate(0).report(&obs);
    assert!(gate.is_healthy(), "{gate}");

    // Stop one follower: the leader's synced count drops, the gate closes
    // and says why, and the follower left may no longer be taken down.
    let follower = ens
        .servers()
        .iter()
        .map(|s| s.id)
        .find(|&id| id != leader)
        .unwrap();
    let other = ens
        .servers()
        .iter()
        .map(|s| s.id)
        .find(|&id| id != leader && id != follower)
        .unwrap();
    tokio::task::block_in_place(|| ens.stop(follower)).unwrap();
    let obs = observe_until(
        &targets,
        Duration::from_secs(30),
        "synced followers 1",
        |o| {
            o.leader_observation()
                .and_then(|l| l.mntr.as_ref())
                .and_then(|m| m.synced_followers())
                == Some(1)
        },
    )
    .await;
    assert!(!obs.all_voters_synced());
    assert!(obs.has_quorum());
    let down = obs
        .servers
        .iter()
        .find(|e| e.id == u64::from(follower))
        .unwrap();
    assert_eq!(
        down.outcome.as_ref().unwrap_err().kind,
        FailureKind::Unreachable
    );
    let failures = every_voter_serving()
        .and(all_voters_synced())
        .failures(&obs);
    let checks: Vec<_> = failures.iter().map(|f| f.check).collect();
    assert_eq!(
        checks,
        vec![Check::VoterServing, Check::VotersSynced],
        "{failures:?}"
    );
    assert!(failures[1].observed.contains("zk_synced_followers 1"));
    assert!(!quorum_without(u64::from(other)).holds(&obs));

    // Bring it back: synced again.
    tokio::task::block_in_place(|| ens.start_server(follower)).unwrap();
    observe_until(
        &targets,
        Duration::from_secs(60),
        "all synced after restart",
        |o| o.all_voters_synced() && o.servers.iter().all(|e| e.outcome.is_ok()),
    )
    .await;

    // Stop both followers: the leader loses its quorum and stops serving.
    tokio::task::block_in_place(|| {
        ens.stop(follower).unwrap();
        ens.stop(other).unwrap();
    });
    let obs = observe_until(
        &targets,
        Duration::from_secs(30),
        "leader not serving",
        |o| {
            o.servers
                .iter()
                .find(|e| e.id == u64::from(leader))
                .is_some_and(|e| matches!(&e.outcome, Err(f) if f.kind == FailureKind::NotServing))
        },
    )
    .await;
    assert!(!obs.has_quorum());
    assert_eq!(obs.leader_verdict(), LeaderVerdict::None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_to_the_admin_server_when_words_are_not_whitelisted() {
    let ens = start(EnsembleOptions {
        four_letter_words: "srvr".to_string(),
        ..EnsembleOptions::default()
    });
    let leader = ens.leader().unwrap();
    let s = ens.server(leader);

    let client_only = ServerProbe::new(s.client_addr().to_string(), TIMEOUT);
    let e = client_only.mntr().await.unwrap_err();
    assert!(matches!(e, ObserveError::NotWhitelisted { .. }), "{e}");
    assert!(e.to_string().contains(&s.client_addr().to_string()));

    let probe = client_only.with_admin(s.admin_addr().to_string());
    let (srvr, source) = probe.srvr().await.unwrap();
    assert_eq!((srvr.mode, source), (Mode::Leader, Source::FourLetterWord));
    let (mntr, source) = probe.mntr().await.unwrap();
    assert_eq!(source, Source::AdminServer);
    assert_eq!(mntr.server_state(), Some(Mode::Leader));
    let (conf, source) = probe.conf().await.unwrap();
    assert_eq!(
        (source, conf.voter_ids()),
        (Source::AdminServer, vec![1, 2, 3])
    );
    let (_, source) = probe.cons().await.unwrap();
    assert_eq!(source, Source::AdminServer);

    let obs = observe_until(&targets(&ens), Duration::from_secs(20), "all synced", |o| {
        o.all_voters_synced()
    })
    .await;
    assert_eq!(obs.leader(), Some(u64::from(leader)));
    assert!(
        quorum_gate(0).holds(&obs),
        "{}",
        quorum_gate(0).report(&obs)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_config_membership_carries_the_client_address() {
    let ens = start(EnsembleOptions {
        dynamic: true,
        ..EnsembleOptions::default()
    });
    let s = ens.server(1);
    let (conf, _) = ServerProbe::new(s.client_addr().to_string(), TIMEOUT)
        .conf()
        .await
        .unwrap();
    assert!(conf.config_version.is_some());
    for peer in ens.servers() {
        let line = conf.server(u64::from(peer.id)).unwrap();
        assert_eq!(
            line.client_host.as_deref(),
            Some(peer.addr.to_string().as_str())
        );
        assert_eq!(line.client_port, Some(peer.client_port));
    }
}
