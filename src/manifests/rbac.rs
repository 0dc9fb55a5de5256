//! The least-privilege identity zkmigrate runs as: a ServiceAccount, a
//! Role in the plan's namespace and the RoleBinding between them
//! (`zkmigrate rbac`, issue 7 item 5).
//!
//! The Role's rules are the rows of [`crate::k8s::GRANTS`] the plan needs,
//! one rule per row, in table order: the table preflight's access review
//! asks about, so the Role and the check cannot drift. Nothing is widened
//! for convenience: no `*`, no `list` where only `get` is made, no
//! ClusterRole. The plan's Namespace object (read by preflight) is granted
//! by the Role itself, by name (see `k8s::permissions`); what every
//! authenticated user may do by default is not granted again, and the
//! output says so in comments ([`not_granted`]).
//!
//! Pure: the objects are k8s-openapi types, rendered as the other
//! manifests are.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::labels;
use crate::k8s::{Grant, Scope, grants_for};
use crate::plan::ValidatedPlan;

/// The three objects of one plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Rbac {
    pub service_account: ServiceAccount,
    pub role: Role,
    pub role_binding: RoleBinding,
    /// The Role's rules' rows, in rule order (for the comments).
    pub granted: Vec<Grant>,
}

/// One of the three objects, as it serializes (untagged: each carries its
/// own `apiVersion` and `kind`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RbacObject {
    ServiceAccount(ServiceAccount),
    Role(Role),
    RoleBinding(RoleBinding),
}

impl Rbac {
    /// The objects in the order `kubectl apply` should create them.
    pub fn objects(&self) -> Vec<RbacObject> {
        vec![
            RbacObject::ServiceAccount(self.service_account.clone()),
            RbacObject::Role(self.role.clone()),
            RbacObject::RoleBinding(self.role_binding.clone()),
        ]
    }
}

/// The name of all three objects: `zkmigrate-<plan>`, so that several
/// plans' identities never collide.
pub fn rbac_name(plan: &ValidatedPlan) -> String {
    format!("zkmigrate-{}", plan.name)
}

/// The labels of the three objects. Not `app.kubernetes.io/managed-by:
/// zkmigrate`: the operator applies them, zkmigrate never touches them.
fn rbac_labels(plan: &ValidatedPlan) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::NAME.to_string(), "zkmigrate".to_string()),
        (
            "app.kubernetes.io/component".to_string(),
            "rbac".to_string(),
        ),
        (labels::PLAN.to_string(), plan.name.clone()),
    ])
}

fn meta(plan: &ValidatedPlan) -> ObjectMeta {
    ObjectMeta {
        name: Some(rbac_name(plan)),
        namespace: Some(plan.kubernetes.namespace.clone()),
        labels: Some(rbac_labels(plan)),
        ..ObjectMeta::default()
    }
}

/// The Role's rule for one row of the table.
fn rule(plan: &ValidatedPlan, grant: &Grant) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![grant.group.to_string()]),
        resources: Some(vec![grant.rbac_resource()]),
        resource_names: (grant.scope == Scope::OwnNamespace)
            .then(|| vec![plan.kubernetes.namespace.clone()]),
        verbs: grant.verbs.iter().map(|v| v.to_string()).collect(),
        non_resource_urls: None,
    }
}

/// The ServiceAccount, Role and RoleBinding zkmigrate needs to run `plan`.
pub fn rbac(plan: &ValidatedPlan) -> Rbac {
    let granted: Vec<Grant> = grants_for(plan)
        .into_iter()
        .filter(|g| matches!(g.scope, Scope::Namespace | Scope::OwnNamespace))
        .collect();
    let name = rbac_name(plan);
    Rbac {
        service_account: ServiceAccount {
            metadata: meta(plan),
            ..ServiceAccount::default()
        },
        role: Role {
            metadata: meta(plan),
            rules: Some(granted.iter().map(|g| rule(plan, g)).collect()),
        },
        role_binding: RoleBinding {
            metadata: meta(plan),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "Role".into(),
                name: name.clone(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name,
                namespace: Some(plan.kubernetes.namespace.clone()),
                api_group: None,
            }]),
        },
        granted,
    }
}

/// What zkmigrate uses but the Role does not grant, because the cluster's
/// default RBAC grants it to every authenticated user: one line each.
pub fn not_granted(plan: &ValidatedPlan) -> Vec<String> {
    let mut lines: Vec<String> = grants_for(plan)
        .iter()
        .filter_map(|g| match g.scope {
            Scope::ClusterDefault(role) => Some(format!(
                "{} {}{} (ClusterRole {role}, bound to system:authenticated): {}",
                g.verbs.join(", "),
                g.rbac_resource(),
                if g.group.is_empty() {
                    String::new()
                } else {
                    format!(".{}", g.group)
                },
                g.why
            )),
            Scope::Namespace | Scope::OwnNamespace => None,
        })
        .collect();
    lines.push(
        "get /version (ClusterRole system:public-info-viewer, bound to system:authenticated \
         and system:unauthenticated): preflight: the API server answers"
            .to_string(),
    );
    lines
}

/// The comment above the Role: why each rule is there.
pub fn rule_comments(rbac: &Rbac) -> Vec<String> {
    rbac.granted
        .iter()
        .map(|g| {
            let group = if g.group.is_empty() { "core" } else { g.group };
            format!(
                "{} ({group}): {}: {}",
                g.rbac_resource(),
                g.verbs.join(", "),
                g.why
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::{Permission, required_permissions};
    use crate::plan::StateBackend;

    /// Whether `rule` grants `p` as RBAC's `RuleAllows` decides it, for a
    /// request named `name` (`""`: unnamed, as a list).
    fn allows(rule: &PolicyRule, p: &Permission, name: &str) -> bool {
        let resource = if p.subresource.is_empty() {
            p.resource.to_string()
        } else {
            format!("{}/{}", p.resource, p.subresource)
        };
        let has = |list: &Option<Vec<String>>, v: &str| {
            list.as_ref().is_some_and(|l| l.iter().any(|x| x == v))
        };
        rule.verbs.iter().any(|v| v == p.verb)
            && has(&rule.api_groups, p.group)
            && has(&rule.resources, &resource)
            && match &rule.resource_names {
                None => true,
                Some(names) => names.iter().any(|n| n == name),
            }
    }

    /// The Role grants exactly what preflight checks: each checked
    /// permission by some rule, and no rule a verb that is not checked.
    #[test]
    fn the_role_grants_exactly_what_preflight_checks() {
        for backend in [
            StateBackend::File {
                path: "x.json".into(),
            },
            StateBackend::Kubernetes,
        ] {
            let mut plan = crate::plan::testing::three_servers("StatefulSet");
            plan.state = backend;
            let ns = plan.kubernetes.namespace.clone();
            let role = rbac(&plan).role;
            let rules = role.rules.unwrap();
            let checked = required_permissions(&plan);
            for p in &checked {
                let name = match p.scope {
                    Scope::OwnNamespace => ns.as_str(),
                    _ => "",
                };
                assert!(rules.iter().any(|r| allows(r, p, name)), "{p} not granted");
            }
            let granted: usize = rules.iter().map(|r| r.verbs.len()).sum();
            assert_eq!(granted, checked.len(), "{rules:?}");
        }
    }

    #[test]
    fn the_namespace_rule_names_the_plans_namespace_only() {
        let plan = crate::plan::testing::three_servers("StatefulSet");
        let rules = rbac(&plan).role.rules.unwrap();
        let ns_rule = rules
            .iter()
            .find(|r| r.resources.as_deref() == Some(&["namespaces".to_string()][..]))
            .unwrap();
        assert_eq!(ns_rule.verbs, ["get"]);
        assert_eq!(
            ns_rule.resource_names.as_deref(),
            Some(&[plan.kubernetes.namespace.clone()][..])
        );
        assert!(
            rules
                .iter()
                .filter(|r| r != &ns_rule)
                .all(|r| r.resource_names.is_none())
        );
        assert!(
            rules
                .iter()
                .flat_map(|r| r.verbs.iter().chain(r.resources.iter().flatten()))
                .all(|s| s != "*"),
            "no wildcard"
        );
    }

    #[test]
    fn the_binding_binds_the_role_to_the_service_account() {
        let plan = crate::plan::testing::three_servers("PerServer");
        let r = rbac(&plan);
        assert_eq!(r.role_binding.role_ref.name, rbac_name(&plan));
        assert_eq!(r.role_binding.role_ref.kind, "Role");
        let subject = &r.role_binding.subjects.as_ref().unwrap()[0];
        assert_eq!(subject.kind, "ServiceAccount");
        assert_eq!(
            Some(&subject.name),
            r.service_account.metadata.name.as_ref()
        );
        assert_eq!(subject.namespace, r.service_account.metadata.namespace);
        assert!(not_granted(&plan)[0].starts_with(
            "create selfsubjectaccessreviews.authorization.k8s.io (ClusterRole system:basic-user"
        ));
    }
}
