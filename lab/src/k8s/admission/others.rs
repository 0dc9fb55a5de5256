//! Admission of the smaller kinds:
//!
//! - Namespace (`ValidateNamespace`): a DNS-1123 label name; a new one gets
//!   the `kubernetes` finalizer and phase Active.
//! - ConfigMap (`ValidateConfigMap`, `ValidateConfigMapUpdate`): keys
//!   `[-._a-zA-Z0-9]+`, not shared by `data` and `binaryData`, 1 MiB in all,
//!   nothing changes once `immutable`.
//! - PersistentVolumeClaim (`ValidatePersistentVolumeClaim`,
//!   `ValidatePersistentVolumeClaimUpdate`): access modes, a positive
//!   storage request; the spec is fixed after create but for a `volumeName`
//!   set once (binding) and, when bound, a larger request.
//! - PodDisruptionBudget (`pkg/apis/policy/validation`): not both of
//!   minAvailable and maxUnavailable, each a non-negative int or a percent
//!   up to 100%, a valid selector.
//! - Lease (`pkg/apis/coordination/validation`): positive duration,
//!   non-negative transitions.
//! - Event (`pkg/apis/core/validation/events.go` `legacyValidateEvent`): the
//!   involved object's namespace matches the Event's.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, PersistentVolumeClaim};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::field::{Bad, FieldErrors, go_quote, key};
use super::names::{NameRule, is_config_map_key, is_dns1123_subdomain, is_valid_percent};
use super::{bad_quantity, decode, defaults, meta, quantity, verdict};
use crate::k8s::error::ApiError;
use crate::k8s::resources::Resource;

/// `core.MaxSecretSize`, the ConfigMap limit too.
const MAX_CONFIG_MAP_SIZE: usize = 1024 * 1024;

pub fn namespace(
    resource: &'static Resource,
    new: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    decode::<Namespace>(resource, new)?;
    if old.is_none() {
        defaults::namespace_create(new);
    }
    let ns: Namespace = decode(resource, new)?;
    let mut errs = FieldErrors::new();
    meta::validate_object_meta(&ns.metadata, false, NameRule::Label, &mut errs);
    if let Some(old) = old {
        let old: Namespace = decode(resource, old)?;
        meta::validate_object_meta_update(&ns.metadata, &old.metadata, &mut errs);
    }
    verdict(resource, new, errs)
}

pub fn configmap(
    resource: &'static Resource,
    new: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let cm: ConfigMap = decode(resource, new)?;
    let mut errs = FieldErrors::new();
    meta::validate_object_meta(&cm.metadata, true, NameRule::Subdomain, &mut errs);
    let mut total = 0;
    for (k, v) in cm.data.iter().flatten() {
        errs.invalid_each(&key("data", k), k, is_config_map_key(k));
        total += v.len();
    }
    for (k, v) in cm.binary_data.iter().flatten() {
        errs.invalid_each(&key("binaryData", k), k, is_config_map_key(k));
        if cm.data.as_ref().is_some_and(|d| d.contains_key(k)) {
            errs.invalid(key("binaryData", k), k, "duplicate of key present in data");
        }
        total += v.0.len();
    }
    if total > MAX_CONFIG_MAP_SIZE {
        errs.too_long("", MAX_CONFIG_MAP_SIZE);
    }
    if let Some(old) = old {
        let old: ConfigMap = decode(resource, old)?;
        meta::validate_object_meta_update(&cm.metadata, &old.metadata, &mut errs);
        if old.immutable == Some(true) {
            if cm.immutable != Some(true) {
                errs.forbidden("immutable", "field is immutable when `immutable` is set");
            }
            if cm.data != old.data {
                errs.forbidden("data", "field is immutable when `immutable` is set");
            }
            if cm.binary_data != old.binary_data {
                errs.forbidden("binaryData", "field is immutable when `immutable` is set");
            }
        }
    }
    verdict(resource, new, errs)
}

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

pub fn pvc(
    resource: &'static Resource,
    new: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    decode::<PersistentVolumeClaim>(resource, new)?;
    defaults::pvc(new, old.is_none());
    let claim: PersistentVolumeClaim = decode(resource, new)?;
    let spec = claim.spec.clone().unwrap_or_default();
    let mut errs = FieldErrors::new();
    meta::validate_object_meta(&claim.metadata, true, NameRule::Subdomain, &mut errs);
    let modes = spec.access_modes.clone().unwrap_or_default();
    if modes.is_empty() {
        errs.required("spec.accessModes", "at least 1 access mode is required");
    }
    if let Some(sel) = &spec.selector {
        meta::validate_label_selector(sel, "spec.selector", &mut errs);
    }
    let (mut rwop, mut other) = (false, false);
    for m in &modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            errs.not_supported("spec.accessModes", m, ACCESS_MODES);
        } else if m == "ReadWriteOncePod" {
            rwop = true;
        } else {
            other = true;
        }
    }
    if rwop && other {
        errs.forbidden(
            "spec.accessModes",
            "may not use ReadWriteOncePod with other access modes",
        );
    }
    let storage = |c: &PersistentVolumeClaim| {
        c.spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .map(|q| q.0.clone())
    };
    let new_size = match storage(&claim) {
        None => {
            errs.required("spec.resources[storage]", "");
            None
        }
        Some(q) => {
            let v = quantity::parse(&q).map_err(|why| bad_quantity(resource, why))?;
            if v <= 0.0 {
                errs.invalid("spec.resources[storage]", &q, "must be greater than zero");
            }
            Some(v)
        }
    };
    if let Some(class) = spec.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
        errs.invalid_each("spec.storageClassName", class, is_dns1123_subdomain(class));
    }
    if let Some(mode) = spec.volume_mode.as_deref()
        && mode != "Block"
        && mode != "Filesystem"
    {
        errs.not_supported("spec.volumeMode", mode, &["Block", "Filesystem"]);
    }
    if let Some(old_v) = old {
        let old: PersistentVolumeClaim = decode(resource, old_v)?;
        meta::validate_object_meta_update(&claim.metadata, &old.metadata, &mut errs);
        let old_spec = old.spec.clone().unwrap_or_default();
        let (mut n, mut o) = (spec.clone(), old_spec.clone());
        if o.volume_name.as_deref().unwrap_or("").is_empty() {
            o.volume_name = n.volume_name.clone();
        }
        let bound = claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        if bound
            && let (Some(nr), Some(or)) = (n.resources.as_mut(), o.resources.as_ref())
            && let (Some(reqs), Some(old_reqs)) = (nr.requests.as_mut(), or.requests.as_ref())
        {
            match old_reqs.get("storage") {
                Some(q) => reqs.insert("storage".into(), q.clone()),
                None => reqs.remove("storage"),
            };
        }
        if n != o {
            errs.forbidden(
                "spec",
                "spec is immutable after create except resources.requests and volumeAttributesClassName for bound claims",
            );
        }
        let old_size = storage(&old).and_then(|q| quantity::parse(&q).ok());
        if let (Some(new), Some(old)) = (new_size, old_size)
            && new < old
        {
            errs.forbidden(
                "spec.resources.requests.storage",
                "field can not be less than previous value",
            );
        }
        if spec.volume_mode != old_spec.volume_mode {
            errs.invalid(
                "volumeMode",
                spec.volume_mode.as_deref().unwrap_or(""),
                "field is immutable",
            );
        }
    }
    verdict(resource, new, errs)
}

pub fn pdb(
    resource: &'static Resource,
    new: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let pdb: PodDisruptionBudget = decode(resource, new)?;
    let spec = pdb.spec.clone().unwrap_or_default();
    let mut errs = FieldErrors::new();
    meta::validate_object_meta(&pdb.metadata, true, NameRule::Subdomain, &mut errs);
    if spec.min_available.is_some() && spec.max_unavailable.is_some() {
        errs.invalid(
            "spec",
            Bad::Go("policy.PodDisruptionBudgetSpec{...}".into()),
            "minAvailable and maxUnavailable cannot be both set",
        );
    }
    for (field, v) in [
        ("minAvailable", &spec.min_available),
        ("maxUnavailable", &spec.max_unavailable),
    ] {
        let Some(v) = v else { continue };
        let path = format!("spec.{field}");
        match v {
            IntOrString::Int(n) if *n < 0 => {
                errs.invalid(&path, *n, "must be greater than or equal to 0")
            }
            IntOrString::Int(_) => {}
            IntOrString::String(s) => {
                let go = Bad::Go(format!(
                    "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
                    go_quote(s)
                ));
                for m in is_valid_percent(s) {
                    errs.invalid(&path, go.clone(), &m);
                }
                if let Some(pct) = s.strip_suffix('%').and_then(|p| p.parse::<u64>().ok())
                    && pct > 100
                {
                    errs.invalid(&path, s, "must not be greater than 100%");
                }
            }
        }
    }
    if let Some(sel) = &spec.selector {
        meta::validate_label_selector(sel, "spec.selector", &mut errs);
    }
    if let Some(p) = spec.unhealthy_pod_eviction_policy.as_deref()
        && p != "AlwaysAllow"
        && p != "IfHealthyBudget"
    {
        errs.not_supported(
            "spec.unhealthyPodEvictionPolicy",
            p,
            &["AlwaysAllow", "IfHealthyBudget"],
        );
    }
    if let Some(old) = old {
        let old: PodDisruptionBudget = decode(resource, old)?;
        meta::validate_object_meta_update(&pdb.metadata, &old.metadata, &mut errs);
    }
    verdict(resource, new, errs)
}

pub fn lease(
    resource: &'static Resource,
    new: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let lease: Lease = decode(resource, new)?;
    let spec = lease.spec.clone().unwrap_or_default();
    let mut errs = FieldErrors::new();
    meta::validate_object_meta(&lease.metadata, true, NameRule::Subdomain, &mut errs);
    if let Some(d) = spec.lease_duration_seconds.filter(|d| *d <= 0) {
        errs.invalid("spec.leaseDurationSeconds", d, "must be greater than 0");
    }
    if let Some(t) = spec.lease_transitions.filter(|t| *t < 0) {
        errs.invalid(
            "spec.leaseTransitions",
            t,
            "must be greater than or equal to 0",
        );
    }
    if spec
        .preferred_holder
        .as_deref()
        .is_some_and(|h| !h.is_empty())
        && spec.strategy.as_deref().unwrap_or("").is_empty()
    {
        errs.forbidden(
            "spec.preferredHolder",
            "may only be specified if `strategy` is defined",
        );
    }
    if let Some(old) = old {
        let old: Lease = decode(resource, old)?;
        meta::validate_object_meta_update(&lease.metadata, &old.metadata, &mut errs);
    }
    verdict(resource, new, errs)
}

pub fn event(
    resource: &'static Resource,
    new: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let ev: Event = decode(resource, new)?;
    let mut errs = FieldErrors::new();
    meta::validate_object_meta(&ev.metadata, true, NameRule::Subdomain, &mut errs);
    let ns = ev.metadata.namespace.as_deref().unwrap_or("");
    let involved = ev.involved_object.namespace.as_deref().unwrap_or("");
    let matches = if ev.event_time.is_none() {
        if involved.is_empty() {
            ns.is_empty() || ns == "default"
        } else {
            ns == involved
        }
    } else {
        !involved.is_empty() || ns == "default" || ns == "kube-system"
    };
    if !matches {
        errs.invalid(
            "involvedObject.namespace",
            involved,
            "does not match event.namespace",
        );
    }
    if ev.event_time.is_some() {
        for (field, v) in [
            ("reportingComponent", &ev.reporting_component),
            ("reportingInstance", &ev.reporting_instance),
            ("action", &ev.action),
            ("reason", &ev.reason),
        ] {
            if v.as_deref().unwrap_or("").is_empty() {
                errs.required(field, "");
            }
        }
    }
    if let Some(old) = old {
        let old: Event = decode(resource, old)?;
        meta::validate_object_meta_update(&ev.metadata, &old.metadata, &mut errs);
    }
    verdict(resource, new, errs)
}
