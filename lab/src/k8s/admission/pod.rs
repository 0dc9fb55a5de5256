//! Pod admission: defaults (`pkg/apis/core/v1/defaults.go`), the create
//! strategy's initial status (`pkg/registry/core/pod/strategy.go`
//! `PrepareForCreate`: phase Pending and the QoS class,
//! `pkg/apis/core/helper/qos`), validation (`ValidatePodCreate`) and the
//! update rule (`ValidatePodUpdate`): a Pod's spec is fixed once created
//! but for container images, `activeDeadlineSeconds`, added tolerations and
//! a negative grace period raised to 1.
//!
//! The store drops a new object's `status` before admission runs (the
//! status is the system's), so the initial status is set here.

use k8s_openapi::api::core::v1::{Pod, PodSpec};
use serde_json::{Value, json};

use super::field::FieldErrors;
use super::names::NameRule;
use super::podspec::validate_pod_spec;
use super::{bad_quantity, decode, defaults, meta, quantity, verdict};
use crate::k8s::error::ApiError;
use crate::k8s::resources::Resource;

/// `updatablePodSpecFields`, as the message lists them.
const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

pub fn admit(
    resource: &'static Resource,
    new: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    decode::<Pod>(resource, new)?;
    defaults::pod(new);
    if old.is_none() {
        defaults::pod_create(new);
    }
    let pod: Pod = decode(resource, new)?;
    let spec = pod.spec.clone().unwrap_or_default();
    let mut errs = FieldErrors::new();
    meta::validate_object_meta(&pod.metadata, true, NameRule::Subdomain, &mut errs);
    validate_pod_spec(&spec, "spec", &mut errs).map_err(|why| bad_quantity(resource, why))?;
    match old {
        None => {
            if spec
                .ephemeral_containers
                .as_ref()
                .is_some_and(|e| !e.is_empty())
            {
                errs.forbidden("spec.ephemeralContainers", "cannot be set on create");
            }
            if spec.node_name.as_deref().is_some_and(|n| !n.is_empty())
                && spec
                    .scheduling_gates
                    .as_ref()
                    .is_some_and(|g| !g.is_empty())
            {
                errs.forbidden(
                    "spec.nodeName",
                    "cannot be set until all schedulingGates have been cleared",
                );
            }
        }
        Some(old) => {
            let old: Pod = decode(resource, old)?;
            meta::validate_object_meta_update(&pod.metadata, &old.metadata, &mut errs);
            validate_spec_update(&spec, &old.spec.unwrap_or_default(), &mut errs);
        }
    }
    verdict(resource, new, errs)?;
    if old.is_none() {
        new["status"] = json!({"phase": "Pending", "qosClass": qos_class(&spec)});
    }
    Ok(())
}

/// `ValidatePodUpdate`'s spec part.
fn validate_spec_update(new: &PodSpec, old: &PodSpec, errs: &mut FieldErrors) {
    for (list, n, o) in [
        ("containers", &new.containers, &old.containers),
        (
            "initContainers",
            new.init_containers.as_ref().unwrap_or(&Vec::new()),
            old.init_containers.as_ref().unwrap_or(&Vec::new()),
        ),
    ] {
        if n.len() != o.len() {
            errs.forbidden(
                format!("spec.{list}"),
                "pod updates may not add or remove containers",
            );
            return;
        }
        for (i, c) in n.iter().enumerate() {
            let image = c.image.as_deref().unwrap_or("");
            if image.is_empty() {
                errs.required(format!("spec.{list}[{i}].image"), "");
            }
            if image.trim() != image {
                errs.invalid(
                    format!("spec.{list}[{i}].image"),
                    image,
                    "must not have leading or trailing whitespace",
                );
            }
        }
    }
    match (new.active_deadline_seconds, old.active_deadline_seconds) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            errs.invalid(
                "spec.activeDeadlineSeconds",
                n,
                &super::names::inclusive_range_error(0, i64::from(i32::MAX)),
            );
            return;
        }
        (Some(n), Some(o)) if o < n => {
            errs.invalid(
                "spec.activeDeadlineSeconds",
                n,
                "must be less than or equal to previous value",
            );
            return;
        }
        (None, Some(_)) => errs.invalid(
            "spec.activeDeadlineSeconds",
            super::field::Bad::Go("nil".into()),
            "must not update from a positive integer to nil value",
        ),
        _ => {}
    }
    let new_tolerations = new.tolerations.clone().unwrap_or_default();
    for t in old.tolerations.iter().flatten() {
        let kept = new_tolerations.iter().any(|n| {
            let mut t = t.clone();
            t.toleration_seconds = n.toleration_seconds;
            &t == n
        });
        if !kept {
            errs.forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            );
        }
    }
    // Munge what may change to the old values, then any difference left is
    // a change of something fixed.
    let mut munged = new.clone();
    for (m, o) in munged.containers.iter_mut().zip(&old.containers) {
        m.image = o.image.clone();
    }
    if let (Some(m), Some(o)) = (
        munged.init_containers.as_mut(),
        old.init_containers.as_ref(),
    ) {
        for (m, o) in m.iter_mut().zip(o) {
            m.image = o.image.clone();
        }
    }
    munged.active_deadline_seconds = old.active_deadline_seconds;
    munged.tolerations = old.tolerations.clone();
    munged.scheduling_gates = old.scheduling_gates.clone();
    // Binding: the lab's scheduler (the kubelet) sets `spec.nodeName` with a
    // plain write, which the real API allows only through `pods/binding`;
    // the admission hook does not see subresources, so setting an empty
    // nodeName is taken as that binding.
    if old.node_name.as_deref().unwrap_or("").is_empty() {
        munged.node_name = old.node_name.clone();
    }
    if old.termination_grace_period_seconds.is_some_and(|g| g < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old.termination_grace_period_seconds;
    }
    if &munged != old {
        errs.forbidden(
            "spec",
            &format!(
                "pod updates may not change fields other than {UPDATABLE}\n{}",
                spec_diff(old, &munged)
            ),
        );
    }
}

/// The changed top-level fields of a PodSpec, in the spirit of the real
/// message's `cmp.Diff` (which the lab does not reproduce byte for byte).
fn spec_diff(old: &PodSpec, new: &PodSpec) -> String {
    let (o, n) = (
        serde_json::to_value(old).unwrap_or_default(),
        serde_json::to_value(new).unwrap_or_default(),
    );
    let mut keys: Vec<&String> = o
        .as_object()
        .into_iter()
        .flatten()
        .chain(n.as_object().into_iter().flatten())
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    keys.dedup();
    let mut out = String::from("  core.PodSpec{\n");
    for k in keys {
        if o.get(k) != n.get(k) {
            out.push_str(&format!(
                "- \t{k}: {},\n+ \t{k}: {},\n",
                o.get(k).unwrap_or(&Value::Null),
                n.get(k).unwrap_or(&Value::Null)
            ));
        }
    }
    out.push_str("  }\n");
    out
}

/// `qos.GetPodQOS`: BestEffort without any cpu/memory request or limit,
/// Guaranteed when every container limits both and requests equal limits,
/// Burstable otherwise.
pub fn qos_class(spec: &PodSpec) -> &'static str {
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let r = c.resources.clone().unwrap_or_default();
        let limits = r.limits.unwrap_or_default();
        let requests = r.requests.unwrap_or_default();
        for res in ["cpu", "memory"] {
            let l = limits
                .get(res)
                .and_then(|q| quantity::parse(&q.0).ok())
                .filter(|v| *v != 0.0);
            let q = requests
                .get(res)
                .and_then(|q| quantity::parse(&q.0).ok())
                .filter(|v| *v != 0.0);
            any |= l.is_some() || q.is_some();
            match (l, q) {
                (Some(l), Some(q)) if l == q => {}
                (Some(_), None) => {}
                _ => guaranteed = false,
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(resources: Value) -> PodSpec {
        serde_json::from_value(
            json!({"containers": [{"name": "zk", "image": "zookeeper", "resources": resources}]}),
        )
        .expect("pod spec")
    }

    #[test]
    fn qos_classes() {
        assert_eq!(qos_class(&spec(json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&spec(json!({"requests": {"cpu": "100m"}}))),
            "Burstable"
        );
        assert_eq!(
            qos_class(&spec(
                json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}})
            )),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&spec(
                json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}})
            )),
            "Burstable"
        );
    }
}
