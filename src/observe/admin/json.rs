//! The AdminServer's JSON mapped into the typed words of the four-letter
//! path (see the parent module for what 3.8 really returns). Pure.

use serde_json::Value;

use crate::observe::ParseError;
use crate::observe::conf::{Conf, Role, ServerLine};
use crate::observe::cons::{Connection, Cons};
use crate::observe::mntr::Mntr;
use crate::observe::srvr::{Latency, Mode, Srvr};
use crate::observe::zxid::{Version, Zxid};

fn field<'a>(v: &'a Value, key: &str, word: &'static str) -> Result<&'a Value, ParseError> {
    v.get(key)
        .ok_or_else(|| ParseError::new(word, format!("no `{key}` field")))
}

fn u64_field(v: &Value, key: &str, word: &'static str) -> Result<u64, ParseError> {
    let f = field(v, key, word)?;
    f.as_u64()
        .or_else(|| f.as_i64().map(|n| n.max(0) as u64))
        .ok_or_else(|| ParseError::new(word, format!("`{key}` is not a number")))
}

/// Maps the AdminServer's `srvr` (`server_stats`) JSON to [`Srvr`].
pub fn srvr_from_json(v: &Value) -> Result<Srvr, ParseError> {
    const W: &str = "srvr";
    let version = field(v, "version", W)?
        .as_str()
        .and_then(Version::parse)
        .ok_or_else(|| ParseError::new(W, "bad `version`"))?;
    let stats = field(v, "server_stats", W)?;
    let mode = field(stats, "server_state", W)?
        .as_str()
        .map(Mode::parse)
        .ok_or_else(|| ParseError::new(W, "`server_state` is not a string"))?;
    let zxid_value = field(stats, "last_processed_zxid", W)?;
    let zxid = zxid_value
        .as_u64()
        .or_else(|| zxid_value.as_i64().map(|n| n as u64))
        .map(Zxid)
        .ok_or_else(|| ParseError::new(W, "`last_processed_zxid` is not a number"))?;
    let proposal_sizes = v.get("proposal_stats").and_then(|p| {
        let n = |k| p.get(k).and_then(Value::as_i64);
        Some((
            n("last_buffer_size")?,
            n("min_buffer_size")?,
            n("max_buffer_size")?,
        ))
    });
    Ok(Srvr {
        version,
        latency: Latency {
            min: u64_field(stats, "min_latency", W)?,
            avg: field(stats, "avg_latency", W)?.as_f64().unwrap_or(0.0),
            max: u64_field(stats, "max_latency", W)?,
        },
        received: u64_field(stats, "packets_received", W)?,
        sent: u64_field(stats, "packets_sent", W)?,
        connections: u64_field(stats, "num_alive_client_connections", W)?,
        outstanding: u64_field(stats, "outstanding_requests", W)?,
        zxid,
        node_count: u64_field(v, "node_count", W)?,
        read_only: v.get("read_only").and_then(Value::as_bool).unwrap_or(false)
            || mode == Mode::ReadOnly,
        mode,
        proposal_sizes,
    })
}

/// Maps the AdminServer's `monitor` JSON to [`Mntr`], restoring `zk_`.
pub fn mntr_from_json(v: &Value) -> Result<Mntr, ParseError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ParseError::new("monitor", "not a JSON object"))?;
    let entries = obj
        .iter()
        .filter(|(k, _)| *k != "command" && *k != "error")
        .map(|(k, val)| {
            let text = match val {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (format!("zk_{k}"), text)
        })
        .collect();
    let m = Mntr { entries };
    if m.get("zk_server_state").is_none() {
        return Err(ParseError::new("monitor", "no `server_state` field"));
    }
    Ok(m)
}

/// Maps `configuration` (and `voting_view`, when fetched) to [`Conf`].
/// The AdminServer's snake_case keys are renamed to the `conf` spelling
/// for the keys gates read (`serverId`, `clientPort`); others keep theirs.
pub fn conf_from_json(
    configuration: &Value,
    voting_view: Option<&Value>,
) -> Result<Conf, ParseError> {
    const W: &str = "configuration";
    let obj = configuration
        .as_object()
        .ok_or_else(|| ParseError::new(W, "not a JSON object"))?;
    let mut conf = Conf::default();
    for (k, val) in obj {
        if k == "command" || k == "error" {
            continue;
        }
        let key = match k.as_str() {
            "server_id" => "serverId".to_string(),
            "client_port" => "clientPort".to_string(),
            "tick_time" => "tickTime".to_string(),
            other => other.to_string(),
        };
        let text = match val {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        conf.entries.push((key, text));
    }
    conf.server_id = obj.get("server_id").and_then(Value::as_u64);
    if conf.server_id.is_none() && conf.get("clientPort").is_none() {
        return Err(ParseError::new(W, "neither `server_id` nor `client_port`"));
    }
    if let Some(view) = voting_view {
        conf.servers = servers_from_voting_view(view)?;
    }
    Ok(conf)
}

fn servers_from_voting_view(view: &Value) -> Result<Vec<ServerLine>, ParseError> {
    const W: &str = "voting_view";
    let members = field(view, "current_config", W)?
        .as_object()
        .ok_or_else(|| ParseError::new(W, "`current_config` is not an object"))?;
    let mut servers = Vec::new();
    for (id, m) in members {
        let bad = |why: &str| ParseError::new(W, format!("server {id}: {why}"));
        let id: u64 = id.parse().map_err(|_| bad("id is not a number"))?;
        let first = |key: &str| -> Option<(String, u16)> {
            let a = m.get(key)?.as_array()?.first()?.as_str()?;
            let (h, p) = a.rsplit_once(':')?;
            Some((
                h.trim_matches(|c| c == '[' || c == ']').to_string(),
                p.parse().ok()?,
            ))
        };
        let (host, quorum_port) =
            first("server_addresses").ok_or_else(|| bad("no server address"))?;
        let (_, election_port) =
            first("election_addresses").ok_or_else(|| bad("no election address"))?;
        let role = match m.get("learner_type").and_then(Value::as_str) {
            Some("observer") => Role::Observer,
            _ => Role::Participant,
        };
        let client = m
            .get("client_address")
            .and_then(Value::as_str)
            .and_then(|c| c.rsplit_once(':'))
            .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)));
        let role_name = if role == Role::Observer {
            "observer"
        } else {
            "participant"
        };
        let mut raw = format!("{host}:{quorum_port}:{election_port}:{role_name}");
        if let Some((h, p)) = &client {
            raw.push_str(&format!(";{h}:{p}"));
        }
        servers.push(ServerLine {
            id,
            raw,
            host,
            quorum_port,
            election_port,
            role,
            client_host: client.as_ref().map(|(h, _)| h.clone()),
            client_port: client.map(|(_, p)| p),
        });
    }
    servers.sort_by_key(|s| s.id);
    Ok(servers)
}

/// Maps `connections` to [`Cons`] (plain connections only; TLS ones are
/// listed separately by the server and appended).
pub fn cons_from_json(v: &Value) -> Result<Cons, ParseError> {
    const W: &str = "connections";
    let mut connections = Vec::new();
    for list in ["connections", "secure_connections"] {
        let Some(items) = v.get(list).and_then(Value::as_array) else {
            continue;
        };
        for c in items {
            let remote = field(c, "remote_socket_address", W)?
                .as_str()
                .ok_or_else(|| ParseError::new(W, "`remote_socket_address` is not a string"))?;
            let remote = remote.trim_start_matches('/');
            let (host, port) = remote
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse().ok()?)))
                .ok_or_else(|| ParseError::new(W, format!("bad address `{remote}`")))?;
            let num = |k: &str| c.get(k).and_then(Value::as_u64);
            connections.push(Connection {
                host: host.trim_matches(|c| c == '[' || c == ']').to_string(),
                port,
                queued: num("outstanding_requests").unwrap_or(0),
                received: num("packets_received").unwrap_or(0),
                sent: num("packets_sent").unwrap_or(0),
                session_id: num("session_id"),
                last_operation: c
                    .get("last_operation")
                    .and_then(Value::as_str)
                    .map(String::from),
                session_timeout_ms: num("session_timeout"),
                last_zxid: c
                    .get("last_zxid")
                    .and_then(Value::as_i64)
                    .map(|z| Zxid(z as u64)),
            });
        }
    }
    if v.get("connections").is_none() {
        return Err(ParseError::new(W, "no `connections` field"));
    }
    Ok(Cons { connections })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::fixtures::read;
    use crate::observe::{conf, mntr, srvr};
    use proptest::prelude::*;

    fn json(rel: &str) -> Value {
        serde_json::from_str(&read(rel)).unwrap()
    }

    #[test]
    fn srvr_matches_the_four_letter_shape() {
        let s = srvr_from_json(&json("zk-3.8.0-admin/leader-3.srvr.json")).unwrap();
        assert_eq!(s.mode, Mode::Leader);
        assert_eq!(s.zxid, Zxid::from_parts(1, 1));
        assert_eq!(s.version.to_string(), "3.8.0");
        assert_eq!(s.node_count, 5);
        assert_eq!(s.proposal_sizes, Some((48, 48, 48)));
        let f = srvr_from_json(&json("zk-3.8.0-admin/follower-1.srvr.json")).unwrap();
        assert_eq!((f.mode.clone(), f.proposal_sizes), (Mode::Follower, None));
        // the same server through 4lw, a moment apart: same mode, same zxid
        let four =
            srvr::parse_srvr(&read("zk-3.8.0-session/leader-3.srvr-after-write.txt")).unwrap();
        assert_eq!((four.mode, four.zxid), (s.mode, s.zxid));
    }

    #[test]
    fn monitor_gets_zk_prefix_back() {
        let m = mntr_from_json(&json("zk-3.8.0-admin/leader-3.monitor.json")).unwrap();
        assert_eq!(m.server_state(), Some(Mode::Leader));
        assert_eq!(m.synced_followers(), Some(2));
        assert_eq!(m.pending_syncs(), Some(0));
        assert_eq!(m.learners(), Some(2));
        assert_eq!(m.peer_state(), Some("leading - broadcast"));
        assert_eq!(
            m.get("zk_avg_latency"),
            Some("4.0"),
            "JSON floats keep their decimal"
        );
        let four = mntr::parse_mntr(&read("zk-3.8.0/leader-3.mntr.txt")).unwrap();
        let missing: Vec<_> = ["zk_synced_followers", "zk_pending_syncs", "zk_quorum_size"]
            .into_iter()
            .filter(|k| four.get(k).is_some() != m.get(k).is_some())
            .collect();
        assert!(missing.is_empty(), "{missing:?}");
        let f = mntr_from_json(&json("zk-3.8.0-admin/follower-1.monitor.json")).unwrap();
        assert_eq!(
            (f.server_state(), f.synced_followers()),
            (Some(Mode::Follower), None)
        );
    }

    #[test]
    fn configuration_has_membership_only_through_voting_view() {
        let c = conf_from_json(&json("zk-3.8.0-admin/leader-3.configuration.json"), None).unwrap();
        assert_eq!((c.server_id, c.client_port()), (Some(3), Some(22181)));
        assert!(c.servers.is_empty());
        let c = conf_from_json(
            &json("zk-3.8.0-admin/leader-3.configuration.json"),
            Some(&json("zk-3.8.0-admin/leader-3.voting_view.json")),
        )
        .unwrap();
        assert_eq!(c.voter_ids(), vec![1, 2, 3]);
        let s1 = c.server(1).unwrap();
        assert_eq!(
            (s1.host.as_str(), s1.quorum_port, s1.election_port),
            ("127.66.1.1", 22888, 23888)
        );
        assert_eq!(
            s1.client_port, None,
            "a static config knows only its own client address"
        );
        let s3 = c.server(3).unwrap();
        assert_eq!(s3.client_port, Some(22181));
        assert_eq!(conf::parse_server_line(3, &s3.raw).unwrap(), *s3);
    }

    #[test]
    fn connections_and_ruok() {
        let c = cons_from_json(&json("zk-3.8.0-admin/leader-3.connections.json")).unwrap();
        assert_eq!(c.connections.len(), 1);
        let s = &c.connections[0];
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 45896));
        assert_eq!(s.session_id, Some(0x3000002c8a40000));
        assert_eq!(s.last_zxid, Some(Zxid::from_parts(1, 1)));
        assert_eq!(c.by_client().get("127.0.0.1"), Some(&1));
        let c = cons_from_json(&json("zk-3.8.0-admin/follower-1.connections.json")).unwrap();
        assert!(c.connections.is_empty());
        assert!(json("zk-3.8.0-admin/leader-3.ruok.json")["error"].is_null());
    }

    #[test]
    fn not_serving_is_a_command_error() {
        let v = json("zk-3.8.0-admin/lost-quorum-3.srvr.json");
        assert_eq!(v["error"].as_str(), Some(super::super::NOT_SERVING));
        assert!(srvr_from_json(&v).is_err());
    }

    proptest! {
        #[test]
        fn json_mapping_never_panics(s in "\\{(\"[a-z_]{1,12}\" ?: ?(-?[0-9]{1,20}|\"[a-z:0-9.]{0,12}\"|null|\\{\\}|\\[\\]),?){0,8}\\}") {
            if let Ok(v) = serde_json::from_str::<Value>(&s) {
                let _ = srvr_from_json(&v);
                let _ = mntr_from_json(&v);
                let _ = conf_from_json(&v, Some(&v));
                let _ = cons_from_json(&v);
            }
        }
    }
}
