//! The shape of each served kind, as far as patching needs it: which
//! lists merge by key (and on which keys), which lists are sets, which maps
//! and structs are owned whole, and which list a strategic merge patch
//! merges rather than replaces.
//!
//! Server-side apply and strategic merge patch read different markers of
//! the same Go types in `k8s.io/api` (v1.33): SSA the OpenAPI list and map
//! types (`+listType=map`, `+listMapKey`, `+listType=set`,
//! `+structType=atomic`, `+mapType=atomic`), SMP the struct tags
//! (`patchStrategy:"merge"`, `patchMergeKey`). One table holds both. Only
//! what differs from the default is written down: an object not listed is
//! a struct owned field by field, a list not listed is atomic (SSA) and
//! replaced (SMP), as for a Go field without markers.

use crate::k8s::resources::Resource;

/// How a value at some path is owned and merged.
#[derive(Debug)]
pub enum Shape {
    /// A struct: owned field by field. Fields not listed are plain struct
    /// fields (objects owned field by field, lists atomic).
    Struct(&'static [(&'static str, &'static Shape)]),
    /// `map[string]T`: owned key by key; keys are not named fields.
    Map(&'static Shape),
    /// Owned and replaced as a whole (`+structType=atomic`,
    /// `+mapType=atomic`, an atomic list or a scalar).
    Atomic,
    /// A list that is not atomic.
    List(ListShape),
}

/// A list's markers.
#[derive(Debug)]
pub struct ListShape {
    pub kind: ListKind,
    pub elem: &'static Shape,
    pub smp: Smp,
}

/// `x-kubernetes-list-type` of a list.
#[derive(Debug)]
pub enum ListKind {
    /// `+listType=atomic` (the default).
    Atomic,
    /// `+listType=set`: items are scalars owned one by one.
    Set,
    /// `+listType=map` with its `+listMapKey`s.
    Map(&'static [KeyField]),
}

/// One `+listMapKey`, with the default the OpenAPI schema gives it
/// (`protocol` defaults to `TCP`, which structured-merge-diff uses for
/// items that omit it).
#[derive(Debug)]
pub struct KeyField {
    pub name: &'static str,
    pub default: Option<&'static str>,
}

/// The strategic merge patch strategy of a list (`patchStrategy` tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Smp {
    /// No tag: the patch's list replaces the live one.
    Replace,
    /// `patchStrategy:"merge"` on a list of scalars: union.
    MergePrimitives,
    /// `patchStrategy:"merge"` with `patchMergeKey`.
    MergeByKey(&'static str),
}

impl Shape {
    /// The shape of the field or map value `name` of an object.
    pub fn field(&self, name: &str) -> &'static Shape {
        match self {
            Shape::Struct(fields) => fields
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, s)| *s)
                .unwrap_or(&ANY),
            Shape::Map(elem) => elem,
            Shape::Atomic => &ATOMIC,
            Shape::List(_) => &ANY,
        }
    }

    /// Whether `name` is a named field here (a struct field rather than a
    /// map key): structured-merge-diff treats the two differently when it
    /// lists an object's fields and when it prunes.
    pub fn is_named_field(&self) -> bool {
        matches!(self, Shape::Struct(_))
    }

    /// The list's markers, for a non-atomic list.
    pub fn list(&self) -> Option<&ListShape> {
        match self {
            Shape::List(l) => Some(l),
            _ => None,
        }
    }

    /// The shape of a list's items.
    pub fn elem(&self) -> &'static Shape {
        match self {
            Shape::List(l) => l.elem,
            _ => &ANY,
        }
    }
}

pub static ANY: Shape = Shape::Struct(&[]);
pub static ATOMIC: Shape = Shape::Atomic;
static STRING_MAP: Shape = Shape::Map(&ATOMIC);

const fn list(kind: ListKind, elem: &'static Shape, smp: Smp) -> Shape {
    Shape::List(ListShape { kind, elem, smp })
}

const fn key(name: &'static str) -> KeyField {
    KeyField {
        name,
        default: None,
    }
}

const PROTOCOL: KeyField = KeyField {
    name: "protocol",
    default: Some("TCP"),
};

// k8s.io/apimachinery/pkg/apis/meta/v1/types.go (ObjectMeta, OwnerReference
// `+structType=atomic`).
static OBJECT_META: Shape = Shape::Struct(&[
    ("labels", &STRING_MAP),
    ("annotations", &STRING_MAP),
    ("finalizers", &FINALIZERS),
    ("ownerReferences", &OWNER_REFERENCES),
]);
static FINALIZERS: Shape = list(ListKind::Set, &ATOMIC, Smp::MergePrimitives);
static OWNER_REFERENCES: Shape = list(
    ListKind::Map(&[key("uid")]),
    &ATOMIC,
    Smp::MergeByKey("uid"),
);

/// `conditions` of the status of Pod, Service, PVC, Namespace,
/// StatefulSet, PodDisruptionBudget: map by `type`, merge by `type`.
static CONDITIONS: Shape = list(ListKind::Map(&[key("type")]), &ANY, Smp::MergeByKey("type"));

// k8s.io/api/core/v1/types.go: Container.
static CONTAINER: Shape = Shape::Struct(&[
    ("ports", &CONTAINER_PORTS),
    ("env", &ENV),
    ("volumeMounts", &VOLUME_MOUNTS),
    ("volumeDevices", &VOLUME_DEVICES),
    ("resources", &RESOURCE_REQUIREMENTS),
]);
static CONTAINER_PORTS: Shape = list(
    ListKind::Map(&[key("containerPort"), PROTOCOL]),
    &ANY,
    Smp::MergeByKey("containerPort"),
);
static ENV: Shape = list(
    ListKind::Map(&[key("name")]),
    &ENV_VAR,
    Smp::MergeByKey("name"),
);
static ENV_VAR: Shape = Shape::Struct(&[("valueFrom", &ENV_VAR_SOURCE)]);
// ConfigMapKeySelector, SecretKeySelector, ObjectFieldSelector and
// ResourceFieldSelector are `+structType=atomic`.
static ENV_VAR_SOURCE: Shape = Shape::Struct(&[
    ("configMapKeyRef", &ATOMIC),
    ("secretKeyRef", &ATOMIC),
    ("fieldRef", &ATOMIC),
    ("resourceFieldRef", &ATOMIC),
]);
static VOLUME_MOUNTS: Shape = list(
    ListKind::Map(&[key("mountPath")]),
    &ANY,
    Smp::MergeByKey("mountPath"),
);
static VOLUME_DEVICES: Shape = list(
    ListKind::Map(&[key("devicePath")]),
    &ANY,
    Smp::MergeByKey("devicePath"),
);
static RESOURCE_REQUIREMENTS: Shape = Shape::Struct(&[
    ("limits", &STRING_MAP),
    ("requests", &STRING_MAP),
    ("claims", &NAMED_MAP_LIST_REPLACE),
]);
static NAMED_MAP_LIST_REPLACE: Shape = list(ListKind::Map(&[key("name")]), &ANY, Smp::Replace);

// PodSpec. `volumes` is `patchStrategy:"merge,retainKeys"`: `$retainKeys`
// is honoured wherever it appears, as the real patcher does.
static CONTAINERS: Shape = list(
    ListKind::Map(&[key("name")]),
    &CONTAINER,
    Smp::MergeByKey("name"),
);
static NAMED_MERGE: Shape = list(ListKind::Map(&[key("name")]), &ANY, Smp::MergeByKey("name"));
// LocalObjectReference is `+structType=atomic`.
static IMAGE_PULL_SECRETS: Shape = list(
    ListKind::Map(&[key("name")]),
    &ATOMIC,
    Smp::MergeByKey("name"),
);
static BY_IP: Shape = list(ListKind::Map(&[key("ip")]), &ANY, Smp::MergeByKey("ip"));
static TOPOLOGY_SPREAD: Shape = list(
    ListKind::Map(&[key("topologyKey"), key("whenUnsatisfiable")]),
    &TOPOLOGY_SPREAD_CONSTRAINT,
    Smp::MergeByKey("topologyKey"),
);
// metav1.LabelSelector is `+structType=atomic`.
static TOPOLOGY_SPREAD_CONSTRAINT: Shape = Shape::Struct(&[("labelSelector", &ATOMIC)]);
static POD_SPEC: Shape = Shape::Struct(&[
    ("containers", &CONTAINERS),
    ("initContainers", &CONTAINERS),
    ("ephemeralContainers", &CONTAINERS),
    ("volumes", &NAMED_MERGE),
    ("imagePullSecrets", &IMAGE_PULL_SECRETS),
    ("hostAliases", &BY_IP),
    ("topologySpreadConstraints", &TOPOLOGY_SPREAD),
    ("schedulingGates", &NAMED_MERGE),
    ("resourceClaims", &NAMED_MERGE),
    // `+mapType=atomic`.
    ("nodeSelector", &ATOMIC),
]);
static POD_STATUS: Shape = Shape::Struct(&[
    ("conditions", &CONDITIONS),
    ("podIPs", &BY_IP),
    ("hostIPs", &BY_IP),
]);
static POD_TEMPLATE: Shape = Shape::Struct(&[("metadata", &OBJECT_META), ("spec", &POD_SPEC)]);
static POD: Shape = Shape::Struct(&[
    ("metadata", &OBJECT_META),
    ("spec", &POD_SPEC),
    ("status", &POD_STATUS),
]);

// ServiceSpec: `ports` is `+listType=map +listMapKey=port
// +listMapKey=protocol`, `patchMergeKey:"port"`; `selector` is
// `+mapType=atomic`.
static SERVICE_PORTS: Shape = list(
    ListKind::Map(&[key("port"), PROTOCOL]),
    &ANY,
    Smp::MergeByKey("port"),
);
static SERVICE: Shape = Shape::Struct(&[
    ("metadata", &OBJECT_META),
    (
        "spec",
        &Shape::Struct(&[("ports", &SERVICE_PORTS), ("selector", &ATOMIC)]),
    ),
    ("status", &STATUS_WITH_CONDITIONS),
]);
static STATUS_WITH_CONDITIONS: Shape = Shape::Struct(&[("conditions", &CONDITIONS)]);

// k8s.io/api/apps/v1/types.go: StatefulSetSpec (`volumeClaimTemplates` is
// `+listType=atomic`).
static STATEFUL_SET: Shape = Shape::Struct(&[
    ("metadata", &OBJECT_META),
    (
        "spec",
        &Shape::Struct(&[("selector", &ATOMIC), ("template", &POD_TEMPLATE)]),
    ),
    ("status", &STATUS_WITH_CONDITIONS),
]);

// PersistentVolumeClaimSpec: `dataSource` (TypedLocalObjectReference) is
// `+structType=atomic`.
static PVC: Shape = Shape::Struct(&[
    ("metadata", &OBJECT_META),
    (
        "spec",
        &Shape::Struct(&[
            ("selector", &ATOMIC),
            ("resources", &RESOURCE_REQUIREMENTS),
            ("dataSource", &ATOMIC),
        ]),
    ),
    (
        "status",
        &Shape::Struct(&[
            ("conditions", &CONDITIONS),
            ("capacity", &STRING_MAP),
            ("allocatedResources", &STRING_MAP),
            ("allocatedResourceStatuses", &STRING_MAP),
        ]),
    ),
]);

static CONFIG_MAP: Shape = Shape::Struct(&[
    ("metadata", &OBJECT_META),
    ("data", &STRING_MAP),
    ("binaryData", &STRING_MAP),
]);

// k8s.io/api/policy/v1/types.go.
static PDB: Shape = Shape::Struct(&[
    ("metadata", &OBJECT_META),
    ("spec", &Shape::Struct(&[("selector", &ATOMIC)])),
    (
        "status",
        &Shape::Struct(&[("conditions", &CONDITIONS), ("disruptedPods", &STRING_MAP)]),
    ),
]);

static NAMESPACE: Shape = Shape::Struct(&[
    ("metadata", &OBJECT_META),
    ("status", &STATUS_WITH_CONDITIONS),
]);

// Event: ObjectReference is `+structType=atomic`.
static EVENT: Shape = Shape::Struct(&[
    ("metadata", &OBJECT_META),
    ("involvedObject", &ATOMIC),
    ("related", &ATOMIC),
]);

// EndpointSlice (k8s.io/api/discovery/v1/types.go): `endpoints` and
// `ports` are `+listType=atomic`, the default; Lease and
// SelfSubjectAccessReview have nothing special beyond metadata.
static PLAIN: Shape = Shape::Struct(&[("metadata", &OBJECT_META)]);

/// The shape of a whole object of `resource`.
pub fn root(resource: &Resource) -> &'static Shape {
    match (resource.group, resource.kind) {
        ("", "Pod") => &POD,
        ("", "Service") => &SERVICE,
        ("", "ConfigMap") => &CONFIG_MAP,
        ("", "PersistentVolumeClaim") => &PVC,
        ("", "Namespace") => &NAMESPACE,
        ("", "Event") => &EVENT,
        ("apps", "StatefulSet") => &STATEFUL_SET,
        ("policy", "PodDisruptionBudget") => &PDB,
        _ => &PLAIN,
    }
}

/// The object a Go zero value of the kind serialises to, reduced to its
/// objects and lists (its scalars are never compared): the real server
/// compares a created object against it, so the objects a zero value
/// already has (`spec`, `status`, a StatefulSet's `spec.template`) are not
/// recorded as added by the creator (`.` in FieldsV1), while the objects
/// behind pointers and `omitempty` maps are.
pub fn zero_object(resource: &Resource) -> serde_json::Value {
    use serde_json::json;
    let mut zero = match (resource.group, resource.kind) {
        ("", "Pod") => json!({"spec": {"containers": null}, "status": {}}),
        ("", "Service") => json!({"spec": {}, "status": {"loadBalancer": {}}}),
        ("", "PersistentVolumeClaim") => json!({"spec": {"resources": {}}, "status": {}}),
        ("", "Namespace") => json!({"spec": {}, "status": {}}),
        ("", "Event") => json!({"involvedObject": {}, "source": {}}),
        ("discovery.k8s.io", "EndpointSlice") => json!({"endpoints": null, "ports": null}),
        ("apps", "StatefulSet") => json!({
            "spec": {
                "selector": null,
                "template": {"metadata": {}, "spec": {"containers": null}},
                "updateStrategy": {},
            },
            "status": {},
        }),
        ("policy", "PodDisruptionBudget") => json!({"spec": {}, "status": {}}),
        ("coordination.k8s.io", "Lease") => json!({"spec": {}}),
        ("authorization.k8s.io", _) => json!({"spec": {}, "status": {}}),
        _ => json!({}),
    };
    zero["metadata"] = json!({});
    zero
}
