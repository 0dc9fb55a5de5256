//! Server-side apply (and the ownership rules [`super::update`] shares).
//!
//! The flow is `sigs.k8s.io/structured-merge-diff/v4/merge/update.go`
//! (`Updater.Apply`, `Updater.Update`) wrapped the way
//! `k8s.io/apimachinery/pkg/util/managedfields/internal` wraps it:
//! `versioncheck.go` (the applied kind must be the served one),
//! `skipnonapplied.go` (an object without managed fields is first given to
//! `before-first-apply`), `managedfieldsupdater.go` (an update records only
//! what it changed, and times an entry when its object changed),
//! `stripmeta.go` (nobody owns `metadata.name`, `uid`, ...), and the reset
//! fields of the strategies (a write to the main resource never owns
//! `status`, a write to `status` never owns `spec`).
//!
//! Apply in short: merge the configuration into the live object; remove
//! what the applier set last time, no longer sets, and nobody else owns;
//! compare with the live object, and every field that changes and that
//! another manager owns is a conflict (409) unless `force`, which moves
//! ownership to the applier.

use serde_json::{Value, json};

use super::fieldset::{FieldSet, PathElement, path_string};
use super::managed::{self, Entry};
use super::schema::{self, Shape};
use super::typed::{self, Comparison};
use crate::k8s::error::{ApiError, Cause};
use crate::k8s::resources::Resource;

/// One field another manager owns and the write would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The manager as conflict messages name it: `"kubectl"`, or
    /// `"kube-controller-manager" using apps/v1` for an updater.
    pub manager: String,
    /// `.spec.replicas`.
    pub field: String,
}

/// The 409 of a conflicting apply, as `internal/conflict.go`
/// (`NewConflictError`) words it: `Apply failed with 1 conflict: conflict
/// with "kubectl-edit" using apps/v1: .spec.replicas`, one
/// `FieldManagerConflict` cause per field.
pub fn apply_conflict(conflicts: &[Conflict]) -> ApiError {
    let message = if let [only] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager, only.field
        )
    } else {
        let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for c in conflicts.iter().filter(|c| c.manager == m) {
                lines.push(format!("- {}", c.field));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    ApiError {
        code: 409,
        reason: "Conflict".into(),
        message,
        kind: None,
        group: None,
        name: None,
        causes: conflicts
            .iter()
            .map(|c| Cause {
                reason: "FieldManagerConflict".into(),
                field: c.field.clone(),
                message: format!("conflict with {}", c.manager),
            })
            .collect(),
    }
}

/// Server-side apply of `applied` by `manager` onto `live` (`None`:
/// the object does not exist and apply creates it). Returns the object to
/// store, with its `metadata.managedFields`; the caller still runs
/// admission (defaulting, validation) on it.
pub fn apply(
    resource: &Resource,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, ApiError> {
    apply_at(
        resource,
        live,
        applied,
        manager,
        force,
        &crate::k8s::store::now_rfc3339(),
    )
}

/// [`apply`] at the time `now` (RFC 3339), for tests.
pub fn apply_at(
    resource: &Resource,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApiError> {
    apply_subresource_at(resource, "", live, applied, manager, force, now)
}

/// Server-side apply through a subresource (`kubectl apply --server-side
/// --subresource=status`): the applier's entry carries `subresource`, and
/// an apply to `status` owns no `spec`.
pub fn apply_subresource(
    resource: &Resource,
    subresource: &str,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, ApiError> {
    apply_subresource_at(
        resource,
        subresource,
        live,
        applied,
        manager,
        force,
        &crate::k8s::store::now_rfc3339(),
    )
}

/// [`apply_subresource`] at the time `now`.
pub fn apply_subresource_at(
    resource: &Resource,
    subresource: &str,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApiError> {
    if manager.is_empty() {
        // staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/validation:
        // ValidatePatchOptions.
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            vec![Cause {
                reason: "FieldValueRequired".into(),
                field: "fieldManager".into(),
                message: "Required value: is required for apply patch".into(),
            }],
        ));
    }
    if !applied.is_object() {
        return Err(ApiError::bad_request(
            "error decoding YAML: the applied configuration is not an object",
        ));
    }
    let text = |k: &str| applied.get(k).and_then(Value::as_str).unwrap_or("");
    if text("apiVersion") != resource.api_version() || text("kind") != resource.kind {
        let (group, version) = match text("apiVersion").rsplit_once('/') {
            Some((g, v)) => (g, v),
            None => ("", text("apiVersion")),
        };
        return Err(ApiError::bad_request(format!(
            "invalid object type: {group}/{version}, Kind={}",
            text("kind")
        )));
    }
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    let shape = schema::root(resource);
    let gvk = format!("{}, Kind={}", gv(resource), resource.kind);
    let live_obj = live
        .map(managed::without_managed_fields)
        .unwrap_or_else(|| json!({}));
    let mut entries = match live {
        Some(obj) => managed::decode(obj)
            .map_err(|e| ApiError::internal(format!("failed to decode managed fields: {e}")))?,
        None => Vec::new(),
    };
    if entries.is_empty() && live.is_some() {
        // skipnonapplied.go: the fields of an object nobody tracked yet
        // belong to `before-first-apply`.
        let zero = schema::zero_object(resource);
        let cmp = typed::compare(&fill(&zero, &zero), &fill(&live_obj, &zero), shape)
            .map_err(|e| ApiError::internal(format!("failed to update managed fields: {e}")))?;
        let fields = filter(cmp.added.union(&cmp.modified), resource, "");
        if !fields.is_empty() {
            entries.push(Entry {
                manager: "before-first-apply".into(),
                operation: "Update".into(),
                api_version: resource.api_version(),
                subresource: String::new(),
                time: Some(now.into()),
                fields,
            });
        }
    }

    let config_set = typed::to_field_set(applied, shape, true).map_err(|e| {
        ApiError::internal(format!("failed to create typed patch object ({gvk}): {e}"))
    })?;
    let mut me = Entry {
        manager: manager.into(),
        operation: "Apply".into(),
        api_version: resource.api_version(),
        subresource: subresource.into(),
        time: None,
        fields: filter(config_set, resource, subresource),
    };
    let mut last = FieldSet::new();
    if let Some(i) = entries.iter().position(|e| e.same_manager(&me)) {
        let previous = entries.remove(i);
        last = previous.fields;
        me.time = previous.time;
    }

    let merged = typed::merge(Some(&live_obj), Some(applied), shape)
        .map_err(|e| ApiError::internal(format!("failed to merge config: {e}")))?
        .unwrap_or_else(|| json!({}));
    let mut merged = prune(&merged, &entries, &me, &last, shape)
        .map_err(|e| ApiError::internal(format!("failed to prune fields: {e}")))?;
    typed::drop_nulls(&mut merged);

    let zero = schema::zero_object(resource);
    let cmp = typed::compare(&fill(&live_obj, &zero), &fill(&merged, &zero), shape)
        .map_err(|e| ApiError::internal(format!("failed to compare objects: {e}")))?;
    let cmp = ignore(cmp, resource, subresource);
    let conflicts = take_over(&mut entries, &me, &cmp, force);
    if !conflicts.is_empty() {
        return Err(apply_conflict(&conflicts));
    }
    if live.is_none() || live_obj != merged || me.time.is_none() {
        me.time = Some(now.into());
    }
    entries.push(me);
    for e in &mut entries {
        e.fields = filter(std::mem::take(&mut e.fields), resource, &e.subresource);
    }
    managed::encode(&mut merged, entries);
    Ok(merged)
}

/// `group/version` as Go prints a GroupVersion (`/v1` for the core group).
fn gv(resource: &Resource) -> String {
    format!("{}/{}", resource.group, resource.version)
}

/// `obj` with the objects of `zero` it lacks (see [`schema::zero_object`]).
pub(super) fn fill(obj: &Value, zero: &Value) -> Value {
    let mut out = obj.clone();
    if let (Value::Object(o), Value::Object(z)) = (&mut out, zero) {
        for (k, zv) in z {
            match o.get(k) {
                None => {
                    o.insert(k.clone(), zv.clone());
                }
                Some(v) if v.is_object() => {
                    let filled = fill(v, zv);
                    o.insert(k.clone(), filled);
                }
                Some(_) => {}
            }
        }
    }
    out
}

fn field(name: &str) -> PathElement {
    PathElement::Field(name.into())
}

/// What a write through `subresource` never owns (the reset fields of the
/// strategies, e.g. `pkg/registry/core/pod/strategy.go GetResetFields`).
fn ignored(resource: &Resource, subresource: &str) -> FieldSet {
    let mut set = FieldSet::new();
    match subresource {
        "" if resource.has_status() => set.insert(&[field("status")]),
        "status" => set.insert(&[field("spec")]),
        "" => {}
        _ => set.insert(&[field("status")]),
    }
    set
}

pub(super) fn ignore(cmp: Comparison, resource: &Resource, subresource: &str) -> Comparison {
    let ignored = ignored(resource, subresource);
    Comparison {
        added: cmp.added.without_prefixes(&ignored),
        modified: cmp.modified.without_prefixes(&ignored),
        removed: cmp.removed.without_prefixes(&ignored),
    }
}

/// A manager's set without the fields nobody owns (`stripmeta.go`) and
/// the reset fields.
pub(super) fn filter(set: FieldSet, resource: &Resource, subresource: &str) -> FieldSet {
    let mut strip = FieldSet::new();
    for top in ["apiVersion", "kind", "metadata"] {
        strip.insert(&[field(top)]);
    }
    for meta in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        strip.insert(&[field("metadata"), field(meta)]);
    }
    set.difference(&strip)
        .without_prefixes(&ignored(resource, subresource))
}

/// `Updater.update`: the fields the write adds or changes are taken from
/// every manager other than `me` (a conflict unless `force`), and the
/// fields it removes are owned by nobody any more.
pub(super) fn take_over(
    entries: &mut [Entry],
    me: &Entry,
    cmp: &Comparison,
    force: bool,
) -> Vec<Conflict> {
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts = Vec::new();
    for e in entries.iter() {
        if e.same_manager(me) {
            continue;
        }
        for path in e.fields.intersection(&changed).paths() {
            conflicts.push((e.manager.clone(), e.operation.clone(), e.describe(), path));
        }
    }
    if !force && !conflicts.is_empty() {
        conflicts.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        return conflicts
            .into_iter()
            .map(|(_, _, manager, path)| Conflict {
                manager,
                field: path_string(&path),
            })
            .collect();
    }
    for e in entries.iter_mut() {
        if !e.same_manager(me) {
            e.fields = e.fields.difference(&changed).difference(&cmp.removed);
        }
    }
    Vec::new()
}

/// `Updater.prune`: removes from `merged` what the applier set last time
/// (`last`), no longer sets, and no manager (the applier's new set
/// included) owns, keeping whatever is still owned below it.
fn prune(
    merged: &Value,
    others: &[Entry],
    me: &Entry,
    last: &FieldSet,
    shape: &'static Shape,
) -> Result<Value, String> {
    if last.is_empty() {
        return Ok(merged.clone());
    }
    let ensure = |s: &FieldSet| typed::ensure_named_fields(s, shape);
    let set_of = |v: &Value| typed::to_field_set(v, shape, false).map(|s| ensure(&s));
    let last = ensure(last);
    let managed = others
        .iter()
        .fold(me.fields.clone(), |acc, e| acc.union(&e.fields));
    let managed = ensure(&managed);
    let merged_set = set_of(merged)?;
    // First remove everything the applier set last time, then add back
    // what is still owned (addBackOwnedItems), then remove only what was
    // the applier's (addBackDanglingItems).
    let pruned = typed::remove_items(merged, &last, shape);
    let pruned_set = set_of(&pruned)?;
    let pruned = typed::remove_items(
        merged,
        &merged_set.difference(&pruned_set.union(&managed)),
        shape,
    );
    let pruned_set = set_of(&pruned)?;
    Ok(typed::remove_items(
        merged,
        &merged_set.difference(&pruned_set).intersection(&last),
        shape,
    ))
}
