//! `zkmigrate init` against real ZooKeeper 3.8 ensembles (zklab's testkit,
//! on loopback addresses of a block of its own, never 127.0.0.1 nor the
//! default ports): the built binary reads the ensemble, and the plan it
//! writes is accepted by `zkmigrate plan --offline` as it is, with the
//! ensemble's ids, addresses and ports. Then the failures: an address that
//! does not answer among ones that do, none answering, an existing `-o`
//! file, and a `--connect` entry that is not HOST:PORT.
//!
//! The two ensembles are started one after the other (a lock), not at once:
//! six JVMs on a small, busy machine make elections slow enough to time out.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use zklab::testkit::{Ensemble, EnsembleOptions};
use zkmigrate::plan::{self, Access, ValidatedPlan};

static ONE_ENSEMBLE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_ENSEMBLE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn zkmigrate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zkmigrate"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("ZKMIGRATE_LOG")
        .env("USER", "zkops")
        .output()
        .expect("run zkmigrate")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 on stdout")
}

/// Asserts the exit code, printing stderr when it is not the expected one.
fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: stderr:\n{}",
        stderr(out)
    );
}

/// An address of the ensemble's own block that no server binds (the
/// testkit's servers are 1 to 7), on the block's client port.
fn silent_address(ens: &Ensemble) -> String {
    let [a, b, c, _] = ens.server(1).addr.octets();
    format!("{a}.{b}.{c}.9:{}", ens.client_port())
}

/// The plan at `path` holds exactly the ensemble's servers and ports.
fn assert_plan_matches(plan: &ValidatedPlan, ens: &Ensemble) {
    let want: Vec<(u8, String, String)> = ens
        .servers()
        .iter()
        .map(|s| (s.id, s.addr.to_string(), s.addr.to_string()))
        .collect();
    let got: Vec<(u8, String, String)> = plan
        .servers
        .iter()
        .map(|s| (s.id.get(), s.host.clone(), s.address.clone()))
        .collect();
    assert_eq!(got, want);
    let s = &ens.servers()[0];
    let e = &plan.ensemble;
    assert_eq!(
        (e.client_port, e.quorum_port, e.election_port),
        (s.client_port, s.quorum_port, s.election_port)
    );
    assert_eq!(plan.kubernetes.target.image, "zookeeper:3.8.0");
}

/// `plan --offline -f path` accepts the file as it is.
fn assert_plan_accepts(path: &Path) {
    let out = zkmigrate(&["plan", "--offline", "-f", path.to_str().unwrap()]);
    assert_exit(&out, 0, "plan --offline on the written plan");
    assert!(
        stdout(&out).contains("preflight"),
        "the offline plan lists the steps"
    );
}

#[test]
fn init_reads_a_live_ensemble_into_a_plan_that_plan_accepts() {
    let _one = one_at_a_time();
    let ens = Ensemble::start(3).expect("start the ensemble");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.yaml");
    let connect = ens.connect_string();
    let admin_port = ens.servers()[0].admin_port.to_string();

    // Written to a file: nothing on stdout, progress on stderr.
    let out = zkmigrate(&[
        "init",
        "--connect",
        &connect,
        "--admin-port",
        &admin_port,
        "--namespace",
        "orders-zk",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert_exit(&out, 0, "init -o");
    assert!(out.stdout.is_empty(), "the plan goes to the file only");
    assert!(
        stderr(&out).contains("reading the ensemble"),
        "{}",
        stderr(&out)
    );
    assert_plan_accepts(&path);
    let written = plan::load(&path).expect("the written plan loads");
    assert_plan_matches(&written, &ens);
    assert_eq!(
        (written.name.as_str(), written.kubernetes.namespace.as_str()),
        ("orders-zk", "orders-zk")
    );
    let Access::Ssh(ssh) = &written.ensemble.access else {
        panic!("ssh access expected")
    };
    assert_eq!(
        ssh.user.as_deref(),
        Some("zkops"),
        "the local user by default"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("leader, 3.8.0"), "{text}");

    // On stdout: the same bytes, and nothing else.
    let out = zkmigrate(&[
        "init",
        "--connect",
        &connect,
        "--admin-port",
        &admin_port,
        "--namespace",
        "orders-zk",
    ]);
    assert_exit(&out, 0, "init to stdout");
    assert_eq!(stdout(&out), text);

    // One address that does not answer among three that do: the others
    // list every member, so the plan is written, with the address named in
    // a CHECK note and in a warning.
    let silent = silent_address(&ens);
    let with_silent = format!("{connect},{silent}");
    let out = zkmigrate(&[
        "init",
        "--connect",
        &with_silent,
        "--admin-port",
        &admin_port,
    ]);
    assert_exit(&out, 0, "init with one silent address");
    let plan_text = stdout(&out);
    assert!(
        plan_text.contains(&format!("# CHECK: {silent} did not answer")),
        "{plan_text}"
    );
    assert!(stderr(&out).contains(&silent), "{}", stderr(&out));
    let with_note = plan::parse(&plan_text, "stdout").expect("still a valid plan");
    assert_plan_matches(&with_note, &ens);

    // Existing file without --force: refused before the ensemble is asked,
    // the file unchanged; with --force: replaced.
    let existing = dir.path().join("existing.yaml");
    std::fs::write(&existing, "# the operator's own plan\n").unwrap();
    let args = |force: bool| {
        let mut args = vec![
            "init",
            "--connect",
            &connect,
            "-o",
            existing.to_str().unwrap(),
        ];
        if force {
            args.push("--force");
        }
        zkmigrate(&args)
    };
    let out = args(false);
    assert_exit(&out, 2, "init over an existing file");
    assert!(stderr(&out).contains("pass --force"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("reading the ensemble"));
    assert_eq!(
        std::fs::read_to_string(&existing).unwrap(),
        "# the operator's own plan\n"
    );
    let out = args(true);
    assert_exit(&out, 0, "init --force over an existing file");
    assert_plan_accepts(&existing);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // Nothing answers: exit 1, each address named, nothing written.
    let [a, b, c, _] = ens.server(1).addr.octets();
    let other = format!("{a}.{b}.{c}.8:{}", ens.client_port());
    let nowhere = dir.path().join("nowhere.yaml");
    let out = zkmigrate(&[
        "init",
        "--connect",
        &format!("{silent},{other}"),
        "--admin-port",
        &admin_port,
        "-o",
        nowhere.to_str().unwrap(),
    ]);
    assert_exit(&out, 1, "init with no server answering");
    let err = stderr(&out);
    assert!(
        err.contains("error: failed to read the ensemble: no server answered")
            && err.contains(&silent)
            && err.contains(&other),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    assert!(!nowhere.exists(), "nothing written");
}

#[test]
fn init_reads_conf_through_the_admin_server_when_the_word_is_not_whitelisted() {
    let _one = one_at_a_time();
    let ens = Ensemble::start_with(EnsembleOptions {
        dynamic: true,
        four_letter_words: "srvr".to_string(),
        ..EnsembleOptions::default()
    })
    .expect("start the ensemble");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.yaml");
    // One server of a 3.5+ ensemble is enough: its membership lists all.
    let one = ens.client_addr(2).to_string();
    let out = zkmigrate(&[
        "init",
        "--connect",
        &one,
        "--admin-port",
        &ens.servers()[0].admin_port.to_string(),
        "-o",
        path.to_str().unwrap(),
    ]);
    assert_exit(&out, 0, "init through the AdminServer");
    assert_plan_accepts(&path);
    let written = plan::load(&path).unwrap();
    assert_plan_matches(&written, &ens);
    // Comment paragraphs are wrapped: read them as one line.
    let text = std::fs::read_to_string(&path).unwrap().replace("\n# ", " ");
    assert!(
        text.contains("`conf` of server 2 came from the AdminServer"),
        "{text}"
    );
}

#[test]
fn init_refuses_a_connect_entry_that_is_not_host_port_with_exit_2() {
    for bad in [
        "zk1.example.net",
        "zk1.example.net:client",
        "zk1.example.net:0",
        "fd00::1:2181",
        "zk1.example.net:2181,",
    ] {
        let out = zkmigrate(&["init", "--connect", bad]);
        assert_exit(&out, 2, bad);
        assert!(out.stdout.is_empty(), "{bad}: nothing on stdout");
        assert!(
            stderr(&out).contains("is not HOST:PORT"),
            "{bad}: {}",
            stderr(&out)
        );
    }
    let out = zkmigrate(&["init"]);
    assert_exit(&out, 2, "init without --connect");
    let out = zkmigrate(&["init", "--connect", "zk1:2181", "--namespace", "Zoo"]);
    assert_exit(&out, 2, "a namespace that is not DNS-1123");
    assert!(stderr(&out).contains("DNS-1123"), "{}", stderr(&out));
}
