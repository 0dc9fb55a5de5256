//! `metadata` and label selectors, validated as every kind's validation
//! begins (`k8s.io/apimachinery/pkg/api/validation/objectmeta.go`:
//! `ValidateObjectMetaAccessor`, `ValidateAnnotations`,
//! `ValidateOwnerReferences`, `ValidateFinalizers`;
//! `k8s.io/apimachinery/pkg/apis/meta/v1/validation/validation.go`:
//! `ValidateLabels`, `ValidateLabelSelector`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::field::{FieldErrors, index};
use super::names::{NameRule, is_label_value, is_qualified_name};

/// `TotalAnnotationSizeLimitB`: 256 KiB.
const TOTAL_ANNOTATION_SIZE: usize = 256 * 1024;

/// `ValidateObjectMeta`: name (by the kind's rule), namespace, generation,
/// labels, annotations, owner references, finalizers.
pub fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    rule: NameRule,
    errs: &mut FieldErrors,
) {
    if let Some(g) = meta.generate_name.as_deref().filter(|g| !g.is_empty()) {
        for m in rule.check(g, true) {
            errs.invalid("metadata.generateName", g, &m);
        }
    }
    match meta.name.as_deref().unwrap_or("") {
        "" => errs.required("metadata.name", "name or generateName is required"),
        name => {
            for m in rule.check(name, false) {
                errs.invalid("metadata.name", name, &m);
            }
        }
    }
    let ns = meta.namespace.as_deref().unwrap_or("");
    if namespaced {
        if ns.is_empty() {
            errs.required("metadata.namespace", "");
        } else {
            for m in NameRule::Label.check(ns, false) {
                errs.invalid("metadata.namespace", ns, &m);
            }
        }
    } else if !ns.is_empty() {
        errs.forbidden("metadata.namespace", "not allowed on this type");
    }
    if let Some(g) = meta.generation.filter(|g| *g < 0) {
        errs.invalid(
            "metadata.generation",
            g,
            "must be greater than or equal to 0",
        );
    }
    if let Some(labels) = &meta.labels {
        validate_labels(labels, "metadata.labels", errs);
    }
    if let Some(annotations) = &meta.annotations {
        validate_annotations(annotations, "metadata.annotations", errs);
    }
    validate_owner_references(meta, errs);
    for f in meta.finalizers.iter().flatten() {
        for m in is_qualified_name(f) {
            errs.invalid("metadata.finalizers", f, &m);
        }
    }
}

/// `ValidateObjectMetaUpdate`: what the store does not already keep.
pub fn validate_object_meta_update(new: &ObjectMeta, old: &ObjectMeta, errs: &mut FieldErrors) {
    if new.name != old.name {
        errs.invalid(
            "metadata.name",
            new.name.as_deref().unwrap_or(""),
            "field is immutable",
        );
    }
    if new.namespace != old.namespace {
        errs.invalid(
            "metadata.namespace",
            new.namespace.as_deref().unwrap_or(""),
            "field is immutable",
        );
    }
}

/// `ValidateLabels`: keys are qualified names, values label values; every
/// error is on the map's own path, as the real API reports them.
pub fn validate_labels(labels: &BTreeMap<String, String>, path: &str, errs: &mut FieldErrors) {
    for (k, v) in labels {
        for m in is_qualified_name(k) {
            errs.invalid(path, k, &m);
        }
        for m in is_label_value(v) {
            errs.invalid(path, v, &m);
        }
    }
}

/// `ValidateAnnotations`: keys are qualified names (lower-cased), total
/// size at most 256 KiB.
pub fn validate_annotations(
    annotations: &BTreeMap<String, String>,
    path: &str,
    errs: &mut FieldErrors,
) {
    let mut total = 0;
    for (k, v) in annotations {
        for m in is_qualified_name(&k.to_lowercase()) {
            errs.invalid(path, k, &m);
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE {
        errs.too_long(path, TOTAL_ANNOTATION_SIZE);
    }
}

fn validate_owner_references(meta: &ObjectMeta, errs: &mut FieldErrors) {
    let path = "metadata.ownerReferences";
    let mut controllers = Vec::new();
    for r in meta.owner_references.iter().flatten() {
        let version = r.api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            errs.invalid(
                format!("{path}.apiVersion"),
                &r.api_version,
                "version must not be empty",
            );
        }
        if r.kind.is_empty() {
            errs.invalid(format!("{path}.kind"), &r.kind, "kind must not be empty");
        }
        if r.name.is_empty() {
            errs.invalid(format!("{path}.name"), &r.name, "name must not be empty");
        }
        if r.uid.is_empty() {
            errs.invalid(format!("{path}.uid"), &r.uid, "uid must not be empty");
        }
        if r.controller == Some(true) {
            controllers.push(format!("{}/{}", r.kind, r.name));
        }
    }
    if controllers.len() > 1 {
        errs.invalid(
            path,
            super::field::Bad::Go("[]v1.OwnerReference{...}".into()),
            &format!(
                "Only one reference can have Controller set to true. Found \"true\" in references for {} and {}",
                controllers[0], controllers[1]
            ),
        );
    }
}

/// `ValidateLabelSelector` (strict label values, as StatefulSet and PDB use).
pub fn validate_label_selector(sel: &LabelSelector, path: &str, errs: &mut FieldErrors) {
    for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
        let p = index(&format!("{path}.matchExpressions"), i);
        let values = req.values.as_deref().unwrap_or(&[]);
        match req.operator.as_str() {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.required(
                        format!("{p}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    );
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.forbidden(
                        format!("{p}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                }
            }
            op => errs.invalid(format!("{p}.operator"), op, "not a valid selector operator"),
        }
        for m in is_qualified_name(&req.key) {
            errs.invalid(format!("{p}.key"), &req.key, &m);
        }
        for (j, v) in values.iter().enumerate() {
            for m in is_label_value(v) {
                errs.invalid(index(&format!("{p}.values"), j), v, &m);
            }
        }
    }
    if let Some(labels) = &sel.match_labels {
        validate_labels(labels, &format!("{path}.matchLabels"), errs);
    }
}

/// Whether `labels` satisfy `sel` (`metav1.LabelSelectorAsSelector` then
/// `Matches`). An empty selector matches everything.
pub fn selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = sel.match_expressions.iter().flatten().all(|req| {
        let values = req.values.as_deref().unwrap_or(&[]);
        let have = labels.get(&req.key);
        match req.operator.as_str() {
            "In" => have.is_some_and(|h| values.contains(h)),
            "NotIn" => have.is_none_or(|h| !values.contains(h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    });
    by_labels && by_expressions
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        }
    }

    #[test]
    fn names_labels_and_annotations() {
        let mut m = meta("Zk");
        m.labels = Some(BTreeMap::from([
            ("app".to_string(), "zk".to_string()),
            ("bad key!".to_string(), "-bad".to_string()),
        ]));
        m.annotations = Some(BTreeMap::from([("a".to_string(), "x".repeat(300_000))]));
        let mut e = FieldErrors::new();
        validate_object_meta(&m, true, NameRule::Subdomain, &mut e);
        let fields: Vec<&str> = e.causes().iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "metadata.labels",
                "metadata.labels",
                "metadata.annotations"
            ]
        );
        assert!(
            e.causes()[1]
                .message
                .starts_with("Invalid value: \"bad key!\": name part")
        );
        assert!(
            e.causes()[2]
                .message
                .starts_with("Invalid value: \"-bad\": a valid label")
        );
        assert_eq!(
            e.causes()[3].message,
            "Too long: may not be more than 262144 bytes"
        );
    }

    #[test]
    fn a_name_is_required_and_cluster_kinds_have_no_namespace() {
        let mut e = FieldErrors::new();
        let mut m = meta("");
        m.name = None;
        validate_object_meta(&m, false, NameRule::Label, &mut e);
        assert_eq!(
            e.causes()[0].message,
            "Required value: name or generateName is required"
        );
        assert_eq!(e.causes()[1].field, "metadata.namespace");
        assert_eq!(e.causes()[1].message, "Forbidden: not allowed on this type");
    }

    #[test]
    fn selectors_validate_and_match() {
        let sel = LabelSelector {
            match_labels: Some(BTreeMap::from([("app".to_string(), "zk".to_string())])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["db".into()]),
            }]),
        };
        let labels = BTreeMap::from([
            ("app".to_string(), "zk".to_string()),
            ("tier".to_string(), "db".to_string()),
        ]);
        assert!(selector_matches(&sel, &labels));
        assert!(!selector_matches(&sel, &BTreeMap::new()));
        let bad = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: None,
            }]),
        };
        let mut e = FieldErrors::new();
        validate_label_selector(&bad, "spec.selector", &mut e);
        assert_eq!(
            e.causes()[0].field,
            "spec.selector.matchExpressions[0].values"
        );
    }
}
