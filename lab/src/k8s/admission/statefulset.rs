//! StatefulSet admission (`pkg/apis/apps/validation/validation.go`:
//! `ValidateStatefulSet`, `ValidateStatefulSetSpec`,
//! `ValidatePodTemplateSpecForStatefulSet`, `ValidateStatefulSetUpdate`)
//! after `pkg/apis/apps/v1/defaults.go` `SetDefaults_StatefulSet`.
//!
//! As in the real API, the pod template is checked only for its labels
//! (against the selector), annotations, restart policy and deadline; a bad
//! container shows when the controller creates the Pods. The name is a
//! DNS-1123 label: it becomes the Pods' `hostname`.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use serde_json::Value;

use super::field::{Bad, FieldErrors, go_string_map};
use super::names::NameRule;
use super::{decode, defaults, meta, verdict};
use crate::k8s::error::ApiError;
use crate::k8s::resources::Resource;

pub fn admit(
    resource: &'static Resource,
    new: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    decode::<StatefulSet>(resource, new)?;
    defaults::statefulset(new);
    let sts: StatefulSet = decode(resource, new)?;
    let spec = sts.spec.clone().unwrap_or_default();
    let selector_given = !new["spec"]["selector"].is_null();
    let mut errs = FieldErrors::new();
    match old {
        // A name is checked on create only: it cannot change, and objects
        // named under older rules must stay updatable (as the real code).
        None => meta::validate_object_meta(&sts.metadata, true, NameRule::Label, &mut errs),
        Some(old) => {
            let old: StatefulSet = decode(resource, old)?;
            meta::validate_object_meta_update(&sts.metadata, &old.metadata, &mut errs);
        }
    }
    validate_spec(&spec, selector_given, &mut errs);
    if let Some(old) = old {
        let old: StatefulSet = decode(resource, old)?;
        validate_spec_update(&spec, &old.spec.unwrap_or_default(), &mut errs);
    }
    verdict(resource, new, errs)
}

/// `ValidateStatefulSetSpec`.
/// `selector_given` tells a missing selector (nil in Go: Required) from an
/// empty one (`{}`), which the typed decode cannot.
fn validate_spec(spec: &StatefulSetSpec, selector_given: bool, errs: &mut FieldErrors) {
    match spec.pod_management_policy.as_deref().unwrap_or("") {
        "" => errs.required("spec.podManagementPolicy", ""),
        "OrderedReady" | "Parallel" => {}
        other => errs.invalid(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        ),
    }
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    match strategy.type_.as_deref().unwrap_or("") {
        "" => errs.required("spec.updateStrategy", ""),
        "OnDelete" => {
            if strategy.rolling_update.is_some() {
                errs.invalid(
                    "spec.updateStrategy.rollingUpdate",
                    Bad::Go("&apps.RollingUpdateStatefulSetStrategy{...}".into()),
                    "only allowed for updateStrategy 'RollingUpdate'",
                );
            }
        }
        "RollingUpdate" => {
            if let Some(p) = strategy.rolling_update.as_ref().and_then(|r| r.partition).filter(|p| *p < 0) {
                errs.invalid("spec.updateStrategy.rollingUpdate.partition", p, "must be greater than or equal to 0");
            }
        }
        other => errs.invalid(
            "spec.updateStrategy",
            Bad::Go(format!("apps.StatefulSetUpdateStrategy{{Type:\"{other}\", RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}}")),
            "must be 'RollingUpdate' or 'OnDelete'",
        ),
    }
    if let Some(policy) = &spec.persistent_volume_claim_retention_policy {
        for (field, v) in [
            ("whenDeleted", &policy.when_deleted),
            ("whenScaled", &policy.when_scaled),
        ] {
            let v = v.as_deref().unwrap_or("");
            if v != "Retain" && v != "Delete" {
                errs.not_supported(
                    format!("spec.persistentVolumeClaimRetentionPolicy.{field}"),
                    v,
                    &["Retain", "Delete"],
                );
            }
        }
    }
    for (field, v) in [
        ("replicas", spec.replicas),
        ("minReadySeconds", spec.min_ready_seconds),
    ] {
        if let Some(v) = v.filter(|v| *v < 0) {
            errs.invalid(
                format!("spec.{field}"),
                v,
                "must be greater than or equal to 0",
            );
        }
    }
    if let Some(start) = spec
        .ordinals
        .as_ref()
        .and_then(|o| o.start)
        .filter(|s| *s < 0)
    {
        errs.invalid(
            "spec.ordinals.start",
            start,
            "must be greater than or equal to 0",
        );
    }
    let sel = &spec.selector;
    let selector_count = sel.match_labels.as_ref().map_or(0, |m| m.len())
        + sel.match_expressions.as_ref().map_or(0, |m| m.len());
    if !selector_given {
        errs.required("spec.selector", "");
    } else {
        meta::validate_label_selector(sel, "spec.selector", errs);
        if selector_count == 0 {
            errs.invalid(
                "spec.selector",
                Bad::Go("&v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}".into()),
                "empty selector is invalid for statefulset",
            );
        }
    }
    let template_meta = spec.template.metadata.clone().unwrap_or_default();
    let labels = template_meta.labels.clone().unwrap_or_default();
    // A nil selector selects nothing (`labels.Nothing()`), an empty one
    // everything.
    let matches = selector_given && (selector_count == 0 || meta::selector_matches(sel, &labels));
    if !matches {
        errs.invalid(
            "spec.template.metadata.labels",
            go_string_map(&labels),
            "`selector` does not match template `labels`",
        );
    }
    meta::validate_labels(&labels, "spec.template.labels", errs);
    if let Some(a) = &template_meta.annotations {
        meta::validate_annotations(a, "spec.template.annotations", errs);
    }
    let pod = spec.template.spec.clone().unwrap_or_default();
    let restart = pod.restart_policy.as_deref().unwrap_or("");
    if restart != "Always" {
        errs.not_supported("spec.template.spec.restartPolicy", restart, &["Always"]);
    }
    if pod.active_deadline_seconds.is_some() {
        errs.forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in StatefulSet is not Supported",
        );
    }
}

/// `ValidateStatefulSetUpdate`: only replicas, ordinals, template,
/// updateStrategy, the PVC retention policy and minReadySeconds may change.
fn validate_spec_update(new: &StatefulSetSpec, old: &StatefulSetSpec, errs: &mut FieldErrors) {
    let mut munged = new.clone();
    munged.replicas = old.replicas;
    munged.template = old.template.clone();
    munged.update_strategy = old.update_strategy.clone();
    munged.min_ready_seconds = old.min_ready_seconds;
    munged.ordinals = old.ordinals.clone();
    munged.persistent_volume_claim_retention_policy =
        old.persistent_volume_claim_retention_policy.clone();
    if &munged != old {
        errs.forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        );
    }
}
