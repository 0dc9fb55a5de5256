//! Tests of the plan module: one per rule (`file_rules`, `ensemble_rules`,
//! `settings_rules`), the public API, defaults, hash and example plans
//! (`api`), and properties (`props`).
//!
//! Every test starts from [`BASE`], a minimal valid plan whose line numbers
//! the position assertions rely on, and changes one thing in it.

mod api;
mod ensemble_rules;
mod file_rules;
mod props;
mod settings_rules;

use super::{FieldError, PlanError, Position, ValidatedPlan, parse};

/// A minimal valid plan; every optional field is left to its default.
/// Line numbers matter: tests assert positions in it.
pub const BASE: &str = "\
apiVersion: zkmigrate/v1
kind: MigrationPlan
name: orders
ensemble:
  servers:
    - id: 1
      host: zk1
      address: 10.0.0.11
    - id: 2
      host: zk2
      address: 10.0.0.12
    - id: 3
      host: zk3
      address: 10.0.0.13
  access:
    ssh: { user: root }
  service:
    start: systemctl start zookeeper
    stop: systemctl stop zookeeper
    restart: systemctl restart zookeeper
    disable: systemctl disable zookeeper
    enable: systemctl enable zookeeper
kubernetes:
  namespace: zookeeper
  target:
    kind: StatefulSet
    name: zk
    image: zookeeper:3.8.4
    storage: { size: 10Gi }
";

/// `text` with `from` (which must occur exactly once) replaced by `to`.
pub fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} must occur once in the plan"
    );
    text.replacen(from, to, 1)
}

/// [`BASE`] with `to` in place of `from`.
pub fn base_with(from: &str, to: &str) -> String {
    edit(BASE, from, to)
}

/// [`BASE`] with `extra` appended (a new top-level section).
pub fn base_plus(extra: &str) -> String {
    format!("{BASE}{extra}")
}

/// The plan, which must validate.
pub fn valid(text: &str) -> ValidatedPlan {
    match parse(text, "test.yaml") {
        Ok(plan) => plan,
        Err(e) => panic!("plan should validate, got:\n{e}"),
    }
}

/// Every error of a plan that must not validate.
pub fn errors(text: &str) -> Vec<FieldError> {
    match parse(text, "test.yaml") {
        Ok(_) => panic!("plan should not validate:\n{text}"),
        Err(PlanError::Invalid { errors, .. }) => errors,
        Err(e) => panic!("expected an invalid plan, got: {e}"),
    }
}

/// The error at `path` whose message holds `needle`; fails listing them all.
pub fn error_at(text: &str, path: &str, needle: &str) -> FieldError {
    let errors = errors(text);
    match errors
        .iter()
        .find(|e| e.path == path && e.message.contains(needle))
    {
        Some(error) => error.clone(),
        None => panic!("no error at {path} containing {needle:?}; got: {errors:#?}"),
    }
}

/// A position, for assertions.
pub fn pos(line: u64, column: u64) -> Option<Position> {
    Some(Position { line, column })
}
