//! EndpointSlice admission (`pkg/apis/discovery/validation/validation.go`:
//! `ValidateEndpointSlice`, `validateEndpoints`, `validatePorts`,
//! `validateAddressType`, `ValidateEndpointSliceUpdate`; addresses through
//! `pkg/apis/core/validation/validation.go` `ValidateNonSpecialIP`).
//!
//! One rule goes beyond the API server's code: an address inside the service
//! CIDR is refused. The Kubernetes documentation says endpoint IPs "cannot be
//! the cluster IPs of other Kubernetes Services, because kube-proxy doesn't
//! support virtual IPs as a destination" (concepts/services-networking/
//! service, "Services without selectors"); a real cluster stores such a
//! slice and then silently routes nowhere, and in the lab the proxy would
//! DNAT into a loop. Refusing it with a 422 makes the mistake visible.

use std::net::IpAddr;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;

use super::clusterip::ServiceCidr;
use super::field::{FieldErrors, index};
use super::names::{NameRule, is_dns1123_label, is_dns1123_subdomain, is_qualified_name};
use super::service::PROTOCOLS;
use super::{decode, defaults, meta, verdict};
use crate::k8s::error::ApiError;
use crate::k8s::resources::Resource;

const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 100;
const MAX_TOPOLOGY_LABELS: usize = 16;
const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];

pub fn admit(
    cidr: &ServiceCidr,
    resource: &'static Resource,
    new: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    decode::<EndpointSlice>(resource, new)?;
    defaults::endpointslice(new);
    let slice: EndpointSlice = decode(resource, new)?;
    let mut errs = FieldErrors::new();
    validate(&slice, cidr, old.is_some(), &mut errs);
    if let Some(old) = old {
        let old: EndpointSlice = decode(resource, old)?;
        meta::validate_object_meta_update(&slice.metadata, &old.metadata, &mut errs);
        if slice.address_type != old.address_type {
            errs.invalid("addressType", &slice.address_type, "field is immutable");
        }
    }
    verdict(resource, new, errs)
}

/// `ValidateEndpointSlice` (an update also accepts the deprecated `IP`).
fn validate(slice: &EndpointSlice, cidr: &ServiceCidr, update: bool, errs: &mut FieldErrors) {
    meta::validate_object_meta(&slice.metadata, true, NameRule::Subdomain, errs);
    let kind = slice.address_type.as_str();
    match kind {
        "" => errs.required("addressType", ""),
        "IP" if update => {}
        k if !ADDRESS_TYPES.contains(&k) => errs.not_supported("addressType", k, ADDRESS_TYPES),
        _ => {}
    }
    if slice.endpoints.len() > MAX_ENDPOINTS {
        errs.too_many("endpoints", slice.endpoints.len(), MAX_ENDPOINTS);
    } else {
        for (i, ep) in slice.endpoints.iter().enumerate() {
            let path = index("endpoints", i);
            let addresses_path = format!("{path}.addresses");
            if ep.addresses.is_empty() {
                errs.required(&addresses_path, "must contain at least 1 address");
            } else if ep.addresses.len() > MAX_ADDRESSES {
                errs.too_many(&addresses_path, ep.addresses.len(), MAX_ADDRESSES);
            }
            for (j, addr) in ep.addresses.iter().enumerate() {
                validate_address(kind, addr, &index(&addresses_path, j), cidr, errs);
            }
            if let Some(topology) = &ep.deprecated_topology {
                let p = format!("{path}.deprecatedTopology");
                if topology.len() > MAX_TOPOLOGY_LABELS {
                    errs.too_many(&p, topology.len(), MAX_TOPOLOGY_LABELS);
                }
                meta::validate_labels(topology, &p, errs);
            }
            if let Some(h) = &ep.hostname {
                errs.invalid_each(&format!("{path}.hostname"), h, is_dns1123_label(h));
            }
        }
    }
    let ports = slice.ports.as_deref().unwrap_or(&[]);
    if ports.len() > MAX_PORTS {
        errs.too_many("ports", ports.len(), MAX_PORTS);
        return;
    }
    let mut names = std::collections::HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let path = index("ports", i);
        let name = p.name.as_deref().unwrap_or("");
        if !name.is_empty() {
            errs.invalid_each(&format!("{path}.name"), name, is_dns1123_label(name));
        }
        if !names.insert(name) {
            errs.duplicate(format!("{path}.name"), name);
        }
        match p.protocol.as_deref() {
            None => errs.required(format!("{path}.protocol"), ""),
            Some(pr) if !PROTOCOLS.contains(&pr) => {
                errs.not_supported(format!("{path}.protocol"), pr, PROTOCOLS)
            }
            Some(_) => {}
        }
        if let Some(ap) = &p.app_protocol {
            errs.invalid_each(&format!("{path}.appProtocol"), ap, is_qualified_name(ap));
        }
    }
}

/// One address of the slice's type; unknown types are not checked (as in
/// the real code).
fn validate_address(
    kind: &str,
    addr: &str,
    path: &str,
    cidr: &ServiceCidr,
    errs: &mut FieldErrors,
) {
    match kind {
        "IPv4" | "IPv6" => {
            let parsed = addr.parse::<IpAddr>().ok();
            let family_ok = matches!(
                (kind, parsed),
                ("IPv4", Some(IpAddr::V4(_))) | ("IPv6", Some(IpAddr::V6(_)))
            );
            if !family_ok {
                errs.invalid(path, addr, &format!("must be a valid {kind} address"));
            }
            match parsed {
                None => errs.invalid(path, addr, "must be a valid IP address"),
                Some(ip) => {
                    non_special_ip(ip, addr, path, errs);
                    if let IpAddr::V4(v4) = ip
                        && cidr.contains(v4)
                    {
                        errs.invalid(
                                path,
                                addr,
                                &format!(
                                    "may not be in the service CIDR ({cidr}): a Service's ClusterIP is not a valid endpoint (kube-proxy does not support virtual IPs as a destination)"
                                ),
                            );
                    }
                }
            }
        }
        "FQDN" => fqdn(addr, path, errs),
        _ => {}
    }
}

/// `ValidateNonSpecialIP`: no unspecified, loopback or link-local address.
pub(super) fn non_special_ip(ip: IpAddr, raw: &str, path: &str, errs: &mut FieldErrors) {
    let (unspecified, loopback, link_local, link_local_multicast) = match ip {
        IpAddr::V4(v4) => (
            v4.is_unspecified(),
            v4.is_loopback(),
            v4.is_link_local(),
            v4.octets()[..3] == [224, 0, 0],
        ),
        IpAddr::V6(v6) => (
            v6.is_unspecified(),
            v6.is_loopback(),
            v6.segments()[0] & 0xffc0 == 0xfe80,
            v6.segments()[0] & 0xff0f == 0xff02,
        ),
    };
    if unspecified {
        errs.invalid(path, raw, &format!("may not be unspecified ({raw})"));
    }
    if loopback {
        errs.invalid(
            path,
            raw,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        );
    }
    if link_local {
        errs.invalid(
            path,
            raw,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        );
    }
    if link_local_multicast {
        errs.invalid(
            path,
            raw,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        );
    }
}

/// `IsFullyQualifiedDomainName`.
fn fqdn(name: &str, path: &str, errs: &mut FieldErrors) {
    if name.is_empty() {
        errs.required(path, "");
        return;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let msgs = is_dns1123_subdomain(name);
    if !msgs.is_empty() {
        errs.invalid(path, name, &msgs.join(","));
        return;
    }
    if name.split('.').count() < 2 {
        errs.invalid(
            path,
            name,
            "should be a domain with at least two segments separated by dots",
        );
        return;
    }
    for label in name.split('.') {
        let msgs = is_dns1123_label(label);
        if !msgs.is_empty() {
            errs.invalid(path, label, &msgs.join(","));
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: &str, addr: &str) -> Vec<String> {
        let mut e = FieldErrors::new();
        let cidr = ServiceCidr::parse("10.96.0.0/16").expect("valid");
        validate_address(kind, addr, "endpoints[0].addresses[0]", &cidr, &mut e);
        e.into_causes().into_iter().map(|c| c.message).collect()
    }

    #[test]
    fn special_and_service_addresses_are_refused() {
        assert!(check("IPv4", "10.77.0.11").is_empty());
        assert!(check("IPv4", "10.244.0.5").is_empty());
        assert_eq!(
            check("IPv4", "127.0.0.1"),
            [
                "Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"
            ]
        );
        assert_eq!(
            check("IPv4", "169.254.1.1"),
            [
                "Invalid value: \"169.254.1.1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)"
            ]
        );
        assert_eq!(
            check("IPv4", "224.0.0.5"),
            [
                "Invalid value: \"224.0.0.5\": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"
            ]
        );
        assert_eq!(
            check("IPv4", "0.0.0.0"),
            ["Invalid value: \"0.0.0.0\": may not be unspecified (0.0.0.0)"]
        );
        assert!(
            check("IPv4", "10.96.0.10")[0]
                .contains("may not be in the service CIDR (10.96.0.0/16)")
        );
        assert_eq!(
            check("IPv4", "abc"),
            [
                "Invalid value: \"abc\": must be a valid IPv4 address",
                "Invalid value: \"abc\": must be a valid IP address"
            ]
        );
        assert_eq!(
            check("IPv4", "fd00::1"),
            ["Invalid value: \"fd00::1\": must be a valid IPv4 address"]
        );
        assert_eq!(check("IPv6", "::1").len(), 1);
        assert!(check("FQDN", "zk.example.com").is_empty());
        assert_eq!(check("FQDN", "zk").len(), 1);
    }
}
