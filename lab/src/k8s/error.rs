//! API errors as the real API server returns them: a `Status` object with
//! `code`, `reason`, `message` and, for 422, `details.causes` naming each
//! invalid field. kube-rs and kubectl read these fields, so their shape
//! follows `k8s.io/apimachinery/pkg/api/errors` (`NewNotFound`,
//! `NewAlreadyExists`, `NewConflict`, `NewInvalid`, `NewGone`).

use serde_json::{Value, json};

/// One invalid field of a 422 (`metav1.StatusCause`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueDuplicate`,
    /// `FieldValueForbidden`, `FieldValueNotSupported`, ...
    pub reason: String,
    /// The field path, e.g. `spec.ports[0].name`.
    pub field: String,
    pub message: String,
}

impl Cause {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Cause {
        Cause {
            reason: "FieldValueInvalid".into(),
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn required(field: impl Into<String>) -> Cause {
        Cause {
            reason: "FieldValueRequired".into(),
            field: field.into(),
            message: "Required value".into(),
        }
    }
    pub fn forbidden(field: impl Into<String>, message: impl Into<String>) -> Cause {
        Cause {
            reason: "FieldValueForbidden".into(),
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn duplicate(field: impl Into<String>, message: impl Into<String>) -> Cause {
        Cause {
            reason: "FieldValueDuplicate".into(),
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn not_supported(field: impl Into<String>, message: impl Into<String>) -> Cause {
        Cause {
            reason: "FieldValueNotSupported".into(),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error of the API, rendered as a `Status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    /// For `details`: kind (plural resource), group, name.
    pub kind: Option<String>,
    pub group: Option<String>,
    pub name: Option<String>,
    pub causes: Vec<Cause>,
}

impl ApiError {
    fn new(code: u16, reason: &str, message: String) -> ApiError {
        ApiError {
            code,
            reason: reason.into(),
            message,
            kind: None,
            group: None,
            name: None,
            causes: Vec::new(),
        }
    }

    fn with_details(mut self, plural: &str, group: &str, name: &str) -> ApiError {
        self.kind = Some(plural.into());
        self.group = Some(group.into());
        self.name = Some(name.into());
        self
    }

    /// 404: `pods "zk-0" not found`.
    pub fn not_found(plural: &str, group: &str, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(plural, group)),
        )
        .with_details(plural, group, name)
    }

    /// 409: `services "zk-1" already exists`.
    pub fn already_exists(plural: &str, group: &str, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(plural, group)),
        )
        .with_details(plural, group, name)
    }

    /// 409: a stale resourceVersion or an apply conflict.
    pub fn conflict(plural: &str, group: &str, name: &str, why: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(plural, group)
            ),
        )
        .with_details(plural, group, name)
    }

    /// 422 with one cause per invalid field.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> ApiError {
        let list: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let mut e = ApiError::new(
            422,
            "Invalid",
            format!(
                "{}.{} \"{name}\" is invalid: {}",
                kind,
                if group.is_empty() { "" } else { group },
                list.join(", ")
            )
            .replace(". \"", " \""),
        );
        e.kind = Some(kind.into());
        e.group = Some(group.into());
        e.name = Some(name.into());
        e.causes = causes;
        e
    }

    /// 410: the watch's resourceVersion is older than the history kept.
    pub fn gone(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message.into())
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message.into())
    }

    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(405, "MethodNotAllowed", message.into())
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(415, "UnsupportedMediaType", message.into())
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized".into())
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "Forbidden", message.into())
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", message.into())
    }

    pub fn too_many_requests(message: impl Into<String>) -> ApiError {
        ApiError::new(429, "TooManyRequests", message.into())
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.kind.is_some() || !self.causes.is_empty() {
            let mut details = json!({});
            if let Some(name) = &self.name {
                details["name"] = json!(name);
            }
            if let Some(group) = &self.group {
                details["group"] = json!(group);
            }
            if let Some(kind) = &self.kind {
                details["kind"] = json!(kind);
            }
            if !self.causes.is_empty() {
                details["causes"] = Value::Array(
                    self.causes
                        .iter()
                        .map(
                            |c| json!({"reason": c.reason, "message": c.message, "field": c.field}),
                        )
                        .collect(),
                );
            }
            status["details"] = details;
        }
        status
    }
}

/// `pods` or `statefulsets.apps`, as the real messages write resources.
fn qualified(plural: &str, group: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_look_like_the_real_ones() {
        let s = ApiError::not_found("statefulsets", "apps", "zk").to_status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["message"], "statefulsets.apps \"zk\" not found");
        let s = ApiError::invalid(
            "Service",
            "",
            "zk-1",
            vec![Cause::duplicate(
                "spec.ports[1].name",
                "Duplicate value: \"client\"",
            )],
        )
        .to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(
            s["message"],
            "Service \"zk-1\" is invalid: spec.ports[1].name: Duplicate value: \"client\""
        );
        assert_eq!(s["details"]["causes"][0]["field"], "spec.ports[1].name");
    }
}
