//! Unit tests of the builders: the Pods' zoo.cfg byte for byte, names,
//! labels and selectors exactly. The whole objects are snapshot-tested
//! through the CLI in `tests/manifests.rs`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::*;
use crate::plan::{ServerId, ValidatedPlan};
use crate::steps::StepName;

fn statefulset_plan() -> ValidatedPlan {
    crate::plan::parse(
        include_str!("../../plans/three-node-systemd.yaml"),
        "three-node-systemd.yaml",
    )
    .unwrap()
}

fn per_server_plan() -> ValidatedPlan {
    crate::plan::parse(
        include_str!("../../plans/five-node-kafka.yaml"),
        "five-node-kafka.yaml",
    )
    .unwrap()
}

fn id(n: i64) -> ServerId {
    ServerId::new(n).unwrap()
}

fn host(zoo_cfg: &str) -> HostConfig {
    HostConfig {
        zoo_cfg: zoo_cfg.to_string(),
        dynamic: None,
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const STATIC_POD_CFG: &str = "\
# orders ensemble
tickTime=2000
initLimit=10
syncLimit=5
dataDir=/data
dataLogDir=/datalog
clientPort=2181
autopurge.snapRetainCount=5
autopurge.purgeInterval=24
jute.maxbuffer=4194304
4lw.commands.whitelist=srvr,mntr,conf,cons
server.1=zk-1.zookeeper.svc.cluster.local:2888:3888
server.2=zk-2.zookeeper.svc.cluster.local:2888:3888
server.3=zk-3.zookeeper.svc.cluster.local:2888:3888
quorumListenOnAllIPs=true
";

#[test]
fn a_static_34_config_moves_into_the_pod() {
    let before = "\
# orders ensemble
tickTime=2000
initLimit=10
syncLimit=5
dataDir=/var/lib/zookeeper
dataLogDir=/srv/zk-txlog
clientPort=2181
clientPortAddress=10.0.0.11
autopurge.snapRetainCount=5
autopurge.purgeInterval=24
jute.maxbuffer=4194304
4lw.commands.whitelist=srvr,mntr,conf,cons
server.1=10.0.0.11:2888:3888
server.2=10.0.0.12:2888:3888
server.3=10.0.0.13:2888:3888
";
    let pod = pod_zoo_cfg(&host(before), &statefulset_plan()).unwrap();
    assert_eq!(pod.zoo_cfg, STATIC_POD_CFG);
    assert!(pod.secret_paths.is_empty());
    assert!(pod.warnings.is_empty());
}

#[test]
fn the_hosts_config_after_the_peers_step_gives_the_same_pod_config() {
    let after_peers = "\
# orders ensemble
tickTime=2000
initLimit=10
syncLimit=5
dataDir=/var/lib/zookeeper
dataLogDir=/srv/zk-txlog
clientPort=2181
clientPortAddress=10.0.0.11
autopurge.snapRetainCount=5
autopurge.purgeInterval=24
jute.maxbuffer=4194304
4lw.commands.whitelist=srvr,mntr,conf,cons
server.1=zk-1.zookeeper.svc.cluster.local:2888:3888
server.2=zk-2.zookeeper.svc.cluster.local:2888:3888
server.3=zk-3.zookeeper.svc.cluster.local:2888:3888
quorumListenOnAllIPs=true
";
    let pod = pod_zoo_cfg(&host(after_peers), &statefulset_plan()).unwrap();
    assert_eq!(pod.zoo_cfg, STATIC_POD_CFG);
}

#[test]
fn a_35_client_address_becomes_the_wildcard_and_bind_addresses_go() {
    let before = "\
dataDir=/var/lib/zookeeper
secureClientPort=2281
secureClientPortAddress=10.0.0.11
admin.serverAddress=10.0.0.11
quorumListenOnAllIPs=true
server.1=zk-1.zookeeper.svc.cluster.local:2888:3888:participant;10.0.0.11:2181
server.2=zk-2.zookeeper.svc.cluster.local:2888:3888;0.0.0.0:2181
server.3=10.0.0.13:2888:3888:observer;2181
";
    let after = "\
dataDir=/data
secureClientPort=2281
quorumListenOnAllIPs=true
server.1=zk-1.zookeeper.svc.cluster.local:2888:3888:participant;2181
server.2=zk-2.zookeeper.svc.cluster.local:2888:3888;2181
server.3=zk-3.zookeeper.svc.cluster.local:2888:3888:observer;2181
";
    let pod = pod_zoo_cfg(&host(before), &statefulset_plan()).unwrap();
    assert_eq!(pod.zoo_cfg, after);
}

#[test]
fn a_dynamic_config_is_inlined() {
    let host = HostConfig {
        zoo_cfg: "\
tickTime=500
dataDir=/var/lib/zookeeper
reconfigEnabled=true
dynamicConfigFile=/etc/zookeeper/conf/zoo.cfg.dynamic.100000000
standaloneEnabled=false
"
        .into(),
        dynamic: Some(
            "server.1=10.0.0.11:2888:3888:participant;10.0.0.11:2181\n\
             server.2=10.0.0.12:2888:3888:participant;10.0.0.12:2181\n\
             server.3=10.0.0.13:2888:3888:participant;10.0.0.13:2181\n"
                .into(),
        ),
    };
    let pod = pod_zoo_cfg(&host, &statefulset_plan()).unwrap();
    assert_eq!(
        pod.zoo_cfg,
        "\
tickTime=500
dataDir=/data
reconfigEnabled=true
standaloneEnabled=false
server.1=zk-1.zookeeper.svc.cluster.local:2888:3888:participant;2181
server.2=zk-2.zookeeper.svc.cluster.local:2888:3888:participant;2181
server.3=zk-3.zookeeper.svc.cluster.local:2888:3888:participant;2181
quorumListenOnAllIPs=true
"
    );
    assert_eq!(pod.warnings.len(), 1);
    assert!(pod.warnings[0].starts_with("reconfigEnabled=true"));

    let without_text = HostConfig {
        dynamic: None,
        ..host.clone()
    };
    assert_eq!(
        pod_zoo_cfg(&without_text, &statefulset_plan())
            .unwrap_err()
            .to_string(),
        "failed to derive the Pods' zoo.cfg: the hosts' zoo.cfg sets \
         dynamicConfigFile=/etc/zookeeper/conf/zoo.cfg.dynamic.100000000, and that file's text was not given"
    );
    let both = HostConfig {
        zoo_cfg: format!("{}server.1=h:1:2\n", host.zoo_cfg),
        ..host
    };
    assert_eq!(
        pod_zoo_cfg(&both, &statefulset_plan())
            .unwrap_err()
            .to_string(),
        "failed to derive the Pods' zoo.cfg from the hosts' config: failed to rewrite server.1 \
         on line 6: with dynamicConfigFile set, server lines must be in the dynamic file"
    );
}

#[test]
fn tls_and_jaas_files_are_named_as_needing_secrets() {
    let before = "\
dataDir=/var/lib/zookeeper
dataLogDir=/var/lib/zookeeper/log
sslQuorum=true
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
ssl.quorum.keyStore.location=/etc/zookeeper/tls/quorum.jks
ssl.quorum.keyStore.password=secret
ssl.keyStore.location=/etc/zookeeper/tls/old.jks
ssl.keyStore.location=/etc/zookeeper/tls/server.jks
ssl.trustStore.location=/etc/zookeeper/tls/truststore.jks
java.security.auth.login.config=/etc/zookeeper/jaas.conf
server.1=10.0.0.11:2888:3888
server.2=10.0.0.12:2888:3888
server.3=10.0.0.13:2888:3888
";
    let pod = pod_zoo_cfg(&host(before), &statefulset_plan()).unwrap();
    let named: Vec<(&str, &str)> = pod
        .secret_paths
        .iter()
        .map(|s| (s.key.as_str(), s.path.as_str()))
        .collect();
    assert_eq!(
        named,
        [
            (
                "java.security.auth.login.config",
                "/etc/zookeeper/jaas.conf"
            ),
            ("ssl.keyStore.location", "/etc/zookeeper/tls/server.jks"),
            (
                "ssl.quorum.keyStore.location",
                "/etc/zookeeper/tls/quorum.jks"
            ),
            (
                "ssl.trustStore.location",
                "/etc/zookeeper/tls/truststore.jks"
            ),
        ]
    );
    // The paths stay as they are: the Secret is mounted at the same path.
    assert!(
        pod.zoo_cfg
            .contains("ssl.keyStore.location=/etc/zookeeper/tls/server.jks\n")
    );
    assert!(pod.zoo_cfg.contains("dataLogDir=/datalog\n"));
}

#[test]
fn server_lines_must_name_the_plans_servers() {
    let err = pod_zoo_cfg(
        &host("server.1=a:1:2\nserver.2=b:1:2\nserver.4=c:1:2\n"),
        &statefulset_plan(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to derive the Pods' zoo.cfg: its server lines name ids [1, 2, 4], the plan names [1, 2, 3]"
    );
    assert!(pod_zoo_cfg(&host("tickTime=2000\n"), &statefulset_plan()).is_err());
}

#[test]
fn the_synthesized_config_is_the_plans() {
    let plan = statefulset_plan();
    let pod = pod_zoo_cfg(&synthesized_host_config(&plan), &plan).unwrap();
    assert!(
        pod.zoo_cfg
            .starts_with("# Synthesized by zkmigrate from the plan orders")
    );
    assert!(pod.zoo_cfg.ends_with(
        "dataDir=/data\nclientPort=2181\n4lw.commands.whitelist=srvr,mntr,conf,cons,ruok\n\
         server.1=zk-1.zookeeper.svc.cluster.local:2888:3888\n\
         server.2=zk-2.zookeeper.svc.cluster.local:2888:3888\n\
         server.3=zk-3.zookeeper.svc.cluster.local:2888:3888\n\
         quorumListenOnAllIPs=true\n"
    ));
}

#[test]
fn per_server_objects_carry_the_contract_labels() {
    let plan = per_server_plan();
    let service = per_server_service(&plan, id(4)).unwrap();
    let expected = map(&[
        ("app.kubernetes.io/instance", "kafka-events"),
        ("app.kubernetes.io/managed-by", "zkmigrate"),
        ("app.kubernetes.io/name", "zookeeper"),
        ("zkmigrate/plan", "kafka-events"),
        ("zkmigrate/server-id", "4"),
    ]);
    assert_eq!(service.metadata.name.as_deref(), Some("zk-events-4"));
    assert_eq!(service.metadata.labels.as_ref(), Some(&expected));
    let spec = service.spec.unwrap();
    assert_eq!(spec.selector, None);
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(spec.publish_not_ready_addresses, Some(true));

    let slice = host_slice(&plan, id(4), Ipv4Addr::new(172, 20, 9, 21)).unwrap();
    let mut slice_labels = expected.clone();
    slice_labels.extend(map(&[
        ("kubernetes.io/service-name", "zk-events-4"),
        ("endpointslice.kubernetes.io/managed-by", "zkmigrate"),
    ]));
    assert_eq!(slice.metadata.name.as_deref(), Some("zk-events-4-host"));
    assert_eq!(slice.metadata.labels, Some(slice_labels));
    assert_eq!(slice.endpoints[0].addresses, ["172.20.9.21"]);

    assert!(matches!(
        per_server_service(&plan, id(9)),
        Err(ManifestsError::UnknownServer { id: 9 })
    ));
}

#[test]
fn pod_names_and_the_switch_selector() {
    let plan = statefulset_plan();
    let ordinals = Ordinals::new(&plan, &[3, 1, 2]).unwrap();
    assert_eq!(pod_name_for(&plan, id(3), &ordinals).unwrap(), "zk-0");
    assert_eq!(pod_name_for(&plan, id(2), &ordinals).unwrap(), "zk-2");
    assert_eq!(
        service_selector_for_pod(&plan, id(1), &ordinals).unwrap(),
        map(&[("statefulset.kubernetes.io/pod-name", "zk-1")])
    );
    let on_pod = per_server_service_on_pod(&plan, id(1), &ordinals).unwrap();
    assert_eq!(
        on_pod.spec.unwrap().selector,
        Some(map(&[("statefulset.kubernetes.io/pod-name", "zk-1")]))
    );
    let config = ordinals_config_map(&plan, &ordinals);
    assert_eq!(config.metadata.name.as_deref(), Some("zk-ordinals"));
    assert_eq!(
        config.data,
        Some(map(&[("0", "3"), ("1", "1"), ("2", "2")]))
    );

    let per_server = per_server_plan();
    let by_id = Ordinals::by_id(&per_server);
    assert_eq!(
        pod_name_for(&per_server, id(5), &by_id).unwrap(),
        "zk-events-5-0"
    );
}

#[test]
fn ordinals_must_be_a_permutation_of_the_plans_ids() {
    let plan = statefulset_plan();
    for (raw, reason) in [
        (vec![1, 2], "2 servers mapped, the plan has 3"),
        (vec![1, 2, 2], "server 2 appears twice"),
        (vec![1, 2, 4], "the plan has no server 4"),
    ] {
        let err = Ordinals::new(&plan, &raw).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("failed to use the ordinals {raw:?}: {reason}")
        );
    }
}

#[test]
fn workloads_select_their_own_pods() {
    let plan = per_server_plan();
    let sts = per_server_statefulset(&plan, id(2)).unwrap();
    assert_eq!(sts.metadata.name.as_deref(), Some("zk-events-2"));
    let spec = sts.spec.unwrap();
    assert_eq!(spec.replicas, Some(1));
    let selector = spec.selector.match_labels.unwrap();
    assert_eq!(
        selector,
        map(&[
            ("app.kubernetes.io/instance", "kafka-events"),
            ("app.kubernetes.io/name", "zookeeper"),
            ("zkmigrate/server-id", "2"),
        ])
    );
    let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
    assert!(selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));
    let container = &spec.template.spec.unwrap().containers[0];
    let env: Vec<(&str, Option<&str>)> = container
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.as_str(), e.value.as_deref()))
        .collect();
    assert_eq!(
        env,
        [("ZOO_CONF_DIR", Some("/conf")), ("ZOO_MY_ID", Some("2"))]
    );
    assert_eq!(container.command, None);

    let plan = statefulset_plan();
    assert!(matches!(
        statefulset(&plan, 4),
        Err(ManifestsError::InvalidReplicas {
            replicas: 4,
            servers: 3
        })
    ));
    let pdb = pdb(&plan);
    assert_eq!(pdb.metadata.name.as_deref(), Some("zk-pdb"));
    assert_eq!(
        pdb.spec.unwrap().selector.unwrap().match_labels,
        Some(labels::selector(&plan))
    );
}

#[test]
fn a_name_address_needs_resolving_for_a_slice() {
    let text = include_str!("../../plans/three-node-systemd.yaml")
        .replace("address: 10.0.0.12", "address: zk2.prod.internal");
    let plan = crate::plan::parse(&text, "p.yaml").unwrap();
    let err = manifests_for(
        &plan,
        Some(StepName::Services),
        None,
        &ManifestInputs::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to build the EndpointSlice of server 2: its address zk2.prod.internal is not an \
         IPv4 address; resolve it to one first (EndpointSlices of zkmigrate are IPv4)"
    );
    let inputs = ManifestInputs {
        host_addresses: BTreeMap::from([(id(2), Ipv4Addr::new(10, 0, 0, 42))]),
        ..ManifestInputs::default()
    };
    let built = manifests_for(&plan, Some(StepName::Services), None, &inputs).unwrap();
    let Object::EndpointSlice(slice) = &built.objects[3] else {
        panic!("not a slice");
    };
    assert_eq!(slice.endpoints[0].addresses, ["10.0.0.42"]);
    // The replace step alone needs no host address.
    assert!(
        manifests_for(
            &plan,
            Some(StepName::Replace),
            None,
            &ManifestInputs::default()
        )
        .is_ok()
    );
}

#[test]
fn notes_render_as_single_comment_lines() {
    let manifests = Manifests {
        notes: vec!["two\nlines".into()],
        objects: vec![],
    };
    assert_eq!(
        render_yaml("title", &manifests).unwrap(),
        "# title\n# note: two lines\n"
    );
}
