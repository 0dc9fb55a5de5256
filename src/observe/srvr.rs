//! `srvr` and `stat`: the server summary every gate starts from (mode and
//! zxid; `mntr` has no zxid, DESIGN 7). The format has been stable since 3.3;
//! 3.4.10+ leaders add `Proposal sizes`, 3.5+ prints the average latency as a
//! decimal, and a read-only server adds a `READ-ONLY mode` line. `stat` is
//! `srvr` with a `Clients:` block after the version line.

use std::fmt;

use super::ParseError;
use super::cons::{Connection, parse_connection_line};
use super::zxid::{Version, Zxid};

/// The role a server reports (`Mode:` in `srvr`, `zk_server_state` in `mntr`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Mode {
    Leader,
    Follower,
    Observer,
    Standalone,
    /// A partitioned server serving reads only (`readonlymode.enabled`).
    ReadOnly,
    /// A value this code does not know, kept verbatim rather than refused.
    Other(String),
}

impl Mode {
    /// Reads the server's own spelling (`leader`, `read-only`, ...).
    pub fn parse(s: &str) -> Mode {
        match s.trim() {
            "leader" => Mode::Leader,
            "follower" => Mode::Follower,
            "observer" => Mode::Observer,
            "standalone" => Mode::Standalone,
            "read-only" => Mode::ReadOnly,
            other => Mode::Other(other.to_string()),
        }
    }

    /// The server's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Mode::Leader => "leader",
            Mode::Follower => "follower",
            Mode::Observer => "observer",
            Mode::Standalone => "standalone",
            Mode::ReadOnly => "read-only",
            Mode::Other(s) => s,
        }
    }

    /// True for the two modes of a voter taking part in a quorum.
    pub fn is_voting_member(&self) -> bool {
        matches!(self, Mode::Leader | Mode::Follower)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Request latency in milliseconds since the last `srst`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Latency {
    pub min: u64,
    /// An integer in 3.4, a decimal since 3.5.
    pub avg: f64,
    pub max: u64,
}

/// A parsed `srvr` reply (or its AdminServer equivalent).
#[derive(Debug, Clone, PartialEq)]
pub struct Srvr {
    pub version: Version,
    pub latency: Latency,
    /// Packets received.
    pub received: u64,
    /// Packets sent.
    pub sent: u64,
    /// Client connections, the probe's own included on the 4lw path.
    pub connections: u64,
    pub outstanding: u64,
    /// The last zxid this server processed.
    pub zxid: Zxid,
    pub mode: Mode,
    pub node_count: u64,
    /// `last/min/max` proposal sizes; leaders of 3.4.10+ only.
    pub proposal_sizes: Option<(i64, i64, i64)>,
    /// The server said `READ-ONLY mode`.
    pub read_only: bool,
}

/// A parsed `stat` reply: `srvr` plus one line per client connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    pub srvr: Srvr,
    pub clients: Vec<Connection>,
}

const WORD: &str = "srvr";

/// Parses a `srvr` reply. Every line of the 3.4 format is required; the
/// lines added later are optional; unknown lines are ignored.
pub fn parse_srvr(text: &str) -> Result<Srvr, ParseError> {
    parse_summary(text, WORD)
}

/// Parses a `stat` reply.
pub fn parse_stat(text: &str) -> Result<Stat, ParseError> {
    let mut clients = Vec::new();
    let mut in_clients = false;
    for line in text.lines() {
        if line.trim() == "Clients:" {
            in_clients = true;
        } else if in_clients {
            if line.trim().is_empty() {
                break;
            }
            clients.push(parse_connection_line(line).map_err(|e| ParseError::new("stat", e))?);
        }
    }
    let srvr = parse_summary(text, "stat")?;
    Ok(Stat { srvr, clients })
}

fn parse_summary(text: &str, word: &'static str) -> Result<Srvr, ParseError> {
    let mut version = None;
    let mut latency = None;
    let (mut received, mut sent, mut connections, mut outstanding) = (None, None, None, None);
    let (mut zxid, mut mode, mut node_count, mut proposal_sizes) = (None, None, None, None);
    let mut read_only = false;
    let err = |reason: String| ParseError::new(word, reason);

    for line in text.lines() {
        if line.starts_with("READ-ONLY mode") {
            read_only = true;
            continue;
        }
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        let value = value.trim();
        match key {
            "Zookeeper version" => {
                version = Some(
                    Version::parse(value).ok_or_else(|| err(format!("bad version `{value}`")))?,
                );
            }
            "Latency min/avg/max" => latency = Some(parse_latency(value).map_err(err)?),
            "Received" => received = Some(number(key, value).map_err(err)?),
            "Sent" => sent = Some(number(key, value).map_err(err)?),
            "Connections" => connections = Some(number(key, value).map_err(err)?),
            "Outstanding" => outstanding = Some(number(key, value).map_err(err)?),
            "Zxid" => {
                zxid = Some(Zxid::parse(value).ok_or_else(|| err(format!("bad Zxid `{value}`")))?);
            }
            "Mode" => mode = Some(Mode::parse(value)),
            "Node count" => node_count = Some(number(key, value).map_err(err)?),
            "Proposal sizes last/min/max" => {
                proposal_sizes = Some(parse_triple(value).map_err(err)?);
            }
            _ => {}
        }
    }

    let missing = |name: &str| err(format!("no `{name}` line"));
    Ok(Srvr {
        version: version.ok_or_else(|| missing("Zookeeper version"))?,
        latency: latency.ok_or_else(|| missing("Latency min/avg/max"))?,
        received: received.ok_or_else(|| missing("Received"))?,
        sent: sent.ok_or_else(|| missing("Sent"))?,
        connections: connections.ok_or_else(|| missing("Connections"))?,
        outstanding: outstanding.ok_or_else(|| missing("Outstanding"))?,
        zxid: zxid.ok_or_else(|| missing("Zxid"))?,
        mode: mode.ok_or_else(|| missing("Mode"))?,
        node_count: node_count.ok_or_else(|| missing("Node count"))?,
        proposal_sizes,
        read_only,
    })
}

fn number(key: &str, value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("`{key}` is not a number: `{value}`"))
}

fn parse_latency(value: &str) -> Result<Latency, String> {
    let bad = || format!("bad latency `{value}`");
    let mut it = value.split('/');
    let (Some(min), Some(avg), Some(max), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(bad());
    };
    let avg: f64 = avg.parse().map_err(|_| bad())?;
    Ok(Latency {
        min: min.parse().map_err(|_| bad())?,
        avg: if avg.is_finite() { avg } else { 0.0 },
        max: max.parse().map_err(|_| bad())?,
    })
}

fn parse_triple(value: &str) -> Result<(i64, i64, i64), String> {
    let bad = || format!("bad proposal sizes `{value}`");
    let mut it = value
        .split('/')
        .map(|p| p.parse::<i64>().map_err(|_| bad()));
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(a), Some(b), Some(c), None) => Ok((a?, b?, c?)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::fixtures::read;
    use proptest::prelude::*;

    #[test]
    fn leader_3_8() {
        let s = parse_srvr(&read("zk-3.8.0/leader-3.srvr.txt")).unwrap();
        assert_eq!(s.mode, Mode::Leader);
        assert_eq!(s.zxid, Zxid(0x1_0000_0000));
        assert_eq!(s.zxid.epoch(), 1);
        assert_eq!(s.version.to_string(), "3.8.0");
        assert_eq!(
            (s.received, s.sent, s.connections, s.outstanding),
            (3, 2, 1, 0)
        );
        assert_eq!(s.node_count, 5);
        assert_eq!(s.proposal_sizes, Some((-1, -1, -1)));
        assert_eq!(
            s.latency,
            Latency {
                min: 0,
                avg: 0.0,
                max: 0
            }
        );
        assert!(!s.read_only);
    }

    #[test]
    fn followers_3_8_and_dynamic() {
        for f in [
            "zk-3.8.0/follower-1.srvr.txt",
            "zk-3.8.0/follower-2.srvr.txt",
            "zk-3.8.0-dynamic/follower-1.srvr.txt",
            "zk-3.8.0-dynamic/follower-2.srvr.txt",
        ] {
            let s = parse_srvr(&read(f)).unwrap();
            assert_eq!(s.mode, Mode::Follower, "{f}");
            assert_eq!(s.zxid, Zxid(0), "{f}");
            assert_eq!(s.proposal_sizes, None, "{f}");
        }
        let s = parse_srvr(&read("zk-3.8.0-dynamic/leader-3.srvr.txt")).unwrap();
        assert_eq!((s.mode, s.received), (Mode::Leader, 4));
    }

    #[test]
    fn after_a_write_and_standalone() {
        let s = parse_srvr(&read("zk-3.8.0-session/leader-3.srvr-after-write.txt")).unwrap();
        assert_eq!(s.zxid, Zxid::from_parts(1, 1));
        assert_eq!(s.proposal_sizes, Some((48, 48, 48)));
        assert_eq!(s.latency.avg, 4.0);
        let s = parse_srvr(&read("zk-3.8.0-session/standalone-9.srvr.txt")).unwrap();
        assert_eq!(s.mode, Mode::Standalone);
    }

    #[test]
    fn zookeeper_3_4() {
        let s = parse_srvr(&read("zk-3.4/leader-3.srvr.txt")).unwrap();
        assert_eq!(s.version.to_string(), "3.4.14");
        assert_eq!(s.zxid, Zxid::from_parts(5, 0x1c));
        assert_eq!(
            s.latency,
            Latency {
                min: 0,
                avg: 1.0,
                max: 27
            }
        );
        assert_eq!(s.proposal_sizes, Some((92, 36, 521)));
        let s = parse_srvr(&read("zk-3.4/follower-1.srvr.txt")).unwrap();
        assert_eq!((s.mode.clone(), s.proposal_sizes), (Mode::Follower, None));
        assert_eq!(s.version.to_string(), "3.4.6");
        let s = parse_srvr(&read("zk-3.4/read-only-2.srvr.txt")).unwrap();
        assert_eq!(s.mode, Mode::ReadOnly);
        assert!(s.read_only);
    }

    #[test]
    fn stat_lists_clients() {
        let s = parse_stat(&read("zk-3.8.0/leader-3.stat.txt")).unwrap();
        assert_eq!(s.srvr.mode, Mode::Leader);
        assert_eq!(s.srvr.received, 7);
        assert_eq!(s.clients.len(), 1);
        assert_eq!(s.clients[0].host, "127.0.0.1");
        assert_eq!(s.clients[0].port, 43006);
        for f in [
            "zk-3.8.0/follower-1.stat.txt",
            "zk-3.8.0/follower-2.stat.txt",
        ] {
            let s = parse_stat(&read(f)).unwrap();
            assert_eq!((s.srvr.mode, s.clients.len()), (Mode::Follower, 1), "{f}");
        }
        let s = parse_stat(&read("zk-3.8.0-session/leader-3.stat-session.txt")).unwrap();
        assert_eq!(s.clients.len(), 2);
        assert_eq!(s.srvr.zxid, Zxid::from_parts(1, 1));
        let s = parse_stat(&read("zk-3.4/leader-3.stat.txt")).unwrap();
        assert_eq!(s.clients.len(), 3);
        assert_eq!(s.clients[1].host, "10.0.0.22");
        assert_eq!(s.srvr.node_count, 172);
    }

    #[test]
    fn refusals_are_not_srvr() {
        let e = parse_srvr(&read("zk-3.8.0-session/lost-quorum-3.srvr.txt")).unwrap_err();
        assert!(e.reason.contains("Zookeeper version"), "{e}");
        assert!(parse_srvr("").is_err());
        assert!(parse_srvr("Zxid: 0xnope\n").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let _ = parse_srvr(&s);
            let _ = parse_stat(&s);
        }

        #[test]
        fn never_panics_on_bytes(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            let s = crate::observe::decode(&b);
            let _ = parse_srvr(&s);
            let _ = parse_stat(&s);
        }

        #[test]
        fn never_panics_on_near_misses(
            lines in proptest::collection::vec(
                ("(Zxid|Mode|Latency min/avg/max|Received|Node count|Proposal sizes last/min/max|Zookeeper version)",
                 "[-0-9a-fx./]{0,24}"),
                0..12)
        ) {
            let text: String = lines.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
            let _ = parse_srvr(&text);
        }
    }
}
