//! Health predicates: pure functions of an [`EnsembleObservation`], the
//! material of the safety gates (DESIGN 2, "Quorum first").
//!
//! Shaped like kube-runtime's `Condition`: each check is a small value that
//! evaluates a snapshot, and checks combine with [`Condition::and`]. Unlike a
//! boolean condition, each returns its [`Failure`]s as data (what was
//! observed, what was expected, on which server), so a gate that halts prints
//! every reason at once ("Nothing silent"). Waiting and timeouts are not here:
//! they belong to the one wait loop of the caller.
//!
//! Two ZooKeeper facts shape the arithmetic:
//! - Right after an election with no write yet, the leader reports
//!   `(epoch, 0)` while synced followers still report the last zxid of the
//!   previous epoch (captured: leader `0x100000000`, followers `0x0`). Raw
//!   subtraction would call every follower 2^32 behind, so [`zxid_lag`]
//!   counts a server of an older epoch as missing the current epoch's
//!   transactions only: a server that serves as a follower has, by the sync
//!   protocol, everything of the epochs before.
//! - Two servers may both claim `leader` for about a second after a
//!   partition. The claimant with the higher epoch is the real one (every
//!   election increments it); the verdict says so, and [`LeaderGrace`] lets a
//!   caller wait out the overlap before it calls it a conflict.
//!
//! The verdicts on a snapshot live here; the combinable checks built on them
//! in [`conditions`] (re-exported); tests on hand-built snapshots in `tests`.
//!
//! [`zxid_lag`]: EnsembleObservation::zxid_lag

pub mod conditions;
#[cfg(test)]
mod tests;

pub use conditions::*;

use std::time::{Duration, Instant};

use super::conf::Role;
use super::ensemble::{EnsembleObservation, ServerObservation};
use super::srvr::Mode;
use super::zxid::Zxid;

/// Who leads, as far as one snapshot can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderVerdict {
    /// Exactly one server claims leadership and no voter has seen a newer epoch.
    One(u64),
    /// Several claim it; `leader` has the unique highest epoch and a serving
    /// quorum, the `stale` ones are left over from before an election.
    Resolved { leader: u64, stale: Vec<u64> },
    /// No serving server claims leadership.
    None,
    /// Claims that cannot be resolved: equal epochs, no quorum behind the
    /// newest, or a voter already in a newer epoch than every claimant.
    Conflict {
        claimants: Vec<(u64, Zxid)>,
        reason: String,
    },
}

impl EnsembleObservation {
    /// The observation of server `id`, when it serves.
    pub fn observation(&self, id: u64) -> Option<&ServerObservation> {
        self.servers
            .iter()
            .find(|e| e.id == id)
            .and_then(|e| e.outcome.as_ref().ok())
    }

    fn serving(&self) -> impl Iterator<Item = (u64, &ServerObservation)> {
        self.servers
            .iter()
            .filter_map(|e| e.outcome.as_ref().ok().map(|o| (e.id, o)))
    }

    /// True when server `id` is an observer: it says so itself, or some
    /// server's membership lists it as one.
    pub fn is_observer(&self, id: u64) -> bool {
        self.observation(id)
            .is_some_and(|o| o.srvr.mode == Mode::Observer)
            || self.serving().any(|(_, o)| {
                o.conf
                    .as_ref()
                    .and_then(|c| c.server(id))
                    .is_some_and(|s| s.role == Role::Observer)
            })
    }

    /// Ids of the expected voters (expected servers that are not observers).
    pub fn voters(&self) -> Vec<u64> {
        self.servers
            .iter()
            .map(|e| e.id)
            .filter(|&id| !self.is_observer(id))
            .collect()
    }

    /// Voters that serve as leader or follower.
    pub fn serving_voters(&self) -> Vec<u64> {
        self.voters()
            .into_iter()
            .filter(|&id| {
                self.observation(id)
                    .is_some_and(|o| o.srvr.mode.is_voting_member())
            })
            .collect()
    }

    /// More than half of the voters serve.
    pub fn has_quorum(&self) -> bool {
        self.serving_voters().len() * 2 > self.voters().len()
    }

    /// Judges leadership by quorum agreement (see the module header).
    pub fn leader_verdict(&self) -> LeaderVerdict {
        let mut claimants: Vec<(u64, Zxid)> = self
            .serving()
            .filter(|(_, o)| o.srvr.mode == Mode::Leader)
            .map(|(id, o)| (id, o.srvr.zxid))
            .collect();
        if claimants.is_empty() {
            return LeaderVerdict::None;
        }
        claimants.sort_by_key(|&(id, z)| (std::cmp::Reverse(z.epoch()), id));
        let (top, top_zxid) = claimants[0];
        let newest_voter_epoch = self
            .serving_voters()
            .iter()
            .filter_map(|&id| self.observation(id))
            .map(|o| o.srvr.zxid.epoch())
            .max()
            .unwrap_or(0);
        if newest_voter_epoch > top_zxid.epoch() {
            return LeaderVerdict::Conflict {
                claimants,
                reason: format!(
                    "a voter is in epoch {newest_voter_epoch}, newer than every claimant"
                ),
            };
        }
        if claimants.len() == 1 {
            return LeaderVerdict::One(top);
        }
        if claimants[1].1.epoch() == top_zxid.epoch() {
            return LeaderVerdict::Conflict {
                reason: format!("two claimants in epoch {}", top_zxid.epoch()),
                claimants,
            };
        }
        let stale: Vec<u64> = claimants[1..].iter().map(|&(id, _)| id).collect();
        let backing = self
            .serving_voters()
            .into_iter()
            .filter(|id| !stale.contains(id))
            .count();
        if backing * 2 > self.voters().len() {
            LeaderVerdict::Resolved { leader: top, stale }
        } else {
            LeaderVerdict::Conflict {
                reason: format!(
                    "only {backing} of {} voters back the newest claimant",
                    self.voters().len()
                ),
                claimants,
            }
        }
    }

    /// The leader agreed by quorum ([`LeaderVerdict::One`] or `Resolved`).
    pub fn leader(&self) -> Option<u64> {
        match self.leader_verdict() {
            LeaderVerdict::One(id) | LeaderVerdict::Resolved { leader: id, .. } => Some(id),
            _ => None,
        }
    }

    /// The leader's observation.
    pub fn leader_observation(&self) -> Option<&ServerObservation> {
        self.observation(self.leader()?)
    }

    /// The leader reports every other voter synced: `zk_synced_followers`
    /// equals voters - 1 and `zk_pending_syncs` is 0. False when the leader
    /// or its `mntr` is unknown.
    pub fn all_voters_synced(&self) -> bool {
        let Some(m) = self.leader_observation().and_then(|o| o.mntr.as_ref()) else {
            return false;
        };
        let expected = self.voters().len().saturating_sub(1) as u64;
        m.synced_followers() == Some(expected) && m.pending_syncs() == Some(0)
    }

    /// Transactions server `id` has not processed that the leader has; 0 when
    /// it is ahead. `None` when the leader or the server is not observed.
    pub fn zxid_lag(&self, id: u64) -> Option<u64> {
        let leader = self.leader_observation()?.srvr.zxid;
        let server = self.observation(id)?.srvr.zxid;
        Some(lag(leader, server))
    }

    /// The largest lag among serving voters.
    pub fn max_lag(&self) -> Option<u64> {
        self.serving_voters()
            .into_iter()
            .filter_map(|id| self.zxid_lag(id))
            .max()
    }

    /// The leader's epoch, or the newest epoch observed when no leader is
    /// agreed. The number of elections between two snapshots is the
    /// difference of their epochs.
    pub fn epoch(&self) -> Option<u32> {
        match self.leader_observation() {
            Some(o) => Some(o.srvr.zxid.epoch()),
            None => self.serving().map(|(_, o)| o.srvr.zxid.epoch()).max(),
        }
    }
}

/// Lag of `server` behind `leader` (see the module header for epochs).
pub fn lag(leader: Zxid, server: Zxid) -> u64 {
    use std::cmp::Ordering::*;
    match server.epoch().cmp(&leader.epoch()) {
        Equal => u64::from(leader.counter().saturating_sub(server.counter())),
        Less => u64::from(leader.counter()),
        Greater => 0,
    }
}

/// A caller's judgement of leadership over successive snapshots, with a
/// grace period for the overlap after a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderJudgement {
    Leader(u64),
    /// Contested for less than the grace period: look again.
    Settling {
        remaining: Duration,
    },
    NoLeader,
    /// Contested for longer than the grace period.
    Conflict(LeaderVerdict),
}

/// Tracks since when leadership is contested. A pure state machine: the
/// caller passes the time, so tests control it.
#[derive(Debug, Clone)]
pub struct LeaderGrace {
    pub grace: Duration,
    contested_since: Option<Instant>,
}

impl LeaderGrace {
    pub fn new(grace: Duration) -> Self {
        Self {
            grace,
            contested_since: None,
        }
    }

    /// Folds one verdict, seen at `now`, into a judgement.
    pub fn judge(&mut self, verdict: LeaderVerdict, now: Instant) -> LeaderJudgement {
        match verdict {
            LeaderVerdict::One(id) => {
                self.contested_since = None;
                LeaderJudgement::Leader(id)
            }
            LeaderVerdict::None => {
                self.contested_since = None;
                LeaderJudgement::NoLeader
            }
            contested => {
                let since = *self.contested_since.get_or_insert(now);
                let elapsed = now.saturating_duration_since(since);
                if elapsed < self.grace {
                    LeaderJudgement::Settling {
                        remaining: self.grace - elapsed,
                    }
                } else {
                    LeaderJudgement::Conflict(contested)
                }
            }
        }
    }
}
