//! JSON patch (RFC 6902, `application/json-patch+json`) and JSON merge
//! patch (RFC 7386, `application/merge-patch+json`), with the errors of
//! `applyJSPatch` in `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go`:
//! a patch that does not decode is a 400, one that fails to apply (a failed
//! `test`, a missing path) a 422 whose message, like the real one, says no
//! more than "the server rejected our request due to an error in our
//! request".

use serde_json::Value;

use crate::k8s::error::ApiError;

/// `maxJSONPatchOperations` of the real server.
const MAX_OPERATIONS: usize = 10_000;

/// Applies an RFC 6902 patch to `obj`.
pub fn json_patch(obj: &Value, patch: &Value) -> Result<Value, ApiError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    if ops.0.len() > MAX_OPERATIONS {
        return Err(ApiError {
            code: 413,
            reason: "RequestEntityTooLarge".into(),
            message: format!(
                "Request entity too large: The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {}",
                ops.0.len()
            ),
            kind: None,
            group: None,
            name: None,
            causes: Vec::new(),
        });
    }
    let mut out = obj.clone();
    json_patch::patch(&mut out, &ops).map_err(|e| {
        tracing::debug!(error = %e, "json patch failed to apply");
        ApiError {
            code: 422,
            reason: "Invalid".into(),
            message: "the server rejected our request due to an error in our request".into(),
            kind: None,
            group: None,
            name: None,
            causes: Vec::new(),
        }
    })?;
    Ok(out)
}

/// Applies an RFC 7386 merge patch to `obj`; a patch that is not an
/// object is refused as `jsonpatch.ErrBadJSONPatch` is.
pub fn merge_patch(obj: &Value, patch: &Value) -> Result<Value, ApiError> {
    if !patch.is_object() {
        return Err(ApiError::bad_request("Invalid JSON Patch"));
    }
    let mut out = obj.clone();
    json_patch::merge(&mut out, patch);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm() -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "zk", "labels": {"app": "zk", "tier": "db"}},
               "data": {"zoo.cfg": "tickTime=2000"}})
    }

    #[test]
    fn json_patch_applies_in_order_and_fails_whole() {
        let out = json_patch(
            &cm(),
            &json!([
                {"op": "test", "path": "/metadata/labels/app", "value": "zk"},
                {"op": "replace", "path": "/data/zoo.cfg", "value": "tickTime=3000"},
                {"op": "add", "path": "/metadata/labels/new", "value": "x"},
                {"op": "remove", "path": "/metadata/labels/tier"},
            ]),
        )
        .expect("applies");
        assert_eq!(
            out.to_string(),
            r#"{"apiVersion":"v1","data":{"zoo.cfg":"tickTime=3000"},"kind":"ConfigMap","metadata":{"labels":{"app":"zk","new":"x"},"name":"zk"}}"#
        );
        let failed = json_patch(
            &cm(),
            &json!([{"op": "test", "path": "/metadata/labels/app", "value": "other"}]),
        )
        .expect_err("test fails");
        assert_eq!((failed.code, failed.reason.as_str()), (422, "Invalid"));
        let missing = json_patch(&cm(), &json!([{"op": "remove", "path": "/spec/x"}]))
            .expect_err("no such path");
        assert_eq!(missing.code, 422);
        let undecodable = json_patch(&cm(), &json!({"op": "add"})).expect_err("not a list");
        assert_eq!(
            (undecodable.code, undecodable.reason.as_str()),
            (400, "BadRequest")
        );
    }

    #[test]
    fn merge_patch_merges_and_null_deletes() {
        let out = merge_patch(
            &cm(),
            &json!({"metadata": {"labels": {"tier": null, "v": "2"}}, "data": {"myid": "1"}}),
        )
        .expect("applies");
        assert_eq!(
            out.to_string(),
            r#"{"apiVersion":"v1","data":{"myid":"1","zoo.cfg":"tickTime=2000"},"kind":"ConfigMap","metadata":{"labels":{"app":"zk","v":"2"},"name":"zk"}}"#
        );
        assert_eq!(
            merge_patch(&cm(), &json!([1])).map_err(|e| e.code),
            Err(400)
        );
    }
}
