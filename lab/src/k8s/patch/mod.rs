//! Patch semantics of the lab's API server, as pure functions of JSON
//! objects: the API server (`apiserver`) reads the live object, calls one
//! of these, then runs admission and stores the result.
//!
//! - [`json_patch`] and [`merge_patch`] ([`json`]): RFC 6902 and RFC 7386.
//! - [`strategic_merge_patch`] ([`strategic`]): kubectl's default patch.
//! - [`apply`] ([`apply`](mod@apply)): server-side apply with field managers and
//!   conflicts; [`record_update`] ([`update`]) keeps
//!   `metadata.managedFields` right for every other write.
//!
//! They share [`schema`], the list and map markers of the served kinds, so
//! that one table says how `spec.ports` of a Service merges under each
//! patch type; [`fieldset`], [`typed`] and [`managed`] are the
//! structured-merge-diff machinery server-side apply stands on.
//! Everything here is a function of its arguments but for the timestamps
//! of managed fields (the `*_at` variants take the time).

// `ApiError` (error.rs) is the error type the API server renders; boxing it
// is a decision for error.rs, not for each caller.
#![allow(clippy::result_large_err)]

pub mod apply;
pub mod fieldset;
pub mod json;
pub mod managed;
pub mod schema;
pub mod strategic;
pub mod typed;
pub mod update;

pub use apply::{
    Conflict, apply, apply_at, apply_conflict, apply_subresource, apply_subresource_at,
};
pub use json::{json_patch, merge_patch};
pub use strategic::strategic_merge_patch;
pub use update::{record_at, record_subresource_update, record_update};

#[cfg(test)]
mod apply_tests;
#[cfg(test)]
mod strategic_tests;
