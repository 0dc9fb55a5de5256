//! One test per rule of the `kubernetes`, `clients`, `policy` and `state`
//! sections: the error names the right field path and its position.

use super::{BASE, base_plus, base_with, edit, error_at, pos, valid};

#[test]
fn names_must_be_dns_1123_labels() {
    error_at(
        &base_with("name: orders", "name: Orders"),
        "name",
        "DNS-1123 label",
    );
    let error = error_at(
        &base_with("namespace: zookeeper", "namespace: zoo_keeper"),
        "kubernetes.namespace",
        "DNS-1123",
    );
    assert_eq!(error.position, pos(24, 14));
    error_at(
        &base_with("name: zk\n", "name: zk-\n"),
        "kubernetes.target.name",
        "DNS-1123",
    );
}

#[test]
fn rendered_service_names_must_be_dns_1035_labels() {
    let text = base_with(
        "  namespace: zookeeper\n",
        "  namespace: zookeeper\n  serviceName: \"{id}-zk\"\n",
    );
    error_at(&text, "kubernetes.serviceName", "for server 1");
    let text = edit(
        BASE,
        "  namespace: zookeeper\n",
        "  namespace: zookeeper\n  serviceName: ZK-{id}\n",
    );
    error_at(&text, "kubernetes.serviceName", "DNS-1035");
}

#[test]
fn service_name_must_hold_id() {
    let text = base_with(
        "  namespace: zookeeper\n",
        "  namespace: zookeeper\n  serviceName: zk\n",
    );
    let error = error_at(&text, "kubernetes.serviceName", "must hold {id}");
    assert_eq!(error.position, pos(25, 16));
    let text = base_with(
        "  namespace: zookeeper\n",
        "  namespace: zookeeper\n  serviceName: zk-{name}-{id}\n",
    );
    error_at(
        &text,
        "kubernetes.serviceName",
        "unknown placeholder {name}",
    );
}

#[test]
fn cluster_domain_must_be_a_subdomain() {
    let text = base_with(
        "  namespace: zookeeper\n",
        "  namespace: zookeeper\n  clusterDomain: Cluster.Local\n",
    );
    error_at(&text, "kubernetes.clusterDomain", "DNS-1123 subdomain");
}

#[test]
fn chroot_must_start_with_a_slash_and_not_end_with_one() {
    error_at(
        &base_plus("clients:\n  chroot: kafka\n"),
        "clients.chroot",
        "must start with '/'",
    );
    let error = error_at(
        &base_plus("clients:\n  chroot: /kafka/\n"),
        "clients.chroot",
        "must not end with '/'",
    );
    assert_eq!(error.position, pos(31, 11));
    assert_eq!(
        valid(&base_plus("clients:\n  chroot: /\n")).clients.chroot,
        None
    );
}

#[test]
fn durations_must_parse_and_be_positive() {
    error_at(
        &base_plus("policy:\n  syncTimeout: ten minutes\n"),
        "policy.syncTimeout",
        "not a duration",
    );
    error_at(
        &base_plus("policy:\n  progressDeadline: 120\n"),
        "policy.progressDeadline",
        "not a duration",
    );
    let error = error_at(
        &base_plus("policy:\n  pollInterval: 0s\n"),
        "policy.pollInterval",
        "longer than zero",
    );
    assert_eq!(error.position, pos(31, 17));
}

#[test]
fn poll_interval_must_be_shorter_than_the_progress_deadline() {
    let text = base_plus("policy:\n  progressDeadline: 1m\n  pollInterval: 2m\n");
    error_at(
        &text,
        "policy.pollInterval",
        "shorter than policy.progressDeadline (1m)",
    );
}

#[test]
fn the_lease_duration_is_whole_seconds_from_3s_to_5m_default_15s() {
    use std::time::Duration;
    assert_eq!(valid(BASE).policy.lease_duration, Duration::from_secs(15));
    let plan = valid(&base_plus("policy:\n  leaseDuration: 1m\n"));
    assert_eq!(plan.policy.lease_duration, Duration::from_secs(60));
    for bad in ["2s", "6m", "4500ms"] {
        error_at(
            &base_plus(&format!("policy:\n  leaseDuration: {bad}\n")),
            "policy.leaseDuration",
            "must be whole seconds from 3s to 5m",
        );
    }
    error_at(
        &base_plus("policy:\n  leaseDuration: soon\n"),
        "policy.leaseDuration",
        "not a duration",
    );
}

#[test]
fn confirm_names_steps() {
    let error = error_at(
        &base_plus("policy:\n  confirm: [clients, clinets]\n"),
        "policy.confirm[1]",
        "unknown step \"clinets\"",
    );
    assert_eq!(error.position, pos(31, 22));
}

#[test]
fn storage_size_must_be_a_quantity() {
    let error = error_at(
        &base_with("size: 10Gi", "size: 10GB"),
        "kubernetes.target.storage.size",
        "Kubernetes quantity",
    );
    assert_eq!(error.position, pos(29, 22));
    error_at(
        &base_with("size: 10Gi }", "size: 10Gi, storageClassName: Fast_SSD }"),
        "kubernetes.target.storage.storageClassName",
        "DNS-1123 subdomain",
    );
    let plan = valid(&base_with(
        "size: 10Gi }",
        "size: 10Gi, storageClassName: \"\" }",
    ));
    assert_eq!(
        plan.kubernetes.target.storage.storage_class_name.as_deref(),
        Some("")
    );
}

#[test]
fn image_must_not_be_empty() {
    error_at(
        &base_with("image: zookeeper:3.8.4", "image: \"\""),
        "kubernetes.target.image",
        "must not be empty",
    );
}

#[test]
fn target_kind_is_statefulset_or_perserver() {
    error_at(
        &base_with("kind: StatefulSet", "kind: Deployment"),
        "kubernetes.target.kind",
        "StatefulSet or PerServer",
    );
}

#[test]
fn statefulset_names_fit_kubernetes() {
    let long = "z".repeat(51);
    let text = edit(
        &base_with("kind: StatefulSet", "kind: PerServer"),
        "name: zk\n",
        &format!("name: {long}\n"),
    );
    error_at(&text, "kubernetes.target.name", "at most 52");
    // The same name fits a single StatefulSet.
    valid(&base_with("name: zk\n", &format!("name: {long}\n")));
}

#[test]
fn kubernetes_context_is_not_empty() {
    let text = base_with("kubernetes:\n", "kubernetes:\n  context: \"\"\n");
    error_at(&text, "kubernetes.context", "must not be empty");
}

#[test]
fn state_backend_and_path() {
    error_at(
        &base_plus("state:\n  backend: etcd\n"),
        "state.backend",
        "file or kubernetes",
    );
    error_at(
        &base_plus("state:\n  backend: kubernetes\n  path: x.json\n"),
        "state.path",
        "only the file backend",
    );
    error_at(
        &base_plus("state:\n  path: \"\"\n"),
        "state.path",
        "must not be empty",
    );
}
