//! The steps' actions, one module per step (STYLE: "steps are data; one
//! module per step with check, apply, verify, undo"). This module only
//! dispatches an [`Action`] to its step's module, for the engine (check,
//! apply, verify, undo) and for the runbook (`manual`: the same action done
//! by hand, written beside the code that does it).

pub mod clients;
pub mod finalize;
pub mod peers;
pub mod preflight;
pub mod replace;
pub mod services;

use super::action::Action;
use super::build::MigrationPlan;
use super::context::{Ctx, Observed, StepError};
use crate::runbook::{Manual, Shell};
use crate::steps::StepName;

/// Is the action's effect already there?
pub async fn check(ctx: &Ctx, action: &Action) -> Result<Observed, StepError> {
    match action.step() {
        StepName::Preflight => preflight::check(ctx, action).await,
        StepName::Services => services::check(ctx, action).await,
        StepName::Clients => clients::check(ctx, action).await,
        StepName::Peers => peers::check(ctx, action).await,
        StepName::Replace => replace::check(ctx, action).await,
        StepName::Finalize => finalize::check(ctx, action).await,
    }
}

/// Makes the action's effect hold (idempotent).
pub async fn apply(ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    match action.step() {
        StepName::Preflight => preflight::apply(ctx, action).await,
        StepName::Services => services::apply(ctx, action).await,
        StepName::Clients => clients::apply(ctx, action).await,
        StepName::Peers => peers::apply(ctx, action).await,
        StepName::Replace => replace::apply(ctx, action).await,
        StepName::Finalize => finalize::apply(ctx, action).await,
    }
}

/// Confirms the effect holds after `apply`; returns what shows it.
pub async fn verify(ctx: &Ctx, action: &Action) -> Result<String, StepError> {
    match action.step() {
        StepName::Preflight => preflight::verify(ctx, action).await,
        StepName::Services => services::verify(ctx, action).await,
        StepName::Clients => clients::verify(ctx, action).await,
        StepName::Peers => peers::verify(ctx, action).await,
        StepName::Replace => replace::verify(ctx, action).await,
        StepName::Finalize => finalize::verify(ctx, action).await,
    }
}

/// Takes the action's effect back (rollback, DESIGN 5.7).
pub async fn undo(ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    match action.step() {
        StepName::Preflight => preflight::undo(ctx, action).await,
        StepName::Services => services::undo(ctx, action).await,
        StepName::Clients => clients::undo(ctx, action).await,
        StepName::Peers => peers::undo(ctx, action).await,
        StepName::Replace => replace::undo(ctx, action).await,
        StepName::Finalize => finalize::undo(ctx, action).await,
    }
}

/// The action as the runbook tells an operator to do it by hand.
pub fn manual(sh: &Shell, action: &Action) -> Manual {
    match action.step() {
        StepName::Preflight => preflight::manual(sh, action),
        StepName::Services => services::manual(sh, action),
        StepName::Clients => clients::manual(sh, action),
        StepName::Peers => peers::manual(sh, action),
        StepName::Replace => replace::manual(sh, action),
        StepName::Finalize => finalize::manual(sh, action),
    }
}

/// What the runbook says at the start of a step (Markdown).
pub fn intro(sh: &Shell, step: StepName, computed: &MigrationPlan) -> String {
    match step {
        StepName::Preflight => preflight::intro(sh),
        StepName::Services => services::intro(sh),
        StepName::Clients => clients::intro(sh),
        StepName::Peers => peers::intro(sh, computed),
        StepName::Replace => replace::intro(sh, computed),
        StepName::Finalize => finalize::intro(sh),
    }
}
