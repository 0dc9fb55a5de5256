//! Faults on the lab's hosts: a network partition (iptables inside the
//! host's namespace, in a chain of zklab's own so that `heal` removes exactly
//! what `partition` added) and a crash (SIGKILL of ZooKeeper).

use crate::LabError;
use crate::host;
use crate::layout::{Layout, Machine};
use crate::netns;

const CHAIN: &str = "ZKLAB-FAULT";

fn iptables(ns: &str, args: &[&str]) -> Result<String, LabError> {
    let mut all = vec!["netns", "exec", ns, "iptables", "-w"];
    all.extend_from_slice(args);
    netns::run("ip", &all)
}

/// Cuts `machine` off the lab network: every packet in or out of its
/// `eth0` is dropped. Loopback keeps working. Repeating is harmless.
pub fn partition(layout: &Layout, machine: Machine) -> Result<(), LabError> {
    let ns = layout.ns(machine);
    if iptables(&ns, &["-L", CHAIN, "-n"]).is_err() {
        iptables(&ns, &["-N", CHAIN])?;
        iptables(&ns, &["-I", "INPUT", "-j", CHAIN])?;
        iptables(&ns, &["-I", "OUTPUT", "-j", CHAIN])?;
    }
    iptables(&ns, &["-F", CHAIN])?;
    iptables(&ns, &["-A", CHAIN, "-i", "eth0", "-j", "DROP"])?;
    iptables(&ns, &["-A", CHAIN, "-o", "eth0", "-j", "DROP"])?;
    Ok(())
}

/// Undoes [`partition`]. Healing a machine that is not partitioned is
/// harmless.
pub fn heal(layout: &Layout, machine: Machine) -> Result<(), LabError> {
    let ns = layout.ns(machine);
    if iptables(&ns, &["-L", CHAIN, "-n"]).is_ok() {
        iptables(&ns, &["-F", CHAIN])?;
    }
    Ok(())
}

/// Whether `machine` is partitioned now.
pub fn is_partitioned(layout: &Layout, machine: Machine) -> Result<bool, LabError> {
    let ns = layout.ns(machine);
    Ok(iptables(&ns, &["-S", CHAIN])
        .map(|rules| rules.contains("DROP"))
        .unwrap_or(false))
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
