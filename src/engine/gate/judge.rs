//! The pure decision of a wait: one [`EnsembleObservation`] seen at `now`,
//! folded into the [`History`] of the wait, gives a [`Verdict`]: pass, wait,
//! or halt. No I/O and no clock: the caller passes the time, so every rule
//! below is tested on hand-built observations.
//!
//! # What a wait checks ([`Awaited`])
//!
//! - **Gate** (before an action that stops, restarts or replaces a server,
//!   DESIGN 2 "Quorum first"): `health::quorum_gate(max_lag)`; with `about`,
//!   `health::quorum_without(about)`, and when `about` does not serve now
//!   (its restart failed and the operator resumes), the same gate over every
//!   other voter (`health::quorum_gate_but`): touching a server that is down
//!   takes nothing more down; with `require_equal_zxid` (DESIGN 9,
//!   right before fencing host N), every voter but N at lag 0 behind the
//!   leader. "Equal" is lag 0 as `health::lag` counts it, not bitwise
//!   equality: right after an election with no write yet the leader reports
//!   `(epoch, 0)` and synced followers the previous epoch's last zxid.
//! - **Synced** (after a restart or a Pod start): the server serves as leader
//!   or follower, one leader agreed by quorum, the leader reports every other
//!   voter synced (`zk_synced_followers` = voters - 1, `zk_pending_syncs` =
//!   0), and the server's zxid lag is 0.
//!
//! # The progress rule (what resets the progress deadline)
//!
//! Each observation yields the *failing set*: one key per failure,
//! `(check, server, stage)`, where the stage tells steps of a recovery apart
//! and holds nothing that drifts: for a voter not serving, how
//! (`unreachable`, `not serving`, `mode observer`); for the leader's sync
//! report and for leadership, which part fails (`zk_synced_followers`,
//! `zk_pending_syncs`; `no`, `leader`, `conflicting`); for the rest, nothing
//! (lag is measured apart, and quorum counts follow the voters' keys). It
//! also yields the *lag*: the largest zxid lag of a serving voter (gate) or
//! the server's lag (synced).
//!
//! An observation makes progress when either
//! 1. the failing set has not been seen before in this wait, a key of the
//!    previous observation's set is gone, and the set counts no more
//!    `(check, server)` pairs than the previous one (a check cleared, or
//!    moved to a later stage, without another one breaking:
//!    `unreachable` -> `not serving` -> `zk_synced_followers` -> passed), or
//! 2. the lag is below the lowest lag seen since the last progress (a new
//!    low; the floor restarts at the lag of each progress point).
//!
//! So a state that gets worse (more pairs failing) is not progress, and a
//! state that flaps between two failing sets or a lag that oscillates makes
//! progress once, not on every flap. One known looseness: a move between
//! stages of one pair into a stage not seen before in this wait counts even
//! when it is backwards (`not serving` to `unreachable` when the wait began
//! with the process up); the sync timeout bounds that.
//!
//! # Deadlines, in the order they are tested
//!
//! - **Leader conflict**: leadership contested ([`LeaderGrace`]) for longer
//!   than `leader_grace` halts at once; a shorter overlap (two servers
//!   claiming leader for about a second after an election, DESIGN 7) is
//!   waited out, and while it lasts the progress deadline does not fire.
//! - **Sync timeout**: `policy.syncTimeout` since the wait began.
//! - **Progress deadline**: `policy.progressDeadline` since the last
//!   progress (or the start).

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, Instant};

use crate::observe::ensemble::{EnsembleObservation, FailureKind};
use crate::observe::health::{
    Check, Condition, Failure, HealthReport, LeaderGrace, LeaderJudgement, all_voters_synced,
    exactly_one_leader, quorum_gate_but, quorum_without,
};
use crate::plan::Policy;

use super::GateSpec;

/// The longest two leader claims are waited out before a halt, unless the
/// caller knows better (a deposed leader notices after about `syncLimit x
/// tickTime`, 10 s with ZooKeeper's sample config).
pub const DEFAULT_LEADER_GRACE: Duration = Duration::from_secs(10);

/// What a wait waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Awaited {
    /// The quorum-first gate before a disruptive action.
    Gate(GateSpec),
    /// A server serving and synced after a restart or a Pod start.
    Synced { server: u64 },
}

impl fmt::Display for Awaited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Awaited::Gate(GateSpec {
                about: Some(id), ..
            }) => {
                write!(f, "the gate before touching server {id}")
            }
            Awaited::Gate(GateSpec { about: None, .. }) => f.write_str("the quorum gate"),
            Awaited::Synced { server } => write!(f, "server {server} to serve and sync"),
        }
    }
}

impl Awaited {
    /// Every failing reason on this observation; empty when it passes.
    pub fn failures(&self, obs: &EnsembleObservation) -> Vec<Failure> {
        match self {
            Awaited::Gate(spec) => {
                // The server the action is about may be down already (a
                // restart that failed, resumed): touching it takes nothing
                // more down, so every other voter must serve and be synced.
                let down = spec.about.filter(|id| !obs.serving_voters().contains(id));
                let mut failures = quorum_gate_but(spec.max_lag, down).failures(obs);
                if let Some(id) = spec.about {
                    failures.extend(quorum_without(id).failures(obs));
                }
                if spec.require_equal_zxid {
                    failures.extend(equal_zxid_except(spec.about).failures(obs));
                }
                failures
            }
            Awaited::Synced { server } => {
                // Lag before the leader's counters: the headline shows the
                // first failure, and a shrinking lag is the most telling.
                let mut failures = serving_voter(*server).failures(obs);
                failures.extend(lag_zero(*server).failures(obs));
                failures.extend(exactly_one_leader().failures(obs));
                failures.extend(all_voters_synced().failures(obs));
                failures
            }
        }
    }

    /// The lag the progress rule watches (see the module header).
    pub fn lag(&self, obs: &EnsembleObservation) -> Option<u64> {
        match self {
            Awaited::Gate(_) => obs.max_lag(),
            Awaited::Synced { server } => obs.zxid_lag(*server),
        }
    }
}

/// Server `id` answers and serves as leader or follower.
fn serving_voter(id: u64) -> impl Condition {
    move |obs: &EnsembleObservation| {
        let observed = match obs.servers.iter().find(|e| e.id == id).map(|e| &e.outcome) {
            None => "not among the observed servers".to_string(),
            Some(Err(f)) => match f.kind {
                FailureKind::Unreachable => format!("unreachable ({})", f.message),
                FailureKind::NotServing => format!("not serving ({})", f.message),
                FailureKind::Other => f.message.clone(),
            },
            Some(Ok(o)) if o.srvr.mode.is_voting_member() => return vec![],
            Some(Ok(o)) => format!("mode {}", o.srvr.mode),
        };
        vec![Failure {
            check: Check::VoterServing,
            server: Some(id),
            observed,
            expected: "serving as leader or follower".into(),
        }]
    }
}

/// Server `id` is serving and 0 transactions behind the leader.
fn lag_zero(id: u64) -> impl Condition {
    move |obs: &EnsembleObservation| match (obs.zxid_lag(id), obs.leader_observation()) {
        (Some(lag), Some(leader)) if lag > 0 => vec![Failure {
            check: Check::Lag,
            server: Some(id),
            observed: format!("zxid lag {lag} behind the leader's {}", leader.srvr.zxid),
            expected: "zxid lag 0".into(),
        }],
        _ => vec![],
    }
}

/// DESIGN 9 (ZOOKEEPER-2325): every serving voter but `except` has the
/// leader's zxid (lag 0).
fn equal_zxid_except(except: Option<u64>) -> impl Condition {
    move |obs: &EnsembleObservation| {
        let Some(leader) = obs.leader_observation().map(|o| o.srvr.zxid) else {
            return vec![];
        };
        obs.serving_voters()
            .into_iter()
            .filter(|&id| Some(id) != except)
            .filter_map(|id| {
                let lag = obs.zxid_lag(id)?;
                let zxid = obs.observation(id)?.srvr.zxid;
                (lag > 0).then(|| Failure {
                    check: Check::Lag,
                    server: Some(id),
                    observed: format!("zxid {zxid}, {lag} behind the leader's {leader}"),
                    expected: "the leader's zxid (every write on a quorum without the \
                               server to be fenced)"
                        .into(),
                })
            })
            .collect()
    }
}

/// The limits of one wait; from the plan's policy plus the leader grace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    pub sync_timeout: Duration,
    pub progress_deadline: Duration,
    pub leader_grace: Duration,
}

impl Deadlines {
    pub fn from_policy(policy: &Policy) -> Deadlines {
        Deadlines {
            sync_timeout: policy.sync_timeout,
            progress_deadline: policy.progress_deadline,
            leader_grace: DEFAULT_LEADER_GRACE,
        }
    }
}

/// Which limit ended a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// The whole wait took `policy.syncTimeout`.
    SyncTimeout { limit: Duration },
    /// Nothing progressed for `policy.progressDeadline`.
    ProgressDeadline { limit: Duration },
    /// Leadership stayed contested longer than the grace.
    LeaderConflict { grace: Duration },
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = |d: &Duration| humantime::format_duration(*d).to_string();
        match self {
            Deadline::SyncTimeout { limit } => {
                write!(
                    f,
                    "sync timeout: not passed within {} (policy.syncTimeout)",
                    h(limit)
                )
            }
            Deadline::ProgressDeadline { limit } => write!(
                f,
                "progress deadline: no progress for {} (policy.progressDeadline)",
                h(limit)
            ),
            Deadline::LeaderConflict { grace } => write!(
                f,
                "leader conflict: leadership contested for longer than {}",
                h(grace)
            ),
        }
    }
}

/// The decision on one observation.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Everything awaited holds; `leader` is the agreed leader.
    Pass { leader: u64 },
    /// Not yet: `message` is the progress line, `progressed` says why the
    /// progress clock restarted, when it did.
    Wait {
        report: HealthReport,
        message: String,
        progressed: Option<String>,
    },
    /// Give up: the last report and the limit that fired.
    Halt {
        report: HealthReport,
        deadline: Deadline,
    },
}

type Key = (Check, Option<u64>, String);

/// What a wait remembers between observations.
#[derive(Debug, Clone)]
pub struct History {
    pub awaited: Awaited,
    pub deadlines: Deadlines,
    pub started: Instant,
    last_progress: Instant,
    previous: Option<HashSet<Key>>,
    seen: Vec<HashSet<Key>>,
    lag_floor: Option<u64>,
    grace: LeaderGrace,
}

impl History {
    pub fn new(awaited: Awaited, deadlines: Deadlines, started: Instant) -> History {
        History {
            awaited,
            deadlines,
            started,
            last_progress: started,
            previous: None,
            seen: Vec::new(),
            lag_floor: None,
            grace: LeaderGrace::new(deadlines.leader_grace),
        }
    }

    /// When the progress clock last restarted.
    pub fn last_progress(&self) -> Instant {
        self.last_progress
    }

    /// Applies the progress rule to one observation's failing set and lag.
    fn note(&mut self, failing: HashSet<Key>, lag: Option<u64>, now: Instant) -> Option<String> {
        let cleared: Vec<&Key> = match &self.previous {
            Some(prev) => prev.iter().filter(|k| !failing.contains(*k)).collect(),
            None => vec![],
        };
        let new_state = !self.seen.contains(&failing);
        let pairs = |set: &HashSet<Key>| {
            set.iter()
                .map(|(check, server, _)| (*check, *server))
                .collect::<HashSet<_>>()
                .len()
        };
        let not_worse = self
            .previous
            .as_ref()
            .is_none_or(|prev| pairs(&failing) <= pairs(prev));
        let progressed = if !cleared.is_empty() && new_state && not_worse {
            let mut names: Vec<String> = cleared.iter().map(|k| describe_key(k)).collect();
            names.sort();
            Some(format!("cleared: {}", names.join(", ")))
        } else {
            match (lag, self.lag_floor) {
                (Some(l), Some(floor)) if l < floor => Some(format!("zxid lag {floor} -> {l}")),
                _ => None,
            }
        };
        if progressed.is_some() {
            self.last_progress = now;
            self.lag_floor = lag;
        } else {
            self.lag_floor = match (self.lag_floor, lag) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        if new_state {
            self.seen.push(failing.clone());
        }
        self.previous = Some(failing);
        progressed
    }
}

fn describe_key((check, server, stage): &Key) -> String {
    let who = server.map_or(String::new(), |id| format!(" of server {id}"));
    if stage.is_empty() {
        format!("{check:?}{who}")
    } else {
        format!("{check:?}{who} ({stage})")
    }
}

/// The part of a failure that marks a stage (see the module header).
fn key(failure: &Failure) -> Key {
    let observed = failure.observed.as_str();
    let stage = match failure.check {
        Check::Lag | Check::Quorum | Check::QuorumWithout => "",
        Check::VoterServing => observed.split(" (").next().unwrap_or_default(),
        Check::VotersSynced | Check::OneLeader => observed.split(' ').next().unwrap_or_default(),
    };
    let stage = stage.to_string();
    (failure.check, failure.server, stage)
}

/// Folds one observation seen at `now` into `history` and decides.
pub fn judge(history: &mut History, obs: &EnsembleObservation, now: Instant) -> Verdict {
    let leadership = history.grace.judge(obs.leader_verdict(), now);
    let report = HealthReport {
        failures: history.awaited.failures(obs),
    };
    if let (true, LeaderJudgement::Leader(leader)) = (report.is_healthy(), &leadership) {
        return Verdict::Pass { leader: *leader };
    }
    let failing: HashSet<Key> = report.failures.iter().map(key).collect();
    let lag = history.awaited.lag(obs);
    let progressed = history.note(failing, lag, now);
    if let Some(p) = &progressed {
        tracing::info!(wait = %history.awaited, lag, "progress: {p}");
    }
    let halt = |deadline| Verdict::Halt {
        report: report.clone(),
        deadline,
    };
    if let LeaderJudgement::Conflict(_) = leadership {
        return halt(Deadline::LeaderConflict {
            grace: history.deadlines.leader_grace,
        });
    }
    if now.saturating_duration_since(history.started) >= history.deadlines.sync_timeout {
        return halt(Deadline::SyncTimeout {
            limit: history.deadlines.sync_timeout,
        });
    }
    let settling = matches!(leadership, LeaderJudgement::Settling { .. });
    let idle = now.saturating_duration_since(history.last_progress);
    if !settling && idle >= history.deadlines.progress_deadline {
        return halt(Deadline::ProgressDeadline {
            limit: history.deadlines.progress_deadline,
        });
    }
    let mut message = headline(&report, obs);
    if let LeaderJudgement::Settling { remaining } = leadership {
        message = format!(
            "leadership settling ({}s of grace left); {message}",
            remaining.as_secs()
        );
    }
    Verdict::Wait {
        report,
        message,
        progressed,
    }
}

/// The progress line: the first failure in a few words, and how many more.
pub fn headline(report: &HealthReport, obs: &EnsembleObservation) -> String {
    let Some(first) = report.failures.first() else {
        return "passed".to_string();
    };
    let who = |id: Option<u64>| id.map_or(String::new(), |id| format!("server {id}: "));
    let text = match first.check {
        Check::VoterServing if first.observed.starts_with("unreachable") => {
            format!("{}unreachable", who(first.server))
        }
        Check::VoterServing => format!("{}not serving yet", who(first.server)),
        Check::Lag => match first.server.and_then(|id| obs.zxid_lag(id)) {
            Some(lag) => format!("{}zxid lag {lag}", who(first.server)),
            None => format!("{}{}", who(first.server), first.observed),
        },
        Check::VotersSynced => {
            let voters = obs.voters().len().saturating_sub(1);
            let mntr = obs.leader_observation().and_then(|o| o.mntr.as_ref());
            match mntr.map(|m| (m.synced_followers(), m.pending_syncs())) {
                Some((Some(synced), Some(0))) => {
                    format!("leader: {synced} of {voters} followers synced")
                }
                Some((Some(synced), Some(pending))) => format!(
                    "leader: {synced} of {voters} followers synced, {pending} pending syncs"
                ),
                _ => format!("leader: {}", first.observed),
            }
        }
        Check::QuorumWithout => format!(
            "without server {}: {}",
            first.server.unwrap_or_default(),
            first.observed.trim_start_matches("without it, ")
        ),
        Check::Quorum | Check::OneLeader => first.observed.clone(),
    };
    match report.failures.len() {
        1 => text,
        n => format!("{text} (+{} more)", n - 1),
    }
}
