//! The workload and its scorer against real ZooKeeper 3.8 ensembles: a
//! quiet run, writes deleted behind the workload's back (a known answer for
//! `lost`), a leader stopped mid-run (one election), and a switch of
//! connection string that the ephemeral session survives.
//!
//! The worker runs on a tokio task of the test; the tests talk to it as the
//! CLI does, through its state directory. Every wait is on a condition
//! (acknowledgements counted in the record), and each test is bounded.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::task::{JoinHandle, block_in_place, spawn_blocking};
use zklab::load::{
    Event, LoadError, Report, Run, SessionRole, WorkerConfig, read_events, report,
    request_reconnect, request_stop, run_worker, wait_started, write_path,
};
use zklab::testkit::Ensemble;
use zookeeper_client::Client;

const TEST_BOUND: Duration = Duration::from_secs(120);

/// Runs a test body within [`TEST_BOUND`].
async fn bounded(body: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_BOUND, body)
        .await
        .expect("test exceeded its time bound");
}

struct Workload {
    dir: tempfile::TempDir,
    run: Run,
    task: JoinHandle<Result<(), LoadError>>,
}

impl Workload {
    async fn start(connect: String) -> Workload {
        let dir = tempfile::tempdir().unwrap();
        let cfg = WorkerConfig {
            session_timeout: Duration::from_secs(6),
            ..WorkerConfig::new(connect, dir.path())
        };
        let task = tokio::spawn(run_worker(cfg));
        let state_dir = dir.path().to_path_buf();
        let run = spawn_blocking(move || wait_started(&state_dir, Duration::from_secs(30)))
            .await
            .unwrap()
            .expect("worker started");
        Workload { dir, run, task }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Waits until at least `n` writes are acknowledged; returns how many.
    async fn wait_acked(&self, n: usize, within: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let acked = acked_seqs(self.dir.path()).len();
            if acked >= n {
                return acked;
            }
            assert!(!self.task.is_finished(), "worker ended early");
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {acked} of {n} writes acknowledged within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) -> tempfile::TempDir {
        let state_dir = self.state_dir();
        spawn_blocking(move || request_stop(&state_dir))
            .await
            .unwrap()
            .expect("stop acknowledged");
        self.task
            .await
            .unwrap()
            .expect("worker ended without error");
        self.dir
    }
}

fn acked_seqs(state_dir: &Path) -> Vec<u64> {
    read_events(state_dir)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            Event::Acked { seq, .. } => Some(seq),
            _ => None,
        })
        .collect()
}

async fn client(connect: &str) -> Client {
    Client::connector()
        .with_session_timeout(Duration::from_secs(6))
        .connect(connect)
        .await
        .expect("test client connects")
}

fn print(report: &Report) {
    eprintln!("report: {}", serde_json::to_string(report).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_run_acknowledges_at_its_rate_and_loses_nothing() {
    let ens = Ensemble::start(3).expect("ensemble");
    let connect = ens.connect_string();
    bounded(async {
        let load = Workload::start(connect.clone()).await;
        load.wait_acked(100, Duration::from_secs(20)).await;
        // A report taken while the worker runs asks the servers about the
        // ephemeral znode.
        let live = report(&load.state_dir(), &connect).await.unwrap();
        assert!(live.ephemeral_survived, "{live:?}");
        assert_eq!(live.lost, 0);
        load.wait_acked(250, Duration::from_secs(20)).await;
        let run = load.run.clone();
        let dir = load.stop().await;

        let report = report(dir.path(), &connect).await.unwrap();
        print(&report);
        let expected = 100.0 * report.duration_s;
        assert!(
            (report.acked as f64) >= 0.8 * expected && (report.acked as f64) <= expected + 20.0,
            "acked {} for {} s at 100/s",
            report.acked,
            report.duration_s
        );
        assert!(report.acked >= 250);
        assert_eq!(report.lost, 0);
        assert_eq!(report.duplicates, 0);
        assert_eq!(report.errors, 0);
        assert_eq!(report.elections, 0);
        assert_eq!(report.sessions_expired, 0);
        assert!(report.ephemeral_survived);
        assert!(report.max_gap_ms < 2000, "{report:?}");

        // The contract's keys, all of them and no others.
        let json = serde_json::to_value(&report).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "acked",
                "duplicates",
                "duration_s",
                "elections",
                "ephemeral_survived",
                "errors",
                "lost",
                "max_gap_ms",
                "sessions_expired",
                "unavailable_ms"
            ]
        );

        // Stopped, the worker closed its sessions: the ephemeral is gone,
        // the writes stay.
        let zk = client(&connect).await;
        assert!(zk.check_stat(&run.ephemeral_path).await.unwrap().is_none());
        assert!(
            zk.check_stat(&write_path(&run.base, 1))
                .await
                .unwrap()
                .is_some()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_deleted_behind_its_back_count_as_lost_exactly() {
    let ens = Ensemble::start(3).expect("ensemble");
    let connect = ens.connect_string();
    bounded(async {
        let load = Workload::start(connect.clone()).await;
        load.wait_acked(100, Duration::from_secs(20)).await;
        let acked = acked_seqs(load.dir.path());
        let victims = [5u64, 17, 33, 48, 60, 71, 99];
        assert!(victims.iter().all(|v| acked.contains(v)));
        let zk = client(&connect).await;
        for seq in victims {
            zk.delete(&write_path(&load.run.base, seq), None)
                .await
                .unwrap();
        }
        load.wait_acked(200, Duration::from_secs(20)).await;
        let dir = load.stop().await;

        let report = report(dir.path(), &connect).await.unwrap();
        print(&report);
        assert_eq!(report.lost, victims.len() as u64);
        assert!(report.acked >= 200);
        assert_eq!(report.elections, 0);
        assert!(report.ephemeral_survived);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_leader_is_one_election_with_a_gap_and_no_loss() {
    let mut ens = Ensemble::start(3).expect("ensemble");
    let connect = ens.connect_string();
    let load = Workload::start(connect.clone()).await;
    load.wait_acked(100, Duration::from_secs(20)).await;
    let leader = ens.leader().expect("one leader");
    block_in_place(|| {
        ens.stop(leader).unwrap();
        ens.wait_quorum(Duration::from_secs(60))
            .expect("new leader");
    });
    bounded(async {
        let before = acked_seqs(load.dir.path()).len();
        load.wait_acked(before + 100, Duration::from_secs(60)).await;
    })
    .await;
    block_in_place(|| {
        ens.start_server(leader).unwrap();
        ens.wait_serving(leader, Duration::from_secs(60))
            .expect("old leader rejoins");
    });
    bounded(async {
        let before = acked_seqs(load.dir.path()).len();
        load.wait_acked(before + 50, Duration::from_secs(30)).await;
        let dir = load.stop().await;

        let report = report(dir.path(), &connect).await.unwrap();
        print(&report);
        assert_eq!(report.elections, 1, "{report:?}");
        assert_eq!(report.lost, 0);
        assert!(report.max_gap_ms > 200, "{report:?}");
        assert!(report.unavailable_ms >= report.max_gap_ms);
        assert!(report.errors >= 1, "{report:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_of_connection_string_keeps_writing_and_keeps_the_ephemeral() {
    let mut ens = Ensemble::start(3).expect("ensemble");
    let leader = ens.leader().expect("one leader");
    // Start on one follower alone, switch to the two others, then stop the
    // first: had either session stayed behind, it would fail.
    let ids: Vec<u8> = ens.servers().iter().map(|s| s.id).collect();
    let old = *ids.iter().find(|id| **id != leader).unwrap();
    let others: Vec<String> = ids
        .iter()
        .filter(|id| **id != old)
        .map(|id| ens.client_addr(*id).to_string())
        .collect();
    let new_connect = others.join(",");
    let load = Workload::start(ens.client_addr(old).to_string()).await;
    bounded(async {
        load.wait_acked(100, Duration::from_secs(20)).await;
        let state_dir = load.state_dir();
        let target = new_connect.clone();
        let outcome = spawn_blocking(move || request_reconnect(&state_dir, &target))
            .await
            .unwrap()
            .expect("reconnect acknowledged");
        assert!(outcome.ephemeral_kept, "{outcome:?}");
        assert_eq!(outcome.ephemeral_session, load.run.ephemeral_session);
        assert_ne!(outcome.writer_session, load.run.writer_session);
        let cons = ens.four_letter_word(old, "cons").unwrap();
        let sid = format!("sid={:#x}", outcome.ephemeral_session);
        assert!(!cons.contains(&sid), "{sid} still on server {old}: {cons}");
    })
    .await;
    block_in_place(|| ens.stop(old).unwrap());
    bounded(async {
        let before = acked_seqs(load.dir.path()).len();
        load.wait_acked(before + 100, Duration::from_secs(20)).await;
        let dir = load.stop().await;
        let events = read_events(dir.path()).unwrap();
        assert!(
            events.iter().any(
                |e| matches!(e, Event::Reconnected { connect, .. } if *connect == new_connect)
            )
        );

        let report = report(dir.path(), &new_connect).await.unwrap();
        print(&report);
        assert!(report.ephemeral_survived, "{report:?}");
        assert_eq!(report.lost, 0);
        assert_eq!(report.errors, 0, "{report:?}");
        assert_eq!(report.elections, 0);
        assert_eq!(report.sessions_expired, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_session_timeout_expires_both_sessions_and_the_workload_goes_on()
{
    let mut ens = Ensemble::start(3).expect("ensemble");
    let connect = ens.connect_string();
    let dir = tempfile::tempdir().unwrap();
    // The shortest timeout the servers grant (2 x tickTime): the client
    // gives up on a session after 1.4 x that without a server.
    let cfg = WorkerConfig {
        session_timeout: Duration::from_millis(600),
        ..WorkerConfig::new(connect.clone(), dir.path())
    };
    let task = tokio::spawn(run_worker(cfg));
    let state_dir = dir.path().to_path_buf();
    let run = spawn_blocking(move || wait_started(&state_dir, Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("worker started");
    let load = Workload { dir, run, task };
    load.wait_acked(50, Duration::from_secs(20)).await;
    let ids: Vec<u8> = ens.servers().iter().map(|s| s.id).collect();
    block_in_place(|| ids.iter().for_each(|id| ens.stop(*id).unwrap()));
    bounded(async {
        loop {
            let expired = read_events(load.dir.path())
                .unwrap()
                .iter()
                .filter(|e| matches!(e, Event::Expired { .. }))
                .count();
            if expired >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    block_in_place(|| {
        ids.iter().for_each(|id| ens.start_server(*id).unwrap());
        ens.wait_quorum(Duration::from_secs(60))
            .expect("quorum again");
    });
    bounded(async {
        let before = acked_seqs(load.dir.path()).len();
        load.wait_acked(before + 50, Duration::from_secs(60)).await;
        let dir = load.stop().await;
        let events = read_events(dir.path()).unwrap();
        let renewed = |role| {
            events
                .iter()
                .any(|e| matches!(e, Event::Renewed { role: r, .. } if *r == role))
        };
        assert!(renewed(SessionRole::Writer) && renewed(SessionRole::Ephemeral));

        let report = report(dir.path(), &connect).await.unwrap();
        print(&report);
        assert_eq!(report.sessions_expired, 2, "{report:?}");
        assert!(!report.ephemeral_survived);
        assert_eq!(report.lost, 0);
        assert_eq!(report.elections, 1, "{report:?}");
        assert!(report.max_gap_ms > 840, "{report:?}");
    })
    .await;
}
