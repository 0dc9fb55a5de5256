//! The preflight's look at each host's files, over the host session: the
//! myid file under `dataDir`, and the server lines of zoo.cfg (or of the
//! 3.5+ `dynamicConfigFile` it names). The comparison of a server list with
//! the plan is pure ([`compare_with_plan`]), shared with the membership
//! check, which falls back to these lines on 3.4 (no membership in `conf`).

use crate::engine::action::Action;
use crate::engine::context::{Ctx, StepError};
use crate::plan::{ServerId, ValidatedPlan};
use crate::zoocfg::ZooCfg;

/// A host's zoo.cfg, and the dynamic file when it names one.
pub struct HostConfig {
    pub cfg: ZooCfg,
    /// `(path, parsed)` of the `dynamicConfigFile`.
    pub dynamic: Option<(String, ZooCfg)>,
}

/// One server as a server list names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: u64,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Reads and parses the host's zoo.cfg (and its dynamic file).
pub async fn read_config(
    ctx: &Ctx,
    action: &Action,
    id: ServerId,
) -> Result<HostConfig, StepError> {
    let path = &ctx.plan.ensemble.config_path;
    let session = ctx.session(id).await?;
    let host = session.host().to_string();
    let raw = session.read_file(path).await?;
    let Some(raw) = raw else {
        let _ = session.close().await;
        return Err(StepError::refused(
            action,
            format!("no file {path} on {host}"),
            format!("server {id}'s zoo.cfg at ensemble.configPath ({path})"),
            format!(
                "set ensemble.configPath in {} to where the hosts keep zoo.cfg",
                ctx.plan_file.display()
            ),
        ));
    };
    let unreadable = |what: &str, e: crate::zoocfg::ZooCfgError| {
        StepError::refused(
            action,
            format!("{what} on {host} does not parse: {e}"),
            "a config ZooKeeper reads",
            "fix the file on the host",
        )
    };
    let cfg = ZooCfg::parse(&text(raw)).map_err(|e| unreadable(path, e))?;
    let dynamic = match cfg.dynamic_config_file().map(str::to_string) {
        Some(dyn_path) => match session.read_file(&dyn_path).await? {
            Some(raw) => Some((
                dyn_path.clone(),
                ZooCfg::parse(&text(raw)).map_err(|e| unreadable(&dyn_path, e))?,
            )),
            None => {
                let _ = session.close().await;
                return Err(StepError::refused(
                    action,
                    format!(
                        "{path} on {host} names dynamicConfigFile={dyn_path}, which does not exist"
                    ),
                    "the dynamic config file present",
                    "fix the host's configuration",
                ));
            }
        },
        None => None,
    };
    let _ = session.close().await;
    Ok(HostConfig { cfg, dynamic })
}

/// The server lines of a host (from the dynamic file when there is one),
/// and where they were read.
pub async fn read_server_lines(
    ctx: &Ctx,
    action: &Action,
    id: ServerId,
) -> Result<(Vec<Listed>, String), StepError> {
    let config = read_config(ctx, action, id).await?;
    let (source, cfg) = match &config.dynamic {
        Some((path, cfg)) => (format!("dynamic file {path}"), cfg),
        None => (ctx.plan.ensemble.config_path.clone(), &config.cfg),
    };
    let entries = cfg.servers().map_err(|e| {
        StepError::refused(
            action,
            format!("server lines of {source} do not parse: {e}"),
            "server lines ZooKeeper reads",
            "fix the file on the host",
        )
    })?;
    let listed = entries
        .into_iter()
        .map(|e| Listed {
            id: u64::from(e.id),
            host: e.spec.host,
            quorum_port: e.spec.quorum_port,
            election_port: e.spec.election_port,
        })
        .collect();
    Ok((listed, source))
}

/// Whether `listed` names exactly the plan's servers, each at its address
/// (or already at its Service name: the migration is past `peers`), with
/// the plan's ports. `Ok` says which; `Err` lists every difference.
pub fn compare_with_plan(plan: &ValidatedPlan, listed: &[Listed]) -> Result<String, String> {
    let mut problems = Vec::new();
    let (mut by_address, mut by_service) = (0, 0);
    for s in &plan.servers {
        let id = u64::from(s.id.get());
        let Some(l) = listed.iter().find(|l| l.id == id) else {
            problems.push(format!("server.{id} missing"));
            continue;
        };
        if l.host == s.address {
            by_address += 1;
        } else if l.host == plan.service_host(s.id) {
            by_service += 1;
        } else {
            problems.push(format!(
                "server.{id} at {}, the plan says {}",
                l.host, s.address
            ));
        }
        let e = &plan.ensemble;
        if (l.quorum_port, l.election_port) != (e.quorum_port, e.election_port) {
            problems.push(format!(
                "server.{id} ports {}:{}, the plan says {}:{}",
                l.quorum_port, l.election_port, e.quorum_port, e.election_port
            ));
        }
    }
    for l in listed {
        if !plan.servers.iter().any(|s| u64::from(s.id.get()) == l.id) {
            problems.push(format!("server.{} ({}) is not in the plan", l.id, l.host));
        }
    }
    if !problems.is_empty() {
        return Err(problems.join(", "));
    }
    Ok(match (by_address, by_service) {
        (_, 0) => "the plan's ids and addresses".to_string(),
        (0, _) => "the plan's ids at their Service names (past the peers step)".to_string(),
        _ => format!(
            "the plan's ids, {by_service} at their Service names and {by_address} at host addresses (the peers step is under way)"
        ),
    })
}

pub async fn check_myid(ctx: &Ctx, action: &Action, id: ServerId) -> Result<String, StepError> {
    let config = read_config(ctx, action, id).await?;
    let Some(data_dir) = config.cfg.data_dir().map(str::to_string) else {
        return Err(StepError::refused(
            action,
            "no dataDir in zoo.cfg",
            "dataDir set (ZooKeeper refuses to start without it)",
            "fix the host's zoo.cfg",
        ));
    };
    let path = format!("{}/myid", data_dir.trim_end_matches('/'));
    let session = ctx.session(id).await?;
    let content = session.read_file(&path).await?;
    let _ = session.close().await;
    let found = content.map(|b| text(b).trim().to_string());
    match found {
        Some(v) if v == id.to_string() => Ok(format!("{path} holds {v}")),
        Some(v) => Err(StepError::refused(
            action,
            format!("{path} on {} holds {v:?}", ctx.server(id).host),
            format!("{id}, the plan's id for this host"),
            format!(
                "correct ensemble.servers in {}: the host of id {id} must be the server whose myid is {id}",
                ctx.plan_file.display()
            ),
        )),
        None => Err(StepError::refused(
            action,
            format!("no {path} on {}", ctx.server(id).host),
            format!("{path} holding {id}"),
            "check the host: is ZooKeeper's dataDir there?",
        )),
    }
}

pub async fn check_config(ctx: &Ctx, action: &Action, id: ServerId) -> Result<String, StepError> {
    let (listed, source) = read_server_lines(ctx, action, id).await?;
    match compare_with_plan(&ctx.plan, &listed) {
        Ok(how) => Ok(format!("{source} lists {how}")),
        Err(why) => Err(StepError::refused(
            action,
            format!("{source} on {}: {why}", ctx.server(id).host),
            format!(
                "server lines of exactly the plan's servers: {}",
                super::plan_members(&ctx.plan)
            ),
            format!(
                "correct ensemble.servers (or the ports) in {} to match the hosts",
                ctx.plan_file.display()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> ValidatedPlan {
        crate::plan::testing::three_servers("StatefulSet")
    }

    fn l(id: u64, host: &str) -> Listed {
        Listed {
            id,
            host: host.into(),
            quorum_port: 2888,
            election_port: 3888,
        }
    }

    #[test]
    fn the_plans_addresses_or_service_names_pass() {
        let p = plan();
        let hosts = [l(1, "10.0.0.11"), l(2, "10.0.0.12"), l(3, "10.0.0.13")];
        assert_eq!(
            compare_with_plan(&p, &hosts).unwrap(),
            "the plan's ids and addresses"
        );
        let services = [
            l(1, "zk-1.zookeeper.svc.cluster.local"),
            l(2, "zk-2.zookeeper.svc.cluster.local"),
            l(3, "zk-3.zookeeper.svc.cluster.local"),
        ];
        assert!(
            compare_with_plan(&p, &services)
                .unwrap()
                .contains("past the peers step")
        );
    }

    #[test]
    fn swapped_missing_extra_and_wrong_ports_are_all_named() {
        let p = plan();
        let mut wrong_port = l(3, "10.0.0.13");
        wrong_port.election_port = 3889;
        let listed = [
            l(1, "10.0.0.12"),
            l(2, "10.0.0.11"),
            wrong_port,
            l(4, "10.0.0.14"),
        ];
        let err = compare_with_plan(&p, &listed).unwrap_err();
        assert_eq!(
            err,
            "server.1 at 10.0.0.12, the plan says 10.0.0.11, \
             server.2 at 10.0.0.11, the plan says 10.0.0.12, \
             server.3 ports 2888:3889, the plan says 2888:3888, \
             server.4 (10.0.0.14) is not in the plan"
        );
        let err = compare_with_plan(&p, &[l(1, "10.0.0.11")]).unwrap_err();
        assert_eq!(err, "server.2 missing, server.3 missing");
    }
}
