//! The kubelet tests' lab: a bridge namespace with `br0`, a client machine
//! on it, the kubelet and the controllers (for claim binding) in-process on
//! a fresh store; all torn down on drop, also when a test fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use zklab::k8s::controllers::{ControllerConfig, run_controllers};
use zklab::k8s::kubelet::{KubeletConfig, run_kubelet};
use zklab::k8s::resources;
use zklab::k8s::store::{AcceptAll, Store};
use zklab::layout::{LAB_PREFIX_LEN, Layout, Machine};
use zklab::{netns, topology};

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct Lab {
    pub layout: Layout,
    pub store: Store,
    pub cfg: KubeletConfig,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    kubelet: Option<tokio::task::JoinHandle<()>>,
    stop_controllers: Option<tokio::sync::oneshot::Sender<()>>,
    controllers: Option<tokio::task::JoinHandle<()>>,
}

impl Lab {
    /// A bridge, a client machine (10.77.0.4, with a route to the Pods),
    /// the kubelet and the controllers.
    pub async fn start() -> Lab {
        let name = format!(
            "tk{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let layout = Layout::new(&name).unwrap();
        let _ = topology::down(&layout);
        let bridge = layout.bridge_ns();
        netns::add(&bridge).unwrap();
        netns::add_bridge(&bridge, "br0").unwrap();
        let client = layout.ns(Machine::Client);
        netns::add(&client).unwrap();
        netns::attach(
            &client,
            Machine::Client.addr(),
            LAB_PREFIX_LEN,
            &bridge,
            "br0",
            "v-client",
        )
        .unwrap();
        netns::run(
            "ip",
            &[
                "-n",
                &client,
                "route",
                "add",
                "10.244.0.0/16",
                "dev",
                "eth0",
            ],
        )
        .unwrap();
        let store = Store::new(Arc::new(AcceptAll));
        let mut cfg = KubeletConfig::for_lab(&layout);
        // Scaled-down back-off (the real kubelet's is 10 s doubling to 5 min).
        cfg.backoff_base = Duration::from_secs(1);
        cfg.backoff_max = Duration::from_secs(8);
        let (stop_controllers, stopped) = tokio::sync::oneshot::channel::<()>();
        let controllers = tokio::spawn(run_controllers(
            store.clone(),
            ControllerConfig {
                resync: Duration::from_secs(2),
                ..ControllerConfig::new(cfg.volumes_dir.clone())
            },
            async move {
                let _ = stopped.await;
            },
        ));
        let mut lab = Lab {
            layout,
            store,
            cfg,
            stop: None,
            kubelet: None,
            stop_controllers: Some(stop_controllers),
            controllers: Some(controllers),
        };
        lab.start_kubelet();
        lab
    }

    fn start_kubelet(&mut self) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (store, cfg) = (self.store.clone(), self.cfg.clone());
        self.kubelet = Some(tokio::spawn(async move {
            run_kubelet(store, cfg, async move {
                let _ = stopped.await;
            })
            .await
            .expect("kubelet");
        }));
        self.stop = Some(stop);
    }

    /// Drops the running kubelet as a crash would (its Pods' processes
    /// stay), then starts a new one on the same store.
    pub async fn crash_and_restart_kubelet(&mut self) {
        if let Some(k) = self.kubelet.take() {
            k.abort();
            let _ = k.await;
        }
        self.start_kubelet();
    }

    pub fn create(&self, r: &'static resources::Resource, obj: Value) -> Value {
        self.store.create(r, "default", obj).unwrap()
    }

    /// Polls Pod `name` until `pred` holds; panics with the last object.
    pub async fn wait_pod(&self, name: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let pod = self
                .store
                .get(resources::pods(), "default", name)
                .unwrap_or(Value::Null);
            if pred(&pod) {
                return pod;
            }
            assert!(
                Instant::now() < deadline,
                "pod {name} did not reach the condition in {secs}s: {pod:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log(&self, pod: &Value, container: &str, previous: bool) -> String {
        let path = self
            .cfg
            .log_locator()
            .locate(pod, Some(container), previous)
            .unwrap();
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    pub fn srvr(&self, ip: &str, port: u16) -> Option<String> {
        let addr = format!("{ip}:{port}").parse().unwrap();
        netns::four_letter_word(&self.layout.ns(Machine::Client), addr, "srvr")
    }

    /// `srvr` once the server serves (a `Mode:` line), waiting at most 30 s:
    /// a Pod is Ready by its probe before ZooKeeper has loaded its data.
    pub fn srvr_serving(&self, ip: &str, port: u16) -> Option<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let srvr = self.srvr(ip, port);
            if srvr.as_deref().is_some_and(|s| s.contains("Mode: ")) {
                return srvr;
            }
            if std::time::Instant::now() > deadline {
                return srvr;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Pod namespaces of this lab that exist now.
    pub fn pod_namespaces(&self) -> Vec<String> {
        let prefix = format!("{}p", self.layout.ns_prefix());
        netns::list()
            .unwrap()
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .collect()
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(k) = self.kubelet.take() {
            tokio::time::timeout(Duration::from_secs(30), k)
                .await
                .expect("kubelet stops")
                .expect("kubelet task");
        }
        if let Some(s) = self.stop_controllers.take() {
            let _ = s.send(());
        }
        if let Some(c) = self.controllers.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), c).await;
        }
        assert!(
            self.pod_namespaces().is_empty(),
            "the kubelet's shutdown kills its Pods"
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for task in [self.kubelet.take(), self.controllers.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        // The aborted kubelet's blocking tasks may still be removing a
        // namespace: try again.
        for attempt in 1..=5 {
            match topology::down(&self.layout) {
                Ok(()) => break,
                Err(e) if attempt == 5 => {
                    eprintln!("failed to tear down lab {}: {e}", self.layout.name)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

pub fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

pub fn cstatus(pod: &Value) -> &Value {
    &pod["status"]["containerStatuses"][0]
}

pub fn alive(pid: &str) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
