//! Properties: `parse` never panics, whatever the text; any well-formed
//! plan validates, with its servers sorted and its hash blind to policy.

use proptest::prelude::*;

use super::BASE;
use crate::plan::parse;

/// A plan with the given server ids (in the order given), every other
/// field from the generator's choices.
fn plan_text(ids: &[u8], chroot: Option<&str>, per_server: bool) -> String {
    let mut text = String::from(
        "apiVersion: zkmigrate/v1\nkind: MigrationPlan\nname: gen\nensemble:\n  servers:\n",
    );
    for id in ids {
        text.push_str(&format!(
            "    - {{ id: {id}, host: host-{id}.example, address: 10.1.0.{id} }}\n"
        ));
    }
    text.push_str(
        "  access:\n    exec: { prefix: [ip, netns, exec, \"{host}\"] }\n  service:\n    \
         start: a\n    stop: b\n    restart: c\n    disable: d\n    enable: e\n\
         kubernetes:\n  namespace: ns\n  target:\n",
    );
    let kind = if per_server {
        "PerServer"
    } else {
        "StatefulSet"
    };
    text.push_str(&format!(
        "    kind: {kind}\n    name: zk\n    image: zookeeper:3.9\n    storage: {{ size: 1Gi }}\n"
    ));
    if let Some(chroot) = chroot {
        text.push_str(&format!("clients:\n  chroot: {chroot}\n"));
    }
    text
}

/// Distinct server ids, an odd number of them, in any order.
fn odd_ids() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec![1usize, 3, 5, 7])
        .prop_flat_map(|n| prop::sample::subsequence((1..=255u8).collect::<Vec<_>>(), n))
        .prop_shuffle()
}

proptest! {
    #[test]
    fn parse_never_panics_on_any_text(text in "\\PC{0,200}") {
        let _ = parse(&text, "fuzz.yaml");
    }

    #[test]
    fn parse_never_panics_on_a_damaged_plan(at in 0..BASE.len(), cut in 0usize..40, junk in "[ -~\\n]{0,12}") {
        let mut text = BASE.to_string();
        let start = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + cut).min(text.len());
        text.replace_range(start..end, &junk);
        if let Err(e) = parse(&text, "fuzz.yaml") {
            prop_assert!(e.is_invalid());
            prop_assert!(!e.field_errors().is_empty());
        }
    }

    #[test]
    fn any_well_formed_plan_validates(
        ids in odd_ids(),
        chroot in prop::option::of("/[a-z]{1,8}(/[a-z0-9]{1,8}){0,2}"),
        per_server in any::<bool>(),
    ) {
        let text = plan_text(&ids, chroot.as_deref(), per_server);
        let plan = match parse(&text, "gen.yaml") {
            Ok(plan) => plan,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text}"))),
        };
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        let got: Vec<u8> = plan.servers.iter().map(|s| s.id.get()).collect();
        prop_assert_eq!(got, sorted);
        prop_assert_eq!(plan.clients.chroot.as_ref().map(|c| c.as_str().to_string()), chroot);
        for server in &plan.servers {
            prop_assert_eq!(plan.service_name(server.id), format!("zk-{}", server.id));
        }
        let with_policy = format!("{text}policy:\n  syncTimeout: 1h\n  allowEvenVoters: true\n");
        let again = match parse(&with_policy, "gen.yaml") {
            Ok(plan) => plan,
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        };
        prop_assert_eq!(again.hash(), plan.hash());
    }
}
