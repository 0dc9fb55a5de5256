//! A Service's addresses: the registry's bookkeeping of allocated values
//! (`pkg/registry/core/service/storage/alloc.go`: `patchAllocatedValues`,
//! `NormalizeClusterIPs`, `initIPFamilyFields`), the validation of the
//! `clusterIP(s)`/`ipFamilies` fields
//! (`pkg/apis/core/validation/validation.go`:
//! `ValidateServiceClusterIPsRelatedFields`,
//! `validateUpgradeDowngradeClusterIPs`), and the allocation of ClusterIPs
//! and NodePorts from what the other Services in the store hold.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use serde_json::{Value, json};

use super::clusterip::{ServiceCidr, refusal};
use super::field::{FieldErrors, go_strings, index};
use super::service::{is_headless, spec_of};
use crate::k8s::error::{ApiError, Cause};
use crate::k8s::resources::{self, Resource};
use crate::k8s::store::StoreView;

const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

fn needs_cluster_ip(v: &Value) -> bool {
    v["spec"]["type"] != "ExternalName"
}

/// `patchAllocatedValues` and `dropTypeDependentFields`: an update that
/// leaves the allocated values out keeps them (kubectl apply/replace send
/// manifests without them); one that turns the Service into an
/// ExternalName drops them.
pub(super) fn patch_allocated_values(new: &mut Value, old: &Value) {
    if !new["spec"].is_object() {
        return;
    }
    let (old_needs, new_needs) = (needs_cluster_ip(old), needs_cluster_ip(new));
    if old_needs && new_needs {
        for k in ["clusterIP", "clusterIPs"] {
            let empty = match &new["spec"][k] {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                _ => false,
            };
            if empty && !old["spec"][k].is_null() {
                new["spec"][k] = old["spec"][k].clone();
            }
        }
        if let (Some(ports), Some(old_ports)) = (
            new["spec"]["ports"].as_array_mut(),
            old["spec"]["ports"].as_array(),
        ) {
            for p in ports
                .iter_mut()
                .filter(|p| p.is_object() && p["nodePort"].is_null())
            {
                let same = old_ports
                    .iter()
                    .find(|o| o["port"] == p["port"] && o["protocol"] == p["protocol"]);
                if let Some(n) = same.map(|o| &o["nodePort"]).filter(|n| !n.is_null()) {
                    p["nodePort"] = n.clone();
                }
            }
        }
    } else if old_needs
        && !new_needs
        && let Some(spec) = new["spec"].as_object_mut()
    {
        for k in [
            "clusterIP",
            "clusterIPs",
            "ipFamilies",
            "ipFamilyPolicy",
            "internalTrafficPolicy",
        ] {
            if spec.get(k) == old["spec"].get(k) {
                spec.remove(k);
            }
        }
    }
}

/// `NormalizeClusterIPs`: an old client's lone `clusterIP` becomes
/// `clusterIPs`; changing only `clusterIP` on update follows through.
pub(super) fn normalize_cluster_ips(new: &mut Value, old: Option<&Value>) {
    let ip = new["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
    let ips_empty = new["spec"]["clusterIPs"]
        .as_array()
        .is_none_or(Vec::is_empty);
    match old {
        None => {
            if !ip.is_empty() && ips_empty && new["spec"].is_object() {
                new["spec"]["clusterIPs"] = json!([ip]);
            }
        }
        Some(old) => {
            let old_ip = old["spec"]["clusterIP"].as_str().unwrap_or("");
            let same_ips = new["spec"]["clusterIPs"] == old["spec"]["clusterIPs"];
            if !old["spec"]["clusterIPs"].is_null()
                && old_ip != ip
                && same_ips
                && new["spec"].is_object()
            {
                new["spec"]["clusterIPs"] = if ip.is_empty() {
                    Value::Null
                } else {
                    json!([ip])
                };
            }
        }
    }
}

/// `ValidateServiceClusterIPsRelatedFields`.
pub(super) fn validate_cluster_ips(spec: &ServiceSpec, errs: &mut FieldErrors) {
    if spec.type_.as_deref() == Some("ExternalName") {
        return;
    }
    let ip = spec.cluster_ip.as_deref().unwrap_or("");
    let ips = spec.cluster_ips.as_deref().unwrap_or(&[]);
    if !ip.is_empty() {
        if ips.is_empty() {
            errs.required("spec.clusterIPs", "");
        } else if ips[0] != ip {
            errs.invalid(
                "spec.clusterIPs",
                go_strings(ips),
                "first value must match `clusterIP`",
            );
        }
    } else if !ips.is_empty() {
        errs.invalid(
            "spec.clusterIPs",
            go_strings(ips),
            "must be empty when `clusterIP` is not specified",
        );
    }
    let mut seen = HashSet::new();
    for (i, f) in spec.ip_families.iter().flatten().enumerate() {
        let p = index("spec.ipFamilies", i);
        if f != "IPv4" && f != "IPv6" {
            errs.not_supported(&p, f, &["IPv4", "IPv6"]);
        }
        if !seen.insert(f) {
            errs.duplicate(&p, f);
        }
    }
    if let Some(pol) = &spec.ip_family_policy
        && !["PreferDualStack", "RequireDualStack", "SingleStack"].contains(&pol.as_str())
    {
        errs.not_supported(
            "spec.ipFamilyPolicy",
            pol,
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
        );
    }
    let mut invalid = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                invalid = true;
                errs.invalid(
                    "spec.clusterIPs",
                    go_strings(ips),
                    "'None' must be the first and only value",
                );
            }
            continue;
        }
        if ip.parse::<IpAddr>().is_err() {
            invalid = true;
            errs.invalid(
                index("spec.clusterIPs", i),
                ip,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            );
        }
    }
    if ips.len() > 2 {
        errs.invalid(
            "spec.clusterIPs",
            go_strings(ips),
            "may only hold up to 2 values",
        );
    }
    if invalid {
        return;
    }
    if ips.len() > 1 {
        let v6 = ips.iter().filter(|ip| ip.contains(':')).count();
        if v6 != 1 {
            errs.invalid(
                "spec.clusterIPs",
                go_strings(ips),
                "may specify no more than one IP for each IP family",
            );
        }
    }
    if !is_headless(spec) {
        for (i, (ip, fam)) in ips
            .iter()
            .zip(spec.ip_families.iter().flatten())
            .enumerate()
        {
            let v6 = ip.contains(':');
            if fam == "IPv4" && v6 {
                errs.invalid(
                    index("spec.clusterIPs", i),
                    ip,
                    &format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                );
            }
            if fam == "IPv6" && !v6 {
                errs.invalid(
                    index("spec.clusterIPs", i),
                    ip,
                    &format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                );
            }
        }
    }
}

/// `validateUpgradeDowngradeClusterIPs`: an allocated ClusterIP is for the
/// Service's life.
pub(super) fn validate_cluster_ips_update(
    old: &ServiceSpec,
    new: &ServiceSpec,
    errs: &mut FieldErrors,
) {
    if old.type_.as_deref() == Some("ExternalName") || new.type_.as_deref() == Some("ExternalName")
    {
        return;
    }
    if is_headless(old) && is_headless(new) {
        return;
    }
    let (o, n) = (
        old.cluster_ips.as_deref().unwrap_or(&[]),
        new.cluster_ips.as_deref().unwrap_or(&[]),
    );
    if o.len() == n.len() {
        for (i, ip) in o.iter().enumerate() {
            if ip != &n[i] {
                errs.invalid(
                    index("spec.clusterIPs", i),
                    go_strings(n),
                    "may not change once set",
                );
            }
        }
    } else if n.is_empty() {
        errs.invalid(
            "spec.clusterIPs[0]",
            go_strings(n),
            "primary clusterIP can not be unset",
        );
    } else if !o.is_empty() && n[0] != o[0] {
        errs.invalid(
            "spec.clusterIPs[0]",
            go_strings(n),
            "may not change once set",
        );
    }
}

/// The lab's service CIDR is IPv4 only, as a single-stack cluster's is
/// (`initIPFamilyFields`).
pub(super) fn single_stack_only(spec: &ServiceSpec, errs: &mut FieldErrors) {
    if spec.type_.as_deref() == Some("ExternalName") {
        return;
    }
    for (i, f) in spec.ip_families.iter().flatten().enumerate() {
        if f == "IPv6" {
            errs.invalid(
                index("spec.ipFamilies", i),
                f,
                "not configured on this cluster",
            );
        }
    }
    if spec.ip_family_policy.as_deref() == Some("RequireDualStack") {
        errs.invalid(
            "spec.ipFamilyPolicy",
            "RequireDualStack",
            "this cluster is not configured for dual-stack services",
        );
    }
}

/// Every ClusterIP and NodePort held by another Service.
fn in_use(view: &StoreView<'_>, namespace: &str, name: &str) -> (HashSet<Ipv4Addr>, HashSet<i64>) {
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    for s in view.list(resources::services(), None) {
        if s["metadata"]["namespace"] == namespace && s["metadata"]["name"] == name {
            continue;
        }
        for ip in s["spec"]["clusterIPs"].as_array().into_iter().flatten() {
            if let Some(ip) = ip.as_str().and_then(|s| s.parse().ok()) {
                ips.insert(ip);
            }
        }
        for p in s["spec"]["ports"].as_array().into_iter().flatten() {
            if let Some(n) = p["nodePort"].as_i64() {
                ports.insert(n);
            }
        }
    }
    (ips, ports)
}

/// ClusterIP (and NodePort) allocation, after validation as in the real
/// registry: a requested address must be in range and free.
pub(super) fn allocate(
    cidr: &ServiceCidr,
    resource: &Resource,
    new: &mut Value,
    svc: &Service,
    view: &StoreView<'_>,
) -> Result<(), ApiError> {
    let spec = spec_of(svc);
    let kind = spec.type_.as_deref().unwrap_or("");
    if kind == "ExternalName" {
        return Ok(());
    }
    let ns = svc.metadata.namespace.as_deref().unwrap_or("");
    let name = svc.metadata.name.as_deref().unwrap_or("");
    let (ips, node_ports) = in_use(view, ns, name);
    let invalid =
        |cause: Cause| ApiError::invalid(resource.kind, resource.group, name, vec![cause]);
    match spec.cluster_ip.as_deref().unwrap_or("") {
        "None" => {}
        "" => {
            let ip = cidr.allocate(&ips).ok_or_else(|| {
                ApiError::internal(format!(
                    "failed to allocate a serviceIP: range is full ({cidr})"
                ))
            })?;
            new["spec"]["clusterIP"] = json!(ip.to_string());
            new["spec"]["clusterIPs"] = json!([ip.to_string()]);
        }
        requested => {
            let why = match requested.parse::<Ipv4Addr>() {
                Ok(ip) => refusal(cidr, ip, &ips),
                Err(_) => Some(format!(
                    "the provided IP ({requested}) is not in the valid range. The range of valid IPs is {cidr}"
                )),
            };
            if let Some(why) = why {
                let mut errs = FieldErrors::new();
                errs.invalid(
                    "spec.clusterIPs",
                    go_strings(spec.cluster_ips.as_deref().unwrap_or(&[])),
                    &format!("failed to allocate IP {requested}: {why}"),
                );
                return Err(invalid(errs.into_causes().remove(0)));
            }
        }
    }
    if kind == "NodePort" || kind == "LoadBalancer" {
        allocate_node_ports(new, &node_ports).map_err(invalid)?;
    }
    Ok(())
}

/// NodePorts from 30000-32767 (`pkg/registry/core/service/portallocator`).
fn allocate_node_ports(new: &mut Value, taken: &HashSet<i64>) -> Result<(), Cause> {
    let mut taken = taken.clone();
    let Some(ports) = new["spec"]["ports"].as_array_mut() else {
        return Ok(());
    };
    let mut wanted: BTreeMap<usize, i64> = BTreeMap::new();
    for (i, p) in ports.iter().enumerate() {
        if let Some(n) = p["nodePort"].as_i64().filter(|n| *n != 0) {
            wanted.insert(i, n);
        }
    }
    for (i, n) in &wanted {
        let why = if !NODE_PORTS.contains(n) {
            Some(format!(
                "provided port is not in the valid range. The range of valid ports is {}-{}",
                NODE_PORTS.start(),
                NODE_PORTS.end()
            ))
        } else if !taken.insert(*n) {
            Some("provided port is already allocated".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            let mut errs = FieldErrors::new();
            errs.invalid(format!("spec.ports[{i}].nodePort"), *n, &why);
            return Err(errs.into_causes().remove(0));
        }
    }
    for (i, p) in ports.iter_mut().enumerate() {
        if wanted.contains_key(&i) || !p.is_object() {
            continue;
        }
        let free = NODE_PORTS.clone().find(|n| !taken.contains(n));
        let Some(n) = free else {
            let mut errs = FieldErrors::new();
            errs.invalid(format!("spec.ports[{i}].nodePort"), 0, "range is full");
            return Err(errs.into_causes().remove(0));
        };
        taken.insert(n);
        p["nodePort"] = json!(n);
    }
    Ok(())
}
