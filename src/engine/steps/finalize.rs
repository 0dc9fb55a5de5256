//! Step `finalize` (DESIGN 5.6): verify the end state and hand over.
//!
//! `end-state` holds when every server runs in its Pod (the ensemble is
//! asked at the Pods' IPs), every voter serves, one leader counts every
//! voter synced, no EndpointSlice managed by zkmigrate is left in the
//! namespace, and every host is fenced (ZooKeeper ports closed, myid moved
//! aside). "Disabled" is the plan's `service.disable`, which zkmigrate ran
//! and trusts (it never starts a host's service to test it); the closed
//! ports and the moved myid are what it can observe.
//!
//! The action changes nothing: `apply` waits (with the quorum gate's
//! deadlines) for the ensemble to be healthy, then refuses with every
//! failing item when the end state does not hold; `verify` prints the
//! summary and the command that renders the final manifests.

mod manual;
pub use manual::{intro, manual};

use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::replace::fence_state;
use crate::engine::action::Action;
use crate::engine::context::{Ctx, Observed, StepError};
use crate::engine::gate::{self, GateSpec};
use crate::manifests::{self, labels};
use crate::observe::Condition;
use crate::observe::health::{all_voters_synced, every_voter_serving, exactly_one_leader};

/// What the end state check found.
#[derive(Debug, Default)]
struct EndState {
    /// One line per server: where it runs, mode.
    servers: Vec<String>,
    /// What does not hold, as "observed; expected".
    failures: Vec<String>,
    leader: Option<u64>,
}

async fn observe_end_state(ctx: &Ctx) -> Result<EndState, StepError> {
    let mut state = EndState::default();
    let ordinals = ctx.ordinals().await?;
    let targets = ctx.targets().await?;
    for server in &ctx.plan.servers {
        let pod = manifests::pod_name_for(&ctx.plan, server.id, &ordinals)?;
        let target = targets
            .iter()
            .find(|t| t.id == u64::from(server.id.get()))
            .map(|t| t.client.clone())
            .unwrap_or_default();
        if target == ctx.plan.client_endpoint(server) {
            state.failures.push(format!(
                "server {}: observed no Pod {pod} with an IP (still asked at its host {target}); expected it in its Pod",
                server.id
            ));
        }
        match fence_state(ctx, server.id).await {
            Ok(fence) if fence.is_fenced() => {}
            Ok(fence) => state.failures.push(format!(
                "host of server {}: observed {}; expected ports closed and myid moved aside",
                server.id,
                fence.describe()
            )),
            Err(e) => state.failures.push(format!(
                "host of server {}: observed {e}; expected a readable, fenced host",
                server.id
            )),
        }
        state
            .servers
            .push(format!("server {}: Pod {pod} at {target}", server.id));
    }
    let observation = ctx.observe().await?;
    let health = every_voter_serving()
        .and(exactly_one_leader())
        .and(all_voters_synced());
    for failure in health.failures(&observation) {
        state.failures.push(failure.to_string());
    }
    state.leader = observation.leader();
    for line in &mut state.servers {
        let id: Option<u64> = line
            .strip_prefix("server ")
            .and_then(|l| l.split(':').next())
            .and_then(|n| n.parse().ok());
        if let Some(o) = id.and_then(|id| observation.observation(id)) {
            line.push_str(&format!(", {}, zxid {}", o.srvr.mode.as_str(), o.srvr.zxid));
        }
    }
    let selector = format!("{}={}", labels::SLICE_MANAGED_BY, labels::MANAGER);
    let slices: Vec<EndpointSlice> = ctx.cluster.list(&selector).await?;
    let names: Vec<String> = slices.into_iter().filter_map(|s| s.metadata.name).collect();
    if !names.is_empty() {
        state.failures.push(format!(
            "observed EndpointSlice(s) managed by zkmigrate: {}; expected none (every Service selects its Pod)",
            names.join(", ")
        ));
    }
    Ok(state)
}

fn manifests_command(ctx: &Ctx) -> String {
    format!(
        "zkmigrate manifests -f {} --step finalize",
        ctx.plan_file.display()
    )
}

fn done_line(ctx: &Ctx, state: &EndState) -> String {
    format!(
        "{} servers in Pods, leader {}, all synced; no hand-made slice; hosts fenced. Final manifests: `{}`",
        state.servers.len(),
        state
            .leader
            .map_or("unknown".to_string(), |l| format!("server {l}")),
        manifests_command(ctx)
    )
}

pub async fn check(ctx: &Ctx, action: &Action) -> Result<Observed, StepError> {
    expect_mine(action)?;
    let state = observe_end_state(ctx).await?;
    Ok(if state.failures.is_empty() {
        Observed::Done(done_line(ctx, &state))
    } else {
        Observed::Needed
    })
}

pub async fn apply(ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    expect_mine(action)?;
    // A just-synced Pod may still be counted by the leader: wait for a
    // healthy ensemble with the gate's deadlines (halts with exit 3).
    let spec = GateSpec {
        about: None,
        require_equal_zxid: false,
        max_lag: u64::MAX,
    };
    gate::await_gate(
        &ctx.targets().await?,
        &spec,
        &ctx.plan.policy,
        &ctx.plan_file,
        &ctx.progress,
    )
    .await?;
    let state = observe_end_state(ctx).await?;
    if state.failures.is_empty() {
        return Ok(());
    }
    Err(StepError::refused(
        action,
        state.failures.join("; "),
        "every server in its Pod, serving and synced; no hand-made slice; every host fenced",
        format!(
            "Finish the replace step (`zkmigrate step -f {0} --resume`) or fix what is listed, then run `zkmigrate step -f {0} --resume`; `zkmigrate status -f {0}` shows where each server runs.",
            ctx.plan_file.display()
        ),
    ))
}

pub async fn verify(ctx: &Ctx, action: &Action) -> Result<String, StepError> {
    expect_mine(action)?;
    let state = observe_end_state(ctx).await?;
    if !state.failures.is_empty() {
        return Err(StepError::refused(
            action,
            state.failures.join("; "),
            "the end state",
            format!(
                "Run `zkmigrate step -f {} --resume`.",
                ctx.plan_file.display()
            ),
        ));
    }
    let mut summary = format!(
        "migration of {} complete: every server runs in Kubernetes (namespace {})\n",
        ctx.plan.name, ctx.plan.kubernetes.namespace
    );
    for line in &state.servers {
        summary.push_str(&format!("  {line}\n"));
    }
    summary.push_str(&format!(
        "  clients: {}\n  hosts: ZooKeeper disabled (`{}`), ports closed, myid moved to myid{}\n  the objects as they are now: `{}`\n",
        ctx.plan.service_connection_string(),
        ctx.plan.ensemble.service.disable,
        super::replace::FENCED_SUFFIX,
        manifests_command(ctx)
    ));
    ctx.progress.suspend(|| eprint!("{summary}"));
    Ok(done_line(ctx, &state))
}

/// Finalize changes nothing: there is nothing to undo.
pub async fn undo(_ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    expect_mine(action)
}

fn expect_mine(action: &Action) -> Result<(), StepError> {
    match action {
        Action::VerifyEndState => Ok(()),
        other => Err(StepError::Other(format!(
            "run {}: it is not an action of step finalize",
            other.id()
        ))),
    }
}
