//! Validation: the raw plan file into a [`ValidatedPlan`], every rule of
//! DESIGN section 3 checked and every default filled in.
//!
//! Rules do not stop at the first failure: each section is checked in full
//! and every broken rule is recorded in [`Findings`] with its field path
//! and position, so one run tells the operator everything to fix. A check
//! that fails still yields a placeholder value so the rest can go on; the
//! placeholders never escape, because any error makes the whole result an
//! `Err`.
//!
//! The sections live in submodules (`ensemble`, `kubernetes`, `settings`
//! for clients, policy and state); this file holds the shared helpers and
//! the defaults, which `docs/plan-file.md` lists.

mod ensemble;
mod kubernetes;
mod settings;

use std::time::Duration;

use serde_saphyr::Spanned;

use super::file::{RawHeader, RawPlan};
use super::formats;
use super::types::ValidatedPlan;
use super::{API_VERSION, FieldError, KIND, Position, Warning};

/// `ensemble.clientPort` when unset.
pub const DEFAULT_CLIENT_PORT: u16 = 2181;
/// `ensemble.quorumPort` when unset.
pub const DEFAULT_QUORUM_PORT: u16 = 2888;
/// `ensemble.electionPort` when unset.
pub const DEFAULT_ELECTION_PORT: u16 = 3888;
/// `ensemble.configPath` when unset.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/zookeeper/conf/zoo.cfg";
/// `ensemble.access.ssh.port` when unset.
pub const DEFAULT_SSH_PORT: u16 = 22;
/// `kubernetes.clusterDomain` when unset.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";
/// `kubernetes.serviceName` when unset.
pub const DEFAULT_SERVICE_NAME: &str = "zk-{id}";
/// `policy.syncTimeout` when unset.
pub const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// `policy.progressDeadline` when unset.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(2 * 60);
/// `policy.pollInterval` when unset.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// `policy.leaseDuration` when unset.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// The shortest `policy.leaseDuration`: renewed every second.
pub const MIN_LEASE_DURATION: Duration = Duration::from_secs(3);
/// The longest `policy.leaseDuration`: how long a killed run blocks the
/// plan before `--steal-lease` may take over.
pub const MAX_LEASE_DURATION: Duration = Duration::from_secs(5 * 60);

/// The broken rules and the warnings found so far.
#[derive(Default)]
pub(super) struct Findings {
    errors: Vec<FieldError>,
    warnings: Vec<FieldError>,
}

impl Findings {
    /// Records a broken rule.
    pub(super) fn error(
        &mut self,
        path: impl Into<String>,
        at: Option<Position>,
        message: impl Into<String>,
    ) {
        self.errors.push(FieldError {
            path: path.into(),
            position: at,
            message: message.into(),
        });
    }

    /// Records something accepted that an operator should read.
    pub(super) fn warn(
        &mut self,
        path: impl Into<String>,
        at: Option<Position>,
        message: impl Into<String>,
    ) {
        self.warnings.push(FieldError {
            path: path.into(),
            position: at,
            message: message.into(),
        });
    }

    /// Records `Err(reason)` of a format check as an error; the value when it passed.
    pub(super) fn check<T>(
        &mut self,
        path: &str,
        at: Option<Position>,
        result: Result<T, String>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(reason) => {
                self.error(path, at, reason);
                None
            }
        }
    }
}

/// Where a spanned value starts, when serde-saphyr knows.
pub(super) fn at<T>(value: &Spanned<T>) -> Option<Position> {
    let location = value.referenced;
    (location.line() > 0).then(|| Position {
        line: location.line(),
        column: location.column(),
    })
}

/// A port: 1 to 65535, `default` when unset.
pub(super) fn port(
    findings: &mut Findings,
    path: &str,
    value: Option<&Spanned<i64>>,
    default: u16,
) -> u16 {
    let Some(value) = value else { return default };
    match u16::try_from(value.value) {
        Ok(port) if port > 0 => port,
        _ => {
            findings.error(
                path,
                at(value),
                format!("port {} is outside 1..65535", value.value),
            );
            default
        }
    }
}

/// A string that must hold something besides whitespace.
pub(super) fn required(findings: &mut Findings, path: &str, value: &Spanned<String>) -> String {
    if value.value.trim().is_empty() {
        findings.error(path, at(value), "must not be empty");
    }
    value.value.clone()
}

/// A word passed as one argument to ssh or a shell: not empty, no
/// whitespace, and not starting with `-`, so it can never be taken for an
/// option (`-oProxyCommand=...` in a host name would run a command).
pub(super) fn word(findings: &mut Findings, path: &str, value: &Spanned<String>) -> String {
    let text = &value.value;
    if text.is_empty() {
        findings.error(path, at(value), "must not be empty");
    } else if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        findings.error(
            path,
            at(value),
            format!("{text:?} must not hold whitespace"),
        );
    } else if text.starts_with('-') {
        findings.error(path, at(value), format!("{text:?} must not start with '-'"));
    }
    text.clone()
}

/// A duration such as `10m`, `90s` or `200ms`; `default` when unset. Zero
/// is refused: every duration of the plan bounds a wait or paces a loop.
pub(super) fn duration(
    findings: &mut Findings,
    path: &str,
    value: Option<&Spanned<String>>,
    default: Duration,
) -> Duration {
    let Some(value) = value else { return default };
    match humantime::parse_duration(value.value.trim()) {
        Ok(parsed) if parsed.is_zero() => {
            findings.error(path, at(value), "must be longer than zero");
            default
        }
        Ok(parsed) => parsed,
        Err(e) => {
            findings.error(
                path,
                at(value),
                format!(
                    "{:?} is not a duration such as 10m, 90s or 200ms: {e}",
                    value.value
                ),
            );
            default
        }
    }
}

/// The version and kind of a plan, checked before the rest is read.
pub(super) fn check_header(header: &RawHeader) -> Vec<FieldError> {
    let mut findings = Findings::default();
    if let Some(version) = &header.api_version
        && version.value != API_VERSION
    {
        findings.error(
            "apiVersion",
            at(version),
            format!(
                "unsupported apiVersion {:?}; this zkmigrate reads {API_VERSION:?}",
                version.value
            ),
        );
    }
    if let Some(kind) = &header.kind
        && kind.value != KIND
    {
        findings.error(
            "kind",
            at(kind),
            format!("kind {:?} is not {KIND:?}", kind.value),
        );
    }
    findings.errors
}

/// Checks every rule; the plan with its warnings, or every error found, in
/// file order.
pub(super) fn validate(raw: RawPlan, source_name: &str) -> Result<ValidatedPlan, Vec<FieldError>> {
    let mut findings = Findings::default();
    findings.errors.extend(check_header(&RawHeader {
        api_version: Some(raw.api_version),
        kind: Some(raw.kind),
    }));
    findings.check(
        "name",
        at(&raw.name),
        formats::check_dns1123_label(&raw.name.value),
    );
    let name = raw.name.value;

    let policy = settings::policy(&mut findings, raw.policy);
    let (servers, ensemble) =
        ensemble::ensemble(&mut findings, raw.ensemble, policy.allow_even_voters);
    let kubernetes = kubernetes::kubernetes(&mut findings, raw.kubernetes, &servers);
    let clients = settings::clients(&mut findings, raw.clients);
    let state = settings::state(&mut findings, raw.state, &name);

    if !findings.errors.is_empty() {
        let mut errors = findings.errors;
        // File order reads best; errors without a position go last.
        errors.sort_by_key(|e| (e.position.is_none(), e.position));
        return Err(errors);
    }
    let mut warnings = findings.warnings;
    warnings.sort_by_key(|w| (w.position.is_none(), w.position));
    Ok(ValidatedPlan {
        name,
        servers,
        ensemble,
        kubernetes,
        clients,
        policy,
        state,
        warnings: warnings
            .into_iter()
            .map(|field| Warning {
                source_name: source_name.to_string(),
                field,
            })
            .collect(),
        base_dir: None,
    })
}
