//! The plan file as written: serde structs for `zkmigrate/v1`.
//!
//! These mirror the YAML one-to-one (camelCase keys, `deny_unknown_fields`
//! everywhere, so a misspelt key is an error with its line and column rather
//! than a silently ignored setting). Every value the rules look at is
//! wrapped in [`Spanned`] so that a validation error can point at it.
//!
//! Optional keys are `Option`s here, not serde defaults: `validate` fills in
//! the defaults, so the defaults live in one place (`validate.rs`) and
//! `docs/plan-file.md` can be checked against it. Numbers are read as `i64`
//! and strings as `String` even where the valid set is smaller (ports, ids,
//! enum-like fields): then an out-of-range value is a validation error that
//! is collected with all the others, instead of a deserialization error that
//! stops at the first one.

use serde::Deserialize;
use serde_saphyr::Spanned;

/// Just `apiVersion` and `kind`, read before the rest so that a plan of
/// another version is refused as such, not with a list of unknown keys.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawHeader {
    pub api_version: Option<Spanned<String>>,
    pub kind: Option<Spanned<String>>,
}

/// The whole plan file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPlan {
    pub api_version: Spanned<String>,
    pub kind: Spanned<String>,
    pub name: Spanned<String>,
    pub ensemble: RawEnsemble,
    pub kubernetes: RawKubernetes,
    pub clients: Option<RawClients>,
    pub policy: Option<RawPolicy>,
    pub state: Option<RawState>,
}

/// `ensemble`: the servers as they run today and how to reach them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawEnsemble {
    pub servers: Spanned<Vec<RawServer>>,
    pub client_port: Option<Spanned<i64>>,
    pub quorum_port: Option<Spanned<i64>>,
    pub election_port: Option<Spanned<i64>>,
    pub config_path: Option<Spanned<String>>,
    pub access: Spanned<RawAccess>,
    pub service: RawServiceCommands,
}

/// `ensemble.servers[N]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawServer {
    pub id: Spanned<i64>,
    pub host: Spanned<String>,
    pub address: Spanned<String>,
}

/// `ensemble.access`: exactly one of the two (checked by `validate`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAccess {
    pub ssh: Option<Spanned<RawSsh>>,
    pub exec: Option<Spanned<RawExec>>,
}

/// `ensemble.access.ssh`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSsh {
    pub user: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub identity_file: Option<Spanned<String>>,
    pub options: Option<Vec<Spanned<String>>>,
    pub jump_hosts: Option<Vec<Spanned<String>>>,
}

/// `ensemble.access.exec`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawExec {
    pub prefix: Spanned<Vec<Spanned<String>>>,
}

/// `ensemble.service`: every command is required; zkmigrate never guesses
/// how a production service is stopped or disabled.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawServiceCommands {
    pub start: Spanned<String>,
    pub stop: Spanned<String>,
    pub restart: Spanned<String>,
    pub disable: Spanned<String>,
    pub enable: Spanned<String>,
}

/// `kubernetes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawKubernetes {
    pub context: Option<Spanned<String>>,
    pub namespace: Spanned<String>,
    pub cluster_domain: Option<Spanned<String>>,
    pub service_name: Option<Spanned<String>>,
    pub target: RawTarget,
}

/// `kubernetes.target`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTarget {
    pub kind: Spanned<String>,
    pub name: Spanned<String>,
    pub image: Spanned<String>,
    pub storage: RawStorage,
}

/// `kubernetes.target.storage`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawStorage {
    pub size: Spanned<String>,
    pub storage_class_name: Option<Spanned<String>>,
}

/// `clients`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawClients {
    pub chroot: Option<Spanned<String>>,
}

/// `policy`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPolicy {
    pub sync_timeout: Option<Spanned<String>>,
    pub progress_deadline: Option<Spanned<String>>,
    pub poll_interval: Option<Spanned<String>>,
    pub confirm: Option<Vec<Spanned<String>>>,
    pub allow_even_voters: Option<bool>,
    pub lease_duration: Option<Spanned<String>>,
}

/// `state`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawState {
    pub backend: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
}
