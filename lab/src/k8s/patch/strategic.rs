//! Strategic merge patch (`application/strategic-merge-patch+json`), as
//! `k8s.io/apimachinery/pkg/util/strategicpatch/patch.go`
//! (`StrategicMergeMapPatch` with `MergeParallelList` and
//! `IgnoreUnmatchedNulls`) applies it: maps merge key by key and `null`
//! deletes; a list merges only where its Go field says
//! `patchStrategy:"merge"` (by `patchMergeKey` for lists of objects, as a
//! union for lists of scalars), else the patch's list replaces it.
//! Directives: `$patch: replace|delete` in a map or as a list item,
//! `$retainKeys`, `$deleteFromPrimitiveList/<field>`,
//! `$setElementOrder/<field>`. The order of merged list items follows
//! `normalizeElementOrder` and `mergeSortedSlice`.

use serde_json::{Map, Value};

use super::schema::{self, Shape, Smp};
use crate::k8s::error::ApiError;
use crate::k8s::resources::Resource;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";

/// Applies a strategic merge patch to `obj`, a `resource` object.
pub fn strategic_merge_patch(
    resource: &Resource,
    obj: &Value,
    patch: &Value,
) -> Result<Value, ApiError> {
    let Value::Object(patch) = patch else {
        // strategicPatchObject: the body does not unmarshal into a map.
        return Err(ApiError::bad_request(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_kind(patch)
        )));
    };
    let original = match obj {
        Value::Object(m) => m.clone(),
        _ => return Err(bad_request("invalid JSON document")),
    };
    merge_map(original, patch.clone(), schema::root(resource)).map(Value::Object)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "null",
        Value::Object(_) => "object",
    }
}

/// `interpretStrategicMergePatchError` (handlers/patch.go): malformed
/// directives are 400s.
fn bad_request(what: &str) -> ApiError {
    ApiError::bad_request(what)
}

/// Lists of lists and a patch that does not match its `$retainKeys` are
/// 422s without details, as `NewGenericServerResponse(422, ...)` words them.
fn unprocessable() -> ApiError {
    ApiError {
        code: 422,
        reason: "Invalid".into(),
        message: "the server rejected our request due to an error in our request".into(),
        kind: None,
        group: None,
        name: None,
        causes: Vec::new(),
    }
}

/// Any other failure of the patcher is a plain error, hence a 500.
fn internal(message: String) -> ApiError {
    ApiError::internal(message)
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    shape: &'static Shape,
) -> Result<Map<String, Value>, ApiError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.remove(DIRECTIVE);
                Ok(patch)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(internal(format!(
                "unknown patch type: {directive} in map: {}",
                Value::Object(patch.clone())
            ))),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_set_element_order(&mut original, &mut patch, shape)?;
    for (key, patch_value) in patch {
        if key.starts_with(SET_ELEMENT_ORDER) {
            continue;
        }
        let (key, delete_list) = match key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            Some(field) => (field.to_string(), true),
            None => (key, false),
        };
        if patch_value.is_null() {
            original.remove(&key);
            continue;
        }
        let field_shape = shape.field(&key);
        let Some(original_value) = original.remove(&key) else {
            if !delete_list {
                original.insert(key, clean(patch_value, field_shape)?);
            }
            continue;
        };
        let merged = match (original_value, patch_value) {
            (Value::Object(o), Value::Object(p)) => Value::Object(merge_map(o, p, field_shape)?),
            (Value::Array(o), Value::Array(p)) => {
                Value::Array(merge_list_field(o, p, field_shape, delete_list)?)
            }
            (o, _) if delete_list => o,
            (_, p) => clean(p, field_shape)?,
        };
        original.insert(key, merged);
    }
    Ok(original)
}

/// A patch value taken whole (its key is new): nulls dropped and
/// directives applied, as merging it into nothing.
fn clean(value: Value, shape: &'static Shape) -> Result<Value, ApiError> {
    match value {
        Value::Object(m) => Ok(Value::Object(merge_map(Map::new(), m, shape)?)),
        Value::Array(items) if items.iter().any(Value::is_object) => {
            let list = merge_list_field(Vec::new(), items, shape, false)?;
            Ok(Value::Array(list))
        }
        v => Ok(v),
    }
}

fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(bad_request("invalid patch format of retainKeys"));
    };
    let keep = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !keep(k) {
            return Err(bad_request("invalid patch format of retainKeys"));
        }
    }
    original.retain(|k, _| keep(k));
    Ok(())
}

/// `mergePatchIntoOriginal`: each `$setElementOrder/<field>` with its
/// list, merged and put in the order the directive gives.
fn merge_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    shape: &'static Shape,
) -> Result<(), ApiError> {
    let directives: Vec<(String, Value)> = patch
        .iter()
        .filter(|(k, _)| k.starts_with(SET_ELEMENT_ORDER))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, order) in directives {
        let Value::Array(order) = order else {
            return Err(bad_request("invalid patch format of setElementOrder list"));
        };
        let field = key[SET_ELEMENT_ORDER.len()..].to_string();
        let field_shape = shape.field(&field);
        let merge_key = merge_key_of(field_shape);
        let original_list = match original.get(&field) {
            Some(Value::Array(l)) => Some(l.clone()),
            Some(_) => return Err(bad_request("invalid patch format of setElementOrder list")),
            None => None,
        };
        let patch_list = match patch.get(&field) {
            Some(Value::Array(l)) => Some(l.clone()),
            Some(_) => return Err(bad_request("invalid patch format of setElementOrder list")),
            None => None,
        };
        validate_order(patch_list.as_deref().unwrap_or(&[]), &order, merge_key)?;
        let merged = match (original_list.clone(), patch_list) {
            (Some(o), None) => o,
            (None, Some(p)) => {
                let Value::Array(l) = clean(Value::Array(p), field_shape)? else {
                    continue;
                };
                l
            }
            (Some(o), Some(p)) => merge_list_field(o, p, field_shape, false)?,
            (None, None) => continue,
        };
        let (in_order, server_only) = partition(merged, &order, merge_key);
        let serverorder = original_list.unwrap_or_default();
        let sorted = normalize_order(in_order, server_only, &order, &serverorder, merge_key)?;
        original.insert(field.clone(), Value::Array(sorted));
        patch.remove(&field);
    }
    Ok(())
}

fn merge_key_of(shape: &'static Shape) -> Option<&'static str> {
    match shape.list().map(|l| l.smp) {
        Some(Smp::MergeByKey(k)) => Some(k),
        _ => None,
    }
}

/// `validatePatchWithSetOrderList`: the patch's items appear in the
/// directive, in the same relative order.
fn validate_order(patch: &[Value], order: &[Value], key: Option<&str>) -> Result<(), ApiError> {
    let mut from = 0;
    for item in patch.iter().filter(|i| !is_delete_item(i)) {
        match order[from.min(order.len())..]
            .iter()
            .position(|o| same_item(item, o, key))
        {
            Some(at) => from += at + 1,
            None => {
                return Err(internal(format!(
                    "The order in patch list:\n{}\n doesn't match $setElementOrder list:\n{}\n",
                    Value::Array(patch.to_vec()),
                    Value::Array(order.to_vec())
                )));
            }
        }
    }
    Ok(())
}

fn is_delete_item(item: &Value) -> bool {
    item.get(DIRECTIVE).and_then(Value::as_str) == Some("delete")
}

fn same_item(a: &Value, b: &Value, key: Option<&str>) -> bool {
    match key {
        Some(k) => a.is_object() && a.get(k).is_some() && a.get(k) == b.get(k),
        None => a == b,
    }
}

fn index_in(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    list.iter().position(|l| same_item(item, l, key))
}

/// `mergeSliceHandler`: merge where the field's strategy says so, else
/// the patch's list.
fn merge_list_field(
    original: Vec<Value>,
    patch: Vec<Value>,
    shape: &'static Shape,
    delete_list: bool,
) -> Result<Vec<Value>, ApiError> {
    let smp = shape.list().map(|l| l.smp).unwrap_or(Smp::Replace);
    if smp == Smp::Replace {
        return Ok(patch);
    }
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let is_map = element_kind_is_map(&original, &patch)?;
    if !is_map {
        if delete_list {
            return Ok(original
                .into_iter()
                .filter(|o| !patch.contains(o))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::new();
        for v in original.iter().chain(&patch) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        let (in_patch, server_only) = partition(merged, &patch, None);
        return normalize_order(in_patch, server_only, &patch, &original, None);
    }
    let Smp::MergeByKey(key) = smp else {
        return Err(internal("cannot merge lists without merge key".to_string()));
    };
    let (original, patch) = apply_list_directives(original, patch, key)?;
    let mut merged = original.clone();
    for item in &patch {
        let Some(value) = item.get(key) else {
            return Err(internal(format!(
                "map: {item} does not contain declared merge key: {key}"
            )));
        };
        let Value::Object(p) = item.clone() else {
            continue;
        };
        match merged.iter().position(|m| m.get(key) == Some(value)) {
            Some(at) => {
                let o = match std::mem::take(&mut merged[at]) {
                    Value::Object(o) => o,
                    _ => Map::new(),
                };
                merged[at] = Value::Object(merge_map(o, p, shape.elem())?);
            }
            None => merged.push(Value::Object(merge_map(Map::new(), p, shape.elem())?)),
        }
    }
    let (in_patch, server_only) = partition(merged, &patch, Some(key));
    normalize_order(in_patch, server_only, &patch, &original, Some(key))
}

/// `sliceElementType`: whether the items are objects; lists of lists are
/// refused.
fn element_kind_is_map(original: &[Value], patch: &[Value]) -> Result<bool, ApiError> {
    let mut kind: Option<bool> = None;
    for v in original.iter().chain(patch) {
        if v.is_array() {
            return Err(unprocessable());
        }
        let is_map = v.is_object();
        match kind {
            Some(k) if k != is_map => {
                return Err(internal(format!(
                    "mismatched types in list: {}",
                    Value::Array(original.to_vec())
                )));
            }
            _ => kind = Some(is_map),
        }
    }
    Ok(kind.unwrap_or(false))
}

/// `mergeSliceWithSpecialElements`: `{"$patch": "delete", key: v}` items
/// delete, `{"$patch": "replace"}` makes the rest of the patch the list.
fn apply_list_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let mut plain = Vec::new();
    let mut replace = false;
    for item in patch {
        match item.get(DIRECTIVE) {
            None => plain.push(item),
            Some(d) => match d.as_str() {
                Some("delete") => {
                    let Some(value) = item.get(key) else {
                        return Err(internal(format!(
                            "map: {item} does not contain declared merge key: {key}"
                        )));
                    };
                    original.retain(|o| o.get(key) != Some(value));
                }
                Some("replace") => replace = true,
                Some("merge") => {
                    return Err(internal(
                        "merging lists cannot yet be specified in the patch".into(),
                    ));
                }
                _ => {
                    return Err(internal(format!("unknown patch type: {d} in map: {item}")));
                }
            },
        }
    }
    if replace {
        Ok((plain, Vec::new()))
    } else {
        Ok((original, plain))
    }
}

/// Splits `merged` into the items present in `by` and the others.
fn partition(merged: Vec<Value>, by: &[Value], key: Option<&str>) -> (Vec<Value>, Vec<Value>) {
    merged
        .into_iter()
        .partition(|m| by.iter().any(|b| same_item(m, b, key)))
}

/// `normalizeElementOrder`: patch items in `patch_order`, server-only
/// items in `server_order`, then interleaved by `mergeSortedSlice`.
fn normalize_order(
    in_patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Result<Vec<Value>, ApiError> {
    let right = sort_by_order(in_patch, patch_order, key)?;
    let left = sort_by_order(server_only, server_order, key)?;
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut i, mut j) = (0, 0);
    while i < left.len() || j < right.len() {
        let take_left = if i >= left.len() {
            false
        } else if j >= right.len() {
            true
        } else {
            match (
                index_in(server_order, &left[i], key),
                index_in(server_order, &right[j], key),
            ) {
                (Some(l), Some(r)) => l < r,
                _ => false,
            }
        };
        if take_left {
            out.push(left[i].clone());
            i += 1;
        } else {
            out.push(right[j].clone());
            j += 1;
        }
    }
    Ok(out)
}

/// `normalizeSliceOrder`: Go's `sort.SliceStable` (an insertion sort at
/// these sizes) with its "not found sorts first" comparison, then the
/// `$patch: delete` items last.
fn sort_by_order(
    items: Vec<Value>,
    order: &[Value],
    key: Option<&str>,
) -> Result<Vec<Value>, ApiError> {
    let (mut items, to_delete): (Vec<Value>, Vec<Value>) = match key {
        Some(k) => {
            if let Some(bad) = items.iter().chain(order).find(|i| i.get(k).is_none()) {
                return Err(internal(format!(
                    "map: {bad} does not contain declared merge key: {k}"
                )));
            }
            items.into_iter().partition(|i| !is_delete_item(i))
        }
        None => (items, Vec::new()),
    };
    let less = |a: &Value, b: &Value| match (index_in(order, a, key), index_in(order, b, key)) {
        (Some(x), Some(y)) => x < y,
        _ => true,
    };
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && less(&items[j], &items[j - 1]) {
            items.swap(j, j - 1);
            j -= 1;
        }
    }
    items.extend(to_delete);
    Ok(items)
}
