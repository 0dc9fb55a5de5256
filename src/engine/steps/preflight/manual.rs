//! The preflight's checks as an operator runs them by hand (the runbook's
//! prerequisites): the same questions the engine's checks ask, as commands
//! whose exit status says whether the check holds. Read-only: no undo.

use crate::engine::action::Action;
use crate::hosts::shell_quote;
use crate::plan::{ServerId, ValidatedPlan};
use crate::runbook::{Manual, Shell};

/// A host script line that sets `$d` to the `dataDir` of the zoo.cfg in
/// `$1` (ZooKeeper's default `/var/lib/zookeeper` when unset), without a
/// trailing slash.
pub const DATA_DIR: &str = r#"d=$(sed -n 's/^[[:space:]]*dataDir[[:space:]]*=[[:space:]]*//p' "$1" | tail -n 1); d=${d:-/var/lib/zookeeper}; d=${d%/}"#;

pub fn intro(sh: &Shell) -> String {
    format!(
        "Prerequisites. Nothing here changes anything; every block exits 0 when its check \
         holds. `{}` runs the same checks and prints a table.\n",
        sh.zkmigrate("check", "")
    )
}

pub fn manual(sh: &Shell, action: &Action) -> Manual {
    let plan = sh.plan;
    let e = &plan.ensemble;
    match action {
        Action::CheckEnsemble => Manual {
            run: Some(format!("{}\nzk_quorum_ok", sh.source_helpers())),
            expect: format!(
                "one line per server with `Mode: leader` (exactly one) or `Mode: follower`, \
                 then `leader N: zk_synced_followers={} zk_pending_syncs=0`, then one line per \
                 follower with `lag 0` behind the leader's Zxid.",
                plan.servers.len().saturating_sub(1)
            ),
            ..Manual::default()
        },
        Action::CheckMembership => {
            let mut lines = Vec::new();
            for s in &plan.servers {
                lines.push(format!(
                    "{} | grep -E '^(serverId|server\\.[0-9]+)='",
                    sh.host_word(s.id, "conf")
                ));
            }
            Manual {
                about: "Asked at each host's address, as the ensemble runs today.".into(),
                run: Some(lines.join("\n")),
                expect: format!(
                    "each server prints its own `serverId=N`, and (3.5+) one `server.N=` line per \
                     server of the plan with its address: {}. 3.4 prints no membership: compare \
                     the `server.N` lines of `{}` instead (`preflight/config/N`).",
                    server_lines(plan, "…"),
                    e.config_path
                ),
                ..Manual::default()
            }
        }
        Action::CheckVersion => {
            let first = plan.servers.first().map(|s| s.id);
            Manual {
                run: first
                    .map(|id| format!("{} | grep '^Zookeeper version:'", sh.host_word(id, "srvr"))),
                expect: "a version outside 3.5.0-3.5.8 and 3.6.0-3.6.1: those cannot change a \
                         server's address by a rolling restart (ZOOKEEPER-3829); zkmigrate \
                         refuses them unless `--force`."
                    .into(),
                ..Manual::default()
            }
        }
        Action::CheckWords => {
            let mut lines = vec!["ok=0".to_string()];
            for s in &plan.servers {
                lines.push(format!(
                    "for w in srvr mntr conf cons; do r=$(printf $w | nc -w 2 {} {}); case \"$r\" in ''|*'not in the whitelist'*) echo \"server {}: $w refused\"; ok=1 ;; esac; done",
                    shell_quote(&s.address),
                    e.client_port,
                    s.id
                ));
            }
            lines.push("[ \"$ok\" = 0 ]".into());
            Manual {
                run: Some(lines.join("\n")),
                expect: "no output and exit 0: every server answers `srvr`, `mntr`, `conf` and \
                         `cons` (`4lw.commands.whitelist` allows them)."
                    .into(),
                ..Manual::default()
            }
        }
        Action::CheckMyid { server } => {
            let script = format!("{DATA_DIR}\ncat \"$d/myid\"");
            Manual {
                run: Some(format!(
                    "myid=$({}\n)\n[ \"$myid\" = {server} ]",
                    sh.on_host_script(*server, &script, &[&e.config_path])
                )),
                expect: format!("the host's `<dataDir>/myid` holds `{server}` (exit 0)."),
                ..Manual::default()
            }
        }
        Action::CheckConfig { server } => Manual {
            run: Some(sh.on_host(
                *server,
                &format!(
                    "grep -E '^[[:space:]]*(server\\.[0-9]+|dynamicConfigFile)[[:space:]]*=' {}",
                    shell_quote(&e.config_path)
                ),
            )),
            expect: format!(
                "{}. With `dynamicConfigFile=`, the server lines are in that file: `cat` it the \
                 same way.",
                server_lines(plan, "")
            ),
            ..Manual::default()
        },
        Action::CheckCluster => {
            let names: Vec<String> = super::created_names(plan)
                .into_iter()
                .map(|(kind, name)| format!("{kind} {name}"))
                .collect();
            Manual {
                run: Some(format!(
                    "{}\n{}",
                    sh.kubectl(&format!(
                        "get namespace {}",
                        shell_quote(&plan.kubernetes.namespace)
                    )),
                    sh.zkmigrate("rbac", "")
                )),
                expect: format!(
                    "the namespace exists. The identity you (and zkmigrate) use needs the Role \
                     `zkmigrate rbac` prints (`kubectl auth can-i VERB RESOURCE` per rule). \
                     None of these names is held by an object zkmigrate did not create: {}.",
                    names.join(", ")
                ),
                ..Manual::default()
            }
        }
        Action::CheckNetwork { server } => network(sh, *server),
        _ => Manual::default(),
    }
}

fn network(sh: &Shell, server: ServerId) -> Manual {
    let domain = &sh.plan.kubernetes.cluster_domain;
    let name = format!("kubernetes.default.svc.{domain}");
    let probe = format!(
        "ip=$(getent hosts {name} | awk 'NR == 1 {{ print $1 }}') && echo \"$ip\" && timeout 5 bash -c 'exec 3<>\"/dev/tcp/$0/443\"' \"$ip\""
    );
    Manual {
        about: "From the host: the host's resolver resolves a Service name and the ClusterIP \
                answers (kube-proxy or an equivalent route on the host). zkmigrate also checks \
                that a Pod IP answers, with a probe Pod of the plan's image that it deletes \
                afterwards; `zkmigrate check` runs that part."
            .into(),
        run: Some(sh.on_host(server, &probe)),
        expect: format!(
            "the ClusterIP of `{name}` printed, exit 0 (the host resolves cluster names and \
             reaches ClusterIPs)."
        ),
        ..Manual::default()
    }
}

/// The plan's `server.N=address:quorum:election` lines, each in backticks
/// and followed by `rest` (`…` where a role or client part may follow).
fn server_lines(plan: &ValidatedPlan, rest: &str) -> String {
    let e = &plan.ensemble;
    plan.servers
        .iter()
        .map(|s| {
            format!(
                "`server.{}={}:{}:{}{rest}`",
                s.id, s.address, e.quorum_port, e.election_port
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
