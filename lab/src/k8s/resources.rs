//! The kinds the lab's API server serves, with what discovery says of them.
//!
//! One table drives discovery, URL routing, the store's keys and kubectl's
//! short names, so a kind is added in one place. Versions are those of
//! Kubernetes 1.33 (k8s-openapi's `v1_33`).

/// A served resource type.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Resource {
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// URL path segment (lower-case plural).
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub verbs: &'static [&'static str],
    /// Subresources served (`status`, `scale`, `log`).
    pub subresources: &'static [&'static str],
}

impl Resource {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether the objects have a `status` that only the status
    /// subresource changes (spec and status are separate, as in the real
    /// API for these kinds).
    pub fn has_status(&self) -> bool {
        self.subresources.contains(&"status")
    }
}

const RW: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Every resource type the lab serves.
pub static RESOURCES: &[Resource] = &[
    Resource {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        singular: "namespace",
        namespaced: false,
        short_names: &["ns"],
        verbs: &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        subresources: &["status"],
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        singular: "service",
        namespaced: true,
        short_names: &["svc"],
        verbs: RW,
        subresources: &["status"],
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        singular: "pod",
        namespaced: true,
        short_names: &["po"],
        verbs: RW,
        subresources: &["status", "log"],
    },
    Resource {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        singular: "configmap",
        namespaced: true,
        short_names: &["cm"],
        verbs: RW,
        subresources: &[],
    },
    Resource {
        group: "",
        version: "v1",
        kind: "PersistentVolumeClaim",
        plural: "persistentvolumeclaims",
        singular: "persistentvolumeclaim",
        namespaced: true,
        short_names: &["pvc"],
        verbs: RW,
        subresources: &["status"],
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        verbs: RW,
        subresources: &[],
    },
    Resource {
        group: "discovery.k8s.io",
        version: "v1",
        kind: "EndpointSlice",
        plural: "endpointslices",
        singular: "endpointslice",
        namespaced: true,
        short_names: &[],
        verbs: RW,
        subresources: &[],
    },
    Resource {
        group: "apps",
        version: "v1",
        kind: "StatefulSet",
        plural: "statefulsets",
        singular: "statefulset",
        namespaced: true,
        short_names: &["sts"],
        verbs: RW,
        subresources: &["status", "scale"],
    },
    Resource {
        group: "policy",
        version: "v1",
        kind: "PodDisruptionBudget",
        plural: "poddisruptionbudgets",
        singular: "poddisruptionbudget",
        namespaced: true,
        short_names: &["pdb"],
        verbs: RW,
        subresources: &["status"],
    },
    Resource {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        plural: "leases",
        singular: "lease",
        namespaced: true,
        short_names: &[],
        verbs: RW,
        subresources: &[],
    },
    Resource {
        group: "authorization.k8s.io",
        version: "v1",
        kind: "SelfSubjectAccessReview",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        namespaced: false,
        short_names: &[],
        verbs: &["create"],
        subresources: &[],
    },
];

/// The resource served at `group`/`version`/`plural`.
pub fn by_path(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of `kind` in `group`.
pub fn by_kind(group: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
}

/// Shorthands for the kinds the lab's own code touches.
pub fn namespaces() -> &'static Resource {
    by_kind("", "Namespace").expect("served")
}
pub fn services() -> &'static Resource {
    by_kind("", "Service").expect("served")
}
pub fn pods() -> &'static Resource {
    by_kind("", "Pod").expect("served")
}
pub fn configmaps() -> &'static Resource {
    by_kind("", "ConfigMap").expect("served")
}
pub fn pvcs() -> &'static Resource {
    by_kind("", "PersistentVolumeClaim").expect("served")
}
pub fn events() -> &'static Resource {
    by_kind("", "Event").expect("served")
}
pub fn endpointslices() -> &'static Resource {
    by_kind("discovery.k8s.io", "EndpointSlice").expect("served")
}
pub fn statefulsets() -> &'static Resource {
    by_kind("apps", "StatefulSet").expect("served")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_is_found_by_path_and_kind() {
        for r in RESOURCES {
            assert_eq!(by_path(r.group, r.version, r.plural), Some(r));
            assert_eq!(by_kind(r.group, r.kind), Some(r));
        }
        assert_eq!(endpointslices().api_version(), "discovery.k8s.io/v1");
        assert_eq!(pods().api_version(), "v1");
    }
}
