//! The edit the peers step makes (DESIGN 5.4): every `server.N` line is
//! pointed at the server's Kubernetes Service name, and
//! `quorumListenOnAllIPs=true` is set, because a server cannot bind a
//! ClusterIP, which is on no interface.
//!
//! Only the value of a server line changes: its key, separator and the
//! spacing before the value stay as written; ports, role and the 3.5+
//! client suffix are kept. Every other line stays byte-for-byte and in
//! order. A line already saying what the rewrite would say is left alone, so
//! rewriting twice equals rewriting once (the `check` of a check-then-act
//! step is `cfg.rewrite_for_services(..)? == cfg`).
//!
//! Why the address in `;addr:clientPort` is *not* rewritten to the Service
//! name: it is a bind address. ZooKeeper 3.5+ binds the server's own client
//! port to it (`QuorumPeerConfig.setupClientPort`); a ClusterIP is on no
//! interface, so the bind would fail, and `quorumListenOnAllIPs` covers only
//! the quorum and election ports. On a host the old address is still the
//! host's own, so [`ClientAddrRewrite::Keep`] is right there; in a Pod it is
//! not, so a Pod's config uses [`ClientAddrRewrite::Wildcard`] (`;port`,
//! which ZooKeeper binds on `0.0.0.0`), together with removing
//! `clientPortAddress` (ZooKeeper refuses a `clientPortAddress` that differs
//! from the server line's address).

use super::document::{ZooCfg, server_entry};
use super::properties::{LineKind, java_trim};
use super::{ZooCfgError, keys};

/// What happens to the address of a `;addr:clientPort` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAddrRewrite {
    /// Keep it: right for a host, which still owns that address.
    #[default]
    Keep,
    /// Drop it, leaving `;clientPort` (bound on `0.0.0.0`): right for a Pod.
    Wildcard,
}

impl ZooCfg {
    /// Rewrites the host of every `server.N` line to `new_host(N)`, keeping
    /// ports, role and client port, and handling the client address as
    /// `client` says. Other lines are untouched; nothing is added.
    ///
    /// Fails on a server line ZooKeeper would refuse, on an id for which
    /// `new_host` has no answer (a server the plan does not know is a
    /// mismatch to stop on, not to skip), and on a new host that is not a
    /// DNS name or IP address. Trailing whitespace after a rewritten value
    /// is dropped: ZooKeeper 3.5+ refuses it on server lines.
    pub fn rewrite_servers(
        &self,
        new_host: impl Fn(u32) -> Option<String>,
        client: ClientAddrRewrite,
    ) -> Result<ZooCfg, ZooCfgError> {
        let mut out = self.clone();
        for index in 0..out.lines.len() {
            let line = &out.lines[index];
            let LineKind::Entry(entry) = &line.kind else {
                continue;
            };
            let value = java_trim(&entry.value);
            let property = super::Property {
                line: line.number,
                key: java_trim(&entry.key),
                value,
            };
            let Some(server) = server_entry(property)? else {
                continue;
            };
            let host = new_host(server.id).ok_or(ZooCfgError::NoNewHost {
                line: server.line,
                id: server.id,
            })?;
            if !is_valid_host(&host) {
                return Err(ZooCfgError::InvalidNewHost {
                    id: server.id,
                    host,
                });
            }
            let mut spec = server.spec.clone();
            spec.host = host;
            if let (ClientAddrRewrite::Wildcard, Some(client)) = (client, &mut spec.client) {
                client.host = None;
            }
            if spec != server.spec || value != entry.value {
                out.replace_value(index, &spec.to_string(), false);
            }
        }
        Ok(out)
    }

    /// The whole peers-step edit for one host's config:
    /// [`Self::rewrite_servers`] with [`ClientAddrRewrite::Keep`], then
    /// `quorumListenOnAllIPs=true`: replaced in place if the key exists
    /// (left alone if it already reads true), otherwise inserted right after
    /// the last `server.N` line, or at the end of a file without one (a 3.5+
    /// `zoo.cfg` whose servers are in the dynamic file). Idempotent.
    ///
    /// Refuses a config with both `dynamicConfigFile` and `server.N` lines,
    /// as ZooKeeper does. Do not call it on a dynamic file: ZooKeeper reads
    /// only server lines there; use [`Self::rewrite_servers`].
    pub fn rewrite_for_services(
        &self,
        new_host: impl Fn(u32) -> Option<String>,
    ) -> Result<ZooCfg, ZooCfgError> {
        if self.dynamic_config_file().is_some()
            && let Some(p) = self
                .properties()
                .find(|p| p.key.starts_with(keys::SERVER_PREFIX))
        {
            let id = p.key[keys::SERVER_PREFIX.len()..].parse().unwrap_or(0);
            return Err(ZooCfgError::ServersBesideDynamicFile { line: p.line, id });
        }
        let mut out = self.rewrite_servers(new_host, ClientAddrRewrite::Keep)?;
        if out.quorum_listen_on_all_ips() {
            return Ok(out);
        }
        match out.last_index(keys::QUORUM_LISTEN_ON_ALL_IPS) {
            Some(index) => out.replace_value(index, "true", true),
            None => {
                let last_server = out.lines.iter().rposition(|line| {
                    matches!(&line.kind, LineKind::Entry(e) if java_trim(&e.key).starts_with(keys::SERVER_PREFIX))
                });
                let after = last_server.or(out.lines.len().checked_sub(1));
                out.insert_after(after, keys::QUORUM_LISTEN_ON_ALL_IPS, "true");
            }
        }
        Ok(out)
    }
}

/// A DNS name, IPv4 or IPv6 address (with an optional `%zone`): nothing
/// that could change how the server line or the file is read.
fn is_valid_host(host: &str) -> bool {
    !host.is_empty()
        && !host.starts_with(['-', '.'])
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(id: u32) -> Option<String> {
        (1..=5)
            .contains(&id)
            .then(|| format!("zk-{id}.zookeeper.svc.cluster.local"))
    }

    fn rewrite(text: &str) -> String {
        ZooCfg::parse(text)
            .unwrap()
            .rewrite_for_services(service)
            .unwrap()
            .render()
    }

    #[test]
    fn rewrites_a_static_config() {
        let before = "\
# ensemble
tickTime=2000
dataDir=/var/lib/zookeeper
clientPort=2181
server.1=10.0.0.11:2888:3888
server.2 = 10.0.0.12:2888:3888 \t
server.3:10.0.0.13:2888:3888:observer
# end
autopurge.purgeInterval=1
";
        let after = "\
# ensemble
tickTime=2000
dataDir=/var/lib/zookeeper
clientPort=2181
server.1=zk-1.zookeeper.svc.cluster.local:2888:3888
server.2 = zk-2.zookeeper.svc.cluster.local:2888:3888
server.3:zk-3.zookeeper.svc.cluster.local:2888:3888:observer
quorumListenOnAllIPs=true
# end
autopurge.purgeInterval=1
";
        assert_eq!(rewrite(before), after);
        assert_eq!(rewrite(after), after);
    }

    #[test]
    fn keeps_role_and_client_suffix() {
        let before = "server.1=127.0.80.1:2888:3888:participant;127.0.80.1:2181\r\n\
                      server.2=[fd00::2]:2888:3888;2181\r\n\
                      server.3=h3:2888:3888:observer;[fd00::3]:2181";
        let after = "server.1=zk-1.zookeeper.svc.cluster.local:2888:3888:participant;127.0.80.1:2181\r\n\
                     server.2=zk-2.zookeeper.svc.cluster.local:2888:3888;2181\r\n\
                     server.3=zk-3.zookeeper.svc.cluster.local:2888:3888:observer;[fd00::3]:2181\r\n\
                     quorumListenOnAllIPs=true";
        assert_eq!(rewrite(before), after);
        let pod = ZooCfg::parse(before)
            .unwrap()
            .rewrite_servers(|id| Some(format!("zk-{id}")), ClientAddrRewrite::Wildcard)
            .unwrap()
            .render();
        assert_eq!(
            pod,
            "server.1=zk-1:2888:3888:participant;2181\r\n\
             server.2=zk-2:2888:3888;2181\r\n\
             server.3=zk-3:2888:3888:observer;2181"
        );
    }

    #[test]
    fn sets_an_existing_quorum_listen_on_all_ips_in_place() {
        assert_eq!(
            rewrite(
                "quorumListenOnAllIPs = false \nserver.1=zk-1.zookeeper.svc.cluster.local:2888:3888\n"
            ),
            "quorumListenOnAllIPs = true \nserver.1=zk-1.zookeeper.svc.cluster.local:2888:3888\n"
        );
        let already =
            "quorumListenOnAllIPs=TRUE\nserver.1=zk-1.zookeeper.svc.cluster.local:2888:3888\n";
        assert_eq!(rewrite(already), already);
    }

    #[test]
    fn appends_at_the_end_without_server_lines() {
        assert_eq!(
            rewrite(
                "tickTime=500\ndynamicConfigFile=/etc/zookeeper/conf/zoo.cfg.dynamic.100000000\n"
            ),
            "tickTime=500\ndynamicConfigFile=/etc/zookeeper/conf/zoo.cfg.dynamic.100000000\nquorumListenOnAllIPs=true\n"
        );
        assert_eq!(
            rewrite("tickTime=500"),
            "tickTime=500\nquorumListenOnAllIPs=true"
        );
        assert_eq!(rewrite(""), "quorumListenOnAllIPs=true\n");
    }

    #[test]
    fn rewrites_continued_and_escaped_server_lines() {
        assert_eq!(
            rewrite("server.1=10.0.0.11:\\\n   2888:3888\nx=1\n"),
            "server.1=zk-1.zookeeper.svc.cluster.local:2888:3888\nquorumListenOnAllIPs=true\nx=1\n"
        );
    }

    #[test]
    fn refuses_what_it_cannot_do_right() {
        let cfg = ZooCfg::parse("a=1\nserver.9=h:1:2\n").unwrap();
        assert_eq!(
            cfg.rewrite_for_services(service).unwrap_err().to_string(),
            "failed to rewrite server.9 on line 2: the plan has no new host for server 9"
        );
        let cfg = ZooCfg::parse("server.1=h:1:2\n").unwrap();
        assert_eq!(
            cfg.rewrite_for_services(|_| Some("a b".to_owned()))
                .unwrap_err(),
            ZooCfgError::InvalidNewHost {
                id: 1,
                host: "a b".to_owned()
            }
        );
        let cfg = ZooCfg::parse("dynamicConfigFile=/x\nserver.1=h:1:2\n").unwrap();
        assert_eq!(
            cfg.rewrite_for_services(service).unwrap_err().to_string(),
            "failed to rewrite server.1 on line 2: with dynamicConfigFile set, server lines must be in the dynamic file"
        );
    }

    #[test]
    fn host_validation() {
        for ok in [
            "zk-1.ns.svc.cluster.local",
            "10.96.0.10",
            "fd00::1",
            "fe80::1%eth0",
            "zk_1",
        ] {
            assert!(is_valid_host(ok), "{ok}");
        }
        for bad in ["", "a b", "a;b", "a|b", "[::1]", "-a", "a\\b", "é"] {
            assert!(!is_valid_host(bad), "{bad}");
        }
    }
}
