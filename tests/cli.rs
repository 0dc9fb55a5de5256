//! The `zkmigrate` binary as an operator runs it: exit codes and messages
//! for invalid plans (DESIGN sections 3 and 4), `status` against a live
//! ensemble of real ZooKeeper servers, `-o json` (one JSON document) on
//! every command that prints a table, and the shell completions and man
//! pages generated from the command line's own definition.

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
fn an_invalid_plan_is_exit_2_whatever_the_command() {
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

/// Every command of the CLI, as clap knows it (so a new command is
/// covered without touching these tests), but `help`.
fn subcommands() -> Vec<String> {
    use clap::CommandFactory;
    zkmigrate::cli::Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|name| name != "help")
        .collect()
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
fn each_completion_script_mentions_every_command() {
    let commands = subcommands();
    assert!(commands.len() >= 10, "{commands:?}");
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        for command in &commands {
            assert!(
                script.contains(command.as_str()),
                "{shell} completion lacks {command}"
            );
        }
    }
    let out = zkmigrate(&["completions", "tcsh"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn the_bash_completion_script_parses() {
    let script = stdout_of(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zkmigrate.bash");
    std::fs::write(&path, &script).unwrap();
    let out = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(script.contains("complete -F _zkmigrate"), "{script}");
}

/// A man page has its title, NAME and SYNOPSIS sections.
fn assert_man_page(page: &str, title: &str) {
    assert!(page.contains(&format!(".TH {title} 1")), "{title}: {page}");
    assert!(page.contains(".SH NAME\n"), "{title}: {page}");
    assert!(page.contains(".SH SYNOPSIS\n"), "{title}: {page}");
}

#[test]
fn the_man_page_names_every_command_and_each_has_its_own() {
    let page = stdout_of(&["man"]);
    assert_man_page(&page, "zkmigrate");
    assert!(page.contains(".SH SUBCOMMANDS\n"), "{page}");
    for command in subcommands() {
        assert!(
            page.contains(&format!("zkmigrate\\-{}(1)", command.replace('-', "\\-"))),
            "zkmigrate(1) lacks {command}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let listed = stdout_of(&["man", "-o", out_dir.to_str().unwrap()]);
    let main = std::fs::read_to_string(out_dir.join("zkmigrate.1")).unwrap();
    assert_eq!(main, page, "-o writes the page it prints");
    let mut expected = vec![out_dir.join("zkmigrate.1")];
    for command in subcommands() {
        let file = out_dir.join(format!("zkmigrate-{command}.1"));
        let sub = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        assert_man_page(&sub, &format!("zkmigrate-{command}"));
        assert!(
            sub.contains("\"zkmigrate "),
            "the source is zkmigrate: {sub}"
        );
        expected.push(file);
    }
    let listed: Vec<PathBuf> = listed.lines().map(PathBuf::from).collect();
    assert_eq!(listed, expected, "the pages written, one path a line");
    assert_eq!(
        std::fs::read_dir(&out_dir).unwrap().count(),
        expected.len(),
        "no page for `help`"
    );
}

/// The commands that print a table for a person also print it as JSON
/// for a machine (DESIGN 4): `-o json` is accepted by each.
#[test]
fn every_table_command_takes_output_json() {
    use clap::CommandFactory;
    let cli = zkmigrate::cli::Cli::command();
    for name in ["plan", "check", "status", "rbac"] {
        let command = cli.find_subcommand(name).unwrap();
        let output = command
            .get_arguments()
            .find(|a| a.get_id() == "output")
            .unwrap_or_else(|| panic!("{name} has no -o"));
        assert_eq!(output.get_short(), Some('o'), "{name}");
        let values: Vec<String> = output
            .get_possible_values()
            .iter()
            .map(|v| v.get_name().to_string())
            .collect();
        assert!(values.contains(&"json".to_string()), "{name}: {values:?}");
    }
}

/// Exactly one JSON document on stdout, nothing before or after it.
fn one_json_document(args: &[&str]) -> serde_json::Value {
    let out = stdout_of(args);
    let mut documents = serde_json::Deserializer::from_str(&out).into_iter::<serde_json::Value>();
    let first = documents
        .next()
        .unwrap_or_else(|| panic!("{args:?}: no JSON"))
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"));
    assert!(
        documents.next().is_none(),
        "{args:?}: more than one document"
    );
    first
}

/// The commands that need neither hosts nor a cluster print one JSON
/// document with `-o json` (`check` needs both: `tests/rbac_lab.rs`
/// covers its JSON in the lab).
#[test]
fn offline_commands_print_one_json_document() {
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/three-node-systemd.yaml");
    let good = good.to_str().unwrap();
    let plan = one_json_document(&["plan", "-f", good, "--offline", "-o", "json"]);
    assert!(plan["steps"].is_array(), "{plan}");
    let rbac = one_json_document(&["rbac", "-f", good, "-o", "json"]);
    assert_eq!(rbac["kind"], "List", "{rbac}");

    // status answers with every server down: its rows say why. The
    // servers are on loopback addresses where nothing listens.
    let (dir, path) = plan_file(
        &example_plan()
            .replace("address: 10.0.0.1", "address: 127.0.0.")
            .replace("clientPort: 2181", "clientPort: 1"),
    );
    let status = one_json_document(&["status", "-f", path.to_str().unwrap(), "-o", "json"]);
    let servers = status["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3, "{status}");
    for s in servers {
        assert!(
            s["address"].as_str().unwrap().starts_with("127.0.0."),
            "{s}"
        );
        assert!(s["mode"].is_null() && s["error"].is_string(), "{s}");
    }
    assert_eq!(status["hasQuorum"], false, "{status}");
    drop(dir);
}
