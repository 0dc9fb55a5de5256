//! `zklab up` and `zklab down`: build a lab's machines and tear them down.
//!
//! `up` builds in a fixed order (network, machines, name files, SSH, hosts,
//! ZooKeeper, plan) and, if any stage fails, tears down what it built, so a
//! failed `up` leaves nothing behind. `down` does not trust the state file:
//! it finds the lab's namespaces by name, kills every process in them,
//! deletes them, and removes the lab's files; it is safe to repeat and to run
//! after a crash.

use std::fs;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::LabError;
use crate::host::{self, ZkSettings};
use crate::layout::{LAB_PREFIX_LEN, Layout, Machine};
use crate::{netns, planfile, ssh};

/// The Kubernetes target a lab's plan asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Target {
    #[value(name = "StatefulSet")]
    StatefulSet,
    #[value(name = "PerServer")]
    PerServer,
}

/// What `up` built, as recorded in `lab.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub name: String,
    pub servers: u8,
    pub target: Target,
    pub plan: String,
    /// The admin kubeconfig of the lab's API server (reachable from the lab
    /// machines: `zklab run --on ops -- kubectl --kubeconfig PATH ...`).
    pub kubeconfig: String,
}

/// The bridge's name inside the bridge namespace.
pub const BRIDGE: &str = "br0";

/// The Pod network (DESIGN section 8).
pub const POD_CIDR: &str = "10.244.0.0/16";

/// The Service ClusterIP range (DESIGN section 8).
pub const SERVICE_CIDR: &str = "10.96.0.0/16";

/// The `zklab` executable, to start lab processes (workload, control
/// plane) from the CLI and from tests alike: this process when it is zklab,
/// else `$ZKLAB_BIN`, else `zklab` beside this executable or one directory up
/// (a test binary lives in `target/<profile>/deps/`).
pub fn zklab_exe() -> Result<std::path::PathBuf, LabError> {
    let me = std::env::current_exe().map_err(|source| LabError::Io {
        what: "find the running executable".into(),
        source,
    })?;
    if me.file_name().is_some_and(|n| n == "zklab") {
        return Ok(me);
    }
    if let Some(path) = std::env::var_os("ZKLAB_BIN") {
        return Ok(path.into());
    }
    let dir = me
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    [dir.join("zklab"), dir.join("../zklab")]
        .into_iter()
        .find(|p| p.exists())
        .ok_or_else(|| {
            LabError::Usage(format!(
                "cannot find the zklab executable near {}: build it (cargo build -p zklab) or set ZKLAB_BIN",
                me.display()
            ))
        })
}

/// Tools `up` runs; checked first so a missing one is named at once.
const TOOLS: [&str; 8] = [
    "ip",
    "unshare",
    "nsenter",
    "setsid",
    "ssh",
    "ssh-keygen",
    "java",
    "iptables",
];

/// Builds lab `layout.name` with `servers` hosts and waits for its quorum.
pub fn up(layout: &Layout, servers: u8, target: Target) -> Result<LabState, LabError> {
    check_prerequisites()?;
    if !(1..=9).contains(&servers) {
        return Err(LabError::Usage(format!(
            "a lab has 1 to 9 servers, not {servers}"
        )));
    }
    if layout.state_file().exists() || !lab_namespaces(layout)?.is_empty() {
        return Err(LabError::Usage(format!(
            "lab {0} already exists; run `zklab down --name {0}` first",
            layout.name
        )));
    }
    match build(layout, servers, target) {
        Ok(state) => Ok(state),
        Err(e) => {
            tracing::error!(lab = %layout.name, error = %e, "up failed; tearing down what was built");
            let _ = down(layout);
            Err(e)
        }
    }
}

fn build(layout: &Layout, servers: u8, target: Target) -> Result<LabState, LabError> {
    let started = Instant::now();
    fs::create_dir_all(&layout.root).map_err(|source| LabError::Io {
        what: format!("create {}", layout.root.display()),
        source,
    })?;
    let bridge_ns = layout.bridge_ns();
    netns::add(&bridge_ns)?;
    netns::add_bridge(&bridge_ns, BRIDGE)?;
    let machines = machines(servers);
    for &m in &machines {
        let ns = layout.ns(m);
        netns::add(&ns)?;
        netns::attach(
            &ns,
            m.addr(),
            LAB_PREFIX_LEN,
            &bridge_ns,
            BRIDGE,
            &layout.bridge_port(m),
        )?;
        write_name_files(layout, m, servers)?;
        // Pods (10.244/16) and ClusterIPs (10.96/16) are on the same bridge:
        // on-link routes, so that the proxy's DNAT (in OUTPUT) has a route
        // to re-route to and Pods are reached directly.
        for cidr in [POD_CIDR, SERVICE_CIDR] {
            netns::run("ip", &["-n", &ns, "route", "add", cidr, "dev", "eth0"])?;
        }
    }
    tracing::info!(lab = %layout.name, elapsed_ms = started.elapsed().as_millis() as u64, "network up");

    ssh::make_keys(layout, servers)?;
    let bin = layout.bin_dir();
    fs::create_dir_all(&bin).map_err(|source| LabError::Io {
        what: format!("create {}", bin.display()),
        source,
    })?;
    let zk = ZkSettings::default();
    for k in 1..=servers {
        host::write_files(layout, k, servers, &zk)?;
        host::start_init(layout, k)?;
        ssh::start_sshd(layout, k)?;
        host::sh_on(layout, k, &format!("{} start", host::SERVICE))?;
    }
    tracing::info!(lab = %layout.name, elapsed_ms = started.elapsed().as_millis() as u64, "hosts started");

    start_control_plane(layout, servers)?;
    tracing::info!(lab = %layout.name, elapsed_ms = started.elapsed().as_millis() as u64, "control plane ready");

    let plan = planfile::render(layout, servers, target, &zk);
    host::write(&layout.plan_file(), &plan)?;
    let state = LabState {
        name: layout.name.clone(),
        servers,
        target,
        plan: layout.plan_file().display().to_string(),
        kubeconfig: crate::k8s::controlplane::kubeconfig_path(layout)
            .display()
            .to_string(),
    };
    let json = serde_json::to_string_pretty(&state).map_err(|e| LabError::Stuck(e.to_string()))?;
    host::write(&layout.state_file(), &json)?;

    let leader = wait_quorum(layout, servers, Duration::from_secs(90))?;
    tracing::info!(
        lab = %layout.name, leader,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "ensemble has quorum"
    );
    Ok(state)
}

/// Starts `zklab controlplane` in the control-plane machine and waits until
/// it says it is ready (its API server listens, its parts run).
fn start_control_plane(layout: &Layout, servers: u8) -> Result<(), LabError> {
    use crate::k8s::controlplane::ready_path;
    let exe = zklab_exe()?;
    let log_path = layout.root.join("controlplane.log");
    let log = fs::File::create(&log_path).map_err(|source| LabError::Io {
        what: format!("create {}", log_path.display()),
        source,
    })?;
    // `nsenter --net`, not `ip netns exec`: the latter gives the process a
    // mount namespace of its own (a slave of the root one), and the Pod
    // namespaces the kubelet creates (`ip netns add`, a bind mount under
    // /run/netns) would then be invisible to `zklab down` and every other
    // lab command.
    let netns_path = format!("--net=/run/netns/{}", layout.ns(Machine::ControlPlane));
    let status = std::process::Command::new("setsid")
        .args(["--fork", "nsenter", &netns_path, "--"])
        .arg(&exe)
        .args([
            "controlplane",
            "--name",
            &layout.name,
            "--servers",
            &servers.to_string(),
        ])
        .env(
            "ZKLAB_LOG",
            std::env::var("ZKLAB_LOG").unwrap_or_else(|_| "zklab=info".into()),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .status()
        .map_err(|source| LabError::Spawn {
            command: "zklab controlplane".into(),
            source,
        })?;
    if !status.success() {
        return Err(LabError::Stuck(format!(
            "the control plane failed to start: {status}"
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready_path(layout).exists() {
        if Instant::now() > deadline {
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            return Err(LabError::Stuck(format!(
                "the control plane is not ready after 60 s; its log ends:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Every machine of a lab with `servers` hosts.
pub fn machines(servers: u8) -> Vec<Machine> {
    let mut m = vec![Machine::ControlPlane, Machine::Ops, Machine::Client];
    m.extend((1..=servers).map(Machine::Host));
    m
}

/// `/etc/netns/<ns>/hosts` and `resolv.conf`: `ip netns exec` mounts them
/// over `/etc`, so every lab machine resolves the others by name.
fn write_name_files(layout: &Layout, m: Machine, servers: u8) -> Result<(), LabError> {
    let dir = layout.etc_netns(m);
    fs::create_dir_all(&dir).map_err(|source| LabError::Io {
        what: format!("create {}", dir.display()),
        source,
    })?;
    let mut hosts = format!("127.0.0.1\tlocalhost\n127.0.1.1\t{}\n", m.short());
    for other in machines(servers) {
        hosts.push_str(&format!("{}\t{}\n", other.addr(), other.short()));
    }
    host::write(&dir.join("hosts"), &hosts)?;
    host::write(&dir.join("hostname"), &format!("{}\n", m.short()))?;
    host::write(
        &dir.join("resolv.conf"),
        &format!(
            "# lab {}: the control plane's DNS server\nnameserver {}\noptions timeout:1 attempts:2\n",
            layout.name,
            Machine::ControlPlane.addr()
        ),
    )
}

/// Waits until every host serves and exactly one leads; returns the leader.
pub fn wait_quorum(layout: &Layout, servers: u8, timeout: Duration) -> Result<u8, LabError> {
    let deadline = Instant::now() + timeout;
    loop {
        let modes: Vec<(u8, Option<String>)> =
            (1..=servers).map(|k| (k, host_mode(layout, k))).collect();
        let leaders: Vec<u8> = modes
            .iter()
            .filter(|(_, m)| m.as_deref() == Some("leader"))
            .map(|(k, _)| *k)
            .collect();
        let serving = modes
            .iter()
            .all(|(_, m)| matches!(m.as_deref(), Some("leader" | "follower")));
        if serving && leaders.len() == 1 {
            return Ok(leaders[0]);
        }
        if Instant::now() > deadline {
            return Err(LabError::Stuck(format!(
                "the lab's ensemble has no quorum after {timeout:?}: modes {modes:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `Mode:` of host `k`'s ZooKeeper, asked from the operator machine.
pub fn host_mode(layout: &Layout, k: u8) -> Option<String> {
    let addr = (Machine::Host(k).addr(), 2181).into();
    let srvr = netns::four_letter_word(&layout.ns(Machine::Ops), addr, "srvr")?;
    srvr.lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(|m| m.trim().to_string())
}

/// The lab's namespaces that exist now, found by name.
pub fn lab_namespaces(layout: &Layout) -> Result<Vec<String>, LabError> {
    Ok(netns::list()?
        .into_iter()
        .filter(|ns| layout.owns_ns(ns))
        .collect())
}

/// Tears lab `layout.name` down: every process, namespace, name file and
/// file of the lab. Safe to repeat.
pub fn down(layout: &Layout) -> Result<(), LabError> {
    let namespaces = lab_namespaces(layout)?;
    // Kill first, everywhere, so that no process of one machine keeps
    // talking to a machine already gone while we delete.
    for ns in &namespaces {
        netns::kill_all(ns)?;
    }
    for ns in &namespaces {
        netns::delete(ns)?;
        let etc = std::path::Path::new("/etc/netns").join(ns);
        if etc.exists() {
            fs::remove_dir_all(&etc).map_err(|source| LabError::Io {
                what: format!("remove {}", etc.display()),
                source,
            })?;
        }
    }
    // Name files of namespaces that were never created (a crash mid-up).
    if let Ok(entries) = fs::read_dir("/etc/netns") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if layout.owns_ns(&name) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    if layout.root.exists() {
        fs::remove_dir_all(&layout.root).map_err(|source| LabError::Io {
            what: format!("remove {}", layout.root.display()),
            source,
        })?;
    }
    Ok(())
}

/// Reads what `up` recorded.
pub fn load_state(layout: &Layout) -> Result<LabState, LabError> {
    let text = fs::read_to_string(layout.state_file()).map_err(|_| {
        LabError::Usage(format!(
            "lab {0} is not up (no {1}); run `zklab up --name {0}`",
            layout.name,
            layout.state_file().display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| LabError::Stuck(format!("bad lab.json: {e}")))
}

fn check_prerequisites() -> Result<(), LabError> {
    let uid = netns::run("id", &["-u"])?;
    if uid.trim() != "0" {
        return Err(LabError::Usage(
            "zklab needs root (network namespaces, mounts, iptables)".into(),
        ));
    }
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| netns::run("sh", &["-c", &format!("command -v {t}")]).is_err())
        .chain(
            ["/usr/sbin/sshd", "/usr/share/java/zookeeper.jar"]
                .into_iter()
                .filter(|p| !std::path::Path::new(p).exists()),
        )
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(LabError::Usage(format!(
            "missing {}: run scripts/setup.sh",
            missing.join(", ")
        )))
    }
}
