//! Step `replace` (DESIGN 5): not built yet; every function says so.

use crate::engine::action::Action;
use crate::engine::context::{Ctx, Observed, StepError};

fn not_built(action: &Action) -> StepError {
    StepError::Other(format!("run {}: step replace is not built yet", action.id()))
}

pub async fn check(_ctx: &Ctx, action: &Action) -> Result<Observed, StepError> {
    Err(not_built(action))
}

pub async fn apply(_ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    Err(not_built(action))
}

pub async fn verify(_ctx: &Ctx, action: &Action) -> Result<String, StepError> {
    Err(not_built(action))
}

pub async fn undo(_ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    Err(not_built(action))
}
