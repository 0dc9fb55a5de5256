//! The engine's one loop (STYLE: "the engine is one loop").
//!
//! For each step to run, in order: mark it running in the journal; for each
//! action: **check** (is the effect already there? then journal it done and
//! go on: applying twice is the same as once), the **quorum-first gate** if
//! the action disrupts, **journal intent**, **apply**, **verify**, **journal
//! done**. A resumed step runs the same loop: every action is checked again
//! against the world, never skipped on the journal's word (DESIGN 2).
//!
//! Order within `peers` and `replace`: the step's server-less actions first,
//! then one server at a time. For `peers` (and a PerServer `replace`),
//! leadership is observed again before each server and the current leader
//! is taken last; a StatefulSet `replace` follows the pinned ordinals,
//! which put the leader of when the step began last (a StatefulSet grows in
//! ordinal order).

use std::collections::BTreeMap;

use tracing::Instrument;

use super::action::Action;
use super::build;
use super::context::{Ctx, Observed, StepError};
use super::events;
use super::steps;
use super::world::World;
use crate::exit::Exit;
use crate::failpoint;
use crate::journal::{ActionStatus, LockedJournal, StepStatus};
use crate::plan::{ServerId, TargetKind};
use crate::steps::StepName;

/// Which steps a `step` command runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepRequest {
    /// Every remaining step.
    pub all: bool,
    /// The remaining steps up to and including this one.
    pub until: Option<StepName>,
}

/// A journal write that failed stops the run before its next action
/// (a lost Lease included: fail closed), saying how to go on.
fn journal_err(ctx: &Ctx, e: crate::journal::JournalError) -> StepError {
    StepError::Other(format!(
        "write the journal: {e}; nothing after it was started: once the cause is fixed, continue with `zkmigrate step -f {} --resume`",
        ctx.plan_file.display()
    ))
}

/// Runs the requested steps. `Ok(Exit::Done)` when they completed.
pub async fn run_steps(
    ctx: &Ctx,
    journal: &mut LockedJournal,
    request: StepRequest,
) -> Result<Exit, StepError> {
    if let Some(step) = unfinished_step(journal).filter(|_| !ctx.opts.resume) {
        return Err(StepError::Refused {
            action: format!("step {step}"),
            observed: "it was interrupted or halted".into(),
            expected: "a finished step before the next one starts".into(),
            next: format!(
                "Continue it with `zkmigrate step -f {} --resume` (it re-observes the world first), or roll back with `zkmigrate rollback -f {}`.",
                ctx.plan_file.display(),
                ctx.plan_file.display()
            ),
        });
    }
    let Some(mut step) = journal.journal().next_step() else {
        eprintln!(
            "every step is done; `zkmigrate status -f {}` shows the ensemble",
            ctx.plan_file.display()
        );
        return Ok(Exit::Done);
    };
    if let Some(until) = request.until.filter(|&u| !request.all && step > u) {
        eprintln!("every step up to {until} is done; the next is {step}");
        return Ok(Exit::Done);
    }
    loop {
        run_step(ctx, journal, step).await?;
        let more = request.all || request.until.is_some_and(|until| step < until);
        match journal.journal().next_step() {
            Some(next) if more => step = next,
            Some(next) => {
                eprintln!(
                    "step {step} done; next: {next} (`zkmigrate step -f {}`)",
                    ctx.plan_file.display()
                );
                return Ok(Exit::Done);
            }
            None => {
                eprintln!("migration complete: every step is done");
                return Ok(Exit::Done);
            }
        }
    }
}

/// A step left running or failed, which only `--resume` may continue.
fn unfinished_step(journal: &LockedJournal) -> Option<StepName> {
    journal
        .journal()
        .steps
        .iter()
        .find(|s| matches!(s.status, StepStatus::Running | StepStatus::Failed))
        .map(|s| s.name)
}

/// The step's actions, as the plan computation orders them.
async fn planned_actions(ctx: &Ctx, step: StepName) -> Result<Vec<Action>, StepError> {
    let world = World {
        ensemble: ctx.observe().await?,
        hosts: BTreeMap::new(),
    };
    let plan = build::build(&ctx.plan, &world);
    Ok(plan
        .steps
        .into_iter()
        .find(|s| s.name == step)
        .map(|s| s.actions.into_iter().map(|a| a.action).collect())
        .unwrap_or_default())
}

async fn run_step(ctx: &Ctx, journal: &mut LockedJournal, step: StepName) -> Result<(), StepError> {
    let span = tracing::info_span!("step", step = %step);
    async {
        eprintln!("== step {step}");
        journal
            .set_step_status(step, StepStatus::Running)
            .await
            .map_err(|e| journal_err(ctx, e))?;
        failpoint::boundary(|| format!("step/{step}@running")).await;
        events::step(ctx, step, false).await;
        let actions = planned_actions(ctx, step).await?;
        let (global, per_server): (Vec<Action>, Vec<Action>) = actions.into_iter().partition(|a| {
            a.server().is_none() || step == StepName::Preflight || step == StepName::Services
        });
        let result = async {
            for action in &global {
                run_action(ctx, journal, action).await?;
            }
            let mut groups: BTreeMap<ServerId, Vec<Action>> = BTreeMap::new();
            for a in per_server {
                groups
                    .entry(a.server().expect("partitioned by server"))
                    .or_default()
                    .push(a);
            }
            while !groups.is_empty() {
                let next = next_server(ctx, step, &groups).await?;
                for action in groups.remove(&next).unwrap_or_default() {
                    run_action(ctx, journal, &action).await?;
                }
            }
            Ok::<(), StepError>(())
        }
        .await;
        match result {
            Ok(()) => {
                journal
                    .set_step_status(step, StepStatus::Done)
                    .await
                    .map_err(|e| journal_err(ctx, e))?;
                failpoint::boundary(|| format!("step/{step}@done")).await;
                events::step(ctx, step, true).await;
                eprintln!("== step {step} done");
                Ok(())
            }
            Err(e) => {
                // AwaitingConfirm leaves the step running: it is not a
                // failure, the operator finishes it with --confirm.
                if !matches!(e, StepError::AwaitingConfirm { .. }) {
                    let _ = journal.set_step_status(step, StepStatus::Failed).await;
                }
                Err(e)
            }
        }
    }
    .instrument(span)
    .await
}

/// The server whose actions run next: for a StatefulSet `replace`, the
/// lowest pinned ordinal left; otherwise the lowest id left that does not
/// lead now (the leader last).
async fn next_server(
    ctx: &Ctx,
    step: StepName,
    groups: &BTreeMap<ServerId, Vec<Action>>,
) -> Result<ServerId, StepError> {
    let left: Vec<ServerId> = groups.keys().copied().collect();
    if step == StepName::Replace && ctx.plan.kubernetes.target.kind == TargetKind::StatefulSet {
        let ordinals = ctx.ordinals().await?;
        if let Some(id) = ordinals.ids().iter().find(|id| groups.contains_key(id)) {
            return Ok(*id);
        }
    }
    let leader = ctx
        .observe()
        .await?
        .leader()
        .and_then(|l| u8::try_from(l).ok());
    Ok(left
        .iter()
        .copied()
        .find(|id| Some(id.get()) != leader)
        .unwrap_or(left[0]))
}

/// Runs one action, and leaves its Event on its server's Service: done, or
/// why it stopped (a halt at the gate included).
async fn run_action(
    ctx: &Ctx,
    journal: &mut LockedJournal,
    action: &Action,
) -> Result<(), StepError> {
    let span = tracing::info_span!(
        "action",
        id = %action.id(),
        server_id = action.server().map(|s| s.get())
    );
    async {
        match check_and_apply(ctx, journal, action).await {
            Ok(Some(seen)) => {
                events::done(ctx, action, &seen).await;
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                events::stopped(ctx, action, &e).await;
                Err(e)
            }
        }
    }
    .instrument(span)
    .await
}

/// check, gate, journal intent, apply, verify, journal done. `Some(seen)`
/// when the journal records the action done now, `None` when it already
/// did.
async fn check_and_apply(
    ctx: &Ctx,
    journal: &mut LockedJournal,
    action: &Action,
) -> Result<Option<String>, StepError> {
    let id = action.id();
    match steps::check(ctx, action).await? {
        Observed::Done(seen) => {
            tracing::info!(%seen, "already done");
            eprintln!("   {id:<28} already done: {seen}");
            if journal.journal().action(&id).map(|a| a.status) == Some(ActionStatus::Done) {
                return Ok(None);
            }
            // Done, but not journaled so (a confirmation given now, or an
            // effect applied before a crash): journal it, and tell.
            let seen = format!("already: {seen}");
            journal
                .record_intent(&id)
                .await
                .map_err(|e| journal_err(ctx, e))?;
            failpoint::boundary(|| format!("{id}@intent")).await;
            journal
                .record_done(&id, Some(seen.clone()))
                .await
                .map_err(|e| journal_err(ctx, e))?;
            failpoint::boundary(|| format!("{id}@done")).await;
            return Ok(Some(seen));
        }
        Observed::Needed => {}
    }
    if action.disrupts() {
        let server = action.server().expect("disruptive actions name a server");
        confirm(ctx, action).await?;
        let passed = ctx
            .gate(server, matches!(action, Action::FenceHost { .. }))
            .await?;
        tracing::info!(
            leader = passed.leader,
            waited_ms = passed.waited.as_millis() as u64,
            "gate passed"
        );
    }
    eprintln!("-> {id:<28} {}", action.describe());
    journal
        .record_intent(&id)
        .await
        .map_err(|e| journal_err(ctx, e))?;
    failpoint::boundary(|| format!("{id}@intent")).await;
    let outcome = async {
        steps::apply(ctx, action).await?;
        failpoint::boundary(|| format!("{id}@applied")).await;
        steps::verify(ctx, action).await
    }
    .await;
    match outcome {
        Ok(seen) => {
            journal
                .record_done(&id, Some(seen.clone()))
                .await
                .map_err(|e| journal_err(ctx, e))?;
            failpoint::boundary(|| format!("{id}@done")).await;
            tracing::info!(%seen, "done");
            eprintln!("   {id:<28} done: {seen}");
            Ok(Some(seen))
        }
        Err(e) => {
            if !matches!(e, StepError::AwaitingConfirm { .. }) {
                let _ = journal.record_failed(&id, e.to_string()).await;
            }
            Err(with_next_steps(ctx, &id, e))
        }
    }
}

/// DESIGN 2, "nothing silent": a failure that does not already say how to
/// go on (a host command, an API request, an unexpected answer) is told
/// with the commands that continue or roll back. Halts, refusals and the
/// wait for `--confirm` say so themselves.
fn with_next_steps(ctx: &Ctx, id: &str, e: StepError) -> StepError {
    match e {
        StepError::Host(_)
        | StepError::Kubernetes(_)
        | StepError::Manifests(_)
        | StepError::Other(_) => StepError::ActionFailed {
            action: id.to_string(),
            reason: e.to_string(),
            next: format!(
                "Nothing after it was started. Once the cause is fixed, continue with `zkmigrate step -f {plan} --resume` (it checks the world again first), or roll back with `zkmigrate rollback -f {plan}`.",
                plan = ctx.plan_file.display()
            ),
        },
        other => other,
    }
}

/// Without `--yes`, asks on the terminal before a disruptive action; with
/// no terminal, refuses (a script must say `--yes`).
async fn confirm(ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    use std::io::IsTerminal;
    if ctx.opts.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(StepError::refused(
            action,
            "no --yes and no terminal to ask on",
            "the operator's go-ahead for a disruptive action",
            "Run again with --yes.",
        ));
    }
    let question = format!("{}: {} [y/N] ", action.id(), action.describe());
    let answer = ctx.progress.suspend(|| {
        eprint!("{question}");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    });
    match answer {
        Ok(a) if matches!(a.trim(), "y" | "Y" | "yes") => Ok(()),
        _ => Err(StepError::refused(
            action,
            "the operator said no",
            "a yes",
            "Nothing was changed by this action; run `zkmigrate step --resume` when ready.",
        )),
    }
}
