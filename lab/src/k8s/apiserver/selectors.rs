//! Label and field selectors of list and watch requests.
//!
//! Label selectors follow `k8s.io/apimachinery/pkg/labels/selector.go`
//! (`Parse`): comma-separated requirements `k=v`, `k==v`, `k!=v`,
//! `k in (a,b)`, `k notin (a)`, `k`, `!k`, `k>1`, `k<1`; `!=` and `notin`
//! also match objects without the label. Field selectors follow
//! `k8s.io/apimachinery/pkg/fields/selector.go`, and only the field labels
//! each kind's registry makes selectable are accepted (others are a 400,
//! as `field label not supported`), e.g. `pkg/registry/core/pod/strategy.go`
//! `PodToSelectableFields` and `pkg/apis/core/v1/conversion.go`.

use serde_json::Value;

use crate::k8s::error::ApiError;
use crate::k8s::resources::Resource;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Exists,
    DoesNotExist,
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Gt(i64),
    Lt(i64),
}

/// A parsed label selector (empty: everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<(String, Op)>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Not,
    Eq,
    NotEq,
    Open,
    Close,
    Comma,
    Gt,
    Lt,
}

fn tokenize(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '!' => {
                chars.next();
                if chars.peek() == Some(&'=') {
                    chars.next();
                    out.push(Tok::NotEq);
                } else {
                    out.push(Tok::Not);
                }
            }
            '=' => {
                chars.next();
                if chars.peek() == Some(&'=') {
                    chars.next();
                }
                out.push(Tok::Eq);
            }
            '(' | ')' | ',' | '>' | '<' => {
                chars.next();
                out.push(match c {
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    ',' => Tok::Comma,
                    '>' => Tok::Gt,
                    _ => Tok::Lt,
                });
            }
            _ => {
                let mut id = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "!=(),<>".contains(c) {
                        break;
                    }
                    id.push(c);
                    chars.next();
                }
                out.push(Tok::Ident(id));
            }
        }
    }
    out
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<LabelSelector, ApiError> {
        let bad = |why: &str| {
            ApiError::bad_request(format!(
                "unable to parse requirement: {why} in label selector {s:?}"
            ))
        };
        let toks = tokenize(s);
        let mut i = 0;
        let mut reqs = Vec::new();
        let ident = |i: usize| match toks.get(i) {
            Some(Tok::Ident(s)) => Some(s.clone()),
            _ => None,
        };
        while i < toks.len() {
            if toks[i] == Tok::Not {
                let key = ident(i + 1).ok_or_else(|| bad("a key must follow '!'"))?;
                reqs.push((key, Op::DoesNotExist));
                i += 2;
            } else {
                let key = ident(i).ok_or_else(|| bad("a key is expected"))?;
                i += 1;
                let value = |i: usize| match toks.get(i) {
                    Some(Tok::Ident(v)) => (v.clone(), i + 1),
                    _ => (String::new(), i),
                };
                match toks.get(i) {
                    None | Some(Tok::Comma) => reqs.push((key, Op::Exists)),
                    Some(Tok::Eq) => {
                        let (v, next) = value(i + 1);
                        reqs.push((key, Op::Equals(v)));
                        i = next;
                    }
                    Some(Tok::NotEq) => {
                        let (v, next) = value(i + 1);
                        reqs.push((key, Op::NotEquals(v)));
                        i = next;
                    }
                    Some(Tok::Gt) | Some(Tok::Lt) => {
                        let (v, next) = value(i + 1);
                        let n: i64 = v.parse().map_err(|_| bad("an integer is expected"))?;
                        reqs.push((
                            key,
                            if toks[i] == Tok::Gt {
                                Op::Gt(n)
                            } else {
                                Op::Lt(n)
                            },
                        ));
                        i = next;
                    }
                    Some(Tok::Ident(op)) if op == "in" || op == "notin" => {
                        let not = op == "notin";
                        if toks.get(i + 1) != Some(&Tok::Open) {
                            return Err(bad("'(' is expected"));
                        }
                        i += 2;
                        let mut values = Vec::new();
                        loop {
                            match toks.get(i) {
                                Some(Tok::Ident(v)) => values.push(v.clone()),
                                Some(Tok::Comma) => {}
                                Some(Tok::Close) => break,
                                _ => return Err(bad("')' is expected")),
                            }
                            i += 1;
                        }
                        i += 1;
                        reqs.push((
                            key,
                            if not {
                                Op::NotIn(values)
                            } else {
                                Op::In(values)
                            },
                        ));
                    }
                    Some(_) => return Err(bad("an operator is expected")),
                }
            }
            match toks.get(i) {
                None => {}
                Some(Tok::Comma) => i += 1,
                Some(_) => return Err(bad("',' is expected")),
            }
        }
        Ok(LabelSelector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        self.0.iter().all(|(key, op)| {
            let v = labels.get(key).and_then(Value::as_str);
            match op {
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
                Op::Equals(want) => v == Some(want.as_str()),
                Op::NotEquals(want) => v != Some(want.as_str()),
                Op::In(set) => v.is_some_and(|v| set.iter().any(|s| s == v)),
                Op::NotIn(set) => v.is_none_or(|v| !set.iter().any(|s| s == v)),
                Op::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *n),
                Op::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *n),
            }
        })
    }
}

/// A `metav1.LabelSelector` object as its string form (what a Scale's
/// `status.selector` carries).
pub fn selector_string(selector: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(m) = selector["matchLabels"].as_object() {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or("")));
        }
    }
    for e in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or("");
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    parts.join(",")
}

/// A parsed field selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>); // field, equal?, value

/// The field labels `resource` makes selectable beyond `metadata.name` and
/// `metadata.namespace`.
fn selectable(resource: &Resource) -> &'static [&'static str] {
    match (resource.group, resource.kind) {
        ("", "Pod") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "Event") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "Namespace") => &["status.phase"],
        ("", "Service") => &["spec.clusterIP", "spec.type"],
        _ => &[],
    }
}

impl FieldSelector {
    pub fn parse(resource: &Resource, s: &str) -> Result<FieldSelector, ApiError> {
        let mut out = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                )));
            };
            let field = field.trim();
            if !matches!(field, "metadata.name" | "metadata.namespace")
                && !selectable(resource).contains(&field)
            {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            out.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(field, equal, want)| {
            let path = if field == "source" {
                "source.component"
            } else {
                field
            };
            let mut v = obj;
            for part in path.split('.') {
                v = &v[part];
            }
            let got = match v {
                Value::String(s) => s.clone(),
                Value::Null => {
                    if field == "spec.hostNetwork" {
                        "false".into()
                    } else {
                        String::new()
                    }
                }
                other => other.to_string(),
            };
            (got == *want) == *equal
        })
    }
}

/// Both selectors of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub fn from_query(resource: &Resource, q: &super::http::Query) -> Result<Selectors, ApiError> {
        Ok(Selectors {
            labels: LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(resource, q.get("fieldSelector").unwrap_or(""))?,
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::resources;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "zk-0", "namespace": "zk", "labels": labels},
               "spec": {"nodeName": "lab"}, "status": {"phase": "Running"}})
    }

    #[test]
    fn label_selectors_match_as_the_real_ones() {
        let o = obj(json!({"app": "zk", "tier": "db", "n": "3"}));
        let yes = [
            "",
            "app=zk",
            "app==zk",
            "app!=web",
            "app in (zk, web)",
            "tier notin (web)",
            "app",
            "!missing",
            "missing!=x",
            "missing notin (x)",
            "app=zk,tier=db",
            "n>2",
            "n<4",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&o), "{s}");
        }
        let no = [
            "app=web",
            "app!=zk",
            "app in (web)",
            "tier notin (db)",
            "missing",
            "!app",
            "app=zk,tier=web",
            "n>3",
            "missing in (x)",
        ];
        for s in no {
            assert!(!LabelSelector::parse(s).unwrap().matches(&o), "{s}");
        }
        for bad in ["app in zk", "app in (zk", "=x", "app zk"] {
            assert_eq!(LabelSelector::parse(bad).unwrap_err().code, 400, "{bad}");
        }
    }

    #[test]
    fn field_selectors_accept_only_selectable_fields() {
        let o = obj(json!({}));
        let pods = resources::pods();
        for s in [
            "metadata.name=zk-0",
            "status.phase=Running,spec.nodeName=lab",
            "status.phase!=Pending",
            "spec.hostNetwork=false",
        ] {
            assert!(FieldSelector::parse(pods, s).unwrap().matches(&o), "{s}");
        }
        assert!(
            !FieldSelector::parse(pods, "metadata.namespace=x")
                .unwrap()
                .matches(&o)
        );
        let e = FieldSelector::parse(resources::configmaps(), "status.phase=x").unwrap_err();
        assert_eq!(e.message, "field label not supported: status.phase");
    }

    #[test]
    fn selector_objects_render_as_strings() {
        let s = json!({"matchLabels": {"app": "zk"}, "matchExpressions": [{"key": "t", "operator": "In", "values": ["a", "b"]}]});
        assert_eq!(selector_string(&s), "app=zk,t in (a,b)");
    }
}
