//! Objects read through their [`Shape`]: the field set an object sets, the
//! comparison of two versions, the merge of an applied configuration into
//! a live object, and the removal of a set of fields.
//!
//! Each function follows the walker of the same name in
//! `sigs.k8s.io/structured-merge-diff/v4/typed` (`tofieldset.go`,
//! `compare.go`, `merge.go`, `remove.go`) closely enough that the sets it
//! computes encode to the FieldsV1 a real server writes; where the Go code
//! distinguishes an absent value from a null one, so does this (`None`
//! against `Some(Value::Null)`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::fieldset::{FieldSet, PathElement, path_string};
use super::schema::{ListKind, ListShape, Shape};

/// How a value is walked.
enum Node<'a> {
    Leaf,
    Object(Option<&'a Map<String, Value>>),
    List(Option<&'a Vec<Value>>, &'static ListShape),
}

fn node<'a>(value: Option<&'a Value>, shape: &'static Shape) -> Node<'a> {
    match (value, shape) {
        (_, Shape::Atomic) => Node::Leaf,
        (Some(Value::Object(m)), Shape::Struct(_) | Shape::Map(_)) => Node::Object(Some(m)),
        (Some(Value::Null) | None, Shape::Struct(_) | Shape::Map(_)) => Node::Object(None),
        (Some(Value::Array(items)), Shape::List(l)) if !matches!(l.kind, ListKind::Atomic) => {
            Node::List(Some(items), l)
        }
        (Some(Value::Null) | None, Shape::List(l)) if !matches!(l.kind, ListKind::Atomic) => {
            Node::List(None, l)
        }
        _ => Node::Leaf,
    }
}

/// The path element of item `index` of a list.
pub fn item_element(item: &Value, list: &ListShape, index: usize) -> Result<PathElement, String> {
    match list.kind {
        ListKind::Map(keys) => {
            let Value::Object(fields) = item else {
                return Err(format!("element {index}: expected a map"));
            };
            let mut key: Vec<(String, Value)> = Vec::with_capacity(keys.len());
            for k in keys {
                let value = match (fields.get(k.name), k.default) {
                    (Some(v), _) if !v.is_null() => v.clone(),
                    (_, Some(default)) => Value::String(default.into()),
                    _ => {
                        return Err(format!(
                            "element {index}: associative list with keys has an element that omits key field {:?} (and doesn't have default value)",
                            k.name
                        ));
                    }
                };
                key.push((k.name.to_string(), value));
            }
            key.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(key))
        }
        ListKind::Set => Ok(PathElement::Value(item.clone())),
        ListKind::Atomic => Ok(PathElement::Index(index)),
    }
}

/// The items of a list by path element, in order. `strict` refuses
/// duplicate keys (an applied configuration); otherwise later duplicates
/// are dropped (a live object, as structured-merge-diff tolerates them).
fn index_items<'a>(
    items: &'a [Value],
    list: &ListShape,
    strict: bool,
    path: &[PathElement],
) -> Result<Vec<(PathElement, &'a Value)>, String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let pe = item_element(item, list, i).map_err(|e| format!("{}: {e}", path_string(path)))?;
        if !seen.insert(pe.clone()) {
            if strict {
                return Err(format!(
                    "{}: duplicate entries for key {pe}",
                    path_string(path)
                ));
            }
            continue;
        }
        out.push((pe, item));
    }
    Ok(out)
}

/// The set of fields `value` sets (`TypedValue.ToFieldSet`).
pub fn to_field_set(
    value: &Value,
    shape: &'static Shape,
    strict: bool,
) -> Result<FieldSet, String> {
    let mut set = FieldSet::new();
    walk_set(value, shape, strict, &mut Vec::new(), &mut set)?;
    Ok(set)
}

fn walk_set(
    value: &Value,
    shape: &'static Shape,
    strict: bool,
    path: &mut Vec<PathElement>,
    set: &mut FieldSet,
) -> Result<(), String> {
    match node(Some(value), shape) {
        Node::Leaf => set.insert(path),
        Node::Object(None) => {}
        Node::Object(Some(fields)) => {
            for (k, v) in fields {
                path.push(PathElement::Field(k.clone()));
                walk_set(v, shape.field(k), strict, path, set)?;
                let empty = v.is_null() || v.as_object().is_some_and(|m| m.is_empty());
                if empty || !shape.is_named_field() {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Node::List(None, _) => {}
        Node::List(Some(items), list) => {
            for (pe, item) in index_items(items, list, strict, path)? {
                path.push(pe);
                walk_set(item, list.elem, strict, path, set)?;
                set.insert(path);
                path.pop();
            }
        }
    }
    Ok(())
}

/// What changed between two versions of an object (`typed.Comparison`).
#[derive(Debug, Default)]
pub struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

/// Compares `lhs` (old) with `rhs` (new).
pub fn compare(lhs: &Value, rhs: &Value, shape: &'static Shape) -> Result<Comparison, String> {
    let mut c = Comparison::default();
    walk_compare(Some(lhs), Some(rhs), shape, &mut Vec::new(), &mut c)?;
    Ok(c)
}

fn is_empty_container(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

/// Whether a pair is compared (and merged) as one leaf: scalars, atomic
/// values, values of different kinds, and empty-or-absent on both sides
/// (which keeps the difference between empty and null).
fn pair_is_leaf(lhs: Option<&Value>, rhs: Option<&Value>, shape: &'static Shape) -> bool {
    let l = node(lhs, shape);
    let r = node(rhs, shape);
    match (&l, &r) {
        (Node::Object(_), Node::Object(_)) | (Node::List(..), Node::List(..)) => {
            is_empty_container(lhs) && is_empty_container(rhs)
        }
        _ => true,
    }
}

fn walk_compare(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    shape: &'static Shape,
    path: &mut Vec<PathElement>,
    c: &mut Comparison,
) -> Result<(), String> {
    if pair_is_leaf(lhs, rhs, shape) {
        match (lhs, rhs) {
            (None, Some(_)) => c.added.insert(path),
            (Some(_), None) => c.removed.insert(path),
            (Some(l), Some(r)) if l != r => c.modified.insert(path),
            _ => {}
        }
        return Ok(());
    }
    match (node(lhs, shape), node(rhs, shape)) {
        (Node::Object(l), Node::Object(r)) => {
            let mut keys: Vec<&String> = l.iter().flat_map(|m| m.keys()).collect();
            keys.extend(r.iter().flat_map(|m| m.keys()));
            keys.sort();
            keys.dedup();
            for k in keys {
                path.push(PathElement::Field(k.clone()));
                walk_compare(
                    l.and_then(|m| m.get(k)),
                    r.and_then(|m| m.get(k)),
                    shape.field(k),
                    path,
                    c,
                )?;
                path.pop();
            }
        }
        (Node::List(l, list), Node::List(r, _)) => {
            let li = index_items(l.map(Vec::as_slice).unwrap_or(&[]), list, false, path)?;
            let ri = index_items(r.map(Vec::as_slice).unwrap_or(&[]), list, false, path)?;
            let lmap: BTreeMap<&PathElement, &Value> = li.iter().map(|(p, v)| (p, *v)).collect();
            let rmap: BTreeMap<&PathElement, &Value> = ri.iter().map(|(p, v)| (p, *v)).collect();
            let mut pes: Vec<&PathElement> = lmap.keys().chain(rmap.keys()).copied().collect();
            pes.sort();
            pes.dedup();
            for pe in pes {
                path.push(pe.clone());
                walk_compare(
                    lmap.get(pe).copied(),
                    rmap.get(pe).copied(),
                    list.elem,
                    path,
                    c,
                )?;
                path.pop();
            }
        }
        _ => {}
    }
    match (lhs, rhs) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        _ => {}
    }
    Ok(())
}

/// Merges an applied configuration into a live object (`TypedValue.Merge`):
/// the configuration wins on leaves, objects merge field by field,
/// associative lists and sets item by item (live-only items keep their
/// place, as `mergingWalker.visitListItems` orders them).
pub fn merge(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    shape: &'static Shape,
) -> Result<Option<Value>, String> {
    let mut path = Vec::new();
    merge_at(lhs, rhs, shape, &mut path)
}

fn merge_at(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    shape: &'static Shape,
    path: &mut Vec<PathElement>,
) -> Result<Option<Value>, String> {
    let (Some(_), Some(r)) = (lhs, rhs) else {
        return Ok(rhs.or(lhs).cloned());
    };
    if pair_is_leaf(lhs, rhs, shape) {
        return Ok(Some(r.clone()));
    }
    match (node(lhs, shape), node(rhs, shape)) {
        (Node::Object(lm), Node::Object(rm)) => {
            let mut out = lm.cloned().unwrap_or_default();
            for (k, rv) in rm.into_iter().flatten() {
                path.push(PathElement::Field(k.clone()));
                let merged = merge_at(out.get(k), Some(rv), shape.field(k), path)?;
                path.pop();
                if let Some(v) = merged {
                    out.insert(k.clone(), v);
                }
            }
            Ok(Some(Value::Object(out)))
        }
        (Node::List(ll, list), Node::List(rl, _)) => {
            let lpes = index_items(ll.map(Vec::as_slice).unwrap_or(&[]), list, false, path)?;
            let rpes = index_items(rl.map(Vec::as_slice).unwrap_or(&[]), list, true, path)?;
            let observed_l: BTreeMap<&PathElement, &Value> =
                lpes.iter().map(|(p, v)| (p, *v)).collect();
            let observed_r: BTreeMap<&PathElement, &Value> =
                rpes.iter().map(|(p, v)| (p, *v)).collect();
            let mut shared = rpes
                .iter()
                .map(|(p, _)| p)
                .filter(|p| observed_l.contains_key(p));
            let mut next_shared = shared.next();
            let mut merged_r = std::collections::BTreeSet::new();
            let mut out = Vec::with_capacity(lpes.len().max(rpes.len()));
            let (mut li, mut ri) = (0, 0);
            let mut item = |pe: &PathElement,
                            l: Option<&Value>,
                            r: Option<&Value>,
                            out: &mut Vec<Value>|
             -> Result<(), String> {
                path.push(pe.clone());
                let m = merge_at(l, r, list.elem, path)?;
                path.pop();
                out.extend(m);
                Ok(())
            };
            while li < lpes.len() || ri < rpes.len() {
                if li < lpes.len() && ri < rpes.len() {
                    let pe = &lpes[li].0;
                    if *pe == rpes[ri].0 {
                        merged_r.insert(pe.clone());
                        item(pe, Some(lpes[li].1), observed_r.get(pe).copied(), &mut out)?;
                        li += 1;
                        ri += 1;
                        next_shared = shared.next();
                        continue;
                    }
                    if observed_r.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                        li += 1;
                        continue;
                    }
                }
                if li < lpes.len() {
                    let pe = &lpes[li].0;
                    if !observed_r.contains_key(pe) {
                        item(pe, Some(lpes[li].1), None, &mut out)?;
                        li += 1;
                        continue;
                    } else if merged_r.contains(pe) {
                        li += 1;
                        continue;
                    }
                }
                if ri < rpes.len() {
                    let pe = &rpes[ri].0;
                    merged_r.insert(pe.clone());
                    item(pe, observed_l.get(pe).copied(), Some(rpes[ri].1), &mut out)?;
                    ri += 1;
                    if next_shared == Some(pe) {
                        next_shared = shared.next();
                    }
                }
            }
            Ok(Some(Value::Array(out)))
        }
        _ => Ok(Some(r.clone())),
    }
}

/// `value` without the members of `set` (`TypedValue.RemoveItems`).
pub fn remove_items(value: &Value, set: &FieldSet, shape: &'static Shape) -> Value {
    match node(Some(value), shape) {
        Node::Object(Some(fields)) => Value::Object(
            fields
                .iter()
                .filter_map(|(k, v)| {
                    let pe = PathElement::Field(k.clone());
                    if set.is_member(&pe) {
                        return None;
                    }
                    Some(match set.child(&pe) {
                        Some(sub) => (k.clone(), remove_items(v, sub, shape.field(k))),
                        None => (k.clone(), v.clone()),
                    })
                })
                .collect(),
        ),
        Node::List(Some(items), list) => Value::Array(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let Ok(pe) = item_element(item, list, i) else {
                        return Some(item.clone());
                    };
                    if set.is_member(&pe) {
                        return None;
                    }
                    Some(match set.child(&pe) {
                        Some(sub) => remove_items(item, sub, list.elem),
                        None => item.clone(),
                    })
                })
                .collect(),
        ),
        _ => value.clone(),
    }
}

/// `Set.EnsureNamedFieldsAreMembers`: struct fields that lead to members
/// become members themselves (map keys do not), so that pruning removes a
/// struct field whose every owned descendant went away.
pub fn ensure_named_fields(set: &FieldSet, shape: &'static Shape) -> FieldSet {
    let mut out = FieldSet::new();
    for pe in set.members() {
        out.insert(std::slice::from_ref(pe));
    }
    for (pe, child) in set.children() {
        let child_shape = match pe {
            PathElement::Field(name) => {
                if shape.is_named_field() {
                    out.insert(std::slice::from_ref(pe));
                }
                shape.field(name)
            }
            _ => shape.elem(),
        };
        let ensured = ensure_named_fields(child, child_shape);
        for path in ensured.paths() {
            let mut full = vec![pe.clone()];
            full.extend(path);
            out.insert(&full);
        }
    }
    out
}

/// Drops null fields, as decoding into the Go types does.
pub fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}
