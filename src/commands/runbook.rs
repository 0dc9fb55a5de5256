//! `zkmigrate runbook -f PLAN [-o FILE]`: the Markdown runbook of the plan
//! (DESIGN 4), rendered by [`crate::runbook::render`] from the same
//! computed plan `plan` and `step` use ([`crate::engine::build::build`]).
//!
//! It reads the plan and nothing else: no host, no cluster, so it works
//! while a step runs and changes nothing. The computed plan is built from
//! an empty observation, so the order of `peers` and `replace` is by id,
//! and the runbook tells the operator how the leader is found and taken
//! last. With `-o FILE` the runbook is written atomically (a temporary
//! file in the same directory, synced, renamed); on any error nothing is
//! written.

use std::collections::BTreeMap;
use std::io::Write;
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
            write_atomically(file, text.as_bytes())?;
            tracing::info!(file = %file.display(), actions, "runbook written");
        }
    }
    Ok(Exit::Done)
}

/// Writes `bytes` to `file` through a temporary file in its directory.
fn write_atomically(file: &Path, bytes: &[u8]) -> Result<(), CommandError> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let fail = |e: std::io::Error| {
        CommandError::Output(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", file.display()),
        ))
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".zkmigrate-runbook-")
        .tempfile_in(dir)
        .map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(file).map_err(|e| fail(e.error))?;
    Ok(())
}
