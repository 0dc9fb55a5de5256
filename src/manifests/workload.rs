//! The Pods of the replace step (DESIGN 5.5): one StatefulSet whose
//! ordinals map to myids through a ConfigMap (`StatefulSet` target), or one
//! StatefulSet of one replica per server (`PerServer`), and the
//! PodDisruptionBudget over all of them.
//!
//! Choices an operator should know about:
//!
//! - `podManagementPolicy: OrderedReady`: scaling up by one starts exactly
//!   one more Pod, the next ordinal, which is how the replace step adds
//!   servers one at a time.
//! - `updateStrategy: OnDelete`: a template change never restarts Pods by
//!   itself. A StatefulSet rolling update is neither sync-gated nor
//!   leader-aware (DESIGN 9); restarts are zkmigrate's, or the operator's.
//! - The readiness probe asks `srvr` and wants a `Mode:` line, i.e. the
//!   server is serving. It is not zkmigrate's gate (DESIGN 7: that is the
//!   leader's sync report); it lets OrderedReady wait for a serving server
//!   before the next ordinal. `srvr` rather than `ruok`: `srvr` is the one
//!   word in the default 4lw whitelist of every version that has one, and
//!   a `ruok` the hosts' whitelist refuses would leave the Pod unready for
//!   good (and OrderedReady stuck).
//! - The PersistentVolumeClaims are retained when the StatefulSet is deleted
//!   or scaled down: a rollback that scales down keeps the data.
//! - `/datalog` is always mounted, from the data volume (subPath
//!   `datalog`): the Pods' `zoo.cfg` uses it when the hosts set
//!   `dataLogDir`, and the image's `ZOO_DATA_LOG_DIR` points at it, so it
//!   must never be a container's ephemeral directory.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EnvVar, ExecAction, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, Probe, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::podconfig::{POD_DATA_DIR, POD_DATA_LOG_DIR};
use super::services::named_ports;
use super::{ManifestsError, labels};
use crate::plan::{ServerId, ValidatedPlan};

/// The container's name.
pub const CONTAINER: &str = "zookeeper";
/// The volume claim template's name.
pub const DATA_VOLUME: &str = "data";
/// Where the ordinals ConfigMap is mounted.
pub const ORDINALS_DIR: &str = "/ordinals";
/// Where the zoo.cfg ConfigMap is mounted (the image's `ZOO_CONF_DIR`).
pub const CONF_DIR: &str = "/conf";

/// The StatefulSet target's command: the myid of this Pod's ordinal from
/// the ordinals ConfigMap, then the official image's entrypoint, which
/// writes `/data/myid` from `ZOO_MY_ID` (when there is none yet).
const ORDINAL_COMMAND: &str = "set -e; ord=${HOSTNAME##*-}; export ZOO_MY_ID=$(cat /ordinals/$ord); \
exec /docker-entrypoint.sh zkServer.sh start-foreground";

/// The StatefulSet of a `StatefulSet` target with `replicas` Pods: during
/// the replace step, the servers replaced so far (ordinals 0..replicas).
pub fn statefulset(plan: &ValidatedPlan, replicas: usize) -> Result<StatefulSet, ManifestsError> {
    if replicas > plan.servers.len() {
        return Err(ManifestsError::InvalidReplicas {
            replicas,
            servers: plan.servers.len(),
        });
    }
    let command = vec!["bash".into(), "-c".into(), ORDINAL_COMMAND.into()];
    let container = container(plan, Some(command), vec![], true);
    let volumes = vec![
        config_map_volume("config", labels::config_map_name(plan)),
        config_map_volume("ordinals", labels::ordinals_config_map_name(plan)),
    ];
    Ok(build(
        plan,
        plan.kubernetes.target.name.clone(),
        replicas,
        labels::common(plan),
        labels::selector(plan),
        container,
        volumes,
    ))
}

/// The StatefulSet of server `id` for a `PerServer` target: one replica,
/// `ZOO_MY_ID` set directly, no ordinals ConfigMap.
pub fn per_server_statefulset(
    plan: &ValidatedPlan,
    id: ServerId,
) -> Result<StatefulSet, ManifestsError> {
    if plan.server(id).is_none() {
        return Err(ManifestsError::UnknownServer { id: id.get() });
    }
    let env = vec![env("ZOO_MY_ID", &id.to_string())];
    let container = container(plan, None, env, false);
    let mut selector = labels::selector(plan);
    selector.insert(labels::SERVER_ID.into(), id.to_string());
    Ok(build(
        plan,
        plan.kubernetes.target.statefulset_name(id),
        1,
        labels::for_server(plan, id),
        selector,
        container,
        vec![config_map_volume("config", labels::config_map_name(plan))],
    ))
}

/// The PodDisruptionBudget over every Pod of the plan: one at a time.
pub fn pdb(plan: &ValidatedPlan) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(plan, labels::pdb_name(plan), labels::common(plan)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(labels::selector(plan)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    }
}

fn meta(plan: &ValidatedPlan, name: String, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(plan.kubernetes.namespace.clone()),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

fn build(
    plan: &ValidatedPlan,
    name: String,
    replicas: usize,
    object_labels: BTreeMap<String, String>,
    selector: BTreeMap<String, String>,
    container: Container,
    volumes: Vec<Volume>,
) -> StatefulSet {
    let mut pod_labels = object_labels.clone();
    pod_labels.extend(selector.clone());
    let storage = &plan.kubernetes.target.storage;
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.into()),
            labels: Some(labels::common(plan)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(storage.size.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            storage_class_name: storage.storage_class_name.clone(),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    };
    StatefulSet {
        metadata: meta(plan, name, object_labels),
        spec: Some(StatefulSetSpec {
            replicas: Some(i32::try_from(replicas).unwrap_or(i32::MAX)),
            service_name: Some(labels::governing_service_name(plan)),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            pod_management_policy: Some("OrderedReady".into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                rolling_update: None,
            }),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Retain".into()),
                    when_scaled: Some("Retain".into()),
                },
            ),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    termination_grace_period_seconds: Some(30),
                    volumes: Some(volumes),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![claim]),
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

fn container(
    plan: &ValidatedPlan,
    command: Option<Vec<String>>,
    extra_env: Vec<EnvVar>,
    mount_ordinals: bool,
) -> Container {
    let mut env_vars = vec![env("ZOO_CONF_DIR", CONF_DIR)];
    env_vars.extend(extra_env);
    let mut mounts = vec![mount("config", CONF_DIR, None, true)];
    if mount_ordinals {
        mounts.push(mount("ordinals", ORDINALS_DIR, None, true));
    }
    mounts.push(mount(DATA_VOLUME, POD_DATA_DIR, None, false));
    mounts.push(mount(DATA_VOLUME, POD_DATA_LOG_DIR, Some("datalog"), false));
    let probe = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{}; printf srvr >&3; grep -q '^Mode: ' <&3",
        plan.ensemble.client_port
    );
    Container {
        name: CONTAINER.into(),
        image: Some(plan.kubernetes.target.image.clone()),
        command,
        env: Some(env_vars),
        ports: Some(
            named_ports(plan)
                .into_iter()
                .map(|(name, port)| ContainerPort {
                    name: Some(name.into()),
                    container_port: i32::from(port),
                    protocol: Some("TCP".into()),
                    ..ContainerPort::default()
                })
                .collect(),
        ),
        readiness_probe: Some(Probe {
            exec: Some(ExecAction {
                command: Some(vec!["bash".into(), "-c".into(), probe]),
            }),
            period_seconds: Some(2),
            ..Probe::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn mount(name: &str, path: &str, sub_path: Option<&str>, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        sub_path: sub_path.map(Into::into),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

fn config_map_volume(name: &str, config_map: String) -> Volume {
    Volume {
        name: name.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map,
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }
}
