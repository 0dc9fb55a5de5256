//! The proxy's I/O edge: puts a ruleset from [`super::rules`] into one lab
//! namespace with `iptables-restore --noflush` (atomic per table, and
//! blind to every chain the ruleset does not name), makes sure the
//! built-in chains jump to `ZKLAB-SERVICES`, and clears UDP conntrack
//! entries of removed endpoints.
//!
//! The jumps are ensured as kube-proxy's `EnsureRule` does (`iptables -C`,
//! then `-I ... 1` when missing), because a restore cannot say "add this
//! rule unless present" and must never flush the built-in chains, which
//! others (the fault injector, a test) may use.
//!
//! Conntrack: as kube-proxy (`pkg/proxy/conntrack/cleanup.go`), entries are
//! deleted for UDP only: a TCP connection to a removed endpoint breaks on
//! its own (the endpoint is gone), while a UDP "connection" would keep
//! going to the old address forever. New connections of any protocol
//! always go through the new rules (nat only sees a connection's first
//! packet). Without the `conntrack` tool installed, the deletion is
//! skipped with a debug log.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddrV4;
use std::process::{Command, Stdio};

use tracing::debug;

use super::ProxyError;
use super::rules::{self, Protocol, SERVICES_CHAIN, ServicePort};

/// What the proxy last put into one namespace.
#[derive(Debug, Clone)]
pub struct Applied {
    pub ports: Vec<ServicePort>,
    /// The nat chains that ruleset defined (to delete them once stale).
    pub chains: BTreeSet<String>,
}

/// The built-in chains that jump to the proxy's, as kube-proxy's
/// `iptablesJumpChains` (filter INPUT is for NodePorts, not modelled).
const JUMPS: &[(&str, &str)] = &[
    ("nat", "OUTPUT"),
    ("nat", "PREROUTING"),
    ("filter", "OUTPUT"),
    ("filter", "FORWARD"),
];

/// Applies `ports` to namespace `ns`, given what was applied there before
/// (`None`: nothing known, e.g. a new namespace or a restarted proxy).
pub fn apply(
    ns: &str,
    ports: &[ServicePort],
    before: Option<&Applied>,
) -> Result<Applied, ProxyError> {
    let previous = match before {
        Some(a) => a.chains.clone(),
        None => rules::saved_chains(&run_in(ns, "iptables-save", &["-t", "nat"], None)?),
    };
    let text = rules::render(ports, &previous);
    run_in(
        ns,
        "iptables-restore",
        &["-w", "5", "--noflush"],
        Some(&text),
    )?;
    // Every time, not only the first: someone may have flushed a
    // built-in chain since.
    ensure_jumps(ns)?;
    if let Some(before) = before {
        clear_udp_conntrack(ns, &before.ports, ports);
    }
    Ok(Applied {
        ports: ports.to_vec(),
        chains: rules::nat_chains(ports),
    })
}

fn ensure_jumps(ns: &str) -> Result<(), ProxyError> {
    for (table, chain) in JUMPS {
        let rule = [
            "-m",
            "comment",
            "--comment",
            "zklab service portals",
            "-j",
            SERVICES_CHAIN,
        ];
        let mut check = vec!["-w", "5", "-t", table, "-C", chain];
        check.extend(rule);
        if run_in(ns, "iptables", &check, None).is_ok() {
            continue;
        }
        let mut insert = vec!["-w", "5", "-t", table, "-I", chain, "1"];
        insert.extend(rule);
        run_in(ns, "iptables", &insert, None)?;
    }
    Ok(())
}

/// UDP endpoints of `before` that `now` no longer has, per ClusterIP.
pub fn removed_udp(
    before: &[ServicePort],
    now: &[ServicePort],
) -> Vec<(SocketAddrV4, SocketAddrV4)> {
    let mut out = Vec::new();
    for old in before.iter().filter(|p| p.protocol == Protocol::Udp) {
        let current = now.iter().find(|p| {
            (&p.namespace, &p.service, &p.port_name, p.protocol)
                == (&old.namespace, &old.service, &old.port_name, old.protocol)
        });
        for ep in &old.endpoints {
            if current.is_none_or(|c| !c.endpoints.contains(ep)) {
                out.push((SocketAddrV4::new(old.cluster_ip, old.port), *ep));
            }
        }
    }
    out
}

fn clear_udp_conntrack(ns: &str, before: &[ServicePort], now: &[ServicePort]) {
    for (service, endpoint) in removed_udp(before, now) {
        let (ip, ep) = (service.ip().to_string(), endpoint.ip().to_string());
        let args = ["-D", "-p", "udp", "--orig-dst", &ip, "--dst-nat", &ep];
        // Exit 1 with "0 flow entries" is the common, harmless case.
        if let Err(error) = run_in(ns, "conntrack", &args, None) {
            debug!(ns, %service, %endpoint, %error, "conntrack entries not deleted");
        }
    }
}

/// Runs `program args` inside namespace `ns` (`ip netns exec`), feeding
/// `input` on stdin; its stdout.
fn run_in(
    ns: &str,
    program: &str,
    args: &[&str],
    input: Option<&str>,
) -> Result<String, ProxyError> {
    let command = || format!("ip netns exec {ns} {program} {}", args.join(" "));
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ProxyError::Spawn {
            command: command(),
            source,
        })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|source| ProxyError::Spawn {
                command: command(),
                source,
            })?;
    }
    let out = child
        .wait_with_output()
        .map_err(|source| ProxyError::Spawn {
            command: command(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ProxyError::Command {
            command: command(),
            status: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn port(protocol: Protocol, endpoints: &[&str]) -> ServicePort {
        ServicePort {
            namespace: "zk".into(),
            service: "dns".into(),
            port_name: "dns".into(),
            protocol,
            cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
            port: 53,
            endpoints: endpoints.iter().map(|e| e.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn only_removed_udp_endpoints_are_cleared() {
        let before = [
            port(Protocol::Udp, &["10.244.0.1:53", "10.244.0.2:53"]),
            port(Protocol::Tcp, &["10.244.0.1:53"]),
        ];
        let now = [
            port(Protocol::Udp, &["10.244.0.2:53"]),
            port(Protocol::Tcp, &[]),
        ];
        assert_eq!(
            removed_udp(&before, &now),
            [(
                "10.96.0.10:53".parse().unwrap(),
                "10.244.0.1:53".parse().unwrap()
            )]
        );
        assert_eq!(removed_udp(&before, &[]).len(), 2);
    }
}
