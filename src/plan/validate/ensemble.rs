//! Rules of the `ensemble` section: the servers (ids, hosts, addresses,
//! the number of voters), the ports, the config path, host access and the
//! service commands.
//!
//! Uniqueness is the heart of it: two servers with one id would be two
//! processes with one identity (DESIGN section 2), and two with one host or
//! address would be fenced and replaced as one.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::net::IpAddr;

use serde_saphyr::Spanned;

use super::{DEFAULT_CLIENT_PORT, DEFAULT_CONFIG_PATH, DEFAULT_ELECTION_PORT, DEFAULT_QUORUM_PORT};
use super::{DEFAULT_SSH_PORT, Findings, at, port, required, word};
use crate::plan::file::{RawAccess, RawEnsemble, RawExec, RawServer, RawServiceCommands, RawSsh};
use crate::plan::formats;
use crate::plan::types::{
    Access, Ensemble, ExecAccess, Server, ServerId, ServiceCommands, SshAccess,
};

/// The placeholders an exec prefix may hold.
const EXEC_PLACEHOLDERS: [&str; 2] = ["{host}", "{id}"];

/// The servers, sorted by id, and the rest of the section.
pub(super) fn ensemble(
    findings: &mut Findings,
    raw: RawEnsemble,
    allow_even_voters: bool,
) -> (Vec<Server>, Ensemble) {
    let servers = servers(findings, raw.servers, allow_even_voters);
    let client_port = port(
        findings,
        "ensemble.clientPort",
        raw.client_port.as_ref(),
        DEFAULT_CLIENT_PORT,
    );
    let quorum_port = port(
        findings,
        "ensemble.quorumPort",
        raw.quorum_port.as_ref(),
        DEFAULT_QUORUM_PORT,
    );
    let election_port = port(
        findings,
        "ensemble.electionPort",
        raw.election_port.as_ref(),
        DEFAULT_ELECTION_PORT,
    );
    let ports = [
        ("ensemble.clientPort", client_port, &raw.client_port),
        ("ensemble.quorumPort", quorum_port, &raw.quorum_port),
        ("ensemble.electionPort", election_port, &raw.election_port),
    ];
    for (i, (path, value, spanned)) in ports.iter().enumerate() {
        if let Some((other, _, _)) = ports[..i].iter().find(|(_, earlier, _)| earlier == value) {
            findings.error(
                *path,
                spanned.as_ref().and_then(at),
                format!("port {value} is also {other}; each listener needs its own port"),
            );
        }
    }
    let config_path = match raw.config_path {
        None => DEFAULT_CONFIG_PATH.to_string(),
        Some(path) => {
            if !path.value.starts_with('/') {
                findings.error(
                    "ensemble.configPath",
                    at(&path),
                    format!("{:?} must be an absolute path", path.value),
                );
            }
            path.value
        }
    };
    let access = access(findings, raw.access, servers.len());
    let service = service(findings, raw.service);
    let ensemble = Ensemble {
        client_port,
        quorum_port,
        election_port,
        config_path,
        access,
        service,
    };
    (servers, ensemble)
}

fn servers(
    findings: &mut Findings,
    raw: Spanned<Vec<RawServer>>,
    allow_even_voters: bool,
) -> Vec<Server> {
    let list_at = at(&raw);
    if raw.value.is_empty() {
        findings.error("ensemble.servers", list_at, "must list at least one server");
        return Vec::new();
    }
    // First index of each id, host and address, for "first at" messages.
    let mut ids: HashMap<ServerId, usize> = HashMap::new();
    let mut hosts: HashMap<String, usize> = HashMap::new();
    let mut addresses: HashMap<String, usize> = HashMap::new();
    let listed = raw.value.len();
    let mut servers = Vec::with_capacity(listed);
    for (i, raw) in raw.value.into_iter().enumerate() {
        let path = format!("ensemble.servers[{i}]");
        let id = match ServerId::new(raw.id.value) {
            Some(id) => {
                if let Some(first) = first_seen(&mut ids, id, i) {
                    findings.error(
                        format!("{path}.id"),
                        at(&raw.id),
                        format!("duplicate server id {id} (first at ensemble.servers[{first}])"),
                    );
                }
                Some(id)
            }
            None => {
                findings.error(
                    format!("{path}.id"),
                    at(&raw.id),
                    format!("server id {} is outside 1..255", raw.id.value),
                );
                None
            }
        };
        let host = word(findings, &format!("{path}.host"), &raw.host);
        if !host.is_empty()
            && let Some(first) = first_seen(&mut hosts, host.clone(), i)
        {
            findings.error(
                format!("{path}.host"),
                at(&raw.host),
                format!("duplicate host {host:?} (first at ensemble.servers[{first}])"),
            );
        }
        let address = address(findings, &format!("{path}.address"), &raw.address);
        // DNS names are case-insensitive and may end in the root's dot.
        let address_key = address.trim_end_matches('.').to_ascii_lowercase();
        if !address_key.is_empty()
            && let Some(first) = first_seen(&mut addresses, address_key, i)
        {
            findings.error(
                format!("{path}.address"),
                at(&raw.address),
                format!("duplicate address {address:?} (first at ensemble.servers[{first}])"),
            );
        }
        if let Some(id) = id {
            servers.push(Server { id, host, address });
        }
    }
    servers.sort_by_key(|server| server.id);
    servers.dedup_by_key(|server| server.id);
    voters(findings, listed, list_at, allow_even_voters);
    servers
}

/// The index `key` was first seen at, when this is not the first time.
fn first_seen<K: Eq + Hash>(seen: &mut HashMap<K, usize>, key: K, index: usize) -> Option<usize> {
    match seen.entry(key) {
        Entry::Occupied(first) => Some(*first.get()),
        Entry::Vacant(slot) => {
            slot.insert(index);
            None
        }
    }
}

/// Every server of the plan votes. An even number tolerates no more
/// failures than one fewer, and during the replace step one server is
/// always down: with 4 voters, 3 must stay up, exactly as with 3.
fn voters(
    findings: &mut Findings,
    count: usize,
    list_at: Option<super::Position>,
    allow_even: bool,
) {
    if count == 1 {
        findings.warn(
            "ensemble.servers",
            list_at,
            "a single server is an outage at every restart; the method needs at least 3 to migrate without downtime",
        );
    } else if count.is_multiple_of(2) {
        let message = format!(
            "{count} voters: an even number tolerates no more failures than {}",
            count - 1
        );
        if allow_even {
            findings.warn(
                "ensemble.servers",
                list_at,
                format!("{message} (allowed by policy.allowEvenVoters)"),
            );
        } else {
            findings.error(
                "ensemble.servers",
                list_at,
                format!("{message}; set policy.allowEvenVoters: true to migrate it as it is"),
            );
        }
    }
}

/// An IPv4 address or a DNS name.
fn address(findings: &mut Findings, path: &str, value: &Spanned<String>) -> String {
    let text = value.value.trim();
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => {}
        Ok(IpAddr::V6(_)) => findings.error(
            path,
            at(value),
            format!("{text:?} is an IPv6 address; zkmigrate's EndpointSlices are IPv4"),
        ),
        Err(_) if text.is_empty() => findings.error(path, at(value), "must not be empty"),
        Err(_) => {
            findings.check(path, at(value), formats::check_hostname(text));
        }
    }
    text.to_string()
}

fn access(findings: &mut Findings, raw: Spanned<RawAccess>, server_count: usize) -> Access {
    let access_at = at(&raw);
    match (raw.value.ssh, raw.value.exec) {
        (Some(ssh), None) => Access::Ssh(ssh_access(findings, ssh.value)),
        (None, Some(exec)) => Access::Exec(exec_access(findings, exec, server_count)),
        (Some(_), Some(exec)) => {
            findings.error(
                "ensemble.access",
                at(&exec).or(access_at),
                "sets both ssh and exec; choose one",
            );
            Access::Exec(ExecAccess { prefix: Vec::new() })
        }
        (None, None) => {
            findings.error("ensemble.access", access_at, "must set one of ssh or exec");
            Access::Exec(ExecAccess { prefix: Vec::new() })
        }
    }
}

fn ssh_access(findings: &mut Findings, raw: RawSsh) -> SshAccess {
    const PATH: &str = "ensemble.access.ssh";
    let user = raw
        .user
        .map(|user| word(findings, &format!("{PATH}.user"), &user));
    let port = port(
        findings,
        &format!("{PATH}.port"),
        raw.port.as_ref(),
        DEFAULT_SSH_PORT,
    );
    let identity_file = raw
        .identity_file
        .map(|file| required(findings, &format!("{PATH}.identityFile"), &file));
    let mut options = Vec::new();
    for (i, option) in raw.options.unwrap_or_default().into_iter().enumerate() {
        let path = format!("{PATH}.options[{i}]");
        // Each entry is one option for `-o`, so a plan written as ssh
        // arguments ("-o", "Key=Value") gets told how to write it.
        if option.value.starts_with("-o") {
            findings.error(
                &path,
                at(&option),
                format!(
                    "{:?}: write each option alone as Key=Value, without -o (zkmigrate passes it as -o Key=Value)",
                    option.value
                ),
            );
            options.push(option.value);
            continue;
        }
        let text = word(findings, &path, &option);
        let key_ok = text.split_once('=').is_some_and(|(key, _)| {
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric())
        });
        if !text.is_empty() && !text.starts_with('-') && !key_ok {
            findings.error(
                path,
                at(&option),
                format!("{text:?} is not an ssh option in Key=Value form (e.g. StrictHostKeyChecking=yes)"),
            );
        }
        options.push(text);
    }
    let mut jump_hosts = Vec::new();
    for (i, jump) in raw.jump_hosts.unwrap_or_default().into_iter().enumerate() {
        let path = format!("{PATH}.jumpHosts[{i}]");
        let text = word(findings, &path, &jump);
        if text.contains(',') {
            findings.error(
                path,
                at(&jump),
                format!("{text:?} must not hold ','; list each jump host apart"),
            );
        }
        jump_hosts.push(text);
    }
    SshAccess {
        user,
        port,
        identity_file,
        options,
        jump_hosts,
    }
}

fn exec_access(findings: &mut Findings, raw: Spanned<RawExec>, server_count: usize) -> ExecAccess {
    const PATH: &str = "ensemble.access.exec.prefix";
    let prefix_list = raw.value.prefix;
    if prefix_list.value.is_empty() {
        findings.error(
            PATH,
            at(&prefix_list),
            "must hold at least the command to run",
        );
    }
    let mut prefix = Vec::new();
    for (i, part) in prefix_list.value.iter().enumerate() {
        let path = format!("{PATH}[{i}]");
        if part.value.is_empty() {
            findings.error(&path, at(part), "must not be empty");
        }
        findings.check(
            &path,
            at(part),
            formats::check_placeholders(&part.value, &EXEC_PLACEHOLDERS),
        );
        prefix.push(part.value.clone());
    }
    let distinguishes = prefix
        .iter()
        .any(|part| EXEC_PLACEHOLDERS.iter().any(|p| part.contains(p)));
    if server_count > 1 && !prefix.is_empty() && !distinguishes {
        findings.error(
            PATH,
            at(&prefix_list),
            "holds neither {host} nor {id}, so every server would be reached the same way",
        );
    }
    ExecAccess { prefix }
}

fn service(findings: &mut Findings, raw: RawServiceCommands) -> ServiceCommands {
    let mut command = |name: &str, value: &Spanned<String>| {
        required(findings, &format!("ensemble.service.{name}"), value)
    };
    ServiceCommands {
        start: command("start", &raw.start),
        stop: command("stop", &raw.stop),
        restart: command("restart", &raw.restart),
        disable: command("disable", &raw.disable),
        enable: command("enable", &raw.enable),
    }
}
