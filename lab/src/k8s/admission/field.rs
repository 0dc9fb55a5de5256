//! Field errors as apimachinery renders them
//! (`k8s.io/apimachinery/pkg/util/validation/field/errors.go`): every
//! validator of the admission stage appends to one [`FieldErrors`], and the
//! whole list becomes one 422 whose `details.causes` carry the field path,
//! the reason (`FieldValueInvalid`, ...) and the message body
//! (`Invalid value: "x": detail`), exactly the strings kubectl prints.
//!
//! Bad values are rendered as Go does: strings quoted (`%q`), numbers bare,
//! anything else in Go's `%#v` form, which callers build with the helpers
//! below (`[]string{"a"}`, `map[string]string{"k":"v"}`).

use crate::k8s::error::Cause;

/// A bad value, as `field.Error.ErrorBody` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bad {
    /// A string: printed quoted.
    Str(String),
    /// A number or bool: printed bare.
    Num(String),
    /// Already in Go's `%#v` form.
    Go(String),
}

impl Bad {
    fn render(&self) -> String {
        match self {
            Bad::Str(s) => go_quote(s),
            Bad::Num(s) | Bad::Go(s) => s.clone(),
        }
    }
}

impl From<&str> for Bad {
    fn from(s: &str) -> Bad {
        Bad::Str(s.to_string())
    }
}
impl From<&String> for Bad {
    fn from(s: &String) -> Bad {
        Bad::Str(s.clone())
    }
}
impl From<String> for Bad {
    fn from(s: String) -> Bad {
        Bad::Str(s)
    }
}
impl From<i64> for Bad {
    fn from(n: i64) -> Bad {
        Bad::Num(n.to_string())
    }
}
impl From<i32> for Bad {
    fn from(n: i32) -> Bad {
        Bad::Num(n.to_string())
    }
}
impl From<usize> for Bad {
    fn from(n: usize) -> Bad {
        Bad::Num(n.to_string())
    }
}

/// Go's `%q` for the strings the API carries.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `[]string{"a", "b"}`.
pub fn go_strings<S: AsRef<str>>(items: &[S]) -> Bad {
    let inner: Vec<String> = items.iter().map(|s| go_quote(s.as_ref())).collect();
    Bad::Go(format!("[]string{{{}}}", inner.join(", ")))
}

/// `map[string]string{"a":"b", "c":"d"}` (Go prints maps sorted by key).
pub fn go_string_map<'a>(items: impl IntoIterator<Item = (&'a String, &'a String)>) -> Bad {
    let mut pairs: Vec<(&String, &String)> = items.into_iter().collect();
    pairs.sort();
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
        .collect();
    Bad::Go(format!("map[string]string{{{}}}", inner.join(", ")))
}

/// `path[i]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// `path[key]`, as `field.Path.Key` writes map keys (unquoted).
pub fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

/// The errors of one admission, in the order they were found.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<Cause>);

impl FieldErrors {
    pub fn new() -> FieldErrors {
        FieldErrors(Vec::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    #[cfg(test)]
    pub fn causes(&self) -> &[Cause] {
        &self.0
    }

    pub fn into_causes(self) -> Vec<Cause> {
        self.0
    }

    fn push(&mut self, reason: &str, field: impl Into<String>, message: String) {
        self.0.push(Cause {
            reason: reason.into(),
            field: field.into(),
            message,
        });
    }

    /// `field.Invalid`: `Invalid value: <value>: <detail>`.
    pub fn invalid(&mut self, field: impl Into<String>, value: impl Into<Bad>, detail: &str) {
        let mut m = format!("Invalid value: {}", value.into().render());
        if !detail.is_empty() {
            m.push_str(": ");
            m.push_str(detail);
        }
        self.push("FieldValueInvalid", field, m);
    }

    /// `field.Required`: `Required value[: <detail>]`.
    pub fn required(&mut self, field: impl Into<String>, detail: &str) {
        self.push(
            "FieldValueRequired",
            field,
            with_detail("Required value", detail),
        );
    }

    /// `field.Forbidden`: `Forbidden: <detail>`.
    pub fn forbidden(&mut self, field: impl Into<String>, detail: &str) {
        self.push(
            "FieldValueForbidden",
            field,
            with_detail("Forbidden", detail),
        );
    }

    /// `field.Duplicate`: `Duplicate value: <value>`.
    pub fn duplicate(&mut self, field: impl Into<String>, value: impl Into<Bad>) {
        let m = format!("Duplicate value: {}", value.into().render());
        self.push("FieldValueDuplicate", field, m);
    }

    /// `field.NotFound`: `Not found: <value>`.
    pub fn not_found(&mut self, field: impl Into<String>, value: impl Into<Bad>) {
        let m = format!("Not found: {}", value.into().render());
        self.push("FieldValueNotFound", field, m);
    }

    /// `field.NotSupported`: `Unsupported value: <value>: supported values: "a", "b"`.
    pub fn not_supported(
        &mut self,
        field: impl Into<String>,
        value: impl Into<Bad>,
        valid: &[&str],
    ) {
        let list: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
        let m = format!(
            "Unsupported value: {}: supported values: {}",
            value.into().render(),
            list.join(", ")
        );
        self.push("FieldValueNotSupported", field, m);
    }

    /// `field.TooMany`: `Too many: <n>: must have at most <max> items`.
    pub fn too_many(&mut self, field: impl Into<String>, actual: usize, max: usize) {
        let m = format!("Too many: {actual}: must have at most {max} items");
        self.push("FieldValueTooMany", field, m);
    }

    /// `field.TooLong`: `Too long: may not be more than <max> bytes`.
    pub fn too_long(&mut self, field: impl Into<String>, max: usize) {
        let m = format!("Too long: may not be more than {max} bytes");
        self.push("FieldValueTooLong", field, m);
    }

    /// One `field.Invalid` per message of a `validation.IsXxx` check.
    pub fn invalid_each(&mut self, field: &str, value: &str, msgs: Vec<String>) {
        for msg in msgs {
            self.invalid(field, value, &msg);
        }
    }

    pub fn extend(&mut self, other: FieldErrors) {
        self.0.extend(other.0);
    }
}

fn with_detail(head: &str, detail: &str) -> String {
    if detail.is_empty() {
        head.to_string()
    } else {
        format!("{head}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_rendered_as_apimachinery_does() {
        let mut e = FieldErrors::new();
        e.invalid(
            "spec.ports[0].port",
            0,
            "must be between 1 and 65535, inclusive",
        );
        e.invalid("metadata.name", "Zk", "bad");
        e.required("spec.selector", "");
        e.duplicate("spec.ports[1].name", "client");
        e.not_supported("addressType", "IPv5", &["FQDN", "IPv4", "IPv6"]);
        e.invalid("spec.clusterIPs", go_strings(&["10.96.0.5"]), "x");
        e.too_many("endpoints[0].addresses", 101, 100);
        let m: Vec<&str> = e.causes().iter().map(|c| c.message.as_str()).collect();
        assert_eq!(
            m,
            [
                "Invalid value: 0: must be between 1 and 65535, inclusive",
                "Invalid value: \"Zk\": bad",
                "Required value",
                "Duplicate value: \"client\"",
                "Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"",
                "Invalid value: []string{\"10.96.0.5\"}: x",
                "Too many: 101: must have at most 100 items",
            ]
        );
        assert_eq!(e.causes()[3].reason, "FieldValueDuplicate");
    }

    #[test]
    fn maps_print_sorted() {
        let mut m = std::collections::BTreeMap::new();
        m.insert("b".to_string(), "2".to_string());
        m.insert("a".to_string(), "1".to_string());
        assert_eq!(
            go_string_map(&m),
            Bad::Go("map[string]string{\"a\":\"1\", \"b\":\"2\"}".into())
        );
    }
}
