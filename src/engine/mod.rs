//! The migration engine (DESIGN sections 2, 5 and 6; docs/engine.md):
//! `ValidatedPlan + World -> MigrationPlan` (pure), then one loop that runs
//! each action as check -> journal intent -> apply -> verify -> journal done,
//! with the quorum-first gate before every disruptive action.
//!
//! # Layout
//!
//! - [`action`]: the steps' actions as data, with stable ids (the journal's
//!   keys) and what each one does to the ensemble.
//! - [`world`]: what is observed before planning: the ensemble, each host's
//!   config and myid.
//! - [`build`]: the one pure computation of the plan that `plan`, `runbook`,
//!   `manifests` and `step` all render.
//! - [`gate`]: the quorum-first gate and the waits after actions.
//! - [`context`]: what actions run with ([`context::Ctx`]) and the steps'
//!   error, which decides the exit code.
//! - [`steps`]: one module per step: check, apply, verify, undo.
//! - [`events`]: the Kubernetes Events each action leaves on its server's
//!   Service.
//! - [`run`]: the loop: journal intent, apply, verify, journal done.
//! - [`rollback`]: undo begun steps newest first, through each step's `undo`.

pub mod action;
pub mod build;
pub mod context;
pub mod events;
pub mod gate;
pub mod rollback;
pub mod run;
pub mod steps;
pub mod world;
