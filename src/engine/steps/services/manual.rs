//! Step `services` by hand: the same objects the engine applies (built by
//! the same [`manifests`] functions, rendered as YAML into the command),
//! server-side applied with zkmigrate's field manager, and the route
//! checked through each ClusterIP as the engine checks it.

use std::net::Ipv4Addr;

use crate::engine::action::Action;
use crate::hosts::shell_quote;
use crate::manifests::{self, labels};
use crate::plan::ServerId;
use crate::runbook::shell::object_yaml as yaml;
use crate::runbook::{Manual, Shell};

/// The stand-in address of a host named by DNS, replaced at run time.
const ADDRESS_PLACEHOLDER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

pub fn intro(sh: &Shell) -> String {
    format!(
        "One ClusterIP Service per server, without a selector, and zkmigrate's own \
         EndpointSlice pointing it at the host; then proof that the route works. Nothing \
         restarts. The objects are those of `{}`.\n",
        sh.zkmigrate("manifests", "--step services")
    )
}

pub fn manual(sh: &Shell, action: &Action) -> Manual {
    match action {
        Action::ApplyService { server } => service(sh, *server),
        Action::ApplyHostSlice { server } => slice(sh, *server),
        Action::VerifyRoute { server } => route(sh, *server),
        _ => Manual::default(),
    }
}

fn service(sh: &Shell, id: ServerId) -> Manual {
    let name = sh.plan.service_name(id);
    let run = match manifests::per_server_service(sh.plan, id) {
        Ok(svc) => sh.apply_yaml(&yaml(svc)),
        Err(e) => format!("# failed to build Service {name}: {e}"),
    };
    Manual {
        run: Some(run),
        expect: format!("`service/{name} serverside-applied`."),
        verify: Some(format!(
            "{} | grep -E '^[0-9]'",
            sh.kubectl(&format!(
                "get service {} -o jsonpath='{{.spec.clusterIP}}{{\"\\n\"}}'",
                shell_quote(&name)
            ))
        )),
        undo: format!(
            "delete the Service (rollback deletes it only when it carries zkmigrate's labels for \
             plan `{}`).",
            sh.plan.name
        ),
        undo_run: Some(sh.kubectl(&format!(
            "delete service {} --ignore-not-found",
            shell_quote(&name)
        ))),
        ..Manual::default()
    }
}

fn slice(sh: &Shell, id: ServerId) -> Manual {
    let name = labels::host_slice_name(sh.plan, id);
    let address = sh
        .plan
        .server(id)
        .map(|s| s.address.clone())
        .unwrap_or_default();
    let run = match address.parse::<Ipv4Addr>() {
        Ok(ip) => manifests::host_slice(sh.plan, id, ip).map(|s| sh.apply_yaml(&yaml(s))),
        // A name: resolved by the operator's resolver at run time, as
        // `zkmigrate manifests` resolves it.
        Err(_) => manifests::host_slice(sh.plan, id, ADDRESS_PLACEHOLDER).map(|s| {
            let text = yaml(s).replace(&ADDRESS_PLACEHOLDER.to_string(), "@ADDRESS@");
            format!(
                "address=$(getent ahostsv4 {} | awk 'NR == 1 {{ print $1 }}')\n{}",
                shell_quote(&address),
                sh.apply_yaml_filled(&text, &[("ADDRESS", "$address")])
            )
        }),
    };
    let run = run.unwrap_or_else(|e| format!("# failed to build EndpointSlice {name}: {e}"));
    Manual {
        run: Some(run),
        expect: format!("`endpointslice.discovery.k8s.io/{name} serverside-applied`."),
        verify: Some(format!(
            "{} | grep -x {}",
            sh.kubectl(&format!(
                "get endpointslice {} -o jsonpath='{{.endpoints[*].addresses[*]}}{{\"\\n\"}}'",
                shell_quote(&name)
            )),
            match address.parse::<Ipv4Addr>() {
                Ok(ip) => ip.to_string(),
                Err(_) => "'[0-9.]*'".to_string(),
            }
        )),
        undo: "delete the slice (only zkmigrate's: it carries `endpointslice.kubernetes.io/managed-by: zkmigrate`).".into(),
        undo_run: Some(sh.kubectl(&format!(
            "delete endpointslice {} --ignore-not-found",
            shell_quote(&name)
        ))),
        ..Manual::default()
    }
}

fn route(sh: &Shell, id: ServerId) -> Manual {
    let name = sh.plan.service_name(id);
    let ip = sh.kubectl(&format!(
        "get service {} -o jsonpath='{{.spec.clusterIP}}'",
        shell_quote(&name)
    ));
    Manual {
        about: "From the machine zkmigrate runs on (kube-proxy or a route to the ClusterIPs \
                there), `conf` through the ClusterIP. The engine retries for 30 s while the \
                proxy programs its rules."
            .into(),
        run: Some(format!(
            "ip=$({ip})\nprintf conf | nc -w 2 \"$ip\" {} | grep -x 'serverId={id}'",
            sh.plan.ensemble.client_port
        )),
        expect: format!("`serverId={id}`: the ClusterIP of `{name}` reaches server {id}."),
        undo: "nothing to undo (read-only).".into(),
        ..Manual::default()
    }
}
