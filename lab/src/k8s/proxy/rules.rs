//! The proxy's pure core: from Services and EndpointSlices (as stored JSON)
//! to the service ports with their chosen endpoints, and from those to one
//! `iptables-restore` input.
//!
//! It follows kube-proxy's iptables mode (`pkg/proxy/iptables/proxier.go`
//! in kubernetes/kubernetes) in what traffic sees:
//!
//! - every port of every Service with a ClusterIP (not `None`) gets a rule
//!   in `ZKLAB-SERVICES` (nat) matching `ClusterIP/32`, protocol and port,
//!   jumping to a per-service-port chain `ZKLAB-SVC-<hash>`;
//! - that chain spreads new connections over per-endpoint chains
//!   `ZKLAB-SEP-<hash>` with `-m statistic --mode random --probability
//!   1/(n-i)` (the last rule takes what is left), each of which DNATs to
//!   the endpoint;
//! - endpoints come from every EndpointSlice labelled
//!   `kubernetes.io/service-name: <svc>` in the Service's namespace,
//!   whoever manages it (hand-made slices are merged as kube-proxy's
//!   `EndpointSliceCache` does, `pkg/proxy/endpointslicecache.go`); the
//!   slice port is matched by the Service port's name and protocol; only
//!   an endpoint's first address is used; duplicates (same IP:port in two
//!   slices) count once;
//! - ready endpoints (`conditions.ready` true or unset) are used; when none
//!   is ready, the serving and terminating ones (`CategorizeEndpoints` in
//!   `pkg/proxy/topology.go`); when there is none of either, a REJECT rule
//!   (`icmp-port-unreachable`) goes in the filter table's `ZKLAB-SERVICES`,
//!   as kube-proxy's "has no endpoints" rule.
//!
//! Not modelled: NodePort, LoadBalancer, externalIPs, session affinity,
//! traffic policies and topology hints, masquerading (DNAT happens in the
//! sender's own namespace, in `OUTPUT`, so replies come straight back and
//! hairpin traffic stays local).
//!
//! Chain names are derived from a stable hash (FNV-1a, 64 bits) of the
//! service port (and endpoint), so the same Service keeps the same chains
//! across restarts, as kube-proxy's SHA-256-based names do.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};

use serde_json::Value;

use crate::k8s::store::{name_of, namespace_of};

/// The chain (in both nat and filter) that built-in chains jump to.
pub const SERVICES_CHAIN: &str = "ZKLAB-SERVICES";
/// Every chain of the proxy starts with this.
pub const CHAIN_PREFIX: &str = "ZKLAB-";

/// The label that ties an EndpointSlice to its Service
/// (`discovery.LabelServiceName`).
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A transport protocol of a Service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// From the API's `TCP` / `UDP` / `SCTP` (default TCP).
    fn parse(v: &Value) -> Option<Protocol> {
        match v.as_str().unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// As iptables spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One port of one Service, with the endpoints traffic goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub namespace: String,
    pub service: String,
    /// The port's name (empty for a lone unnamed port).
    pub port_name: String,
    pub protocol: Protocol,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    /// Where new connections go, sorted; empty means REJECT.
    pub endpoints: Vec<SocketAddrV4>,
}

impl ServicePort {
    /// `ns/svc:port` as kube-proxy's `ServicePortName.String()`.
    pub fn display_name(&self) -> String {
        if self.port_name.is_empty() {
            format!("{}/{}", self.namespace, self.service)
        } else {
            format!("{}/{}:{}", self.namespace, self.service, self.port_name)
        }
    }

    /// `ZKLAB-SVC-<hash>`.
    pub fn svc_chain(&self) -> String {
        format!(
            "{CHAIN_PREFIX}SVC-{:016X}",
            fnv1a(&format!(
                "{}{}",
                self.display_name(),
                self.protocol.as_str()
            ))
        )
    }

    /// `ZKLAB-SEP-<hash>` for one endpoint.
    pub fn sep_chain(&self, endpoint: SocketAddrV4) -> String {
        format!(
            "{CHAIN_PREFIX}SEP-{:016X}",
            fnv1a(&format!(
                "{}{}{endpoint}",
                self.display_name(),
                self.protocol.as_str()
            ))
        )
    }
}

/// FNV-1a, 64 bits: stable across processes (unlike `DefaultHasher`).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// An endpoint as kube-proxy's cache keeps it.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    addr: SocketAddrV4,
    ready: bool,
    serving: bool,
    terminating: bool,
}

/// Every service port with a ClusterIP, with its endpoints chosen, sorted
/// by namespace, Service and port name.
pub fn service_ports(services: &[Value], slices: &[Value]) -> Vec<ServicePort> {
    // Slices by (namespace, service name).
    let mut by_service: BTreeMap<(&str, &str), Vec<&Value>> = BTreeMap::new();
    for slice in slices {
        let Some(svc) = slice["metadata"]["labels"][SERVICE_NAME_LABEL].as_str() else {
            continue;
        };
        // kube-proxy only reads the address family it proxies.
        if slice["addressType"].as_str() != Some("IPv4") {
            continue;
        }
        by_service
            .entry((namespace_of(slice), svc))
            .or_default()
            .push(slice);
    }
    for list in by_service.values_mut() {
        list.sort_by_key(|s| name_of(s));
    }

    let mut out = Vec::new();
    for svc in services {
        let spec = &svc["spec"];
        if spec["type"].as_str() == Some("ExternalName") {
            continue;
        }
        let Some(cluster_ip) = spec["clusterIP"]
            .as_str()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        else {
            continue; // None (headless), unset, or not IPv4
        };
        let (ns, name) = (namespace_of(svc), name_of(svc));
        let slices = by_service
            .get(&(ns, name))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for port in spec["ports"].as_array().into_iter().flatten() {
            let (Some(protocol), Some(number)) = (
                Protocol::parse(&port["protocol"]),
                port["port"].as_u64().and_then(|p| u16::try_from(p).ok()),
            ) else {
                continue;
            };
            let port_name = port["name"].as_str().unwrap_or("").to_string();
            let candidates = candidates(slices, &port_name, protocol);
            out.push(ServicePort {
                namespace: ns.to_string(),
                service: name.to_string(),
                port_name,
                protocol,
                cluster_ip,
                port: number,
                endpoints: choose(&candidates),
            });
        }
    }
    out.sort_by(|a, b| {
        (&a.namespace, &a.service, &a.port_name, a.protocol).cmp(&(
            &b.namespace,
            &b.service,
            &b.port_name,
            b.protocol,
        ))
    });
    out
}

/// The endpoints of `slices` for the port named `port_name`, deduplicated
/// by IP:port (the first slice, by name, wins).
fn candidates(slices: &[&Value], port_name: &str, protocol: Protocol) -> Vec<Candidate> {
    let mut seen = BTreeMap::new();
    for slice in slices {
        let Some(port) = slice["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| {
                p["name"].as_str().unwrap_or("") == port_name
                    && Protocol::parse(&p["protocol"]) == Some(protocol)
            })
            .find_map(|p| p["port"].as_u64().and_then(|n| u16::try_from(n).ok()))
        else {
            continue;
        };
        for ep in slice["endpoints"].as_array().into_iter().flatten() {
            // "Only the first address of each endpoint is used"
            // (endpointslicecache.go).
            let Some(ip) = ep["addresses"][0]
                .as_str()
                .and_then(|a| a.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            let c = &ep["conditions"];
            // Unset ready/serving mean true; unset terminating means false
            // (discovery/v1 EndpointConditions).
            let ready = c["ready"].as_bool().unwrap_or(true);
            let candidate = Candidate {
                addr: SocketAddrV4::new(ip, port),
                ready,
                serving: c["serving"].as_bool().unwrap_or(ready),
                terminating: c["terminating"].as_bool().unwrap_or(false),
            };
            seen.entry(candidate.addr).or_insert(candidate);
        }
    }
    seen.into_values().collect()
}

/// Ready endpoints, or else the serving terminating ones.
fn choose(candidates: &[Candidate]) -> Vec<SocketAddrV4> {
    let ready: Vec<SocketAddrV4> = candidates
        .iter()
        .filter(|c| c.ready)
        .map(|c| c.addr)
        .collect();
    if !ready.is_empty() {
        return ready;
    }
    candidates
        .iter()
        .filter(|c| c.serving && c.terminating)
        .map(|c| c.addr)
        .collect()
}

/// Every nat chain the ruleset for `ports` defines (its own chains only).
pub fn nat_chains(ports: &[ServicePort]) -> BTreeSet<String> {
    let mut chains = BTreeSet::from([SERVICES_CHAIN.to_string()]);
    for sp in ports.iter().filter(|sp| !sp.endpoints.is_empty()) {
        chains.insert(sp.svc_chain());
        chains.extend(sp.endpoints.iter().map(|ep| sp.sep_chain(*ep)));
    }
    chains
}

/// The `iptables-restore --noflush` input for `ports`: declares (and so
/// flushes) the proxy's own chains, fills them, and deletes `stale` nat
/// chains (those a previous ruleset defined and this one does not). Chains
/// of others, built-in ones included, are never named.
pub fn render(ports: &[ServicePort], stale: &BTreeSet<String>) -> String {
    let mut out = String::new();
    // Filter: REJECT for service ports without endpoints.
    out.push_str("*filter\n");
    let _ = writeln!(out, ":{SERVICES_CHAIN} - [0:0]");
    for sp in ports.iter().filter(|sp| sp.endpoints.is_empty()) {
        let _ = writeln!(
            out,
            "-A {SERVICES_CHAIN} -d {}/32 -p {proto} -m comment --comment \"{} has no endpoints\" -m {proto} --dport {} -j REJECT --reject-with icmp-port-unreachable",
            sp.cluster_ip,
            sp.display_name(),
            sp.port,
            proto = sp.protocol.as_str(),
        );
    }
    out.push_str("COMMIT\n");

    out.push_str("*nat\n");
    let chains = nat_chains(ports);
    let stale: Vec<&String> = stale.iter().filter(|c| !chains.contains(*c)).collect();
    for chain in chains.iter().chain(stale.iter().copied()) {
        let _ = writeln!(out, ":{chain} - [0:0]");
    }
    for sp in ports.iter().filter(|sp| !sp.endpoints.is_empty()) {
        let _ = writeln!(
            out,
            "-A {SERVICES_CHAIN} -d {}/32 -p {proto} -m comment --comment \"{} cluster IP\" -m {proto} --dport {} -j {}",
            sp.cluster_ip,
            sp.display_name(),
            sp.port,
            sp.svc_chain(),
            proto = sp.protocol.as_str(),
        );
    }
    for sp in ports.iter().filter(|sp| !sp.endpoints.is_empty()) {
        let svc_chain = sp.svc_chain();
        let n = sp.endpoints.len();
        for (i, ep) in sp.endpoints.iter().enumerate() {
            let spread = if i + 1 < n {
                // As proxier.go: probability 1/(n-i), "%0.10f".
                format!(
                    " -m statistic --mode random --probability {:.10}",
                    1.0 / (n - i) as f64
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "-A {svc_chain} -m comment --comment \"{} -> {ep}\"{spread} -j {}",
                sp.display_name(),
                sp.sep_chain(*ep),
            );
        }
        for ep in &sp.endpoints {
            let _ = writeln!(
                out,
                "-A {} -m comment --comment \"{}\" -p {proto} -m {proto} -j DNAT --to-destination {ep}",
                sp.sep_chain(*ep),
                sp.display_name(),
                proto = sp.protocol.as_str(),
            );
        }
    }
    for chain in stale {
        let _ = writeln!(out, "-X {chain}");
    }
    out.push_str("COMMIT\n");
    out
}

/// The proxy's nat chains named in an `iptables-save -t nat` output.
pub fn saved_chains(save: &str) -> BTreeSet<String> {
    save.lines()
        .filter_map(|l| l.strip_prefix(':'))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| c.starts_with(CHAIN_PREFIX))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
