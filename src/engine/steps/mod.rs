//! The steps' actions, one module per step (STYLE: "steps are data; one
//! module per step with check, apply, verify, undo"). This module only
//! dispatches an [`Action`] to its step's module.

pub mod clients;
pub mod finalize;
pub mod peers;
pub mod preflight;
pub mod replace;
pub mod services;

use super::action::Action;
use super::context::{Ctx, Observed, StepError};
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
