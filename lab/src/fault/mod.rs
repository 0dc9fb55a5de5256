//! Faults the lab injects (`zklab fault`, DESIGN section 8): cut a machine
//! or a Pod off the network, crash a host's ZooKeeper, make a host's
//! ZooKeeper fail to start, make the API server fail or slow, and make a
//! chosen server the leader.
//!
//! Each fault is undone exactly: a partition lives in an iptables chain of
//! zklab's own (`heal` flushes only that chain), a broken start in one flag
//! file the service script checks, an API fault in one file with its own
//! expiry.
//!
//! # Layout
//!
//! - this file: partitions of machines and Pods, kills, broken starts.
//! - [`api`]: `zklab fault api`, the file the API server reads.
//! - [`elect`]: `zklab fault elect`, a leader of our choice.

pub mod api;
pub mod elect;

use crate::LabError;
use crate::host;
use crate::k8s::kubelet::{KubeletConfig, network};
use crate::layout::{Layout, Machine};
use crate::netns;

const CHAIN: &str = "ZKLAB-FAULT";

/// The flag file, on a host, that makes the service script's `start` fail
/// (checked by `zookeeper-service.sh`).
pub const START_BROKEN_FLAG: &str = "/etc/zookeeper/zklab-start-broken";

/// What a partition cuts off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A lab machine (`ops`, `client`, `cp`, `hostK`).
    Machine(Machine),
    /// A Pod of the lab's cluster, by namespace and name.
    Pod { namespace: String, name: String },
}

impl Target {
    /// Parses `hostK`, `ops`, `client`, `cp` or `pod/NAME` (the Pod in
    /// `namespace`).
    pub fn parse(s: &str, namespace: &str) -> Result<Target, LabError> {
        if let Some(name) = s.strip_prefix("pod/") {
            if name.is_empty() || name.contains('/') {
                return Err(LabError::Usage(format!(
                    "{s:?} is not a Pod: write pod/NAME (and --namespace NS)"
                )));
            }
            return Ok(Target::Pod {
                namespace: namespace.to_string(),
                name: name.to_string(),
            });
        }
        Machine::parse(s).map(Target::Machine).ok_or_else(|| {
            LabError::Usage(format!(
                "unknown machine {s:?}: use ops, client, cp, hostK or pod/NAME"
            ))
        })
    }

    /// The network namespace to act in: a machine's, or the one the
    /// kubelet made for the Pod (which must exist and have its network).
    pub fn netns(&self, layout: &Layout) -> Result<String, LabError> {
        match self {
            Target::Machine(m) => {
                let ns = layout.ns(*m);
                if netns::exists(&ns)? {
                    Ok(ns)
                } else {
                    Err(LabError::Usage(format!(
                        "lab {} has no machine {} (no namespace {ns})",
                        layout.name,
                        m.short()
                    )))
                }
            }
            Target::Pod { namespace, name } => pod_netns(layout, namespace, name),
        }
    }
}

/// The network namespace of Pod `namespace/name`, as the kubelet recorded
/// it, when the Pod runs and its namespace exists.
pub fn pod_netns(layout: &Layout, namespace: &str, name: &str) -> Result<String, LabError> {
    let pods_dir = KubeletConfig::for_lab(layout).pods_dir;
    let recorded = network::recorded(&pods_dir, namespace, name);
    let live: Vec<&network::Recorded> = recorded
        .iter()
        .filter(|r| netns::exists(&r.ns).unwrap_or(false))
        .collect();
    match live.as_slice() {
        [one] => Ok(one.ns.clone()),
        [] if recorded.is_empty() => Err(LabError::Usage(format!(
            "no Pod {namespace}/{name} runs in lab {lab} (not created, still without a network, or gone): \
             see `zklab run --name {lab} --on ops -- kubectl --kubeconfig {root}/kubeconfig get pods -n {namespace}`",
            lab = layout.name,
            root = layout.root.display(),
        ))),
        [] => Err(LabError::Usage(format!(
            "Pod {namespace}/{name} of lab {} is terminating: its network namespace is gone",
            layout.name
        ))),
        several => Err(LabError::Usage(format!(
            "Pod {namespace}/{name} of lab {} has {} live networks (an old one still terminating: {}); try again once it is gone",
            layout.name,
            several.len(),
            several
                .iter()
                .map(|r| format!("{} {}", r.ns, r.ip))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn iptables(ns: &str, args: &[&str]) -> Result<String, LabError> {
    let mut all = vec!["netns", "exec", ns, "iptables", "-w"];
    all.extend_from_slice(args);
    netns::run("ip", &all)
}

/// Cuts namespace `ns` off the lab network: every packet in or out of its
/// `eth0` is dropped. Loopback keeps working. Repeating is harmless.
pub fn partition_ns(ns: &str) -> Result<(), LabError> {
    if iptables(ns, &["-L", CHAIN, "-n"]).is_err() {
        iptables(ns, &["-N", CHAIN])?;
        iptables(ns, &["-I", "INPUT", "-j", CHAIN])?;
        iptables(ns, &["-I", "OUTPUT", "-j", CHAIN])?;
    }
    iptables(ns, &["-F", CHAIN])?;
    iptables(ns, &["-A", CHAIN, "-i", "eth0", "-j", "DROP"])?;
    iptables(ns, &["-A", CHAIN, "-o", "eth0", "-j", "DROP"])?;
    Ok(())
}

/// Undoes [`partition_ns`]. Healing a namespace that is not partitioned
/// is harmless.
pub fn heal_ns(ns: &str) -> Result<(), LabError> {
    if iptables(ns, &["-L", CHAIN, "-n"]).is_ok() {
        iptables(ns, &["-F", CHAIN])?;
    }
    Ok(())
}

/// Whether namespace `ns` is partitioned now.
pub fn is_partitioned_ns(ns: &str) -> bool {
    iptables(ns, &["-S", CHAIN])
        .map(|rules| rules.contains("DROP"))
        .unwrap_or(false)
}

/// Cuts `machine` off the lab network (see [`partition_ns`]).
pub fn partition(layout: &Layout, machine: Machine) -> Result<(), LabError> {
    partition_ns(&layout.ns(machine))
}

/// Undoes [`partition`].
pub fn heal(layout: &Layout, machine: Machine) -> Result<(), LabError> {
    heal_ns(&layout.ns(machine))
}

/// Whether `machine` is partitioned now.
pub fn is_partitioned(layout: &Layout, machine: Machine) -> Result<bool, LabError> {
    Ok(is_partitioned_ns(&layout.ns(machine)))
}

/// Refuses a host the lab does not have.
pub fn check_host(layout: &Layout, servers: u8, k: u8) -> Result<(), LabError> {
    if (1..=servers).contains(&k) {
        Ok(())
    } else {
        Err(LabError::Usage(format!(
            "lab {} has hosts host1 to host{servers}, not host{k}",
            layout.name
        )))
    }
}

/// SIGKILLs host `k`'s ZooKeeper, as a crash would. The service is left
/// enabled; its script sees it stopped.
pub fn kill_zookeeper(layout: &Layout, k: u8) -> Result<(), LabError> {
    host::sh_on(
        layout,
        k,
        "pid=$(cat /var/lib/zookeeper/zookeeper_server.pid 2>/dev/null) && kill -KILL \"$pid\" \
         && while kill -0 \"$pid\" 2>/dev/null; do sleep 0.05; done",
    )
    .map(|_| ())
}

/// Drops every ssh connection to host `k`, as a network blip or an sshd
/// restart would: SIGKILL of each per-connection sshd process (the
/// children of the host's listening sshd, found by its pid file), so
/// clients see their connection end. The listener keeps accepting new
/// connections. Returns how many connections were dropped.
pub fn drop_ssh(layout: &Layout, k: u8) -> Result<usize, LabError> {
    let pid_file = layout.host_dir(k).join("sshd.pid");
    let listener = std::fs::read_to_string(&pid_file).map_err(|source| LabError::Io {
        what: format!("read {}", pid_file.display()),
        source,
    })?;
    let listener = listener.trim();
    let children = netns::run("pgrep", &["-P", listener]).unwrap_or_default();
    let pids: Vec<&str> = children.split_whitespace().collect();
    for pid in &pids {
        // One may end by itself in between: that is a dropped connection too.
        let _ = netns::run("kill", &["-KILL", pid]);
    }
    Ok(pids.len())
}

/// Makes the lab's registry lose `image` (or find it again, `missing:
/// false`): the kubelet's next pull of it fails with `ErrImagePull`, then
/// `ImagePullBackOff`, as for a repository that does not exist; running
/// containers are not touched. The list is
/// [`crate::k8s::kubelet::image::missing_file`], replaced by rename.
pub fn set_image_missing(layout: &Layout, image: &str, missing: bool) -> Result<(), LabError> {
    use crate::k8s::kubelet::image;
    let reference = image::normalise(image);
    let mut list = image::missing(layout);
    list.retain(|r| r != &reference);
    if missing {
        list.push(reference);
    }
    let file = image::missing_file(layout);
    let io = |what: String| move |source| LabError::Io { what, source };
    std::fs::create_dir_all(layout.faults_dir())
        .map_err(io(format!("create {}", layout.faults_dir().display())))?;
    let tmp = file.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::json!({ "missing": list }).to_string())
        .map_err(io(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, &file).map_err(io(format!("replace {}", file.display())))
}

/// Makes host `k`'s service script fail every `start` (and the start half
/// of `restart`) as a unit that does not come up: an error, nothing
/// started, a non-zero exit, until [`fix_start`]. A running ZooKeeper is
/// left running. Repeating is harmless.
pub fn break_start(layout: &Layout, k: u8) -> Result<(), LabError> {
    host::sh_on(layout, k, &format!("touch {START_BROKEN_FLAG}")).map(|_| ())
}

/// Undoes [`break_start`]; it does not start anything itself.
pub fn fix_start(layout: &Layout, k: u8) -> Result<(), LabError> {
    host::sh_on(layout, k, &format!("rm -f {START_BROKEN_FLAG}")).map(|_| ())
}

/// Whether host `k`'s start is broken now.
pub fn is_start_broken(layout: &Layout, k: u8) -> bool {
    host::sh_on(layout, k, &format!("test -e {START_BROKEN_FLAG}")).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_machines_and_pods() {
        assert_eq!(
            Target::parse("host2", "zookeeper").unwrap(),
            Target::Machine(Machine::Host(2))
        );
        assert_eq!(
            Target::parse("pod/zk-0", "zookeeper").unwrap(),
            Target::Pod {
                namespace: "zookeeper".into(),
                name: "zk-0".into()
            }
        );
        for bad in ["pod/", "pod/a/b", "host0", "nowhere"] {
            let e = Target::parse(bad, "zookeeper").unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn a_pod_the_kubelet_does_not_run_is_named_in_the_error() {
        let root = tempfile::tempdir().unwrap();
        let layout = Layout {
            name: "fxunit".into(),
            root: root.path().join("fxunit"),
        };
        let e = pod_netns(&layout, "zookeeper", "zk-9")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("no Pod zookeeper/zk-9 runs in lab fxunit"),
            "{e}"
        );
    }
}
