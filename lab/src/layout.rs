//! Where everything of one lab lives: names of its network namespaces and
//! interfaces, its addresses, and its files. Pure; every other module asks
//! here instead of formatting a name itself, so that `zklab down` finds
//! exactly what `zklab up` made, even after a crash.
//!
//! Addresses follow DESIGN section 8: hosts 10.77.0.11+, control plane
//! 10.77.0.2, operator 10.77.0.3, client 10.77.0.4. Every lab has its own
//! bridge in a namespace of its own, so two labs use the same addresses
//! without meeting.

use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Prefix of every namespace a lab creates; `down` finds leftovers by it.
pub const NS_PREFIX: &str = "zklab-";

/// The longest lab name: namespace names stay short and readable.
pub const MAX_NAME: usize = 20;

/// A lab machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Machine {
    /// The Kubernetes control plane (API server, DNS).
    ControlPlane,
    /// Where zkmigrate runs.
    Ops,
    /// Where the workload runs.
    Client,
    /// Bare-metal host `k` (1-based), running ZooKeeper server `k`.
    Host(u8),
}

impl Machine {
    /// The short name used in namespace and interface names and `--on`.
    pub fn short(self) -> String {
        match self {
            Machine::ControlPlane => "cp".into(),
            Machine::Ops => "ops".into(),
            Machine::Client => "client".into(),
            Machine::Host(k) => format!("host{k}"),
        }
    }

    /// Parses `ops`, `client`, `cp` or `hostK`.
    pub fn parse(s: &str) -> Option<Machine> {
        match s {
            "ops" => Some(Machine::Ops),
            "client" => Some(Machine::Client),
            "cp" => Some(Machine::ControlPlane),
            _ => s
                .strip_prefix("host")
                .and_then(|k| k.parse::<u8>().ok())
                .filter(|k| (1..=200).contains(k))
                .map(Machine::Host),
        }
    }

    /// Its address on the lab network.
    pub fn addr(self) -> Ipv4Addr {
        match self {
            Machine::ControlPlane => Ipv4Addr::new(10, 77, 0, 2),
            Machine::Ops => Ipv4Addr::new(10, 77, 0, 3),
            Machine::Client => Ipv4Addr::new(10, 77, 0, 4),
            Machine::Host(k) => Ipv4Addr::new(10, 77, 0, 10 + k),
        }
    }
}

/// The lab network's prefix length (10.77.0.0/16).
pub const LAB_PREFIX_LEN: u8 = 16;

/// One lab's names and paths.
#[derive(Debug, Clone)]
pub struct Layout {
    pub name: String,
    pub root: PathBuf,
}

/// Why a lab name is refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "lab name {0:?} is invalid: use 1 to {MAX_NAME} lower-case letters, digits or '-', starting with a letter"
)]
pub struct BadName(pub String);

impl Layout {
    /// The layout of lab `name`, under `$ZKLAB_ROOT` (default `/tmp/zklab`).
    pub fn new(name: &str) -> Result<Layout, BadName> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && !name.ends_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(BadName(name.to_string()));
        }
        let base = std::env::var_os("ZKLAB_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp/zklab"));
        Ok(Layout {
            name: name.to_string(),
            root: base.join(name),
        })
    }

    /// The namespace holding the lab's bridge.
    pub fn bridge_ns(&self) -> String {
        format!("{NS_PREFIX}{}-net", self.name)
    }

    /// The namespace of a machine.
    pub fn ns(&self, machine: Machine) -> String {
        format!("{NS_PREFIX}{}-{}", self.name, machine.short())
    }

    /// The network namespace of the lab's `n`th Pod (the kubelet counts).
    pub fn pod_ns(&self, n: u32) -> String {
        format!("{NS_PREFIX}{}-p{n}", self.name)
    }

    /// Every namespace name of this lab starts with this.
    pub fn ns_prefix(&self) -> String {
        format!("{NS_PREFIX}{}-", self.name)
    }

    /// Whether namespace `ns` belongs to this lab: the bridge, a machine,
    /// or a Pod (`p<N>`). Exact, so that lab `a` never claims lab `a-b`'s.
    pub fn owns_ns(&self, ns: &str) -> bool {
        let Some(rest) = ns.strip_prefix(&self.ns_prefix()) else {
            return false;
        };
        let numbered = |p: &str| {
            rest.strip_prefix(p)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        matches!(rest, "net" | "cp" | "ops" | "client") || numbered("host") || numbered("p")
    }

    /// The bridge's end of a machine's veth pair (inside the bridge namespace).
    pub fn bridge_port(&self, machine: Machine) -> String {
        format!("v-{}", machine.short())
    }

    /// The lab's state file (what `up` built: servers, pids).
    pub fn state_file(&self) -> PathBuf {
        self.root.join("lab.json")
    }

    /// The lab's SSH material: key pair, host key, known_hosts.
    pub fn ssh_dir(&self) -> PathBuf {
        self.root.join("ssh")
    }

    /// The user key zkmigrate logs in with.
    pub fn ssh_key(&self) -> PathBuf {
        self.ssh_dir().join("id_ed25519")
    }

    /// known_hosts for every host of the lab.
    pub fn known_hosts(&self) -> PathBuf {
        self.ssh_dir().join("known_hosts")
    }

    /// Scripts shared by the hosts (mounted at /usr/local/sbin on each).
    pub fn bin_dir(&self) -> PathBuf {
        self.root.join("bin")
    }

    /// The root of host `k`'s own files.
    pub fn host_dir(&self, k: u8) -> PathBuf {
        self.root.join("hosts").join(format!("host{k}"))
    }

    /// The plan file `up` writes for zkmigrate.
    pub fn plan_file(&self) -> PathBuf {
        self.root.join("plan.yaml")
    }

    /// The workload's state directory.
    pub fn load_dir(&self) -> PathBuf {
        self.root.join("load")
    }

    /// Faults the lab's processes read while they run (`zklab fault api`).
    pub fn faults_dir(&self) -> PathBuf {
        self.root.join("faults")
    }

    /// The API server's injected fault (JSON; absent: none).
    pub fn api_fault_file(&self) -> PathBuf {
        self.faults_dir().join("api.json")
    }

    /// `/etc/netns/<ns>`: files `ip netns exec` mounts over `/etc`.
    pub fn etc_netns(&self, machine: Machine) -> PathBuf {
        PathBuf::from("/etc/netns").join(self.ns(machine))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_lab_name() {
        let l = Layout::new("a1").unwrap();
        assert_eq!(l.ns(Machine::Host(2)), "zklab-a1-host2");
        assert_eq!(l.ns(Machine::Ops), "zklab-a1-ops");
        assert_eq!(l.bridge_ns(), "zklab-a1-net");
        assert!(l.ns(Machine::Client).starts_with(&l.ns_prefix()));
        assert_eq!(l.bridge_port(Machine::Host(12)), "v-host12");
    }

    #[test]
    fn a_lab_owns_exactly_its_namespaces() {
        let a = Layout::new("a").unwrap();
        assert!(a.owns_ns("zklab-a-net"));
        assert!(a.owns_ns("zklab-a-host12"));
        assert!(a.owns_ns("zklab-a-p3"));
        assert!(a.owns_ns(&a.pod_ns(17)));
        assert!(!a.owns_ns("zklab-a-b-ops"));
        assert!(!a.owns_ns("zklab-a-host1-ops"));
        assert!(!a.owns_ns("zklab-a-p"));
        assert!(!a.owns_ns("zklab-ab-ops"));
    }

    #[test]
    fn machines_parse_and_have_design_addresses() {
        assert_eq!(Machine::parse("host3"), Some(Machine::Host(3)));
        assert_eq!(Machine::parse("host0"), None);
        assert_eq!(
            Machine::parse("ops").unwrap().addr().to_string(),
            "10.77.0.3"
        );
        assert_eq!(Machine::Host(1).addr().to_string(), "10.77.0.11");
        assert_eq!(Machine::ControlPlane.addr().to_string(), "10.77.0.2");
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "A", "1a", "a_b", "a-", "abcdefghijklmnopqrstu"] {
            assert!(Layout::new(bad).is_err(), "{bad:?}");
        }
    }
}
