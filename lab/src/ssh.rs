//! SSH for the lab's hosts: a per-lab user key (zkmigrate logs in with it),
//! a per-lab host key, `known_hosts` naming every host by name and address,
//! and one `sshd` (Debian's openssh-server) per host listening on its lab
//! address, port 22.

use std::fs;

use crate::LabError;
use crate::host;
use crate::layout::{Layout, Machine};
use crate::netns;

/// Creates the lab's keys, authorized_keys and known_hosts for `n` hosts.
pub fn make_keys(layout: &Layout, n: u8) -> Result<(), LabError> {
    let dir = layout.ssh_dir();
    fs::create_dir_all(&dir).map_err(|source| LabError::Io {
        what: format!("create {}", dir.display()),
        source,
    })?;
    for (file, comment) in [
        ("id_ed25519", format!("zkmigrate@zklab-{}", layout.name)),
        (
            "ssh_host_ed25519_key",
            format!("host@zklab-{}", layout.name),
        ),
    ] {
        let path = dir.join(file);
        if !path.exists() {
            netns::run(
                "ssh-keygen",
                &[
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    &comment,
                    "-f",
                    &path.display().to_string(),
                ],
            )?;
        }
    }
    let read = |f: &str| {
        fs::read_to_string(dir.join(f)).map_err(|source| LabError::Io {
            what: format!("read {f}"),
            source,
        })
    };
    host::write(&dir.join("authorized_keys"), &read("id_ed25519.pub")?)?;
    let host_pub = read("ssh_host_ed25519_key.pub")?;
    let key: Vec<&str> = host_pub.split_whitespace().take(2).collect();
    let mut known = String::new();
    for k in 1..=n {
        known.push_str(&format!(
            "host{k},{} {}\n",
            Machine::Host(k).addr(),
            key.join(" ")
        ));
    }
    host::write(&layout.known_hosts(), &known)
}

/// The sshd_config of host `k`.
pub fn sshd_config(layout: &Layout, k: u8) -> String {
    let ssh = layout.ssh_dir();
    format!(
        "# sshd of host{k}, lab {lab} (written by zklab up)\n\
         ListenAddress {addr}:22\n\
         HostKey {hostkey}\n\
         PidFile {pid}\n\
         AuthorizedKeysFile {auth}\n\
         PermitRootLogin prohibit-password\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         StrictModes no\n\
         PrintMotd no\n\
         MaxStartups 100:30:200\n\
         MaxSessions 50\n\
         Subsystem sftp internal-sftp\n",
        lab = layout.name,
        addr = Machine::Host(k).addr(),
        hostkey = ssh.join("ssh_host_ed25519_key").display(),
        pid = layout.host_dir(k).join("sshd.pid").display(),
        auth = ssh.join("authorized_keys").display(),
    )
}

/// Starts host `k`'s sshd inside the host (it daemonizes itself).
pub fn start_sshd(layout: &Layout, k: u8) -> Result<(), LabError> {
    let cfg = layout.host_dir(k).join("sshd_config");
    host::write(&cfg, &sshd_config(layout, k))?;
    // sshd's privilege-separation directory; the openssh-server package's
    // unit creates it at boot, which a fresh container may not have done.
    fs::create_dir_all("/run/sshd").map_err(|source| LabError::Io {
        what: "create /run/sshd".into(),
        source,
    })?;
    let out = host::command_on(
        layout,
        k,
        &[
            "/usr/sbin/sshd".into(),
            "-f".into(),
            cfg.display().to_string(),
        ],
    )?
    .output()
    .map_err(|source| LabError::Spawn {
        command: "sshd".into(),
        source,
    })?;
    if !out.status.success() {
        return Err(LabError::Command {
            command: format!("sshd -f {}", cfg.display()),
            status: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

/// The OpenSSH options (`Key=Value`) zkmigrate's plan carries for this lab,
/// beside the identity file: strict host checking against the lab's
/// known_hosts, no prompts, short connect timeout.
pub fn client_options(layout: &Layout) -> Vec<String> {
    vec![
        format!("UserKnownHostsFile={}", layout.known_hosts().display()),
        "StrictHostKeyChecking=yes".into(),
        "BatchMode=yes".into(),
        "ConnectTimeout=5".into(),
    ]
}

/// The same options as `ssh` arguments (`-o Key=Value ...`).
pub fn client_args(layout: &Layout) -> Vec<String> {
    client_options(layout)
        .into_iter()
        .flat_map(|o| ["-o".to_string(), o])
        .collect()
}
