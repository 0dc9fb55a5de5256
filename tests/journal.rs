//! The journal's file backend on a real file system: the exact bytes of a
//! fresh journal, atomic replacement (a reader never sees a partial
//! document), the exclusive lock as the OS sees it (another process's
//! `flock -n` fails while a run holds it), plan-hash checks, and what a
//! crashed run leaves for `--resume`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zkmigrate::journal::{
    self, ActionStatus, Clock, JournalError, JournalStore, LockOptions, LockedJournal, StepStatus,
};
use zkmigrate::plan::{self, ValidatedPlan};
use zkmigrate::steps::StepName;

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
policy:
  syncTimeout: 10m
state:
  backend: file
  path: state/orders.json
";

/// The plan above, read from a file in `dir` (so its state path resolves
/// into `dir`), with `from` replaced by `to`.
fn plan_in(dir: &Path, from: &str, to: &str) -> ValidatedPlan {
    let file = dir.join("plan.yaml");
    std::fs::write(&file, PLAN.replacen(from, to, 1)).unwrap();
    plan::load(&file).unwrap()
}

fn base_plan(dir: &Path) -> ValidatedPlan {
    plan_in(dir, "", "")
}

fn at(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_735_689_600_000 + millis)
}

/// A clock that advances one second per reading.
fn ticking() -> Clock {
    let n = Arc::new(AtomicU64::new(0));
    Clock::from_fn(move || at(n.fetch_add(1000, Ordering::SeqCst)))
}

async fn open(plan: &ValidatedPlan, clock: Clock) -> Result<LockedJournal, JournalError> {
    let options = LockOptions {
        clock,
        steal_lease: false,
    };
    JournalStore::from_plan(plan)
        .open_locked(plan, None, options)
        .await
}

fn journal_path(plan: &ValidatedPlan) -> PathBuf {
    plan.state_file().unwrap()
}

#[tokio::test]
async fn a_fresh_journal_has_these_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let plan = base_plan(dir.path());
    let locked = open(&plan, Clock::fixed(at(0))).await.unwrap();
    assert_eq!(locked.path().unwrap(), dir.path().join("state/orders.json"));
    let bytes = std::fs::read_to_string(locked.path().unwrap()).unwrap();
    let step = |name: &str| {
        format!(
            "    {{\n      \"name\": \"{name}\",\n      \"status\": \"pending\",\n      \"actions\": []\n    }}"
        )
    };
    let steps: Vec<String> = StepName::ALL.iter().map(|s| step(s.as_str())).collect();
    let expected = format!(
        "{{\n  \"schemaVersion\": 1,\n  \"planName\": \"orders\",\n  \"planHash\": \"{}\",\n  \"updatedAt\": \"2025-01-01T00:00:00.000Z\",\n  \"steps\": [\n{}\n  ]\n}}\n",
        plan.hash(),
        steps.join(",\n")
    );
    assert_eq!(bytes, expected);
}

#[tokio::test]
async fn a_recorded_action_reads_back_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let plan = base_plan(dir.path());
    let mut locked = open(&plan, ticking()).await.unwrap();
    locked
        .set_step_status(StepName::Peers, StepStatus::Running)
        .await
        .unwrap();
    locked.record_intent("peers/restart/2").await.unwrap();
    locked
        .record_done("peers/restart/2", Some("synced at zxid 0x100000004".into()))
        .await
        .unwrap();
    let text = std::fs::read_to_string(locked.path().unwrap()).unwrap();
    let expected_step = r#"    {
      "name": "peers",
      "status": "running",
      "startedAt": "2025-01-01T00:00:01.000Z",
      "actions": [
        {
          "id": "peers/restart/2",
          "status": "done",
          "startedAt": "2025-01-01T00:00:02.000Z",
          "finishedAt": "2025-01-01T00:00:03.000Z",
          "detail": "synced at zxid 0x100000004"
        }
      ]
    }"#;
    assert!(text.contains(expected_step), "{text}");
    assert!(
        text.contains("\"updatedAt\": \"2025-01-01T00:00:03.000Z\""),
        "{text}"
    );
}

#[tokio::test]
async fn every_record_is_on_disk_when_it_returns_and_readers_never_see_a_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let plan = base_plan(dir.path());
    let mut locked = open(&plan, Clock::system()).await.unwrap();
    let path = locked.path().unwrap().to_path_buf();

    // A reader polling the file the whole time, as `status` does.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, path) = (stop.clone(), path.clone());
        std::thread::spawn(move || {
            let mut reads = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let journal = journal::read(&path).expect("a whole document").unwrap();
                assert_eq!(journal.plan_name, "orders");
                reads += 1;
            }
            reads
        })
    };
    locked
        .set_step_status(StepName::Replace, StepStatus::Running)
        .await
        .unwrap();
    for i in 1..=150 {
        let id = format!("replace/fence/{i}");
        locked.record_intent(&id).await.unwrap();
        // On disk before the call returned: what a crash right now leaves.
        let on_disk = journal::read(&path).unwrap().unwrap();
        assert_eq!(on_disk.action(&id).unwrap().status, ActionStatus::Intent);
        assert_eq!(&on_disk, locked.journal());
        locked.record_done(&id, None).await.unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let reads = reader.join().expect("the reader saw only whole documents");
    assert!(reads > 0);

    // No temporary file is left beside the journal.
    let mut names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["orders.json", "orders.json.lock"]);
}

#[tokio::test]
async fn a_temporary_file_left_by_a_crash_before_the_rename_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plan = base_plan(dir.path());
    let path = journal_path(&plan);
    {
        let mut locked = open(&plan, ticking()).await.unwrap();
        locked
            .set_step_status(StepName::Preflight, StepStatus::Done)
            .await
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    // A run killed between writing its temporary file and the rename: a
    // half-written temporary file, never the journal itself.
    let orphan = path.parent().unwrap().join(".zkmigrate-journal-crash.tmp");
    std::fs::write(&orphan, &before[..before.len() / 2]).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let locked = open(&plan, ticking()).await.unwrap();
    assert_eq!(
        locked.journal().step(StepName::Preflight).unwrap().status,
        StepStatus::Done
    );
}

#[tokio::test]
async fn the_lock_is_exclusive_for_other_processes_and_other_handles_and_names_its_holder() {
    let dir = tempfile::tempdir().unwrap();
    let plan = base_plan(dir.path());
    let locked = open(&plan, Clock::system()).await.unwrap();
    let lock = locked.lock_path().unwrap().to_path_buf();
    assert_eq!(lock, dir.path().join("state/orders.json.lock"));
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        format!("{}\n", std::process::id())
    );

    // Another process cannot take the OS-level lock.
    let flock = |lock: &Path| {
        Command::new("flock")
            .args(["-n", "-E", "75"])
            .arg(lock)
            .arg("true")
            .status()
            .expect("flock (util-linux)")
            .code()
    };
    assert_eq!(flock(&lock), Some(75), "another process got the lock");

    // Nor can a second handle in this process (flock is per open file).
    let err = open(&plan, Clock::system()).await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, JournalError::Locked { holder: Some(pid), .. } if pid == std::process::id())
    );
    assert!(message.contains(&lock.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("process {}", std::process::id())),
        "{message}"
    );

    // Reading needs no lock and works while a run holds it.
    let read = JournalStore::from_plan(&plan)
        .read(&plan, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&read, locked.journal());

    drop(locked);
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), "");
    assert_eq!(flock(&lock), Some(0));
    open(&plan, Clock::system())
        .await
        .expect("the lock is free again");
}

#[tokio::test]
async fn a_changed_plan_is_refused_and_a_changed_policy_is_not() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(&base_plan(dir.path()), ticking()).await.unwrap());

    let moved = plan_in(dir.path(), "address: 10.0.0.12", "address: 10.0.0.22");
    let err = open(&moved, ticking()).await.unwrap_err();
    assert!(matches!(err, JournalError::PlanChanged { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("the plan changed since the journal was written"),
        "{err}"
    );

    let patient = plan_in(dir.path(), "syncTimeout: 10m", "syncTimeout: 30m");
    assert_ne!(patient.policy, base_plan(dir.path()).policy);
    open(&patient, ticking())
        .await
        .expect("policy is outside the hash");
}

#[tokio::test]
async fn a_journal_of_an_unknown_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let plan = base_plan(dir.path());
    let path = journal_path(&plan);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let future = "{\"schemaVersion\": 2, \"whatever\": true}\n";
    std::fs::write(&path, future).unwrap();
    let err = open(&plan, ticking()).await.unwrap_err();
    assert!(matches!(err, JournalError::UnknownSchema { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), future);
}

#[tokio::test]
async fn a_run_that_died_inside_an_action_leaves_an_interrupted_step_for_resume() {
    let dir = tempfile::tempdir().unwrap();
    let plan = base_plan(dir.path());
    {
        let mut locked = open(&plan, ticking()).await.unwrap();
        for step in [StepName::Preflight, StepName::Services, StepName::Clients] {
            locked
                .set_step_status(step, StepStatus::Done)
                .await
                .unwrap();
        }
        locked
            .set_step_status(StepName::Peers, StepStatus::Running)
            .await
            .unwrap();
        locked.record_intent("peers/restart/1").await.unwrap();
        locked.record_done("peers/restart/1", None).await.unwrap();
        locked.record_intent("peers/restart/3").await.unwrap();
        // The process dies here: the lock goes with it.
    }
    let locked = open(&plan, ticking()).await.unwrap();
    let interrupted = locked.interrupted_step().expect("interrupted");
    assert_eq!(interrupted.step, StepName::Peers);
    assert_eq!(interrupted.action.unwrap().id, "peers/restart/3");
    assert_eq!(locked.journal().next_step(), Some(StepName::Peers));
}
