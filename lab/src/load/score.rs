//! The scorer: the report JSON of DESIGN section 8, from the record.
//!
//! [`score`] is pure: recorded events plus the set of acknowledged writes
//! found absent at the end give every number. [`report`] is its I/O edge:
//! it reads the record, reads back every acknowledged znode through a fresh
//! session (after a `sync`, so a lagging server cannot fake a loss), and,
//! while the worker still runs, asks the servers who owns the ephemeral
//! znode.
//!
//! Definitions, where DESIGN leaves room:
//! - `acked` counts writes the worker knows are applied: a create answered
//!   OK, or a retry answered NodeExists (that one is also a `duplicate`).
//! - Gaps are measured between consecutive acknowledgements, with the run's
//!   start and (once stopped) its stop as the outer bounds, so an outage at
//!   either end is not hidden. `unavailable_ms` sums the gaps over 100 ms;
//!   at 10 writes/s or fewer every gap exceeds that, so rehearse at the
//!   default 100/s.
//! - `elections`: epoch of the highest zxid observed (czxids of the writes
//!   and of re-created ephemerals) minus the epoch of the run's first zxid
//!   (the ephemeral znode's czxid).
//! - `ephemeral_survived`: the original ephemeral session still owned its
//!   znode at the end (the worker's own check at stop, or the servers' answer
//!   while it runs), and the record shows no expiry or replacement of it. A
//!   session id never comes back once expired, so ownership at the end means
//!   the znode lived throughout.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zookeeper_client::Client;

use super::record::{Event, Run, SessionRole, read_events};
use super::session::{close, connect};
use super::{LoadError, epoch, write_path};

/// A gap between acknowledgements longer than this counts as unavailable.
pub const UNAVAILABLE_GAP_MS: u64 = 100;

/// Reads in flight at once during the read-back.
const READ_BACK_BATCH: usize = 1000;

/// The report of DESIGN section 8; every field is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub acked: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub errors: u64,
    pub max_gap_ms: u64,
    pub unavailable_ms: u64,
    pub elections: u32,
    pub ephemeral_survived: bool,
    pub sessions_expired: u64,
    pub duration_s: f64,
}

/// The report from the record: `absent` holds the sequence numbers whose
/// znodes were not found at the end; `live_ephemeral` is the servers'
/// answer for a worker that has not stopped (ignored once it has).
pub fn score(events: &[Event], absent: &BTreeSet<u64>, live_ephemeral: Option<bool>) -> Report {
    let start_zxid = match events.first() {
        Some(Event::Started(run)) => Some(run.zxid),
        _ => None,
    };
    let mut report = Report {
        acked: 0,
        lost: 0,
        duplicates: 0,
        errors: 0,
        max_gap_ms: 0,
        unavailable_ms: 0,
        elections: 0,
        ephemeral_survived: true,
        sessions_expired: 0,
        duration_s: 0.0,
    };
    let mut bounds = vec![0];
    let mut last_zxid = start_zxid;
    let mut verdict = None;
    let mut end_ms = 0;
    for event in events {
        end_ms = end_ms.max(event.t_ms());
        match event {
            Event::Started(_) => {}
            Event::Acked {
                seq,
                t_ms,
                czxid,
                duplicate,
            } => {
                report.acked += 1;
                report.lost += u64::from(absent.contains(seq));
                report.duplicates += u64::from(*duplicate);
                bounds.push(*t_ms);
                last_zxid = last_zxid.max(*czxid);
            }
            Event::Failed { .. } => report.errors += 1,
            Event::Expired { role, .. } => {
                report.sessions_expired += 1;
                if *role == SessionRole::Ephemeral {
                    report.ephemeral_survived = false;
                }
            }
            Event::Renewed { role, czxid, .. } => {
                last_zxid = last_zxid.max(*czxid);
                if *role == SessionRole::Ephemeral {
                    report.ephemeral_survived = false;
                }
            }
            // Whether a re-attach kept the session shows in the final
            // verdict: only the original session can own the znode then.
            Event::Reconnected { .. } => {}
            Event::Stopped {
                t_ms,
                ephemeral_survived,
            } => {
                bounds.push(*t_ms);
                verdict = Some(*ephemeral_survived);
            }
        }
    }
    report.ephemeral_survived &= verdict.or(live_ephemeral).unwrap_or(false);
    for pair in bounds.windows(2) {
        let gap = pair[1].saturating_sub(pair[0]);
        report.max_gap_ms = report.max_gap_ms.max(gap);
        if gap > UNAVAILABLE_GAP_MS {
            report.unavailable_ms += gap;
        }
    }
    if let (Some(first), Some(last)) = (start_zxid, last_zxid) {
        report.elections = epoch(last).saturating_sub(epoch(first));
    }
    report.duration_s = (end_ms as f64 / 100.0).round() / 10.0;
    report
}

/// Scores the run recorded in `state_dir`, reading back its znodes through
/// `connect` (the worker may still run; the report is then a snapshot).
pub async fn report(state_dir: &Path, connect_string: &str) -> Result<Report, LoadError> {
    let events = read_events(state_dir)?;
    let Some(Event::Started(run)) = events.first() else {
        return Err(LoadError::NotStarted {
            dir: state_dir.to_path_buf(),
        });
    };
    let client = connect(connect_string, Duration::from_secs(10), None, false).await?;
    let acked: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Acked { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    let absent = read_back(&client, &run.base, &acked).await?;
    let stopped = events.iter().any(|e| matches!(e, Event::Stopped { .. }));
    let live = if stopped {
        None
    } else {
        Some(ephemeral_owned(&client, run).await?)
    };
    close(client).await;
    Ok(score(&events, &absent, live))
}

/// The sequence numbers in `seqs` whose znodes do not exist. Requests are
/// sent in batches and answered in order, so a batch costs one round trip.
async fn read_back(client: &Client, base: &str, seqs: &[u64]) -> Result<BTreeSet<u64>, LoadError> {
    let zk = |source| LoadError::Zk {
        action: "read back",
        path: base.to_string(),
        source,
    };
    client.sync(base).await.map_err(zk)?;
    let mut absent = BTreeSet::new();
    for batch in seqs.chunks(READ_BACK_BATCH) {
        let pending: Vec<_> = batch
            .iter()
            .map(|seq| (*seq, client.check_stat(&write_path(base, *seq))))
            .collect();
        for (seq, stat) in pending {
            if stat.await.map_err(zk)?.is_none() {
                absent.insert(seq);
            }
        }
    }
    Ok(absent)
}

/// Whether the run's original ephemeral session owns its znode now.
async fn ephemeral_owned(client: &Client, run: &Run) -> Result<bool, LoadError> {
    let stat = client
        .check_stat(&run.ephemeral_path)
        .await
        .map_err(|source| LoadError::Zk {
            action: "read",
            path: run.ephemeral_path.clone(),
            source,
        })?;
    Ok(stat.is_some_and(|s| s.ephemeral_owner == run.ephemeral_session))
}

#[cfg(test)]
mod tests {
    use super::*;

    const E1: i64 = 1 << 32;
    const E2: i64 = 2 << 32;

    fn started() -> Event {
        Event::Started(Run {
            pid: 1,
            unix_ms: 0,
            connect: "a:1".into(),
            base: "/zklab-load/r0".into(),
            ephemeral_path: "/zklab-load/r0/ephemeral".into(),
            rate_per_s: 100,
            writer_session: 10,
            ephemeral_session: 11,
            zxid: E1 | 3,
        })
    }

    fn ack(seq: u64, t_ms: u64, czxid: i64) -> Event {
        Event::Acked {
            seq,
            t_ms,
            czxid: Some(czxid),
            duplicate: false,
        }
    }

    fn stopped(t_ms: u64, ephemeral_survived: bool) -> Event {
        Event::Stopped {
            t_ms,
            ephemeral_survived,
        }
    }

    #[test]
    fn a_quiet_run_scores_clean() {
        let events = vec![
            started(),
            ack(1, 10, E1 | 4),
            ack(2, 20, E1 | 5),
            ack(3, 30, E1 | 6),
            stopped(35, true),
        ];
        let report = score(&events, &BTreeSet::new(), None);
        assert_eq!(
            report,
            Report {
                acked: 3,
                lost: 0,
                duplicates: 0,
                errors: 0,
                max_gap_ms: 10,
                unavailable_ms: 0,
                elections: 0,
                ephemeral_survived: true,
                sessions_expired: 0,
                duration_s: 0.0,
            }
        );
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            r#"{"acked":3,"lost":0,"duplicates":0,"errors":0,"max_gap_ms":10,"unavailable_ms":0,"elections":0,"ephemeral_survived":true,"sessions_expired":0,"duration_s":0.0}"#
        );
    }

    #[test]
    fn an_election_shows_as_errors_a_duplicate_a_gap_and_one_epoch() {
        let events = vec![
            started(),
            ack(1, 10, E1 | 4),
            Event::Failed {
                seq: 2,
                t_ms: 20,
                error: "connection loss".into(),
            },
            Event::Failed {
                seq: 2,
                t_ms: 2030,
                error: "no answer within 2s".into(),
            },
            Event::Acked {
                seq: 2,
                t_ms: 2650,
                czxid: Some(E2 | 1),
                duplicate: true,
            },
            ack(3, 2660, E2 | 2),
            ack(4, 2900, E2 | 3),
            stopped(2905, true),
        ];
        let absent = BTreeSet::from([3, 99]);
        let report = score(&events, &absent, None);
        assert_eq!(report.acked, 4);
        assert_eq!(report.lost, 1, "99 was never acknowledged");
        assert_eq!(report.duplicates, 1);
        assert_eq!(report.errors, 2);
        assert_eq!(report.max_gap_ms, 2640);
        assert_eq!(report.unavailable_ms, 2640 + 240);
        assert_eq!(report.elections, 1);
        assert!(report.ephemeral_survived);
        assert_eq!(report.duration_s, 2.9);
    }

    #[test]
    fn an_expired_or_replaced_ephemeral_did_not_survive_and_the_final_owner_decides() {
        let expired = vec![
            started(),
            ack(1, 10, E1 | 4),
            Event::Expired {
                t_ms: 15,
                role: SessionRole::Ephemeral,
                session: 11,
            },
            Event::Renewed {
                t_ms: 16,
                role: SessionRole::Ephemeral,
                session: 12,
                czxid: Some(E1 | 5),
            },
            stopped(20, false),
        ];
        let report = score(&expired, &BTreeSet::new(), None);
        assert!(!report.ephemeral_survived);
        assert_eq!(report.sessions_expired, 1);

        // A re-attach that failed at first but succeeded on a later tick:
        // the original session owns the znode at the end, so it survived.
        let retried = vec![
            started(),
            Event::Reconnected {
                t_ms: 5,
                connect: "b:1".into(),
                writer_session: 13,
                ephemeral_session: 0,
                ephemeral_kept: false,
            },
            stopped(20, true),
        ];
        assert!(score(&retried, &BTreeSet::new(), None).ephemeral_survived);
    }

    #[test]
    fn a_running_worker_is_judged_by_the_servers_and_ends_at_its_last_event() {
        let events = vec![started(), ack(1, 10, E1 | 4), ack(2, 500, E1 | 5)];
        let alive = score(&events, &BTreeSet::new(), Some(true));
        assert!(alive.ephemeral_survived);
        assert_eq!(alive.max_gap_ms, 490);
        assert_eq!(alive.unavailable_ms, 490);
        assert_eq!(alive.duration_s, 0.5);
        assert!(!score(&events, &BTreeSet::new(), Some(false)).ephemeral_survived);
        assert!(!score(&events, &BTreeSet::new(), None).ephemeral_survived);
    }

    #[test]
    fn a_writer_expiry_counts_but_leaves_the_ephemeral_alone() {
        let events = vec![
            started(),
            ack(1, 10, E1 | 4),
            Event::Expired {
                t_ms: 30,
                role: SessionRole::Writer,
                session: 10,
            },
            Event::Renewed {
                t_ms: 40,
                role: SessionRole::Writer,
                session: 15,
                czxid: None,
            },
            ack(2, 50, E1 | 9),
            stopped(55, true),
        ];
        let report = score(&events, &BTreeSet::new(), None);
        assert_eq!(report.sessions_expired, 1);
        assert!(report.ephemeral_survived);
        assert_eq!(report.max_gap_ms, 40);
    }

    #[test]
    fn the_report_refuses_unknown_or_missing_fields() {
        let full = r#"{"acked":12000,"lost":0,"duplicates":1,"errors":2,"max_gap_ms":640,"unavailable_ms":910,"elections":1,"ephemeral_survived":true,"sessions_expired":0,"duration_s":74.2}"#;
        let report: Report = serde_json::from_str(full).unwrap();
        assert_eq!(report.duration_s, 74.2);
        assert!(serde_json::from_str::<Report>(r#"{"acked":1}"#).is_err());
        let extra = full.replace("}", r#","extra":1}"#);
        assert!(serde_json::from_str::<Report>(&extra).is_err());
    }
}
