//! `zkmigrate rbac` as an operator runs it: the YAML is snapshot-tested
//! (insta) byte for byte for the example plans, beside the manifests'
//! snapshots in `src/manifests/snapshots/`; `-o json` is one `List`
//! document holding the same objects, each a valid ServiceAccount, Role
//! and RoleBinding of the RBAC API. That the Role is *enough* is proven in
//! the lab (`tests/rbac_lab.rs`).

use std::path::Path;
use std::process::{Command, Output};

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};

const PLANS: [(&str, &str); 2] = [
    ("three-node-systemd", "plans/three-node-systemd.yaml"),
    ("five-node-kafka", "plans/five-node-kafka.yaml"),
];

fn zkmigrate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zkmigrate"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("ZKMIGRATE_LOG")
        .output()
        .expect("run zkmigrate")
}

fn plan_path(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(file)
        .display()
        .to_string()
}

fn stdout_of(args: &[&str]) -> String {
    let out = zkmigrate(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn rbac_of_the_example_plans() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../src/manifests/snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for (name, file) in PLANS {
            let yaml = stdout_of(&["rbac", "-f", &plan_path(file)]);
            insta::assert_snapshot!(format!("rbac-{name}"), yaml);
        }
    });
}

#[test]
fn json_is_one_list_of_the_same_valid_objects() {
    for (name, file) in PLANS {
        let path = plan_path(file);
        let json = stdout_of(&["rbac", "-f", &path, "-o", "json"]);
        let list: serde_json::Value = serde_json::from_str(&json).expect("one JSON document");
        assert_eq!(list["apiVersion"], "v1", "{name}");
        assert_eq!(list["kind"], "List", "{name}");
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 3, "{name}");
        // The RBAC API's own types take them (apiVersion and kind checked).
        let sa: ServiceAccount = serde_json::from_value(items[0].clone()).unwrap();
        let role: Role = serde_json::from_value(items[1].clone()).unwrap();
        let binding: RoleBinding = serde_json::from_value(items[2].clone()).unwrap();
        assert_eq!(binding.role_ref.name, role.metadata.name.clone().unwrap());
        let subject = &binding.subjects.unwrap()[0];
        assert_eq!(Some(subject.name.clone()), sa.metadata.name);
        assert_eq!(subject.namespace, role.metadata.namespace);

        // The YAML holds the same objects, comments aside.
        let yaml = stdout_of(&["rbac", "-f", &path]);
        let documents: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(&yaml).expect("YAML documents");
        assert_eq!(&documents, items, "{name}");

        let leases = role
            .rules
            .unwrap()
            .iter()
            .any(|r| r.resources.as_deref() == Some(&["leases".to_string()][..]));
        assert_eq!(
            leases,
            name == "five-node-kafka",
            "the kubernetes backend's Lease"
        );
    }
}

#[test]
fn an_invalid_plan_exits_2_and_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("plan.yaml");
    let text = std::fs::read_to_string(plan_path("plans/three-node-systemd.yaml")).unwrap();
    std::fs::write(&bad, text.replace("name: orders", "name: Orders")).unwrap();
    let out = zkmigrate(&["rbac", "-f", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}
