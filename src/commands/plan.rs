//! `zkmigrate plan`: validate the plan file, observe the ensemble and the
//! hosts, and print every action of every step in order, with the zoo.cfg
//! diffs the `peers` step will write. Changes nothing.
//!
//! The computation is [`crate::engine::build::build`], the same one `step`
//! runs (DESIGN 2, "plan and act agree"). With `--offline` nothing is
//! contacted: the plan is computed from an empty observation.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::CommandError;
use crate::cli::OutputFormat;
use crate::engine::build::{self, MigrationPlan};
use crate::engine::world::{self, World};
use crate::exit::Exit;
use crate::hosts::HostAccess;
use crate::observe::EnsembleObservation;
use crate::output::Printer;
use crate::plan::{self, ValidatedPlan};

/// How long observing may take before `plan` prints what it has.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn run(path: &Path, output: OutputFormat, offline: bool) -> Result<Exit, CommandError> {
    let plan = plan::load(path)?;
    for warning in &plan.warnings {
        tracing::warn!(%warning, "plan accepted with a warning");
    }
    let computed = compute(&plan, offline).await;
    let printer = Printer;
    match output {
        OutputFormat::Json => printer.json(&computed)?,
        OutputFormat::Text => printer.text(&build::render_text(&computed))?,
    }
    Ok(Exit::Done)
}

async fn compute(plan: &ValidatedPlan, offline: bool) -> MigrationPlan {
    let empty = || World {
        ensemble: EnsembleObservation {
            servers: Vec::new(),
            observed_at: SystemTime::now(),
        },
        hosts: BTreeMap::new(),
    };
    if offline {
        let mut m = build::build(plan, &empty());
        m.warnings.push("offline: nothing was observed; run without --offline for the diffs and the leader-last order".into());
        return m;
    }
    let world = match HostAccess::from_plan(plan) {
        Ok(access) => {
            match tokio::time::timeout(OBSERVE_TIMEOUT, world::observe_world(plan, &access)).await {
                Ok(world) => world,
                Err(_) => {
                    let mut m = build::build(plan, &empty());
                    m.warnings.push(format!(
                        "observing took longer than {OBSERVE_TIMEOUT:?}; planned without it"
                    ));
                    return m;
                }
            }
        }
        Err(e) => {
            let mut m = build::build(plan, &empty());
            m.warnings.push(format!("the hosts cannot be reached: {e}"));
            return m;
        }
    };
    build::build(plan, &world)
}
