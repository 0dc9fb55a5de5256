//! The DNS server's pure core: from Services, EndpointSlices, Pods and the
//! lab's static host names to a record table, and the lookup in it.
//!
//! The names follow the Kubernetes DNS specification
//! (kubernetes/dns `docs/specification.md`, version 1.1.0) as CoreDNS's
//! `kubernetes` plugin serves them:
//!
//! - `<svc>.<ns>.svc.<zone>` A: the ClusterIP; for a headless Service
//!   (`clusterIP: None`), the addresses of its ready endpoints (every
//!   endpoint when `publishNotReadyAddresses`), from all its EndpointSlices;
//! - `<hostname>.<svc>.<ns>.svc.<zone>` A: an endpoint with `hostname` of a
//!   headless Service (StatefulSet Pods), and a Pod whose `spec.hostname`
//!   and `spec.subdomain` name a headless Service of its namespace (its
//!   `status.podIP`, if ready or the Service publishes not-ready
//!   addresses) — what the endpoints controller would put in a slice;
//! - `_<port>._<proto>.<svc>.<ns>.svc.<zone>` SRV for named ports: to the
//!   Service name (ClusterIP), or to each endpoint's own name (headless;
//!   `<hostname>` or, without one, the dashed address as CoreDNS does);
//! - `<a-b-c-d>.<ns>.pod.<zone>` A: `a.b.c.d`, unchecked (CoreDNS's
//!   `pods insecure`, its default);
//! - the lab's machine names (`host1`, `ops`, ...), bare, as given.
//!
//! Names are compared in lower case, without the trailing dot. A name of
//! the zone that has no record of the asked type but exists (a Service
//! name asked for AAAA, or an empty non-terminal like `<ns>.svc.<zone>`)
//! is NODATA, anything else NXDOMAIN.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde_json::Value;

use crate::k8s::proxy::rules::SERVICE_NAME_LABEL;
use crate::k8s::store::{name_of, namespace_of};

/// The query types the table answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryType {
    A,
    Srv,
    /// Any other type: NODATA for existing names.
    Other,
}

/// One SRV target (priority 0, as CoreDNS).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Srv {
    pub weight: u16,
    pub port: u16,
    /// Lower case, no trailing dot.
    pub target: String,
}

/// A lookup's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    A(Vec<Ipv4Addr>),
    Srv(Vec<Srv>),
    /// The name exists, without records of the asked type.
    NoData,
    NxDomain,
}

/// Every record of the lab, at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    /// The cluster domain (`cluster.local`).
    pub zone: String,
    /// The SOA serial (the store's resourceVersion when built, truncated).
    pub serial: u32,
    a: BTreeMap<String, BTreeSet<Ipv4Addr>>,
    srv: BTreeMap<String, BTreeSet<Srv>>,
    /// Every name of the zone that exists, empty non-terminals included.
    names: BTreeSet<String>,
}

/// One endpoint of a Service, merged from its slices.
struct Endpoint {
    ip: Ipv4Addr,
    hostname: Option<String>,
    ready: bool,
}

impl Records {
    /// Builds the table.
    pub fn build(
        zone: &str,
        services: &[Value],
        slices: &[Value],
        pods: &[Value],
        static_hosts: &[(String, Ipv4Addr)],
    ) -> Records {
        let mut r = Records {
            zone: normalize(zone),
            ..Records::default()
        };
        let zone = r.zone.clone();
        r.names.insert(zone.clone());
        for (name, ip) in static_hosts {
            r.add_a(&normalize(name), *ip);
        }
        for svc in services {
            let (ns, name) = (namespace_of(svc), name_of(svc));
            let spec = &svc["spec"];
            let base = format!("{name}.{ns}.svc.{zone}");
            r.add_name(&base);
            let publish_all = spec["publishNotReadyAddresses"].as_bool() == Some(true);
            let headless = spec["clusterIP"].as_str() == Some("None");
            let endpoints: Vec<Endpoint> = endpoints_of(slices, ns, name)
                .into_iter()
                .filter(|e| e.ready || publish_all)
                .collect();
            if headless {
                for e in &endpoints {
                    r.add_a(&base, e.ip);
                    let host = e.hostname.clone().unwrap_or_else(|| dashed(e.ip));
                    r.add_a(&format!("{host}.{base}"), e.ip);
                }
                for pod in pods.iter().filter(|p| namespace_of(p) == ns) {
                    let ps = &pod["spec"];
                    if ps["subdomain"].as_str() != Some(name) {
                        continue;
                    }
                    let (Some(host), Some(ip)) = (
                        ps["hostname"].as_str(),
                        pod["status"]["podIP"]
                            .as_str()
                            .and_then(|a| a.parse::<Ipv4Addr>().ok()),
                    ) else {
                        continue;
                    };
                    if (pod_ready(pod) || publish_all)
                        && !pod["metadata"]["deletionTimestamp"].is_string()
                    {
                        r.add_a(&format!("{}.{base}", host.to_ascii_lowercase()), ip);
                    }
                }
            } else if let Some(ip) = spec["clusterIP"]
                .as_str()
                .and_then(|a| a.parse::<Ipv4Addr>().ok())
            {
                r.add_a(&base, ip);
            }
            for port in spec["ports"].as_array().into_iter().flatten() {
                let Some(port_name) = port["name"].as_str().filter(|n| !n.is_empty()) else {
                    continue;
                };
                let proto = port["protocol"]
                    .as_str()
                    .unwrap_or("TCP")
                    .to_ascii_lowercase();
                let owner = format!("_{port_name}._{proto}.{base}");
                let number = port["port"].as_u64().and_then(|p| u16::try_from(p).ok());
                r.add_name(&owner);
                if headless {
                    for e in &endpoints {
                        let Some(p) = slice_port(slices, ns, name, port_name) else {
                            continue;
                        };
                        let host = e.hostname.clone().unwrap_or_else(|| dashed(e.ip));
                        r.add_srv(&owner, p, format!("{host}.{base}"));
                    }
                } else if let Some(p) = number {
                    r.add_srv(&owner, p, base.clone());
                }
            }
        }
        r.split_weights();
        r
    }

    fn add_name(&mut self, name: &str) {
        // The name and every ancestor down to the zone exist.
        let mut n = name;
        loop {
            self.names.insert(n.to_string());
            if n == self.zone || !n.ends_with(&format!(".{}", self.zone)) {
                break;
            }
            match n.split_once('.') {
                Some((_, rest)) => n = rest,
                None => break,
            }
        }
    }

    fn add_a(&mut self, name: &str, ip: Ipv4Addr) {
        self.add_name(name);
        self.a.entry(name.to_string()).or_default().insert(ip);
    }

    fn add_srv(&mut self, name: &str, port: u16, target: String) {
        self.srv.entry(name.to_string()).or_default().insert(Srv {
            weight: 0,
            port,
            target,
        });
    }

    /// CoreDNS gives each of n targets weight 100/n.
    fn split_weights(&mut self) {
        for set in self.srv.values_mut() {
            let weight = u16::try_from(100 / set.len().max(1)).unwrap_or(100);
            *set = set
                .iter()
                .map(|s| Srv {
                    weight,
                    ..s.clone()
                })
                .collect();
        }
    }

    /// Whether `name` is in the cluster zone (or is the zone).
    pub fn in_zone(&self, name: &str) -> bool {
        let name = normalize(name);
        name == self.zone || name.ends_with(&format!(".{}", self.zone))
    }

    /// Answers `name` (any case, trailing dot or not) for `qtype`.
    pub fn lookup(&self, name: &str, qtype: QueryType) -> Answer {
        let name = normalize(name);
        if let Some(ip) = self.pod_name(&name) {
            return match qtype {
                QueryType::A => Answer::A(vec![ip]),
                _ => Answer::NoData,
            };
        }
        match qtype {
            QueryType::A => {
                if let Some(ips) = self.a.get(&name).filter(|s| !s.is_empty()) {
                    return Answer::A(ips.iter().copied().collect());
                }
            }
            QueryType::Srv => {
                if let Some(srv) = self.srv.get(&name).filter(|s| !s.is_empty()) {
                    return Answer::Srv(srv.iter().cloned().collect());
                }
            }
            QueryType::Other => {}
        }
        if self.names.contains(&name) || self.a.contains_key(&name) {
            Answer::NoData
        } else {
            Answer::NxDomain
        }
    }

    /// `a-b-c-d.<ns>.pod.<zone>`.
    fn pod_name(&self, name: &str) -> Option<Ipv4Addr> {
        let rest = name.strip_suffix(&format!(".pod.{}", self.zone))?;
        let (dashed, ns) = rest.split_once('.')?;
        if ns.is_empty() || ns.contains('.') {
            return None;
        }
        dashed.replace('-', ".").parse().ok()
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn dashed(ip: Ipv4Addr) -> String {
    ip.to_string().replace('.', "-")
}

fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The slices of Service `ns/name` (IPv4 ones).
fn slices_of<'a>(
    slices: &'a [Value],
    ns: &'a str,
    name: &'a str,
) -> impl Iterator<Item = &'a Value> {
    slices.iter().filter(move |s| {
        namespace_of(s) == ns
            && s["metadata"]["labels"][SERVICE_NAME_LABEL].as_str() == Some(name)
            && s["addressType"].as_str() == Some("IPv4")
    })
}

/// Endpoints of Service `ns/name`, merged by address (ready if any copy
/// is; a hostname if any copy has one).
fn endpoints_of(slices: &[Value], ns: &str, name: &str) -> Vec<Endpoint> {
    let mut by_ip: BTreeMap<Ipv4Addr, Endpoint> = BTreeMap::new();
    for slice in slices_of(slices, ns, name) {
        for ep in slice["endpoints"].as_array().into_iter().flatten() {
            let ready = ep["conditions"]["ready"].as_bool().unwrap_or(true);
            let hostname = ep["hostname"].as_str().map(str::to_ascii_lowercase);
            for ip in ep["addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str()?.parse::<Ipv4Addr>().ok())
            {
                let e = by_ip.entry(ip).or_insert(Endpoint {
                    ip,
                    hostname: None,
                    ready: false,
                });
                e.ready |= ready;
                if e.hostname.is_none() {
                    e.hostname = hostname.clone();
                }
            }
        }
    }
    by_ip.into_values().collect()
}

/// The port number of the slice port named `port_name` of Service
/// `ns/name`.
fn slice_port(slices: &[Value], ns: &str, name: &str, port_name: &str) -> Option<u16> {
    slices_of(slices, ns, name)
        .flat_map(|s| s["ports"].as_array().into_iter().flatten())
        .find(|p| p["name"].as_str() == Some(port_name))
        .and_then(|p| p["port"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
