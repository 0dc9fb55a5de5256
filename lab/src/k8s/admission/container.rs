//! Container validation (`pkg/apis/core/validation/validation.go`:
//! `validateContainerCommon`, `validateContainerPorts`, `ValidateEnv`,
//! `ValidateVolumeMounts`, `ValidateContainerResourceRequirements`,
//! `validateProbe`, `validateHandler`, `checkHostPortConflicts`), used by
//! `podspec` for containers and init containers alike.

use std::collections::{BTreeMap, HashMap, HashSet};

use k8s_openapi::api::core::v1::{Container, Probe, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::field::{FieldErrors, key};
use super::names::{
    is_config_map_key, is_dns1123_label, is_env_var_name, is_qualified_name, is_valid_port_name,
    is_valid_port_num,
};
use super::podspec::{QuantityResult, local_path};
use super::quantity;
use super::service::{PROTOCOLS, validate_port_num_or_name};

/// `validateContainerCommon`.
pub(super) fn validate_container_common(
    c: &Container,
    volumes: &HashMap<String, &'static str>,
    p: &str,
    errs: &mut FieldErrors,
) -> QuantityResult {
    if c.name.is_empty() {
        errs.required(format!("{p}.name"), "");
    } else {
        errs.invalid_each(&format!("{p}.name"), &c.name, is_dns1123_label(&c.name));
    }
    if c.image.as_deref().unwrap_or("").is_empty() {
        errs.required(format!("{p}.image"), "");
    }
    match c.termination_message_policy.as_deref().unwrap_or("") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.required(format!("{p}.terminationMessagePolicy"), ""),
        other => errs.not_supported(
            format!("{p}.terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        ),
    }
    let mut port_names = HashSet::new();
    for (i, port) in c.ports.iter().flatten().enumerate() {
        let pp = format!("{p}.ports[{i}]");
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                errs.invalid_each(&format!("{pp}.name"), name, msgs);
            } else if !port_names.insert(name.to_string()) {
                errs.duplicate(format!("{pp}.name"), name);
            }
        }
        if port.container_port == 0 {
            errs.required(format!("{pp}.containerPort"), "");
        } else {
            for m in is_valid_port_num(i64::from(port.container_port)) {
                errs.invalid(format!("{pp}.containerPort"), port.container_port, &m);
            }
        }
        if let Some(hp) = port.host_port.filter(|h| *h != 0) {
            for m in is_valid_port_num(i64::from(hp)) {
                errs.invalid(format!("{pp}.hostPort"), hp, &m);
            }
        }
        match port.protocol.as_deref().unwrap_or("") {
            "" => errs.required(format!("{pp}.protocol"), ""),
            pr if !PROTOCOLS.contains(&pr) => {
                errs.not_supported(format!("{pp}.protocol"), pr, PROTOCOLS)
            }
            _ => {}
        }
    }
    for (i, e) in c.env.iter().flatten().enumerate() {
        let ep = format!("{p}.env[{i}]");
        if e.name.is_empty() {
            errs.required(format!("{ep}.name"), "");
        } else {
            errs.invalid_each(&format!("{ep}.name"), &e.name, is_env_var_name(&e.name));
        }
        if let Some(vf) = &e.value_from {
            let sources = [
                vf.field_ref.is_some(),
                vf.resource_field_ref.is_some(),
                vf.config_map_key_ref.is_some(),
                vf.secret_key_ref.is_some(),
            ]
            .iter()
            .filter(|s| **s)
            .count();
            let vp = format!("{ep}.valueFrom");
            if sources == 0 {
                errs.invalid(&vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`");
            } else if e.value.as_deref().is_some_and(|v| !v.is_empty()) {
                errs.invalid(&vp, "", "may not be specified when `value` is not empty");
            } else if sources > 1 {
                errs.invalid(
                    &vp,
                    "",
                    "may not have more than one field specified at a time",
                );
            }
            if let Some(r) = &vf.config_map_key_ref {
                if r.key.is_empty() {
                    errs.required(format!("{vp}.configMapKeyRef.key"), "");
                } else {
                    errs.invalid_each(
                        &format!("{vp}.configMapKeyRef.key"),
                        &r.key,
                        is_config_map_key(&r.key),
                    );
                }
            }
            if let Some(f) = &vf.field_ref
                && f.field_path.is_empty()
            {
                errs.required(format!("{vp}.fieldRef.fieldPath"), "");
            }
        }
    }
    let mut mount_points = HashSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let mp = format!("{p}.volumeMounts[{i}]");
        if m.name.is_empty() {
            errs.required(format!("{mp}.name"), "");
        }
        if !volumes.contains_key(&m.name) {
            errs.not_found(format!("{mp}.name"), &m.name);
        }
        if m.mount_path.is_empty() {
            errs.required(format!("{mp}.mountPath"), "");
        }
        if !mount_points.insert(m.mount_path.clone()) {
            errs.invalid(format!("{mp}.mountPath"), &m.mount_path, "must be unique");
        }
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            // The real code reports these on the list's path, not the item's.
            local_path(sub, &format!("{p}.volumeMounts.subPath"), errs);
        }
    }
    match c.image_pull_policy.as_deref().unwrap_or("") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.required(format!("{p}.imagePullPolicy"), ""),
        other => errs.not_supported(
            format!("{p}.imagePullPolicy"),
            other,
            &["Always", "IfNotPresent", "Never"],
        ),
    }
    if let Some(r) = &c.resources {
        validate_resources(r, &format!("{p}.resources"), errs)?;
    }
    Ok(())
}

/// `ValidateContainerResourceRequirements`: standard names, non-negative
/// quantities, requests not above limits.
fn validate_resources(r: &ResourceRequirements, p: &str, errs: &mut FieldErrors) -> QuantityResult {
    let empty = BTreeMap::new();
    let limits = r.limits.as_ref().unwrap_or(&empty);
    let requests = r.requests.as_ref().unwrap_or(&empty);
    let mut limit_values = HashMap::new();
    for (name, q) in limits {
        let at = key(&format!("{p}.limits"), name);
        resource_name(name, &at, errs);
        let v = quantity::parse(&q.0)?;
        if v < 0.0 {
            errs.invalid(&at, &q.0, "must be greater than or equal to 0");
        }
        limit_values.insert(name.clone(), v);
    }
    for (name, q) in requests {
        let at = key(&format!("{p}.requests"), name);
        resource_name(name, &at, errs);
        let v = quantity::parse(&q.0)?;
        if v < 0.0 {
            errs.invalid(&at, &q.0, "must be greater than or equal to 0");
        }
        if let Some(limit) = limit_values.get(name) {
            let limit_str = &limits[name].0;
            if name.starts_with("hugepages-") && v != *limit {
                errs.invalid(
                    format!("{p}.requests"),
                    &q.0,
                    &format!("must be equal to {name} limit of {limit_str}"),
                );
            } else if v > *limit {
                errs.invalid(
                    format!("{p}.requests"),
                    &q.0,
                    &format!("must be less than or equal to {name} limit of {limit_str}"),
                );
            }
        }
    }
    Ok(())
}

/// `validateContainerResourceName`.
fn resource_name(name: &str, at: &str, errs: &mut FieldErrors) {
    let msgs = is_qualified_name(name);
    if !msgs.is_empty() {
        errs.invalid_each(at, name, msgs);
        return;
    }
    let standard =
        matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-");
    if !name.contains('/') && !standard {
        errs.invalid(at, name, "must be a standard resource for containers");
    }
}

/// `validateProbe` and `validateHandler`; liveness and startup probes
/// need `successThreshold` 1, readiness probes no grace period.
pub(super) fn validate_probe(
    probe: Option<&Probe>,
    p: &str,
    success_must_be_one: bool,
    errs: &mut FieldErrors,
) {
    let Some(probe) = probe else { return };
    let mut handlers = 0;
    if let Some(exec) = &probe.exec {
        handlers += 1;
        if exec.command.as_ref().is_none_or(Vec::is_empty) {
            errs.required(format!("{p}.exec.command"), "");
        }
    }
    for (name, set, port) in [
        (
            "httpGet",
            probe.http_get.is_some(),
            probe.http_get.as_ref().map(|h| h.port.clone()),
        ),
        (
            "tcpSocket",
            probe.tcp_socket.is_some(),
            probe.tcp_socket.as_ref().map(|t| t.port.clone()),
        ),
        (
            "grpc",
            probe.grpc.is_some(),
            probe.grpc.as_ref().map(|g| IntOrString::Int(g.port)),
        ),
    ] {
        if !set {
            continue;
        }
        if handlers > 0 {
            errs.forbidden(
                format!("{p}.{name}"),
                "may not specify more than 1 handler type",
            );
            continue;
        }
        handlers += 1;
        if let Some(h) = probe.http_get.as_ref().filter(|_| name == "httpGet") {
            if h.path.as_deref().unwrap_or("").is_empty() {
                errs.required(format!("{p}.httpGet.path"), "");
            }
            let scheme = h.scheme.as_deref().unwrap_or("");
            if scheme != "HTTP" && scheme != "HTTPS" {
                errs.not_supported(format!("{p}.httpGet.scheme"), scheme, &["HTTP", "HTTPS"]);
            }
        }
        validate_port_num_or_name(port.as_ref(), &format!("{p}.{name}.port"), errs);
    }
    if handlers == 0 {
        errs.required(p, "must specify a handler type");
    }
    for (field, v) in [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ] {
        if let Some(v) = v.filter(|v| *v < 0) {
            errs.invalid(
                format!("{p}.{field}"),
                v,
                "must be greater than or equal to 0",
            );
        }
    }
    if success_must_be_one && probe.success_threshold.unwrap_or(1) != 1 {
        errs.invalid(
            format!("{p}.successThreshold"),
            probe.success_threshold.unwrap_or(0),
            "must be 1",
        );
    }
    if !success_must_be_one {
        if let Some(g) = probe.termination_grace_period_seconds {
            errs.invalid(
                format!("{p}.terminationGracePeriodSeconds"),
                g,
                "must not be set for readinessProbes",
            );
        }
    } else if let Some(g) = probe.termination_grace_period_seconds.filter(|g| *g <= 0) {
        errs.invalid(
            format!("{p}.terminationGracePeriodSeconds"),
            g,
            "must be greater than 0",
        );
    }
}

/// `checkHostPortConflicts`.
pub(super) fn host_port_conflicts(containers: &[Container], path: &str, errs: &mut FieldErrors) {
    let mut seen = HashSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, port) in c.ports.iter().flatten().enumerate() {
            let Some(hp) = port.host_port.filter(|h| *h != 0) else {
                continue;
            };
            let id = format!(
                "{}/{}/{}",
                port.protocol.as_deref().unwrap_or(""),
                port.host_ip.as_deref().unwrap_or(""),
                hp
            );
            if !seen.insert(id.clone()) {
                errs.duplicate(format!("{path}[{ci}].ports[{pi}].hostPort"), id);
            }
        }
    }
}
