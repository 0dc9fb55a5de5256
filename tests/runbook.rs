//! `zkmigrate runbook` as an operator runs it: the Markdown of every
//! example plan, snapshot-tested (insta) byte for byte, with the snapshots
//! in `tests/snapshots/`; `-o FILE`; errors that write nothing. The
//! runbook reads only the plan, so none of this needs a host or a cluster.
//! Following it against a real ensemble is `tests/runbook_lab.rs`.

use std::path::Path;
use std::process::{Command, Output};

use zkmigrate::runbook::blocks_of;

const PLANS: [(&str, &str); 2] = [
    ("three-node-systemd", "plans/three-node-systemd.yaml"),
    ("five-node-kafka", "plans/five-node-kafka.yaml"),
];

/// Runs zkmigrate in the repository root, so the plan's path (which the
/// runbook quotes in its commands) is the same on every machine.
fn zkmigrate_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zkmigrate"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("ZKMIGRATE_LOG")
        .output()
        .expect("run zkmigrate")
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_runbook_of_every_example_plan() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for (name, file) in PLANS {
            let out = zkmigrate_in(root(), &["runbook", "-f", file]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let markdown = String::from_utf8(out.stdout).expect("utf-8");
            insta::assert_snapshot!(format!("runbook-{name}"), markdown);
        }
    });
}

#[test]
fn it_lists_the_same_actions_as_plan_in_the_same_order() {
    for (name, file) in PLANS {
        let plan = zkmigrate_in(root(), &["plan", "-f", file, "--offline", "-o", "json"]);
        assert_eq!(plan.status.code(), Some(0), "{name}");
        let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
        let planned: Vec<String> = plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["actions"].as_array().unwrap().iter())
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect();
        let out = zkmigrate_in(root(), &["runbook", "-f", file]);
        let markdown = String::from_utf8(out.stdout).unwrap();
        let in_runbook: Vec<String> = markdown
            .lines()
            .filter_map(|l| l.strip_prefix("<!-- action: "))
            .map(|l| l.trim_end_matches(" -->").to_string())
            .collect();
        assert_eq!(in_runbook, planned, "{name}");
        // Every disruptive action's blocks open with its gate.
        for id in planned
            .iter()
            .filter(|id| id.starts_with("peers/restart/") || id.starts_with("replace/fence/"))
        {
            let blocks = blocks_of(&markdown, id);
            assert_eq!(blocks.first().map(|b| b.0.as_str()), Some("gate"), "{id}");
        }
    }
}

#[test]
fn output_file_is_written_whole_and_equals_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orders.md");
    let (_, plan) = PLANS[0];
    let plan = root().join(plan);
    let out = zkmigrate_in(
        dir.path(),
        &["runbook", "-f", plan.to_str().unwrap(), "-o", "orders.md"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "with -o nothing goes to stdout");
    let stdout = zkmigrate_in(dir.path(), &["runbook", "-f", plan.to_str().unwrap()]);
    assert_eq!(std::fs::read(&file).unwrap(), stdout.stdout);
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["orders.md"]);
}

#[test]
fn an_invalid_plan_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join(PLANS[0].1))
        .unwrap()
        .replace("name: orders", "name: Orders");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, text).unwrap();
    let out = zkmigrate_in(
        dir.path(),
        &["runbook", "-f", "bad.yaml", "-o", "runbook.md"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("name"));
    assert!(!dir.path().join("runbook.md").exists());
    assert!(out.stdout.is_empty());

    let out = zkmigrate_in(
        dir.path(),
        &["runbook", "-f", "missing.yaml", "-o", "runbook.md"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a missing file is an error, not a usage error"
    );
    assert!(!dir.path().join("runbook.md").exists());
}

#[test]
fn an_unwritable_output_fails_and_says_where() {
    let (_, plan) = PLANS[0];
    let out = zkmigrate_in(
        root(),
        &["runbook", "-f", plan, "-o", "/nonexistent-dir/runbook.md"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent-dir/runbook.md"), "{err}");
}

#[test]
fn every_block_of_every_example_plan_is_valid_sh() {
    for (name, file) in PLANS {
        let out = zkmigrate_in(root(), &["runbook", "-f", file]);
        let markdown = String::from_utf8(out.stdout).unwrap();
        let mut n = 0;
        for line in markdown.lines() {
            let Some(rest) = line.strip_prefix("```sh action=\"") else {
                continue;
            };
            let action = rest.split('"').next().unwrap();
            for (role, body) in blocks_of(&markdown, action) {
                n += 1;
                let check = Command::new("sh")
                    .args(["-n", "-c", &body])
                    .output()
                    .unwrap();
                assert!(
                    check.status.success(),
                    "{name} {action} {role}: {}",
                    String::from_utf8_lossy(&check.stderr)
                );
            }
        }
        assert!(n > 50, "{name}: {n} blocks");
    }
}
