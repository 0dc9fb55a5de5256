//! Step `finalize` by hand: the end state, checked the way the engine
//! checks it, and the final manifests.

use crate::engine::action::Action;
use crate::engine::steps::preflight::DATA_DIR;
use crate::hosts::shell_quote;
use crate::manifests::labels;
use crate::runbook::{Manual, Shell};

pub fn intro(sh: &Shell) -> String {
    format!(
        "Verify the end state and hand over. The objects as they now stand: `{}`.\n",
        sh.zkmigrate("manifests", "--step finalize")
    )
}

pub fn manual(sh: &Shell, action: &Action) -> Manual {
    match action {
        Action::VerifyEndState => end_state(sh),
        _ => Manual::default(),
    }
}

fn end_state(sh: &Shell) -> Manual {
    let plan = sh.plan;
    let e = &plan.ensemble;
    let hex: Vec<String> = [e.client_port, e.quorum_port, e.election_port]
        .iter()
        .map(|p| format!("{p:04X}"))
        .collect();
    let fenced = format!(
        "{DATA_DIR}\n! {{ cat /proc/net/tcp; cat /proc/net/tcp6 2>/dev/null; }} | awk '$4 == \"0A\" {{ n = split($2, a, \":\"); print a[n] }}' | grep -qxE '{}' && [ ! -e \"$d/myid\" ]",
        hex.join("|")
    );
    let mut run = vec![
        sh.source_helpers(),
        "ok=0".to_string(),
        "zk_quorum_ok || ok=1".to_string(),
    ];
    for s in &plan.servers {
        let service = plan.service_name(s.id);
        run.push(format!(
            "[ -n \"$({})\" ] || {{ echo 'Service {service} selects no Pod'; ok=1; }}",
            sh.kubectl(&format!(
                "get service {} -o jsonpath='{{.spec.selector}}'",
                shell_quote(&service)
            ))
        ));
        run.push(sh.on_host_script_then(
            s.id,
            &fenced,
            &[&e.config_path],
            &format!("|| {{ echo 'host of server {}: not fenced'; ok=1; }}", s.id),
        ));
    }
    run.push(format!(
        "[ -z \"$({})\" ] || {{ echo 'a hand-made EndpointSlice is left'; ok=1; }}",
        sh.kubectl(&format!(
            "get endpointslices -l {} -o name",
            shell_quote(&format!("{}={}", labels::SLICE_MANAGED_BY, labels::MANAGER))
        ))
    ));
    run.push("[ \"$ok\" = 0 ]".into());
    Manual {
        about: "Every server runs in its Pod, serves, one leader counts every voter synced; no \
                EndpointSlice managed by zkmigrate is left; every host is fenced (ports closed, \
                myid moved aside). Changes nothing."
            .into(),
        run: Some(run.join("\n")),
        expect: "the gate's lines (every server at a Pod IP), and exit 0.".into(),
        undo: format!(
            "nothing to undo here; to go back, roll back (DESIGN 5.7): `{}`.",
            sh.zkmigrate("rollback", "")
        ),
        ..Manual::default()
    }
}
