//! The public API: defaults, typed accessors, the hash, `load`, and the
//! example plans in `plans/`.

use std::path::Path;
use std::time::Duration;

use super::{BASE, base_plus, base_with, valid};
use crate::plan::{
    Access, Clients, PlanError, ServerId, SshAccess, StateBackend, TargetKind, load, parse,
};
use crate::steps::StepName;

fn id(n: u8) -> ServerId {
    ServerId::new(i64::from(n)).expect("a valid id")
}

#[test]
fn server_ids_are_1_to_255_however_they_come_in() {
    assert_eq!("7".parse::<ServerId>(), Ok(id(7)));
    assert_eq!(" 255\n".parse::<ServerId>(), Ok(id(255)));
    assert!("0".parse::<ServerId>().is_err());
    assert!("256".parse::<ServerId>().is_err());
    assert!("x".parse::<ServerId>().is_err());
    assert_eq!(serde_json::to_string(&id(3)).expect("serialize"), "3");
    assert_eq!(
        serde_json::from_str::<ServerId>("3").expect("deserialize"),
        id(3)
    );
    assert!(serde_json::from_str::<ServerId>("0").is_err());
}

#[test]
fn defaults_fill_every_optional_field() {
    let plan = valid(BASE);
    assert_eq!(plan.ensemble.client_port, 2181);
    assert_eq!(plan.ensemble.quorum_port, 2888);
    assert_eq!(plan.ensemble.election_port, 3888);
    assert_eq!(plan.ensemble.config_path, "/etc/zookeeper/conf/zoo.cfg");
    assert_eq!(
        plan.ensemble.access,
        Access::Ssh(SshAccess {
            user: Some("root".to_string()),
            port: 22,
            identity_file: None,
            options: vec![],
            jump_hosts: vec![],
        })
    );
    assert_eq!(plan.kubernetes.context, None);
    assert_eq!(plan.kubernetes.cluster_domain, "cluster.local");
    assert_eq!(plan.kubernetes.service_name.as_str(), "zk-{id}");
    assert_eq!(plan.kubernetes.target.kind, TargetKind::StatefulSet);
    assert_eq!(plan.kubernetes.target.storage.storage_class_name, None);
    assert_eq!(plan.clients, Clients::default());
    assert_eq!(plan.policy.sync_timeout, Duration::from_secs(600));
    assert_eq!(plan.policy.progress_deadline, Duration::from_secs(120));
    assert_eq!(plan.policy.poll_interval, Duration::from_millis(200));
    assert_eq!(plan.policy.confirm, vec![StepName::Clients]);
    assert!(!plan.policy.allow_even_voters);
    assert_eq!(
        plan.state,
        StateBackend::File {
            path: ".zkmigrate/orders.json".to_string()
        }
    );
    assert!(plan.warnings.is_empty());
}

#[test]
fn empty_optional_sections_take_the_defaults() {
    let plan = valid(&base_plus("clients:\npolicy: {}\nstate: {}\n"));
    assert_eq!(plan, valid(BASE));
}

#[test]
fn servers_are_sorted_by_id_and_found_by_id() {
    let text = base_with("id: 1", "id: 9");
    let plan = valid(&text);
    let ids: Vec<u8> = plan.servers.iter().map(|s| s.id.get()).collect();
    assert_eq!(ids, [2, 3, 9]);
    let server = plan.server(id(9)).expect("server 9");
    assert_eq!(server.host, "zk1");
    assert_eq!(plan.client_endpoint(server), "10.0.0.11:2181");
    assert!(plan.server(id(1)).is_none());
}

#[test]
fn names_and_connection_strings() {
    let plan = valid(&base_plus("clients:\n  chroot: /kafka\n"));
    assert_eq!(plan.service_name(id(2)), "zk-2");
    assert_eq!(plan.service_host(id(2)), "zk-2.zookeeper.svc.cluster.local");
    assert_eq!(
        plan.current_connection_string(),
        "10.0.0.11:2181,10.0.0.12:2181,10.0.0.13:2181/kafka"
    );
    assert_eq!(
        plan.service_connection_string(),
        "zk-1.zookeeper.svc.cluster.local:2181,zk-2.zookeeper.svc.cluster.local:2181,\
         zk-3.zookeeper.svc.cluster.local:2181/kafka"
    );
    assert_eq!(plan.kubernetes.target.statefulset_name(id(2)), "zk");
    let per_server = valid(&base_with("kind: StatefulSet", "kind: PerServer"));
    assert_eq!(per_server.kubernetes.target.statefulset_name(id(2)), "zk-2");
}

#[test]
fn exec_prefix_renders_host_and_id() {
    let text = base_with(
        "ssh: { user: root }",
        "exec: { prefix: [ip, netns, exec, \"lab-{host}\", \"--id={id}\"] }",
    );
    let plan = valid(&text);
    let Access::Exec(exec) = &plan.ensemble.access else {
        panic!("exec access")
    };
    let server = plan.server(id(2)).expect("server 2");
    assert_eq!(
        exec.render(server),
        ["ip", "netns", "exec", "lab-zk2", "--id=2"]
    );
}

#[test]
fn confirm_is_deduplicated_in_run_order() {
    let plan = valid(&base_plus(
        "policy:\n  confirm: [replace, clients, replace]\n",
    ));
    assert_eq!(plan.policy.confirm, [StepName::Clients, StepName::Replace]);
    assert!(plan.policy.needs_confirm(StepName::Replace));
    assert!(!plan.policy.needs_confirm(StepName::Peers));
    let plan = valid(&base_plus("policy:\n  confirm: []\n"));
    assert!(plan.policy.confirm.is_empty());
}

#[test]
fn hash_ignores_policy() {
    let base = valid(BASE).hash();
    assert_eq!(base.len(), 64);
    assert!(
        base.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    let raised = base_plus(
        "policy:\n  syncTimeout: 1h\n  progressDeadline: 10m\n  pollInterval: 1s\n  confirm: [clients, replace]\n",
    );
    assert_eq!(valid(&raised).hash(), base);
}

#[test]
fn hash_follows_what_the_migration_does() {
    let base = valid(BASE).hash();
    assert_ne!(valid(&base_with("10.0.0.12", "10.0.0.22")).hash(), base);
    assert_ne!(
        valid(&base_with("namespace: zookeeper", "namespace: zk")).hash(),
        base
    );
    assert_ne!(
        valid(&base_plus("clients:\n  chroot: /kafka\n")).hash(),
        base
    );
    assert_ne!(
        valid(&base_plus("state:\n  backend: kubernetes\n")).hash(),
        base
    );
}

#[test]
fn hash_ignores_presentation_and_spelt_out_defaults() {
    let base = valid(BASE).hash();
    let reformatted = base_with(
        "    - id: 2\n      host: zk2\n      address: 10.0.0.12\n",
        "    # server two\n    - { address: 10.0.0.12, id: 2, host: zk2 }\n",
    );
    assert_eq!(valid(&reformatted).hash(), base);
    let explicit = base_with(
        "  access:\n",
        "  clientPort: 2181\n  configPath: /etc/zookeeper/conf/zoo.cfg\n  access:\n",
    );
    assert_eq!(valid(&explicit).hash(), base);
    // The same servers listed in another order are the same plan.
    let first = "    - id: 1\n      host: zk1\n      address: 10.0.0.11\n";
    let reordered = base_with(first, "").replace(
        "      address: 10.0.0.13\n",
        &format!("      address: 10.0.0.13\n{first}"),
    );
    assert_ne!(reordered, BASE);
    assert_eq!(valid(&reordered).hash(), base);
}

#[test]
fn example_plans_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("plans/ exists") {
        let path = entry.expect("a directory entry").path();
        if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            match load(&path) {
                Ok(plan) => assert!(
                    plan.warnings.is_empty(),
                    "{}: {:?}",
                    path.display(),
                    plan.warnings
                ),
                Err(e) => panic!("{} does not validate:\n{e}", path.display()),
            }
            seen += 1;
        }
    }
    assert!(seen >= 2, "expected the example plans in {}", dir.display());
}

#[test]
fn the_kafka_example_is_what_it_says() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/five-node-kafka.yaml");
    let plan = load(&path).expect("valid");
    assert_eq!(plan.servers.len(), 5);
    assert_eq!(
        plan.clients.chroot.as_ref().map(|c| c.as_str()),
        Some("/kafka")
    );
    assert_eq!(plan.kubernetes.target.kind, TargetKind::PerServer);
    assert_eq!(plan.state, StateBackend::Kubernetes);
    assert_eq!(plan.state_file(), None);
    assert_eq!(plan.state_object_name(), "zkmigrate-kafka-events");
}

#[test]
fn load_resolves_the_state_file_next_to_the_plan() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("orders.yaml");
    std::fs::write(&path, BASE).expect("write the plan");
    let plan = load(&path).expect("valid");
    assert_eq!(
        plan.state_file(),
        Some(dir.path().join(".zkmigrate/orders.json"))
    );
    // Absolute paths stay as they are; `parse` alone has no directory.
    let absolute = valid(&base_plus(
        "state:\n  path: /var/lib/zkmigrate/orders.json\n",
    ));
    assert_eq!(
        absolute.state_file(),
        Some("/var/lib/zkmigrate/orders.json".into())
    );
    assert_eq!(
        valid(BASE).state_file(),
        Some(".zkmigrate/orders.json".into())
    );
}

#[test]
fn a_missing_file_is_a_read_error_not_an_invalid_plan() {
    let error = load(Path::new("/nonexistent/plan.yaml")).expect_err("no such file");
    assert!(matches!(error, PlanError::Read { .. }));
    assert!(!error.is_invalid());
    assert_eq!(
        error.to_string(),
        "failed to read plan file /nonexistent/plan.yaml"
    );
    assert!(std::error::Error::source(&error).is_some());
}

#[test]
fn an_empty_or_non_mapping_document_is_invalid() {
    for text in ["", "just a string\n", "- a\n- b\n"] {
        let error = parse(text, "x.yaml").expect_err("not a plan");
        assert!(error.is_invalid(), "{text:?}: {error}");
        assert_eq!(error.field_errors().len(), 1);
    }
}
