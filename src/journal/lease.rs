//! The Lease that locks a plan's journal in the kubernetes backend: the
//! pure decision of whether a runner may take it ([`decide`]).
//!
//! A Lease is free when it has no holder. It is live while `renewTime +
//! leaseDurationSeconds` is in the future; a live Lease held by another
//! runner is never taken. An expired Lease held by another runner is taken
//! only with `--steal-lease`: its holder may still be running (a paused
//! VM, a partitioned network), so the operator says it is gone. The I/O
//! (get, create, update with `resourceVersion`) is in `kube`.

use std::fmt;
use std::time::{Duration, SystemTime};

use super::Clock;

/// The part of a Lease the decision reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    /// `spec.holderIdentity`; `None` or empty when free.
    pub holder: Option<String>,
    /// `spec.renewTime` (else `acquireTime`).
    pub renewed: Option<SystemTime>,
    /// `spec.leaseDurationSeconds`.
    pub duration: Option<Duration>,
    /// `spec.leaseTransitions`.
    pub transitions: i32,
}

impl LeaseView {
    /// When the holder's claim ends: `renewed + duration`; `None` when the
    /// Lease has no renew time or duration (it never expires on its own
    /// word, so it counts as expired).
    pub fn expires(&self) -> Option<SystemTime> {
        Some(self.renewed? + self.duration?)
    }

    fn holder(&self) -> Option<&str> {
        self.holder.as_deref().filter(|h| !h.is_empty())
    }
}

/// What a runner with identity `me` does with the Lease it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseDecision {
    /// No Lease yet: create it.
    Create,
    /// Free (no holder): take it; `transitions` is the new count.
    Take { transitions: i32 },
    /// Already ours (same identity): renew it.
    Renew,
    /// Expired, held by another, and `--steal-lease` given: take it over.
    Steal { previous: Holder, transitions: i32 },
    /// Not ours to take.
    Refuse(Holder),
}

/// Who holds a Lease, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holder's identity (host, pid, random id).
    pub identity: String,
    /// When it last renewed the Lease.
    pub renewed: Option<SystemTime>,
    /// When its claim ends (`renewed + duration`).
    pub expires: Option<SystemTime>,
    /// Whether that time has passed.
    pub expired: bool,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = |t: Option<SystemTime>| {
            t.map_or_else(
                || "never".to_string(),
                |t| humantime::format_rfc3339_seconds(t).to_string(),
            )
        };
        write!(
            f,
            "{} (renewed {}, {} {})",
            self.identity,
            time(self.renewed),
            if self.expired { "expired" } else { "expires" },
            time(self.expires)
        )
    }
}

/// Decides what runner `me` does with `lease` (as read), at the time
/// `clock` says.
pub fn decide(lease: Option<&LeaseView>, me: &str, clock: &Clock, steal: bool) -> LeaseDecision {
    let now = clock.now();
    let Some(lease) = lease else {
        return LeaseDecision::Create;
    };
    let Some(identity) = lease.holder() else {
        return LeaseDecision::Take {
            transitions: lease.transitions + 1,
        };
    };
    if identity == me {
        return LeaseDecision::Renew;
    }
    let expires = lease.expires();
    let holder = Holder {
        identity: identity.to_string(),
        renewed: lease.renewed,
        expires,
        expired: expires.is_none_or(|at| at <= now),
    };
    if holder.expired && steal {
        LeaseDecision::Steal {
            previous: holder,
            transitions: lease.transitions + 1,
        }
    } else {
        LeaseDecision::Refuse(holder)
    }
}

/// An identity for this runner: host name, pid and a random id, so that
/// two runs on one host (or a pid reused after a reboot) never share one.
pub fn identity() -> String {
    use std::hash::{BuildHasher, Hasher};
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_string());
    // RandomState is seeded from the OS's randomness once per process.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!(
        "{host}/pid-{}/{:08x}",
        std::process::id(),
        hasher.finish() as u32
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn held_by(holder: &str, renewed: u64) -> LeaseView {
        LeaseView {
            holder: Some(holder.to_string()),
            renewed: Some(t(renewed)),
            duration: Some(Duration::from_secs(15)),
            transitions: 2,
        }
    }

    #[test]
    fn no_lease_is_created() {
        assert_eq!(
            decide(None, "me", &Clock::fixed(t(0)), false),
            LeaseDecision::Create
        );
    }

    #[test]
    fn a_free_lease_is_taken_with_or_without_steal() {
        for free in [None, Some(String::new())] {
            let lease = LeaseView {
                holder: free,
                ..held_by("x", 0)
            };
            for steal in [false, true] {
                assert_eq!(
                    decide(Some(&lease), "me", &Clock::fixed(t(100)), steal),
                    LeaseDecision::Take { transitions: 3 }
                );
            }
        }
    }

    #[test]
    fn a_live_lease_of_another_is_refused_even_with_steal() {
        let lease = held_by("host-a/pid-1/abc", 10);
        for steal in [false, true] {
            let LeaseDecision::Refuse(holder) =
                decide(Some(&lease), "me", &Clock::fixed(t(24)), steal)
            else {
                panic!("refused");
            };
            assert_eq!(
                holder,
                Holder {
                    identity: "host-a/pid-1/abc".into(),
                    renewed: Some(t(10)),
                    expires: Some(t(25)),
                    expired: false,
                }
            );
            assert_eq!(
                holder.to_string(),
                "host-a/pid-1/abc (renewed 2023-11-14T22:13:30Z, expires 2023-11-14T22:13:45Z)"
            );
        }
    }

    #[test]
    fn an_expired_lease_of_another_is_refused_without_steal_and_stolen_with_it() {
        let lease = held_by("host-a/pid-1/abc", 10);
        // Expired at exactly renewed + duration.
        let LeaseDecision::Refuse(holder) = decide(Some(&lease), "me", &Clock::fixed(t(25)), false)
        else {
            panic!("refused without --steal-lease");
        };
        assert!(holder.expired);
        assert!(holder.to_string().contains("expired 2023-11-14T22:13:45Z"));
        assert_eq!(
            decide(Some(&lease), "me", &Clock::fixed(t(25)), true),
            LeaseDecision::Steal {
                previous: holder,
                transitions: 3
            }
        );
    }

    #[test]
    fn a_lease_without_renew_time_counts_as_expired() {
        let lease = LeaseView {
            renewed: None,
            ..held_by("host-a/pid-1/abc", 0)
        };
        let LeaseDecision::Refuse(holder) = decide(Some(&lease), "me", &Clock::fixed(t(0)), false)
        else {
            panic!("refused");
        };
        assert!(holder.expired && holder.expires.is_none());
        assert!(matches!(
            decide(Some(&lease), "me", &Clock::fixed(t(0)), true),
            LeaseDecision::Steal { .. }
        ));
    }

    #[test]
    fn our_own_lease_is_renewed_live_or_expired() {
        let lease = held_by("me", 10);
        for now in [t(11), t(100)] {
            for steal in [false, true] {
                assert_eq!(
                    decide(Some(&lease), "me", &Clock::fixed(now), steal),
                    LeaseDecision::Renew
                );
            }
        }
    }

    #[test]
    fn identities_differ_between_calls_and_name_the_pid() {
        let (a, b) = (identity(), identity());
        assert_ne!(a, b);
        assert!(a.contains(&format!("/pid-{}/", std::process::id())), "{a}");
    }
}
