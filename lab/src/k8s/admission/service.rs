//! Service admission, in the real registry's order: keep the allocated
//! values an update left out, normalize `clusterIPs`, default
//! (`SetDefaults_Service`), validate (`pkg/apis/core/validation/
//! validation.go`: `ValidateService`, `validateServicePort`,
//! `ValidateServiceUpdate`), then allocate a ClusterIP (and NodePorts).
//! The address fields and the allocation live in `serviceips`.

use std::collections::HashSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::clusterip::ServiceCidr;
use super::field::{Bad, FieldErrors, go_quote, index};
use super::names::{
    NameRule, is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_port_name,
    is_valid_port_num,
};
use super::serviceips::{
    allocate, normalize_cluster_ips, patch_allocated_values, single_stack_only,
    validate_cluster_ips, validate_cluster_ips_update,
};
use super::{decode, defaults, meta, verdict};
use crate::k8s::error::ApiError;
use crate::k8s::resources::Resource;
use crate::k8s::store::StoreView;

pub(super) const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

pub fn admit(
    cidr: &ServiceCidr,
    resource: &'static Resource,
    new: &mut Value,
    old: Option<&Value>,
    view: &StoreView<'_>,
) -> Result<(), ApiError> {
    decode::<Service>(resource, new)?;
    if let Some(old) = old {
        patch_allocated_values(new, old);
    }
    normalize_cluster_ips(new, old);
    defaults::service(new);
    if new["spec"]["type"] != "ExternalName" && new["spec"].is_object() {
        let spec = &mut new["spec"];
        if spec["ipFamilyPolicy"].is_null() {
            spec["ipFamilyPolicy"] = json!("SingleStack");
        }
        if spec["ipFamilies"].is_null() {
            spec["ipFamilies"] = json!(["IPv4"]);
        }
    }
    let svc: Service = decode(resource, new)?;
    let mut errs = FieldErrors::new();
    validate(&svc, &mut errs);
    if let Some(old) = old {
        let old: Service = decode(resource, old)?;
        meta::validate_object_meta_update(&svc.metadata, &old.metadata, &mut errs);
        validate_cluster_ips_update(&spec_of(&old), &spec_of(&svc), &mut errs);
    }
    single_stack_only(&spec_of(&svc), &mut errs);
    verdict(resource, new, errs)?;
    allocate(cidr, resource, new, &svc, view)
}

pub(super) fn spec_of(svc: &Service) -> ServiceSpec {
    svc.spec.clone().unwrap_or_default()
}

pub(super) fn is_headless(spec: &ServiceSpec) -> bool {
    matches!(spec.cluster_ips.as_deref(), Some([only]) if only == "None")
}

/// `ValidateService`.
fn validate(svc: &Service, errs: &mut FieldErrors) {
    meta::validate_object_meta(&svc.metadata, true, NameRule::Dns1035, errs);
    let spec = spec_of(svc);
    let ports = spec.ports.as_deref().unwrap_or(&[]);
    let kind = spec.type_.as_deref().unwrap_or("");
    let headless = is_headless(&spec);
    if ports.is_empty() && !headless && kind != "ExternalName" {
        errs.required("spec.ports", "");
    }
    match kind {
        "LoadBalancer" | "NodePort" if headless => errs.invalid(
            "spec.clusterIPs[0]",
            "None",
            &format!("may not be set to 'None' for {kind} services"),
        ),
        "ExternalName" => {
            if spec.cluster_ips.as_ref().is_some_and(|v| !v.is_empty()) {
                errs.forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                );
            }
            if spec.ip_families.as_ref().is_some_and(|v| !v.is_empty()) {
                errs.forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                );
            }
            if spec.ip_family_policy.is_some() {
                errs.forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                );
            }
            let cname = spec.external_name.as_deref().unwrap_or("");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.required("spec.externalName", "");
            } else {
                errs.invalid_each("spec.externalName", cname, is_dns1123_subdomain(cname));
            }
        }
        _ => {}
    }
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        validate_port(
            p,
            ports.len() > 1,
            &mut names,
            &index("spec.ports", i),
            errs,
        );
    }
    if let Some(sel) = &spec.selector {
        meta::validate_labels(sel, "spec.selector", errs);
    }
    match spec.session_affinity.as_deref().unwrap_or("") {
        "" => errs.required("spec.sessionAffinity", ""),
        "ClientIP" => {
            let timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds);
            match timeout {
                None => errs.required(
                    "spec.sessionAffinityConfig",
                    "when session affinity type is ClientIP",
                ),
                Some(t) if !(1..=86400).contains(&t) => errs.invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    t,
                    "must be greater than 0 and less than 86400",
                ),
                Some(_) => {}
            }
        }
        "None" => {
            if spec.session_affinity_config.is_some() {
                errs.forbidden(
                    "spec.sessionAffinityConfig",
                    "must not be set when session affinity is None",
                );
            }
        }
        other => errs.not_supported("spec.sessionAffinity", other, &["ClientIP", "None"]),
    }
    validate_cluster_ips(&spec, errs);
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        let p = index("spec.externalIPs", i);
        match ip.parse::<IpAddr>() {
            Err(_) => errs.invalid(
                &p,
                ip,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ),
            Ok(addr) => super::endpointslice::non_special_ip(addr, ip, &p, errs),
        }
    }
    match kind {
        "" => errs.required("spec.type", ""),
        "ClusterIP" | "ExternalName" | "LoadBalancer" | "NodePort" => {}
        other => errs.not_supported(
            "spec.type",
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ),
    }
    let mut node_ports = HashSet::new();
    let mut seen = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let path = index("spec.ports", i);
        let node_port = p.node_port.unwrap_or(0);
        if kind == "ClusterIP" && node_port != 0 {
            errs.forbidden(
                format!("{path}.nodePort"),
                "may not be used when `type` is 'ClusterIP'",
            );
        }
        let protocol = p.protocol.clone().unwrap_or_default();
        if node_port != 0 && !node_ports.insert((protocol.clone(), node_port)) {
            errs.duplicate(format!("{path}.nodePort"), node_port);
        }
        if !seen.insert((protocol.clone(), p.port)) {
            errs.duplicate(
                &path,
                Bad::Go(format!(
                    "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                    go_quote(&protocol),
                    p.port
                )),
            );
        }
    }
    let externally = kind == "LoadBalancer"
        || kind == "NodePort"
        || (kind == "ClusterIP" && spec.external_ips.as_ref().is_some_and(|v| !v.is_empty()));
    match (externally, spec.external_traffic_policy.as_deref()) {
        (false, Some(p)) if !p.is_empty() => errs.invalid(
            "spec.externalTrafficPolicy",
            p,
            "may only be set for externally-accessible services",
        ),
        (true, None) | (true, Some("")) => errs.required("spec.externalTrafficPolicy", ""),
        (true, Some(p)) if p != "Cluster" && p != "Local" => {
            errs.not_supported("spec.externalTrafficPolicy", p, &["Cluster", "Local"])
        }
        _ => {}
    }
    match spec.internal_traffic_policy.as_deref() {
        None if matches!(kind, "ClusterIP" | "NodePort" | "LoadBalancer") => {
            errs.required("spec.internalTrafficPolicy", "")
        }
        Some(p) if p != "Cluster" && p != "Local" => {
            errs.not_supported("spec.internalTrafficPolicy", p, &["Cluster", "Local"])
        }
        _ => {}
    }
}

/// `validateServicePort`: names are DNS-1123 labels (required and unique
/// when there is more than one port), ports 1..65535, a known protocol, a
/// valid target port (number, or IANA_SVC_NAME of a container port).
fn validate_port(
    p: &ServicePort,
    require_name: bool,
    names: &mut HashSet<String>,
    path: &str,
    errs: &mut FieldErrors,
) {
    let name = p.name.as_deref().unwrap_or("");
    if require_name && name.is_empty() {
        errs.required(format!("{path}.name"), "");
    } else if !name.is_empty() {
        errs.invalid_each(&format!("{path}.name"), name, is_dns1123_label(name));
        if !names.insert(name.to_string()) {
            errs.duplicate(format!("{path}.name"), name);
        }
    }
    for m in is_valid_port_num(i64::from(p.port)) {
        errs.invalid(format!("{path}.port"), p.port, &m);
    }
    match p.protocol.as_deref().unwrap_or("") {
        "" => errs.required(format!("{path}.protocol"), ""),
        pr if !PROTOCOLS.contains(&pr) => {
            errs.not_supported(format!("{path}.protocol"), pr, PROTOCOLS)
        }
        _ => {}
    }
    validate_port_num_or_name(p.target_port.as_ref(), &format!("{path}.targetPort"), errs);
    if let Some(ap) = &p.app_protocol {
        errs.invalid_each(&format!("{path}.appProtocol"), ap, is_qualified_name(ap));
    }
}

/// `ValidatePortNumOrName`.
pub(super) fn validate_port_num_or_name(
    port: Option<&IntOrString>,
    path: &str,
    errs: &mut FieldErrors,
) {
    match port {
        Some(IntOrString::String(s)) => errs.invalid_each(path, s, is_valid_port_name(s)),
        Some(IntOrString::Int(n)) => {
            for m in is_valid_port_num(i64::from(*n)) {
                errs.invalid(path, *n, &m);
            }
        }
        None => {
            for m in is_valid_port_num(0) {
                errs.invalid(path, 0, &m);
            }
        }
    }
}
