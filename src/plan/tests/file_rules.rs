//! Rules at the level of the file: unknown and missing keys, wrong types,
//! YAML syntax, the version header, and that every error is reported.

use super::{base_plus, base_with, edit, error_at, errors, pos};
use crate::plan::{PlanError, parse};

#[test]
fn unknown_key_names_the_key_its_mapping_and_its_line() {
    let text = base_with("      host: zk2\n", "      host: zk2\n      hots: zk2\n");
    let error = error_at(&text, "ensemble.servers[1]", "unknown field `hots`");
    assert_eq!(error.position, pos(11, 7));
    let rendered = parse(&text, "plans/x.yaml").unwrap_err().to_string();
    assert!(
        rendered.starts_with("plans/x.yaml:11:7: ensemble.servers[1]: unknown field `hots`"),
        "{rendered}"
    );
}

#[test]
fn unknown_key_in_flow_and_top_level_mappings() {
    let text = base_with("ssh: { user: root }", "ssh: { user: root, passwd: x }");
    let error = error_at(&text, "ensemble.access.ssh", "unknown field `passwd`");
    assert_eq!(error.position, pos(16, 24));
    let error = error_at(&base_plus("extras: 1\n"), "", "unknown field `extras`");
    assert_eq!(error.position, pos(30, 1));
}

#[test]
fn missing_required_key_names_its_mapping() {
    let text = base_with("    image: zookeeper:3.8.4\n", "");
    error_at(&text, "kubernetes.target", "missing field `image`");
}

#[test]
fn wrong_type_names_the_field() {
    let text = base_with("id: 2", "id: two");
    let error = error_at(&text, "ensemble.servers[1].id", "");
    assert_eq!(error.position, pos(9, 11));
}

#[test]
fn yaml_syntax_error_has_a_position() {
    let errors = errors("apiVersion: zkmigrate/v1\nname: [orders\n");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].position.is_some(), "{errors:?}");
}

#[test]
fn api_version_and_kind_are_checked_first() {
    // A newer plan gets one clear error, not its new keys as unknown.
    let text = base_plus("newSection: {}\n").replace("zkmigrate/v1", "zkmigrate/v2");
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "apiVersion");
    assert!(
        errors[0]
            .message
            .contains("unsupported apiVersion \"zkmigrate/v2\"")
    );
    assert_eq!(errors[0].position, pos(1, 13));
    error_at(
        &base_with("kind: MigrationPlan", "kind: Plan"),
        "kind",
        "not \"MigrationPlan\"",
    );
}

#[test]
fn every_error_is_reported_in_file_order() {
    let text = base_with("name: orders", "name: Orders");
    let text = edit(&text, "id: 3", "id: 2");
    let text = edit(&text, "namespace: zookeeper", "namespace: Zoo");
    let text = format!("{text}policy:\n  syncTimeout: soon\n");
    let errors = errors(&text);
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "name",
            "ensemble.servers[2].id",
            "kubernetes.namespace",
            "policy.syncTimeout"
        ]
    );
    let Err(error) = parse(&text, "p.yaml") else {
        panic!("invalid")
    };
    assert!(error.is_invalid());
    assert_eq!(error.to_string().lines().count(), 4);
    assert!(matches!(error, PlanError::Invalid { ref source_name, .. } if source_name == "p.yaml"));
}
