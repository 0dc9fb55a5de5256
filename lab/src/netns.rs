//! Network namespaces, veth pairs and bridges, through iproute2's `ip`.
//!
//! Every call names its namespace (`ip -n NS ...`) or creates links directly
//! inside lab namespaces (`ip link add A netns X type veth peer name B netns
//! Y`), so nothing is ever created in, moved through, or changed in the root
//! network namespace.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::process::Command;
use std::time::Duration;

use crate::LabError;

/// Runs a command to completion; its stdout on success, an error carrying
/// the command line and stderr otherwise.
pub fn run(program: &str, args: &[&str]) -> Result<String, LabError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| LabError::Spawn {
            command: format!("{program} {}", args.join(" ")),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command: format!("{program} {}", args.join(" ")),
            status: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Names of every network namespace on the machine.
pub fn list() -> Result<Vec<String>, LabError> {
    let out = run("ip", &["netns", "list"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Whether namespace `ns` exists.
pub fn exists(ns: &str) -> Result<bool, LabError> {
    Ok(list()?.iter().any(|n| n == ns))
}

/// Creates namespace `ns` with its loopback up.
pub fn add(ns: &str) -> Result<(), LabError> {
    run("ip", &["netns", "add", ns])?;
    run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
    Ok(())
}

/// Kills every process in namespace `ns`, then deletes it. Missing is fine.
pub fn delete(ns: &str) -> Result<(), LabError> {
    if !exists(ns)? {
        return Ok(());
    }
    kill_all(ns)?;
    run("ip", &["netns", "del", ns])?;
    Ok(())
}

/// SIGKILLs every process whose network namespace is `ns`, and waits
/// (bounded) until none is left.
pub fn kill_all(ns: &str) -> Result<(), LabError> {
    for _ in 0..50 {
        let pids = pids(ns)?;
        if pids.is_empty() {
            return Ok(());
        }
        let mut args = vec!["-KILL"];
        args.extend(pids.iter().map(String::as_str));
        // A pid may be gone between listing and killing: not an error.
        let _ = run("kill", &args);
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(LabError::Stuck(format!(
        "processes in namespace {ns} survive SIGKILL"
    )))
}

/// Pids of the processes in namespace `ns`.
pub fn pids(ns: &str) -> Result<Vec<String>, LabError> {
    Ok(run("ip", &["netns", "pids", ns])?
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// Creates a bridge `br` (up) in namespace `ns`.
pub fn add_bridge(ns: &str, br: &str) -> Result<(), LabError> {
    run("ip", &["-n", ns, "link", "add", br, "type", "bridge"])?;
    run("ip", &["-n", ns, "link", "set", br, "up"])?;
    Ok(())
}

/// Connects namespace `ns` (interface `eth0`, address `addr/prefix`) to
/// bridge `br` in `bridge_ns` through a veth pair whose bridge end is
/// `port`. Both ends are created where they live.
pub fn attach(
    ns: &str,
    addr: Ipv4Addr,
    prefix: u8,
    bridge_ns: &str,
    br: &str,
    port: &str,
) -> Result<(), LabError> {
    run(
        "ip",
        &[
            "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns",
            bridge_ns,
        ],
    )?;
    run("ip", &["-n", bridge_ns, "link", "set", port, "master", br])?;
    run("ip", &["-n", bridge_ns, "link", "set", port, "up"])?;
    let cidr = format!("{addr}/{prefix}");
    run("ip", &["-n", ns, "addr", "add", &cidr, "dev", "eth0"])?;
    run("ip", &["-n", ns, "link", "set", "eth0", "up"])?;
    Ok(())
}

/// Runs `f` on a thread that has entered namespace `ns`: sockets it opens
/// live in that namespace. The calling thread is not moved.
pub fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, LabError> {
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path).map_err(|source| LabError::Io {
        what: format!("open {path}"),
        source,
    })?;
    std::thread::spawn(move || {
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| LabError::Stuck(format!("failed to enter namespace: {e}")))?;
        Ok(f())
    })
    .join()
    .map_err(|_| LabError::Stuck("a thread in a lab namespace panicked".into()))?
}

/// Sends a four-letter word from inside namespace `ns`.
pub fn four_letter_word(ns: &str, addr: SocketAddr, word: &'static str) -> Option<String> {
    in_ns(ns, move || {
        use std::io::{Read, Write};
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(word.as_bytes()).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    })
    .ok()
    .flatten()
}
