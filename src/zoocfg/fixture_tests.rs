//! Tests on files written or rewritten by real ZooKeeper servers (Debian's
//! 3.8.0), copied into `tests/fixtures/zoocfg/` from the shared captures.

use super::*;

const AS_WRITTEN: &str = include_str!("../../tests/fixtures/zoocfg/zoo.cfg.as-written");
const AFTER_START: &str = include_str!("../../tests/fixtures/zoocfg/zoo.cfg.after-server-start");
const DYNAMIC: &str = include_str!("../../tests/fixtures/zoocfg/zoo.cfg.dynamic.100000000");
const DEBIAN_EXAMPLE: &str = include_str!("../../tests/fixtures/zoocfg/debian-example.zoo.cfg");
const CONF_LEADER: &str = include_str!("../../tests/fixtures/zoocfg/leader-3.conf.txt");

fn service(id: u32) -> Option<String> {
    Some(format!("zk-{id}.zookeeper.svc.cluster.local"))
}

#[test]
fn every_fixture_renders_byte_for_byte() {
    for text in [
        AS_WRITTEN,
        AFTER_START,
        DYNAMIC,
        DEBIAN_EXAMPLE,
        CONF_LEADER,
    ] {
        assert_eq!(ZooCfg::parse(text).unwrap().render(), text);
    }
}

#[test]
fn server_rewritten_zoo_cfg_means_the_same_but_for_the_dynamic_file() {
    let written = ZooCfg::parse(AS_WRITTEN).unwrap();
    let started = ZooCfg::parse(AFTER_START).unwrap();
    assert_ne!(written.render(), started.render());
    assert_eq!(semantic_eq(&written, &started), Ok(false));

    let key = keys::DYNAMIC_CONFIG_FILE;
    assert_eq!(
        written.meaning().unwrap().without(key),
        started.meaning().unwrap().without(key)
    );
    assert_eq!(
        written.dynamic_config_file(),
        Some("/etc/zookeeper/conf/zoo.cfg.dynamic")
    );
    assert_eq!(
        started.dynamic_config_file().and_then(dynamic_file_version),
        Some(0x1_0000_0000)
    );
    assert_eq!(
        written.dynamic_config_file().and_then(dynamic_file_version),
        None
    );
    assert!(written.reconfig_enabled());
    assert_eq!(started.servers(), Ok(vec![]));
}

#[test]
fn dynamic_file_servers() {
    let dynamic = ZooCfg::parse(DYNAMIC).unwrap();
    let servers = dynamic.servers().unwrap();
    let ids: Vec<_> = servers.iter().map(|s| (s.id, s.line)).collect();
    assert_eq!(ids, [(1, 1), (2, 2), (3, 3)]);
    assert_eq!(
        servers[2].spec,
        ServerSpec {
            host: "127.0.80.3".to_owned(),
            quorum_port: 2888,
            election_port: 3888,
            role: Some(Role::Participant),
            client: Some(ClientAddr {
                host: Some("127.0.80.3".to_owned()),
                port: 2181
            }),
        }
    );
    assert_eq!(dynamic.version(), Ok(None));
    assert_eq!(
        dynamic_file_version("zoo.cfg.dynamic.100000000"),
        Some(0x1_0000_0000)
    );
}

#[test]
fn dynamic_mode_rewrite_touches_both_files_as_zookeeper_needs() {
    let dynamic = ZooCfg::parse(DYNAMIC).unwrap();
    let rewritten = dynamic
        .rewrite_servers(service, ClientAddrRewrite::Keep)
        .unwrap();
    // No final newline before, none after; nothing added to the dynamic file.
    assert_eq!(
        rewritten.render(),
        "server.1=zk-1.zookeeper.svc.cluster.local:2888:3888:participant;127.0.80.1:2181\n\
         server.2=zk-2.zookeeper.svc.cluster.local:2888:3888:participant;127.0.80.2:2181\n\
         server.3=zk-3.zookeeper.svc.cluster.local:2888:3888:participant;127.0.80.3:2181"
    );
    assert_eq!(
        rewritten.rewrite_servers(service, ClientAddrRewrite::Keep),
        Ok(rewritten.clone())
    );

    let started = ZooCfg::parse(AFTER_START).unwrap();
    let zoo_cfg = started.rewrite_for_services(service).unwrap();
    assert_eq!(
        zoo_cfg.render(),
        format!("{AFTER_START}quorumListenOnAllIPs=true\n")
    );
    assert_eq!(
        diff(
            &started.render(),
            &zoo_cfg.render(),
            "a/zoo.cfg",
            "b/zoo.cfg"
        ),
        "--- a/zoo.cfg\n+++ b/zoo.cfg\n@@ -8,3 +8,4 @@\n syncLimit=5\n reconfigEnabled=true\n \
         dynamicConfigFile=/etc/zookeeper/conf/zoo.cfg.dynamic.100000000\n+quorumListenOnAllIPs=true\n"
    );
}

#[test]
fn debian_example_with_a_static_ensemble() {
    let text = format!(
        "{DEBIAN_EXAMPLE}server.1=zk1:2888:3888\nserver.2=zk2:2888:3888\nserver.3=zk3:2888:3888\n"
    );
    let cfg = ZooCfg::parse(&text).unwrap();
    assert_eq!(cfg.data_dir(), Some("/tmp/zookeeper"));
    assert_eq!(cfg.client_port(), Ok(Some(2181)));
    assert_eq!(
        cfg.get("maxClientCnxns"),
        None,
        "a commented-out key is not set"
    );
    let rewritten = cfg.rewrite_for_services(service).unwrap();
    assert_eq!(
        diff(&text, &rewritten.render(), "zoo.cfg", "zoo.cfg"),
        "--- zoo.cfg\n+++ zoo.cfg\n@@ -35,6 +35,7 @@\n #metricsProvider.httpPort=7000\n \
         #metricsProvider.exportJvmInfo=true\n \n\
         -server.1=zk1:2888:3888\n-server.2=zk2:2888:3888\n-server.3=zk3:2888:3888\n\
         +server.1=zk-1.zookeeper.svc.cluster.local:2888:3888\n\
         +server.2=zk-2.zookeeper.svc.cluster.local:2888:3888\n\
         +server.3=zk-3.zookeeper.svc.cluster.local:2888:3888\n\
         +quorumListenOnAllIPs=true\n"
    );
    assert_eq!(
        rewritten.rewrite_for_services(service),
        Ok(rewritten.clone())
    );
}

#[test]
fn conf_output_reads_as_a_config() {
    // `conf` ends with `membership:` and the dynamic config, as
    // `/zookeeper/config` holds it, `version=` included.
    let conf = ZooCfg::parse(CONF_LEADER).unwrap();
    assert_eq!(conf.version(), Ok(Some(0x1_0000_0000)));
    assert_eq!(conf.get("serverId"), Some("3"));
    let hosts: Vec<_> = conf
        .servers()
        .unwrap()
        .into_iter()
        .map(|s| s.spec.host)
        .collect();
    assert_eq!(hosts, ["127.0.80.1", "127.0.80.2", "127.0.80.3"]);
    let dynamic = ZooCfg::parse(DYNAMIC).unwrap();
    assert_eq!(
        conf.meaning().unwrap().servers,
        dynamic.meaning().unwrap().servers
    );
}
