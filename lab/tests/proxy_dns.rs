//! The lab's kube-proxy and DNS for real: network namespaces on a bridge of
//! their own, TCP servers inside them, DNAT rules put there by the proxy
//! from a store's Services and EndpointSlices, and a DNS server queried
//! with hickory-resolver. Needs root. Every namespace is named
//! `zklab-tpd<pid>x<n>-...` and deleted on drop, also when a test fails.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::oneshot;

use zklab::k8s::proxy::{ProxyConfig, ProxyError, run_proxy};
use zklab::k8s::resources;
use zklab::k8s::store::{AcceptAll, Store};
use zklab::netns;

const CLUSTER_IP: &str = "10.96.0.10";

/// A bridge namespace and machines attached to it, deleted on drop.
struct Net {
    prefix: String,
    made: Vec<String>,
}

impl Net {
    fn new() -> Net {
        static N: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "zklab-tpd{}x{}-",
            std::process::id() % 100_000,
            N.fetch_add(1, Ordering::SeqCst)
        );
        let mut net = Net {
            prefix,
            made: Vec::new(),
        };
        let bridge = net.bridge();
        let _ = netns::delete(&bridge);
        netns::add(&bridge).expect("bridge namespace");
        net.made.push(bridge.clone());
        netns::add_bridge(&bridge, "br0").expect("bridge");
        net
    }

    fn bridge(&self) -> String {
        format!("{}net", self.prefix)
    }

    /// A machine `short` at 10.77.0.`k`, with the route to ClusterIPs.
    fn machine(&mut self, short: &str, k: u8) -> String {
        let ns = format!("{}{short}", self.prefix);
        let _ = netns::delete(&ns);
        netns::add(&ns).expect("machine namespace");
        self.made.push(ns.clone());
        netns::attach(
            &ns,
            Ipv4Addr::new(10, 77, 0, k),
            16,
            &self.bridge(),
            "br0",
            &format!("v-{short}"),
        )
        .expect("attach");
        netns::run(
            "ip",
            &["-n", &ns, "route", "add", "10.96.0.0/16", "dev", "eth0"],
        )
        .expect("route to ClusterIPs");
        ns
    }

    /// The proxy's config: this test's namespaces but the bridge's.
    fn proxy_config(&self) -> ProxyConfig {
        let (prefix, bridge) = (self.prefix.clone(), self.bridge());
        ProxyConfig::new(move || {
            Ok(netns::list()?
                .into_iter()
                .filter(|ns| ns.starts_with(&prefix) && *ns != bridge)
                .collect())
        })
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.made.iter().rev() {
            if let Err(e) = netns::delete(ns) {
                eprintln!("failed to delete namespace {ns}: {e}");
            }
        }
    }
}

/// A TCP server in a namespace that answers every connection with its
/// name; stopped on drop.
struct NameServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn serve(ns: &str, addr: SocketAddrV4, name: &'static str) -> NameServer {
    let listener = netns::in_ns(ns, move || TcpListener::bind(addr))
        .expect("enter namespace")
        .expect("bind");
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        while !flag.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = s.write_all(name.as_bytes());
                }
                // Nothing pending: look again soon (and at the stop flag).
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(_) => {}
            }
        }
    });
    NameServer {
        stop,
        thread: Some(thread),
    }
}

impl Drop for NameServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from namespace `ns` to `addr` and reads the server's name.
fn ask(ns: &str, addr: SocketAddr) -> io::Result<String> {
    netns::in_ns(ns, move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(300))?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
    .map_err(io::Error::other)?
}

/// Polls until `check` holds for what `ask` returns; panics after `within`.
fn await_answer(
    ns: &str,
    addr: SocketAddr,
    within: Duration,
    what: &str,
    check: impl Fn(&io::Result<String>) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let got = ask(ns, addr);
        if check(&got) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{what}: not within {within:?} from {ns}; last answer {got:?}"
        );
    }
}

fn service_addr() -> SocketAddr {
    SocketAddr::from((CLUSTER_IP.parse::<Ipv4Addr>().unwrap(), 2181))
}

fn service() -> Value {
    json!({"metadata": {"name": "zk-1"},
           "spec": {"clusterIP": CLUSTER_IP,
                    "ports": [{"name": "client", "port": 2181, "protocol": "TCP"}]}})
}

/// A hand-made slice of `zk-1` (as zkmigrate makes them).
fn slice(name: &str, endpoints: &[(&str, bool)], port: u16) -> Value {
    let eps: Vec<Value> = endpoints
        .iter()
        .map(|(ip, ready)| json!({"addresses": [ip], "conditions": {"ready": ready}}))
        .collect();
    json!({"metadata": {"name": name,
                        "labels": {"kubernetes.io/service-name": "zk-1",
                                   "endpointslice.kubernetes.io/managed-by": "zkmigrate"}},
           "addressType": "IPv4",
           "ports": [{"name": "client", "port": port, "protocol": "TCP"}],
           "endpoints": eps})
}

fn put_slice(store: &Store, obj: Value) {
    let r = resources::endpointslices();
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    if let Err(e) = store.update(r, "default", &name, None, obj.clone()) {
        assert_eq!(e.code, 404, "update slice: {e}");
        store.create(r, "default", obj).expect("create slice");
    }
}

/// A proxy running on the test's runtime, stopped on drop.
struct RunningProxy {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), ProxyError>>>,
}

impl RunningProxy {
    fn start(store: &Store, net: &Net) -> RunningProxy {
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(run_proxy(store.clone(), net.proxy_config(), async {
            let _ = rx.await;
        }));
        RunningProxy {
            stop: Some(tx),
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        if let Some(task) = self.task.take() {
            task.await.expect("proxy task").expect("proxy");
        }
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
    }
}

/// `iptables-save -t TABLE` in namespace `ns`.
fn saved(ns: &str, table: &str) -> String {
    netns::run("ip", &["netns", "exec", ns, "iptables-save", "-t", table]).unwrap()
}

fn iptables(ns: &str, args: &[&str]) -> Result<String, zklab::LabError> {
    let mut all = vec!["netns", "exec", ns, "iptables", "-w", "5"];
    all.extend(args);
    netns::run("ip", &all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_ips_follow_the_endpoint_slices_in_every_namespace() {
    let mut net = Net::new();
    let b = net.machine("b", 11);
    let c = net.machine("c", 12);
    let d = net.machine("d", 13);
    let _sb = serve(&b, "10.77.0.11:2181".parse().unwrap(), "b");
    let _sd = serve(&d, "10.77.0.13:2181".parse().unwrap(), "d");
    // Someone else's rules in the built-in chains must survive the proxy.
    iptables(
        &c,
        &[
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-d",
            "10.99.0.1/32",
            "-j",
            "RETURN",
        ],
    )
    .unwrap();
    iptables(&c, &["-A", "OUTPUT", "-d", "10.99.0.1/32", "-j", "ACCEPT"]).unwrap();

    let store = Store::new(Arc::new(AcceptAll));
    let proxy = RunningProxy::start(&store, &net);
    let second = Duration::from_secs(1);
    let is = |want: &'static str| move |r: &io::Result<String>| r.as_deref().ok() == Some(want);

    // A selector-less Service and a hand-made slice pointing at B.
    store
        .create(resources::services(), "default", service())
        .unwrap();
    put_slice(&store, slice("zk-1-host", &[("10.77.0.11", true)], 2181));
    let took = await_answer(&c, service_addr(), second, "ClusterIP -> B", is("b"));
    eprintln!("B reached through the ClusterIP after {took:?}");

    // Switched to D: new connections go to D, and only there.
    put_slice(&store, slice("zk-1-host", &[("10.77.0.13", true)], 2181));
    let took = await_answer(&c, service_addr(), second, "ClusterIP -> D", is("d"));
    eprintln!("D reached after the switch after {took:?}");
    for _ in 0..10 {
        assert_eq!(ask(&c, service_addr()).unwrap(), "d");
    }
    let nat = saved(&c, "nat");
    assert_eq!(
        nat.lines().filter(|l| l.starts_with(":ZKLAB-SEP-")).count(),
        1,
        "the old endpoint's chain is deleted:\n{nat}"
    );

    // Two slices of one Service (say, the controller's and a hand-made
    // one): kube-proxy merges them, traffic goes to both.
    put_slice(&store, slice("zk-1-pod", &[("10.77.0.11", true)], 2181));
    await_answer(&c, service_addr(), second, "ClusterIP -> B again", is("b"));
    let mut seen = std::collections::BTreeMap::<String, u32>::new();
    for _ in 0..60 {
        *seen.entry(ask(&c, service_addr()).unwrap()).or_default() += 1;
    }
    assert_eq!(
        seen.keys().map(String::as_str).collect::<Vec<_>>(),
        ["b", "d"],
        "both slices take traffic: {seen:?}"
    );

    // No ready endpoint: rejected (connection refused), as kube-proxy's
    // "has no endpoints" rule does.
    put_slice(&store, slice("zk-1-pod", &[("10.77.0.11", false)], 2181));
    put_slice(&store, slice("zk-1-host", &[("10.77.0.13", false)], 2181));
    await_answer(
        &c,
        service_addr(),
        second,
        "rejected",
        |r| matches!(r, Err(e) if e.kind() == io::ErrorKind::ConnectionRefused),
    );

    // A namespace made after all this gets the rules too.
    put_slice(&store, slice("zk-1-host", &[("10.77.0.11", true)], 2181));
    await_answer(&c, service_addr(), second, "back to B", is("b"));
    let e = net.machine("e", 14);
    let took = await_answer(
        &e,
        service_addr(),
        Duration::from_secs(2),
        "new namespace",
        is("b"),
    );
    eprintln!("a new namespace got the rules after {took:?}");

    for ns in [&b, &c, &d, &e] {
        let nat = saved(ns, "nat");
        for chain in ["OUTPUT", "PREROUTING"] {
            let jumps = nat
                .lines()
                .filter(|l| {
                    l.starts_with(&format!("-A {chain} ")) && l.ends_with("-j ZKLAB-SERVICES")
                })
                .count();
            assert_eq!(jumps, 1, "one jump from {chain} in {ns}:\n{nat}");
        }
    }
    iptables(
        &c,
        &[
            "-t",
            "nat",
            "-C",
            "OUTPUT",
            "-d",
            "10.99.0.1/32",
            "-j",
            "RETURN",
        ],
    )
    .expect("foreign nat rule kept");
    iptables(&c, &["-C", "OUTPUT", "-d", "10.99.0.1/32", "-j", "ACCEPT"])
        .expect("foreign filter rule kept");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_proxy_replaces_what_the_last_one_left() {
    let mut net = Net::new();
    let b = net.machine("b", 11);
    let c = net.machine("c", 12);
    let _s1 = serve(&b, "10.77.0.11:2181".parse().unwrap(), "b");
    let _s2 = serve(&b, "10.77.0.11:2182".parse().unwrap(), "b2");
    let store = Store::new(Arc::new(AcceptAll));
    store
        .create(resources::services(), "default", service())
        .unwrap();
    put_slice(&store, slice("zk-1-host", &[("10.77.0.11", true)], 2181));
    let is = |want: &'static str| move |r: &io::Result<String>| r.as_deref().ok() == Some(want);

    let first = RunningProxy::start(&store, &net);
    await_answer(
        &c,
        service_addr(),
        Duration::from_secs(2),
        "first proxy",
        is("b"),
    );
    first.stop().await;
    // The rules outlive the proxy (as kube-proxy's do).
    assert_eq!(ask(&c, service_addr()).unwrap(), "b");

    put_slice(&store, slice("zk-1-host", &[("10.77.0.11", true)], 2182));
    let second = RunningProxy::start(&store, &net);
    await_answer(
        &c,
        service_addr(),
        Duration::from_secs(2),
        "second proxy",
        is("b2"),
    );
    let nat = saved(&c, "nat");
    assert_eq!(
        nat.lines().filter(|l| l.starts_with(":ZKLAB-SEP-")).count(),
        1,
        "the first proxy's endpoint chain is gone:\n{nat}"
    );
    second.stop().await;
}

#[path = "proxy_dns/dns.rs"]
mod dns;
