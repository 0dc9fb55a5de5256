//! `conf`: the running configuration as `key=value` lines. Preflight checks
//! `serverId` and, on 3.5+, the live server list against the plan (DESIGN
//! 5.1); the services and peers steps check `serverId` through each ClusterIP.
//!
//! 3.5+ ends the reply with `membership:`, one `server.N=` line per member
//! and `version=<hex>`. 3.4 has no membership block: [`Conf::servers`] is
//! then empty, and the server list has to come from zoo.cfg.
//!
//! The server-line parser here is deliberately small (enough to compare
//! membership with the plan); the full, lossless one lives in `zoocfg`. It
//! keeps the raw value so nothing is lost when this one is too simple
//! (a 3.6+ multi-address line `a:1:2|b:1:2` keeps only its first address).

use super::ParseError;

/// A member's role in the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Participant,
    Observer,
}

/// One `server.N=` line of the membership block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLine {
    /// The myid `N`.
    pub id: u64,
    /// The value after `=`, as printed.
    pub raw: String,
    /// The first quorum address's host (brackets of an IPv6 literal removed).
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    /// `participant` when no role is printed.
    pub role: Role,
    /// The host of `;host:port`, when the client address is given.
    pub client_host: Option<String>,
    /// The port of `;[host:]port`.
    pub client_port: Option<u16>,
}

/// A parsed `conf` reply (or the AdminServer's `configuration` plus
/// `voting_view`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conf {
    /// The `key=value` lines before `membership:`, in order.
    pub entries: Vec<(String, String)>,
    /// `serverId`: the myid of the server that answered.
    pub server_id: Option<u64>,
    /// The membership block; empty on 3.4.
    pub servers: Vec<ServerLine>,
    /// `version=` after the membership (hex, the zxid of the config).
    pub config_version: Option<String>,
}

impl Conf {
    /// The value of a key before the membership block.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `clientPort`, when present and numeric.
    pub fn client_port(&self) -> Option<u16> {
        self.get("clientPort")?.parse().ok()
    }

    /// The member with this id, when the membership is known.
    pub fn server(&self, id: u64) -> Option<&ServerLine> {
        self.servers.iter().find(|s| s.id == id)
    }

    /// Ids of the voting members (participants) in the membership block.
    pub fn voter_ids(&self) -> Vec<u64> {
        self.servers
            .iter()
            .filter(|s| s.role == Role::Participant)
            .map(|s| s.id)
            .collect()
    }
}

/// Parses a `conf` reply. The reply must hold `serverId` or `clientPort`
/// (standalone servers print no `serverId`), so a refusal is not mistaken
/// for an empty configuration.
pub fn parse_conf(text: &str) -> Result<Conf, ParseError> {
    let err = |r: String| ParseError::new("conf", r);
    let mut conf = Conf::default();
    let mut in_membership = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with("membership:") {
            in_membership = true;
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if in_membership {
            if let Some(id) = key.strip_prefix("server.") {
                let id = id
                    .parse()
                    .map_err(|_| err(format!("bad server id in `{line}`")))?;
                conf.servers
                    .push(parse_server_line(id, value).map_err(err)?);
            } else if key == "version" {
                conf.config_version = Some(value.to_string());
            }
            continue;
        }
        if key == "serverId" {
            conf.server_id = Some(
                value
                    .parse()
                    .map_err(|_| err(format!("bad serverId `{value}`")))?,
            );
        }
        conf.entries.push((key.to_string(), value.to_string()));
    }
    if conf.server_id.is_none() && conf.get("clientPort").is_none() {
        return Err(err("neither `serverId` nor `clientPort`".to_string()));
    }
    Ok(conf)
}

/// Parses the value of a `server.N=` line:
/// `host:quorum:election[:role][;[clienthost:]clientport]`.
pub fn parse_server_line(id: u64, value: &str) -> Result<ServerLine, String> {
    let bad = |why: &str| format!("{why} in `server.{id}={value}`");
    let (peer, client) = match value.split_once(';') {
        Some((p, c)) => (p, Some(c.trim())),
        None => (value, None),
    };
    let first = peer.split('|').next().unwrap_or(peer).trim();
    let (host, rest) = split_host(first).ok_or_else(|| bad("no host"))?;
    let mut fields = rest.split(':');
    let port = |f: Option<&str>, what: &str| -> Result<u16, String> {
        f.and_then(|p| p.parse().ok())
            .ok_or_else(|| bad(&format!("bad {what} port")))
    };
    let quorum_port = port(fields.next(), "quorum")?;
    let election_port = port(fields.next(), "election")?;
    let role = match fields.next() {
        None | Some("participant") => Role::Participant,
        Some("observer") => Role::Observer,
        Some(other) => return Err(bad(&format!("unknown role `{other}`"))),
    };
    let (client_host, client_port) = match client {
        None | Some("") => (None, None),
        Some(c) => match c.rsplit_once(':') {
            Some((h, p)) => (
                Some(h.trim_start_matches('[').trim_end_matches(']').to_string()),
                Some(p.parse().map_err(|_| bad("bad client port"))?),
            ),
            None => (None, Some(c.parse().map_err(|_| bad("bad client port"))?)),
        },
    };
    Ok(ServerLine {
        id,
        raw: value.to_string(),
        host,
        quorum_port,
        election_port,
        role,
        client_host,
        client_port,
    })
}

/// Splits `host:rest` or `[v6]:rest` into the host and what follows the colon.
fn split_host(s: &str) -> Option<(String, &str)> {
    if let Some(inner) = s.strip_prefix('[') {
        let (host, rest) = inner.split_once(']')?;
        Some((host.to_string(), rest.strip_prefix(':')?))
    } else {
        let (host, rest) = s.split_once(':')?;
        (!host.is_empty()).then(|| (host.to_string(), rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::fixtures::read;
    use proptest::prelude::*;

    #[test]
    fn static_3_8() {
        for (f, id) in [
            ("zk-3.8.0/follower-1.conf.txt", 1),
            ("zk-3.8.0/follower-2.conf.txt", 2),
            ("zk-3.8.0/leader-3.conf.txt", 3),
        ] {
            let c = parse_conf(&read(f)).unwrap();
            assert_eq!(c.server_id, Some(id), "{f}");
            assert_eq!(c.client_port(), Some(2181));
            assert_eq!(c.get("quorumPort"), Some("2888"));
            assert_eq!(c.config_version.as_deref(), Some("0"));
            assert_eq!(c.voter_ids(), vec![1, 2, 3]);
            let s = c.server(2).unwrap();
            assert_eq!(s.host, "127.0.79.2");
            assert_eq!((s.quorum_port, s.election_port), (2888, 3888));
            assert_eq!(s.role, Role::Participant);
            assert_eq!((s.client_host.as_deref(), s.client_port), (None, None));
            assert_eq!(s.raw, "127.0.79.2:2888:3888:participant");
        }
    }

    #[test]
    fn dynamic_3_8_with_client_suffix() {
        for (f, id) in [
            ("zk-3.8.0-dynamic/follower-1.conf.txt", 1),
            ("zk-3.8.0-dynamic/follower-2.conf.txt", 2),
            ("zk-3.8.0-dynamic/leader-3.conf.txt", 3),
        ] {
            let c = parse_conf(&read(f)).unwrap();
            assert_eq!(c.server_id, Some(id), "{f}");
            assert_eq!(c.config_version.as_deref(), Some("100000000"));
            assert_eq!(c.servers.len(), 3);
            let s = c.server(3).unwrap();
            assert_eq!(s.host, "127.0.80.3");
            assert_eq!(s.client_host.as_deref(), Some("127.0.80.3"));
            assert_eq!(s.client_port, Some(2181));
        }
    }

    #[test]
    fn zookeeper_3_4_has_no_membership() {
        let c = parse_conf(&read("zk-3.4/leader-3.conf.txt")).unwrap();
        assert_eq!(c.server_id, Some(3));
        assert!(c.servers.is_empty());
        assert_eq!(c.config_version, None);
        assert_eq!(c.get("peerType"), Some("0"));
        assert_eq!(c.get("tickTime"), Some("2000"));
    }

    #[test]
    fn server_line_forms() {
        let s = parse_server_line(4, "zk-4.zk.svc.cluster.local:2888:3888:observer;2181").unwrap();
        assert_eq!(s.role, Role::Observer);
        assert_eq!((s.client_host, s.client_port), (None, Some(2181)));
        let s = parse_server_line(5, "[fd00::5]:2888:3888;[fd00::5]:2181").unwrap();
        assert_eq!(s.host, "fd00::5");
        assert_eq!(s.client_host.as_deref(), Some("fd00::5"));
        let s = parse_server_line(6, "a:1:2|b:3:4:participant;0.0.0.0:2181").unwrap();
        assert_eq!((s.host.as_str(), s.quorum_port), ("a", 1));
        assert!(parse_server_line(7, "host:2888").is_err());
        assert!(parse_server_line(7, "host:2888:3888:voter").is_err());
        assert!(parse_server_line(7, ":2888:3888").is_err());
    }

    #[test]
    fn refusals_are_not_conf() {
        assert!(parse_conf(&read("zk-3.8.0-session/lost-quorum-3.conf.txt")).is_err());
        assert!(parse_conf(&read("zk-3.8.0-session/not-whitelisted.conf.txt")).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let _ = parse_conf(&s);
            let _ = parse_server_line(1, &s);
        }

        #[test]
        fn never_panics_on_shaped_lines(v in "[\\[\\]a-z0-9.:;|]{0,40}") {
            let _ = parse_conf(&format!("serverId=1\nmembership: \nserver.1={v}\nversion=0"));
        }
    }
}
