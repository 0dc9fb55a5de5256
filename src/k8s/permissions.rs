//! Every Kubernetes permission zkmigrate needs, in one table ([`GRANTS`]):
//! the preflight asks the API server about each of them
//! (SelfSubjectAccessReview, `access`), and `zkmigrate rbac` prints the
//! Role that grants exactly them, so the check and the Role cannot drift.
//!
//! The table was derived from the requests the code makes, call site by
//! call site (the `k8s` boundary's `apply`, `get_opt`, `list`, `delete`,
//! the watch-based waits, `record_event`, and the one merge patch of the
//! replace step's undo). How a request maps to RBAC verbs:
//!
//! - server-side apply is a `patch`, and also a `create` when the object
//!   does not exist yet (the API server authorizes the create separately);
//! - every wait is a watcher: `list`, then `watch`;
//! - a delete is `delete` (never `deletecollection`: zkmigrate deletes by
//!   name).
//!
//! A step that starts making a new request adds its row here; the
//! preflight then checks it and the Role grants it. A row that no call
//! site uses any more is a grant too many: remove it.
//!
//! Three scopes. Most rows hold in the plan's namespace (the Role's
//! rules). The plan's own Namespace object is read by preflight (`get
//! /api/v1/namespaces/NS`); that request is authorized against NS's own
//! RoleBindings (its request attributes carry namespace NS), so the Role
//! can grant it, limited by `resourceNames` to that one Namespace: no
//! ClusterRole is needed, which a namespace admin could not create anyway.
//! Last, what the cluster's default RBAC grants every authenticated user
//! (SelfSubjectAccessReview by `system:basic-user`) is listed so that the
//! Role's comments can say why it is absent, and is never asked about.

use std::fmt;

use crate::plan::{StateBackend, ValidatedPlan};

/// Where a grant holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Objects in the plan's namespace: a rule of the Role.
    Namespace,
    /// The plan's Namespace object itself: a rule of the Role with
    /// `resourceNames: [NS]`.
    OwnNamespace,
    /// Granted to every authenticated user by this default ClusterRole:
    /// neither in the Role nor asked about.
    ClusterDefault(&'static str),
}

/// For which plans a grant is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Needed {
    /// Every plan.
    Always,
    /// Plans with `state.backend: kubernetes` (its lock is a Lease).
    KubernetesBackend,
}

/// One row of the table: verbs on one resource (or subresource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The API group; `""` is the core group.
    pub group: &'static str,
    /// The resource (plural), e.g. `statefulsets`.
    pub resource: &'static str,
    /// The subresource, e.g. `log`; `""` for none.
    pub subresource: &'static str,
    /// In the order RBAC documents them: get, list, watch, create,
    /// update, patch, delete.
    pub verbs: &'static [&'static str],
    pub scope: Scope,
    pub needed: Needed,
    /// Which requests use it, for the reader of the Role.
    pub why: &'static str,
}

impl Grant {
    /// `resource` or `resource/subresource`, as a Role's `resources` names it.
    pub fn rbac_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// Whether `plan` needs this row.
    pub fn is_needed_by(&self, plan: &ValidatedPlan) -> bool {
        match self.needed {
            Needed::Always => true,
            Needed::KubernetesBackend => plan.state == StateBackend::Kubernetes,
        }
    }
}

/// Every permission zkmigrate uses. The Role of `zkmigrate rbac` is the
/// rows of scope [`Scope::Namespace`] and [`Scope::OwnNamespace`];
/// [`REQUIRED_PERMISSIONS`] is the same rows, one verb each.
pub const GRANTS: [Grant; 11] = [
    Grant {
        group: "",
        resource: "services",
        subresource: "",
        verbs: &["get", "create", "patch", "delete"],
        scope: Scope::Namespace,
        needed: Needed::Always,
        why: "per-server Services (services step; read before each Event on them), the governing \
              Service and the selector switch (replace), deleted on rollback",
    },
    Grant {
        group: "discovery.k8s.io",
        resource: "endpointslices",
        subresource: "",
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        scope: Scope::Namespace,
        needed: Needed::Always,
        why: "the hand-made slices to the hosts (services); the controller's slice awaited and \
              the hand-made one deleted at each switch (replace); leftovers listed (finalize)",
    },
    Grant {
        group: "",
        resource: "pods",
        subresource: "",
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        scope: Scope::Namespace,
        needed: Needed::Always,
        why: "the network check's probe Pod (preflight: applied, awaited Ready, deleted, awaited \
              gone); the migrated Pods read and awaited (replace, status)",
    },
    Grant {
        group: "",
        resource: "configmaps",
        subresource: "",
        verbs: &["get", "create", "patch", "delete"],
        scope: Scope::Namespace,
        needed: Needed::Always,
        why: "the Pods' zoo.cfg and the ordinal map (replace), deleted on rollback",
    },
    Grant {
        group: "",
        resource: "configmaps",
        subresource: "",
        verbs: &["update"],
        scope: Scope::Namespace,
        needed: Needed::KubernetesBackend,
        why: "the kubernetes state backend's journal (read and created under the row above), \
              replaced with its resourceVersion at every change (step, rollback)",
    },
    Grant {
        group: "apps",
        resource: "statefulsets",
        subresource: "",
        verbs: &["get", "create", "patch", "delete"],
        scope: Scope::Namespace,
        needed: Needed::Always,
        why: "the Pods' StatefulSet(s), scaled by apply (replace), deleted on rollback",
    },
    Grant {
        group: "policy",
        resource: "poddisruptionbudgets",
        subresource: "",
        verbs: &["get", "create", "patch", "delete"],
        scope: Scope::Namespace,
        needed: Needed::Always,
        why: "the Pods' disruption budget (replace), deleted on rollback",
    },
    Grant {
        group: "",
        resource: "events",
        subresource: "",
        verbs: &["create"],
        scope: Scope::Namespace,
        needed: Needed::Always,
        why: "the migration's history on the per-server Services (kubectl describe svc)",
    },
    Grant {
        group: "",
        resource: "namespaces",
        subresource: "",
        verbs: &["get"],
        scope: Scope::OwnNamespace,
        needed: Needed::Always,
        why: "preflight: the plan's namespace exists (zkmigrate never creates it); GET \
              /api/v1/namespaces/NS is authorized by NS's own RoleBindings, so a Role grants it, \
              for this one name",
    },
    Grant {
        group: "coordination.k8s.io",
        resource: "leases",
        subresource: "",
        verbs: &["get", "create", "update"],
        scope: Scope::Namespace,
        needed: Needed::KubernetesBackend,
        why: "the kubernetes state backend's lock: read, created or taken, renewed and released \
              with its resourceVersion (step, rollback)",
    },
    Grant {
        group: "authorization.k8s.io",
        resource: "selfsubjectaccessreviews",
        subresource: "",
        verbs: &["create"],
        scope: Scope::ClusterDefault("system:basic-user"),
        needed: Needed::Always,
        why: "preflight: asking whether each permission here is granted",
    },
];

/// One verb on one resource (or subresource), as RBAC names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permission {
    /// `get`, `list`, `watch`, `create`, `patch`, `update`, `delete`.
    pub verb: &'static str,
    /// The API group; `""` is the core group.
    pub group: &'static str,
    /// The resource (plural), e.g. `statefulsets`.
    pub resource: &'static str,
    /// The subresource, e.g. `log`; `""` for none.
    pub subresource: &'static str,
    /// [`Scope::Namespace`] or [`Scope::OwnNamespace`] (whose review names
    /// the namespace as the object).
    pub scope: Scope,
}

impl fmt::Display for Permission {
    /// As `kubectl auth can-i` takes it: `patch statefulsets.apps`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        if !self.subresource.is_empty() {
            write!(f, "/{}", self.subresource)?;
        }
        Ok(())
    }
}

/// Whether a row is asked about by preflight (and granted by the Role).
const fn is_checked(scope: Scope) -> bool {
    matches!(scope, Scope::Namespace | Scope::OwnNamespace)
}

/// The number of single permissions the checked rows of [`GRANTS`] hold.
const fn count_checked() -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < GRANTS.len() {
        if is_checked(GRANTS[i].scope) {
            n += GRANTS[i].verbs.len();
        }
        i += 1;
    }
    n
}

/// Every permission of [`GRANTS`] that the Role grants, one verb each, in
/// table order, whatever the plan (the Lease rows included: see
/// [`required_permissions`] for one plan's).
pub const REQUIRED_PERMISSIONS: [Permission; count_checked()] = {
    let mut out = [Permission {
        verb: "",
        group: "",
        resource: "",
        subresource: "",
        scope: Scope::Namespace,
    }; count_checked()];
    let mut n = 0;
    let mut i = 0;
    while i < GRANTS.len() {
        let g = GRANTS[i];
        if is_checked(g.scope) {
            let mut v = 0;
            while v < g.verbs.len() {
                out[n] = Permission {
                    verb: g.verbs[v],
                    group: g.group,
                    resource: g.resource,
                    subresource: g.subresource,
                    scope: g.scope,
                };
                n += 1;
                v += 1;
            }
        }
        i += 1;
    }
    out
};

/// The rows `plan` needs, in table order.
pub fn grants_for(plan: &ValidatedPlan) -> Vec<Grant> {
    GRANTS
        .iter()
        .filter(|g| g.is_needed_by(plan))
        .copied()
        .collect()
}

/// The permissions preflight checks for `plan` and the Role of
/// `zkmigrate rbac` grants for it, one verb each, in table order.
pub fn required_permissions(plan: &ValidatedPlan) -> Vec<Permission> {
    REQUIRED_PERMISSIONS
        .iter()
        .filter(|p| {
            GRANTS.iter().any(|g| {
                g.group == p.group
                    && g.resource == p.resource
                    && g.verbs.contains(&p.verb)
                    && g.subresource == p.subresource
                    && g.scope == p.scope
                    && g.is_needed_by(plan)
            })
        })
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(perms: &[Permission]) -> Vec<String> {
        perms.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_required_permissions_read_as_kubectl_auth_can_i_takes_them() {
        let all = names(&REQUIRED_PERMISSIONS);
        for expected in [
            "create services",
            "patch endpointslices.discovery.k8s.io",
            "watch pods",
            "delete statefulsets.apps",
            "create poddisruptionbudgets.policy",
            "update leases.coordination.k8s.io",
            "create events",
            "get namespaces",
        ] {
            assert!(all.contains(&expected.to_string()), "{expected} in {all:?}");
        }
        assert!(REQUIRED_PERMISSIONS.iter().all(|p| !p.verb.is_empty()));
    }

    #[test]
    fn nothing_unused_is_granted() {
        let all = names(&REQUIRED_PERMISSIONS);
        // No call site reads logs, scales through the subresource, touches
        // claims (the StatefulSet controller makes them), lists Services
        // or watches ConfigMaps.
        for unused in [
            "get pods/log",
            "patch statefulsets.apps/scale",
            "list persistentvolumeclaims",
            "list services",
            "watch configmaps",
            "deletecollection pods",
            "list namespaces",
        ] {
            assert!(!all.contains(&unused.to_string()), "{unused} in {all:?}");
        }
        // The default grant is neither checked nor in the Role.
        assert!(!all.iter().any(|p| p.contains("selfsubjectaccessreviews")));
    }

    #[test]
    fn the_lease_and_the_journal_update_are_required_only_with_the_kubernetes_backend() {
        let mut plan = crate::plan::testing::three_servers("StatefulSet");
        let file = names(&required_permissions(&plan));
        assert!(!file.iter().any(|p| p.contains("leases")), "{file:?}");
        assert!(!file.contains(&"update configmaps".to_string()), "{file:?}");
        assert!(file.contains(&"create configmaps".to_string()), "{file:?}");
        assert_eq!(
            file.len(),
            REQUIRED_PERMISSIONS.len() - 4,
            "all but the Lease's three verbs and the journal's update"
        );
        plan.state = StateBackend::Kubernetes;
        assert_eq!(
            names(&required_permissions(&plan)),
            names(&REQUIRED_PERMISSIONS)
        );
    }
}
