//! The lab's DNS server on a loopback address, asked by hickory-resolver
//! over UDP and over TCP.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RecordType;
use hickory_resolver::{Resolver, TokioResolver};
use serde_json::json;
use tokio::sync::oneshot;

use zklab::k8s::dns::{DnsConfig, run_dns};
use zklab::k8s::resources;
use zklab::k8s::store::{AcceptAll, Store};

fn resolver(addr: SocketAddr, tcp: bool) -> TokioResolver {
    let mut conn = if tcp {
        ConnectionConfig::tcp()
    } else {
        ConnectionConfig::udp()
    };
    conn.port = addr.port();
    let config =
        ResolverConfig::from_name_servers(vec![NameServerConfig::new(addr.ip(), true, vec![conn])]);
    let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
    let opts = builder.options_mut();
    // No cache: every lookup asks the server, so a change shows at once.
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.ip_strategy = LookupIpStrategy::Ipv4Only;
    opts.timeout = Duration::from_millis(500);
    opts.attempts = 1;
    builder.build().expect("resolver")
}

async fn a(
    r: &TokioResolver,
    name: &str,
) -> Result<Vec<Ipv4Addr>, hickory_resolver::net::NetError> {
    let mut ips: Vec<Ipv4Addr> = r
        .lookup_ip(name)
        .await?
        .iter()
        .filter_map(|ip| match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .collect();
    ips.sort();
    Ok(ips)
}

fn ips(list: &[&str]) -> Vec<Ipv4Addr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_answers_services_endpoints_pods_and_hosts() {
    let pid = std::process::id();
    let listen = SocketAddr::from((
        Ipv4Addr::new(
            127,
            113,
            (pid % 250) as u8 + 1,
            ((pid / 250) % 250) as u8 + 1,
        ),
        15353,
    ));
    let store = Store::new(Arc::new(AcceptAll));
    let w = |r, obj| store.create(r, "default", obj).unwrap();
    w(
        resources::services(),
        json!({"metadata": {"name": "zk-1"},
               "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "client", "port": 2181}]}}),
    );
    w(
        resources::services(),
        json!({"metadata": {"name": "zk-hs"},
               "spec": {"clusterIP": "None", "ports": [{"name": "quorum", "port": 2888}]}}),
    );
    w(
        resources::endpointslices(),
        json!({"metadata": {"name": "zk-hs-abc",
                     "labels": {"kubernetes.io/service-name": "zk-hs"}},
        "addressType": "IPv4", "ports": [{"name": "quorum", "port": 2888}],
        "endpoints": [
            {"addresses": ["10.244.0.5"], "hostname": "zk-0", "conditions": {"ready": true}},
            {"addresses": ["10.244.0.6"], "hostname": "zk-1", "conditions": {"ready": true}},
            {"addresses": ["10.244.0.9"], "hostname": "zk-9", "conditions": {"ready": false}},
        ]}),
    );
    let pod = w(
        resources::pods(),
        json!({"metadata": {"name": "zk-2"},
               "spec": {"hostname": "zk-2", "subdomain": "zk-hs", "containers": []}}),
    );
    let mut pod = pod;
    pod["status"] = json!({"podIP": "10.244.0.7",
                           "conditions": [{"type": "Ready", "status": "True"}]});
    store
        .update(resources::pods(), "default", "zk-2", Some("status"), pod)
        .unwrap();

    let cfg = DnsConfig {
        listen,
        domain: "cluster.local".into(),
        static_hosts: vec![
            ("host1".into(), Ipv4Addr::new(10, 77, 0, 11)),
            ("ops".into(), Ipv4Addr::new(10, 77, 0, 3)),
        ],
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(run_dns(store.clone(), cfg, async {
        let _ = stopped.await;
    }));

    let udp = resolver(listen, false);
    let tcp = resolver(listen, true);
    // Wait until it serves (binding happens inside the task).
    let start = Instant::now();
    while a(&udp, "zk-1.default.svc.cluster.local.").await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the dns server never answered"
        );
    }

    for r in [&udp, &tcp] {
        assert_eq!(
            a(r, "zk-1.default.svc.cluster.local.").await.unwrap(),
            ips(&["10.96.0.10"])
        );
        assert_eq!(
            a(r, "zk-hs.default.svc.cluster.local.").await.unwrap(),
            ips(&["10.244.0.5", "10.244.0.6"]),
            "headless: the ready endpoints"
        );
        assert_eq!(
            a(r, "zk-1.zk-hs.default.svc.cluster.local.").await.unwrap(),
            ips(&["10.244.0.6"])
        );
        assert_eq!(
            a(r, "zk-2.zk-hs.default.svc.cluster.local.").await.unwrap(),
            ips(&["10.244.0.7"]),
            "a Pod with hostname and subdomain"
        );
        assert_eq!(a(r, "host1").await.unwrap(), ips(&["10.77.0.11"]));
        assert_eq!(a(r, "ops.").await.unwrap(), ips(&["10.77.0.3"]));
        assert_eq!(
            a(r, "10-244-0-5.default.pod.cluster.local.").await.unwrap(),
            ips(&["10.244.0.5"])
        );
        for missing in [
            "nope.default.svc.cluster.local.",
            "zk-9.zk-hs.default.svc.cluster.local.",
            "example.com.",
        ] {
            let e = a(r, missing).await.unwrap_err();
            assert!(e.is_nx_domain(), "{missing}: NXDOMAIN, got {e}");
        }
        let srv = r
            .lookup(
                "_client._tcp.zk-1.default.svc.cluster.local.",
                RecordType::SRV,
            )
            .await
            .unwrap();
        let got: Vec<String> = srv
            .answers()
            .iter()
            .map(|rec| rec.data.to_string())
            .collect();
        assert_eq!(got, ["0 100 2181 zk-1.default.svc.cluster.local."]);
        let ttl = r
            .lookup("zk-1.default.svc.cluster.local.", RecordType::A)
            .await
            .unwrap()
            .answers()[0]
            .ttl;
        assert_eq!(ttl, 5);
    }

    // A new Service answers within a second.
    let created = Instant::now();
    w(
        resources::services(),
        json!({"metadata": {"name": "zk-2"}, "spec": {"clusterIP": "10.96.0.11"}}),
    );
    loop {
        match a(&udp, "zk-2.default.svc.cluster.local.").await {
            Ok(got) => {
                assert_eq!(got, ips(&["10.96.0.11"]));
                break;
            }
            Err(e) => assert!(
                created.elapsed() < Duration::from_secs(1),
                "the new Service did not resolve within 1 s: {e}"
            ),
        }
    }
    eprintln!("a new Service resolved after {:?}", created.elapsed());

    let _ = stop.send(());
    server.await.expect("dns task").expect("dns server");
}
