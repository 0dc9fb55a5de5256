//! Kubernetes Events for the engine's actions (issue 7, item 6): each
//! action done, failed or undone leaves an Event on the Service of the
//! server it concerns, so that `kubectl describe svc zk-2` shows that
//! server's migration history; an action about no one server (the
//! peers' name check, the clients' confirmation, the end state) and each
//! step's start and end leave one on every server's Service.
//!
//! Recorded by the loop ([`super::run`], [`super::rollback`]) in one place,
//! not by the steps, so that no action is forgotten. Best-effort, as
//! [`crate::k8s::Cluster::record_event`] is: the journal is the record.
//! Before the `services` step no Service exists, and preflight records
//! nothing.

use futures::future::join_all;

use super::action::Action;
use super::context::{Ctx, StepError};
use crate::steps::StepName;

/// The most bytes of an Event message, as client-go's recorder keeps.
const MAX_MESSAGE: usize = 1024;

/// The Services an Event about `action` goes on.
fn services_of(ctx: &Ctx, action: &Action) -> Vec<String> {
    if action.step() == StepName::Preflight {
        return Vec::new();
    }
    match action.server() {
        Some(id) => vec![ctx.plan.service_name(id)],
        None => every_service(ctx),
    }
}

fn every_service(ctx: &Ctx) -> Vec<String> {
    ctx.plan
        .servers
        .iter()
        .map(|s| ctx.plan.service_name(s.id))
        .collect()
}

/// `message` cut to [`MAX_MESSAGE`] bytes at a character boundary.
fn bounded(message: String) -> String {
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let mut end = MAX_MESSAGE - "...".len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

async fn record(ctx: &Ctx, services: Vec<String>, warning: bool, reason: &str, message: String) {
    let message = bounded(message);
    join_all(services.iter().map(|svc| async {
        if warning {
            ctx.cluster.record_warning(svc, reason, &message).await
        } else {
            ctx.cluster.record_event(svc, reason, &message).await
        }
    }))
    .await;
}

/// The action was applied and verified: what verify saw.
pub async fn done(ctx: &Ctx, action: &Action, seen: &str) {
    let message = format!("zkmigrate {}: {seen}", action.id());
    record(
        ctx,
        services_of(ctx, action),
        false,
        action.done_reason(),
        message,
    )
    .await;
}

/// The action stopped: a Warning with the error (a halt, a refusal, a
/// failure); the wait for `--confirm` is a Normal Event.
pub async fn stopped(ctx: &Ctx, action: &Action, error: &StepError) {
    let (warning, reason) = match error {
        StepError::AwaitingConfirm { .. } => (false, "AwaitingConfirm"),
        StepError::Halted(_) => (true, "Halted"),
        StepError::Refused { .. } => (true, "Refused"),
        _ => (true, "ActionFailed"),
    };
    let message = format!("zkmigrate {}: {error}", action.id());
    record(ctx, services_of(ctx, action), warning, reason, message).await;
}

/// A rollback undid the action.
pub async fn undone(ctx: &Ctx, action: &Action) {
    let message = format!(
        "zkmigrate rollback {}: undone: {}",
        action.id(),
        action.describe()
    );
    record(
        ctx,
        services_of(ctx, action),
        false,
        action.undone_reason(),
        message,
    )
    .await;
}

/// A step began (`StepStarted`) or ended (`StepDone`), on every Service.
pub async fn step(ctx: &Ctx, step: StepName, done: bool) {
    if step == StepName::Preflight {
        return;
    }
    let (reason, message) = if done {
        ("StepDone", format!("zkmigrate: step {step} done"))
    } else {
        ("StepStarted", format!("zkmigrate: step {step} started"))
    };
    record(ctx, every_service(ctx), false, reason, message).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_is_cut_at_a_character_boundary() {
        let short = "a".repeat(MAX_MESSAGE);
        assert_eq!(bounded(short.clone()), short);
        let long = "é".repeat(MAX_MESSAGE);
        let cut = bounded(long);
        assert!(cut.len() <= MAX_MESSAGE, "{} bytes", cut.len());
        assert!(cut.ends_with("..."));
        assert!(cut.starts_with("éé"));
    }
}
