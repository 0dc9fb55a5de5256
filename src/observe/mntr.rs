//! `mntr`: `zk_<key>\t<value>` lines. The sync gate reads the leader's
//! `zk_synced_followers` and `zk_pending_syncs` here (DESIGN 2).
//!
//! All keys are kept (the list grows with every release: 3.4 prints about
//! twenty, 3.8 several hundred), with typed accessors for the ones gates use.
//! Differences across versions are absorbed by the accessors, not callers:
//! 3.4 calls the learner count `zk_followers` (3.5+: `zk_learners`) and has no
//! `zk_peer_state`, `zk_quorum_size` or observer counters.

use std::collections::BTreeMap;

use super::ParseError;
use super::srvr::Mode;
use super::zxid::Version;

/// A parsed `mntr` reply (or the AdminServer's `monitor`, whose keys get
/// the `zk_` prefix back so both paths read the same).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mntr {
    /// Every key, with its `zk_` prefix, and its value as printed.
    pub entries: BTreeMap<String, String>,
}

impl Mntr {
    /// The raw value of a key (`zk_` prefix included).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// A key's value as an unsigned integer; `None` when absent or not one.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.trim().parse().ok()
    }

    /// `zk_version`, parsed.
    pub fn version(&self) -> Option<Version> {
        Version::parse(self.get("zk_version")?)
    }

    /// `zk_server_state`: the server's mode.
    pub fn server_state(&self) -> Option<Mode> {
        self.get("zk_server_state").map(Mode::parse)
    }

    /// `zk_peer_state` (3.5+), e.g. `following - broadcast`: a follower
    /// that is still syncing shows `following - synchronization`.
    pub fn peer_state(&self) -> Option<&str> {
        self.get("zk_peer_state")
    }

    /// Leader only: voting followers in sync (forwarding).
    pub fn synced_followers(&self) -> Option<u64> {
        self.get_u64("zk_synced_followers")
    }

    /// Leader only (3.6+): synced followers that do not vote.
    pub fn synced_non_voting_followers(&self) -> Option<u64> {
        self.get_u64("zk_synced_non_voting_followers")
    }

    /// Leader only (3.6+): synced observers.
    pub fn synced_observers(&self) -> Option<u64> {
        self.get_u64("zk_synced_observers")
    }

    /// Leader only: learners still syncing.
    pub fn pending_syncs(&self) -> Option<u64> {
        self.get_u64("zk_pending_syncs")
    }

    /// Leader only: connected learners, `zk_learners` (3.5+) or
    /// `zk_followers` (3.4).
    pub fn learners(&self) -> Option<u64> {
        self.get_u64("zk_learners")
            .or_else(|| self.get_u64("zk_followers"))
    }

    /// `zk_quorum_size` (3.5+): the number of voters in the configuration.
    pub fn quorum_size(&self) -> Option<u64> {
        self.get_u64("zk_quorum_size")
    }

    /// `zk_num_alive_connections`: client connections.
    pub fn num_alive_connections(&self) -> Option<u64> {
        self.get_u64("zk_num_alive_connections")
    }
}

/// Parses a `mntr` reply. Lines without a tab are skipped; the reply must
/// hold `zk_server_state`, the one key every version prints and every gate
/// needs.
pub fn parse_mntr(text: &str) -> Result<Mntr, ParseError> {
    let entries: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(k, _)| k.starts_with("zk_"))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect();
    if !entries.contains_key("zk_server_state") {
        return Err(ParseError::new("mntr", "no `zk_server_state` key"));
    }
    Ok(Mntr { entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::fixtures::read;
    use proptest::prelude::*;

    #[test]
    fn leader_3_8() {
        for f in ["zk-3.8.0/leader-3.mntr.txt", "zk-3.8.0-dynamic/mntr-3.txt"] {
            let m = parse_mntr(&read(f)).unwrap();
            assert_eq!(m.server_state(), Some(Mode::Leader), "{f}");
            assert_eq!(m.peer_state(), Some("leading - broadcast"));
            assert_eq!(m.synced_followers(), Some(2));
            assert_eq!(m.synced_non_voting_followers(), Some(0));
            assert_eq!(m.synced_observers(), Some(0));
            assert_eq!(m.pending_syncs(), Some(0));
            assert_eq!(m.learners(), Some(2));
            assert_eq!(m.quorum_size(), Some(3));
            assert_eq!(m.num_alive_connections(), Some(1));
            assert_eq!(m.version().unwrap().to_string(), "3.8.0");
            assert!(m.entries.len() > 300, "{f}: {}", m.entries.len());
        }
    }

    #[test]
    fn followers_3_8() {
        for f in [
            "zk-3.8.0/follower-1.mntr.txt",
            "zk-3.8.0/follower-2.mntr.txt",
        ] {
            let m = parse_mntr(&read(f)).unwrap();
            assert_eq!(m.server_state(), Some(Mode::Follower), "{f}");
            assert_eq!(m.peer_state(), Some("following - broadcast"));
            assert_eq!(m.synced_followers(), None, "leader-only key");
            assert_eq!(m.pending_syncs(), None);
            assert_eq!(m.learners(), None);
            assert_eq!(m.quorum_size(), Some(3));
        }
        let m = parse_mntr(&read("zk-3.8.0/follower-1.mntr.txt")).unwrap();
        assert_eq!(m.get("zk_avg_latency"), Some("0.0"));
        assert_eq!(m.get_u64("zk_max_file_descriptor_count"), Some(20000));
    }

    #[test]
    fn zookeeper_3_4() {
        let m = parse_mntr(&read("zk-3.4/leader-3.mntr.txt")).unwrap();
        assert_eq!(m.server_state(), Some(Mode::Leader));
        assert_eq!(m.peer_state(), None);
        assert_eq!(m.learners(), Some(2), "zk_followers in 3.4");
        assert_eq!(m.synced_followers(), Some(2));
        assert_eq!(m.pending_syncs(), Some(0));
        assert_eq!(m.quorum_size(), None);
        assert_eq!(m.version().unwrap().to_string(), "3.4.14");
        let m = parse_mntr(&read("zk-3.4/follower-1.mntr.txt")).unwrap();
        assert_eq!(m.server_state(), Some(Mode::Follower));
        assert_eq!(m.num_alive_connections(), Some(2));
        assert_eq!(m.entries.len(), 15);
    }

    #[test]
    fn refusals_are_not_mntr() {
        assert!(parse_mntr(&read("zk-3.8.0-session/lost-quorum-3.mntr.txt")).is_err());
        assert!(parse_mntr(&read("zk-3.8.0-session/not-whitelisted.mntr.txt")).is_err());
        assert!(parse_mntr("").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            if let Ok(m) = parse_mntr(&s) {
                let _ = (m.version(), m.server_state(), m.learners(), m.pending_syncs());
            }
        }

        #[test]
        fn accessors_never_panic(v in ".*") {
            let text = format!("zk_server_state\t{v}\nzk_version\t{v}\nzk_synced_followers\t{v}\n");
            let m = parse_mntr(&text).unwrap();
            let _ = (m.version(), m.server_state(), m.synced_followers());
        }
    }
}
