//! A starting plan from a live ensemble: what `zkmigrate init` writes.
//!
//! The pipeline is `replies -> assemble -> Scaffold -> render -> YAML text
//! -> parse` (the last step is the plan's own validation, so a scaffold
//! that would not load is never written):
//!
//! - [`Reply`]: what one `--connect` address answered (`conf`, `srvr`), or
//!   why it did not. The command fills these in through `crate::observe`;
//!   everything from here on is pure, so tests hand in parsed fixtures.
//! - `assemble`: the replies into a [`Scaffold`]: the membership (from
//!   `conf` on 3.5+, where every server lists every member, and where the
//!   servers must agree; on 3.4, whose `conf` has no membership, from the
//!   servers that answered, each with the id it reports), the ensemble's
//!   ports, each server's version, mode and data directory, and the notes
//!   the operator must read (addresses that did not answer, mixed
//!   versions, ZOOKEEPER-3829).
//! - `render`: the scaffold as a commented plan file. What was observed is
//!   written as observed; what cannot be observed (ssh access, service
//!   commands, the config path, the whole Kubernetes target) is a default
//!   that validates, marked `CHECK`. `yaml` holds its text helpers.
//!
//! Why a scaffold type between the observations and the text: the rules
//! (agreement, ports, observers) and the wording are two concerns, and the
//! snapshot tests of the text should not need a live server or a disagreement
//! to be built by hand in YAML.

mod assemble;
mod render;
mod yaml;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

pub use assemble::assemble;
pub use render::{render, render_checked};

use super::{PlanError, ServerId, formats};
use crate::observe::{Conf, Mode, ObservationFailure, Source, Srvr, Version};

/// The namespace `init` writes when none is given.
pub const DEFAULT_NAMESPACE: &str = "zookeeper";

/// A `--connect` entry: a server's client address, `HOST:PORT` (an IPv6
/// address in brackets, `[fd00::1]:2181`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// A DNS name or an IP address (without brackets).
    pub host: String,
    /// The client port.
    pub port: u16,
}

impl Endpoint {
    /// Whether the host is an IP address rather than a name.
    pub fn host_is_ip(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok()
    }

    /// `host:other_port`, bracketed for IPv6: the same host on another
    /// port (the AdminServer's).
    pub fn with_port(&self, port: u16) -> String {
        Endpoint {
            host: self.host.clone(),
            port,
        }
        .to_string()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host.contains(':') {
            true => write!(f, "[{}]:{}", self.host, self.port),
            false => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let not = |why: &str| format!("{s:?} is not HOST:PORT: {why}");
        if text.is_empty() {
            return Err(not("it is empty"));
        }
        let (host, port) = match text.strip_prefix('[') {
            Some(rest) => {
                let (host, after) = rest
                    .split_once(']')
                    .ok_or_else(|| not("no closing ']' after the IPv6 address"))?;
                let port = after
                    .strip_prefix(':')
                    .ok_or_else(|| not("no :PORT after the address"))?;
                if host.parse::<std::net::Ipv6Addr>().is_err() {
                    return Err(not(&format!("{host:?} in brackets is not an IPv6 address")));
                }
                (host, port)
            }
            None => {
                let (host, port) = text
                    .rsplit_once(':')
                    .ok_or_else(|| not("no :PORT (the client port, e.g. zk1.example.net:2181)"))?;
                if host.contains(':') {
                    return Err(not(
                        "write an IPv6 address in brackets, e.g. [fd00::1]:2181",
                    ));
                }
                if host.is_empty() {
                    return Err(not("no host before the ':'"));
                }
                if host.parse::<IpAddr>().is_err() {
                    formats::check_hostname(host).map_err(|why| not(&why))?;
                }
                (host, port)
            }
        };
        let port = match port.parse::<u16>() {
            Ok(0) | Err(_) => {
                return Err(not(&format!("{port:?} is not a port (1..65535)")));
            }
            Ok(port) => port,
        };
        Ok(Endpoint {
            host: host.to_string(),
            port,
        })
    }
}

/// What a server answered, through whichever path did.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// `conf` (or the AdminServer's `configuration` and `voting_view`).
    pub conf: Conf,
    /// Which path answered `conf`.
    pub conf_via: Source,
    /// `srvr` (version and mode), or why it failed: a server that answers
    /// `conf` is still used without it.
    pub srvr: Result<Srvr, String>,
}

/// One `--connect` address and what became of reading it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The address as given.
    pub endpoint: Endpoint,
    /// Its answer, or why there was none.
    pub outcome: Result<Answer, ObservationFailure>,
}

/// What the operator chose on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The plan's `name` (a DNS-1123 label).
    pub name: String,
    /// `kubernetes.namespace` (a DNS-1123 label).
    pub namespace: String,
    /// `ensemble.access.ssh.user`; `None` leaves it to ssh.
    pub ssh_user: Option<String>,
    /// `ensemble.access.ssh.identityFile` (`--ssh-identity-file`).
    pub identity_file: Option<String>,
    /// `ensemble.access.ssh.options` (`--ssh-option`, repeated).
    pub ssh_options: Vec<String>,
    /// `ensemble.configPath` (`--config-path`); `None`: Debian's path,
    /// marked CHECK.
    pub config_path: Option<String>,
    /// How the hosts manage ZooKeeper (`--systemd-unit`,
    /// `--service-script`).
    pub service: ServiceManager,
}

impl Settings {
    /// The operator's name and namespace, everything else left to the
    /// defaults (each marked CHECK in the plan).
    pub fn new(name: &str, namespace: &str, ssh_user: Option<String>) -> Settings {
        Settings {
            name: name.to_string(),
            namespace: namespace.to_string(),
            ssh_user,
            identity_file: None,
            ssh_options: Vec::new(),
            config_path: None,
            service: ServiceManager::default(),
        }
    }
}

/// How ZooKeeper is started and stopped on the hosts: the plan's
/// `ensemble.service` commands follow from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceManager {
    /// A systemd unit; `given` when it came from `--systemd-unit` rather
    /// than the default (`zookeeper`, Debian's package).
    Systemd { unit: String, given: bool },
    /// A script taking `start|stop|restart|disable|enable`
    /// (`--service-script`).
    Script { path: String },
}

impl Default for ServiceManager {
    fn default() -> Self {
        ServiceManager::Systemd {
            unit: "zookeeper".to_string(),
            given: false,
        }
    }
}

/// Where the server list came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// 3.5+: the `membership:` block of `conf`, the same on every server
    /// that answered (these ids).
    FromConf {
        /// The servers whose `conf` listed it.
        reported_by: Vec<ServerId>,
        /// The lines live in a dynamic configuration file (a config
        /// version other than 0).
        dynamic: bool,
    },
    /// 3.4: `conf` lists no members; these are the servers that answered.
    FromAnswers,
}

/// One server of the scaffold: what the plan needs, and what was seen.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSketch {
    pub id: ServerId,
    /// The ssh destination: the name it was reached by, when that was a
    /// name, else its address.
    pub host: String,
    /// The address in its `server.N` line.
    pub address: String,
    /// The `--connect` address that answered as this server.
    pub reached_at: Option<Endpoint>,
    /// `Mode:` from `srvr`.
    pub mode: Option<Mode>,
    /// The version from `srvr`.
    pub version: Option<Version>,
    /// `dataDir` without the `version-2` that `conf` appends.
    pub data_dir: Option<String>,
    /// `dataLogDir`, when it is not the data dir.
    pub data_log_dir: Option<String>,
    /// Bytes in the data (and log) directory, as `conf` counts them.
    pub data_bytes: Option<u64>,
}

/// Everything `render` writes: the ensemble as observed and the
/// operator's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaffold {
    pub settings: Settings,
    /// The `--connect` addresses, in order.
    pub connect: Vec<Endpoint>,
    pub membership: Membership,
    /// By id.
    pub servers: Vec<ServerSketch>,
    pub client_port: u16,
    pub quorum_port: u16,
    pub election_port: u16,
    /// The lowest version any server reported.
    pub version: Option<Version>,
    /// Servers whose `conf` came through the AdminServer.
    pub conf_via_admin: Vec<ServerId>,
    /// What the operator must read: one sentence each, no `CHECK:` prefix.
    pub notes: Vec<String>,
}

/// Why no plan can be written from what the ensemble answered. Nothing is
/// written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// Not one `--connect` address answered `conf`.
    #[error(
        "failed to read the ensemble: no server answered:\n{}",
        lines(failures)
    )]
    NoAnswer {
        /// Each address and why it did not answer.
        failures: Vec<String>,
    },
    /// The servers list different members (3.5+), or one that answered is
    /// not in the others' list.
    #[error(
        "failed to read the ensemble: the servers disagree about the membership (each server's `conf`):\n{}\nmake every server list the same server.N lines, or connect to the servers of one ensemble only",
        lines(differences)
    )]
    MembershipDisagrees {
        /// One line per member whose line differs, saying who says what.
        differences: Vec<String>,
    },
    /// A standalone server has no peers to migrate.
    #[error(
        "failed to read the ensemble: {endpoint} is a standalone server (no serverId, no peers); zkmigrate migrates ensembles"
    )]
    Standalone { endpoint: Endpoint },
    /// Observers are not plan members (every plan server votes).
    #[error(
        "failed to read the ensemble: server{} {} {} observer{}; a plan's servers are all voters, and zkmigrate does not migrate observers",
        plural(ids.len()), join_ids(ids), if ids.len() == 1 { "is an" } else { "are" }, plural(ids.len())
    )]
    Observers { ids: Vec<u64> },
    /// A myid the plan cannot hold.
    #[error(
        "failed to read the ensemble: server id {id} (from {from}) is outside 1..255, the ids zkmigrate migrates"
    )]
    IdOutOfRange { id: u64, from: String },
    /// The plan has one port of each kind for the whole ensemble.
    #[error(
        "failed to read the ensemble: the servers use different {which} ports ({detail}); a plan has one {which} port for the ensemble"
    )]
    MixedPorts { which: &'static str, detail: String },
    /// What was observed does not make a valid plan (an IPv6 address, a
    /// duplicate address): the plan's own errors, one per line.
    #[error("failed to write a plan from what the ensemble reported:\n{0}")]
    Invalid(PlanError),
}

fn lines(items: &[String]) -> String {
    items
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `1`, `1 and 2`, `1, 2 and 3`.
fn join_ids<T: fmt::Display>(ids: &[T]) -> String {
    let words: Vec<String> = ids.iter().map(ToString::to_string).collect();
    match words.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// A plan name or namespace from the command line: a DNS-1123 label.
pub fn check_label(value: &str) -> Result<String, String> {
    formats::check_dns1123_label(value).map(|()| value.to_string())
}

/// An absolute path on the hosts from the command line (`--config-path`,
/// `--service-script`): no whitespace, which the commands built from it
/// would split. (`--ssh-identity-file` is a local path, relative ones
/// allowed: the plan's own validation checks it.)
pub fn check_absolute_path(value: &str) -> Result<String, String> {
    if !value.starts_with('/') {
        Err(format!("{value:?} is not an absolute path"))
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!("{value:?} holds whitespace"))
    } else {
        Ok(value.to_string())
    }
}

/// A systemd unit name from the command line: letters, digits and
/// `:-_.@`, not starting with `-`. systemd's `\x2d` escapes are refused:
/// the unit goes unquoted into the service commands, where the remote
/// shell would eat the backslash.
pub fn check_unit(value: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || ":-_.@".contains(c);
    if value.is_empty() || value.starts_with('-') || !value.chars().all(allowed) {
        Err(format!(
            "{value:?} is not a systemd unit name (letters, digits, :-_.@)"
        ))
    } else {
        Ok(value.to_string())
    }
}

/// An ssh `-o` option from the command line: `Key=value`, no whitespace.
pub fn check_ssh_option(value: &str) -> Result<String, String> {
    match value.split_once('=') {
        Some((key, _))
            if !key.is_empty()
                && key.chars().all(|c| c.is_ascii_alphanumeric())
                && !value.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(value.to_string())
        }
        _ => Err(format!(
            "{value:?} is not an ssh option as Key=value without spaces (e.g. StrictHostKeyChecking=yes)"
        )),
    }
}

/// An ssh user from the command line: the plan's rule for it (not empty,
/// no whitespace, not starting with `-`, which ssh would read as an option).
pub fn check_ssh_user(value: &str) -> Result<String, String> {
    if value.is_empty() {
        Err("must not be empty".to_string())
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!("{value:?} holds whitespace"))
    } else if value.starts_with('-') {
        Err(format!("{value:?} starts with '-'"))
    } else {
        Ok(value.to_string())
    }
}
