//! `zkmigrate manifests`: the Kubernetes objects of the migration as
//! multi-document YAML, for review or GitOps (DESIGN 4; issue 7).
//!
//! It reads the plan and nothing else: no host, no cluster, so it runs in
//! CI, on a laptop, and while a step runs. What it cannot know without
//! looking is said in YAML comments: the Pods' `zoo.cfg` comes from a
//! stand-in synthesized from the plan (the engine derives it from the
//! hosts' own file), and servers are replaced in id order (the engine fixes
//! the order when the replace step starts, leader last). An address that is
//! a name is resolved with this machine's resolver, and the comments say
//! to what.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::path::Path;

use super::CommandError;
use crate::exit::Exit;
use crate::manifests::{self, ManifestInputs, ManifestsError};
use crate::output::Printer;
use crate::plan::{self, ServerId, ValidatedPlan};
use crate::steps::StepName;

/// Runs `zkmigrate manifests -f PLAN [--step STEP] [--server N]`.
pub fn run(path: &Path, step: Option<StepName>, server: Option<u8>) -> Result<Exit, CommandError> {
    let plan = plan::load(path)?;
    for warning in &plan.warnings {
        tracing::warn!(%warning, "plan accepted with a warning");
    }
    let server = server
        .map(|id| {
            ServerId::new(i64::from(id))
                .filter(|id| plan.server(*id).is_some())
                .ok_or(ManifestsError::UnknownServer { id })
        })
        .transpose()?;
    let needs_hosts = matches!(step, None | Some(StepName::Services)) || server.is_some();
    let mut resolved = Vec::new();
    let host_addresses = match needs_hosts {
        true => resolve_addresses(&plan, &mut resolved)?,
        false => BTreeMap::new(),
    };
    let inputs = ManifestInputs {
        host_addresses,
        host_config: None,
        ordinals: None,
    };
    let mut built = manifests::manifests_for(&plan, step, server, &inputs)?;
    built.notes.splice(0..0, resolved);
    let yaml = manifests::render_yaml(&title(&plan, step, server), &built)?;
    Printer.text(&yaml)?;
    Ok(Exit::Done)
}

/// The comment that opens the output: plan, hash and what is shown.
pub fn title(plan: &ValidatedPlan, step: Option<StepName>, server: Option<ServerId>) -> String {
    let what = match (step, server) {
        (None, _) => "the objects of every step".to_string(),
        (Some(step), None) => format!("the objects of the {step} step"),
        (Some(step), Some(id)) => {
            format!(
                "the objects of the {step} step, right after server {id} is switched to its Pod"
            )
        }
    };
    let hash = plan.hash();
    format!(
        "zkmigrate manifests of plan {} (hash {}): {what}",
        plan.name,
        &hash[..hash.len().min(12)]
    )
}

/// Each server's address as IPv4: the plan's literal, or the first IPv4
/// address this machine resolves the name to (with a note saying so).
fn resolve_addresses(
    plan: &ValidatedPlan,
    notes: &mut Vec<String>,
) -> Result<BTreeMap<ServerId, Ipv4Addr>, ManifestsError> {
    let mut out = BTreeMap::new();
    for server in &plan.servers {
        let address = match server.address.parse::<Ipv4Addr>() {
            Ok(address) => address,
            Err(_) => {
                let address = (server.address.as_str(), 0)
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut addrs| {
                        addrs.find_map(|a| match a.ip() {
                            IpAddr::V4(v4) => Some(v4),
                            IpAddr::V6(_) => None,
                        })
                    })
                    .ok_or_else(|| ManifestsError::NoIpv4Address {
                        id: server.id,
                        address: server.address.clone(),
                    })?;
                notes.push(format!(
                    "server {} address {} resolved to {address} by this machine's resolver",
                    server.id, server.address
                ));
                address
            }
        };
        out.insert(server.id, address);
    }
    Ok(out)
}
