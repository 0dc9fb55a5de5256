//! The quorum-first gate and the sync wait against real ZooKeeper 3.8
//! ensembles (zklab's testkit): a healthy ensemble passes at once, a gate
//! that would leave no quorum halts on the progress deadline naming the
//! stopped server, a server restarted while the gate waits lets it pass,
//! and `await_synced` sees a restarted follower rejoin.
//!
//! The only sleep is the delay before the restart in
//! `restarting_the_stopped_follower_lets_the_waiting_gate_pass`: it is the
//! event under test (a restart while the gate waits), and the assertion is
//! on the gate's outcome, not on the time.

use std::path::Path;
use std::time::Duration;

use zklab::testkit::Ensemble;
use zkmigrate::engine::gate::{Deadline, GateSpec, await_gate, await_synced};
use zkmigrate::exit::Exit;
use zkmigrate::observe::Target;
use zkmigrate::observe::health::Check;
use zkmigrate::plan::Policy;
use zkmigrate::progress::Progress;

const PLAN: &str = "plans/lab.yaml";

fn start(n: usize) -> Ensemble {
    tokio::task::block_in_place(|| Ensemble::start(n)).expect("start the ensemble")
}

fn targets(ens: &Ensemble) -> Vec<Target> {
    ens.servers()
        .iter()
        .map(|s| Target::new(u64::from(s.id), s.client_addr().to_string()))
        .collect()
}

fn policy(progress_deadline: Duration, sync_timeout: Duration) -> Policy {
    Policy {
        sync_timeout,
        progress_deadline,
        poll_interval: Duration::from_millis(100),
        confirm: vec![],
        allow_even_voters: false,
        lease_duration: Duration::from_secs(15),
    }
}

/// The brief's short policy: poll 100 ms, progress deadline 2 s, sync
/// timeout 10 s.
fn short() -> Policy {
    policy(Duration::from_secs(2), Duration::from_secs(10))
}

/// Time for a JVM to start and rejoin: the progress rule sees the steps
/// (unreachable, not serving, synced), but one step may take seconds.
fn restart_policy() -> Policy {
    policy(Duration::from_secs(20), Duration::from_secs(60))
}

/// Two followers of `ens`, by id.
fn followers(ens: &Ensemble) -> (u8, u8) {
    let leader = ens.leader().expect("the testkit waited for one leader");
    let f: Vec<u8> = ens
        .servers()
        .iter()
        .map(|s| s.id)
        .filter(|&id| id != leader)
        .collect();
    (f[0], f[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_healthy_ensembles_pass_the_gate_at_once_in_parallel() {
    let (a, b) = (start(3), start(3));
    let (ta, tb) = (targets(&a), targets(&b));
    let progress = Progress::log();
    let (fa, _) = followers(&a);
    let spec_a = GateSpec::before_touching(u64::from(fa));
    let spec_b = GateSpec::before_fencing(u64::from(b.leader().expect("a leader")));
    let (plan, policy) = (Path::new(PLAN), short());
    let (ra, rb) = tokio::join!(
        await_gate(&ta, &spec_a, &policy, plan, &progress),
        await_gate(&tb, &spec_b, &policy, plan, &progress),
    );
    let (pa, pb) = (ra.expect("gate on a"), rb.expect("gate on b"));
    assert_eq!(pa.leader, u64::from(a.leader().expect("a leader")));
    assert_eq!(pb.leader, u64::from(b.leader().expect("a leader")));
    assert!(pa.waited < Duration::from_secs(2), "{:?}", pa.waited);
    assert!(pb.waited < Duration::from_secs(2), "{:?}", pb.waited);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_that_would_leave_one_of_three_halts_on_the_progress_deadline() {
    let mut ens = start(3);
    let targets = targets(&ens);
    let (stopped, about) = followers(&ens);
    tokio::task::block_in_place(|| ens.stop(stopped)).expect("stop a follower");

    let spec = GateSpec::before_touching(u64::from(about));
    let halt = await_gate(&targets, &spec, &short(), Path::new(PLAN), &Progress::log())
        .await
        .expect_err("removing another follower would leave 1 of 3");

    assert_eq!(halt.exit(), Exit::Halted);
    assert_eq!(
        halt.deadline,
        Deadline::ProgressDeadline {
            limit: Duration::from_secs(2)
        }
    );
    assert!(
        halt.elapsed >= Duration::from_secs(2) && halt.elapsed < Duration::from_secs(10),
        "{:?}",
        halt.elapsed
    );
    let failing: Vec<(Check, Option<u64>)> = halt
        .report
        .failures
        .iter()
        .map(|f| (f.check, f.server))
        .collect();
    assert!(
        failing.contains(&(Check::VoterServing, Some(u64::from(stopped)))),
        "{failing:?}"
    );
    assert!(
        failing.contains(&(Check::QuorumWithout, Some(u64::from(about)))),
        "{failing:?}"
    );
    let text = halt.to_string();
    assert!(
        text.contains(&format!("server {stopped}: observed unreachable")),
        "{text}"
    );
    assert!(
        text.contains("zkmigrate step -f plans/lab.yaml --resume"),
        "{text}"
    );
    assert!(
        text.contains("zkmigrate rollback -f plans/lab.yaml"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_stopped_follower_lets_the_waiting_gate_pass() {
    let mut ens = start(3);
    let targets = targets(&ens);
    let (stopped, about) = followers(&ens);
    tokio::task::block_in_place(|| ens.stop(stopped)).expect("stop a follower");

    // The event: the follower comes back while the gate waits.
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        ens.start_server(stopped).map(|()| ens)
    });
    let spec = GateSpec::before_touching(u64::from(about));
    let passed = await_gate(
        &targets,
        &spec,
        &restart_policy(),
        Path::new(PLAN),
        &Progress::log(),
    )
    .await;
    let ens = tokio::task::block_in_place(|| restarter.join())
        .expect("the restarter thread")
        .expect("restart the follower");
    let passed = passed.unwrap_or_else(|halt| panic!("the gate halted:\n{halt}"));
    assert!(
        passed.waited >= Duration::from_secs(1),
        "{:?}",
        passed.waited
    );
    assert!(passed.observation.all_voters_synced());
    assert_eq!(
        passed.observation.serving_voters().len(),
        ens.servers().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn await_synced_sees_a_restarted_follower_rejoin() {
    let mut ens = start(3);
    let targets = targets(&ens);
    let (follower, _) = followers(&ens);
    tokio::task::block_in_place(|| {
        ens.stop(follower)?;
        ens.start_server(follower)
    })
    .expect("restart a follower");

    let synced = await_synced(
        &targets,
        u64::from(follower),
        &restart_policy(),
        Path::new(PLAN),
        &Progress::log(),
    )
    .await
    .unwrap_or_else(|halt| panic!("not synced:\n{halt}"));
    assert!(synced.waited > Duration::ZERO);
    assert!(synced.waited < Duration::from_secs(60));
    assert_eq!(synced.observation.zxid_lag(u64::from(follower)), Some(0));
    assert!(synced.observation.all_voters_synced());
    eprintln!("server {follower} synced after {:?}", synced.waited);
}
