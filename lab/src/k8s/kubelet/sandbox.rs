//! A container: a process in its Pod's network namespace, sandboxed by
//! bubblewrap (`ip netns exec <podns> bwrap ...`).
//!
//! Where it sits: the kubelet's runtime (what containerd plus runc are to
//! the real kubelet). The sandbox has its own PID, IPC, UTS and mount
//! namespaces; its root is a tmpfs holding the host's top-level entries
//! read-only, fresh `/dev`, `/proc`, `/tmp` and `/run`, the image's files,
//! fresh writable directories for the image's declared volumes, and the
//! Pod's volumes at their mount paths. The host's root filesystem is never
//! written: mount points are made in the tmpfs root, and a mount path under
//! a read-only host directory must already exist.
//!
//! The container's command is PID 1 of its namespace (`--as-pid-1`), as in
//! a real container: SIGTERM reaches it only if it handles SIGTERM (the JVM
//! does, a shell does not, and is killed after the grace period). bwrap
//! reports the container's host PID through `--json-status-fd`; the kubelet
//! signals that PID and enters its namespaces for exec probes. Output goes
//! straight to the container's log file.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::image;
use crate::LabError;

/// A bind mount into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

/// A top-level entry of the host's `/`, as the sandbox's root shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootEntry {
    /// Bound read-only.
    Bind(String),
    /// Recreated as the same symlink (`/bin -> usr/bin`).
    Symlink(String, String),
}

/// Top-level entries the sandbox makes itself.
const OWN: [&str; 6] = ["proc", "dev", "tmp", "run", "sys", "lost+found"];

/// The host's top-level entries to show in every sandbox.
pub fn host_root() -> Result<Vec<RootEntry>, LabError> {
    let entries = std::fs::read_dir("/").map_err(|source| LabError::Io {
        what: "read /".into(),
        source,
    })?;
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if OWN.contains(&name.as_str()) {
            continue;
        }
        let path = format!("/{name}");
        match std::fs::read_link(&path) {
            Ok(target) => out.push(RootEntry::Symlink(target.display().to_string(), path)),
            Err(_) => out.push(RootEntry::Bind(path)),
        }
    }
    out.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    Ok(out)
}

/// Everything one container's sandbox needs.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    pub netns: String,
    pub hostname: String,
    /// The kubelet's copy of the image's files.
    pub image_dir: PathBuf,
    /// The image's writable directories and the Pod's volumes.
    pub mounts: Vec<Mount>,
    pub working_dir: String,
    pub argv: Vec<String>,
}

/// bwrap's arguments (after `bwrap`) for `spec` on a host whose root
/// holds `root`.
pub fn bwrap_args(spec: &SandboxSpec, root: &[RootEntry]) -> Vec<String> {
    let mut a: Vec<String> = [
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--as-pid-1",
        "--json-status-fd",
        "3",
        "--hostname",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(spec.hostname.clone());
    let mut push = |args: &[&str]| a.extend(args.iter().map(|s| s.to_string()));
    let mut host_tops = Vec::new();
    for e in root {
        match e {
            RootEntry::Bind(p) => {
                push(&["--ro-bind", p, p]);
                host_tops.push(p.clone());
            }
            RootEntry::Symlink(t, p) => {
                push(&["--symlink", t, p]);
                host_tops.push(p.clone());
            }
        }
    }
    push(&[
        "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/run",
    ]);
    push(&["--ro-bind", "/sys", "/sys"]);
    let img = spec.image_dir.display().to_string();
    let entrypoint = spec
        .image_dir
        .join("docker-entrypoint.sh")
        .display()
        .to_string();
    push(&["--ro-bind", &img, image::HOME]);
    push(&["--ro-bind", &entrypoint, image::ENTRYPOINT_PATH]);
    // Parents before children, so a volume inside another lands on top.
    let mut mounts = spec.mounts.clone();
    mounts.sort_by_key(|m| m.target.matches('/').count());
    for m in &mounts {
        let src = m.source.display().to_string();
        let op = if m.read_only { "--ro-bind" } else { "--bind" };
        push(&[op, &src, &m.target]);
    }
    let top = format!(
        "/{}",
        spec.working_dir
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
    );
    if !host_tops.contains(&top) && !mounts.iter().any(|m| m.target == spec.working_dir) {
        push(&["--dir", &spec.working_dir]);
    }
    push(&["--chdir", &spec.working_dir, "--"]);
    a.extend(spec.argv.iter().cloned());
    a
}

/// A running sandbox.
pub struct Running {
    pub child: Child,
    /// bwrap's status file: the container's host PID.
    pub status_file: PathBuf,
}

/// Starts `spec` with environment `env` (exactly), stdout and stderr
/// appended to `log`.
pub fn spawn(
    spec: &SandboxSpec,
    root: &[RootEntry],
    env: &[(String, String)],
    log: &Path,
    status_file: &Path,
) -> Result<Running, LabError> {
    let open = |p: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|source| LabError::Io {
                what: format!("open {}", p.display()),
                source,
            })
    };
    let out = open(log)?;
    let err = out.try_clone().map_err(|source| LabError::Io {
        what: format!("dup {}", log.display()),
        source,
    })?;
    let _ = std::fs::remove_file(status_file);
    let mut cmd = Command::new("/bin/sh");
    // fd 3 carries bwrap's JSON status; bwrap does not pass it on.
    cmd.arg("-c")
        .arg("exec 3>\"$0\" && exec \"$@\"")
        .arg(status_file)
        .args([
            "/usr/sbin/ip",
            "netns",
            "exec",
            &spec.netns,
            "/usr/bin/bwrap",
        ])
        .args(bwrap_args(spec, root))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let child = cmd.spawn().map_err(|source| LabError::Spawn {
        command: format!("ip netns exec {} bwrap ...", spec.netns),
        source,
    })?;
    Ok(Running {
        child,
        status_file: status_file.to_path_buf(),
    })
}

/// The container's host PID from bwrap's status file, once written.
pub fn child_pid(status_file: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(status_file).ok()?;
    let rest = &text[text.find("\"child-pid\"")? + "\"child-pid\"".len()..];
    let digits: String = rest
        .trim_start_matches([' ', ':'])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Waits (bounded) for the container's host PID.
pub async fn await_child_pid(status_file: &Path, timeout: Duration) -> Option<u32> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(pid) = child_pid(status_file) {
            return Some(pid);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `signal` (`TERM`, `KILL`) to `pid`. A process already gone is
/// fine.
pub async fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

/// A container's exit code as runtimes report it: the code, or 128 plus
/// the signal that killed it.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bwrap_args_isolate_and_mount_in_order() {
        let spec = SandboxSpec {
            netns: "zklab-t-p1".into(),
            hostname: "zk-0".into(),
            image_dir: "/lab/image".into(),
            mounts: vec![
                Mount {
                    source: "/v/cm".into(),
                    target: "/conf/extra".into(),
                    read_only: true,
                },
                Mount {
                    source: "/v/data".into(),
                    target: "/data".into(),
                    read_only: false,
                },
            ],
            working_dir: "/apache-zookeeper-3.8.0-bin".into(),
            argv: vec!["/docker-entrypoint.sh".into(), "zkServer.sh".into()],
        };
        let root = vec![
            RootEntry::Bind("/usr".into()),
            RootEntry::Symlink("usr/bin".into(), "/bin".into()),
        ];
        let a = bwrap_args(&spec, &root).join(" ");
        assert!(a.starts_with(
            "--unshare-pid --unshare-ipc --unshare-uts --as-pid-1 --json-status-fd 3 --hostname zk-0 \
             --ro-bind /usr /usr --symlink usr/bin /bin --dev /dev --proc /proc --tmpfs /tmp --tmpfs /run"
        ), "{a}");
        assert!(
            a.contains(
                "--ro-bind /lab/image /apache-zookeeper-3.8.0-bin \
             --ro-bind /lab/image/docker-entrypoint.sh /docker-entrypoint.sh \
             --bind /v/data /data --ro-bind /v/cm /conf/extra"
            ),
            "{a}"
        );
        assert!(a.ends_with(
            "--dir /apache-zookeeper-3.8.0-bin --chdir /apache-zookeeper-3.8.0-bin -- /docker-entrypoint.sh zkServer.sh"
        ), "{a}");
        assert!(
            !a.contains("--ro-bind / /"),
            "the host root is never the sandbox root"
        );
    }

    #[test]
    fn child_pid_is_read_from_bwraps_status() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("status.json");
        assert_eq!(child_pid(&f), None);
        std::fs::write(
            &f,
            "{ \"child-pid\": 2758, \"ipc-namespace\": 4026532249 }\n",
        )
        .unwrap();
        assert_eq!(child_pid(&f), Some(2758));
    }
}
