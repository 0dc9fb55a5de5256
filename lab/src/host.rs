//! A bare-metal host of the lab: its own network namespace, its own view of
//! `/etc/zookeeper`, `/var/lib/zookeeper`, `/var/log/zookeeper` and
//! `/usr/local/sbin` (bind mounts in a private mount namespace, so that the
//! plan's `configPath: /etc/zookeeper/conf/zoo.cfg` means the same thing on
//! every host, as in production), an `sshd`, and ZooKeeper managed by a
//! service script.
//!
//! The mount and UTS namespaces (the host's own hostname) are held by a
//! small init process (`zklab-host-init`, a `sleep` renamed) whose pid is
//! recorded; `sshd` and every lab command on the host enter them with
//! `nsenter -t PID -m -n -u`. ZooKeeper started over SSH
//! therefore runs with the host's files, and the root filesystem's
//! `/etc/zookeeper` is never written.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::LabError;
use crate::layout::{Layout, Machine};
use crate::netns;

/// Paths inside a host, as the host sees them.
pub const CONFIG_PATH: &str = "/etc/zookeeper/conf/zoo.cfg";
pub const DATA_DIR: &str = "/var/lib/zookeeper";
pub const SERVICE: &str = "/usr/local/sbin/zookeeper-service";

/// The host directories bind-mounted over the host's view of the system:
/// (directory under the host's lab dir, mount point).
const MOUNTS: [(&str, &str); 4] = [
    ("etc-zookeeper", "/etc/zookeeper"),
    ("var-lib-zookeeper", "/var/lib/zookeeper"),
    ("var-log-zookeeper", "/var/log/zookeeper"),
    ("usr-local-sbin", "/usr/local/sbin"),
];

/// The lab's ZooKeeper service script (bash), installed as
/// `/usr/local/sbin/zookeeper-service` on every host.
pub const SERVICE_SCRIPT: &str = include_str!("zookeeper-service.sh");

/// Settings of the hosts' ZooKeeper.
#[derive(Debug, Clone)]
pub struct ZkSettings {
    pub tick_ms: u32,
    pub client_port: u16,
    pub quorum_port: u16,
    pub election_port: u16,
}

impl Default for ZkSettings {
    fn default() -> Self {
        ZkSettings {
            tick_ms: 500,
            client_port: 2181,
            quorum_port: 2888,
            election_port: 3888,
        }
    }
}

/// The zoo.cfg of server `k` of an ensemble of `n` hosts, laid out as a
/// production file would be.
pub fn zoo_cfg(lab: &str, k: u8, n: u8, zk: &ZkSettings) -> String {
    let mut cfg = format!(
        "# ZooKeeper on host{k} of lab {lab} (written by zklab up)\n\
         \n\
         # Timing: ticks are short so that the lab's elections are quick.\n\
         tickTime={tick}\n\
         initLimit=10\n\
         syncLimit=5\n\
         \n\
         dataDir={DATA_DIR}\n\
         clientPort={client}\n\
         maxClientCnxns=200\n\
         autopurge.snapRetainCount=3\n\
         autopurge.purgeInterval=1\n\
         \n\
         # Monitoring\n\
         4lw.commands.whitelist=srvr,mntr,conf,cons,ruok,stat\n\
         admin.enableServer=true\n\
         admin.serverPort=8080\n\
         \n\
         # Ensemble\n",
        tick = zk.tick_ms,
        client = zk.client_port,
    );
    for id in 1..=n {
        cfg.push_str(&format!(
            "server.{id}={}:{}:{}\n",
            Machine::Host(id).addr(),
            zk.quorum_port,
            zk.election_port
        ));
    }
    cfg
}

/// Writes host `k`'s files: config, myid, log dir, the service script.
pub fn write_files(layout: &Layout, k: u8, n: u8, zk: &ZkSettings) -> Result<(), LabError> {
    let dir = layout.host_dir(k);
    for (sub, _) in MOUNTS {
        mkdir(&dir.join(sub))?;
    }
    mkdir(&dir.join("etc-zookeeper/conf"))?;
    write(
        &dir.join("etc-zookeeper/conf/zoo.cfg"),
        &zoo_cfg(&layout.name, k, n, zk),
    )?;
    write(&dir.join("var-lib-zookeeper/myid"), &format!("{k}\n"))?;
    let script = dir.join("usr-local-sbin/zookeeper-service");
    write(&script, SERVICE_SCRIPT)?;
    chmod_x(&script)?;
    Ok(())
}

/// Starts host `k`'s init process: it enters the host's network namespace,
/// unshares a private mount namespace, bind-mounts the host's directories
/// and then sleeps forever as `zklab-host-init`. Returns its pid.
pub fn start_init(layout: &Layout, k: u8) -> Result<u32, LabError> {
    let dir = layout.host_dir(k);
    let pid_file = dir.join("init.pid");
    let _ = fs::remove_file(&pid_file);
    let mut script = format!("set -e\nhostname host{k}\n");
    for (sub, target) in MOUNTS {
        script.push_str(&format!(
            "mount --bind {} {target}\n",
            shell_quote(&dir.join(sub))
        ));
    }
    script.push_str(&format!(
        "echo $$ > {}\nexec -a zklab-host-init sleep infinity\n",
        shell_quote(&pid_file)
    ));
    let log = fs::File::create(dir.join("init.log")).map_err(|source| LabError::Io {
        what: "create init.log".into(),
        source,
    })?;
    // `setsid --fork`: the init is reparented away from us at once, so a
    // long-lived caller (a test) never holds it as a zombie after `down`.
    let status = Command::new("setsid")
        .args([
            "--fork",
            "ip",
            "netns",
            "exec",
            &layout.ns(Machine::Host(k)),
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "bash",
            "-c",
            &script,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .map_err(|source| LabError::Spawn {
            command: "setsid ip netns exec ... unshare --mount".into(),
            source,
        })?;
    if !status.success() {
        return Err(LabError::Stuck(format!(
            "host{k}'s init failed to start: {status}"
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // The pid file is written just before the `exec`: wait for the
        // renamed process itself.
        if let Some(pid) = init_pid(layout, k) {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            let log = fs::read_to_string(dir.join("init.log")).unwrap_or_default();
            return Err(LabError::Stuck(format!(
                "host{k}'s init did not start: {log}"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The recorded pid of host `k`'s init, when it is alive.
pub fn init_pid(layout: &Layout, k: u8) -> Option<u32> {
    let pid: u32 = fs::read_to_string(layout.host_dir(k).join("init.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    cmdline.starts_with(b"zklab-host-init").then_some(pid)
}

/// A command that runs `argv` on host `k` (its network and mount
/// namespaces).
pub fn command_on(layout: &Layout, k: u8, argv: &[String]) -> Result<Command, LabError> {
    let pid = init_pid(layout, k)
        .ok_or_else(|| LabError::Stuck(format!("host{k} is not running; run zklab up")))?;
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &pid.to_string(), "-m", "-n", "-u", "--"])
        .args(argv);
    Ok(cmd)
}

/// Runs a shell command on host `k` and returns its stdout.
pub fn sh_on(layout: &Layout, k: u8, script: &str) -> Result<String, LabError> {
    let pid = init_pid(layout, k)
        .ok_or_else(|| LabError::Stuck(format!("host{k} is not running; run zklab up")))?;
    netns::run(
        "nsenter",
        &[
            "-t",
            &pid.to_string(),
            "-m",
            "-n",
            "-u",
            "--",
            "bash",
            "-c",
            script,
        ],
    )
}

fn mkdir(p: &Path) -> Result<(), LabError> {
    fs::create_dir_all(p).map_err(|source| LabError::Io {
        what: format!("create {}", p.display()),
        source,
    })
}

pub(crate) fn write(p: &Path, text: &str) -> Result<(), LabError> {
    fs::write(p, text).map_err(|source| LabError::Io {
        what: format!("write {}", p.display()),
        source,
    })
}

pub(crate) fn chmod_x(p: &Path) -> Result<(), LabError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).map_err(|source| LabError::Io {
        what: format!("chmod {}", p.display()),
        source,
    })
}

/// Single-quotes a path for bash.
pub fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoo_cfg_lists_every_host_by_address() {
        let cfg = zoo_cfg("t", 2, 3, &ZkSettings::default());
        assert!(cfg.contains("server.1=10.77.0.11:2888:3888\n"));
        assert!(cfg.contains("server.3=10.77.0.13:2888:3888\n"));
        assert!(cfg.contains("4lw.commands.whitelist=srvr,mntr,conf,cons,ruok,stat\n"));
        assert!(cfg.contains("dataDir=/var/lib/zookeeper\n"));
        assert!(!cfg.contains("server.4"));
    }
}
