//! `zkmigrate check`: the preflight checks alone (DESIGN 4 and 5.1), as a
//! table or JSON; exit 1 when any fails. Every check runs, whatever the
//! others found, so one run lists every problem.
//!
//! It changes nothing: no journal is opened, and the checks only read (the
//! network check's probe Pod is created and deleted again, as in
//! `step`). The actions are the computed plan's preflight actions, in
//! order, run by the same [`preflight::run_check`] the step runs, so
//! `check` and `step` never disagree.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use super::CommandError;
use crate::cli::OutputFormat;
use crate::engine::action::Action;
use crate::engine::build;
use crate::engine::context::{Ctx, RunOptions, StepError};
use crate::engine::steps::preflight;
use crate::engine::world::World;
use crate::exit::Exit;
use crate::hosts::HostAccess;
use crate::observe::EnsembleObservation;
use crate::output::{Printer, Table};
use crate::plan::{self, ValidatedPlan};
use crate::progress::Progress;
use crate::steps::StepName;

/// `check -o json`.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub plan: String,
    /// Every check passed.
    pub passed: bool,
    pub checks: Vec<CheckResult>,
}

/// One preflight check's outcome.
#[derive(Debug, Serialize)]
pub struct CheckResult {
    /// The action id, e.g. `preflight/myid/2`.
    pub id: String,
    pub description: String,
    /// `pass` or `fail`.
    pub result: &'static str,
    /// What was seen.
    pub observed: String,
    /// What was expected (failures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What to do (failures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The preflight actions of the computed plan, in order. They do not
/// depend on what is observed, so an empty world computes them.
pub fn preflight_actions(plan: &ValidatedPlan) -> Vec<Action> {
    let world = World {
        ensemble: EnsembleObservation {
            servers: Vec::new(),
            observed_at: SystemTime::now(),
        },
        hosts: BTreeMap::new(),
    };
    build::build(plan, &world)
        .steps
        .into_iter()
        .filter(|s| s.name == StepName::Preflight)
        .flat_map(|s| s.actions)
        .map(|a| a.action)
        .collect()
}

pub async fn run(path: &Path, output: OutputFormat, json_logs: bool) -> Result<Exit, CommandError> {
    let plan = plan::load(path)?;
    let hosts = HostAccess::from_plan(&plan).map_err(|e| CommandError::Engine(e.to_string()))?;
    let cluster = crate::k8s::connect(&plan.kubernetes)
        .await
        .map_err(|e| CommandError::Engine(e.to_string()))?;
    let actions = preflight_actions(&plan);
    let ctx = Ctx {
        plan_file: path.to_path_buf(),
        hosts,
        cluster,
        progress: Progress::for_stderr(json_logs),
        opts: RunOptions::default(),
        plan,
    };
    let mut checks = Vec::new();
    for action in &actions {
        let outcome = preflight::run_check(&ctx, action).await;
        checks.push(result_of(action, outcome));
    }
    let report = CheckReport {
        plan: ctx.plan.name.clone(),
        passed: checks.iter().all(|c| c.result == "pass"),
        checks,
    };
    let printer = Printer;
    match output {
        OutputFormat::Json => printer.json(&report)?,
        OutputFormat::Text => printer.text(&render_text(&report))?,
    }
    Ok(if report.passed {
        Exit::Done
    } else {
        Exit::Error
    })
}

fn result_of(action: &Action, outcome: Result<String, StepError>) -> CheckResult {
    let (result, observed, expected, next) = match outcome {
        Ok(seen) => ("pass", seen, None, None),
        Err(StepError::Refused {
            observed,
            expected,
            next,
            ..
        }) => ("fail", observed, Some(expected), Some(next)),
        Err(e) => (
            "fail",
            e.to_string(),
            Some(action.describe()),
            Some("fix what the error names, then run `zkmigrate check` again".to_string()),
        ),
    };
    CheckResult {
        id: action.id(),
        description: action.describe(),
        result,
        observed,
        expected,
        next,
    }
}

/// The text form: a table, then each failure's expectation and next move.
pub fn render_text(r: &CheckReport) -> String {
    let mut table = Table::new(["CHECK", "RESULT", "OBSERVED"]);
    for c in &r.checks {
        table.row([c.id.clone(), c.result.to_string(), c.observed.clone()]);
    }
    let mut out = format!("preflight checks of plan {}\n\n", r.plan);
    out.push_str(&table.render());
    let failed: Vec<&CheckResult> = r.checks.iter().filter(|c| c.result != "pass").collect();
    for c in &failed {
        out.push_str(&format!(
            "\n{}: FAILED\n  observed: {}\n  expected: {}\n  next: {}\n",
            c.id,
            c.observed,
            c.expected.as_deref().unwrap_or("-"),
            c.next.as_deref().unwrap_or("-"),
        ));
    }
    out.push_str(&format!(
        "\n{} of {} checks passed\n",
        r.checks.len() - failed.len(),
        r.checks.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_shown_with_what_was_expected_and_what_to_do() {
        let r = CheckReport {
            plan: "orders".into(),
            passed: false,
            checks: vec![
                CheckResult {
                    id: "preflight/ensemble".into(),
                    description: "d".into(),
                    result: "pass",
                    observed: "3 servers serving".into(),
                    expected: None,
                    next: None,
                },
                CheckResult {
                    id: "preflight/myid/2".into(),
                    description: "d".into(),
                    result: "fail",
                    observed: "/var/lib/zookeeper/myid holds \"3\"".into(),
                    expected: Some("2".into()),
                    next: Some("fix the plan".into()),
                },
            ],
        };
        assert_eq!(
            render_text(&r),
            "preflight checks of plan orders\n\n\
             CHECK               RESULT  OBSERVED\n\
             preflight/ensemble  pass    3 servers serving\n\
             preflight/myid/2    fail    /var/lib/zookeeper/myid holds \"3\"\n\
             \npreflight/myid/2: FAILED\n  observed: /var/lib/zookeeper/myid holds \"3\"\n  expected: 2\n  next: fix the plan\n\
             \n1 of 2 checks passed\n"
        );
    }
}
