//! The hosts boundary (STYLE convention 1): everything zkmigrate does on a
//! ZooKeeper server's host goes through a [`HostSession`]: run a service
//! command, read a file, replace one atomically, move one aside, see which
//! ports listen.
//!
//! Two transports, chosen by the plan's `access`:
//!
//! - `ssh`: the system `ssh` with a ControlMaster per host (module
//!   `ssh`), so each command is a channel on one authenticated connection.
//! - `exec`: a local command prefix rendered for the server (`ip netns
//!   exec {host}`, `kubectl exec`, a lab's `zklab run --on {host}`).
//!
//! Both run POSIX `sh` on the host, and the file operations are small
//! scripts that take their operands as arguments (module `scripts`), so
//! nothing is spliced into shell text and both transports behave alike.
//!
//! Errors say which server and host, and keep three outcomes apart, because
//! the engine's next move depends on it: could not connect (nothing ran),
//! the connection was lost during a command (it may or may not have run:
//! observe before acting again), and the command ran and failed. Only
//! connecting is retried here; a command is never re-run automatically, as
//! most are not idempotent (`restart`).

mod exec;
mod scripts;
mod ssh;

use std::fmt;
use std::sync::Arc;

use tracing::Instrument;

pub use scripts::{listening_ports, shell_quote};
pub use ssh::{DEFAULT_CONNECT_TIMEOUT, IDLE_PERSIST, SshConnector, expand_home, render_config};

use crate::plan::{Access, ExecAccess, Server, ServerId, ValidatedPlan};

/// Why something could not be done on a host.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The plan's access settings cannot be used (a malformed ssh option,
    /// the generated ssh_config could not be written).
    #[error("failed to prepare host access: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// No connection to the host: nothing ran.
    #[error("failed to connect to server {server_id} ({host}): {reason}")]
    Connect {
        /// The server.
        server_id: ServerId,
        /// Its host, as in the plan.
        host: String,
        /// What ssh or the exec prefix said.
        reason: String,
    },
    /// The connection broke while the command ran, or the local `ssh` or
    /// prefix could not be run: the command may or may not have run.
    #[error(
        "failed to {action} on server {server_id} ({host}): {reason}; whether it ran is unknown"
    )]
    Transport {
        /// The server.
        server_id: ServerId,
        /// Its host.
        host: String,
        /// What was being done, e.g. `run "systemctl stop zookeeper"`.
        action: String,
        /// What went wrong.
        reason: String,
    },
    /// The command ran and exited non-zero.
    #[error(
        "failed to {action} on server {server_id} ({host}): exit status {status}{}",
        stderr_suffix(stderr)
    )]
    CommandFailed {
        /// The server.
        server_id: ServerId,
        /// Its host.
        host: String,
        /// What was being done.
        action: String,
        /// The exit status.
        status: i32,
        /// The command's stderr (its end, when long).
        stderr: String,
    },
    /// The command succeeded but printed what zkmigrate cannot read.
    #[error("failed to {action} on server {server_id} ({host}): {reason}")]
    UnexpectedOutput {
        /// The server.
        server_id: ServerId,
        /// Its host.
        host: String,
        /// What was being done.
        action: String,
        /// What is wrong with the output.
        reason: String,
    },
}

impl HostError {
    /// Whether no connection could be made (nothing ran).
    pub fn is_connect(&self) -> bool {
        matches!(self, HostError::Connect { .. })
    }

    /// Whether the command ran and failed.
    pub fn is_command_failed(&self) -> bool {
        matches!(self, HostError::CommandFailed { .. })
    }
}

fn stderr_suffix(stderr: &str) -> String {
    match stderr.trim() {
        "" => String::new(),
        text => format!(": {text}"),
    }
}

/// What a command left: its exit status and output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// The exit status; 128 + N when killed by signal N.
    pub status: i32,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// Stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as text (lossy), trimmed to its last 2000 characters.
    pub fn stderr_text(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let text = text.trim();
        let skip = text.chars().count().saturating_sub(2000);
        text.chars().skip(skip).collect()
    }
}

/// How to reach the plan's hosts: built once per run from the plan.
#[derive(Debug, Clone)]
pub enum HostAccess {
    /// Over ssh, with the plan's user, port, key, options and jump hosts.
    Ssh(SshConnector),
    /// Through a local command prefix.
    Exec(ExecAccess),
}

impl HostAccess {
    /// The access the plan's `ensemble.access` describes. For ssh this
    /// writes the generated ssh_config (removed when the access is dropped).
    pub fn from_plan(plan: &ValidatedPlan) -> Result<HostAccess, HostError> {
        match &plan.ensemble.access {
            Access::Ssh(access) => Ok(HostAccess::Ssh(SshConnector::new(&plan.name, access)?)),
            Access::Exec(access) => Ok(HostAccess::Exec(access.clone())),
        }
    }

    /// Opens a session to `server`'s host: an ssh master (connecting is
    /// retried, bounded, when the failure may pass), or for exec a probe
    /// (`sh -c true` through the prefix), so that an unusable prefix is a
    /// connect error here rather than a failed command later.
    pub async fn connect(&self, server: &Server) -> Result<HostSession, HostError> {
        let span = tracing::info_span!("host", server_id = %server.id, host = %server.host);
        async {
            let transport = match self {
                HostAccess::Ssh(connector) => {
                    let session = connector.connect(server).await?;
                    Transport::Ssh {
                        connector: connector.clone(),
                        session: tokio::sync::Mutex::new(Some(Arc::new(session))),
                    }
                }
                HostAccess::Exec(access) => {
                    let prefix = access.render(server);
                    exec::probe(server, &prefix).await?;
                    Transport::Exec { prefix }
                }
            };
            tracing::debug!("host session open");
            Ok(HostSession {
                server: server.clone(),
                transport,
            })
        }
        .instrument(span)
        .await
    }
}

/// One server's host, connected.
pub struct HostSession {
    server: Server,
    transport: Transport,
}

enum Transport {
    Ssh {
        connector: SshConnector,
        /// The master; replaced when it went away between commands.
        session: tokio::sync::Mutex<Option<Arc<openssh::Session>>>,
    },
    Exec {
        prefix: Vec<String>,
    },
}

impl fmt::Debug for HostSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostSession")
            .field("server_id", &self.server.id)
            .field("host", &self.server.host)
            .finish_non_exhaustive()
    }
}

impl HostSession {
    /// The server this session reaches.
    pub fn server_id(&self) -> ServerId {
        self.server.id
    }

    /// Its host, as in the plan.
    pub fn host(&self) -> &str {
        &self.server.host
    }

    /// Runs `shell_command` with the host's `sh -c` and returns its status
    /// and output, whatever the status: a plan's service command, say.
    pub async fn run(&self, shell_command: &str) -> Result<CommandOutput, HostError> {
        let action = format!("run {shell_command:?}");
        self.execute(&action, &["sh", "-c", shell_command], None)
            .await
    }

    /// [`HostSession::run`], with a non-zero exit as
    /// [`HostError::CommandFailed`].
    pub async fn run_checked(&self, shell_command: &str) -> Result<CommandOutput, HostError> {
        let action = format!("run {shell_command:?}");
        let output = self
            .execute(&action, &["sh", "-c", shell_command], None)
            .await?;
        self.checked(action, output)
    }

    /// The file's bytes, or `None` when there is no such file.
    pub async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, HostError> {
        let action = format!("read {path}");
        let output = self
            .execute(&action, &["sh", "-c", scripts::READ_FILE, "sh", path], None)
            .await?;
        if output.status == scripts::ABSENT {
            return Ok(None);
        }
        Ok(Some(self.checked(action, output)?.stdout))
    }

    /// Replaces `path` with `bytes` atomically: a temporary file in the same
    /// directory (a copy of the original, so owner, group and mode carry
    /// over), synced, renamed over the original. `mode` (e.g. `0o644`)
    /// sets the mode instead. A symlink is written through, not replaced.
    pub async fn write_file_atomic(
        &self,
        path: &str,
        bytes: &[u8],
        mode: Option<u32>,
    ) -> Result<(), HostError> {
        let action = format!("write {path}");
        let mode = mode.map(|m| format!("{m:04o}")).unwrap_or_default();
        let argv = ["sh", "-c", scripts::WRITE_FILE_ATOMIC, "sh", path, &mode];
        let output = self.execute(&action, &argv, Some(bytes)).await?;
        self.checked(action, output).map(drop)
    }

    /// Renames `from` to `to` (replacing `to`), and syncs the directory.
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), HostError> {
        let action = format!("move {from} to {to}");
        let argv = ["sh", "-c", scripts::RENAME, "sh", from, to];
        let output = self.execute(&action, &argv, None).await?;
        self.checked(action, output).map(drop)
    }

    /// Whether a file (or symlink) is at `path`.
    pub async fn file_exists(&self, path: &str) -> Result<bool, HostError> {
        let action = format!("look for {path}");
        let argv = ["sh", "-c", scripts::FILE_EXISTS, "sh", path];
        let output = self.execute(&action, &argv, None).await?;
        match output.status {
            0 => Ok(true),
            scripts::ABSENT => Ok(false),
            _ => self.checked(action, output).map(|_| false),
        }
    }

    /// Which of `ports` have a TCP socket in LISTEN on the host (IPv4 or
    /// IPv6, any address), from the kernel's tables in `/proc/net`.
    pub async fn ports_listening(&self, ports: &[u16]) -> Result<Vec<u16>, HostError> {
        let action = "read the TCP socket tables (/proc/net/tcp)".to_string();
        let argv = ["sh", "-c", scripts::TCP_TABLES];
        let output = self.execute(&action, &argv, None).await?;
        let output = self.checked(action.clone(), output)?;
        listening_ports(&output.stdout_text(), ports).map_err(|reason| {
            HostError::UnexpectedOutput {
                server_id: self.server.id,
                host: self.server.host.clone(),
                action,
                reason,
            }
        })
    }

    /// Closes the session (the ssh master exits).
    pub async fn close(self) -> Result<(), HostError> {
        if let Transport::Ssh { session, .. } = self.transport
            && let Some(session) = session.into_inner()
            && let Ok(session) = Arc::try_unwrap(session)
        {
            session.close().await.map_err(|e| HostError::Transport {
                server_id: self.server.id,
                host: self.server.host.clone(),
                action: "close the ssh connection".into(),
                reason: ssh::error_text(&e),
            })?;
        }
        Ok(())
    }

    fn checked(&self, action: String, output: CommandOutput) -> Result<CommandOutput, HostError> {
        match output.success() {
            true => Ok(output),
            false => Err(HostError::CommandFailed {
                server_id: self.server.id,
                host: self.server.host.clone(),
                action,
                status: output.status,
                stderr: output.stderr_text(),
            }),
        }
    }

    /// Runs `argv` on the host, feeding `stdin` when given.
    async fn execute(
        &self,
        action: &str,
        argv: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<CommandOutput, HostError> {
        let span = tracing::debug_span!(
            "host_command",
            server_id = %self.server.id,
            host = %self.server.host,
            action,
        );
        async {
            crate::failpoint::point(|| format!("host/{}/{action}", self.server.id)).await;
            let output = match &self.transport {
                Transport::Exec { prefix } => {
                    exec::execute(&self.server, action, prefix, argv, stdin).await?
                }
                Transport::Ssh { connector, session } => {
                    let master = self.master(connector, session).await?;
                    ssh::execute(&self.server, action, &master, argv, stdin).await?
                }
            };
            tracing::debug!(status = output.status, "host command finished");
            Ok(output)
        }
        .instrument(span)
        .await
    }

    /// The live ssh master, reconnecting first when it went away (idle
    /// timeout, network): safe, since the command has not started.
    async fn master(
        &self,
        connector: &SshConnector,
        slot: &tokio::sync::Mutex<Option<Arc<openssh::Session>>>,
    ) -> Result<Arc<openssh::Session>, HostError> {
        let mut slot = slot.lock().await;
        if let Some(master) = slot.as_ref() {
            match master.check().await {
                Ok(()) => return Ok(master.clone()),
                Err(e) => {
                    tracing::info!(error = %ssh::error_text(&e), "ssh master gone; reconnecting")
                }
            }
        }
        let master = Arc::new(connector.connect(&self.server).await?);
        *slot = Some(master.clone());
        Ok(master)
    }
}
