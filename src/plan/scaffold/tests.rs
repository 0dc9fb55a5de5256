//! Tests of `zkmigrate init`'s pure half: replies built from the captured
//! replies of real servers (`tests/fixtures/observe`), assembled and
//! rendered. The rendered plans are insta snapshots, and each one is
//! loaded back by the plan's own validation. Test names start with `init`
//! so that `cargo test --lib init` runs them.

use proptest::prelude::*;
use serde_json::Value;

use super::yaml::scalar;
use super::*;
use crate::observe::admin::{conf_from_json, srvr_from_json};
use crate::observe::conf::parse_conf;
use crate::observe::fixtures::read;
use crate::observe::srvr::parse_srvr;
use crate::observe::{FailureKind, ObservationFailure, Source};
use crate::plan::Access;

fn settings() -> Settings {
    Settings::new("zookeeper", "zookeeper", Some("alice".into()))
}

fn endpoint(text: &str) -> Endpoint {
    text.parse().expect("a valid endpoint")
}

fn answered(at: &str, conf: &str, srvr: &str) -> Reply {
    Reply {
        endpoint: endpoint(at),
        outcome: Ok(Answer {
            conf: parse_conf(conf).expect("conf fixture"),
            conf_via: Source::FourLetterWord,
            srvr: Ok(parse_srvr(srvr).expect("srvr fixture")),
        }),
    }
}

fn unreachable(at: &str) -> Reply {
    Reply {
        endpoint: endpoint(at),
        outcome: Err(ObservationFailure {
            kind: FailureKind::Unreachable,
            message: format!("failed to connect to {at}: connection refused"),
        }),
    }
}

/// The captured 3.8.0 ensemble (static server lines), every server asked.
fn static_3_8() -> Vec<Reply> {
    [
        ("127.0.79.1:2181", "follower-1"),
        ("127.0.79.2:2181", "follower-2"),
        ("127.0.79.3:2181", "leader-3"),
    ]
    .iter()
    .map(|(at, name)| {
        answered(
            at,
            &read(&format!("zk-3.8.0/{name}.conf.txt")),
            &read(&format!("zk-3.8.0/{name}.srvr.txt")),
        )
    })
    .collect()
}

/// Renders and loads back; returns the text.
fn rendered(replies: &[Reply], settings: Settings) -> String {
    let scaffold = assemble(replies, settings).expect("assembles");
    let (text, plan) = render_checked(&scaffold).expect("the plan validates");
    assert_eq!(text, render(&scaffold));
    assert_eq!(plan.servers.len(), scaffold.servers.len());
    text
}

#[test]
fn init_of_a_3_8_ensemble_fills_in_every_server_from_conf() {
    let replies = static_3_8();
    let scaffold = assemble(&replies, settings()).unwrap();
    assert_eq!(
        scaffold.membership,
        Membership::FromConf {
            reported_by: vec![
                ServerId::new(1).unwrap(),
                ServerId::new(2).unwrap(),
                ServerId::new(3).unwrap()
            ],
            dynamic: false
        }
    );
    assert!(scaffold.notes.is_empty(), "{:?}", scaffold.notes);
    let (text, plan) = render_checked(&scaffold).unwrap();
    let servers: Vec<(u8, &str, &str)> = plan
        .servers
        .iter()
        .map(|s| (s.id.get(), s.host.as_str(), s.address.as_str()))
        .collect();
    assert_eq!(
        servers,
        vec![
            (1, "127.0.79.1", "127.0.79.1"),
            (2, "127.0.79.2", "127.0.79.2"),
            (3, "127.0.79.3", "127.0.79.3"),
        ]
    );
    let e = &plan.ensemble;
    assert_eq!(
        (e.client_port, e.quorum_port, e.election_port),
        (2181, 2888, 3888)
    );
    assert_eq!(plan.kubernetes.namespace, "zookeeper");
    assert_eq!(plan.kubernetes.target.image, "zookeeper:3.8.0");
    assert!(plan.warnings.is_empty());
    insta::assert_snapshot!("init-3.8-static", text);
}

#[test]
fn init_of_a_3_8_dynamic_ensemble_from_one_server_lists_every_member() {
    let replies = vec![answered(
        "127.0.80.1:2181",
        &read("zk-3.8.0-dynamic/follower-1.conf.txt"),
        &read("zk-3.8.0-dynamic/follower-1.srvr.txt"),
    )];
    let text = rendered(&replies, settings());
    for id in 1..=3 {
        assert!(text.contains(&format!("address: 127.0.80.{id}")), "{text}");
    }
    assert!(text.contains("not asked: from the membership"));
    insta::assert_snapshot!("init-3.8-dynamic-one-server", text);
}

#[test]
fn init_of_a_3_4_ensemble_takes_the_servers_that_answered_and_says_to_check_them() {
    let conf = read("zk-3.4/leader-3.conf.txt");
    let replies = vec![
        answered(
            "zk1.prod.internal:2181",
            &conf.replace("serverId=3", "serverId=1"),
            &read("zk-3.4/follower-1.srvr.txt"),
        ),
        answered(
            "zk2.prod.internal:2181",
            &conf.replace("serverId=3", "serverId=2"),
            &read("zk-3.4/follower-1.srvr.txt"),
        ),
        answered(
            "zk3.prod.internal:2181",
            &conf,
            &read("zk-3.4/leader-3.srvr.txt"),
        ),
    ];
    let settings = Settings::new("orders", "orders-zk", Some("root".into()));
    let scaffold = assemble(&replies, settings.clone()).unwrap();
    assert_eq!(scaffold.membership, Membership::FromAnswers);
    assert!(scaffold.notes[0].contains("3.4's `conf` lists no members"));
    let text = rendered(&replies, settings);
    assert!(text.contains("systemctl stop zookeeper\n") && !text.contains("sudo systemctl"));
    insta::assert_snapshot!("init-3.4", text);
}

#[test]
fn init_through_the_admin_server_maps_the_same_membership() {
    let json = |name: &str| -> Value {
        serde_json::from_str(&read(&format!("zk-3.8.0-admin/{name}"))).unwrap()
    };
    let conf = conf_from_json(
        &json("leader-3.configuration.json"),
        Some(&json("leader-3.voting_view.json")),
    )
    .unwrap();
    let reply = Reply {
        endpoint: endpoint("127.66.1.3:22181"),
        outcome: Ok(Answer {
            conf,
            conf_via: Source::AdminServer,
            srvr: Ok(srvr_from_json(&json("leader-3.srvr.json")).unwrap()),
        }),
    };
    let scaffold = assemble(&[reply], settings()).unwrap();
    assert_eq!(
        (
            scaffold.client_port,
            scaffold.quorum_port,
            scaffold.election_port
        ),
        (22181, 22888, 23888)
    );
    assert_eq!(scaffold.conf_via_admin, vec![ServerId::new(3).unwrap()]);
    let leader = &scaffold.servers[2];
    assert_eq!(leader.data_dir.as_deref(), Some("/var/lib/zookeeper"));
    let (text, _) = render_checked(&scaffold).unwrap();
    assert!(text.contains("came from the AdminServer"), "{text}");
}

#[test]
fn init_with_one_address_down_writes_the_plan_and_names_the_server() {
    let mut replies = static_3_8();
    replies[1] = unreachable("127.0.79.2:2181");
    replies.push(unreachable("127.0.79.9:2181"));
    replies.push(unreachable("zk9.example.net:2181"));
    let scaffold = assemble(&replies, settings()).unwrap();
    assert_eq!(scaffold.servers.len(), 3, "the others list server 2");
    assert_eq!(scaffold.notes.len(), 3, "{:?}", scaffold.notes);
    assert!(
        scaffold.notes[2].contains("no server line names zk9.example.net"),
        "{}",
        scaffold.notes[2]
    );
    assert!(
        scaffold.notes[0].starts_with("127.0.79.2:2181 did not answer (failed to connect")
            && scaffold.notes[0].contains("it is server 2 of the membership"),
        "{}",
        scaffold.notes[0]
    );
    assert!(
        scaffold.notes[1].contains("no member of the ensemble has that address"),
        "{}",
        scaffold.notes[1]
    );
    let (text, _) = render_checked(&scaffold).unwrap();
    assert!(text.contains("# CHECK: 127.0.79.9:2181 did not answer"));
    assert!(text.contains("not asked: from the membership"));
}

#[test]
fn init_with_no_server_answering_is_an_error_naming_each_address() {
    let err = assemble(
        &[unreachable("10.0.0.11:2181"), unreachable("10.0.0.12:2181")],
        settings(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to read the ensemble: no server answered:\n  \
         failed to connect to 10.0.0.11:2181: connection refused\n  \
         failed to connect to 10.0.0.12:2181: connection refused"
    );
}

#[test]
fn init_refuses_servers_that_disagree_about_the_membership_and_says_which() {
    let mut replies = static_3_8();
    // Server 3 lists itself at the wildcard address, as some hosts do.
    replies[2] = answered(
        "127.0.79.3:2181",
        &read("zk-3.8.0/leader-3.conf.txt").replace(
            "server.3=127.0.79.3:2888:3888:participant",
            "server.3=0.0.0.0:2888:3888:participant",
        ),
        &read("zk-3.8.0/leader-3.srvr.txt"),
    );
    let err = assemble(&replies, settings()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ScaffoldError::MembershipDisagrees { .. }));
    assert!(
        text.contains(
            "server.3: 127.0.79.3:2888:3888:participant according to servers 1 and 2 (127.0.79.1:2181, 127.0.79.2:2181); \
             0.0.0.0:2888:3888:participant according to server 3 (127.0.79.3:2181)"
        ),
        "{text}"
    );
    assert!(text.contains("0.0.0.0 binds every address"), "{text}");
    insta::assert_snapshot!("init-disagreement", text);
}

#[test]
fn init_refuses_a_server_missing_from_the_others_membership() {
    let mut replies = static_3_8();
    replies[1] = answered(
        "127.0.79.2:2181",
        &read("zk-3.8.0/follower-2.conf.txt")
            .replace("server.3=127.0.79.3:2888:3888:participant\n", ""),
        &read("zk-3.8.0/follower-2.srvr.txt"),
    );
    let text = assemble(&replies, settings()).unwrap_err().to_string();
    assert!(
        text.contains("server.3: 127.0.79.3:2888:3888:participant according to servers 1 and 3")
            && text.contains("absent according to server 2 (127.0.79.2:2181)"),
        "{text}"
    );
}

#[test]
fn init_refuses_standalone_servers_observers_mixed_ports_and_large_ids() {
    let standalone = answered(
        "10.0.0.9:2181",
        "clientPort=2181\ndataDir=/var/lib/zookeeper/version-2\n",
        &read("zk-3.8.0-session/standalone-9.srvr.txt"),
    );
    assert!(matches!(
        assemble(&[standalone], settings()),
        Err(ScaffoldError::Standalone { .. })
    ));

    let conf = read("zk-3.8.0/leader-3.conf.txt");
    let srvr = read("zk-3.8.0/leader-3.srvr.txt");
    let with =
        |from: &str, to: &str| vec![answered("127.0.79.3:2181", &conf.replace(from, to), &srvr)];
    let err = assemble(
        &with(
            "server.2=127.0.79.2:2888:3888:participant",
            "server.2=127.0.79.2:2888:3888:observer",
        ),
        settings(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to read the ensemble: server 2 is an observer; a plan's servers are all voters, and zkmigrate does not migrate observers"
    );
    let err = assemble(
        &with(
            "server.2=127.0.79.2:2888:3888",
            "server.2=127.0.79.2:2889:3888",
        ),
        settings(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to read the ensemble: the servers use different quorum ports (server 1: 2888, server 2: 2889, server 3: 2888); a plan has one quorum port for the ensemble"
    );
    let err = assemble(&with("serverId=3", "serverId=300"), settings()).unwrap_err();
    assert!(matches!(err, ScaffoldError::IdOutOfRange { id: 300, .. }));
}

#[test]
fn init_of_an_ensemble_the_plan_cannot_hold_fails_with_the_plans_own_error() {
    let conf = read("zk-3.8.0/leader-3.conf.txt").replace("127.0.79.2:", "[fd00::2]:");
    let replies = vec![answered(
        "127.0.79.3:2181",
        &conf,
        &read("zk-3.8.0/leader-3.srvr.txt"),
    )];
    let scaffold = assemble(&replies, settings()).unwrap();
    let err = render_checked(&scaffold).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("ensemble.servers[1].address: \"fd00::2\" is an IPv6 address"),
        "{text}"
    );
}

#[test]
fn init_of_four_servers_allows_even_voters_and_says_so() {
    let conf = read("zk-3.8.0/leader-3.conf.txt").replace(
        "version=0",
        "server.4=127.0.79.4:2888:3888:participant\nversion=0",
    );
    let replies = vec![answered(
        "127.0.79.3:2181",
        &conf,
        &read("zk-3.8.0/leader-3.srvr.txt"),
    )];
    let scaffold = assemble(&replies, settings()).unwrap();
    assert!(scaffold.notes.iter().any(|n| n.starts_with("4 voters")));
    let (text, plan) = render_checked(&scaffold).unwrap();
    assert!(text.contains("  allowEvenVoters: true\n"));
    assert!(plan.policy.allow_even_voters);
    assert_eq!(plan.warnings.len(), 1);
}

#[test]
fn init_notes_mixed_versions_and_zookeeper_3829() {
    let mut replies = static_3_8();
    replies[0] = answered(
        "127.0.79.1:2181",
        &read("zk-3.8.0/follower-1.conf.txt"),
        &read("zk-3.8.0/follower-1.srvr.txt").replace("3.8.0-", "3.6.1-"),
    );
    let scaffold = assemble(&replies, settings()).unwrap();
    assert_eq!(scaffold.version.as_ref().unwrap().to_string(), "3.6.1");
    assert!(
        scaffold.notes[0].starts_with(
            "the servers run different versions (server 1: 3.6.1, server 2: 3.8.0, server 3: 3.8.0)"
        ),
        "{:?}",
        scaffold.notes
    );
    assert!(scaffold.notes[1].starts_with("ZooKeeper 3.6.1 has ZOOKEEPER-3829"));
    let (text, _) = render_checked(&scaffold).unwrap();
    assert!(text.contains("image: zookeeper:3.6.1\n"));
}

#[test]
fn init_without_an_ssh_user_leaves_it_to_ssh_and_without_a_version_sets_no_image_tag() {
    let mut replies = static_3_8();
    for reply in &mut replies {
        if let Ok(answer) = &mut reply.outcome {
            answer.srvr = Err("not whitelisted".into());
        }
    }
    let settings = Settings {
        ssh_user: None,
        ..settings()
    };
    let text = rendered(&replies, settings);
    assert!(text.contains("      # user: root "), "{text}");
    assert!(text.contains("image: zookeeper:SET-THE-HOSTS-VERSION\n"));
    assert!(text.contains("answered `conf` but not `srvr`"));
}

#[test]
fn init_quotes_what_yaml_would_read_as_something_else() {
    let settings = Settings {
        ssh_user: Some("yes".into()),
        ..settings()
    };
    let text = rendered(&static_3_8(), settings);
    assert!(text.contains("      user: \"yes\"\n"), "{text}");
    for (value, plain) in [
        ("10.0.0.11", true),
        ("zk1.prod.internal", true),
        ("/var/lib/zookeeper", true),
        (".zkmigrate/orders.json", true),
        ("no", false),
        ("Null", false),
        ("1e3", false),
        ("2181", false),
        ("1_000", false),
        ("0x1f", false),
        (".inf", false),
        ("a b", false),
        ("a#b", false),
        ("", false),
    ] {
        assert_eq!(
            scalar(value) == value,
            plain,
            "{value:?} -> {}",
            scalar(value)
        );
    }
}

#[test]
fn init_endpoints_parse_host_and_port() {
    let e = endpoint("zk1.example.net:2181");
    assert_eq!((e.host.as_str(), e.port), ("zk1.example.net", 2181));
    let e = endpoint("[fd00::1]:2181");
    assert_eq!(
        (e.host.as_str(), e.to_string()),
        ("fd00::1", "[fd00::1]:2181".into())
    );
    assert_eq!(e.with_port(8080), "[fd00::1]:8080");
    for bad in [
        "",
        "zk1",
        "zk1:",
        ":2181",
        "zk1:0",
        "zk1:65536",
        "zk1:http",
        "fd00::1:2181",
        "[fd00::1]2181",
        "[zk1]:2181",
        "zk 1:2181",
        "-oProxyCommand=x:22",
    ] {
        let err = bad.parse::<Endpoint>().unwrap_err();
        assert!(err.contains("is not HOST:PORT"), "{bad:?}: {err}");
    }
}

proptest! {
    /// Whatever a server or the command line hands in, YAML reads the
    /// scalar back as the same string.
    #[test]
    fn init_scalars_read_back_unchanged(value in "[ -~]{0,24}") {
        let text = format!("key: {}\n", scalar(&value));
        let map: std::collections::BTreeMap<String, String> =
            serde_saphyr::from_str(&text).expect("parses");
        prop_assert_eq!(&map["key"], &value);
    }
}

#[test]
fn init_writes_the_access_config_path_and_service_given_on_the_command_line() {
    let given = Settings {
        ssh_user: Some("root".into()),
        identity_file: Some("/srv/ops/id_ed25519".into()),
        ssh_options: vec![
            "StrictHostKeyChecking=yes".into(),
            "UserKnownHostsFile=/srv/ops/known_hosts".into(),
        ],
        config_path: Some("/opt/zookeeper/conf/zoo.cfg".into()),
        service: ServiceManager::Script {
            path: "/usr/local/sbin/zookeeper-service".into(),
        },
        ..settings()
    };
    let text = rendered(&static_3_8(), given);
    let plan = crate::plan::parse(&text, "init").expect("a valid plan");
    let Access::Ssh(ssh) = &plan.ensemble.access else {
        panic!("ssh access expected")
    };
    assert_eq!(ssh.identity_file.as_deref(), Some("/srv/ops/id_ed25519"));
    assert_eq!(
        ssh.options,
        [
            "StrictHostKeyChecking=yes",
            "UserKnownHostsFile=/srv/ops/known_hosts"
        ]
    );
    assert_eq!(plan.ensemble.config_path, "/opt/zookeeper/conf/zoo.cfg");
    let service = &plan.ensemble.service;
    assert_eq!(service.start, "/usr/local/sbin/zookeeper-service start");
    assert_eq!(service.disable, "/usr/local/sbin/zookeeper-service disable");
    assert_eq!(service.enable, "/usr/local/sbin/zookeeper-service enable");
    assert!(text.contains("as given with --config-path"), "{text}");
    assert!(text.contains("as given with --service-script"), "{text}");

    // A systemd unit of another name, and a non-root user: through sudo.
    let unit = Settings {
        ssh_user: Some("zkops".into()),
        service: ServiceManager::Systemd {
            unit: "zookeeper-server".into(),
            given: true,
        },
        ..settings()
    };
    let plan = crate::plan::parse(&rendered(&static_3_8(), unit), "init").unwrap();
    assert_eq!(
        plan.ensemble.service.disable,
        "sudo systemctl disable zookeeper-server && sudo systemctl mask zookeeper-server"
    );
}

#[test]
fn init_flags_refuse_what_the_commands_built_from_them_would_break() {
    assert!(check_unit("zookeeper-server@1.service").is_ok());
    for unit in ["", "-zk", r"zk\x2dserver", "zk server", "zk;reboot"] {
        assert!(check_unit(unit).is_err(), "{unit:?}");
    }
    assert!(check_absolute_path("/usr/local/sbin/zookeeper-service").is_ok());
    for path in ["zookeeper-service", "/opt/zk conf/zoo.cfg", ""] {
        assert!(check_absolute_path(path).is_err(), "{path:?}");
    }
    assert!(check_ssh_option("UserKnownHostsFile=/srv/known_hosts").is_ok());
    for option in [
        "NoEquals",
        "=yes",
        "Bad Key=yes",
        "Port=2 2",
        "-oProxyCommand=x",
    ] {
        assert!(check_ssh_option(option).is_err(), "{option:?}");
    }
}
