//! The preflight's network check (DESIGN 5.1), from each host over its
//! session: a Service name resolves (`getent hosts
//! kubernetes.default.svc.DOMAIN`, the one Service every cluster has), the
//! resolved ClusterIP answers (bash's `/dev/tcp` to port 443), and a Pod IP
//! answers.
//!
//! The Pod IP is the probe Pod's: one Pod `zkmigrate-probe-<plan>` of the
//! plan's own ZooKeeper image, so an air-gapped cluster pulls nothing new.
//! It runs the image's default command, a standalone ZooKeeper (the
//! official image's contract: no `ZOO_SERVERS` means standalone), with a
//! TCP readiness probe on 2181; each host then asks it `srvr` through
//! bash's `/dev/tcp`. Why a real server rather than `sleep`: a listener is
//! needed for the host's connect to prove the path, and a ZooKeeper reply
//! proves more than an open port (a NetworkPolicy or a middlebox that
//! accepts but drops would pass a bare connect). The Pod is created by the
//! first network check (or reused), and deleted, awaited gone, after the
//! check of the plan's last server or after any failure, so nothing is left
//! behind whatever the outcome.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, Pod, PodSpec, Probe, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::engine::action::Action;
use crate::engine::context::{Ctx, StepError};
use crate::hosts::{HostSession, shell_quote};
use crate::manifests::labels;
use crate::plan::{ServerId, ValidatedPlan};

/// The port the probe Pod's standalone ZooKeeper listens on (the image's).
const PROBE_PORT: u16 = 2181;
/// Most a host's single connection attempt may take.
const CONNECT_SECONDS: u32 = 5;
/// Most the probe Pod may take to become ready (an image pull included).
const POD_READY_TIMEOUT: Duration = Duration::from_secs(180);
/// Most the probe Pod may take to go away.
const POD_GONE_TIMEOUT: Duration = Duration::from_secs(60);

/// The probe Pod's name: `zkmigrate-probe-<plan>`.
pub fn probe_pod_name(plan: &ValidatedPlan) -> String {
    format!("zkmigrate-probe-{}", plan.name)
}

/// The probe Pod (pure).
pub fn probe_pod(plan: &ValidatedPlan) -> Pod {
    let mut pod_labels: BTreeMap<String, String> = BTreeMap::new();
    // Not the Pods' selector labels: the probe must never join the
    // governing Service or count for the PodDisruptionBudget.
    pod_labels.insert(labels::MANAGED_BY.into(), labels::MANAGER.into());
    pod_labels.insert(labels::PLAN.into(), plan.name.clone());
    pod_labels.insert("zkmigrate/role".into(), "network-probe".into());
    Pod {
        metadata: ObjectMeta {
            name: Some(probe_pod_name(plan)),
            namespace: Some(plan.kubernetes.namespace.clone()),
            labels: Some(pod_labels),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            termination_grace_period_seconds: Some(1),
            containers: vec![Container {
                name: "probe".into(),
                image: Some(plan.kubernetes.target.image.clone()),
                env: Some(vec![
                    EnvVar {
                        name: "ZOO_4LW_COMMANDS_WHITELIST".into(),
                        value: Some("srvr".into()),
                        ..EnvVar::default()
                    },
                    EnvVar {
                        name: "ZOO_STANDALONE_ENABLED".into(),
                        value: Some("true".into()),
                        ..EnvVar::default()
                    },
                ]),
                ports: Some(vec![ContainerPort {
                    name: Some("client".into()),
                    container_port: i32::from(PROBE_PORT),
                    protocol: Some("TCP".into()),
                    ..ContainerPort::default()
                }]),
                readiness_probe: Some(Probe {
                    tcp_socket: Some(TCPSocketAction {
                        port: IntOrString::Int(i32::from(PROBE_PORT)),
                        ..TCPSocketAction::default()
                    }),
                    period_seconds: Some(1),
                    ..Probe::default()
                }),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// The probe Pod, created when absent, once Ready: its IP.
async fn ensure_probe_pod(ctx: &Ctx) -> Result<String, StepError> {
    let name = probe_pod_name(&ctx.plan);
    if let Some(existing) = ctx.cluster.get_opt::<Pod>(&name).await?
        && existing.metadata.deletion_timestamp.is_some()
    {
        ctx.cluster
            .await_deleted::<Pod>(&name, POD_GONE_TIMEOUT)
            .await?;
    }
    ctx.cluster.apply(&probe_pod(&ctx.plan)).await?;
    let wait = ctx.progress.wait(&format!("probe Pod {name} to be ready"));
    let pod = match ctx.cluster.await_pod_ready(&name, POD_READY_TIMEOUT).await {
        Ok(pod) => pod,
        Err(e) => {
            wait.abandon("not ready");
            return Err(e.into());
        }
    };
    let ip = pod
        .status
        .and_then(|s| s.pod_ip)
        .ok_or_else(|| StepError::Other(format!("read the IP of the ready Pod {name}")))?;
    wait.finish(format!("ready at {ip}"));
    Ok(ip)
}

/// Deletes the probe Pod and waits until it is gone.
async fn remove_probe_pod(ctx: &Ctx) -> Result<(), StepError> {
    let name = probe_pod_name(&ctx.plan);
    if ctx.cluster.delete::<Pod>(&name).await? {
        ctx.cluster
            .await_deleted::<Pod>(&name, POD_GONE_TIMEOUT)
            .await?;
        tracing::info!(pod = %name, "probe Pod deleted");
    }
    Ok(())
}

/// A bash `/dev/tcp` connect from the host, optionally sending a word and
/// printing the reply (no trailing newline, DESIGN 7).
fn tcp_command(ip: &str, port: u16, word: Option<&str>) -> String {
    let script = match word {
        Some(_) => "exec 3<>/dev/tcp/$0/$1 && printf %s \"$2\" >&3 && cat <&3",
        None => "exec 3<>/dev/tcp/$0/$1",
    };
    format!(
        "timeout {CONNECT_SECONDS} bash -c {} {} {port} {}",
        shell_quote(script),
        shell_quote(ip),
        word.map(shell_quote).unwrap_or_default()
    )
    .trim_end()
    .to_string()
}

/// The first IPv4 address of `getent hosts` output.
fn first_address(getent: &str) -> Option<String> {
    getent
        .split_whitespace()
        .next()
        .filter(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
        .map(str::to_string)
}

pub async fn check_network(ctx: &Ctx, action: &Action, id: ServerId) -> Result<String, StepError> {
    let result = probe_from_host(ctx, action, id).await;
    let last = ctx.plan.servers.last().map(|s| s.id) == Some(id);
    if (last || result.is_err())
        && let Err(e) = remove_probe_pod(ctx).await
    {
        tracing::warn!(error = %e, "the probe Pod could not be removed");
        // The check's own failure says more; a pass must not hide a Pod
        // left behind.
        if result.is_ok() {
            return Err(e);
        }
    }
    result
}

async fn probe_from_host(ctx: &Ctx, action: &Action, id: ServerId) -> Result<String, StepError> {
    let session = ctx.session(id).await?;
    let result = probe_with(ctx, action, &session).await;
    let _ = session.close().await;
    result
}

async fn probe_with(
    ctx: &Ctx,
    action: &Action,
    session: &HostSession,
) -> Result<String, StepError> {
    let host = session.host().to_string();
    let name = format!(
        "kubernetes.default.svc.{}",
        ctx.plan.kubernetes.cluster_domain
    );
    let out = session
        .run(&format!("getent hosts {}", shell_quote(&name)))
        .await?;
    let Some(cluster_ip) = first_address(&out.stdout_text()).filter(|_| out.success()) else {
        return Err(StepError::refused(
            action,
            format!(
                "{name} does not resolve on {host} (getent exit {})",
                out.status
            ),
            "Service names resolve on every host (the peers will be named by them)",
            format!(
                "point {host}'s resolver at the cluster DNS (e.g. a stub zone for svc.{})",
                ctx.plan.kubernetes.cluster_domain
            ),
        ));
    };
    let out = session.run(&tcp_command(&cluster_ip, 443, None)).await?;
    if !out.success() {
        return Err(StepError::refused(
            action,
            format!(
                "{host} cannot connect to ClusterIP {cluster_ip}:443 ({name}): {}",
                explain(out.status, &out.stderr_text())
            ),
            "ClusterIPs reachable from every host",
            format!("run kube-proxy (or an equivalent) on {host} so ClusterIPs are routed"),
        ));
    }
    let pod_ip = ensure_probe_pod(ctx).await?;
    let out = session
        .run(&tcp_command(&pod_ip, PROBE_PORT, Some("srvr")))
        .await?;
    let reply = out.stdout_text();
    if !out.success() || !reply.contains("Mode:") {
        return Err(StepError::refused(
            action,
            format!(
                "{host} got no `srvr` reply from the probe Pod at {pod_ip}:{PROBE_PORT}: {}",
                explain(out.status, &out.stderr_text())
            ),
            "Pod IPs reachable from every host",
            format!(
                "route the Pod network to {host} (and allow it through firewalls and NetworkPolicies)"
            ),
        ));
    }
    Ok(format!(
        "{name} resolves to {cluster_ip} and answers; the probe Pod at {pod_ip} answers srvr"
    ))
}

fn explain(status: i32, stderr: &str) -> String {
    match (status, stderr.trim()) {
        (124, _) => format!("no answer within {CONNECT_SECONDS}s"),
        (127, e) => format!("bash or timeout missing on the host ({e})"),
        (s, "") => format!("exit status {s}"),
        (_, e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_commands_quote_their_operands() {
        assert_eq!(
            tcp_command("10.96.0.1", 443, None),
            "timeout 5 bash -c 'exec 3<>/dev/tcp/$0/$1' 10.96.0.1 443"
        );
        assert_eq!(
            tcp_command("10.244.0.7", 2181, Some("srvr")),
            "timeout 5 bash -c 'exec 3<>/dev/tcp/$0/$1 && printf %s \"$2\" >&3 && cat <&3' 10.244.0.7 2181 srvr"
        );
    }

    #[test]
    fn the_resolved_address_is_the_first_ipv4_of_getent() {
        assert_eq!(
            first_address("10.96.0.1       kubernetes.default.svc.cluster.local\n").as_deref(),
            Some("10.96.0.1")
        );
        assert_eq!(first_address(""), None);
        assert_eq!(first_address("fd00::1 kubernetes"), None);
    }
}
