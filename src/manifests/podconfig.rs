//! The Pods' `zoo.cfg` (DESIGN 5.5): the hosts' own file, so that tick,
//! init and sync limits, autopurge, `jute.maxbuffer`, TLS settings and the
//! 4lw whitelist carry over, with what is host-specific rewritten:
//!
//! - `server.N` lines name the per-server Services
//!   (`zk-N.NS.svc.DOMAIN:quorum:election`); a 3.5+ `;addr:clientPort`
//!   suffix becomes `;clientPort` ([`ClientAddrRewrite::Wildcard`]): the
//!   address is a bind address, and the host's is on no interface of a Pod.
//! - `quorumListenOnAllIPs=true`: a Pod cannot bind its Service's ClusterIP.
//! - `dataDir=/data`, and `dataLogDir=/datalog` only if the hosts set one:
//!   the mount paths of the Pod's volume.
//! - Bind addresses of the host are removed: `clientPortAddress` (ZooKeeper
//!   refuses one that differs from the server line's address),
//!   `secureClientPortAddress` and `admin.serverAddress`.
//! - A 3.5+ dynamic config (`dynamicConfigFile`) is inlined: its rewritten
//!   server lines go into the Pod's `zoo.cfg` and `dynamicConfigFile` is
//!   dropped. The ConfigMap is one file mounted read-only, and a path to a
//!   dynamic file would point into the read-only mount anyway; a static
//!   list is what the 3.4 method runs on. The Pod starts at config version
//!   0 and takes the quorum's (higher) version from the leader when it
//!   joins, as any follower does.
//!
//! Everything else stays byte-for-byte and in order. Keys whose values are
//! absolute paths on the host (keystores, truststores, a JAAS file) cannot
//! follow into the Pod by themselves: they are returned as
//! [`SecretPath`]s, for `plan` to name as needing a Secret mount at the
//! same path.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{ManifestsError, Ordinals, labels};
use crate::plan::ValidatedPlan;
use crate::zoocfg::{ClientAddrRewrite, ZooCfg, ZooCfgError, keys};

/// Where the Pod's data volume is mounted (the official image's
/// `ZOO_DATA_DIR`, where its entrypoint writes `myid`).
pub const POD_DATA_DIR: &str = "/data";
/// Where the transaction log goes in a Pod when the hosts set `dataLogDir`
/// (the official image's `ZOO_DATA_LOG_DIR`).
pub const POD_DATA_LOG_DIR: &str = "/datalog";
/// The key of the Pods' config in its ConfigMap.
pub const ZOO_CFG_KEY: &str = "zoo.cfg";

/// Keys holding an address the host binds: meaningless in a Pod.
const BIND_ADDRESS_KEYS: [&str; 3] = [
    keys::CLIENT_PORT_ADDRESS,
    "secureClientPortAddress",
    "admin.serverAddress",
];

/// The hosts' config, as read from a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// `zoo.cfg`'s text.
    pub zoo_cfg: String,
    /// The text of the file `dynamicConfigFile` names, when it is set.
    pub dynamic: Option<String>,
}

/// A key of the hosts' config holding an absolute path on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretPath {
    /// The key, e.g. `ssl.keyStore.location`.
    pub key: String,
    /// The path, kept as is in the Pod's config.
    pub path: String,
}

/// The Pods' config and what an operator must know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodConfig {
    /// The Pods' `zoo.cfg`.
    pub zoo_cfg: String,
    /// Host files the config names, which need a Secret (or other volume)
    /// mounted at the same path in the Pods; sorted by key.
    pub secret_paths: Vec<SecretPath>,
    /// What carries over but may not work the same in a Pod.
    pub warnings: Vec<String>,
}

/// Derives the Pods' `zoo.cfg` from the hosts' (see the module header).
///
/// Fails when the config cannot be read as ZooKeeper would, when its server
/// lines do not name exactly the plan's servers, and when it sets
/// `dynamicConfigFile` without the dynamic file's text.
pub fn pod_zoo_cfg(host: &HostConfig, plan: &ValidatedPlan) -> Result<PodConfig, ManifestsError> {
    let original = ZooCfg::parse(&host.zoo_cfg)?;
    let new_host = |id: u32| {
        plan.servers
            .iter()
            .find(|s| u32::from(s.id.get()) == id)
            .map(|s| plan.service_host(s.id))
    };
    let mut cfg = match original.dynamic_config_file() {
        Some(path) => {
            if let Some(server) = original.servers()?.first() {
                return Err(ZooCfgError::ServersBesideDynamicFile {
                    line: server.line,
                    id: server.id,
                }
                .into());
            }
            let text = host
                .dynamic
                .as_deref()
                .ok_or_else(|| ManifestsError::MissingDynamicConfig { path: path.into() })?;
            let dynamic = ZooCfg::parse(text)?;
            check_ids(&dynamic, plan)?;
            let dynamic = dynamic.rewrite_servers(new_host, ClientAddrRewrite::Wildcard)?;
            let mut cfg = original.clone();
            cfg.remove(keys::DYNAMIC_CONFIG_FILE);
            for server in dynamic.servers()? {
                cfg.set(
                    &format!("{}{}", keys::SERVER_PREFIX, server.id),
                    &server.spec.to_string(),
                );
            }
            cfg
        }
        None => {
            check_ids(&original, plan)?;
            original.rewrite_servers(new_host, ClientAddrRewrite::Wildcard)?
        }
    };
    cfg.set(keys::QUORUM_LISTEN_ON_ALL_IPS, "true");
    cfg.set(keys::DATA_DIR, POD_DATA_DIR);
    if cfg.data_log_dir().is_some() {
        cfg.set(keys::DATA_LOG_DIR, POD_DATA_LOG_DIR);
    }
    for key in BIND_ADDRESS_KEYS {
        cfg.remove(key);
    }
    let mut warnings = Vec::new();
    if original.reconfig_enabled() {
        warnings.push(
            "reconfigEnabled=true: ZooKeeper writes zoo.cfg.bak and zoo.cfg.dynamic.next next \
             to zoo.cfg, which is a read-only ConfigMap in the Pods; check that the image's \
             version tolerates it before the replace step"
                .to_string(),
        );
    }
    Ok(PodConfig {
        zoo_cfg: cfg.render(),
        secret_paths: secret_paths(&original),
        warnings,
    })
}

/// The server lines must name the plan's servers, no more and no fewer: a
/// Pod with another list would form another ensemble.
fn check_ids(cfg: &ZooCfg, plan: &ValidatedPlan) -> Result<(), ManifestsError> {
    let in_config: Vec<u32> = cfg.servers()?.iter().map(|s| s.id).collect();
    let in_plan: Vec<u8> = plan.servers.iter().map(|s| s.id.get()).collect();
    if in_config != in_plan.iter().map(|&id| u32::from(id)).collect::<Vec<_>>() {
        return Err(ManifestsError::ServerMismatch { in_config, in_plan });
    }
    Ok(())
}

/// Effective keys whose values are absolute paths, but for the ones the
/// Pod config moves (`dataDir`, `dataLogDir`) or drops
/// (`dynamicConfigFile`).
fn secret_paths(cfg: &ZooCfg) -> Vec<SecretPath> {
    let moved = [
        keys::DATA_DIR,
        keys::DATA_LOG_DIR,
        keys::DYNAMIC_CONFIG_FILE,
    ];
    let effective: BTreeMap<&str, &str> = cfg.properties().map(|p| (p.key, p.value)).collect();
    effective
        .into_iter()
        .filter(|(key, value)| value.starts_with('/') && !moved.contains(key))
        .map(|(key, path)| SecretPath {
            key: key.into(),
            path: path.into(),
        })
        .collect()
}

/// A stand-in for the hosts' `zoo.cfg`, from the plan alone, for when the
/// hosts cannot be read (`zkmigrate manifests` reads no host). The limits
/// are ZooKeeper's sample values, not the ensemble's; the file says so.
pub fn synthesized_host_config(plan: &ValidatedPlan) -> HostConfig {
    let e = &plan.ensemble;
    let mut text = format!(
        "# Synthesized by zkmigrate from the plan {}: the hosts' zoo.cfg was not read,\n\
         # so tickTime, initLimit and syncLimit are ZooKeeper's sample values, not\n\
         # the ensemble's. `zkmigrate step` derives this file from the hosts' zoo.cfg.\n\
         tickTime=2000\n\
         initLimit=10\n\
         syncLimit=5\n\
         dataDir=/var/lib/zookeeper\n\
         clientPort={}\n\
         4lw.commands.whitelist=srvr,mntr,conf,cons,ruok\n",
        plan.name, e.client_port
    );
    for server in &plan.servers {
        text.push_str(&format!(
            "server.{}={}:{}:{}\n",
            server.id, server.address, e.quorum_port, e.election_port
        ));
    }
    HostConfig {
        zoo_cfg: text,
        dynamic: None,
    }
}

/// The ConfigMap mounted at `/conf` in every Pod: `<target>-config`, key
/// `zoo.cfg`.
pub fn pod_config_map(plan: &ValidatedPlan, zoo_cfg_text: &str) -> ConfigMap {
    config_map(
        plan,
        labels::config_map_name(plan),
        BTreeMap::from([(ZOO_CFG_KEY.to_string(), zoo_cfg_text.to_string())]),
    )
}

/// The ConfigMap mounted at `/ordinals` (StatefulSet target):
/// `<target>-ordinals`, one key per ordinal holding its myid
/// (`"0": "3"`). A Pod reads `/ordinals/<its ordinal>` at start.
pub fn ordinals_config_map(plan: &ValidatedPlan, ordinals: &Ordinals) -> ConfigMap {
    let data = ordinals
        .ids()
        .iter()
        .enumerate()
        .map(|(ordinal, id)| (ordinal.to_string(), id.to_string()))
        .collect();
    config_map(plan, labels::ordinals_config_map_name(plan), data)
}

fn config_map(plan: &ValidatedPlan, name: String, data: BTreeMap<String, String>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(plan.kubernetes.namespace.clone()),
            labels: Some(labels::common(plan)),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..ConfigMap::default()
    }
}
