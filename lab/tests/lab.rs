//! The lab's hosts for real: network namespaces, sshd, ZooKeeper managed by
//! the service script, faults, and a `down` that leaves nothing behind.
//! Needs root (as every lab does); each test builds its own lab under a
//! unique name, so they run in parallel.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use zklab::layout::{Layout, Machine};
use zklab::topology::{self, Target};
use zklab::{fault, host, netns};

/// A lab for one test, torn down on drop (even when the test fails).
struct TestLab {
    layout: Layout,
}

impl TestLab {
    fn up(servers: u8) -> TestLab {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}x{}",
            std::process::id() % 100_000,
            N.fetch_add(1, Ordering::SeqCst)
        );
        let layout = Layout::new(&name).unwrap();
        let _ = topology::down(&layout);
        topology::up(&layout, servers, Target::StatefulSet).expect("zklab up");
        TestLab { layout }
    }

    fn zklab(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_zklab"))
            .args(args)
            .args(["--name", &self.layout.name])
            .output()
            .unwrap()
    }

    /// Runs `zklab ARGS --name LAB` and asserts it succeeded.
    fn zklab_ok(&self, args: &[&str]) -> String {
        let out = self.zklab(args);
        assert!(
            out.status.success(),
            "zklab {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The workload's acknowledged writes so far (from its report).
    fn report(&self) -> serde_json::Value {
        serde_json::from_str(&self.zklab_ok(&["load", "report"])).expect("report JSON")
    }

    /// Waits until the workload has acknowledged `n` more writes than now:
    /// proof that the ensemble serves writes.
    fn await_more_acks(&self, n: u64) {
        let start = self.report()["acked"].as_u64().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.report()["acked"].as_u64().unwrap() < start + n {
            assert!(Instant::now() < deadline, "the workload made no progress");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn run_on(&self, on: &str, cmd: &[&str]) -> Output {
        let mut args = vec!["run", "--name", &self.layout.name, "--on", on, "--"];
        args.extend_from_slice(cmd);
        Command::new(env!("CARGO_BIN_EXE_zklab"))
            .args(&args)
            .output()
            .unwrap()
    }

    fn mode(&self, k: u8) -> Option<String> {
        topology::host_mode(&self.layout, k)
    }

    fn zxid(&self, k: u8) -> Option<u64> {
        let srvr = netns::four_letter_word(
            &self.layout.ns(Machine::Ops),
            (Machine::Host(k).addr(), 2181).into(),
            "srvr",
        )?;
        let hex = srvr.lines().find_map(|l| l.strip_prefix("Zxid: 0x"))?;
        u64::from_str_radix(hex.trim(), 16).ok()
    }

    fn leader(&self) -> u8 {
        topology::wait_quorum(&self.layout, 3, Duration::from_secs(60)).expect("quorum")
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let _ = topology::down(&self.layout);
    }
}

fn ssh_args(layout: &Layout) -> Vec<String> {
    let mut args = vec![
        "-i".to_string(),
        layout.ssh_key().display().to_string(),
        "-p".into(),
        "22".into(),
    ];
    args.extend(zklab::ssh::client_args(layout));
    args
}

#[test]
fn a_three_host_lab_comes_up_with_quorum_and_ssh_reaches_every_host() {
    let lab = TestLab::up(3);
    let leader = lab.leader();
    for k in 1..=3 {
        let expected = if k == leader { "leader" } else { "follower" };
        assert_eq!(lab.mode(k).as_deref(), Some(expected), "host{k}");
    }
    // The plan's settings: user root, the lab key, the lab's known_hosts,
    // host names resolved from the operator machine.
    let plan = std::fs::read_to_string(lab.layout.plan_file()).unwrap();
    assert!(plan.contains("host: host2"), "{plan}");
    for k in 1..=3u8 {
        let mut cmd = vec!["ssh".to_string()];
        cmd.extend(ssh_args(&lab.layout));
        cmd.push(format!("root@host{k}"));
        cmd.push("cat /var/lib/zookeeper/myid; /usr/local/sbin/zookeeper-service status; grep -c '^server\\.' /etc/zookeeper/conf/zoo.cfg".into());
        let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let out = lab.run_on("ops", &refs);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ssh host{k}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines[0],
            k.to_string(),
            "host{k} sees its own myid: {stdout}"
        );
        assert!(lines[1].starts_with("zookeeper is running"), "{stdout}");
        assert_eq!(lines[2], "3", "{stdout}");
    }
    // Every host's ZooKeeper reports the myid its own /var/lib holds.
    let out = lab.zklab(&["status"]);
    let status = String::from_utf8_lossy(&out.stdout);
    assert_eq!(status.matches("running").count(), 3, "{status}");
}

#[test]
fn stopping_the_leader_through_its_service_causes_exactly_one_election() {
    let lab = TestLab::up(3);
    let leader = lab.leader();
    lab.zklab_ok(&["load", "start"]);
    lab.await_more_acks(50);
    let before = lab.zxid(leader).unwrap() >> 32;
    host::sh_on(
        &lab.layout,
        leader,
        "/usr/local/sbin/zookeeper-service stop",
    )
    .unwrap();
    // A disabled service refuses to start: what fencing relies on.
    host::sh_on(
        &lab.layout,
        leader,
        "/usr/local/sbin/zookeeper-service disable",
    )
    .unwrap();
    let refused = host::sh_on(
        &lab.layout,
        leader,
        "/usr/local/sbin/zookeeper-service start",
    );
    assert!(refused.is_err(), "a disabled service must refuse to start");
    assert_eq!(lab.mode(leader), None, "the stopped leader must not answer");

    let deadline = Instant::now() + Duration::from_secs(60);
    let new_leader = loop {
        let leaders: Vec<u8> = (1..=3)
            .filter(|&k| k != leader && lab.mode(k).as_deref() == Some("leader"))
            .collect();
        if leaders.len() == 1 {
            break leaders[0];
        }
        assert!(Instant::now() < deadline, "no new leader");
        std::thread::sleep(Duration::from_millis(100));
    };
    let after = lab.zxid(new_leader).unwrap() >> 32;
    assert_eq!(
        after - before,
        1,
        "exactly one election (epoch {before} -> {after})"
    );

    host::sh_on(
        &lab.layout,
        leader,
        "/usr/local/sbin/zookeeper-service enable",
    )
    .unwrap();
    host::sh_on(
        &lab.layout,
        leader,
        "/usr/local/sbin/zookeeper-service start",
    )
    .unwrap();
    assert_eq!(
        lab.leader(),
        new_leader,
        "the old leader rejoins as a follower"
    );

    // The workload saw it too: one election, nothing lost.
    lab.await_more_acks(50);
    lab.zklab_ok(&["load", "stop"]);
    let report = lab.report();
    assert_eq!(report["elections"], 1, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["ephemeral_survived"], true, "{report}");
    assert!(
        report["max_gap_ms"].as_u64().unwrap() > 100,
        "the election shows as a gap: {report}"
    );
}

#[test]
fn a_partitioned_follower_loses_no_acknowledged_write_and_rejoins_after_heal() {
    let lab = TestLab::up(3);
    let leader = lab.leader();
    let follower = (1..=3).find(|&k| k != leader).unwrap();
    lab.zklab_ok(&["load", "start"]);
    lab.await_more_acks(50);
    lab.zklab_ok(&["fault", "partition", &format!("host{follower}")]);
    assert!(fault::is_partitioned(&lab.layout, Machine::Host(follower)).unwrap());
    assert_eq!(
        lab.mode(follower),
        None,
        "a partitioned host must not answer"
    );
    // The other two keep the quorum and go on acknowledging writes.
    assert_eq!(lab.mode(leader).as_deref(), Some("leader"));
    lab.await_more_acks(100);
    lab.zklab_ok(&["fault", "heal", &format!("host{follower}")]);
    assert!(!fault::is_partitioned(&lab.layout, Machine::Host(follower)).unwrap());
    assert_eq!(lab.leader(), leader);
    lab.await_more_acks(50);
    lab.zklab_ok(&["load", "stop"]);
    let report = lab.report();
    assert_eq!(report["lost"], 0, "{report}");
    assert!(report["acked"].as_u64().unwrap() >= 200, "{report}");
    assert_eq!(
        report["elections"], 0,
        "a follower's partition elects no one: {report}"
    );
}

#[test]
fn down_leaves_no_namespace_process_or_file_and_can_be_repeated() {
    let lab = TestLab::up(3);
    let layout = lab.layout.clone();
    let pids: Vec<String> = topology::lab_namespaces(&layout)
        .unwrap()
        .iter()
        .flat_map(|ns| netns::pids(ns).unwrap())
        .collect();
    assert!(
        pids.len() >= 9,
        "init, sshd and ZooKeeper per host: {pids:?}"
    );
    drop(lab);
    assert!(topology::lab_namespaces(&layout).unwrap().is_empty());
    for pid in pids {
        // Killed processes are reaped by PID 1 in its own time; a zombie is
        // dead, it only waits for that.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let state = status
            .lines()
            .find(|l| l.starts_with("State:"))
            .unwrap_or("gone");
        assert!(
            state == "gone" || state.contains('Z'),
            "pid {pid} survived down: {status}"
        );
    }
    assert!(!layout.root.exists());
    for m in topology::machines(3) {
        assert!(!layout.etc_netns(m).exists());
    }
    topology::down(&layout).expect("down is safe to repeat");
}
