//! The replies of the `--connect` addresses into a [`Scaffold`]: which
//! servers make the ensemble, on which ports, and what the operator must
//! be told. Pure.
//!
//! The rules, each because a plan that broke it would be refused later (by
//! validation, or by `check` comparing every server's list with the plan):
//!
//! - at least one address answers `conf`; the others are notes, not errors,
//!   when the membership is still known (on 3.5+ one server lists all);
//! - every 3.5+ server that answered lists the same members, and every
//!   server that answered is one of them; otherwise the error says which
//!   member each server sees where;
//! - no standalone server, no observer, every id within 1..255;
//! - one client, one quorum and one election port for the whole ensemble.

use std::collections::BTreeMap;

use super::{
    Answer, Endpoint, Membership, Reply, Scaffold, ScaffoldError, ServerSketch, Settings, join_ids,
};
use crate::observe::{Conf, Mode, Role, ServerLine, Source, Version};
use crate::plan::ServerId;

/// `conf` appends this to the configured `dataDir` (the snapshot
/// directory ZooKeeper keeps under it).
const DATA_SUBDIR: &str = "/version-2";

/// A member of the ensemble as the scaffold needs it.
#[derive(Debug, Clone)]
struct Member {
    id: ServerId,
    address: String,
    quorum_port: u16,
    election_port: u16,
    client_port: Option<u16>,
    observer: bool,
}

/// A server that answered, once per id.
struct Answered<'a> {
    endpoint: &'a Endpoint,
    answer: &'a Answer,
    id: ServerId,
}

/// Builds the scaffold from every `--connect` address's reply.
pub fn assemble(replies: &[Reply], settings: Settings) -> Result<Scaffold, ScaffoldError> {
    let mut notes = Vec::new();
    let mut answered: Vec<Answered> = Vec::new();
    let mut failed = Vec::new();
    for reply in replies {
        let answer = match &reply.outcome {
            Ok(answer) => answer,
            Err(failure) => {
                failed.push((&reply.endpoint, failure.message.as_str()));
                continue;
            }
        };
        let standalone = matches!(&answer.srvr, Ok(s) if s.mode == Mode::Standalone);
        let Some(raw_id) = answer.conf.server_id.filter(|_| !standalone) else {
            return Err(ScaffoldError::Standalone {
                endpoint: reply.endpoint.clone(),
            });
        };
        let id = i64::try_from(raw_id)
            .ok()
            .and_then(ServerId::new)
            .ok_or_else(|| ScaffoldError::IdOutOfRange {
                id: raw_id,
                from: reply.endpoint.to_string(),
            })?;
        if let Some(first) = answered.iter().find(|a| a.id == id) {
            notes.push(format!(
                "{} answered as server {id}, as {} did; it was read once",
                reply.endpoint, first.endpoint
            ));
            continue;
        }
        answered.push(Answered {
            endpoint: &reply.endpoint,
            answer,
            id,
        });
    }
    if answered.is_empty() {
        return Err(ScaffoldError::NoAnswer {
            // Each message names its address already.
            failures: failed.iter().map(|(_, why)| why.to_string()).collect(),
        });
    }

    let (members, membership) = membership(&answered, &mut notes)?;
    let observers: Vec<u64> = members
        .iter()
        .filter(|m| m.observer)
        .map(|m| u64::from(m.id.get()))
        .collect();
    if !observers.is_empty() {
        return Err(ScaffoldError::Observers { ids: observers });
    }
    let (client_port, quorum_port, election_port) = ports(&members, &answered, &mut notes)?;

    for (endpoint, why) in &failed {
        notes.push(unanswered_note(
            endpoint,
            why,
            &members,
            client_port,
            &membership,
        ));
    }
    let servers: Vec<ServerSketch> = members
        .iter()
        .map(|m| sketch(m, answered.iter().find(|a| a.id == m.id), &mut notes))
        .collect();
    let version = version_notes(&servers, &mut notes);
    if servers.len() > 1 && servers.len().is_multiple_of(2) {
        notes.push(format!(
            "{} voters: an even number tolerates no more failures than {}, and the replace step always has one server down; policy.allowEvenVoters is set so that this plan describes the ensemble as it runs: decide before migrating",
            servers.len(),
            servers.len() - 1
        ));
    }
    let conf_via_admin = answered
        .iter()
        .filter(|a| a.answer.conf_via == Source::AdminServer)
        .map(|a| a.id)
        .collect();
    Ok(Scaffold {
        settings,
        connect: replies.iter().map(|r| r.endpoint.clone()).collect(),
        membership,
        servers,
        client_port,
        quorum_port,
        election_port,
        version,
        conf_via_admin,
        notes,
    })
}

/// The members: the agreed `membership:` block on 3.5+, else (3.4) the
/// servers that answered.
fn membership(
    answered: &[Answered],
    notes: &mut Vec<String>,
) -> Result<(Vec<Member>, Membership), ScaffoldError> {
    let views: Vec<&Answered> = answered
        .iter()
        .filter(|a| !a.answer.conf.servers.is_empty())
        .collect();
    if views.is_empty() {
        notes.push(format!(
            "ZooKeeper 3.4's `conf` lists no members: the servers below are the {} that answered, at the addresses they were reached by; compare them with the server.N lines of zoo.cfg on every host and add any server missing here",
            answered.len()
        ));
        return Ok((
            members_from_answers(answered, notes),
            Membership::FromAnswers,
        ));
    }
    let differences = differences(&views, answered);
    if !differences.is_empty() {
        return Err(ScaffoldError::MembershipDisagrees { differences });
    }
    let conf = &views[0].answer.conf;
    let mut members = Vec::with_capacity(conf.servers.len());
    for line in &conf.servers {
        let id = i64::try_from(line.id)
            .ok()
            .and_then(ServerId::new)
            .ok_or_else(|| ScaffoldError::IdOutOfRange {
                id: line.id,
                from: format!("the membership of server {}", views[0].id),
            })?;
        members.push(Member {
            id,
            address: line.host.clone(),
            quorum_port: line.quorum_port,
            election_port: line.election_port,
            client_port: line.client_port,
            observer: line.role == Role::Observer,
        });
    }
    members.sort_by_key(|m| m.id);
    let mut reported_by: Vec<ServerId> = views.iter().map(|a| a.id).collect();
    reported_by.sort();
    let dynamic = views.iter().any(|a| {
        a.answer
            .conf
            .config_version
            .as_deref()
            .is_some_and(|v| v != "0")
    });
    Ok((
        members,
        Membership::FromConf {
            reported_by,
            dynamic,
        },
    ))
}

/// How a member line is compared: DNS names without case; `true` for an
/// observer.
type LineKey = (String, u16, u16, bool, Option<String>, Option<u16>);

fn line_key(line: &ServerLine) -> LineKey {
    (
        line.host.to_ascii_lowercase(),
        line.quorum_port,
        line.election_port,
        line.role == Role::Observer,
        line.client_host.as_ref().map(|h| h.to_ascii_lowercase()),
        line.client_port,
    )
}

/// One line per member that the servers list differently (or not at all),
/// and per answering server that the membership does not list.
fn differences(views: &[&Answered], answered: &[Answered]) -> Vec<String> {
    let mut ids: Vec<u64> = views
        .iter()
        .flat_map(|a| a.answer.conf.servers.iter().map(|l| l.id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = Vec::new();
    let mut wildcard = false;
    for id in ids {
        // What each view says about `id`, grouped by what it says.
        let mut said: BTreeMap<Option<LineKey>, (String, Vec<&Answered>)> = BTreeMap::new();
        for view in views {
            let line = view.answer.conf.server(id);
            let shown = line.map_or_else(|| "absent".to_string(), |l| l.raw.clone());
            said.entry(line.map(line_key))
                .or_insert_with(|| (shown, Vec::new()))
                .1
                .push(view);
        }
        if said.len() > 1 {
            wildcard |= said
                .keys()
                .flatten()
                .any(|k| matches!(k.0.as_str(), "0.0.0.0" | "::" | "0:0:0:0:0:0:0:0"));
            // The most common view first, then by the lowest reporter.
            let mut views: Vec<&(String, Vec<&Answered>)> = said.values().collect();
            views.sort_by_key(|(_, who)| (std::cmp::Reverse(who.len()), who[0].id));
            let parts: Vec<String> = views
                .iter()
                .map(|(shown, who)| format!("{shown} according to {}", reporters(who)))
                .collect();
            out.push(format!("server.{id}: {}", parts.join("; ")));
        }
    }
    if out.is_empty() {
        // The views agree; a 3.4 server among 3.5+ ones must be a member.
        let listed = &views[0].answer.conf;
        for a in answered {
            if a.answer.conf.servers.is_empty() && listed.server(u64::from(a.id.get())).is_none() {
                out.push(format!(
                    "server.{}: absent according to {}; {} answers as server {}",
                    a.id,
                    reporters(views),
                    a.endpoint,
                    a.id
                ));
            }
        }
    }
    if wildcard {
        out.push(
            "(a server whose own line says 0.0.0.0 binds every address, but then the servers disagree about where it is: list its real address in every server's zoo.cfg)"
                .to_string(),
        );
    }
    out
}

/// `server 1 (10.0.0.11:2181)`, `servers 1 and 2 (a:2181, b:2181)`.
fn reporters(who: &[&Answered]) -> String {
    let ids: Vec<ServerId> = who.iter().map(|a| a.id).collect();
    let at: Vec<String> = who.iter().map(|a| a.endpoint.to_string()).collect();
    format!(
        "server{} {} ({})",
        super::plural(ids.len()),
        join_ids(&ids),
        at.join(", ")
    )
}

/// 3.4: each server that answered, at the address it was reached by, on
/// the ports its own `conf` reports.
fn members_from_answers(answered: &[Answered], notes: &mut Vec<String>) -> Vec<Member> {
    let mut members: Vec<Member> = answered
        .iter()
        .map(|a| {
            let conf = &a.answer.conf;
            let port = |key: &str| conf.get(key).and_then(|p| p.parse::<u16>().ok());
            let (quorum, election) = (port("quorumPort"), port("electionPort"));
            if quorum.is_none() || election.is_none() {
                notes.push(format!(
                    "server {} did not report its quorum and election ports; {}:{} are assumed",
                    a.id,
                    quorum.unwrap_or(2888),
                    election.unwrap_or(3888)
                ));
            }
            Member {
                id: a.id,
                address: a.endpoint.host.clone(),
                quorum_port: quorum.unwrap_or(2888),
                election_port: election.unwrap_or(3888),
                client_port: conf.client_port(),
                observer: conf.get("peerType") == Some("1"),
            }
        })
        .collect();
    members.sort_by_key(|m| m.id);
    members
}

/// The ensemble's three ports; each must be the same on every member.
fn ports(
    members: &[Member],
    answered: &[Answered],
    notes: &mut Vec<String>,
) -> Result<(u16, u16, u16), ScaffoldError> {
    let quorum: Vec<(ServerId, u16)> = members.iter().map(|m| (m.id, m.quorum_port)).collect();
    let election: Vec<(ServerId, u16)> = members.iter().map(|m| (m.id, m.election_port)).collect();
    // The client port from the server lines' `;port`, else from each
    // server's own `clientPort`.
    let mut client: Vec<(ServerId, u16)> = members
        .iter()
        .filter_map(|m| {
            let own = answered
                .iter()
                .find(|a| a.id == m.id)
                .and_then(|a| a.answer.conf.client_port());
            m.client_port.or(own).map(|p| (m.id, p))
        })
        .collect();
    if client.is_empty() {
        let first = &answered[0];
        notes.push(format!(
            "no server reported its clientPort; {} is the port {} answered on",
            first.endpoint.port, first.endpoint
        ));
        client.push((first.id, first.endpoint.port));
    }
    Ok((
        one_port("client", &client)?,
        one_port("quorum", &quorum)?,
        one_port("election", &election)?,
    ))
}

fn one_port(which: &'static str, ports: &[(ServerId, u16)]) -> Result<u16, ScaffoldError> {
    let first = ports[0].1;
    if ports.iter().all(|(_, p)| *p == first) {
        return Ok(first);
    }
    let detail = ports
        .iter()
        .map(|(id, p)| format!("server {id}: {p}"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(ScaffoldError::MixedPorts { which, detail })
}

/// What to tell about an address that did not answer.
fn unanswered_note(
    endpoint: &Endpoint,
    why: &str,
    members: &[Member],
    client_port: u16,
    membership: &Membership,
) -> String {
    let member = members.iter().find(|m| {
        m.address.eq_ignore_ascii_case(&endpoint.host)
            && m.client_port.unwrap_or(client_port) == endpoint.port
    });
    let what = match (member, membership) {
        (Some(m), _) => format!(
            "it is server {} of the membership, listed below; every server must serve before a migration starts",
            m.id
        ),
        (None, Membership::FromConf { .. }) if endpoint.host_is_ip() => {
            "no member of the ensemble has that address: a typo, or a server of another ensemble?"
                .to_string()
        }
        // Names are not resolved here: the lines may name it otherwise.
        (None, Membership::FromConf { .. }) => format!(
            "no server line names {}: if it is not a member under another name or address, a typo, or a server of another ensemble?",
            endpoint.host
        ),
        (None, Membership::FromAnswers) => {
            "ZooKeeper 3.4 lists no members, so if it is a server of this ensemble it is missing below: add it by hand"
                .to_string()
        }
    };
    format!("{endpoint} did not answer ({why}); {what}")
}

/// A member with what its own answer (if any) says about it.
fn sketch(member: &Member, answered: Option<&Answered>, notes: &mut Vec<String>) -> ServerSketch {
    let reached_at = answered.map(|a| a.endpoint.clone());
    // The name the operator reached it by is the likelier ssh destination.
    let host = match &reached_at {
        Some(e) if !e.host_is_ip() && !e.host.eq_ignore_ascii_case(&member.address) => {
            e.host.clone()
        }
        _ => member.address.clone(),
    };
    let srvr = answered.and_then(|a| match &a.answer.srvr {
        Ok(srvr) => Some(srvr),
        Err(why) => {
            notes.push(format!(
                "server {} answered `conf` but not `srvr` ({why}): its version and mode are unknown",
                member.id
            ));
            None
        }
    });
    let conf = answered.map(|a| &a.answer.conf);
    let data_dir = conf.and_then(|c| dir(c, "dataDir", "data_dir"));
    let data_log_dir = conf
        .and_then(|c| dir(c, "dataLogDir", "data_log_dir"))
        .filter(|d| Some(d) != data_dir.as_ref());
    let size = |key: &str| {
        conf.and_then(|c| c.get(key))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let data_bytes = match (size("dataDirSize"), &data_log_dir) {
        (Some(data), Some(_)) => Some(data + size("dataLogSize").unwrap_or(0)),
        (data, _) => data,
    };
    ServerSketch {
        id: member.id,
        host,
        address: member.address.clone(),
        reached_at,
        mode: srvr.map(|s| s.mode.clone()),
        version: srvr.map(|s| s.version.clone()),
        data_dir,
        data_log_dir,
        data_bytes,
    }
}

/// A directory from `conf` (4lw key or the AdminServer's), without the
/// `version-2` that `conf` shows below the configured one.
fn dir(conf: &Conf, key: &str, admin_key: &str) -> Option<String> {
    let value = conf.get(key).or_else(|| conf.get(admin_key))?.trim();
    let value = value.strip_suffix(DATA_SUBDIR).unwrap_or(value);
    (!value.is_empty()).then(|| value.to_string())
}

/// The lowest version reported, with notes on mixed versions and on
/// ZOOKEEPER-3829.
fn version_notes(servers: &[ServerSketch], notes: &mut Vec<String>) -> Option<Version> {
    let mut seen: Vec<(ServerId, &Version)> = servers
        .iter()
        .filter_map(|s| s.version.as_ref().map(|v| (s.id, v)))
        .collect();
    seen.sort_by_key(|(id, v)| ((v.major, v.minor, v.patch), *id));
    let (_, lowest) = seen.first()?;
    let triple = |v: &Version| (v.major, v.minor, v.patch);
    if seen.iter().any(|(_, v)| triple(v) != triple(lowest)) {
        let each: Vec<String> = seen
            .iter()
            .map(|(id, v)| format!("server {id}: {v}"))
            .collect();
        notes.push(format!(
            "the servers run different versions ({}); finish the upgrade before migrating (the image below is the lowest)",
            each.join(", ")
        ));
    }
    if let Some((_, v)) = seen.iter().find(|(_, v)| v.affected_by_zookeeper_3829()) {
        notes.push(format!(
            "ZooKeeper {v} has ZOOKEEPER-3829: the peers step's rolling address change breaks the ensemble on 3.5.0-3.5.8 and 3.6.0-3.6.1; upgrade to 3.5.9 or 3.6.2 or later first (`zkmigrate check` refuses it unless --force)"
        ));
    }
    Some((*lowest).clone())
}
