//! `rollback` (DESIGN 5.7): undo what the journal says began, newest first.
//!
//! Only actions the journal shows as started (`intent`, `done` or `failed`)
//! are undone, each through its step module's `undo`, which re-observes the
//! world first (an `undo` of something that never happened does nothing).
//! Orders:
//! - `replace`: the servers in the reverse of the order they were replaced
//!   (journal time), each as Pod away, Service back to the host (selector
//!   removed, the controller's slice deleted, the host slice applied), host
//!   started; then the step's shared objects.
//! - `peers`: per server, the backed-up config restored and then the server
//!   restarted on it (gated), the servers in reverse order.
//! - `services`: routes, then slices, then Services (by label).
//! - `preflight`, `clients`, `finalize` change nothing and undo nothing.

use std::collections::BTreeMap;

use super::action::Action;
use super::context::{Ctx, StepError};
use super::events;
use super::steps;
use crate::exit::Exit;
use crate::journal::{ActionStatus, LockedJournal, StepStatus};
use crate::plan::ServerId;
use crate::steps::StepName;

/// A journal write that failed stops the run before its next action
/// (a lost Lease included: fail closed), saying how to go on.
fn journal_err(ctx: &Ctx, e: crate::journal::JournalError) -> StepError {
    StepError::Other(format!(
        "write the journal: {e}; nothing after it was started: once the cause is fixed, continue with `zkmigrate rollback -f {} --yes`",
        ctx.plan_file.display()
    ))
}

/// Rolls back every step after `to` (all steps when `None`), newest first.
pub async fn rollback(
    ctx: &Ctx,
    journal: &mut LockedJournal,
    to: Option<StepName>,
) -> Result<Exit, StepError> {
    let steps: Vec<StepName> = StepName::ALL
        .into_iter()
        .rev()
        .filter(|s| to.is_none_or(|t| *s > t))
        .collect();
    for step in steps {
        let started: Vec<(String, Action)> = started_actions(ctx, journal, step);
        let record = journal.journal().step(step).map(|s| s.status);
        if started.is_empty() {
            if matches!(
                record,
                Some(StepStatus::Running | StepStatus::Failed | StepStatus::Done)
            ) {
                journal
                    .set_step_status(step, StepStatus::RolledBack)
                    .await
                    .map_err(|e| journal_err(ctx, e))?;
            }
            continue;
        }
        eprintln!("== rollback {step}");
        for action in undo_order(step, started) {
            let id = action.id();
            eprintln!("<- {id:<28} undo: {}", action.describe());
            steps::undo(ctx, &action).await?;
            journal
                .record_undone(&id, None)
                .await
                .map_err(|e| journal_err(ctx, e))?;
            events::undone(ctx, &action).await;
        }
        journal
            .set_step_status(step, StepStatus::RolledBack)
            .await
            .map_err(|e| journal_err(ctx, e))?;
        eprintln!("== rollback {step} done");
    }
    eprintln!(
        "rolled back{}",
        to.map(|t| format!(" to just after {t}"))
            .unwrap_or_default()
    );
    Ok(Exit::Done)
}

/// The step's actions the journal shows as begun, with their start time
/// order kept (the journal's order is the order they ran).
fn started_actions(ctx: &Ctx, journal: &LockedJournal, step: StepName) -> Vec<(String, Action)> {
    let Some(record) = journal.journal().step(step) else {
        return Vec::new();
    };
    record
        .actions
        .iter()
        .filter(|a| {
            matches!(
                a.status,
                ActionStatus::Intent | ActionStatus::Done | ActionStatus::Failed
            )
        })
        .filter_map(|a| action_of(ctx, &a.id).map(|action| (a.id.clone(), action)))
        .collect()
}

/// The action with this journal id (ids are `step/verb[/server]`).
fn action_of(ctx: &Ctx, id: &str) -> Option<Action> {
    let all = super::build::build(
        &ctx.plan,
        &super::world::World {
            ensemble: crate::observe::EnsembleObservation {
                servers: Vec::new(),
                observed_at: std::time::SystemTime::now(),
            },
            hosts: BTreeMap::new(),
        },
    );
    all.steps
        .into_iter()
        .flat_map(|s| s.actions)
        .find(|a| a.id == id)
        .map(|a| a.action)
}

/// The order to undo a step's begun actions in (see the module header).
fn undo_order(step: StepName, started: Vec<(String, Action)>) -> Vec<Action> {
    match step {
        StepName::Peers | StepName::Replace => {
            let mut shared = Vec::new();
            let mut servers: Vec<ServerId> = Vec::new();
            let mut by_server: BTreeMap<ServerId, Vec<Action>> = BTreeMap::new();
            for (_, action) in started {
                match action.server() {
                    Some(s) => {
                        if !servers.contains(&s) {
                            servers.push(s);
                        }
                        by_server.entry(s).or_default().push(action);
                    }
                    None => shared.push(action),
                }
            }
            let mut out = Vec::new();
            for server in servers.into_iter().rev() {
                let mut actions = by_server.remove(&server).unwrap_or_default();
                if step == StepName::Replace {
                    actions.reverse(); // Pod away, switch back, host back.
                }
                // peers: restore the config first, then restart on it.
                out.extend(actions);
            }
            shared.reverse();
            out.extend(shared);
            out
        }
        _ => started.into_iter().rev().map(|(_, a)| a).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ServerId {
        ServerId::try_from(n).unwrap()
    }

    fn started(actions: &[Action]) -> Vec<(String, Action)> {
        actions.iter().map(|a| (a.id(), a.clone())).collect()
    }

    #[test]
    fn replace_is_undone_server_by_server_newest_first_pod_before_host() {
        let order = undo_order(
            StepName::Replace,
            started(&[
                Action::PinOrdinals,
                Action::ApplyPodConfig,
                Action::FenceHost { server: id(1) },
                Action::SwitchServiceToPod { server: id(1) },
                Action::StartPod { server: id(1) },
                Action::AwaitPodSynced { server: id(1) },
                Action::FenceHost { server: id(3) },
            ]),
        );
        let ids: Vec<String> = order.iter().map(Action::id).collect();
        assert_eq!(
            ids,
            [
                "replace/fence/3",
                "replace/synced/1",
                "replace/pod/1",
                "replace/switch/1",
                "replace/fence/1",
                "replace/pod-config",
                "replace/ordinals",
            ]
        );
    }

    #[test]
    fn peers_restores_the_config_before_restarting_on_it() {
        let order = undo_order(
            StepName::Peers,
            started(&[
                Action::VerifyResolution,
                Action::RewriteConfig { server: id(1) },
                Action::RestartServer { server: id(1) },
                Action::RewriteConfig { server: id(2) },
            ]),
        );
        let ids: Vec<String> = order.iter().map(Action::id).collect();
        assert_eq!(
            ids,
            [
                "peers/rewrite/2",
                "peers/rewrite/1",
                "peers/restart/1",
                "peers/resolve"
            ]
        );
    }
}
