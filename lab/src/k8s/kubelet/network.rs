//! A Pod's network: its own network namespace (`Layout::pod_ns`), a veth
//! pair straight between it (`eth0`) and the lab's bridge namespace (port
//! `v-p<N>` on `br0`), a Pod IP from 10.244.0.0/16, on-link routes to the
//! lab network and the Service range, and the name files `ip netns exec`
//! mounts over `/etc` (`hosts`, `resolv.conf`, `hostname`).
//!
//! Where it sits: the kubelet sets the network up before any container of
//! the Pod starts (the real kubelet's "sandbox", with a bridge CNI plugin
//! and host-local IPAM) and tears it down after the last one is gone.
//! Allocation is pure ([`Allocator`]); the `ip` calls are blocking and run
//! on the blocking pool. Nothing touches the root network namespace.
//!
//! The namespace's name carries a number, not the Pod's name (a name can
//! be 253 characters, a namespace's should stay short), so the kubelet
//! records it in the Pod's directory ([`record`]): that is how a process
//! outside the control plane (`zklab fault partition pod/NAME`) finds a
//! Pod's network ([`recorded`]).

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::LabError;
use crate::layout::Layout;
use crate::netns;

/// The Pod network (DESIGN section 8).
pub const POD_NET: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 0);
/// Prefix length of the Pod network, on `eth0` of every Pod.
pub const POD_PREFIX_LEN: u8 = 16;
/// On-link routes every Pod gets: the lab network (machines, DNS) and the
/// Service ClusterIPs (rewritten by the proxy's DNAT rules).
pub const POD_ROUTES: [&str; 2] = ["10.77.0.0/16", "10.96.0.0/16"];

/// Hands out Pod namespace numbers and Pod IPs. Like host-local IPAM it
/// goes round-robin (an address just freed is not the next one given), and
/// never gives out an address or number still held by a live Pod.
#[derive(Debug)]
pub struct Allocator {
    next_n: u32,
    next_ip: u32,
    live_n: HashSet<u32>,
    live_ip: HashSet<Ipv4Addr>,
}

impl Default for Allocator {
    fn default() -> Self {
        Allocator {
            next_n: 1,
            next_ip: 2,
            live_n: HashSet::new(),
            live_ip: HashSet::new(),
        }
    }
}

/// The largest host part of 10.244.0.0/16 given to a Pod (.255.254).
const MAX_HOST: u32 = (1 << 16) - 2;

impl Allocator {
    /// A free namespace number and address; `None` when all are taken.
    pub fn allocate(&mut self) -> Option<(u32, Ipv4Addr)> {
        while self.live_n.contains(&self.next_n) {
            self.next_n = self.next_n.checked_add(1).unwrap_or(1);
        }
        let n = self.next_n;
        let base = u32::from(POD_NET);
        let mut ip = None;
        for _ in 0..MAX_HOST {
            let candidate = Ipv4Addr::from(base + self.next_ip);
            self.next_ip = if self.next_ip >= MAX_HOST {
                2
            } else {
                self.next_ip + 1
            };
            if !self.live_ip.contains(&candidate) {
                ip = Some(candidate);
                break;
            }
        }
        let ip = ip?;
        self.next_n = n.checked_add(1).unwrap_or(1);
        self.live_n.insert(n);
        self.live_ip.insert(ip);
        Some((n, ip))
    }

    /// Gives `n` and `ip` back (the Pod's network is gone).
    pub fn release(&mut self, n: u32, ip: Ipv4Addr) {
        self.live_n.remove(&n);
        self.live_ip.remove(&ip);
    }
}

/// The identity of a Pod that its name files carry.
#[derive(Debug, Clone)]
pub struct PodNames {
    pub namespace: String,
    /// `spec.hostname`, else the Pod's name.
    pub hostname: String,
    /// `spec.subdomain`, when set.
    pub subdomain: Option<String>,
    pub cluster_domain: String,
    pub nameserver: Ipv4Addr,
}

/// One Pod's network, as built.
#[derive(Debug, Clone)]
pub struct PodNetwork {
    pub n: u32,
    pub ns: String,
    pub ip: Ipv4Addr,
    pub port: String,
}

/// The file in a Pod's directory (`<pods_dir>/<namespace>_<pod>_<uid>`)
/// naming its network: `<netns> <ip>\n`.
pub const RECORD_FILE: &str = "network";

/// Records `net` in the Pod's directory `pod_dir` (created if needed).
pub fn record(pod_dir: &Path, net: &PodNetwork) -> Result<(), LabError> {
    std::fs::create_dir_all(pod_dir).map_err(|source| LabError::Io {
        what: format!("create {}", pod_dir.display()),
        source,
    })?;
    crate::host::write(
        &pod_dir.join(RECORD_FILE),
        &format!("{} {}\n", net.ns, net.ip),
    )
}

/// A Pod's network as the kubelet recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub uid: String,
    pub ns: String,
    pub ip: Ipv4Addr,
}

/// The networks recorded for Pod `namespace/pod` under `pods_dir`: none
/// when the kubelet runs no such Pod (or has not set its network up yet),
/// two while a deleted Pod of the same name terminates beside its
/// replacement.
pub fn recorded(pods_dir: &Path, namespace: &str, pod: &str) -> Vec<Recorded> {
    // Namespace and Pod names hold no '_', so the prefix is exact.
    let prefix = format!("{namespace}_{pod}_");
    let Ok(entries) = std::fs::read_dir(pods_dir) else {
        return Vec::new();
    };
    let mut found: Vec<Recorded> = entries
        .flatten()
        .filter_map(|e| {
            let dir = e.file_name().to_string_lossy().into_owned();
            let uid = dir.strip_prefix(&prefix)?.to_string();
            let text = std::fs::read_to_string(e.path().join(RECORD_FILE)).ok()?;
            let (ns, ip) = text.trim().split_once(' ')?;
            Some(Recorded {
                uid,
                ns: ns.to_string(),
                ip: ip.parse().ok()?,
            })
        })
        .collect();
    found.sort_by(|a, b| a.uid.cmp(&b.uid));
    found
}

/// `/etc/hosts` of a Pod, as the kubelet writes it
/// (`pkg/kubelet/kubelet_pods.go` `managedHostsFileContent`).
pub fn hosts_file(ip: Ipv4Addr, names: &PodNames) -> String {
    let mut s = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    let host = &names.hostname;
    match &names.subdomain {
        Some(sub) if !sub.is_empty() => s.push_str(&format!(
            "{ip}\t{host}.{sub}.{}.svc.{}\t{host}\n",
            names.namespace, names.cluster_domain
        )),
        _ => s.push_str(&format!("{ip}\t{host}\n")),
    }
    s
}

/// `/etc/resolv.conf` of a Pod with `dnsPolicy: ClusterFirst`
/// (`pkg/kubelet/network/dns/dns.go`).
pub fn resolv_conf(names: &PodNames) -> String {
    let d = &names.cluster_domain;
    format!(
        "search {}.svc.{d} svc.{d} {d}\nnameserver {}\noptions ndots:5\n",
        names.namespace, names.nameserver
    )
}

/// `/etc/netns/<ns>`: files `ip netns exec` mounts over `/etc`.
pub fn etc_dir(ns: &str) -> PathBuf {
    PathBuf::from("/etc/netns").join(ns)
}

/// Builds a Pod's network namespace `net.ns` with `net.ip` on `eth0`
/// bridged to `bridge` in the lab's bridge namespace. A leftover namespace
/// of the same name is removed first. On failure, what was made is removed.
pub fn setup(
    layout: &Layout,
    bridge: &str,
    net: &PodNetwork,
    names: &PodNames,
) -> Result<(), LabError> {
    let result = build(layout, bridge, net, names);
    if result.is_err() {
        let _ = teardown(&net.ns);
    }
    result
}

fn build(
    layout: &Layout,
    bridge: &str,
    net: &PodNetwork,
    names: &PodNames,
) -> Result<(), LabError> {
    teardown(&net.ns)?;
    netns::add(&net.ns)?;
    netns::attach(
        &net.ns,
        net.ip,
        POD_PREFIX_LEN,
        &layout.bridge_ns(),
        bridge,
        &net.port,
    )?;
    for route in POD_ROUTES {
        netns::run("ip", &["-n", &net.ns, "route", "add", route, "dev", "eth0"])?;
    }
    let dir = etc_dir(&net.ns);
    std::fs::create_dir_all(&dir).map_err(|source| LabError::Io {
        what: format!("create {}", dir.display()),
        source,
    })?;
    crate::host::write(&dir.join("hosts"), &hosts_file(net.ip, names))?;
    crate::host::write(&dir.join("resolv.conf"), &resolv_conf(names))?;
    crate::host::write(&dir.join("hostname"), &format!("{}\n", names.hostname))?;
    Ok(())
}

/// Kills whatever still runs in `ns`, deletes it (its veth pair goes with
/// it) and its `/etc/netns` directory. Missing is fine.
pub fn teardown(ns: &str) -> Result<(), LabError> {
    netns::delete(ns)?;
    let dir = etc_dir(ns);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|source| LabError::Io {
            what: format!("remove {}", dir.display()),
            source,
        })?;
    }
    Ok(())
}

/// The Pod namespaces of lab `layout` that exist now (leftovers of an
/// earlier kubelet, at start).
pub fn leftover_pod_namespaces(layout: &Layout) -> Result<Vec<String>, LabError> {
    let prefix = format!("{}p", layout.ns_prefix());
    let mut found: Vec<String> = netns::list()?
        .into_iter()
        .filter(|ns| ns.starts_with(&prefix) && layout.owns_ns(ns))
        .collect();
    // Name files of namespaces that were never created (a crash mid-setup).
    if let Ok(entries) = std::fs::read_dir("/etc/netns") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && layout.owns_ns(&name) && !found.contains(&name) {
                found.push(name);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sub: Option<&str>) -> PodNames {
        PodNames {
            namespace: "zk".into(),
            hostname: "zk-0".into(),
            subdomain: sub.map(String::from),
            cluster_domain: "cluster.local".into(),
            nameserver: Ipv4Addr::new(10, 77, 0, 2),
        }
    }

    #[test]
    fn allocation_starts_at_dot_two_and_never_reuses_a_live_address() {
        let mut a = Allocator::default();
        let (n1, ip1) = a.allocate().unwrap();
        let (n2, ip2) = a.allocate().unwrap();
        assert_eq!((n1, ip1), (1, Ipv4Addr::new(10, 244, 0, 2)));
        assert_eq!((n2, ip2), (2, Ipv4Addr::new(10, 244, 0, 3)));
        a.release(n1, ip1);
        let (n3, ip3) = a.allocate().unwrap();
        assert_eq!((n3, ip3), (3, Ipv4Addr::new(10, 244, 0, 4)), "round-robin");
        // Wrap around: the live .0.3 is skipped, the freed .0.2 is reused.
        a.next_ip = MAX_HOST;
        let (_, last) = a.allocate().unwrap();
        assert_eq!(last, Ipv4Addr::new(10, 244, 255, 254));
        let (_, wrapped) = a.allocate().unwrap();
        assert_eq!(wrapped, Ipv4Addr::new(10, 244, 0, 2));
        let (_, next) = a.allocate().unwrap();
        assert_eq!(next, Ipv4Addr::new(10, 244, 0, 5), "skips live .3 and .4");
    }

    #[test]
    fn hosts_file_names_the_pod_and_its_fqdn() {
        let ip = Ipv4Addr::new(10, 244, 0, 7);
        let h = hosts_file(ip, &names(Some("zk-hs")));
        assert!(h.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.244.0.7\tzk-0.zk-hs.zk.svc.cluster.local\tzk-0\n"));
        assert!(hosts_file(ip, &names(None)).ends_with("10.244.0.7\tzk-0\n"));
    }

    #[test]
    fn a_recorded_network_is_found_by_namespace_and_name_exactly() {
        let tmp = tempfile::tempdir().unwrap();
        let net = |n: u32| PodNetwork {
            n,
            ns: format!("zklab-t-p{n}"),
            ip: Ipv4Addr::new(10, 244, 0, n as u8 + 1),
            port: format!("v-p{n}"),
        };
        record(&tmp.path().join("zk_zk-1_u1"), &net(1)).unwrap();
        record(&tmp.path().join("zk_zk-10_u2"), &net(2)).unwrap();
        std::fs::create_dir_all(tmp.path().join("zk_zk-1_u3")).unwrap();
        assert_eq!(
            recorded(tmp.path(), "zk", "zk-1"),
            vec![Recorded {
                uid: "u1".into(),
                ns: "zklab-t-p1".into(),
                ip: Ipv4Addr::new(10, 244, 0, 2)
            }],
            "zk-10 is another Pod; u3 has no network yet"
        );
        assert!(recorded(tmp.path(), "other", "zk-1").is_empty());
        assert!(recorded(&tmp.path().join("missing"), "zk", "zk-1").is_empty());
    }

    #[test]
    fn resolv_conf_is_cluster_first() {
        assert_eq!(
            resolv_conf(&names(None)),
            "search zk.svc.cluster.local svc.cluster.local cluster.local\n\
             nameserver 10.77.0.2\noptions ndots:5\n"
        );
    }
}
