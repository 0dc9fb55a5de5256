//! `zkmigrate runbook -f PLAN [-o FILE]`: the Markdown runbook of the plan
//! (DESIGN 4), rendered by [`crate::runbook::render`] from the same
//! computed plan `plan` and `step` use ([`crate::engine::build::build`]).
//!
//! It reads the plan and nothing else: no host, no cluster, so it works
//! while a step runs and changes nothing. The computed plan is built from
//! an empty observation, so the order of `peers` and `replace` is by id,
//! and the runbook tells the operator how the leader is found and taken
//! last. With `-o FILE` the runbook is written atomically
//! ([`crate::output::write_file`]); on any error nothing is written.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use super::CommandError;
use crate::engine::build;
use crate::engine::world::World;
use crate::exit::Exit;
use crate::observe::EnsembleObservation;
use crate::output::Printer;
use crate::plan;

/// Runs `zkmigrate runbook`.
pub fn run(path: &Path, output: Option<&Path>) -> Result<Exit, CommandError> {
    let plan = plan::load(path)?;
    for warning in &plan.warnings {
        tracing::warn!(%warning, "plan accepted with a warning");
    }
    let nothing_observed = World {
        ensemble: EnsembleObservation {
            servers: Vec::new(),
            observed_at: SystemTime::UNIX_EPOCH,
        },
        hosts: BTreeMap::new(),
    };
    let mut computed = build::build(&plan, &nothing_observed);
    // Only the plan's own warnings: the others say what was not observed
    // (the leader, the hosts' files), and the runbook observes nothing by
    // design; it says where the run finds them out.
    computed.warnings = plan.warnings.iter().map(ToString::to_string).collect();
    let text = crate::runbook::render(&plan, &path.display().to_string(), &computed);
    let actions: usize = computed.steps.iter().map(|s| s.actions.len()).sum();
    match output {
        None => Printer.text(&text)?,
        Some(file) => {
            crate::output::write_file(file, text.as_bytes(), true).map_err(|e| {
                CommandError::Output(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", file.display()),
                ))
            })?;
            tracing::info!(file = %file.display(), actions, "runbook written");
        }
    }
    Ok(Exit::Done)
}
