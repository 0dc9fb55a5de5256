//! Authentication by bearer token and authorization by RBAC-like rules.
//!
//! A token names a user and what the user may do: everything, or a list
//! of rules matched as RBAC's `PolicyRule`s are
//! (`pkg/apis/rbac/v1/evaluation_helpers.go`: `VerbMatches`,
//! `APIGroupMatches`, `ResourceMatches` — `pods` does not grant
//! `pods/log`, `*/log` grants every `log`), plus the namespaces the rule
//! holds in (a Role's namespace; none means cluster-wide, as a
//! ClusterRoleBinding). Denials are worded as
//! `responsewriters.forbiddenMessage` and `errors.NewForbidden` word them,
//! because tools match on those messages.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::k8s::error::ApiError;

/// What a request asks to do (`authorizer.Attributes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

/// One rule: each list holds the allowed values, `*` for any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    /// `pods`, `pods/log`, `*/scale`, `*`.
    pub resources: Vec<String>,
    /// `None`: every namespace and cluster-scoped resources.
    pub namespaces: Option<Vec<String>>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl Rule {
    pub fn new(verbs: &[&str], api_groups: &[&str], resources: &[&str]) -> Rule {
        Rule {
            verbs: strings(verbs),
            api_groups: strings(api_groups),
            resources: strings(resources),
            namespaces: None,
        }
    }

    /// The rule holding only in `namespaces` (as a Role would).
    pub fn in_namespaces(mut self, namespaces: &[&str]) -> Rule {
        self.namespaces = Some(strings(namespaces));
        self
    }

    pub fn allows(&self, a: &Attributes) -> bool {
        let any = |list: &[String], v: &str| list.iter().any(|x| x == "*" || x == v);
        let resource_ok = self.resources.iter().any(|r| {
            if r == "*" {
                return true;
            }
            if a.subresource.is_empty() {
                return *r == a.resource;
            }
            *r == format!("{}/{}", a.resource, a.subresource)
                || r.strip_prefix("*/") == Some(a.subresource.as_str())
        });
        let namespace_ok = match &self.namespaces {
            None => true,
            Some(list) => !a.namespace.is_empty() && any(list, &a.namespace),
        };
        any(&self.verbs, &a.verb) && any(&self.api_groups, &a.group) && resource_ok && namespace_ok
    }
}

/// What a user may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Everything (a cluster-admin).
    All,
    /// What one of the rules allows.
    Rules(Vec<Rule>),
}

impl Access {
    pub fn allows(&self, a: &Attributes) -> bool {
        match self {
            Access::All => true,
            Access::Rules(rules) => rules.iter().any(|r| r.allows(a)),
        }
    }
}

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub access: Access,
}

/// The token table: bearer token to user.
#[derive(Debug, Clone, Default)]
pub struct Tokens(Arc<HashMap<String, User>>);

impl Tokens {
    pub fn new() -> Tokens {
        Tokens::default()
    }

    /// A table with one all-allowed user (`zklab-admin`).
    pub fn admin(token: &str) -> Tokens {
        Tokens::new().with(
            token,
            User {
                name: "zklab-admin".into(),
                access: Access::All,
            },
        )
    }

    pub fn with(mut self, token: &str, user: User) -> Tokens {
        Arc::make_mut(&mut self.0).insert(token.to_string(), user);
        self
    }

    /// The user of an `Authorization` header value; 401 without a bearer
    /// token or with an unknown one.
    pub fn authenticate(&self, header: Option<&str>) -> Result<&User, ApiError> {
        let token = header
            .and_then(|h| {
                let (scheme, token) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(ApiError::unauthorized)?;
        self.0.get(token).ok_or_else(ApiError::unauthorized)
    }
}

/// The 403 for a denied resource request, worded as the real one:
/// `pods is forbidden: User "x" cannot list resource "pods" in API group ""
/// in the namespace "zookeeper"`.
pub fn forbidden(user: &User, a: &Attributes) -> ApiError {
    let mut resource = a.resource.clone();
    if !a.subresource.is_empty() {
        resource = format!("{resource}/{}", a.subresource);
    }
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", a.namespace)
    };
    let why = format!(
        "User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
        user.name, a.verb, a.group
    );
    let qualified = if a.group.is_empty() {
        a.resource.clone()
    } else {
        format!("{}.{}", a.resource, a.group)
    };
    let message = if a.name.is_empty() {
        format!("{qualified} is forbidden: {why}")
    } else {
        format!("{qualified} \"{}\" is forbidden: {why}", a.name)
    };
    let mut e = ApiError::forbidden(message);
    e.kind = Some(a.resource.clone());
    e.group = Some(a.group.clone());
    e.name = Some(a.name.clone());
    e
}

/// The 403 for a denied non-resource request (`User "x" cannot get path "/y"`).
pub fn forbidden_path(user: &User, verb: &str, path: &str) -> ApiError {
    ApiError::forbidden(format!(
        "forbidden: User \"{}\" cannot {verb} path \"{path}\"",
        user.name
    ))
}

/// Answers a SelfSubjectAccessReview (`authorization.k8s.io/v1`) from the
/// user's own rules: the review comes back with `status.allowed`.
pub fn self_subject_access_review(user: &User, review: &Value) -> Result<Value, ApiError> {
    let spec = &review["spec"];
    let allowed = if let Some(ra) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        let s = |k: &str| ra[k].as_str().unwrap_or("").to_string();
        user.access.allows(&Attributes {
            verb: s("verb"),
            group: s("group"),
            resource: s("resource"),
            subresource: s("subresource"),
            namespace: s("namespace"),
            name: s("name"),
        })
    } else if spec
        .get("nonResourceAttributes")
        .is_some_and(|v| v.is_object())
    {
        // Every authenticated user may read the discovery and health paths
        // (`system:discovery`, `system:public-info-viewer`); nothing else
        // non-resource is served.
        matches!(user.access, Access::All)
            || spec["nonResourceAttributes"]["verb"].as_str() == Some("get")
    } else {
        let mut e = ApiError::invalid(
            "SelfSubjectAccessReview",
            "authorization.k8s.io",
            "",
            vec![crate::k8s::error::Cause::invalid(
                "spec.resourceAttributes",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )],
        );
        e.message = e.message.replace(" \"\"", "");
        return Err(e);
    };
    let mut out = review.clone();
    out["apiVersion"] = json!("authorization.k8s.io/v1");
    out["kind"] = json!("SelfSubjectAccessReview");
    if !out["metadata"].is_object() {
        out["metadata"] = json!({});
    }
    out["metadata"]["creationTimestamp"] = Value::Null;
    out["status"] = if allowed {
        json!({"allowed": true, "reason": format!("allowed for user \"{}\"", user.name)})
    } else {
        json!({"allowed": false})
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(verb: &str, resource: &str, sub: &str, ns: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            ..Default::default()
        }
    }

    #[test]
    fn rules_match_as_rbac_does() {
        let r = Rule::new(&["get", "list"], &[""], &["pods"]).in_namespaces(&["zk"]);
        assert!(r.allows(&attrs("list", "pods", "", "zk")));
        assert!(!r.allows(&attrs("list", "pods", "", "other")));
        assert!(
            !r.allows(&attrs("list", "pods", "", "")),
            "cluster-wide list"
        );
        assert!(
            !r.allows(&attrs("get", "pods", "log", "zk")),
            "pods is not pods/log"
        );
        assert!(!r.allows(&attrs("delete", "pods", "", "zk")));
        let r = Rule::new(&["*"], &["*"], &["*/log"]);
        assert!(r.allows(&attrs("get", "pods", "log", "zk")));
        assert!(!r.allows(&attrs("get", "pods", "", "zk")));
    }

    #[test]
    fn denials_are_worded_as_the_real_ones() {
        let user = User {
            name: "x".into(),
            access: Access::Rules(vec![]),
        };
        let e = forbidden(&user, &attrs("list", "pods", "", "zookeeper"));
        assert_eq!(
            e.message,
            "pods is forbidden: User \"x\" cannot list resource \"pods\" in API group \"\" in the namespace \"zookeeper\""
        );
        assert_eq!(e.code, 403);
        let tokens = Tokens::admin("t");
        assert_eq!(
            tokens.authenticate(Some("Bearer t")).unwrap().name,
            "zklab-admin"
        );
        assert_eq!(tokens.authenticate(Some("Bearer u")).unwrap_err().code, 401);
        assert_eq!(tokens.authenticate(None).unwrap_err().code, 401);
    }
}
