//! PodSpec validation (`pkg/apis/core/validation/validation.go`:
//! `ValidatePodSpec`, `ValidateVolumes`, `validateContainers`), the subset
//! that decides whether the lab's kubelet can run a Pod: volumes, containers
//! (in `container`), restart and DNS policies, names of nodes, hosts and
//! service accounts, tolerations.
//!
//! A malformed quantity is a decoding error (400) in the real API; the
//! validators return it as `Err` so the caller can answer so.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{PodSpec, Volume};

use super::container::{host_port_conflicts, validate_container_common, validate_probe};
use super::field::FieldErrors;
use super::names::{NameRule, inclusive_range_error, is_dns1123_label, is_qualified_name};

/// `Err` carries the real decoder's message for a malformed quantity.
pub type QuantityResult = Result<(), &'static str>;

/// The volume source keys in the order `validateVolumeSource` checks them.
const SOURCE_ORDER: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "quobyte",
    "cinder",
    "cephfs",
    "downwardAPI",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "configMap",
    "csi",
    "ephemeral",
    "image",
];

const FILE_MODE_ERROR: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// `ValidatePodSpec` at `path` (`spec`, or `spec.template.spec`).
pub fn validate_pod_spec(spec: &PodSpec, path: &str, errs: &mut FieldErrors) -> QuantityResult {
    let volumes = validate_volumes(
        spec.volumes.as_deref().unwrap_or(&[]),
        &format!("{path}.volumes"),
        errs,
    );
    if spec.containers.is_empty() {
        errs.required(format!("{path}.containers"), "");
    }
    let mut names = HashSet::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let p = format!("{path}.containers[{i}]");
        validate_container_common(c, &volumes, &p, errs)?;
        if !names.insert(c.name.clone()) {
            errs.duplicate(format!("{p}.name"), &c.name);
        }
        validate_probe(
            c.liveness_probe.as_ref(),
            &format!("{p}.livenessProbe"),
            true,
            errs,
        );
        validate_probe(
            c.readiness_probe.as_ref(),
            &format!("{p}.readinessProbe"),
            false,
            errs,
        );
        validate_probe(
            c.startup_probe.as_ref(),
            &format!("{p}.startupProbe"),
            true,
            errs,
        );
        if c.restart_policy.is_some() {
            errs.forbidden(
                format!("{p}.restartPolicy"),
                "may not be set for non-init containers",
            );
        }
    }
    host_port_conflicts(&spec.containers, &format!("{path}.containers"), errs);
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let p = format!("{path}.initContainers[{i}]");
        validate_container_common(c, &volumes, &p, errs)?;
        if !c.name.is_empty() && !names.insert(c.name.clone()) {
            errs.duplicate(format!("{p}.name"), &c.name);
        }
        let sidecar = c.restart_policy.as_deref() == Some("Always");
        match c.restart_policy.as_deref() {
            None | Some("Always") => {}
            Some(other) => errs.not_supported(format!("{p}.restartPolicy"), other, &["Always"]),
        }
        if sidecar {
            validate_probe(
                c.liveness_probe.as_ref(),
                &format!("{p}.livenessProbe"),
                true,
                errs,
            );
            validate_probe(
                c.readiness_probe.as_ref(),
                &format!("{p}.readinessProbe"),
                false,
                errs,
            );
            validate_probe(
                c.startup_probe.as_ref(),
                &format!("{p}.startupProbe"),
                true,
                errs,
            );
        } else {
            for (probe, set) in [
                ("lifecycle", c.lifecycle.is_some()),
                ("livenessProbe", c.liveness_probe.is_some()),
                ("readinessProbe", c.readiness_probe.is_some()),
                ("startupProbe", c.startup_probe.is_some()),
            ] {
                if set {
                    errs.forbidden(
                        format!("{p}.{probe}"),
                        "may not be set for init containers without restartPolicy=Always",
                    );
                }
            }
        }
    }
    match spec.restart_policy.as_deref().unwrap_or("") {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.required(format!("{path}.restartPolicy"), ""),
        other => errs.not_supported(
            format!("{path}.restartPolicy"),
            other,
            &["Always", "OnFailure", "Never"],
        ),
    }
    match spec.dns_policy.as_deref().unwrap_or("") {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.required(format!("{path}.dnsPolicy"), ""),
        other => errs.not_supported(
            format!("{path}.dnsPolicy"),
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        ),
    }
    if let Some(ads) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&ads)
    {
        errs.invalid(
            format!("{path}.activeDeadlineSeconds"),
            ads,
            &inclusive_range_error(1, i64::from(i32::MAX)),
        );
    }
    if let Some(sel) = &spec.node_selector {
        super::meta::validate_labels(sel, &format!("{path}.nodeSelector"), errs);
    }
    for (field, value, rule) in [
        ("nodeName", &spec.node_name, NameRule::Subdomain),
        (
            "serviceAccountName",
            &spec.service_account_name,
            NameRule::Subdomain,
        ),
        (
            "priorityClassName",
            &spec.priority_class_name,
            NameRule::Subdomain,
        ),
        ("hostname", &spec.hostname, NameRule::Label),
        ("subdomain", &spec.subdomain, NameRule::Label),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            errs.invalid_each(&format!("{path}.{field}"), v, rule.check(v, false));
        }
    }
    for (i, t) in spec.tolerations.iter().flatten().enumerate() {
        let p = format!("{path}.tolerations[{i}]");
        let k = t.key.as_deref().unwrap_or("");
        if !k.is_empty() {
            errs.invalid_each(&format!("{p}.key"), k, is_qualified_name(k));
        }
        match t.operator.as_deref().unwrap_or("Equal") {
            "Equal" | "" => {}
            "Exists" => {
                if t.value.as_deref().is_some_and(|v| !v.is_empty()) {
                    errs.invalid(
                        format!("{p}.operator"),
                        t.value.as_deref().unwrap_or(""),
                        "value must be empty when `operator` is 'Exists'",
                    );
                }
            }
            other => errs.not_supported(format!("{p}.operator"), other, &["Equal", "Exists"]),
        }
    }
    Ok(())
}

/// `ValidateVolumes`: unique DNS-1123 names, exactly one source each.
/// Returns the valid volumes by name with their source kind.
fn validate_volumes(
    volumes: &[Volume],
    path: &str,
    errs: &mut FieldErrors,
) -> HashMap<String, &'static str> {
    let mut out = HashMap::new();
    for (i, vol) in volumes.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let mut el = FieldErrors::new();
        let raw = serde_json::to_value(vol).unwrap_or_default();
        let mut kind = None;
        for src in SOURCE_ORDER {
            if raw.get(*src).is_some_and(|v| !v.is_null()) {
                if kind.is_some() {
                    el.forbidden(
                        format!("{p}.{src}"),
                        "may not specify more than 1 volume type",
                    );
                } else {
                    kind = Some(*src);
                }
            }
        }
        match kind {
            None => el.required(&p, "must specify a volume type"),
            Some(k) => validate_source(vol, k, &p, &mut el),
        }
        if vol.name.is_empty() {
            el.required(format!("{p}.name"), "");
        } else {
            el.invalid_each(&format!("{p}.name"), &vol.name, is_dns1123_label(&vol.name));
        }
        if out.contains_key(&vol.name) {
            el.duplicate(format!("{p}.name"), &vol.name);
        }
        if el.is_empty() {
            out.insert(vol.name.clone(), kind.unwrap_or(""));
        } else {
            errs.extend(el);
        }
    }
    out
}

fn validate_source(vol: &Volume, kind: &str, p: &str, errs: &mut FieldErrors) {
    let mode = |m: Option<i32>, at: String, errs: &mut FieldErrors| {
        if let Some(m) = m.filter(|m| !(0..=0o777).contains(m)) {
            errs.invalid(at, m, FILE_MODE_ERROR);
        }
    };
    match kind {
        "configMap" => {
            let Some(cm) = &vol.config_map else { return };
            if cm.name.is_empty() {
                errs.required(format!("{p}.configMap.name"), "");
            }
            mode(cm.default_mode, format!("{p}.configMap.defaultMode"), errs);
            for (j, item) in cm.items.iter().flatten().enumerate() {
                let ip = format!("{p}.configMap.items[{j}]");
                if item.key.is_empty() {
                    errs.required(format!("{ip}.key"), "");
                }
                local_path(&item.path, &format!("{ip}.path"), errs);
                mode(item.mode, format!("{ip}.mode"), errs);
            }
        }
        "secret" => {
            let Some(s) = &vol.secret else { return };
            if s.secret_name.as_deref().unwrap_or("").is_empty() {
                errs.required(format!("{p}.secret.secretName"), "");
            }
            mode(s.default_mode, format!("{p}.secret.defaultMode"), errs);
        }
        "persistentVolumeClaim"
            if vol
                .persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name.is_empty()) =>
        {
            errs.required(format!("{p}.persistentVolumeClaim.claimName"), "");
        }
        "hostPath" if vol.host_path.as_ref().is_some_and(|h| h.path.is_empty()) => {
            errs.required(format!("{p}.hostPath.path"), "");
        }
        _ => {}
    }
}

/// `validateLocalNonReservedPath` / `validateLocalDescendingPath`.
pub(super) fn local_path(path: &str, at: &str, errs: &mut FieldErrors) {
    if path.is_empty() {
        errs.required(at, "");
        return;
    }
    if path.starts_with('/') {
        errs.invalid(at, path, "must be a relative path");
    }
    if path.split('/').any(|seg| seg == "..") {
        errs.invalid(at, path, "must not contain '..'");
    }
    if path.starts_with("..") {
        errs.invalid(at, path, "must not start with '..'");
    }
}
