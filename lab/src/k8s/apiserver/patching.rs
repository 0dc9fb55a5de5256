//! PATCH: the four patch types the real server takes, chosen by
//! `Content-Type` as `handlers/patch.go` does — JSON patch
//! (`application/json-patch+json`), merge patch
//! (`application/merge-patch+json`), strategic merge patch
//! (`application/strategic-merge-patch+json`) and server-side apply
//! (`application/apply-patch+yaml`, with `fieldManager` required and
//! `force`); anything else is a 415.
//!
//! The patch is applied inside the store's one read-modify-write, so it
//! sees the object it changes and the store's resourceVersion and
//! admission rules hold. Apply may create the object; the other types 404
//! on a missing one.

use hyper::Response;
use hyper::body::Incoming;
use serde_json::Value;

use super::handlers::{record, write};
use super::http::{self, Body, Encoding};
use super::routes::Ctx;
use crate::k8s::error::ApiError;
use crate::k8s::patch;

/// The patch types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_media(media: &str) -> Result<PatchType, ApiError> {
        match media {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" => Ok(PatchType::Apply),
            other => Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})"
            ))),
        }
    }
}

/// Reads a patch body: YAML (a superset of JSON) for apply, JSON else.
pub async fn read_patch(ctx: &Ctx, body: Incoming) -> Result<(PatchType, Value), ApiError> {
    let kind = PatchType::from_media(&ctx.media)?;
    let bytes = http::read_body(body).await?;
    let encoding = if kind == PatchType::Apply {
        Encoding::Yaml
    } else {
        Encoding::Json
    };
    let value = http::parse_object(&bytes, encoding)?;
    match (kind, &value) {
        (PatchType::Json, Value::Array(_)) => {}
        (PatchType::Json, _) => {
            return Err(ApiError::bad_request(
                "json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp",
            ));
        }
        (_, Value::Object(_)) => {}
        _ => return Err(ApiError::bad_request("the patch is not a JSON object")),
    }
    if kind == PatchType::Apply && ctx.query.get("fieldManager").is_none() {
        return Err(ApiError::bad_request(
            "PATCH, application/apply-patch+yaml: fieldManager is required for apply requests",
        ));
    }
    if kind != PatchType::Apply && ctx.query.get("force").is_some() {
        return Err(ApiError::bad_request(
            "force may not be specified for non-apply patch",
        ));
    }
    Ok((kind, value))
}

/// `PATCH .../NAME` (or `.../NAME/status`).
pub async fn patch(
    ctx: &Ctx,
    body: Incoming,
    subresource: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let (kind, p) = read_patch(ctx, body).await?;
    let resource = ctx.resource();
    let name = ctx.name().to_string();
    let manager = ctx.manager.clone();
    let force = ctx.query.flag("force");
    let (stored, created) = write(ctx, &name, subresource, |old| {
        let Some(old) = old else {
            return match kind {
                PatchType::Apply => patch::apply(resource, None, &p, &manager, force),
                _ => Err(ApiError::not_found(resource.plural, resource.group, &name)),
            };
        };
        let mut new = match kind {
            PatchType::Apply => return patch::apply(resource, Some(old), &p, &manager, force),
            PatchType::Json => patch::json_patch(old, &p)?,
            PatchType::Merge => patch::merge_patch(old, &p)?,
            PatchType::Strategic => patch::strategic_merge_patch(resource, old, &p)?,
        };
        record(resource, subresource, old, &mut new, &manager);
        Ok(new)
    })?;
    Ok(http::json(if created { 201 } else { 200 }, &stored))
}
