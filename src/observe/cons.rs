//! `cons` (one line per client connection) and `ruok`. The client inventory
//! of the clients step (DESIGN 5.3) groups `cons` by client address.
//!
//! A connection line is `/ip:port[interest](k=v,...)`. Java prints IPv6
//! without brackets, so the port is split at the *last* colon. The probe's
//! own connection appears too, without `sid`: [`Cons::sessions`] leaves such
//! session-less connections out.

use std::collections::BTreeMap;

use super::ParseError;
use super::zxid::Zxid;

/// One client connection as `cons` (or the AdminServer) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The client's address as the server sees it (no leading `/`).
    pub host: String,
    pub port: u16,
    /// Requests queued on this connection.
    pub queued: u64,
    pub received: u64,
    pub sent: u64,
    /// The session id; `None` before a session is established (a 4lw probe).
    pub session_id: Option<u64>,
    /// Last operation (`PING`, `GETD`, ...).
    pub last_operation: Option<String>,
    /// Negotiated session timeout in milliseconds.
    pub session_timeout_ms: Option<u64>,
    /// The last zxid sent to this client.
    pub last_zxid: Option<Zxid>,
}

/// A parsed `cons` reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cons {
    pub connections: Vec<Connection>,
}

impl Cons {
    /// Connections that carry a session: real clients, not 4lw probes.
    pub fn sessions(&self) -> impl Iterator<Item = &Connection> {
        self.connections.iter().filter(|c| c.session_id.is_some())
    }

    /// Sessions per client address, sorted by address: the inventory an
    /// operator walks through before confirming the clients step.
    pub fn by_client(&self) -> BTreeMap<String, usize> {
        let mut map = BTreeMap::new();
        for c in self.sessions() {
            *map.entry(c.host.clone()).or_insert(0) += 1;
        }
        map
    }
}

/// The answer to `ruok`. Only `imok` exists: a server that cannot answer
/// does not answer at all. It says the process runs, not that it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ruok {
    Imok,
}

/// Parses a `ruok` reply.
pub fn parse_ruok(text: &str) -> Result<Ruok, ParseError> {
    if text.trim() == "imok" {
        Ok(Ruok::Imok)
    } else {
        Err(ParseError::new(
            "ruok",
            format!("expected `imok`, got `{}`", excerpt(text)),
        ))
    }
}

/// Parses a `cons` reply: blank lines are skipped, any other line must be a
/// connection.
pub fn parse_cons(text: &str) -> Result<Cons, ParseError> {
    let connections = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| parse_connection_line(l).map_err(|e| ParseError::new("cons", e)))
        .collect::<Result<_, _>>()?;
    Ok(Cons { connections })
}

/// Parses one connection line of `cons` or `stat`.
pub(crate) fn parse_connection_line(line: &str) -> Result<Connection, String> {
    let bad = |why: &str| format!("{why} in connection line `{}`", excerpt(line));
    let line = line.trim();
    let line = line.strip_prefix('/').unwrap_or(line);
    let open = line.find('[').ok_or_else(|| bad("no `[`"))?;
    let (addr, rest) = line.split_at(open);
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port = port.parse().map_err(|_| bad("bad port"))?;
    let stats = rest
        .split_once('(')
        .and_then(|(_, s)| s.strip_suffix(')'))
        .ok_or_else(|| bad("no `(...)`"))?;

    let mut c = Connection {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
        queued: 0,
        received: 0,
        sent: 0,
        session_id: None,
        last_operation: None,
        session_timeout_ms: None,
        last_zxid: None,
    };
    for pair in stats.split(',') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        let num = || v.parse::<u64>().map_err(|_| bad(&format!("bad `{k}`")));
        match k {
            "queued" => c.queued = num()?,
            "recved" => c.received = num()?,
            "sent" => c.sent = num()?,
            "sid" => c.session_id = Some(Zxid::parse(v).ok_or_else(|| bad("bad `sid`"))?.0),
            "lop" => c.last_operation = Some(v.to_string()),
            "to" => c.session_timeout_ms = Some(num()?),
            "lzxid" => c.last_zxid = Zxid::parse(v),
            _ => {}
        }
    }
    Ok(c)
}

fn excerpt(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::fixtures::read;
    use proptest::prelude::*;

    #[test]
    fn probe_connection_only_3_8() {
        for f in [
            "zk-3.8.0/follower-1.cons.txt",
            "zk-3.8.0/follower-2.cons.txt",
            "zk-3.8.0/leader-3.cons.txt",
        ] {
            let c = parse_cons(&read(f)).unwrap();
            assert_eq!(c.connections.len(), 1, "{f}");
            assert_eq!(c.connections[0].host, "127.0.0.1");
            assert_eq!(c.connections[0].session_id, None);
            assert!(c.by_client().is_empty(), "{f}");
        }
        let c = parse_cons(&read("zk-3.8.0/leader-3.cons.txt")).unwrap();
        assert_eq!(c.connections[0].port, 43000);
        assert_eq!(c.connections[0].received, 1);
    }

    #[test]
    fn session_3_8() {
        let c = parse_cons(&read("zk-3.8.0-session/leader-3.cons-session.txt")).unwrap();
        assert_eq!(c.connections.len(), 2);
        let s = c.sessions().next().unwrap();
        assert_eq!(s.session_id, Some(0x3000002c8a40000));
        assert_eq!(s.port, 45896);
        assert_eq!(s.last_operation.as_deref(), Some("PING"));
        assert_eq!(s.session_timeout_ms, Some(10000));
        assert_eq!(s.last_zxid, Some(Zxid::from_parts(1, 1)));
        assert_eq!((s.received, s.sent), (3, 3));
    }

    #[test]
    fn inventory_3_4() {
        let c = parse_cons(&read("zk-3.4/leader-3.cons.txt")).unwrap();
        assert_eq!(c.connections.len(), 4);
        assert_eq!(c.sessions().count(), 3);
        let inv: Vec<_> = c.by_client().into_iter().collect();
        assert_eq!(
            inv,
            vec![("10.0.0.21".to_string(), 2), ("10.0.0.22".to_string(), 1)]
        );
    }

    #[test]
    fn ipv6_and_garbage() {
        let c =
            parse_connection_line(" /0:0:0:0:0:0:0:1:5000[1](queued=0,recved=1,sent=1,sid=0x1)")
                .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("0:0:0:0:0:0:0:1", 5000));
        assert!(parse_cons("This ZooKeeper instance is not currently serving requests").is_err());
        assert!(parse_connection_line("/1.2.3.4:x[0](a)").is_err());
    }

    #[test]
    fn ruok() {
        assert_eq!(
            parse_ruok(&read("zk-3.8.0/leader-3.ruok.txt")),
            Ok(Ruok::Imok)
        );
        assert_eq!(
            parse_ruok(&read("zk-3.8.0/follower-1.ruok.txt")),
            Ok(Ruok::Imok)
        );
        assert_eq!(
            parse_ruok(&read("zk-3.8.0/follower-2.ruok.txt")),
            Ok(Ruok::Imok)
        );
        // a server without quorum still says imok: ruok is not readiness
        assert_eq!(
            parse_ruok(&read("zk-3.8.0-session/lost-quorum-3.ruok.txt")),
            Ok(Ruok::Imok)
        );
        assert!(parse_ruok("").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let _ = parse_cons(&s);
            let _ = parse_ruok(&s);
        }

        #[test]
        fn never_panics_on_shaped_lines(
            host in "[0-9a-f:.\\[\\]]{0,20}", port in "[0-9x]{0,7}", kv in "[a-z]{0,6}=[0-9a-fx]{0,20}(,[a-z]{0,6}=[0-9a-fx]{0,20}){0,6}"
        ) {
            let _ = parse_connection_line(&format!(" /{host}:{port}[1]({kv})"));
        }
    }
}
