//! `metadata.managedFields`: decoding into per-manager field sets and
//! encoding back, as `k8s.io/apimachinery/pkg/util/managedfields/internal`
//! (`managedfields.go`) does: one entry per manager identity (manager,
//! operation, subresource, and for `Update` the apiVersion), sorted by
//! operation, time, manager, apiVersion, subresource.

use serde_json::{Value, json};

use super::fieldset::FieldSet;

/// One manager's ownership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    /// Empty for the main resource, else `status`, `scale`.
    pub subresource: String,
    pub time: Option<String>,
    pub fields: FieldSet,
}

impl Entry {
    /// Whether two entries are the same manager (`BuildManagerIdentifier`:
    /// an applier's identity leaves out the apiVersion).
    pub fn same_manager(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == "Apply" || self.api_version == other.api_version)
    }

    /// How conflict messages name the manager (`printManager` in
    /// `internal/conflict.go`): `"kubectl"`, or for an updater
    /// `"kubectl-edit" using apps/v1`.
    pub fn describe(&self) -> String {
        let mut s = quote(&self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {}", quote(&self.subresource)));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn to_value(&self) -> Value {
        let mut v = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.fields.to_fields_v1(),
        });
        if let Some(time) = &self.time {
            v["time"] = json!(time);
        }
        if !self.subresource.is_empty() {
            v["subresource"] = json!(self.subresource);
        }
        v
    }
}

fn quote(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// The entries of `obj`'s `metadata.managedFields`.
pub fn decode(obj: &Value) -> Result<Vec<Entry>, String> {
    let Some(list) = obj.pointer("/metadata/managedFields") else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = list else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Entry> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let text = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        if text("fieldsType") != "FieldsV1" {
            return Err(format!(
                "error decoding managed fields entry {i}: unsupported fieldsType {:?}",
                text("fieldsType")
            ));
        }
        let fields = match item.get("fieldsV1") {
            Some(v) => FieldSet::from_fields_v1(v)
                .map_err(|e| format!("error decoding managed fields entry {i}: {e}"))?,
            None => FieldSet::new(),
        };
        let entry = Entry {
            manager: text("manager"),
            operation: text("operation"),
            api_version: text("apiVersion"),
            subresource: text("subresource"),
            time: item.get("time").and_then(Value::as_str).map(str::to_string),
            fields,
        };
        if out.iter().any(|e| e.same_manager(&entry)) {
            return Err(format!(
                "error decoding managed fields entry {i}: duplicate entry for manager {}",
                entry.describe()
            ));
        }
        out.push(entry);
    }
    Ok(out)
}

/// `[{}]`: a client's request to clear the managed fields.
pub fn is_reset(obj: &Value) -> bool {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|l| l.len() == 1 && l[0].as_object().is_some_and(|m| m.is_empty()))
}

/// Writes `entries` (without empty ones) into `obj`'s metadata, sorted.
pub fn encode(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.fields.is_empty());
    let seconds = |e: &Entry| {
        e.time
            .as_deref()
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    entries.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| seconds(a).cmp(&seconds(b)))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    let meta = &mut obj["metadata"];
    if entries.is_empty() {
        if let Some(m) = meta.as_object_mut() {
            m.remove("managedFields");
        }
    } else {
        meta["managedFields"] = Value::Array(entries.iter().map(Entry::to_value).collect());
    }
}

/// `obj` without `metadata.managedFields`.
pub fn without_managed_fields(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(m) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    out
}
