//! The crash matrix (issue 6; docs/reliability.md): zkmigrate dies by
//! SIGKILL at a journaled boundary (src/failpoint.rs), is resumed, dies at
//! the next boundary it has not died at yet, and so on, until a run goes
//! through. Every boundary of the migration is thus a crash point once, in
//! order, and each resume starts from the state the last crash left. The
//! end state must be that of an uninterrupted migration, with no
//! acknowledged write lost.
//!
//! CI runs a sample (`ZKMIGRATE_CRASH_ONLY`, default below); the whole
//! matrix is `scripts/crash-matrix.sh`, which sets `ZKMIGRATE_CRASH_ONLY=`
//! (every boundary) and `ZKMIGRATE_CRASH_RESULT` (where the result goes).
//! Built only with the `failpoints` feature (Cargo.toml `required-features`).

mod common;

use std::path::Path;
use std::process::Output;

use common::{FINISH, Lab, text};
use zklab::topology::Target;
use zkmigrate::failpoint::selects;

/// The boundaries CI crashes at: in the middle of every disruptive action,
/// where the journal and the world disagree most: a server restarted but
/// not yet seen synced, a host fenced, a Service switched to a Pod not yet
/// created, a Pod created but not yet seen synced.
const CI_SAMPLE: &str =
    "peers/restart/*@applied,replace/fence/*@applied,replace/switch/*@intent,replace/pod/*@applied";

/// Runs `args` with the crash ledger until a run is not killed; returns
/// that run's output and the boundaries crashed at, in order.
fn run_crashing(lab: &Lab, ledger: &Path, only: &str, args: &[&str]) -> (Output, Vec<String>) {
    let mut crashed = Vec::new();
    loop {
        let out = lab
            .command(args)
            .env("ZKMIGRATE_CRASH_LEDGER", ledger)
            .env("ZKMIGRATE_CRASH_ONLY", only)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Shown when the test fails: the story of every run.
        eprintln!("--- run {} ---\n{stderr}", crashed.len() + 1);
        let Some(at) = stderr
            .lines()
            .find_map(|l| l.strip_prefix("failpoint: crash at "))
        else {
            return (out, crashed);
        };
        // `ip netns exec` exec's env, which exec's zkmigrate: one process,
        // so the signal is zkmigrate's own.
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(9), "{}", text(&out));
        let listed = std::fs::read_to_string(ledger).unwrap();
        assert_eq!(listed.lines().last(), Some(at), "ledger {listed}");
        assert!(!crashed.iter().any(|c| c == at), "{at} crashed at twice");
        crashed.push(at.to_string());
        assert!(crashed.len() < 1000, "the crash chain does not end");
    }
}

fn crash_everywhere(name: &str, target: Target) {
    let only = std::env::var("ZKMIGRATE_CRASH_ONLY").unwrap_or_else(|_| CI_SAMPLE.into());
    let lab = Lab::up(name, target);
    let plan = lab.plan();
    let ledger = lab.layout.root.join("crash-ledger");
    lab.zklab(&["load", "start"]);
    let started = std::time::Instant::now();

    // Up to the clients step, crashing; it stops for the operator (exit 4),
    // who moves the workload to the Service names.
    let (out, mut crashed) = run_crashing(
        &lab,
        &ledger,
        &only,
        &[
            "step", "-f", &plan, "--until", "clients", "--yes", "--resume",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    lab.move_the_workload_to_the_services();

    let (out, rest) = run_crashing(
        &lab,
        &ledger,
        &only,
        &[
            "step", "-f", &plan, FINISH[0], FINISH[1], FINISH[2], FINISH[3], FINISH[4],
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    crashed.extend(rest);

    lab.assert_migrated();
    let report = lab.final_report();
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["ephemeral_survived"], true, "{report}");
    assert_eq!(report["sessions_expired"], 0, "{report}");

    // Every journaled action was a crash point at each of its boundaries
    // that the pattern selects; so was every step.
    let journal = lab.journal();
    let mut expected = Vec::new();
    for step in journal["steps"].as_array().unwrap() {
        let step_name = step["name"].as_str().unwrap();
        expected.push(format!("step/{step_name}@running"));
        expected.push(format!("step/{step_name}@done"));
        for action in step["actions"].as_array().unwrap() {
            let id = action["id"].as_str().unwrap();
            expected.push(format!("{id}@intent"));
            expected.push(format!("{id}@done"));
            let applied = !action["detail"]
                .as_str()
                .unwrap_or_default()
                .starts_with("already:");
            if applied {
                expected.push(format!("{id}@applied"));
            }
        }
    }
    let missed: Vec<&String> = expected
        .iter()
        .filter(|b| selects(&only, b) && !crashed.contains(b))
        .collect();
    assert!(
        missed.is_empty(),
        "boundaries never crashed at: {missed:?}\ncrashed at: {crashed:?}"
    );
    assert!(!crashed.is_empty(), "no boundary matched {only:?}");

    if let Ok(result) = std::env::var("ZKMIGRATE_CRASH_RESULT") {
        let line = serde_json::json!({
            "target": format!("{target:?}"),
            "pattern": only,
            "boundaries": crashed.len(),
            "crashed_at": crashed,
            "report": report,
            "seconds": started.elapsed().as_secs(),
        });
        let mut all = std::fs::read_to_string(&result).unwrap_or_default();
        all.push_str(&format!("{line}\n"));
        std::fs::write(&result, all).unwrap();
    }
}

#[test]
fn a_statefulset_migration_survives_a_crash_at_every_boundary() {
    crash_everywhere(
        &format!("cs{}", std::process::id() % 100_000),
        Target::StatefulSet,
    );
}

#[test]
fn a_per_server_migration_survives_a_crash_at_every_boundary() {
    crash_everywhere(
        &format!("cp{}", std::process::id() % 100_000),
        Target::PerServer,
    );
}
