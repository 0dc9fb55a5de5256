//! The resource verbs but patch and watch: get, list, create, update,
//! delete, deletecollection — thin over the [`Store`], which does what the
//! real generic registry does (`registry/generic/registry/store.go`);
//! here are the HTTP parts: bodies, `dryRun`, `fieldManager` (recorded in
//! `managedFields` through [`patch::record_update`]), selectors, and what
//! each verb returns (201 on create, the object or a `Status` Success on
//! delete).
//!
//! [`Store`]: crate::k8s::store::Store

use hyper::Response;
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::http::{self, Body};
use super::routes::Ctx;
use super::selectors::Selectors;
use crate::k8s::error::{ApiError, Cause};
use crate::k8s::patch;
use crate::k8s::resources::{self, Resource};
use crate::k8s::store::{self, DeleteOptions, name_of};

/// `GET .../NAME` (and `.../NAME/status`).
pub fn get(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let obj = ctx
        .shared
        .store
        .get(ctx.resource(), ctx.namespace(), ctx.name())?;
    Ok(http::json(200, &obj))
}

/// The namespace a list or watch covers (`None`: all).
pub fn list_scope(ctx: &Ctx) -> Option<&str> {
    Some(ctx.namespace()).filter(|ns| !ns.is_empty() && ctx.resource().namespaced)
}

/// A `KindList` of `items` at `rv`.
pub fn list_object(resource: &Resource, items: Vec<Value>, rv: u64) -> Value {
    json!({
        "kind": format!("{}List", resource.kind),
        "apiVersion": resource.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    })
}

/// `GET .../PLURAL` with `labelSelector` and `fieldSelector`; `limit` and
/// `continue` are accepted and the whole list is returned in one page
/// (no `continue` token), which clients that page read as the last page.
pub fn list(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let selectors = Selectors::from_query(ctx.resource(), &ctx.query)?;
    let (items, rv) = ctx.shared.store.list(ctx.resource(), list_scope(ctx));
    let items: Vec<Value> = items.into_iter().filter(|o| selectors.matches(o)).collect();
    Ok(http::json(200, &list_object(ctx.resource(), items, rv)))
}

async fn body_object(ctx: &Ctx, body: Incoming) -> Result<Value, ApiError> {
    let encoding = http::object_encoding(&ctx.media)?;
    let bytes = http::read_body(body).await?;
    let obj = http::parse_object(&bytes, encoding)?;
    if !obj.is_object() {
        return Err(ApiError::bad_request("the request body is not an object"));
    }
    Ok(obj)
}

/// Checks `apiVersion`/`kind` of a body against the URL's resource, as the
/// real decoder does (a mismatch is a 400).
fn check_kind(resource: &Resource, obj: &Value) -> Result<(), ApiError> {
    let api_version = obj["apiVersion"].as_str().unwrap_or("");
    let kind = obj["kind"].as_str().unwrap_or("");
    if (!api_version.is_empty() && api_version != resource.api_version())
        || (!kind.is_empty() && kind != resource.kind)
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            resource.api_version()
        )));
    }
    Ok(())
}

/// A write through the store, or its dry run.
pub fn write(
    ctx: &Ctx,
    name: &str,
    subresource: Option<&str>,
    f: impl FnOnce(Option<&Value>) -> Result<Value, ApiError>,
) -> Result<(Value, bool), ApiError> {
    let store = &ctx.shared.store;
    if ctx.dry_run() {
        store.write_dry_run(ctx.resource(), ctx.namespace(), name, subresource, f)
    } else {
        store.write(ctx.resource(), ctx.namespace(), name, subresource, f)
    }
}

/// `POST .../PLURAL`: 201 with the stored object.
pub async fn create(ctx: &Ctx, body: Incoming) -> Result<Response<Body>, ApiError> {
    let resource = ctx.resource();
    let mut obj = body_object(ctx, body).await?;
    check_kind(resource, &obj)?;
    if name_of(&obj).is_empty() {
        // As `names.SimpleNameGenerator`: the prefix and 5 random chars.
        if let Some(prefix) = obj["metadata"]["generateName"].as_str() {
            let suffix: String = store::new_uid()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .take(5)
                .collect();
            obj["metadata"]["name"] = json!(format!("{prefix}{suffix}"));
        }
    }
    let name = name_of(&obj).to_string();
    if name.is_empty() {
        let mut e = ApiError::invalid(
            resource.kind,
            resource.group,
            "",
            vec![Cause::required("metadata.name")],
        );
        e.message = format!(
            "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
            resource.kind
        );
        return Err(e);
    }
    let body_namespace = obj["metadata"]["namespace"].as_str().unwrap_or("");
    if resource.namespaced && !body_namespace.is_empty() && body_namespace != ctx.namespace() {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let manager = ctx.manager.clone();
    let (stored, _) = write(ctx, &name, None, |old| match old {
        Some(_) => Err(ApiError::already_exists(
            resource.plural,
            resource.group,
            &name,
        )),
        None => {
            patch::record_update(resource, None, &mut obj, &manager, "Update");
            Ok(obj)
        }
    })?;
    Ok(http::json(201, &stored))
}

/// `PUT .../NAME` (or `.../NAME/status`): a stale
/// `metadata.resourceVersion` is the store's 409.
pub async fn update(
    ctx: &Ctx,
    body: Incoming,
    subresource: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let resource = ctx.resource();
    let mut obj = body_object(ctx, body).await?;
    check_kind(resource, &obj)?;
    let manager = ctx.manager.clone();
    let name = ctx.name().to_string();
    let (stored, _) = write(ctx, &name, subresource, |old| match old {
        None => Err(ApiError::not_found(resource.plural, resource.group, &name)),
        Some(old) => {
            record(resource, subresource, old, &mut obj, &manager);
            Ok(obj)
        }
    })?;
    Ok(http::json(200, &stored))
}

/// Records a non-apply write of `manager` in `metadata.managedFields`
/// (with the subresource, as the real server's field manager does).
pub fn record(
    resource: &Resource,
    subresource: Option<&str>,
    old: &Value,
    new: &mut Value,
    manager: &str,
) {
    match subresource {
        Some(sub) => patch::record_subresource_update(resource, sub, Some(old), new, manager),
        None => patch::record_update(resource, Some(old), new, manager, "Update"),
    }
}

/// DeleteOptions from the body (JSON) and the query; the query wins, as
/// in `handlers/delete.go`.
async fn delete_options(ctx: &Ctx, body: Incoming) -> Result<DeleteOptions, ApiError> {
    let bytes = http::read_body(body).await?;
    let mut opts = DeleteOptions::default();
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
        opts.grace_period_seconds = v["gracePeriodSeconds"].as_i64();
        opts.resource_version = v["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string);
        opts.uid = v["preconditions"]["uid"].as_str().map(str::to_string);
        if let Some(policy) = v["propagationPolicy"].as_str() {
            check_policy(policy)?;
        }
    }
    if let Some(g) = ctx.query.int("gracePeriodSeconds")? {
        opts.grace_period_seconds = Some(g);
    }
    if let Some(policy) = ctx.query.get("propagationPolicy") {
        check_policy(policy)?;
    }
    Ok(opts)
}

/// Dependents are the garbage collector's business; the policy is only
/// checked to be one the real API knows.
fn check_policy(policy: &str) -> Result<(), ApiError> {
    match policy {
        "Orphan" | "Background" | "Foreground" => Ok(()),
        other => Err(ApiError::bad_request(format!(
            "invalid propagationPolicy: {other:?}"
        ))),
    }
}

/// Whether a delete answers with the object (`ReturnDeletedObject` in the
/// kind's registry, and any object still terminating) rather than a
/// `Status`.
fn returns_object(resource: &Resource, obj: &Value) -> bool {
    std::ptr::eq(resource, resources::pods())
        || std::ptr::eq(resource, resources::services())
        || std::ptr::eq(resource, resources::namespaces())
        || obj["metadata"]["deletionTimestamp"].is_string()
}

fn delete_one(ctx: &Ctx, name: &str, opts: &DeleteOptions) -> Result<Value, ApiError> {
    let store = &ctx.shared.store;
    let resource = ctx.resource();
    if ctx.dry_run() {
        let obj = store.get(resource, ctx.namespace(), name)?;
        if let Some(rv) = &opts.resource_version
            && obj["metadata"]["resourceVersion"].as_str() != Some(rv)
        {
            return Err(ApiError::conflict(
                resource.plural,
                resource.group,
                name,
                "the ResourceVersion in the precondition does not match the ResourceVersion in record. The object might have been modified",
            ));
        }
        return Ok(obj);
    }
    store.delete(resource, ctx.namespace(), name, opts)
}

/// `DELETE .../NAME`.
pub async fn delete(ctx: &Ctx, body: Incoming) -> Result<Response<Body>, ApiError> {
    let opts = delete_options(ctx, body).await?;
    let resource = ctx.resource();
    let obj = delete_one(ctx, ctx.name(), &opts)?;
    if returns_object(resource, &obj) {
        return Ok(http::json(200, &obj));
    }
    Ok(http::json(
        200,
        &http::success(json!({
            "name": ctx.name(),
            "group": resource.group,
            "kind": resource.plural,
            "uid": obj["metadata"]["uid"],
        })),
    ))
}

/// `DELETE .../PLURAL`: deletes what the selectors match; answers the
/// list of deleted objects.
pub async fn delete_collection(ctx: &Ctx, body: Incoming) -> Result<Response<Body>, ApiError> {
    let opts = delete_options(ctx, body).await?;
    let selectors = Selectors::from_query(ctx.resource(), &ctx.query)?;
    let (items, _) = ctx.shared.store.list(ctx.resource(), list_scope(ctx));
    let mut deleted = Vec::new();
    for item in items.into_iter().filter(|o| selectors.matches(o)) {
        match delete_one(ctx, name_of(&item), &opts) {
            Ok(o) => deleted.push(o),
            // Gone meanwhile: nothing left to delete.
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let rv = ctx.shared.store.resource_version();
    Ok(http::json(200, &list_object(ctx.resource(), deleted, rv)))
}
