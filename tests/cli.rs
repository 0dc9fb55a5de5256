//! The `zkmigrate` binary as an operator runs it: exit codes and messages
//! for invalid plans (DESIGN sections 3 and 4), and `status` against a live
//! ensemble of real ZooKeeper servers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use zklab::testkit::Ensemble;

fn zkmigrate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zkmigrate"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("ZKMIGRATE_LOG")
        .output()
        .expect("run zkmigrate")
}

fn example_plan() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/three-node-systemd.yaml"),
    )
    .unwrap()
}

/// Writes `text` as a plan file in a fresh directory.
fn plan_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// Runs `plan` on a broken plan; asserts exit 2, no stdout, and returns
/// stderr.
fn refused(text: &str) -> String {
    let (_dir, path) = plan_file(text);
    let out = zkmigrate(&["plan", "-f", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "an invalid plan prints no result");
    stderr
}

#[test]
fn the_example_plans_are_accepted() {
    for plan in [
        "plans/three-node-systemd.yaml",
        "plans/five-node-kafka.yaml",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(plan);
        // Offline: the example plans' hosts are not on this machine's network.
        let out = zkmigrate(&["plan", "-f", path.to_str().unwrap(), "--offline"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{plan}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        for step in [
            "preflight",
            "services",
            "clients",
            "peers",
            "replace",
            "finalize",
        ] {
            assert!(
                text.contains(&format!("\n{step}\n")),
                "{step} missing: {text}"
            );
        }
        assert!(text.contains("peers/restart/1"), "{text}");
    }
}

#[test]
fn a_duplicate_id_is_refused_naming_the_field_and_line() {
    let text = example_plan().replacen("    - id: 2\n", "    - id: 1\n", 1);
    let stderr = refused(&text);
    let line = text.lines().position(|l| l == "    - id: 1").unwrap();
    let second = text
        .lines()
        .skip(line + 1)
        .position(|l| l == "    - id: 1")
        .unwrap()
        + line
        + 2;
    assert!(stderr.contains("ensemble.servers[1].id"), "{stderr}");
    assert!(
        stderr.contains(&format!(":{second}:")),
        "line {second}: {stderr}"
    );
    assert!(stderr.contains("duplicate"), "{stderr}");
}

#[test]
fn an_unknown_key_is_refused_naming_it_with_its_line() {
    let text = example_plan().replace(
        "  clientPort: 2181\n",
        "  clientPort: 2181\n  clientPorts: 2182\n",
    );
    let line = text
        .lines()
        .position(|l| l == "  clientPorts: 2182")
        .unwrap()
        + 1;
    let stderr = refused(&text);
    assert!(stderr.contains("clientPorts"), "{stderr}");
    assert!(
        stderr.contains(&format!(":{line}:")),
        "line {line}: {stderr}"
    );
}

#[test]
fn an_even_voter_count_is_refused_naming_the_server_list() {
    let text = example_plan().replace(
        "  clientPort: 2181\n",
        "    - id: 4\n      host: zk4.prod.internal\n      address: 10.0.0.14\n  clientPort: 2181\n",
    );
    let stderr = refused(&text);
    assert!(stderr.contains("ensemble.servers"), "{stderr}");
    assert!(stderr.contains("even"), "{stderr}");
    // The documented way out: allowEvenVoters turns it into a warning.
    let allowed = text.replace("policy:\n", "policy:\n  allowEvenVoters: true\n");
    let (_dir, path) = plan_file(&allowed);
    let out = zkmigrate(&["plan", "-f", path.to_str().unwrap(), "--offline"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_missing_plan_file_is_an_error_not_an_invalid_plan() {
    let out = zkmigrate(&["plan", "-f", "/nonexistent/plan.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed to read plan file"));
}

#[test]
fn commands_not_built_yet_validate_first_then_say_so() {
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/three-node-systemd.yaml");
    let out = zkmigrate(&["runbook", "-f", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not built yet"));

    let (_dir, bad) = plan_file(&example_plan().replace("name: orders", "name: Orders"));
    let out = zkmigrate(&["step", "-f", bad.to_str().unwrap(), "--all"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an invalid plan is exit 2 whatever the command"
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = zkmigrate(&["step", "-f", "p.yaml", "--until", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A plan for a testkit ensemble: its addresses, its shared client port.
fn plan_for(ens: &Ensemble) -> String {
    let mut servers = String::new();
    for s in ens.servers() {
        servers.push_str(&format!(
            "    - {{ id: {}, host: host{}, address: {} }}\n",
            s.id, s.id, s.addr
        ));
    }
    let s1 = ens.server(1);
    format!(
        "apiVersion: zkmigrate/v1\n\
         kind: MigrationPlan\n\
         name: live\n\
         ensemble:\n\
         \x20 servers:\n{servers}\
         \x20 clientPort: {}\n\
         \x20 quorumPort: {}\n\
         \x20 electionPort: {}\n\
         \x20 access:\n\
         \x20   exec: {{ prefix: [\"env\", \"ZK_HOST={{host}}\"] }}\n\
         \x20 service: {{ start: 'true', stop: 'true', restart: 'true', disable: 'true', enable: 'true' }}\n\
         kubernetes:\n\
         \x20 namespace: zookeeper\n\
         \x20 target: {{ kind: StatefulSet, name: zk, image: 'zookeeper:3.8', storage: {{ size: 1Gi }} }}\n",
        s1.client_port, s1.quorum_port, s1.election_port
    )
}

fn status_json(path: &Path) -> serde_json::Value {
    let out = zkmigrate(&["status", "-f", path.to_str().unwrap(), "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status -o json is JSON")
}

#[test]
fn status_json_reports_every_server_and_the_leaders_sync_against_a_live_ensemble() {
    let mut ens = Ensemble::start(3).expect("ensemble");
    let (_dir, path) = plan_file(&plan_for(&ens));
    let leader = ens.leader().unwrap();

    let status = status_json(&path);
    let steps: Vec<&str> = status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "preflight",
            "services",
            "clients",
            "peers",
            "replace",
            "finalize"
        ]
    );
    let servers = status["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3);
    for s in servers {
        let id = s["id"].as_u64().unwrap() as u8;
        let expected = if id == leader { "leader" } else { "follower" };
        assert_eq!(s["mode"], expected, "{status}");
        assert_eq!(s["address"], ens.server(id).addr.to_string());
        assert_eq!(s["location"], "host");
        // The zxid is the one the server itself reports.
        let srvr = ens.four_letter_word(id, "srvr").unwrap();
        let zxid = srvr.lines().find_map(|l| l.strip_prefix("Zxid: ")).unwrap();
        assert!(s["zxid"].as_str().unwrap().starts_with("0x"), "{s}");
        assert_eq!(s["zxid"].as_str().unwrap(), zxid.trim(), "{s}");
        assert_eq!(s["lag"], 0);
    }
    assert_eq!(status["leader"], leader);
    assert_eq!(status["syncedFollowers"], 2);
    assert_eq!(status["allVotersSynced"], true);

    // A follower stops: the leader's synced count drops, the row says why.
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    ens.stop(follower).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = status_json(&path);
        if status["syncedFollowers"] == 1 {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "synced count never dropped: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let row = status["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == follower)
        .unwrap();
    assert!(row["mode"].is_null(), "{row}");
    assert!(
        row["error"].as_str().unwrap().contains("failed to"),
        "{row}"
    );
    assert_eq!(status["allVotersSynced"], false);
    assert_eq!(status["hasQuorum"], true);
}

#[test]
fn status_text_is_a_table_of_the_live_ensemble() {
    let ens = Ensemble::start(3).expect("ensemble");
    let (_dir, path) = plan_file(&plan_for(&ens));
    let out = zkmigrate(&["status", "-f", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ID  ADDRESS"), "{text}");
    let rows = |mode: &str| {
        text.lines()
            .filter(|l| l.contains(&format!("  {mode}  ")))
            .count()
    };
    assert_eq!(rows("follower"), 2, "{text}");
    assert_eq!(rows("leader"), 1, "{text}");
    assert!(text.contains("synced followers: 2"), "{text}");
}
