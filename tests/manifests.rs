//! `zkmigrate manifests` as an operator runs it, and the proof that what it
//! builds is valid for the real API: every object of every step of both
//! example plans is created in the lab's API store, which runs the
//! Kubernetes validation rules of each kind (DESIGN 8).
//!
//! The YAML is snapshot-tested (insta) byte for byte; the snapshots live
//! beside the builders, in `src/manifests/snapshots/`.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use serde_json::json;
use zklab::k8s::admission::LabAdmission;
use zklab::k8s::resources;
use zklab::k8s::store::Store;
use zkmigrate::manifests::{self, ManifestInputs, Object, Ordinals};
use zkmigrate::plan::{self, ServerId, ValidatedPlan};
use zkmigrate::steps::StepName;

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

fn load(file: &str) -> ValidatedPlan {
    plan::load(Path::new(&plan_path(file))).expect("example plan is valid")
}

#[test]
fn manifests_of_every_step_of_the_example_plans() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../src/manifests/snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for (name, file) in PLANS {
            let path = plan_path(file);
            let mut cases: Vec<(String, Vec<&str>)> = vec![("all".into(), vec![])];
            for step in StepName::ALL {
                cases.push((step.as_str().into(), vec!["--step", step.as_str()]));
            }
            cases.push((
                "replace-server-2".into(),
                vec!["--step", "replace", "--server", "2"],
            ));
            for (case, extra) in cases {
                let mut args = vec!["manifests", "-f", &path];
                args.extend(extra);
                let out = zkmigrate(&args);
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "{name} {case}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let yaml = String::from_utf8(out.stdout).expect("utf-8");
                insta::assert_snapshot!(format!("manifests-{name}-{case}"), yaml);
            }
        }
    });
}

#[test]
fn usage_errors_exit_2_and_print_nothing() {
    let path = plan_path("plans/three-node-systemd.yaml");
    for (args, message) in [
        (
            vec!["manifests", "-f", &path, "--step", "peers", "--server", "2"],
            "error: failed to select the objects: --server N is only meaningful with --step replace\n",
        ),
        (
            vec![
                "manifests",
                "-f",
                &path,
                "--step",
                "replace",
                "--server",
                "9",
            ],
            "error: failed to build the objects of server 9: the plan has no server 9\n",
        ),
    ] {
        let out = zkmigrate(&args);
        assert_eq!(out.status.code(), Some(2));
        assert!(out.stdout.is_empty());
        assert_eq!(String::from_utf8_lossy(&out.stderr), message);
    }
}

/// Creates every object in a fresh lab store (the namespace first), as the
/// API server would on `kubectl apply`; panics with the API's Status on a
/// refusal.
fn admit_all(plan: &ValidatedPlan, objects: &[Object], what: &str) {
    let store = Store::new(Arc::new(
        LabAdmission::new("10.96.0.0/16").expect("valid CIDR"),
    ));
    let ns = &plan.kubernetes.namespace;
    store
        .create(
            resources::namespaces(),
            "",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .expect("namespace");
    for object in objects {
        let (group, kind) = match object {
            Object::Service(_) => ("", "Service"),
            Object::EndpointSlice(_) => ("discovery.k8s.io", "EndpointSlice"),
            Object::ConfigMap(_) => ("", "ConfigMap"),
            Object::StatefulSet(_) => ("apps", "StatefulSet"),
            Object::PodDisruptionBudget(_) => ("policy", "PodDisruptionBudget"),
        };
        assert_eq!(kind, object.kind());
        let resource = resources::by_kind(group, kind).expect("the lab serves the kind");
        let value = serde_json::to_value(object).expect("serializes");
        if let Err(e) = store.create(resource, ns, value) {
            panic!(
                "{what}: {} {} refused by admission: {e:?}",
                object.kind(),
                object.name()
            );
        }
    }
}

#[test]
fn every_object_passes_the_labs_admission() {
    for (_, file) in PLANS {
        let plan = load(file);
        let inputs = ManifestInputs::default();
        let mut scenarios: Vec<(String, Option<StepName>, Option<ServerId>)> =
            vec![("all steps".into(), None, None)];
        for step in [StepName::Services, StepName::Replace, StepName::Finalize] {
            scenarios.push((step.to_string(), Some(step), None));
        }
        for server in &plan.servers {
            scenarios.push((
                format!("replace after server {}", server.id),
                Some(StepName::Replace),
                Some(server.id),
            ));
        }
        for (what, step, server) in scenarios {
            let built = manifests::manifests_for(&plan, step, server, &inputs).expect("builds");
            assert!(!built.objects.is_empty(), "{what}");
            admit_all(&plan, &built.objects, &format!("{} {what}", plan.name));
        }
    }
}

#[test]
fn a_reordered_ordinal_map_is_admitted_and_selects_the_right_pods() {
    let plan = load("plans/three-node-systemd.yaml");
    let inputs = ManifestInputs {
        ordinals: Some(vec![2, 3, 1]),
        ..ManifestInputs::default()
    };
    let id = |n| ServerId::new(n).expect("id");
    let built = manifests::manifests_for(&plan, Some(StepName::Replace), Some(id(3)), &inputs)
        .expect("builds");
    admit_all(&plan, &built.objects, "reordered");
    let ordinals = Ordinals::new(&plan, &[2, 3, 1]).expect("ordinals");
    assert_eq!(
        manifests::pod_name_for(&plan, id(1), &ordinals).expect("pod"),
        "zk-2"
    );
    // After server 3 (ordinal 1): servers 2 and 3 on Pods, 1 on its host.
    let names: Vec<String> = built
        .objects
        .iter()
        .map(|o| format!("{}/{}", o.kind(), o.name()))
        .collect();
    assert_eq!(
        names,
        [
            "Service/zk-1",
            "EndpointSlice/zk-1-host",
            "Service/zk-2",
            "Service/zk-3",
            "Service/zk-hs",
            "ConfigMap/zk-config",
            "ConfigMap/zk-ordinals",
            "StatefulSet/zk",
            "PodDisruptionBudget/zk-pdb",
        ]
    );
    let Object::StatefulSet(sts) = &built.objects[7] else {
        panic!("not a StatefulSet");
    };
    assert_eq!(sts.spec.as_ref().and_then(|s| s.replicas), Some(2));
}
