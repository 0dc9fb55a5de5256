//! Step `peers` against the lab's real hosts, ZooKeeper 3.8 and control
//! plane (DESIGN 5.4): every host's zoo.cfg comes to name the Services
//! (byte-exact against `peer_config_files`), with its original kept in the
//! backup; every server restarts once, followers first and the leader
//! last, so the step costs exactly one election; the workload loses no
//! acknowledged write; and a second run changes nothing.
//!
//! Needs root, as every lab test does; the lab is torn down on drop, even
//! when an assertion fails. zkmigrate runs inside the lab's operator
//! machine, as in production: the outer test re-runs the inner one
//! (ignored on its own) under `ip netns exec <ops>` with `KUBECONFIG` set
//! (see tests/k8s_lab.rs). The inner test drives the step's functions
//! (`check`, the gate when the action disrupts, `apply`, `verify`) in the
//! engine loop's order, re-observing the leader before each server.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use zklab::layout::{Layout, Machine};
use zklab::topology::{self, Target};
use zkmigrate::engine::action::Action;
use zkmigrate::engine::build::{order_followers_first, peer_config_files};
use zkmigrate::engine::context::{Ctx, Observed, RunOptions};
use zkmigrate::engine::steps::peers;
use zkmigrate::engine::world::HostFacts;
use zkmigrate::hosts::HostAccess;
use zkmigrate::plan::{self, ServerId, ValidatedPlan};
use zkmigrate::progress::Progress;
use zkmigrate::{k8s, manifests};

/// Names the lab to the inner test.
const LAB_ENV: &str = "ZKMIGRATE_PEERS_LAB";

const CONFIG_PATH_MTIME: &str = "stat -c %y /etc/zookeeper/conf/zoo.cfg";
const PID_FILE: &str = "/var/lib/zookeeper/zookeeper_server.pid";

/// A lab for one test, torn down on drop.
struct Lab {
    layout: Layout,
    kubeconfig: PathBuf,
}

impl Lab {
    fn up(tag: &str) -> Lab {
        let name = format!("ep{tag}{}", std::process::id() % 100_000);
        let layout = Layout::new(&name).unwrap();
        let _ = topology::down(&layout);
        let state = match topology::up(&layout, 3, Target::StatefulSet) {
            Ok(state) => state,
            Err(e) => {
                let _ = topology::down(&layout);
                panic!("zklab up: {e}");
            }
        };
        Lab {
            kubeconfig: PathBuf::from(&state.kubeconfig),
            layout,
        }
    }

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
            .env("KUBECONFIG", &self.kubeconfig)
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

    fn zklab(&self, args: &[&str]) -> String {
        let out = Command::new(zklab_binary())
            .args(args)
            .args(["--name", &self.layout.name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "zklab {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(zklab_binary())
            .args(["load", "stop", "--name", &self.layout.name])
            .output();
        let _ = topology::down(&self.layout);
    }
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
        "{} is missing: run `cargo build -p zklab` first",
        path.display()
    );
    path
}

#[test]
fn peers_rewrites_every_host_and_restarts_the_leader_last_with_one_election() {
    let lab = Lab::up("a");
    lab.zklab(&["load", "start"]);
    lab.run_inside_ops("inside_ops_peers_rolls_every_server_once_and_is_idempotent");
    lab.zklab(&["load", "stop"]);
    let report: serde_json::Value = serde_json::from_str(&lab.zklab(&["load", "report"])).unwrap();
    eprintln!("workload: {report}");
    assert_eq!(report["lost"], 0, "no acknowledged write lost: {report}");
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

async fn ctx_for(plan: ValidatedPlan, plan_file: PathBuf) -> Ctx {
    let hosts = HostAccess::from_plan(&plan).unwrap();
    let cluster = k8s::connect(&plan.kubernetes).await.unwrap();
    Ctx {
        plan,
        plan_file,
        hosts,
        cluster,
        progress: Progress::log(),
        opts: RunOptions::default(),
    }
}

/// The services step's effect, through the manifests and k8s APIs.
async fn apply_services(ctx: &Ctx) {
    if !ctx.cluster.namespace_exists().await.unwrap() {
        let namespaces: Api<Namespace> = Api::all(ctx.cluster.client().clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(ctx.plan.kubernetes.namespace.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }
    for s in &ctx.plan.servers {
        let svc = manifests::per_server_service(&ctx.plan, s.id).unwrap();
        ctx.cluster.apply(&svc).await.unwrap();
        let address: Ipv4Addr = s.address.parse().unwrap();
        let slice = manifests::host_slice(&ctx.plan, s.id, address).unwrap();
        ctx.cluster.apply(&slice).await.unwrap();
    }
}

/// Per host: (zoo.cfg mtime, ZooKeeper pid).
async fn host_marks(ctx: &Ctx) -> BTreeMap<ServerId, (String, String)> {
    let mut marks = BTreeMap::new();
    for s in &ctx.plan.servers {
        let session = ctx.session(s.id).await.unwrap();
        let mtime = session
            .run_checked(CONFIG_PATH_MTIME)
            .await
            .unwrap()
            .stdout_text();
        let pid = String::from_utf8(session.read_file(PID_FILE).await.unwrap().unwrap()).unwrap();
        marks.insert(s.id, (mtime.trim().to_string(), pid.trim().to_string()));
    }
    marks
}

async fn epoch(ctx: &Ctx) -> u32 {
    ctx.observe()
        .await
        .unwrap()
        .epoch()
        .expect("a leader's zxid")
}

#[test]
#[ignore = "run by the outer test inside the lab's operator machine"]
fn inside_ops_peers_rolls_every_server_once_and_is_idempotent() {
    let name = std::env::var(LAB_ENV).expect("run by the outer test");
    let layout = Layout::new(&name).unwrap();
    let plan_file = layout.plan_file();
    let plan = plan::load(&plan_file).unwrap();
    block_on(async {
        let ctx = ctx_for(plan, plan_file).await;
        apply_services(&ctx).await;

        // The originals, and the rewrite the plan shows for each host.
        let mut expected = BTreeMap::new();
        for s in &ctx.plan.servers {
            let session = ctx.session(s.id).await.unwrap();
            let text = session
                .read_file(&ctx.plan.ensemble.config_path)
                .await
                .unwrap();
            let facts = HostFacts {
                config: text.map(|b| String::from_utf8(b).unwrap()),
                ..HostFacts::default()
            };
            let files = peer_config_files(&ctx.plan, &facts).unwrap();
            assert_eq!(files.len(), 1, "the lab is static: zoo.cfg only");
            expected.insert(s.id, files[0].clone());
        }

        // VerifyResolution: kube-proxy's rules and the DNS records follow
        // the objects just applied; wait (bounded) until every host sees them.
        let resolve = Action::VerifyResolution;
        assert_eq!(
            peers::check(&ctx, &resolve).await.unwrap(),
            Observed::Needed
        );
        peers::apply(&ctx, &resolve).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let shown = loop {
            match peers::verify(&ctx, &resolve).await {
                Ok(shown) => break shown,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("resolution not yet: {e}");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("{e}"),
            }
        };
        eprintln!("{shown}");

        let before = host_marks(&ctx).await;
        let epoch_before = epoch(&ctx).await;
        let first_leader = ctx.observe().await.unwrap().leader();

        // The loop: leader observed again before each server, taken last.
        let mut done: Vec<ServerId> = Vec::new();
        let started = Instant::now();
        while done.len() < ctx.plan.servers.len() {
            let leader = ctx
                .observe()
                .await
                .unwrap()
                .leader()
                .map(|l| ServerId::try_from(u8::try_from(l).unwrap()).unwrap());
            let id = order_followers_first(&ctx.plan, leader)
                .into_iter()
                .find(|id| !done.contains(id))
                .unwrap();
            let rewrite = Action::RewriteConfig { server: id };
            assert_eq!(
                peers::check(&ctx, &rewrite).await.unwrap(),
                Observed::Needed
            );
            peers::apply(&ctx, &rewrite).await.unwrap();
            eprintln!("{}", peers::verify(&ctx, &rewrite).await.unwrap());
            // Applying twice is the same as once: the backup keeps the original.
            peers::apply(&ctx, &rewrite).await.unwrap();

            let restart = Action::RestartServer { server: id };
            assert_eq!(
                peers::check(&ctx, &restart).await.unwrap(),
                Observed::Needed
            );
            ctx.gate(id, false).await.unwrap();
            peers::apply(&ctx, &restart).await.unwrap();
            eprintln!("{}", peers::verify(&ctx, &restart).await.unwrap());
            done.push(id);
        }
        eprintln!(
            "peers: {} servers in {:.1} s, order {done:?}",
            done.len(),
            started.elapsed().as_secs_f64()
        );
        let last = u64::from(done.last().unwrap().get());
        assert_eq!(first_leader, Some(last), "the leader went last");

        // Byte-exact rewrite; the backup holds the original.
        for s in &ctx.plan.servers {
            let session = ctx.session(s.id).await.unwrap();
            let (path, old, new) = &expected[&s.id];
            let now = session.read_file(path).await.unwrap().unwrap();
            assert_eq!(String::from_utf8(now).unwrap(), *new, "server {}", s.id);
            assert!(new.contains("quorumListenOnAllIPs=true"));
            let backup = session
                .read_file(&format!("{path}{}", peers::BACKUP_SUFFIX))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(String::from_utf8(backup).unwrap(), *old, "server {}", s.id);
        }

        // Every server restarted exactly once (one apply each, a new pid).
        let after = host_marks(&ctx).await;
        for s in &ctx.plan.servers {
            assert_ne!(before[&s.id].1, after[&s.id].1, "server {} restarted", s.id);
        }
        let observation = ctx.observe().await.unwrap();
        assert!(observation.all_voters_synced(), "{observation:?}");
        let epoch_after = epoch(&ctx).await;
        assert_eq!(
            epoch_after - epoch_before,
            1,
            "exactly one election: the leader's restart"
        );

        // A second run changes nothing: every check says done.
        let mut actions = vec![Action::VerifyResolution];
        for s in &ctx.plan.servers {
            actions.push(Action::RewriteConfig { server: s.id });
            actions.push(Action::RestartServer { server: s.id });
        }
        for action in &actions {
            match peers::check(&ctx, action).await.unwrap() {
                Observed::Done(why) => eprintln!("{}: done: {why}", action.id()),
                Observed::Needed => {
                    assert_eq!(
                        *action,
                        Action::VerifyResolution,
                        "{} needed again",
                        action.id()
                    );
                    peers::apply(&ctx, action).await.unwrap();
                    peers::verify(&ctx, action).await.unwrap();
                }
            }
        }
        assert_eq!(host_marks(&ctx).await, after, "no file written, no restart");
        assert_eq!(epoch(&ctx).await, epoch_after, "no election");
    });
}
