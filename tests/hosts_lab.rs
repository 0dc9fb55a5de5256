//! The hosts boundary against the lab's real hosts: sshd, the lab key and
//! known_hosts, ZooKeeper run by the lab's service script. Needs root, as
//! every lab test does; each run builds its own lab and tears it down on
//! drop, even when an assertion fails.
//!
//! zkmigrate runs from the lab's operator machine, as in `zklab run --on
//! ops -- zkmigrate ...`. The outer tests therefore run the inner ones (the
//! `inside_ops_*` tests, ignored on their own) as a child process of this
//! same test binary under `ip netns exec <ops>`: that enters the operator's
//! network namespace *and* mounts its `/etc/hosts`, so the plan's host
//! names (`host1`) resolve and are checked against known_hosts exactly as
//! written, with no plan rewritten for the test. Entering only the network
//! namespace from a thread (`zklab::netns::in_ns`) would leave name
//! resolution to the root namespace's files, and the `ssh` children would
//! not find `host1`.
//!
//! The exec transport needs no network: it runs in this process, through
//! `zklab run --name LAB --on {host} --`, with the `zklab` binary that
//! `cargo build -p zklab` (or `cargo test --workspace`) puts beside this
//! test binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use zklab::layout::{Layout, Machine};
use zklab::topology::{self, Target};
use zkmigrate::hosts::{HostAccess, HostSession};
use zkmigrate::plan::{self, Access, ExecAccess, ValidatedPlan};

/// Names the lab to the inner tests.
const LAB_ENV: &str = "ZKMIGRATE_HOSTS_LAB";

/// A lab for one test, torn down on drop.
struct Lab {
    layout: Layout,
    plan: PathBuf,
}

impl Lab {
    fn up(tag: &str) -> Lab {
        let name = format!("hl{tag}{}", std::process::id() % 100_000);
        let layout = Layout::new(&name).unwrap();
        let _ = topology::down(&layout);
        let state = topology::up(&layout, 3, Target::StatefulSet).expect("zklab up");
        Lab {
            layout,
            plan: PathBuf::from(state.plan),
        }
    }

    /// Runs inner test `name` of this binary inside the operator machine.
    fn run_inside_ops(&self, name: &str) {
        let started = Instant::now();
        let out = Command::new("ip")
            .args(["netns", "exec", &self.layout.ns(Machine::Ops)])
            .arg(std::env::current_exe().unwrap())
            .args([
                name,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(LAB_ENV, &self.layout.name)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{name} inside the operator machine failed:\n{stdout}\n{stderr}"
        );
        eprint!("{stderr}");
        eprintln!("{name}: {:.1} s", started.elapsed().as_secs_f64());
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = topology::down(&self.layout);
    }
}

/// The lab an inner test runs against.
fn inner_lab() -> (Layout, ValidatedPlan) {
    let name = std::env::var(LAB_ENV)
        .unwrap_or_else(|_| panic!("run by the outer tests of hosts_lab.rs, which set {LAB_ENV}"));
    let layout = Layout::new(&name).unwrap();
    let plan = plan::load(&layout.plan_file()).expect("the lab's plan");
    (layout, plan)
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Polls until `ports` on `host` are exactly `expected`, bounded.
async fn await_ports(host: &HostSession, ports: &[u16], expected: &[u16]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = host.ports_listening(ports).await.unwrap();
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "server {}: ports {now:?}, expected {expected:?}",
            host.server_id()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn over_ssh_the_hosts_boundary_runs_reads_writes_and_sees_ports_on_real_hosts() {
    let lab = Lab::up("s");
    lab.run_inside_ops("inside_ops_ssh_runs_reads_writes_and_fences");
    lab.run_inside_ops("inside_ops_ssh_connect_errors_are_not_command_failures");
    assert!(lab.plan.exists());
}

#[test]
#[ignore = "run by the outer test inside the lab's operator machine"]
fn inside_ops_ssh_runs_reads_writes_and_fences() {
    let (_layout, plan) = inner_lab();
    let service = plan.ensemble.service.clone();
    let config_path = plan.ensemble.config_path.clone();
    block_on(async {
        let access = HostAccess::from_plan(&plan).unwrap();
        let mut hosts = Vec::new();
        for server in &plan.servers {
            hosts.push(access.connect(server).await.expect("ssh to a lab host"));
        }
        for host in &hosts {
            let out = host.run("cat /var/lib/zookeeper/myid").await.unwrap();
            assert!(out.success(), "{out:?}");
            assert_eq!(out.stdout_text().trim(), host.server_id().to_string());
        }

        // Files: read, replace atomically keeping owner and mode, set a mode.
        let host = &hosts[0];
        let original = host
            .read_file(&config_path)
            .await
            .unwrap()
            .expect("zoo.cfg");
        let text = String::from_utf8(original.clone()).unwrap();
        assert!(text.contains("server.1=10.77.0.11:2888:3888\n"), "{text}");
        assert_eq!(
            host.read_file("/etc/zookeeper/conf/none").await.unwrap(),
            None
        );
        assert!(host.file_exists(&config_path).await.unwrap());
        assert!(!host.file_exists("/etc/zookeeper/conf/none").await.unwrap());
        host.run_checked(&format!(
            "chown 65534:65534 {config_path} && chmod 0640 {config_path}"
        ))
        .await
        .unwrap();
        let changed = format!("{text}# touched by zkmigrate's hosts test: $HOME 'quoted' \\n\n");
        host.write_file_atomic(&config_path, changed.as_bytes(), None)
            .await
            .unwrap();
        assert_eq!(
            host.read_file(&config_path).await.unwrap().unwrap(),
            changed.as_bytes()
        );
        let stat = format!("stat -c '%a %u:%g' {config_path}");
        assert_eq!(
            host.run(&stat).await.unwrap().stdout_text(),
            "640 65534:65534\n"
        );
        host.write_file_atomic(&config_path, &original, Some(0o644))
            .await
            .unwrap();
        assert_eq!(
            host.run(&stat).await.unwrap().stdout_text(),
            "644 65534:65534\n"
        );
        host.run_checked(&format!("chown 0:0 {config_path}"))
            .await
            .unwrap();
        let leftovers = host.run("ls -A /etc/zookeeper/conf").await.unwrap();
        assert_eq!(
            leftovers.stdout_text(),
            "zoo.cfg\n",
            "no temporary file is left"
        );

        // Ports: client and election everywhere, quorum on the leader only.
        let ports = [2181, 2888, 3888];
        let mut leaders = Vec::new();
        for host in &hosts {
            let open = host.ports_listening(&ports).await.unwrap();
            match open.as_slice() {
                [2181, 2888, 3888] => leaders.push(host.server_id()),
                [2181, 3888] => {}
                other => panic!("server {}: ports {other:?}", host.server_id()),
            }
        }
        assert_eq!(leaders.len(), 1, "one leader listens on 2888: {leaders:?}");

        // Fence a follower as `replace` will: stop, disable, ports closed,
        // myid moved aside; a disabled service refuses to start.
        let follower = hosts.iter().find(|h| h.server_id() != leaders[0]).unwrap();
        follower.run_checked(&service.stop).await.unwrap();
        assert_eq!(
            follower.ports_listening(&ports).await.unwrap(),
            [] as [u16; 0]
        );
        follower.run_checked(&service.disable).await.unwrap();
        let refused = follower.run(&service.start).await.unwrap();
        assert_eq!(refused.status, 6, "{refused:?}");
        let err = follower.run_checked(&service.start).await.unwrap_err();
        assert!(err.is_command_failed() && !err.is_connect(), "{err}");
        let expected = format!(
            "failed to run {:?} on server {} (host{}): exit status 6: zookeeper is disabled",
            service.start,
            follower.server_id(),
            follower.server_id()
        );
        assert!(err.to_string().starts_with(&expected), "{err}");
        follower
            .rename(
                "/var/lib/zookeeper/myid",
                "/var/lib/zookeeper/myid.zkmigrate-moved",
            )
            .await
            .unwrap();
        assert!(
            !follower
                .file_exists("/var/lib/zookeeper/myid")
                .await
                .unwrap()
        );
        follower
            .rename(
                "/var/lib/zookeeper/myid.zkmigrate-moved",
                "/var/lib/zookeeper/myid",
            )
            .await
            .unwrap();
        assert_eq!(
            follower.ports_listening(&ports).await.unwrap(),
            [] as [u16; 0]
        );

        // Undo: enable and start; it rejoins as a follower.
        follower.run_checked(&service.enable).await.unwrap();
        follower.run_checked(&service.start).await.unwrap();
        await_ports(follower, &ports, &[2181, 3888]).await;

        for host in hosts {
            host.close().await.unwrap();
        }
    });
}

#[test]
#[ignore = "run by the outer test inside the lab's operator machine"]
fn inside_ops_ssh_connect_errors_are_not_command_failures() {
    let (_layout, plan) = inner_lab();
    let server = plan.servers[0].clone();
    let with_ssh = |edit: &dyn Fn(&mut zkmigrate::plan::SshAccess)| {
        let mut plan = plan.clone();
        let Access::Ssh(ssh) = &mut plan.ensemble.access else {
            panic!("the lab's plan uses ssh")
        };
        edit(ssh);
        HostAccess::from_plan(&plan).unwrap()
    };
    block_on(async {
        // Exit statuses the process mux reports as errors come back as
        // statuses: 255 from the command itself, 127 for a missing one.
        let host = HostAccess::from_plan(&plan)
            .unwrap()
            .connect(&server)
            .await
            .unwrap();
        assert_eq!(host.run("exit 255").await.unwrap().status, 255);
        let missing = host.run("no-such-command-zkm").await.unwrap();
        assert_eq!(missing.status, 127, "{missing:?}");
        let err = host.run_checked("echo oops >&2; exit 3").await.unwrap_err();
        assert!(err.is_command_failed(), "{err}");
        assert_eq!(
            err.to_string(),
            "failed to run \"echo oops >&2; exit 3\" on server 1 (host1): exit status 3: oops"
        );
        host.close().await.unwrap();

        // Through a jump host: host1 carries the connection to host2; the
        // jump's own ssh uses the generated config (key, known_hosts).
        let jumped = with_ssh(&|ssh| ssh.jump_hosts = vec!["root@host1".into()])
            .connect(&plan.servers[1])
            .await
            .expect("ssh to host2 through host1");
        let who = jumped.run("hostname; echo $SSH_CONNECTION").await.unwrap();
        let text = who.stdout_text();
        assert!(text.starts_with("host2\n10.77.0.11 "), "{text}");
        jumped.close().await.unwrap();

        // A key the host does not know: refused at once, not retried.
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_other");
        let keygen = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(keygen.success());
        let cases: Vec<(&str, HostAccess, &str)> = vec![
            (
                "unknown key",
                with_ssh(&|ssh| ssh.identity_file = Some(key.display().to_string())),
                "Permission denied",
            ),
            (
                "unknown user",
                with_ssh(&|ssh| ssh.user = Some("zkm-no-such-user".into())),
                "Permission denied",
            ),
            (
                "unknown host key",
                with_ssh(&|ssh| {
                    ssh.options
                        .retain(|o| !o.starts_with("UserKnownHostsFile="));
                    ssh.options.push("UserKnownHostsFile=/dev/null".into());
                }),
                "Host key verification failed",
            ),
            (
                "closed port",
                with_ssh(&|ssh| ssh.port = 2),
                "Connection refused",
            ),
        ];
        for (case, access, reason) in cases {
            let started = Instant::now();
            let err = access.connect(&server).await.unwrap_err();
            assert!(
                err.is_connect() && !err.is_command_failed(),
                "{case}: {err}"
            );
            let message = err.to_string();
            assert!(
                message.starts_with("failed to connect to server 1 (host1): "),
                "{case}: {message}"
            );
            assert!(message.contains(reason), "{case}: {message}");
            eprintln!(
                "{case}: {:.1} s: {message}",
                started.elapsed().as_secs_f64()
            );
        }
    });
}

/// The `zklab` binary beside this test binary (`target/debug/zklab`).
fn zklab_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("zklab"))
        .unwrap();
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p zklab` (or `cargo test --workspace`) first",
        path.display()
    );
    path
}

#[test]
fn through_an_exec_prefix_the_same_operations_work() {
    let zklab = zklab_binary();
    let lab = Lab::up("e");
    let mut plan = plan::load(&lab.plan).unwrap();
    let prefix = |on: &str| -> Vec<String> {
        let mut p = vec![zklab.display().to_string(), "run".into()];
        p.extend(["--name", &lab.layout.name, "--on", on, "--"].map(String::from));
        p
    };
    plan.ensemble.access = Access::Exec(ExecAccess {
        prefix: prefix("{host}"),
    });
    block_on(async {
        let access = HostAccess::from_plan(&plan).unwrap();
        for server in &plan.servers {
            let host = access.connect(server).await.unwrap();
            let out = host
                .run("cat /var/lib/zookeeper/myid; hostname")
                .await
                .unwrap();
            assert_eq!(
                out.stdout_text(),
                format!("{}\nhost{}\n", server.id, server.id)
            );
            let open = host.ports_listening(&[2181, 3888]).await.unwrap();
            assert_eq!(open, [2181, 3888], "server {}", server.id);
            let path = "/etc/zookeeper/conf/zkmigrate-test.cfg";
            assert_eq!(host.read_file(path).await.unwrap(), None);
            host.write_file_atomic(path, b"a=1\n", Some(0o600))
                .await
                .unwrap();
            assert_eq!(host.read_file(path).await.unwrap().unwrap(), b"a=1\n");
            let mode = host.run(&format!("stat -c %a {path}")).await.unwrap();
            assert_eq!(mode.stdout_text(), "600\n");
            host.rename(path, &format!("{path}.old")).await.unwrap();
            assert!(host.file_exists(&format!("{path}.old")).await.unwrap());
            let err = host.run_checked("exit 4").await.unwrap_err();
            assert!(err.is_command_failed(), "{err}");
            host.close().await.unwrap();
        }

        // A prefix that cannot reach its host is a connect error.
        let mut gone = plan.servers[0].clone();
        gone.host = "host9".into();
        let err = access.connect(&gone).await.unwrap_err();
        assert!(err.is_connect(), "{err}");
        assert!(
            err.to_string()
                .starts_with("failed to connect to server 1 (host9): "),
            "{err}"
        );
    });
}
