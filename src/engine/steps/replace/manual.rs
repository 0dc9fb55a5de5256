//! Step `replace` by hand, in the engine's order: the ordinals pinned with
//! the leader of that moment last (StatefulSet target), the Pods' config
//! and the disruption budget, then per server `fence`, `switch`, `pod`,
//! `synced`. The objects are built by the same [`manifests`] functions the
//! engine applies; what only the run can know (the ordinal pinned for a
//! server, hence its Pod's name and the StatefulSet's replicas) is read
//! from the cluster when the block runs and filled in with `sed`.

use crate::engine::action::Action;
use crate::engine::build::{MigrationPlan, order_followers_first};
use crate::engine::steps::preflight::DATA_DIR;
use crate::hosts::shell_quote;
use crate::manifests::{self, Ordinals, labels};
use crate::plan::{ServerId, TargetKind};
use crate::runbook::shell::object_yaml;
use crate::runbook::{Manual, Shell};

use super::FENCED_SUFFIX;

/// Stands for the Pod's name in a rendered object, filled in at run time.
const POD: &str = "@POD@";

pub fn intro(sh: &Shell, computed: &MigrationPlan) -> String {
    let plan = sh.plan;
    let order = match plan.kubernetes.target.kind {
        TargetKind::StatefulSet => format!(
            "`replace/ordinals` pins the order once, followers in id order and the server that \
             leads at that moment last, in ConfigMap `{}`; a StatefulSet grows in ordinal \
             order, so take the servers **in ordinal order** (`. {}; for id in {}; do echo \
             \"$(zk_ordinal $id) server $id\"; done | sort -n`), whatever this list's order.",
            labels::ordinals_config_map_name(plan),
            sh.helpers_file(),
            plan.servers
                .iter()
                .map(|s| s.id.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        TargetKind::PerServer => format!(
            "Take the followers first and the server that leads now last: before each `fence`, \
             `. {}; zk_leader` names the leader. {}",
            sh.helpers_file(),
            match computed.leader {
                Some(l) => format!("When this runbook was written server {l} led."),
                None => "This list is by id (the runbook was written without looking).".into(),
            }
        ),
    };
    format!(
        "One server at a time, each host is fenced for good (stopped, disabled, ports closed, \
         myid moved aside: one identity, one process) and replaced by a Pod with the same myid \
         and server list, behind the same Service; the next server only once the Pod is synced. \
         The Service never points at a live host and a live Pod at once. {order}\n"
    )
}

pub fn manual(sh: &Shell, action: &Action) -> Manual {
    match action {
        Action::PinOrdinals => ordinals(sh),
        Action::ApplyPodConfig => pod_config(sh),
        Action::ApplyDisruptionBudget => pdb(sh),
        Action::FenceHost { server } => fence(sh, *server),
        Action::SwitchServiceToPod { server } => switch(sh, *server),
        Action::StartPod { server } => start_pod(sh, *server),
        Action::AwaitPodSynced { server } => synced(sh, *server),
        _ => Manual::default(),
    }
}

fn ordinals(sh: &Shell) -> Manual {
    let plan = sh.plan;
    let name = labels::ordinals_config_map_name(plan);
    let mut run = vec![
        sh.source_helpers(),
        format!(
            "if {} >/dev/null 2>&1; then echo 'already pinned: never changed'; else",
            sh.kubectl(&format!("get configmap {}", shell_quote(&name)))
        ),
        "case \"$(zk_leader)\" in".into(),
    ];
    for leader in &plan.servers {
        let order = order_followers_first(plan, Some(leader.id));
        let raw: Vec<u8> = order.iter().map(|id| id.get()).collect();
        let Ok(ordinals) = Ordinals::new(plan, &raw) else {
            continue;
        };
        let cm = manifests::ordinals_config_map(plan, &ordinals);
        run.push(format!(
            "  {}) # ordinals 0..{}: servers {}",
            leader.id,
            order.len() - 1,
            order
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        run.push(format!("{}\n  ;;", sh.apply_yaml(&object_yaml(cm))));
    }
    run.push("  *) echo 'no single leader: wait for one, then run this again'; false ;;".into());
    run.push("esac".into());
    run.push("fi".into());
    Manual {
        about: "Pinned once, never changed: every Pod reads its myid from this map, and a Pod \
                whose ordinal changed meaning would start as another server."
            .into(),
        run: Some(run.join("\n")),
        expect: format!("`configmap/{name} serverside-applied`, or `already pinned`."),
        verify: Some(sh.kubectl(&format!(
            "get configmap {} -o jsonpath='{{.data}}{{\"\\n\"}}'",
            shell_quote(&name)
        ))),
        undo: "only once no Pod of the target runs (every server back on its host): delete it."
            .into(),
        undo_run: Some(sh.kubectl(&format!(
            "delete configmap {} --ignore-not-found",
            shell_quote(&name)
        ))),
    }
}

/// What `sed` does to a host's zoo.cfg to make the Pods' (the rules of
/// [`manifests::pod_zoo_cfg`] for a static server list).
fn pod_cfg_sed() -> String {
    format!(
        "sed -E -e 's|^dataDir=.*|dataDir={}|' -e 's|^dataLogDir=.*|dataLogDir={}|' \
         -e '/^(clientPortAddress|secureClientPortAddress|admin\\.serverAddress)=/d' \
         -e 's/^(server\\.[0-9]+=[^;]*;)[^:;]*:([0-9]+)$/\\1\\2/'",
        manifests::POD_DATA_DIR,
        manifests::POD_DATA_LOG_DIR
    )
}

fn pod_config(sh: &Shell) -> Manual {
    let plan = sh.plan;
    let first = plan.servers.first().map(|s| s.id);
    let name = labels::config_map_name(plan);
    let file = format!("./zkmigrate-{}-pod-zoo.cfg", plan.name);
    let label_args: Vec<String> = labels::common(plan)
        .iter()
        .map(|(k, v)| shell_quote(&format!("{k}={v}")))
        .collect();
    let mut run = Vec::new();
    if let Some(first) = first {
        run.push(format!(
            "{} | {} > {}",
            sh.on_host(
                first,
                &format!("cat {}", shell_quote(&plan.ensemble.config_path))
            ),
            pod_cfg_sed(),
            shell_quote(&file)
        ));
    }
    run.push(format!(
        "{} |\n  {} |\n  {}",
        sh.kubectl(&format!(
            "create configmap {} --from-file={}={} --dry-run=client -o yaml",
            shell_quote(&name),
            manifests::ZOO_CFG_KEY,
            shell_quote(&file)
        )),
        sh.kubectl(&format!(
            "label --local -f - {} -o yaml",
            label_args.join(" ")
        )),
        sh.kubectl("apply --server-side --field-manager=zkmigrate -f -")
    ));
    run.push(sh.apply_yaml(&object_yaml(manifests::governing_service(plan))));
    Manual {
        about: format!(
            "The Pods run the hosts' own zoo.cfg (after `peers`, its server lines name the \
             Services), with what is host-specific rewritten: `dataDir={}`, `dataLogDir={}` if \
             set, host bind addresses dropped, a `;address:clientPort` suffix made \
             `;clientPort`. Read `{file}` before applying it: keys naming files on the host \
             (keystores, a JAAS file) need a Secret mounted at the same path, and with a 3.5+ \
             `dynamicConfigFile` the server lines must be inlined (zkmigrate does both checks). \
             zkmigrate derives this file with the same rules in code; `zkmigrate step` compares \
             its own rendering byte for byte and applies it again where the bytes differ.",
            manifests::POD_DATA_DIR,
            manifests::POD_DATA_LOG_DIR
        ),
        run: Some(run.join("\n")),
        expect: format!(
            "`configmap/{name} serverside-applied` and `service/{} serverside-applied`.",
            labels::governing_service_name(plan)
        ),
        verify: Some(format!(
            "{} | grep -x 'dataDir={}'",
            sh.kubectl(&format!(
                "get configmap {} -o jsonpath='{{.data.zoo\\.cfg}}'",
                shell_quote(&name)
            )),
            manifests::POD_DATA_DIR
        )),
        undo: "only once no Pod of the target runs: delete both.".into(),
        undo_run: Some(format!(
            "{}\n{}",
            sh.kubectl(&format!(
                "delete configmap {} --ignore-not-found",
                shell_quote(&name)
            )),
            sh.kubectl(&format!(
                "delete service {} --ignore-not-found",
                shell_quote(&labels::governing_service_name(plan))
            ))
        )),
    }
}

fn pdb(sh: &Shell) -> Manual {
    let name = labels::pdb_name(sh.plan);
    Manual {
        run: Some(sh.apply_yaml(&object_yaml(manifests::pdb(sh.plan)))),
        expect: format!("`poddisruptionbudget.policy/{name} serverside-applied`."),
        verify: Some(format!(
            "{} | grep -x 1",
            sh.kubectl(&format!(
                "get pdb {} -o jsonpath='{{.spec.maxUnavailable}}{{\"\\n\"}}'",
                shell_quote(&name)
            ))
        )),
        undo: "delete it.".into(),
        undo_run: Some(sh.kubectl(&format!(
            "delete pdb {} --ignore-not-found",
            shell_quote(&name)
        ))),
        ..Manual::default()
    }
}

/// A host script: exit 0 when none of the plan's ports listens (the
/// kernel's socket table, as zkmigrate reads it: no `ss` needed).
fn none_listening(sh: &Shell) -> String {
    let e = &sh.plan.ensemble;
    let hex: Vec<String> = [e.client_port, e.quorum_port, e.election_port]
        .iter()
        .map(|p| format!("{p:04X}"))
        .collect();
    format!(
        "! {{ cat /proc/net/tcp; cat /proc/net/tcp6 2>/dev/null; }} | awk '$4 == \"0A\" {{ n = split($2, a, \":\"); print a[n] }}' | grep -qxE '{}'",
        hex.join("|")
    )
}

/// A host script (`$1` the config): exit 0 when the host is fenced (ports
/// closed, myid moved aside), printing what it saw.
fn fenced_check(sh: &Shell) -> String {
    format!(
        "{DATA_DIR}\n{} || {{ echo 'a ZooKeeper port listens: not fenced'; exit 1; }}\n\
         echo 'no ZooKeeper port listening'\n\
         [ ! -e \"$d/myid\" ] && [ -e \"$d/myid{FENCED_SUFFIX}\" ] || {{ echo \"$d/myid not moved aside: not fenced\"; exit 1; }}\n\
         echo \"myid moved to $d/myid{FENCED_SUFFIX}\"",
        none_listening(sh)
    )
}

/// The fence check run on server `id`'s host.
fn fenced_on_host(sh: &Shell, id: ServerId) -> String {
    sh.on_host_script(id, &fenced_check(sh), &[&sh.plan.ensemble.config_path])
}

fn fence(sh: &Shell, id: ServerId) -> Manual {
    let plan = sh.plan;
    let svc = &plan.ensemble.service;
    let polls =
        plan.policy.progress_deadline.as_millis() / plan.policy.poll_interval.as_millis().max(50);
    let poll_s = plan.policy.poll_interval.as_millis().max(50) as f64 / 1000.0;
    let wait_closed = format!(
        "i=0\nuntil {}; do\n  i=$((i + 1)); [ $i -lt {polls} ] || {{ echo 'ports still listening: do not go on'; exit 1; }}; sleep {poll_s}\ndone\n\
         {DATA_DIR}\n\
         if [ -e \"$d/myid\" ]; then mv -f -- \"$d/myid\" \"$d/myid{FENCED_SUFFIX}\"; fi\n\
         [ -e \"$d/myid{FENCED_SUFFIX}\" ] && echo \"myid moved to $d/myid{FENCED_SUFFIX}\"",
        none_listening(sh)
    );
    let cfg = plan.ensemble.config_path.as_str();
    Manual {
        about: "Disable first (so nothing starts it again between the stop and the disable), \
                then stop, then wait until its ports are closed, and only then move myid aside: \
                a host whose service will not stop keeps its myid and keeps serving. If the \
                ports do not close, stop here: the server still runs on its host."
            .into(),
        run: Some(format!(
            "{}\n{}\n{}",
            sh.on_host(id, &svc.disable),
            sh.on_host(id, &svc.stop),
            sh.on_host_script(id, &wait_closed, &[cfg])
        )),
        expect: format!(
            "the service commands succeed; the ports close within `progressDeadline` ({}); \
             `<dataDir>/myid` becomes `<dataDir>/myid{FENCED_SUFFIX}`. The ensemble runs on \
             {} of {} voters until the Pod joins.",
            humantime::format_duration(plan.policy.progress_deadline),
            plan.servers.len().saturating_sub(1),
            plan.servers.len()
        ),
        verify: Some(fenced_on_host(sh, id)),
        undo: format!(
            "only once no Pod of server {id} exists (undo `replace/pod/{id}` first): myid back, \
             enable, start, wait synced."
        ),
        undo_run: Some(format!(
            "{}\n{}\n{}\n{}\nzk_await {} zk_synced {id}",
            sh.on_host_script(
                id,
                &format!(
                    "{DATA_DIR}\nif [ ! -e \"$d/myid\" ] && [ -e \"$d/myid{FENCED_SUFFIX}\" ]; then mv -f -- \"$d/myid{FENCED_SUFFIX}\" \"$d/myid\"; fi"
                ),
                &[cfg]
            ),
            sh.on_host(id, &svc.enable),
            sh.on_host(id, &svc.start),
            sh.source_helpers(),
            Shell::secs(plan.policy.sync_timeout)
        )),
    }
}

/// Lines that set `$pod` to server `id`'s Pod name (StatefulSet: from the
/// pinned ordinal).
fn pod_name_lines(sh: &Shell, id: ServerId) -> Vec<String> {
    let plan = sh.plan;
    match plan.kubernetes.target.kind {
        TargetKind::StatefulSet => vec![
            sh.source_helpers(),
            format!(
                "ordinal=$(zk_ordinal {id}) || ordinal=; [ -n \"$ordinal\" ] || {{ echo 'no ordinal pinned: run replace/ordinals'; false; }}"
            ),
            format!("pod={}-$ordinal", plan.kubernetes.target.name),
        ],
        TargetKind::PerServer => vec![format!(
            "pod={}",
            manifests::pod_name_for(plan, id, &Ordinals::by_id(plan)).unwrap_or_default()
        )],
    }
}

fn switch(sh: &Shell, id: ServerId) -> Manual {
    let plan = sh.plan;
    let service = plan.service_name(id);
    let slice = labels::host_slice_name(plan, id);
    let by_id = Ordinals::by_id(plan);
    let placeholder_pod = manifests::pod_name_for(plan, id, &by_id).unwrap_or_default();
    let on_pod = manifests::per_server_service_on_pod(plan, id, &by_id)
        .map(|svc| {
            object_yaml(svc).replace(
                &format!("{}: {placeholder_pod}", labels::POD_NAME),
                &format!("{}: {POD}", labels::POD_NAME),
            )
        })
        .unwrap_or_else(|e| format!("# failed to build Service {service}: {e}\n"));
    let mut run = pod_name_lines(sh, id);
    run.push(fenced_on_host(sh, id));
    run.push(sh.apply_yaml_filled(&on_pod, &[("POD", "$pod")]));
    run.push(sh.kubectl(&format!(
        "delete endpointslice {} --ignore-not-found --wait",
        shell_quote(&slice)
    )));
    let host_slice = plan
        .server(id)
        .and_then(|s| s.address.parse().ok())
        .and_then(|ip| manifests::host_slice(plan, id, ip).ok())
        .map(|s| sh.apply_yaml(&object_yaml(s)))
        .unwrap_or_else(|| format!("# apply services/slice/{id} again (see there)"));
    let without_selector = manifests::per_server_service(plan, id)
        .map(|s| sh.apply_yaml(&object_yaml(s)))
        .unwrap_or_else(|e| format!("# failed to build Service {service}: {e}"));
    Manual {
        about: format!(
            "Only on a fenced host (checked first): the Service selects the Pod's \
             `{}` label, and zkmigrate's host slice is deleted at once (Kubernetes never removes \
             a hand-made slice, and kube-proxy merges every slice of a Service). Until the Pod \
             runs, the Service has no live endpoint, as a moment ago (the fenced host).",
            labels::POD_NAME
        ),
        run: Some(run.join("\n")),
        expect: format!(
            "the fence check prints its two lines; `service/{service} serverside-applied`; \
             `endpointslice.discovery.k8s.io \"{slice}\" deleted` (or nothing, if it was gone)."
        ),
        verify: Some(format!(
            "{}\n{} | grep -x \"$pod\"\n! {} >/dev/null 2>&1",
            pod_name_lines(sh, id).join("\n"),
            sh.kubectl(&format!(
                "get service {} -o jsonpath='{{.spec.selector.{}}}{{\"\\n\"}}'",
                shell_quote(&service),
                labels::POD_NAME.replace('.', "\\.")
            )),
            sh.kubectl(&format!("get endpointslice {}", shell_quote(&slice)))
        )),
        undo: "only once the Pod is gone (undo `replace/pod` first): the Service without its \
               selector (zkmigrate's apply drops the field it owns), the controller's slices \
               deleted (the controller leaves them when a selector goes), the host slice back."
            .into(),
        undo_run: Some(format!(
            "{without_selector}\n{}\n{host_slice}",
            sh.kubectl(&format!(
                "delete endpointslices -l {}",
                shell_quote(&super::pod::controller_slices_selector(&service))
            ))
        )),
    }
}

fn start_pod(sh: &Shell, id: ServerId) -> Manual {
    let plan = sh.plan;
    let service = plan.service_name(id);
    let target = &plan.kubernetes.target;
    let sync = Shell::secs(plan.policy.sync_timeout);
    let mut run = pod_name_lines(sh, id);
    run.push(fenced_on_host(sh, id));
    let undo_run = match target.kind {
        TargetKind::StatefulSet => {
            let sts = manifests::statefulset(plan, 1)
                .map(|s| {
                    object_yaml(s).replacen("\n  replicas: 1\n", "\n  replicas: @REPLICAS@\n", 1)
                })
                .unwrap_or_else(|e| format!("# failed to build the StatefulSet: {e}\n"));
            run.push(format!(
                "current=$({} 2>/dev/null) || current=0",
                sh.kubectl(&format!(
                    "get statefulset {} -o jsonpath='{{.spec.replicas}}'",
                    shell_quote(&target.name)
                ))
            ));
            run.push(
                "[ \"${current:-0}\" -eq \"$ordinal\" ] || { echo \"the StatefulSet has ${current:-0} replicas, not $ordinal: take the servers in ordinal order\"; false; }"
                    .into(),
            );
            run.push(sh.apply_yaml_filled(&sts, &[("REPLICAS", "$((ordinal + 1))")]));
            format!(
                "{}\n{}\n{}",
                pod_name_lines(sh, id).join("\n"),
                sh.kubectl(&format!(
                    "scale statefulset {} --replicas=\"$ordinal\"",
                    shell_quote(&target.name)
                )),
                sh.kubectl(&format!("wait --for=delete pod/\"$pod\" --timeout={sync}s"))
            )
        }
        TargetKind::PerServer => {
            let sts = manifests::per_server_statefulset(plan, id)
                .map(|s| sh.apply_yaml(&object_yaml(s)))
                .unwrap_or_else(|e| format!("# failed to build the StatefulSet: {e}"));
            run.push(sts);
            format!(
                "{}\n{}\n{}",
                pod_name_lines(sh, id).join("\n"),
                sh.kubectl(&format!(
                    "delete statefulset {} --ignore-not-found",
                    shell_quote(&target.statefulset_name(id))
                )),
                sh.kubectl(&format!("wait --for=delete pod/\"$pod\" --timeout={sync}s"))
            )
        }
    };
    Manual {
        about: format!(
            "The fence is checked again right before the Pod can start (one identity, one \
             process), whatever was done before. {}",
            match target.kind {
                TargetKind::StatefulSet =>
                    "The StatefulSet grows by one, to this server's \
                    ordinal + 1, never more (that would start Pods of hosts still running) and \
                    never less.",
                TargetKind::PerServer => "This server's own StatefulSet of one replica.",
            }
        ),
        run: Some(run.join("\n")),
        expect: format!(
            "`statefulset.apps/... serverside-applied`; within `syncTimeout` the Pod has an IP \
             and the controller's slice of `{service}` holds exactly it."
        ),
        verify: Some(format!(
            "{}\n{}\nzk_await {sync} zk_published {id} \"$pod\"",
            pod_name_lines(sh, id).join("\n"),
            sh.source_helpers(),
        )),
        undo: match target.kind {
            TargetKind::StatefulSet => "scale the Pod away and wait until it is gone; only the \
                highest ordinal can go, so undo the servers in reverse ordinal order."
                .into(),
            TargetKind::PerServer => "delete the server's StatefulSet and wait until its Pod is \
                gone (its volume claim stays, as with zkmigrate)."
                .into(),
        },
        undo_run: Some(undo_run),
    }
}

fn synced(sh: &Shell, id: ServerId) -> Manual {
    let sync = Shell::secs(sh.plan.policy.sync_timeout);
    Manual {
        about: "The Pod joins as a voting follower and syncs from the leader (a snapshot or a \
                diff); only then is the next server touched."
            .into(),
        run: Some(format!(
            "{}\nzk_await {sync} zk_synced {id}",
            sh.source_helpers()
        )),
        expect: format!(
            "server {id}, now at its Pod's IP, says `Mode: follower` (or `leader`), and the \
             leader counts {} synced followers with 0 pending syncs, within `syncTimeout` ({}).",
            sh.plan.servers.len().saturating_sub(1),
            humantime::format_duration(sh.plan.policy.sync_timeout)
        ),
        verify: Some(format!("{}\nzk_synced {id}", sh.source_helpers())),
        undo: "nothing to undo (it waits).".into(),
        ..Manual::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::HostConfig;
    use crate::plan::testing;

    /// The runbook's Pods' zoo.cfg (the host's file through `sed`) is the
    /// engine's, for a static server list after `peers`.
    #[test]
    fn the_hand_pod_config_equals_the_engines() {
        let plan = testing::three_servers("StatefulSet");
        let host = "# orders\ntickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/var/lib/zookeeper\n\
                    dataLogDir=/var/log/zookeeper\nclientPort=2181\nclientPortAddress=10.0.0.11\n\
                    server.1=zk-1.zookeeper.svc.cluster.local:2888:3888\n\
                    server.2=zk-2.zookeeper.svc.cluster.local:2888:3888\n\
                    server.3=zk-3.zookeeper.svc.cluster.local:2888:3888\n\
                    quorumListenOnAllIPs=true\nautopurge.purgeInterval=1\n";
        let engine = manifests::pod_zoo_cfg(
            &HostConfig {
                zoo_cfg: host.into(),
                dynamic: None,
            },
            &plan,
        )
        .unwrap();
        let mut child = std::process::Command::new("sh")
            .args(["-c", &pod_cfg_sed()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(host.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), engine.zoo_cfg);
    }
}
