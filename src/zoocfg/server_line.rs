//! The value of a `server.N` line, in every form ZooKeeper accepts:
//!
//! ```text
//! host:quorumPort:electionPort                      3.4 static
//! host:quorumPort:electionPort:participant|observer
//! host:quorumPort:electionPort[:role];clientPort    3.5+
//! host:quorumPort:electionPort[:role];addr:clientPort
//! [::1]:quorumPort:electionPort...                  IPv6 in brackets
//! ```
//!
//! Parsing follows ZooKeeper 3.8's `QuorumPeer.QuorumServer` and
//! `ConfigUtils.getHostAndPort` (Java `split`, which drops trailing empty
//! fields, so `host:2888:3888;` is accepted), checked against the real
//! classes. Where this parser differs, it says so:
//!
//! - the whole value is trimmed first. ZooKeeper 3.4 trimmed it too; 3.5+
//!   fails on trailing whitespace (`Address unresolved: host:3888 `), so
//!   [`super::ZooCfg::rewrite_servers`] drops it when it rewrites a line.
//! - multiple addresses (`a:1:2|b:1:2`, 3.6 `multiAddress.enabled`, off by
//!   default) are rejected with a clear error: a migration to one Service
//!   name per server has no place for them, and guessing is worse.
//! - an empty host and a character other than `:` after `]` are rejected.
//!
//! Rendering is canonical (`Display`): IPv6 hosts in brackets, the role in
//! lower case, no whitespace.

use std::fmt;

use super::ZooCfgError;
use super::properties::java_trim;

/// A server's role in the ensemble (`:participant` or `:observer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// A voting member (ZooKeeper's default when no role is written).
    Participant,
    /// A non-voting member.
    Observer,
}

impl Role {
    /// The word ZooKeeper writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Participant => "participant",
            Self::Observer => "observer",
        }
    }
}

/// The 3.5+ client address suffix: `;clientPort` or `;addr:clientPort`.
///
/// ZooKeeper binds the server's own client port to this address, and
/// publishes the list in `/zookeeper/config`; no host means `0.0.0.0`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientAddr {
    /// The address, without IPv6 brackets; `None` for the `;port` form.
    pub host: Option<String>,
    /// The client port.
    pub port: u16,
}

/// The parsed value of a `server.N` line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerSpec {
    /// Host name or address peers dial, without IPv6 brackets.
    pub host: String,
    /// The port followers connect to the leader on (usually 2888).
    pub quorum_port: u16,
    /// The leader election port (usually 3888).
    pub election_port: u16,
    /// The role, when written.
    pub role: Option<Role>,
    /// The 3.5+ client address, when written.
    pub client: Option<ClientAddr>,
}

/// One effective `server.N` line of a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    /// The server id (`N`, the myid).
    pub id: u32,
    /// What the line says.
    pub spec: ServerSpec,
    /// The 1-based line the entry starts on.
    pub line: usize,
}

impl ServerSpec {
    /// Parses a `server.N` value (the part after `=`).
    pub fn parse(value: &str) -> Result<Self, ZooCfgError> {
        parse_spec(value).map_err(|reason| ZooCfgError::InvalidServerSpec {
            value: value.to_owned(),
            reason,
        })
    }

    /// The same server as ZooKeeper understands it: a missing role is
    /// `participant`, a client suffix without address binds `0.0.0.0`.
    pub fn normalized(&self) -> Self {
        let mut spec = self.clone();
        spec.role = Some(spec.role.unwrap_or(Role::Participant));
        if let Some(client) = &mut spec.client {
            client.host.get_or_insert_with(|| "0.0.0.0".to_owned());
        }
        spec
    }
}

impl fmt::Display for ServerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            bracketed(&self.host),
            self.quorum_port,
            self.election_port
        )?;
        if let Some(role) = self.role {
            write!(f, ":{}", role.as_str())?;
        }
        if let Some(client) = &self.client {
            f.write_str(";")?;
            if let Some(host) = &client.host {
                write!(f, "{}:", bracketed(host))?;
            }
            write!(f, "{}", client.port)?;
        }
        Ok(())
    }
}

fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Java's `String.split(regex)` for a single char: trailing empty fields are
/// dropped, but splitting `""` gives `[""]`.
fn java_split(s: &str, sep: char) -> Vec<&str> {
    if s.is_empty() {
        return vec![""];
    }
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts
}

/// `ConfigUtils.getHostAndPort`: `host:a:b` or `[v6]:a:b`, brackets removed.
fn host_and_port(s: &str) -> Result<Vec<&str>, String> {
    let Some(rest) = s.strip_prefix('[') else {
        return Ok(java_split(s, ':'));
    };
    let close = rest
        .find(']')
        .ok_or_else(|| format!("`{s}` starts with `[` but has no matching `]`"))?;
    let host = &rest[..close];
    let after = &rest[close + 1..];
    if after.is_empty() {
        return Ok(vec![host]);
    }
    let ports = after
        .strip_prefix(':')
        .ok_or_else(|| format!("`{s}` needs `:` after `]`"))?;
    if ports.is_empty() {
        return Err(format!("`{s}` has no port after the colon"));
    }
    let mut parts = vec![host];
    parts.extend(java_split(ports, ':'));
    Ok(parts)
}

fn parse_port(s: &str) -> Result<u16, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not a port (0-65535)"))
}

fn parse_spec(value: &str) -> Result<ServerSpec, String> {
    const FORMAT: &str =
        "expected host:quorumPort:electionPort[:participant|observer][;[clientAddr:]clientPort]";
    let value = java_trim(value);
    let parts = java_split(value, ';');
    if parts.len() > 2 {
        return Err(format!("more than one `;`; {FORMAT}"));
    }
    let server = parts.first().copied().unwrap_or("");
    if server.contains('|') {
        return Err(
            "multiple addresses separated by `|` (multiAddress) are not supported".to_owned(),
        );
    }
    let fields = host_and_port(server)?;
    if !(3..=4).contains(&fields.len()) {
        return Err(FORMAT.to_owned());
    }
    if fields[0].is_empty() {
        return Err(format!("the host is empty; {FORMAT}"));
    }
    let quorum_port = parse_port(fields[1])?;
    let election_port = parse_port(fields[2])?;
    if quorum_port == election_port {
        return Err("the quorum and election ports must differ".to_owned());
    }
    let role = match fields.get(3).map(|r| java_trim(r).to_ascii_lowercase()) {
        None => None,
        Some(r) if r == "participant" => Some(Role::Participant),
        Some(r) if r == "observer" => Some(Role::Observer),
        Some(r) => return Err(format!("`{r}` is not a role (participant or observer)")),
    };
    let client = match parts.get(1) {
        None => None,
        Some(client) => {
            let fields = host_and_port(client)?;
            let (host, port) = match fields.as_slice() {
                [port] => (None, port),
                [host, port] => (Some((*host).to_owned()), port),
                _ => return Err(format!("the client part `{client}` is not [addr:]port")),
            };
            Some(ClientAddr {
                host,
                port: parse_port(port)?,
            })
        }
    };
    Ok(ServerSpec {
        host: fields[0].to_owned(),
        quorum_port,
        election_port,
        role,
        client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(host: &str, role: Option<Role>, client: Option<(Option<&str>, u16)>) -> ServerSpec {
        ServerSpec {
            host: host.to_owned(),
            quorum_port: 2888,
            election_port: 3888,
            role,
            client: client.map(|(h, port)| ClientAddr {
                host: h.map(str::to_owned),
                port,
            }),
        }
    }

    fn ok(value: &str) -> ServerSpec {
        ServerSpec::parse(value).unwrap_or_else(|e| panic!("{value}: {e}"))
    }

    fn reason(value: &str) -> String {
        match ServerSpec::parse(value) {
            Err(ZooCfgError::InvalidServerSpec { reason, .. }) => reason,
            other => panic!("{value}: {other:?}"),
        }
    }

    #[test]
    fn parses_every_form() {
        use Role::*;
        assert_eq!(ok("zk1:2888:3888"), spec("zk1", None, None));
        assert_eq!(
            ok("zk1:2888:3888:observer"),
            spec("zk1", Some(Observer), None)
        );
        assert_eq!(
            ok("zk1:2888:3888: PARTICIPANT "),
            spec("zk1", Some(Participant), None)
        );
        assert_eq!(
            ok("zk1:2888:3888;2181"),
            spec("zk1", None, Some((None, 2181)))
        );
        assert_eq!(
            ok("127.0.80.1:2888:3888:participant;127.0.80.1:2181"),
            spec(
                "127.0.80.1",
                Some(Participant),
                Some((Some("127.0.80.1"), 2181))
            )
        );
        assert_eq!(ok("[::1]:2888:3888"), spec("::1", None, None));
        assert_eq!(
            ok("[fe80::1]:2888:3888:observer;[::]:2181"),
            spec("fe80::1", Some(Observer), Some((Some("::"), 2181)))
        );
        assert_eq!(ok("  zk1:2888:3888 \t"), spec("zk1", None, None));
        // Java's split drops trailing empty fields; ZooKeeper accepts these.
        assert_eq!(ok("zk1:2888:3888;"), spec("zk1", None, None));
        assert_eq!(ok("zk1:2888:3888:"), spec("zk1", None, None));
        assert_eq!(ok("zk1:+2888:3888"), spec("zk1", None, None));
    }

    #[test]
    fn rejects_what_zookeeper_rejects() {
        let format = "expected host:quorumPort:electionPort[:participant|observer][;[clientAddr:]clientPort]";
        assert_eq!(reason("zk1:2888"), format);
        assert_eq!(reason("zk1:2888:3888:participant:x"), format);
        assert_eq!(reason("::1:2888:3888"), format);
        assert_eq!(
            reason("zk1:2888:2888"),
            "the quorum and election ports must differ"
        );
        assert_eq!(reason("zk1:2888:70000"), "`70000` is not a port (0-65535)");
        assert_eq!(
            reason("zk1:2888:3888 ;2181"),
            "`3888 ` is not a port (0-65535)"
        );
        assert_eq!(
            reason("zk1:2888:3888:leader"),
            "`leader` is not a role (participant or observer)"
        );
        assert_eq!(
            reason("a:1:2|b:1:2"),
            "multiple addresses separated by `|` (multiAddress) are not supported"
        );
        assert_eq!(
            reason("zk1:2888:3888;a:b:2181"),
            "the client part `a:b:2181` is not [addr:]port"
        );
        assert_eq!(
            reason("[::1:2888:3888"),
            "`[::1:2888:3888` starts with `[` but has no matching `]`"
        );
        assert_eq!(reason("[::1]:"), "`[::1]:` has no port after the colon");
        assert_eq!(
            reason("[::1]x2888:3888"),
            "`[::1]x2888:3888` needs `:` after `]`"
        );
        assert!(reason(":2888:3888").starts_with("the host is empty"));
        assert!(reason("a:1:2;3;4").starts_with("more than one `;`"));
        assert_eq!(reason(""), format);
    }

    #[test]
    fn renders_canonically() {
        for (input, rendered) in [
            ("zk1:2888:3888", "zk1:2888:3888"),
            ("zk1:2888:3888:Observer", "zk1:2888:3888:observer"),
            (" zk1:02888:3888;2181 ", "zk1:2888:3888;2181"),
            (
                "[::1]:2888:3888:participant;[::1]:2181",
                "[::1]:2888:3888:participant;[::1]:2181",
            ),
            ("h:1:2;10.0.0.1:2181", "h:1:2;10.0.0.1:2181"),
        ] {
            assert_eq!(ok(input).to_string(), rendered);
            assert_eq!(ok(rendered), ok(input));
        }
    }

    #[test]
    fn normalizes_defaults() {
        assert_eq!(
            ok("h:1:2;2181").normalized(),
            ok("h:1:2:participant;0.0.0.0:2181")
        );
        assert_eq!(ok("h:1:2").normalized(), ok("h:1:2:participant"));
        assert_ne!(ok("h:1:2:observer").normalized(), ok("h:1:2").normalized());
    }
}
