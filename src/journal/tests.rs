//! Unit tests of the journal's pure parts: transitions, action ids, shape
//! and schema checks. Files, locks and processes: `tests/journal.rs`.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::steps::StepName;

const PLAN: &str = "\
apiVersion: zkmigrate/v1
kind: MigrationPlan
name: orders
ensemble:
  servers:
    - { id: 1, host: zk1, address: 10.0.0.11 }
    - { id: 2, host: zk2, address: 10.0.0.12 }
    - { id: 3, host: zk3, address: 10.0.0.13 }
  access:
    ssh: { user: root }
  service:
    start: systemctl start zookeeper
    stop: systemctl stop zookeeper
    restart: systemctl restart zookeeper
    disable: systemctl disable zookeeper
    enable: systemctl enable zookeeper
kubernetes:
  namespace: zookeeper
  target: { kind: StatefulSet, name: zk, image: zookeeper:3.8.4, storage: { size: 10Gi } }
";

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn journal() -> Journal {
    let plan = crate::plan::parse(PLAN, "plan.yaml").unwrap();
    Journal::new(&plan, t(0))
}

#[test]
fn action_ids_name_their_step() {
    assert_eq!(step_of("peers/restart/2").unwrap(), StepName::Peers);
    assert_eq!(step_of("replace/fence/3").unwrap(), StepName::Replace);
    for bad in [
        "peers",
        "peers/",
        "/restart",
        "nope/restart/1",
        "peers//1",
        "",
    ] {
        assert!(step_of(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_fresh_journal_has_every_step_pending_and_no_interruption() {
    let j = journal();
    assert_eq!(j.schema_version, SCHEMA_VERSION);
    assert_eq!(j.plan_name, "orders");
    assert_eq!(j.plan_hash.len(), 64);
    let names: Vec<StepName> = j.steps.iter().map(|s| s.name).collect();
    assert_eq!(names, StepName::ALL);
    assert!(j.steps.iter().all(|s| s.status == StepStatus::Pending));
    assert_eq!(j.interrupted_step(), None);
    assert_eq!(j.next_step(), Some(StepName::Preflight));
    j.check_shape().unwrap();
}

#[test]
fn intent_then_outcome_stamps_times_and_resets_on_retry() {
    let mut j = journal();
    j.set_step_status(StepName::Peers, StepStatus::Running, t(1));
    j.record_intent("peers/restart/2", t(2)).unwrap();
    let interrupted = j.interrupted_step().unwrap();
    assert_eq!(interrupted.step, StepName::Peers);
    assert_eq!(interrupted.action.unwrap().id, "peers/restart/2");

    j.record_outcome(
        "peers/restart/2",
        ActionStatus::Failed,
        Some("timeout".into()),
        t(3),
    )
    .unwrap();
    let a = j.action("peers/restart/2").unwrap();
    assert_eq!(a.status, ActionStatus::Failed);
    assert_eq!(a.finished_at, Some(Timestamp::at(t(3))));
    // Still running, between actions: interrupted, with no action in intent.
    let interrupted = j.interrupted_step().unwrap();
    assert_eq!(interrupted.action, None);

    // A retry resets the record rather than adding a second one.
    j.record_intent("peers/restart/2", t(4)).unwrap();
    j.record_outcome("peers/restart/2", ActionStatus::Done, None, t(5))
        .unwrap();
    let step = j.step(StepName::Peers).unwrap();
    assert_eq!(step.actions.len(), 1);
    assert_eq!(step.actions[0].started_at, Some(Timestamp::at(t(4))));
    assert_eq!(step.actions[0].detail, None);

    j.set_step_status(StepName::Peers, StepStatus::Done, t(6));
    let step = j.step(StepName::Peers).unwrap();
    assert_eq!(step.started_at, Some(Timestamp::at(t(1))));
    assert_eq!(step.finished_at, Some(Timestamp::at(t(6))));
    assert_eq!(j.interrupted_step(), None);
    assert_eq!(j.updated_at, Timestamp::at(t(6)));
}

#[test]
fn an_outcome_without_intent_is_refused() {
    let mut j = journal();
    let err = j
        .record_outcome("replace/fence/1", ActionStatus::Done, None, t(1))
        .unwrap_err();
    assert!(matches!(err, JournalError::UnknownAction { .. }), "{err}");
    assert!(j.record_intent("fence/1", t(1)).is_err());
}

#[test]
fn documents_of_another_schema_or_shape_are_refused() {
    let path = Path::new("j.json");
    let good = render(&journal());
    parse(path, &good).unwrap();

    let text = String::from_utf8(good.clone()).unwrap();
    let v2 = text.replace("\"schemaVersion\": 1", "\"schemaVersion\": 2");
    let err = parse(path, v2.as_bytes()).unwrap_err();
    assert!(matches!(err, JournalError::UnknownSchema { .. }), "{err}");
    assert!(err.to_string().contains("schemaVersion 2"), "{err}");

    let extra = text.replacen("\"planName\"", "\"surprise\": 1,\n  \"planName\"", 1);
    let err = parse(path, extra.as_bytes()).unwrap_err();
    assert!(matches!(err, JournalError::Malformed { .. }), "{err}");

    let mut misplaced = journal();
    misplaced.steps[0].actions.push(ActionRecord {
        id: "peers/restart/1".into(),
        status: ActionStatus::Done,
        started_at: None,
        finished_at: None,
        detail: None,
    });
    let err = parse(path, &render(&misplaced)).unwrap_err();
    assert!(err.to_string().contains("under step preflight"), "{err}");

    let mut short = journal();
    short.steps.pop();
    assert!(parse(path, &render(&short)).is_err());
    assert!(matches!(
        parse(path, b"{\"schemaVersion\": 1").unwrap_err(),
        JournalError::Malformed { .. }
    ));
}

#[test]
fn timestamps_are_rfc3339_utc_with_milliseconds_and_round_trip() {
    let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    let json = serde_json::to_string(&Timestamp::at(at)).unwrap();
    assert_eq!(json, "\"2023-11-14T22:13:20.123Z\"");
    let back: Timestamp = serde_json::from_str(&json).unwrap();
    assert_eq!(back, Timestamp::at(at));
}

#[test]
fn the_kubernetes_backend_names_a_config_map_and_a_lease_in_the_plans_namespace() {
    let text = format!("{PLAN}state: {{ backend: kubernetes }}\n");
    let plan = crate::plan::parse(&text, "plan.yaml").unwrap();
    let JournalStore::Kubernetes(names) = JournalStore::from_plan(&plan) else {
        panic!("the kubernetes store");
    };
    assert_eq!(names.name, "zkmigrate-orders");
    assert_eq!(names.namespace, "zookeeper");
    assert_eq!(names.labels["app.kubernetes.io/managed-by"], "zkmigrate");
    assert_eq!(names.labels["zkmigrate/plan"], "orders");
    assert_eq!(
        names.journal_path(),
        Path::new("ConfigMap zookeeper/zkmigrate-orders")
    );
}
