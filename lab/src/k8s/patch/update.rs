//! Managed-fields bookkeeping of every write that is not an apply
//! (create, update, JSON/merge/strategic patch, subresource writes), as
//! `FieldManager.Update` in `k8s.io/apimachinery/pkg/util/managedfields`
//! does it: the write is compared with the object it replaces, its writer
//! owns what it added or changed, everybody else loses it (an update never
//! conflicts), and nobody owns what it removed.

use serde_json::Value;

use super::apply::{fill, filter, ignore, take_over};
use super::managed::{self, Entry};
use super::{schema, typed};
use crate::k8s::resources::Resource;

/// Managed-fields bookkeeping of a create, update or non-apply patch of
/// the main resource by `manager` (`operation` is `Update`): the manager's
/// entry gains every field the write set or changed, and other managers
/// lose those fields (an update never conflicts). `new` is the object about
/// to be stored; its `managedFields`, if the client sent any, are the
/// starting point (as the real server lets clients rewrite them, `[{}]`
/// clears them).
pub fn record_update(
    resource: &Resource,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    operation: &str,
) {
    record_at(
        resource,
        old,
        new,
        manager,
        operation,
        "",
        &crate::k8s::store::now_rfc3339(),
    );
}

/// [`record_update`] for a write to a subresource (`status`, `scale`):
/// the entry carries `subresource`, and a status write owns no `spec`.
pub fn record_subresource_update(
    resource: &Resource,
    subresource: &str,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
) {
    record_at(
        resource,
        old,
        new,
        manager,
        "Update",
        subresource,
        &crate::k8s::store::now_rfc3339(),
    );
}

/// [`record_update`] and [`record_subresource_update`] at the time `now`.
pub fn record_at(
    resource: &Resource,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    operation: &str,
    subresource: &str,
    now: &str,
) {
    let mut entries = if !subresource.is_empty() {
        old.map(managed::decode).unwrap_or(Ok(Vec::new()))
    } else if managed::is_reset(new) {
        Ok(Vec::new())
    } else {
        match managed::decode(new) {
            Ok(e) if !e.is_empty() => Ok(e),
            _ => old.map(managed::decode).unwrap_or(Ok(Vec::new())),
        }
    }
    .unwrap_or_default();
    let shape = schema::root(resource);
    let zero = schema::zero_object(resource);
    let old_obj = old
        .map(managed::without_managed_fields)
        .unwrap_or_else(|| zero.clone());
    let new_obj = managed::without_managed_fields(new);
    let cmp = match typed::compare(&fill(&old_obj, &zero), &fill(&new_obj, &zero), shape) {
        Ok(c) => ignore(c, resource, subresource),
        Err(e) => {
            // UpdateNoErrors: never fail a write over bookkeeping; drop
            // the managed fields rather than keep wrong ones.
            tracing::warn!(kind = resource.kind, manager, error = %e, "failed to update managedFields");
            *new = new_obj;
            return;
        }
    };
    let current = Entry {
        manager: manager.into(),
        operation: operation.into(),
        api_version: resource.api_version(),
        subresource: subresource.into(),
        time: Some(now.into()),
        fields: filter(cmp.added.union(&cmp.modified), resource, subresource),
    };
    // The current operation is a manager of its own ("current-operation"
    // in managedfieldsupdater.go): every entry, the writer's included,
    // loses what it changed and removed, then the writer's entry gains
    // what it changed.
    let nobody = Entry {
        manager: String::new(),
        operation: String::new(),
        ..current.clone()
    };
    take_over(&mut entries, &nobody, &cmp, true);
    if !current.fields.is_empty() {
        match entries.iter_mut().find(|e| e.same_manager(&current)) {
            Some(e) => {
                e.fields = e.fields.union(&current.fields);
                e.time = current.time;
            }
            None => entries.push(current),
        }
    }
    managed::encode(new, entries);
}
