//! `zklab fault elect --server N`: make server N the leader of the hosts'
//! ensemble, for tests and benchmarks that need the leader at the lowest,
//! a middle or the highest id.
//!
//! ZooKeeper 3.8 has no leader transfer, and its fast leader election
//! prefers the vote with the highest (epoch, zxid, myid). So N is given
//! the highest zxid among a quorum that excludes the servers that share it:
//! with q the quorum size and the others split into S (q-1 servers, the
//! current leader among them, so that stopping R elects no one) and R (the
//! rest):
//!
//! 1. stop R; N and S (a bare quorum) serve on;
//! 2. write once through them (create and delete `/zklab-elect`): with
//!    only a quorum alive, N acknowledged it;
//! 3. stop S: N is alone and loses its quorum;
//! 4. start R: they lack the write, so N's vote wins the election among
//!    N and R (a quorum when the ensemble has an odd size);
//! 5. start S, and wait until every server serves and the leader reports
//!    all followers synced.
//!
//! The plan ([`plan`]) is pure and computed first; [`elect`] runs it, every
//! wait bounded. When N does not win, everything is started again and the
//! whole procedure is tried once more.

use std::time::{Duration, Instant};

use zookeeper_client::{Acls, Client, CreateMode, CreateOptions, Error as ZkError};

use crate::LabError;
use crate::host;
use crate::layout::{Layout, Machine};
use crate::{netns, topology};

/// The znode written (and removed at once) to give N the highest zxid.
pub const ELECT_ZNODE: &str = "/zklab-elect";

/// One stage of the procedure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Stop these servers with their service script.
    Stop(Vec<u8>),
    /// Start these servers with their service script.
    Start(Vec<u8>),
    /// Wait until these servers serve with one leader among them.
    AwaitQuorum(Vec<u8>),
    /// Create and delete [`ELECT_ZNODE`] through these servers.
    Write(Vec<u8>),
    /// Wait until `leader` leads `members`; another member leading means
    /// the attempt is lost.
    AwaitLeader { leader: u8, members: Vec<u8> },
    /// Wait until all `servers` serve, `leader` leads and reports every
    /// other one synced.
    AwaitSynced { leader: u8, servers: u8 },
}

/// Why `elect` cannot be asked.
pub fn check(servers: u8, target: u8) -> Result<(), LabError> {
    if !(1..=servers).contains(&target) {
        return Err(LabError::Usage(format!(
            "--server {target}: the lab's servers are 1 to {servers}"
        )));
    }
    if servers < 3 || servers.is_multiple_of(2) {
        return Err(LabError::Usage(format!(
            "elect needs an odd ensemble of at least 3 servers (the lab has {servers}): \
             only then are N with q-1 others, and N with the rest, both quorums"
        )));
    }
    Ok(())
}

/// The stages that make `target` the leader of `servers` servers now led
/// by `leader` (which is not `target`).
pub fn plan(servers: u8, target: u8, leader: u8) -> Vec<Stage> {
    let quorum = servers / 2 + 1;
    let mut others: Vec<u8> = (1..=servers).filter(|&k| k != target).collect();
    // The current leader first, into S: stopping R then elects no one.
    others.sort_by_key(|&k| (k != leader, k));
    let (s, r) = others.split_at(usize::from(quorum - 1));
    let (mut s, mut r) = (s.to_vec(), r.to_vec());
    s.sort();
    r.sort();
    let with_target = |set: &[u8]| {
        let mut v = vec![target];
        v.extend_from_slice(set);
        v.sort();
        v
    };
    vec![
        Stage::Stop(r.clone()),
        Stage::AwaitQuorum(with_target(&s)),
        Stage::Write(with_target(&s)),
        Stage::Stop(s.clone()),
        Stage::Start(r.clone()),
        Stage::AwaitLeader {
            leader: target,
            members: with_target(&r),
        },
        Stage::Start(s),
        Stage::AwaitSynced {
            leader: target,
            servers,
        },
    ]
}

/// How one attempt ended badly.
enum Failed {
    /// Another server won the election: worth one more try.
    Lost(String),
    /// Anything else.
    Error(LabError),
}

impl From<LabError> for Failed {
    fn from(e: LabError) -> Failed {
        Failed::Error(e)
    }
}

/// Makes server `target` the leader of the lab's `servers` hosts, each
/// wait bounded by `wait`. Returns the leader (`target`).
pub fn elect(layout: &Layout, servers: u8, target: u8, wait: Duration) -> Result<u8, LabError> {
    check(servers, target)?;
    for attempt in 1..=2 {
        let leader = await_all_serving(layout, servers, wait)?;
        if leader == target {
            tracing::info!(lab = %layout.name, leader, "server leads");
            return Ok(target);
        }
        let stages = plan(servers, target, leader);
        tracing::info!(lab = %layout.name, attempt, target, leader, ?stages, "electing");
        match run(layout, &stages, wait) {
            Ok(()) => return Ok(target),
            Err(failed) => {
                // Whatever the stage, leave every server started.
                start_all(layout, servers);
                match failed {
                    Failed::Lost(why) if attempt == 1 => {
                        tracing::warn!(lab = %layout.name, target, why, "server did not win; trying once more");
                    }
                    Failed::Lost(why) => {
                        return Err(LabError::Stuck(format!(
                            "server {target} did not become the leader in two attempts: {why}"
                        )));
                    }
                    Failed::Error(e) => return Err(e),
                }
            }
        }
    }
    unreachable!("the second attempt returns")
}

fn run(layout: &Layout, stages: &[Stage], wait: Duration) -> Result<(), Failed> {
    for stage in stages {
        tracing::info!(lab = %layout.name, ?stage, "elect stage");
        match stage {
            Stage::Stop(ks) => ks.iter().try_for_each(|&k| service(layout, k, "stop"))?,
            Stage::Start(ks) => ks.iter().try_for_each(|&k| service(layout, k, "start"))?,
            Stage::AwaitQuorum(members) => {
                await_until(
                    &format!("servers {members:?} to serve with one leader"),
                    wait,
                    || {
                        let modes = modes(layout, members);
                        one_leader(&modes).ok_or(format!("{modes:?}"))
                    },
                )?;
            }
            Stage::Write(members) => write_through(layout, members)?,
            Stage::AwaitLeader { leader, members } => {
                let what = format!("server {leader} to lead {members:?}");
                let deadline = Instant::now() + wait;
                loop {
                    let modes = modes(layout, members);
                    match one_leader(&modes) {
                        Some(k) if k == *leader => break,
                        Some(other) => {
                            return Err(Failed::Lost(format!(
                                "server {other} won the election instead: {modes:?}"
                            )));
                        }
                        None if Instant::now() > deadline => {
                            return Err(Failed::Lost(format!(
                                "no leader among {members:?} after {wait:?}: {modes:?}"
                            )));
                        }
                        None => std::thread::sleep(Duration::from_millis(200)),
                    }
                }
                tracing::info!(lab = %layout.name, what, "done");
            }
            Stage::AwaitSynced { leader, servers } => {
                let all: Vec<u8> = (1..=*servers).collect();
                let want = u64::from(*servers - 1);
                await_until(
                    &format!("server {leader} to lead all {servers} with every follower synced"),
                    wait,
                    || {
                        let modes = modes(layout, &all);
                        match one_leader(&modes) {
                            Some(k) if k == *leader => {}
                            _ => return Err(format!("modes {modes:?}")),
                        }
                        match synced_followers(layout, *leader) {
                            Some(n) if n == want => Ok(()),
                            n => Err(format!("zk_synced_followers {n:?}, want {want}")),
                        }
                    },
                )
                .map_err(|e| {
                    // Someone else leads with everyone back: lost, not stuck.
                    let modes = modes(layout, &all);
                    match one_leader(&modes) {
                        Some(k) if k != *leader => Failed::Lost(format!(
                            "server {k} leads after every server restarted: {modes:?}"
                        )),
                        _ => Failed::Error(e),
                    }
                })?;
            }
        }
    }
    Ok(())
}

/// Waits until every one of `servers` serves with one leader; returns it.
fn await_all_serving(layout: &Layout, servers: u8, wait: Duration) -> Result<u8, LabError> {
    let all: Vec<u8> = (1..=servers).collect();
    await_until(
        "every server to serve with one leader (elect starts from a whole ensemble)",
        wait,
        || {
            let modes = modes(layout, &all);
            one_leader(&modes).ok_or(format!("modes {modes:?}"))
        },
    )
}

/// `Mode:` of each of `members` (`None`: not serving).
fn modes(layout: &Layout, members: &[u8]) -> Vec<(u8, Option<String>)> {
    members
        .iter()
        .map(|&k| (k, topology::host_mode(layout, k)))
        .collect()
}

/// The one leader when every server serves (leader or follower) and
/// exactly one leads.
fn one_leader(modes: &[(u8, Option<String>)]) -> Option<u8> {
    let serving = modes
        .iter()
        .all(|(_, m)| matches!(m.as_deref(), Some("leader" | "follower")));
    let leaders: Vec<u8> = modes
        .iter()
        .filter(|(_, m)| m.as_deref() == Some("leader"))
        .map(|(k, _)| *k)
        .collect();
    match leaders.as_slice() {
        [one] if serving => Some(*one),
        _ => None,
    }
}

/// `zk_synced_followers` of server `k` (a leader's `mntr`).
fn synced_followers(layout: &Layout, k: u8) -> Option<u64> {
    let addr = (Machine::Host(k).addr(), 2181).into();
    let mntr = netns::four_letter_word(&layout.ns(Machine::Ops), addr, "mntr")?;
    mntr.lines()
        .find_map(|l| l.strip_prefix("zk_synced_followers"))
        .and_then(|v| v.trim().parse().ok())
}

/// Polls `probe` until it is `Ok`, at most `wait`; the error says what was
/// awaited and what was seen last.
fn await_until<T>(
    what: &str,
    wait: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> Result<T, LabError> {
    let deadline = Instant::now() + wait;
    loop {
        match probe() {
            Ok(v) => return Ok(v),
            Err(last) if Instant::now() > deadline => {
                return Err(LabError::Stuck(format!(
                    "elect: waited {wait:?} for {what}; last seen: {last}"
                )));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn service(layout: &Layout, k: u8, action: &str) -> Result<(), LabError> {
    host::sh_on(layout, k, &format!("{} {action}", host::SERVICE))
        .map(|_| ())
        .map_err(|e| LabError::Stuck(format!("elect: failed to {action} server {k}: {e}")))
}

/// Starts every server again (best effort: a start of a running one does
/// nothing), after a failed attempt.
fn start_all(layout: &Layout, servers: u8) {
    for k in 1..=servers {
        if let Err(e) = service(layout, k, "start") {
            tracing::warn!(lab = %layout.name, server = k, error = %e, "failed to start a server again");
        }
    }
}

/// Creates and deletes [`ELECT_ZNODE`] through `members`, from the
/// operator machine (a ZooKeeper session opened in its namespace).
fn write_through(layout: &Layout, members: &[u8]) -> Result<(), LabError> {
    const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());
    let connect = members
        .iter()
        .map(|&k| format!("{}:2181", Machine::Host(k).addr()))
        .collect::<Vec<_>>()
        .join(",");
    let fail = |what: &str, e: String| {
        LabError::Stuck(format!(
            "elect: failed to {what} {ELECT_ZNODE} through {connect}: {e}"
        ))
    };
    let c = connect.clone();
    let outcome = netns::in_ns(&layout.ns(Machine::Ops), move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ("start a runtime to write", e.to_string()))?;
        rt.block_on(async move {
            let bound = Duration::from_secs(20);
            let client = tokio::time::timeout(
                bound,
                Client::connector()
                    .with_session_timeout(Duration::from_secs(10))
                    .connect(&c),
            )
            .await
            .map_err(|_| ("connect to write", format!("no session within {bound:?}")))?
            .map_err(|e| ("connect to write", e.to_string()))?;
            match client.create(ELECT_ZNODE, b"", &PERSISTENT).await {
                Ok(_) | Err(ZkError::NodeExists) => {}
                Err(e) => return Err(("create", e.to_string())),
            }
            match client.delete(ELECT_ZNODE, None).await {
                Ok(()) | Err(ZkError::NoNode) => Ok(()),
                Err(e) => Err(("delete", e.to_string())),
            }
        })
    })?;
    outcome.map_err(|(what, e)| fail(what, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_servers_stop_one_write_through_two() {
        // Leader 2, target 1: S = {2} (the leader), R = {3}.
        assert_eq!(
            plan(3, 1, 2),
            vec![
                Stage::Stop(vec![3]),
                Stage::AwaitQuorum(vec![1, 2]),
                Stage::Write(vec![1, 2]),
                Stage::Stop(vec![2]),
                Stage::Start(vec![3]),
                Stage::AwaitLeader {
                    leader: 1,
                    members: vec![1, 3]
                },
                Stage::Start(vec![2]),
                Stage::AwaitSynced {
                    leader: 1,
                    servers: 3
                },
            ]
        );
    }

    #[test]
    fn five_servers_keep_the_leader_in_s_and_both_halves_are_quorums() {
        // Leader 4, target 1: S = {4, 2}, R = {3, 5}.
        let stages = plan(5, 1, 4);
        assert_eq!(stages[0], Stage::Stop(vec![3, 5]));
        assert_eq!(stages[2], Stage::Write(vec![1, 2, 4]));
        assert_eq!(stages[3], Stage::Stop(vec![2, 4]));
        assert_eq!(
            stages[5],
            Stage::AwaitLeader {
                leader: 1,
                members: vec![1, 3, 5]
            }
        );
    }

    #[test]
    fn only_odd_ensembles_and_their_own_servers_are_accepted() {
        assert!(check(3, 3).is_ok());
        assert!(check(5, 1).is_ok());
        assert!(check(3, 4).unwrap_err().to_string().contains("1 to 3"));
        assert!(check(4, 1).unwrap_err().to_string().contains("odd"));
        assert!(check(1, 1).is_err());
    }

    #[test]
    fn one_leader_needs_every_server_serving() {
        let m = |v: &[(u8, Option<&str>)]| -> Vec<(u8, Option<String>)> {
            v.iter().map(|(k, s)| (*k, s.map(String::from))).collect()
        };
        assert_eq!(
            one_leader(&m(&[(1, Some("leader")), (2, Some("follower"))])),
            Some(1)
        );
        assert_eq!(one_leader(&m(&[(1, Some("leader")), (2, None)])), None);
        assert_eq!(
            one_leader(&m(&[(1, Some("leader")), (2, Some("leader"))])),
            None
        );
        assert_eq!(
            one_leader(&m(&[(1, Some("follower")), (2, Some("follower"))])),
            None
        );
    }
}
