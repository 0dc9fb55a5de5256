//! Property tests: lossless rendering for any config text, idempotent
//! rewrites that keep every other line, and no panic on any input.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::properties::LineKind;
use super::*;

/// A generated config: its text, and the servers ZooKeeper would read.
#[derive(Debug, Clone)]
struct Generated {
    text: String,
    servers: BTreeMap<u32, ServerSpec>,
}

fn ws() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["", "", " ", "  ", "\t", " \t"]).prop_map(str::to_owned)
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["=", "=", " = ", ":", " ", "\t=\t", " : ", "= "])
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,8}(\\.[a-z]{1,5}){0,2}",
        (0u8..=255, 0u8..=255).prop_map(|(a, b)| format!("10.0.{a}.{b}")),
        (0u16..=0xffff).prop_map(|a| format!("fd00::{a:x}")),
    ]
}

fn server_spec() -> impl Strategy<Value = ServerSpec> {
    let role = prop_oneof![
        Just(None),
        Just(Some(Role::Participant)),
        Just(Some(Role::Observer))
    ];
    let client = prop_oneof![
        Just(None),
        (1u16..=65535).prop_map(|port| Some(ClientAddr { host: None, port })),
        (host(), 1u16..=65535).prop_map(|(h, port)| Some(ClientAddr {
            host: Some(h),
            port
        })),
    ];
    (host(), 0u16..100, role, client).prop_map(|(host, k, role, client)| ServerSpec {
        host,
        quorum_port: 2888 + k,
        election_port: 3888 + k,
        role,
        client,
    })
}

/// One logical line without its ending, and the server it sets, if any.
fn line() -> impl Strategy<Value = (String, Option<(u32, ServerSpec)>)> {
    let key = prop::sample::select(vec![
        "tickTime",
        "dataDir",
        "clientPortAddress",
        "quorumListenOnAllIPs",
        "autopurge.purgeInterval",
        "4lw.commands.whitelist",
        "a\\=b",
    ]);
    prop_oneof![
        (ws(), prop::sample::select(vec!["#", "!"]), "[ -~]{0,20}")
            .prop_map(|(w, c, t)| (format!("{w}{c}{t}"), None)),
        ws().prop_map(|w| (w, None)),
        (
            ws(),
            key.clone(),
            separator(),
            "[a-zA-Z0-9/._ #!=:-]{0,12}",
            ws()
        )
            .prop_map(|(w, k, s, v, t)| (format!("{w}{k}{s}{v}{t}"), None)),
        (
            ws(),
            key,
            separator(),
            "[a-z0-9]{1,4}",
            "\r\n|\n",
            ws(),
            "[a-z0-9]{0,4}"
        )
            .prop_map(|(w, k, s, v, nl, w2, v2)| (format!("{w}{k}{s}{v}\\{nl}{w2}{v2}"), None)),
        (ws(), 1u32..=6, separator(), server_spec(), ws()).prop_map(|(w, id, s, spec, t)| {
            (format!("{w}server.{id}{s}{spec}{t}"), Some((id, spec)))
        }),
    ]
}

fn config() -> impl Strategy<Value = Generated> {
    let ending = prop::sample::select(vec!["\n", "\r\n", "\r"]);
    (prop::collection::vec(line(), 0..14), ending, any::<bool>()).prop_map(
        |(lines, ending, final_newline)| {
            let mut text = String::new();
            let mut servers = BTreeMap::new();
            let count = lines.len();
            for (i, (line, server)) in lines.into_iter().enumerate() {
                text.push_str(&line);
                if i + 1 < count || final_newline {
                    text.push_str(ending);
                }
                if let Some((id, spec)) = server {
                    servers.insert(id, spec);
                }
            }
            Generated { text, servers }
        },
    )
}

fn service(id: u32) -> Option<String> {
    Some(format!("zk-{id}.zookeeper.svc.cluster.local"))
}

/// The raw text and ending of every line that is neither a server line nor
/// `quorumListenOnAllIPs`.
fn other_lines(cfg: &ZooCfg) -> Vec<(String, LineEnding)> {
    cfg.lines
        .iter()
        .filter(|line| match &line.kind {
            LineKind::Entry(e) => {
                let key = properties::java_trim(&e.key);
                !key.starts_with(keys::SERVER_PREFIX) && key != keys::QUORUM_LISTEN_ON_ALL_IPS
            }
            _ => true,
        })
        .map(|line| (line.raw.clone(), line.ending))
        .collect()
}

proptest! {
    #[test]
    fn render_of_parse_is_identity(g in config()) {
        let cfg = ZooCfg::parse(&g.text).unwrap();
        prop_assert_eq!(cfg.render(), g.text);
        let servers: BTreeMap<u32, ServerSpec> =
            cfg.servers().unwrap().into_iter().map(|s| (s.id, s.spec)).collect();
        prop_assert_eq!(servers, g.servers);
    }

    #[test]
    fn rewrite_is_idempotent(g in config()) {
        let once = ZooCfg::parse(&g.text).unwrap().rewrite_for_services(service).unwrap();
        let twice = once.rewrite_for_services(service).unwrap();
        prop_assert_eq!(twice.render(), once.render());
        // The model after edits is what reading the rendered text gives.
        prop_assert_eq!(ZooCfg::parse(&once.render()).unwrap(), once.clone());
        prop_assert!(once.quorum_listen_on_all_ips());
        for server in once.servers().unwrap() {
            prop_assert_eq!(Some(server.spec.host), service(server.id));
            prop_assert_eq!(server.spec.quorum_port + 1000, server.spec.election_port);
        }
    }

    #[test]
    fn rewrite_keeps_every_other_line(g in config()) {
        let before = ZooCfg::parse(&g.text).unwrap();
        let after = before.rewrite_for_services(service).unwrap();
        let (old, new) = (other_lines(&before), other_lines(&after));
        prop_assert_eq!(old.len(), new.len());
        for ((old_raw, old_ending), (new_raw, new_ending)) in old.iter().zip(&new) {
            prop_assert_eq!(old_raw, new_raw);
            // Only a last line without newline may gain one.
            if *old_ending != LineEnding::None {
                prop_assert_eq!(old_ending, new_ending);
            }
        }
        let expected: BTreeMap<String, String> = before.meaning().unwrap().properties;
        let mut expected = expected;
        expected.insert(keys::QUORUM_LISTEN_ON_ALL_IPS.to_owned(), "true".to_owned());
        let mut got = after.meaning().unwrap().properties;
        if let Some(v) = got.get_mut(keys::QUORUM_LISTEN_ON_ALL_IPS) {
            *v = v.to_ascii_lowercase();
        }
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn parse_never_panics(text in any::<String>()) {
        if let Ok(cfg) = ZooCfg::parse(&text) {
            prop_assert_eq!(cfg.render(), text);
            let _ = cfg.servers();
            let _ = cfg.meaning();
        }
    }

    #[test]
    fn parse_never_panics_on_tricky_text(text in "[\\\\\r\n =:#!\tu0-9a-f;|\\[\\].]{0,40}") {
        if let Ok(cfg) = ZooCfg::parse(&text) {
            prop_assert_eq!(cfg.render(), text.clone());
            let _ = cfg.servers();
            let _ = cfg.rewrite_for_services(service);
            let mut edited = cfg.clone();
            edited.set("k", "v");
            prop_assert_eq!(edited.get("k"), Some("v"));
            prop_assert_eq!(ZooCfg::parse(&edited.render()).unwrap(), edited.clone());
            edited.remove("k");
            prop_assert_eq!(edited.get("k"), None);
        }
    }

    #[test]
    fn server_spec_round_trips(spec in server_spec()) {
        prop_assert_eq!(ServerSpec::parse(&spec.to_string()), Ok(spec));
    }
}
