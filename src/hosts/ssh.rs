//! The ssh transport: the system `ssh` through the `openssh` crate, one
//! ControlMaster connection per host (process mux), every command a
//! multiplexed channel on it.
//!
//! The plan's `options` (`Key=Value`) go into a generated ssh_config file
//! passed with `-F`, followed by `Include`s of the user's and the system's
//! config, so host aliases and settings an operator relies on with plain
//! `ssh` still apply (the first value ssh obtains wins, so the plan's
//! options take precedence). The options the crate sets on the master's
//! command line (which beats any config file) are taken from the plan too:
//! `StrictHostKeyChecking` (default `yes`: never trust an unknown host key
//! during a migration) and `ConnectTimeout` (default 10 s). `Control*`
//! options are dropped: the crate owns the master.
//!
//! The master exits after [`IDLE_PERSIST`] without a channel, so a
//! zkmigrate killed with SIGKILL leaves no ssh process behind for long;
//! a session whose master is gone reconnects before its next command,
//! which is safe because that command has not started.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};

use super::exec::{exchange, exit_code};
use super::{CommandOutput, HostError};
use crate::plan::{Server, SshAccess};

/// How long an idle master outlives its last channel.
pub const IDLE_PERSIST: usize = 600;

/// Connect timeout when the plan's options set none.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts to establish a connection before giving up, for failures that
/// may pass (refused, timed out, reset).
const CONNECT_ATTEMPTS: usize = 4;

/// Everything needed to open a master to any host of the plan.
/// Cheap to clone: every session keeps one, to reconnect.
#[derive(Debug, Clone)]
pub struct SshConnector(Arc<Connector>);

#[derive(Debug)]
struct Connector {
    builder: SessionBuilder,
    /// The generated ssh_config, kept alive (and removed) with the
    /// connector; ssh reads it when a master starts.
    _config: tempfile::NamedTempFile,
}

impl SshConnector {
    /// Builds the connector and writes its ssh_config file.
    pub fn new(plan_name: &str, access: &SshAccess) -> Result<SshConnector, HostError> {
        let options = parse_options(&access.options)?;
        let identity = access.identity_file.as_deref().map(expand_home);
        let text = render_config(plan_name, &options, identity.as_ref());
        let config_error = |e: std::io::Error| HostError::Config {
            reason: format!("failed to write the generated ssh_config: {e}"),
        };
        let mut config = tempfile::Builder::new()
            .prefix("zkmigrate-ssh-")
            .suffix(".config")
            .tempfile()
            .map_err(config_error)?;
        std::io::Write::write_all(&mut config, text.as_bytes()).map_err(config_error)?;

        let mut builder = SessionBuilder::default();
        builder
            .port(access.port)
            .config_file(config.path())
            .known_hosts_check(known_hosts_check(&options))
            .connect_timeout(connect_timeout(&options))
            .server_alive_interval(Duration::from_secs(15))
            .control_persist(ControlPersist::IdleFor(
                NonZeroUsize::new(IDLE_PERSIST).unwrap_or(NonZeroUsize::MIN),
            ));
        if let Some(user) = &access.user {
            builder.user(user.clone());
        }
        if let Some(identity) = &identity {
            builder.keyfile(identity);
        }
        if !access.jump_hosts.is_empty() {
            builder.jump_hosts(&access.jump_hosts);
        }
        Ok(SshConnector(Arc::new(Connector {
            builder,
            _config: config,
        })))
    }

    /// Opens a master to `server`, retrying (bounded) the failures that
    /// may pass; an authentication or host key failure fails at once.
    pub async fn connect(&self, server: &Server) -> Result<Session, HostError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(CONNECT_ATTEMPTS - 1)
            .with_jitter();
        (|| self.0.builder.connect(&server.host))
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(is_transient)
            .notify(|e, delay| {
                tracing::warn!(
                    server_id = %server.id, host = %server.host, error = %error_text(e),
                    retry_in_ms = delay.as_millis() as u64,
                    "ssh connection failed; retrying"
                );
            })
            .await
            .map_err(|e| HostError::Connect {
                server_id: server.id,
                host: server.host.clone(),
                reason: error_text(&e),
            })
    }
}

/// Runs `argv` on the host as a channel of `master`.
pub async fn execute(
    server: &Server,
    action: &str,
    master: &Session,
    argv: &[&str],
    stdin: Option<&[u8]>,
) -> Result<CommandOutput, HostError> {
    let transport_error = |reason: String| HostError::Transport {
        server_id: server.id,
        host: server.host.clone(),
        action: action.to_string(),
        reason,
    };
    let Some((program, args)) = argv.split_first() else {
        return Err(transport_error("empty command".into()));
    };
    let mut command = master.command(*program);
    command
        .args(args)
        .stdin(match stdin {
            Some(_) => Stdio::piped(),
            None => Stdio::null(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .await
        .map_err(|e| transport_error(error_text(&e)))?;
    let (stdout, stderr) = exchange(
        child.stdin().take(),
        stdin,
        child.stdout().take(),
        child.stderr().take(),
    )
    .await
    .map_err(|e| transport_error(format!("failed to talk to the remote command: {e}")))?;
    // The process mux reports exit 255 and 127 as errors: 255 is also what
    // ssh exits with when the connection breaks, so ask the master.
    let status = match child.wait().await {
        Ok(status) => exit_code(status),
        Err(openssh::Error::RemoteProcessTerminated) => match master.check().await {
            Ok(()) => 255,
            Err(e) => {
                return Err(transport_error(format!(
                    "the connection was lost: {}",
                    error_text(&e)
                )));
            }
        },
        Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => 127,
        Err(e) => return Err(transport_error(error_text(&e))),
    };
    Ok(CommandOutput {
        status,
        stdout,
        stderr,
    })
}

/// A plan option split into key and value.
type SshOption = (String, String);

fn parse_options(options: &[String]) -> Result<Vec<SshOption>, HostError> {
    options
        .iter()
        .map(|option| {
            let bad = |why: &str| HostError::Config {
                reason: format!("ssh option {option:?} {why}"),
            };
            if option.contains(['\n', '\r']) {
                return Err(bad("holds a line break"));
            }
            let (key, value) = option
                .split_once('=')
                .ok_or_else(|| bad("is not Key=Value"))?;
            let key = key.trim();
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(bad("has no valid key"));
            }
            Ok((key.to_string(), value.trim().to_string()))
        })
        .collect()
}

fn option<'a>(options: &'a [SshOption], key: &str) -> Option<&'a str> {
    options
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// `StrictHostKeyChecking` as the crate's [`KnownHosts`]; `ask` cannot
/// ask in batch mode, so it is `yes`, as is the default.
fn known_hosts_check(options: &[SshOption]) -> KnownHosts {
    match option(options, "StrictHostKeyChecking").map(str::to_ascii_lowercase) {
        Some(v) if v == "accept-new" => KnownHosts::Add,
        Some(v) if v == "no" || v == "off" => KnownHosts::Accept,
        _ => KnownHosts::Strict,
    }
}

fn connect_timeout(options: &[SshOption]) -> Duration {
    option(options, "ConnectTimeout")
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
}

/// The generated ssh_config (pure, for the tests).
pub fn render_config(plan_name: &str, options: &[SshOption], identity: Option<&PathBuf>) -> String {
    let mut out = format!(
        "# Generated by zkmigrate for plan {plan_name}: the plan's ssh options,\n\
         # then the user's and the system's config (the first value wins).\n"
    );
    for (key, value) in options {
        if key.to_ascii_lowercase().starts_with("control") {
            tracing::warn!(option = %key, "ssh option ignored: zkmigrate manages the control master");
            continue;
        }
        out.push_str(&format!("{key} {value}\n"));
    }
    // Jump hosts get their own ssh, which reads this file but not `-i`.
    if let Some(identity) = identity {
        out.push_str(&format!(
            "IdentityFile \"{}\"\n",
            identity.display().to_string().replace('"', "")
        ));
    }
    out.push_str("Include ~/.ssh/config\nInclude /etc/ssh/ssh_config\n");
    out
}

/// A leading `~/` as `$HOME/`: the plan keeps `~` so its hash does not
/// depend on who runs it.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Failures worth another attempt: the network, not the credentials.
fn is_transient(error: &openssh::Error) -> bool {
    let text = error_text(error).to_ascii_lowercase();
    let permanent = [
        "permission denied",
        "host key verification failed",
        "could not resolve hostname",
        "no such file",
        "bad configuration",
        "identity file",
    ];
    match error {
        openssh::Error::Connect(_) | openssh::Error::Master(_) => {
            !permanent.iter().any(|p| text.contains(p))
        }
        _ => false,
    }
}

/// The crate's error as one line: for a failed connection, what ssh
/// printed (the crate's own text only says "failed to connect"); otherwise
/// the error with its sources.
pub fn error_text(error: &openssh::Error) -> String {
    use std::error::Error as _;
    let text = match error {
        openssh::Error::Connect(e) | openssh::Error::Master(e) => e.to_string(),
        _ => {
            let mut text = error.to_string();
            let mut source = error.source();
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    };
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Vec<SshOption> {
        let owned: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        parse_options(&owned).unwrap()
    }

    #[test]
    fn the_config_holds_the_plan_options_first_then_the_includes() {
        let options = opts(&[
            "UserKnownHostsFile=/lab/known_hosts",
            "StrictHostKeyChecking=yes",
            "ControlPath=/tmp/x",
            "ProxyCommand=ssh -W %h:%p bastion",
        ]);
        let text = render_config("orders", &options, Some(&PathBuf::from("/k/id")));
        assert_eq!(
            text,
            "# Generated by zkmigrate for plan orders: the plan's ssh options,\n\
             # then the user's and the system's config (the first value wins).\n\
             UserKnownHostsFile /lab/known_hosts\n\
             StrictHostKeyChecking yes\n\
             ProxyCommand ssh -W %h:%p bastion\n\
             IdentityFile \"/k/id\"\n\
             Include ~/.ssh/config\n\
             Include /etc/ssh/ssh_config\n"
        );
    }

    #[test]
    fn options_that_are_not_key_value_are_refused() {
        for bad in ["NoEquals", "=value", "Bad Key=1", "A=1\nB=2"] {
            assert!(parse_options(&[bad.to_string()]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_key_checking_is_strict_unless_the_plan_relaxes_it() {
        assert!(matches!(known_hosts_check(&[]), KnownHosts::Strict));
        let ask = opts(&["StrictHostKeyChecking=ask"]);
        assert!(matches!(known_hosts_check(&ask), KnownHosts::Strict));
        let new = opts(&["stricthostkeychecking=accept-new"]);
        assert!(matches!(known_hosts_check(&new), KnownHosts::Add));
        let no = opts(&["StrictHostKeyChecking=no"]);
        assert!(matches!(known_hosts_check(&no), KnownHosts::Accept));
        assert_eq!(
            connect_timeout(&opts(&["ConnectTimeout=5"])),
            Duration::from_secs(5)
        );
        assert_eq!(connect_timeout(&[]), DEFAULT_CONNECT_TIMEOUT);
    }

    #[test]
    fn a_leading_tilde_is_the_home_directory() {
        let home = std::env::var("HOME").unwrap();
        assert_eq!(
            expand_home("~/.ssh/id"),
            PathBuf::from(home).join(".ssh/id")
        );
        assert_eq!(expand_home("/abs/id"), PathBuf::from("/abs/id"));
        assert_eq!(expand_home("~other/id"), PathBuf::from("~other/id"));
    }
}
