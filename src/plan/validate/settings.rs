//! Rules of the smaller sections: `clients` (the chroot), `policy`
//! (durations, confirmations, even voters) and `state` (the journal).

use std::collections::BTreeSet;

use super::{
    DEFAULT_LEASE_DURATION, DEFAULT_POLL_INTERVAL, DEFAULT_PROGRESS_DEADLINE, DEFAULT_SYNC_TIMEOUT,
    MAX_LEASE_DURATION, MIN_LEASE_DURATION,
};
use super::{Findings, at, duration, required};
use crate::plan::file::{RawClients, RawPolicy, RawState};
use crate::plan::formats;
use crate::plan::types::{Chroot, Clients, Policy, StateBackend};
use crate::steps::StepName;

/// The steps that wait for `--confirm` when `policy.confirm` is unset: the
/// clients step ends only when the operator says the clients have moved.
pub const DEFAULT_CONFIRM: [StepName; 1] = [StepName::Clients];

pub(super) fn clients(findings: &mut Findings, raw: Option<RawClients>) -> Clients {
    let chroot = raw.and_then(|raw| raw.chroot).and_then(|chroot| {
        findings
            .check(
                "clients.chroot",
                at(&chroot),
                formats::check_chroot(&chroot.value),
            )
            .flatten()
            .map(Chroot)
    });
    Clients { chroot }
}

pub(super) fn policy(findings: &mut Findings, raw: Option<RawPolicy>) -> Policy {
    let raw = raw.unwrap_or_default();
    let sync_timeout = duration(
        findings,
        "policy.syncTimeout",
        raw.sync_timeout.as_ref(),
        DEFAULT_SYNC_TIMEOUT,
    );
    let progress_deadline = duration(
        findings,
        "policy.progressDeadline",
        raw.progress_deadline.as_ref(),
        DEFAULT_PROGRESS_DEADLINE,
    );
    let poll_interval = duration(
        findings,
        "policy.pollInterval",
        raw.poll_interval.as_ref(),
        DEFAULT_POLL_INTERVAL,
    );
    // A poll slower than the deadline could never see progress in time.
    if poll_interval >= progress_deadline {
        let poll_at = raw.poll_interval.as_ref().and_then(at);
        let deadline_at = raw.progress_deadline.as_ref().and_then(at);
        findings.error(
            "policy.pollInterval",
            poll_at.or(deadline_at),
            format!(
                "{} must be shorter than policy.progressDeadline ({})",
                humantime::format_duration(poll_interval),
                humantime::format_duration(progress_deadline)
            ),
        );
    }
    let lease_duration = duration(
        findings,
        "policy.leaseDuration",
        raw.lease_duration.as_ref(),
        DEFAULT_LEASE_DURATION,
    );
    // A Lease counts whole seconds (leaseDurationSeconds).
    if lease_duration.subsec_nanos() != 0
        || !(MIN_LEASE_DURATION..=MAX_LEASE_DURATION).contains(&lease_duration)
    {
        findings.error(
            "policy.leaseDuration",
            raw.lease_duration.as_ref().and_then(at),
            format!(
                "{} must be whole seconds from {} to {}",
                humantime::format_duration(lease_duration),
                humantime::format_duration(MIN_LEASE_DURATION),
                humantime::format_duration(MAX_LEASE_DURATION)
            ),
        );
    }
    let confirm = match raw.confirm {
        None => DEFAULT_CONFIRM.to_vec(),
        Some(list) => {
            let mut steps = BTreeSet::new();
            for (i, step) in list.iter().enumerate() {
                let parsed = step.value.trim().parse::<StepName>();
                if let Some(step) =
                    findings.check(&format!("policy.confirm[{i}]"), at(step), parsed)
                {
                    steps.insert(step);
                }
            }
            // StepName orders by run order: the list reads as the run does.
            steps.into_iter().collect()
        }
    };
    Policy {
        sync_timeout,
        progress_deadline,
        poll_interval,
        confirm,
        allow_even_voters: raw.allow_even_voters.unwrap_or(false),
        lease_duration,
    }
}

pub(super) fn state(
    findings: &mut Findings,
    raw: Option<RawState>,
    plan_name: &str,
) -> StateBackend {
    let (backend, path) = match raw {
        Some(raw) => (raw.backend, raw.path),
        None => (None, None),
    };
    let default_path = || format!(".zkmigrate/{plan_name}.json");
    match backend.as_ref().map(|b| b.value.as_str()) {
        None | Some("file") => StateBackend::File {
            path: match path {
                Some(path) => required(findings, "state.path", &path),
                None => default_path(),
            },
        },
        Some("kubernetes") => {
            if let Some(path) = path {
                findings.error(
                    "state.path",
                    at(&path),
                    "only the file backend has a path; the kubernetes backend keeps the journal in a ConfigMap",
                );
            }
            StateBackend::Kubernetes
        }
        Some(other) => {
            findings.error(
                "state.backend",
                backend.as_ref().and_then(at),
                format!("{other:?} is not a state backend; expected file or kubernetes"),
            );
            StateBackend::File {
                path: default_path(),
            }
        }
    }
}
