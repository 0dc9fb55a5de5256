//! The errors of the Kubernetes boundary, and how an API failure is read.
//!
//! One enum for the whole boundary (STYLE convention 4). Every variant that
//! concerns an object names its kind, name and namespace, because an
//! operator reading "failed to apply Service zk-1 in namespace zookeeper"
//! knows at once what to look at with `kubectl`. The API's own `Status`
//! is rendered as `message (Reason, code)` rather than kube's debug dump.
//!
//! The classification functions ([`is_transient`], [`field_conflicts`])
//! are pure, so the retry policy and the conflict report are unit-tested
//! without a server.

use std::time::Duration;

use kube::core::Status;

/// A field another field manager owns, from a server-side apply 409.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldConflict {
    /// The other field manager, e.g. `kubectl-edit`.
    pub manager: String,
    /// The field path as the API reports it, e.g. `.spec.ports`.
    pub field: String,
}

/// What failed at the Kubernetes boundary.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error("failed to load the kubeconfig{}: {source}", context_suffix(.context))]
    Kubeconfig {
        context: Option<String>,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "failed to find a Kubernetes configuration: no kubeconfig ($KUBECONFIG or ~/.kube/config) and not in a cluster: {source}"
    )]
    NoConfig {
        #[source]
        source: kube::config::InClusterError,
    },
    #[error("failed to build a Kubernetes client for {cluster_url}: {source}")]
    Client {
        cluster_url: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("failed to {action} {kind} {name} in namespace {namespace}: {detail}")]
    Api {
        action: &'static str,
        kind: String,
        name: String,
        namespace: String,
        detail: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(
        "failed to apply {kind} {name} in namespace {namespace}: {}; zkmigrate does not take fields over without being told to: see who changed them with `kubectl get {} {name} -n {namespace} -o yaml --show-managed-fields`",
        describe_conflicts(.conflicts),
        .kind.to_lowercase()
    )]
    Conflict {
        kind: String,
        name: String,
        namespace: String,
        conflicts: Vec<FieldConflict>,
    },
    #[error("failed to apply a {kind} in namespace {namespace}: it has no metadata.name")]
    NoName { kind: String, namespace: String },
    #[error("failed to watch for {what} in namespace {namespace}: {detail}")]
    Watch {
        what: String,
        namespace: String,
        detail: String,
        #[source]
        source: Box<kube::runtime::watcher::Error>,
    },
    #[error(
        "failed to see {what} in namespace {namespace} within {}; last seen: {last_seen}",
        humantime::format_duration(*.timeout)
    )]
    Timeout {
        what: String,
        namespace: String,
        timeout: Duration,
        last_seen: String,
    },
}

impl K8sError {
    /// The HTTP status of the API's answer, when the API answered.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            K8sError::Api { source, .. } => api_status(source).map(|s| s.code),
            K8sError::Conflict { .. } => Some(409),
            _ => None,
        }
    }

    /// The API said 403: the credentials lack a permission.
    pub fn is_forbidden(&self) -> bool {
        self.status_code() == Some(403)
    }

    /// A wait ran out of time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, K8sError::Timeout { .. })
    }
}

fn context_suffix(context: &Option<String>) -> String {
    context
        .as_ref()
        .map(|c| format!(" (context {c})"))
        .unwrap_or_default()
}

fn describe_conflicts(conflicts: &[FieldConflict]) -> String {
    let fields: Vec<String> = conflicts
        .iter()
        .map(|c| format!("{} (managed by {:?})", c.field, c.manager))
        .collect();
    let noun = if conflicts.len() == 1 {
        "field is"
    } else {
        "fields are"
    };
    format!(
        "{} {noun} managed by another field manager: {}",
        conflicts.len(),
        fields.join(", ")
    )
}

/// The API's `Status`, when the error is an answer of the API server.
pub(crate) fn api_status(err: &kube::Error) -> Option<&Status> {
    match err {
        kube::Error::Api(status) => Some(status),
        _ => None,
    }
}

/// A one-line description of a kube error: the API's message with its
/// reason and code, or kube's own text for transport failures.
pub(crate) fn describe(err: &kube::Error) -> String {
    match api_status(err) {
        Some(status) if !status.message.is_empty() => {
            format!("{} ({}, {})", status.message, status.reason, status.code)
        }
        Some(status) => format!("{} ({})", status.reason, status.code),
        None => err.to_string(),
    }
}

/// Whether a request that failed this way may succeed if sent again:
/// throttling (429), the server's own failures (500, 502, 503, 504),
/// failures to reach it, and a 409 `Conflict` that is not a field-manager
/// conflict ("the object has been modified": another writer got there
/// between the server's read and write; zkmigrate sends no
/// resourceVersion, so the same request applies to the newer object).
/// Every other answer is final: a 404, 403, 422, an `AlreadyExists` or a
/// server-side apply conflict with another field manager says the same the
/// second time.
pub fn is_transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) if status.code == 409 => {
            status.reason == "Conflict" && field_conflicts(err).is_none()
        }
        kube::Error::Api(status) => matches!(status.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// The fields of a server-side apply conflict, from the 409's
/// `FieldManagerConflict` causes (`conflict with "kubectl-edit" using
/// apps/v1`); `None` when the 409 is not an apply conflict.
pub fn field_conflicts(err: &kube::Error) -> Option<Vec<FieldConflict>> {
    let status = api_status(err)?;
    if status.code != 409 {
        return None;
    }
    let causes = status.details.as_ref().map(|d| d.causes.as_slice())?;
    let conflicts: Vec<FieldConflict> = causes
        .iter()
        .filter(|c| c.reason == "FieldManagerConflict")
        .map(|c| FieldConflict {
            manager: conflicting_manager(&c.message),
            field: c.field.clone(),
        })
        .collect();
    (!conflicts.is_empty()).then_some(conflicts)
}

/// `conflict with "kubectl-edit" using apps/v1` -> `kubectl-edit`.
fn conflicting_manager(message: &str) -> String {
    let rest = message.strip_prefix("conflict with ").unwrap_or(message);
    match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next().unwrap_or(quoted).to_string(),
        None => rest.split(' ').next().unwrap_or(rest).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    fn api(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Status::failure("nope", reason).with_code(code).boxed())
    }

    #[test]
    fn only_throttling_server_failures_and_transport_are_retried() {
        for code in [429, 500, 502, 503, 504] {
            assert!(is_transient(&api(code, "x")), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 410, 422] {
            assert!(!is_transient(&api(code, "x")), "{code}");
        }
        // An optimistic-concurrency 409 is sent again; AlreadyExists is not.
        assert!(is_transient(&api(409, "Conflict")));
        assert!(!is_transient(&api(409, "AlreadyExists")));
        let serde = serde_json::from_str::<u8>("x").unwrap_err();
        assert!(!is_transient(&kube::Error::SerdeError(serde)));
        assert!(is_transient(&kube::Error::Service(
            "connection refused".into()
        )));
    }

    #[test]
    fn an_apply_conflict_names_the_other_manager_and_each_field() {
        // The 409 as the API server words it (`internal/conflict.go`).
        let status: Status = serde_json::from_str(
            r#"{"apiVersion":"v1","code":409,"details":{"causes":[
                {"field":".spec.ports","message":"conflict with \"kubectl-edit\" using v1","reason":"FieldManagerConflict"},
                {"field":".metadata.labels.x","message":"conflict with \"kubectl-edit\" using v1","reason":"FieldManagerConflict"}]},
              "kind":"Status","message":"Apply failed with 2 conflicts: conflicts with \"kubectl-edit\" using v1:\n- .spec.ports\n- .metadata.labels.x",
              "metadata":{},"reason":"Conflict","status":"Failure"}"#,
        )
        .unwrap();
        let err = kube::Error::Api(status.boxed());
        let conflicts = field_conflicts(&err).unwrap();
        assert_eq!(
            conflicts,
            vec![
                FieldConflict {
                    manager: "kubectl-edit".into(),
                    field: ".spec.ports".into()
                },
                FieldConflict {
                    manager: "kubectl-edit".into(),
                    field: ".metadata.labels.x".into()
                },
            ]
        );
        let err = K8sError::Conflict {
            kind: "Service".into(),
            name: "zk-1".into(),
            namespace: "zookeeper".into(),
            conflicts,
        };
        assert_eq!(
            err.to_string(),
            "failed to apply Service zk-1 in namespace zookeeper: 2 fields are managed by another \
             field manager: .spec.ports (managed by \"kubectl-edit\"), .metadata.labels.x \
             (managed by \"kubectl-edit\"); zkmigrate does not take fields over without being \
             told to: see who changed them with `kubectl get service zk-1 -n zookeeper -o yaml \
             --show-managed-fields`"
        );
        assert_eq!(err.status_code(), Some(409));
        // An apply conflict with another manager is final: never retried.
        let apply_conflict = kube::Error::Api(
            serde_json::from_str::<Status>(
                r#"{"code":409,"reason":"Conflict","message":"Apply failed","status":"Failure",
                   "details":{"causes":[{"field":".spec.ports","message":"conflict with \"x\"","reason":"FieldManagerConflict"}]}}"#,
            )
            .unwrap()
            .boxed(),
        );
        assert!(!is_transient(&apply_conflict));
        // A 409 of a stale resourceVersion is not an apply conflict.
        assert_eq!(field_conflicts(&api(409, "Conflict")), None);
    }

    #[test]
    fn an_api_error_names_kind_name_namespace_and_the_servers_words() {
        let source = kube::Error::Api(
            Status::failure(
                "services \"zk-1\" is forbidden: User \"x\" cannot patch resource \"services\"",
                "Forbidden",
            )
            .with_code(403)
            .boxed(),
        );
        let err = K8sError::Api {
            action: "apply",
            kind: "Service".into(),
            name: "zk-1".into(),
            namespace: "zookeeper".into(),
            detail: describe(&source),
            source: Box::new(source),
        };
        assert_eq!(
            err.to_string(),
            "failed to apply Service zk-1 in namespace zookeeper: services \"zk-1\" is forbidden: \
             User \"x\" cannot patch resource \"services\" (Forbidden, 403)"
        );
        assert!(err.is_forbidden());
    }
}
