//! `zkmigrate rbac` is enough, and preflight refuses one verb less (issue
//! 7, acceptance): in a lab, zkmigrate runs from the operator machine with
//! a bearer token whose rules are exactly the printed Role, and with one
//! whose rules lack `delete` on EndpointSlices.
//!
//! The lab's API server reads its tokens (`<lab>/tokens/*.json`) once, at
//! start, so both are written before `zklab up`, from the Role printed for
//! the plan `zklab up` is about to write (rendered beforehand by the same
//! function, and compared with the written one after). A token rule is a
//! Role rule with the Role's namespace; the lab's rules have no
//! `resourceNames`, so the Namespace rule (`resourceNames: [zookeeper]`)
//! becomes `get namespaces` in `zookeeper`, which reaches that one
//! Namespace object anyway. SelfSubjectAccessReview and `/version` are
//! open to every authenticated user in the lab as in a real cluster.
//!
//! One lab for both halves, the refused one first, since it changes
//! nothing: `check -o json` and `step --until services` with the short
//! token fail in preflight naming the missing permission, and no Service,
//! slice or Pod is left; then, the operator having "granted" the verb, `step
//! --until services --resume` with the Role's token completes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Lab, text};
use serde_json::{Value, json};
use zklab::host::ZkSettings;
use zklab::layout::{Layout, Machine};
use zklab::topology::{self, Target};

const FULL_TOKEN: &str = "zkm-rbac-role-token";
const SHORT_TOKEN: &str = "zkm-rbac-role-minus-one-token";
/// The permission the short token lacks, as preflight names it.
const MISSING: &str = "delete endpointslices.discovery.k8s.io";

/// `zkmigrate rbac -f PLAN -o json`'s Role.
fn printed_role(plan: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_zkmigrate"))
        .args(["rbac", "-f", plan.to_str().unwrap(), "-o", "json"])
        .env("ZKMIGRATE_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Role")
        .expect("a Role")
        .clone()
}

/// The lab token rules of `role`: each rule, held in the Role's namespace.
fn token_rules(role: &Value) -> Vec<Value> {
    let ns = role["metadata"]["namespace"].as_str().unwrap();
    role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| {
            let keys: Vec<&String> = rule.as_object().unwrap().keys().collect();
            for key in &keys {
                assert!(
                    ["apiGroups", "resources", "verbs", "resourceNames"].contains(&key.as_str()),
                    "a rule field the lab cannot express: {key} in {rule}"
                );
            }
            if let Some(names) = rule.get("resourceNames") {
                // Only the Namespace rule is limited by name, to the Role's
                // own namespace, which is all a namespaced rule reaches.
                assert_eq!(rule["resources"], json!(["namespaces"]), "{rule}");
                assert_eq!(names, &json!([ns]), "{rule}");
            }
            json!({"verbs": rule["verbs"], "apiGroups": rule["apiGroups"],
                   "resources": rule["resources"], "namespaces": [ns]})
        })
        .collect()
}

fn write_token(layout: &Layout, file: &str, token: &str, rules: &[Value]) {
    let dir = layout.root.join("tokens");
    std::fs::create_dir_all(&dir).unwrap();
    let body = json!({"token": token, "user": file, "rules": rules});
    std::fs::write(dir.join(format!("{file}.json")), body.to_string()).unwrap();
}

/// The lab's kubeconfig (JSON) with `token` in place of the admin's.
fn kubeconfig_with(lab: &Lab, file: &str, token: &str) -> PathBuf {
    let text = std::fs::read_to_string(&lab.state.kubeconfig).unwrap();
    let mut config: Value = serde_json::from_str(&text).unwrap();
    config["users"][0]["user"]["token"] = json!(token);
    let path = lab.layout.root.join(file);
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    path
}

/// `zkmigrate ARGS` on the operator machine as the user of `kubeconfig`.
fn zkmigrate_as(lab: &Lab, kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", &lab.layout.ns(Machine::Ops)])
        .arg("env")
        .arg(format!("KUBECONFIG={}", kubeconfig.display()))
        .arg("ZKMIGRATE_LOG=warn")
        .arg(env!("CARGO_BIN_EXE_zkmigrate"))
        .args(args)
        .output()
        .unwrap()
}

/// The names of the objects of `kind` in the lab's namespace (as admin).
fn names(lab: &Lab, kind: &str, selector: &str) -> Vec<String> {
    let mut args = vec!["get", kind, "-n", "zookeeper"];
    if !selector.is_empty() {
        args.extend(["-l", selector]);
    }
    lab.kubectl_json(&args)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str().map(String::from))
        .collect()
}

#[test]
fn the_printed_role_is_enough_and_one_verb_less_is_refused_in_preflight() {
    let layout = Layout::new(&format!("rb{}", std::process::id() % 100_000)).unwrap();
    let _ = topology::down(&layout);
    std::fs::create_dir_all(&layout.root).unwrap();
    let plan_text =
        zklab::planfile::render(&layout, 3, Target::StatefulSet, &ZkSettings::default());
    let early_plan = layout.root.join("plan-before-up.yaml");
    std::fs::write(&early_plan, &plan_text).unwrap();
    let role = printed_role(&early_plan);
    let rules = token_rules(&role);
    let short: Vec<Value> = rules
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if r["resources"] == json!(["endpointslices"]) {
                r["verbs"] = json!(
                    r["verbs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|v| *v != "delete")
                        .collect::<Vec<_>>()
                );
            }
            r
        })
        .collect();
    assert_ne!(short, rules, "the Role deletes EndpointSlices");
    write_token(&layout, "zkm-role", FULL_TOKEN, &rules);
    write_token(&layout, "zkm-role-minus-one", SHORT_TOKEN, &short);

    let state = match topology::up(&layout, 3, Target::StatefulSet) {
        Ok(state) => state,
        Err(e) => {
            let _ = topology::down(&layout);
            panic!("zklab up: {e}");
        }
    };
    let lab = Lab { layout, state };
    let plan = lab.plan();
    assert_eq!(
        std::fs::read_to_string(&plan).unwrap(),
        plan_text,
        "the Role was printed for the plan the lab runs"
    );
    let full = kubeconfig_with(&lab, "kubeconfig-role", FULL_TOKEN);
    let short = kubeconfig_with(&lab, "kubeconfig-role-minus-one", SHORT_TOKEN);

    // One verb less: `check` runs every check and fails the cluster's
    // alone, naming the verb; its JSON is one document.
    let out = zkmigrate_as(&lab, &short, &["check", "-f", &plan, "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["result"] != "pass")
        .collect();
    assert_eq!(failed.len(), 1, "{report:#}");
    assert_eq!(failed[0]["id"], "preflight/cluster", "{report:#}");
    let observed = failed[0]["observed"].as_str().unwrap();
    assert!(
        observed.ends_with(&format!("not allowed in namespace zookeeper: {MISSING}")),
        "{observed}"
    );

    // `step` stops in preflight with the same words, before the services
    // step: nothing is created.
    let out = zkmigrate_as(
        &lab,
        &short,
        &["step", "-f", &plan, "--until", "services", "--yes"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("preflight/cluster") && stderr.contains(MISSING),
        "{stderr}"
    );
    assert_eq!(names(&lab, "services", ""), Vec::<String>::new());
    let ours = "endpointslice.kubernetes.io/managed-by=zkmigrate";
    assert_eq!(names(&lab, "endpointslices", ours), Vec::<String>::new());
    assert_eq!(
        names(&lab, "pods", ""),
        Vec::<String>::new(),
        "probe Pod gone"
    );
    assert!(
        lab.actions_with("done")
            .iter()
            .all(|a| a.starts_with("preflight/")),
        "{:?}",
        lab.journal()
    );

    // The Role as printed: the operator resumes, and preflight and the
    // services step complete.
    let out = zkmigrate_as(
        &lab,
        &full,
        &[
            "step", "-f", &plan, "--until", "services", "--yes", "--resume",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut services = names(&lab, "services", "zkmigrate/plan");
    services.sort();
    assert_eq!(services, ["zk-1", "zk-2", "zk-3"]);
    assert_eq!(names(&lab, "endpointslices", ours).len(), 3);
    for action in ["preflight/cluster", "services/route/3"] {
        assert!(
            lab.actions_with("done").iter().any(|a| a == action),
            "{action}: {:?}",
            lab.journal()
        );
    }
}
