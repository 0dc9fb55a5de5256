//! The conditions a gate combines: each a pure check of an
//! [`EnsembleObservation`] returning its [`Failure`]s as data (observed,
//! expected, server), combined with [`Condition::and`]. `quorum_gate` is
//! DESIGN 2's "Quorum first" in one value.

use std::fmt;

use super::LeaderVerdict;
use crate::observe::ensemble::{EnsembleObservation, FailureKind};

/// What a gate checks; names a [`Failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    /// The voter answers and serves as leader or follower.
    VoterServing,
    /// More than half of the voters serve.
    Quorum,
    /// Exactly one leader, agreed by quorum.
    OneLeader,
    /// The leader's `zk_synced_followers` / `zk_pending_syncs`.
    VotersSynced,
    /// A voter's zxid lag behind the leader.
    Lag,
    /// The voters left after taking one down would still be a quorum.
    QuorumWithout,
}

/// One failing reason: what was observed, what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub check: Check,
    /// The server concerned, when the failure is about one.
    pub server: Option<u64>,
    pub observed: String,
    pub expected: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(id) = self.server {
            write!(f, "server {id}: ")?;
        }
        write!(f, "observed {}; expected {}", self.observed, self.expected)
    }
}

/// Every failing reason of a gate, empty when healthy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthReport {
    pub failures: Vec<Failure>,
}

impl HealthReport {
    pub fn is_healthy(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for HealthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.failures.is_empty() {
            return f.write_str("healthy");
        }
        for (i, fail) in self.failures.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{fail}")?;
        }
        Ok(())
    }
}

/// A health check of a snapshot. Any `Fn(&EnsembleObservation) ->
/// Vec<Failure>` is one.
pub trait Condition {
    /// The failures this check finds; empty when it holds.
    fn failures(&self, obs: &EnsembleObservation) -> Vec<Failure>;

    /// True when the check holds.
    fn holds(&self, obs: &EnsembleObservation) -> bool {
        self.failures(obs).is_empty()
    }

    /// Both checks; the failures of both are reported.
    fn and<C: Condition>(self, other: C) -> And<Self, C>
    where
        Self: Sized,
    {
        And(self, other)
    }

    /// The failures as a report.
    fn report(&self, obs: &EnsembleObservation) -> HealthReport {
        HealthReport {
            failures: self.failures(obs),
        }
    }
}

impl<F: Fn(&EnsembleObservation) -> Vec<Failure>> Condition for F {
    fn failures(&self, obs: &EnsembleObservation) -> Vec<Failure> {
        self(obs)
    }
}

/// Two conditions together ([`Condition::and`]).
#[derive(Debug, Clone, Copy)]
pub struct And<A, B>(A, B);

impl<A: Condition, B: Condition> Condition for And<A, B> {
    fn failures(&self, obs: &EnsembleObservation) -> Vec<Failure> {
        let mut f = self.0.failures(obs);
        f.extend(self.1.failures(obs));
        f
    }
}

fn fail(
    check: Check,
    server: Option<u64>,
    observed: String,
    expected: impl Into<String>,
) -> Failure {
    Failure {
        check,
        server,
        observed,
        expected: expected.into(),
    }
}

/// Every voter answers and serves as leader or follower.
pub fn every_voter_serving() -> impl Condition {
    every_voter_serving_but(None)
}

/// Every voter but `down` answers and serves as leader or follower.
pub fn every_voter_serving_but(down: Option<u64>) -> impl Condition {
    move |obs: &EnsembleObservation| {
        let voters = obs.voters();
        obs.servers
            .iter()
            .filter(|e| voters.contains(&e.id) && Some(e.id) != down)
            .filter_map(|e| {
                let observed = match &e.outcome {
                    Err(f) => match f.kind {
                        FailureKind::Unreachable => format!("unreachable ({})", f.message),
                        FailureKind::NotServing => format!("not serving ({})", f.message),
                        FailureKind::Other => f.message.clone(),
                    },
                    Ok(o) if o.srvr.mode.is_voting_member() => return None,
                    Ok(o) => format!("mode {}", o.srvr.mode),
                };
                Some(fail(
                    Check::VoterServing,
                    Some(e.id),
                    observed,
                    "serving as leader or follower",
                ))
            })
            .collect()
    }
}

/// More than half of the voters serve.
pub fn has_quorum() -> impl Condition {
    |obs: &EnsembleObservation| {
        if obs.has_quorum() {
            return vec![];
        }
        let (serving, voters) = (obs.serving_voters(), obs.voters());
        vec![fail(
            Check::Quorum,
            None,
            format!(
                "{} of {} voters serving {:?}",
                serving.len(),
                voters.len(),
                serving
            ),
            format!("more than {}", voters.len() / 2),
        )]
    }
}

/// Exactly one leader; a stale second claimant fails too (a gate waits it out).
pub fn exactly_one_leader() -> impl Condition {
    |obs: &EnsembleObservation| {
        let observed = match obs.leader_verdict() {
            LeaderVerdict::One(_) => return vec![],
            LeaderVerdict::None => "no leader".to_string(),
            LeaderVerdict::Resolved { leader, stale } => {
                format!("leader {leader}, and stale claimants {stale:?}")
            }
            LeaderVerdict::Conflict { claimants, reason } => {
                let c: Vec<String> = claimants
                    .iter()
                    .map(|(id, z)| format!("{id} at {z}"))
                    .collect();
                format!("conflicting leaders [{}]: {reason}", c.join(", "))
            }
        };
        vec![fail(Check::OneLeader, None, observed, "exactly one leader")]
    }
}

/// The leader reports all other voters synced and no sync pending.
pub fn all_voters_synced() -> impl Condition {
    all_voters_synced_but(None)
}

/// The leader reports every other voter but `down` synced, and no sync
/// pending.
pub fn all_voters_synced_but(down: Option<u64>) -> impl Condition {
    move |obs: &EnsembleObservation| {
        let Some(leader) = obs.leader() else {
            return vec![fail(
                Check::VotersSynced,
                None,
                "no agreed leader".into(),
                "a leader reporting sync",
            )];
        };
        let Some(m) = obs.observation(leader).and_then(|o| o.mntr.as_ref()) else {
            return vec![fail(
                Check::VotersSynced,
                Some(leader),
                "no mntr from the leader".into(),
                "the leader's mntr",
            )];
        };
        let left_out = usize::from(down.is_some_and(|d| d != leader));
        let expected = obs.voters().len().saturating_sub(1 + left_out);
        let show = |v: Option<u64>| v.map_or("absent".to_string(), |n| n.to_string());
        let mut out = vec![];
        if m.synced_followers() != Some(expected as u64) {
            out.push(fail(
                Check::VotersSynced,
                Some(leader),
                format!("zk_synced_followers {}", show(m.synced_followers())),
                if left_out == 0 {
                    format!("zk_synced_followers {expected} (voters - 1)")
                } else {
                    format!(
                        "zk_synced_followers {expected} (voters - 1, without server {})",
                        down.unwrap_or_default()
                    )
                },
            ));
        }
        if m.pending_syncs() != Some(0) {
            out.push(fail(
                Check::VotersSynced,
                Some(leader),
                format!("zk_pending_syncs {}", show(m.pending_syncs())),
                "zk_pending_syncs 0",
            ));
        }
        out
    }
}

/// Every serving voter is at most `max` transactions behind the leader
/// (`0` before fencing a host, DESIGN 9).
pub fn lag_within(max: u64) -> impl Condition {
    move |obs: &EnsembleObservation| {
        let Some(leader) = obs.leader_observation().map(|o| o.srvr.zxid) else {
            return vec![];
        };
        obs.serving_voters()
            .into_iter()
            .filter_map(|id| {
                let lag = obs.zxid_lag(id)?;
                let zxid = obs.observation(id)?.srvr.zxid;
                (lag > max).then(|| {
                    fail(
                        Check::Lag,
                        Some(id),
                        format!("zxid {zxid}, {lag} behind the leader's {leader}"),
                        format!("at most {max} behind"),
                    )
                })
            })
            .collect()
    }
}

/// The voters that would remain serving without server `id` are a quorum
/// of all voters: checked before taking `id` down.
pub fn quorum_without(id: u64) -> impl Condition {
    move |obs: &EnsembleObservation| {
        let voters = obs.voters().len();
        let remaining: Vec<u64> = obs
            .serving_voters()
            .into_iter()
            .filter(|&v| v != id)
            .collect();
        if remaining.len() * 2 > voters {
            return vec![];
        }
        vec![fail(
            Check::QuorumWithout,
            Some(id),
            format!(
                "without it, {} of {voters} voters serving {remaining:?}",
                remaining.len()
            ),
            format!("more than {} remaining", voters / 2),
        )]
    }
}

/// DESIGN 2 "Quorum first": every voter serving, one leader, all synced, lag
/// within `max_lag`.
pub fn quorum_gate(max_lag: u64) -> impl Condition {
    quorum_gate_but(max_lag, None)
}

/// [`quorum_gate`] when server `down` is known not to serve: every other
/// voter serving and synced. Before restarting a server that is down
/// already (its restart failed, say), nothing more goes down.
pub fn quorum_gate_but(max_lag: u64, down: Option<u64>) -> impl Condition {
    every_voter_serving_but(down)
        .and(has_quorum())
        .and(exactly_one_leader())
        .and(all_voters_synced_but(down))
        .and(lag_within(max_lag))
}
